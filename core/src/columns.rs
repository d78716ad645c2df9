//! Reading Arrow columns of any common physical type into plain Rust values.
//!
//! Inputs come from pandas, polars, pyarrow, DuckDB and Parquet, which disagree on string
//! and integer layouts (views, large offsets, dictionaries, narrow integers). These
//! helpers accept them all and name the column when a type is not usable.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// The column named `name` of a batch, or [`Error::Input`] naming it.
pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let present: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        // A pings column under another name: say how to map it.
        let hint = if table.is_empty() {
            synonym_of(name, &present).map_or_else(
                || format!("; name yours with columns={{\"{name}\": \"<your column>\"}}"),
                |yours| {
                    format!("; is it {yours:?}? Say so with columns={{\"{name}\": \"{yours}\"}}")
                },
            )
        } else {
            String::new()
        };
        Error::input(
            qualified(table, name),
            format!("is missing; the columns present are {present:?}{hint}"),
        )
    })
}

/// The present column that is likely the pings' role `role` under another name.
fn synonym_of<'p>(role: &str, present: &'p [String]) -> Option<&'p str> {
    let synonyms: &[&str] = match role {
        "subscriber" => &[
            "msisdn",
            "imsi",
            "imei",
            "device",
            "device_id",
            "user",
            "user_id",
            "id",
            "subscriber_id",
            "uid",
        ],
        "ts" => &[
            "timestamp",
            "time",
            "datetime",
            "date_time",
            "event_time",
            "t",
            "epoch",
        ],
        "lat" => &["latitude", "y"],
        "lon" => &["longitude", "lng", "long", "x"],
        "cell" => &["h3", "h3_cell", "h3_index", "cell_id", "hex"],
        "country" => &["mcc_country", "home_country", "country_code", "sim_country"],
        _ => &[],
    };
    present
        .iter()
        .find(|column| synonyms.contains(&column.to_ascii_lowercase().as_str()))
        .map(String::as_str)
}

/// `table.name`, or `name` alone for the pings table.
pub(crate) fn qualified(table: &str, name: &str) -> String {
    if table.is_empty() {
        name.to_owned()
    } else {
        format!("{table}.{name}")
    }
}

/// Unwraps dictionary- and run-end-encoded arrays into plain arrays of their value type.
pub(crate) fn plain(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Dictionary(_, value) => Ok(arrow_cast::cast(array, value)?),
        DataType::RunEndEncoded(_, values) => Ok(arrow_cast::cast(array, values.data_type())?),
        _ => Ok(Arc::clone(array)),
    }
}

fn unsupported(column: &str, expected: &str, found: &DataType) -> Error {
    Error::input(
        column,
        format!("must be {expected}, found Arrow type {found}"),
    )
}

/// Whether a type is one of Arrow's string types.
pub(crate) fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Whether a type is one of Arrow's integer types.
pub(crate) fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// A text column as owned strings (for small tables such as the geography).
pub(crate) fn texts(array: &ArrayRef, column: &str) -> Result<Vec<Option<String>>> {
    let array = plain(array)?;
    if matches!(array.data_type(), DataType::Null) {
        return Ok(vec![None; array.len()]);
    }
    if !is_text(array.data_type()) {
        return Err(unsupported(column, "text", array.data_type()));
    }
    let array = arrow_cast::cast(&array, &DataType::Utf8)?;
    Ok(array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

/// An integer column as `i64` (for small tables such as the geography).
pub(crate) fn integers(array: &ArrayRef, column: &str) -> Result<Vec<Option<i64>>> {
    let array = plain(array)?;
    if matches!(array.data_type(), DataType::Null) {
        return Ok(vec![None; array.len()]);
    }
    if !is_integer(array.data_type()) {
        return Err(unsupported(column, "an integer", array.data_type()));
    }
    if matches!(array.data_type(), DataType::UInt64) {
        return array
            .as_primitive::<UInt64Type>()
            .iter()
            .enumerate()
            .map(|(row, v)| {
                v.map(|v| {
                    i64::try_from(v)
                        .map_err(|_| Error::input(column, format!("row {row}: {v} is too large")))
                })
                .transpose()
            })
            .collect();
    }
    let array = arrow_cast::cast(&array, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().iter().collect())
}

/// A cell column: unsigned or signed 64-bit integers, or H3 hexadecimal strings.
///
/// Values that are not numbers at all (unparsable hex) are reported as `Err(row)`; a
/// number is returned as it is and checked by the caller with h3o.
pub(crate) fn cell_numbers(array: &ArrayRef, column: &str) -> Result<Vec<Option<Result<u64, ()>>>> {
    let array = plain(array)?;
    match array.data_type() {
        DataType::UInt64 => Ok(array
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(Ok))
            .collect()),
        t if is_integer(t) => {
            let array = arrow_cast::cast(&array, &DataType::Int64)?;
            Ok(array
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| u64::try_from(v).map_err(|_| ())))
                .collect())
        }
        t if is_text(t) => {
            let array = arrow_cast::cast(&array, &DataType::Utf8)?;
            Ok(array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|text| u64::from_str_radix(text.trim(), 16).map_err(|_| ())))
                .collect())
        }
        DataType::Null => Ok(vec![None; array.len()]),
        other => Err(unsupported(
            column,
            "H3 cells as uint64, int64 or hexadecimal text",
            other,
        )),
    }
}
