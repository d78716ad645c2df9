//! The fast lat/lon locator gives exactly h3o's cell for every point: random points
//! clustered anywhere on the globe at every resolution, points on and next to cell
//! edges and vertices, near face centres, face edges, pentagons, poles and the
//! antimeridian, a million points in random order over a city, and the real positions
//! of a third-party operator sample. Its raster, shared by threads, stays within its
//! budget.

use std::sync::Arc;

use crowdtally::geo::{CellLocator, CellRaster, DEFAULT_RASTER_BUDGET};
use h3o::{CellIndex, LatLng, Resolution};
use proptest::prelude::*;

/// h3o's cell, the reference every answer is held to.
fn exact(lat: f64, lon: f64, resolution: Resolution) -> Option<CellIndex> {
    if !(lat.is_finite() && lon.is_finite()) || lat.abs() > 90.0 || lon.abs() > 180.0 {
        return None;
    }
    LatLng::new(lat, lon).ok().map(|p| p.to_cell(resolution))
}

/// Locates every point twice (the first pass teaches the locator the cells, the second
/// answers from them where it can), asserting h3o's cell each time; returns how many
/// points of the second pass were answered without h3o.
fn assert_exact(locator: &mut CellLocator, points: &[(f64, f64)]) -> u64 {
    let resolution = locator.resolution();
    for (pass, _) in ["teach", "answer"].iter().enumerate() {
        let (fast_before, _) = locator.counts();
        for &(lat, lon) in points {
            assert_eq!(
                locator.cell(lat, lon),
                exact(lat, lon, resolution),
                "({lat:?}, {lon:?}) at resolution {resolution}"
            );
        }
        if pass == 1 {
            return locator.counts().0 - fast_before;
        }
    }
    unreachable!("two passes")
}

