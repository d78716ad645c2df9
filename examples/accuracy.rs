//! Accuracy of homes and classes on a small synthetic population with known truth.
//!
//! 2,000 people over four weeks of July 2026 around a study city: residents, commuters,
//! day visitors, overnight visitors (1 to 4 nights in the hotel district) and inbound
//! roamers; a quarter of the non-residents live just across the city's boundary. Their
//! phones ping about hourly with jitter, 15 % of pings missing and about 500 m of
//! position noise. The example runs the method and compares each person's detected
//! home and class with what the person really is, printing the home accuracy and the
//! class confusion matrix (quoted in docs/METHOD.md).
//!
//! Run with `cargo run --example accuracy`.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use crowdtally::geo::{RegionCellTable, RegionTable, UNKNOWN_REGION, ZoneCellTable, ZoneTable};
use crowdtally::profile::DeviceClass;
use crowdtally::{Config, Geography, Key, Period, PingColumns, Pseudonymizer, prepare, profile};
use h3o::{CellIndex, LatLng, Resolution};

const PEOPLE: u32 = 2_000;
const DAYS: i64 = 28;
/// 2026-07-01T00:00:00+02:00.
const START: i64 = 1_782_856_800;
const CITY: (f64, f64) = (50.828, 3.265);
/// Neighbouring municipalities, 10 to 20 km away.
const TOWNS: [(&str, f64, f64); 6] = [
    ("menen", 50.797, 3.122),
    ("waregem", 50.889, 3.427),
    ("roeselare", 50.946, 3.123),
    ("izegem", 50.915, 3.213),
    ("avelgem", 50.776, 3.445),
    ("tielt", 50.999, 3.326),
];
/// Where roamers live: over the border, in no leaf region.
const ABROAD: (f64, f64) = (50.62, 3.06);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Resident,
    Commuter,
    DayVisitor,
    OvernightVisitor,
    Roamer,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() * f64::from(n)) as u32
    }
}

fn cell(lat: f64, lon: f64, resolution: Resolution) -> Result<CellIndex, Box<dyn Error>> {
    Ok(LatLng::new(lat, lon)?.to_cell(resolution))
}

fn geography() -> Result<Geography, Box<dyn Error>> {
    let mut regions = RegionTable {
        region_id: vec!["BE".into(), "kortrijk".into()],
        level: vec!["country".into(), "municipality".into()],
        parent_id: vec![None, Some("BE".into())],
        population: vec![None, Some(80_000)],
    };
    let mut region_cells = RegionCellTable::default();
    let mut add_leaf = |id: &str, lat: f64, lon: f64| -> Result<(), Box<dyn Error>> {
        for c in cell(lat, lon, Resolution::Seven)?.grid_disk::<Vec<_>>(1) {
            region_cells.cell.push(c.into());
            region_cells.region_id.push(id.into());
        }
        Ok(())
    };
    add_leaf("kortrijk", CITY.0, CITY.1)?;
    for (id, lat, lon) in TOWNS {
        regions.region_id.push(id.into());
        regions.level.push("municipality".into());
        regions.parent_id.push(Some("BE".into()));
        regions.population.push(Some(30_000));
        add_leaf(id, lat, lon)?;
    }
    // A neighbouring municipality wrapped around the city (its second ring of cells), so
    // that the positions of people living near the boundary scatter across it.
    regions.region_id.push("kuurne".into());
    regions.level.push("municipality".into());
    regions.parent_id.push(Some("BE".into()));
    regions.population.push(Some(13_000));
    for c in cell(CITY.0, CITY.1, Resolution::Seven)?
        .grid_ring_fast(2)
        .flatten()
    {
        region_cells.cell.push(c.into());
        region_cells.region_id.push("kuurne".into());
    }
    let centre = cell(CITY.0, CITY.1, Resolution::Nine)?;
    let hotels = cell(CITY.0 + 0.006, CITY.1 - 0.008, Resolution::Nine)?;
    let zones = ZoneTable {
        zone_id: vec!["centre".into(), "hotels".into()],
        name: vec![Some("City centre".into()), Some("Hotel district".into())],
        category: vec![Some("retail".into()), Some("horeca".into())],
    };
    let mut zone_cells = ZoneCellTable::default();
    for (zone, middle) in [("centre", centre), ("hotels", hotels)] {
        for c in middle.grid_disk::<Vec<_>>(2) {
            zone_cells.zone_id.push(zone.into());
            zone_cells.cell.push(c.into());
        }
    }
    Ok(Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["kortrijk".into()],
    )?)
}

