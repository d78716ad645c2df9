//! The map side of a distributed run: raw pings in, pseudonymous pings out, one part of
//! the input at a time, on any worker. Raw subscriber ids stop here.

use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::plan::Plan;
use crate::error::{Error, Result};
use crate::geo::Geography;
use crate::ingest::decoded::Decoded;
use crate::ingest::{Named, Reader, pseudonymous_schema};
use crate::privacy::hex;
use crate::pseudonym::{Key, Pseudonymizer};
use crate::report::DropReason;
use crate::workers::Threads;

/// The schema of a scan's result: the first and last instant of the valid pings of a
/// part of the input (null when it has none).
#[must_use]
pub fn span_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("first", DataType::Int64, true),
        Field::new("last", DataType::Int64, true),
    ]))
}

/// The first pass when no period is given: reads a part of the input and finds the span
/// of its valid pings (those that pass every rule of §2 but de-duplication), whose
/// merge over all parts gives the period (§1.4). Keeps nothing but the span.
pub struct Scanner {
    reader: Reader,
    threads: Threads,
    decoded: Decoded,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("span", &self.reader.span())
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// A scanner of the pings of `plan` (which must need a scan), with `key` (the
    /// driver's: opt-outs are recognised by their keyed digests) on `threads` threads
    /// (0: every core).
    ///
    /// # Errors
    /// [`Error::Config`] naming `key` when it is not the plan's, `period` when the plan
    /// needs no scan, or `threads`.
    pub fn new(
        plan: &Plan,
        geography: impl Into<Arc<Geography>>,
        key: Key,
        threads: usize,
    ) -> Result<Self> {
        if !plan.needs_scan() {
            return Err(Error::config(
                "period",
                "is known to the plan: there is nothing to scan for",
            ));
        }
        let study = plan.worker_study(geography, key)?;
        Ok(Self {
            reader: Reader::new(&study),
            threads: Threads::new(threads)?,
            decoded: Decoded::default(),
        })
    }

    /// Reads one batch of raw pings.
    ///
    /// # Errors
    /// As [`crate::Run::push`].
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.reader
            .read(batch, &self.threads, &mut self.decoded, None)?;
        self.decoded.clear();
        Ok(())
    }

    /// The span of the valid pings read.
    #[must_use]
    pub fn span(&self) -> Option<(i64, i64)> {
        self.reader.span()
    }

    /// The span as a one-row batch of [`span_schema`].
    ///
    /// # Errors
    /// None in practice: the batch is built to its schema.
    pub fn span_batch(&self) -> Result<RecordBatch> {
        let span = self.span();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![span.map(|s| s.0)])),
            Arc::new(Int64Array::from(vec![span.map(|s| s.1)])),
        ];
        Ok(RecordBatch::try_new(span_schema(), columns)?)
    }
}

