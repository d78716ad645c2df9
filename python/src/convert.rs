//! Python objects to Arrow: tables (anything with the Arrow PyCapsule interface, or a
//! dict of numpy arrays, Arrow arrays or sequences) and single columns.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Float64Builder, Int64Builder, StringBuilder, UInt64Builder,
};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow_schema::{ArrowError, Field, Schema};
use numpy::{PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};
use pyo3_arrow::input::{AnyArray, AnyRecordBatch};

use crate::errors::{input_error, type_error, type_name};

/// The record batches of a table-like object.
pub fn batches(argument: &str, table: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    let py = table.py();
    if table.hasattr(intern!(py, "__arrow_c_stream__"))?
        || table.hasattr(intern!(py, "__arrow_c_array__"))?
    {
        let reader = table.extract::<AnyRecordBatch>()?.into_reader()?;
        return reader
            .collect::<Result<Vec<_>, ArrowError>>()
            .map_err(|e| input_error(argument, e));
    }
    if let Ok(dict) = table.cast::<PyDict>() {
        return Ok(vec![batch_of_dict(argument, dict)?]);
    }
    // DuckDB relations and other engines that offer an Arrow reader method.
    for method in ["fetch_arrow_reader", "arrow"] {
        if table.hasattr(method)? {
            let converted = table.call_method0(method)?;
            if converted.hasattr(intern!(py, "__arrow_c_stream__"))? {
                return batches(argument, &converted);
            }
        }
    }
    Err(type_error(
        argument,
        "a table with the Arrow PyCapsule interface (pyarrow, pandas, polars, duckdb) or a dict of columns",
        table,
    ))
}

