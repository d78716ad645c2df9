//! `crowdtally.ReleaseSpec`: which table a release is (bucket, origin level, classes,
//! extrapolation inputs, roll-up), as keywords or as one object.

use std::collections::BTreeMap;

use crowdtally::{BucketKind, DpSpec, Privacy, ReleaseClass, ReleaseSpec};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::{CoreError, config_error};

fn classes_of(classes: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<ReleaseClass>> {
    let Some(classes) = classes.filter(|c| !c.is_none()) else {
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
    let Some(mapping) = mapping.filter(|m| !m.is_none()) else {
        return Ok(None);
    };
    // Any mapping (a dict, a pandas Series' to_dict, a MappingProxy) is read as a dict.
    let dict = match mapping.cast::<PyDict>() {
        Ok(dict) => dict.clone(),
        Err(_) if mapping.hasattr("items")? => {
            let dict = PyDict::new(mapping.py());
            for pair in mapping.call_method0("items")?.try_iter()? {
                let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
                dict.set_item(key, value)?;
            }
            dict
        }
        Err(_) => {
            return Err(config_error(
                field,
                format!("must be a dict of region or country id to {what}"),
            ));
        }
    };
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

/// The differential-privacy mode of a release (method §10): its budget `rho` (ρ, in
/// zero-concentrated DP; there is no default), the roamer `countries` with rows of
/// their own (others are counted in `other:abroad`), and each device's contribution
/// bounds: at most `max_partitions` (zone, bucket) pairs (default: the grid's, at most
/// 64), `max_visits` visits (default 3) and `max_dwell_s` seconds (default: the longest
/// bucket, at most 12 h) in each.
#[pyclass(name = "DP", module = "crowdtally", frozen)]
pub struct PyDp {
    pub(crate) inner: DpSpec,
}

#[pymethods]
impl PyDp {
    #[new]
    #[pyo3(signature = (rho, *, countries=None, max_partitions=None, max_visits=3, max_dwell_s=None))]
    fn new(
        rho: f64,
        countries: Option<Vec<String>>,
        max_partitions: Option<u32>,
        max_visits: u32,
        max_dwell_s: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut spec = DpSpec::new(rho);
        spec.countries = countries.unwrap_or_default();
        spec.max_partitions = max_partitions;
        spec.max_visits = max_visits;
        spec.max_dwell_s = max_dwell_s
            .map(|value| crate::config::seconds_of("max_dwell_s", value))
            .transpose()?;
        spec.validate().map_err(CoreError)?;
        Ok(Self { inner: spec })
    }

    #[getter]
    fn rho(&self) -> f64 {
        self.inner.rho
    }

    #[getter]
    fn countries(&self) -> Vec<String> {
        self.inner.countries.clone()
    }

    #[getter]
    fn max_partitions(&self) -> Option<u32> {
        self.inner.max_partitions
    }

    #[getter]
    fn max_visits(&self) -> u32 {
        self.inner.max_visits
    }

    #[getter]
    fn max_dwell_s(&self) -> Option<i64> {
        self.inner.max_dwell_s
    }

    fn __repr__(&self) -> String {
        let dp = &self.inner;
        let countries: Vec<String> = dp.countries.iter().map(|c| quoted(c)).collect();
        let optional = |value: Option<String>| value.unwrap_or_else(|| "None".to_owned());
        format!(
            "DP(rho={:?}, countries=[{}], max_partitions={}, max_visits={}, max_dwell_s={})",
            dp.rho,
            countries.join(", "),
            optional(dp.max_partitions.map(|m| m.to_string())),
            dp.max_visits,
            optional(dp.max_dwell_s.map(|d| d.to_string())),
        )
    }
}

/// The `privacy=` of a release: `None` or `"k_anonymity"` (the default), or a `DP`.
fn privacy_of(privacy: Option<&Bound<'_, PyAny>>) -> PyResult<Privacy> {
    let Some(privacy) = privacy.filter(|p| !p.is_none()) else {
        return Ok(Privacy::KAnonymity);
    };
    if let Ok(dp) = privacy.cast::<PyDp>() {
        return Ok(Privacy::DifferentialPrivacy(dp.get().inner.clone()));
    }
    if privacy
        .cast::<PyString>()
        .is_ok_and(|name| name.to_str().is_ok_and(|n| n == "k_anonymity"))
    {
        return Ok(Privacy::KAnonymity);
    }
    Err(config_error(
        "privacy",
        "must be \"k_anonymity\" (the default) or crowdtally.DP(rho=...)",
    ))
}

/// The keywords of one release, as the module-level `analyze` and `Study.release` take
/// them.
#[derive(Default)]
pub struct SpecKeywords<'a, 'py> {
    pub bucket: Option<&'a str>,
    pub level: Option<String>,
    pub classes: Option<&'a Bound<'py, PyAny>>,
    pub subscribers: Option<&'a Bound<'py, PyAny>>,
    pub roaming_factors: Option<&'a Bound<'py, PyAny>>,
    pub roll_up: Option<bool>,
    pub privacy: Option<&'a Bound<'py, PyAny>>,
    pub allow_differencing: bool,
}

impl SpecKeywords<'_, '_> {
    /// The spec, its types checked (its names are checked against a geography when it
    /// is used).
    pub fn spec(&self) -> PyResult<ReleaseSpec> {
        let mut spec = ReleaseSpec::default();
        if let Some(bucket) = self.bucket {
            spec.bucket = bucket.parse::<BucketKind>().map_err(CoreError)?;
        }
        spec.level.clone_from(&self.level);
        spec.classes = classes_of(self.classes)?;
        spec.subscribers =
            mapping_of::<u64>("subscribers", self.subscribers, "a non-negative integer")?;
        spec.roaming_factors =
            mapping_of::<f64>("roaming_factors", self.roaming_factors, "a number")?
                .unwrap_or_default();
        if let Some(roll_up) = self.roll_up {
            spec.roll_up = roll_up;
        }
        spec.privacy = privacy_of(self.privacy)?;
        spec.allow_differencing = self.allow_differencing;
        Ok(spec)
    }
}

/// Which table a release is: the time `bucket` (`hour`, `day`, `week`, `month`,
/// `quarter` or `period`), the origin `level` (a level name of the region tree; default
/// the leaves), the `classes` (`visitor`, or its parts `overnight_visitor` and
/// `day_visitor`, and `resident`, `regular`), the operator's `subscribers` per leaf
/// region (from billing; default detected), the `roaming_factors` per country code
/// (`"*"` for every other country), and whether below-k origin rows `roll_up` the region
/// tree.
#[pyclass(name = "ReleaseSpec", module = "crowdtally", frozen)]
pub struct PyReleaseSpec {
    pub(crate) inner: ReleaseSpec,
}

#[pymethods]
impl PyReleaseSpec {
    #[new]
    #[pyo3(signature = (
        bucket="period", level=None, classes=None, subscribers=None, roaming_factors=None, *,
        roll_up=true, privacy=None, allow_differencing=false,
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        bucket: &str,
        level: Option<String>,
        classes: Option<&Bound<'_, PyAny>>,
        subscribers: Option<&Bound<'_, PyAny>>,
        roaming_factors: Option<&Bound<'_, PyAny>>,
        roll_up: bool,
        privacy: Option<&Bound<'_, PyAny>>,
        allow_differencing: bool,
    ) -> PyResult<Self> {
        let keywords = SpecKeywords {
            bucket: Some(bucket),
            level,
            classes,
            subscribers,
            roaming_factors,
            roll_up: Some(roll_up),
            privacy,
            allow_differencing,
        };
        Ok(Self {
            inner: keywords.spec()?,
        })
    }

    #[getter]
    fn bucket(&self) -> &'static str {
        self.inner.bucket.name()
    }

    #[getter]
    fn level(&self) -> Option<String> {
        self.inner.level.clone()
    }

    #[getter]
    fn classes(&self) -> Vec<&'static str> {
        self.inner.classes.iter().map(|c| c.name()).collect()
    }

    #[getter]
    fn subscribers(&self) -> Option<BTreeMap<String, u64>> {
        self.inner.subscribers.clone()
    }

    #[getter]
    fn roaming_factors(&self) -> BTreeMap<String, f64> {
        self.inner.roaming_factors.clone()
    }

    #[getter]
    fn roll_up(&self) -> bool {
        self.inner.roll_up
    }

    /// `"k_anonymity"`, or the `DP` of a differentially private release.
    #[getter]
    fn privacy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.inner.privacy {
            Privacy::DifferentialPrivacy(dp) => {
                Ok(Py::new(py, PyDp { inner: dp.clone() })?.into_any())
            }
            _ => Ok(PyString::new(py, "k_anonymity").into_any().unbind()),
        }
    }

    #[getter]
    fn allow_differencing(&self) -> bool {
        self.inner.allow_differencing
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|other| other.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let spec = &self.inner;
        let classes: Vec<String> = self.classes().into_iter().map(quoted).collect();
        let factors: Vec<String> = spec
            .roaming_factors
            .iter()
            .map(|(code, factor)| format!("{}: {factor:?}", quoted(code)))
            .collect();
        format!(
            "ReleaseSpec(bucket={}, level={}, classes=[{}], subscribers={}, \
             roaming_factors={{{}}}, roll_up={}, privacy={}, allow_differencing={})",
            quoted(spec.bucket.name()),
            spec.level
                .as_deref()
                .map_or_else(|| "None".to_owned(), quoted),
            classes.join(", "),
            // Subscriber counts are the operator's confidential numbers: counted only.
            spec.subscribers
                .as_ref()
                .map_or_else(|| "None".to_owned(), |s| format!("<{} leaves>", s.len())),
            factors.join(", "),
            if spec.roll_up { "True" } else { "False" },
            match &spec.privacy {
                Privacy::DifferentialPrivacy(dp) => PyDp { inner: dp.clone() }.__repr__(),
                _ => quoted("k_anonymity"),
            },
            if spec.allow_differencing {
                "True"
            } else {
                "False"
            },
        )
    }
}

/// Text as a Python string literal in a repr.
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The specs of a `releases` call: `ReleaseSpec` objects, or dicts of their keywords.
pub fn specs_of(specs: &Bound<'_, PyAny>) -> PyResult<Vec<ReleaseSpec>> {
    let mut parsed = Vec::new();
    for item in specs
        .try_iter()
        .map_err(|_| config_error("specs", "must be a list of crowdtally.ReleaseSpec"))?
    {
        let item = item?;
        if let Ok(spec) = item.cast::<PyReleaseSpec>() {
            parsed.push(spec.get().inner.clone());
        } else if let Ok(keywords) = item.cast::<PyDict>() {
            let spec = item
                .py()
                .get_type::<PyReleaseSpec>()
                .call((), Some(keywords))?;
            parsed.push(spec.cast::<PyReleaseSpec>()?.get().inner.clone());
        } else {
            return Err(config_error(
                "specs",
                "must hold crowdtally.ReleaseSpec objects or dicts of their keywords",
            ));
        }
    }
    if parsed.is_empty() {
        return Err(config_error("specs", "must name at least one release"));
    }
    Ok(parsed)
}
