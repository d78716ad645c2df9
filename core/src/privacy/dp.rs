//! The differentially private release (method §10): every key declared before the data
//! are read is released, zeros included, each count with integer discrete Gaussian noise
//! of the σ its sensitivity and share of ρ give. Everything after the noise is
//! post-processing: clamping negatives to 0, totals as sums of the noisy origin rows,
//! and estimates with the noise in their interval.
//!
//! The aggregate was bounded device by device (`crate::aggregate`): a device counts in at
//! most `max_partitions` (zone, bucket) pairs, with at most `max_visits` visits and
//! `max_dwell_s` seconds in each. Dwell bands, a breakdown of a group (§7 step 6), are
//! noised once per group, on its total row.

use std::collections::BTreeMap;

use serde::Serialize;

use super::noise::{NoiseScale, OsRandom, RandomSource, RandomnessError};
use super::{ContributionBounds, DELTA, DpSpec, RHO_SHARES, epsilon};
use crate::error::{Error, Result};
use crate::extrapolate::{ANY_COUNTRY, Factors};
use crate::geo::{RegionIndex, Regions};
use crate::release::grid::Grid;
use crate::release::{Estimate, ReleaseRow, ReleaseSpec, RowMeasures};
use crate::study::Study;

/// The origin of every roamer of a country without a row of its own.
const ABROAD: &str = "other:abroad";

/// What the differential-privacy mode did, for the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct DpReport {
    pub(crate) mode: &'static str,
    pub(crate) rho: f64,
    pub(crate) epsilon: f64,
    pub(crate) delta: f64,
    /// Each measure's share of ρ.
    pub(crate) rho_by_measure: BTreeMap<&'static str, f64>,
    /// Each measure's noise σ.
    pub(crate) sigma: BTreeMap<&'static str, f64>,
    pub(crate) bounds: ContributionBounds,
    /// The countries with rows of their own.
    pub(crate) countries: Vec<String>,
    /// What bounding dropped: (zone, bucket) pairs and visits.
    pub(crate) dropped_by_bounding: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    pub(crate) national_factor: Option<f64>,
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

/// The measures of one key before post-processing.
#[derive(Clone, Copy, Default)]
struct Noisy {
    devices: i64,
    visits: i64,
    dwell_s: i64,
}

/// The declared origins of a release: every region the leaves have at the release level
/// (a leaf without an ancestor there stays itself, §6), `unknown`, the declared countries
/// and `other:abroad`; in byte order.
fn declared_origins(regions: &Regions, level: Option<&str>, countries: &[String]) -> Vec<String> {
    let mut names: Vec<String> = (0..regions.len() as RegionIndex)
        .filter(|&r| regions.is_leaf(r))
        .map(|leaf| {
            let at_level = level
                .and_then(|level| regions.ancestors(leaf).find(|&r| regions.level(r) == level));
            regions.id(at_level.unwrap_or(leaf)).to_owned()
        })
        .collect();
    names.push("unknown".to_owned());
    names.extend(countries.iter().map(|code| format!("country:{code}")));
    names.push(ABROAD.to_owned());
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    names.dedup();
    names
}

/// The rows of a differentially private release, with noise from the operating system.
///
/// # Errors
/// [`Error::Config`] for invalid DP parameters; [`Error::Randomness`] when the operating
/// system gives no randomness.
pub(crate) fn noisy_table(
    grid: &Grid<'_>,
    study: &Study,
    spec: &ReleaseSpec,
    dp: &DpSpec,
    roaming: &BTreeMap<String, f64>,
) -> Result<(Vec<ReleaseRow>, DpReport)> {
    noisy_table_with(grid, study, spec, dp, roaming, &mut OsRandom::new())
}

