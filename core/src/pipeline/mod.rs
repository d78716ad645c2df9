//! The run: how the stages of the method are driven over an input of any size.
//!
//! ```text
//! read ─► clean/locate ─► shard ─► profile ─► aggregate ─► merge ─► protect ─► report
//! (push)  (ingest, on     (by       (§4–5,     (§6, per    (over    (§7–8, in the
//!          every core)     device)   per shard) shard)      shards)  release module)
//! ```
//!
//! [`Run::push`] reads one batch: the rows are cleaned and located on every core
//! (`crate::ingest`) and kept as compact columns; beyond a quarter of the memory budget
//! they are spilled to disk by subscriber. Once the input ends, the run settles what
//! spans subscribers (period, pseudonyms), cuts the pings into shards of whole devices
//! (in memory, or read back from the spill files), and on each shard, in parallel,
//! profiles the devices and aggregates their visits for every release asked for. The
//! shards' partial aggregates merge exactly; each merged aggregate is then protected,
//! extrapolated and reported (`crate::release`). Every stage only reads what the one
//! before gave it: none reaches back.

mod grouping;
mod options;
mod progress;
mod shards;
mod spill;

use std::path::{Path, PathBuf};

use arrow_array::{RecordBatch, RecordBatchReader};

pub use options::{MIN_MEMORY_LIMIT, RunOptions, StopSignal, default_memory_limit, parse_bytes};
pub use progress::{Progress, ProgressCallback, Stage};

use crate::aggregate::Aggregate;
use crate::error::Result;
use crate::ingest::decoded::Decoded;
use crate::ingest::finish::{Finishing, finish_rows};
use crate::ingest::{LocatedPings, PseudonymousReader, Reader, read_ping_file};
use crate::profile::{Profiles, profile};
use crate::release::{Release, ReleaseSpec};
use crate::report::QualityReport;
use crate::risk::{Risk, RiskSpec};
use crate::study::{Prepared, Study};
use crate::workers::Threads;
use progress::{check_signal, stopped_by_callback};
use shards::{Pending, Sharding};
use spill::{DECODED_BYTES, Spill};

/// A run over a study's pings: push the input batch by batch, then ask for what it is
/// for (a release, several, the located pings, the per-device tables). Made by
/// [`Study::run`].
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{Config, Key, ReleaseSpec, RunOptions, Study};
///
/// let study = Study::new(geography(), Config::new(Key::new(b"a secret of 16+ bytes".to_vec())))?;
/// let mut run = study.run(&RunOptions::default())?;
/// run.push(&pings())?;
/// run.push(&pings())?;
/// let prepared = run.prepare()?;
/// assert_eq!(prepared.report().pings_read, 6);
/// assert_eq!(prepared.report().dropped.duplicate, 2);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub struct Run {
    study: Study,
    reader: Source,
    /// Decoded pings not yet spilled.
    decoded: Decoded,
    threads: Threads,
    memory_limit: u64,
    spill_dir: PathBuf,
    /// The spill files, once pings did not fit the budget.
    spill: Option<Spill>,
    /// Compressed bytes written to spill files so far.
    bytes_spilled: u64,
    progress: Option<ProgressCallback>,
    stop: Option<StopSignal>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The reader holds raw ids until the input ends: show counts only.
        f.debug_struct("Run")
            .field("reader", &self.reader)
            .field("pings_decoded", &self.decoded.len())
            .field("bytes_spilled", &self.bytes_spilled)
            .finish_non_exhaustive()
    }
}

impl Run {
    pub(crate) fn new(study: &Study, options: &RunOptions) -> Result<Self> {
        Ok(Self {
            study: study.clone(),
            reader: Source::Pings(Reader::new(study)),
            decoded: Decoded::default(),
            threads: Threads::new(options.threads)?,
            memory_limit: options.memory_limit()?,
            spill_dir: options.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
            spill: None,
            bytes_spilled: 0,
            progress: options.progress.clone(),
            stop: options.stop.clone(),
        })
    }

    /// A run over pseudonymous pings of `period` with its label (the output of a
    /// distributed run's mapper), which [`Run::push`] then reads.
    pub(crate) fn pseudonymous(
        study: &Study,
        options: &RunOptions,
        period: Option<(crate::config::Period, String)>,
    ) -> Result<Self> {
        let mut run = Self::new(study, options)?;
        run.reader = Source::Pseudonymous(PseudonymousReader::new(study, period));
        Ok(run)
    }

