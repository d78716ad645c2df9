//! Ingestion (method §1–3): batches of raw pings become located pings.
//!
//! [`Reader`] reads one batch at a time: it decodes each row, drops it under the first
//! cleaning reason that applies ([`clean`]) and keeps compact columns ([`decoded`]). Once
//! the whole input is read, [`Reader::settle`] fixes what spans subscribers (the period
//! and its label, each subscriber's pseudonym, pseudonym collisions, country numbers) and
//! forgets every raw id; [`finish::finish_rows`] then turns any set of decoded pings
//! holding whole subscribers into [`LocatedPings`]: grouped by device without a global
//! comparison sort, sorted by time, de-duplicated and located in leaf region and zones.
//! How batches reach the reader, on which threads, and whether decoded pings wait in
//! memory or on disk is the run's business (`crate::pipeline`).

mod clean;
mod columns;
pub(crate) mod decoded;
pub(crate) mod finish;
mod ids;
mod located;
mod memo;
mod parquet;
mod pseudonymous;

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use h3o::Resolution;

use crate::calendar::Calendar;
use crate::config::{OptOutSet, Period, SubscriberKind};
use crate::error::{Error, Result};
use crate::geo::{CellRaster, DEFAULT_RASTER_BUDGET};
use crate::pseudonym::Pseudonymizer;
use crate::report::QualityReport;
use crate::study::Study;
use crate::workers::{Kept, Threads};

pub use columns::PingColumns;
pub(crate) use columns::{SubscriberColumn, TsColumn};
pub use located::LocatedPings;
pub(crate) use located::NO_COUNTRY;
pub(crate) use parquet::read_ping_file;
pub use parquet::{
    PARQUET_BATCH_ROWS, parquet_rows, read_parquet, read_parquet_table, write_parquet,
};
pub(crate) use pseudonymous::PseudonymousReader;
pub use pseudonymous::{PSEUDONYMOUS_COLUMNS, pseudonymous_schema};

use clean::{Cleaning, PositionCache};
use columns::{CountryColumn, PositionColumns, country_column};
use decoded::Decoded;
use finish::Finishing;
pub(crate) use ids::Named;
use ids::{Countries, DictionaryNumbers, Subscribers};

/// Reads raw pings batch by batch: cleaning, opt-out and location, with the counts of
/// the quality report. Holds raw subscriber ids until [`Reader::settle`], so it shows
/// only counts.
pub(crate) struct Reader {
    study: Study,
    resolution: Resolution,
    calendar: Calendar,
    kind: Option<SubscriberKind>,
    opt_out: OptOutSet,
    subscribers: Subscribers,
    countries: Countries,
    report: QualityReport,
    /// What positions are located with: caches that learn the places pings come from,
    /// so they are kept from batch to batch, one per worker at a time.
    positions: Kept<PositionCache>,
    /// The lat/lon raster of the run, whose tiles all workers share.
    raster: Arc<CellRaster>,
    /// The subscriber numbers of the last dictionary of ids (`None` for a null value,
    /// whose rows are `bad_subscriber`).
    dictionary_numbers: DictionaryNumbers<Option<u32>>,
    /// The country numbers of the last dictionary of codes.
    country_numbers: DictionaryNumbers<u16>,
    /// The given period's bounds in epoch seconds, `[from, until)`.
    window: Option<(i64, i64)>,
    /// The first and last instant of the decoded pings.
    span: Option<(i64, i64)>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Raw ids are held until `settle`: show counts only.
        f.debug_struct("Reader")
            .field("pings_read", &self.report.pings_read)
            .field("subscribers", &self.subscribers.opted_out.len())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader for a study's pings.
    pub(crate) fn new(study: &Study) -> Self {
        let (geography, config) = (study.geography(), study.config());
        let calendar = study.calendar().clone();
        let window = config
            .period
            .map(|p| (calendar.start_of(p.start), calendar.start_of(p.end)));
        Self {
            study: study.clone(),
            resolution: geography.resolution(),
            calendar,
            kind: None,
            opt_out: OptOutSet::default(),
            subscribers: Subscribers::default(),
            countries: Countries::default(),
            report: QualityReport {
                version: crate::VERSION,
                tz: config.tz.clone(),
                resolution: u8::from(geography.resolution()),
                ..QualityReport::default()
            },
            positions: Kept::default(),
            raster: Arc::new(CellRaster::new(
                geography.resolution(),
                DEFAULT_RASTER_BUDGET,
            )),
            dictionary_numbers: DictionaryNumbers::default(),
            country_numbers: DictionaryNumbers::default(),
            window,
            span: None,
        }
    }

