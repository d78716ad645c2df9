//! A lookup raster for lat/lon → H3 cell whose speed does not depend on the order of the
//! points: a grid of small lat/lon pixels, built tile by tile where points fall, shared
//! by every thread of a run.
//!
//! # Why the answer is always h3o's
//! A pixel is answered by a table lookup only when its four corners are inside every
//! edge of one cell's shape ([`CellShape`], see the locator) by the shape's margin plus
//! a slack that covers the whole pixel:
//! - the cell is the intersection of six hemispheres (spherical caps), which is convex,
//!   so it holds the geodesic hull of the corners;
//! - a pixel's sides are two meridians (geodesics, inside that hull) and two parallels,
//!   which bulge from the geodesic between their ends by less than `Δλ²` (Δλ the pixel's
//!   width in radians of longitude), covered by the slack;
//! - the pixel a point is looked up in comes from rounded arithmetic, so the slack also
//!   covers a pixel grown by [`GROWTH_DEGREES`] on every side, far above that rounding.
//!
//! Every point of such a pixel is then inside the cell's edges by more than the shape's
//! margin, where h3o gives that cell (the locator's argument). A pixel whose corners are
//! not all surely in one cell lists the cells that surely hold one of its corners: a
//! point there is tried against their shapes, as the locator does, and otherwise asked
//! of h3o. Pixels touching a pentagon, a cell across an icosahedron edge, or beyond
//! ±[`MAX_LATITUDE`] have no shape and are always asked of h3o.
//!
//! # Memory
//! A tile is [`SIDE`]² pixels of about a quarter of an edge: 32 cell edges on a side,
//! some 400 cells, about 170 KiB. A tile is built (in a few milliseconds) once a
//! locator has met [`BUILD_AFTER`] points in it, kept while the raster lives, and no
//! more are built once the raster holds its byte budget: points in tiles never built
//! are asked of h3o through the locator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use h3o::{CellIndex, LatLng, Resolution};
use rustc_hash::{FxHashMap, FxHashSet};

use super::locator::{CellShape, Vec3};

/// Pixels on a side of a tile.
const SIDE: usize = 128;

/// Pixels on a cell edge, along a meridian.
const PIXELS_PER_EDGE: f64 = 4.0;

/// Pixels are grown by this (degrees) on every side before they are checked: many
/// orders above the rounding of the pixel a point is put in.
const GROWTH_DEGREES: f64 = 1e-9;

/// Tiles reaching nearer the poles than this (degrees of latitude) are not built.
const MAX_LATITUDE: f64 = 88.0;

/// A pixel entry: below [`MIXED`], the tile's cell number whose shape holds the whole
/// pixel; from [`MIXED`], `MIXED` plus the number of the pixel's candidate list;
/// [`ASK_H3O`], nothing known.
const MIXED: u16 = 0x8000;
const ASK_H3O: u16 = u16::MAX;

/// A corner no shape surely holds; an unused candidate.
const NONE: u16 = u16::MAX;

/// Points a locator sees in a tile before it asks for the tile to be built: a tile costs
/// about as much as a few thousand calls of h3o, so it is built only where points are
/// many, not for points scattered over a continent.
const BUILD_AFTER: u32 = 256;

/// Tiles a locator counts points in before it forgets the counts.
const MAX_COUNTED: usize = 1 << 16;

/// The default byte budget of a raster.
pub const DEFAULT_RASTER_BUDGET: usize = 256 << 20;

/// One tile: its pixels, the cells they name and the shapes of those cells.
#[derive(Debug)]
struct Tile {
    /// The latitude of each pixel row's south edge and the longitude of each pixel
    /// column's west edge (radians), with their sines and cosines.
    rows: Box<[Corner]>,
    columns: Box<[Corner]>,
    pixels: Box<[u16]>,
    cells: Vec<CellIndex>,
    shapes: Vec<CellShape>,
    /// Each mixed pixel's candidates, most corners first.
    candidates: Vec<[u16; 4]>,
}

