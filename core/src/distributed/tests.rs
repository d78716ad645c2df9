//! A distributed run equals a single run: the same releases, rows and whole reports,
//! whatever the split of the input into parts and of the devices among reducers.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch, UInt32Array};
use proptest::prelude::*;

use super::*;
use crate::aggregate::BucketKind;
use crate::privacy::{DpSpec, Privacy};
use crate::synth::{Scenario, ScenarioConfig};
use crate::{Config, Release, ReleaseSpec, RunOptions, Study};

/// Period, day and hour releases, and (with a period, which it needs) a DP release at a
/// ρ so large that it equals its bounded exact counts.
fn specs(with_period: bool) -> Vec<ReleaseSpec> {
    let mut specs: Vec<ReleaseSpec> = [BucketKind::Period, BucketKind::Day, BucketKind::Hour]
        .into_iter()
        .map(ReleaseSpec::new)
        .collect();
    specs[1].level = Some("province".to_owned());
    let mut dp = ReleaseSpec::new(BucketKind::Day);
    dp.privacy = Privacy::DifferentialPrivacy(DpSpec::new(1e18));
    dp.subscribers = Some([("kortrijk".to_owned(), 500)].into_iter().collect());
    dp.roaming_factors.insert("*".to_owned(), 3.0);
    if with_period {
        specs.push(dp);
    }
    specs
}

/// The rows of `batch` whose index `part_of` puts in `part`.
fn take(batch: &RecordBatch, rows: &[u32]) -> RecordBatch {
    let indices = UInt32Array::from(rows.to_vec());
    arrow_select::take::take_record_batch(batch, &indices).unwrap()
}

/// The plan of `specs` (scanned when it needs it), and `parts` of the input mapped part
/// by part and routed by device to `reducers` reducers (counter rows to the first).
fn mapped_and_routed(
    study: &Study,
    parts: &[Vec<RecordBatch>],
    specs: &[ReleaseSpec],
    reducers: usize,
) -> (Plan, Vec<Vec<RecordBatch>>) {
    let (geography, key) = (study.geography().clone(), study.config().key.clone());
    let mut plan = Plan::new(study, specs).unwrap();
    if plan.needs_scan() {
        let mut span = None;
        for part in parts {
            let mut scanner = Scanner::new(&plan, geography.clone(), key.clone(), 1).unwrap();
            for batch in part {
                scanner.push(batch).unwrap();
            }
            span = merge_spans(span, scanner.span());
        }
        plan = plan.with_span(span).unwrap();
    }
    let mut routed: Vec<Vec<RecordBatch>> = vec![Vec::new(); reducers];
    for part in parts {
        let mut mapper = Mapper::new(&plan, geography.clone(), key.clone(), 1).unwrap();
        let mut mapped: Vec<RecordBatch> = part.iter().map(|b| mapper.map(b).unwrap()).collect();
        mapped.push(mapper.finish().unwrap());
        for batch in mapped {
            let device = batch.column(0).as_primitive::<Int64Type>();
            let mut rows = vec![Vec::new(); reducers];
            for row in 0..batch.num_rows() {
                let to = if device.is_null(row) {
                    0
                } else {
                    (device.value(row) as u64 % reducers as u64) as usize
                };
                rows[to].push(row as u32);
            }
            for (reducer, rows) in rows.iter().enumerate() {
                routed[reducer].push(take(&batch, rows));
            }
        }
    }
    (plan, routed)
}

fn reducer(study: &Study, plan: &Plan, batches: &[RecordBatch]) -> Reducer {
    let (geography, key) = (study.geography().clone(), study.config().key.clone());
    let mut reducer = Reducer::new(plan, geography, key, &RunOptions::with_threads(1)).unwrap();
    for batch in batches {
        reducer.push(batch).unwrap();
    }
    reducer
}

/// The releases of `specs` over `parts` of the input, mapped, routed, reduced and
/// finished.
fn distributed(
    study: &Study,
    parts: &[Vec<RecordBatch>],
    specs: &[ReleaseSpec],
    reducers: usize,
    schema: &arrow_schema::Schema,
) -> Vec<Release> {
    let (plan, routed) = mapped_and_routed(study, parts, specs, reducers);
    let partials: Vec<RecordBatch> = routed
        .iter()
        .map(|batches| reducer(study, &plan, batches).finish().unwrap())
        .collect();
    let kind = plan.input_kind(study, schema).unwrap();
    finish(study, &plan, specs, &partials, kind).unwrap()
}

fn assert_same(single: &[Release], split: &[Release]) {
    assert_eq!(single.len(), split.len());
    for (a, b) in single.iter().zip(split) {
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.report, b.report);
    }
}

fn small_scenario(seed: u64, days: u16) -> Scenario {
    Scenario::new(ScenarioConfig {
        scale: 0.0003,
        days,
        seed,
        ..ScenarioConfig::default()
    })
    .unwrap()
}

