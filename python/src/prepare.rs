//! `crowdtally.prepare` and `crowdtally.pseudonymize`.

use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use std::path::PathBuf;

use arrow_array::RecordBatchReader;
use crowdtally::ingest::Ingester;
use crowdtally::{Geography, Key, LocatedPings, PingColumns, Prepared, QualityReport};
use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyList, PyString, PyTuple};
use pyo3_arrow::PyTable;
use pyo3_arrow::input::AnyRecordBatch;

use crate::config::PyConfig;
use crate::convert::{batches, column};
use crate::errors::{config_error, detach, input_error};
use crate::geography::PyGeography;
use crate::run::{BatchIterator, RunArgs};

pub(crate) fn columns_of(columns: Option<&Bound<'_, PyDict>>) -> PyResult<PingColumns> {
    let mut names = PingColumns::default();
    let Some(columns) = columns else {
        return Ok(names);
    };
    for (role, name) in columns.iter() {
        let role: String = role
            .extract()
            .map_err(|_| input_error("columns", "keys must be strings"))?;
        let name: String = name.extract().map_err(|_| {
            input_error(
                "columns",
                format!("the name given for {role:?} must be a string"),
            )
        })?;
        let slot = match role.as_str() {
            "subscriber" => &mut names.subscriber,
            "ts" => &mut names.ts,
            "lat" => &mut names.lat,
            "lon" => &mut names.lon,
            "cell" => &mut names.cell,
            "country" => &mut names.country,
            other => {
                return Err(input_error(
                    "columns",
                    format!(
                        "unknown role {other:?}; roles are subscriber, ts, lat, lon, cell, country"
                    ),
                ));
            }
        };
        *slot = name;
    }
    Ok(names)
}

/// Cleaned, pseudonymized, located pings and their quality report.
///
/// The pings are microdata: pseudonymous, not anonymous. Never publish them.
#[pyclass(name = "Prepared", module = "crowdtally", frozen)]
pub struct PyPrepared {
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) geography: Arc<Geography>,
    table: OnceLock<Py<PyTable>>,
}

impl PyPrepared {
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTable>> {
        if let Some(table) = self.table.get() {
            return Ok(table.bind(py).clone());
        }
        let prepared = Arc::clone(&self.prepared);
        let geography = Arc::clone(&self.geography);
        let batch: RecordBatch = detach(py, move || prepared.pings.to_record_batch(&geography))?;
        let table = PyTable::try_new(vec![batch], LocatedPings::schema())?;
        let table = Py::new(py, table)?;
        Ok(self.table.get_or_init(|| table).bind(py).clone())
    }
}

#[pymethods]
impl PyPrepared {
    /// The quality report: pings read and kept, drops by reason, opt-out counts.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::json_to_py(py, &self.prepared.report.to_json())
    }

    /// The number of located pings.
    fn __len__(&self) -> usize {
        self.prepared.pings.len()
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.table(py)?
            .call_method1(intern!(py, "__arrow_c_stream__"), (requested_schema,))
    }

    /// The pings as a `pyarrow.Table` (needs pyarrow).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import(intern!(py, "pyarrow"))?
            .call_method1(intern!(py, "table"), (slf,))
    }

    /// The pings as a `pandas.DataFrame` (needs pandas and pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_arrow(slf)?.call_method0(intern!(slf.py(), "to_pandas"))
    }

    /// The pings as a `polars.DataFrame` (needs polars).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import(intern!(py, "polars"))?
            .call_method1(intern!(py, "DataFrame"), (slf,))
    }

    fn __repr__(&self) -> String {
        let report: &QualityReport = &self.prepared.report;
        let period = report.period.map_or_else(
            || "None".to_owned(),
            |p| format!("('{}', '{}')", p.start, p.end),
        );
        format!(
            "Prepared(pings={}, devices={}, read={}, dropped={}, period={period})",
            report.pings_kept,
            report.devices,
            report.pings_read,
            report.dropped.total(),
        )
    }

    #[allow(clippy::unused_self)] // Python calls it on the instance.
    fn __reduce__<'py>(&self, _py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Err(PyTypeError::new_err(
            "crowdtally.Prepared holds pseudonymous microdata and cannot be pickled",
        ))
    }
}

