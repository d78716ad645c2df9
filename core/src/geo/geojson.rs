//! Geography from GeoJSON polygons, filled to H3 cells by centroid containment.
//!
//! Regions come as one `FeatureCollection` whose features carry `region_id`, `level`,
//! `parent_id` and `population` properties; leaves carry a `Polygon` or `MultiPolygon`
//! (inner regions may have a null geometry; theirs is not used, since they are the union
//! of their leaves). Zones come as another `FeatureCollection` with `zone_id`, `name`
//! and `category` properties. A cell belongs to a polygon when its centre lies inside.

use geo::{Centroid, Coord, LineString, MultiPolygon, Polygon};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{LatLng, Resolution};
use serde_json::Value;

use super::{Geography, RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
use crate::error::{Error, Result};

fn features<'a>(collection: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    if collection.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(Error::geography(
            field,
            "must be a GeoJSON FeatureCollection",
        ));
    }
    collection
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::geography(field, "has no `features` array"))
}

fn property_text(feature: &Value, name: &str) -> Option<String> {
    match feature.get("properties")?.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn ring(value: &Value, field: &str, index: usize) -> Result<LineString<f64>> {
    let invalid = || {
        Error::geography(
            field,
            format!("feature {index}: invalid polygon coordinates"),
        )
    };
    let points = value.as_array().ok_or_else(invalid)?;
    points
        .iter()
        .map(|point| {
            let pair = point.as_array().ok_or_else(invalid)?;
            match (
                pair.first().and_then(Value::as_f64),
                pair.get(1).and_then(Value::as_f64),
            ) {
                (Some(x), Some(y)) => Ok(Coord { x, y }),
                _ => Err(invalid()),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(LineString::new)
}

fn polygon(rings: &Value, field: &str, index: usize) -> Result<Polygon<f64>> {
    let rings = rings.as_array().filter(|r| !r.is_empty()).ok_or_else(|| {
        Error::geography(field, format!("feature {index}: a polygon needs rings"))
    })?;
    let exterior = ring(&rings[0], field, index)?;
    let interiors = rings[1..]
        .iter()
        .map(|r| ring(r, field, index))
        .collect::<Result<Vec<_>>>()?;
    Ok(Polygon::new(exterior, interiors))
}

/// The cells whose centres lie in a feature's geometry; `None` for a null geometry.
fn fill(
    feature: &Value,
    resolution: Resolution,
    field: &str,
    index: usize,
) -> Result<Option<Filled>> {
    let geometry = match feature.get("geometry") {
        None | Some(Value::Null) => return Ok(None),
        Some(geometry) => geometry,
    };
    let coordinates = geometry.get("coordinates").ok_or_else(|| {
        Error::geography(
            field,
            format!("feature {index}: geometry has no coordinates"),
        )
    })?;
    let polygons = match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => vec![polygon(coordinates, field, index)?],
        Some("MultiPolygon") => coordinates
            .as_array()
            .ok_or_else(|| {
                Error::geography(field, format!("feature {index}: invalid MultiPolygon"))
            })?
            .iter()
            .map(|p| polygon(p, field, index))
            .collect::<Result<_>>()?,
        other => {
            return Err(Error::geography(
                field,
                format!(
                    "feature {index}: geometry must be a Polygon or MultiPolygon, got {other:?}"
                ),
            ));
        }
    };
    let mut tiler = TilerBuilder::new(resolution)
        .containment_mode(ContainmentMode::ContainsCentroid)
        .build();
    for polygon in &polygons {
        tiler.add(polygon.clone()).map_err(|e| {
            Error::geography(field, format!("feature {index}: invalid polygon: {e}"))
        })?;
    }
    let cells: Vec<u64> = tiler.into_coverage().map(u64::from).collect();
    if !cells.is_empty() {
        return Ok(Some(Filled {
            cells,
            smaller_than_a_cell: false,
        }));
    }
    // A polygon smaller than a cell holds no cell's centre: it gets the cell of its own
    // centroid, the one it overlaps most but for a sliver at a cell's edge.
    let centroid = MultiPolygon::new(polygons).centroid();
    Ok(centroid
        .and_then(|point| LatLng::new(point.y(), point.x()).ok())
        .map(|centre| Filled {
            cells: vec![u64::from(centre.to_cell(resolution))],
            smaller_than_a_cell: true,
        }))
}

/// The cells of a feature's polygons, and whether they held no cell's centre (the
/// feature then has the cell of its centroid).
struct Filled {
    cells: Vec<u64>,
    smaller_than_a_cell: bool,
}

/// A feature's `population`: absent or null, or a whole number (GIS exports often write
/// integer columns as floats such as `80000.0`). Anything else is an error rather than a
/// silently missing population, which would change every extrapolation factor.
fn population(feature: &Value, index: usize) -> Result<Option<i64>> {
    let value = match feature.get("properties").and_then(|p| p.get("population")) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let whole = value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9e15)
            .map(|f| f as i64)
    });
    whole.map(Some).ok_or_else(|| {
        Error::geography(
            "regions.population",
            format!("feature {index}: must be a whole number, got {value}"),
        )
    })
}

