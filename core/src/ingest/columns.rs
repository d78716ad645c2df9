//! Typed, per-batch access to the pings' columns.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt64Type,
};
use arrow_array::{
    Array, ArrayAccessor, ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array,
};
use arrow_schema::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::calendar::{LocalResolver, ParsedTimestamp, parse_timestamp};
use crate::columns::{is_integer, is_text, plain};
use crate::config::SubscriberKind;
use crate::error::{Error, Result};

/// The names of the pings' columns in the user's data (method §1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PingColumns {
    /// Raw subscriber id: text, binary or 64-bit integer.
    pub subscriber: String,
    /// Event time.
    pub ts: String,
    /// Latitude in WGS84 degrees.
    pub lat: String,
    /// Longitude in WGS84 degrees.
    pub lon: String,
    /// Position as an H3 cell (used instead of `lat`/`lon` when present).
    pub cell: String,
    /// Optional SIM home country.
    pub country: String,
}

impl Default for PingColumns {
    fn default() -> Self {
        Self {
            subscriber: "subscriber".into(),
            ts: "ts".into(),
            lat: "lat".into(),
            lon: "lon".into(),
            cell: "cell".into(),
            country: "country".into(),
        }
    }
}

/// The subscriber column of one batch.
pub(crate) enum SubscriberColumn {
    Bytes(ArrayRef),
    Signed(Int64Array),
    Unsigned(UInt64Array),
    /// Text or binary ids stored once in `values` and referred to by each row's key, as
    /// Parquet stores them: each distinct id can be looked up once, not once per row.
    Dictionary {
        /// The dictionary array itself, for its key nulls.
        array: ArrayRef,
        keys: Vec<usize>,
        values: ArrayRef,
    },
}

impl SubscriberColumn {
    pub(crate) fn new(array: &ArrayRef, name: &str) -> Result<(Self, SubscriberKind)> {
        if let DataType::Dictionary(_, value_type) = array.data_type()
            && !array.as_any_dictionary().values().is_empty()
            && is_dictionary_id_type(value_type)
        {
            let dictionary = array.as_any_dictionary();
            let kind = if is_text(value_type) {
                SubscriberKind::Text
            } else {
                SubscriberKind::Binary
            };
            return Ok((
                Self::Dictionary {
                    array: Arc::clone(array),
                    keys: dictionary.normalized_keys(),
                    values: Arc::clone(dictionary.values()),
                },
                kind,
            ));
        }
        let array = plain(array)?;
        let data_type = array.data_type().clone();
        Ok(match data_type {
            DataType::UInt64 => (
                Self::Unsigned(array.as_primitive::<UInt64Type>().clone()),
                SubscriberKind::Integer,
            ),
            t if is_integer(&t) => (
                Self::Signed(
                    arrow_cast::cast(&array, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                ),
                SubscriberKind::Integer,
            ),
            t if is_text(&t) => (Self::Bytes(array), SubscriberKind::Text),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => (Self::Bytes(array), SubscriberKind::Binary),
            DataType::Null => (Self::Bytes(array), SubscriberKind::Text),
            other => {
                return Err(Error::input(
                    name,
                    format!("must be text, binary or a 64-bit integer, found Arrow type {other}"),
                ));
            }
        })
    }

    /// Calls `visit(row, Some(bytes))` for every row with an id and `visit(row, None)` for
    /// null or negative ids.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(usize, Option<&[u8]>)) {
        #[allow(clippy::needless_pass_by_value)] // Arrow's accessors are `&Array` values already.
        fn bytes_of<'a, A: ArrayAccessor + 'a>(
            array: A,
            as_bytes: impl Fn(A::Item) -> &'a [u8],
            visit: &mut impl FnMut(usize, Option<&[u8]>),
        ) {
            for row in 0..array.len() {
                if array.is_null(row) {
                    visit(row, None);
                } else {
                    visit(row, Some(as_bytes(array.value(row))));
                }
            }
        }
        match self {
            Self::Unsigned(array) => {
                for (row, value) in array.iter().enumerate() {
                    visit(
                        row,
                        value
                            .map(u64::to_be_bytes)
                            .as_ref()
                            .map(<[u8; 8]>::as_slice),
                    );
                }
            }
            Self::Signed(array) => {
                for (row, value) in array.iter().enumerate() {
                    let bytes = value
                        .and_then(|v| u64::try_from(v).ok())
                        .map(u64::to_be_bytes);
                    visit(row, bytes.as_ref().map(<[u8; 8]>::as_slice));
                }
            }
            Self::Bytes(array) => match array.data_type() {
                DataType::Utf8 => bytes_of(array.as_string::<i32>(), str::as_bytes, &mut visit),
                DataType::LargeUtf8 => {
                    bytes_of(array.as_string::<i64>(), str::as_bytes, &mut visit);
                }
                DataType::Utf8View => bytes_of(array.as_string_view(), str::as_bytes, &mut visit),
                DataType::Binary => bytes_of(array.as_binary::<i32>(), |b| b, &mut visit),
                DataType::LargeBinary => bytes_of(array.as_binary::<i64>(), |b| b, &mut visit),
                DataType::BinaryView => bytes_of(array.as_binary_view(), |b| b, &mut visit),
                DataType::FixedSizeBinary(_) => {
                    bytes_of(array.as_fixed_size_binary(), |b| b, &mut visit);
                }
                _ => (0..array.len()).for_each(|row| visit(row, None)),
            },
            Self::Dictionary {
                array,
                keys,
                values,
            } => {
                let nulls = array.nulls();
                for (row, &key) in keys.iter().enumerate() {
                    let bytes = if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                        None
                    } else {
                        dictionary_value(values, key)
                    };
                    visit(row, bytes);
                }
            }
        }
    }
}

