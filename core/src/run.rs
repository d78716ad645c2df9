//! How a run uses the machine: threads, a memory budget with spilling to disk, progress
//! and interruption.
//!
//! None of it changes a number: a run with one thread or eight, in memory or spilled
//! into a hundred shards, gives the same release, tables and report. Only the time, the
//! peak memory and the disk used differ.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, Result};

/// The machine-facing options of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// Threads (0: one per core, the default).
    pub threads: usize,
    /// The memory budget in bytes (`None`: [`default_memory_limit`]). Pings beyond what
    /// fits are spilled to disk in shards by device; the number of shards follows.
    pub memory_limit: Option<u64>,
    /// Where spill files go (`None`: the system's temporary directory). They are kept in
    /// a directory of their own, removed when the run ends, however it ends.
    pub spill_dir: Option<PathBuf>,
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
/// use crowdtally::run::parse_bytes;
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

/// What a run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Reading, cleaning and locating the input (pass 1).
    Read,
    /// Per-device analytics and aggregation, shard by shard (pass 2).
    Analyze,
}

impl Stage {
    /// The stage's name: `read` or `analyze`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Analyze => "analyze",
        }
    }
}

/// A progress event. Sent after every input batch while reading, then when each shard is
/// done and at least every 200 ms while shards are being processed, so that a callback
/// can interrupt a long run promptly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Input rows read so far.
    pub rows_read: u64,
    /// Bytes written to spill files so far (compressed).
    pub bytes_spilled: u64,
    /// Shards done (in the analyze stage).
    pub shards_done: usize,
    /// Shards in all (0 until the analyze stage starts).
    pub shards_total: usize,
}

/// A progress callback: an error return stops the run (spill files are removed) and is
/// the run's error.
pub type ProgressCallback<'a> = Box<dyn FnMut(&Progress) -> Result<()> + Send + 'a>;

/// Whether the run was asked to stop; workers look at it between steps.
pub(crate) struct Cancel(AtomicBool);

impl Cancel {
    pub(crate) fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(Error::Stopped("by the progress callback".into()))
        } else {
            Ok(())
        }
    }
}

/// How often the calling thread reports progress while shards are processed.
const HEARTBEAT: Duration = Duration::from_millis(200);

/// Runs `work` over `items` on `pool` (or rayon's global pool), in parallel, while the
/// calling thread reports progress through `tick(done)` at every finished item and every
/// [`HEARTBEAT`]. When `tick` fails, workers stop at their next check and its error is
/// returned. Results are in the order of `items`.
pub(crate) fn run_shards<I, T>(
    pool: Option<&rayon::ThreadPool>,
    items: Vec<I>,
    work: impl Fn(I, &Cancel) -> Result<T> + Sync,
    mut tick: impl FnMut(usize) -> Result<()>,
) -> Result<Vec<T>>
where
    I: Send,
    T: Send,
{
    use rayon::prelude::*;
    let cancel = Cancel(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let (cancel, work) = (&cancel, &work);
        let worker = scope.spawn(move || {
            let all = move || {
                items
                    .into_par_iter()
                    .with_max_len(1)
                    .map_with(done_tx, |done, item| {
                        cancel.check()?;
                        let result = work(item, cancel);
                        // The receiver outlives the workers; a send cannot fail.
                        let _ = done.send(());
                        result
                    })
                    .collect::<Result<Vec<T>>>()
            };
            match pool {
                Some(pool) => pool.install(all),
                None => all(),
            }
        });
        let mut done = 0;
        let mut stopped = None;
        loop {
            match done_rx.recv_timeout(HEARTBEAT) {
                Ok(()) => done += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if stopped.is_none()
                && let Err(error) = tick(done)
            {
                cancel.0.store(true, Ordering::Relaxed);
                stopped = Some(error);
            }
        }
        let results = match worker.join() {
            Ok(results) => results,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match stopped {
            Some(error) => Err(error),
            None => results,
        }
    })
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

    #[test]
    fn shards_run_in_order_and_a_failing_tick_stops_them() {
        let squares = run_shards(None, (0..100_u64).collect(), |i, _| Ok(i * i), |_| Ok(()));
        assert_eq!(
            squares.unwrap(),
            (0..100).map(|i| i * i).collect::<Vec<_>>()
        );

        let stopped = run_shards(
            None,
            (0..1000_u64).collect(),
            |i, cancel| {
                std::thread::sleep(Duration::from_millis(2));
                cancel.check()?;
                Ok(i)
            },
            |done| {
                if done >= 3 {
                    Err(Error::Stopped("in the test".into()))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(stopped, Err(Error::Stopped(ref why)) if why == "in the test"));
    }
}
