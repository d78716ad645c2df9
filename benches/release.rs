//! The release end to end and by stage, on the synthetic `kortrijk` scenario (raw pings
//! with lat/lon positions and IMSI-like text ids, dirty rows included) at about 10^6 and
//! 10^7 pings:
//! - `analyze`: raw pings to the protected, extrapolated release table (cleaning,
//!   pseudonymization, location, homes, classes, visits, aggregation, disclosure);
//! - `analyze_spilled`: the same within a 64 MiB budget, spilled to disk and analysed
//!   shard by shard;
//! - `aggregate`: per-device visits to the partial aggregate (daily buckets);
//! - `disclosure`: the partial aggregate to the release (roll-up, residual, estimates).
//!
//! `cargo bench --bench release`; criterion reports pings per second.

use std::hint::black_box;

use arrow_array::RecordBatch;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{BucketKind, ReleaseSpec, RunOptions, Study};

/// Scenario scales giving about 10^6 and 10^7 pings over a summer quarter.
const SCALES: [f64; 2] = [0.001, 0.01];

fn scenario(scale: f64) -> (Scenario, Vec<RecordBatch>, usize) {
    let mut config = ScenarioConfig::default();
    config.scale = scale;
    config.days = 92;
    config.seed = 2026;
    let scenario = Scenario::new(config).expect("valid scenario");
    let batches: Vec<RecordBatch> = scenario
        .batches(10_000)
        .collect::<Result<_, _>>()
        .expect("generates");
    let pings = batches.iter().map(RecordBatch::num_rows).sum();
    (scenario, batches, pings)
}

fn options() -> ReleaseSpec {
    let mut options = ReleaseSpec::new(BucketKind::Day);
    options.level = Some("municipality".to_owned());
    options.roaming_factors = ["FR", "NL", "DE"]
        .into_iter()
        .map(|code| (code.to_owned(), 1.0 / 0.3))
        .collect();
    options
}

fn bench_release(c: &mut Criterion) {
    let options = options();
    let mut group = c.benchmark_group("release");
    group.sample_size(10);
    for scale in SCALES {
        let (scenario, batches, pings) = scenario(scale);
        let study =
            Study::new(scenario.geography().clone(), scenario.run_config()).expect("valid study");
        group.throughput(Throughput::Elements(pings as u64));
        let mut budget = RunOptions::default();
        budget.memory_limit = Some(64 << 20);
        for (name, run) in [
            ("analyze", RunOptions::default()),
            ("analyze_spilled", budget),
        ] {
            group.bench_with_input(BenchmarkId::new(name, pings), &batches, |b, batches| {
                b.iter(|| {
                    study
                        .release(batches.iter().cloned().map(Ok), black_box(&options), &run)
                        .expect("analyzes")
                });
            });
        }
        let prepared = study
            .prepare(batches.iter().cloned().map(Ok), &RunOptions::default())
            .expect("prepares");
        // The devices are profiled once, outside the timing.
        prepared.profiles().expect("profiles");
        group.bench_with_input(BenchmarkId::new("aggregate", pings), &options, |b, o| {
            b.iter(|| prepared.aggregate(black_box(o)).expect("aggregates"));
        });
        let aggregate = prepared
            .aggregate(&options)
            .expect("aggregates")
            .expect("the scenario has a period");
        group.bench_with_input(BenchmarkId::new("disclosure", pings), &aggregate, |b, a| {
            b.iter(|| {
                study
                    .release_aggregate(Some(black_box(a)), prepared.report(), &options)
                    .expect("releases")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_release);
criterion_main!(benches);
