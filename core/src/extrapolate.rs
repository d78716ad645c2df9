//! Extrapolation from the operator's customers to the whole population (method §8).
//!
//! Each leaf origin gets a factor `population / subscribers`; a leaf without subscribers
//! (or without a population) uses its parent's pooled factor, up to the national one at
//! the root; `unknown` uses the national factor and `country:XX` the given roaming factor.
//! An estimate is linear in the leaf rows it pools, so estimates, and the binomial
//! variance `devices · f · (f − 1)`, add up like the measures do.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::geo::{Geography, RegionIndex};
use crate::release::Estimate;

/// The z value of a two-sided 95 % normal interval, as the method fixes it.
const Z_95: f64 = 1.96;

/// Where the per-leaf subscriber counts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberSource {
    /// Devices in the input whose home is the leaf (§1.3's default).
    Detected,
    /// Given by the operator (billing).
    Given,
}

/// Checks subscriber counts given per leaf: every key must be a leaf region id.
///
/// # Errors
/// [`Error::Config`] naming `subscribers`.
pub(crate) fn validate_subscribers(
    subscribers: &BTreeMap<String, u64>,
    geography: &Geography,
) -> Result<()> {
    let regions = geography.regions();
    for id in subscribers.keys() {
        match regions.index_of(id) {
            None => {
                return Err(Error::config(
                    "subscribers",
                    format!("names {id:?}, which is not a region of the geography"),
                ));
            }
            Some(region) if !regions.is_leaf(region) => {
                return Err(Error::config(
                    "subscribers",
                    format!(
                        "names {id:?}, which is not a leaf region (subscribers are counted per leaf)"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The key of the roaming factor for every country without one of its own.
pub(crate) const ANY_COUNTRY: &str = "*";

/// Checks roaming factors and upper-cases their country codes (§8): keys are
/// two-letter country codes or `*` (checked by form only: checking them against the data
/// would tell whether a country is present), factors are at least 1.
///
/// # Errors
/// [`Error::Config`] naming `roaming_factors` for any other key, or a factor that is not
/// a finite number of at least 1.
pub(crate) fn normalise_roaming_factors(
    factors: &BTreeMap<String, f64>,
) -> Result<BTreeMap<String, f64>> {
    let mut normalised = BTreeMap::new();
    for (code, &factor) in factors {
        let code = code.trim().to_ascii_uppercase();
        let two_letters = code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic());
        if !two_letters && code != ANY_COUNTRY {
            return Err(Error::config(
                "roaming_factors",
                format!(
                    "keys must be ISO 3166-1 alpha-2 country codes (\"FR\") or \"*\" for every \
                     other country, got {code:?}"
                ),
            ));
        }
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(Error::config(
                "roaming_factors",
                format!(
                    "factor for {code:?} must be a number of at least 1 (one roamer stands for \
                     at least itself), got {factor}"
                ),
            ));
        }
        if normalised.insert(code.clone(), factor).is_some() {
            return Err(Error::config(
                "roaming_factors",
                format!("gives {code:?} twice (codes are compared upper-cased)"),
            ));
        }
    }
    Ok(normalised)
}

/// The factors of a run's origins, and what the user must be told about them.
#[derive(Clone, Debug)]
pub(crate) struct Factors {
    /// Per origin (in the order asked for), its factor, `None` when it has none.
    pub(crate) by_origin: Vec<Option<f64>>,
    /// The national (root) factor, `None` without any subscriber.
    pub(crate) national: Option<f64>,
    /// Warnings for the report.
    pub(crate) warnings: Vec<String>,
}

impl Factors {
    /// Factors for `origins` (leaf ids, `unknown`, `country:XX`) from per-leaf subscriber
    /// counts and roaming factors (codes upper-cased).
    #[must_use]
    pub(crate) fn new(
        origins: &[String],
        geography: &Geography,
        subscribers: &BTreeMap<String, u64>,
        roaming: &BTreeMap<String, f64>,
    ) -> Self {
        let regions = geography.regions();
        // Pooled populations and subscribers per region, over leaves with a population.
        let mut population = vec![0u64; regions.len()];
        let mut pooled = vec![0u64; regions.len()];
        for region in 0..regions.len() as RegionIndex {
            if !regions.is_leaf(region) {
                continue;
            }
            let Some(people) = regions.population(region) else {
                continue;
            };
            let count = subscribers.get(regions.id(region)).copied().unwrap_or(0);
            for node in regions.ancestors(region) {
                population[node as usize] += people;
                pooled[node as usize] += count;
            }
        }
        let mut clamped: Vec<String> = Vec::new();
        let mut clamp = |factor: f64, region: RegionIndex| {
            if factor < 1.0 {
                let id = regions.id(region).to_owned();
                if !clamped.contains(&id) {
                    clamped.push(id);
                }
                1.0
            } else {
                factor
            }
        };
        let pooled_factor = |region: RegionIndex| -> Option<(f64, RegionIndex)> {
            regions.ancestors(region).find_map(|node| {
                let (people, count) = (population[node as usize], pooled[node as usize]);
                (count > 0).then(|| (people as f64 / count as f64, node))
            })
        };
        let root = regions.root();
        // The national factor, clamped (with a warning) only where an origin uses it.
        let national_raw = pooled_factor(root);
        let national = national_raw.map(|(f, _)| f.max(1.0));
        let mut missing_countries: Vec<String> = Vec::new();
        let mut by_origin = Vec::with_capacity(origins.len());
        for origin in origins {
            let factor = if origin == "unknown" {
                national_raw.map(|(f, node)| clamp(f, node))
            } else if let Some(code) = origin.strip_prefix("country:") {
                let factor = roaming
                    .get(code)
                    .or_else(|| roaming.get(ANY_COUNTRY))
                    .copied();
                if factor.is_none() {
                    // The factor of every other country is the one of `other:abroad`.
                    missing_countries.push(if code == ANY_COUNTRY {
                        "other:abroad".to_owned()
                    } else {
                        origin.clone()
                    });
                }
                factor
            } else {
                regions
                    .index_of(origin)
                    .and_then(pooled_factor)
                    .map(|(f, node)| clamp(f, node))
            };
            by_origin.push(factor);
        }
        let mut warnings = Vec::new();
        let subscribers_total = pooled[root as usize];
        if subscribers_total == 0 {
            warnings.push(
                "no subscriber in any region with a population: domestic estimates are null"
                    .to_owned(),
            );
        }
        if !clamped.is_empty() {
            warnings.push(format!(
                "extrapolation factor below 1 (more subscribers than inhabitants: check the \
                 inputs), clamped to 1 for: {}",
                list(&clamped)
            ));
        }
        if !missing_countries.is_empty() {
            warnings.push(format!(
                "no roaming factor for {}: rows with these devices (their group totals too) \
                 have null estimates; give roaming_factors for them, or \"*\" for every country",
                list(&missing_countries)
            ));
        }
        Self {
            by_origin,
            national,
            warnings,
        }
    }
}

/// At most ten names, then how many more.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        format!("{text} and {} more", names.len() - SHOWN)
    } else {
        text
    }
}

/// An estimate under construction: sums over the leaf origins a row pools.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct EstimateSums {
    /// `Σ devices_o · f_o`.
    pub(crate) devices: f64,
    /// `Σ visits_o · f_o`.
    pub(crate) visits: f64,
    /// `Σ devices_o · f_o · (f_o − 1)`.
    pub(crate) variance: f64,
    /// Whether some pooled origin has no factor (the estimate is then null).
    pub(crate) missing: bool,
}

impl EstimateSums {
    /// The contribution of one leaf origin row.
    #[must_use]
    pub(crate) fn of(devices: u64, visits: u64, factor: Option<f64>) -> Self {
        match factor {
            Some(f) => Self {
                devices: devices as f64 * f,
                visits: visits as f64 * f,
                variance: devices as f64 * f * (f - 1.0),
                missing: false,
            },
            None => Self {
                missing: true,
                ..Self::default()
            },
        }
    }

    /// The estimate of a row with `observed` devices, or `None` when some origin has no
    /// factor.
    #[must_use]
    pub(crate) fn finish(&self, observed: u64) -> Option<Estimate> {
        if self.missing {
            return None;
        }
        Some(interval(
            self.devices,
            self.visits,
            self.variance,
            observed as f64,
        ))
    }
}

/// The estimate with its 95 % normal interval of half-width 1.96·√variance, whose low end
/// is at least `floor` (what is known to be there at the least).
pub(crate) fn interval(devices: f64, visits: f64, variance: f64, floor: f64) -> Estimate {
    let half_width = Z_95 * variance.max(0.0).sqrt();
    Estimate {
        devices,
        visits,
        low: (devices - half_width).max(floor),
        high: devices + half_width,
    }
}

impl AddAssign for EstimateSums {
    fn add_assign(&mut self, other: Self) {
        self.devices += other.devices;
        self.visits += other.visits;
        self.variance += other.variance;
        self.missing |= other.missing;
    }
}
