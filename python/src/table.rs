//! `crowdtally.Table`: an Arrow table handed back to Python, exported through the Arrow
//! PyCapsule interface with pyarrow, pandas and polars conversions.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};
use pyo3_arrow::PyTable;
use pyo3_arrow::input::AnyRecordBatch;

use crate::errors::detach;

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
/// core: no pyarrow needed.
#[pyfunction]
pub fn write_parquet(py: Python<'_>, table: &Bound<'_, PyAny>, path: PathBuf) -> PyResult<()> {
    let reader = table.extract::<AnyRecordBatch>()?.into_reader()?;
    detach(py, move || crowdtally::ingest::write_parquet(&path, reader))
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
