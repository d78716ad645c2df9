//! Reading pings that were already cleaned, located and pseudonymized elsewhere (the
//! mapper of a distributed run): rows of whole devices, each with its pseudonym and its
//! tag (the rest of the same HMAC, which tells apart subscribers whose pseudonyms
//! collide), plus the counter rows of the quality report that travel with them.
//!
//! What a [`PseudonymousReader`] settles is what [`super::Reader::settle`] gives for the
//! same subscribers: the same devices, collisions and country order, so the rest of the
//! run cannot tell where its pings came from.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use super::decoded::Decoded;
use super::finish::Finishing;
use super::ids::Countries;
use crate::config::Period;
use crate::error::{Error, Result};
use crate::report::QualityReport;
use crate::study::Study;

/// The columns of pseudonymous pings, in order.
pub const PSEUDONYMOUS_COLUMNS: [&str; 7] =
    ["device", "tag", "ts", "cell", "country", "counter", "value"];

/// The schema of pseudonymous pings: a located ping has `device`, `tag` (both 64-bit
/// digests as signed integers, as engines without unsigned types hold them), `ts` (epoch
/// seconds), `cell` (the H3 index as a signed integer) and `country` (or null); a counter
/// row has only `counter` and `value`.
#[must_use]
pub fn pseudonymous_schema() -> SchemaRef {
    let field = |name: &str, data_type: DataType| Field::new(name, data_type, true);
    Arc::new(Schema::new(vec![
        field("device", DataType::Int64),
        field("tag", DataType::Int64),
        field("ts", DataType::Int64),
        field("cell", DataType::Int64),
        field("country", DataType::Utf8),
        field("counter", DataType::Utf8),
        field("value", DataType::Int64),
    ]))
}

/// Reads pseudonymous pings batch by batch into decoded rows, numbering each distinct
/// (device, tag) as one subscriber.
pub(crate) struct PseudonymousReader {
    /// The period and its label; `None` when there is no period (no valid ping), and
    /// then no located ping either.
    period: Option<(Period, String)>,
    /// The period's bounds in epoch seconds, `[from, until)`.
    window: (i64, i64),
    resolution: Resolution,
    number_of: FxHashMap<(u64, u64), u32>,
    device_of: Vec<u64>,
    countries: Countries,
    report: QualityReport,
    /// The counter rows read, summed by name.
    counters: BTreeMap<String, i64>,
}

impl std::fmt::Debug for PseudonymousReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PseudonymousReader")
            .field("pings_read", &self.report.pings_read)
            .field("subscribers", &self.device_of.len())
            .finish_non_exhaustive()
    }
}

/// A column of 64-bit values, signed or unsigned, read as unsigned bits.
fn bits(batch: &RecordBatch, name: &str) -> Result<Option<ArrayRef>> {
    let Some(array) = batch.column_by_name(name) else {
        return Err(Error::input(name, "is missing from the pseudonymous pings"));
    };
    match array.data_type() {
        DataType::Int64 | DataType::UInt64 => Ok(Some(Arc::clone(array))),
        DataType::Null => Ok(None),
        other => Err(Error::input(
            name,
            format!("must be a 64-bit integer column, got {other}"),
        )),
    }
}

/// Row `row` of a 64-bit column as unsigned bits (`None`: null).
fn value_at(array: Option<&ArrayRef>, row: usize) -> Option<u64> {
    let array = array?;
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row) as u64,
        _ => array.as_primitive::<UInt64Type>().value(row),
    })
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<Option<ArrayRef>> {
    let Some(array) = batch.column_by_name(name) else {
        return Err(Error::input(name, "is missing from the pseudonymous pings"));
    };
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Ok(Some(arrow_cast::cast(array, &DataType::Utf8)?))
        }
        DataType::Null => Ok(None),
        other => Err(Error::input(
            name,
            format!("must be a text column, got {other}"),
        )),
    }
}

impl PseudonymousReader {
    /// A reader for the pseudonymous pings of `study` in `period` with its label.
    pub(crate) fn new(study: &Study, period: Option<(Period, String)>) -> Self {
        let config = study.config();
        let calendar = study.calendar();
        let window = period.as_ref().map_or((0, 0), |(period, _)| {
            (
                calendar.start_of(period.start),
                calendar.start_of(period.end),
            )
        });
        Self {
            period,
            window,
            resolution: study.geography().resolution(),
            number_of: FxHashMap::default(),
            device_of: Vec::new(),
            countries: Countries::default(),
            report: QualityReport {
                version: crate::VERSION,
                tz: config.tz.clone(),
                resolution: u8::from(study.geography().resolution()),
                ..QualityReport::default()
            },
            counters: BTreeMap::new(),
        }
    }

