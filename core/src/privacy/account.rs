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

use super::Privacy;
use super::ledger::{Ledger, PrivacyMode, Recorded, Request};
use crate::config::Period;
use crate::error::Result;
use crate::extrapolate::{SubscriberSource, normalise_roaming_factors};
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
    mac.finalize().into_bytes()[..bytes].iter().fold(
        String::with_capacity(2 * bytes),
        |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        },
    )
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
    let canonical = json!({
        "subscribers": source,
        "counts": subscribers,
        "roaming_factors": normalise_roaming_factors(roaming).unwrap_or_default(),
    })
    .to_string();
    keyed_digest(key, b"crowdtally/factors", &[canonical.as_bytes()], 32)
}

/// The request for a release of `spec` in the period `period` labelled `label`, with the
/// factors digest once it is known; `None` without a ledger.
fn request(
    study: &Study,
    spec: &ReleaseSpec,
    period: Option<Period>,
    label: &str,
    factors: Option<String>,
) -> Option<(Ledger, Request)> {
    let config = study.config();
    let ledger = Ledger::new(config.ledger.clone()?);
    let mut entry_spec = parameters(study, spec, period, Some(label));
    entry_spec["zones"] = json!(
        study
            .geography()
            .zones()
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>()
    );
    let (mode, rho) = match &spec.privacy {
        Privacy::KAnonymity => (PrivacyMode::KAnonymity, None),
        Privacy::DifferentialPrivacy(dp) => (PrivacyMode::DifferentialPrivacy, Some(dp.rho)),
    };
    Some((
        ledger,
        Request {
            label: label.to_owned(),
            fingerprint: fingerprint(&config.key, label),
            factors,
            mode,
            spec: entry_spec,
            rho,
            budget: config.budget,
            allow_differencing: spec.allow_differencing,
        },
    ))
}

/// Checks a release against the ledger before any data are read, when its period (and
/// so its label) is given: a differentially private release past the budget, or a
/// k-anonymity release of another cut of the period, is refused here. Nothing is written.
///
/// # Errors
/// [`Error::Ledger`](crate::Error::Ledger) when the ledger refuses, or is damaged.
pub(crate) fn check(study: &Study, spec: &ReleaseSpec) -> Result<()> {
    let config = study.config();
    let Some(period) = config.period else {
        return Ok(());
    };
    let label = config
        .period_label
        .clone()
        .unwrap_or_else(|| period.default_label());
    // Given subscribers (DP always gives them) make the factors known before the data.
    let factors = spec.subscribers.as_ref().map(|given| {
        factors_digest(
            &config.key,
            SubscriberSource::Given,
            given,
            &spec.roaming_factors,
        )
    });
    match request(study, spec, Some(period), &label, factors) {
        Some((ledger, request)) => ledger.check(&request).map(|_| ()),
        None => Ok(()),
    }
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
    match request(study, spec, Some(period), label, Some(factors)) {
        Some((ledger, request)) => ledger.record(&request).map(Some),
        None => Ok(None),
    }
}
