//! The re-identification risk audit (`Prepared::risk`): unicity of 1 to 5 points at cell
//! and hour, home–work pairs and visit patterns, on a week of hourly traces of 10^4 and
//! 10^5 devices (1.7 and 16.8 million pings), each moving among five places of its own
//! within 30 km of Kortrijk.
//!
//! `cargo bench --bench risk`; criterion reports pings per second, beside `prepare` of
//! the same pings, and beside reading them and auditing them shard by shard within a
//! 256 MiB budget (`Run::risk`).

// Only the geography and the random source of the shared inputs are used here.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use common::{geography, uniform};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::{Config, Key, Period, RiskSpec, RunOptions, Study};
use h3o::{LatLng, Resolution};

const HOURS: usize = 168;

/// A week of hourly pings of `devices` devices, each at one of its five places an hour.
fn week(devices: usize) -> RecordBatch {
    let mut uniform = uniform(7);
    let mut subscriber = Vec::with_capacity(devices * HOURS);
    let mut ts = Vec::with_capacity(devices * HOURS);
    let mut cell = Vec::with_capacity(devices * HOURS);
    for d in 0..devices {
        let places: Vec<u64> = (0..5)
            .map(|_| {
                let point = LatLng::new(
                    50.828 + (uniform() - 0.5) * 0.3,
                    3.265 + (uniform() - 0.5) * 0.4,
                )
                .expect("valid");
                u64::from(point.to_cell(Resolution::Nine))
            })
            .collect();
        for h in 0..HOURS {
            subscriber.push(format!("20601{d:010}"));
            // 2026-07-06 00:00 UTC, a Monday.
            ts.push(1_783_296_000 + h as i64 * 3_600);
            cell.push(places[(uniform() * 5.0) as usize]);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("cell", DataType::UInt64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(subscriber)),
            Arc::new(Int64Array::from(ts)),
            Arc::new(UInt64Array::from(cell)),
        ],
    )
    .expect("valid batch")
}

fn bench_risk(c: &mut Criterion) {
    let mut config = Config::new(Key::new(b"benchmark key of 16+ bytes".to_vec()));
    config.period = Some(
        Period::new(
            jiff::civil::date(2026, 7, 6),
            jiff::civil::date(2026, 7, 14),
        )
        .expect("valid"),
    );
    let study = Study::new(geography(), config).expect("valid");
    let mut group = c.benchmark_group("risk");
    group.sample_size(10);
    for devices in [10_000, 100_000] {
        let pings = week(devices);
        // The cost to compare with: preparing the same pings.
        group.throughput(Throughput::Elements(pings.num_rows() as u64));
        group.bench_with_input(BenchmarkId::new("prepare", devices), &pings, |b, pings| {
            b.iter(|| {
                study
                    .prepare([Ok(pings.clone())], &RunOptions::default())
                    .expect("prepares")
            });
        });
        let prepared = study
            .prepare([Ok(pings.clone())], &RunOptions::default())
            .expect("prepares");
        // The same pings read shard by shard within 256 MiB, their points spilled.
        let spill = tempfile::tempdir().expect("a temporary directory");
        let mut options = RunOptions::default();
        options.memory_limit = Some(256 << 20);
        options.spill_dir = Some(spill.path().to_owned());
        group.bench_with_input(
            BenchmarkId::new("run_in_shards_prepare_and_audit", devices),
            &pings,
            |b, pings| {
                b.iter(|| {
                    let mut run = study.run(&options).expect("runs");
                    run.push(pings).expect("reads");
                    run.risk(&RiskSpec::default()).expect("measures")
                });
            },
        );
        // Profiles (homes and visits) are computed once per prepared set, as in use.
        prepared.profiles().expect("profiles");
        group.throughput(Throughput::Elements(prepared.pings().len() as u64));
        group.bench_with_input(
            BenchmarkId::new("cell_hour_1_to_5_points", devices),
            &prepared,
            |b, prepared| b.iter(|| prepared.risk(&RiskSpec::default()).expect("measures")),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_risk);
criterion_main!(benches);
