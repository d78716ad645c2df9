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
use crowdtally::run::RunOptions;
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{
    Aggregate, BucketKind, PingColumns, ReleaseClass, ReleaseOptions, analyze, prepare, profile,
    release,
};

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

fn options() -> ReleaseOptions {
    let mut options = ReleaseOptions::default();
    options.bucket = BucketKind::Day;
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
        let geography = scenario.geography();
        let config = scenario.run_config();
        group.throughput(Throughput::Elements(pings as u64));
        let mut budget = RunOptions::default();
        budget.memory_limit = Some(64 << 20);
        for (name, run) in [
            ("analyze", RunOptions::default()),
            ("analyze_spilled", budget),
        ] {
            group.bench_with_input(BenchmarkId::new(name, pings), &batches, |b, batches| {
                b.iter(|| {
                    analyze(
                        batches.iter().cloned().map(Ok),
                        geography,
                        &config,
                        &PingColumns::default(),
                        black_box(&options),
                        &run,
                    )
                    .expect("analyzes")
                });
            });
        }
        let prepared = prepare(
            batches.iter().cloned().map(Ok),
            geography,
            &config,
            &PingColumns::default(),
        )
        .expect("prepares");
        let profiles = profile(&prepared.pings, geography, &config).expect("profiles");
        let classes = [ReleaseClass::Visitor];
        group.bench_with_input(BenchmarkId::new("aggregate", pings), &profiles, |b, p| {
            b.iter(|| {
                Aggregate::new(
                    black_box(p),
                    &prepared.pings,
                    geography,
                    &config,
                    options.bucket,
                    &classes,
                )
                .expect("aggregates")
            });
        });
        let aggregate = Aggregate::new(
            &profiles,
            &prepared.pings,
            geography,
            &config,
            options.bucket,
            &classes,
        )
        .expect("aggregates")
        .expect("the scenario has a period");
        group.bench_with_input(BenchmarkId::new("disclosure", pings), &aggregate, |b, a| {
            b.iter(|| {
                release(
                    Some(black_box(a)),
                    geography,
                    &config,
                    &options,
                    &prepared.report,
                )
                .expect("releases")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_release);
criterion_main!(benches);
