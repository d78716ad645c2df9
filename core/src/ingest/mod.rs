//! Ingestion (method §1–3): reading pings, opt-out, cleaning, pseudonymization and
//! location.
//!
//! One pass over the input batches decodes each row, drops it under the first cleaning
//! reason that applies, and keeps compact columns (subscriber number, second, cell,
//! country). Each distinct subscriber is pseudonymized once, after the period (and so the
//! period label) is known. The kept pings are then grouped by device and sorted by time
//! without a global comparison sort (a counting sort on device rank, then small sorts per
//! device), duplicates of (device, second) are resolved deterministically, and every ping
//! is located in its leaf region and zones.

mod columns;
mod kept;
mod located;
mod memo;
mod parquet;
mod shards;
mod spill;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::ArrowError;
use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::calendar::Calendar;
use crate::config::{Config, SubscriberKind};
use crate::error::{Error, Result};
use crate::geo::{CellLocator, Geography};
use crate::pseudonym::Pseudonymizer;
use crate::report::{DropReason, QualityReport};

pub use columns::PingColumns;
pub use located::{LocatedPings, NO_COUNTRY};
pub use parquet::{PARQUET_BATCH_ROWS, parquet_rows, prepare_parquet, read_parquet, write_parquet};

use columns::{
    CountryColumn, PositionColumns, RawPosition, SubscriberColumn, TsColumn, country_column,
};
use kept::Kept;
use memo::Memo;

/// Instants in epoch seconds, 4 bytes each while they fall in 1970–2106 (the low 32
/// bits; every phone's clock), 6 bytes each once one does not: the high bits are kept
/// only from then on, for every row.
#[derive(Default)]
struct Seconds {
    low: Vec<u32>,
    /// The high bits (as a signed number) of each row, or empty while they are all 0.
    high: Vec<i16>,
}

impl Seconds {
    fn with_capacity(rows: usize) -> Self {
        Self {
            low: Vec::with_capacity(rows),
            high: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.low.len()
    }

    fn capacity(&self) -> usize {
        self.low.capacity()
    }

    fn clear(&mut self) {
        self.low.clear();
        self.high.clear();
    }

    fn reserve(&mut self, rows: usize) {
        self.low.reserve(rows);
        if !self.high.is_empty() {
            self.high.reserve(rows);
        }
    }

    /// The instant of row `row`.
    #[inline]
    fn get(&self, row: usize) -> i64 {
        let high = self.high.get(row).copied().unwrap_or(0);
        (i64::from(high) << 32) | i64::from(self.low[row])
    }

    /// Every row's instant, in order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// Appends an instant within the calendar's range (|instant| < 2^47).
    #[inline]
    fn push(&mut self, instant: i64) {
        let high = (instant >> 32) as i16;
        if high != 0 || !self.high.is_empty() {
            // From the first row that needs them, every row has its high bits.
            self.high.resize(self.low.len(), 0);
            self.high.push(high);
        }
        self.low.push(instant as u32);
    }

    fn extend_from_slice(&mut self, instants: &[i64]) {
        if self.high.is_empty() && instants.iter().all(|&t| t >> 32 == 0) {
            self.low.extend(instants.iter().map(|&t| t as u32));
        } else {
            for &instant in instants {
                self.push(instant);
            }
        }
    }
}

/// Pings that survived the per-row rules, before de-duplication.
#[derive(Default)]
struct Decoded {
    subscriber: Vec<u32>,
    ts: Seconds,
    cell: Vec<u64>,
    country: Vec<u16>,
}

impl Decoded {
    fn with_capacity(rows: usize) -> Self {
        Self {
            subscriber: Vec::with_capacity(rows),
            ts: Seconds::with_capacity(rows),
            cell: Vec::with_capacity(rows),
            country: Vec::with_capacity(rows),
        }
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn clear(&mut self) {
        self.subscriber.clear();
        self.ts.clear();
        self.cell.clear();
        self.country.clear();
    }

    /// The rows of `from` listed in `parts`, in that order.
    fn gather(from: &Self, parts: &[&[u32]]) -> Self {
        let mut gathered = Self::with_capacity(parts.iter().map(|rows| rows.len()).sum());
        for &row in parts.iter().copied().flatten() {
            gathered.push_row(from, row as usize);
        }
        gathered
    }

    fn push_row(&mut self, from: &Self, row: usize) {
        self.subscriber.push(from.subscriber[row]);
        self.ts.push(from.ts.get(row));
        self.cell.push(from.cell[row]);
        self.country.push(from.country[row]);
    }
}

/// The rows `rows` by group, `group_of(row)` among `groups`: one list of rows, each
/// group's in row order one after the other, and each group's place in it. A counting
/// sort: the list is exactly as long as the rows, with no slack.
fn rows_by_group(
    rows: std::ops::Range<usize>,
    groups: usize,
    group_of: impl Fn(usize) -> usize,
) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
    let mut starts = vec![0_usize; groups + 1];
    for row in rows.clone() {
        starts[group_of(row) + 1] += 1;
    }
    for g in 1..=groups {
        starts[g] += starts[g - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0_u32; rows.len()];
    for row in rows {
        let slot = &mut next[group_of(row)];
        order[*slot] = row as u32;
        *slot += 1;
    }
    let ranges = starts.windows(2).map(|w| w[0]..w[1]).collect();
    (order, ranges)
}

/// Rows grouped as [`rows_by_group`] groups them, in consecutive blocks of rows, each
/// block on its own thread: a group's rows are its rows of each block, block after
/// block, so in row order.
struct BlockGroups(Vec<(Vec<u32>, Vec<std::ops::Range<usize>>)>);

impl BlockGroups {
    /// The rows `0..rows` by group, `group_of(row)` among `groups`, grouped on the
    /// current rayon pool.
    fn new(rows: usize, groups: usize, group_of: impl Fn(usize) -> usize + Sync) -> Self {
        use rayon::prelude::*;
        let blocks = rayon::current_num_threads().clamp(1, rows.div_ceil(1 << 16).max(1));
        let block_rows = rows.div_ceil(blocks).max(1);
        Self(
            (0..blocks)
                .into_par_iter()
                .map(|b| {
                    let rows = (b * block_rows).min(rows)..((b + 1) * block_rows).min(rows);
                    rows_by_group(rows, groups, &group_of)
                })
                .collect(),
        )
    }

