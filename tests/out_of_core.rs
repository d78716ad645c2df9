//! Out-of-core runs: with a memory budget far below the input, pings are spilled to disk
//! by subscriber and analysed shard by shard, and the release, the per-device tables and
//! the report are exactly those of the in-memory run. Spill files never outlive the run,
//! whether it succeeds, fails or is interrupted, and never hold a raw id.

use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use crowdtally::synth::Scenario;
use crowdtally::{
    BucketKind, Config, DeviceClass, Error, Geography, MIN_MEMORY_LIMIT, Progress, Release,
    ReleaseClass, ReleaseSpec, Run, RunOptions, Stage, Study,
};

fn scenario(seed: u64) -> Scenario {
    crowdtally_harness::small_city(4, seed)
}

fn batches(scenario: &Scenario) -> Vec<RecordBatch> {
    crowdtally_harness::city_batches(scenario, 50)
}

fn options() -> ReleaseSpec {
    let mut options = ReleaseSpec::default();
    options.bucket = BucketKind::Day;
    options.level = Some("municipality".into());
    options.classes = vec![
        ReleaseClass::Device(DeviceClass::DayVisitor),
        ReleaseClass::Device(DeviceClass::OvernightVisitor),
        ReleaseClass::Device(DeviceClass::Resident),
    ];
    options.roaming_factors = [("FR".to_owned(), 3.0)].into();
    options
}

/// A budget of 1 MiB and 32 threads: shards of at most 128 pings, so the run spills
/// many times and splits partitions again by device.
fn tiny(spill_dir: &Path) -> RunOptions {
    let mut run = RunOptions::with_threads(32);
    run.memory_limit = Some(MIN_MEMORY_LIMIT);
    run.spill_dir = Some(spill_dir.to_owned());
    run
}

fn study(geography: &Geography, config: &Config) -> Study {
    Study::new(geography.clone(), config.clone()).unwrap()
}

fn spilling(geography: &Geography, config: &Config, dir: &Path) -> Run {
    study(geography, config).run(&tiny(dir)).unwrap()
}

fn push_all(run: &mut Run, batches: &[RecordBatch]) {
    for batch in batches {
        run.push(batch).unwrap();
    }
}

struct Observed {
    events: Vec<Progress>,
    /// Files in the spill directory when the analyze stage started.
    files_during_run: usize,
}

fn release_with(
    batches: &[RecordBatch],
    geography: &Geography,
    config: &Config,
    run: &RunOptions,
) -> (Release, Observed) {
    let observed = Arc::new(Mutex::new(Observed {
        events: Vec::new(),
        files_during_run: 0,
    }));
    let seen = Arc::clone(&observed);
    let spill_dir = run.spill_dir.clone();
    let mut with_progress = run.clone();
    with_progress.progress = Some(Arc::new(move |event: &Progress| {
        let mut seen = seen.lock().unwrap();
        if event.stage == Stage::Analyze
            && event.shards_done == 0
            && let Some(dir) = &spill_dir
        {
            seen.files_during_run = count_files(dir);
        }
        seen.events.push(*event);
        Ok(())
    }));
    let mut run = study(geography, config).run(&with_progress).unwrap();
    drop(with_progress);
    for batch in batches {
        run.push(batch).unwrap();
    }
    let release = run.release(&options()).unwrap();
    let observed = Arc::try_unwrap(observed)
        .ok()
        .expect("the callback is dropped with the run")
        .into_inner()
        .unwrap();
    (release, observed)
}

fn count_files(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn assert_same_release(a: &Release, b: &Release) {
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.report.to_json(), b.report.to_json());
}

