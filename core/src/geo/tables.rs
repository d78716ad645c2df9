//! The four geography tables as plain columns, and their reading from Arrow.

use arrow_array::RecordBatch;

use crate::columns::{cell_numbers, column, integers, texts};
use crate::error::{Error, Result};

fn required_texts(values: Vec<Option<String>>, field: &str) -> Result<Vec<String>> {
    values
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            v.ok_or_else(|| Error::geography(field, format!("row {row}: must not be null")))
        })
        .collect()
}

fn required_cells(batches: &[RecordBatch], table: &str) -> Result<Vec<u64>> {
    let field = format!("{table}.cell");
    let mut cells = Vec::new();
    for batch in batches {
        for value in cell_numbers(column(batch, "cell", table)?, &field)? {
            let row = cells.len();
            match value {
                Some(Ok(cell)) => cells.push(cell),
                Some(Err(())) => {
                    return Err(Error::geography(
                        &field,
                        format!("row {row}: not a valid H3 cell"),
                    ));
                }
                None => {
                    return Err(Error::geography(
                        &field,
                        format!("row {row}: must not be null"),
                    ));
                }
            }
        }
    }
    Ok(cells)
}

fn text_column(batches: &[RecordBatch], table: &str, name: &str) -> Result<Vec<Option<String>>> {
    let field = format!("{table}.{name}");
    let mut values = Vec::new();
    for batch in batches {
        values.extend(texts(column(batch, name, table)?, &field)?);
    }
    Ok(values)
}

fn optional_text_column(
    batches: &[RecordBatch],
    table: &str,
    name: &str,
) -> Result<Vec<Option<String>>> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if batches
        .first()
        .is_some_and(|b| b.column_by_name(name).is_none())
    {
        return Ok(vec![None; rows]);
    }
    text_column(batches, table, name)
}

fn length_mismatch(table: &str) -> Error {
    Error::geography(table, "columns have different lengths")
}

/// The origin regions: one row per region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionTable {
    /// Unique region ids.
    pub region_id: Vec<String>,
    /// Level names (e.g. `municipality`, `province`).
    pub level: Vec<String>,
    /// Parent ids; `None` (or empty) for the one root.
    pub parent_id: Vec<Option<String>>,
    /// Populations of leaves (inner nodes may be `None`: they sum their leaves).
    pub population: Vec<Option<i64>>,
    /// Display names (`None`, or an empty vector for all: the id is the name).
    pub name: Vec<Option<String>>,
}

impl RegionTable {
    /// Reads `region_id`, `level`, `parent_id` and optional `population` and `name`
    /// columns.
    ///
    /// # Errors
    /// [`Error::Input`] for a missing column or unusable type, [`Error::Geography`] for a
    /// null id or level.
    pub fn from_arrow(batches: &[RecordBatch]) -> Result<Self> {
        let table = "regions";
        let region_id = required_texts(
            text_column(batches, table, "region_id")?,
            "regions.region_id",
        )?;
        let level = required_texts(text_column(batches, table, "level")?, "regions.level")?;
        let parent_id = text_column(batches, table, "parent_id")?;
        let mut population = Vec::with_capacity(region_id.len());
        for batch in batches {
            match batch.column_by_name("population") {
                Some(array) => population.extend(integers(array, "regions.population")?),
                None => population.extend(std::iter::repeat_n(None, batch.num_rows())),
            }
        }
        let mut name = optional_text_column(batches, table, "name")?;
        // No name given is no name column, as a table written without one reads.
        if name.iter().all(Option::is_none) {
            name.clear();
        }
        Ok(Self {
            region_id,
            level,
            parent_id,
            population,
            name,
        })
    }

    pub(crate) fn check_lengths(&self) -> Result<()> {
        let n = self.region_id.len();
        if self.level.len() != n
            || self.parent_id.len() != n
            || self.population.len() != n
            || !(self.name.is_empty() || self.name.len() == n)
        {
            return Err(length_mismatch("regions"));
        }
        Ok(())
    }
}

/// The cell → leaf table: H3 cells at one resolution, each in one leaf region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionCellTable {
    /// H3 cells, all at one resolution.
    pub cell: Vec<u64>,
    /// The leaf region of each cell.
    pub region_id: Vec<String>,
}

impl RegionCellTable {
    /// Reads `cell` (uint64, int64 or H3 hex text) and `region_id` columns.
    ///
    /// # Errors
    /// [`Error::Input`] for a missing column or unusable type, [`Error::Geography`] for a
    /// null or unparsable value.
    pub fn from_arrow(batches: &[RecordBatch]) -> Result<Self> {
        Ok(Self {
            cell: required_cells(batches, "region_cells")?,
            region_id: required_texts(
                text_column(batches, "region_cells", "region_id")?,
                "region_cells.region_id",
            )?,
        })
    }

    pub(crate) fn check_lengths(&self) -> Result<()> {
        if self.cell.len() != self.region_id.len() {
            return Err(length_mismatch("region_cells"));
        }
        Ok(())
    }
}

/// The zones of interest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneTable {
    /// Unique zone ids.
    pub zone_id: Vec<String>,
    /// Display names (`None`: the id).
    pub name: Vec<Option<String>>,
    /// Optional categories (`retail`, `horeca`, ...).
    pub category: Vec<Option<String>>,
}

impl ZoneTable {
    /// Reads `zone_id` and optional `name` and `category` columns.
    ///
    /// # Errors
    /// [`Error::Input`] for a missing column or unusable type, [`Error::Geography`] for a
    /// null id.
    pub fn from_arrow(batches: &[RecordBatch]) -> Result<Self> {
        Ok(Self {
            zone_id: required_texts(text_column(batches, "zones", "zone_id")?, "zones.zone_id")?,
            name: optional_text_column(batches, "zones", "name")?,
            category: optional_text_column(batches, "zones", "category")?,
        })
    }

    pub(crate) fn check_lengths(&self) -> Result<()> {
        let n = self.zone_id.len();
        if self.name.len() != n || self.category.len() != n {
            return Err(length_mismatch("zones"));
        }
        Ok(())
    }
}

/// The cells of each zone, at the analysis resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneCellTable {
    /// The zone of each row.
    pub zone_id: Vec<String>,
    /// H3 cells at the analysis resolution.
    pub cell: Vec<u64>,
}

impl ZoneCellTable {
    /// Reads `zone_id` and `cell` (uint64, int64 or H3 hex text) columns.
    ///
    /// # Errors
    /// [`Error::Input`] for a missing column or unusable type, [`Error::Geography`] for a
    /// null or unparsable value.
    pub fn from_arrow(batches: &[RecordBatch]) -> Result<Self> {
        Ok(Self {
            zone_id: required_texts(
                text_column(batches, "zone_cells", "zone_id")?,
                "zone_cells.zone_id",
            )?,
            cell: required_cells(batches, "zone_cells")?,
        })
    }

    pub(crate) fn check_lengths(&self) -> Result<()> {
        if self.cell.len() != self.zone_id.len() {
            return Err(length_mismatch("zone_cells"));
        }
        Ok(())
    }
}
