//! Tiny fixtures for the documentation examples (not part of the API).

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use h3o::{LatLng, Resolution};

use crate::Geography;
use crate::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};

/// A country `BE` with one leaf `kortrijk` (one resolution-7 cell) and one zone.
///
/// # Panics
/// Never: the fixture is valid by construction.
#[must_use]
pub fn geography() -> Geography {
    let point = LatLng::new(50.828, 3.265).expect("valid point");
    let regions = RegionTable {
        region_id: vec!["BE".into(), "kortrijk".into()],
        level: vec!["country".into(), "municipality".into()],
        parent_id: vec![None, Some("BE".into())],
        population: vec![None, Some(80_000)],
        name: Vec::new(),
    };
    let region_cells = RegionCellTable {
        cell: vec![point.to_cell(Resolution::Seven).into()],
        region_id: vec!["kortrijk".into()],
    };
    let zones = ZoneTable {
        zone_id: vec!["grote-markt".into()],
        name: vec![Some("Grote Markt".into())],
        category: vec![Some("culture".into())],
    };
    let zone_cells = ZoneCellTable {
        zone_id: vec!["grote-markt".into()],
        cell: vec![point.to_cell(Resolution::Nine).into()],
    };
    Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["kortrijk".to_owned()],
    )
    .expect("valid fixture")
}

/// Three pings of one subscriber, the last with no position.
///
/// # Panics
/// Never: the batch is valid by construction.
#[must_use]
pub fn pings() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber", DataType::Utf8, true),
        Field::new("ts", DataType::Utf8, true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["206010000000001"; 3])),
            Arc::new(StringArray::from(vec![
                "2026-07-01 10:00:00",
                "2026-07-01 11:00:00",
                "2026-07-01 12:00:00",
            ])),
            Arc::new(Float64Array::from(vec![Some(50.828), Some(50.828), None])),
            Arc::new(Float64Array::from(vec![Some(3.265), Some(3.265), None])),
        ],
    )
    .expect("valid fixture")
}