#[test]
fn a_spilled_run_gives_the_in_memory_release_and_leaves_nothing() {
    let scenario = scenario(7);
    let batches = batches(&scenario);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert!(rows > 40_000, "{rows} rows");
    let geography = scenario.geography();
    for given_period in [true, false] {
        let mut config = scenario.run_config();
        if !given_period {
            config.period = None;
        }
        let (in_memory, memory) =
            release_with(&batches, geography, &config, &RunOptions::with_threads(1));
        assert!(memory.events.iter().all(|e| e.bytes_spilled == 0));
        assert!(in_memory.report.devices.total > 100);

        let spill = tempfile::tempdir().unwrap();
        let (spilled, observed) = release_with(&batches, geography, &config, &tiny(spill.path()));
        assert_same_release(&in_memory, &spilled);

        let last = observed.events.last().unwrap();
        assert!(last.bytes_spilled > 0, "the run spilled");
        assert!(
            observed.files_during_run > 1,
            "spill files existed during the run"
        );
        assert_eq!(last.stage, Stage::Analyze);
        assert_eq!(last.shards_done, last.shards_total);
        assert!(last.shards_total > 100, "{} shards", last.shards_total);
        assert_eq!(last.rows_read, rows as u64);
        let reads: Vec<u64> = observed
            .events
            .iter()
            .filter(|e| e.stage == Stage::Read)
            .map(|e| e.rows_read)
            .collect();
        assert_eq!(reads.len(), batches.len(), "one event per batch");
        assert!(reads.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(count_files(spill.path()), 0, "spill files are removed");
    }
}

#[test]
fn a_spilled_run_finished_whole_or_by_shard_gives_the_in_memory_pings() {
    let scenario = scenario(11);
    let batches = batches(&scenario);
    let geography = scenario.geography();
    let config = scenario.run_config();
    let whole = study(geography, &config)
        .prepare(batches.iter().cloned().map(Ok), &RunOptions::default())
        .unwrap();

    let spill = tempfile::tempdir().unwrap();
    let mut run = spilling(geography, &config, spill.path());
    push_all(&mut run, &batches);
    assert!(count_files(spill.path()) > 0);
    let read_back = run.prepare().unwrap();
    assert_eq!(read_back.report(), whole.report());
    assert_eq!(
        read_back.pings().to_record_batch(geography).unwrap(),
        whole.pings().to_record_batch(geography).unwrap()
    );
    assert_eq!(count_files(spill.path()), 0);

    // By shard (more shards than the 256 partitions of pass 1: partitions larger than a
    // shard are split again by device, which `pipeline::tests` counts): the devices
    // table, whose shards hold whole devices, and the aggregates' report.
    let mut run = spilling(geography, &config, spill.path());
    push_all(&mut run, &batches);
    let table = run.devices().unwrap();
    let devices = table
        .column(0)
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec();
    assert_eq!(devices, whole.pings().devices());
    let mut run = spilling(geography, &config, spill.path());
    push_all(&mut run, &batches);
    let (_, report) = run.aggregates(&[options()]).unwrap();
    assert_eq!(&report, whole.report());
    assert_eq!(count_files(spill.path()), 0);
}

#[test]
fn an_interrupted_run_stops_with_the_callback_error_and_removes_its_files() {
    let scenario = scenario(3);
    let batches = batches(&scenario);
    let geography = scenario.geography();
    let config = scenario.run_config();
    for stop_at in [Stage::Read, Stage::Analyze] {
        let spill = tempfile::tempdir().unwrap();
        let mut interrupted = tiny(spill.path());
        interrupted.progress = Some(Arc::new(move |event: &Progress| {
            let late_enough =
                event.bytes_spilled > 0 && (event.stage == Stage::Read || event.shards_done >= 3);
            if event.stage == stop_at && late_enough {
                Err(Error::stopped("by a test interrupt"))
            } else {
                Ok(())
            }
        }));
        let mut run = study(geography, &config).run(&interrupted).unwrap();
        let mut result = Ok(());
        for batch in &batches {
            result = run.push(batch);
            if result.is_err() {
                break;
            }
        }
        let error = match result {
            Err(error) => {
                drop(run);
                error
            }
            Ok(()) => match run.release(&options()) {
                Err(error) => error,
                Ok(_) => panic!("a run stopped at {stop_at:?} gave a release"),
            },
        };
        assert!(
            matches!(&error, Error::Stopped { by, .. } if by == "by a test interrupt"),
            "{error}"
        );
        assert_eq!(count_files(spill.path()), 0, "stopped at {stop_at:?}");
    }
}

#[test]
fn a_failed_run_removes_its_files_and_names_the_column() {
    let scenario = scenario(4);
    let batches = batches(&scenario);
    let geography = scenario.geography();
    let config = scenario.run_config();
    let spill = tempfile::tempdir().unwrap();
    let mut run = spilling(geography, &config, spill.path());
    push_all(&mut run, &batches);
    assert!(count_files(spill.path()) > 0, "the run has spilled");
    let without_ts = batches[0].project(&[0, 2, 3]).unwrap();
    let error = run.push(&without_ts).unwrap_err();
    assert_eq!(error.field(), Some("ts"));
    drop(run);
    assert_eq!(count_files(spill.path()), 0);
}

#[test]
fn bad_files_after_a_spill_name_the_file_and_leave_nothing() {
    let scenario = scenario(6);
    let batches = batches(&scenario);
    let geography = scenario.geography();
    let config = scenario.run_config();
    let data = tempfile::tempdir().unwrap();
    let good = data.path().join("good.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&good).unwrap(),
        batches[0].schema(),
        None,
    )
    .unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = data.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let without_ts = data.path().join("without-ts.parquet");
    let projected = batches[0].project(&[0, 2, 3]).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&without_ts).unwrap(),
        projected.schema(),
        None,
    )
    .unwrap();
    writer.write(&projected).unwrap();
    writer.close().unwrap();

    for (bad, column) in [(&truncated, None), (&without_ts, Some("ts"))] {
        let spill = tempfile::tempdir().unwrap();
        let mut run = spilling(geography, &config, spill.path());
        run.push_parquet(&good).unwrap();
        assert!(count_files(spill.path()) > 0, "the run has spilled");
        let error = run.push_parquet(bad).unwrap_err();
        match &error {
            Error::File {
                path, column: c, ..
            } => {
                assert_eq!(path, &bad.display().to_string());
                assert_eq!(c.as_deref(), column);
            }
            other => panic!("not a file error: {other}"),
        }
        drop(run);
        assert_eq!(count_files(spill.path()), 0, "{}", bad.display());
    }
}