    /// The quality report so far: `pings_read` counts the located pings read.
    pub(crate) fn report(&self) -> &QualityReport {
        &self.report
    }

    /// The counter rows read, summed by name, taken out.
    pub(crate) fn take_counters(&mut self) -> BTreeMap<String, i64> {
        std::mem::take(&mut self.counters)
    }

    /// Reads one batch, appending its located pings to `into` (sized once for
    /// `capacity` rows, as [`super::Reader::read`] does) and summing its counter rows.
    ///
    /// # Errors
    /// [`Error::Input`] naming the column for a missing or mistyped column, a located
    /// ping without a device, tag, time or cell, a time outside the calendar's range, or
    /// a cell that is not an H3 cell at the geography's resolution.
    pub(crate) fn read(
        &mut self,
        batch: &RecordBatch,
        into: &mut Decoded,
        capacity: Option<usize>,
    ) -> Result<()> {
        let device = bits(batch, "device")?;
        let tag = bits(batch, "tag")?;
        let ts = bits(batch, "ts")?;
        let cell = bits(batch, "cell")?;
        let value = bits(batch, "value")?;
        let country = text_column(batch, "country")?;
        let counter = text_column(batch, "counter")?;
        let rows = batch.num_rows();
        into.reserve_for(rows, capacity);
        let counter = counter.as_ref().map(AsArray::as_string::<i32>);
        let country = country.as_ref().map(AsArray::as_string::<i32>);
        for row in 0..rows {
            if let Some(name) = counter.filter(|c| c.is_valid(row)).map(|c| c.value(row)) {
                let value = value_at(value.as_ref(), row).unwrap_or(0) as i64;
                *self.counters.entry(name.to_owned()).or_default() += value;
                continue;
            }
            let field = |array: &Option<ArrayRef>, name: &str| {
                value_at(array.as_ref(), row).ok_or_else(|| {
                    Error::input(name, format!("is null in pseudonymous ping #{row}"))
                })
            };
            let (device, tag) = (field(&device, "device")?, field(&tag, "tag")?);
            let instant = field(&ts, "ts")? as i64;
            if self.period.is_none() || !(self.window.0..self.window.1).contains(&instant) {
                return Err(Error::input(
                    "ts",
                    format!("is outside the period in pseudonymous ping #{row}"),
                ));
            }
            let cell = field(&cell, "cell")?;
            if !CellIndex::try_from(cell).is_ok_and(|c| c.resolution() == self.resolution) {
                return Err(Error::input(
                    "cell",
                    format!(
                        "is not an H3 cell at resolution {} in pseudonymous ping #{row}",
                        u8::from(self.resolution)
                    ),
                ));
            }
            let country = match country.filter(|c| c.is_valid(row)) {
                Some(codes) => self.countries.number(codes.value(row), "country")?,
                None => super::NO_COUNTRY,
            };
            let next = self.device_of.len() as u32;
            let number = *self.number_of.entry((device, tag)).or_insert(next);
            if number == next {
                self.device_of.push(device);
            }
            into.subscriber.push(number);
            into.ts.push(instant);
            into.cell.push(cell);
            into.country.push(country);
            self.report.pings_read += 1;
        }
        Ok(())
    }

    /// What finishing needs (`None` without a period), and the report's part of these
    /// pings: collisions are the subscribers (distinct device and tag) that share a
    /// device with another.
    pub(crate) fn settle(self) -> (Option<Finishing>, QualityReport) {
        let Self {
            period,
            device_of,
            countries,
            mut report,
            ..
        } = self;
        let Some((period, label)) = period else {
            return (None, report);
        };
        let present = vec![true; device_of.len()];
        report.period = Some(period);
        report.period_label = Some(label.clone());
        let finishing = Finishing::new(period, label, device_of, &present, &countries.codes);
        report.pseudonym_collisions = finishing.colliding.len() as u64;
        (Some(finishing), report)
    }
}
