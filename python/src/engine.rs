//! The machine settings of a run (`crowdtally.Engine`, or the `threads=`,
//! `memory_limit=`, `spill_dir=`, `progress=` keywords kept by the module-level
//! functions), progress events, Ctrl-C, and Arrow batches pulled from a Python iterator.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use crowdtally::{Progress, ProgressCallback, RunOptions, parse_bytes};
use pyo3::exceptions::PyStopIteration;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyIterator, PyString};
use pyo3_arrow::PyRecordBatch;
use pyo3_arrow::input::AnyRecordBatch;

use crate::errors::{CoreError, config_error, input_error, type_name};

/// A progress event of a long run, passed to the `progress=` callable.
///
/// `stage` is `read` (after every input batch) or `analyze` (as shards finish, and at
/// least every 200 ms).
#[pyclass(name = "Progress", module = "crowdtally", frozen, get_all)]
pub struct PyProgress {
    /// `read` or `analyze`.
    stage: &'static str,
    /// Input rows read so far.
    rows_read: u64,
    /// Input rows in all, when known (Parquet files, tables in memory).
    rows_total: Option<u64>,
    /// Bytes written to spill files so far (compressed).
    bytes_spilled: u64,
    /// Shards done.
    shards_done: usize,
    /// Shards in all (0 while reading).
    shards_total: usize,
}

#[pymethods]
impl PyProgress {
    fn __repr__(&self) -> String {
        let total = self
            .rows_total
            .map_or_else(|| "None".to_owned(), |t| t.to_string());
        format!(
            "Progress(stage='{}', rows_read={}, rows_total={total}, bytes_spilled={}, \
             shards_done={}, shards_total={})",
            self.stage, self.rows_read, self.bytes_spilled, self.shards_done, self.shards_total
        )
    }
}

/// What stopped a run from the Python side (an exception of the progress callable or of
/// a batch iterator, or Ctrl-C), to be raised as itself when the run returns.
type Failure = Arc<Mutex<Option<PyErr>>>;

fn keep_failure(failure: &Failure, error: PyErr) {
    if let Ok(mut slot) = failure.lock() {
        slot.get_or_insert(error);
    }
}

/// The machine settings of a run: threads, memory budget, spill directory and progress.
/// None of them changes a number.
///
/// `threads`: None or 0 is one per core. `memory_limit`: bytes or a size (`"4GiB"`),
/// default half of the machine's memory; pings beyond it are spilled to disk by device
/// and analysed shard by shard. `spill_dir`: where spill files go (default: the system's
/// temporary directory); they are removed when the run ends, however it ends.
/// `progress`: True for a progress bar (needs tqdm), or a callable receiving every
/// `crowdtally.Progress`; an exception it raises stops the run and is raised from the
/// call.
#[pyclass(name = "Engine", module = "crowdtally", frozen)]
pub struct PyEngine {
    threads: usize,
    memory_limit: Option<u64>,
    spill_dir: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (*, threads=None, memory_limit=None, spill_dir=None, progress=None))]
    fn new(
        threads: Option<i64>,
        memory_limit: Option<&Bound<'_, PyAny>>,
        spill_dir: Option<&Bound<'_, PyAny>>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let memory_limit = memory_limit.map(bytes_of).transpose()?;
        let mut options = RunOptions::with_threads(threads_of(threads)?);
        options.memory_limit = memory_limit;
        // Checked now, so that a wrong budget fails before any run.
        options.memory_limit().map_err(CoreError)?;
        let progress = match progress {
            Some(p) if !p.is_none() => {
                check_progress(p)?;
                Some(p.clone().unbind())
            }
            _ => None,
        };
        Ok(Self {
            threads: options.threads,
            memory_limit,
            spill_dir: spill_dir.map(path_of).transpose()?,
            progress,
        })
    }

    /// Threads (0: one per core).
    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    /// The memory budget in bytes, or None for the default (half of the machine's).
    #[getter]
    fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Where spill files go, or None for the system's temporary directory.
    #[getter]
    fn spill_dir(&self) -> Option<PathBuf> {
        self.spill_dir.clone()
    }

    /// The progress setting: True, a callable, or None.
    #[getter]
    fn progress(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.progress.as_ref().map(|p| p.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let progress = match &self.progress {
            None => "None".to_owned(),
            Some(p) if p.bind(py).is_instance_of::<PyBool>() => "True".to_owned(),
            Some(_) => "<callable>".to_owned(),
        };
        format!(
            "Engine(threads={}, memory_limit={}, spill_dir={}, progress={progress})",
            self.threads,
            self.memory_limit
                .map_or_else(|| "None".to_owned(), |b| b.to_string()),
            self.spill_dir.as_ref().map_or_else(
                || "None".to_owned(),
                |d| format!("{:?}", d.display().to_string())
            ),
        )
    }
}

