//! Finishing pings (method §2–3): once the whole input is read, every subscriber gets its
//! pseudonym, and a set of decoded pings (all of them, or one shard's) is grouped by
//! device, sorted by time, de-duplicated and located in its leaf region and zones.
//!
//! A shard holds whole subscribers, and subscribers whose pseudonyms collide are put in
//! the same shard, so every device is finished in exactly one shard and any split gives
//! the same devices.

use h3o::CellIndex;

use super::decoded::Decoded;
use super::ids::{country_ranks, output_country};
use super::located::LocatedPings;
use super::memo::Memo;
use crate::config::Period;
use crate::geo::{Geography, UNKNOWN_REGION};
use crate::report::{DropReason, QualityReport};
use crate::workers::Kept;

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

impl Finishing {
    /// What finishing needs once every subscriber has its pseudonym: `device_of` by
    /// subscriber number, and `present` the subscribers with a kept ping, among which
    /// pairs sharing a pseudonym are found (they are one device, §3); `codes` are the
    /// country codes by number (0: none).
    pub(crate) fn new(
        period: Period,
        label: String,
        device_of: Vec<u64>,
        present: &[bool],
        codes: &[String],
    ) -> Self {
        let mut by_device: Vec<(u64, u32)> = (0..present.len() as u32)
            .filter(|&n| present[n as usize])
            .map(|n| (device_of[n as usize], n))
            .collect();
        by_device.sort_unstable();
        let colliding = by_device
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| (pair[0].1, pair[1].1))
            .collect();
        // Output country numbers follow the codes' byte order (none is 0), so that they
        // do not depend on the order in which codes were first seen.
        let country_rank = country_ranks(codes);
        let mut sorted_codes = vec![String::new(); codes.len()];
        for (number, code) in codes.iter().enumerate() {
            sorted_codes[output_country(country_rank[number]) as usize].clone_from(code);
        }
        Self {
            period,
            label,
            device_of,
            colliding,
            country_rank,
            sorted_codes,
            rank_tables: Kept::default(),
        }
    }
}

/// Groups decoded pings by device (in increasing pseudonym), sorts each device's pings
/// by time and keeps the first ping of each second (ties: smaller cell, then smaller
/// country, none last). Returns the located pings and what was counted of them.
pub(crate) fn finish_rows(
    decoded: Decoded,
    fin: &Finishing,
    geography: &Geography,
) -> (LocatedPings, FinishCounts) {
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

    let mut counts = FinishCounts::default();
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
                counts.duplicates += 1;
                continue;
            }
            last_ts = Some(ts);
            let place = places.get_or(cell, cell, || {
                let index = CellIndex::try_from(cell).expect("located cells are valid");
                (geography.leaf_of(index), geography.zone_set_of(index))
            });
            let (leaf, zone_set) = place;
            counts.in_regions += u64::from(leaf != UNKNOWN_REGION);
            counts.in_study_area += u64::from(geography.in_study_area(leaf));
            counts.in_zones += u64::from(zone_set != 0);
            pings.push(device, ts, cell, place, output_country(country_rank));
        }
        device_offsets.push(pings.len());
    }
    pings.set_devices(devices, device_offsets);
    pings.period = Some(fin.period);
    pings.period_label = Some(fin.label.clone());
    (pings, counts)
}

/// What finishing counts: duplicates dropped, and kept pings in a region, in the study
/// area and in a zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FinishCounts {
    pub(crate) duplicates: u64,
    pub(crate) in_regions: u64,
    pub(crate) in_study_area: u64,
    pub(crate) in_zones: u64,
}

impl FinishCounts {
    /// Counts these into a quality report.
    pub(crate) fn add_to(&self, report: &mut QualityReport) {
        report.dropped.add(DropReason::Duplicate, self.duplicates);
        report.pings_in_regions += self.in_regions;
        report.pings_in_study_area += self.in_study_area;
        report.pings_in_zones += self.in_zones;
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.duplicates += other.duplicates;
        self.in_regions += other.in_regions;
        self.in_study_area += other.in_study_area;
        self.in_zones += other.in_zones;
    }
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
}