    /// The counter rows read with pseudonymous pings, summed by name, taken out.
    pub(crate) fn take_counters(&mut self) -> std::collections::BTreeMap<String, i64> {
        match &mut self.reader {
            Source::Pings(_) => std::collections::BTreeMap::new(),
            Source::Pseudonymous(reader) => reader.take_counters(),
        }
    }

    // -- read ------------------------------------------------------------------------

    /// Reads one batch of pings: cleaned and located at once, kept as compact columns
    /// (18 bytes a ping), spilled to disk beyond a quarter of the memory budget.
    ///
    /// # Errors
    /// [`Error::Input`](crate::Error::Input) naming the column for a missing column, an
    /// unsupported type, or subscriber ids of another kind than in earlier batches;
    /// [`Error::Config`](crate::Error::Config) naming `opt_out` when the opt-out ids are
    /// not of the subscriber column's kind, or `spill_dir` when it cannot be written;
    /// [`Error::Stopped`](crate::Error::Stopped) once the run is stopped.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        check_signal(self.stop.as_ref())?;
        let capacity = self.spill_rows();
        self.reader
            .read(batch, &self.threads, &mut self.decoded, Some(capacity))?;
        self.spill_if_over_budget()?;
        self.notify(Stage::Read, 0, 0)
    }

    /// Reads the pings of one Parquet file, batch by batch (only the columns the run
    /// uses are decoded, on a thread of their own, a few batches ahead).
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) naming the file (and the column, when one is
    /// at fault) for a file that is missing, not Parquet or truncated, lacks a column, or
    /// holds a column of an unsupported type; the errors of [`Run::push`]. Rows pushed
    /// from the file before the error stay pushed.
    pub fn push_parquet(&mut self, path: &Path) -> Result<()> {
        let study = self.study.clone();
        read_ping_file(path, study.columns(), |batch| self.push(batch))
    }

    /// Reads every batch of an Arrow batch reader (an FFI stream, a file reader). A
    /// reader without rows still has its columns checked.
    ///
    /// # Errors
    /// As [`Run::push`], and the reader's own errors.
    pub fn push_reader(&mut self, reader: impl RecordBatchReader) -> Result<()> {
        let schema = reader.schema();
        let mut pushed = false;
        for batch in reader {
            self.push(&batch?)?;
            pushed = true;
        }
        if !pushed {
            self.push(&RecordBatch::new_empty(schema))?;
        }
        Ok(())
    }

    /// Input rows read so far.
    #[must_use]
    pub fn rows_read(&self) -> u64 {
        self.reader.report().pings_read
    }

    // -- what the run is for ------------------------------------------------------------

    /// The located pings, all in memory (pings spilled to disk are read back), with the
    /// quality report.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `key` or `period_label` if they
    /// cannot be used, or `spill_dir` if spill files cannot be read.
    pub fn prepare(self) -> Result<Prepared> {
        let Self {
            study,
            reader,
            mut decoded,
            spill,
            ..
        } = self;
        let (finishing, mut report) = reader.settle()?;
        let Some(fin) = finishing else {
            let empty = LocatedPings::empty(vec![String::new()]);
            return Ok(Prepared::new(study, empty, report));
        };
        if let Some(mut spill) = spill {
            spill.write(&decoded)?;
            decoded = Decoded::default();
            for (path, _) in spill.partitions.close().into_iter().flatten() {
                spill::read(&path, &mut decoded)?;
            }
        }
        let (pings, counts) = finish_rows(decoded, &fin, study.geography());
        counts.add_to(&mut report);
        report.pings_kept = pings.len() as u64;
        report.devices = pings.devices().len() as u64;
        debug_assert_eq!(
            report.pings_read,
            report.pings_kept + report.dropped.total()
        );
        Ok(Prepared::new(study, pings, report))
    }

    /// One release (method §6–9): see [`Run::releases`].
    ///
    /// # Errors
    /// As [`Run::releases`].
    pub fn release(self, spec: &ReleaseSpec) -> Result<Release> {
        let mut releases = self.releases(std::slice::from_ref(spec))?;
        Ok(releases.remove(0))
    }

    /// Several releases of the pings read, in the order of `specs`: each shard is
    /// profiled once and aggregated for every spec, so the pings are read and the devices
    /// profiled once whatever the number of tables.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid spec; the errors of
    /// [`Run::prepare`]; [`Error::Stopped`](crate::Error::Stopped) when the run is
    /// stopped.
    pub fn releases(self, specs: &[ReleaseSpec]) -> Result<Vec<Release>> {
        let study = self.study.clone();
        study.authorize(specs)?;
        let (aggregates, quality) = self.aggregates(specs)?;
        aggregates
            .iter()
            .zip(specs)
            .map(|(aggregate, spec)| Release::protect(&study, aggregate.as_ref(), &quality, spec))
            .collect()
    }

    /// The partial aggregates of the pings read, one per spec (`None` when there is no
    /// period: no pings and none given), merged over the run's shards, with the quality
    /// report: what [`Study::release_aggregate`] protects, and what runs on other
    /// machines merge with [`Aggregate::merge_all`].
    ///
    /// # Errors
    /// As [`Run::releases`].
    pub fn aggregates(
        self,
        specs: &[ReleaseSpec],
    ) -> Result<(Vec<Option<Aggregate>>, QualityReport)> {
        let study = self.study.clone();
        // shard → profile → aggregate, on every core
        let (parts, quality) = self.shards(|pings| {
            let profiles = profile(pings, study.geography(), study.config())?;
            specs
                .iter()
                .map(|spec| Aggregate::new(&profiles, pings, &study, spec))
                .collect::<Result<Vec<_>>>()
        })?;
        // merge
        let mut by_spec: Vec<Vec<Aggregate>> = specs.iter().map(|_| Vec::new()).collect();
        for part in parts {
            for (merged, aggregate) in by_spec.iter_mut().zip(part) {
                merged.extend(aggregate);
            }
        }
        let aggregates = by_spec
            .into_iter()
            .map(Aggregate::merge_all)
            .collect::<Result<Vec<_>>>()?;
        Ok((aggregates, quality))
    }

    /// The devices table ([`Profiles::devices_batch`]), computed shard by shard in
    /// parallel within the memory budget, rows in increasing pseudonym as in one piece.
    ///
    /// # Errors
    /// As [`Run::prepare`].
    pub fn devices(self) -> Result<RecordBatch> {
        let study = self.study.clone();
        let (geography, config) = (study.geography(), study.config());
        let (parts, _) = self
            .shards(|pings| profile(pings, geography, config)?.devices_batch(pings, geography))?;
        Profiles::by_device(&Profiles::devices_schema(), &parts)
    }

    /// The visits table ([`Profiles::visits_batch`]), computed shard by shard in parallel
    /// within the memory budget, rows grouped by device in increasing pseudonym, then by
    /// start, as in one piece.
    ///
    /// # Errors
    /// As [`Run::prepare`].
    pub fn visits(self) -> Result<RecordBatch> {
        let study = self.study.clone();
        let (geography, config) = (study.geography(), study.config());
        let (parts, _) =
            self.shards(|pings| profile(pings, geography, config)?.visits_batch(geography))?;
        Profiles::by_device(&Profiles::visits_schema(), &parts)
    }

    /// The re-identification risk audit of the pings read (docs/METHOD.md,
    /// "Re-identification risk"), shard by shard within the memory budget: each shard's
    /// device points wait in a file of the spill directory until the sampled devices'
    /// drawn points are looked for in them. Gives what [`Prepared::risk`] gives for the
    /// same pings; with `samples`, what stays in memory is bounded by the sample.
    ///
    /// # Errors
    /// As [`Run::prepare`], and [`Error::Config`](crate::Error::Config) naming `points`,
    /// `samples`, `spatial` or `spill_dir` (when the points cannot be written there).
    pub fn risk(self, spec: &RiskSpec) -> Result<Risk> {
        let study = self.study.clone();
        crate::risk::check(spec, study.geography())?;
        let spill_dir = self.spill_dir.clone();
        let (parts, _) =
            self.shards(|pings| crate::risk::shard(pings, &study, spec, &spill_dir))?;
        crate::risk::merge(parts, &study, spec)
    }

    // -- the engine --------------------------------------------------------------------

    /// Finishes the pings shard by shard and runs `work` on each shard's located pings,
    /// in parallel, within the memory budget. Returns the results (one per shard, at
    /// least one) and the quality report.
    fn shards<T, W>(self, work: W) -> Result<(Vec<T>, QualityReport)>
    where
        T: Send,
        W: Fn(&LocatedPings) -> Result<T> + Sync,
    {
        let Self {
            study,
            reader,
            decoded,
            threads,
            memory_limit,
            spill,
            mut bytes_spilled,
            progress,
            stop,
            ..
        } = self;
        let rows_read = reader.report().pings_read;
        let (finishing, mut report) = reader.settle()?;
        let Some(fin) = finishing else {
            let empty = LocatedPings::empty(vec![String::new()]);
            return Ok((vec![work(&empty)?], report));
        };
        let pending = match spill {
            Some(mut spill) => {
                spill.write(&decoded)?;
                bytes_spilled = spill.bytes;
                drop(decoded);
                Pending::Spilled(spill)
            }
            None => Pending::Memory(decoded),
        };
        let pool = threads.shard_pool()?;
        let sharding = Sharding {
            finishing: &fin,
            geography: study.geography(),
            pool: pool.as_deref(),
            memory_limit,
            signal: stop,
        };
        let (parts, counts) = sharding.run(pending, work, |done, total| {
            notify(
                progress.as_ref(),
                &Progress {
                    stage: Stage::Analyze,
                    rows_read,
                    bytes_spilled,
                    shards_done: done,
                    shards_total: total,
                },
            )
        })?;
        report.pings_kept = counts.kept;
        report.devices = counts.devices;
        counts.finished.add_to(&mut report);
        debug_assert_eq!(
            report.pings_read,
            report.pings_kept + report.dropped.total()
        );
        Ok((parts, report))
    }

    /// The decoded pings kept in memory before they spill: a quarter of the budget.
    fn spill_rows(&self) -> usize {
        (self.memory_limit / 4 / DECODED_BYTES).max(64) as usize
    }

    /// Spills the decoded pings when they exceed a quarter of the memory budget.
    fn spill_if_over_budget(&mut self) -> Result<()> {
        if self.decoded.len() < self.spill_rows() {
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill::new(&self.spill_dir)?),
        };
        spill.write(&self.decoded)?;
        self.bytes_spilled = spill.bytes;
        // Emptied but kept: its pages stay resident for the next rows instead of being
        // released and faulted in again at every spill (it is the budget's quarter).
        self.decoded.clear();
        Ok(())
    }

    /// Sends a progress event; an error from the callback stops the run.
    fn notify(&self, stage: Stage, done: usize, total: usize) -> Result<()> {
        notify(
            self.progress.as_ref(),
            &Progress {
                stage,
                rows_read: self.reader.report().pings_read,
                bytes_spilled: self.bytes_spilled,
                shards_done: done,
                shards_total: total,
            },
        )
    }
}

