//! `crowdtally.Table`: an Arrow table handed back to Python, exported through the Arrow
//! PyCapsule interface with pyarrow, pandas and polars conversions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyTuple};
use pyo3_arrow::PyTable;
use pyo3_arrow::input::AnyRecordBatch;

use crate::errors::{detach, input_error};

/// `pyarrow.table(obj)` for any object with `__arrow_c_stream__`.
pub fn to_arrow<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    py.import(intern!(py, "pyarrow"))?
        .call_method1(intern!(py, "table"), (obj,))
}

/// A pandas DataFrame through pyarrow.
pub fn to_pandas<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    to_arrow(obj)?.call_method0(intern!(obj.py(), "to_pandas"))
}

/// A polars DataFrame, read through the PyCapsule interface (no pyarrow needed).
pub fn to_polars<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    py.import(intern!(py, "polars"))?
        .call_method1(intern!(py, "DataFrame"), (obj,))
}

/// Writes a table (anything with the Arrow PyCapsule interface) as a Parquet file, by the
/// core: no pyarrow needed. `metadata` is added to the file's schema metadata (a
/// release's report goes there).
#[pyfunction]
#[pyo3(signature = (table, path, metadata=None))]
pub fn write_parquet(
    py: Python<'_>,
    table: &Bound<'_, PyAny>,
    path: PathBuf,
    metadata: Option<HashMap<String, String>>,
) -> PyResult<()> {
    let reader = table.extract::<AnyRecordBatch>()?.into_reader()?;
    detach(py, move || {
        let Some(metadata) = metadata else {
            return crowdtally::write_parquet(&path, reader);
        };
        let schema = reader.schema();
        let mut all = schema.metadata().clone();
        all.extend(metadata);
        let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), all));
        let batches = {
            let schema = Arc::clone(&schema);
            reader.map(move |batch| batch.and_then(|b| b.with_schema(Arc::clone(&schema))))
        };
        crowdtally::write_parquet(&path, RecordBatchIterator::new(batches, schema))
    })
}

/// A whole Parquet file as a table named `name`, with its schema metadata.
#[pyfunction]
pub fn read_parquet_table(
    py: Python<'_>,
    path: PathBuf,
    name: &str,
) -> PyResult<(PyResultTable, HashMap<String, String>)> {
    let (schema, batches) = detach(py, move || crowdtally::read_parquet_table(&path))?;
    let metadata = schema.metadata().clone();
    Ok((
        PyResultTable::from_batches(py, leaked_name(name), batches, schema)?,
        metadata,
    ))
}

/// A table as Arrow IPC stream bytes (to pickle a release).
#[pyfunction]
pub fn table_to_ipc<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let reader = table.extract::<AnyRecordBatch>()?.into_reader()?;
    let bytes = py
        .detach(move || -> Result<Vec<u8>, ArrowError> {
            let mut bytes = Vec::new();
            let mut writer =
                arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &reader.schema())?;
            for batch in reader {
                writer.write(&batch?)?;
            }
            writer.finish()?;
            drop(writer);
            Ok(bytes)
        })
        .map_err(|e| input_error("table", e))?;
    Ok(PyBytes::new(py, &bytes))
}

/// A table named `name` from Arrow IPC stream bytes.
#[pyfunction]
pub fn table_from_ipc(py: Python<'_>, data: &[u8], name: &str) -> PyResult<PyResultTable> {
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(data), None)
        .map_err(|e| input_error(name, e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| input_error(name, e))?;
    PyResultTable::from_batches(py, leaked_name(name), batches, schema)
}

/// The names tables are made with (`&'static str`): a fixed set, so nothing leaks.
fn leaked_name(name: &str) -> &'static str {
    match name {
        "release" => "release",
        "devices" => "devices",
        "visits" => "visits",
        _ => "table",
    }
}

/// A table of results (per-device microdata, visits).
#[pyclass(name = "Table", module = "crowdtally", frozen)]
pub struct PyResultTable {
    name: &'static str,
    rows: usize,
    schema: SchemaRef,
    table: Py<PyTable>,
}

impl PyResultTable {
    pub fn new(py: Python<'_>, name: &'static str, batch: RecordBatch) -> PyResult<Self> {
        let schema = batch.schema();
        Self::from_batches(py, name, vec![batch], schema)
    }

    pub fn from_batches(
        py: Python<'_>,
        name: &'static str,
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
    ) -> PyResult<Self> {
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let table = Py::new(py, PyTable::try_new(batches, schema.clone())?)?;
        Ok(Self {
            name,
            rows,
            schema,
            table,
        })
    }
}

#[pymethods]
impl PyResultTable {
    /// What the table holds (`devices`, `visits`).
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }

    /// The column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.rows
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.table
            .bind(py)
            .call_method1(intern!(py, "__arrow_c_stream__"), (requested_schema,))
    }

    /// The table as a `pyarrow.Table` (needs pyarrow).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        to_arrow(slf.as_any())
    }

    /// The table as a `pandas.DataFrame` (needs pandas and pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        to_pandas(slf.as_any())
    }

    /// The table as a `polars.DataFrame` (needs polars).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        to_polars(slf.as_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "Table({}: {} rows; columns {:?})",
            self.name,
            self.rows,
            self.column_names()
        )
    }

    #[allow(clippy::unused_self)] // Python calls it on the instance.
    fn __reduce__<'py>(&self, _py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Err(PyTypeError::new_err(
            "crowdtally.Table holds pseudonymous microdata and cannot be pickled",
        ))
    }
}
