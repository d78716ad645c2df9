//! Ingestion throughput: pseudonymization alone, and the whole of `prepare` (decoding,
//! cleaning, pseudonymization, sorting, location) from H3 cells and from lat/lon, at
//! 10^6 and 10^7 pings (hourly pings of one device per 1,000 pings).
//!
//! `cargo bench --bench ingest`; criterion reports time per iteration and throughput in
//! pings per second.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray};
use common::{SIZES, geography, pings};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::{Config, Key, PingColumns, prepare};

fn bench_pseudonymize(c: &mut Criterion) {
    let key = Key::new(b"benchmark key of 16+ bytes".to_vec());
    let mut group = c.benchmark_group("pseudonymize");
    group.sample_size(10);
    for n in SIZES {
        let ids: ArrayRef = Arc::new(
            (0..n)
                .map(|i| Some(format!("20601{i:010}")))
                .collect::<StringArray>(),
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &ids, |b, ids| {
            b.iter(|| {
                crowdtally::ingest::pseudonymize_column(black_box(ids), &key, "2026Q3", "ids")
            });
        });
    }
    group.finish();
}

fn bench_prepare(c: &mut Criterion) {
    let geography = geography();
    let config = Config::new(Key::new(b"benchmark key of 16+ bytes".to_vec()));
    let columns = PingColumns::default();
    for (name, as_cells) in [("prepare_cells", true), ("prepare_lat_lon", false)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for n in SIZES {
            let batch = pings(n, as_cells);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
                b.iter(|| {
                    prepare(
                        [Ok(black_box(batch.clone()))],
                        &geography,
                        &config,
                        &columns,
                    )
                    .expect("prepares")
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_pseudonymize, bench_prepare);
criterion_main!(benches);