    /// The rows of group `group`, in row order, a slice per block.
    fn rows(&self, group: usize) -> Vec<&[u32]> {
        self.0
            .iter()
            .map(|(order, ranges)| &order[ranges[group].clone()])
            .collect()
    }
}

/// In a dictionary's numbers: a value no row has referred to yet.
const UNNUMBERED: u32 = u32::MAX - 1;

/// The numbers given to the values of the last dictionary a column came in. Parquet
/// readers give every batch of a column chunk the chunk's dictionary: each value is
/// numbered once, when a row first refers to it, and the numbers are kept until the
/// dictionary changes.
#[derive(Default)]
struct DictionaryNumbers(Option<(arrow_array::ArrayRef, Vec<u32>)>);

impl DictionaryNumbers {
    /// The number of each of `values` (`UNNUMBERED` until given), kept from the last
    /// call if `values` is the same dictionary.
    fn of(&mut self, values: &arrow_array::ArrayRef) -> &mut [u32] {
        if !matches!(&self.0, Some((known, _)) if Arc::ptr_eq(known, values)) {
            self.0 = None;
        }
        &mut self
            .0
            .get_or_insert_with(|| (Arc::clone(values), vec![UNNUMBERED; values.len()]))
            .1
    }
}

/// A raw subscriber id as a hash-map key. Ids of up to 31 bytes (IMSIs, MSISDNs,
/// 128-bit hashes) are held in the entry itself, so that a look-up among millions of
/// subscribers reads the entry's cache line and no pointer beyond it. No `Debug`: it
/// holds a raw id. It hashes and compares as its bytes, so maps of it are looked up by
/// `&[u8]` without building a key.
enum IdKey {
    Inline(u8, [u8; 31]),
    Boxed(Box<[u8]>),
}

impl IdKey {
    fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= 31 {
            let mut inline = [0; 31];
            inline[..bytes.len()].copy_from_slice(bytes);
            Self::Inline(bytes.len() as u8, inline)
        } else {
            Self::Boxed(bytes.into())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Inline(len, inline) => &inline[..*len as usize],
            Self::Boxed(bytes) => bytes,
        }
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for IdKey {}

impl std::hash::Hash for IdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for IdKey {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

/// Distinct subscribers seen, as their §3 bytes, numbered in order of appearance.
struct Subscribers {
    number_of: FxHashMap<IdKey, u32>,
    opted_out: Vec<bool>,
    /// Whether the subscriber has a ping that passed every per-row rule.
    has_row: Vec<bool>,
    /// The last id looked up and its number (`u32::MAX`: none yet).
    last: (Vec<u8>, u32),
}

impl Default for Subscribers {
    fn default() -> Self {
        Self {
            number_of: FxHashMap::default(),
            opted_out: Vec::new(),
            has_row: Vec::new(),
            last: (Vec::new(), u32::MAX),
        }
    }
}

impl Subscribers {
    fn number(&mut self, bytes: &[u8], opt_out: &HashSet<Vec<u8>>) -> u32 {
        // Feeds often list a subscriber's pings together: the last id is the likeliest.
        if self.last.1 != u32::MAX && self.last.0 == bytes {
            return self.last.1;
        }
        let number = if let Some(&number) = self.number_of.get(bytes) {
            number
        } else {
            let number = self.opted_out.len() as u32;
            self.opted_out.push(opt_out.contains(bytes));
            self.has_row.push(false);
            self.number_of.insert(IdKey::new(bytes), number);
            number
        };
        self.last.0.clear();
        self.last.0.extend_from_slice(bytes);
        self.last.1 = number;
        number
    }
}

/// Country codes seen, upper-cased; number 0 is "none".
struct Countries {
    /// Numbers of the spellings seen (before trimming and upper-casing).
    number_of: FxHashMap<String, u16>,
    /// Numbers of the upper-cased codes, so that a new spelling costs one look-up.
    number_of_code: FxHashMap<String, u16>,
    codes: Vec<String>,
    /// The last spelling looked up and its number: most pings are of one country.
    last: (String, u16),
}

impl Default for Countries {
    fn default() -> Self {
        Self {
            number_of: FxHashMap::default(),
            number_of_code: FxHashMap::default(),
            codes: vec![String::new()],
            last: (String::new(), NO_COUNTRY),
        }
    }
}

impl Countries {
    fn number(&mut self, raw: &str, column: &str) -> Result<u16> {
        if self.last.0 == raw {
            return Ok(self.last.1);
        }
        let n = self.look_up(raw, column)?;
        self.last.0.clear();
        self.last.0.push_str(raw);
        self.last.1 = n;
        Ok(n)
    }

