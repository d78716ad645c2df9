//! `crowdtally.Prepared` (located pings, and the releases and per-device tables made from
//! them), where pings come from, and `crowdtally.pseudonymize`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_array::{RecordBatch, RecordBatchReader};
use crowdtally::{Key, LocatedPings, PingColumns, Prepared, QualityReport};
use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyList, PyString, PyTuple};
use pyo3_arrow::PyTable;
use pyo3_arrow::input::AnyRecordBatch;

use crate::convert::{batches, column};
use crate::engine::{BatchIterator, PyEngine, RunArgs};
use crate::errors::{CoreError, config_error, detach, input_error};
use crate::spec::{SpecKeywords, specs_of};
use crate::study::{PyStudy, release_list, release_object};
use crate::table::PyResultTable;

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

/// Cleaned, pseudonymized, located pings and their quality report, with the study they
/// were located for: release as many tables from them as needed (`release`,
/// `releases`), and the per-device tables (`profile`, `visits`); the devices are
/// profiled once.
///
/// The pings are microdata: pseudonymous, not anonymous. Never publish them.
#[pyclass(name = "Prepared", module = "crowdtally", frozen)]
pub struct PyPrepared {
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) table: OnceLock<Py<PyTable>>,
}

impl PyPrepared {
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTable>> {
        if let Some(table) = self.table.get() {
            return Ok(table.bind(py).clone());
        }
        let prepared = Arc::clone(&self.prepared);
        let batch: RecordBatch = detach(py, move || prepared.to_record_batch())?;
        let table = PyTable::try_new(vec![batch], LocatedPings::schema())?;
        let table = Py::new(py, table)?;
        Ok(self.table.get_or_init(|| table).bind(py).clone())
    }

    /// A per-device table of these pings: `devices` or `visits`.
    pub(crate) fn per_device(&self, py: Python<'_>, name: &'static str) -> PyResult<PyResultTable> {
        let prepared = Arc::clone(&self.prepared);
        let batch = detach(py, move || match name {
            "devices" => prepared.devices(),
            _ => prepared.visits(),
        })?;
        PyResultTable::new(py, name, batch)
    }
}