/// Where a run's pings come from: raw pings, or pings pseudonymized elsewhere.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one source per run, never moved in a loop"
)]
enum Source {
    Pings(Reader),
    Pseudonymous(PseudonymousReader),
}

impl Source {
    fn read(
        &mut self,
        batch: &RecordBatch,
        threads: &Threads,
        into: &mut Decoded,
        capacity: Option<usize>,
    ) -> Result<()> {
        match self {
            Self::Pings(reader) => reader.read(batch, threads, into, capacity),
            Self::Pseudonymous(reader) => reader.read(batch, into, capacity),
        }
    }

    fn report(&self) -> &QualityReport {
        match self {
            Self::Pings(reader) => reader.report(),
            Self::Pseudonymous(reader) => reader.report(),
        }
    }

    fn settle(self) -> Result<(Option<Finishing>, QualityReport)> {
        match self {
            Self::Pings(reader) => reader.settle(),
            Self::Pseudonymous(reader) => Ok(reader.settle()),
        }
    }
}

fn notify(callback: Option<&ProgressCallback>, event: &Progress) -> Result<()> {
    match callback {
        Some(callback) => callback(event).map_err(stopped_by_callback),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Scenario, ScenarioConfig};

    /// A run over a synthetic city spilled within the smallest budget on 32 threads:
    /// shards of at most 128 pings, so partitions are split again by device.
    #[test]
    fn oversized_partitions_are_split_again_by_device_and_every_device_is_finished_once() {
        let scenario = Scenario::new(ScenarioConfig {
            scale: 0.001,
            days: 4,
            seed: 11,
            ..ScenarioConfig::default()
        })
        .unwrap();
        let study = Study::new(scenario.geography().clone(), scenario.run_config()).unwrap();
        let spill = tempfile::tempdir().unwrap();
        let mut options = RunOptions::with_threads(32);
        options.memory_limit = Some(MIN_MEMORY_LIMIT);
        options.spill_dir = Some(spill.path().to_owned());
        let batches: Vec<RecordBatch> = scenario.batches(50).collect::<Result<_, _>>().unwrap();
        let whole = study
            .prepare(batches.iter().cloned().map(Ok), &RunOptions::default())
            .unwrap();
        let mut run = study.run(&options).unwrap();
        for batch in &batches {
            run.push(batch).unwrap();
        }
        let (parts, report) = run.shards(|pings| Ok(pings.devices().to_vec())).unwrap();
        // More shards than the 256 partitions of pass 1.
        assert!(parts.len() > 256, "{} shards", parts.len());
        let mut devices: Vec<u64> = parts.into_iter().flatten().collect();
        devices.sort_unstable();
        assert_eq!(devices, whole.pings().devices());
        assert_eq!(&report, whole.report());
    }
}
