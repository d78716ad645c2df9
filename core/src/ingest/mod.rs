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
mod located;
mod memo;
mod parquet;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::ArrowError;
use h3o::{CellIndex, LatLng, Resolution};
use rustc_hash::FxHashMap;

use crate::calendar::Calendar;
use crate::config::{Config, Period, SubscriberKind};
use crate::error::{Error, Result};
use crate::geo::{Geography, RegionIndex, ZoneSetIndex};
use crate::pseudonym::Pseudonymizer;
use crate::report::{DropReason, QualityReport};

pub use columns::PingColumns;
pub use located::{LocatedPings, NO_COUNTRY};
pub use parquet::{PARQUET_BATCH_ROWS, prepare_parquet};

use columns::{PositionColumns, RawPosition, SubscriberColumn, TsColumn, country_column};
use memo::Memo;

/// Pings that survived the per-row rules, before period filtering and de-duplication.
#[derive(Default)]
struct Decoded {
    subscriber: Vec<u32>,
    ts: Vec<i64>,
    cell: Vec<u64>,
    country: Vec<u16>,
    /// Leaf region and zone set of the cell.
    place: Vec<(RegionIndex, ZoneSetIndex)>,
}

/// Distinct subscribers seen, as their §3 bytes, numbered in order of appearance.
#[derive(Default)]
struct Subscribers {
    number_of: FxHashMap<Box<[u8]>, u32>,
    opted_out: Vec<bool>,
    last: Option<(Box<[u8]>, u32)>,
}

impl Subscribers {
    fn number(&mut self, bytes: &[u8], opt_out: &HashSet<Vec<u8>>) -> u32 {
        // Feeds often list a subscriber's pings together: the last id is the likeliest.
        if let Some((last, number)) = &self.last
            && **last == *bytes
        {
            return *number;
        }
        let number = self.lookup(bytes, opt_out);
        match &mut self.last {
            Some((last, n)) if last.len() == bytes.len() => {
                last.copy_from_slice(bytes);
                *n = number;
            }
            slot => *slot = Some((bytes.into(), number)),
        }
        number
    }