    /// The quality report so far.
    pub(crate) fn report(&self) -> &QualityReport {
        &self.report
    }

    /// Decodes, cleans and locates one batch on `threads`, appending the kept rows to
    /// `into`. `capacity` is the rows `into` may hold before the run moves them on: the
    /// buffer is sized once for them, so that it never doubles past its share.
    ///
    /// # Errors
    /// [`Error::Input`] naming the column for a missing column, an unsupported type, or
    /// subscriber ids of another kind than in earlier batches; [`Error::Config`] naming
    /// `opt_out` when the opt-out ids are not of the subscriber column's kind.
    pub(crate) fn read(
        &mut self,
        batch: &RecordBatch,
        threads: &Threads,
        into: &mut Decoded,
        capacity: Option<usize>,
    ) -> Result<()> {
        let study = self.study.clone();
        let columns = study.columns();
        let subscriber_array = crate::columns::column(batch, &columns.subscriber, "")?;
        let (subscribers, kind) = SubscriberColumn::new(subscriber_array, &columns.subscriber)?;
        // A column of Arrow's Null type (what writers give a column without a single
        // value) says nothing of the ids' kind: all its rows are bad_subscriber, and the
        // kind (with it, how opt-out ids are read) is left to a batch with ids.
        if !matches!(subscriber_array.data_type(), arrow_schema::DataType::Null) {
            self.settle_kind(kind, &columns.subscriber)?;
        }
        let ts = TsColumn::new(crate::columns::column(batch, &columns.ts, "")?, &columns.ts)?;
        let positions = PositionColumns::new(batch, columns)?;
        let country = country_column(batch, &columns.country)?;

        let rows = batch.num_rows();
        self.report.pings_read += rows as u64;
        let numbers = self.subscriber_numbers(&subscribers);
        let mut span = self.span;
        into.reserve_for(rows, capacity);
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
        let report = &mut self.report;
        let cleaning = Cleaning {
            threads,
            caches: &self.positions,
            raster: &self.raster,
            resolution: self.resolution,
            positions: &positions,
            ts: &ts,
            calendar: &self.calendar,
            window: self.window,
            numbers: &numbers,
            opted_out,
        };
        cleaning.in_chunks(|kept| {
            report.dropped += kept.dropped;
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
                        if let Some(number) = table[key] {
                            number
                        } else {
                            let values = arrow_array::cast::AsArray::as_string::<i32>(values);
                            let number = if values.is_null(key) {
                                NO_COUNTRY
                            } else {
                                countries.number(values.value(key), &columns.country)?
                            };
                            table[key] = Some(number);
                            number
                        }
                    }
                    _ => NO_COUNTRY,
                };
                into.country.push(country);
            }
            into.subscriber.extend_from_slice(&kept.subscriber);
            into.ts.extend_from_slice(&kept.ts);
            into.cell.extend_from_slice(&kept.cell);
            Ok(())
        })?;
        self.span = span;
        Ok(())
    }

    /// Takes the subscriber ids' kind from the first batch with ids, and with it how
    /// opt-out ids are read; later batches must hold ids of the same kind.
    fn settle_kind(&mut self, kind: SubscriberKind, column: &str) -> Result<()> {
        match self.kind {
            None => {
                let config = self.study.config();
                self.opt_out = config.opt_out.matcher(kind, &config.key)?;
                self.kind = Some(kind);
                self.report.subscriber_kind = Some(kind);
                Ok(())
            }
            Some(known) if known != kind => Err(Error::input(
                column,
                format!("holds {kind:?} ids in one batch and {known:?} ids in another"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Each row's subscriber number, `None` for a bad subscriber.
    fn subscriber_numbers(&mut self, subscribers: &SubscriberColumn) -> Vec<Option<u32>> {
        let mut numbers = Vec::new();
        if let SubscriberColumn::Dictionary {
            array,
            keys,
            values,
        } = subscribers
        {
            numbers.reserve(keys.len());
            let table = self.dictionary_numbers.of(values);
            let nulls = array.nulls();
            for (row, &key) in keys.iter().enumerate() {
                if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                    numbers.push(None);
                    continue;
                }
                let number = *table[key].get_or_insert_with(|| {
                    columns::dictionary_value(values, key)
                        .map(|b| self.subscribers.number(b, &self.opt_out))
                });
                numbers.push(number);
            }
        } else {
            subscribers.for_each(|_, bytes| {
                numbers.push(bytes.map(|b| self.subscribers.number(b, &self.opt_out)));
            });
        }
        numbers
    }

    /// Settles what spans subscribers once the whole input is read: the period and its
    /// label, pseudonyms, collisions and country numbers, with the report's run-wide
    /// fields. Every raw id and every cache is dropped here. The [`Finishing`] is `None`
    /// when there is no period (none given and no valid ping).
    ///
    /// # Errors
    /// [`Error::Config`] naming `key` or `period_label` if they cannot be used.
    pub(crate) fn settle(self) -> Result<(Option<Finishing>, QualityReport)> {
        let Self {
            study,
            calendar,
            mut subscribers,
            countries,
            mut report,
            span,
            ..
        } = self;
        let config = study.config();
        report.opt_out.pings = report.dropped.opt_out;
        report.opt_out.subscribers = subscribers.opted_out.iter().filter(|&&o| o).count() as u64;
        let period = config.period.or_else(|| period_covering(&calendar, span));
        let Some(period) = period else {
            return Ok((None, report));
        };
        let label = config
            .period_label
            .clone()
            .unwrap_or_else(|| period.default_label());

        // Pseudonymize each subscriber with a kept ping once; the raw ids are dropped
        // as they are used.
        let pseudonymizer = Pseudonymizer::new(&config.key, &label)?;
        let has_row = std::mem::take(&mut subscribers.has_row);
        let mut device_of = vec![0_u64; has_row.len()];
        for (id, number) in subscribers.take_ids() {
            if has_row[number as usize] {
                device_of[number as usize] = pseudonymizer.device(id.bytes());
            }
        }
        report.period = Some(period);
        report.period_label = Some(label.clone());
        let finishing = Finishing::new(period, label, device_of, &has_row, &countries.codes);
        report.pseudonym_collisions = finishing.colliding.len() as u64;
        Ok((Some(finishing), report))
    }

    /// The first and last instant of the pings kept so far.
    pub(crate) fn span(&self) -> Option<(i64, i64)> {
        self.span
    }

    /// Gives every subscriber its pseudonym as it is first seen (see [`Named`]): the
    /// period label must be known before the input is read.
    pub(crate) fn name_subscribers(&mut self, named: Named) {
        self.subscribers.named = Some(named);
    }

    /// The pseudonyms given so far, when subscribers are named as they are seen.
    pub(crate) fn named(&self) -> Option<&Named> {
        self.subscribers.named.as_ref()
    }

    /// The names of the input's columns.
    pub(crate) fn columns(&self) -> &PingColumns {
        self.study.columns()
    }

    /// The country codes by number (number 0 is none).
    pub(crate) fn country_codes(&self) -> &[String] {
        &self.countries.codes
    }
}

/// The period of the local dates from the first instant of `span` to its last (§1.4:
/// the default period is the data's); `None` without a span.
pub(crate) fn period_covering(calendar: &Calendar, span: Option<(i64, i64)>) -> Option<Period> {
    let (first, last) = span?;
    let start = calendar.date_of(first);
    let end = calendar.date_of(last).tomorrow().ok()?;
    Some(Period { start, end })
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
/// use crowdtally::{pseudonymize_column, Key};
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
    fn a_reader_in_progress_shows_no_raw_id() {
        let config = crate::Config::new(crate::Key::new(b"a secret of 16+ bytes".to_vec()));
        let study = Study::new(geography(), config).unwrap();
        let mut reader = Reader::new(&study);
        let mut decoded = Decoded::default();
        reader
            .read(&pings(), &Threads::Calling, &mut decoded, None)
            .unwrap();
        let shown = format!("{reader:?}");
        assert!(!shown.contains("206010000000001"), "{shown}");
        assert!(!shown.contains("a secret"), "{shown}");
        assert!(shown.contains("pings_read: 3"), "{shown}");
    }
}
