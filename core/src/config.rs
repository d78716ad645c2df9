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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
///
/// On the machine that has the list it holds the raw ids; where they must not travel
/// (the workers of a distributed run) it holds only their keyed digests for each kind
/// of subscriber column ([`OptOut::digests`], [`OptOut::from_digests`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OptOut {
    listed: Listed,
}

#[derive(Clone, PartialEq, Eq)]
enum Listed {
    Ids(Vec<SubscriberId>),
    Digests(OptOutDigests),
}

impl Default for Listed {
    fn default() -> Self {
        Self::Ids(Vec::new())
    }
}

/// An opt-out list as keyed digests, for each kind of subscriber column: the ids as
/// [`OptOut::subscriber_bytes`] gives them, each as the first 16 bytes of
/// HMAC-SHA256(key, "crowdtally/opt-out\0" || bytes) in hex, or the error the list
/// gives for that kind. Holds no raw id; it only matches under the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutDigests {
    /// How many ids the list holds (as given, duplicates included).
    pub count: usize,
    /// The digests for a text, a binary and an integer column.
    pub text: std::result::Result<Vec<String>, String>,
    /// See `text`.
    pub binary: std::result::Result<Vec<String>, String>,
    /// See `text`.
    pub integer: std::result::Result<Vec<String>, String>,
}

/// The keyed digest of one opt-out id's §3 bytes.
pub(crate) fn opt_out_digest(key: &Key, bytes: &[u8]) -> [u8; 16] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
    mac.update(b"crowdtally/opt-out\x00");
    mac.update(bytes);
    let mut digest = [0; 16];
    digest.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    digest
}

/// What a subscriber's §3 bytes are checked against: the listed ids, or their digests.
pub(crate) enum OptOutSet {
    Bytes(HashSet<Vec<u8>>),
    Digests(Key, HashSet<[u8; 16]>),
}

impl OptOutSet {
    /// Whether a subscriber is on the list.
    pub(crate) fn contains(&self, bytes: &[u8]) -> bool {
        match self {
            Self::Bytes(set) => set.contains(bytes),
            Self::Digests(key, set) => !set.is_empty() && set.contains(&opt_out_digest(key, bytes)),
        }
    }
}

impl Default for OptOutSet {
    fn default() -> Self {
        Self::Bytes(HashSet::new())
    }
}

impl OptOut {
    /// An opt-out set from raw ids.
    #[must_use]
    pub fn new(ids: Vec<SubscriberId>) -> Self {
        Self {
            listed: Listed::Ids(ids),
        }
    }

    /// An opt-out set from the digests another machine made of its list.
    #[must_use]
    pub fn from_digests(digests: OptOutDigests) -> Self {
        Self {
            listed: Listed::Digests(digests),
        }
    }

    /// How many ids the set holds (as given, duplicates included).
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.listed {
            Listed::Ids(ids) => ids.len(),
            Listed::Digests(digests) => digests.count,
        }
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The list as keyed digests under `key`, for every kind of subscriber column: what
    /// may be sent where the raw ids must not go.
    #[must_use]
    pub fn digests(&self, key: &Key) -> OptOutDigests {
        if let Listed::Digests(digests) = &self.listed {
            return digests.clone();
        }
        let of = |kind| {
            self.subscriber_bytes(kind)
                .map(|set| {
                    let mut hex: Vec<String> = set
                        .iter()
                        .map(|bytes| crate::privacy::hex(&opt_out_digest(key, bytes)))
                        .collect();
                    hex.sort_unstable();
                    hex
                })
                .map_err(|error| error.to_string())
        };
        OptOutDigests {
            count: self.len(),
            text: of(SubscriberKind::Text),
            binary: of(SubscriberKind::Binary),
            integer: of(SubscriberKind::Integer),
        }
    }

    /// What a column of `kind` is checked against, under `key` for a list of digests.
    ///
    /// # Errors
    /// As [`OptOut::subscriber_bytes`]; for digests, the error their list gave for
    /// `kind`, or one naming `opt_out` for a digest that is not 32 hex digits.
    pub(crate) fn matcher(&self, kind: SubscriberKind, key: &Key) -> Result<OptOutSet> {
        let Listed::Digests(digests) = &self.listed else {
            return self.subscriber_bytes(kind).map(OptOutSet::Bytes);
        };
        let listed = match kind {
            SubscriberKind::Text => &digests.text,
            SubscriberKind::Binary => &digests.binary,
            SubscriberKind::Integer => &digests.integer,
        };
        let hex = listed
            .as_ref()
            .map_err(|message| Error::config("opt_out", message.clone()))?;
        let set = hex
            .iter()
            .map(|text| {
                crate::privacy::unhex::<16>(text).ok_or_else(|| {
                    Error::config("opt_out", "holds a digest that is not 32 hex digits")
                })
            })
            .collect::<Result<_>>()?;
        Ok(OptOutSet::Digests(key.clone(), set))
    }

    /// The ids as `subscriber_bytes` (§3) for a column of the given kind: text for text,
    /// bytes for binary; for an integer column, text ids are read as integers.
    ///
    /// # Errors
    /// [`Error::Config`] naming `opt_out` when an id is not of the column's kind, or when
    /// the set holds digests (their ids are elsewhere). The message gives the id's
    /// position in the list, never its value.
    pub fn subscriber_bytes(&self, kind: SubscriberKind) -> Result<HashSet<Vec<u8>>> {
        let Listed::Ids(ids) = &self.listed else {
            return Err(Error::config(
                "opt_out",
                "holds digests of ids, whose bytes are on another machine",
            ));
        };
        let mismatch = |index: usize, what: &str| {
            Error::config(
                "opt_out",
                format!("id #{index} is {what}, but the subscriber column is {kind:?}"),
            )
        };
        ids.iter()
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
        match &self.listed {
            Listed::Ids(ids) => write!(f, "OptOut(<{} ids>)", ids.len()),
            Listed::Digests(digests) => write!(f, "OptOut(<{} id digests>)", digests.count),
        }
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
