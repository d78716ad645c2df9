//! The quality and privacy report of a release (method §9): the parameters, what was read
//! and dropped, the devices by class, what the protection did (disclosure control or the
//! differential-privacy mode, and the ledger), how estimates were made, warnings and the
//! method's caveats.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{DisclosureCounts, ReleaseSpec};
use crate::aggregate::Aggregate;
use crate::config::{Config, Period};
use crate::extrapolate::{Factors, SubscriberSource, normalise_roaming_factors};
use crate::privacy::Privacy;
use crate::privacy::dp::DpReport;
use crate::privacy::ledger::Recorded;
use crate::profile::DeviceClass;
use crate::report::{DropReason, QualityReport};
use crate::study::Study;

/// What every release says about the method's limits.
pub const CAVEATS: [&str; 3] = [
    "The interval covers the sampling of customers only, not position error or \
     misclassification of devices.",
    "Counts are devices, not people: a person with two phones counts twice, one without a \
     phone of the operator only through extrapolation.",
    "Classes come from the observed period: usual environment cannot be judged from a few \
     days, so classify over a long period and bucket finely rather than the reverse.",
];

/// What a k-anonymity release says about its protection.
pub const K_ANONYMITY_CAVEAT: &str = "The threshold k protects this one table. Differencing \
     between releases (overlapping periods, other bucket kinds, levels or classes) and an \
     attacker's own k − 1 phones are not prevented by thresholds; the ledger refuses a \
     second cut of a period, and the differential-privacy mode protects against both.";

/// What a differentially private release says about its protection.
pub const DP_CAVEAT: &str = "Differential privacy protects the table: every count carries \
     discrete Gaussian noise of the stated sigma, and a device counts in at most the stated \
     number of cells. The other counts of this report (pings, devices by class, drops, and \
     what bounding dropped) are exact and for the operator only: publish the table and the \
     privacy section without its dropped_by_bounding.";

/// Devices by class over all cleaned devices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceReport {
    /// All devices.
    pub total: u64,
    /// Devices by class name.
    pub by_class: BTreeMap<&'static str, u64>,
    /// Inbound roamers.
    pub roamers: u64,
    /// Domestic devices without a home.
    pub domestic_unknown_home: u64,
}

/// How estimates were made: where subscriber counts came from and the factors that may
/// be shown (§8: per-leaf factors would reveal subscriber counts, so only the national
/// factor and the roaming factors are given).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExtrapolationReport {
    /// Where subscriber counts came from.
    pub subscribers: SubscriberSource,
    /// The national factor, `None` without subscribers.
    pub national_factor: Option<f64>,
    /// The roaming factors used, by upper-cased country code (`*` for the others).
    pub roaming_factors: BTreeMap<String, f64>,
}

/// What protected a release, as the report tells it.
pub(crate) enum Protection {
    /// k-anonymity: what disclosure control did, and the factors of the estimates.
    KAnonymity {
        counts: DisclosureCounts,
        factors: Option<(Factors, SubscriberSource)>,
    },
    /// The differential-privacy mode.
    Differential(DpReport),
}

impl Protection {
    /// An empty release's: nothing to protect.
    pub(crate) fn empty(config: &Config) -> Self {
        Self::KAnonymity {
            counts: DisclosureCounts {
                k: u64::from(config.k),
                ..DisclosureCounts::default()
            },
            factors: None,
        }
    }
}

/// The report of one release.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// The library version.
    pub version: &'static str,
    /// Every parameter used (never the key, the opt-out list or the subscribers).
    pub parameters: Value,
    /// Pings read, kept and dropped by reason.
    pub pings: Value,
    /// Opt-out counts.
    pub opt_out: Value,
    /// Subscribers merged by a pseudonym collision.
    pub pseudonym_collisions: u64,
    /// Devices by class.
    pub devices: DeviceReport,
    /// What disclosure control did (k-anonymity; `None` in the differential-privacy mode).
    pub disclosure: Option<DisclosureCounts>,
    /// The protection: its mode, and its parameters (k; or ρ, ε, δ, σ, the bounds and
    /// what bounding dropped), and the ledger's budget when there is one.
    pub privacy: Value,
    /// How estimates were made (`None` for an empty release).
    pub extrapolation: Option<ExtrapolationReport>,
    /// Zone ids and their display names.
    pub zones: BTreeMap<String, String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The method's caveats.
    pub caveats: Vec<&'static str>,
}

