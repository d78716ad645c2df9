//! How a run uses the machine: threads, a memory budget with spilling to disk, progress
//! and stopping. None of it changes a number: a run with one thread or eight, in memory
//! or spilled into a hundred shards, gives the same release, tables and report. Only the
//! time, the peak memory and the disk used differ.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::ProgressCallback;
use crate::error::{Error, Result};

/// The machine settings of a run, apart from the method's ([`ReleaseSpec`] and
/// [`Config`]): threads, memory budget, spill directory, progress and stop.
///
/// [`ReleaseSpec`]: crate::ReleaseSpec
/// [`Config`]: crate::Config
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Threads (0: one per core, the default; 1: the calling thread only).
    pub threads: usize,
    /// The memory budget in bytes (`None`: [`default_memory_limit`]). Pings beyond what
    /// fits are spilled to disk in shards by device; the number of shards follows.
    pub memory_limit: Option<u64>,
    /// Where spill files go (`None`: the system's temporary directory). They are kept in
    /// a directory of their own, removed when the run ends, however it ends.
    pub spill_dir: Option<PathBuf>,
    /// Called after every input batch and while shards are processed; an error from it
    /// stops the run, and is the stop's cause.
    pub progress: Option<ProgressCallback>,
    /// Stops the run from another thread (a service's shutdown, a user's interrupt).
    pub stop: Option<StopSignal>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("threads", &self.threads)
            .field("memory_limit", &self.memory_limit)
            .field("spill_dir", &self.spill_dir)
            .field("progress", &self.progress.is_some())
            .field("stop", &self.stop)
            .finish()
    }
}

/// A flag that stops a run: workers look at it between batches and between steps of a
/// shard, so a run ends within about a second, its spill files removed.
///
/// ```
/// use crowdtally::{RunOptions, StopSignal};
///
/// let stop = StopSignal::default();
/// let mut options = RunOptions::default();
/// options.stop = Some(stop.clone());
/// stop.stop(); // from any thread: the run returns Error::Stopped
/// assert!(stop.is_stopped());
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Asks every run holding this signal to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl RunOptions {
    /// Options with `threads` threads and the default memory budget.
    #[must_use]
    pub fn with_threads(threads: usize) -> Self {
        Self {
            threads,
            ..Self::default()
        }
    }

    /// The memory budget in bytes: the one given, else the default.
    ///
    /// # Errors
    /// [`Error::Config`] naming `memory_limit` when it is below [`MIN_MEMORY_LIMIT`].
    pub fn memory_limit(&self) -> Result<u64> {
        match self.memory_limit {
            None => Ok(default_memory_limit()),
            Some(limit) if limit < MIN_MEMORY_LIMIT => Err(Error::config(
                "memory_limit",
                format!("must be at least {MIN_MEMORY_LIMIT} bytes (1 MiB), got {limit}"),
            )),
            Some(limit) => Ok(limit),
        }
    }
}

/// The smallest memory budget accepted: below it, fixed costs (the geography, thread
/// stacks, the input batches in flight) dominate and no budget can be kept.
pub const MIN_MEMORY_LIMIT: u64 = 1 << 20;

/// Half of the memory this process may use: the machine's RAM, or the control group's
/// limit when it is lower (containers). 4 GiB where neither can be read.
#[must_use]
pub fn default_memory_limit() -> u64 {
    let total = system_memory().unwrap_or(8 << 30);
    (total / 2).max(MIN_MEMORY_LIMIT)
}

fn system_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let ram = kib * 1024;
    // cgroup v2, then v1; "max" or an absurd v1 value means no limit.
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });
    Some(cgroup.map_or(ram, |limit| limit.min(ram)))
}

/// Parses a size in bytes: a whole number, optionally followed by `B`, `KB`, `MB`, `GB`,
/// `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), case-insensitive
/// and with optional spaces; `K`, `M`, `G`, `T` alone are powers of 1024.
///
/// # Errors
/// [`Error::Config`] naming `memory_limit` for anything else.
///
/// # Example
/// ```
/// use crowdtally::parse_bytes;
/// assert_eq!(parse_bytes("4GiB")?, 4 << 30);
/// assert_eq!(parse_bytes("512 MB")?, 512_000_000);
/// assert_eq!(parse_bytes("2g")?, 2 << 30);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn parse_bytes(text: &str) -> Result<u64> {
    let bad = || {
        Error::config(
            "memory_limit",
            format!("{text:?} is not a size (e.g. 4GiB, 512MB, 1000000)"),
        )
    };
    let text_trimmed = text.trim();
    let split = text_trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text_trimmed.len());
    let (digits, unit) = text_trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes(" 3 KiB ").unwrap(), 3072);
        assert_eq!(parse_bytes("3kb").unwrap(), 3000);
        assert_eq!(parse_bytes("1T").unwrap(), 1 << 40);
        for bad in ["", "GiB", "4 GiBs", "-1", "1.5GiB", "99999999999999999999"] {
            let error = parse_bytes(bad).unwrap_err();
            assert_eq!(error.field(), Some("memory_limit"), "{bad}");
        }
    }

    #[test]
    fn the_default_budget_is_positive_and_a_tiny_one_is_refused() {
        assert!(default_memory_limit() >= MIN_MEMORY_LIMIT);
        let options = RunOptions {
            memory_limit: Some(1000),
            ..RunOptions::default()
        };
        assert_eq!(
            options.memory_limit().unwrap_err().field(),
            Some("memory_limit")
        );
    }
}
