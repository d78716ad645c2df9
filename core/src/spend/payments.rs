//! Reading card-payment aggregates as card schemes deliver them: one row per merchant,
//! day (or time), cardholder origin and shop category, with an amount and a number of
//! transactions. Bad rows are counted by reason and never stop a run; a column that
//! cannot be read at all is an error naming it.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Date64Type, Decimal128Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use h3o::CellIndex;
use jiff::civil::Date;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::aggregate::{BucketKind, Buckets};
use crate::calendar::{Calendar, civil_from_days};
use crate::columns::{cell_numbers, column, is_integer, is_text, plain, texts};
use crate::error::{Error, Result};
use crate::geo::{Geography, RegionIndex};
use crate::ingest::{SubscriberColumn, TsColumn};

/// The payments table's name in errors.
pub(super) const TABLE: &str = "payments";

/// Why a payment row was dropped, in the order the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDrop {
    /// No merchant id.
    MissingMerchant,
    /// The merchant's cell is null, not an H3 cell, or coarser than the analysis
    /// resolution.
    BadLocation,
    /// A zone id the geography does not know.
    UnknownZone,
    /// No day or time, or one that cannot be read.
    BadTime,
    /// A day or time outside the release's period.
    OutsidePeriod,
    /// No shop category.
    MissingCategory,
    /// An origin that is neither a region of the geography nor `country:XX`.
    UnknownOrigin,
    /// No amount, or a negative one (refunds are not netted).
    BadAmount,
    /// No number of transactions, or a negative one.
    BadTransactions,
}

impl PaymentDrop {
    /// Every reason, in the order the checks run.
    pub const ALL: [Self; 9] = [
        Self::MissingMerchant,
        Self::BadLocation,
        Self::UnknownZone,
        Self::BadTime,
        Self::OutsidePeriod,
        Self::MissingCategory,
        Self::UnknownOrigin,
        Self::BadAmount,
        Self::BadTransactions,
    ];

    /// The reason's name in the report.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingMerchant => "missing_merchant",
            Self::BadLocation => "bad_location",
            Self::UnknownZone => "unknown_zone",
            Self::BadTime => "bad_time",
            Self::OutsidePeriod => "outside_period",
            Self::MissingCategory => "missing_category",
            Self::UnknownOrigin => "unknown_origin",
            Self::BadAmount => "bad_amount",
            Self::BadTransactions => "bad_transactions",
        }
    }
}

/// A cardholder's origin at the release's origin level.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum PaymentOrigin {
    /// A region at the release level (or a leaf with no ancestor there).
    Region(RegionIndex),
    /// `country:XX`.
    Country(String),
    /// No origin given.
    Unknown,
    /// A region above the release level: it names no release row, only the totals.
    Coarser,
}

/// One payment's keys once read: the merchant (an internal number), the zones of its
/// place, the bucket, the origin and the shop category (an index into the categories).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PaymentKey {
    pub merchant: u32,
    pub bucket: u32,
    pub origin: PaymentOrigin,
    pub category: u32,
}

/// The amount and transactions of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Amount {
    pub cents: i64,
    pub transactions: u64,
}

/// Payments read so far: summed by zone and key; merchants by their id's bytes.
#[derive(Debug, Default)]
pub(super) struct Payments {
    /// Per zone index, the amounts by key.
    pub by_zone: BTreeMap<u32, FxHashMap<PaymentKey, Amount>>,
    /// Shop categories, by index.
    pub categories: Vec<String>,
    category_index: FxHashMap<String, u32>,
    merchant_index: FxHashMap<Vec<u8>, u32>,
    /// Rows read, kept, dropped by reason, and kept rows whose place is in no zone.
    pub counts: PaymentCounts,
}

/// What reading the payments did (the report's `payments`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaymentCounts {
    /// Rows read.
    pub rows_read: u64,
    /// Rows kept: in a zone, in the period, with every field valid.
    pub rows_kept: u64,
    /// Rows dropped, by reason (every reason listed, zero included).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Valid rows of merchants outside every zone (not an error: they are simply not in
    /// any release row).
    pub outside_zones: u64,
    /// Distinct merchants in the kept rows.
    pub merchants: u64,
    /// Kept rows whose origin is above the release's origin level: counted in totals
    /// only.
    pub origin_coarser_than_level: u64,
}

