//! `crowdtally.Geography`: regions, zones and the study area.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use crowdtally::Geography;
use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::convert::batches;
use crate::errors::{CoreError, detach, type_error};
use crate::table::PyResultTable;

/// A validated study geography.
#[pyclass(name = "Geography", module = "crowdtally", frozen)]
pub struct PyGeography {
    pub(crate) inner: Arc<Geography>,
}

fn study_area_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if value.is_instance_of::<PyString>() {
        return Ok(vec![value.extract()?]);
    }
    value
        .extract::<Vec<String>>()
        .map_err(|_| type_error("study_area", "a list of region ids", value))
}

fn geojson_text(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = value.py();
    if value.is_instance_of::<PyDict>() || value.is_instance_of::<PyList>() {
        let json = py.import(intern!(py, "json"))?;
        return json.call_method1(intern!(py, "dumps"), (value,))?.extract();
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_str()?.to_owned());
    }
    if value.hasattr(intern!(py, "__fspath__"))? {
        let pathlib = py.import(intern!(py, "pathlib"))?;
        let path = pathlib.call_method1(intern!(py, "Path"), (value,))?;
        return path
            .call_method1(intern!(py, "read_text"), ("utf-8",))?
            .extract();
    }
    Err(type_error(
        argument,
        "GeoJSON as a dict, a JSON string or a path",
        value,
    ))
}

/// One geography table: a Parquet file's path (read by the core, no pyarrow needed),
/// errors naming the file; or a table-like object.
fn table<T: Send>(
    argument: &str,
    value: &Bound<'_, PyAny>,
    from_arrow: fn(&[RecordBatch]) -> crowdtally::Result<T>,
) -> PyResult<T> {
    let py = value.py();
    if value.is_instance_of::<PyString>() || value.hasattr(intern!(py, "__fspath__"))? {
        let path: PathBuf = value.extract()?;
        return detach(py, || {
            crowdtally::read_parquet(&path)
                .and_then(|batches| from_arrow(&batches))
                .map_err(|e| e.in_file(&path))
        });
    }
    from_arrow(&batches(argument, value)?).map_err(|e| CoreError(e).into())
}

#[pymethods]
impl PyGeography {
    /// Builds a geography from four tables: each a Parquet file's path, anything with the
    /// Arrow PyCapsule interface, or a dict of columns.
    #[staticmethod]
    #[pyo3(signature = (*, regions, region_cells, zones, zone_cells, study_area, resolution=9))]
    fn from_tables(
        py: Python<'_>,
        regions: &Bound<'_, PyAny>,
        region_cells: &Bound<'_, PyAny>,
        zones: &Bound<'_, PyAny>,
        zone_cells: &Bound<'_, PyAny>,
        study_area: &Bound<'_, PyAny>,
        resolution: u8,
    ) -> PyResult<Self> {
        let regions = table("regions", regions, RegionTable::from_arrow)?;
        let region_cells = table("region_cells", region_cells, RegionCellTable::from_arrow)?;
        let zones = table("zones", zones, ZoneTable::from_arrow)?;
        let zone_cells = table("zone_cells", zone_cells, ZoneCellTable::from_arrow)?;
        let study_area = study_area_of(study_area)?;
        let geography = detach(py, || {
            Geography::from_tables(
                &regions,
                &region_cells,
                &zones,
                &zone_cells,
                resolution,
                &study_area,
            )
        })?;
        Ok(Self {
            inner: Arc::new(geography),
        })
    }

    /// Builds a geography from GeoJSON FeatureCollections of regions and zones, filled to
    /// cells by centroid containment.
    #[staticmethod]
    #[pyo3(signature = (*, regions, zones, study_area, resolution=9, region_resolution=7))]
    fn from_geojson(
        py: Python<'_>,
        regions: &Bound<'_, PyAny>,
        zones: &Bound<'_, PyAny>,
        study_area: &Bound<'_, PyAny>,
        resolution: u8,
        region_resolution: u8,
    ) -> PyResult<Self> {
        let regions = geojson_text("regions", regions)?;
        let zones = geojson_text("zones", zones)?;
        let study_area = study_area_of(study_area)?;
        let geography = detach(py, || {
            Geography::from_geojson(&regions, &zones, resolution, region_resolution, &study_area)
        })?;
        crate::warn_all(py, geography.notes())?;
        Ok(Self {
            inner: Arc::new(geography),
        })
    }

    /// The analysis resolution.
    #[getter]
    fn resolution(&self) -> u8 {
        self.inner.resolution().into()
    }

    /// The resolution of the region cells, or None when there are none.
    #[getter]
    fn region_resolution(&self) -> Option<u8> {
        self.inner.region_resolution().map(u8::from)
    }

