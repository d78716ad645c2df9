//! `crowdtally.Study`: one geography and one configuration, and every verb of the method
//! on pings (`prepare`, `profile`, `visits`, `release`, `releases`).

use std::sync::{Arc, OnceLock};

use crowdtally::{Release, ReleaseCut, ReleaseSpec, SpendSpec, Study};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::config::PyConfig;
use crate::engine::{EngineKeywords, PyEngine, RunArgs};
use crate::errors::{CoreError, config_error};
use crate::geography::PyGeography;
use crate::prepare::{PingSource, PyPrepared, columns_of};
use crate::spec::{SpecKeywords, specs_of};
use crate::table::PyResultTable;

/// One geography and one configuration, checked together once: every verb of the method
/// runs through it, and what it computes keeps it (a `Prepared` can only be released
/// with the geography and configuration it was located with).
///
/// `columns` maps the roles `subscriber`, `ts`, `lat`, `lon`, `cell`, `country` to your
/// column names. Machine settings (threads, memory budget, spill directory, progress)
/// are given per call as `engine=crowdtally.Engine(...)`.
#[pyclass(name = "Study", module = "crowdtally", frozen)]
pub struct PyStudy {
    pub(crate) inner: Study,
}

impl PyStudy {
    /// The study of a geography and a configuration, with column names.
    pub fn of(
        geography: &Bound<'_, PyGeography>,
        config: &Bound<'_, PyConfig>,
        columns: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Study> {
        let geography = Arc::clone(&geography.get().inner);
        let config = config.get();
        if let Some(resolution) = config.resolution
            && resolution != u8::from(geography.resolution())
        {
            return Err(config_error(
                "resolution",
                format!(
                    "is {resolution}, but the geography is at resolution {} (the analysis \
                     resolution is the geography's; leave resolution out of the Config)",
                    geography.resolution()
                ),
            ));
        }
        let study = Study::new(geography, config.inner.clone()).map_err(CoreError)?;
        Ok(study.with_columns(columns_of(columns)?))
    }

    /// The prepared pings of `pings` when they are a `Prepared` of this study.
    fn prepared<'py>(&self, pings: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyPrepared>>> {
        let Ok(prepared) = pings.cast::<PyPrepared>() else {
            return Ok(None);
        };
        check_same_study(&self.inner, prepared.get().prepared.study())?;
        Ok(Some(prepared.clone()))
    }
}

/// A prepared set of pings may only be used with the study it was located for.
pub fn check_same_study(asked: &Study, own: &Study) -> PyResult<()> {
    if !Arc::ptr_eq(asked.geography_arc(), own.geography_arc())
        && asked.geography() != own.geography()
    {
        return Err(config_error(
            "geography",
            "is not the geography the pings were prepared with: release a Prepared with its \
             own study (prepared.release(...))",
        ));
    }
    if asked.config() != own.config() {
        return Err(config_error(
            "config",
            "is not the configuration the pings were prepared with: release a Prepared with \
             its own study (prepared.release(...))",
        ));
    }
    Ok(())
}

