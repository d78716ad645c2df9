//! Spill files: decoded pings written to disk, partitioned by subscriber and
//! compressed, when they do not fit the memory budget.
//!
//! A file is a sequence of chunks, each `[rows: u32][bytes: u32][LZ4 block]`, the block
//! holding the chunk's columns one after the other, each frame-of-reference coded in as
//! few bytes as its values need (see [`pack`]).
//! Files live in a directory of their own, removed when the [`Spill`] is dropped: on
//! success, on error and on interrupt alike.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::grouping::BlockGroups;
use crate::error::{Error, Result};
use crate::ingest::decoded::Decoded;

/// Partitions of pass 1. Many, so that each is a small part of the input and the
/// partitions of one shard can be chosen to fit the budget; few enough to keep a file
/// handle each.
pub(crate) const PARTITIONS: usize = 256;

/// Bytes of one decoded ping in memory, at most (times 6 bytes, though 4 in practice).
pub(crate) const DECODED_BYTES: u64 = 4 + 6 + 8 + 2;

/// Bytes of one ping's packed columns in a chunk, at most.
const PACKED_BYTES: usize = 4 + 8 + 8 + 2;

/// The partition of a subscriber number among `partitions`: Fibonacci hashing spreads
/// the consecutive numbers of one input file over all partitions.
pub(crate) fn partition_of(key: u64, partitions: usize) -> usize {
    let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    ((hash * partitions as u64) >> 32) as usize
}

fn io_error(path: &Path, error: std::io::Error) -> Error {
    Error::config_source(
        "spill_dir",
        format!("cannot use spill file {}: {error}", path.display()),
        error,
    )
}

/// A set of files that rows are appended to, each row to the file its key picks.
pub(crate) struct PartitionedFiles {
    paths: Vec<PathBuf>,
    files: Vec<Option<File>>,
    rows: Vec<u64>,
}

impl PartitionedFiles {
    pub(crate) fn new(dir: &Path, prefix: &str, count: usize) -> Self {
        Self {
            paths: (0..count)
                .map(|i| dir.join(format!("{prefix}-{i:04}.bin")))
                .collect(),
            files: (0..count).map(|_| None).collect(),
            rows: vec![0; count],
        }
    }

