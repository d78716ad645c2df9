//! Privacy across releases (method §10): the differential-privacy mode's contribution
//! bounds, public keys and post-processing, and the ledger that refuses what would break
//! either mode. With a huge ρ the noise is far below one unit (σ about 10⁻⁶), so a DP
//! release equals the bounded exact counts: that is how the bounds are tested from
//! outside; the noise itself is tested in the crate.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use crowdtally::privacy::ledger::Ledger;
use crowdtally::{
    BucketKind, Config, DeviceClass, DpSpec, Error, Geography, Privacy, Release, ReleaseClass,
    ReleaseSpec, RunOptions, Study,
};
use crowdtally_harness::{
    KORTRIJK_CELL, MARKT_CELL, Ping, QUIET_CELL, STATION_CELL, STREET_CELL, T0, batch, config,
    fixture_builder, local_period,
};
use proptest::prelude::*;

/// A ρ so large that no noise survives: σ² = Δ² / (2 · share · ρ) is below 10⁻¹².
const HUGE_RHO: f64 = 1e18;

/// Ten zones `z0`..`z9` on ten resolution-9 cells of `kortrijk` that no fixture zone
/// holds, and the fixture regions and zones.
fn ten_zones() -> (Geography, Vec<u64>) {
    let taken = [QUIET_CELL, MARKT_CELL, STREET_CELL, STATION_CELL];
    let cells: Vec<u64> = h3o::CellIndex::try_from(KORTRIJK_CELL)
        .unwrap()
        .children(h3o::Resolution::Nine)
        .map(u64::from)
        .filter(|c| !taken.contains(c))
        .take(10)
        .collect();
    let mut builder = fixture_builder();
    for (z, &cell) in cells.iter().enumerate() {
        builder = builder.zone(&format!("z{z}"), None, &[cell]);
    }
    (builder.build().unwrap(), cells)
}

/// The configuration of a two-day period, with the given k.
fn two_days() -> Config {
    let mut config = config();
    config.period = Some(local_period("2026-07-01", "2026-07-03"));
    config
}

fn dp(rho: f64) -> DpSpec {
    DpSpec::new(rho)
}

/// A DP spec for the fixture: billing subscribers for every leaf.
fn dp_spec(bucket: BucketKind, privacy: DpSpec) -> ReleaseSpec {
    let mut spec = ReleaseSpec::new(bucket);
    spec.subscribers = Some(BTreeMap::from([
        ("kortrijk".to_owned(), 800),
        ("menen".to_owned(), 330),
        ("brussel".to_owned(), 12_000),
    ]));
    spec.roaming_factors.insert("*".to_owned(), 2.0);
    spec.privacy = Privacy::DifferentialPrivacy(privacy);
    spec
}

fn release(geography: &Geography, config: &Config, rows: &[Ping], spec: &ReleaseSpec) -> Release {
    Study::new(geography.clone(), config.clone())
        .unwrap()
        .release([Ok(batch(rows))], spec, &RunOptions::default())
        .unwrap()
}

/// The total rows of zones `z*`, as (zone, devices, visits).
fn zone_totals(release: &Release) -> Vec<(String, u64, u64)> {
    release
        .rows
        .iter()
        .filter(|row| row.origin == "*" && row.zone.starts_with('z'))
        .map(|row| {
            let m = row.measures.unwrap();
            (row.zone.to_string(), m.devices, m.visits)
        })
        .collect()
}

/// `devices` devices, each with one ping in every zone cell, an hour apart.
fn everywhere(devices: usize, cells: &[u64]) -> Vec<Ping> {
    let mut rows = Vec::new();
    for d in 0..devices {
        for (z, &cell) in cells.iter().enumerate() {
            rows.push(Ping::in_cell(&format!("d{d}"), T0 + 3_600 * z as i64, cell));
        }
    }
    rows
}

