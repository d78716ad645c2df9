//! `crowdtally.prepare` and `crowdtally.pseudonymize`.

use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use crowdtally::{Geography, Key, LocatedPings, PingColumns, Prepared, QualityReport};
use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyString, PyTuple};
use pyo3_arrow::PyTable;

use crate::config::PyConfig;
use crate::convert::{batches, column};
use crate::errors::{config_error, detach, input_error};
use crate::geography::PyGeography;

fn columns_of(columns: Option<&Bound<'_, PyDict>>) -> PyResult<PingColumns> {
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

/// Cleans, pseudonymizes and locates raw pings (method §1–3).
#[pyfunction]
#[pyo3(signature = (pings, geography, config, columns=None))]
pub fn prepare(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyPrepared> {
    let columns = columns_of(columns)?;
    let batches = batches("pings", pings)?;
    let geography = Arc::clone(&geography.get().inner);
    let config = config.get().inner.clone();
    let shared = Arc::clone(&geography);
    let prepared = detach(py, move || {
        crowdtally::prepare(batches.into_iter().map(Ok), &shared, &config, &columns)
    })?;
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
