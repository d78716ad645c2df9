//! Finishing ingestion: pseudonyms, grouping by device and duplicates, over all pings
//! at once ([`Ingester::finish`]) or shard by shard ([`Ingester::finish_shards`]).
//!
//! Everything that spans subscribers (the period and its label, each subscriber's
//! pseudonym, pseudonym collisions, country numbers) is settled once, after the whole
//! input is read; every shard then finishes its own pings with it. A shard holds whole
//! subscribers, and subscribers whose pseudonyms collide are put in the same shard, so
//! every device is finished in exactly one shard and any split gives the same devices.

use std::path::{Path, PathBuf};

use super::spill::{self, DECODED_BYTES, PARTITIONS, PartitionedFiles, partition_of};
use h3o::CellIndex;

use super::kept::Kept;
use super::memo::Memo;
use super::{
    BlockGroups, Decoded, DictionaryNumbers, Ingester, LocatedPings, Prepared, Threads,
    output_country,
};
use crate::config::Period;
use crate::error::Result;
use crate::geo::Geography;
use crate::report::{DropReason, QualityReport};
use crate::run::{Cancel, Progress, Stage, run_shards};

/// Working bytes per ping while a shard is finished and analysed: its decoded rows, the
/// sort rows, the located pings and the per-device results, with room to spare.
const SHARD_BYTES: u64 = 128;

/// The most rows of an in-memory shard: small shards keep the working set of the shards
/// processed at once (and their copies of the rows) a small part of the pings.
const IN_MEMORY_SHARD_ROWS: u64 = 1 << 16;

/// What every shard needs to finish its pings, known once all input is read.
pub(crate) struct Finishing {
    pub(crate) period: Period,
    pub(crate) label: String,
    /// The pseudonym of each subscriber number (0 for subscribers without a kept ping).
    pub(crate) device_of: Vec<u64>,
    /// Pairs of subscriber numbers that share a pseudonym.
    pub(crate) colliding: Vec<(u32, u32)>,
    /// The rank of each country number in byte order of the codes ("none" last).
    pub(crate) country_rank: Vec<u16>,
    /// The codes by output country number.
    pub(crate) sorted_codes: Vec<String>,
    /// Tables of a rank per subscriber number (all `u32::MAX` when idle), one per worker
    /// at a time: shards are many, and each would otherwise fill one.
    pub(crate) rank_tables: Kept<Vec<u32>>,
}

/// The pings of one shard, as they are counted into the report.
struct ShardCounts {
    kept: u64,
    devices: u64,
    duplicates: u64,
}

/// What a worker is given: the rows of the pings in memory it takes, or the spill files
/// of whole partitions.
enum ShardInput {
    /// The group of the shard's rows among the grouped rows.
    Memory(usize),
    /// The group's first partition, and its files with their rows.
    Files(usize, Vec<(PathBuf, u64)>),
}