#[test]
fn a_device_counts_in_at_most_max_partitions_pairs() {
    let (geography, cells) = ten_zones();
    let mut privacy = dp(HUGE_RHO);
    privacy.max_partitions = Some(3);
    let spec = dp_spec(BucketKind::Period, privacy);
    // 50 devices in all 10 zones, one bucket: each keeps 3 of its 10 pairs, the same 3
    // (the keyed order depends on the key and the period, not on the device).
    let released = release(&geography, &two_days(), &everywhere(50, &cells), &spec);
    let totals = zone_totals(&released);
    assert_eq!(totals.len(), 10);
    assert_eq!(totals.iter().map(|t| t.1).sum::<u64>(), 150, "{totals:?}");
    assert_eq!(totals.iter().filter(|t| t.1 == 50).count(), 3, "{totals:?}");
    let privacy = &released.report.privacy;
    assert_eq!(privacy["mode"], "differential_privacy");
    assert_eq!(privacy["bounds"]["max_partitions"], 3);
    assert_eq!(privacy["dropped_by_bounding"]["pairs"], 50 * 7);
    // Without the bound (the grid's 16 pairs here: 14 zones and 2 categories, 1 bucket,
    // at most 64) every device counts in its 10 zones.
    let free = release(
        &geography,
        &two_days(),
        &everywhere(50, &cells),
        &dp_spec(BucketKind::Period, dp(HUGE_RHO)),
    );
    assert_eq!(zone_totals(&free).iter().map(|t| t.1).sum::<u64>(), 500);
    assert_eq!(free.report.privacy["bounds"]["max_partitions"], 16);
}

#[test]
fn many_pings_in_one_pair_add_one_device_and_at_most_max_visits() {
    let (geography, cells) = ten_zones();
    // 500 pings in z0, 4 h apart (beyond max_gap): 500 visits, one device.
    let rows: Vec<Ping> = (0..500)
        .map(|i| Ping::in_cell("busy", T0 - 86_400 * 10 + 4 * 3_600 * i, cells[0]))
        .collect();
    let mut config = two_days();
    config.period = Some(local_period("2026-06-20", "2026-10-01"));
    // Day and night in kortrijk make the device a resident: release every class.
    let mut spec = dp_spec(BucketKind::Period, dp(HUGE_RHO));
    spec.classes = vec![
        ReleaseClass::Visitor,
        ReleaseClass::Device(DeviceClass::Resident),
        ReleaseClass::Device(DeviceClass::Regular),
    ];
    let released = release(&geography, &config, &rows, &spec);
    let z0: (u64, u64) = zone_totals(&released)
        .into_iter()
        .filter(|t| t.0 == "z0")
        .fold((0, 0), |sum, t| (sum.0 + t.1, sum.1 + t.2));
    assert_eq!(z0, (1, 3), "one device, its first 3 visits");
    assert_eq!(
        released.report.privacy["dropped_by_bounding"]["visits"],
        497
    );
    let banded: u64 = released
        .rows
        .iter()
        .filter(|r| &*r.zone == "z0" && r.origin == "*")
        .flat_map(|r| r.measures.unwrap().bands)
        .map(|b| b.unwrap())
        .sum();
    assert_eq!(banded, 3, "each kept visit in one band");
}