/// Unit vector of a position in degrees.
fn vector(lat: f64, lon: f64) -> [f64; 3] {
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Degrees of the point `t` of the way along the great circle from `a` to `b`.
fn between(from: LatLng, to: LatLng, share: f64) -> (f64, f64) {
    let (start, end) = (vector(from.lat(), from.lng()), vector(to.lat(), to.lng()));
    let point: Vec<f64> = (0..3)
        .map(|axis| start[axis] * (1.0 - share) + end[axis] * share)
        .collect();
    let norm = point.iter().map(|c| c * c).sum::<f64>().sqrt();
    let (x, y, z) = (point[0] / norm, point[1] / norm, point[2] / norm);
    (z.asin().to_degrees(), y.atan2(x).to_degrees())
}

/// Points on and beside every edge and vertex of `cells`: vertices, points along each
/// edge, each moved by tiny steps either way in latitude, in longitude and in both.
fn boundary_points(cells: impl IntoIterator<Item = CellIndex>) -> Vec<(f64, f64)> {
    const STEPS: [f64; 9] = [0.0, 1e-14, -1e-14, 1e-11, -1e-11, 1e-9, -1e-9, 1e-7, -1e-7];
    let mut points = Vec::new();
    for cell in cells {
        let boundary = cell.boundary();
        let centre = LatLng::from(cell);
        points.push((centre.lat(), centre.lng()));
        for (k, &a) in boundary.iter().enumerate() {
            let b = boundary[(k + 1) % boundary.len()];
            for t in [0.0, 1e-9, 0.5, 1.0 - 1e-9] {
                let (lat, lon) = between(a, b, t);
                for step in STEPS {
                    for (dlat, dlon) in [(step, 0.0), (0.0, step), (step, step), (step, -step)] {
                        points.push(((lat + dlat).clamp(-90.0, 90.0), lon + dlon));
                    }
                }
            }
        }
    }
    points.retain(|&(_, lon)| lon.abs() <= 180.0);
    points
}

fn resolution(r: u8) -> Resolution {
    Resolution::try_from(r).expect("0..=15")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Clusters of random points (as pings cluster around places) anywhere, at every
    /// resolution: the same cells as h3o.
    #[test]
    fn clustered_points_get_h3o_cells(
        lat in -89.9_f64..89.9,
        lon in -179.9_f64..179.9,
        r in 0_u8..=15,
        spread_edges in 0.5_f64..8.0,
        seed in any::<u64>(),
    ) {
        let res = resolution(r);
        let spread = res.edge_length_rads().to_degrees() * spread_edges;
        let mut state = seed | 1;
        let mut uniform = move || {
            // xorshift64*: a few thousand draws, no quality needed beyond spread.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1_u64 << 53) as f64
        };
        let points: Vec<(f64, f64)> = (0..1_500)
            .map(|_| {
                let lat = (lat + (uniform() - 0.5) * spread).clamp(-90.0, 90.0);
                let lon = lon + (uniform() - 0.5) * spread / lat.to_radians().cos().max(0.05);
                (lat, ((lon + 540.0) % 360.0) - 180.0)
            })
            .collect();
        let mut locator = CellLocator::new(res);
        assert_exact(&mut locator, &points);
    }

    /// Points on and a hair beside the edges and vertices of random cells and their
    /// neighbours.
    #[test]
    fn points_on_and_beside_edges_get_h3o_cells(
        lat in -88.0_f64..88.0,
        lon in -179.0_f64..179.0,
        r in 2_u8..=15,
    ) {
        let res = resolution(r);
        let centre = exact(lat, lon, res).expect("valid");
        let cells: Vec<CellIndex> = centre.grid_disk::<Vec<_>>(1);
        let mut locator = CellLocator::new(res);
        let fast = assert_exact(&mut locator, &boundary_points(cells));
        prop_assert!(fast > 0, "no point was answered without h3o");
    }
}

/// Kortrijk's streets at the analysis resolution: the real workload, nearly all points
/// answered without h3o.
#[test]
fn kortrijk_at_resolution_nine_is_exact_and_mostly_fast() {
    let mut locator = CellLocator::new(Resolution::Nine);
    let points: Vec<(f64, f64)> = (0..200_u32)
        .flat_map(|i| (0..200_u32).map(move |j| (i, j)))
        .map(|(i, j)| (50.80 + f64::from(i) * 3e-4, 3.22 + f64::from(j) * 4.7e-4))
        .collect();
    let fast = assert_exact(&mut locator, &points);
    assert!(
        fast * 10 > points.len() as u64 * 9,
        "{fast} of {}",
        points.len()
    );
}

/// The 12 pentagons and the cells around them at every resolution, where cells cross
/// face edges; the base cells, which all do; the face centres, where h3o's own angle
/// is least precise.
#[test]
fn pentagons_face_edges_and_face_centres_get_h3o_cells() {
    for r in 1..=15 {
        let res = resolution(r);
        let mut locator = CellLocator::new(res);
        let near_pentagons = res.pentagons().flat_map(|p| p.grid_disk::<Vec<_>>(1));
        assert_exact(&mut locator, &boundary_points(near_pentagons));
        // Face centres are the centres of the base cells that lie on one face.
        let face_centres = CellIndex::base_cells()
            .filter(|c| !c.is_pentagon() && c.icosahedron_faces().len() == 1)
            .map(LatLng::from);
        let mut points = Vec::new();
        for centre in face_centres {
            let cells = exact(centre.lat(), centre.lng(), res)
                .expect("valid")
                .grid_disk::<Vec<_>>(1);
            points.extend(boundary_points(cells));
            for step in [0.0, 1e-15, 1e-12, 1e-9, 1e-6, 1e-4] {
                points.push((centre.lat() + step, centre.lng() - step));
            }
        }
        assert_exact(&mut locator, &points);
    }
    let mut locator = CellLocator::new(Resolution::Zero);
    assert_exact(&mut locator, &boundary_points(CellIndex::base_cells()));
}

/// Poles, the antimeridian and the ends of the valid ranges.
#[test]
fn poles_antimeridian_and_range_ends_get_h3o_cells() {
    for r in [0, 5, 9, 12, 15] {
        let mut locator = CellLocator::new(resolution(r));
        let mut points = Vec::new();
        for lat in [
            -90.0,
            -89.999_999,
            -89.5,
            -89.0,
            0.0,
            89.0,
            89.5,
            89.999_999,
            90.0,
        ] {
            for lon in [
                -180.0,
                -179.999_999_9,
                -90.0,
                0.0,
                45.0,
                179.999_999_9,
                180.0,
            ] {
                points.push((lat, lon));
            }
        }
        let near_poles = [(89.9, 10.0), (-89.9, -10.0), (0.0, 179.9999)]
            .map(|(lat, lon)| exact(lat, lon, resolution(r)).expect("valid"))
            .into_iter()
            .flat_map(|c| c.grid_disk::<Vec<_>>(1));
        points.extend(boundary_points(near_poles));
        assert_exact(&mut locator, &points);
    }
}

/// Positions that are not points on the globe have no cell.
#[test]
fn invalid_positions_have_no_cell() {
    let mut locator = CellLocator::new(Resolution::Nine);
    for (lat, lon) in [
        (f64::NAN, 3.0),
        (50.0, f64::NAN),
        (f64::INFINITY, 3.0),
        (50.0, f64::NEG_INFINITY),
        (90.000_001, 3.0),
        (-90.5, 3.0),
        (50.0, 180.000_1),
        (50.0, -181.0),
    ] {
        assert_eq!(locator.cell(lat, lon), None, "({lat}, {lon})");
    }
    assert_eq!(locator.counts(), (0, 0));
}

/// A batch located as bits gives the bits of the cells a batch of `CellIndex` gives, 0
/// for invalid positions; every valid point is counted once, by the raster or h3o.
#[test]
fn cell_bits_are_the_bits_of_the_cells() {
    let mut next = uniform(11);
    let mut lat: Vec<f64> = (0..20_000).map(|_| 50.80 + next() * 0.05).collect();
    let mut lon: Vec<f64> = (0..20_000).map(|_| 3.20 + next() * 0.05).collect();
    for (k, (a, o)) in [
        (f64::NAN, 3.0),
        (91.0, 3.0),
        (50.0, -181.0),
        (50.0, f64::INFINITY),
    ]
    .into_iter()
    .enumerate()
    {
        lat[k * 1000] = a;
        lon[k * 1000] = o;
    }
    let raster = Arc::new(CellRaster::new(Resolution::Nine, DEFAULT_RASTER_BUDGET));
    let mut by_bits = CellLocator::with_raster(Arc::clone(&raster));
    let mut by_cells = CellLocator::with_raster(raster);
    let (mut bits, mut cells) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        by_bits.cell_bits(&lat, &lon, &mut bits);
        by_cells.cells(&lat, &lon, &mut cells);
        assert_eq!(bits.len(), lat.len());
        for (k, (&bits, &cell)) in bits.iter().zip(&cells).enumerate() {
            assert_eq!(bits, cell.map_or(0, u64::from));
            assert_eq!(cell, exact(lat[k], lon[k], Resolution::Nine));
        }
    }
    let (fast, exact) = by_bits.counts();
    assert_eq!(fast + exact, 2 * (lat.len() as u64 - 4));
    assert!(fast > exact, "{fast} from the raster, {exact} from h3o");
}

