//! `crowdtally.Config`: the run's parameters, with secrets that never print or pickle.

use crowdtally::{Config, Key, OptOut, Period, SubscriberId};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};

use crate::errors::{CoreError, config_error};

/// The parameters of a run. Keyword-only; durations as seconds, strings such as
/// `"3h"` or `datetime.timedelta`; the period as a pair of dates (`datetime.date` or
/// `"YYYY-MM-DD"`), end exclusive.
#[pyclass(name = "Config", module = "crowdtally", frozen)]
pub struct PyConfig {
    pub(crate) inner: Config,
    /// The analysis resolution the caller expects, if given: the geography's is used,
    /// and a study refuses a configuration that expects another.
    pub(crate) resolution: Option<u8>,
}

/// A configuration's parameters for a repr: never its key or opt-out ids, only their
/// sizes.
pub(crate) fn describe(c: &Config) -> String {
    let period = c.period.map_or_else(
        || "None".to_owned(),
        |p| format!("('{}', '{}')", p.start, p.end),
    );
    format!(
        "key=<{} secret bytes>, period_label={:?}, tz={:?}, period={period}, \
         home_country={:?}, opt_out=<{} ids>, k={}, max_gap={}, min_dwell={}, min_nights={}, \
         usual_env_min_days={}",
        c.key.len(),
        c.period_label,
        c.tz,
        c.home_country,
        c.opt_out.len(),
        c.k,
        c.max_gap,
        c.min_dwell,
        c.min_nights,
        c.usual_env_min_days
            .map_or_else(|| "None".to_owned(), |d| d.to_string()),
    ) + &c.ledger.as_ref().map_or_else(String::new, |path| {
        format!(
            ", ledger={}, budget={}",
            crate::spec::quoted(&path.display().to_string()),
            c.budget
                .map_or_else(|| "None".to_owned(), |b| format!("{b:?}"))
        )
    })
}

fn key_of(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    if let Ok(bytes) = key.cast::<PyBytes>() {
        return Ok(Key::new(bytes.as_bytes().to_vec()));
    }
    if let Ok(text) = key.cast::<PyString>() {
        return Ok(Key::new(text.to_str()?.as_bytes().to_vec()));
    }
    Err(config_error("key", "must be bytes or str"))
}

fn date_of(field: &'static str, value: &Bound<'_, PyAny>) -> PyResult<jiff::civil::Date> {
    let text: String = if let Ok(text) = value.cast::<PyString>() {
        text.to_str()?.to_owned()
    } else if value.hasattr("isoformat")? && value.hasattr("year")? {
        // datetime.date (a datetime's date part is used).
        let date = if value.hasattr("date")? && value.hasattr("hour")? {
            value.call_method0("date")?
        } else {
            value.clone()
        };
        date.call_method0("isoformat")?.extract()?
    } else {
        return Err(config_error(
            field,
            "dates must be datetime.date or \"YYYY-MM-DD\"",
        ));
    };
    text.parse()
        .map_err(|_| config_error(field, format!("is not a date \"YYYY-MM-DD\": {text:?}")))
}

fn period_of(value: &Bound<'_, PyAny>) -> PyResult<Period> {
    let pair: Vec<Bound<'_, PyAny>> = value
        .try_iter()
        .map_err(|_| config_error("period", "must be a pair (start, end)"))?
        .collect::<PyResult<_>>()?;
    let [start, end] = &pair[..] else {
        return Err(config_error(
            "period",
            format!("must be a pair (start, end), got {} items", pair.len()),
        ));
    };
    Period::new(date_of("period", start)?, date_of("period", end)?).map_err(|e| CoreError(e).into())
}

/// Seconds from an int, a duration string or a `datetime.timedelta`.
pub(crate) fn seconds_of(field: &'static str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    if let Ok(text) = value.cast::<PyString>() {
        return crowdtally::parse_duration(field, text.to_str()?).map_err(|e| CoreError(e).into());
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map_err(|_| config_error(field, "is out of range"));
    }
    if value.hasattr("total_seconds")? {
        let seconds: f64 = value.call_method0("total_seconds")?.extract()?;
        if seconds.fract() != 0.0 {
            return Err(config_error(field, "must be a whole number of seconds"));
        }
        return Ok(seconds as i64);
    }
    Err(config_error(
        field,
        "must be seconds (int), a string such as \"3h\", or a timedelta",
    ))
}

fn int_of<T: TryFrom<i64>>(
    field: &'static str,
    value: &Bound<'_, PyAny>,
    rule: &str,
) -> PyResult<T> {
    if value.is_instance_of::<pyo3::types::PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(config_error(field, "must be an integer"));
    }
    let wide: i64 = value
        .extract()
        .map_err(|_| config_error(field, format!("must be {rule}")))?;
    T::try_from(wide).map_err(|_| config_error(field, format!("must be {rule}, got {wide}")))
}

