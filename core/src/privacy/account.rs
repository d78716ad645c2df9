//! A release's entry in the ledger (§10): which period and pseudonym space it spends
//! from, what it is (mode, spec, ρ), and the keyed digest of the factors it was
//! extrapolated with, which the period's first release fixes.
//!
//! Nothing here is in clear but the spec: the account's fingerprint and the factors are
//! HMACs under the study's key, so the ledger file reveals neither the key, nor the
//! subscriber counts, nor the roaming factors.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::ledger::{Ledger, PrivacyMode, Recorded, Request};
use super::{Privacy, hex};
use crate::config::Period;
use crate::error::Result;
use crate::extrapolate::{SubscriberSource, normalise_roaming_factors};
use crate::geo::Geography;
use crate::pseudonym::Key;
use crate::release::ReleaseSpec;
use crate::release::report::parameters;
use crate::study::Study;

/// The lowercase hex of an HMAC-SHA256 under `key` of `parts`, each after a NUL, cut to
/// `bytes`.
fn keyed_digest(key: &Key, domain: &[u8], parts: &[&[u8]], bytes: usize) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
    mac.update(domain);
    for part in parts {
        mac.update(b"\x00");
        mac.update(part);
    }
    hex(&mac.finalize().into_bytes()[..bytes])
}

/// The account of a period label under a key: releases of one pseudonym space.
fn fingerprint(key: &Key, label: &str) -> String {
    keyed_digest(key, b"crowdtally/ledger", &[label.as_bytes()], 16)
}

/// The keyed digest of the subscribers (given or detected) and roaming factors a release
/// extrapolates with.
pub(crate) fn factors_digest(
    key: &Key,
    source: SubscriberSource,
    subscribers: &BTreeMap<String, u64>,
    roaming: &BTreeMap<String, f64>,
) -> String {
    // A region with no subscriber is one without a count: both give the same factors.
    let counts: BTreeMap<&String, &u64> = subscribers.iter().filter(|(_, n)| **n > 0).collect();
    let canonical = json!({
        "subscribers": source,
        "counts": counts,
        "roaming_factors": normalise_roaming_factors(roaming).unwrap_or_default(),
    })
    .to_string();
    keyed_digest(key, b"crowdtally/factors", &[canonical.as_bytes()], 32)
}

/// The keyed digest of a geography's regions (ids, levels, parents, populations, cells)
/// and zones (ids, categories, cells): what its cuts are made of, names aside.
fn geography_digest(key: &Key, geography: &Geography) -> String {
    /// One field, prefixed with its length so that fields cannot run into each other.
    fn field(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
        mac.update(&(bytes.len() as u64).to_le_bytes());
        mac.update(bytes);
    }
    let (regions, region_cells, zones, zone_cells) = geography.to_tables();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
    mac.update(b"crowdtally/geography");
    field(&mut mac, &(regions.region_id.len() as u64).to_le_bytes());
    for i in 0..regions.region_id.len() {
        field(&mut mac, regions.region_id[i].as_bytes());
        field(&mut mac, regions.level[i].as_bytes());
        field(
            &mut mac,
            regions.parent_id[i].as_deref().unwrap_or("").as_bytes(),
        );
        field(&mut mac, &regions.population[i].unwrap_or(-1).to_le_bytes());
    }
    field(&mut mac, &(zones.zone_id.len() as u64).to_le_bytes());
    for (zone, category) in zones.zone_id.iter().zip(&zones.category) {
        field(&mut mac, zone.as_bytes());
        field(&mut mac, category.as_deref().unwrap_or("").as_bytes());
    }
    field(&mut mac, &(region_cells.cell.len() as u64).to_le_bytes());
    for (cell, region) in region_cells.cell.iter().zip(&region_cells.region_id) {
        field(&mut mac, &cell.to_le_bytes());
        field(&mut mac, region.as_bytes());
    }
    field(&mut mac, &(zone_cells.cell.len() as u64).to_le_bytes());
    for (zone, cell) in zone_cells.zone_id.iter().zip(&zone_cells.cell) {
        field(&mut mac, zone.as_bytes());
        field(&mut mac, &cell.to_le_bytes());
    }
    hex(&mac.finalize().into_bytes()[..16])
}

/// The request for a release of `spec` in the period `period` labelled `label`, with the
/// factors digest once it is known.
fn request(
    study: &Study,
    spec: &ReleaseSpec,
    period: Period,
    label: &str,
    factors: Option<String>,
) -> Request {
    let config = study.config();
    let mut entry_spec = parameters(study, spec, Some(period), Some(label));
    let geography = study.geography();
    entry_spec["zones"] = json!(
        geography
            .zones()
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>()
    );
    // Zones or regions redrawn under the same ids are another cut all the same.
    entry_spec["geography"] = json!(geography_digest(&config.key, geography));
    // The same classes in another order are the same cut.
    if let Some(classes) = entry_spec["classes"].as_array_mut() {
        classes.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    let (mode, rho) = match &spec.privacy {
        Privacy::KAnonymity => (PrivacyMode::KAnonymity, None),
        Privacy::DifferentialPrivacy(dp) => (PrivacyMode::DifferentialPrivacy, Some(dp.rho)),
    };
    Request {
        label: label.to_owned(),
        fingerprint: fingerprint(&config.key, label),
        factors,
        mode,
        spec: entry_spec,
        rho,
        budget: config.budget,
        allow_differencing: spec.allow_differencing,
    }
}

/// Checks releases against the ledger before any data are read, when their period (and
/// so its label) is given, as if recorded one after the other: a differentially private
/// release past the budget (the ρ of the releases before it included), or a k-anonymity
/// release cut otherwise than the period's earlier ones or the ones before it, is refused
/// here. Nothing is written.
///
/// # Errors
/// [`Error::Ledger`](crate::Error::Ledger) when the ledger refuses, or is damaged.
pub(crate) fn check(study: &Study, specs: &[ReleaseSpec]) -> Result<()> {
    let config = study.config();
    let (Some(period), Some(path)) = (config.period, &config.ledger) else {
        return Ok(());
    };
    let label = config
        .period_label
        .clone()
        .unwrap_or_else(|| period.default_label());
    let requests: Vec<Request> = specs
        .iter()
        .map(|spec| {
            // Given subscribers (DP always gives them) make the factors known before the
            // data.
            let factors = spec.subscribers.as_ref().map(|given| {
                factors_digest(
                    &config.key,
                    SubscriberSource::Given,
                    given,
                    &spec.roaming_factors,
                )
            });
            request(study, spec, period, &label, factors)
        })
        .collect();
    Ledger::new(path.clone()).check_all(&requests).map(|_| ())
}

/// Records a release in the ledger, after the data are read and before anything is
/// released: the ledger refuses it (budget, another cut, other factors) atomically, under
/// its lock. `None` without a ledger.
///
/// # Errors
/// [`Error::Ledger`](crate::Error::Ledger) when the ledger refuses, or cannot be written.
pub(crate) fn record(
    study: &Study,
    spec: &ReleaseSpec,
    period: Period,
    label: &str,
    factors: String,
) -> Result<Option<Recorded>> {
    let Some(path) = &study.config().ledger else {
        return Ok(None);
    };
    let request = request(study, spec, period, label, Some(factors));
    Ledger::new(path.clone()).record(&request).map(Some)
}
