//! The run's parameters and their validation (method §1.4, §2, §3 and the defaults of
//! the later stages).
//!
//! [`Config::validate`] runs before any work and names the offending field. The key and
//! the opt-out list are secrets: `Debug` shows only their sizes and serialisation skips
//! them.

use std::collections::HashSet;
use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::error::{Error, Result};
use crate::pseudonym::{Key, validate_period_label};

/// The study period `[start, end)` in local dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// The first local date of the period.
    pub start: Date,
    /// The local date after the last one (exclusive).
    pub end: Date,
}

impl Period {
    /// A period from `start` (inclusive) to `end` (exclusive).
    ///
    /// # Errors
    /// [`Error::Config`] naming `period` when `end` is not after `start`.
    pub fn new(start: Date, end: Date) -> Result<Self> {
        let period = Self { start, end };
        period.validate()?;
        Ok(period)
    }

    fn validate(self) -> Result<()> {
        if self.end <= self.start {
            return Err(Error::config(
                "period",
                format!(
                    "must end after it starts, got [{}, {})",
                    self.start, self.end
                ),
            ));
        }
        Ok(())
    }

    /// The number of days `D_p`.
    #[must_use]
    pub fn days(&self) -> i64 {
        i64::from((self.end - self.start).get_days())
    }

    /// The default period label: `YYYYQn` of the start date.
    #[must_use]
    pub fn default_label(&self) -> String {
        let quarter = (self.start.month() - 1) / 3 + 1;
        format!("{}Q{quarter}", self.start.year())
    }
}

/// One raw subscriber id in an opt-out list, of the kind the user gave it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SubscriberId {
    /// A text id (IMSI, MSISDN, ...).
    Text(String),
    /// A binary id, as its bytes.
    Bytes(Vec<u8>),
    /// An integer id.
    Integer(i128),
}

impl fmt::Debug for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Raw ids never print.
        let kind = match self {
            Self::Text(_) => "Text",
            Self::Bytes(_) => "Bytes",
            Self::Integer(_) => "Integer",
        };
        write!(f, "SubscriberId::{kind}(<redacted>)")
    }
}

/// The kind of a subscriber column, which fixes how ids become bytes (§3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberKind {
    /// UTF-8 strings: their bytes.
    Text,
    /// Binary values: as they are.
    Binary,
    /// Non-negative 64-bit integers: 8 big-endian bytes.
    Integer,
}

/// The set of raw subscriber ids whose pings are dropped before any other step.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OptOut {
    ids: Vec<SubscriberId>,
}

impl OptOut {
    /// An opt-out set from raw ids.
    #[must_use]
    pub fn new(ids: Vec<SubscriberId>) -> Self {
        Self { ids }
    }

    /// How many ids the set holds (as given, duplicates included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids as `subscriber_bytes` (§3) for a column of the given kind: text for text,
    /// bytes for binary; for an integer column, text ids are read as integers.
    ///
    /// # Errors
    /// [`Error::Config`] naming `opt_out` when an id is not of the column's kind. The
    /// message gives the id's position in the list, never its value.
    pub fn subscriber_bytes(&self, kind: SubscriberKind) -> Result<HashSet<Vec<u8>>> {
        let mismatch = |index: usize, what: &str| {
            Error::config(
                "opt_out",
                format!("id #{index} is {what}, but the subscriber column is {kind:?}"),
            )
        };
        self.ids
            .iter()
            .enumerate()
            .map(|(index, id)| match (kind, id) {
                (SubscriberKind::Text, SubscriberId::Text(text)) => Ok(text.as_bytes().to_vec()),
                (SubscriberKind::Binary, SubscriberId::Bytes(bytes)) => Ok(bytes.clone()),
                (SubscriberKind::Integer, SubscriberId::Integer(value)) => u64::try_from(*value)
                    .map(|v| v.to_be_bytes().to_vec())
                    .map_err(|_| mismatch(index, "not a non-negative 64-bit integer")),
                (SubscriberKind::Integer, SubscriberId::Text(text)) => text
                    .trim()
                    .parse::<u64>()
                    .map(|v| v.to_be_bytes().to_vec())
                    .map_err(|_| mismatch(index, "text that is not a non-negative integer")),
                (_, SubscriberId::Text(_)) => Err(mismatch(index, "text")),
                (_, SubscriberId::Bytes(_)) => Err(mismatch(index, "binary")),
                (_, SubscriberId::Integer(_)) => Err(mismatch(index, "an integer")),
            })
            .collect()
    }
}

impl fmt::Debug for OptOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OptOut(<{} ids>)", self.ids.len())
    }
}