fn parse(text: &str, field: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::geography(field, format!("is not valid JSON: {e}")))
}

fn resolution(value: u8, field: &'static str) -> Result<Resolution> {
    Resolution::try_from(value).map_err(|_| {
        Error::config(
            field,
            format!("must be an H3 resolution from 0 to 15, got {value}"),
        )
    })
}

impl Geography {
    /// Builds a geography from GeoJSON: regions filled at `region_resolution`, zones at
    /// the analysis `resolution`, both by centroid containment.
    ///
    /// # Errors
    /// As [`Geography::from_tables`], plus [`Error::Geography`] naming `regions` or
    /// `zones` for JSON that is not a `FeatureCollection` of polygons with the expected
    /// properties.
    pub fn from_geojson(
        regions: &str,
        zones: &str,
        resolution: u8,
        region_resolution: u8,
        study_area: &[String],
    ) -> Result<Self> {
        let analysis = self::resolution(resolution, "resolution")?;
        let regional = self::resolution(region_resolution, "region_resolution")?;
        let regions = parse(regions, "regions")?;
        let zones = parse(zones, "zones")?;
        let mut notes = Vec::new();
        let mut region_table = RegionTable::default();
        let mut region_cells = RegionCellTable::default();
        for (index, feature) in features(&regions, "regions")?.iter().enumerate() {
            let id = property_text(feature, "region_id").ok_or_else(|| {
                Error::geography("regions.region_id", format!("feature {index}: missing"))
            })?;
            region_table
                .level
                .push(property_text(feature, "level").unwrap_or_default());
            region_table
                .parent_id
                .push(property_text(feature, "parent_id"));
            region_table.population.push(population(feature, index)?);
            region_table.name.push(property_text(feature, "name"));
            if let Some(Filled {
                cells,
                smaller_than_a_cell,
            }) = fill(feature, regional, "regions", index)?
            {
                if smaller_than_a_cell {
                    notes.push(smaller_note("region", &id, regional));
                }
                region_cells
                    .region_id
                    .extend(std::iter::repeat_n(id.clone(), cells.len()));
                region_cells.cell.extend(cells);
            }
            region_table.region_id.push(id);
        }
        // Inner regions' geometries are the union of their leaves': only leaves' cells count.
        let inner: std::collections::HashSet<&str> = region_table
            .parent_id
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let keep: Vec<bool> = region_cells
            .region_id
            .iter()
            .map(|id| !inner.contains(id.as_str()))
            .collect();
        let mut keep_iter = keep.iter();
        region_cells
            .cell
            .retain(|_| *keep_iter.next().unwrap_or(&true));
        let mut keep_iter = keep.iter();
        region_cells
            .region_id
            .retain(|_| *keep_iter.next().unwrap_or(&true));

        let mut zone_table = ZoneTable::default();
        let mut zone_cells = ZoneCellTable::default();
        for (index, feature) in features(&zones, "zones")?.iter().enumerate() {
            let id = property_text(feature, "zone_id").ok_or_else(|| {
                Error::geography("zones.zone_id", format!("feature {index}: missing"))
            })?;
            zone_table.name.push(property_text(feature, "name"));
            zone_table.category.push(property_text(feature, "category"));
            if let Some(Filled {
                cells,
                smaller_than_a_cell,
            }) = fill(feature, analysis, "zones", index)?
            {
                if smaller_than_a_cell {
                    notes.push(smaller_note("zone", &id, analysis));
                }
                zone_cells
                    .zone_id
                    .extend(std::iter::repeat_n(id.clone(), cells.len()));
                zone_cells.cell.extend(cells);
            }
            zone_table.zone_id.push(id);
        }
        let mut geography = Self::from_tables(
            &region_table,
            &region_cells,
            &zone_table,
            &zone_cells,
            resolution,
            study_area,
        )?;
        geography.notes = notes;
        Ok(geography)
    }
}

/// What to say of a polygon smaller than a cell.
fn smaller_note(kind: &str, id: &str, resolution: Resolution) -> String {
    format!(
        "{kind} {id:?} is smaller than a cell at resolution {}: it holds no cell's centre \
         and was given the one cell of its centroid (a finer resolution follows its shape)",
        u8::from(resolution)
    )
}