fn opt_out_of(value: &Bound<'_, PyAny>) -> PyResult<OptOut> {
    let mut ids = Vec::new();
    for (index, item) in value
        .try_iter()
        .map_err(|_| config_error("opt_out", "must be an iterable of subscriber ids"))?
        .enumerate()
    {
        let item = item?;
        let id = if let Ok(text) = item.cast::<PyString>() {
            SubscriberId::Text(text.to_str()?.to_owned())
        } else if let Ok(bytes) = item.cast::<PyBytes>() {
            SubscriberId::Bytes(bytes.as_bytes().to_vec())
        } else if item.is_instance_of::<PyInt>() {
            SubscriberId::Integer(
                item.extract::<i128>()
                    .map_err(|_| config_error("opt_out", format!("id #{index} is out of range")))?,
            )
        } else {
            return Err(config_error(
                "opt_out",
                format!("id #{index} must be str, bytes or int"),
            ));
        };
        ids.push(id);
    }
    Ok(OptOut::new(ids))
}

#[pymethods]
impl PyConfig {
    #[new]
    #[pyo3(signature = (
        *, key, period_label=None, tz="Europe/Brussels", period=None, resolution=None,
        home_country="BE", opt_out=None, k=None, max_gap=None, min_dwell=None,
        min_nights=None, usual_env_min_days=None, ledger=None, budget=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: &Bound<'_, PyAny>,
        period_label: Option<String>,
        tz: &str,
        period: Option<&Bound<'_, PyAny>>,
        resolution: Option<&Bound<'_, PyAny>>,
        home_country: &str,
        opt_out: Option<&Bound<'_, PyAny>>,
        k: Option<&Bound<'_, PyAny>>,
        max_gap: Option<&Bound<'_, PyAny>>,
        min_dwell: Option<&Bound<'_, PyAny>>,
        min_nights: Option<&Bound<'_, PyAny>>,
        usual_env_min_days: Option<&Bound<'_, PyAny>>,
        ledger: Option<std::path::PathBuf>,
        budget: Option<f64>,
    ) -> PyResult<Self> {
        let mut config = Config::new(key_of(key)?);
        config.period_label = period_label;
        tz.clone_into(&mut config.tz);
        config.period = period.map(period_of).transpose()?;
        let resolution = resolution
            .map(|value| int_of::<u8>("resolution", value, "an H3 resolution from 0 to 15"))
            .transpose()?;
        if let Some(r) = resolution.filter(|&r| r > 15) {
            return Err(config_error(
                "resolution",
                format!("must be an H3 resolution from 0 to 15, got {r}"),
            ));
        }
        home_country.clone_into(&mut config.home_country);
        if let Some(value) = opt_out {
            config.opt_out = opt_out_of(value)?;
        }
        if let Some(value) = k {
            config.k = int_of("k", value, "at least 2")?;
        }
        if let Some(value) = max_gap {
            config.max_gap = seconds_of("max_gap", value)?;
        }
        if let Some(value) = min_dwell {
            config.min_dwell = seconds_of("min_dwell", value)?;
        }
        if let Some(value) = min_nights {
            config.min_nights = int_of("min_nights", value, "at least 1")?;
        }
        if let Some(value) = usual_env_min_days {
            config.usual_env_min_days = Some(int_of("usual_env_min_days", value, "at least 1")?);
        }
        config.ledger = ledger;
        config.budget = budget;
        config.validate().map_err(CoreError)?;
        Ok(Self {
            inner: config,
            resolution,
        })
    }

    /// The pseudonym period label, or None for the default (`YYYYQn` of the period start).
    #[getter]
    fn period_label(&self) -> Option<String> {
        self.inner.period_label.clone()
    }

    #[getter]
    fn tz(&self) -> String {
        self.inner.tz.clone()
    }

    #[getter]
    fn period(&self) -> Option<(String, String)> {
        self.inner
            .period
            .map(|p| (p.start.to_string(), p.end.to_string()))
    }

    /// The analysis resolution expected, or None: the geography's is used.
    #[getter]
    fn resolution(&self) -> Option<u8> {
        self.resolution
    }

    #[getter]
    fn home_country(&self) -> String {
        self.inner.home_country_code()
    }

    #[getter]
    fn k(&self) -> u32 {
        self.inner.k
    }

    #[getter]
    fn max_gap(&self) -> i64 {
        self.inner.max_gap
    }

    #[getter]
    fn min_dwell(&self) -> i64 {
        self.inner.min_dwell
    }

    #[getter]
    fn min_nights(&self) -> u32 {
        self.inner.min_nights
    }

    #[getter]
    fn usual_env_min_days(&self) -> Option<u32> {
        self.inner.usual_env_min_days
    }

    /// The ledger file that records every release of a period, or None.
    #[getter]
    fn ledger(&self) -> Option<std::path::PathBuf> {
        self.inner.ledger.clone()
    }

    /// The ρ a period may spend on differentially private releases, or None.
    #[getter]
    fn budget(&self) -> Option<f64> {
        self.inner.budget
    }

    /// How many ids the opt-out list holds (the ids themselves are never shown).
    #[getter]
    fn opt_out_count(&self) -> usize {
        self.inner.opt_out.len()
    }

    /// The parameters as a dict, without the key and the opt-out ids.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(&self.inner).unwrap_or(serde_json::Value::Null);
        crate::json_to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        let resolution = self
            .resolution
            .map_or_else(String::new, |r| format!(", resolution={r}"));
        format!("Config({}{resolution})", describe(&self.inner))
    }

    /// Pickling would write the key: refuse.
    #[allow(clippy::unused_self)] // Python calls it on the instance.
    fn __reduce__<'py>(&self, _py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Err(PyTypeError::new_err(
            "crowdtally.Config holds a secret key and cannot be pickled; build it where it is used",
        ))
    }
}
