//! Ingestion throughput, stage by stage: pseudonymization alone; the per-ping pass
//! (decoding, cleaning, location on every core) from H3 cells and from lat/lon; the
//! grouping by device and sorting of `finish` alone; h3o's own conversion (the floor of
//! the lat/lon path) and the locator's, on a city's points and on a country's in time
//! order; and the whole of `prepare`; at 10^6 and 10^7 pings (hourly pings of one device
//! per 1,000 pings).
//!
//! `cargo bench --bench ingest`; criterion reports time per iteration and throughput in
//! pings per second.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, StringArray};
use common::{SIZES, geography, pings, uniform};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crowdtally::geo::{CellLocator, CellRaster};
use crowdtally::{Config, Key, Run, RunOptions, Study};

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
            b.iter(|| crowdtally::pseudonymize_column(black_box(ids), &key, "2026Q3", "ids"));
        });
    }
    group.finish();
}

fn bench_prepare(c: &mut Criterion) {
    let study = study();
    for (name, as_cells) in [("prepare_cells", true), ("prepare_lat_lon", false)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for n in SIZES {
            let batch = pings(n, as_cells);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
                b.iter(|| {
                    study
                        .prepare([Ok(black_box(batch.clone()))], &RunOptions::default())
                        .expect("prepares")
                });
            });
        }
        group.finish();
    }
}

/// The study of the bench geography.
fn study() -> Study {
    let config = Config::new(Key::new(b"benchmark key of 16+ bytes".to_vec()));
    Study::new(geography(), config).expect("valid")
}

/// A run on every core with `batch` pushed.
fn pushed(study: &Study, batch: &RecordBatch) -> Run {
    let mut run = study.run(&RunOptions::default()).expect("valid");
    run.push(batch).expect("pushes");
    run
}

/// The per-ping part of ingestion alone: decoding, cleaning (opt-out included), numbering
/// subscribers, location and region and zone look-up on every core, without the
/// per-device grouping and sorting of `finish` (pseudonymization is once per distinct
/// subscriber, benched above).
fn bench_push(c: &mut Criterion) {
    let study = study();
    for (name, as_cells) in [("ingest_push_cells", true), ("ingest_push_lat_lon", false)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for n in SIZES {
            let batch = pings(n, as_cells);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
                b.iter(|| pushed(&study, black_box(batch)));
            });
        }
        group.finish();
    }
}

/// `finish` alone: pseudonyms of the distinct subscribers, grouping by device, per-device
/// sorting and duplicate resolution (the pushes are set up outside the timing).
fn bench_finish(c: &mut Criterion) {
    let study = study();
    let mut group = c.benchmark_group("ingest_finish");
    group.sample_size(10);
    for n in SIZES {
        let batch = pings(n, true);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
            b.iter_batched(
                || pushed(&study, batch),
                |run| run.prepare().expect("finishes"),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// The floor of the lat/lon path, h3o's own conversion of the same points alone, and
/// the locator that gives h3o's cells faster, each on one thread.
fn bench_lat_lon_to_cell(c: &mut Criterion) {
    let mut group = c.benchmark_group("lat_lon_to_cell");
    group.sample_size(10);
    let n = SIZES[0];
    let batch = pings(n, false);
    let lat = batch
        .column(2)
        .as_primitive::<arrow_array::types::Float64Type>()
        .clone();
    let lon = batch
        .column(3)
        .as_primitive::<arrow_array::types::Float64Type>()
        .clone();
    let points = || {
        lat.values()
            .iter()
            .copied()
            .zip(lon.values().iter().copied())
    };
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("h3o", n), |b| {
        b.iter(|| {
            let mut last = 0_u64;
            for (a, o) in points() {
                let cell = h3o::LatLng::new(a, o)
                    .expect("valid")
                    .to_cell(h3o::Resolution::Nine);
                last ^= u64::from(cell);
            }
            black_box(last)
        });
    });
    // A fresh locator each iteration: what it learns is part of the cost.
    group.bench_function(BenchmarkId::new("cell_locator", n), |b| {
        b.iter(|| {
            let mut locator = CellLocator::new(h3o::Resolution::Nine);
            let mut last = 0_u64;
            for (a, o) in points() {
                last ^= locator.cell(a, o).map_or(0, u64::from);
            }
            black_box(last)
        });
    });
    group.finish();
}

/// Points as an operator's export gives them, in time order: each a ping of one of
/// 500,000 people at home somewhere in a country (Belgium's bounding box), with 30 m of
/// jitter, so that consecutive points are kilometres apart.
fn country_points(n: usize) -> Vec<(f64, f64)> {
    let mut uniform = uniform(7);
    let homes: Vec<(f64, f64)> = (0..500_000)
        .map(|_| (49.6 + uniform() * 1.8, 2.6 + uniform() * 3.7))
        .collect();
    (0..n)
        .map(|_| {
            let (lat, lon) = homes[(uniform() * homes.len() as f64) as usize];
            (
                lat + (uniform() - 0.5) * 5e-4,
                lon + (uniform() - 0.5) * 8e-4,
            )
        })
        .collect()
}

/// Location of points in time order over a country: h3o alone, the locator with its
/// raster already built (the steady state of a run, whose threads share the raster from
/// batch to batch), and with a raster built from nothing.
fn bench_lat_lon_shuffled(c: &mut Criterion) {
    let mut group = c.benchmark_group("lat_lon_to_cell_country_time_order");
    group.sample_size(10);
    let n = SIZES[0];
    let points = country_points(n);
    group.throughput(Throughput::Elements(n as u64));
    let (lat, lon): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    // In batches, as a run locates a chunk of a batch at a time.
    let locate = |locator: &mut CellLocator| {
        let mut last = 0_u64;
        let mut cells = Vec::new();
        for (lat, lon) in lat.chunks(4096).zip(lon.chunks(4096)) {
            locator.cell_bits(lat, lon, &mut cells);
            last ^= cells.iter().fold(0, |a, b| a ^ b);
        }
        black_box(last)
    };
    group.bench_function(BenchmarkId::new("h3o", n), |b| {
        b.iter(|| {
            let mut last = 0_u64;
            for &(a, o) in &points {
                let cell = h3o::LatLng::new(a, o)
                    .expect("valid")
                    .to_cell(h3o::Resolution::Nine);
                last ^= u64::from(cell);
            }
            black_box(last)
        });
    });
    let raster = Arc::new(CellRaster::new(
        h3o::Resolution::Nine,
        crowdtally::geo::DEFAULT_RASTER_BUDGET,
    ));
    for _ in 0..2 {
        locate(&mut CellLocator::with_raster(Arc::clone(&raster)));
    }
    eprintln!(
        "raster over the country: {} tiles, {:.0} MiB",
        raster.tiles(),
        raster.bytes() as f64 / f64::from(1 << 20)
    );
    group.bench_function(BenchmarkId::new("raster_built", n), |b| {
        b.iter(|| locate(&mut CellLocator::with_raster(Arc::clone(&raster))));
    });
    group.bench_function(BenchmarkId::new("raster_from_nothing", n), |b| {
        b.iter(|| locate(&mut CellLocator::new(h3o::Resolution::Nine)));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_pseudonymize,
    bench_prepare,
    bench_push,
    bench_finish,
    bench_lat_lon_to_cell,
    bench_lat_lon_shuffled
);
criterion_main!(benches);
