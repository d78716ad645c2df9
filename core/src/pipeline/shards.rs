//! Shards: the decoded pings cut into sets of whole devices, each finished into located
//! pings and handed to the run's per-device work on its own thread, within the memory
//! budget.
//!
//! When the pings fit in memory they are cut there; otherwise they are read back from
//! the spill files partition by partition, a partition too large for the budget split
//! again by device, and what is read back finished in pieces of an in-memory shard's
//! size. A shard holds whole devices, so per-device results do not depend on the cut.

use std::path::{Path, PathBuf};

use super::grouping::{
    BlockGroups, group_of_partition, partition_groups, subscriber_rows_by_group,
};
use super::options::StopSignal;
use super::progress::{Cancel, run_shards};
use super::spill::{self, PARTITIONS, PartitionedFiles, Spill, partition_of};
use crate::error::Result;
use crate::geo::Geography;
use crate::ingest::LocatedPings;
use crate::ingest::decoded::Decoded;
use crate::ingest::finish::{FinishCounts, Finishing, finish_rows};
use crate::workers::Kept;

/// Working bytes per ping while a shard is finished and analysed: its decoded rows, the
/// sort rows, the located pings and the per-device results, with room to spare.
const SHARD_BYTES: u64 = 128;

/// The most rows of an in-memory shard: small shards keep the working set of the shards
/// processed at once (and their copies of the rows) a small part of the pings.
const IN_MEMORY_SHARD_ROWS: u64 = 1 << 16;

/// Where the decoded pings wait for their shards.
pub(super) enum Pending {
    /// In memory.
    Memory(Decoded),
    /// On disk (the last rows already written), in the run's spill directory.
    Spilled(Spill),
}

/// What every shard is cut and finished with.
pub(super) struct Sharding<'r> {
    pub(super) finishing: &'r Finishing,
    pub(super) geography: &'r Geography,
    /// The pool shards run on (`None`: rayon's global pool).
    pub(super) pool: Option<&'r rayon::ThreadPool>,
    pub(super) memory_limit: u64,
    pub(super) signal: Option<StopSignal>,
}

/// The pings of the shards, as they are counted into the report.
#[derive(Default)]
pub(super) struct ShardCounts {
    pub(super) kept: u64,
    pub(super) devices: u64,
    pub(super) finished: FinishCounts,
}

impl ShardCounts {
    fn add(&mut self, other: &Self) {
        self.kept += other.kept;
        self.devices += other.devices;
        self.finished.add(&other.finished);
    }
}

/// What a worker is given: the rows of the pings in memory it takes, or the spill files
/// of whole partitions.
enum ShardInput {
    /// The group of the shard's rows among the grouped rows.
    Memory(usize),
    /// The group's first partition, and its files with their rows.
    Files(usize, Vec<(PathBuf, u64)>),
}

/// The rows that a shard may hold within the memory budget: half of it is shared by the
/// shards being processed at once, one per thread.
fn shard_rows(limit: u64, threads: usize) -> u64 {
    (limit / 2 / threads.max(1) as u64 / SHARD_BYTES).max(64)
}