impl Tile {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.rows.len() + self.columns.len()) * std::mem::size_of::<Corner>()
            + self.pixels.len() * 2
            + self.cells.len() * std::mem::size_of::<CellIndex>()
            + self.shapes.len() * std::mem::size_of::<CellShape>()
            + self.candidates.len() * std::mem::size_of::<[u16; 4]>()
    }
}

/// A latitude or longitude of pixel corners, in radians, with its sine and cosine.
#[derive(Clone, Copy, Debug)]
struct Corner {
    radians: f64,
    sin: f64,
    cos: f64,
}

impl Corner {
    fn at(degrees: f64) -> Self {
        let radians = degrees.to_radians();
        let (sin, cos) = radians.sin_cos();
        Self { radians, sin, cos }
    }
}

/// The pixel grid: fixed once, from the first point, so that pixels are about square
/// near the data.
#[derive(Clone, Copy, Debug)]
struct Grid {
    lat_step: f64,
    lon_step: f64,
}

impl Grid {
    fn new(resolution: Resolution, latitude: f64) -> Self {
        let lat_step = resolution.edge_length_rads().to_degrees() / PIXELS_PER_EDGE;
        let shrink = latitude.abs().min(MAX_LATITUDE).to_radians().cos();
        Self {
            lat_step,
            lon_step: lat_step / shrink,
        }
    }

    /// The pixel row and column of a valid position.
    #[inline]
    fn pixel(&self, lat: f64, lon: f64) -> (u64, u64) {
        (
            ((lat + 90.0) / self.lat_step) as u64,
            ((lon + 180.0) / self.lon_step) as u64,
        )
    }

    fn lat(&self, row: u64) -> f64 {
        row as f64 * self.lat_step - 90.0
    }

    fn lon(&self, column: u64) -> f64 {
        column as f64 * self.lon_step - 180.0
    }
}

/// The key of the tile of a pixel.
#[inline]
fn tile_key(row: u64, column: u64) -> u64 {
    (row / SIDE as u64) << 32 | (column / SIDE as u64)
}

/// The tiles of one resolution, shared by the locators of a run's threads. Cheap to
/// make: nothing is built before a point needs it.
#[derive(Debug)]
pub struct CellRaster {
    resolution: Resolution,
    grid: OnceLock<Grid>,
    /// Every tile asked for: built, or `None` when it could not be (over budget, polar).
    tiles: Mutex<FxHashMap<u64, Option<Arc<Tile>>>>,
    bytes: AtomicUsize,
    budget: usize,
}

impl CellRaster {
    /// A raster of cells at `resolution` that builds tiles while it holds fewer than
    /// `budget` bytes.
    #[must_use]
    pub fn new(resolution: Resolution, budget: usize) -> Self {
        Self {
            resolution,
            grid: OnceLock::new(),
            tiles: Mutex::default(),
            bytes: AtomicUsize::new(0),
            budget,
        }
    }

    /// The resolution of the cells.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The bytes its tiles hold.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The tiles built.
    #[must_use]
    pub fn tiles(&self) -> usize {
        let tiles = self
            .tiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tiles.values().filter(|tile| tile.is_some()).count()
    }

    fn grid(&self, latitude: f64) -> Grid {
        *self
            .grid
            .get_or_init(|| Grid::new(self.resolution, latitude))
    }

    /// Tile `key` if it was asked for: built, or `None` when it will not be.
    fn built(&self, key: u64) -> Option<Option<Arc<Tile>>> {
        let tiles = self
            .tiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tiles.get(&key).cloned()
    }

