//! The front door: a `Study` runs every stage, several releases come from one reading of
//! the pings and equal separate runs, partial aggregates merged elsewhere release the
//! same table, a run stops on its signal, and errors keep their cause.

use std::error::Error as _;
use std::sync::Arc;

use arrow_array::RecordBatch;
use crowdtally::synth::Scenario;
use crowdtally::{
    Aggregate, BucketKind, Error, MIN_MEMORY_LIMIT, Progress, Release, ReleaseSpec, RunOptions,
    Stage, StopSignal, Study,
};

fn scenario(seed: u64) -> Scenario {
    crowdtally_harness::small_city(4, seed)
}

fn batches(scenario: &Scenario) -> Vec<RecordBatch> {
    crowdtally_harness::city_batches(scenario, 200)
}

/// The scenario's study, with k = 5 so that a small city has released rows.
fn study(scenario: &Scenario) -> Study {
    let mut config = scenario.run_config();
    config.k = 5;
    Study::new(scenario.geography().clone(), config).expect("study")
}

fn specs() -> Vec<ReleaseSpec> {
    [BucketKind::Period, BucketKind::Day, BucketKind::Hour]
        .into_iter()
        .map(|bucket| {
            let mut spec = ReleaseSpec::new(bucket);
            spec.roaming_factors.insert("*".into(), 3.0);
            spec
        })
        .collect()
}

fn assert_same(a: &Release, b: &Release) {
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.report.to_json(), b.report.to_json());
}

#[test]
fn several_releases_from_one_reading_equal_separate_runs() {
    let scenario = scenario(21);
    let batches = batches(&scenario);
    let study = study(&scenario);
    let run = RunOptions::default();
    let together = study
        .releases(batches.iter().cloned().map(Ok), &specs(), &run)
        .unwrap();
    let prepared = study
        .prepare(batches.iter().cloned().map(Ok), &run)
        .unwrap();
    let from_prepared = prepared.releases(&specs()).unwrap();
    for ((spec, one_read), from_memory) in specs().iter().zip(&together).zip(&from_prepared) {
        let alone = study
            .release(batches.iter().cloned().map(Ok), spec, &run)
            .unwrap();
        assert!(alone.report.devices.total > 50);
        assert!(alone.rows.iter().any(|row| !row.suppressed), "{spec:?}");
        assert_same(one_read, &alone);
        assert_same(from_memory, &alone);
    }
}

#[test]
fn aggregates_merged_from_other_runs_release_the_same_table() {
    let scenario = scenario(22);
    let batches = batches(&scenario);
    let study = study(&scenario);
    let spec = &specs()[1];
    let whole = study
        .release(
            batches.iter().cloned().map(Ok),
            spec,
            &RunOptions::default(),
        )
        .unwrap();
    // Two runs over the two halves of the devices (batches hold whole people), merged.
    let (first, second) = batches.split_at(batches.len() / 2);
    let mut parts = Vec::new();
    let mut quality = None;
    for half in [first, second] {
        let mut run = study.run(&RunOptions::default()).unwrap();
        for batch in half {
            run.push(batch).unwrap();
        }
        let (mut aggregates, report) = run.aggregates(std::slice::from_ref(spec)).unwrap();
        parts.push(aggregates.remove(0).expect("a given period"));
        quality = Some(report);
    }
    let merged = Aggregate::merge_all(parts).unwrap();
    let released = study
        .release_aggregate(merged.as_ref(), &quality.unwrap(), spec)
        .unwrap();
    assert_eq!(released.rows, whole.rows);
    // Aggregates travel as JSON between machines and come back equal.
    let merged = merged.unwrap();
    let json = serde_json::to_string(&merged).unwrap();
    assert_eq!(serde_json::from_str::<Aggregate>(&json).unwrap(), merged);
}

#[test]
fn a_prepared_set_keeps_its_study() {
    let scenario = scenario(23);
    let study = study(&scenario);
    let prepared = study
        .prepare(
            batches(&scenario).into_iter().map(Ok),
            &RunOptions::default(),
        )
        .unwrap();
    assert!(Arc::ptr_eq(
        prepared.study().geography_arc(),
        study.geography_arc()
    ));
    assert_eq!(prepared.study().config(), study.config());
    // Profiles are computed once and shared by every release and table.
    let first: *const _ = prepared.profiles().unwrap();
    prepared.release(&ReleaseSpec::default()).unwrap();
    assert!(std::ptr::eq(first, prepared.profiles().unwrap()));
    assert_eq!(
        prepared.devices().unwrap().num_rows(),
        prepared.pings().devices().len()
    );
    let shown = format!("{study:?} {prepared:?}");
    assert!(shown.contains("secret bytes"), "{shown}");
}

#[test]
fn a_run_stops_on_its_signal_and_leaves_no_file() {
    let scenario = scenario(24);
    let study = study(&scenario);
    let spill = tempfile::tempdir().unwrap();
    let stop = StopSignal::default();
    let mut options = RunOptions::with_threads(2);
    options.memory_limit = Some(MIN_MEMORY_LIMIT);
    options.spill_dir = Some(spill.path().to_owned());
    options.stop = Some(stop.clone());
    let signal = stop.clone();
    // The signal is raised from the progress callback once the run has spilled, as a
    // service's shutdown would from another thread.
    options.progress = Some(Arc::new(move |event: &Progress| {
        if event.stage == Stage::Analyze && event.shards_done >= 2 {
            signal.stop();
        }
        Ok(())
    }));
    let error = study
        .release(
            batches(&scenario).into_iter().map(Ok),
            &ReleaseSpec::default(),
            &options,
        )
        .unwrap_err();
    assert!(
        matches!(&error, Error::Stopped { by, cause: None } if by == "by its stop signal"),
        "{error}"
    );
    assert!(stop.is_stopped());
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    // A run given a raised signal stops at its first batch.
    let mut run = study.run(&options).unwrap();
    assert!(matches!(
        run.push(&batches(&scenario)[0]),
        Err(Error::Stopped { .. })
    ));
}

#[test]
fn a_callback_error_stops_the_run_and_is_its_cause() {
    let scenario = scenario(25);
    let study = study(&scenario);
    let mut options = RunOptions::default();
    options.progress = Some(Arc::new(|_: &Progress| {
        Err(Error::config("progress", "said no"))
    }));
    let error = study
        .release(
            batches(&scenario).into_iter().map(Ok),
            &ReleaseSpec::default(),
            &options,
        )
        .unwrap_err();
    assert!(
        matches!(&error, Error::Stopped { by, .. } if by == "by the progress callback"),
        "{error}"
    );
    let cause = error.source().expect("the callback's error is the cause");
    assert!(cause.to_string().contains("said no"), "{cause}");
}

#[test]
fn file_errors_keep_the_parquet_error_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-parquet.parquet");
    std::fs::write(&path, b"this is not a parquet file at all").unwrap();
    let scenario = scenario(26);
    let error = study(&scenario)
        .prepare_parquet(&[&path], &RunOptions::default())
        .unwrap_err();
    assert!(matches!(error, Error::File { .. }), "{error}");
    assert!(error.to_string().contains("is not a readable Parquet file"));
    assert!(error.source().is_some(), "{error:?}");
}