    fn look_up(&mut self, raw: &str, column: &str) -> Result<u16> {
        let code = raw.trim();
        if code.is_empty() {
            return Ok(NO_COUNTRY);
        }
        if let Some(&n) = self.number_of.get(code) {
            return Ok(n);
        }
        let upper = code.to_ascii_uppercase();
        let n = if let Some(&n) = self.number_of_code.get(&upper) {
            n
        } else {
            let n = u16::try_from(self.codes.len())
                .map_err(|_| Error::input(column, "has more than 65,535 distinct country codes"))?;
            self.number_of_code.insert(upper.clone(), n);
            self.codes.push(upper);
            n
        };
        self.number_of.insert(code.to_owned(), n);
        Ok(n)
    }
}

/// Cleans, pseudonymizes and locates pings.
///
/// `batches` may come from any Arrow source (a Parquet reader, an FFI stream, a `Vec`).
/// Rows are dropped under the first reason of §2 that applies and counted in the
/// report; nothing is dropped silently. Pings are located on every core.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration or one whose `resolution` differs from
/// the geography's; [`Error::Input`] naming the column for a missing column, an
/// unsupported type, or subscriber columns of different kinds across batches; an Arrow
/// error raised by the batch source.
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{prepare, Config, Key, PingColumns};
///
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// let prepared = prepare([Ok(pings())], &geography(), &config, &PingColumns::default())?;
/// assert_eq!(prepared.report.pings_read, 3);
/// assert_eq!(prepared.report.dropped.bad_position, 1);
/// assert_eq!(prepared.pings.len(), 2);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn prepare<I>(
    batches: I,
    geography: &Geography,
    config: &Config,
    columns: &PingColumns,
) -> Result<Prepared>
where
    I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
{
    let mut ingester = Ingester::new(geography, config, columns)?.with_threads(0)?;
    for batch in batches {
        ingester.push(&batch?)?;
    }
    ingester.finish()
}

/// The result of [`prepare`]: located pings and the quality report.
#[derive(Debug)]
pub struct Prepared {
    /// Cleaned, pseudonymized, located pings, grouped by device and sorted by time.
    pub pings: LocatedPings,
    /// What was read and dropped.
    pub report: QualityReport,
}

/// Streaming ingestion: push input batches one by one, then finish.
///
/// Each pushed batch is decoded, cleaned and located at once and kept as compact
/// columns (22 bytes a ping), so the input itself need not stay in memory.
/// [`prepare`] is this over an iterator of batches.
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{Config, Key, PingColumns};
/// use crowdtally::ingest::Ingester;
///
/// let geography = geography();
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// let mut ingester = Ingester::new(&geography, &config, &PingColumns::default())?;
/// ingester.push(&pings())?;
/// ingester.push(&pings())?;
/// let prepared = ingester.finish()?;
/// assert_eq!(prepared.report.pings_read, 6);
/// assert_eq!(prepared.report.dropped.duplicate, 2);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub struct Ingester<'a> {
    geography: &'a Geography,
    config: &'a Config,
    columns: PingColumns,
    resolution: Resolution,
    calendar: Calendar,
    kind: Option<SubscriberKind>,
    opt_out: HashSet<Vec<u8>>,
    subscribers: Subscribers,
    countries: Countries,
    decoded: Decoded,
    report: QualityReport,
    /// What lat/lon positions are located with: caches that learn the places pings come
    /// from, so they are kept from batch to batch, one per worker at a time.
    positions: Kept<PositionCache>,
    /// The subscriber numbers of the last dictionary of ids.
    dictionary_numbers: DictionaryNumbers,
    /// The country numbers of the last dictionary of codes.
    country_numbers: DictionaryNumbers,
    /// Where pings are located.
    threads: Threads,
    /// The given period's bounds in epoch seconds, `[from, until)`.
    window: Option<(i64, i64)>,
    /// The first and last instant of the decoded pings.
    span: Option<(i64, i64)>,
    /// The memory budget; `None` never spills.
    memory_limit: Option<u64>,
    /// Where the spill directory is made.
    spill_dir: std::path::PathBuf,
    /// The spill files, once pings did not fit the budget.
    spill: Option<spill::Spill>,
    /// Compressed bytes written to spill files so far.
    bytes_spilled: u64,
    progress: Option<crate::run::ProgressCallback<'a>>,
}

/// The threads an ingester locates pings on.
enum Threads {
    /// The calling thread only.
    Calling,
    /// rayon's global pool (one thread per core).
    Global,
    /// A pool of the ingester's own.
    Own(Arc<rayon::ThreadPool>),
}

impl std::fmt::Debug for Ingester<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Raw ids are held until `finish`: show counts only.
        f.debug_struct("Ingester")
            .field("pings_read", &self.report.pings_read)
            .field("pings_decoded", &self.decoded.ts.len())
            .field("subscribers", &self.subscribers.opted_out.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Ingester<'a> {
    /// Starts an ingestion run.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or one whose `resolution` differs
    /// from the geography's.
    pub fn new(
        geography: &'a Geography,
        config: &'a Config,
        columns: &PingColumns,
    ) -> Result<Self> {
        config.validate()?;
        if u8::from(geography.resolution()) != config.resolution {
            return Err(Error::config(
                "resolution",
                format!(
                    "is {}, but the geography is at resolution {}",
                    config.resolution,
                    geography.resolution()
                ),
            ));
        }
        let calendar = Calendar::new(&config.tz)?;
        let window = config
            .period
            .map(|p| (calendar.start_of(p.start), calendar.start_of(p.end)));
        Ok(Self {
            geography,
            config,
            columns: columns.clone(),
            resolution: geography.resolution(),
            calendar,
            window,
            span: None,
            memory_limit: None,
            spill_dir: std::env::temp_dir(),
            spill: None,
            bytes_spilled: 0,
            progress: None,
            kind: None,
            opt_out: HashSet::new(),
            subscribers: Subscribers::default(),
            countries: Countries::default(),
            decoded: Decoded::default(),
            positions: Kept::default(),
            dictionary_numbers: DictionaryNumbers::default(),
            country_numbers: DictionaryNumbers::default(),
            threads: Threads::Calling,
            report: QualityReport {
                version: crate::VERSION,
                tz: config.tz.clone(),
                resolution: config.resolution,
                ..QualityReport::default()
            },
        })
    }

    /// Locates pings on `threads` threads (0: one per core; 1: the calling thread only,
    /// the default). Results do not depend on the number of threads.
    ///
    /// # Errors
    /// [`Error::Config`] naming `threads` if the thread pool cannot be started.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.threads = match threads {
            // rayon's global pool has one thread per core and is started once per process.
            0 => Threads::Global,
            1 => Threads::Calling,
            n => Threads::Own(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("crowdtally-{i}"))
                    .build()
                    .map_err(|e| {
                        Error::config("threads", format!("cannot start {n} threads: {e}"))
                    })?,
            )),
        };
        Ok(self)
    }

    /// Applies a run's options: its threads, and its memory budget, beyond which decoded
    /// pings are spilled to disk in `spill_dir` (see [`Ingester::finish_shards`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming `threads` or `memory_limit`.
    pub fn with_run(self, options: &crate::run::RunOptions) -> Result<Self> {
        let limit = options.memory_limit()?;
        let mut ingester = self.with_threads(options.threads)?;
        ingester.memory_limit = Some(limit);
        if let Some(dir) = &options.spill_dir {
            ingester.spill_dir.clone_from(dir);
        }
        Ok(ingester)
    }

    /// Sends progress events to `callback` after every batch and while shards are
    /// processed; an error from it stops the run with that error.
    #[must_use]
    pub fn with_progress(mut self, callback: crate::run::ProgressCallback<'a>) -> Self {
        self.progress = Some(callback);
        self
    }

    /// The geography pings are located in.
    #[must_use]
    pub fn geography(&self) -> &'a Geography {
        self.geography
    }

    /// The run's configuration.
    #[must_use]
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// The column names this ingester reads.
    #[must_use]
    pub fn columns(&self) -> &PingColumns {
        &self.columns
    }

    /// Decodes, cleans and locates one batch of pings.
    ///
    /// # Errors
    /// [`Error::Input`] naming the column for a missing column, an unsupported type, or
    /// subscriber ids of another kind than in earlier batches; [`Error::Config`] naming
    /// `opt_out` when the opt-out ids are not of the subscriber column's kind.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        // Lent out for the call: `batch` needs `&mut self` and the names at once.
        let columns = std::mem::take(&mut self.columns);
        let result = self.batch(batch, &columns);
        self.columns = columns;
        result?;
        self.spill_if_over_budget()?;
        self.notify(crate::run::Stage::Read, 0, 0)
    }

    fn batch(&mut self, batch: &RecordBatch, columns: &PingColumns) -> Result<()> {
        let subscriber_array = crate::columns::column(batch, &columns.subscriber, "")?;
        let (subscribers, kind) = SubscriberColumn::new(subscriber_array, &columns.subscriber)?;
        match self.kind {
            // A column of Arrow's Null type (what writers give a column without a single
            // value) says nothing of the ids' kind: all its rows are bad_subscriber, and
            // the kind (with it, how opt-out ids are read) is left to a batch with ids.
            _ if matches!(subscriber_array.data_type(), arrow_schema::DataType::Null) => {}
            None => {
                self.opt_out = self.config.opt_out.subscriber_bytes(kind)?;
                self.kind = Some(kind);
                self.report.subscriber_kind = Some(kind);
            }
            Some(known) if known != kind => {
                return Err(Error::input(
                    &columns.subscriber,
                    format!("holds {kind:?} ids in one batch and {known:?} ids in another"),
                ));
            }
            Some(_) => {}
        }
        let ts = TsColumn::new(crate::columns::column(batch, &columns.ts, "")?, &columns.ts)?;
        let positions = PositionColumns::new(batch, columns)?;
        let country = country_column(batch, &columns.country)?;

        let rows = batch.num_rows();
        self.report.pings_read += rows as u64;
        let mut numbers = Vec::with_capacity(rows);
        if let SubscriberColumn::Dictionary {
            array,
            keys,
            values,
        } = &subscribers
        {
            let table = self.dictionary_numbers.of(values);
            let nulls = array.nulls();
            for (row, &key) in keys.iter().enumerate() {
                if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                    numbers.push(u32::MAX);
                    continue;
                }
                if table[key] == UNNUMBERED {
                    table[key] = columns::dictionary_value(values, key)
                        .map_or(u32::MAX, |b| self.subscribers.number(b, &self.opt_out));
                }
                numbers.push(table[key]);
            }
        } else {
            subscribers.for_each(|_, bytes| {
                numbers.push(bytes.map_or(u32::MAX, |b| self.subscribers.number(b, &self.opt_out)));
            });
        }
        let mut dropped = [0_u64; 5];
        let mut span = self.span;
        // Within a budget, the buffer is sized once for the rows it may hold before it
        // spills, so that it never doubles past its share (pages are only resident once
        // written).
        let wanted = match self.spill_rows() {
            Some(limit) if self.decoded.ts.capacity() == 0 => limit + rows,
            _ => rows,
        };
        let decoded = &mut self.decoded;
        decoded.subscriber.reserve(wanted);
        decoded.ts.reserve(wanted);
        decoded.cell.reserve(wanted);
        decoded.country.reserve(wanted);
        let Subscribers {
            opted_out, has_row, ..
        } = &mut self.subscribers;
        let opted_out: &[bool] = opted_out;
        let countries = &mut self.countries;
        // A dictionary's codes are numbered when a kept row first refers to them.
        let mut country_table = match &country {
            Some(CountryColumn::Dictionary { values, .. }) => Some(self.country_numbers.of(values)),
            _ => None,
        };
        let cleaning = Cleaning {
            threads: &self.threads,
            caches: &self.positions,
            resolution: self.resolution,
            positions: &positions,
            ts: &ts,
            calendar: &self.calendar,
            window: self.window,
            numbers: &numbers,
            opted_out,
        };
        cleaning.in_chunks(|kept| {
            for (count, more) in dropped.iter_mut().zip(kept.dropped) {
                *count += more;
            }
            if let Some((first, last)) = kept.span {
                span = Some(span.map_or((first, last), |(f, l)| (f.min(first), l.max(last))));
            }
            for &number in &kept.subscriber {
                has_row[number as usize] = true;
            }
            for &row in &kept.rows {
                let row = row as usize;
                let country = match (&country, country_table.as_deref_mut()) {
                    (Some(CountryColumn::Text(array)), _) if !array.is_null(row) => {
                        countries.number(array.value(row), &columns.country)?
                    }
                    (
                        Some(CountryColumn::Dictionary {
                            nulls,
                            keys,
                            values,
                        }),
                        Some(table),
                    ) if nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row)) => {
                        let key = keys[row];
                        if table[key] == UNNUMBERED {
                            let values = arrow_array::cast::AsArray::as_string::<i32>(values);
                            table[key] = u32::from(if values.is_null(key) {
                                NO_COUNTRY
                            } else {
                                countries.number(values.value(key), &columns.country)?
                            });
                        }
                        table[key] as u16
                    }
                    _ => NO_COUNTRY,
                };
                decoded.country.push(country);
            }
            decoded.subscriber.extend_from_slice(&kept.subscriber);
            decoded.ts.extend_from_slice(&kept.ts);
            decoded.cell.extend_from_slice(&kept.cell);
            Ok(())
        })?;
        for (reason, count) in [
            DropReason::OptOut,
            DropReason::BadSubscriber,
            DropReason::BadPosition,
            DropReason::BadTs,
            DropReason::OutsidePeriod,
        ]
        .into_iter()
        .zip(dropped)
        {
            self.report.dropped.add(reason, count);
        }
        self.span = span;
        Ok(())
    }
}