/// The parameters of a run, with the method's defaults.
///
/// ```
/// use crowdtally::{Config, Key};
///
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// config.validate()?;
/// assert_eq!(config.k, 30);
/// assert_eq!(config.max_gap, 3 * 3600);
/// # Ok::<(), crowdtally::Error>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// The pseudonymization key, at least 16 bytes. Never serialised or shown.
    #[serde(skip_serializing)]
    pub key: Key,
    /// The label that rotates pseudonyms; default `YYYYQn` of the period's start.
    pub period_label: Option<String>,
    /// The IANA time zone of every calendar notion.
    pub tz: String,
    /// The study period in local dates; default from the data (§1.4).
    pub period: Option<Period>,
    /// The operator's own country (ISO 3166-1 alpha-2).
    pub home_country: String,
    /// Raw subscriber ids whose pings are dropped first. Never serialised or shown.
    #[serde(skip)]
    pub opt_out: OptOut,
    /// The disclosure threshold on observed devices.
    pub k: u32,
    /// The longest gap in seconds between two pings of one visit.
    pub max_gap: i64,
    /// The shortest dwell in seconds for a visit to qualify.
    pub min_dwell: i64,
    /// The fewest nights of presence that make a home.
    pub min_nights: u32,
    /// Presence days that make the study area part of a usual environment; default
    /// `max(5, ceil(D_p / 4))`.
    pub usual_env_min_days: Option<u32>,
    /// The ledger file that records every release of a period (§10); `None`: releases
    /// are not recorded.
    pub ledger: Option<std::path::PathBuf>,
    /// The ρ a period may spend on differentially private releases in the ledger; there
    /// is no default.
    pub budget: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: Key::default(),
            period_label: None,
            tz: "Europe/Brussels".to_owned(),
            period: None,
            home_country: "BE".to_owned(),
            opt_out: OptOut::default(),
            k: 30,
            max_gap: 3 * 3600,
            min_dwell: 0,
            min_nights: 3,
            usual_env_min_days: None,
            ledger: None,
            budget: None,
        }
    }
}

impl Config {
    /// A configuration with the method's defaults and the given key.
    #[must_use]
    pub fn new(key: Key) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// Checks every field, naming the first one at fault.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field: `key` shorter than 16 bytes, `period_label`
    /// empty or with a NUL, unknown `tz`, `period` not increasing,
    /// `home_country` not two ASCII letters, `k` < 2, non-positive `max_gap`, negative
    /// `min_dwell`, `min_nights` < 1, `usual_env_min_days` < 1, `budget` not positive or
    /// without a ledger.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        if let Some(label) = &self.period_label {
            validate_period_label(label)?;
        }
        Calendar::new(&self.tz)?;
        if let Some(period) = &self.period {
            period.validate()?;
        }
        if self.home_country.len() != 2
            || !self.home_country.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(Error::config(
                "home_country",
                format!(
                    "must be an ISO 3166-1 alpha-2 code, got {:?}",
                    self.home_country
                ),
            ));
        }
        if self.k < 2 {
            return Err(Error::config(
                "k",
                format!("must be at least 2, got {}", self.k),
            ));
        }
        if self.max_gap <= 0 {
            return Err(Error::config(
                "max_gap",
                format!("must be positive, got {} s", self.max_gap),
            ));
        }
        if self.min_dwell < 0 {
            return Err(Error::config(
                "min_dwell",
                format!("must not be negative, got {} s", self.min_dwell),
            ));
        }
        if self.min_nights < 1 {
            return Err(Error::config("min_nights", "must be at least 1, got 0"));
        }
        if self.usual_env_min_days == Some(0) {
            return Err(Error::config(
                "usual_env_min_days",
                "must be at least 1, got 0",
            ));
        }
        if let Some(budget) = self.budget
            && !(budget.is_finite() && budget > 0.0)
        {
            return Err(Error::config(
                "budget",
                format!("must be a positive number (a ρ), got {budget}"),
            ));
        }
        if self.budget.is_some() && self.ledger.is_none() {
            return Err(Error::config(
                "budget",
                "needs a ledger (ledger=path) to be spent against",
            ));
        }
        Ok(())
    }

    /// The home country, upper-cased.
    #[must_use]
    pub fn home_country_code(&self) -> String {
        self.home_country.to_ascii_uppercase()
    }

    /// The usual-environment threshold for a period of `days` days.
    #[must_use]
    pub fn usual_env_min_days_for(&self, days: i64) -> i64 {
        self.usual_env_min_days
            .map_or_else(|| (days.max(0) + 3).div_euclid(4).max(5), i64::from)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("key", &self.key)
            .field("period_label", &self.period_label)
            .field("tz", &self.tz)
            .field("period", &self.period)
            .field("home_country", &self.home_country)
            .field("opt_out", &self.opt_out)
            .field("k", &self.k)
            .field("max_gap", &self.max_gap)
            .field("min_dwell", &self.min_dwell)
            .field("min_nights", &self.min_nights)
            .field("usual_env_min_days", &self.usual_env_min_days)
            .field("ledger", &self.ledger)
            .field("budget", &self.budget)
            .finish()
    }
}