#[test]
fn every_declared_key_is_released_whatever_the_data() {
    let (geography, cells) = ten_zones();
    let mut privacy = dp(HUGE_RHO);
    privacy.countries = vec!["nl".into(), "FR".into()];
    let spec = dp_spec(BucketKind::Day, privacy);
    let keys = |release: &Release| -> Vec<(String, String, String)> {
        release
            .rows
            .iter()
            .map(|r| {
                (
                    r.zone.to_string(),
                    r.bucket_start.to_string(),
                    r.origin.clone(),
                )
            })
            .collect()
    };
    let empty = release(&geography, &two_days(), &[], &spec);
    let busy = release(&geography, &two_days(), &everywhere(7, &cells), &spec);
    assert_eq!(keys(&empty), keys(&busy));
    // 16 zones (categories included) × 2 days × (total + brussel, country:FR,
    // country:NL, kortrijk, menen, other:abroad, unknown).
    assert_eq!(empty.rows.len(), 16 * 2 * 8);
    let origins: Vec<&str> = empty.rows[..8].iter().map(|r| r.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "*",
            "brussel",
            "country:FR",
            "country:NL",
            "kortrijk",
            "menen",
            "other:abroad",
            "unknown"
        ]
    );
    assert!(
        empty
            .rows
            .iter()
            .all(|r| !r.suppressed && r.measures.is_some())
    );
    // Roamers of an undeclared country are counted in other:abroad.
    let rows: Vec<Ping> = (0..3)
        .map(|i| Ping::in_cell(&format!("r{i}"), T0, cells[0]).country("DE"))
        .collect();
    let roamers = release(&geography, &two_days(), &rows, &spec);
    let abroad = roamers
        .rows
        .iter()
        .find(|r| {
            &*r.zone == "z0"
                && r.origin == "other:abroad"
                && r.bucket_start.starts_with("2026-07-01")
        })
        .unwrap();
    assert_eq!(abroad.measures.unwrap().devices, 3);
    // Without a factor for every other country, the warning names the pooled key.
    let mut no_default = spec.clone();
    no_default.roaming_factors.clear();
    let unfactored = release(&geography, &two_days(), &rows, &no_default);
    let warning = unfactored
        .report
        .warnings
        .iter()
        .find(|w| w.contains("no roaming factor"))
        .unwrap();
    assert!(
        warning.contains("for country:FR, country:NL, other:abroad:"),
        "{warning}"
    );
}

#[test]
fn estimates_and_clamping_come_after_the_noise() {
    let (geography, cells) = ten_zones();
    // ρ = 0.01: σ_devices = √(32 / 0.01) ≈ 57 (32 pairs: 16 zones × 2 days), so empty
    // keys are pushed below or above 0 alike.
    let spec = dp_spec(BucketKind::Day, dp(0.01));
    let released = release(&geography, &two_days(), &everywhere(20, &cells), &spec);
    let mut positive_from_empty = 0;
    for row in &released.rows {
        let measures = row.measures.unwrap();
        // Clamping after the noise: no count below 0, yet empty keys show positive noise.
        if row.origin != "*" && row.origin != "unknown" && measures.devices > 0 {
            positive_from_empty += 1;
        }
        // Extrapolation after the noise: an origin row's estimate is its released
        // (integer) count times its factor, never noise added to an estimate.
        if let (Some(estimate), true) = (row.estimate, row.origin == "menen") {
            let factor = 33_000.0 / 330.0;
            assert!(
                (estimate.devices - measures.devices as f64 * factor).abs() < 1e-6,
                "{row:?}"
            );
            assert!(estimate.low <= estimate.devices && estimate.devices <= estimate.high);
        }
    }
    assert!(
        positive_from_empty > 20,
        "{positive_from_empty} empty keys got positive noise"
    );
    let privacy = &released.report.privacy;
    assert_eq!(privacy["bounds"]["max_partitions"].as_u64(), Some(32));
    let m = 32.0_f64;
    // σ² = Δ² / (2 ρ_devices), Δ² = m, ρ_devices = 0.5 ρ.
    let sigma = privacy["sigma"]["devices"].as_f64().unwrap();
    assert!((sigma - (m / 0.01).sqrt()).abs() < 1e-9, "{sigma}");
}

#[test]
fn the_dp_mode_needs_a_period_billing_subscribers_and_a_valid_rho() {
    let (geography, _) = ten_zones();
    let study = |config: Config| Study::new(geography.clone(), config).unwrap();
    let field = |config: Config, spec: &ReleaseSpec| {
        study(config)
            .release(std::iter::empty(), spec, &RunOptions::default())
            .unwrap_err()
            .field()
            .map(str::to_owned)
    };
    let mut detected = dp_spec(BucketKind::Day, dp(1.0));
    detected.subscribers = None;
    assert_eq!(field(two_days(), &detected).as_deref(), Some("subscribers"));
    assert_eq!(
        field(config(), &dp_spec(BucketKind::Day, dp(1.0))).as_deref(),
        Some("period")
    );
    for rho in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            field(two_days(), &dp_spec(BucketKind::Day, dp(rho))).as_deref(),
            Some("rho")
        );
    }
    let mut bad_country = dp(1.0);
    bad_country.countries = vec!["France".into()];
    assert_eq!(
        field(two_days(), &dp_spec(BucketKind::Day, bad_country)).as_deref(),
        Some("countries")
    );
}

