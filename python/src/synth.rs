//! `crowdtally.synth.Scenario`: the synthetic city, its pings and its truth.

use std::sync::Arc;

use crowdtally::synth::{Scenario, ScenarioConfig};
use pyo3::exceptions::PyStopIteration;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::PyConfig;
use crate::errors::{config_error, detach};
use crate::geography::PyGeography;
use crate::table::PyResultTable;

/// A generated synthetic city: country, zones, people, their pings and the truth.
#[pyclass(name = "Scenario", module = "crowdtally.synth", frozen)]
pub struct PyScenario {
    inner: Arc<Scenario>,
    geography: Py<PyGeography>,
}

#[pymethods]
impl PyScenario {
    /// Generates a scenario from parameters (see `crowdtally.synth.scenario`).
    #[new]
    #[pyo3(signature = (**parameters))]
    fn new(py: Python<'_>, parameters: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let json = match parameters {
            Some(parameters) => py
                .import(intern!(py, "json"))?
                .call_method1(intern!(py, "dumps"), (parameters,))?
                .extract::<String>()?,
            None => "{}".to_owned(),
        };
        let config: ScenarioConfig = serde_json::from_str(&json).map_err(|e| {
            // serde names the unknown or mistyped parameter in its message.
            config_error("scenario", e)
        })?;
        let scenario = detach(py, move || Scenario::new(config))?;
        let geography = Py::new(
            py,
            PyGeography {
                inner: Arc::new(scenario.geography().clone()),
            },
        )?;
        Ok(Self {
            inner: Arc::new(scenario),
            geography,
        })
    }

    /// The study geography.
    #[getter]
    fn geography(&self, py: Python<'_>) -> Py<PyGeography> {
        self.geography.clone_ref(py)
    }

    /// The number of simulated people (customers or not).
    #[getter]
    fn people(&self) -> usize {
        self.inner.people()
    }

    /// The study period as (first date, day after the last).
    #[getter]
    fn period(&self) -> (String, String) {
        let p = self.inner.period();
        (p.start.to_string(), p.end.to_string())
    }

    /// People at full scale for this period (country and roamers).
    #[getter]
    fn people_at_full_scale(&self) -> f64 {
        self.inner.people_at_full_scale()
    }

    /// Expected distinct visitors at full scale for this period.
    #[getter]
    fn visitors_at_full_scale(&self) -> f64 {
        self.inner.visitors_at_full_scale()
    }

    /// The parameters, as a dict.
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(self.inner.config()).unwrap_or(serde_json::Value::Null);
        crate::json_to_py(py, &value)
    }

    /// The operator's customers per municipality where they live, as its billing counts
    /// them: the `subscribers=` of a release, known without reading the pings.
    fn subscribers(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.subscribers()
    }

    /// A run configuration with this scenario's period and a key derived from the seed.
    fn config(&self) -> PyConfig {
        PyConfig {
            inner: self.inner.run_config(),
            resolution: None,
        }
    }

    /// All observed pings as one table (held in memory).
    fn pings(&self, py: Python<'_>) -> PyResult<PyResultTable> {
        let scenario = Arc::clone(&self.inner);
        let batches = detach(py, move || {
            let batches: Result<Vec<_>, _> = scenario.batches(10_000).collect();
            Ok(batches?)
        })?;
        PyResultTable::from_batches(py, "pings", batches, self.inner.pings_schema())
    }

    /// The pings in batches of `people_per_batch` people, one table per batch.
    #[pyo3(signature = (people_per_batch=10_000))]
    fn iter_batches(&self, people_per_batch: usize) -> PingBatches {
        PingBatches {
            scenario: Arc::clone(&self.inner),
            step: people_per_batch.max(1),
            next: 0,
        }
    }

    /// The truth: {"persons": Table, "zone_days": Table}.
    fn truth<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let scenario = Arc::clone(&self.inner);
        let truth = detach(py, move || scenario.truth())?;
        let tables = PyDict::new(py);
        tables.set_item("persons", PyResultTable::new(py, "persons", truth.persons)?)?;
        tables.set_item(
            "zone_days",
            PyResultTable::new(py, "zone_days", truth.zone_days)?,
        )?;
        Ok(tables)
    }

    /// The merchants of the city's zones and the card payments of its people, driven by
    /// their true visits: {"merchants": Table, "payments": Table, "spend_by_zone": dict of
    /// the true spend in cents by zone id}.
    fn payments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let scenario = Arc::clone(&self.inner);
        let payments = detach(py, move || {
            let truth = scenario.truth()?;
            scenario.payments(&truth)
        })?;
        let tables = PyDict::new(py);
        tables.set_item(
            "merchants",
            PyResultTable::new(py, "merchants", payments.merchants)?,
        )?;
        tables.set_item(
            "payments",
            PyResultTable::new(py, "payments", payments.payments)?,
        )?;
        tables.set_item("spend_by_zone", payments.spend_by_zone)?;
        Ok(tables)
    }

    fn __repr__(&self) -> String {
        let (start, end) = self.period();
        format!(
            "Scenario(preset={:?}, people={}, period=('{start}', '{end}'), seed={})",
            self.inner.config().preset,
            self.inner.people(),
            self.inner.config().seed
        )
    }
}

/// An iterator of ping tables, one per batch of people.
#[pyclass(module = "crowdtally.synth")]
pub struct PingBatches {
    scenario: Arc<Scenario>,
    step: usize,
    next: usize,
}

#[pymethods]
impl PingBatches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<PyResultTable> {
        if self.next >= self.scenario.people() {
            return Err(PyStopIteration::new_err(()));
        }
        let (from, to) = (self.next, self.next + self.step);
        self.next = to;
        let scenario = Arc::clone(&self.scenario);
        let batch = detach(py, move || scenario.pings_of(from, to))?;
        PyResultTable::new(py, "pings", batch)
    }
}
