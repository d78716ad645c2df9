//! Spill files: decoded pings written to disk, partitioned by subscriber and
//! compressed, when they do not fit the memory budget.
//!
//! A file is a sequence of chunks, each `[rows: u32][bytes: u32][LZ4 block]`, the block
//! holding the chunk's columns one after the other (little-endian), which compresses far
//! better than rows: seconds, cells and numbers of one partition share their high bytes.
//! Files live in a directory of their own, removed when the [`Spill`] is dropped: on
//! success, on error and on interrupt alike.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::Decoded;
use crate::error::{Error, Result};

/// Partitions of pass 1. Many, so that each is a small part of the input and the
/// partitions of one shard can be chosen to fit the budget; few enough to keep a file
/// handle each.
pub(crate) const PARTITIONS: usize = 256;

/// Bytes of one decoded ping in memory and, uncompressed, in a chunk.
pub(crate) const DECODED_BYTES: u64 = 4 + 8 + 8 + 2;

/// The partition of a subscriber number among `partitions`: Fibonacci hashing spreads
/// the consecutive numbers of one input file over all partitions.
pub(crate) fn partition_of(key: u64, partitions: usize) -> usize {
    let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    ((hash * partitions as u64) >> 32) as usize
}

fn io_error(path: &Path, error: &std::io::Error) -> Error {
    Error::config(
        "spill_dir",
        format!("cannot use spill file {}: {error}", path.display()),
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
        file_of: impl Fn(usize) -> usize,
    ) -> Result<u64> {
        let count = self.paths.len();
        let target: Vec<u32> = (0..decoded.len()).map(|r| file_of(r) as u32).collect();
        let mut offsets = vec![0_usize; count + 1];
        for &t in &target {
            offsets[t as usize + 1] += 1;
        }
        for i in 1..=count {
            offsets[i] += offsets[i - 1];
        }
        let mut order = vec![0_u32; decoded.len()];
        let mut next = offsets.clone();
        for (row, &t) in target.iter().enumerate() {
            order[next[t as usize]] = row as u32;
            next[t as usize] += 1;
        }
        // Chunks are compressed on every core, then appended in file order.
        let chunks: Vec<(usize, Vec<u8>)> = {
            use rayon::prelude::*;
            (0..count)
                .into_par_iter()
                .filter(|&file| offsets[file] < offsets[file + 1])
                .map(|file| {
                    (
                        file,
                        encode(decoded, &order[offsets[file]..offsets[file + 1]]),
                    )
                })
                .collect()
        };
        let mut written = 0;
        for (file, chunk) in chunks {
            let path = &self.paths[file];
            if self.files[file].is_none() {
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io_error(path, &e))?;
                self.files[file] = Some(handle);
            }
            if let Some(handle) = &mut self.files[file] {
                handle.write_all(&chunk).map_err(|e| io_error(path, &e))?;
            }
            self.rows[file] += (offsets[file + 1] - offsets[file]) as u64;
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
            .map_err(|e| io_error(parent, &e))?;
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

fn encode(decoded: &Decoded, rows: &[u32]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(rows.len() * DECODED_BYTES as usize);
    let rows = rows.iter().map(|&r| r as usize);
    raw.extend(
        rows.clone()
            .flat_map(|r| decoded.subscriber[r].to_le_bytes()),
    );
    raw.extend(rows.clone().flat_map(|r| decoded.ts[r].to_le_bytes()));
    raw.extend(rows.clone().flat_map(|r| decoded.cell[r].to_le_bytes()));
    raw.extend(rows.clone().flat_map(|r| decoded.country[r].to_le_bytes()));
    let block = lz4_flex::block::compress(&raw);
    let mut chunk = Vec::with_capacity(8 + block.len());
    chunk.extend((rows.len() as u32).to_le_bytes());
    chunk.extend((block.len() as u32).to_le_bytes());
    chunk.extend(block);
    chunk
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
        .map_err(|e| io_error(path, &e))?;
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let (Some(rows), Some(length)) = (rest.get(0..4).map(le_u32), rest.get(4..8).map(le_u32))
        else {
            return Err(corrupt("truncated header"));
        };
        let (rows, length) = (rows as usize, length as usize);
        let block = rest
            .get(8..8 + length)
            .ok_or_else(|| corrupt("truncated chunk"))?;
        let raw = lz4_flex::block::decompress(block, rows * DECODED_BYTES as usize)
            .map_err(|e| corrupt(&e.to_string()))?;
        if raw.len() != rows * DECODED_BYTES as usize {
            return Err(corrupt("chunk of the wrong size"));
        }
        let (subscriber, raw) = raw.split_at(4 * rows);
        let (ts, raw) = raw.split_at(8 * rows);
        let (cell, country) = raw.split_at(8 * rows);
        into.subscriber
            .extend(subscriber.chunks_exact(4).map(le_u32));
        into.ts.extend(ts.chunks_exact(8).map(|b| le_u64(b) as i64));
        into.cell.extend(cell.chunks_exact(8).map(le_u64));
        into.country.extend(
            country
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]])),
        );
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
                    back.ts[r],
                    back.cell[r],
                    back.country[r],
                )
            })
            .collect();
        let mut expected: Vec<_> = (0..decoded.len())
            .flat_map(|r| {
                let row = (
                    decoded.subscriber[r],
                    decoded.ts[r],
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