fn ledger_config(dir: &tempfile::TempDir, budget: Option<f64>) -> Config {
    let mut config = two_days();
    config.ledger = Some(dir.path().join("ledger.json"));
    config.budget = budget;
    config
}

#[test]
fn the_ledger_refuses_a_dp_release_past_the_budget_before_reading_any_data() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let config = ledger_config(&dir, Some(2.0));
    let study = Study::new(geography.clone(), config.clone()).unwrap();
    let spec = dp_spec(BucketKind::Day, dp(0.5));
    let rows = everywhere(5, &cells);
    for release in 1..=4 {
        let released = study
            .release([Ok(batch(&rows))], &spec, &RunOptions::default())
            .unwrap();
        let ledger = &released.report.privacy["ledger"];
        assert_eq!(ledger["releases"], release);
        assert!((ledger["spent_rho"].as_f64().unwrap() - 0.5 * f64::from(release)).abs() < 1e-12);
    }
    // The fifth is refused before any batch is pulled.
    let pulled = std::cell::Cell::new(false);
    let batches = std::iter::from_fn(|| {
        pulled.set(true);
        None::<Result<RecordBatch, arrow_schema::ArrowError>>
    });
    let error = study
        .release(batches, &spec, &RunOptions::default())
        .unwrap_err();
    assert!(!pulled.get(), "no data were read");
    assert!(matches!(error, Error::Ledger { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("spent 2")
            && message.contains("asked 0.5")
            && message.contains("budget 2"),
        "{message}"
    );
    // The ledger names no key and no subscriber count.
    let text = std::fs::read_to_string(dir.path().join("ledger.json")).unwrap();
    assert!(!text.contains("fixture key"), "{text}");
    assert!(!text.contains("12000"), "{text}");
    assert_eq!(
        Ledger::new(dir.path().join("ledger.json"))
            .read()
            .unwrap()
            .periods[0]
            .releases
            .len(),
        4
    );
}

#[test]
fn the_ledger_refuses_another_cut_or_other_factors_of_a_released_period() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let config = ledger_config(&dir, None);
    let study = Study::new(geography.clone(), config.clone()).unwrap();
    let rows = everywhere(5, &cells);
    let run = |spec: &ReleaseSpec| study.release([Ok(batch(&rows))], spec, &RunOptions::default());
    let day = ReleaseSpec::new(BucketKind::Day);
    let first = run(&day).unwrap();
    assert_eq!(first.report.privacy["ledger"]["releases"], 1);
    // The same cut again adds nothing and passes.
    run(&day).unwrap();
    // Another bucket of the same period is refused, before any data are read...
    let error = study
        .authorize(&[ReleaseSpec::new(BucketKind::Hour)])
        .unwrap_err();
    assert!(matches!(error, Error::Ledger { .. }), "{error}");
    assert!(error.to_string().contains("allow_differencing"), "{error}");
    // ...unless allowed, which the ledger and the report record.
    let mut allowed = ReleaseSpec::new(BucketKind::Hour);
    allowed.allow_differencing = true;
    let hour = run(&allowed).unwrap();
    assert_eq!(hour.report.privacy["allow_differencing"], true);
    assert_eq!(hour.report.privacy["ledger"]["allow_differencing"], true);
    // Crafted factors (one leaf's subscribers changed) are refused whatever the cut.
    let mut crafted = ReleaseSpec::new(BucketKind::Day);
    crafted.subscribers = Some(BTreeMap::from([("kortrijk".to_owned(), 1)]));
    let error = run(&crafted).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("other subscribers or roaming factors"),
        "{error}"
    );
    let mut roaming = ReleaseSpec::new(BucketKind::Day);
    roaming.roaming_factors.insert("FR".to_owned(), 1_000.0);
    assert!(matches!(run(&roaming), Err(Error::Ledger { .. })));
}

/// Batches that fail the test if pulled: a release refused before reading pulls none.
fn never_read() -> impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>> {
    std::iter::from_fn(|| panic!("the pings were read"))
}