/// The output country number of a country rank: ranks start at 1, "none" is 0.
fn output_country(rank: u16) -> u16 {
    if rank == u16::MAX {
        NO_COUNTRY
    } else {
        rank + 1
    }
}

/// The rank of each country number in byte order of the codes, "none" last.
fn country_ranks(codes: &[String]) -> Vec<u16> {
    let mut order: Vec<u16> = (1..codes.len() as u16).collect();
    order.sort_unstable_by(|&a, &b| codes[a as usize].cmp(&codes[b as usize]));
    let mut rank = vec![u16::MAX; codes.len()];
    for (r, &n) in order.iter().enumerate() {
        rank[n as usize] = r as u16;
    }
    rank
}

/// What one worker locates positions with: for lat/lon, a memo of exact positions, for
/// those that repeat (antennas, grid points), in front of the cell locator, for those
/// that cluster; for given cells, a memo of each cell's validation and parent (a city's
/// pings come from a few thousand cells). All only ever give h3o's cell.
struct PositionCache {
    memo: Memo<(u64, u64), Option<u64>>,
    locator: CellLocator,
    cells: Memo<u64, Option<u64>>,
}

/// The rows of a chunk of a batch that survive the per-row rules, located, in row
/// order; and what the others were dropped for.
#[derive(Default)]
struct KeptRows {
    /// Each kept row's place in the batch.
    rows: Vec<u32>,
    subscriber: Vec<u32>,
    ts: Vec<i64>,
    cell: Vec<u64>,
    /// Rows dropped, by reason: opt-out, bad subscriber, bad position, bad time,
    /// outside the period.
    dropped: [u64; 5],
    /// The first and last instant kept.
    span: Option<(i64, i64)>,
}

