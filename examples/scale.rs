//! A large run from Parquet on one machine: the synthetic `kortrijk` quarter written to
//! Parquet files, then released from them within a memory budget, with the time, the
//! throughput and the peak resident memory.
//!
//! ```text
//! cargo run --release --example scale -- write DIR PINGS [cell|latlon]
//! cargo run --release --example scale -- run DIR [MEMORY_LIMIT] [THREADS]
//! cargo run --release --example scale -- floor FILE...
//! ```
//!
//! `write` generates about `PINGS` pings (e.g. `1e9`) over 92 days into `DIR/pings-*.parquet`
//! (zstd) and records the scenario in `DIR/scenario.txt`; `run` releases them (bucket
//! `day`, level `municipality`) with the default or given budget (e.g. `4GiB`) and prints
//! progress every 10 s; `floor` times h3o alone converting every lat/lon of the files to
//! cells on every core: the floor of the lat/lon path.

use std::error::Error;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{BucketKind, ReleaseSpec};
use crowdtally::{Progress, RunOptions, Stage, Study, parse_bytes};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

/// About this many pings per unit of scale over 92 days (measured on the scenario).
const PINGS_PER_SCALE: f64 = 1.0e9;
/// Rows per Parquet file.
const FILE_ROWS: usize = 50_000_000;