/// Whether ids of this Arrow type are read through a dictionary when they come as one
/// (and, from Parquet, asked for as one): the value types [`dictionary_value`] reads.
pub(crate) fn is_dictionary_id_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
    )
}

/// The bytes of value `index` of a dictionary's text or binary values; `None` if null.
pub(crate) fn dictionary_value(values: &ArrayRef, index: usize) -> Option<&[u8]> {
    if values.is_null(index) {
        return None;
    }
    Some(match values.data_type() {
        DataType::Utf8 => values.as_string::<i32>().value(index).as_bytes(),
        DataType::LargeUtf8 => values.as_string::<i64>().value(index).as_bytes(),
        DataType::Binary => values.as_binary::<i32>().value(index),
        DataType::LargeBinary => values.as_binary::<i64>().value(index),
        _ => return None,
    })
}

/// The time column of one batch.
pub(crate) enum TsColumn {
    /// Epoch values in a unit of `per_second` ticks per second.
    Epoch { values: Int64Array, per_second: i64 },
    /// Strings to parse.
    Text(ArrayRef),
}

impl TsColumn {
    pub(crate) fn new(array: &ArrayRef, name: &str) -> Result<Self> {
        let array = plain(array)?;
        let epoch = |values: Int64Array, per_second| Self::Epoch { values, per_second };
        Ok(match array.data_type() {
            DataType::Timestamp(unit, _) => {
                let (values, per_second) = match unit {
                    TimeUnit::Second => (
                        array
                            .as_primitive::<TimestampSecondType>()
                            .reinterpret_cast::<Int64Type>(),
                        1,
                    ),
                    TimeUnit::Millisecond => (
                        array
                            .as_primitive::<TimestampMillisecondType>()
                            .reinterpret_cast::<Int64Type>(),
                        1_000,
                    ),
                    TimeUnit::Microsecond => (
                        array
                            .as_primitive::<TimestampMicrosecondType>()
                            .reinterpret_cast::<Int64Type>(),
                        1_000_000,
                    ),
                    TimeUnit::Nanosecond => (
                        array
                            .as_primitive::<TimestampNanosecondType>()
                            .reinterpret_cast::<Int64Type>(),
                        1_000_000_000,
                    ),
                };
                epoch(values, per_second)
            }
            t if is_integer(t) && !matches!(t, DataType::UInt64) => {
                let values = arrow_cast::cast(&array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone();
                refuse_epoch_milliseconds(&values, name)?;
                epoch(values, 1)
            }
            t if is_text(t) => Self::Text(arrow_cast::cast(&array, &DataType::Utf8)?),
            DataType::Null => epoch(Int64Array::new_null(array.len()), 1),
            other => {
                return Err(Error::input(
                    name,
                    format!(
                        "must be an Arrow timestamp, int64 epoch seconds or text, found Arrow type {other}"
                    ),
                ));
            }
        })
    }

    /// The instant of a row in epoch seconds, floored; `None` for null or unparsable.
    pub(crate) fn instant(&self, row: usize, resolver: &mut LocalResolver<'_>) -> Option<i64> {
        match self {
            Self::Epoch { values, per_second } => (!values.is_null(row)).then(|| {
                let value = values.value(row);
                // Seconds need no division, which costs more than the rest of the row.
                if *per_second == 1 {
                    value
                } else {
                    value.div_euclid(*per_second)
                }
            }),
            Self::Text(array) => {
                let array = array.as_string::<i32>();
                if array.is_null(row) {
                    return None;
                }
                match parse_timestamp(array.value(row).as_bytes())? {
                    ParsedTimestamp::Instant(instant) => Some(instant),
                    ParsedTimestamp::Local(local) => Some(resolver.instant(local)),
                }
            }
        }
    }
}

/// Epoch seconds past this (the year 3000) are not seconds: epoch milliseconds of today
/// are past it, epoch seconds of any real ping are far below it.
const LAST_EPOCH_SECOND: i64 = 32_503_680_000;

/// Refuses integer times of which at least half are past [`LAST_EPOCH_SECOND`]: such a
/// column is epoch milliseconds (or finer) read as seconds, and every row would be
/// dropped as outside the period. A few such values among seconds are bad rows,
/// dropped and counted as such.
fn refuse_epoch_milliseconds(values: &Int64Array, name: &str) -> Result<()> {
    let past = values
        .iter()
        .flatten()
        .filter(|&value| value > LAST_EPOCH_SECOND)
        .count();
    let given = values.len() - values.null_count();
    if given > 0 && 2 * past >= given {
        return Err(Error::input(
            name,
            "holds integers past the year 3000 as epoch seconds: they look like epoch \
             milliseconds. Give epoch seconds (divide by 1000) or a timestamp column \
             (pyarrow: pa.array(values, pa.timestamp(\"ms\")); polars: \
             pl.from_epoch(column, time_unit=\"ms\"))",
        ));
    }
    Ok(())
}

/// The position columns of one batch: a cell column, lat/lon, or both (the cell wins
/// on rows where it is given).
pub(crate) struct PositionColumns {
    pub(crate) cell: Option<CellColumn>,
    pub(crate) lat_lon: Option<(Float64Array, Float64Array)>,
}

/// A cell column of one batch.
pub(crate) enum CellColumn {
    Unsigned(UInt64Array),
    Signed(Int64Array),
    Text(ArrayRef),
}

/// A position read from a row, before validation against H3.
#[derive(Clone, Copy)]
pub(crate) enum RawPosition {
    Cell(u64),
    LatLon(f64, f64),
    Bad,
}

impl PositionColumns {
    pub(crate) fn new(batch: &RecordBatch, columns: &PingColumns) -> Result<Self> {
        let cell = batch
            .column_by_name(&columns.cell)
            .map(|array| CellColumn::new(array, &columns.cell))
            .transpose()?;
        let lat = batch.column_by_name(&columns.lat);
        let lon = batch.column_by_name(&columns.lon);
        let lat_lon = match (lat, lon) {
            (Some(lat), Some(lon)) => {
                Some((degrees(lat, &columns.lat)?, degrees(lon, &columns.lon)?))
            }
            (Some(_), None) if cell.is_none() => {
                return Err(Error::input(
                    &columns.lon,
                    "is missing while a latitude column is present",
                ));
            }
            (None, Some(_)) if cell.is_none() => {
                return Err(Error::input(
                    &columns.lat,
                    "is missing while a longitude column is present",
                ));
            }
            _ => None,
        };
        if cell.is_none() && lat_lon.is_none() {
            return Err(Error::input(
                &columns.cell,
                format!(
                    "is missing, and so are `{}`/`{}`: pings need a position as an H3 cell or as lat/lon",
                    columns.lat, columns.lon
                ),
            ));
        }
        Ok(Self { cell, lat_lon })
    }

