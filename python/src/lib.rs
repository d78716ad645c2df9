//! Python bindings of crowdtally: they only convert. Inputs become Arrow columns or core
//! structs, the work runs in the core with the GIL released, and results go back as Arrow
//! (through the PyCapsule interface), numpy arrays or plain dicts.

mod config;
mod convert;
mod distributed;
mod engine;
mod errors;
mod geography;
mod prepare;
mod spec;
mod study;
mod synth;
mod table;

use pyo3::prelude::*;

/// The compiled core of the `crowdtally` package.
#[pymodule]
mod _crowdtally {
    #[pymodule_export]
    use crate::config::PyConfig;
    #[pymodule_export]
    use crate::distributed::{
        PyMapper, PyPlan, PyReducer, PyScanner, PyShippedKey, distributed_schemas, finish_partials,
    };
    #[pymodule_export]
    use crate::engine::{PyEngine, PyProgress};
    #[pymodule_export]
    use crate::errors::{ConfigError, CrowdtallyError, GeographyError, InputError, LedgerError};
    #[pymodule_export]
    use crate::geography::PyGeography;
    #[pymodule_export]
    use crate::prepare::{PyPrepared, pseudonymize, risk};
    #[pymodule_export]
    use crate::spec::{PyDp, PyReleaseSpec};
    #[pymodule_export]
    use crate::study::{PyStudy, spend};
    #[pymodule_export]
    use crate::synth::{PingBatches, PyScenario};
    #[pymodule_export]
    use crate::table::{
        PyResultTable, read_parquet_table, table_from_ipc, table_to_ipc, write_parquet,
    };

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        module.add("__version__", crowdtally::VERSION)?;
        // The release table's columns and the dwell bands, from the core, so that the
        // Python package never retypes them.
        let columns: Vec<String> = crowdtally::Release::schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect();
        module.add("RELEASE_COLUMNS", columns)?;
        module.add(
            "RELEASE_LABEL_COLUMNS",
            crowdtally::Release::LABEL_COLUMNS.to_vec(),
        )?;
        let bands: Vec<(&str, i64)> = crowdtally::DWELL_BANDS.to_vec();
        module.add("DWELL_BANDS", bands)
    }
}

/// Raises each message as a `crowdtally.CrowdtallyWarning`, at the caller's line.
pub(crate) fn warn_all(py: Python<'_>, messages: &[String]) -> PyResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let category = py
        .import(pyo3::intern!(py, "crowdtally.release"))?
        .getattr(pyo3::intern!(py, "CrowdtallyWarning"))?;
    for message in messages {
        let message = std::ffi::CString::new(message.replace('\0', " "))?;
        PyErr::warn(py, &category, &message, 1)?;
    }
    Ok(())
}

/// Converts a JSON value (reports) into plain Python objects.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use pyo3::types::{PyDict, PyList};
    Ok(match value {
        serde_json::Value::Null => py.None().into_bound(py),
        serde_json::Value::Bool(b) => b.into_bound_py_any(py)?,
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_bound_py_any(py)?,
            (None, Some(i)) => i.into_bound_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        serde_json::Value::String(s) => s.into_bound_py_any(py)?,
        serde_json::Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        serde_json::Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