/// [`noisy_table`] with the noise of `rng`.
#[expect(
    clippy::too_many_lines,
    reason = "keys, noise and post-processing of §10 in their order, one pass over the grid"
)]
pub(crate) fn noisy_table_with(
    grid: &Grid<'_>,
    study: &Study,
    spec: &ReleaseSpec,
    dp: &DpSpec,
    roaming: &BTreeMap<String, f64>,
    rng: &mut impl RandomSource,
) -> Result<(Vec<ReleaseRow>, DpReport)> {
    let countries = dp.validate()?;
    let aggregate = grid.aggregate;
    let bounds = aggregate.spec().contribution.ok_or_else(|| {
        Error::config(
            "aggregate",
            "was not bounded for the differential-privacy mode",
        )
    })?;
    let subscribers = spec.subscribers.as_ref().ok_or_else(|| {
        Error::config(
            "subscribers",
            "must be given (from billing) in the differential-privacy mode: factors detected \
             from the same private data would break its guarantee",
        )
    })?;
    let regions = study.geography().regions();
    let keys = declared_origins(regions, spec.level.as_deref(), &countries);
    // A key's factor: a region's (pooled) factor, the national one for `unknown`, a
    // country's roaming factor, and the factor for every other country for the pool.
    let factor_names: Vec<String> = keys
        .iter()
        .map(|key| {
            if key == ABROAD {
                format!("country:{ANY_COUNTRY}")
            } else {
                key.clone()
            }
        })
        .collect();
    let factors = Factors::new(&factor_names, study.geography(), subscribers, roaming);
    // The key of each of the aggregate's leaf origins.
    let key_of: Vec<usize> = aggregate
        .origins()
        .iter()
        .zip(&grid.level_origin)
        .map(|(name, level)| {
            let name = match level {
                crate::disclosure::LevelOrigin::Region(region) => regions.id(*region),
                crate::disclosure::LevelOrigin::Unknown => "unknown",
                crate::disclosure::LevelOrigin::Country(_)
                    if countries
                        .iter()
                        .any(|c| name.strip_prefix("country:") == Some(c)) =>
                {
                    name.as_str()
                }
                crate::disclosure::LevelOrigin::Country(_) => ABROAD,
            };
            keys.binary_search_by(|key| key.as_bytes().cmp(name.as_bytes()))
                .unwrap_or_else(|_| unreachable!("every origin has a declared key"))
        })
        .collect();
    let scales = scales(&bounds, dp.rho)?;
    let [devices_noise, visits_noise, dwell_noise, bands_noise] = &scales;
    let sigma_devices = devices_noise.sigma();
    let mut rows = Vec::with_capacity(grid.len() * (keys.len() + 1));
    let mut exact = vec![Noisy::default(); keys.len()];
    for group in grid.groups() {
        exact.fill(Noisy::default());
        let mut bands = [0_u64; 5];
        for &(row, measures) in group.rows {
            let key = &mut exact[key_of[row.origin as usize]];
            key.devices += measures.devices as i64;
            key.visits += measures.visits as i64;
            key.dwell_s += measures.dwell_s;
            for (sum, band) in bands.iter_mut().zip(measures.bands) {
                *sum += band;
            }
        }
        let noisy: Vec<Noisy> = exact
            .iter()
            .map(|key| {
                Ok(Noisy {
                    devices: devices_noise.add_noise(key.devices, rng)?,
                    visits: visits_noise.add_noise(key.visits, rng)?,
                    dwell_s: dwell_noise.add_noise(key.dwell_s, rng)?,
                })
            })
            .collect::<Result<_, RandomnessError>>()
            .map_err(randomness)?;
        let noisy_bands = bands
            .iter()
            .map(|&band| {
                bands_noise
                    .add_noise(band as i64, rng)
                    .map(|b| Some(b.max(0) as u64))
            })
            .collect::<Result<Vec<_>, RandomnessError>>()
            .map_err(randomness)?;
        // Post-processing only from here: totals sum the noisy rows before clamping, so
        // that zeros clamped up do not bias them.
        let mut total = Noisy::default();
        let mut total_estimate = Some((0.0, 0.0, 0.0));
        for (key, value) in noisy.iter().enumerate() {
            // Saturating: at a tiny ρ the noise alone may reach the integers' range.
            total.devices = total.devices.saturating_add(value.devices);
            total.visits = total.visits.saturating_add(value.visits);
            total.dwell_s = total.dwell_s.saturating_add(value.dwell_s);
            total_estimate = match (total_estimate, factors.by_origin[key]) {
                (Some((devices, visits, variance)), Some(f)) => Some((
                    devices + value.devices as f64 * f,
                    visits + value.visits as f64 * f,
                    variance
                        + value.devices.max(0) as f64 * f * (f - 1.0)
                        + f * f * sigma_devices * sigma_devices,
                )),
                _ => None,
            };
        }
        let row = |origin: String, value: Noisy, bands: [Option<u64>; 5], estimate| ReleaseRow {
            zone: group.zone.clone(),
            bucket_start: group.label.clone(),
            class: group.class,
            origin,
            measures: Some(RowMeasures {
                devices: value.devices.max(0) as u64,
                visits: value.visits.max(0) as u64,
                dwell_s: value.dwell_s.max(0),
                bands,
            }),
            suppressed: false,
            estimate,
        };
        let band_values: [Option<u64>; 5] = std::array::from_fn(|band| noisy_bands[band]);
        rows.push(row(
            "*".to_owned(),
            total,
            band_values,
            total_estimate.map(|(devices, visits, variance)| interval(devices, visits, variance)),
        ));
        for (key, value) in noisy.iter().enumerate() {
            let estimate = factors.by_origin[key].map(|f| {
                let devices = value.devices.max(0) as f64;
                interval(
                    devices * f,
                    value.visits.max(0) as f64 * f,
                    devices * f * (f - 1.0) + f * f * sigma_devices * sigma_devices,
                )
            });
            rows.push(row(keys[key].clone(), *value, [None; 5], estimate));
        }
    }
    let counts = aggregate.devices();
    let report = DpReport {
        mode: super::DIFFERENTIAL_PRIVACY,
        rho: dp.rho,
        epsilon: epsilon(dp.rho, DELTA),
        delta: DELTA,
        rho_by_measure: RHO_SHARES
            .iter()
            .map(|&(name, share)| (name, share * dp.rho))
            .collect(),
        sigma: RHO_SHARES
            .iter()
            .zip(&scales)
            .map(|(&(name, _), scale)| (name, scale.sigma()))
            .collect(),
        bounds,
        countries,
        dropped_by_bounding: BTreeMap::from([
            ("pairs", counts.pairs_dropped),
            ("visits", counts.visits_dropped),
        ]),
        national_factor: factors.national,
        warnings: factors.warnings,
    };
    Ok((rows, report))
}