/// The keywords the module-level functions keep from before `Engine`.
#[derive(Default)]
pub struct EngineKeywords<'a, 'py> {
    pub threads: Option<i64>,
    pub memory_limit: Option<&'a Bound<'py, PyAny>>,
    pub spill_dir: Option<&'a Bound<'py, PyAny>>,
    pub progress: Option<&'a Bound<'py, PyAny>>,
}

impl EngineKeywords<'_, '_> {
    fn any(&self) -> bool {
        self.threads.is_some()
            || self.memory_limit.is_some()
            || self.spill_dir.is_some()
            || self.progress.is_some_and(|p| !p.is_none())
    }
}

/// The run arguments of a call: its machine settings, its progress callable, and what
/// stopped it from the Python side.
pub struct RunArgs {
    pub options: RunOptions,
    callback: Option<Py<PyAny>>,
    rows_total: Option<u64>,
    failure: Failure,
}

impl RunArgs {
    /// The run arguments of `engine=`, or of the separate keywords (not both).
    pub fn new(
        py: Python<'_>,
        engine: Option<&Bound<'_, PyEngine>>,
        keywords: &EngineKeywords<'_, '_>,
    ) -> PyResult<Self> {
        let (options, progress) = match engine {
            Some(_) if keywords.any() => {
                return Err(config_error(
                    "engine",
                    "give the machine settings either as engine= or as threads=, \
                     memory_limit=, spill_dir=, progress=, not both",
                ));
            }
            Some(engine) => {
                let engine = engine.get();
                let mut options = RunOptions::with_threads(engine.threads);
                options.memory_limit = engine.memory_limit;
                options.spill_dir.clone_from(&engine.spill_dir);
                (
                    options,
                    engine.progress.as_ref().map(|p| p.bind(py).clone()),
                )
            }
            None => {
                let mut options = RunOptions::with_threads(threads_of(keywords.threads)?);
                options.memory_limit = keywords.memory_limit.map(bytes_of).transpose()?;
                // Checked now, so that a wrong budget fails before the run.
                options.memory_limit().map_err(CoreError)?;
                options.spill_dir = keywords.spill_dir.map(path_of).transpose()?;
                (options, keywords.progress.cloned())
            }
        };
        let callback = progress.map(|p| callback_of(py, &p)).transpose()?.flatten();
        Ok(Self {
            options,
            callback,
            rows_total: None,
            failure: Arc::default(),
        })
    }

    /// Sets the input rows in all, shown by progress bars.
    pub fn set_rows_total(&mut self, rows: Option<u64>) {
        self.rows_total = rows;
    }

    /// The run's options with the core's progress callback: it looks for Ctrl-C
    /// (Python's signal handlers run on the main thread, which is the one running the
    /// core), then calls the user's callable.
    pub fn core_options(&self) -> RunOptions {
        let mut options = self.options.clone();
        options.progress = Some(self.core_callback());
        options
    }

    fn core_callback(&self) -> ProgressCallback {
        let callback = self
            .callback
            .as_ref()
            .map(|c| Python::attach(|py| c.clone_ref(py)));
        let rows_total = self.rows_total;
        let failure = Arc::clone(&self.failure);
        Arc::new(move |event: &Progress| {
            let outcome = Python::attach(|py| -> PyResult<()> {
                py.check_signals()?;
                if let Some(callback) = &callback {
                    let event = PyProgress {
                        stage: event.stage.name(),
                        rows_read: event.rows_read,
                        rows_total,
                        bytes_spilled: event.bytes_spilled,
                        shards_done: event.shards_done,
                        shards_total: event.shards_total,
                    };
                    callback.call1(py, (event,))?;
                }
                Ok(())
            });
            outcome.map_err(|error| {
                let what = Python::attach(|py| {
                    error
                        .get_type(py)
                        .name()
                        .map_or_else(|_| "an exception".to_owned(), |n| n.to_string())
                });
                keep_failure(&failure, error);
                crowdtally::Error::stopped(format!("by {what}"))
            })
        })
    }

    /// A core error as a Python exception: what stopped the run on the Python side is
    /// raised as itself.
    pub fn error(&self, error: crowdtally::Error) -> PyErr {
        if let Ok(mut slot) = self.failure.lock()
            && let Some(failure) = slot.take()
        {
            return failure;
        }
        CoreError(error).into()
    }