/// Reads pings from any source into a run of `study` with the run's settings, then
/// finishes it with `finish`, all with the GIL released; Ctrl-C and the progress
/// callable are served between batches and shards.
pub fn run_study<T, F>(
    py: Python<'_>,
    pings: &Bound<'_, PyAny>,
    study: &Study,
    run: &mut RunArgs,
    finish: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(crowdtally::Run) -> crowdtally::Result<T> + Send,
{
    let source = PingSource::of(pings, run)?;
    // Tables in memory (pyarrow, polars...) say how many rows they hold.
    let in_memory = || pings.getattr(intern!(py, "num_rows")).ok()?.extract().ok();
    run.set_rows_total(source.rows_total().or_else(in_memory));
    let options = run.core_options();
    run.detach(py, move || {
        let mut reading = study.run(&options)?;
        source.push_into(&mut reading)?;
        finish(reading)
    })
}

/// A core release as a `crowdtally.Release`: its table and its report. Each of the
/// report's warnings is also raised as a `crowdtally.CrowdtallyWarning`, so that a
/// mistake shows where the release is made, not only in its report.
pub fn release_object(py: Python<'_>, release: Release) -> PyResult<Bound<'_, PyAny>> {
    let report = crate::json_to_py(py, &release.report.to_json())?;
    let warnings = release.report.warnings.clone();
    let batch = py
        .detach(move || release.to_record_batch())
        .map_err(CoreError)?;
    let table = PyResultTable::new(py, "release", batch)?;
    crate::warn_all(py, &warnings)?;
    py.import(intern!(py, "crowdtally.release"))?
        .getattr(intern!(py, "Release"))?
        .call1((table, report))
}

/// Several core releases as a list of `crowdtally.Release`.
pub fn release_list(py: Python<'_>, releases: Vec<Release>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for release in releases {
        list.append(release_object(py, release)?)?;
    }
    Ok(list)
}

#[pymethods]
impl PyStudy {
    #[new]
    #[pyo3(signature = (geography, config, *, columns=None))]
    fn new(
        geography: &Bound<'_, PyGeography>,
        config: &Bound<'_, PyConfig>,
        columns: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: Self::of(geography, config, columns)?,
        })
    }

    /// The geography.
    #[getter]
    fn geography(&self) -> PyGeography {
        PyGeography {
            inner: Arc::clone(self.inner.geography_arc()),
        }
    }

    /// The configuration (its key is never shown).
    #[getter]
    fn config(&self) -> PyConfig {
        PyConfig {
            inner: self.inner.config().clone(),
            resolution: None,
        }
    }

    /// The column names pings are read with, by role.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let columns = self.inner.columns();
        let dict = PyDict::new(py);
        for (role, name) in [
            ("subscriber", &columns.subscriber),
            ("ts", &columns.ts),
            ("lat", &columns.lat),
            ("lon", &columns.lon),
            ("cell", &columns.cell),
            ("country", &columns.country),
        ] {
            dict.set_item(role, name)?;
        }
        Ok(dict)
    }

    /// Cleans, pseudonymizes and locates pings (method §1–3), all in memory.
    #[pyo3(signature = (pings, *, engine=None))]
    fn prepare(
        &self,
        py: Python<'_>,
        pings: &Bound<'_, PyAny>,
        engine: Option<&Bound<'_, PyEngine>>,
    ) -> PyResult<PyPrepared> {
        let mut run = RunArgs::new(py, engine, &EngineKeywords::default())?;
        let prepared = run_study(py, pings, &self.inner, &mut run, crowdtally::Run::prepare)?;
        Ok(PyPrepared {
            prepared: Arc::new(prepared),
            table: OnceLock::new(),
        })
    }

    /// Per-device microdata (method §4). Pseudonymous, not anonymous: never publish it.
    #[pyo3(signature = (pings, *, engine=None))]
    fn profile(
        &self,
        py: Python<'_>,
        pings: &Bound<'_, PyAny>,
        engine: Option<&Bound<'_, PyEngine>>,
    ) -> PyResult<PyResultTable> {
        self.per_device(py, pings, engine, "devices")
    }

    /// Visits (method §5). Pseudonymous, not anonymous: never publish them.
    #[pyo3(signature = (pings, *, engine=None))]
    fn visits(
        &self,
        py: Python<'_>,
        pings: &Bound<'_, PyAny>,
        engine: Option<&Bound<'_, PyEngine>>,
    ) -> PyResult<PyResultTable> {
        self.per_device(py, pings, engine, "visits")
    }

    /// The whole method (§2–9) on pings: the protected release of one table.
    #[pyo3(signature = (
        pings, bucket="period", level=None, classes=None, subscribers=None,
        roaming_factors=None, *, roll_up=true, privacy=None, allow_differencing=false,
        engine=None,
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn release<'py>(
        &self,
        py: Python<'py>,
        pings: &Bound<'py, PyAny>,
        bucket: &str,
        level: Option<String>,
        classes: Option<&Bound<'py, PyAny>>,
        subscribers: Option<&Bound<'py, PyAny>>,
        roaming_factors: Option<&Bound<'py, PyAny>>,
        roll_up: bool,
        privacy: Option<&Bound<'py, PyAny>>,
        allow_differencing: bool,
        engine: Option<&Bound<'py, PyEngine>>,
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
        let mut releases = self.releases_of(py, pings, vec![spec], engine)?;
        release_object(py, releases.remove(0))
    }

    /// Spend per visitor: card payments joined to `release` (a `crowdtally.Release` of
    /// this study) and protected, as `crowdtally.spend` describes.
    #[pyo3(signature = (release, payments, *, by=None, p=10.0, min_merchants=3, visitor_class=None))]
    #[allow(clippy::too_many_arguments)] // One Python call's keywords.
    fn spend<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        release: &Bound<'py, PyAny>,
        payments: &Bound<'py, PyAny>,
        by: Option<&Bound<'py, PyAny>>,
        p: f64,
        min_merchants: u32,
        visitor_class: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keywords = PyDict::new(py);
        if let Some(by) = by {
            keywords.set_item("by", by)?;
        }
        keywords.set_item("p", p)?;
        keywords.set_item("min_merchants", min_merchants)?;
        keywords.set_item("visitor_class", visitor_class)?;
        py.import(intern!(py, "crowdtally.spend"))?
            .getattr(intern!(py, "spend_of_study"))?
            .call((slf, release, payments), Some(&keywords))
    }

    /// Several releases of the same pings, read once: `specs` is a list of
    /// `crowdtally.ReleaseSpec` (or dicts of their keywords).
    #[pyo3(signature = (pings, specs, *, engine=None))]
    fn releases<'py>(
        &self,
        py: Python<'py>,
        pings: &Bound<'py, PyAny>,
        specs: &Bound<'py, PyAny>,
        engine: Option<&Bound<'py, PyEngine>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let releases = self.releases_of(py, pings, specs_of(specs)?, engine)?;
        release_list(py, releases)
    }

    /// Raises a ConfigError naming `geography` or `config` when `other` is another
    /// study's (the check `analyze` makes before releasing a `Prepared`).
    fn _check_same(&self, other: &Bound<'_, Self>) -> PyResult<()> {
        check_same_study(&self.inner, &other.get().inner)
    }

    fn __repr__(&self) -> String {
        let geography = self.inner.geography();
        format!(
            "Study(resolution={}, zones={}, study_area={:?}, {})",
            geography.resolution(),
            geography.zones().len(),
            geography.study_area(),
            crate::config::describe(self.inner.config()),
        )
    }
}