/// What cleaning and locating a batch's rows needs: where, with what, and which rows to
/// skip.
struct Cleaning<'b> {
    threads: &'b Threads,
    caches: &'b Kept<PositionCache>,
    resolution: Resolution,
    positions: &'b PositionColumns,
    ts: &'b TsColumn,
    calendar: &'b Calendar,
    /// The given period's bounds in epoch seconds, `[from, until)`.
    window: Option<(i64, i64)>,
    /// Each row's subscriber number, `u32::MAX` for a bad subscriber.
    numbers: &'b [u32],
    opted_out: &'b [bool],
}

impl Cleaning<'_> {
    /// The rows of one chunk of a batch.
    const CHUNK_ROWS: usize = 1 << 12;

    /// Each chunk's kept rows, handed to `consume` in row order on the calling thread.
    /// With threads, chunks are cleaned and located on the pool while `consume` appends
    /// the earlier ones: only what needs the run's state (country numbers) is serial.
    fn in_chunks(&self, mut consume: impl FnMut(KeptRows) -> Result<()>) -> Result<()> {
        let rows = self.numbers.len();
        match self.threads {
            Threads::Own(pool) if rows > Self::CHUNK_ROWS => {
                pool.in_place_scope(|scope| self.pipelined(scope, &mut consume))
            }
            Threads::Global if rows > Self::CHUNK_ROWS => {
                rayon::in_place_scope(|scope| self.pipelined(scope, &mut consume))
            }
            _ => consume(self.chunk(0..rows)),
        }
    }

    fn chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let rows = self.numbers.len();
        (0..rows)
            .step_by(Self::CHUNK_ROWS)
            .map(move |start| start..(start + Self::CHUNK_ROWS).min(rows))
    }

    /// Spawns every chunk on `scope`, then consumes them in order as they arrive.
    fn pipelined<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        consume: &mut impl FnMut(KeptRows) -> Result<()>,
    ) -> Result<()> {
        let (sender, receiver) = std::sync::mpsc::channel();
        for range in self.chunks() {
            let sender = sender.clone();
            scope.spawn(move |_| {
                // The receiver is gone only when `consume` failed.
                let _ = sender.send((range.start, self.chunk(range)));
            });
        }
        drop(sender);
        let mut arrived = FxHashMap::default();
        for range in self.chunks() {
            let kept = loop {
                if let Some(kept) = arrived.remove(&range.start) {
                    break kept;
                }
                // Every sender is gone when a worker panicked: the scope re-raises it.
                let Ok((start, kept)) = receiver.recv() else {
                    return Ok(());
                };
                arrived.insert(start, kept);
            };
            consume(kept)?;
        }
        Ok(())
    }

    /// The rows of `range` that survive the per-row rules, each dropped under the first
    /// rule it breaks (§2's order).
    fn chunk(&self, range: std::ops::Range<usize>) -> KeptRows {
        let mut cache = self.caches.lend(|| PositionCache {
            memo: Memo::new(12),
            locator: CellLocator::new(self.resolution),
            cells: Memo::new(12),
        });
        let mut resolver = self.calendar.resolver();
        let on_calendar = crate::calendar::instant_range();
        let mut kept = KeptRows {
            rows: Vec::with_capacity(range.len()),
            subscriber: Vec::with_capacity(range.len()),
            ts: Vec::with_capacity(range.len()),
            cell: Vec::with_capacity(range.len()),
            ..KeptRows::default()
        };
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for row in range {
            let number = self.numbers[row];
            if number == u32::MAX {
                kept.dropped[1] += 1;
                continue;
            }
            if self.opted_out[number as usize] {
                kept.dropped[0] += 1;
                continue;
            }
            let Some(cell) = locate(self.positions.raw(row), self.resolution, &mut cache) else {
                kept.dropped[2] += 1;
                continue;
            };
            // An instant the calendar cannot date (typically milliseconds read as
            // seconds) is no usable time: kept, it would wreck the derived period.
            let Some(instant) = self
                .ts
                .instant(row, &mut resolver)
                .filter(|t| on_calendar.contains(t))
            else {
                kept.dropped[3] += 1;
                continue;
            };
            if let Some((from, until)) = self.window
                && !(from..until).contains(&instant)
            {
                kept.dropped[4] += 1;
                continue;
            }
            first = first.min(instant);
            last = last.max(instant);
            kept.rows.push(row as u32);
            kept.subscriber.push(number);
            kept.ts.push(instant);
            kept.cell.push(cell);
        }
        kept.span = (first <= last).then_some((first, last));
        kept
    }
}