    /// Runs core work with the GIL released, mapping its error.
    pub fn detach<T, F>(&self, py: Python<'_>, work: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce() -> crowdtally::Result<T> + Send,
    {
        py.detach(work).map_err(|e| self.error(e))
    }

    /// A reader of the batches a Python iterator yields, pulled while the run goes on.
    pub fn batch_iterator(&self, iterator: &Bound<'_, PyAny>) -> PyResult<BatchIterator> {
        BatchIterator::new(iterator, Arc::clone(&self.failure))
    }
}

fn bytes_of(limit: &Bound<'_, PyAny>) -> PyResult<u64> {
    if limit.is_instance_of::<PyBool>() {
        return Err(config_error(
            "memory_limit",
            "must be bytes or a size, not a bool",
        ));
    }
    if let Ok(text) = limit.cast::<PyString>() {
        return parse_bytes(text.to_str()?).map_err(|e| CoreError(e).into());
    }
    let bytes: i128 = limit.extract().map_err(|_| {
        config_error(
            "memory_limit",
            "must be a number of bytes or a size such as '4GiB'",
        )
    })?;
    u64::try_from(bytes).map_err(|_| {
        let why = if bytes < 0 {
            "must be positive"
        } else {
            "must be below 2**64 bytes"
        };
        config_error("memory_limit", format!("{why}, got {bytes}"))
    })
}

fn path_of(dir: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let py = dir.py();
    let text: String = py
        .import(intern!(py, "os"))?
        .call_method1(intern!(py, "fspath"), (dir,))
        .and_then(|p| p.extract())
        .map_err(|_| config_error("spill_dir", "must be a path (str or os.PathLike)"))?;
    Ok(PathBuf::from(text))
}

/// The number of threads asked for: `None` or 0 is one per core.
pub(crate) fn threads_of(threads: Option<i64>) -> PyResult<usize> {
    let n = threads.unwrap_or(0);
    usize::try_from(n).map_err(|_| {
        config_error(
            "threads",
            format!("must be a number of threads (0 or None: one per core), got {n}"),
        )
    })
}

/// Checks a `progress=` value without starting anything.
fn check_progress(progress: &Bound<'_, PyAny>) -> PyResult<()> {
    if progress.is_instance_of::<PyBool>() || progress.is_callable() {
        return Ok(());
    }
    Err(progress_error())
}

fn progress_error() -> PyErr {
    config_error(
        "progress",
        "must be True (a progress bar), False, None or a callable taking a crowdtally.Progress",
    )
}

/// The callable of `progress=`: `True` is a progress bar (tqdm), `False` or `None` none.
fn callback_of(py: Python<'_>, progress: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
    if progress.is_none() {
        return Ok(None);
    }
    if let Ok(flag) = progress.cast::<PyBool>() {
        if !flag.is_true() {
            return Ok(None);
        }
        let bar = py
            .import(intern!(py, "crowdtally._progress"))?
            .call_method0(intern!(py, "progress_bar"))?;
        return Ok((!bar.is_none()).then(|| bar.unbind()));
    }
    if progress.is_callable() {
        return Ok(Some(progress.clone().unbind()));
    }
    Err(progress_error())
}

/// Arrow batches pulled from a Python iterator: each item a record batch
/// (`__arrow_c_array__`) or a table or stream (`__arrow_c_stream__`) whose batches are
/// taken in order.
pub struct BatchIterator {
    iterator: Py<PyIterator>,
    pending: VecDeque<RecordBatch>,
    schema: SchemaRef,
    failure: Failure,
}

impl BatchIterator {
    fn new(iterable: &Bound<'_, PyAny>, failure: Failure) -> PyResult<Self> {
        let iterator = iterable.try_iter()?;
        let mut reader = Self {
            iterator: iterator.unbind(),
            pending: VecDeque::new(),
            schema: Arc::new(arrow_schema::Schema::empty()),
            failure,
        };
        // The first batch gives the schema (a reader needs one before it is read).
        let py = iterable.py();
        while reader.pending.is_empty() {
            if !reader.pull(py)? {
                return Err(input_error(
                    "pings",
                    "the iterator yielded no Arrow batch: its columns cannot be checked",
                ));
            }
        }
        reader.schema = reader.pending[0].schema();
        Ok(reader)
    }

    /// Takes the next item's batches; `false` at the end.
    fn pull(&mut self, py: Python<'_>) -> PyResult<bool> {
        let item = match self.iterator.bind(py).clone().next() {
            None => return Ok(false),
            Some(Err(error)) if error.is_instance_of::<PyStopIteration>(py) => return Ok(false),
            Some(item) => item?,
        };
        if item.hasattr(intern!(py, "__arrow_c_stream__"))? {
            let reader = item.extract::<AnyRecordBatch>()?.into_reader()?;
            for batch in reader {
                self.pending
                    .push_back(batch.map_err(|e| input_error("pings", e))?);
            }
        } else if item.hasattr(intern!(py, "__arrow_c_array__"))? {
            self.pending
                .push_back(item.extract::<PyRecordBatch>()?.into_inner());
        } else {
            let found = type_name(&item);
            return Err(input_error(
                "pings",
                format!("the iterator yielded a {found}, not an Arrow record batch or table"),
            ));
        }
        Ok(true)
    }
}

impl Iterator for BatchIterator {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Some(Ok(batch));
            }
            match Python::attach(|py| self.pull(py)) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    // Raised as itself when the run returns; the core only sees a stop.
                    keep_failure(&self.failure, error);
                    return Some(Err(ArrowError::ExternalError(Box::new(
                        crowdtally::Error::stopped("by the batch iterator"),
                    ))));
                }
            }
        }
    }
}

impl RecordBatchReader for BatchIterator {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