    /// The tile `key`, built when it is not yet and the budget allows.
    fn tile(&self, key: u64, grid: Grid) -> Option<Arc<Tile>> {
        let lock = || {
            self.tiles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(known) = lock().get(&key) {
            return known.clone();
        }
        // Built outside the lock, so that other threads go on; a tile two threads built
        // at once is kept once.
        let built = (self.bytes() < self.budget)
            .then(|| build(self.resolution, grid, key))
            .flatten()
            .map(Arc::new);
        let mut tiles = lock();
        let kept = tiles.entry(key).or_insert_with(|| {
            if let Some(tile) = &built {
                self.bytes.fetch_add(tile.bytes(), Ordering::Relaxed);
            }
            built
        });
        kept.clone()
    }
}

/// What a locator of one thread knows of a tile.
#[derive(Clone, Copy, Debug)]
enum Seen {
    /// Points seen in it so far, the tile not yet built.
    Points(u32),
    /// The tile's place among the view's tiles.
    Tile(u32),
    /// The tile will not be built (over budget, polar).
    Never,
}

/// What a locator of one thread keeps of a shared raster: the tiles it has used, and
/// room for the steps of a batch.
#[derive(Clone, Debug)]
pub(super) struct RasterView {
    raster: Arc<CellRaster>,
    grid: Option<Grid>,
    seen: FxHashMap<u64, Seen>,
    tiles: Vec<Arc<Tile>>,
    counted: usize,
    /// Per point of a batch: its tile's place (or [`NO_TILE`]) and pixel.
    slots: Vec<(u32, u32)>,
    entries: Vec<u16>,
}

/// In a batch, a point without a tile.
const NO_TILE: u32 = u32::MAX;

impl RasterView {
    pub(super) fn new(raster: Arc<CellRaster>) -> Self {
        Self {
            raster,
            grid: None,
            seen: FxHashMap::default(),
            tiles: Vec::new(),
            counted: 0,
            slots: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// The cells of valid positions (finite, within ±90 and ±180) that the raster knows
    /// surely, in `cells` (`None` for the others, which are left to h3o).
    ///
    /// A batch goes in steps over all its points (tiles and pixels, then the pixels'
    /// entries, then their cells), so that the memory reads of different points overlap
    /// rather than wait for one another: points in time order are far apart, and their
    /// pixels are rarely in a cache.
    pub(super) fn cells(&mut self, lat: &[f64], lon: &[f64], cells: &mut [Option<CellIndex>]) {
        let side = SIDE as u64;
        self.slots.clear();
        for (&lat, &lon) in lat.iter().zip(lon) {
            if lat.abs() >= MAX_LATITUDE {
                self.slots.push((NO_TILE, 0));
                continue;
            }
            let grid = match self.grid {
                Some(grid) => grid,
                None => *self.grid.insert(self.raster.grid(lat)),
            };
            let (row, column) = grid.pixel(lat, lon);
            let slot = self.slot(tile_key(row, column), grid);
            self.slots
                .push((slot, ((row % side) * side + column % side) as u32));
        }
        self.entries.clear();
        let tiles = &self.tiles;
        self.entries.extend(self.slots.iter().map(|&(slot, pixel)| {
            if slot == NO_TILE {
                ASK_H3O
            } else {
                tiles[slot as usize].pixels[pixel as usize]
            }
        }));
        for (k, (&entry, &(slot, _))) in self.entries.iter().zip(&self.slots).enumerate() {
            cells[k] = (entry < MIXED).then(|| tiles[slot as usize].cells[usize::from(entry)]);
        }
        for (k, (&entry, &(slot, pixel))) in self.entries.iter().zip(&self.slots).enumerate() {
            if entry >= MIXED && entry != ASK_H3O {
                let tile = &tiles[slot as usize];
                let point = tile.unit_vector(pixel as usize, lat[k], lon[k]);
                cells[k] = tile.mixed_cell(entry - MIXED, point);
            }
        }
    }

    /// The place of tile `key` among the view's tiles, asked of the raster the first
    /// time (a tile another thread built is used at once), built once enough points
    /// fell in it; [`NO_TILE`] while it is not.
    #[inline]
    fn slot(&mut self, key: u64, grid: Grid) -> u32 {
        let seen = if let Some(&seen) = self.seen.get(&key) {
            seen
        } else {
            {
                let seen = match self.raster.built(key) {
                    Some(Some(tile)) => {
                        self.tiles.push(tile);
                        Seen::Tile((self.tiles.len() - 1) as u32)
                    }
                    Some(None) => Seen::Never,
                    None => {
                        self.counted += 1;
                        Seen::Points(0)
                    }
                };
                self.seen.insert(key, seen);
                seen
            }
        };
        match seen {
            Seen::Tile(slot) => slot,
            Seen::Never => NO_TILE,
            Seen::Points(points) if points + 1 < BUILD_AFTER => {
                self.seen.insert(key, Seen::Points(points + 1));
                self.forget_counts_if_many();
                NO_TILE
            }
            Seen::Points(_) => {
                self.counted -= 1;
                let (seen, slot) = match self.raster.tile(key, grid) {
                    Some(tile) => {
                        self.tiles.push(tile);
                        let slot = (self.tiles.len() - 1) as u32;
                        (Seen::Tile(slot), slot)
                    }
                    None => (Seen::Never, NO_TILE),
                };
                self.seen.insert(key, seen);
                slot
            }
        }
    }

    /// Keeps the counts of tiles not yet built from growing without bound when points
    /// scatter.
    #[cold]
    fn forget_counts_if_many(&mut self) {
        if self.counted > MAX_COUNTED {
            self.seen.retain(|_, seen| !matches!(seen, Seen::Points(_)));
            self.counted = 0;
        }
    }
}

impl Tile {
    /// The unit vector of a point of `pixel`, from the sines and cosines of the pixel's
    /// corner and short series of the point's offsets from it (at most a quarter of a
    /// cell edge: the series' error is below 1e-13 even at resolution 0, and 1e-30 at
    /// 9), without the trigonometry of a point.
    #[inline]
    fn unit_vector(&self, pixel: usize, lat: f64, lon: f64) -> Vec3 {
        let (row, column) = (&self.rows[pixel / SIDE], &self.columns[pixel % SIDE]);
        let (sin_lat0, cos_lat0, sin_lon0, cos_lon0) = (row.sin, row.cos, column.sin, column.cos);
        let d_lat = lat.to_radians() - row.radians;
        let d_lon = lon.to_radians() - column.radians;
        let (sin_d_lat, cos_d_lat) = small_sin_cos(d_lat);
        let (sin_d_lon, cos_d_lon) = small_sin_cos(d_lon);
        let sin_lat = sin_lat0 * cos_d_lat + cos_lat0 * sin_d_lat;
        let cos_lat = cos_lat0 * cos_d_lat - sin_lat0 * sin_d_lat;
        let sin_lon = sin_lon0 * cos_d_lon + cos_lon0 * sin_d_lon;
        let cos_lon = cos_lon0 * cos_d_lon - sin_lon0 * sin_d_lon;
        [cos_lon * cos_lat, sin_lon * cos_lat, sin_lat]
    }

    /// The cell of a point (its unit vector) in mixed pixel `list`: the first of its
    /// candidates whose edges surely hold it.
    fn mixed_cell(&self, list: u16, point: Vec3) -> Option<CellIndex> {
        self.candidates[usize::from(list)]
            .iter()
            .take_while(|&&candidate| candidate != NONE)
            .find(|&&candidate| self.shapes[usize::from(candidate)].surely_contains(point))
            .map(|&candidate| self.cells[usize::from(candidate)])
    }
}

/// Builds tile `key` of `grid`: `None` when it reaches past ±[`MAX_LATITUDE`].
fn build(resolution: Resolution, grid: Grid, key: u64) -> Option<Tile> {
    let side = SIDE as u64;
    let (row0, column0) = ((key >> 32) * side, (key & 0xFFFF_FFFF) * side);
    let (south, north) = (grid.lat(row0), grid.lat(row0 + side));
    if south <= -MAX_LATITUDE || north >= MAX_LATITUDE {
        return None;
    }
    let (west, east) = (grid.lon(column0), grid.lon(column0 + side));

    // The unit vectors of the pixel corners, row by row.
    let corner_lat: Vec<Corner> = (0..=side).map(|i| Corner::at(grid.lat(row0 + i))).collect();
    let corner_lon: Vec<Corner> = (0..=side)
        .map(|j| Corner::at(grid.lon(column0 + j)))
        .collect();
    let corner = |i: usize, j: usize| -> Vec3 {
        let (lat, lon) = (&corner_lat[i], &corner_lon[j]);
        [lon.cos * lat.cos, lon.sin * lat.cos, lat.sin]
    };
    // The slack that makes four corners stand for the whole (grown) pixel.
    let width = grid.lon_step.to_radians();
    let slack = width * width + 4.0 * GROWTH_DEGREES.to_radians();

    let cells = cells_over(resolution, (south, north), (west, east))?;
    let corners = SIDE + 1;
    let mut owner = vec![NONE; corners * corners];
    let mut kept_cells = Vec::new();
    let mut shapes = Vec::new();
    for (cell, centre) in cells {
        let Some((shape, boundary)) = CellShape::with_boundary(cell, centre) else {
            continue;
        };
        // The corners within the cell's vertices' box, one corner more on every side.
        let (mut low_i, mut high_i, mut low_j, mut high_j) =
            (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for vertex in boundary.iter() {
            let i = (vertex.lat() - south) / grid.lat_step;
            let j = wrapped(vertex.lng() - west) / grid.lon_step;
            (low_i, high_i) = (low_i.min(i), high_i.max(i));
            (low_j, high_j) = (low_j.min(j), high_j.max(j));
        }
        let range = |low: f64, high: f64| {
            let low = (low.floor() - 1.0).max(0.0) as usize;
            let high = (high.ceil() + 1.0).clamp(0.0, SIDE as f64) as usize;
            low..=high
        };
        let (rows, columns) = (range(low_i, high_i), range(low_j, high_j));
        // Numbered as the next kept shape: only an owner of a corner is kept.
        let Ok(number) = u16::try_from(shapes.len()) else {
            return None;
        };
        let margin = shape.margin() + slack;
        let mut owns = false;
        for i in rows {
            for j in columns.clone() {
                if shape.contains_by(corner(i, j), margin) {
                    owner[i * corners + j] = number;
                    owns = true;
                }
            }
        }
        if owns {
            kept_cells.push(cell);
            shapes.push(shape);
        }
    }
    debug_assert!(shapes.len() < usize::from(MIXED));

    let (pixels, candidates) = pixels_of(&owner);
    Some(Tile {
        rows: corner_lat[..SIDE].into(),
        columns: corner_lon[..SIDE].into(),
        pixels,
        cells: kept_cells,
        shapes,
        candidates,
    })
}

/// The pixels of a tile from the owners of their corners ([`NONE`] for a corner no shape
/// surely holds): a pixel whose four corners have one owner is that owner's; any other
/// lists the owners of its corners, most corners first (a few thousand distinct lists
/// at most: a tile has some 500 cells, and a list names the cells that meet at an edge
/// or a vertex).
fn pixels_of(owner: &[u16]) -> (Box<[u16]>, Vec<[u16; 4]>) {
    let corners = SIDE + 1;
    let mut pixels = vec![ASK_H3O; SIDE * SIDE].into_boxed_slice();
    let mut candidates: Vec<[u16; 4]> = Vec::new();
    // Pixels along one edge share their list: each list is kept once.
    let mut numbers: FxHashMap<[u16; 4], u16> = FxHashMap::default();
    for i in 0..SIDE {
        for j in 0..SIDE {
            let four = [
                owner[i * corners + j],
                owner[i * corners + j + 1],
                owner[(i + 1) * corners + j],
                owner[(i + 1) * corners + j + 1],
            ];
            let pixel = &mut pixels[i * SIDE + j];
            if four[0] != NONE && four.iter().all(|&o| o == four[0]) {
                *pixel = four[0];
                continue;
            }
            let mut listed = [NONE; 4];
            let mut counts = [0_u8; 4];
            for owner in four.into_iter().filter(|&o| o != NONE) {
                let at = listed.iter().position(|&l| l == owner || l == NONE);
                if let Some(at) = at {
                    listed[at] = owner;
                    counts[at] += 1;
                }
            }
            if listed[0] == NONE {
                continue;
            }
            let mut order = [0, 1, 2, 3];
            order.sort_by_key(|&k| std::cmp::Reverse(counts[k]));
            let list = order.map(|k| listed[k]);
            let number = *numbers.entry(list).or_insert_with(|| {
                candidates.push(list);
                (candidates.len() - 1) as u16
            });
            *pixel = MIXED + number;
        }
    }
    (pixels, candidates)
}

/// The sine and cosine of a small angle (below 0.05 radians) by their series to the
/// seventh and eighth power.
#[inline]
fn small_sin_cos(x: f64) -> (f64, f64) {
    let x2 = x * x;
    let sin = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0)));
    let cos = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0)));
    (sin, cos)
}