/// The map side of a distributed run: reads a part of the raw pings as a run does
/// (cleaning, opt-out, location; §2) and gives each batch's kept pings pseudonymized
/// ([`crate::ingest::pseudonymous_schema`]): the pseudonym (§3) and its tag, time, cell
/// and country, and no raw id. [`Mapper::finish`] gives the part's counts of the quality
/// report as counter rows of the same schema, which travel with the pings.
pub struct Mapper {
    reader: Reader,
    threads: Threads,
    decoded: Decoded,
    scanned: bool,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl Mapper {
    /// A mapper of the pings of `plan` with `key` (the driver's) on `threads` threads
    /// (0: every core).
    ///
    /// # Errors
    /// [`Error::Config`] naming `key` when it is not the plan's, `period` when the plan
    /// still needs its scan, or `threads`.
    pub fn new(
        plan: &Plan,
        geography: impl Into<Arc<Geography>>,
        key: Key,
        threads: usize,
    ) -> Result<Self> {
        if plan.needs_scan() {
            return Err(Error::config(
                "period",
                "is not known yet: scan the input and give the plan its span first",
            ));
        }
        let study = plan.worker_study(geography, key.clone())?;
        let mut reader = Reader::new(&study);
        if let Some(label) = plan.label() {
            reader.name_subscribers(Named::new(Pseudonymizer::new(&key, label)?, key));
        }
        Ok(Self {
            reader,
            threads: Threads::new(threads)?,
            decoded: Decoded::default(),
            scanned: plan.scanned(),
        })
    }

    /// Reads one batch of raw pings and gives its kept pings, pseudonymized.
    ///
    /// # Errors
    /// As [`crate::Run::push`]; [`Error::Input`] naming the subscriber column when the
    /// input holds valid pings that its scan did not see (it changed in between).
    pub fn map(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        self.reader
            .read(batch, &self.threads, &mut self.decoded, None)?;
        let rows = self.decoded.len();
        let Some(named) = self.reader.named() else {
            self.decoded.clear();
            return if rows == 0 {
                Ok(RecordBatch::new_empty(pseudonymous_schema()))
            } else {
                Err(self.changed())
            };
        };
        let codes = self.reader.country_codes();
        let mut device = Int64Builder::with_capacity(rows);
        let mut tag = Int64Builder::with_capacity(rows);
        let mut country = StringBuilder::new();
        for row in 0..rows {
            let (d, t) = named.device_tag[self.decoded.subscriber[row] as usize];
            device.append_value(d as i64);
            tag.append_value(t as i64);
            match self.decoded.country[row] {
                crate::ingest::NO_COUNTRY => country.append_null(),
                number => country.append_value(&codes[number as usize]),
            }
        }
        let ts: Int64Array = (0..rows)
            .map(|row| Some(self.decoded.ts.get(row)))
            .collect();
        let cell: Int64Array = self.decoded.cell.iter().map(|&c| Some(c as i64)).collect();
        let nulls: ArrayRef = Arc::new(arrow_array::new_null_array(&DataType::Utf8, rows));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(device.finish()),
            Arc::new(tag.finish()),
            Arc::new(ts),
            Arc::new(cell),
            Arc::new(country.finish()),
            nulls,
            Arc::new(Int64Array::new_null(rows)),
        ];
        self.decoded.clear();
        Ok(RecordBatch::try_new(pseudonymous_schema(), columns)?)
    }

    /// The part's counts, as counter rows: rows read, drops by reason (de-duplication
    /// aside, which needs whole devices), the opted-out subscribers seen (as keyed
    /// digests, so that the driver counts distinct ones) and the kind of ids read.
    ///
    /// # Errors
    /// [`Error::Input`] naming the subscriber column when the input holds valid pings
    /// outside the period its scan found (it changed in between).
    pub fn finish(self) -> Result<RecordBatch> {
        let report = self.reader.report();
        if self.scanned && report.dropped.outside_period > 0 {
            return Err(self.changed());
        }
        let mut counters: Vec<(String, i64)> =
            vec![("pings_read".into(), report.pings_read as i64)];
        for reason in DropReason::ALL {
            if reason != DropReason::Duplicate {
                let name = format!("dropped.{}", reason.name());
                counters.push((name, report.dropped.get(reason) as i64));
            }
        }
        if let Some(named) = self.reader.named() {
            for digest in &named.opted_out_digests {
                counters.push((format!("opt_out_seen:{}", hex(digest)), 1));
            }
        }
        if let Some(kind) = report.subscriber_kind {
            counters.push((format!("kind:{}", kind_name(kind)), 1));
        }
        counter_batch(&counters)
    }

    fn changed(&self) -> Error {
        Error::input(
            &self.reader.columns().subscriber,
            "holds valid pings outside the period its scan found: the input changed between \
             the scan and the map",
        )
    }
}

/// The name of a kind of subscriber ids in counter names.
pub(crate) fn kind_name(kind: crate::config::SubscriberKind) -> &'static str {
    match kind {
        crate::config::SubscriberKind::Text => "text",
        crate::config::SubscriberKind::Binary => "binary",
        crate::config::SubscriberKind::Integer => "integer",
    }
}

/// Counter rows of [`pseudonymous_schema`].
fn counter_batch(counters: &[(String, i64)]) -> Result<RecordBatch> {
    let rows = counters.len();
    let null_int = || -> ArrayRef { Arc::new(Int64Array::new_null(rows)) };
    let columns: Vec<ArrayRef> = vec![
        null_int(),
        null_int(),
        null_int(),
        null_int(),
        Arc::new(arrow_array::new_null_array(&DataType::Utf8, rows)),
        Arc::new(arrow_array::StringArray::from_iter_values(
            counters.iter().map(|(name, _)| name.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            counters.iter().map(|&(_, v)| v),
        )),
    ];
    Ok(RecordBatch::try_new(pseudonymous_schema(), columns)?)
}