/// Groups decoded pings by device (in increasing pseudonym), sorts each device's pings
/// by time and keeps the first ping of each second (ties: smaller cell, then smaller
/// country, none last). Returns the located pings and the number of duplicates dropped.
pub(crate) fn finish_rows(
    decoded: Decoded,
    fin: &Finishing,
    geography: &Geography,
) -> (LocatedPings, u64) {
    // The subscribers present, ranked by pseudonym; colliding ones share a rank.
    let mut rank_of = fin
        .rank_tables
        .take()
        .unwrap_or_else(|| vec![u32::MAX; fin.device_of.len()]);
    let mut present: Vec<(u64, u32)> = Vec::new();
    for &number in &decoded.subscriber {
        let slot = &mut rank_of[number as usize];
        if *slot == u32::MAX {
            *slot = 0;
            present.push((fin.device_of[number as usize], number));
        }
    }
    present.sort_unstable();
    let mut devices: Vec<u64> = Vec::with_capacity(present.len());
    for &(device, number) in &present {
        if devices.last() != Some(&device) {
            devices.push(device);
        }
        rank_of[number as usize] = (devices.len() - 1) as u32;
    }

    // Counting sort of the rows by device rank, gathering each row's sort key
    // (second, cell, country rank) so that the per-device sorts read contiguous memory.
    let mut offsets = vec![0_usize; devices.len() + 1];
    for &number in &decoded.subscriber {
        offsets[rank_of[number as usize] as usize + 1] += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut rows: Vec<DeviceRow> = vec![(0, 0, 0); decoded.len()];
    let mut next = offsets.clone();
    for (row, &number) in decoded.subscriber.iter().enumerate() {
        let slot = &mut next[rank_of[number as usize] as usize];
        rows[*slot] = (
            decoded.ts.get(row),
            decoded.cell[row],
            fin.country_rank[decoded.country[row] as usize],
        );
        *slot += 1;
    }
    drop(decoded);
    for &(_, number) in &present {
        rank_of[number as usize] = u32::MAX;
    }
    drop(present);
    fin.rank_tables.give_back(rank_of);

    let mut duplicates = 0;
    let mut pings = LocatedPings::with_capacity(rows.len(), fin.sorted_codes.clone());
    let mut device_offsets = Vec::with_capacity(devices.len() + 1);
    device_offsets.push(0);
    let mut scratch = TimeSort::default();
    // A device's pings come from a few cells: their places are looked up once.
    let mut places = Memo::new(12);
    for (rank, &device) in devices.iter().enumerate() {
        let device_rows = &mut rows[offsets[rank]..offsets[rank + 1]];
        let mut last_ts = None;
        for &(ts, cell, country_rank) in scratch.sort(device_rows) {
            if last_ts == Some(ts) {
                duplicates += 1;
                continue;
            }
            last_ts = Some(ts);
            let place = places.get_or(cell, cell, || {
                let index = CellIndex::try_from(cell).expect("located cells are valid");
                (geography.leaf_of(index), geography.zone_set_of(index))
            });
            pings.push(device, ts, cell, place, output_country(country_rank));
        }
        device_offsets.push(pings.len());
    }
    pings.set_devices(devices, device_offsets);
    pings.period = Some(fin.period);
    pings.period_label = Some(fin.label.clone());
    (pings, duplicates)
}

/// A device's rows: (second, cell, country rank).
type DeviceRow = (i64, u64, u16);

/// Sorts a device's rows as `sort_unstable` does (by time, then cell and country), but
/// by one 64-bit key per row (time since the device's first ping, and the row's place
/// among them) so that the sort moves 8 bytes instead of 24; only rows of equal time
/// are then compared whole. Buffers are kept from device to device.
#[derive(Default)]
struct TimeSort {
    keys: Vec<u64>,
    /// The other buffer of the radix sort's passes.
    passed: Vec<u64>,
    sorted: Vec<DeviceRow>,
}

impl TimeSort {
    /// Bits of the key that hold the row's place among the device's rows.
    const ROW_BITS: u32 = 24;

    /// Devices with at least this many rows have their keys radix sorted.
    const RADIX_ROWS: usize = 256;

    /// Sorts the keys, built in row order, by their time bits (`time_bits` of them):
    /// least significant byte first, each pass stable, so keys of one second stay in
    /// row order, as a sort of the whole key puts them. A pass whose byte is the same
    /// in every key moves nothing.
    fn radix_sort(&mut self, time_bits: u32) {
        let rows = self.keys.len();
        self.passed.resize(rows, 0);
        let mut shift = Self::ROW_BITS;
        while shift < Self::ROW_BITS + time_bits {
            let byte = |key: u64| ((key >> shift) & 0xff) as usize;
            let mut starts = [0_usize; 256];
            for &key in &self.keys {
                starts[byte(key)] += 1;
            }
            if starts.contains(&rows) {
                shift += 8;
                continue;
            }
            let mut start = 0;
            for slot in &mut starts {
                (*slot, start) = (start, start + *slot);
            }
            for &key in &self.keys {
                let slot = &mut starts[byte(key)];
                self.passed[*slot] = key;
                *slot += 1;
            }
            std::mem::swap(&mut self.keys, &mut self.passed);
            shift += 8;
        }
    }

    /// The rows in order: sorted in place when they are too many or span too long for
    /// the key, else a sorted copy kept until the next call.
    fn sort<'r>(&'r mut self, rows: &'r mut [DeviceRow]) -> &'r [DeviceRow] {
        let Some(first) = rows.iter().map(|r| r.0).min() else {
            return rows;
        };
        let last = rows.iter().map(|r| r.0).max().unwrap_or(first);
        let span = last.abs_diff(first);
        if rows.len() >= 1 << Self::ROW_BITS || span >= 1 << (64 - Self::ROW_BITS) {
            rows.sort_unstable();
            return rows;
        }
        self.keys.clear();
        self.keys.extend(
            rows.iter()
                .enumerate()
                .map(|(i, r)| (r.0.abs_diff(first) << Self::ROW_BITS) | i as u64),
        );
        if rows.len() >= Self::RADIX_ROWS {
            self.radix_sort(u64::BITS - span.leading_zeros());
        } else {
            self.keys.sort_unstable();
        }
        self.sorted.clear();
        let mask = (1 << Self::ROW_BITS) - 1;
        self.sorted
            .extend(self.keys.iter().map(|&k| rows[(k & mask) as usize]));
        // Rows of one second are put in the order of their other fields. Seconds with
        // several rows are rare: they are looked for in the keys, 8 bytes a row.
        let same_second = |w: &[u64]| w[0] >> Self::ROW_BITS == w[1] >> Self::ROW_BITS;
        if self.keys.windows(2).any(same_second) {
            let mut start = 0;
            while start < self.sorted.len() {
                let ts = self.sorted[start].0;
                let end = start
                    + self.sorted[start..]
                        .iter()
                        .take_while(|r| r.0 == ts)
                        .count();
                if end - start > 1 {
                    self.sorted[start..end].sort_unstable();
                }
                start = end;
            }
        }
        &self.sorted
    }
}

/// The groups of partitions that must be finished together: partitions holding
/// subscribers that share a pseudonym are joined. Each group is sorted; groups are in
/// order of their first partition.
pub(crate) fn partition_groups(
    partitions: usize,
    colliding: &[(u32, u32)],
    partition_of_number: impl Fn(u32) -> usize,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..partitions).collect();
    for &(a, b) in colliding {
        let (ra, rb) = (
            root(&mut parent, partition_of_number(a)),
            root(&mut parent, partition_of_number(b)),
        );
        parent[ra.max(rb)] = ra.min(rb);
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); partitions];
    for p in 0..partitions {
        let r = root(&mut parent, p);
        groups[r].push(p);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// The root of a partition in a union-find forest, halving the path on the way.
fn root(parent: &mut [usize], mut p: usize) -> usize {
    while parent[p] != p {
        parent[p] = parent[parent[p]];
        p = parent[p];
    }
    p
}

/// The rows that a shard may hold within the memory budget: half of it is shared by the
/// shards being processed at once, one per thread.
fn shard_rows(limit: u64, threads: usize) -> u64 {
    (limit / 2 / threads.max(1) as u64 / SHARD_BYTES).max(64)
}

impl Ingester<'_> {
    /// Sends a progress event; an error from the callback stops the run.
    pub(super) fn notify(&mut self, stage: Stage, done: usize, total: usize) -> Result<()> {
        let event = Progress {
            stage,
            rows_read: self.report.pings_read,
            bytes_spilled: self.bytes_spilled,
            shards_done: done,
            shards_total: total,
        };
        match &mut self.progress {
            Some(callback) => callback(&event),
            None => Ok(()),
        }
    }

    /// The decoded pings kept in memory before they spill: a quarter of the budget.
    pub(super) fn spill_rows(&self) -> Option<usize> {
        self.memory_limit
            .map(|limit| (limit / 4 / DECODED_BYTES).max(64) as usize)
    }

    /// Spills the decoded pings when they exceed a quarter of the memory budget.
    pub(super) fn spill_if_over_budget(&mut self) -> Result<()> {
        let Some(rows) = self.spill_rows() else {
            return Ok(());
        };
        if self.decoded.len() < rows {
            return Ok(());
        }
        if self.spill.is_none() {
            self.spill = Some(spill::Spill::new(&self.spill_dir)?);
        }
        if let Some(spill) = &mut self.spill {
            spill.write(&self.decoded)?;
            self.bytes_spilled = spill.bytes;
        }
        // Emptied but kept: its pages stay resident for the next rows instead of being
        // released and faulted in again at every spill (it is the budget's quarter).
        self.decoded.clear();
        Ok(())
    }

    /// Settles what spans subscribers: the period and its label, pseudonyms, collisions
    /// and country numbers; fills the report's run-wide fields. `None` when there is no
    /// period (none given and no valid ping).
    pub(super) fn finishing(&mut self) -> Result<Option<Finishing>> {
        let config = self.config;
        self.report.opt_out.pings = self.report.dropped.opt_out;
        self.report.opt_out.subscribers =
            self.subscribers.opted_out.iter().filter(|&&o| o).count() as u64;
        let calendar = &self.calendar;
        let period = config.period.or_else(|| {
            let (first, last) = self.span?;
            let start = calendar.date_of(first);
            let end = calendar.date_of(last).tomorrow().ok()?;
            Some(Period { start, end })
        });
        let Some(period) = period else {
            return Ok(None);
        };
        let label = config
            .period_label
            .clone()
            .unwrap_or_else(|| period.default_label());

        // Pseudonymize each subscriber with a kept ping once; the raw ids are dropped
        // right after.
        let pseudonymizer = crate::pseudonym::Pseudonymizer::new(&config.key, &label)?;
        let has_row = &self.subscribers.has_row;
        let mut device_of = vec![0_u64; has_row.len()];
        for (bytes, &number) in &self.subscribers.number_of {
            if has_row[number as usize] {
                device_of[number as usize] = pseudonymizer.device(bytes.bytes());
            }
        }
        drop(std::mem::take(&mut self.subscribers.number_of));
        self.subscribers.last = (Vec::new(), u32::MAX);
        self.dictionary_numbers = DictionaryNumbers::default();
        self.country_numbers = DictionaryNumbers::default();
        drop(std::mem::take(&mut self.opt_out));
        // No position is located after the last push: the locators' caches (tens of
        // MiB per worker) are freed before the pings are finished.
        drop(std::mem::take(&mut self.positions));

        let mut by_device: Vec<(u64, u32)> = (0..has_row.len() as u32)
            .filter(|&n| has_row[n as usize])
            .map(|n| (device_of[n as usize], n))
            .collect();
        by_device.sort_unstable();
        let mut colliding = Vec::new();
        for pair in by_device.windows(2) {
            if pair[0].0 == pair[1].0 {
                colliding.push((pair[0].1, pair[1].1));
            }
        }
        self.report.pseudonym_collisions = colliding.len() as u64;

        // Output country numbers follow the codes' byte order (none is 0), so that they
        // do not depend on the order in which codes were first seen.
        let codes = &self.countries.codes;
        let country_rank = super::country_ranks(codes);
        let mut sorted_codes = vec![String::new(); codes.len()];
        for (number, code) in codes.iter().enumerate() {
            sorted_codes[output_country(country_rank[number]) as usize].clone_from(code);
        }
        self.report.period = Some(period);
        self.report.period_label = Some(label.clone());
        Ok(Some(Finishing {
            period,
            label,
            device_of,
            colliding,
            country_rank,
            sorted_codes,
            rank_tables: Kept::default(),
        }))
    }

    /// Pseudonymizes, cuts to the period, groups by device, resolves duplicates and
    /// returns all the located pings with the quality report. Pings spilled to disk are
    /// read back: the result is in memory whatever the budget.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `key` or `period_label` if they
    /// cannot be used, or `spill_dir` if spill files cannot be read.
    pub fn finish(mut self) -> Result<Prepared> {
        let Some(fin) = self.finishing()? else {
            return Ok(Prepared {
                pings: LocatedPings::empty(std::mem::take(&mut self.countries.codes)),
                report: self.report,
            });
        };
        let mut decoded = std::mem::take(&mut self.decoded);
        if let Some(spill) = &mut self.spill {
            spill.write(&decoded)?;
            decoded = Decoded::default();
            for (path, _) in spill.partitions.close().into_iter().flatten() {
                spill::read(&path, &mut decoded)?;
            }
        }
        let (pings, duplicates) = finish_rows(decoded, &fin, self.geography);
        self.report.dropped.add(DropReason::Duplicate, duplicates);
        self.report.pings_kept = pings.len() as u64;
        self.report.devices = pings.devices().len() as u64;
        debug_assert_eq!(
            self.report.pings_read,
            self.report.pings_kept + self.report.dropped.total()
        );
        Ok(Prepared {
            pings,
            report: self.report,
        })
    }

    /// Finishes the pings shard by shard and runs `work` on each shard's located pings,
    /// in parallel, within the memory budget: the run's per-device analytics and partial
    /// aggregates. A shard holds whole devices, so per-device results do not depend on
    /// the split. Returns the results (one per shard, at least one) and the report.
    ///
    /// Without a memory budget, or when the pings fit in it, the shards are cut in
    /// memory; otherwise they are read back from the spill files, partition by
    /// partition, and a partition too large for the budget is split again by device.
    ///
    /// # Errors
    /// As [`Ingester::finish`], the errors of `work`, and the progress callback's error
    /// ([`Error::Stopped`](crate::Error::Stopped) on an interrupt).
    pub fn finish_shards<T, W>(mut self, work: W) -> Result<(Vec<T>, QualityReport)>
    where
        T: Send,
        W: Fn(&LocatedPings) -> Result<T> + Sync,
    {
        let Some(fin) = self.finishing()? else {
            let empty = LocatedPings::empty(std::mem::take(&mut self.countries.codes));
            return Ok((vec![work(&empty)?], self.report));
        };
        let pool: Option<std::sync::Arc<rayon::ThreadPool>> = match &self.threads {
            Threads::Own(pool) => Some(std::sync::Arc::clone(pool)),
            Threads::Global => None,
            Threads::Calling => Some(std::sync::Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .map_err(|e| crate::Error::config("threads", e))?,
            )),
        };
        let threads = pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        let shard_rows = self
            .memory_limit
            .map_or(u64::MAX, |limit| shard_rows(limit, threads));
        let mut decoded = std::mem::take(&mut self.decoded);

        // Keeps the spill directory alive until the end of the run, however it ends.
        let mut spill = self.spill.take();
        let mut grouped_rows = None;
        let inputs: Vec<ShardInput> = if let Some(spill) = &mut spill {
            spill.write(&decoded)?;
            self.bytes_spilled = spill.bytes;
            decoded = Decoded::default();
            let mut files = spill.partitions.close();
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
        } else {
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
            grouped_rows = Some(match pool.as_deref() {
                Some(pool) => pool.install(|| BlockGroups::new(decoded.len(), groups.len(), group)),
                None => BlockGroups::new(decoded.len(), groups.len(), group),
            });
            (0..groups.len()).map(ShardInput::Memory).collect()
        };
        let grouped_rows = &grouped_rows;
        let decoded = &decoded;
        let spill_dir = spill.as_ref().map(|s| s.dir().to_owned());
        let total = inputs.len();
        self.notify(Stage::Analyze, 0, total)?;

        let fin = &fin;
        let geography = self.geography;
        let work = &work;
        let finish_one = |decoded: Decoded, cancel: &Cancel| -> Result<(T, ShardCounts)> {
            let (pings, duplicates) = finish_rows(decoded, fin, geography);
            cancel.check()?;
            let counts = ShardCounts {
                kept: pings.len() as u64,
                devices: pings.devices().len() as u64,
                duplicates,
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
        let results = run_shards(pool.as_deref(), inputs, process, |done| {
            self.notify(Stage::Analyze, done, total)
        })?;
        drop(spill);

        let mut parts = Vec::new();
        for (part, counts) in results.into_iter().flatten() {
            self.report.pings_kept += counts.kept;
            self.report.devices += counts.devices;
            self.report
                .dropped
                .add(DropReason::Duplicate, counts.duplicates);
            parts.push(part);
        }
        if parts.is_empty() {
            // Every row was spilled and none kept: one empty shard, as without spilling.
            let mut empty = LocatedPings::empty(fin.sorted_codes.clone());
            empty.period = Some(fin.period);
            empty.period_label = Some(fin.label.clone());
            parts.push(work(&empty)?);
        }
        debug_assert_eq!(
            self.report.pings_read,
            self.report.pings_kept + self.report.dropped.total()
        );
        Ok((parts, self.report))
    }
}

/// For each partition, the group holding it.
fn group_of_partition(groups: &[Vec<usize>]) -> Vec<usize> {
    let mut group_of = vec![0; groups.iter().map(Vec::len).sum()];
    for (g, group) in groups.iter().enumerate() {
        for &p in group {
            group_of[p] = g;
        }
    }
    group_of
}

/// The rows of decoded pings by group, `group_of(subscriber)` among `groups`: see
/// [`rows_by_group`](super::rows_by_group).
fn subscriber_rows_by_group(
    decoded: &Decoded,
    groups: usize,
    group_of: impl Fn(u32) -> usize,
) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
    let subscriber = &decoded.subscriber;
    super::rows_by_group(0..decoded.len(), groups, |row| group_of(subscriber[row]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The key sort orders a device's rows exactly as the tuple sort, ties of one
        /// second included, and falls back to it for spans beyond its key.
        #[test]
        fn time_sort_is_the_tuple_sort(
            rows in proptest::collection::vec(
                (-5_i64..5, 0_u64..3, 0_u16..2),
                0..200,
            ),
            many in proptest::collection::vec((0_i64..100_000, 0_u64..3, 0_u16..2), 256..1_200),
            base in prop_oneof![Just(0_i64), Just(1_700_000_000), Just(-1_i64 << 62)],
            stretch in prop_oneof![Just(1_i64), Just(3_600), Just(1_i64 << 50)],
        ) {
            let rows: Vec<DeviceRow> = rows
                .into_iter()
                .map(|(t, cell, country)| (base + t * stretch, cell, country))
                .collect();
            let mut expected = rows.clone();
            expected.sort_unstable();
            let mut rows = rows;
            let mut scratch = TimeSort::default();
            prop_assert_eq!(scratch.sort(&mut rows), &expected[..]);
            // The buffers are reused: a second device sorts as well.
            let mut again: Vec<DeviceRow> = expected.iter().rev().copied().collect();
            prop_assert_eq!(scratch.sort(&mut again), &expected[..]);
            // And one without two rows in a second (no tie to break).
            let mut distinct: Vec<DeviceRow> = expected
                .iter()
                .enumerate()
                .map(|(i, &(_, cell, country))| (base + (i as i64 * 7 % 200) * stretch, cell, country))
                .collect();
            let mut in_order = distinct.clone();
            in_order.sort_unstable();
            prop_assert_eq!(scratch.sort(&mut distinct), &in_order[..]);
            // Enough rows for the radix sort, over spans of 17 to 37 bits.
            let step = stretch.min(1 << 20);
            let mut many: Vec<DeviceRow> = many
                .into_iter()
                .map(|(t, cell, country)| (base + t * step, cell, country))
                .collect();
            let mut in_order = many.clone();
            in_order.sort_unstable();
            prop_assert_eq!(scratch.sort(&mut many), &in_order[..]);
        }
    }

    #[test]
    fn colliding_subscribers_join_their_partitions() {
        // Numbers 0..8 in partition n % 4; 1 and 6 collide, and 6 and 3.
        let groups = partition_groups(4, &[(1, 6), (6, 3)], |n| n as usize % 4);
        assert_eq!(groups, vec![vec![0], vec![1, 2, 3]]);
        let alone = partition_groups(3, &[], |n| n as usize % 3);
        assert_eq!(alone, vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn block_groups_list_each_groups_rows_in_row_order() {
        let mut decoded = Decoded::default();
        for i in 0..200_000_u32 {
            decoded.subscriber.push(i.wrapping_mul(2_654_435_761) % 977);
            decoded.ts.push(i64::from(i));
            decoded.cell.push(u64::from(i));
            decoded.country.push(0);
        }
        let group_of = |n: u32| n as usize % 13;
        let (rows, ranges) = subscriber_rows_by_group(&decoded, 13, group_of);
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let blocks = pool.install(|| {
                BlockGroups::new(decoded.len(), 13, |row| group_of(decoded.subscriber[row]))
            });
            assert_eq!(blocks.0.len(), threads.min(4), "{threads} threads");
            for (group, range) in ranges.iter().enumerate() {
                let listed: Vec<u32> = blocks.rows(group).concat();
                assert_eq!(
                    listed,
                    rows[range.clone()],
                    "group {group}, {threads} threads"
                );
                let gathered = Decoded::gather(&decoded, &blocks.rows(group));
                assert!(gathered.subscriber.iter().all(|&n| group_of(n) == group));
            }
        }
    }

    #[test]
    fn an_in_memory_split_keeps_every_row_once_and_subscribers_whole() {
        let mut decoded = Decoded::default();
        for i in 0..1000_u32 {
            decoded.subscriber.push(i % 41);
            decoded.ts.push(i64::from(i));
            decoded.cell.push(u64::from(i));
            decoded.country.push(0);
        }
        let groups = partition_groups(8, &[(3, 4)], |n| n as usize % 8);
        let group_of = group_of_partition(&groups);
        let (rows, ranges) =
            subscriber_rows_by_group(&decoded, groups.len(), |n| group_of[n as usize % 8]);
        assert_eq!(rows.len(), 1000);
        let parts: Vec<Decoded> = ranges
            .into_iter()
            .map(|range| {
                // Each group's rows in row order.
                assert!(rows[range.clone()].is_sorted());
                Decoded::gather(&decoded, &[&rows[range]])
            })
            .collect();
        assert_eq!(parts.iter().map(Decoded::len).sum::<usize>(), 1000);
        let mut ts: Vec<i64> = parts.iter().flat_map(|p| p.ts.iter()).collect();
        ts.sort_unstable();
        assert_eq!(ts, (0..1000).collect::<Vec<_>>());
        let holder = |n: u32| parts.iter().position(|p| p.subscriber.contains(&n));
        assert_eq!(holder(3), holder(4), "colliding subscribers share a shard");
        for n in 0..41 {
            let holding = parts.iter().filter(|p| p.subscriber.contains(&n)).count();
            assert_eq!(holding, 1);
        }
    }
}
