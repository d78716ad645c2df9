//! `crowdtally._crowdtally.analyze`: the whole method from pings to a protected release.

use std::collections::BTreeMap;
use std::sync::Arc;

use crowdtally::ingest::Ingester;
use crowdtally::{BucketKind, ReleaseClass, ReleaseOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::config::PyConfig;
use crate::errors::{CoreError, config_error, detach};
use crate::geography::PyGeography;
use crate::prepare::{PyPrepared, columns_of, run_ingester};
use crate::run::RunArgs;
use crate::table::PyResultTable;

fn classes_of(classes: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<ReleaseClass>> {
    let Some(classes) = classes else {
        return Ok(vec![ReleaseClass::Visitor]);
    };
    // A single name is one class, not a sequence of letters.
    if let Ok(name) = classes.cast::<PyString>() {
        return Ok(vec![name.to_str()?.parse().map_err(CoreError)?]);
    }
    let mut parsed = Vec::new();
    for item in classes
        .try_iter()
        .map_err(|_| config_error("classes", "must be a class name or a sequence of them"))?
    {
        let name: String = item?
            .extract()
            .map_err(|_| config_error("classes", "must contain class names (strings)"))?;
        parsed.push(name.parse().map_err(CoreError)?);
    }
    Ok(parsed)
}

fn mapping_of<T: for<'a, 'py> FromPyObject<'a, 'py>>(
    field: &'static str,
    mapping: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<BTreeMap<String, T>>> {
    let Some(mapping) = mapping else {
        return Ok(None);
    };
    let dict = mapping.cast::<PyDict>().map_err(|_| {
        config_error(
            field,
            format!("must be a dict of region or country id to {what}"),
        )
    })?;
    let mut parsed = BTreeMap::new();
    for (key, value) in dict.iter() {
        let key: String = key
            .extract()
            .map_err(|_| config_error(field, "keys must be strings"))?;
        let value: T = value
            .extract()
            .map_err(|_| config_error(field, format!("the value for {key:?} must be {what}")))?;
        parsed.insert(key, value);
    }
    Ok(Some(parsed))
}

/// Runs the whole method: returns the release table and the report.
#[pyfunction]
#[pyo3(signature = (
    pings, geography, config, bucket="period", level=None, classes=None, subscribers=None,
    roaming_factors=None, roll_up=true, columns=None, threads=None, memory_limit=None,
    spill_dir=None, progress=None,
))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments.
pub fn analyze<'py>(
    py: Python<'py>,
    pings: &Bound<'py, PyAny>,
    geography: &Bound<'py, PyGeography>,
    config: &Bound<'py, PyConfig>,
    bucket: &str,
    level: Option<String>,
    classes: Option<&Bound<'py, PyAny>>,
    subscribers: Option<&Bound<'py, PyAny>>,
    roaming_factors: Option<&Bound<'py, PyAny>>,
    roll_up: bool,
    columns: Option<&Bound<'py, PyDict>>,
    threads: Option<i64>,
    memory_limit: Option<&Bound<'py, PyAny>>,
    spill_dir: Option<&Bound<'py, PyAny>>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<(PyResultTable, Bound<'py, PyAny>)> {
    let mut options = ReleaseOptions::default();
    options.bucket = bucket.parse::<BucketKind>().map_err(CoreError)?;
    options.level = level;
    options.classes = classes_of(classes)?;
    options.subscribers = mapping_of::<u64>("subscribers", subscribers, "a non-negative integer")?;
    options.roaming_factors =
        mapping_of::<f64>("roaming_factors", roaming_factors, "a number")?.unwrap_or_default();
    options.roll_up = roll_up;
    let geography = Arc::clone(&geography.get().inner);
    let core_config = config.get().inner.clone();
    // Check the options before the (long) run, so a typo fails at once.
    options.validate(&geography).map_err(CoreError)?;
    let mut run = RunArgs::new(py, threads, memory_limit, spill_dir, progress)?;
    let release = if let Ok(prepared) = pings.cast::<PyPrepared>() {
        let prepared = Arc::clone(&prepared.get().prepared);
        detach(py, move || {
            crowdtally::analyze_prepared(&prepared, &geography, &core_config, &options)
        })?
    } else {
        let columns = columns_of(columns)?;
        run_ingester(
            py,
            pings,
            &geography,
            &core_config,
            &columns,
            &mut run,
            move |ingester: Ingester<'_>| ingester.release(&options),
        )?
    };
    let report = crate::json_to_py(py, &release.report.to_json())?;
    let batch = detach(py, move || release.to_record_batch())?;
    Ok((PyResultTable::new(py, "release", batch)?, report))
}