    fn lookup(&mut self, bytes: &[u8], opt_out: &HashSet<Vec<u8>>) -> u32 {
        if let Some(&number) = self.number_of.get(bytes) {
            return number;
        }
        let number = self.opted_out.len() as u32;
        self.opted_out.push(opt_out.contains(bytes));
        self.number_of.insert(bytes.into(), number);
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
}

impl Default for Countries {
    fn default() -> Self {
        Self {
            number_of: FxHashMap::default(),
            number_of_code: FxHashMap::default(),
            codes: vec![String::new()],
        }
    }
}

impl Countries {
    fn number(&mut self, raw: &str, column: &str) -> Result<u16> {
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
/// columns (about 30 bytes a ping), so the input itself need not stay in memory.
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
    /// Cells of recently seen lat/lon pairs: positions repeat (antennas, grid points).
    positions: Memo<(u64, u64), Option<u64>>,
    /// Where pings are located.
    threads: Threads,
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
        Ok(Self {
            geography,
            config,
            columns: columns.clone(),
            resolution: geography.resolution(),
            calendar: Calendar::new(&config.tz)?,
            kind: None,
            opt_out: HashSet::new(),
            subscribers: Subscribers::default(),
            countries: Countries::default(),
            decoded: Decoded::default(),
            positions: Memo::new(12),
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

    /// Each row's cell, leaf and zone set; `None` for a bad position and for rows that
    /// are dropped before their position is looked at (`numbers[row]` is `u32::MAX` for
    /// a bad subscriber; opted-out subscribers are flagged in `opted_out`). In parallel
    /// when the ingester has threads and the batch is large enough to share out.
    fn locate_rows(
        &mut self,
        positions: &PositionColumns,
        numbers: &[u32],
    ) -> Vec<Option<Located>> {
        const ROWS_PER_TASK: usize = 1 << 14;
        let (resolution, geography) = (self.resolution, self.geography);
        let opted_out = &self.subscribers.opted_out;
        let locate_row = move |row: usize, memo: &mut Memo<(u64, u64), Option<u64>>| {
            let number = numbers[row];
            if number == u32::MAX || opted_out[number as usize] {
                return None;
            }
            let cell = locate(positions.raw(row), resolution, memo)?;
            let index = CellIndex::try_from(cell).expect("located cells are valid");
            Some((cell, geography.leaf_of(index), geography.zone_set_of(index)))
        };
        let parallel = || {
            use rayon::prelude::*;
            (0..numbers.len())
                .into_par_iter()
                .with_min_len(ROWS_PER_TASK)
                .map_init(|| Memo::new(12), |memo, row| locate_row(row, memo))
                .collect()
        };
        match &self.threads {
            Threads::Own(pool) if numbers.len() > ROWS_PER_TASK => pool.install(parallel),
            Threads::Global if numbers.len() > ROWS_PER_TASK => parallel(),
            _ => (0..numbers.len())
                .map(|row| locate_row(row, &mut self.positions))
                .collect(),
        }
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
        result
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
        let country = country
            .as_ref()
            .map(arrow_array::cast::AsArray::as_string::<i32>);

        let rows = batch.num_rows();
        self.report.pings_read += rows as u64;
        let mut numbers = Vec::with_capacity(rows);
        subscribers.for_each(|_, bytes| {
            numbers.push(bytes.map_or(u32::MAX, |b| self.subscribers.number(b, &self.opt_out)));
        });
        let located = self.locate_rows(&positions, &numbers);
        let mut resolver = self.calendar.resolver();
        let on_calendar = crate::calendar::instant_range();
        let mut dropped = [0_u64; 4];
        let decoded = &mut self.decoded;
        decoded.subscriber.reserve(rows);
        decoded.ts.reserve(rows);
        decoded.cell.reserve(rows);
        decoded.country.reserve(rows);
        decoded.place.reserve(rows);
        for (row, &number) in numbers.iter().enumerate() {
            if number == u32::MAX {
                dropped[1] += 1;
                continue;
            }
            if self.subscribers.opted_out[number as usize] {
                dropped[0] += 1;
                continue;
            }
            let Some((cell, leaf, zone_set)) = located[row] else {
                dropped[2] += 1;
                continue;
            };
            // An instant the calendar cannot date (typically milliseconds read as
            // seconds) is no usable time: kept, it would wreck the derived period.
            let Some(instant) = ts
                .instant(row, &mut resolver)
                .filter(|t| on_calendar.contains(t))
            else {
                dropped[3] += 1;
                continue;
            };
            let country = match country {
                Some(array) if !array.is_null(row) => {
                    self.countries.number(array.value(row), &columns.country)?
                }
                _ => NO_COUNTRY,
            };
            decoded.subscriber.push(number);
            decoded.ts.push(instant);
            decoded.cell.push(cell);
            decoded.country.push(country);
            decoded.place.push((leaf, zone_set));
        }
        for (reason, count) in [
            DropReason::OptOut,
            DropReason::BadSubscriber,
            DropReason::BadPosition,
            DropReason::BadTs,
        ]
        .into_iter()
        .zip(dropped)
        {
            self.report.dropped.add(reason, count);
        }
        Ok(())
    }

    /// Pseudonymizes, cuts to the period, groups by device, resolves duplicates and
    /// returns the located pings with the quality report.
    ///
    /// # Errors
    /// [`Error::Config`] naming `key` or `period_label` if they cannot be used.
    pub fn finish(mut self) -> Result<Prepared> {
        let config = self.config;
        let calendar = &self.calendar.clone();
        let decoded = std::mem::take(&mut self.decoded);
        self.report.opt_out.pings = self.report.dropped.opt_out;
        self.report.opt_out.subscribers =
            self.subscribers.opted_out.iter().filter(|&&o| o).count() as u64;
        let period = config.period.or_else(|| {
            let first = decoded.ts.iter().min()?;
            let last = decoded.ts.iter().max()?;
            let start = calendar.date_of(*first);
            let end = calendar.date_of(*last).tomorrow().ok()?;
            Some(Period { start, end })
        });
        let Some(period) = period else {
            // No period given and no valid ping: an empty result.
            return Ok(Prepared {
                pings: LocatedPings::empty(self.countries.codes),
                report: self.report,
            });
        };
        let label = config
            .period_label
            .clone()
            .unwrap_or_else(|| period.default_label());
        let from = calendar.start_of(period.start);
        let until = calendar.start_of(period.end);

        // Pseudonymize each distinct subscriber once; the raw ids are dropped right after.
        let pseudonymizer = Pseudonymizer::new(&config.key, &label)?;
        let mut device_of = vec![0_u64; self.subscribers.opted_out.len()];
        for (bytes, &number) in &self.subscribers.number_of {
            if !self.subscribers.opted_out[number as usize] {
                device_of[number as usize] = pseudonymizer.device(bytes);
            }
        }
        drop(std::mem::take(&mut self.subscribers.number_of));
        self.subscribers.last = None;

        // One pass: which rows are in the period, and which subscribers keep a row.
        let mut used = vec![false; device_of.len()];
        let in_period: Vec<bool> = decoded
            .ts
            .iter()
            .zip(&decoded.subscriber)
            .map(|(&t, &number)| {
                let keep = t >= from && t < until;
                used[number as usize] |= keep;
                keep
            })
            .collect();
        let outside = in_period.iter().filter(|&&keep| !keep).count() as u64;
        self.report.dropped.add(DropReason::OutsidePeriod, outside);

        // Rank devices by pseudonym so that the output order does not depend on input
        // order; subscribers whose pseudonyms collide share a rank.
        let mut by_device: Vec<(u64, u32)> = (0..device_of.len() as u32)
            .filter(|&n| used[n as usize])
            .map(|n| (device_of[n as usize], n))
            .collect();
        by_device.sort_unstable();
        let mut rank_of = vec![u32::MAX; device_of.len()];
        let mut devices: Vec<u64> = Vec::with_capacity(by_device.len());
        for &(device, number) in &by_device {
            if devices.last() == Some(&device) {
                self.report.pseudonym_collisions += 1;
            } else {
                devices.push(device);
            }
            rank_of[number as usize] = (devices.len() - 1) as u32;
        }

        // Output country numbers follow the codes' byte order (none is 0), so that they
        // do not depend on the order in which codes were first seen; the sort below
        // orders "none" last by giving it the largest rank.
        let country_rank = country_ranks(&self.countries.codes);
        let mut sorted_codes = vec![String::new(); self.countries.codes.len()];
        for (number, code) in self.countries.codes.iter().enumerate() {
            sorted_codes[output_country(country_rank[number]) as usize].clone_from(code);
        }

        // Counting sort of the rows by device rank, gathering each row's sort key
        // (second, cell, country rank) so that the per-device sorts read contiguous memory.
        let mut offsets = vec![0_usize; devices.len() + 1];
        for (&number, &keep) in decoded.subscriber.iter().zip(&in_period) {
            if keep {
                offsets[rank_of[number as usize] as usize + 1] += 1;
            }
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut rows = vec![(0_i64, 0_u64, 0_u16, (0, 0)); offsets[devices.len()]];
        let mut next = offsets.clone();
        for (row, (&number, &keep)) in decoded.subscriber.iter().zip(&in_period).enumerate() {
            if keep {
                let slot = &mut next[rank_of[number as usize] as usize];
                rows[*slot] = (
                    decoded.ts[row],
                    decoded.cell[row],
                    country_rank[decoded.country[row] as usize],
                    decoded.place[row],
                );
                *slot += 1;
            }
        }
        drop(decoded);

        // Within each device: by time, then the duplicate tie rules (smaller cell, then
        // smaller country with none last), keeping the first row of each second.
        let mut pings = LocatedPings::with_capacity(rows.len(), sorted_codes);
        let mut device_offsets = Vec::with_capacity(devices.len() + 1);
        device_offsets.push(0);
        for (rank, &device) in devices.iter().enumerate() {
            let device_rows = &mut rows[offsets[rank]..offsets[rank + 1]];
            device_rows.sort_unstable();
            let mut last_ts = None;
            for &(ts, cell, country_rank, place) in device_rows.iter() {
                if last_ts == Some(ts) {
                    self.report.dropped.add(DropReason::Duplicate, 1);
                    continue;
                }
                last_ts = Some(ts);
                pings.push(device, ts, cell, place, output_country(country_rank));
            }
            device_offsets.push(pings.len());
        }
        pings.set_devices(devices, device_offsets);
        pings.period = Some(period);
        pings.period_label = Some(label.clone());
        self.report.pings_kept = pings.len() as u64;
        self.report.devices = pings.devices().len() as u64;
        self.report.period = Some(period);
        self.report.period_label = Some(label);
        debug_assert_eq!(
            self.report.pings_read,
            self.report.pings_kept + self.report.dropped.total()
        );
        Ok(Prepared {
            pings,
            report: self.report,
        })
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

/// A located ping: its cell at the analysis resolution, leaf region and zone set.
type Located = (u64, RegionIndex, ZoneSetIndex);

/// The cell at the analysis resolution of a raw position, or `None` for `bad_position`.
fn locate(
    position: RawPosition,
    resolution: Resolution,
    positions: &mut Memo<(u64, u64), Option<u64>>,
) -> Option<u64> {
    match position {
        RawPosition::Cell(raw) => {
            let cell = CellIndex::try_from(raw).ok()?;
            if cell.resolution() < resolution {
                return None;
            }
            cell.parent(resolution).map(u64::from)
        }
        RawPosition::LatLon(lat, lon) => {
            if !(lat.is_finite() && lon.is_finite()) || lat.abs() > 90.0 || lon.abs() > 180.0 {
                return None;
            }
            let key = (lat.to_bits(), lon.to_bits());
            positions.get_or(key, key.0 ^ key.1.rotate_left(32), || {
                LatLng::new(lat, lon)
                    .ok()
                    .map(|p| u64::from(p.to_cell(resolution)))
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