/// The cell at the analysis resolution of a raw position, or `None` for `bad_position`.
fn locate(position: RawPosition, resolution: Resolution, cache: &mut PositionCache) -> Option<u64> {
    match position {
        RawPosition::Cell(raw) => cache.cells.get_or(raw, raw, || {
            let cell = CellIndex::try_from(raw).ok()?;
            if cell.resolution() < resolution {
                return None;
            }
            cell.parent(resolution).map(u64::from)
        }),
        RawPosition::LatLon(lat, lon) => {
            if !(lat.is_finite() && lon.is_finite()) || lat.abs() > 90.0 || lon.abs() > 180.0 {
                return None;
            }
            let key = (lat.to_bits(), lon.to_bits());
            let PositionCache { memo, locator, .. } = cache;
            memo.get_or(key, key.0 ^ key.1.rotate_left(32), || {
                locator.cell(lat, lon).map(u64::from)
            })
        }
        RawPosition::Bad => None,
    }
}

/// Pseudonymizes a column of raw subscriber ids (text, binary or 64-bit integer), row by
/// row, as §3 defines it.
///
/// # Errors
/// [`Error::Config`] naming `key` or `period_label` when they are invalid;
/// [`Error::Input`] naming `column` for an unsupported type, or for a null or negative
/// id (by row number, never by value).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_array::{ArrayRef, StringArray};
/// use crowdtally::{ingest::pseudonymize_column, Key};
///
/// let ids: ArrayRef = Arc::new(StringArray::from(vec!["206010000000001", "42"]));
/// let key = Key::new(b"a secret of 16+ bytes".to_vec());
/// let devices = pseudonymize_column(&ids, &key, "2026Q3", "ids")?;
/// assert_eq!(devices.len(), 2);
/// assert_ne!(devices[0], devices[1]);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn pseudonymize_column(
    array: &arrow_array::ArrayRef,
    key: &crate::Key,
    period_label: &str,
    column: &str,
) -> Result<Vec<u64>> {
    let pseudonymizer = Pseudonymizer::new(key, period_label)?;
    let (subscribers, _) = SubscriberColumn::new(array, column)?;
    let mut devices = Vec::with_capacity(array.len());
    let mut bad_row = None;
    subscribers.for_each(|row, bytes| match bytes {
        Some(bytes) => devices.push(pseudonymizer.device(bytes)),
        None => {
            bad_row.get_or_insert(row);
        }
    });
    match bad_row {
        Some(row) => Err(Error::input(
            column,
            format!("row {row}: a subscriber id must not be null or a negative integer"),
        )),
        None => Ok(devices),
    }
}

