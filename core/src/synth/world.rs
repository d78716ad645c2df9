//! The synthetic country: a tree of provinces, arrondissements and municipalities made
//! of H3 cells around a study city near a border, with zones of interest in the city.

use h3o::{CellIndex, LatLng, Resolution};

use super::people::Place;
use super::rng::Rng;
use crate::error::{Error, Result};
use crate::geo::{Geography, RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};

/// The resolution of municipality cells.
pub const REGION_RESOLUTION: Resolution = Resolution::Seven;
/// The analysis resolution of zones and places.
pub const RESOLUTION: Resolution = Resolution::Nine;

/// Kortrijk's Grote Markt.
const CENTRE: (f64, f64) = (50.8280, 3.2650);
/// The border runs east–west this far south of the centre (degrees of latitude): the
/// country lies north of it.
const BORDER_SOUTH: f64 = 0.075;

/// One municipality of the synthetic country.
#[derive(Clone, Debug)]
pub struct Municipality {
    /// Region id.
    pub id: String,
    /// Its resolution-7 cells.
    pub cells: Vec<CellIndex>,
    /// Inhabitants at full scale.
    pub population: u64,
    /// The operator's share of its inhabitants.
    pub market_share: f64,
    /// Distance of its seed cell from the city centre, in km.
    pub distance_km: f64,
}

/// One zone of interest in the study city.
#[derive(Clone, Debug)]
pub struct ZoneSpot {
    /// Zone id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Category.
    pub category: &'static str,
    /// Its resolution-9 cells.
    pub cells: Vec<CellIndex>,
    /// The same cells with their centres, computed once (no geometry per ping).
    pub places: Vec<Place>,
}

/// The synthetic geography and the facts the population model needs about it.
#[derive(Clone, Debug)]
pub struct World {
    /// Municipalities; index 0 is the study city.
    pub municipalities: Vec<Municipality>,
    /// Region tree: country, provinces, arrondissements, municipalities.
    pub regions: RegionTable,
    /// Municipality cells.
    pub region_cells: RegionCellTable,
    /// Zones.
    pub zones: ZoneTable,
    /// Zone cells.
    pub zone_cells: ZoneCellTable,
    /// The zones with their cells, for the population model.
    pub spots: Vec<ZoneSpot>,
    /// The validated geography.
    pub geography: Geography,
    /// Cells across the border (for foreign homes seen only when they cross).
    pub abroad: Vec<CellIndex>,
}

fn cell_at(lat: f64, lon: f64, resolution: Resolution) -> CellIndex {
    LatLng::new(lat, lon)
        .expect("synthetic coordinates are valid")
        .to_cell(resolution)
}

/// A point `north_m` metres north and `east_m` metres east of the centre.
fn offset(north_m: f64, east_m: f64) -> (f64, f64) {
    let lat = CENTRE.0 + north_m / 111_320.0;
    let lon = CENTRE.1 + east_m / (111_320.0 * CENTRE.0.to_radians().cos());
    (lat, lon)
}

fn zone_spots() -> Vec<ZoneSpot> {
    let at = |(north, east): (f64, f64)| {
        let (lat, lon) = offset(north, east);
        cell_at(lat, lon, RESOLUTION)
    };
    let disk = |north: f64, east: f64, k: u32| at((north, east)).grid_disk::<Vec<_>>(k);
    let street = |from: (f64, f64), to: (f64, f64)| {
        let (a, b) = (at(from), at(to));
        a.grid_path_cells(b).map_or_else(
            |_| vec![a, b],
            |path| path.filter_map(Result::ok).collect::<Vec<_>>(),
        )
    };
    vec![
        ZoneSpot {
            id: "city-centre",
            name: "City centre",
            category: "retail",
            cells: disk(0.0, 0.0, 4),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "grote-markt",
            name: "Grote Markt (market square)",
            category: "horeca",
            cells: disk(0.0, 0.0, 0),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "lange-steenstraat",
            name: "Lange Steenstraat",
            category: "retail",
            cells: street((0.0, 0.0), (-900.0, -700.0)),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "korte-steenstraat",
            name: "Korte Steenstraat",
            category: "retail",
            cells: street((0.0, 0.0), (500.0, 800.0)),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "station",
            name: "Station",
            category: "transport",
            cells: disk(-900.0, -300.0, 1),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "hotel-district",
            name: "Hotel district",
            category: "horeca",
            cells: disk(700.0, -200.0, 1),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "texture-museum",
            name: "Texture museum",
            category: "culture",
            cells: disk(600.0, 900.0, 0),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "broeltorens",
            name: "Broel towers",
            category: "culture",
            cells: disk(450.0, 150.0, 0),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "begijnhof",
            name: "Beguinage",
            category: "culture",
            cells: disk(-100.0, 350.0, 0),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "event-site",
            name: "Festival grounds",
            category: "event",
            cells: disk(1_500.0, 2_500.0, 2),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "ring-shopping",
            name: "Ring shopping centre",
            category: "retail",
            cells: disk(-2_200.0, -2_000.0, 1),
            places: Vec::new(),
        },
        ZoneSpot {
            id: "xpo",
            name: "Exhibition centre",
            category: "event",
            cells: disk(-2_600.0, 1_200.0, 1),
            places: Vec::new(),
        },
    ]
}

