//! `crowdtally.profile` and `crowdtally.visits`: per-device microdata.

use std::sync::Arc;

use crowdtally::{Geography, Prepared, Profiles};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::PyConfig;
use crate::errors::detach;
use crate::geography::PyGeography;
use crate::prepare::{PyPrepared, prepare};
use crate::table::PyResultTable;

/// The prepared pings: the given `Prepared`, or raw pings run through `prepare`.
pub(crate) fn prepared_of(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
) -> PyResult<Arc<Prepared>> {
    if let Ok(prepared) = pings.cast::<PyPrepared>() {
        return Ok(Arc::clone(&prepared.get().prepared));
    }
    Ok(prepare(py, pings, geography, config, columns, threads)?.prepared)
}

fn profiles_of(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
) -> PyResult<(Arc<Prepared>, Arc<Geography>, Profiles)> {
    let prepared = prepared_of(py, pings, geography, config, columns, threads)?;
    let shared_geography = Arc::clone(&geography.get().inner);
    let config = config.get().inner.clone();
    let (p, g) = (Arc::clone(&prepared), Arc::clone(&shared_geography));
    let profiles = detach(py, move || crowdtally::profile(&p.pings, &g, &config))?;
    Ok((prepared, shared_geography, profiles))
}

/// Per-device microdata (method §4): device pseudonym, class, origin, home, presence
/// days, nights in the study area, country and roamer flag. Pseudonymous, not
/// anonymous: never publish it.
#[pyfunction]
#[pyo3(signature = (pings, geography, config, columns=None, *, threads=None))]
pub fn profile(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
) -> PyResult<PyResultTable> {
    let (prepared, geography, profiles) =
        profiles_of(py, pings, geography, config, columns, threads)?;
    let batch = detach(py, move || {
        profiles.devices_batch(&prepared.pings, &geography)
    })?;
    PyResultTable::new(py, "devices", batch)
}

/// Visits (method §5): device pseudonym, zone, start, end, dwell and whether the visit
/// qualifies. Pseudonymous, not anonymous: never publish it.
#[pyfunction]
#[pyo3(signature = (pings, geography, config, columns=None, *, threads=None))]
pub fn visits(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
) -> PyResult<PyResultTable> {
    let (_, geography, profiles) = profiles_of(py, pings, geography, config, columns, threads)?;
    let batch = detach(py, move || profiles.visits_batch(&geography))?;
    PyResultTable::new(py, "visits", batch)
}