/// What the reader needs of the release and the study.
pub(super) struct Reader<'a> {
    pub geography: &'a Geography,
    pub calendar: &'a Calendar,
    pub buckets: &'a Buckets,
    pub bucket_kind: BucketKind,
    /// The period's first instant and its end (exclusive).
    pub period: (i64, i64),
    /// The release's origin level (`None`: the leaves).
    pub level: Option<&'a str>,
    pub zone_index: FxHashMap<&'a str, u32>,
    /// The category zone of each zone, if it has one.
    pub category_zone: Vec<Option<u32>>,
}

/// The place column of a batch.
enum Place {
    Cell(Vec<Option<std::result::Result<u64, ()>>>),
    Zone(Vec<Option<String>>),
}

/// The time column of a batch.
enum When {
    Day(ArrayRef),
    Ts(TsColumn),
}

/// The columns of one batch, decoded.
struct BatchColumns {
    merchants: Vec<Option<u32>>,
    place: Place,
    when: When,
    categories: Vec<Option<String>>,
    origins: Vec<Option<String>>,
    amounts: Vec<Option<i64>>,
    transactions: Vec<Option<i64>>,
}

/// A valid payment row's keys and amounts, before its category has a number.
struct ValidRow<'c> {
    merchant: u32,
    bucket: u32,
    category: &'c str,
    origin: PaymentOrigin,
    cents: i64,
    transactions: u64,
}

