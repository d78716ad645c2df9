//! The re-identification risk audit on the synthetic city: its measures' shapes and
//! orders, determinism, and that coarser points single out fewer devices.

use crowdtally::risk::{Spatial, Temporal};
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{Prepared, RiskSpec, RunOptions, Study};

fn prepared() -> &'static Prepared {
    static PREPARED: std::sync::OnceLock<Prepared> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| {
        let mut config = ScenarioConfig::default();
        config.scale = 0.003;
        config.days = 14;
        let scenario = Scenario::new(config).unwrap();
        let study = Study::new(scenario.geography().clone(), scenario.run_config()).unwrap();
        study
            .prepare(scenario.batches(20_000), &RunOptions::default())
            .unwrap()
    })
}

fn unicity(risk: &crowdtally::Risk) -> Vec<(u64, f64)> {
    risk.rows
        .iter()
        .filter(|r| r.measure == "unicity")
        .map(|r| (r.points.unwrap(), r.share_unique))
        .collect()
}

#[test]
fn more_points_single_out_more_devices_and_coarser_points_fewer() {
    let fine = prepared().risk(&RiskSpec::default()).unwrap();
    let shares = unicity(&fine);
    assert_eq!(
        shares.iter().map(|s| s.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // Each number of points draws its own points, so the shares rise only up to the
    // chance of the draws.
    assert!(
        shares.windows(2).all(|w| w[0].1 <= w[1].1 + 0.01),
        "{shares:?}"
    );
    assert!(shares.iter().all(|&(_, s)| (0.0..=1.0).contains(&s)));
    // Hourly cells single out most devices with four points, as in the literature.
    assert!(shares[3].1 > 0.9, "{shares:?}");
    let mut coarse = RiskSpec::default();
    coarse.spatial = Spatial::Region("municipality".into());
    coarse.temporal = Temporal::Day;
    let coarse = prepared().risk(&coarse).unwrap();
    for (f, c) in shares.iter().zip(unicity(&coarse)) {
        assert!(c.1 <= f.1, "{c:?} against {f:?}");
    }
}

#[test]
fn home_work_goes_finest_level_first_and_nobody_is_alone_in_the_country() {
    let risk = prepared().risk(&RiskSpec::default()).unwrap();
    let levels: Vec<&str> = risk
        .rows
        .iter()
        .filter(|r| r.measure == "home_work")
        .map(|r| r.granularity.as_str())
        .collect();
    assert_eq!(levels.first(), Some(&"municipality"));
    assert_eq!(levels.last(), Some(&"country"));
    let country = risk
        .rows
        .iter()
        .rfind(|r| r.measure == "home_work")
        .unwrap();
    assert!(country.devices > 100 && country.unique == 0);
    let pattern = risk
        .rows
        .iter()
        .find(|r| r.measure == "visit_pattern")
        .unwrap();
    assert!(pattern.devices > 0 && pattern.below_k.unwrap() >= pattern.unique);
}

#[test]
fn a_seed_fixes_the_numbers_and_sampling_gives_an_interval() {
    let mut spec = RiskSpec::default();
    spec.samples = Some(300);
    spec.seed = 4;
    let a = prepared().risk(&spec).unwrap();
    let b = prepared().risk(&spec).unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.report["devices_sampled"], 300);
    let one = &a.rows[0];
    assert!(one.share_low < one.share_unique && one.share_unique < one.share_high);
    let table = a.to_record_batch().unwrap();
    assert_eq!(table.num_rows(), a.rows.len());
    assert_eq!(table.schema(), crowdtally::Risk::schema());
}

#[test]
fn a_run_shard_by_shard_gives_the_audit_of_the_prepared_pings() {
    let mut config = ScenarioConfig::default();
    config.scale = 0.003;
    config.days = 14;
    let scenario = Scenario::new(config).unwrap();
    let study = Study::new(scenario.geography().clone(), scenario.run_config()).unwrap();
    let spill = tempfile::tempdir().unwrap();
    // A budget small enough for several shards, spilled.
    let mut options = RunOptions::default();
    options.memory_limit = Some(crowdtally::MIN_MEMORY_LIMIT * 8);
    options.spill_dir = Some(spill.path().to_owned());
    for samples in [None, Some(250)] {
        let mut spec = RiskSpec::default();
        spec.samples = samples;
        spec.seed = 5;
        let in_memory = prepared().risk(&spec).unwrap();
        let mut run = study.run(&options).unwrap();
        for batch in scenario.batches(2_000) {
            run.push(&batch.unwrap()).unwrap();
        }
        let by_shards = run.risk(&spec).unwrap();
        assert_eq!(by_shards.rows, in_memory.rows, "samples {samples:?}");
        assert_eq!(by_shards.report, in_memory.report);
    }
    // Nothing is left in the spill directory.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}