fn scenario(scale: f64, cells: bool) -> Result<Scenario, Box<dyn Error>> {
    let mut config = ScenarioConfig::default();
    config.scale = scale;
    config.days = 92;
    config.seed = 2026;
    config.cells = cells;
    Ok(Scenario::new(config)?)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn write(dir: &Path, pings: f64, cells: bool) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let scale = pings / PINGS_PER_SCALE;
    let scenario = scenario(scale, cells)?;
    std::fs::write(
        dir.join("scenario.txt"),
        format!("{scale} {}\n", if cells { "cell" } else { "latlon" }),
    )?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    let started = Instant::now();
    let (mut rows, mut file_rows, mut files) = (0_usize, 0_usize, 0_usize);
    let mut writer: Option<ArrowWriter<File>> = None;
    for batch in scenario.batches(2_000) {
        let batch: RecordBatch = batch?;
        if writer.is_none() {
            let path = dir.join(format!("pings-{files:04}.parquet"));
            writer = Some(ArrowWriter::try_new(
                File::create(path)?,
                batch.schema(),
                Some(properties.clone()),
            )?);
            files += 1;
        }
        if let Some(w) = &mut writer {
            w.write(&batch)?;
        }
        rows += batch.num_rows();
        file_rows += batch.num_rows();
        if file_rows >= FILE_ROWS {
            if let Some(w) = writer.take() {
                w.close()?;
            }
            file_rows = 0;
            eprintln!(
                "{rows} pings written in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(w) = writer.take() {
        w.close()?;
    }
    println!(
        "wrote {rows} pings in {files} files to {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    files.sort();
    Ok(files)
}

fn run(dir: &Path, memory_limit: Option<&str>, threads: usize) -> Result<(), Box<dyn Error>> {
    let recorded = std::fs::read_to_string(dir.join("scenario.txt"))?;
    let mut words = recorded.split_whitespace();
    let scale: f64 = words.next().ok_or("scenario.txt is empty")?.parse()?;
    let cells = words.next() == Some("cell");
    let scenario = scenario(scale, cells)?;
    let config = scenario.run_config();
    let mut run = RunOptions::with_threads(threads);
    run.memory_limit = memory_limit.map(parse_bytes).transpose()?;
    let budget = run.memory_limit()?;
    let mut options = ReleaseSpec::new(BucketKind::Day);
    options.level = Some("municipality".into());
    options.roaming_factors = ["FR", "NL", "DE"]
        .into_iter()
        .map(|code| (code.to_owned(), 1.0 / 0.3))
        .collect();

    let started = Instant::now();
    let shown = std::sync::Mutex::new((Instant::now(), None::<f64>));
    run.progress = Some(std::sync::Arc::new(move |event: &Progress| {
        let mut shown = shown
            .lock()
            .map_err(|_| crowdtally::Error::stopped("by a poisoned lock"))?;
        let (last_shown, analyze_started) = &mut *shown;
        if event.stage == Stage::Analyze && analyze_started.is_none() {
            *analyze_started = Some(started.elapsed().as_secs_f64());
            eprintln!(
                "read {} pings in {:.1} s ({} MiB spilled); {} shards",
                event.rows_read,
                started.elapsed().as_secs_f64(),
                event.bytes_spilled >> 20,
                event.shards_total
            );
        }
        if last_shown.elapsed().as_secs() >= 10 {
            *last_shown = Instant::now();
            eprintln!(
                "{:>6.0} s  {:<7} rows {:>13}  spilled {:>7} MiB  shards {}/{}  peak {:.0} MiB",
                started.elapsed().as_secs_f64(),
                event.stage.name(),
                event.rows_read,
                event.bytes_spilled >> 20,
                event.shards_done,
                event.shards_total,
                peak_rss_mib()
            );
        }
        Ok(())
    }));
    let mut reading = Study::new(scenario.geography().clone(), config)?.run(&run)?;
    for file in parquet_files(dir)? {
        reading.push_parquet(&file)?;
    }
    let release = reading.release(&options)?;
    let seconds = started.elapsed().as_secs_f64();
    let read = release.report.pings["read"].as_u64().unwrap_or(0);
    println!(
        "released {} rows from {read} pings ({} form) in {seconds:.1} s: {:.2} M pings/s, \
         {:.0} ns/ping; budget {} MiB, peak resident memory {:.0} MiB, threads {}",
        release.rows.len(),
        if cells { "cell" } else { "lat/lon" },
        read as f64 / seconds / 1e6,
        seconds * 1e9 / read as f64,
        budget >> 20,
        peak_rss_mib(),
        if threads == 0 {
            rayon::current_num_threads()
        } else {
            threads
        },
    );
    Ok(())
}

fn floor(files: &[PathBuf]) -> Result<(), Box<dyn Error>> {
    let (mut lat, mut lon) = (Vec::new(), Vec::new());
    for file in files {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(file)?)?;
        for batch in builder.build()? {
            let batch = batch?;
            let column = |name: &str| -> Result<Vec<f64>, Box<dyn Error>> {
                let array = batch.column_by_name(name).ok_or("no lat/lon column")?;
                Ok(array.as_primitive::<Float64Type>().values().to_vec())
            };
            lat.extend(column("lat")?);
            lon.extend(column("lon")?);
        }
    }
    let started = Instant::now();
    let cells: u64 = lat
        .par_iter()
        .zip(&lon)
        .map(|(&a, &o)| {
            h3o::LatLng::new(a, o).map_or(0, |p| u64::from(p.to_cell(h3o::Resolution::Nine)))
        })
        .reduce(|| 0, |a, b| a ^ b);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"points\": {}, \"seconds\": {seconds}, \"threads\": {}, \"checksum\": {cells}}}",
        lat.len(),
        rayon::current_num_threads()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: scale write DIR PINGS [cell|latlon] | run DIR [MEMORY_LIMIT] [THREADS] | floor FILE...";
    match args.first().map(String::as_str) {
        Some("write") if args.len() >= 3 => write(
            Path::new(&args[1]),
            args[2].parse()?,
            args.get(3).is_none_or(|f| f == "cell"),
        ),
        Some("run") if args.len() >= 2 => run(
            Path::new(&args[1]),
            args.get(2).map(String::as_str),
            args.get(3).map_or(Ok(0), |t| t.parse())?,
        ),
        Some("floor") if args.len() >= 2 => {
            floor(&args[1..].iter().map(PathBuf::from).collect::<Vec<_>>())
        }
        _ => Err(usage.into()),
    }
}