#[cfg(test)]
mod tests {

    use super::Seconds;

    proptest::proptest! {
        /// Any instants of the calendar's range come back as pushed, one by one or by
        /// slices, whether or not one before needed the high bits.
        #[test]
        fn seconds_keep_every_instant(
            instants in proptest::collection::vec(
                proptest::prop_oneof![
                    crate::calendar::instant_range(),
                    0_i64..1 << 32,
                    1_780_000_000_i64..1_790_000_000,
                    proptest::strategy::Just((1_i64 << 32) - 1),
                    proptest::strategy::Just(1_i64 << 32),
                    proptest::strategy::Just(-1_i64),
                ],
                0..60,
            ),
            cut in 0_usize..60,
        ) {
            let cut = cut.min(instants.len());
            let mut one_by_one = Seconds::default();
            let mut by_slices = Seconds::default();
            for &instant in &instants {
                one_by_one.push(instant);
            }
            by_slices.extend_from_slice(&instants[..cut]);
            by_slices.extend_from_slice(&instants[cut..]);
            for seconds in [&one_by_one, &by_slices] {
                proptest::prop_assert_eq!(seconds.iter().collect::<Vec<_>>(), instants.clone());
                // Four bytes a row as long as every instant is in 1970–2106.
                let narrow = instants.iter().all(|&t| (0..1_i64 << 32).contains(&t));
                proptest::prop_assert_eq!(seconds.high.is_empty(), narrow);
            }
        }
    }
    use super::*;
    use crate::doc_example::{geography, pings};

    #[test]
    fn an_ingester_in_progress_shows_no_raw_id() {
        let geography = geography();
        let config = Config::new(crate::Key::new(b"a secret of 16+ bytes".to_vec()));
        let mut ingester = Ingester::new(&geography, &config, &PingColumns::default()).unwrap();
        ingester.push(&pings()).unwrap();
        let shown = format!("{ingester:?}");
        assert!(!shown.contains("206010000000001"), "{shown}");
        assert!(!shown.contains("a secret"), "{shown}");
        assert!(shown.contains("pings_read: 3"), "{shown}");
    }
}