/// Far more distinct places than the locator keeps: it starts afresh and stays exact.
#[test]
fn many_distinct_places_stay_exact() {
    let mut locator = CellLocator::new(Resolution::Twelve);
    let points: Vec<(f64, f64)> = (0..300_000_u32)
        .map(|i| {
            let lat = -60.0 + f64::from(i % 600) * 0.2;
            let lon = -170.0 + f64::from(i / 600) * 0.68;
            (lat, lon)
        })
        .collect();
    for &(lat, lon) in &points {
        assert_eq!(locator.cell(lat, lon), exact(lat, lon, Resolution::Twelve));
    }
}

/// The positions of the Eurostat MultiMNO sample (antennas and events in Madrid), at
/// every resolution from 5 to 15.
#[test]
fn multimno_positions_get_h3o_cells() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/multimno-sample");
    let mut points = Vec::new();
    for file in ["mno_network.parquet", "mno_events.parquet"] {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(dir.join(file)).expect("sample file"),
        )
        .expect("Parquet")
        .build()
        .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let column = |name: &str| {
                arrow_cast::cast(
                    batch.column_by_name(name).expect(name),
                    &arrow_schema::DataType::Float64,
                )
                .expect("numeric")
            };
            let (lat, lon) = (column("latitude"), column("longitude"));
            let (lat, lon) = (
                lat.as_primitive::<Float64Type>(),
                lon.as_primitive::<Float64Type>(),
            );
            points.extend(
                lat.iter()
                    .zip(lon.iter())
                    .filter_map(|(a, b)| Some((a?, b?))),
            );
        }
    }
    assert!(points.len() > 1_000, "{} positions", points.len());
    for r in 5..=15 {
        let mut locator = CellLocator::new(resolution(r));
        assert_exact(&mut locator, &points);
    }
}

