//! `crowdtally.distributed`: the plan, mappers, reducers and partials of a run on a
//! cluster (crowdtally.spark drives them on Spark).

use std::sync::Arc;

use crowdtally::distributed::{Mapper, Plan, Reducer, Scanner};
use crowdtally::{Key, SubscriberKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyRecordBatch, PySchema};

use crate::config::PyConfig;
use crate::engine::{EngineKeywords, PyEngine, RunArgs};
use crate::errors::{CoreError, config_error, detach};
use crate::geography::PyGeography;
use crate::spec::specs_of;
use crate::study::{PyStudy, release_list};

/// A key shipped to the workers inside the job itself (`crowdtally.ShipKey()`): its bytes
/// travel with the tasks, so only use it where the engine authenticates and encrypts its
/// traffic. Never shown; pickled only to reach the workers.
#[pyclass(name = "ShippedKey", module = "crowdtally.distributed", frozen)]
pub struct PyShippedKey {
    key: Key,
}

#[pymethods]
impl PyShippedKey {
    /// The key of a configuration, to ship.
    #[staticmethod]
    fn of(config: &Bound<'_, PyConfig>) -> Self {
        Self {
            key: config.get().inner.key.clone(),
        }
    }

    #[staticmethod]
    fn _from_bytes(data: &[u8]) -> Self {
        Self {
            key: Key::new(data.to_vec()),
        }
    }

    fn __repr__(&self) -> String {
        format!("ShippedKey(<{} secret bytes>)", self.key.len())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let rebuild = slf.get_type().getattr("_from_bytes")?;
        let bytes = PyBytes::new(py, slf.get().key.expose_secret());
        PyTuple::new(py, [rebuild, PyTuple::new(py, [bytes])?.into_any()])
    }
}

/// A key given to a worker: bytes, text (its UTF-8 bytes) or a shipped key.
fn key_of(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    if let Ok(shipped) = key.cast::<PyShippedKey>() {
        return Ok(shipped.get().key.clone());
    }
    if let Ok(bytes) = key.cast::<PyBytes>() {
        return Ok(Key::new(bytes.as_bytes().to_vec()));
    }
    if let Ok(text) = key.cast::<PyString>() {
        return Ok(Key::new(text.to_str()?.as_bytes().to_vec()));
    }
    Err(config_error(
        "key",
        "must be bytes, str or a crowdtally.ShipKey's key",
    ))
}

fn batch_of(batch: &Bound<'_, PyAny>) -> PyResult<Vec<arrow_array::RecordBatch>> {
    let reader = batch.extract::<AnyRecordBatch>()?.into_reader()?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CoreError(e.into()).into())
}

fn to_pyarrow(py: Python<'_>, batch: arrow_array::RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    PyRecordBatch::new(batch).into_pyarrow(py)
}

fn kind_name(kind: Option<SubscriberKind>) -> Option<&'static str> {
    kind.map(|kind| match kind {
        SubscriberKind::Text => "text",
        SubscriberKind::Binary => "binary",
        SubscriberKind::Integer => "integer",
    })
}

/// The plan of a distributed run: the configuration without its key (opt-out ids as
/// keyed digests), the period and its label, and the tables to aggregate. It pickles:
/// it is what the workers are sent.
#[pyclass(name = "Plan", module = "crowdtally.distributed", frozen)]
pub struct PyPlan {
    inner: Plan,
}

#[pymethods]
impl PyPlan {
    /// The plan of `specs` (`ReleaseSpec` objects or dicts) over `study`'s pings; the
    /// releases are checked, against the ledger too, before any data are read. Without
    /// `specs`, a plan of no release, for the devices or visits tables of reducers.
    #[new]
    #[pyo3(signature = (study, specs=None))]
    fn new(study: &Bound<'_, PyStudy>, specs: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let specs = specs.map(specs_of).transpose()?.unwrap_or_default();
        let inner = Plan::new(&study.get().inner, &specs).map_err(CoreError)?;
        Ok(Self { inner })
    }

    /// Whether the period must first be found by a scan of the input.
    fn needs_scan(&self) -> bool {
        self.inner.needs_scan()
    }

    /// The plan with the period of the data: from the first to the last instant of its
    /// valid pings (both None when it has none).
    #[pyo3(signature = (first, last))]
    fn with_span(&self, first: Option<i64>, last: Option<i64>) -> PyResult<Self> {
        let span = first.zip(last);
        let inner = self.inner.clone().with_span(span).map_err(CoreError)?;
        Ok(Self { inner })
    }