/// Where pings come from: Parquet files read by the core, an Arrow stream pulled batch by
/// batch, a Python iterator of Arrow batches, or batches already in memory.
pub(crate) enum PingSource {
    Files(Vec<PathBuf>),
    Stream(Box<dyn RecordBatchReader + Send>),
    Iterator(BatchIterator),
    Batches(Vec<RecordBatch>),
}

/// The Parquet paths of a path, a glob pattern, or a list of them; `None` when `pings` is
/// not a path at all.
fn parquet_paths(pings: &Bound<'_, PyAny>) -> PyResult<Option<Vec<PathBuf>>> {
    let py = pings.py();
    let is_path = |item: &Bound<'_, PyAny>| -> PyResult<bool> {
        Ok(item.is_instance_of::<PyString>() || item.hasattr(intern!(py, "__fspath__"))?)
    };
    let items: Vec<Bound<'_, PyAny>> = if is_path(pings)? {
        vec![pings.clone()]
    } else if let Some(items) = list_items(pings)? {
        if items.is_empty() || !all(&items, is_path)? {
            return Ok(None);
        }
        items
    } else {
        return Ok(None);
    };
    let os = py.import(intern!(py, "os"))?;
    let glob = py.import(intern!(py, "glob"))?;
    let mut paths = Vec::new();
    for item in items {
        let text: String = os
            .call_method1(intern!(py, "fspath"), (&item,))?
            .extract()?;
        if text.contains(['*', '?', '[']) {
            let mut matched: Vec<String> = glob
                .call_method1(intern!(py, "glob"), (&text,))?
                .extract()?;
            if matched.is_empty() {
                return Err(input_error(text, "matches no file"));
            }
            matched.sort();
            paths.extend(matched.into_iter().map(PathBuf::from));
        } else {
            paths.push(PathBuf::from(text));
        }
    }
    Ok(Some(paths))
}

/// The items of a list or tuple; `None` for anything else.
fn list_items<'py>(pings: &Bound<'py, PyAny>) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    if pings.is_instance_of::<PyList>() || pings.is_instance_of::<PyTuple>() {
        Ok(Some(pings.try_iter()?.collect::<PyResult<_>>()?))
    } else {
        Ok(None)
    }
}

