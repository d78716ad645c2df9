//! What a run reports while it works, and how it is stopped: progress events, the
//! callback that receives them, and the shards run in parallel while the calling thread
//! reports and listens for a stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::options::StopSignal;
use crate::error::{Error, Result};

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

/// A progress callback: an error return stops the run (spill files are removed); the
/// run's error is then [`Error::Stopped`] with that error as its cause (or the error
/// itself when it is already a stop).
pub type ProgressCallback = Arc<dyn Fn(&Progress) -> Result<()> + Send + Sync>;

/// The stop a progress callback's error makes.
pub(crate) fn stopped_by_callback(error: Error) -> Error {
    match error {
        stop @ Error::Stopped { .. } => stop,
        other => Error::Stopped {
            by: "by the progress callback".to_owned(),
            cause: Some(Box::new(other)),
        },
    }
}

/// Whether the run was asked to stop (by its callback or its stop signal); workers look
/// at it between steps.
pub(crate) struct Cancel {
    by_callback: AtomicBool,
    signal: Option<StopSignal>,
}

impl Cancel {
    pub(crate) fn new(signal: Option<StopSignal>) -> Self {
        Self {
            by_callback: AtomicBool::new(false),
            signal,
        }
    }

    /// An error once a stop was asked for.
    pub(crate) fn check(&self) -> Result<()> {
        if self.by_callback.load(Ordering::Relaxed) {
            return Err(Error::stopped("by the progress callback"));
        }
        check_signal(self.signal.as_ref())
    }
}

/// An error once `signal` was raised.
pub(crate) fn check_signal(signal: Option<&StopSignal>) -> Result<()> {
    match signal {
        Some(signal) if signal.is_stopped() => Err(Error::stopped("by its stop signal")),
        _ => Ok(()),
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
    signal: Option<StopSignal>,
    items: Vec<I>,
    work: impl Fn(I, &Cancel) -> Result<T> + Sync,
    mut tick: impl FnMut(usize) -> Result<()>,
) -> Result<Vec<T>>
where
    I: Send,
    T: Send,
{
    use rayon::prelude::*;
    let cancel = Cancel::new(signal);
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
                cancel.by_callback.store(true, Ordering::Relaxed);
                stopped = Some(stopped_by_callback(error));
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
    fn shards_run_in_order_and_a_failing_tick_stops_them() {
        let squares = run_shards(
            None,
            None,
            (0..100_u64).collect(),
            |i, _| Ok(i * i),
            |_| Ok(()),
        );
        assert_eq!(
            squares.unwrap(),
            (0..100).map(|i| i * i).collect::<Vec<_>>()
        );

        let stopped = run_shards(
            None,
            None,
            (0..1000_u64).collect(),
            |i, cancel| {
                std::thread::sleep(Duration::from_millis(2));
                cancel.check()?;
                Ok(i)
            },
            |done| {
                if done >= 3 {
                    Err(Error::stopped("in the test"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(stopped, Err(Error::Stopped { ref by, .. }) if by == "in the test"));
    }
}