impl Sharding<'_> {
    /// Finishes the pending pings shard by shard and runs `work` on each shard's located
    /// pings, in parallel; `tick(done, total)` is called as shards finish and at least
    /// every 200 ms. Returns the results (in no particular order of devices; at least
    /// one, for an empty shard when nothing was kept) and the shards' counts.
    ///
    /// # Errors
    /// The errors of reading spill files back, of `work` and of `tick`.
    #[expect(
        clippy::too_many_lines,
        reason = "the two ways shards are cut (memory, spill files) share their closures"
    )]
    pub(super) fn run<T, W>(
        &self,
        pending: Pending,
        work: W,
        mut tick: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<(Vec<T>, ShardCounts)>
    where
        T: Send,
        W: Fn(&LocatedPings) -> Result<T> + Sync,
    {
        let fin = self.finishing;
        let threads = self.pool.map_or_else(
            rayon::current_num_threads,
            rayon::ThreadPool::current_num_threads,
        );
        let shard_rows = shard_rows(self.memory_limit, threads);
        let mut grouped_rows = None;
        let mut decoded = Decoded::default();
        // Keeps the spill directory alive until the end of the run, however it ends.
        let mut spill = None;
        let inputs: Vec<ShardInput> = match pending {
            Pending::Spilled(mut spilled) => {
                let mut files = spilled.partitions.close();
                spill = Some(spilled);
                partition_groups(PARTITIONS, &fin.colliding, |n| {
                    partition_of(u64::from(n), PARTITIONS)
                })
                .into_iter()
                .map(|group| {
                    let first = group[0];
                    let files: Vec<_> = group.iter().filter_map(|&p| files[p].take()).collect();
                    (first, files)
                })
                .filter(|(_, files)| !files.is_empty())
                .map(|(first, files)| ShardInput::Files(first, files))
                .collect()
            }
            Pending::Memory(in_memory) => {
                decoded = in_memory;
                let count = (decoded.len() as u64)
                    .div_ceil(shard_rows.min(IN_MEMORY_SHARD_ROWS))
                    .max(4 * threads as u64)
                    .min(PARTITIONS as u64 * 16) as usize;
                let groups =
                    partition_groups(count, &fin.colliding, |n| partition_of(u64::from(n), count));
                // Each worker gathers its rows when it starts: only the shards being
                // processed are copied, not all of them at once.
                let group_of = group_of_partition(&groups);
                let subscriber = &decoded.subscriber;
                let group = |row: usize| group_of[partition_of(u64::from(subscriber[row]), count)];
                grouped_rows = Some(match self.pool {
                    Some(pool) => {
                        pool.install(|| BlockGroups::new(decoded.len(), groups.len(), group))
                    }
                    None => BlockGroups::new(decoded.len(), groups.len(), group),
                });
                (0..groups.len()).map(ShardInput::Memory).collect()
            }
        };
        let grouped_rows = &grouped_rows;
        let decoded = &decoded;
        let spill_dir = spill.as_ref().map(|s: &Spill| s.dir().to_owned());
        let total = inputs.len();
        tick(0, total)?;

        let geography = self.geography;
        let work = &work;
        let finish_one = |decoded: Decoded, cancel: &Cancel| -> Result<(T, ShardCounts)> {
            let (pings, finished) = finish_rows(decoded, fin, geography);
            cancel.check()?;
            let counts = ShardCounts {
                kept: pings.len() as u64,
                devices: pings.devices().len() as u64,
                finished,
            };
            Ok((work(&pings)?, counts))
        };
        // Pings read back from disk are finished in pieces of an in-memory shard's size,
        // split by device (colliding subscribers share their pseudonym, so they stay
        // together): a piece's rows fit the caches, as in memory. The pseudonym's bytes
        // are swapped for this split, so that it is independent of the split by device
        // of an oversized partition.
        let finish_pieces = |decoded: &Decoded, cancel: &Cancel| -> Result<Vec<(T, ShardCounts)>> {
            let piece_rows = shard_rows.min(IN_MEMORY_SHARD_ROWS);
            let pieces = (decoded.len() as u64).div_ceil(piece_rows).max(1) as usize;
            let (rows, ranges) = subscriber_rows_by_group(decoded, pieces, |number| {
                partition_of(fin.device_of[number as usize].swap_bytes(), pieces)
            });
            ranges
                .into_iter()
                .filter(|range| !range.is_empty())
                .map(|range| finish_one(Decoded::gather(decoded, &[&rows[range]]), cancel))
                .collect()
        };
        // Buffers of pings read back, one per worker at a time: allocated afresh for
        // every partition, their pages would be faulted in again each time.
        let read_buffers: Kept<Decoded> = Kept::default();
        let read_back = |paths: &mut dyn Iterator<Item = &Path>,
                         cancel: &Cancel|
         -> Result<Vec<(T, ShardCounts)>> {
            let mut decoded = read_buffers.lend(Decoded::default);
            decoded.clear();
            for path in paths {
                spill::read(path, &mut decoded)?;
                let _ = std::fs::remove_file(path);
                cancel.check()?;
            }
            finish_pieces(&decoded, cancel)
        };
        let process = |input: ShardInput, cancel: &Cancel| -> Result<Vec<(T, ShardCounts)>> {
            let (first, files) = match input {
                ShardInput::Memory(group) => {
                    let rows = grouped_rows.as_ref().map(|g| g.rows(group));
                    let shard = Decoded::gather(decoded, rows.as_deref().unwrap_or_default());
                    return Ok(vec![finish_one(shard, cancel)?]);
                }
                ShardInput::Files(first, files) => (first, files),
            };
            let rows: u64 = files.iter().map(|(_, rows)| rows).sum();
            let (Some(dir), true) = (&spill_dir, rows > shard_rows) else {
                return read_back(&mut files.iter().map(|(path, _)| path.as_path()), cancel);
            };
            // Too large for one shard: split again by device, which keeps colliding
            // subscribers together (they share the pseudonym).
            let pieces = rows.div_ceil(shard_rows) as usize;
            let prefix = format!("split-{first}");
            let mut split = PartitionedFiles::new(dir, &prefix, pieces);
            for (path, _) in &files {
                let mut decoded = Decoded::default();
                spill::read(path, &mut decoded)?;
                let subscriber = &decoded.subscriber;
                split.write(&decoded, |row| {
                    partition_of(fin.device_of[subscriber[row] as usize], pieces)
                })?;
                let _ = std::fs::remove_file(path);
                cancel.check()?;
            }
            let mut out = Vec::with_capacity(pieces);
            for (path, _) in split.close().into_iter().flatten() {
                out.extend(read_back(&mut std::iter::once(path.as_path()), cancel)?);
            }
            Ok(out)
        };
        let results = run_shards(self.pool, self.signal.clone(), inputs, process, |done| {
            tick(done, total)
        })?;
        drop(spill);

        let mut parts = Vec::new();
        let mut counts = ShardCounts::default();
        for (part, shard) in results.into_iter().flatten() {
            counts.add(&shard);
            parts.push(part);
        }
        if parts.is_empty() {
            // Every row was spilled and none kept: one empty shard, as without spilling.
            let mut empty = LocatedPings::empty(fin.sorted_codes.clone());
            empty.period = Some(fin.period);
            empty.period_label = Some(fin.label.clone());
            parts.push(work(&empty)?);
        }
        Ok((parts, counts))
    }
}