    pub(crate) fn raw(&self, row: usize) -> RawPosition {
        if let Some(cell) = &self.cell
            && let Some(value) = cell.value(row)
        {
            return value.map_or(RawPosition::Bad, RawPosition::Cell);
        }
        match &self.lat_lon {
            Some((lat, lon)) if !lat.is_null(row) && !lon.is_null(row) => {
                RawPosition::LatLon(lat.value(row), lon.value(row))
            }
            _ => RawPosition::Bad,
        }
    }
}

fn degrees(array: &ArrayRef, name: &str) -> Result<Float64Array> {
    let array = plain(array)?;
    let data_type = array.data_type();
    if !(data_type.is_floating()
        || data_type.is_integer()
        || matches!(
            data_type,
            DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Null
        ))
    {
        return Err(Error::input(
            name,
            format!("must be float64 degrees, found Arrow type {data_type}"),
        ));
    }
    Ok(arrow_cast::cast(&array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

impl CellColumn {
    fn new(array: &ArrayRef, name: &str) -> Result<Self> {
        let array = plain(array)?;
        Ok(match array.data_type() {
            DataType::UInt64 => Self::Unsigned(array.as_primitive::<UInt64Type>().clone()),
            t if is_integer(t) => Self::Signed(
                arrow_cast::cast(&array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            t if is_text(t) => Self::Text(arrow_cast::cast(&array, &DataType::Utf8)?),
            DataType::Null => Self::Unsigned(UInt64Array::new_null(array.len())),
            other => {
                return Err(Error::input(
                    name,
                    format!(
                        "must be H3 cells as uint64, int64 or hexadecimal text, found Arrow type {other}"
                    ),
                ));
            }
        })
    }

    /// `None` for null; `Some(None)` for a value that is no cell number at all.
    fn value(&self, row: usize) -> Option<Option<u64>> {
        match self {
            Self::Unsigned(a) => (!a.is_null(row)).then(|| Some(a.value(row))),
            Self::Signed(a) => (!a.is_null(row)).then(|| u64::try_from(a.value(row)).ok()),
            Self::Text(a) => {
                let a = a.as_string::<i32>();
                (!a.is_null(row)).then(|| u64::from_str_radix(a.value(row).trim(), 16).ok())
            }
        }
    }
}

/// The country column of one batch.
pub(crate) enum CountryColumn {
    /// A code per row.
    Text(arrow_array::StringArray),
    /// Codes stored once in `values` and referred to by each row's key, as Parquet
    /// stores them: each distinct code can be numbered once, not once per row.
    Dictionary {
        /// Rows without a key.
        nulls: Option<arrow_buffer::NullBuffer>,
        keys: Vec<usize>,
        values: ArrayRef,
    },
}

/// The optional country column of one batch.
pub(crate) fn country_column(batch: &RecordBatch, name: &str) -> Result<Option<CountryColumn>> {
    let Some(array) = batch.column_by_name(name) else {
        return Ok(None);
    };
    // Keys into no values (all rows null) cannot be normalized: read plainly.
    if let DataType::Dictionary(_, value_type) = array.data_type()
        && **value_type == DataType::Utf8
        && !array.as_any_dictionary().values().is_empty()
    {
        let dictionary = array.as_any_dictionary();
        return Ok(Some(CountryColumn::Dictionary {
            nulls: array.nulls().cloned(),
            keys: dictionary.normalized_keys(),
            values: Arc::clone(dictionary.values()),
        }));
    }
    let array = plain(array)?;
    match array.data_type() {
        t if is_text(t) => Ok(Some(CountryColumn::Text(
            arrow_cast::cast(&array, &DataType::Utf8)?
                .as_string::<i32>()
                .clone(),
        ))),
        DataType::Null => Ok(None),
        other => Err(Error::input(
            name,
            format!("must be text (ISO 3166-1 alpha-2), found Arrow type {other}"),
        )),
    }
}