impl Reader<'_> {
    /// Reads one batch into `payments`.
    pub(super) fn read(&self, batch: &RecordBatch, payments: &mut Payments) -> Result<()> {
        let columns = self.columns(batch, payments)?;
        let mut resolver = self.calendar.resolver();
        let mut zones: Vec<u32> = Vec::new();
        payments.counts.rows_read += batch.num_rows() as u64;
        for row in 0..batch.num_rows() {
            zones.clear();
            let valid = match self.check(&columns, row, &mut resolver, &mut zones) {
                Ok(valid) => valid,
                Err(reason) => {
                    *payments.counts.dropped.entry(reason.name()).or_default() += 1;
                    continue;
                }
            };
            payments.counts.rows_kept += 1;
            if zones.is_empty() {
                payments.counts.outside_zones += 1;
                continue;
            }
            if valid.origin == PaymentOrigin::Coarser {
                payments.counts.origin_coarser_than_level += 1;
            }
            let key = PaymentKey {
                merchant: valid.merchant,
                bucket: valid.bucket,
                origin: valid.origin,
                category: payments.category(valid.category),
            };
            for &zone in &zones {
                let sum = payments
                    .by_zone
                    .entry(zone)
                    .or_default()
                    .entry(key.clone())
                    .or_default();
                sum.cents = sum.cents.saturating_add(valid.cents);
                sum.transactions = sum.transactions.saturating_add(valid.transactions);
            }
        }
        Ok(())
    }

    /// The columns of a batch; merchants numbered in `payments`.
    fn columns(&self, batch: &RecordBatch, payments: &mut Payments) -> Result<BatchColumns> {
        let n = batch.num_rows();
        let merchant_array = column(batch, "merchant_id", TABLE)?;
        let (merchant_ids, _) = SubscriberColumn::new(merchant_array, "payments.merchant_id")?;
        let place = match (
            batch.column_by_name("zone"),
            batch.column_by_name("merchant_cell"),
        ) {
            (Some(zone), _) => Place::Zone(texts(zone, "payments.zone")?),
            (None, Some(cell)) => Place::Cell(cell_numbers(cell, "payments.merchant_cell")?),
            (None, None) => {
                return Err(Error::input(
                    "payments.merchant_cell",
                    "is missing: give each merchant's place as `merchant_cell` (an H3 cell) \
                     or `zone` (a zone id)",
                ));
            }
        };
        let when = match (batch.column_by_name("ts"), batch.column_by_name("day")) {
            (Some(ts), _) => When::Ts(TsColumn::new(ts, "payments.ts")?),
            (None, Some(_)) if self.bucket_kind == BucketKind::Hour => {
                return Err(Error::input(
                    "payments.day",
                    "cannot be joined to an hourly release: give payment times as `ts`",
                ));
            }
            (None, Some(day)) => When::Day(day_column(day)?),
            (None, None) => {
                return Err(Error::input(
                    "payments.day",
                    "is missing: give the local date of each payment as `day` (or its time \
                     as `ts`)",
                ));
            }
        };
        let mut merchants: Vec<Option<u32>> = vec![None; n];
        merchant_ids.for_each(|row, bytes| {
            merchants[row] = bytes.map(|bytes| {
                let next = payments.merchant_index.len() as u32;
                *payments
                    .merchant_index
                    .entry(bytes.to_vec())
                    .or_insert(next)
            });
        });
        Ok(BatchColumns {
            merchants,
            place,
            when,
            categories: texts(column(batch, "category", TABLE)?, "payments.category")?,
            origins: match batch.column_by_name("origin") {
                Some(origin) => texts(origin, "payments.origin")?,
                None => vec![None; n],
            },
            amounts: cents(column(batch, "amount", TABLE)?)?,
            transactions: crate::columns::integers(
                column(batch, "transactions", TABLE)?,
                "payments.transactions",
            )?,
        })
    }

    /// Row `row` checked in the order of [`PaymentDrop::ALL`], with its zones in `zones`.
    fn check<'c>(
        &self,
        columns: &'c BatchColumns,
        row: usize,
        resolver: &mut crate::calendar::LocalResolver<'_>,
        zones: &mut Vec<u32>,
    ) -> std::result::Result<ValidRow<'c>, PaymentDrop> {
        let merchant = columns.merchants[row].ok_or(PaymentDrop::MissingMerchant)?;
        match &columns.place {
            Place::Cell(cells) => {
                let cell = cells[row]
                    .and_then(std::result::Result::ok)
                    .and_then(|raw| CellIndex::try_from(raw).ok())
                    .and_then(|cell| cell.parent(self.geography.resolution()))
                    .ok_or(PaymentDrop::BadLocation)?;
                let set = self.geography.zone_set_of(cell);
                zones.extend_from_slice(self.geography.zone_set(set));
            }
            Place::Zone(ids) => {
                let zone = ids[row]
                    .as_deref()
                    .and_then(|id| self.zone_index.get(id).copied())
                    .ok_or(PaymentDrop::UnknownZone)?;
                zones.push(zone);
                zones.extend(self.category_zone[zone as usize]);
            }
        }
        let instant = match &columns.when {
            When::Ts(ts) => ts.instant(row, resolver),
            When::Day(days) => day_of(days, row).map(|day| self.calendar.start_of(day)),
        }
        .ok_or(PaymentDrop::BadTime)?;
        let bucket = (self.period.0..self.period.1)
            .contains(&instant)
            .then(|| self.buckets.bucket_of(instant))
            .flatten()
            .ok_or(PaymentDrop::OutsidePeriod)?;
        let category = columns.categories[row]
            .as_deref()
            .ok_or(PaymentDrop::MissingCategory)?;
        let origin = self
            .origin(columns.origins[row].as_deref())
            .ok_or(PaymentDrop::UnknownOrigin)?;
        let cents = columns.amounts[row]
            .filter(|&cents| cents >= 0)
            .ok_or(PaymentDrop::BadAmount)?;
        let transactions = columns.transactions[row]
            .and_then(|t| u64::try_from(t).ok())
            .ok_or(PaymentDrop::BadTransactions)?;
        Ok(ValidRow {
            merchant,
            bucket: bucket as u32,
            category,
            origin,
            cents,
            transactions,
        })
    }

    /// A payment's origin at the release level: `None` when it is no region of the
    /// geography and no `country:XX`.
    fn origin(&self, origin: Option<&str>) -> Option<PaymentOrigin> {
        let Some(origin) = origin else {
            return Some(PaymentOrigin::Unknown);
        };
        if let Some(code) = origin.strip_prefix("country:") {
            let valid = code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic());
            return valid
                .then(|| PaymentOrigin::Country(format!("country:{}", code.to_ascii_uppercase())));
        }
        let regions = self.geography.regions();
        let region = regions.index_of(origin)?;
        let Some(level) = self.level else {
            return Some(if regions.is_leaf(region) {
                PaymentOrigin::Region(region)
            } else {
                PaymentOrigin::Coarser
            });
        };
        if let Some(at_level) = regions
            .ancestors(region)
            .find(|&r| regions.level(r) == level)
        {
            return Some(PaymentOrigin::Region(at_level));
        }
        // As for devices (§6): a leaf with no ancestor at the level stays itself.
        Some(if regions.is_leaf(region) {
            PaymentOrigin::Region(region)
        } else {
            PaymentOrigin::Coarser
        })
    }
}

