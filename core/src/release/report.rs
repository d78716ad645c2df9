//! The quality and privacy report of a release (method §9).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{DisclosureCounts, ReleaseSpec};
use crate::aggregate::Aggregate;
use crate::config::{Config, Period};
use crate::extrapolate::{Factors, SubscriberSource};
use crate::geo::Geography;
use crate::profile::DeviceClass;
use crate::report::QualityReport;

/// What every release says about the method's limits.
pub const CAVEATS: [&str; 4] = [
    "The threshold k protects this one table. Differencing between releases (overlapping \
     periods, other bucket kinds or classes) and between nested zones is not prevented; \
     only the differential-privacy mode protects against it.",
    "The interval covers the sampling of customers only, not position error or \
     misclassification of devices.",
    "Counts are devices, not people: a person with two phones counts twice, one without a \
     phone of the operator only through extrapolation.",
    "Classes come from the observed period: usual environment cannot be judged from a few \
     days, so classify over a long period and bucket finely rather than the reverse.",
];

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

/// How estimates were made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExtrapolationReport {
    /// Where subscriber counts came from.
    pub subscribers: SubscriberSource,
    /// Total subscribers in regions with a population.
    pub subscribers_total: u64,
    /// The national factor, `None` without subscribers.
    pub national_factor: Option<f64>,
}

/// The report of one release.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// The library version.
    pub version: &'static str,
    /// Every parameter used (never the key or the opt-out list).
    pub parameters: Value,
    /// Pings read, kept and dropped by reason.
    pub pings: Value,
    /// Opt-out counts.
    pub opt_out: Value,
    /// Subscribers merged by a pseudonym collision.
    pub pseudonym_collisions: u64,
    /// Devices by class.
    pub devices: DeviceReport,
    /// What disclosure control did.
    pub disclosure: DisclosureCounts,
    /// How estimates were made (`None` for an empty release).
    pub extrapolation: Option<ExtrapolationReport>,
    /// Zone ids and their display names.
    pub zones: BTreeMap<String, String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The method's caveats.
    pub caveats: Vec<&'static str>,
}

impl ReleaseReport {
    pub(super) fn new(
        config: &Config,
        options: &ReleaseSpec,
        quality: &QualityReport,
        aggregate: Option<&Aggregate>,
        extrapolation: Option<(&Factors, SubscriberSource)>,
        disclosure: DisclosureCounts,
        geography: &Geography,
    ) -> Self {
        let period: Option<Period> = aggregate.map(|a| a.spec().period).or(config.period);
        // The factors as used: codes upper-cased (the options were validated before).
        let roaming = crate::extrapolate::normalise_roaming_factors(&options.roaming_factors)
            .unwrap_or_default();
        let usual_env_min_days = period.map(|p| config.usual_env_min_days_for(p.days()));
        let label = config
            .period_label
            .clone()
            .or_else(|| quality.period_label.clone());
        let parameters = json!({
            "tz": config.tz,
            "period": period,
            "period_label": label,
            "resolution": u8::from(geography.resolution()),
            "home_country": config.home_country_code(),
            "k": config.k,
            "roll_up": options.roll_up,
            "max_gap": config.max_gap,
            "min_dwell": config.min_dwell,
            "min_nights": config.min_nights,
            "usual_env_min_days": usual_env_min_days,
            "bucket": options.bucket,
            "level": options.level,
            "classes": options.classes.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "subscribers": if options.subscribers.is_some() { "given" } else { "detected" },
            "roaming_factors": roaming,
        });
        let pings = json!({
            "read": quality.pings_read,
            "kept": quality.pings_kept,
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
        let mut warnings = Vec::new();
        if quality.pings_read > 0 && quality.pings_kept == 0 {
            warnings.push("no ping survived cleaning: see pings.dropped".to_owned());
        }
        let extrapolation = extrapolation.map(|(factors, source)| {
            warnings.extend(factors.warnings.iter().cloned());
            ExtrapolationReport {
                subscribers: source,
                subscribers_total: factors.subscribers_total,
                national_factor: factors.national,
            }
        });
        let zones = geography
            .zones()
            .iter()
            .map(|z| (z.id.clone(), z.name.clone()))
            .collect();
        Self {
            version: crate::VERSION,
            parameters,
            pings,
            opt_out: json!(quality.opt_out),
            pseudonym_collisions: quality.pseudonym_collisions,
            devices,
            disclosure,
            extrapolation,
            zones,
            warnings,
            caveats: CAVEATS.to_vec(),
        }
    }

    /// The report as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        // Plain numbers, strings and maps always serialise.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
