//! Scenario generation throughput: observed pings written to Arrow batches, for about
//! 10^6 and 10^7 pings (four weeks of the `kortrijk` preset at two scales).
//!
//! `cargo bench --bench synth`; criterion reports pings per second.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::synth::{Scenario, ScenarioConfig};

fn bench_generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth_pings");
    group.sample_size(10);
    for scale in [0.003, 0.03] {
        let mut config = ScenarioConfig::default();
        config.scale = scale;
        config.days = 28;
        let scenario = Scenario::new(config).expect("valid scenario");
        let rows: usize = scenario
            .batches(2_000)
            .map(|b| b.expect("batch").num_rows())
            .sum();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(rows),
            &scenario,
            |b, scenario| {
                b.iter(|| {
                    for batch in scenario.batches(2_000) {
                        black_box(batch.expect("batch"));
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_generate);
criterion_main!(benches);