fn batch_of_dict(argument: &str, dict: &Bound<'_, PyDict>) -> PyResult<RecordBatch> {
    if dict.is_empty() {
        return Err(input_error(
            argument,
            "is a dict without columns: give the pings' columns (subscriber, ts, and lat and \
             lon or cell), as lists or arrays of equal length",
        ));
    }
    let mut fields = Vec::with_capacity(dict.len());
    let mut arrays = Vec::with_capacity(dict.len());
    for (name, values) in dict.iter() {
        let name: String = name
            .extract()
            .map_err(|_| input_error(argument, "column names must be strings"))?;
        let array = column(&name, &values)?;
        fields.push(Field::new(&name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let lengths: Vec<usize> = arrays.iter().map(|a| a.len()).collect();
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return Err(input_error(
            argument,
            format!("columns have different lengths: {lengths:?}"),
        ));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| input_error(argument, e))
}

/// One column from an Arrow array, a numpy array or a Python sequence.
pub fn column(name: &str, values: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    let py = values.py();
    if values.hasattr(intern!(py, "__arrow_c_array__"))?
        || values.hasattr(intern!(py, "__arrow_c_stream__"))?
    {
        let chunked = values.extract::<AnyArray>()?.into_chunked_array()?;
        let chunks: Vec<&dyn arrow_array::Array> =
            chunked.chunks().iter().map(AsRef::as_ref).collect();
        if chunks.is_empty() {
            return Ok(arrow_array::new_empty_array(chunked.data_type()));
        }
        return arrow_select::concat::concat(&chunks).map_err(|e| input_error(name, e));
    }
    if let Ok(array) = values.cast::<PyUntypedArray>() {
        return numpy_column(name, array);
    }
    if values.is_instance_of::<PyString>() || values.is_instance_of::<PyBytes>() {
        return Err(input_error(
            name,
            "must be a sequence of values, not a single string",
        ));
    }
    let items: Vec<Bound<'_, PyAny>> = values
        .try_iter()
        .map_err(|_| type_error(name, "an Arrow array, a numpy array or a sequence", values))?
        .collect::<PyResult<_>>()?;
    objects_column(name, &items)
}

fn numpy_column(name: &str, array: &Bound<'_, PyUntypedArray>) -> PyResult<ArrayRef> {
    let py = array.py();
    if array.ndim() != 1 {
        return Err(input_error(
            name,
            format!("must be one-dimensional, got {} dimensions", array.ndim()),
        ));
    }
    let dtype = array.dtype();
    let kind = dtype.kind();
    let as_type = |type_name: &str| array.call_method1(intern!(py, "astype"), (type_name,));
    Ok(match kind {
        b'i' => {
            let converted = as_type("int64")?;
            let view = converted.cast::<numpy::PyArray1<i64>>()?.readonly();
            Arc::new(Int64Array::from(view.as_slice()?.to_vec()))
        }
        b'u' => {
            let converted = as_type("uint64")?;
            let view = converted.cast::<numpy::PyArray1<u64>>()?.readonly();
            Arc::new(UInt64Array::from(view.as_slice()?.to_vec()))
        }
        b'f' => {
            let converted = as_type("float64")?;
            let view = converted.cast::<numpy::PyArray1<f64>>()?.readonly();
            Arc::new(Float64Array::from(view.as_slice()?.to_vec()))
        }
        b'b' => {
            let converted = as_type("bool")?;
            let view = converted.cast::<numpy::PyArray1<bool>>()?.readonly();
            Arc::new(BooleanArray::from(view.as_slice()?.to_vec()))
        }
        b'M' => {
            let numpy = py.import(intern!(py, "numpy"))?;
            let (unit, count): (String, i64) = numpy
                .call_method1(intern!(py, "datetime_data"), (dtype,))?
                .extract()?;
            let ints = array.call_method1(intern!(py, "view"), ("int64",))?;
            let view = ints.cast::<numpy::PyArray1<i64>>()?.readonly();
            // NaT is i64::MIN in numpy.
            let values = view
                .as_slice()?
                .iter()
                .map(|&v| (v != i64::MIN).then_some(v));
            if count != 1 {
                return Err(input_error(
                    name,
                    format!("datetime64 with a multiple unit [{count}{unit}] is not supported"),
                ));
            }
            match unit.as_str() {
                "s" => Arc::new(values.collect::<TimestampSecondArray>()),
                "ms" => Arc::new(values.collect::<TimestampMillisecondArray>()),
                "us" => Arc::new(values.collect::<TimestampMicrosecondArray>()),
                "ns" => Arc::new(values.collect::<TimestampNanosecondArray>()),
                other => {
                    return Err(input_error(
                        name,
                        format!("datetime64[{other}] is not supported; use s, ms, us or ns"),
                    ));
                }
            }
        }
        b'U' | b'S' | b'O' => {
            let items: Vec<Bound<'_, PyAny>> = array
                .call_method0(intern!(py, "tolist"))?
                .try_iter()?
                .collect::<PyResult<_>>()?;
            objects_column(name, &items)?
        }
        other => {
            return Err(input_error(
                name,
                format!(
                    "has an unsupported numpy dtype kind {:?}",
                    char::from(other)
                ),
            ));
        }
    })
}

/// A column from Python objects, all of one kind (None allowed): str, bytes, int, float,
/// or `datetime.datetime` (read as ISO text, so naive values are local time in `tz`).
#[expect(
    clippy::too_many_lines,
    reason = "one match per Python kind, each building its Arrow array"
)]
fn objects_column(name: &str, items: &[Bound<'_, PyAny>]) -> PyResult<ArrayRef> {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Text,
        Bytes,
        Int,
        Float,
        DateTime,
    }
    let py_datetime = items
        .first()
        .map(|i| i.py().import("datetime"))
        .transpose()?;
    let datetime_type = py_datetime
        .as_ref()
        .map(|m| m.getattr("datetime"))
        .transpose()?;
    let mut kind: Option<Kind> = None;
    for (row, item) in items.iter().enumerate() {
        if item.is_none() {
            continue;
        }
        let this = if item.is_instance_of::<PyString>() {
            Kind::Text
        } else if item.is_instance_of::<PyBytes>() {
            Kind::Bytes
        } else if item.is_instance_of::<PyBool>() {
            return Err(input_error(
                name,
                format!("row {row}: booleans are not supported"),
            ));
        } else if item.is_instance_of::<PyInt>() {
            Kind::Int
        } else if item.is_instance_of::<PyFloat>() {
            Kind::Float
        } else if datetime_type
            .as_ref()
            .is_some_and(|t| item.is_instance(t).unwrap_or(false))
        {
            Kind::DateTime
        } else {
            let found = type_name(item);
            return Err(input_error(
                name,
                format!("row {row}: unsupported value type {found}"),
            ));
        };
        kind = match (kind, this) {
            (None, k) => Some(k),
            (Some(Kind::Int), Kind::Float) | (Some(Kind::Float), Kind::Int) => Some(Kind::Float),
            (Some(k), t) if k == t => Some(k),
            _ => {
                return Err(input_error(
                    name,
                    format!("row {row}: values of mixed types"),
                ));
            }
        };
    }
    let Some(kind) = kind else {
        return Ok(Arc::new(NullArray::new(items.len())));
    };
    Ok(match kind {
        Kind::Text | Kind::DateTime => {
            let mut builder = StringBuilder::new();
            for item in items {
                if item.is_none() {
                    builder.append_null();
                } else if kind == Kind::DateTime {
                    builder.append_value(item.call_method0("isoformat")?.extract::<String>()?);
                } else {
                    builder.append_value(item.cast::<PyString>()?.to_str()?);
                }
            }
            Arc::new(builder.finish())
        }
        Kind::Bytes => {
            let mut builder = BinaryBuilder::new();
            for item in items {
                if item.is_none() {
                    builder.append_null();
                } else {
                    builder.append_value(item.cast::<PyBytes>()?.as_bytes());
                }
            }
            Arc::new(builder.finish())
        }
        Kind::Int => {
            // Integers beyond i64 but within u64 make an unsigned column; anything else is an error.
            let signed: PyResult<Vec<Option<i64>>> = items
                .iter()
                .map(|i| {
                    if i.is_none() {
                        Ok(None)
                    } else {
                        i.extract::<i64>().map(Some)
                    }
                })
                .collect();
            if let Ok(values) = signed {
                let mut builder = Int64Builder::with_capacity(values.len());
                builder.extend(values);
                Arc::new(builder.finish())
            } else {
                let mut builder = UInt64Builder::with_capacity(items.len());
                for (row, item) in items.iter().enumerate() {
                    if item.is_none() {
                        builder.append_null();
                    } else {
                        builder.append_value(item.extract::<u64>().map_err(|_| {
                            input_error(name, format!("row {row}: integer out of the 64-bit range"))
                        })?);
                    }
                }
                Arc::new(builder.finish())
            }
        }
        Kind::Float => {
            let mut builder = Float64Builder::with_capacity(items.len());
            for item in items {
                builder.append_option(if item.is_none() {
                    None
                } else {
                    Some(item.extract::<f64>()?)
                });
            }
            Arc::new(builder.finish())
        }
    })
}