/// A random number generator for points, seeded.
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// A city's worth of positions in random order (as rows in time order are): every
/// point is h3o's cell, and once the raster has its tiles nearly all are answered by it.
#[test]
fn a_million_points_in_random_order_get_h3o_cells_mostly_from_the_raster() {
    let mut next = uniform(17);
    let points: Vec<(f64, f64)> = (0..1_000_000)
        .map(|_| (50.70 + next() * 0.30, 3.05 + next() * 0.45))
        .collect();
    let raster = Arc::new(CellRaster::new(Resolution::Nine, DEFAULT_RASTER_BUDGET));
    let mut locator = CellLocator::with_raster(Arc::clone(&raster));
    let fast = assert_exact(&mut locator, &points);
    assert!(
        fast * 100 > points.len() as u64 * 99,
        "{fast} of {} from the raster or shapes",
        points.len()
    );
    // About 34 km by 32 km, tiles of some 22 km on a side.
    assert!(
        (4..=12).contains(&raster.tiles()),
        "{} tiles",
        raster.tiles()
    );
    assert!(raster.bytes() < 64 << 20, "{} bytes", raster.bytes());
}

/// Locators on several threads share one raster: each tile is built once, and every
/// answer is still h3o's.
#[test]
fn threads_share_one_raster() {
    let mut next = uniform(5);
    let points: Vec<(f64, f64)> = (0..200_000)
        .map(|_| (50.80 + next() * 0.1, 3.20 + next() * 0.15))
        .collect();
    let alone = Arc::new(CellRaster::new(Resolution::Nine, DEFAULT_RASTER_BUDGET));
    assert_exact(&mut CellLocator::with_raster(Arc::clone(&alone)), &points);
    let shared = Arc::new(CellRaster::new(Resolution::Nine, DEFAULT_RASTER_BUDGET));
    std::thread::scope(|scope| {
        // Each thread meets every point, so each would build every tile alone builds.
        for _ in 0..2 {
            let (raster, points) = (Arc::clone(&shared), &points);
            scope.spawn(move || {
                assert_exact(&mut CellLocator::with_raster(raster), points);
            });
        }
    });
    assert!(alone.tiles() > 0);
    assert_eq!(shared.tiles(), alone.tiles());
    assert_eq!(shared.bytes(), alone.bytes());
}

/// Tiles on two continents, too far apart for one index of a locator's tiles: the
/// tiles outside the index are found by their keys, and every answer is still h3o's.
#[test]
fn tiles_far_apart_answer_as_h3o() {
    let mut next = uniform(21);
    let points: Vec<(f64, f64)> = (0..100_000)
        .map(|k| {
            let (lat, lon) = if k % 2 == 0 {
                (50.82, 3.26)
            } else {
                (-33.87, 151.2)
            };
            (lat + next() * 0.05, lon + next() * 0.05)
        })
        .collect();
    let raster = Arc::new(CellRaster::new(Resolution::Twelve, DEFAULT_RASTER_BUDGET));
    let mut locator = CellLocator::with_raster(Arc::clone(&raster));
    let fast = assert_exact(&mut locator, &points);
    assert!(raster.tiles() >= 2, "{} tiles", raster.tiles());
    assert!(
        fast * 100 > points.len() as u64 * 95,
        "{fast} of {} from the raster or shapes",
        points.len()
    );
}

/// A raster with no budget builds nothing; its locator still gives h3o's cells, from
/// the shapes of cells met nearby and from h3o.
#[test]
fn a_raster_without_budget_builds_nothing_and_stays_exact() {
    let mut next = uniform(9);
    let points: Vec<(f64, f64)> = (0..50_000)
        .map(|_| (50.80 + next() * 0.05, 3.20 + next() * 0.05))
        .collect();
    let raster = Arc::new(CellRaster::new(Resolution::Nine, 0));
    assert_exact(&mut CellLocator::with_raster(Arc::clone(&raster)), &points);
    assert_eq!((raster.tiles(), raster.bytes()), (0, 0));
}

/// Points scattered over a continent, a few per tile, build no tile: a tile is worth
/// building only where points are many.
#[test]
fn scattered_points_build_no_tile() {
    let mut next = uniform(3);
    let points: Vec<(f64, f64)> = (0..20_000)
        .map(|_| (36.0 + next() * 30.0, -10.0 + next() * 40.0))
        .collect();
    let raster = Arc::new(CellRaster::new(Resolution::Nine, DEFAULT_RASTER_BUDGET));
    assert_exact(&mut CellLocator::with_raster(Arc::clone(&raster)), &points);
    assert_eq!(raster.tiles(), 0);
}
