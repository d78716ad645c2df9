//! `crowdtally.profile` and `crowdtally.visits`: per-device microdata.

use std::sync::Arc;

use arrow_array::RecordBatch;
use crowdtally::ingest::Ingester;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::PyConfig;
use crate::errors::detach;
use crate::geography::PyGeography;
use crate::prepare::{PyPrepared, columns_of, run_ingester};
use crate::run::RunArgs;
use crate::table::PyResultTable;

/// Which per-device table.
#[derive(Clone, Copy)]
enum PerDevice {
    Devices,
    Visits,
}

/// A per-device table of `Prepared` pings (in memory), or of raw pings read within the
/// run's memory budget and processed shard by shard.
#[allow(clippy::too_many_arguments)] // Python keyword arguments.
fn per_device(
    py: Python<'_>,
    table: PerDevice,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    mut run: RunArgs,
) -> PyResult<RecordBatch> {
    let geography = Arc::clone(&geography.get().inner);
    let config = config.get().inner.clone();
    if let Ok(prepared) = pings.cast::<PyPrepared>() {
        let prepared = Arc::clone(&prepared.get().prepared);
        return detach(py, move || {
            let profiles = crowdtally::profile(&prepared.pings, &geography, &config)?;
            match table {
                PerDevice::Devices => profiles.devices_batch(&prepared.pings, &geography),
                PerDevice::Visits => profiles.visits_batch(&geography),
            }
        });
    }
    let columns = columns_of(columns)?;
    run_ingester(
        py,
        pings,
        &geography,
        &config,
        &columns,
        &mut run,
        move |ingester: Ingester<'_>| match table {
            PerDevice::Devices => ingester.devices_table(),
            PerDevice::Visits => ingester.visits_table(),
        },
    )
}

/// Per-device microdata (method §4): device pseudonym, class, origin, home, presence
/// days, nights in the study area, country and roamer flag. Pseudonymous, not
/// anonymous: never publish it.
#[pyfunction]
#[pyo3(signature = (
    pings, geography, config, columns=None, *, threads=None, memory_limit=None, spill_dir=None,
    progress=None,
))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments.
pub fn profile(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
    memory_limit: Option<&Bound<'_, PyAny>>,
    spill_dir: Option<&Bound<'_, PyAny>>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyResultTable> {
    let run = RunArgs::new(py, threads, memory_limit, spill_dir, progress)?;
    let batch = per_device(
        py,
        PerDevice::Devices,
        pings,
        geography,
        config,
        columns,
        run,
    )?;
    PyResultTable::new(py, "devices", batch)
}

/// Visits (method §5): device pseudonym, zone, start, end, dwell and whether the visit
/// qualifies. Pseudonymous, not anonymous: never publish it.
#[pyfunction]
#[pyo3(signature = (
    pings, geography, config, columns=None, *, threads=None, memory_limit=None, spill_dir=None,
    progress=None,
))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments.
pub fn visits(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    geography: &Bound<'_, PyGeography>,
    config: &Bound<'_, PyConfig>,
    columns: Option<&Bound<'_, PyDict>>,
    threads: Option<i64>,
    memory_limit: Option<&Bound<'_, PyAny>>,
    spill_dir: Option<&Bound<'_, PyAny>>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyResultTable> {
    let run = RunArgs::new(py, threads, memory_limit, spill_dir, progress)?;
    let batch = per_device(
        py,
        PerDevice::Visits,
        pings,
        geography,
        config,
        columns,
        run,
    )?;
    PyResultTable::new(py, "visits", batch)
}