fn study(scenario: &Scenario, with_period: bool, colliding_bits: Option<u32>) -> Study {
    let mut config: Config = scenario.run_config();
    if !with_period {
        config.period = None;
    }
    // A few subscribers opt out (and one id that never pings), so that the opted-out
    // subscribers seen are counted across parts.
    config.opt_out = crate::OptOut::new(
        [0, 1, 7, 10_000_000]
            .into_iter()
            .map(|i| crate::SubscriberId::Text(scenario.subscriber_id(i)))
            .collect(),
    );
    if let Some(bits) = colliding_bits {
        config.key = config.key.clone().colliding(bits);
    }
    Study::new(scenario.geography().clone(), config).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn finishing_the_partials_gives_the_single_run(
        seed in 0_u64..1_000,
        days in 2_u16..5,
        parts in 1_usize..5,
        reducers in prop_oneof![Just(1_usize), Just(2), Just(7)],
        with_period in any::<bool>(),
        colliding_bits in prop_oneof![Just(None), Just(Some(5_u32))],
        shuffle in any::<u64>(),
    ) {
        let scenario = small_scenario(seed, days);
        let study = study(&scenario, with_period, colliding_bits);
        let batches: Vec<RecordBatch> = scenario.batches(200).collect::<Result<_, _>>().unwrap();
        let schema = batches[0].schema();
        let specs = specs(with_period);
        let single = study
            .releases(batches.iter().cloned().map(Ok), &specs, &RunOptions::default())
            .unwrap();
        // Rows spread over the parts by a hash of their place: a device's pings are in
        // several parts, as in any input that is not partitioned by subscriber.
        let all = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
        let mut rows = vec![Vec::new(); parts];
        for row in 0..all.num_rows() as u32 {
            let hashed = (u64::from(row) ^ shuffle).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            rows[hashed as usize % parts].push(row);
        }
        let split: Vec<Vec<RecordBatch>> = rows
            .iter()
            .map(|rows| {
                let half = rows.len() / 2;
                vec![take(&all, &rows[..half]), take(&all, &rows[half..])]
            })
            .collect();
        let split = distributed(&study, &split, &specs, reducers, &schema);
        assert_same(&single, &split);
    }
}

#[test]
fn collisions_are_counted_as_in_a_single_run() {
    let scenario = small_scenario(3, 2);
    let study = study(&scenario, true, Some(4));
    let batches: Vec<RecordBatch> = scenario.batches(200).collect::<Result<_, _>>().unwrap();
    let schema = batches[0].schema();
    let specs = specs(true);
    let single = study
        .releases(
            batches.iter().cloned().map(Ok),
            &specs,
            &RunOptions::default(),
        )
        .unwrap();
    let parts = vec![batches.clone()];
    let split = distributed(&study, &parts, &specs, 3, &schema);
    assert_same(&single, &split);
}

#[test]
fn an_empty_input_gives_the_empty_release_of_a_single_run() {
    let scenario = small_scenario(1, 2);
    let schema = scenario.pings_schema();
    let empty = RecordBatch::new_empty(schema.clone());
    for with_period in [true, false] {
        let study = study(&scenario, with_period, None);
        let specs = specs(with_period);
        let single = study
            .releases([Ok(empty.clone())], &specs, &RunOptions::default())
            .unwrap();
        // Parts without a single batch, as an engine gives for empty partitions.
        let split = distributed(&study, &[Vec::new(), Vec::new()], &specs, 2, &schema);
        assert_same(&single, &split);
    }
}

/// The rows of `tables` together, sorted by their `device` column (then by the row's
/// place in its table, which keeps a device's visits in order).
fn by_device(tables: &[RecordBatch]) -> RecordBatch {
    let all = arrow_select::concat::concat_batches(&tables[0].schema(), tables).unwrap();
    let device = all
        .column(0)
        .as_primitive::<arrow_array::types::UInt64Type>();
    let mut rows: Vec<u32> = (0..all.num_rows() as u32).collect();
    rows.sort_by_key(|&row| (device.value(row as usize), row));
    take(&all, &rows)
}

#[test]
fn reducers_give_the_devices_and_visits_of_a_single_run() {
    let scenario = small_scenario(5, 3);
    for (with_period, colliding_bits) in [(true, None), (false, Some(5))] {
        let study = study(&scenario, with_period, colliding_bits);
        let batches: Vec<RecordBatch> = scenario.batches(200).collect::<Result<_, _>>().unwrap();
        let single_devices = study
            .devices(batches.iter().cloned().map(Ok), &RunOptions::default())
            .unwrap();
        let single_visits = study
            .visits(batches.iter().cloned().map(Ok), &RunOptions::default())
            .unwrap();
        let parts = vec![
            batches[..batches.len() / 2].to_vec(),
            batches[batches.len() / 2..].to_vec(),
        ];
        let (plan, routed) = mapped_and_routed(&study, &parts, &[], 3);
        let devices: Vec<RecordBatch> = routed
            .iter()
            .map(|batches| reducer(&study, &plan, batches).devices().unwrap())
            .collect();
        let visits: Vec<RecordBatch> = routed
            .iter()
            .map(|batches| reducer(&study, &plan, batches).visits().unwrap())
            .collect();
        assert!(single_devices.num_rows() > 10);
        assert_eq!(by_device(&devices), single_devices);
        assert_eq!(by_device(&visits), single_visits);
    }
}