/// Where a person is at an hour: (lat, lon) of their true place.
fn place(
    kind: Kind,
    home: (f64, f64),
    hour: i64,
    visit_days: &[i64],
    stay: (i64, i64),
    rng: &mut Rng,
) -> (f64, f64) {
    let day = hour / 24;
    let hour_of_day = hour % 24;
    let weekday = (day + 2) % 7 < 5; // 2026-07-01 is a Wednesday.
    let centre = (
        CITY.0 + (rng.next() - 0.5) * 0.004,
        CITY.1 + (rng.next() - 0.5) * 0.006,
    );
    let hotel = (CITY.0 + 0.006, CITY.1 - 0.008);
    let daytime = (9..18).contains(&hour_of_day);
    match kind {
        Kind::Resident => {
            if daytime && rng.next() < 0.3 {
                centre
            } else {
                home
            }
        }
        Kind::Commuter => {
            if weekday && (8..17).contains(&hour_of_day) {
                centre
            } else {
                home
            }
        }
        Kind::DayVisitor | Kind::Roamer if stay.1 == 0 => {
            if visit_days.contains(&day) && (10..16).contains(&hour_of_day) {
                centre
            } else {
                home
            }
        }
        Kind::OvernightVisitor | Kind::Roamer => {
            let (arrive, nights) = stay;
            let from = arrive * 24 + 12;
            let until = (arrive + nights) * 24 + 11;
            if (from..until).contains(&hour) {
                if daytime { centre } else { hotel }
            } else {
                home
            }
        }
        Kind::DayVisitor => home,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let geography = geography()?;
    let mut rng = Rng(20_260_701);
    let mut people = Vec::new();
    let (mut subscriber, mut ts, mut lat, mut lon, mut country) =
        (vec![], vec![], vec![], vec![], vec![]);
    for person in 0..PEOPLE {
        let draw = rng.next();
        let kind = match draw {
            d if d < 0.30 => Kind::Resident,
            d if d < 0.45 => Kind::Commuter,
            d if d < 0.75 => Kind::DayVisitor,
            d if d < 0.90 => Kind::OvernightVisitor,
            _ => Kind::Roamer,
        };
        let (home_id, home) = match kind {
            Kind::Resident => ("kortrijk", CITY),
            Kind::Roamer => ("abroad", ABROAD),
            _ if rng.next() < 0.25 => {
                // Just across the city's boundary, about 4.5 km from the centre.
                let angle = rng.next() * std::f64::consts::TAU;
                (
                    "kuurne",
                    (CITY.0 + 0.040 * angle.sin(), CITY.1 + 0.064 * angle.cos()),
                )
            }
            _ => {
                let (id, a, o) = TOWNS[rng.below(TOWNS.len() as u32) as usize];
                (id, (a, o))
            }
        };
        let home = (
            home.0 + (rng.next() - 0.5) * 0.01,
            home.1 + (rng.next() - 0.5) * 0.015,
        );
        let visit_days: Vec<i64> = (0..=rng.below(3))
            .map(|_| i64::from(rng.below(DAYS as u32)))
            .collect();
        let overnight =
            kind == Kind::OvernightVisitor || (kind == Kind::Roamer && rng.next() < 0.5);
        let stay = if overnight {
            (
                i64::from(rng.below(DAYS as u32 - 5)),
                1 + i64::from(rng.below(4)),
            )
        } else {
            (0, 0)
        };
        let code = (kind == Kind::Roamer).then(|| if rng.next() < 0.5 { "FR" } else { "NL" });
        people.push((kind, home_id, code));
        for hour in 0..DAYS * 24 {
            if rng.next() < 0.15 {
                continue; // a missing ping
            }
            let (a, o) = place(kind, home, hour, &visit_days, stay, &mut rng);
            // About 500 m of noise (1 degree of latitude is 111 km).
            subscriber.push(Some(format!("2060{person:011}")));
            ts.push(START + hour * 3600 + i64::from(rng.below(1200)) - 600);
            lat.push(a + (rng.next() + rng.next() - 1.0) * 0.0063);
            lon.push(o + (rng.next() + rng.next() - 1.0) * 0.0095);
            country.push(code.or(Some("BE")));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("country", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(subscriber)),
        Arc::new(Int64Array::from(ts)),
        Arc::new(Float64Array::from(lat)),
        Arc::new(Float64Array::from(lon)),
        Arc::new(StringArray::from(country)),
    ];
    let batch = RecordBatch::try_new(schema, columns)?;

    let mut config = Config::new(Key::new(b"accuracy example key, not a secret".to_vec()));
    config.period = Some(Period::new(
        jiff::civil::date(2026, 7, 1),
        jiff::civil::date(2026, 7, 29),
    )?);
    let prepared = prepare([Ok(batch)], &geography, &config, &PingColumns::default())?;
    let profiles = profile(&prepared.pings, &geography, &config)?;

    // Each device back to its person, through the same pseudonyms.
    let pseudonymizer = Pseudonymizer::new(&config.key, "2026Q3")?;
    let row_of: BTreeMap<u64, usize> = profiles
        .devices
        .device
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, i))
        .collect();
    let regions = geography.regions();
    let (mut domestic, mut homes_right) = (0_u32, 0_u32);
    let mut confusion: BTreeMap<(Kind, DeviceClass), u32> = BTreeMap::new();
    for (person, &(kind, home_id, _)) in people.iter().enumerate() {
        let device = pseudonymizer.device(format!("2060{person:011}").as_bytes());
        let Some(&row) = row_of.get(&device) else {
            continue;
        };
        let d = &profiles.devices;
        if kind != Kind::Roamer {
            domestic += 1;
            let detected = (d.home[row] != UNKNOWN_REGION).then(|| regions.id(d.home[row]));
            homes_right += u32::from(detected == Some(home_id));
        }
        *confusion.entry((kind, d.class[row])).or_default() += 1;
    }
    println!(
        "{} people, {} pings kept; homes right for {homes_right} of {domestic} domestic people ({:.1} %)",
        people.len(),
        prepared.report.pings_kept,
        100.0 * f64::from(homes_right) / f64::from(domestic)
    );
    println!("\nclass confusion (rows: what the person is; columns: detected class)");
    print!("{:<18}", "");
    for class in DeviceClass::ALL {
        print!("{:>18}", class.name());
    }
    println!();
    for kind in [
        Kind::Resident,
        Kind::Commuter,
        Kind::DayVisitor,
        Kind::OvernightVisitor,
        Kind::Roamer,
    ] {
        print!("{:<18}", format!("{kind:?}"));
        for class in DeviceClass::ALL {
            print!(
                "{:>18}",
                confusion.get(&(kind, class)).copied().unwrap_or(0)
            );
        }
        println!();
    }
    Ok(())
}
