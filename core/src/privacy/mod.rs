//! The privacy of a release (method §7 and §10): which mode protects it, the contribution
//! bounds and noise of the differential-privacy mode, and the ledger that records every
//! release of a period.
//!
//! k-anonymity (the default) protects one table by thresholds (`crate::disclosure`).
//! Differential privacy protects every release against differencing and sybils: each
//! device's contribution is bounded before any sum ([`ContributionBounds`]), integer
//! discrete Gaussian noise is added to every declared key (`noise`), and everything
//! after the noise is post-processing (`dp`). The [`ledger`] keeps the budget across
//! releases and refuses the releases that would break either mode.

pub(crate) mod account;
pub(crate) mod dp;
pub mod ledger;
pub(crate) mod noise;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Bytes in lowercase hex: how digests are written in plans, ledgers and tables.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// `N` bytes from `2N` hex digits (either case); `None` for anything else.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(bytes)
}

/// The name of the differential-privacy mode, in reports and the ledger.
pub(crate) const DIFFERENTIAL_PRIVACY: &str = "differential_privacy";

/// How a release is protected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
#[non_exhaustive]
pub enum Privacy {
    /// k-anonymity on the table (§7): thresholds, roll-up and secondary suppression.
    #[default]
    KAnonymity,
    /// Differential privacy (§10): bounded contributions and discrete Gaussian noise on
    /// public keys.
    DifferentialPrivacy(DpSpec),
}

impl Privacy {
    /// The mode's name in reports and the ledger.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::KAnonymity => "k_anonymity",
            Self::DifferentialPrivacy(_) => DIFFERENTIAL_PRIVACY,
        }
    }
}

/// The parameters of a differentially private release (§10).
///
/// ```
/// use crowdtally::DpSpec;
///
/// let mut dp = DpSpec::new(0.5);
/// dp.countries = vec!["FR".into(), "NL".into(), "DE".into()];
/// assert_eq!(dp.max_visits, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DpSpec {
    /// The budget of this release in zero-concentrated DP (ρ); there is no default.
    pub rho: f64,
    /// Roamer countries with rows of their own (`country:XX`); roamers of other
    /// countries are counted in `other:abroad`.
    pub countries: Vec<String>,
    /// The most (zone, bucket) pairs a device counts in; `None`: the pairs of the grid,
    /// at most 64.
    pub max_partitions: Option<u32>,
    /// The most visits a device counts in one pair (the first ones by start).
    pub max_visits: u32,
    /// The most seconds of dwell a device counts in one pair; `None`: the longest
    /// bucket, at most 12 h.
    pub max_dwell_s: Option<i64>,
}

impl DpSpec {
    /// The method's defaults with budget `rho`.
    #[must_use]
    pub fn new(rho: f64) -> Self {
        Self {
            rho,
            countries: Vec::new(),
            max_partitions: None,
            max_visits: 3,
            max_dwell_s: None,
        }
    }

    /// Checks the parameters, and returns the countries upper-cased and sorted.
    ///
    /// # Errors
    /// [`Error::Config`] naming `rho`, `countries`, `max_partitions`, `max_visits` or
    /// `max_dwell_s`.
    pub fn validate(&self) -> Result<Vec<String>> {
        if !(self.rho.is_finite() && self.rho > 0.0) {
            return Err(Error::config(
                "rho",
                format!("must be a positive number, got {}", self.rho),
            ));
        }
        if self.max_partitions == Some(0) {
            return Err(Error::config("max_partitions", "must be at least 1, got 0"));
        }
        if self.max_visits == 0 {
            return Err(Error::config("max_visits", "must be at least 1, got 0"));
        }
        if let Some(dwell) = self.max_dwell_s
            && dwell < 1
        {
            return Err(Error::config(
                "max_dwell_s",
                format!("must be at least 1 second, got {dwell}"),
            ));
        }
        let mut countries = Vec::with_capacity(self.countries.len());
        for code in &self.countries {
            let upper = code.trim().to_ascii_uppercase();
            if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(Error::config(
                    "countries",
                    format!("must be ISO 3166-1 alpha-2 codes, got {code:?}"),
                ));
            }
            countries.push(upper);
        }
        countries.sort_unstable();
        countries.dedup();
        Ok(countries)
    }
}