#[test]
fn spill_files_hold_no_raw_id() {
    let scenario = scenario(9);
    let batches = batches(&scenario);
    let geography = scenario.geography();
    let config = scenario.run_config();
    let spill = tempfile::tempdir().unwrap();
    let mut run = spilling(geography, &config, spill.path());
    push_all(&mut run, &batches);
    let mut bytes = Vec::new();
    for file in walk(spill.path()) {
        bytes.extend(std::fs::read(file).unwrap());
    }
    assert!(bytes.len() > 1000);
    for person in 0..scenario.people() {
        let id = scenario.subscriber_id(person);
        assert!(
            !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
            "raw id of person {person} in a spill file"
        );
    }
    drop(run);
}

#[test]
fn bad_run_options_are_errors_naming_the_field() {
    let scenario = scenario(1);
    let geography = scenario.geography();
    let config = scenario.run_config();
    let mut run = RunOptions::default();
    run.memory_limit = Some(1000);
    let error = study(geography, &config).run(&run).unwrap_err();
    assert_eq!(error.field(), Some("memory_limit"));

    let missing = tempfile::tempdir().unwrap().path().join("not-there");
    let mut run = spilling(geography, &config, &missing);
    let mut result = Ok(());
    for batch in batches(&scenario) {
        result = run.push(&batch);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result.unwrap_err().field(), Some("spill_dir"));
}