    /// Region ids, in table order.
    #[getter]
    fn regions(&self) -> Vec<String> {
        let regions = self.inner.regions();
        (0..regions.len() as u32)
            .map(|r| regions.id(r).to_owned())
            .collect()
    }

    /// Zone ids, followed by one `category:<name>` zone per category.
    #[getter]
    fn zones(&self) -> Vec<String> {
        self.inner.zones().iter().map(|z| z.id.clone()).collect()
    }

    /// The study area as given.
    #[getter]
    fn study_area(&self) -> Vec<String> {
        self.inner.study_area().to_vec()
    }

    /// The four tables of the geography (`regions`, `region_cells`, `zones`,
    /// `zone_cells`), cells as uint64: `Geography.from_tables(**g.to_tables(),
    /// resolution=g.resolution, study_area=g.study_area)` gives it back.
    fn to_tables(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let (regions, region_cells, zones, zone_cells) = self.inner.to_tables();
        let text =
            |values: &[String]| -> ArrayRef { Arc::new(StringArray::from_iter_values(values)) };
        let optional = |values: &[Option<String>]| -> ArrayRef {
            Arc::new(values.iter().map(Option::as_deref).collect::<StringArray>())
        };
        let tables: [(&'static str, Vec<(&str, ArrayRef)>); 4] = [
            (
                "regions",
                vec![
                    ("region_id", text(&regions.region_id)),
                    ("level", text(&regions.level)),
                    ("parent_id", optional(&regions.parent_id)),
                    (
                        "population",
                        Arc::new(Int64Array::from(regions.population.clone())),
                    ),
                    (
                        "name",
                        if regions.name.is_empty() {
                            optional(&vec![None; regions.region_id.len()])
                        } else {
                            optional(&regions.name)
                        },
                    ),
                ],
            ),
            (
                "region_cells",
                vec![
                    (
                        "cell",
                        Arc::new(UInt64Array::from(region_cells.cell.clone())),
                    ),
                    ("region_id", text(&region_cells.region_id)),
                ],
            ),
            (
                "zones",
                vec![
                    ("zone_id", text(&zones.zone_id)),
                    ("name", optional(&zones.name)),
                    ("category", optional(&zones.category)),
                ],
            ),
            (
                "zone_cells",
                vec![
                    ("zone_id", text(&zone_cells.zone_id)),
                    ("cell", Arc::new(UInt64Array::from(zone_cells.cell.clone()))),
                ],
            ),
        ];
        let dict = PyDict::new(py);
        for (name, columns) in tables {
            let batch = RecordBatch::try_from_iter_with_nullable(
                columns
                    .into_iter()
                    .map(|(column, array)| (column, array, true)),
            )
            .map_err(|e| PyErr::from(CoreError(e.into())))?;
            dict.set_item(name, PyResultTable::new(py, name, batch)?)?;
        }
        Ok(dict.unbind())
    }

    /// A geography pickles as its four tables (Arrow IPC), resolution and study area: it
    /// holds no secret, and the workers of a distributed run need it.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let tables = slf.get().to_tables(py)?;
        let state = PyDict::new(py);
        for (name, table) in tables.bind(py).iter() {
            state.set_item(name, crate::table::table_to_ipc(py, &table)?)?;
        }
        let inner = &slf.get().inner;
        let arguments = PyTuple::new(
            py,
            [
                state.into_any(),
                u8::from(inner.resolution()).into_pyobject(py)?.into_any(),
                PyList::new(py, inner.study_area())?.into_any(),
            ],
        )?;
        let rebuild = slf.get_type().getattr("_from_ipc")?;
        PyTuple::new(py, [rebuild, arguments.into_any()])
    }

    /// The geography a pickle holds (see `__reduce__`).
    #[staticmethod]
    fn _from_ipc(
        py: Python<'_>,
        tables: &Bound<'_, PyDict>,
        resolution: u8,
        study_area: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let table = |name: &str| -> PyResult<Bound<'_, PyAny>> {
            let data = tables
                .get_item(name)?
                .ok_or_else(|| crate::errors::config_error("geography", "pickle lacks a table"))?;
            let bytes: Vec<u8> = data.extract()?;
            Ok(Bound::new(py, crate::table::table_from_ipc(py, &bytes, name)?)?.into_any())
        };
        Self::from_tables(
            py,
            &table("regions")?,
            &table("region_cells")?,
            &table("zones")?,
            &table("zone_cells")?,
            study_area,
            resolution,
        )
    }

    fn __repr__(&self) -> String {
        let g = &self.inner;
        let categories = g.zones().iter().filter(|z| z.is_category).count();
        format!(
            "Geography(resolution={}, regions={}, zones={}, categories={categories}, study_area={:?})",
            u8::from(g.resolution()),
            g.regions().len(),
            g.zones().len() - categories,
            g.study_area(),
        )
    }
}