#[pymethods]
impl PyPrepared {
    /// The quality report: pings read and kept, drops by reason, opt-out counts.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::json_to_py(py, &self.prepared.report().to_json())
    }

    /// The study the pings were located for.
    #[getter]
    fn study(&self) -> PyStudy {
        PyStudy {
            inner: self.prepared.study().clone(),
        }
    }

    /// The number of located pings.
    fn __len__(&self) -> usize {
        self.prepared.pings().len()
    }

    /// One release of these pings (method §6–9).
    #[pyo3(signature = (
        bucket="period", level=None, classes=None, subscribers=None, roaming_factors=None, *,
        roll_up=true, privacy=None, allow_differencing=false,
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn release<'py>(
        &self,
        py: Python<'py>,
        bucket: &str,
        level: Option<String>,
        classes: Option<&Bound<'py, PyAny>>,
        subscribers: Option<&Bound<'py, PyAny>>,
        roaming_factors: Option<&Bound<'py, PyAny>>,
        roll_up: bool,
        privacy: Option<&Bound<'py, PyAny>>,
        allow_differencing: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = SpecKeywords {
            bucket: Some(bucket),
            level,
            classes,
            subscribers,
            roaming_factors,
            roll_up: Some(roll_up),
            privacy,
            allow_differencing,
        }
        .spec()?;
        let prepared = Arc::clone(&self.prepared);
        let release = detach(py, move || prepared.release(&spec))?;
        release_object(py, release)
    }

    /// Several releases of these pings: `specs` is a list of `crowdtally.ReleaseSpec`
    /// (or dicts of their keywords).
    fn releases<'py>(
        &self,
        py: Python<'py>,
        specs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let specs = specs_of(specs)?;
        let prepared = Arc::clone(&self.prepared);
        let releases = detach(py, move || prepared.releases(&specs))?;
        release_list(py, releases)
    }

    /// How unique these pings' traces are, as `crowdtally.risk` describes: for the data
    /// protection officer, counts and shares only.
    #[pyo3(signature = (*, points=None, spatial="cell", temporal="hour", samples=None, seed=0, k=None))]
    #[allow(clippy::too_many_arguments)] // One Python call's keywords.
    fn risk<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        points: Option<&Bound<'py, PyAny>>,
        spatial: &str,
        temporal: &str,
        samples: Option<usize>,
        seed: u64,
        k: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keywords = PyDict::new(py);
        if let Some(points) = points {
            keywords.set_item("points", points)?;
        }
        keywords.set_item("spatial", spatial)?;
        keywords.set_item("temporal", temporal)?;
        keywords.set_item("samples", samples)?;
        keywords.set_item("seed", seed)?;
        keywords.set_item("k", k)?;
        py.import(intern!(py, "crowdtally.risk"))?
            .getattr(intern!(py, "risk"))?
            .call((slf,), Some(&keywords))
    }

    /// Per-device microdata (method §4). Pseudonymous, not anonymous: never publish it.
    fn profile(&self, py: Python<'_>) -> PyResult<PyResultTable> {
        self.per_device(py, "devices")
    }

    /// Visits (method §5). Pseudonymous, not anonymous: never publish them.
    fn visits(&self, py: Python<'_>) -> PyResult<PyResultTable> {
        self.per_device(py, "visits")
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
        let report: &QualityReport = self.prepared.report();
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
            Self::Files(paths) => paths.iter().map(|p| crowdtally::parquet_rows(p).ok()).sum(),
            Self::Batches(batches) => Some(batches.iter().map(|b| b.num_rows() as u64).sum()),
            Self::Stream(_) | Self::Iterator(_) => None,
        }
    }

    pub(crate) fn push_into(self, run: &mut crowdtally::Run) -> crowdtally::Result<()> {
        match self {
            Self::Files(paths) => {
                for path in &paths {
                    run.push_parquet(path)?;
                }
                Ok(())
            }
            Self::Stream(reader) => run.push_reader(reader),
            Self::Iterator(reader) => run.push_reader(reader),
            Self::Batches(batches) => {
                for batch in &batches {
                    run.push(batch)?;
                }
                Ok(())
            }
        }
    }
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
        crowdtally::pseudonymize_column(&array, &key, &label, "ids")
    })?;
    Ok(PyArray1::from_vec(py, devices))
}

/// The re-identification risk audit (`crowdtally.risk`) of prepared pings, or of raw
/// pings of `study` read shard by shard within `engine`'s budget: the table and the
/// report.
#[pyfunction]
#[pyo3(name = "_risk", signature = (pings, *, points, spatial, temporal, samples=None, seed=0, k=None, study=None, engine=None))]
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)] // One Python call's keywords, extracted as owned values.
pub fn risk<'py>(
    py: Python<'py>,
    pings: &Bound<'py, PyAny>,
    points: Vec<usize>,
    spatial: &str,
    temporal: &str,
    samples: Option<usize>,
    seed: u64,
    k: Option<u32>,
    study: Option<&Bound<'py, PyStudy>>,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<(PyResultTable, Bound<'py, PyAny>)> {
    let mut spec = crowdtally::RiskSpec::default();
    spec.points = points;
    spec.spatial = spatial.parse().map_err(CoreError)?;
    spec.temporal = temporal.parse().map_err(CoreError)?;
    spec.samples = samples;
    spec.seed = seed;
    spec.k = k;
    let risk = if let Ok(prepared) = pings.cast::<PyPrepared>() {
        let prepared = Arc::clone(&prepared.get().prepared);
        detach(py, move || prepared.risk(&spec))?
    } else {
        let Some(study) = study else {
            return Err(config_error(
                "study",
                "must be given with pings that are not prepared",
            ));
        };
        let study = study.get().inner.clone();
        let mut run = RunArgs::new(py, engine, &crate::engine::EngineKeywords::default())?;
        crate::study::run_study(py, pings, &study.clone(), &mut run, move |reading| {
            reading.risk(&spec)
        })?
    };
    let report = crate::json_to_py(py, &risk.report)?;
    let batch = risk.to_record_batch().map_err(CoreError)?;
    Ok((PyResultTable::new(py, "risk", batch)?, report))
}