#[test]
fn a_batch_of_releases_is_checked_as_a_whole_before_reading() {
    let (geography, _) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let study = Study::new(geography, ledger_config(&dir, Some(1.0))).unwrap();
    // Each fits the budget alone; together they pass it.
    let spec = dp_spec(BucketKind::Day, dp(0.6));
    let error = study
        .releases(never_read(), &[spec.clone(), spec], &RunOptions::default())
        .unwrap_err();
    assert!(
        error.to_string().contains("spent 0.6, asked 0.6, budget 1"),
        "{error}"
    );
    // Two cuts of one period in one batch, as two in a row.
    let (day, hour) = (
        ReleaseSpec::new(BucketKind::Day),
        ReleaseSpec::new(BucketKind::Hour),
    );
    let error = study
        .releases(
            never_read(),
            &[day.clone(), hour.clone()],
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("allow_differencing"), "{error}");
    let mut allowed = hour;
    allowed.allow_differencing = true;
    study.authorize(&[day, allowed]).unwrap();
    assert!(
        !dir.path().join("ledger.json").exists(),
        "checks write nothing"
    );
}

#[test]
fn the_first_dp_release_fixes_the_budget_and_modes_mixed_are_reported() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let rows = everywhere(5, &cells);
    let release = |budget: f64, spec: &ReleaseSpec| {
        Study::new(geography.clone(), ledger_config(&dir, Some(budget)))
            .unwrap()
            .release([Ok(batch(&rows))], spec, &RunOptions::default())
    };
    let dp_day = dp_spec(BucketKind::Day, dp(0.5));
    let first = release(1.0, &dp_day).unwrap();
    assert_eq!(first.report.privacy["ledger"]["mixed_modes"], false);
    // Raising the budget in the configuration does not raise the period's.
    let error = release(5.0, &dp_day).unwrap_err();
    assert!(error.to_string().contains("fixed at 1"), "{error}");
    // A k-anonymity release of the period, with the same factors, is exact: both
    // reports say the period is now released in both modes.
    let mut exact = ReleaseSpec::new(BucketKind::Day);
    exact.subscribers.clone_from(&dp_day.subscribers);
    exact.roaming_factors.clone_from(&dp_day.roaming_factors);
    let kanon = release(1.0, &exact).unwrap();
    assert_eq!(kanon.report.privacy["ledger"]["mixed_modes"], true);
    assert!(
        kanon
            .report
            .warnings
            .iter()
            .any(|w| w.contains("both k-anonymity"))
    );
    let second = release(1.0, &dp_day).unwrap();
    assert!(
        second
            .report
            .warnings
            .iter()
            .any(|w| w.contains("both k-anonymity"))
    );
    assert!(second.report.privacy["ledger"].get("path").is_none());
    // Without a ledger, a DP release says that nothing keeps count.
    let unrecorded = Study::new(geography.clone(), two_days())
        .unwrap()
        .release([Ok(batch(&rows))], &dp_day, &RunOptions::default())
        .unwrap();
    assert!(
        unrecorded
            .report
            .warnings
            .iter()
            .any(|w| w.contains("no ledger"))
    );
}

#[test]
fn a_cut_is_the_same_whatever_the_order_of_its_classes_and_its_empty_counts() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let study = Study::new(geography, ledger_config(&dir, None)).unwrap();
    let rows = everywhere(5, &cells);
    let mut spec = ReleaseSpec::new(BucketKind::Day);
    spec.classes = vec![
        ReleaseClass::Device(DeviceClass::DayVisitor),
        ReleaseClass::Device(DeviceClass::OvernightVisitor),
    ];
    spec.subscribers = Some(BTreeMap::from([("kortrijk".to_owned(), 800)]));
    study
        .release([Ok(batch(&rows))], &spec, &RunOptions::default())
        .unwrap();
    spec.classes.reverse();
    spec.subscribers = Some(BTreeMap::from([
        ("kortrijk".to_owned(), 800),
        ("menen".to_owned(), 0),
    ]));
    study.authorize(std::slice::from_ref(&spec)).unwrap();
}

