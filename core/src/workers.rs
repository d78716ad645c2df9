//! The workers of a run: the threads it works on, and the values they keep between uses
//! (caches that learn as they go, buffers whose pages are worth more than allocating
//! afresh), one worker at a time.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// The threads a run works on.
#[derive(Clone)]
pub(crate) enum Threads {
    /// The calling thread only.
    Calling,
    /// rayon's global pool (one thread per core).
    Global,
    /// A pool of the run's own.
    Own(Arc<rayon::ThreadPool>),
}

impl Threads {
    /// `threads` threads: 0 is one per core (rayon's global pool, started once per
    /// process), 1 the calling thread only.
    ///
    /// # Errors
    /// [`Error::Config`] naming `threads` if the pool cannot be started.
    pub(crate) fn new(threads: usize) -> Result<Self> {
        Ok(match threads {
            0 => Self::Global,
            1 => Self::Calling,
            n => Self::Own(Arc::new(pool(n)?)),
        })
    }

    /// A pool to run shards on: the run's own, or `None` for rayon's global one. The
    /// calling thread alone gets a pool of one thread, so that shards are still run
    /// (and the progress reported) the same way.
    pub(crate) fn shard_pool(&self) -> Result<Option<Arc<rayon::ThreadPool>>> {
        match self {
            Self::Own(pool) => Ok(Some(Arc::clone(pool))),
            Self::Global => Ok(None),
            Self::Calling => Ok(Some(Arc::new(pool(1)?))),
        }
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("crowdtally-{i}"))
        .build()
        .map_err(|e| Error::config("threads", format!("cannot start {threads} threads: {e}")))
}

/// The values not in use.
pub(crate) struct Kept<T> {
    idle: Mutex<Vec<T>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Kept<T> {
    /// An idle value, if any; give it back with [`Kept::give_back`] once it is fit for
    /// reuse (a value dropped instead, as on an error, is simply not reused).
    pub(crate) fn take(&self) -> Option<T> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    pub(crate) fn give_back(&self, value: T) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(value);
        }
    }

    /// An idle value, or `make()`'s, given back when the loan is dropped: for values
    /// that are fit for reuse whatever happens to the borrower.
    pub(crate) fn lend(&self, make: impl FnOnce() -> T) -> Lent<'_, T> {
        Lent {
            value: Some(self.take().unwrap_or_else(make)),
            kept: self,
        }
    }
}

/// A value lent to a worker.
pub(crate) struct Lent<'k, T> {
    value: Option<T>,
    kept: &'k Kept<T>,
}

impl<T> Deref for Lent<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("lent until dropped")
    }
}

impl<T> DerefMut for Lent<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("lent until dropped")
    }
}

impl<T> Drop for Lent<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.kept.give_back(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn values_are_reused_after_a_loan_and_after_being_given_back() {
        let kept = Kept::default();
        {
            let mut lent = kept.lend(|| vec![1]);
            lent.push(2);
        }
        assert_eq!(kept.take(), Some(vec![1, 2]));
        assert_eq!(kept.take(), None);
        kept.give_back(vec![3]);
        assert_eq!(*kept.lend(Vec::new), vec![3]);
        assert_eq!(kept.take(), Some(vec![3]));
    }
}