impl Payments {
    /// A reader's empty payments, every drop reason listed.
    pub(super) fn new() -> Self {
        let mut payments = Self::default();
        for reason in PaymentDrop::ALL {
            payments.counts.dropped.insert(reason.name(), 0);
        }
        payments
    }

    fn category(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.category_index.get(name) {
            return index;
        }
        let index = self.categories.len() as u32;
        self.categories.push(name.to_owned());
        self.category_index.insert(name.to_owned(), index);
        index
    }

    /// The distinct merchants of the kept rows.
    pub(super) fn merchants_kept(&self) -> u64 {
        let mut seen = rustc_hash::FxHashSet::default();
        for sums in self.by_zone.values() {
            seen.extend(sums.keys().map(|key| key.merchant));
        }
        seen.len() as u64
    }
}

/// A `day` column as Date32 (dates or `YYYY-MM-DD` text).
fn day_column(array: &ArrayRef) -> Result<ArrayRef> {
    let array = plain(array)?;
    match array.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Null => Ok(array),
        t if is_text(t) => Ok(arrow_cast::cast(&array, &DataType::Utf8)?),
        other => Err(Error::input(
            "payments.day",
            format!("must be an Arrow date or `YYYY-MM-DD` text, found Arrow type {other}"),
        )),
    }
}

/// The date of a row of a `day` column; `None` for null or unreadable.
fn day_of(array: &ArrayRef, row: usize) -> Option<Date> {
    if array.is_null(row) {
        return None;
    }
    let days = match array.data_type() {
        DataType::Date32 => i64::from(array.as_primitive::<Date32Type>().value(row)),
        DataType::Date64 => array
            .as_primitive::<Date64Type>()
            .value(row)
            .div_euclid(86_400_000),
        DataType::Utf8 => return array.as_string::<i32>().value(row).trim().parse().ok(),
        _ => return None,
    };
    let (year, month, day) = civil_from_days(days);
    Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()
}

/// An `amount` column as cents: integers are cents; decimals are currency units,
/// rounded half to even to the cent. Floating point is refused: it cannot hold cents.
fn cents(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let array = plain(array)?;
    match array.data_type() {
        t if is_integer(t) => crate::columns::integers(&array, "payments.amount"),
        DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) => {
            let scale = i32::from(*scale);
            let array = arrow_cast::cast(&array, &DataType::Decimal128(38, scale as i8))?;
            let array = array.as_primitive::<Decimal128Type>();
            Ok(array
                .iter()
                .map(|value| value.and_then(|value| decimal_cents(value, scale)))
                .collect())
        }
        DataType::Null => Ok(vec![None; array.len()]),
        other => Err(Error::input(
            "payments.amount",
            format!(
                "must be integer cents or a decimal of the currency, found Arrow type {other} \
                 (floating point cannot hold cents exactly: pyarrow \
                 pa.array(values).cast(pa.decimal128(18, 2)) or integer cents)"
            ),
        )),
    }
}

/// A decimal's value in cents, rounded half to even; `None` when it overflows.
fn decimal_cents(value: i128, scale: i32) -> Option<i64> {
    let cents = if scale <= 2 {
        value.checked_mul(10_i128.checked_pow(u32::try_from(2 - scale).ok()?)?)?
    } else {
        let divisor = 10_i128.checked_pow(u32::try_from(scale - 2).ok()?)?;
        let (quotient, remainder) = (value.div_euclid(divisor), value.rem_euclid(divisor));
        let twice = 2 * remainder;
        if twice > divisor || (twice == divisor && quotient % 2 != 0) {
            quotient + 1
        } else {
            quotient
        }
    };
    i64::try_from(cents).ok()
}

#[cfg(test)]
mod tests {
    use super::decimal_cents;

    #[test]
    fn decimals_round_half_to_even_to_the_cent() {
        assert_eq!(decimal_cents(1234, 2), Some(1234));
        assert_eq!(decimal_cents(12, 0), Some(1200));
        assert_eq!(decimal_cents(12345, 3), Some(1234));
        assert_eq!(decimal_cents(12355, 3), Some(1236));
        assert_eq!(decimal_cents(12351, 3), Some(1235));
        assert_eq!(decimal_cents(-12345, 3), Some(-1234));
        assert_eq!(decimal_cents(i128::MAX, 0), None);
    }
}