#[test]
fn zones_redrawn_under_the_same_ids_are_another_cut() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let spec = ReleaseSpec::new(BucketKind::Day);
    let rows = everywhere(5, &cells);
    Study::new(geography, ledger_config(&dir, None))
        .unwrap()
        .release([Ok(batch(&rows))], &spec, &RunOptions::default())
        .unwrap();
    // z0 now also covers z1's cell.
    let mut builder = fixture_builder();
    for z in 0..cells.len() {
        let zone_cells: &[u64] = if z == 0 { &cells[..2] } else { &cells[z..=z] };
        builder = builder.zone(&format!("z{z}"), None, zone_cells);
    }
    let redrawn = Study::new(builder.build().unwrap(), ledger_config(&dir, None)).unwrap();
    let error = redrawn.authorize(std::slice::from_ref(&spec)).unwrap_err();
    assert!(error.to_string().contains("geography"), "{error}");
}

#[test]
fn bounds_that_give_no_sensitivity_are_refused_before_the_ledger_spends() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let study = Study::new(geography, ledger_config(&dir, Some(1.0))).unwrap();
    let mut huge = dp(0.5);
    // Its square times max_partitions is beyond 2^128: no σ could be computed.
    huge.max_dwell_s = Some(i64::MAX);
    let error = study
        .release(
            [Ok(batch(&everywhere(3, &cells)))],
            &dp_spec(BucketKind::Day, huge),
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&error, Error::Config { field, .. } if *field == "max_dwell_s"),
        "{error}"
    );
    assert!(
        !dir.path().join("ledger.json").exists(),
        "nothing was spent"
    );
}

#[test]
fn an_aggregate_bounded_otherwise_or_tampered_with_is_refused() {
    let (geography, cells) = ten_zones();
    let study = Study::new(geography, two_days()).unwrap();
    let prepared = study
        .prepare([Ok(batch(&everywhere(4, &cells)))], &RunOptions::default())
        .unwrap();
    let mut two = dp(HUGE_RHO);
    two.max_partitions = Some(2);
    let bounded = prepared
        .aggregate(&dp_spec(BucketKind::Day, two))
        .unwrap()
        .unwrap();
    let mut three = dp(HUGE_RHO);
    three.max_partitions = Some(3);
    let error = study
        .release_aggregate(
            Some(&bounded),
            prepared.report(),
            &dp_spec(BucketKind::Day, three),
        )
        .unwrap_err();
    assert!(error.to_string().contains("contribution bounds"), "{error}");
    // A row pointing past the aggregate's origins, as a tampered file could hold.
    let spec = ReleaseSpec::new(BucketKind::Day);
    let exact = prepared.aggregate(&spec).unwrap().unwrap();
    let mut value = serde_json::to_value(&exact).unwrap();
    value["rows"][0][0]["origin"] = serde_json::json!(999);
    let tampered: crowdtally::Aggregate = serde_json::from_value(value).unwrap();
    let error = study
        .release_aggregate(Some(&tampered), prepared.report(), &spec)
        .unwrap_err();
    assert!(
        matches!(&error, Error::Config { field, .. } if *field == "aggregate"),
        "{error}"
    );
}