    /// The period (first date, day after the last), once known.
    #[getter]
    fn period(&self) -> Option<(String, String)> {
        self.inner
            .period()
            .map(|p| (p.start.to_string(), p.end.to_string()))
    }

    /// The pseudonym label, once the period is known.
    #[getter]
    fn label(&self) -> Option<String> {
        self.inner.label().map(str::to_owned)
    }

    /// Checks the input's schema (a pyarrow schema) on the driver, and gives the kind of
    /// its subscriber ids (`text`, `binary`, `integer`, or None for a column of nulls).
    fn input_kind(
        &self,
        study: &Bound<'_, PyStudy>,
        schema: PySchema,
    ) -> PyResult<Option<&'static str>> {
        let kind = self
            .inner
            .input_kind(&study.get().inner, &schema.into_inner())
            .map_err(CoreError)?;
        Ok(kind_name(kind))
    }

    /// The plan as JSON.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// A plan from its JSON.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let inner = Plan::from_json(text).map_err(CoreError)?;
        Ok(Self { inner })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let rebuild = slf.get_type().getattr("from_json")?;
        let json = PyString::new(py, &slf.get().inner.to_json());
        PyTuple::new(py, [rebuild, PyTuple::new(py, [json])?.into_any()])
    }

    fn __repr__(&self) -> String {
        format!(
            "Plan(period={:?}, label={:?}, tables={}, needs_scan={})",
            self.period(),
            self.inner.label(),
            self.inner.tables().len(),
            if self.inner.needs_scan() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// The first pass when no period is given: the span of a part's valid pings.
#[pyclass(name = "Scanner", module = "crowdtally.distributed")]
pub struct PyScanner {
    inner: Scanner,
}

#[pymethods]
impl PyScanner {
    #[new]
    #[pyo3(signature = (plan, geography, key, *, threads=1))]
    fn new(
        plan: &Bound<'_, PyPlan>,
        geography: &Bound<'_, PyGeography>,
        key: &Bound<'_, PyAny>,
        threads: usize,
    ) -> PyResult<Self> {
        let geography = Arc::clone(&geography.get().inner);
        let inner =
            Scanner::new(&plan.get().inner, geography, key_of(key)?, threads).map_err(CoreError)?;
        Ok(Self { inner })
    }

    /// Reads a batch (or any Arrow table) of raw pings.
    fn push(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        for batch in batch_of(batch)? {
            let scanner = &mut self.inner;
            detach(py, || scanner.push(&batch))?;
        }
        Ok(())
    }

    /// The span so far as (first, last) epoch seconds, or None.
    fn span(&self) -> Option<(i64, i64)> {
        self.inner.span()
    }

    /// The span as a one-row pyarrow RecordBatch (`first`, `last`).
    fn span_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_pyarrow(py, self.inner.span_batch().map_err(CoreError)?)
    }
}

/// The map side: raw pings in, pseudonymous pings out (no raw id), counter rows at the
/// end.
#[pyclass(name = "Mapper", module = "crowdtally.distributed")]
pub struct PyMapper {
    inner: Option<Mapper>,
}

impl PyMapper {
    fn mapper(&mut self) -> PyResult<&mut Mapper> {
        self.inner
            .as_mut()
            .ok_or_else(|| config_error("mapper", "is finished: make a new one"))
    }
}

#[pymethods]
impl PyMapper {
    #[new]
    #[pyo3(signature = (plan, geography, key, *, threads=1))]
    fn new(
        plan: &Bound<'_, PyPlan>,
        geography: &Bound<'_, PyGeography>,
        key: &Bound<'_, PyAny>,
        threads: usize,
    ) -> PyResult<Self> {
        let geography = Arc::clone(&geography.get().inner);
        let inner =
            Mapper::new(&plan.get().inner, geography, key_of(key)?, threads).map_err(CoreError)?;
        Ok(Self { inner: Some(inner) })
    }

    /// The kept pings of a batch of raw pings, pseudonymized, as pyarrow RecordBatches
    /// (one per batch of the input).
    fn map<'py>(
        &mut self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for batch in batch_of(batch)? {
            let mapper = self.mapper()?;
            let mapped = detach(py, || mapper.map(&batch))?;
            out.append(to_pyarrow(py, mapped)?)?;
        }
        Ok(out)
    }

    /// The counter rows of the part, as a pyarrow RecordBatch; the mapper is finished.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mapper = self
            .inner
            .take()
            .ok_or_else(|| config_error("mapper", "is finished already"))?;
        to_pyarrow(py, detach(py, || mapper.finish())?)
    }
}