fn all(
    items: &[Bound<'_, PyAny>],
    test: impl Fn(&Bound<'_, PyAny>) -> PyResult<bool>,
) -> PyResult<bool> {
    for item in items {
        if !test(item)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl PingSource {
    pub(crate) fn of(pings: &Bound<'_, PyAny>, run: &RunArgs) -> PyResult<Self> {
        let py = pings.py();
        if let Some(paths) = parquet_paths(pings)? {
            return Ok(Self::Files(paths));
        }
        if pings.hasattr(intern!(py, "__arrow_c_stream__"))? {
            // Pulled batch by batch while the run goes on: the input need not fit in
            // memory.
            let reader = pings.extract::<AnyRecordBatch>()?.into_reader()?;
            return Ok(Self::Stream(reader));
        }
        let is_arrow = |item: &Bound<'_, PyAny>| -> PyResult<bool> {
            Ok(item.hasattr(intern!(py, "__arrow_c_array__"))?
                || item.hasattr(intern!(py, "__arrow_c_stream__"))?)
        };
        let is_iterator = pings.hasattr(intern!(py, "__next__"))?;
        let arrow_list = match list_items(pings)? {
            Some(items) => !items.is_empty() && all(&items, is_arrow)?,
            None => false,
        };
        if is_iterator || arrow_list {
            return Ok(Self::Iterator(run.batch_iterator(pings)?));
        }
        Ok(Self::Batches(batches("pings", pings)?))
    }

    /// The input rows in all, when known without reading the pings.
    pub(crate) fn rows_total(&self) -> Option<u64> {
        match self {
            Self::Files(paths) => paths
                .iter()
                .map(|p| crowdtally::ingest::parquet_rows(p).ok())
                .sum(),
            Self::Batches(batches) => Some(batches.iter().map(|b| b.num_rows() as u64).sum()),
            Self::Stream(_) | Self::Iterator(_) => None,
        }
    }

    pub(crate) fn push_into(self, ingester: &mut Ingester<'_>) -> crowdtally::Result<()> {
        match self {
            Self::Files(paths) => {
                for path in &paths {
                    ingester.push_parquet(path)?;
                }
                Ok(())
            }
            Self::Stream(reader) => ingester.push_reader(reader),
            Self::Iterator(reader) => ingester.push_reader(reader),
            Self::Batches(batches) => {
                for batch in &batches {
                    ingester.push(batch)?;
                }
                Ok(())
            }
        }
    }
}

/// The number of threads asked for: `None` or 0 is one per core.
pub(crate) fn threads_of(threads: Option<i64>) -> PyResult<usize> {
    let n = threads.unwrap_or(0);
    usize::try_from(n).map_err(|_| {
        config_error(
            "threads",
            format!("must be a number of threads (0 or None: one per core), got {n}"),
        )
    })
}

/// Reads raw pings into an ingester with the run's options (and, with a budget, its
/// memory budget and spill directory), then finishes it with `finish`, all with the GIL
/// released; Ctrl-C and the progress callable are served between batches and shards.
pub(crate) fn run_ingester<T, F>(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Arc<Geography>,
    config: &crowdtally::Config,
    columns: &PingColumns,
    run: &mut RunArgs,
    finish: F,
) -> PyResult<T>
where
    T: Send,
    F: for<'a> FnOnce(Ingester<'a>) -> crowdtally::Result<T> + Send,
{
    let source = PingSource::of(pings, run)?;
    // Tables in memory (pyarrow, polars...) say how many rows they hold.
    let in_memory = || {
        pings
            .getattr(pyo3::intern!(py, "num_rows"))
            .ok()?
            .extract()
            .ok()
    };
    run.set_rows_total(source.rows_total().or_else(in_memory));
    let callback = run.core_callback();
    let (options, budget) = (&run.options, run.budget);
    run.detach(py, move || {
        let ingester = Ingester::new(geography, config, columns)?;
        let mut ingester = if budget {
            ingester.with_run(options)?
        } else {
            ingester.with_threads(options.threads)?
        }
        .with_progress(callback);
        source.push_into(&mut ingester)?;
        finish(ingester)
    })
}

/// Cleans, pseudonymizes and locates raw pings (method §1–3).
#[pyfunction]
#[pyo3(signature = (pings, geography, config, columns=None, *, threads=None, progress=None))]
pub fn prepare(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyPrepared> {
    let mut run = RunArgs::new(py, threads, None, None, progress)?;
    run.budget = false;
    let columns = columns_of(columns)?;
    let geography = Arc::clone(&geography.get().inner);
    let config = config.get().inner.clone();
    let prepared = run_ingester(
        py,
        pings,
        &geography,
        &config,
        &columns,
        &mut run,
        |ingester: Ingester<'_>| ingester.finish(),
    )?;
    Ok(PyPrepared {
        prepared: Arc::new(prepared),
        geography,
        table: OnceLock::new(),
    })
}

/// Pseudonymizes raw subscriber ids: str, bytes or non-negative int (as a sequence, a
/// numpy array or an Arrow array), returning a numpy uint64 array.
#[pyfunction]
#[pyo3(signature = (ids, *, key, period_label))]
pub fn pseudonymize<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
    period_label: &str,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let key = if let Ok(bytes) = key.cast::<PyBytes>() {
        Key::new(bytes.as_bytes().to_vec())
    } else if let Ok(text) = key.cast::<PyString>() {
        Key::new(text.to_str()?.as_bytes().to_vec())
    } else {
        return Err(config_error("key", "must be bytes or str"));
    };
    let array = column("ids", ids)?;
    let label = period_label.to_owned();
    let devices = detach(py, move || {
        crowdtally::ingest::pseudonymize_column(&array, &key, &label, "ids")
    })?;
    Ok(PyArray1::from_vec(py, devices))
}