#[test]
fn a_damaged_ledger_is_an_error_and_never_reset() {
    let (geography, cells) = ten_zones();
    let dir = tempfile::tempdir().unwrap();
    let config = ledger_config(&dir, Some(1.0));
    let study = Study::new(geography, config).unwrap();
    let spec = dp_spec(BucketKind::Day, dp(0.5));
    study
        .release(
            [Ok(batch(&everywhere(3, &cells)))],
            &spec,
            &RunOptions::default(),
        )
        .unwrap();
    let path = dir.path().join("ledger.json");
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let error = study
        .release(std::iter::empty(), &spec, &RunOptions::default())
        .unwrap_err();
    assert!(matches!(error, Error::Ledger { .. }), "{error}");
    assert!(error.to_string().contains("damaged"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), whole[..whole.len() / 2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Removing one device changes each released count by at most its bound: devices by
    /// 1, visits and bands by max_visits, dwell by max_dwell_s, in at most
    /// max_partitions (zone, bucket) pairs of its class.
    #[test]
    fn one_device_moves_each_count_by_at_most_its_bound(
        visits in proptest::collection::vec((0_usize..12, 0_usize..10, 0_i64..48, 1_usize..4), 1..60),
        removed in 0_usize..12,
        max_partitions in 1_u32..6,
    ) {
        let (geography, cells) = ten_zones();
        let mut privacy = dp(HUGE_RHO);
        privacy.max_partitions = Some(max_partitions);
        privacy.max_visits = 2;
        privacy.max_dwell_s = Some(2 * 3_600);
        let spec = dp_spec(BucketKind::Day, privacy);
        let rows_of = |skip: Option<usize>| -> Vec<Ping> {
            let mut rows = Vec::new();
            for &(device, zone, hour, pings) in visits.iter().filter(|v| Some(v.0) != skip) {
                for p in 0..pings {
                    let ts = T0 + 3_600 * hour + 600 * p as i64;
                    rows.push(Ping::in_cell(&format!("d{device}"), ts, cells[zone]));
                }
            }
            rows
        };
        let with = release(&geography, &two_days(), &rows_of(None), &spec);
        let without = release(&geography, &two_days(), &rows_of(Some(removed)), &spec);
        prop_assert_eq!(with.rows.len(), without.rows.len());
        let mut changed_pairs = std::collections::BTreeSet::new();
        for (a, b) in with.rows.iter().zip(&without.rows) {
            prop_assert_eq!((&a.zone, &a.bucket_start, &a.origin), (&b.zone, &b.bucket_start, &b.origin));
            let (a, m) = (a.measures.unwrap(), b.measures.unwrap());
            prop_assert!(a.devices.abs_diff(m.devices) <= 1);
            prop_assert!(a.visits.abs_diff(m.visits) <= 2);
            prop_assert!(a.dwell_s.abs_diff(m.dwell_s) <= 2 * 3_600);
            for (x, y) in a.bands.iter().zip(m.bands) {
                prop_assert!(x.unwrap_or(0).abs_diff(y.unwrap_or(0)) <= 2);
            }
            if a != m {
                changed_pairs.insert((b.zone.clone(), b.bucket_start.clone()));
            }
        }
        prop_assert!(changed_pairs.len() <= max_partitions as usize, "{} pairs changed", changed_pairs.len());
    }

    /// The rows of a DP release are the declared keys, whatever the data: two random
    /// data sets (roamers included) give the same (zone, bucket, origin) rows.
    #[test]
    fn the_rows_depend_only_on_the_declared_keys(
        first in proptest::collection::vec((0_usize..40, 0_usize..10, 0_i64..48, 0_usize..4), 0..40),
        second in proptest::collection::vec((0_usize..40, 0_usize..10, 0_i64..48, 0_usize..4), 0..40),
    ) {
        let (geography, cells) = ten_zones();
        let mut privacy = dp(1.0);
        privacy.countries = vec!["FR".into()];
        let spec = dp_spec(BucketKind::Day, privacy);
        let countries = [None, Some("FR"), Some("DE"), Some("NL")];
        let rows_of = |visits: &[(usize, usize, i64, usize)]| -> Vec<Ping> {
            visits
                .iter()
                .flat_map(|&(device, zone, hour, country)| {
                    let cell = cells[zone];
                    (0..3).map(move |p| {
                        let ping = Ping::in_cell(&format!("d{device}"), T0 + 3_600 * hour + 600 * p, cell);
                        match countries[country] {
                            Some(code) => ping.country(code),
                            None => ping,
                        }
                    })
                })
                .collect()
        };
        let keys = |release: &Release| -> Vec<(String, String, String)> {
            release.rows.iter().map(|r| (r.zone.to_string(), r.bucket_start.to_string(), r.origin.clone())).collect()
        };
        let a = release(&geography, &two_days(), &rows_of(&first), &spec);
        let b = release(&geography, &two_days(), &rows_of(&second), &spec);
        prop_assert_eq!(keys(&a), keys(&b));
        prop_assert!(a.rows.iter().chain(&b.rows).all(|r| !r.suppressed && r.measures.is_some()));
    }
}