/// Each device's contribution to a release, as the differential-privacy mode bounds it
/// (§10), before any sum: these make the sensitivities of the noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionBounds {
    /// The most (zone, bucket) pairs a device counts in (m).
    pub max_partitions: u32,
    /// The most visits a device counts in one pair.
    pub max_visits: u32,
    /// The most seconds of dwell a device counts in one pair.
    pub max_dwell_s: i64,
}

/// The most pairs a device counts in by default: the grid's, at most this.
pub const DEFAULT_MAX_PARTITIONS: u32 = 64;

/// The most dwell a device counts in one pair by default: the longest bucket, at most
/// this (12 h).
pub const DEFAULT_MAX_DWELL_S: i64 = 12 * 3_600;

/// The share of a release's ρ each measure gets: devices, visits, dwell, bands.
pub const RHO_SHARES: [(&str, f64); 4] = [
    ("devices", 0.5),
    ("visits", 0.2),
    ("dwell_s", 0.15),
    ("bands", 0.15),
];

/// The δ at which the report states the ε a ρ implies.
pub const DELTA: f64 = 1e-9;

/// The ε of (ε, δ)-DP that ρ-zCDP implies: ρ + 2·√(ρ·ln(1/δ)).
#[must_use]
pub fn epsilon(rho: f64, delta: f64) -> f64 {
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

impl ContributionBounds {
    /// The bounds of a release: the spec's, or the defaults for a grid of `pairs`
    /// (zone, bucket) pairs whose longest bucket is `longest_bucket_s` seconds.
    #[must_use]
    pub fn of(spec: &DpSpec, pairs: usize, longest_bucket_s: i64) -> Self {
        let pairs = u32::try_from(pairs).unwrap_or(u32::MAX);
        Self {
            max_partitions: spec
                .max_partitions
                .unwrap_or_else(|| pairs.clamp(1, DEFAULT_MAX_PARTITIONS)),
            max_visits: spec.max_visits,
            max_dwell_s: spec
                .max_dwell_s
                .unwrap_or_else(|| longest_bucket_s.clamp(1, DEFAULT_MAX_DWELL_S)),
        }
    }

    /// The bounds of a release over `zones` zones and the buckets of `bucket_bounds`
    /// (bucket `b` is `[bounds[b], bounds[b + 1])`): [`ContributionBounds::of`] its
    /// number of pairs and its longest bucket.
    #[must_use]
    pub fn of_grid(spec: &DpSpec, zones: usize, bucket_bounds: &[i64]) -> Self {
        let longest = bucket_bounds
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or(0);
        let buckets = bucket_bounds.len().saturating_sub(1);
        Self::of(spec, zones * buckets, longest)
    }

    /// The squared L2 sensitivity of each measure (devices, visits, dwell, bands): one
    /// device changes at most `max_partitions` pairs, each by at most 1 device,
    /// `max_visits` visits (in bands too) and `max_dwell_s` seconds. `None` when a bound
    /// is 0 (no noise could hide a device) or the dwell's is too large to square.
    #[must_use]
    pub fn squared_sensitivities(&self) -> Option<[u128; 4]> {
        let m = u128::from(self.max_partitions);
        let visits = u128::from(self.max_visits);
        let dwell = u128::try_from(self.max_dwell_s).ok()?;
        if m == 0 || visits == 0 || dwell == 0 {
            return None;
        }
        let visits_squared = visits * visits * m;
        Some([
            m,
            visits_squared,
            dwell.checked_mul(dwell)?.checked_mul(m)?,
            visits_squared,
        ])
    }
}