impl PyStudy {
    /// A per-device table (`devices` or `visits`) of prepared or raw pings.
    fn per_device(
        &self,
        py: Python<'_>,
        pings: &Bound<'_, PyAny>,
        engine: Option<&Bound<'_, PyEngine>>,
        table: &'static str,
    ) -> PyResult<PyResultTable> {
        if let Some(prepared) = self.prepared(pings)? {
            return prepared.get().per_device(py, table);
        }
        let mut run = RunArgs::new(py, engine, &EngineKeywords::default())?;
        let finish = if table == "devices" {
            crowdtally::Run::devices
        } else {
            crowdtally::Run::visits
        };
        let batch = run_study(py, pings, &self.inner, &mut run, finish)?;
        PyResultTable::new(py, table, batch)
    }

    fn releases_of(
        &self,
        py: Python<'_>,
        pings: &Bound<'_, PyAny>,
        specs: Vec<ReleaseSpec>,
        engine: Option<&Bound<'_, PyEngine>>,
    ) -> PyResult<Vec<Release>> {
        // Checked before the (long) run and before any data are read, so a typo or a
        // release the ledger refuses fails at once.
        self.inner.authorize(&specs).map_err(CoreError)?;
        if let Some(prepared) = self.prepared(pings)? {
            let prepared = Arc::clone(&prepared.get().prepared);
            return py
                .detach(move || prepared.releases(&specs))
                .map_err(|e| CoreError(e).into());
        }
        let mut run = RunArgs::new(py, engine, &EngineKeywords::default())?;
        run_study(py, pings, &self.inner, &mut run, move |reading| {
            reading.releases(&specs)
        })
    }
}

/// Spend per visitor (`crowdtally.spend`): card-payment aggregates joined to a release
/// (its table and its report's parameters as JSON) and protected. Returns the spend
/// table and its report.
#[pyfunction]
#[pyo3(name = "_spend", signature = (study, release_table, release_parameters, payments, *, by, p, min_merchants, visitor_class=None))]
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)] // One Python call's keywords, extracted as owned values.
pub fn spend<'py>(
    py: Python<'py>,
    study: &Bound<'py, PyStudy>,
    release_table: &Bound<'py, PyAny>,
    release_parameters: &str,
    payments: &Bound<'py, PyAny>,
    by: Vec<String>,
    p: f64,
    min_merchants: u32,
    visitor_class: Option<String>,
) -> PyResult<(PyResultTable, Bound<'py, PyAny>)> {
    let by: Vec<&str> = by.iter().map(String::as_str).collect();
    let mut spec = SpendSpec::by(&by).map_err(CoreError)?;
    spec.p = p;
    spec.min_merchants = min_merchants;
    spec.class = visitor_class
        .map(|name| name.parse())
        .transpose()
        .map_err(CoreError)?;
    spec.validate().map_err(CoreError)?;
    let parameters: serde_json::Value = serde_json::from_str(release_parameters)
        .map_err(|e| crate::errors::input_error("release", e))?;
    let cut = ReleaseCut::from_parameters(&parameters).map_err(CoreError)?;
    let release_batches = crate::convert::batches("release", release_table)?;
    let payments = crate::convert::batches("payments", payments)?;
    let study = study.get().inner.clone();
    let spend = py
        .detach(move || {
            let schema = release_batches
                .first()
                .map_or_else(Release::schema, arrow_array::RecordBatch::schema);
            let release = arrow_select::concat::concat_batches(&schema, &release_batches)?;
            let rows = crowdtally::spend::release_rows(&release)?;
            study.spend_of_rows(&rows, &cut, payments.into_iter().map(Ok), &spec)
        })
        .map_err(CoreError)?;
    let report =
        serde_json::to_value(&spend.report).map_err(|e| crate::errors::input_error("spend", e))?;
    let report = crate::json_to_py(py, &report)?;
    let batch = spend.to_record_batch().map_err(CoreError)?;
    Ok((PyResultTable::new(py, "spend", batch)?, report))
}