/// The reduce side: pseudonymous pings of whole devices in, additive partials out.
#[pyclass(name = "Reducer", module = "crowdtally.distributed")]
pub struct PyReducer {
    inner: Option<Reducer>,
}

#[pymethods]
impl PyReducer {
    #[new]
    #[pyo3(signature = (plan, geography, key, *, engine=None))]
    fn new(
        py: Python<'_>,
        plan: &Bound<'_, PyPlan>,
        geography: &Bound<'_, PyGeography>,
        key: &Bound<'_, PyAny>,
        engine: Option<&Bound<'_, PyEngine>>,
    ) -> PyResult<Self> {
        let run = RunArgs::new(py, engine, &EngineKeywords::default())?;
        let geography = Arc::clone(&geography.get().inner);
        let inner = Reducer::new(
            &plan.get().inner,
            geography,
            key_of(key)?,
            &run.core_options(),
        )
        .map_err(CoreError)?;
        Ok(Self { inner: Some(inner) })
    }

    /// Reads a batch (or any Arrow table) of pseudonymous pings and counter rows.
    fn push(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        for batch in batch_of(batch)? {
            let reducer = self
                .inner
                .as_mut()
                .ok_or_else(|| config_error("reducer", "is finished: make a new one"))?;
            detach(py, || reducer.push(&batch))?;
        }
        Ok(())
    }

    /// The partials of the devices read, as a pyarrow RecordBatch; the reducer is
    /// finished.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reducer = self.take()?;
        to_pyarrow(py, detach(py, || reducer.finish())?)
    }

    /// The devices table of the devices read (`Study.devices`' rows for them), as a
    /// pyarrow RecordBatch; the reducer is finished.
    fn devices<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reducer = self.take()?;
        to_pyarrow(py, detach(py, || reducer.devices())?)
    }

    /// The visits table of the devices read (`Study.visits`' rows for them), as a
    /// pyarrow RecordBatch; the reducer is finished.
    fn visits<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reducer = self.take()?;
        to_pyarrow(py, detach(py, || reducer.visits())?)
    }
}

impl PyReducer {
    fn take(&mut self) -> PyResult<Reducer> {
        self.inner
            .take()
            .ok_or_else(|| config_error("reducer", "is finished already"))
    }
}

/// The releases of `specs` (the plan's) from partials (pyarrow tables or batches,
/// summed by key or not): disclosure control or noise, extrapolation, the report and
/// the ledger, once, here. `input_kind` is `Plan.input_kind`'s answer.
#[pyfunction]
#[pyo3(signature = (study, plan, specs, partials, input_kind=None))]
pub fn finish_partials<'py>(
    py: Python<'py>,
    study: &Bound<'py, PyStudy>,
    plan: &Bound<'py, PyPlan>,
    specs: &Bound<'py, PyAny>,
    partials: &Bound<'py, PyAny>,
    input_kind: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let specs = specs_of(specs)?;
    let kind = match input_kind {
        None => None,
        Some("text") => Some(SubscriberKind::Text),
        Some("binary") => Some(SubscriberKind::Binary),
        Some("integer") => Some(SubscriberKind::Integer),
        Some(other) => {
            return Err(PyTypeError::new_err(format!(
                "input_kind must be 'text', 'binary', 'integer' or None, got {other:?}"
            )));
        }
    };
    let mut batches = Vec::new();
    for part in partials.try_iter()? {
        batches.extend(batch_of(&part?)?);
    }
    let study = study.get().inner.clone();
    let plan = plan.get().inner.clone();
    let releases = detach(py, move || {
        crowdtally::distributed::finish(&study, &plan, &specs, &batches, kind)
    })?;
    release_list(py, releases)
}

/// The Arrow schemas of the distributed run, by name: `pseudonymous` (what mappers
/// give), `partials` (what reducers give), `span` (what scanners give), and `devices`
/// and `visits` (what reducers give instead of partials).
#[pyfunction]
pub fn distributed_schemas(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let schemas = pyo3::types::PyDict::new(py);
    for (name, schema) in [
        (
            "pseudonymous",
            crowdtally::distributed::pseudonymous_schema(),
        ),
        ("partials", crowdtally::distributed::partials_schema()),
        ("span", crowdtally::distributed::span_schema()),
        ("devices", crowdtally::profile::Profiles::devices_schema()),
        ("visits", crowdtally::profile::Profiles::visits_schema()),
    ] {
        schemas.set_item(name, PySchema::new(Arc::clone(&schema)).into_pyarrow(py)?)?;
    }
    Ok(schemas)
}
