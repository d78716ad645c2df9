//! Per-device analytics throughput: from located pings to devices and visits (homes,
//! classes, visits and dwell), at 10^6 and 10^7 pings.
//!
//! `cargo bench --bench profile`; criterion reports pings per second.

mod common;

use std::hint::black_box;

use common::{SIZES, geography, pings};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::profile::profile;
use crowdtally::{Config, Key, RunOptions, Study};

fn bench_profile(c: &mut Criterion) {
    let geography = geography();
    let config = Config::new(Key::new(b"benchmark key of 16+ bytes".to_vec()));
    let study = Study::new(geography.clone(), config.clone()).expect("valid");
    let mut group = c.benchmark_group("profile");
    group.sample_size(10);
    for n in SIZES {
        let prepared = study
            .prepare([Ok(pings(n, true))], &RunOptions::default())
            .expect("prepares");
        group.throughput(Throughput::Elements(prepared.pings().len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(n),
            prepared.pings(),
            |b, located| {
                b.iter(|| profile(black_box(located), &geography, &config).expect("profiles"));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_profile);
criterion_main!(benches);