    /// Appends the rows of `decoded` to the files `file_of(row)` picks; returns the bytes
    /// written.
    pub(crate) fn write(
        &mut self,
        decoded: &Decoded,
        file_of: impl Fn(usize) -> usize + Sync,
    ) -> Result<u64> {
        // Rows are grouped by file and chunks compressed on every core, then appended in
        // file order.
        let groups = BlockGroups::new(decoded.len(), self.paths.len(), file_of);
        let chunks: Vec<(usize, usize, Vec<u8>)> = {
            use rayon::prelude::*;
            (0..self.paths.len())
                .into_par_iter()
                .filter_map(|file| {
                    let parts = groups.rows(file);
                    let rows: usize = parts.iter().map(|rows| rows.len()).sum();
                    (rows > 0).then(|| (file, rows, encode(decoded, &parts)))
                })
                .collect()
        };
        let mut written = 0;
        for (file, rows, chunk) in chunks {
            let path = &self.paths[file];
            if self.files[file].is_none() {
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io_error(path, e))?;
                self.files[file] = Some(handle);
            }
            if let Some(handle) = &mut self.files[file] {
                handle.write_all(&chunk).map_err(|e| io_error(path, e))?;
            }
            self.rows[file] += rows as u64;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Closes the files and returns, for each, its path and rows (`None` for a file
    /// without rows).
    pub(crate) fn close(&mut self) -> Vec<Option<(PathBuf, u64)>> {
        self.files.clear();
        std::mem::take(&mut self.paths)
            .into_iter()
            .zip(std::mem::take(&mut self.rows))
            .map(|(path, rows)| (rows > 0).then_some((path, rows)))
            .collect()
    }
}

/// The spill directory of a run and its partition files.
pub(crate) struct Spill {
    dir: tempfile::TempDir,
    pub(crate) partitions: PartitionedFiles,
    /// Compressed bytes written so far.
    pub(crate) bytes: u64,
}

impl Spill {
    pub(crate) fn new(parent: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("crowdtally-spill-")
            .tempdir_in(parent)
            .map_err(|e| io_error(parent, e))?;
        let partitions = PartitionedFiles::new(dir.path(), "part", PARTITIONS);
        Ok(Self {
            dir,
            partitions,
            bytes: 0,
        })
    }

    /// The directory spill files go in.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes decoded pings to their subscribers' partitions.
    pub(crate) fn write(&mut self, decoded: &Decoded) -> Result<()> {
        let subscriber = &decoded.subscriber;
        self.bytes += self.partitions.write(decoded, |row| {
            partition_of(u64::from(subscriber[row]), PARTITIONS)
        })?;
        Ok(())
    }
}

/// The chunk of the rows of `decoded` listed in `parts`, in that order.
fn encode(decoded: &Decoded, parts: &[&[u32]]) -> Vec<u8> {
    let count = parts.iter().map(|rows| rows.len()).sum::<usize>();
    let mut raw = Vec::with_capacity(count * PACKED_BYTES / 2 + 4 * COLUMN_HEADER);
    let mut column = Vec::with_capacity(count);
    let rows = parts.iter().copied().flatten().map(|&r| r as usize);
    column.extend(rows.clone().map(|r| u64::from(decoded.subscriber[r])));
    pack(&column, &mut raw);
    column.clear();
    column.extend(rows.clone().map(|r| ordered(decoded.ts.get(r))));
    pack(&column, &mut raw);
    column.clear();
    column.extend(rows.clone().map(|r| decoded.cell[r]));
    pack(&column, &mut raw);
    column.clear();
    column.extend(rows.map(|r| u64::from(decoded.country[r])));
    pack(&column, &mut raw);
    let block = lz4_flex::block::compress(&raw);
    let mut chunk = Vec::with_capacity(8 + block.len());
    chunk.extend((column.len() as u32).to_le_bytes());
    chunk.extend((block.len() as u32).to_le_bytes());
    chunk.extend(block);
    chunk
}

/// Bytes before a packed column's values: its base, shift and width.
const COLUMN_HEADER: usize = 8 + 1 + 1;

/// A signed time as an unsigned number of the same order.
fn ordered(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

/// Appends `values` frame-of-reference coded: the least value (the base), then each
/// value as `(value - base) >> shift` in `width` little-endian bytes, `width` as few as
/// the largest needs (none when all are equal). `shift` is the count of low zero bits
/// all offsets share: cells of one resolution end in the same unused digits, and so
/// their offsets in zeros.
fn pack(values: &[u64], out: &mut Vec<u8>) {
    let first = values.first().copied().unwrap_or(0);
    let (mut base, mut top, mut differing) = (first, first, 0);
    for &value in values {
        base = base.min(value);
        top = top.max(value);
        // The lowest bit where two values differ is the lowest set bit of their
        // difference: offsets from any one value share as many low zeros as these.
        differing |= value ^ first;
    }
    let shift = if differing == 0 {
        0
    } else {
        differing.trailing_zeros()
    };
    let width = (u64::BITS - ((top - base) >> shift).leading_zeros()).div_ceil(8) as usize;
    out.extend(base.to_le_bytes());
    out.extend([shift as u8, width as u8]);
    match width {
        0 => {}
        1 => pack_in::<1>(values, base, shift, out),
        2 => pack_in::<2>(values, base, shift, out),
        3 => pack_in::<3>(values, base, shift, out),
        4 => pack_in::<4>(values, base, shift, out),
        5 => pack_in::<5>(values, base, shift, out),
        6 => pack_in::<6>(values, base, shift, out),
        7 => pack_in::<7>(values, base, shift, out),
        _ => pack_in::<8>(values, base, shift, out),
    }
}

fn pack_in<const WIDTH: usize>(values: &[u64], base: u64, shift: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + values.len() * WIDTH, 0);
    for (bytes, &value) in out[start..].chunks_exact_mut(WIDTH).zip(values) {
        bytes.copy_from_slice(&((value - base) >> shift).to_le_bytes()[..WIDTH]);
    }
}

/// Reads one column [`pack`] wrote of `rows` values from the front of `bytes`, giving
/// each to `push`; `None` if the bytes are not such a column.
fn unpack(bytes: &mut &[u8], rows: usize, push: impl FnMut(u64)) -> Option<()> {
    let header = bytes.get(..COLUMN_HEADER)?;
    let base = le_u64(header);
    let (shift, width) = (u32::from(header[8]), usize::from(header[9]));
    if shift >= u64::BITS || width > 8 {
        return None;
    }
    let values = bytes.get(COLUMN_HEADER..COLUMN_HEADER + rows.checked_mul(width)?)?;
    *bytes = &bytes[COLUMN_HEADER + values.len()..];
    match width {
        0 => (0..rows).map(|_| base).for_each(push),
        1 => unpack_in::<1>(values, base, shift, push),
        2 => unpack_in::<2>(values, base, shift, push),
        3 => unpack_in::<3>(values, base, shift, push),
        4 => unpack_in::<4>(values, base, shift, push),
        5 => unpack_in::<5>(values, base, shift, push),
        6 => unpack_in::<6>(values, base, shift, push),
        7 => unpack_in::<7>(values, base, shift, push),
        _ => unpack_in::<8>(values, base, shift, push),
    }
    Some(())
}

fn unpack_in<const WIDTH: usize>(values: &[u8], base: u64, shift: u32, push: impl FnMut(u64)) {
    values
        .chunks_exact(WIDTH)
        .map(|bytes| {
            let mut word = [0; 8];
            word[..WIDTH].copy_from_slice(bytes);
            // Wrapping: a damaged file gives wrong pings, caught by no check, but no panic.
            base.wrapping_add(u64::from_le_bytes(word) << shift)
        })
        .for_each(push);
}

/// Reads spill files back, appending their pings to `into`.
pub(crate) fn read(path: &Path, into: &mut Decoded) -> Result<()> {
    let corrupt = |what: &str| {
        Error::config(
            "spill_dir",
            format!("spill file {} is corrupt: {what}", path.display()),
        )
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|e| io_error(path, e))?;
    let mut rest = bytes.as_slice();
    let mut raw = Vec::new();
    while !rest.is_empty() {
        let (Some(rows), Some(length)) = (rest.get(0..4).map(le_u32), rest.get(4..8).map(le_u32))
        else {
            return Err(corrupt("truncated header"));
        };
        let (rows, length) = (rows as usize, length as usize);
        let block = rest
            .get(8..8 + length)
            .ok_or_else(|| corrupt("truncated chunk"))?;
        // LZ4 after packing: packed columns still repeat (a device's cells, its number).
        // The buffer only grows: the block overwrites what it needs.
        let most = rows * PACKED_BYTES + 4 * COLUMN_HEADER;
        if raw.len() < most {
            raw.resize(most, 0);
        }
        let size = lz4_flex::block::decompress_into(block, &mut raw)
            .map_err(|e| corrupt(&e.to_string()))?;
        let mut columns = &raw[..size];
        into.subscriber.reserve(rows);
        into.ts.reserve(rows);
        into.cell.reserve(rows);
        into.country.reserve(rows);
        let unpacked = unpack(&mut columns, rows, |n| into.subscriber.push(n as u32))
            .and_then(|()| unpack(&mut columns, rows, |t| into.ts.push((t ^ (1 << 63)) as i64)))
            .and_then(|()| unpack(&mut columns, rows, |c| into.cell.push(c)))
            .and_then(|()| unpack(&mut columns, rows, |c| into.country.push(c as u16)));
        if unpacked.is_none() || !columns.is_empty() {
            return Err(corrupt("chunk of the wrong size"));
        }
        rest = &rest[8 + length..];
    }
    Ok(())
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: u32) -> Decoded {
        let mut decoded = Decoded::default();
        for i in 0..rows {
            decoded.subscriber.push(i % 37);
            decoded.ts.push(1_780_000_000 + i64::from(i) * 3600);
            decoded.cell.push(0x0891_fa00_0000_0fff + u64::from(i));
            decoded.country.push((i % 3) as u16);
        }
        decoded
    }

    #[test]
    fn chunks_round_trip_and_partitions_hold_whole_subscribers() {
        let parent = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(parent.path()).unwrap();
        let decoded = sample(5000);
        spill.write(&decoded).unwrap();
        spill.write(&decoded).unwrap();
        assert!(spill.bytes > 0);
        let files: Vec<(PathBuf, u64)> = spill.partitions.close().into_iter().flatten().collect();
        let mut back = Decoded::default();
        let mut seen = std::collections::HashMap::new();
        for (path, rows) in &files {
            let mut part = Decoded::default();
            read(path, &mut part).unwrap();
            assert_eq!(part.len() as u64, *rows);
            for &s in &part.subscriber {
                assert_eq!(*seen.entry(s).or_insert(path.clone()), *path);
            }
            read(path, &mut back).unwrap();
        }
        assert_eq!(back.len(), 10_000);
        let mut rows: Vec<_> = (0..back.len())
            .map(|r| {
                (
                    back.subscriber[r],
                    back.ts.get(r),
                    back.cell[r],
                    back.country[r],
                )
            })
            .collect();
        let mut expected: Vec<_> = (0..decoded.len())
            .flat_map(|r| {
                let row = (
                    decoded.subscriber[r],
                    decoded.ts.get(r),
                    decoded.cell[r],
                    decoded.country[r],
                );
                [row, row]
            })
            .collect();
        rows.sort_unstable();
        expected.sort_unstable();
        assert_eq!(rows, expected);

        let dir = spill.dir().to_owned();
        assert!(dir.exists());
        drop(spill);
        assert!(!dir.exists(), "the spill directory is removed on drop");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_the_spill_dir() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("bad.bin");
        std::fs::write(&path, [1, 0, 0, 0, 200, 0, 0, 0, 9]).unwrap();
        let error = read(&path, &mut Decoded::default()).unwrap_err();
        assert_eq!(error.field(), Some("spill_dir"));
        let error = Spill::new(&parent.path().join("missing")).err().unwrap();
        assert_eq!(error.field(), Some("spill_dir"));
    }

    proptest::proptest! {
        /// Any pings, extreme values included, come back from a spill file as written,
        /// chunk after chunk.
        #[test]
        fn spilled_pings_round_trip(
            rows in proptest::collection::vec(
                (
                    proptest::num::u32::ANY,
                    proptest::prop_oneof![crate::calendar::instant_range(), 1_780_000_000_i64..1_790_000_000],
                    proptest::prop_oneof![proptest::num::u64::ANY, proptest::strategy::Just(0x0891_fa00_0000_0fff_u64)],
                    proptest::num::u16::ANY,
                ),
                0..80,
            ),
            cut in 0_usize..80,
        ) {
            let mut decoded = Decoded::default();
            for &(subscriber, ts, cell, country) in &rows {
                decoded.subscriber.push(subscriber);
                decoded.ts.push(ts);
                decoded.cell.push(cell);
                decoded.country.push(country);
            }
            let cut = cut.min(rows.len());
            let all: Vec<u32> = (0..rows.len() as u32).collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("chunks.bin");
            let mut file = Vec::new();
            file.extend(encode(&decoded, &[&all[..cut]]));
            file.extend(encode(&decoded, &[&all[cut..]]));
            // Rows listed in parts make the chunk of the rows listed at once.
            proptest::prop_assert_eq!(
                encode(&decoded, &[&all[..cut], &all[cut..]]),
                encode(&decoded, &[&all])
            );
            std::fs::write(&path, file).unwrap();
            let mut back = Decoded::default();
            read(&path, &mut back).unwrap();
            proptest::prop_assert_eq!(back.subscriber, decoded.subscriber);
            proptest::prop_assert_eq!(
                back.ts.iter().collect::<Vec<_>>(),
                decoded.ts.iter().collect::<Vec<_>>()
            );
            proptest::prop_assert_eq!(back.cell, decoded.cell);
            proptest::prop_assert_eq!(back.country, decoded.country);
        }

        /// Any values, extremes included, come back as written, in as few bytes as the
        /// spread of their offsets needs.
        #[test]
        fn packed_columns_round_trip(
            values in proptest::collection::vec(proptest::num::u64::ANY, 0..60),
            scale in 0_u32..64,
            base in proptest::num::u64::ANY,
        ) {
            // Offsets sharing low zero bits, from a base: as cells and times are.
            let values: Vec<u64> = values
                .iter()
                .map(|v| base.wrapping_add(v.checked_shl(scale).unwrap_or(0)))
                .collect();
            let mut bytes = vec![7];
            pack(&values, &mut bytes);
            let least = values.iter().copied().min().unwrap_or(0);
            let span = values.iter().map(|v| v - least).max().unwrap_or(0);
            let (shift, width) = (bytes[1 + 8], usize::from(bytes[1 + 9]));
            let packed = span >> shift;
            proptest::prop_assert!(width == 8 || packed >> (8 * width) == 0, "fits");
            proptest::prop_assert!(width == 0 || packed >> (8 * (width - 1)) != 0, "fewest");
            proptest::prop_assert_eq!(bytes.len(), 1 + COLUMN_HEADER + width * values.len());
            let mut rest = &bytes[1..];
            let mut back = Vec::new();
            proptest::prop_assert!(unpack(&mut rest, values.len(), |v| back.push(v)).is_some());
            proptest::prop_assert!(rest.is_empty());
            proptest::prop_assert_eq!(back, values);
        }
    }

    #[test]
    fn columns_take_the_bytes_their_values_need() {
        let width = |values: &[u64]| {
            let mut bytes = Vec::new();
            pack(values, &mut bytes);
            (bytes[8], bytes[9])
        };
        assert_eq!(width(&[]), (0, 0));
        assert_eq!(width(&[5, 5, 5]), (0, 0), "one value: no bytes per row");
        assert_eq!(width(&[5, 300]), (0, 2));
        assert_eq!(width(&[0, u64::MAX]), (0, 8));
        // Resolution-9 cells of a city: the six unused digits (18 bits) are the same, so
        // offsets share at least 18 low zero bits, and the rest fits three bytes.
        let cells: Vec<u64> = [(50.80, 3.25), (50.85, 3.30), (50.75, 3.20)]
            .into_iter()
            .map(|(lat, lon)| {
                let position = h3o::LatLng::new(lat, lon).unwrap();
                u64::from(position.to_cell(h3o::Resolution::Nine))
            })
            .collect();
        let (shift, bytes) = width(&cells);
        assert!(shift >= 18 && bytes <= 3, "{shift} {bytes}");
        assert_eq!(ordered(i64::MIN), 0);
        assert_eq!(ordered(-1) + 1, ordered(0));
        assert_eq!(ordered(i64::MAX), u64::MAX);
    }

    #[test]
    fn damaged_columns_are_errors_not_panics() {
        let mut bytes = Vec::new();
        pack(&[1, 2, 3], &mut bytes);
        for cut in 0..bytes.len() {
            let mut rest = &bytes[..cut];
            assert!(unpack(&mut rest, 3, |_| {}).is_none(), "cut at {cut}");
        }
        let mut wide = bytes.clone();
        wide[9] = 9;
        assert!(unpack(&mut wide.as_slice(), 3, |_| {}).is_none());
        let mut shifted = bytes;
        shifted[8] = 64;
        assert!(unpack(&mut shifted.as_slice(), 3, |_| {}).is_none());
    }

    #[test]
    fn partitions_spread_consecutive_numbers() {
        let mut counts = vec![0_u32; PARTITIONS];
        for n in 0..(PARTITIONS as u64 * 100) {
            counts[partition_of(n, PARTITIONS)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (50..=150).contains(&c)),
            "{counts:?}"
        );
    }
}