/// The noise of each measure (devices, visits, dwell, bands): σ² = Δ² / (2·ρ_measure).
///
/// # Errors
/// [`Error::Config`] naming `max_dwell_s` when its square overflows, or `rho` when it is
/// not a positive number.
pub(crate) fn scales(bounds: &ContributionBounds, rho: f64) -> Result<[NoiseScale; 4]> {
    let squared = bounds.squared_sensitivities().ok_or_else(|| {
        Error::config(
            "max_dwell_s",
            format!(
                "gives no usable sensitivity with the bounds {bounds:?}: every bound must be                  at least 1, and the dwell's small enough to square"
            ),
        )
    })?;
    let scale = |measure: usize| {
        NoiseScale::new(squared[measure], rho * RHO_SHARES[measure].1)
            .ok_or_else(|| Error::config("rho", format!("must be a positive number, got {rho}")))
    };
    Ok([scale(0)?, scale(1)?, scale(2)?, scale(3)?])
}

/// The estimate of a row from its (noisy) sums: the interval's variance holds the
/// sampling of customers and the noise. Noisy counts are no lower bound of what is
/// there, so neither end is below zero, and that is all.
fn interval(devices: f64, visits: f64, variance: f64) -> Estimate {
    crate::extrapolate::interval(devices.max(0.0), visits.max(0.0), variance, 0.0)
}

fn randomness(error: RandomnessError) -> Error {
    Error::Randomness(Box::new(error))
}