impl World {
    /// Builds the country with `municipalities` municipalities (the study city first).
    ///
    /// # Errors
    /// [`Error::Config`] naming `municipalities` when there are fewer than 2 or more than
    /// 500.
    #[expect(
        clippy::too_many_lines,
        reason = "the synthetic country is laid out in one place, region tree to zones"
    )]
    pub fn build(municipalities: usize, rng: &mut Rng) -> Result<Self> {
        if !(2..=500).contains(&municipalities) {
            return Err(Error::config(
                "municipalities",
                format!("must be from 2 to 500, got {municipalities}"),
            ));
        }
        let centre7 = cell_at(CENTRE.0, CENTRE.1, REGION_RESOLUTION);
        // About 30 cells (150 km²) per municipality.
        let radius = ((municipalities as f64 * 30.0 / 1.5).sqrt()).ceil() as u32 + 2;
        let border = CENTRE.0 - BORDER_SOUTH;
        let (country, abroad): (Vec<CellIndex>, Vec<CellIndex>) = centre7
            .grid_disk::<Vec<_>>(radius)
            .into_iter()
            .partition(|&c| LatLng::from(c).lat() >= border);
        // Seeds: the city centre, then cells drawn at random, kept at least 3 cells apart.
        let mut seeds = vec![centre7];
        let mut attempts = 0;
        while seeds.len() < municipalities && attempts < 100_000 {
            attempts += 1;
            let candidate = country[rng.below(country.len() as u64) as usize];
            let min_distance = if attempts < 50_000 { 3 } else { 1 };
            if seeds
                .iter()
                .all(|s| s.grid_distance(candidate).unwrap_or(i32::MAX) >= min_distance)
            {
                seeds.push(candidate);
            }
        }
        let mut cells_of = vec![Vec::new(); seeds.len()];
        for &cell in &country {
            let nearest = (0..seeds.len())
                .min_by_key(|&i| (seeds[i].grid_distance(cell).unwrap_or(i32::MAX), i))
                .unwrap_or(0);
            cells_of[nearest].push(cell);
        }
        let centre = LatLng::from(centre7);
        let mut list = Vec::with_capacity(seeds.len());
        for (i, (seed, cells)) in seeds.iter().zip(cells_of).enumerate() {
            let distance_km = centre.distance_km(LatLng::from(*seed));
            let (id, population) = if i == 0 {
                ("kortrijk".to_owned(), 80_000)
            } else {
                // Log-uniform from 5,000 to 60,000 inhabitants.
                let population = (5_000.0 * 12.0_f64.powf(rng.uniform())) as u64;
                (format!("m{i:03}"), population)
            };
            list.push(Municipality {
                id,
                cells,
                population,
                market_share: 0.25 + 0.25 * rng.uniform(),
                distance_km,
            });
        }
        let mut regions = RegionTable {
            region_id: vec!["BE".into(), "P1".into(), "P2".into()],
            level: vec!["country".into(), "province".into(), "province".into()],
            parent_id: vec![None, Some("BE".into()), Some("BE".into())],
            population: vec![None, None, None],
            name: Vec::new(),
        };
        // Six arrondissements by sector around the centre (the city in the first); the
        // first three make province P1, the others P2. Only sectors with municipalities
        // become arrondissements, so that every leaf is a municipality.
        let sector_of: Vec<usize> = seeds
            .iter()
            .enumerate()
            .map(|(i, seed)| {
                if i == 0 {
                    return 0;
                }
                let seed = LatLng::from(*seed);
                let angle = (seed.lat() - centre.lat()).atan2(seed.lng() - centre.lng());
                (((angle + std::f64::consts::PI) / std::f64::consts::TAU * 6.0) as usize).min(5)
            })
            .collect();
        for sector in 0..6 {
            if sector_of.contains(&sector) {
                regions.region_id.push(format!("A{sector}"));
                regions.level.push("arrondissement".into());
                regions
                    .parent_id
                    .push(Some(if sector < 3 { "P1".into() } else { "P2".into() }));
                regions.population.push(None);
            }
        }
        for province in ["P1", "P2"] {
            let has_children = regions.parent_id.iter().flatten().any(|p| p == province);
            if !has_children {
                let at = regions
                    .region_id
                    .iter()
                    .position(|r| r == province)
                    .unwrap_or(0);
                regions.region_id.remove(at);
                regions.level.remove(at);
                regions.parent_id.remove(at);
                regions.population.remove(at);
            }
        }
        let mut region_cells = RegionCellTable::default();
        for (m, &sector) in list.iter().zip(&sector_of) {
            regions.region_id.push(m.id.clone());
            regions.level.push("municipality".into());
            regions.parent_id.push(Some(format!("A{sector}")));
            regions.population.push(Some(m.population as i64));
            for &cell in &m.cells {
                region_cells.cell.push(cell.into());
                region_cells.region_id.push(m.id.clone());
            }
        }

        let mut spots = zone_spots();
        for spot in &mut spots {
            spot.places = spot.cells.iter().map(|&c| Place::of(c)).collect();
        }
        let zones = ZoneTable {
            zone_id: spots.iter().map(|z| z.id.to_owned()).collect(),
            name: spots.iter().map(|z| Some(z.name.to_owned())).collect(),
            category: spots.iter().map(|z| Some(z.category.to_owned())).collect(),
        };
        let mut zone_cells = ZoneCellTable::default();
        for spot in &spots {
            for &cell in &spot.cells {
                zone_cells.zone_id.push(spot.id.to_owned());
                zone_cells.cell.push(cell.into());
            }
        }
        let geography = Geography::from_tables(
            &regions,
            &region_cells,
            &zones,
            &zone_cells,
            RESOLUTION.into(),
            &["kortrijk".to_owned()],
        )?;
        Ok(Self {
            municipalities: list,
            regions,
            region_cells,
            zones,
            zone_cells,
            spots,
            geography,
            abroad,
        })
    }
}