/// The parameters of a release as the report and the ledger give them: never the key,
/// the opt-out list, the subscriber counts or the factors.
pub(crate) fn parameters(
    study: &Study,
    spec: &ReleaseSpec,
    period: Option<Period>,
    label: Option<&str>,
) -> Value {
    let config = study.config();
    let usual_env_min_days = period.map(|p| config.usual_env_min_days_for(p.days()));
    let mut parameters = json!({
        "tz": config.tz,
        "period": period,
        "period_label": label,
        "resolution": u8::from(study.geography().resolution()),
        "home_country": config.home_country_code(),
        "privacy": spec.privacy.name(),
        "k": config.k,
        "roll_up": spec.roll_up,
        "max_gap": config.max_gap,
        "min_dwell": config.min_dwell,
        "min_nights": config.min_nights,
        "usual_env_min_days": usual_env_min_days,
        "bucket": spec.bucket,
        "level": spec.level,
        "classes": spec.classes.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "subscribers": if spec.subscribers.is_some() { "given" } else { "detected" },
    });
    if let Privacy::DifferentialPrivacy(dp) = &spec.privacy {
        parameters["rho"] = json!(dp.rho);
        parameters["countries"] = json!(dp.countries);
        parameters["max_partitions"] = json!(dp.max_partitions);
        parameters["max_visits"] = json!(dp.max_visits);
        parameters["max_dwell_s"] = json!(dp.max_dwell_s);
    }
    parameters
}

/// A drop reason's share of the pings read above which the report warns.
const LOUD_DROP_SHARE: f64 = 0.05;

/// The share of kept pings in regions below which the report warns.
const FEW_IN_REGIONS: f64 = 0.5;

/// What a new user's first mistakes look like in the counts, said in words: no pings, a
/// drop reason taking many of them, pings outside the geography or outside every zone,
/// zones without a cell.
fn input_warnings(study: &Study, quality: &QualityReport) -> Vec<String> {
    let mut warnings = Vec::new();
    let (read, kept) = (quality.pings_read, quality.pings_kept);
    if read == 0 {
        warnings.push(
            "the input holds no ping: every figure of the release is empty (check the \
             pings' paths, or the filter that made the table)"
                .to_owned(),
        );
    } else if kept == 0 {
        warnings.push("no ping survived cleaning: see pings.dropped".to_owned());
    }
    let percent = |part: u64, whole: u64| 100.0 * part as f64 / whole as f64;
    for reason in DropReason::ALL {
        let dropped = quality.dropped.get(reason);
        if reason == DropReason::OptOut || (dropped as f64) <= LOUD_DROP_SHARE * read as f64 {
            continue;
        }
        let hint = match reason {
            DropReason::BadSubscriber => "the subscriber column is null or empty there",
            DropReason::BadPosition => {
                "no usable position: lat/lon missing or out of range, or a cell that is not \
                 a valid H3 index at the analysis resolution or finer"
            }
            DropReason::BadTs => {
                "no usable time: give an Arrow timestamp, integer epoch seconds, or ISO 8601 \
                 text (2026-07-01T14:30:00, with an offset or as local time); 01/07/2026 \
                 and other formats are not read"
            }
            DropReason::OutsidePeriod => {
                "outside the period, whose end is exclusive: period=(\"2026-07-01\", \
                 \"2026-07-08\") is the first week of July"
            }
            DropReason::Duplicate | DropReason::OptOut => {
                "more than one ping of a device in the same second"
            }
        };
        warnings.push(format!(
            "{:.1} % of pings were dropped as {}: {hint}",
            percent(dropped, read),
            reason.name()
        ));
    }
    if kept > 0 && (quality.pings_in_regions as f64) < FEW_IN_REGIONS * kept as f64 {
        warnings.push(format!(
            "only {:.1} % of kept pings fall in a region of the geography: are lat and lon \
             swapped, or the pings in another country than the regions?",
            percent(quality.pings_in_regions, kept)
        ));
    }
    if kept > 0 && quality.pings_in_zones == 0 {
        warnings.push(
            "no kept ping falls in a zone: every zone's figures are empty (do the zones' \
             cells cover the pings' positions?)"
                .to_owned(),
        );
    }
    let empty: Vec<&str> = study
        .geography()
        .zones_without_cells()
        .map(|zone| zone.id.as_str())
        .collect();
    if !empty.is_empty() {
        warnings.push(format!(
            "{} zone(s) have no cell at the analysis resolution, so no visitor: {}",
            empty.len(),
            empty.join(", ")
        ));
    }
    warnings
}

