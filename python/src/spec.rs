//! `crowdtally.ReleaseSpec`: which table a release is (bucket, origin level, classes,
//! extrapolation inputs, roll-up), as keywords or as one object.

use std::collections::BTreeMap;

use crowdtally::{BucketKind, ReleaseClass, ReleaseSpec};
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
        roll_up=true,
    ))]
    fn new(
        bucket: &str,
        level: Option<String>,
        classes: Option<&Bound<'_, PyAny>>,
        subscribers: Option<&Bound<'_, PyAny>>,
        roaming_factors: Option<&Bound<'_, PyAny>>,
        roll_up: bool,
    ) -> PyResult<Self> {
        let keywords = SpecKeywords {
            bucket: Some(bucket),
            level,
            classes,
            subscribers,
            roaming_factors,
            roll_up: Some(roll_up),
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
             roaming_factors={{{}}}, roll_up={})",
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
