//! The demo job on built-in data: a small hand-built Kortrijk scenario (two
//! municipalities, two zones, a few hundred subscribers with dirty rows of every kind)
//! is cleaned, pseudonymized and located, and its quality report is printed.
//!
//! Run with `make demo` or `cargo run --example demo`.

use std::error::Error;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
use crowdtally::{Config, Geography, Key, OptOut, RunOptions, Study, SubscriberId};
use h3o::{LatLng, Resolution};

const CENTRE: (f64, f64) = (50.828, 3.265);
const MENEN: (f64, f64) = (50.797, 3.122);

fn geography() -> Result<Geography, Box<dyn Error>> {
    let kortrijk = LatLng::new(CENTRE.0, CENTRE.1)?.to_cell(Resolution::Seven);
    let menen = LatLng::new(MENEN.0, MENEN.1)?.to_cell(Resolution::Seven);
    let square = LatLng::new(CENTRE.0, CENTRE.1)?.to_cell(Resolution::Nine);
    let station = LatLng::new(50.8245, 3.2640)?.to_cell(Resolution::Nine);
    let mut region_cells = RegionCellTable::default();
    for cell in kortrijk.grid_disk::<Vec<_>>(1) {
        region_cells.cell.push(cell.into());
        region_cells.region_id.push("kortrijk".into());
    }
    region_cells.cell.push(menen.into());
    region_cells.region_id.push("menen".into());
    let regions = RegionTable {
        region_id: vec!["BE".into(), "WVL".into(), "kortrijk".into(), "menen".into()],
        level: vec![
            "country".into(),
            "province".into(),
            "municipality".into(),
            "municipality".into(),
        ],
        parent_id: vec![
            None,
            Some("BE".into()),
            Some("WVL".into()),
            Some("WVL".into()),
        ],
        population: vec![None, None, Some(80_000), Some(33_000)],
        name: Vec::new(),
    };
    let zones = ZoneTable {
        zone_id: vec!["grote-markt".into(), "station".into()],
        name: vec![Some("Grote Markt".into()), Some("Station".into())],
        category: vec![Some("culture".into()), Some("transport".into())],
    };
    let zone_cells = ZoneCellTable {
        zone_id: vec!["grote-markt".into(), "station".into()],
        cell: vec![square.into(), station.into()],
    };
    Ok(Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["kortrijk".into()],
    )?)
}

/// Hourly pings of 300 subscribers over a week, with one dirty row in 20.
fn pings() -> Result<RecordBatch, Box<dyn Error>> {
    let mut subscriber = Vec::new();
    let mut ts = Vec::new();
    let mut lat = Vec::new();
    let mut lon = Vec::new();
    let mut state: u64 = 0x5eed;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / f64::from(1_u32 << 31)
    };
    for person in 0..300_u32 {
        let home = if person % 3 == 0 { MENEN } else { CENTRE };
        for hour in 0..(7 * 24) {
            let dirty = next();
            subscriber.push((dirty > 0.01).then(|| format!("2060100{person:08}")));
            let day = 1 + hour / 24;
            ts.push((!(0.01..=0.02).contains(&dirty)).then(|| {
                format!(
                    "2026-07-{day:02} {:02}:{:02}:00",
                    hour % 24,
                    (next() * 60.0) as u32
                )
            }));
            let (jitter_lat, jitter_lon) = ((next() - 0.5) * 0.01, (next() - 0.5) * 0.01);
            let bad = (0.02..0.04).contains(&dirty);
            lat.push(if bad {
                Some(f64::NAN)
            } else {
                Some(home.0 + jitter_lat)
            });
            lon.push(Some(home.1 + jitter_lon));
            if (0.04..0.05).contains(&dirty) {
                // An exact duplicate row.
                subscriber.push(subscriber.last().cloned().flatten());
                ts.push(ts.last().cloned().flatten());
                lat.push(lat.last().copied().flatten());
                lon.push(lon.last().copied().flatten());
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber", DataType::Utf8, true),
        Field::new("ts", DataType::Utf8, true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(subscriber)),
        Arc::new(StringArray::from(ts)),
        Arc::new(Float64Array::from(lat)),
        Arc::new(Float64Array::from(lon)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let geography = geography()?;
    let mut config = Config::new(Key::new(
        b"demo key: use a real secret in production".to_vec(),
    ));
    config.opt_out = OptOut::new(vec![SubscriberId::Text("206010000000007".into())]);
    config.validate()?;
    let prepared =
        Study::new(geography, config)?.prepare([Ok(pings()?)], &RunOptions::default())?;
    let report = prepared.report();
    println!(
        "crowdtally {} demo: a week of hourly pings around Kortrijk\n",
        crowdtally::VERSION
    );
    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    let in_zones = prepared
        .pings()
        .zone_set()
        .iter()
        .filter(|&&s| s != 0)
        .count();
    println!(
        "\n{} pings kept of {} read, {} devices, {} pings in a zone",
        report.pings_kept, report.pings_read, report.devices, in_zones
    );
    Ok(())
}
