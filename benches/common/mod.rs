//! Synthetic inputs shared by the benches: a grid of municipalities around Kortrijk with
//! a zone and a category, and hourly pings scattered over about 30 km.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use crowdtally::Geography;
use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
use h3o::{LatLng, Resolution};

/// Input sizes of every bench, in pings.
pub const SIZES: [usize; 2] = [1_000_000, 10_000_000];
/// Hourly pings per device (about six weeks).
pub const PINGS_PER_DEVICE: usize = 1_000;

/// Municipalities `m0`..`m36` (a disk of resolution-7 cells), study area `m0`, and one
/// zone `centre` (category `retail`) of about 300 resolution-9 cells.
#[must_use]
pub fn geography() -> Geography {
    let centre = LatLng::new(50.828, 3.265).expect("valid point");
    let home = centre.to_cell(Resolution::Seven);
    let leaves: Vec<_> = home.grid_disk::<Vec<_>>(3);
    let mut region_table = RegionTable {
        region_id: vec!["BE".into()],
        level: vec!["country".into()],
        parent_id: vec![None],
        population: vec![None],
        name: Vec::new(),
    };
    let mut region_cells = RegionCellTable::default();
    for (i, cell) in leaves.iter().enumerate() {
        region_table.region_id.push(format!("m{i}"));
        region_table.level.push("municipality".into());
        region_table.parent_id.push(Some("BE".into()));
        region_table.population.push(Some(10_000));
        region_cells.cell.push((*cell).into());
        region_cells.region_id.push(format!("m{i}"));
    }
    let square = centre.to_cell(Resolution::Nine);
    let zones = ZoneTable {
        zone_id: vec!["centre".into()],
        name: vec![None],
        category: vec![Some("retail".into())],
    };
    let zone_cells = ZoneCellTable {
        zone_id: square
            .grid_disk::<Vec<_>>(10)
            .iter()
            .map(|_| "centre".into())
            .collect(),
        cell: square
            .grid_disk::<Vec<_>>(10)
            .into_iter()
            .map(u64::from)
            .collect(),
    };
    Geography::from_tables(
        &region_table,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["m0".into()],
    )
    .expect("valid geography")
}

/// Uniform numbers in [0, 1) from a seeded linear congruential generator: inputs that are
/// the same on every run.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// Points scattered over about 30 km around Kortrijk, hourly per device, as H3 cells at
/// resolution 11 or as lat/lon.
#[must_use]
pub fn pings(n: usize, as_cells: bool) -> RecordBatch {
    let mut uniform = uniform(42);
    let subscriber: StringArray = (0..n)
        .map(|i| Some(format!("20601{:010}", i / PINGS_PER_DEVICE)))
        .collect();
    let ts = Int64Array::from_iter_values(
        (0..n).map(|i| 1_782_864_000 + (i % PINGS_PER_DEVICE) as i64 * 3_600),
    );
    let lat: Vec<f64> = (0..n).map(|_| 50.828 + (uniform() - 0.5) * 0.3).collect();
    let lon: Vec<f64> = (0..n).map(|_| 3.265 + (uniform() - 0.5) * 0.4).collect();
    let (fields, position): (Vec<Field>, Vec<ArrayRef>) = if as_cells {
        let cells: UInt64Array = lat
            .iter()
            .zip(&lon)
            .map(|(&a, &o)| {
                Some(u64::from(
                    LatLng::new(a, o)
                        .expect("valid")
                        .to_cell(Resolution::Eleven),
                ))
            })
            .collect();
        (
            vec![Field::new("cell", DataType::UInt64, true)],
            vec![Arc::new(cells)],
        )
    } else {
        (
            vec![
                Field::new("lat", DataType::Float64, true),
                Field::new("lon", DataType::Float64, true),
            ],
            vec![
                Arc::new(Float64Array::from(lat)),
                Arc::new(Float64Array::from(lon)),
            ],
        )
    };
    let mut all_fields = vec![
        Field::new("subscriber", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
    ];
    all_fields.extend(fields);
    let mut columns: Vec<ArrayRef> = vec![Arc::new(subscriber), Arc::new(ts)];
    columns.extend(position);
    RecordBatch::try_new(Arc::new(Schema::new(all_fields)), columns).expect("valid batch")
}