/// Parses a duration: whole seconds (`"90"`), or numbers with units `d`, `h`, `m`/`min`,
/// `s`, possibly compound (`"1h30m"`).
///
/// # Errors
/// [`Error::Config`] naming `field` when the text is not such a duration.
pub fn parse_duration(field: &'static str, text: &str) -> Result<i64> {
    let invalid = || {
        Error::config(
            field,
            format!("is not a duration such as \"3h\", \"45min\" or \"90s\": {text:?}"),
        )
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let value: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_seconds = match &rest[..unit_len] {
            "d" => 86_400,
            "h" => 3_600,
            "m" | "min" => 60,
            "s" => 1,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = value
            .checked_mul(unit_seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
    }
    Ok(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config::new(Key::new(b"0123456789abcdef".to_vec()))
    }

    #[test]
    fn defaults_validate() {
        valid().validate().unwrap();
    }

    #[test]
    fn each_invalid_field_is_named() {
        type Breaker = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("key", Box::new(|c| c.key = Key::new(b"too short".to_vec()))),
            (
                "period_label",
                Box::new(|c| c.period_label = Some(String::new())),
            ),
            ("tz", Box::new(|c| c.tz = "Europe/Nowhere".into())),
            (
                "period",
                Box::new(|c| {
                    c.period = Some(Period {
                        start: jiff::civil::date(2026, 7, 2),
                        end: jiff::civil::date(2026, 7, 1),
                    });
                }),
            ),
            ("home_country", Box::new(|c| c.home_country = "BEL".into())),
            ("k", Box::new(|c| c.k = 1)),
            ("max_gap", Box::new(|c| c.max_gap = 0)),
            ("min_dwell", Box::new(|c| c.min_dwell = -1)),
            ("min_nights", Box::new(|c| c.min_nights = 0)),
            (
                "usual_env_min_days",
                Box::new(|c| c.usual_env_min_days = Some(0)),
            ),
            ("budget", Box::new(|c| c.budget = Some(1.0))),
            (
                "budget",
                Box::new(|c| {
                    c.ledger = Some("ledger.json".into());
                    c.budget = Some(-1.0);
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut config = valid();
            break_it(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
            assert!(err.to_string().contains(field));
            assert!(!err.to_string().contains("0123456789abcdef"));
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("max_gap", "3h").unwrap(), 10_800);
        assert_eq!(parse_duration("max_gap", "1h30m").unwrap(), 5_400);
        assert_eq!(parse_duration("max_gap", "45min").unwrap(), 2_700);
        assert_eq!(parse_duration("max_gap", "90").unwrap(), 90);
        assert_eq!(parse_duration("max_gap", "2d").unwrap(), 172_800);
        assert_eq!(parse_duration("min_dwell", "-5s").unwrap(), -5);
        for bad in ["", "h", "3 hours", "3x", "1.5h"] {
            assert_eq!(
                parse_duration("max_gap", bad).unwrap_err().field(),
                Some("max_gap")
            );
        }
    }

    #[test]
    fn usual_environment_default_follows_the_method() {
        let config = valid();
        assert_eq!(config.usual_env_min_days_for(92), 23);
        assert_eq!(config.usual_env_min_days_for(7), 5);
        assert_eq!(config.usual_env_min_days_for(30), 8);
    }

    #[test]
    fn debug_and_serialisation_hide_secrets() {
        let mut config = valid();
        config.opt_out = OptOut::new(vec![SubscriberId::Text("206019999".into())]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"));
        assert!(!shown.contains("206019999"));
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("0123456789abcdef"));
        assert!(!json.contains("206019999"));
    }

    #[test]
    fn opt_out_ids_follow_the_column_kind() {
        let opt_out = OptOut::new(vec![
            SubscriberId::Text("42".into()),
            SubscriberId::Integer(7),
        ]);
        let bytes = opt_out.subscriber_bytes(SubscriberKind::Integer).unwrap();
        assert!(bytes.contains(42_u64.to_be_bytes().as_slice()));
        assert!(bytes.contains(7_u64.to_be_bytes().as_slice()));
        let err = opt_out.subscriber_bytes(SubscriberKind::Text).unwrap_err();
        assert_eq!(err.field(), Some("opt_out"));
        assert!(!err.to_string().contains('7'));
    }
}