/// The ledger's account of the period, for the report (null without a ledger), and the
/// warning of a period released in both modes. The ledger's path stays with the
/// operator: the report is for publication.
fn ledger_section(
    recorded: Option<&Recorded>,
    label: Option<&str>,
    warnings: &mut Vec<String>,
) -> Value {
    let Some(recorded) = recorded else {
        return Value::Null;
    };
    if recorded.mixed_modes {
        warnings.push(format!(
            "period {} has both k-anonymity releases, whose counts are exact, and \
             differentially private ones: the guarantee of the latter does not cover what the \
             former reveal",
            label.unwrap_or("?")
        ));
    }
    json!({
        "period_label": label,
        "releases": recorded.releases,
        "spent_rho": recorded.spent,
        "remaining_rho": recorded.remaining,
        "allow_differencing": recorded.allow_differencing,
        "mixed_modes": recorded.mixed_modes,
    })
}

impl ReleaseReport {
    pub(crate) fn new(
        study: &Study,
        spec: &ReleaseSpec,
        quality: &QualityReport,
        aggregate: Option<&Aggregate>,
        protection: Protection,
        ledger: Option<&Recorded>,
    ) -> Self {
        let config = study.config();
        let period: Option<Period> = aggregate.map(|a| a.spec().period).or(config.period);
        let label = config
            .period_label
            .clone()
            .or_else(|| quality.period_label.clone());
        let parameters = parameters(study, spec, period, label.as_deref());
        let pings = json!({
            "read": quality.pings_read,
            "kept": quality.pings_kept,
            "in_regions": quality.pings_in_regions,
            "in_study_area": quality.pings_in_study_area,
            "in_zones": quality.pings_in_zones,
            "dropped": quality.dropped,
        });
        let mut devices = DeviceReport::default();
        if let Some(aggregate) = aggregate {
            let counts = aggregate.devices();
            devices.total = counts.total();
            devices.roamers = counts.roamers;
            devices.domestic_unknown_home = counts.domestic_unknown_home;
            for class in DeviceClass::ALL {
                devices
                    .by_class
                    .insert(class.name(), counts.by_class.get(class));
            }
        } else {
            for class in DeviceClass::ALL {
                devices.by_class.insert(class.name(), 0);
            }
        }
        let mut warnings = input_warnings(study, quality);
        // The factors as used: codes upper-cased (the spec was validated before).
        let roaming_factors = normalise_roaming_factors(&spec.roaming_factors).unwrap_or_default();
        let ledger_json = ledger_section(ledger, label.as_deref(), &mut warnings);
        let (disclosure, privacy, extrapolation, caveat) = match protection {
            Protection::KAnonymity { counts, factors } => {
                let extrapolation = factors.map(|(factors, source)| {
                    warnings.extend(factors.warnings.iter().cloned());
                    ExtrapolationReport {
                        subscribers: source,
                        national_factor: factors.national,
                        roaming_factors: roaming_factors.clone(),
                    }
                });
                let privacy = json!({
                    "mode": "k_anonymity",
                    "k": config.k,
                    "allow_differencing": spec.allow_differencing,
                    "ledger": ledger_json,
                });
                (Some(counts), privacy, extrapolation, K_ANONYMITY_CAVEAT)
            }
            Protection::Differential(dp) => {
                warnings.extend(dp.warnings.iter().cloned());
                if ledger.is_none() {
                    warnings.push(
                        "no ledger records this release: the rho of all releases of a period \
                         adds up, and nothing keeps count of it here (give the configuration \
                         a ledger and a budget)"
                            .to_owned(),
                    );
                }
                let extrapolation = ExtrapolationReport {
                    subscribers: SubscriberSource::Given,
                    national_factor: dp.national_factor,
                    roaming_factors: roaming_factors.clone(),
                };
                let mut privacy = serde_json::to_value(&dp).unwrap_or(Value::Null);
                privacy["ledger"] = ledger_json;
                privacy["allow_differencing"] = json!(spec.allow_differencing);
                (None, privacy, Some(extrapolation), DP_CAVEAT)
            }
        };
        let zones = study
            .geography()
            .zones()
            .iter()
            .map(|z| (z.id.clone(), z.name.clone()))
            .collect();
        let mut caveats = vec![caveat];
        caveats.extend(CAVEATS);
        Self {
            version: crate::VERSION,
            parameters,
            pings,
            opt_out: json!(quality.opt_out),
            pseudonym_collisions: quality.pseudonym_collisions,
            devices,
            disclosure,
            privacy,
            extrapolation,
            zones,
            warnings,
            caveats,
        }
    }

    /// The report as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        // Plain numbers, strings and maps always serialise.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