/// A longitude difference in degrees, in [-180, 180).
fn wrapped(degrees: f64) -> f64 {
    (degrees + 180.0).rem_euclid(360.0) - 180.0
}

/// The cells that may meet the box: those reached from the cell of its centre through
/// neighbours whose centre is within three mean edges of it (a cell missed only leaves
/// its pixels to h3o).
fn cells_over(
    resolution: Resolution,
    (south, north): (f64, f64),
    (west, east): (f64, f64),
) -> Option<Vec<(CellIndex, LatLng)>> {
    let centre = LatLng::new(
        f64::midpoint(south, north),
        wrapped(f64::midpoint(west, east)),
    )
    .ok()?;
    let start = centre.to_cell(resolution);
    let reach = 3.0 * resolution.edge_length_rads().to_degrees();
    let poleward = south.abs().max(north.abs()) + reach;
    let lon_reach = reach / poleward.min(MAX_LATITUDE).to_radians().cos();
    let meets = |centre: LatLng| {
        let lon = west + wrapped(centre.lng() - west);
        (south - reach..=north + reach).contains(&centre.lat())
            && (west - lon_reach..=east + lon_reach).contains(&lon)
    };
    let mut seen: FxHashSet<CellIndex> = FxHashSet::default();
    let mut found = Vec::new();
    let mut queue = vec![start];
    seen.insert(start);
    while let Some(cell) = queue.pop() {
        let centre = LatLng::from(cell);
        if !meets(centre) {
            continue;
        }
        found.push((cell, centre));
        for neighbour in cell.grid_disk::<Vec<_>>(1) {
            if seen.insert(neighbour) {
                queue.push(neighbour);
            }
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use h3o::{CellIndex, LatLng, Resolution};

    use crate::synth::Rng;

    use super::{
        ASK_H3O, CellRaster, DEFAULT_RASTER_BUDGET, MIXED, NO_TILE, NONE, RasterView, small_sin_cos,
    };

    /// The points of the last batch by how their pixel answered: whole, two cells'
    /// edges, more cells' edges, no tile or nothing known.
    fn kinds(view: &RasterView) -> [usize; 4] {
        let mut kinds = [0; 4];
        for &(tile, pixel) in &view.slots {
            let kind = if tile == NO_TILE {
                3
            } else {
                let tile = &view.tiles[tile as usize];
                match tile.pixels[pixel as usize] {
                    ASK_H3O => 3,
                    entry if entry < MIXED => 0,
                    entry => {
                        let list = tile.candidates[usize::from(entry - MIXED)];
                        if list.iter().filter(|&&cell| cell != NONE).count() <= 2 {
                            1
                        } else {
                            2
                        }
                    }
                }
            };
            kinds[kind] += 1;
        }
        kinds
    }

    /// Locates the points twice (the first time builds the tiles) and checks every
    /// answer against h3o; gives the points answered and the kinds of their pixels.
    fn located(lat: &[f64], lon: &[f64], resolution: Resolution) -> (usize, [usize; 4]) {
        let raster = Arc::new(CellRaster::new(resolution, DEFAULT_RASTER_BUDGET));
        let mut view = RasterView::new(raster);
        let mut cells: Vec<Option<CellIndex>> = vec![None; lat.len()];
        view.cells(lat, lon, &mut cells);
        view.cells(lat, lon, &mut cells);
        let mut answered = 0;
        for ((&lat, &lon), cell) in lat.iter().zip(lon).zip(&cells) {
            if let Some(cell) = cell {
                let want = LatLng::new(lat, lon).expect("valid").to_cell(resolution);
                assert_eq!(*cell, want, "({lat}, {lon})");
                answered += 1;
            }
        }
        (answered, kinds(&view))
    }

    #[test]
    fn pixels_of_every_kind_answer_as_h3o() {
        let mut rng = Rng::new(17);
        let mut uniform = || rng.uniform();
        let (lat, lon): (Vec<f64>, Vec<f64>) = (0..400_000)
            .map(|_| (50.80 + uniform() * 0.06, 3.22 + uniform() * 0.09))
            .unzip();
        let (answered, [whole, one, several, unknown]) = located(&lat, &lon, Resolution::Nine);
        // About a third of the pixels are crossed by an edge, a sixth of those near a
        // vertex; the few points left are within micrometres of an edge.
        assert!(
            whole > 200_000 && one > 50_000 && several > 20_000,
            "{whole} {one} {several}"
        );
        assert_eq!(unknown, 0);
        assert!(answered > 399_000, "{answered}");
    }

    #[test]
    fn points_beside_edges_and_vertices_answer_as_h3o() {
        // Points at and beside the vertices and along the edges of the cells around
        // a place, at distances from a micrometre to tens of metres; and many points
        // spread over the place, so that its tiles are built.
        let resolution = Resolution::Nine;
        let centre = LatLng::new(50.828, 3.265)
            .expect("valid")
            .to_cell(resolution);
        let mut lat = Vec::new();
        let mut lon = Vec::new();
        for cell in centre.grid_disk::<Vec<_>>(12) {
            let boundary: Vec<LatLng> = cell.boundary().iter().copied().collect();
            for (k, v) in boundary.iter().enumerate() {
                let w = boundary[(k + 1) % boundary.len()];
                for t in [0.0, 0.001, 0.25, 0.5, 0.999] {
                    let (a, o) = (
                        v.lat() + t * (w.lat() - v.lat()),
                        v.lng() + t * (w.lng() - v.lng()),
                    );
                    for d in [0.0, 1e-11, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4] {
                        for (da, dn) in [(d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d), (d, d), (-d, -d)]
                        {
                            lat.push(a + da);
                            lon.push(o + dn);
                        }
                    }
                }
            }
        }
        let mut rng = Rng::new(3);
        let mut uniform = || rng.uniform();
        for _ in 0..100_000 {
            lat.push(50.81 + uniform() * 0.04);
            lon.push(3.24 + uniform() * 0.05);
        }
        let (answered, [_, one, several, _]) = located(&lat, &lon, resolution);
        assert!(one > 0 && several > 0);
        // Most of these points are within a few metres of an edge on purpose.
        assert!(answered > lat.len() / 4, "{answered} of {}", lat.len());
    }

    #[test]
    fn coarse_and_fine_resolutions_answer_as_h3o() {
        for (resolution, spread) in [
            (Resolution::Five, 2.0),
            (Resolution::Seven, 0.3),
            (Resolution::Eleven, 0.004),
            (Resolution::Thirteen, 0.0003),
        ] {
            let mut rng = Rng::new(u64::from(u8::from(resolution)));
            let mut uniform = || rng.uniform();
            let (lat, lon): (Vec<f64>, Vec<f64>) = (0..200_000)
                .map(|_| (-33.9 + uniform() * spread, 151.1 + uniform() * spread))
                .unzip();
            let (answered, _) = located(&lat, &lon, resolution);
            assert!(answered > 150_000, "{resolution:?}: {answered}");
        }
    }

    #[test]
    fn small_angles_have_the_sine_and_cosine_of_the_library() {
        // A pixel is at most a quarter of a resolution-0 edge (0.05 radians) wide.
        for k in -1000..=1000 {
            let x = f64::from(k) * 5e-5;
            let (sin, cos) = small_sin_cos(x);
            let (want_sin, want_cos) = x.sin_cos();
            assert!((sin - want_sin).abs() < 1e-16, "sin {x}");
            assert!((cos - want_cos).abs() < 2e-16, "cos {x}");
        }
    }
}
