//! A lookup raster for lat/lon → H3 cell whose speed does not depend on the order of the
//! points: tiles of a lat/lon grid, each with the plane of the icosahedron face h3o
//! projects its points on and a table from the lattice points of that face's hexagon
//! grid to their cells. Built tile by tile where points fall, shared by every thread of
//! a run.
//!
//! # Why the answer is always h3o's
//! h3o gives a point the cell `F(f, A)`: `f` is the face whose centre is nearest the
//! point, `A` the point of `f`'s lattice nearest the point's gnomonic projection on `f`
//! (the hexagons of a resolution are the Voronoi cells of a triangular lattice of unit
//! spacing in that plane, and h3o's rounding is to the nearest lattice point), and `F`
//! a function of `f` and `A` alone (base cell, digits, rotations, pentagons).
//!
//! A tile is built only when every point of it is nearer one face's centre than any
//! other's by more than a margin, so `f` is the tile's face. For a point of the tile the
//! raster computes the projection itself, without trigonometry: the point's unit vector
//! `p` from the sines and cosines of the tile's centre and short series of the offsets,
//! then `(p·X / p·c, p·Y / p·c)` with `c` the face centre and `X`, `Y` the lattice's
//! axes scaled to the resolution. It takes the nearest lattice point `A` and answers
//! from the table only when the projection is inside `A`'s hexagon by more than the
//! tile's margin `ε`, which bounds the distance between its projection and h3o's: h3o's
//! then rounds to `A` too. The table's entry for `A` is h3o's cell of the first point
//! that passed this test at `A`, which is `F(f, A)`. Every other point is left to the
//! locator (shapes of cells met nearby, then h3o).
//!
//! The faces' planes are read off h3o: each face centre is the centre of a base cell;
//! the direction of the lattice's axes, which matters only modulo 60° (the lattice is
//! symmetric under that turn), from h3o's centres of the six neighbours of the face
//! centre's cell at resolution 2 (the class II grids) and 1 (class III); the scale from
//! H3's definition (the resolution-0 spacing is `1 / φ²` of the gnomonic plane, and each
//! resolution divides it by `√7`). A test checks that every such neighbour lies at
//! lattice distance 1, on an axis.
//!
//! # The margin
//! Rounding in the unit vectors, dot products and projections, here and in h3o, is
//! about 1e-15 radians on the sphere; h3o's angle to the face centre, `acos(1 - d²/2)`,
//! also loses `1.1e-16 / r` radians at angle `r` from it. A tile's margin is
//! [`MARGIN`] (1e-12 radians, about 6 µm on the ground) plus `1e-15 / r` for the least
//! `r` of the tile, stretched by the projection's largest scale over the tile
//! (`sec² r`), in lattice units: at resolution 9 a point nearer than about 10 µm to an
//! edge is left to h3o. Tiles nearer than 1e-6 radians to a face centre, or past
//! ±[`MAX_LATITUDE`], are not built.
//!
//! # Memory
//! A tile is [`TILE_EDGES`] cell edges on a side (capped to [`MAX_TILE_RADIANS`] at
//! coarse resolutions: about 22 km at resolution 9). Its tables hold, row by row, the
//! lattice points near its outline, 8 bytes each, about two per cell: some 80 KiB at
//! resolution 9, where a 1.8° × 3.7° box around Belgium takes 99 tiles and 8 MiB. A
//! tile is built (without a call of h3o: its entries are filled by the points that need
//! them) once a locator has met [`BUILD_AFTER`] points in it, kept while the raster
//! lives, and no more are built once the raster holds its byte budget: points in tiles
//! never built are answered by the locator.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use h3o::{CellIndex, LatLng, Resolution};
use rustc_hash::FxHashMap;

use super::locator::{
    MARGIN, MIN_FACE_CENTRE_DISTANCE, Vec3, angle, cross, dot, face_centres, unit_vector,
};

/// A tile's side, in cell edges.
const TILE_EDGES: f64 = 128.0;

/// The largest side of a tile (radians of latitude; twice that of longitude), so that
/// the series of a point's offsets from the tile's centre stay exact to rounding.
const MAX_TILE_RADIANS: f64 = 0.005;

/// Tiles reaching nearer the poles than this (degrees of latitude) are not built.
const MAX_LATITUDE: f64 = 88.0;

/// A tile's box is grown by this (radians) on every side before it is checked: many
/// orders above the rounding of the tile a point is put in.
const GROWTH_RADIANS: f64 = 1e-9;

/// The most lattice points a tile's table covers (a resolution-9 tile covers about
/// 1,300): a tile the projection stretches past this is not built.
const MAX_TABLE: usize = 1 << 16;

/// Points a locator sees in a tile before it asks for the tile to be built: a tile is
/// cheap, but its entries cost a call of h3o each, so it is built only where points are
/// many, not for points scattered over a continent.
const BUILD_AFTER: u32 = 64;

/// Tiles a locator counts points in before it forgets the counts.
const MAX_COUNTED: usize = 1 << 16;

/// The default byte budget of a raster.
pub const DEFAULT_RASTER_BUDGET: usize = 256 << 20;

/// H3's resolution-0 lattice spacing is `1 / φ²` of the gnomonic plane of a face (the
/// value H3 defines, as h3o has it).
const RES0_UNITS_PER_GNOMONIC: f64 = 2.618_033_988_749_896;

/// `√3 / 2`: the height of a row of the lattice, and its inverse.
const ROW_HEIGHT: f64 = 0.866_025_403_784_438_6;
const PER_ROW_HEIGHT: f64 = 1.154_700_538_379_251_5;

/// The plane h3o projects a face's points on, as unit vectors: its centre and the
/// directions of the lattice's first axis and of the axis 90° from it, for one class of
/// resolutions.
#[derive(Clone, Copy, Debug)]
struct FacePlane {
    centre: Vec3,
    x_axis: Vec3,
    y_axis: Vec3,
}

/// The planes of the 20 faces, for the class II resolutions (even) and the class III
/// ones (odd), read off h3o once (see the module documentation).
fn face_planes() -> &'static [[FacePlane; 20]; 2] {
    static PLANES: OnceLock<[[FacePlane; 20]; 2]> = OnceLock::new();
    PLANES.get_or_init(|| {
        [Resolution::Two, Resolution::One].map(|resolution| {
            std::array::from_fn(|face| face_plane(face_centres()[face], resolution))
        })
    })
}

/// The plane of the face centred at `centre`, its axes read off the six neighbours of
/// the centre's cell at `resolution`.
fn face_plane(centre: Vec3, resolution: Resolution) -> FacePlane {
    let (north, east) = tangent_basis(centre);
    let cell = position(centre).to_cell(resolution);
    // The neighbours lie on the axes, 60° apart: the mean of 6β over them gives the
    // axes' direction modulo 60° without a wrap.
    let (mut sin_sum, mut cos_sum) = (0.0, 0.0);
    for neighbour in cell.grid_disk::<Vec<_>>(1) {
        if neighbour != cell {
            let (sin, cos) = (6.0 * azimuth(centre, north, east, neighbour)).sin_cos();
            sin_sum += sin;
            cos_sum += cos;
        }
    }
    let alpha = sin_sum.atan2(cos_sum) / 6.0;
    let (sin, cos) = alpha.sin_cos();
    FacePlane {
        centre,
        x_axis: std::array::from_fn(|k| cos * north[k] + sin * east[k]),
        y_axis: std::array::from_fn(|k| sin * north[k] - cos * east[k]),
    }
}

/// The local north and east of a face centre, as h3o takes them.
fn tangent_basis(centre: Vec3) -> (Vec3, Vec3) {
    let up = centre[2];
    let mut north = [-up * centre[0], -up * centre[1], 1.0 - up * centre[2]];
    let length = dot(north, north).sqrt();
    north = north.map(|x| x / length);
    (north, cross(north, centre))
}

/// The azimuth (radians, from north towards east) of a cell's centre seen from a face
/// centre.
fn azimuth(centre: Vec3, north: Vec3, east: Vec3, cell: CellIndex) -> f64 {
    let point = unit_vector(LatLng::from(cell));
    let along = dot(point, centre);
    let projected: Vec3 = std::array::from_fn(|k| point[k] - along * centre[k]);
    dot(projected, east).atan2(dot(projected, north))
}

/// The position of a unit vector.
fn position(point: Vec3) -> LatLng {
    let latitude = point[2].atan2(point[0].hypot(point[1]));
    LatLng::from_radians(latitude, point[1].atan2(point[0])).expect("finite")
}

/// The lattice units per unit of the gnomonic plane at `resolution`.
fn lattice_scale(resolution: Resolution) -> f64 {
    RES0_UNITS_PER_GNOMONIC * 7_f64.sqrt().powi(i32::from(u8::from(resolution)))
}

/// One tile: its centre, and the planes of the one or two faces its points may be on.
#[derive(Debug)]
struct Tile {
    /// The centre's latitude and longitude, in radians, with their sines and cosines.
    latitude: Angle,
    longitude: Angle,
    /// For a tile across two faces' edge, the difference of their centres (in the
    /// tile's frame, see [`Tile::unit_vector`]): a point is
    /// on the first face's plane when its dot product with it is above the margin, on
    /// the second's when below minus the margin.
    split: Option<Vec3>,
    /// The first face's plane, and the second's (empty, for a tile on one face).
    planes: [TilePlane; 2],
}

/// A face's plane over a tile: scaled to the resolution, with the margin and the cells
/// of the lattice points of the tile's box.
#[derive(Debug)]
struct TilePlane {
    centre: Vec3,
    /// The face's axes in lattice units per unit of the gnomonic plane.
    x_axis: Vec3,
    y_axis: Vec3,
    /// How far inside a hexagon (lattice units) a projection must be.
    margin: f64,
    /// The lattice coordinates the table's rows and columns count from.
    first: (f64, f64),
    /// The lattice points of each row that a point of the tile may be nearest to, and
    /// one more row past the last, with no points.
    rows: Box<[Row]>,
    /// The cell of each of those lattice points, row by row; 0 until a point met it.
    cells: Box<[AtomicU64]>,
}

/// A row of a tile's lattice points: the first column, and the place of the first in
/// the table (the next row's place less this one's is how many). Small, so that the
/// rows of every tile stay in a cache.
#[derive(Clone, Copy, Debug)]
struct Row {
    start: i32,
    offset: u32,
}

/// An angle in radians, with its sine and cosine.
#[derive(Clone, Copy, Debug)]
struct Angle {
    radians: f64,
    sin: f64,
    cos: f64,
}

impl Angle {
    fn of_degrees(degrees: f64) -> Self {
        let radians = degrees.to_radians();
        let (sin, cos) = radians.sin_cos();
        Self { radians, sin, cos }
    }
}

/// The entry of a point in a tile: the plane's place in the tile and the lattice
/// point's in the plane's table.
#[derive(Clone, Copy, Debug)]
struct Entry {
    plane: u32,
    at: u32,
}

impl Tile {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .planes
                .iter()
                .map(|plane| plane.cells.len() * std::mem::size_of::<AtomicU64>())
                .sum::<usize>()
    }

    /// The offsets (radians) of a point from the tile's centre.
    #[inline]
    fn offsets(&self, lat: f64, lon: f64) -> (f64, f64) {
        (
            lat.to_radians() - self.latitude.radians,
            lon.to_radians() - self.longitude.radians,
        )
    }

    /// The unit vector of a point of the tile in the tile's frame (turned about the
    /// poles' axis so that the tile's centre is at longitude 0), from the sine and
    /// cosine of the centre's latitude and short series of the point's offsets (at most
    /// [`MAX_TILE_RADIANS`]: the series' error is below 1e-19), without the
    /// trigonometry of a point.
    #[inline]
    fn unit_vector(&self, (d_lat, d_lon): (f64, f64)) -> Vec3 {
        let (sin_d_lat, cos_d_lat) = small_sin_cos(d_lat);
        let (sin_d_lon, cos_d_lon) = small_sin_cos(d_lon);
        let a = &self.latitude;
        let sin_lat = a.sin * cos_d_lat + a.cos * sin_d_lat;
        let cos_lat = a.cos * cos_d_lat - a.sin * sin_d_lat;
        [cos_d_lon * cos_lat, sin_d_lon * cos_lat, sin_lat]
    }

    /// A vector in the tile's frame.
    fn turned(&self, vector: Vec3) -> Vec3 {
        let o = &self.longitude;
        [
            vector[0] * o.cos + vector[1] * o.sin,
            vector[1] * o.cos - vector[0] * o.sin,
            vector[2],
        ]
    }

    /// The entry of the lattice point whose hexagon surely holds the point, or `None`
    /// when the point is within the margin of the hexagon's edges or of the faces'
    /// edge, or outside the box.
    #[inline]
    fn entry(&self, offsets: (f64, f64)) -> Option<Entry> {
        let point = self.unit_vector(offsets);
        let mut plane = 0;
        if let Some(split) = self.split {
            let side = dot(point, split);
            if side.abs() <= MARGIN {
                return None;
            }
            plane = usize::from(side < 0.0);
        }
        let at = self.planes[plane].entry(point)?;
        Some(Entry {
            plane: plane as u32,
            at: at as u32,
        })
    }
}

impl TilePlane {
    /// A plane with no lattice point.
    fn empty() -> Self {
        Self {
            centre: [0.0; 3],
            x_axis: [0.0; 3],
            y_axis: [0.0; 3],
            margin: f64::INFINITY,
            first: (0.0, 0.0),
            rows: Box::new([Row {
                start: 0,
                offset: 0,
            }]),
            cells: Box::default(),
        }
    }

    /// The lattice coordinates of a point's projection: the projection is
    /// `u·(1, 0) + v·(-1/2, √3/2)`.
    #[inline]
    fn lattice(&self, point: Vec3) -> (f64, f64) {
        let per_along = 1.0 / dot(point, self.centre);
        let x = dot(point, self.x_axis) * per_along;
        let y = dot(point, self.y_axis) * per_along;
        let v = y * PER_ROW_HEIGHT;
        (x + v / 2.0, v)
    }

    /// The place in the table of the lattice point whose hexagon surely holds the
    /// point, or `None` when the point is within the margin of the hexagon's edges or
    /// outside the box.
    #[inline]
    fn entry(&self, point: Vec3) -> Option<usize> {
        let (u, v) = self.lattice(point);
        // From the box's first lattice point, so that a point of the box is at
        // nonnegative coordinates.
        let (u, v) = (u - self.first.0, v - self.first.1);
        let (u0, v0) = (truncated(u), truncated(v));
        let (fu, fv) = (u - u0, v - v0);
        // The nearest of the four lattice points around, without a branch: each score is
        // the difference of its squared distance and that of (u0, v0). A tie may pick a
        // point that is not the nearest; the margin below then sends the point on.
        let (to_u, to_v, to_both) = (1.0 - 2.0 * fu + fv, 1.0 + fu - 2.0 * fv, 1.0 - fu - fv);
        let least = to_u.min(to_v).min(to_both).min(0.0);
        let du = f64::from(u8::from(to_u <= least || to_both <= least));
        let dv = f64::from(u8::from(to_v <= least || to_both <= least));
        let (ou, ov) = (fu - du, fv - dv);
        // The offset from the lattice point, and its distances along the hexagon's three
        // pairs of edge normals.
        let (dx, dy) = (ou - ov / 2.0, ov * ROW_HEIGHT);
        let reach = dx
            .abs()
            .max((dx / 2.0 + dy * ROW_HEIGHT).abs())
            .max((dy * ROW_HEIGHT - dx / 2.0).abs());
        let row = v0 + dv;
        if 0.5 - reach <= self.margin || !(0.0..(self.rows.len() - 1) as f64).contains(&row) {
            return None;
        }
        let (this, next) = (self.rows[row as usize], self.rows[row as usize + 1]);
        let column = (u0 + du) as i64 - i64::from(this.start);
        (0..i64::from(next.offset - this.offset))
            .contains(&column)
            .then(|| (i64::from(this.offset) + column) as usize)
    }
}

/// `x` without its fraction (|x| < 2⁶²), without a call of the library: the largest
/// whole number not above `x` when `x` is not negative, as the coordinates of a tile's
/// points are (a lattice point chosen wrongly off the tile only fails the margin).
#[inline]
fn truncated(x: f64) -> f64 {
    x as i64 as f64
}

/// The tile grid: fixed once, from the first point, so that tiles are about square near
/// the data.
#[derive(Clone, Copy, Debug)]
struct Grid {
    /// A tile's height and width, in degrees.
    height: f64,
    width: f64,
    /// Their inverses: a point is put in a tile by a product, not a division (rounding
    /// may put it a hair outside, which the tile's checks allow for).
    per_height: f64,
    per_width: f64,
}

impl Grid {
    fn new(resolution: Resolution, latitude: f64) -> Self {
        let side = (TILE_EDGES * resolution.edge_length_rads()).min(MAX_TILE_RADIANS);
        let shrink = latitude.abs().min(MAX_LATITUDE).to_radians().cos();
        let (height, width) = (
            side.to_degrees(),
            (side / shrink).min(2.0 * MAX_TILE_RADIANS).to_degrees(),
        );
        Self {
            height,
            width,
            per_height: 1.0 / height,
            per_width: 1.0 / width,
        }
    }

    /// The row and column of the tile of a valid position.
    #[inline]
    fn tile(&self, lat: f64, lon: f64) -> (u32, u32) {
        (
            ((lat + 90.0) * self.per_height) as u32,
            ((lon + 180.0) * self.per_width) as u32,
        )
    }
}

/// The key of the tile at `row` and `column`.
#[inline]
fn tile_key((row, column): (u32, u32)) -> u64 {
    u64::from(row) << 32 | u64::from(column)
}

/// The tiles of one resolution, shared by the locators of a run's threads. Cheap to
/// make: nothing is built before a point needs it.
#[derive(Debug)]
pub struct CellRaster {
    resolution: Resolution,
    grid: OnceLock<Grid>,
    /// Every tile asked for: built, or `None` when it could not be (over budget, polar,
    /// across faces).
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

/// Builds tile `key` of `grid`: `None` when it reaches past ±[`MAX_LATITUDE`], may hold
/// points of more than two faces, is near a face centre, or its box is too large.
fn build(resolution: Resolution, grid: Grid, key: u64) -> Option<Tile> {
    let (row, column) = ((key >> 32) as f64, (key & 0xFFFF_FFFF) as f64);
    let south = row * grid.height - 90.0;
    let west = column * grid.width - 180.0;
    if south <= -MAX_LATITUDE || south + grid.height >= MAX_LATITUDE {
        return None;
    }
    let (latitude, longitude) = (
        Angle::of_degrees(south + grid.height / 2.0),
        Angle::of_degrees(west + grid.width / 2.0),
    );
    let middle = [
        longitude.cos * latitude.cos,
        longitude.sin * latitude.cos,
        latitude.sin,
    ];
    // Every point of the tile is within this angle of its middle (half the latitude
    // span plus half the longitude span, grown), and so within this chord.
    let reach = (grid.height + grid.width).to_radians() / 2.0 + GROWTH_RADIANS;

    // The faces: the nearest one to the middle, and the next when some point of the
    // tile may be nearer to it; every other face must be farther than both from every
    // point of the tile by the margin.
    let centres = face_centres();
    let mut faces: Vec<usize> = (0..20).collect();
    faces.sort_by(|&a, &b| dot(middle, centres[b]).total_cmp(&dot(middle, centres[a])));
    let surely_nearer = |face: usize, other: usize| {
        let apart: Vec3 = std::array::from_fn(|k| centres[face][k] - centres[other][k]);
        dot(middle, apart) > reach * dot(apart, apart).sqrt() + MARGIN
    };
    let (first, second) = (faces[0], faces[1]);
    let on = if faces[1..].iter().all(|&other| surely_nearer(first, other)) {
        vec![first]
    } else if faces[2..]
        .iter()
        .all(|&other| surely_nearer(first, other) && surely_nearer(second, other))
    {
        vec![first, second]
    } else {
        return None;
    };
    let mut tile = Tile {
        latitude,
        longitude,
        split: None,
        planes: [TilePlane::empty(), TilePlane::empty()],
    };
    tile.split = (on.len() == 2).then(|| {
        tile.turned(std::array::from_fn(|k| {
            centres[first][k] - centres[second][k]
        }))
    });
    for (k, face) in on.into_iter().enumerate() {
        tile.planes[k] = tile_plane(&tile, resolution, grid, (south, west), middle, reach, face)?;
    }
    Some(tile)
}

/// The plane of `face` over a tile whose south-west corner is `corner`, whose points
/// are within `reach` of `middle`.
fn tile_plane(
    tile: &Tile,
    resolution: Resolution,
    grid: Grid,
    (south, west): (f64, f64),
    middle: Vec3,
    reach: f64,
    face: usize,
) -> Option<TilePlane> {
    let from_centre = angle(middle, face_centres()[face]);
    let (nearest, farthest) = (from_centre - reach, from_centre + reach);
    if nearest < MIN_FACE_CENTRE_DISTANCE {
        return None;
    }
    let face_plane = &face_planes()[usize::from(resolution.is_class3())][face];
    let scale = lattice_scale(resolution);
    let stretch = 1.0 / (farthest.cos() * farthest.cos());
    let mut plane = TilePlane {
        centre: tile.turned(face_plane.centre),
        x_axis: tile.turned(face_plane.x_axis.map(|x| x * scale)),
        y_axis: tile.turned(face_plane.y_axis.map(|x| x * scale)),
        margin: scale * stretch * (MARGIN + 1e-15 / nearest.sin()),
        first: (0.0, 0.0),
        rows: Box::default(),
        cells: Box::default(),
    };
    // The tile's outline in lattice coordinates: points along its sides, close enough
    // that the sides' bulge between them is a tiny share of a lattice step.
    let steps = 64;
    let outline: Vec<(f64, f64)> = (0..4 * steps)
        .map(|k| {
            let share = f64::from(k % steps) / f64::from(steps);
            let (a, o) = match k / steps {
                0 => (0.0, share),
                1 => (share, 1.0),
                2 => (1.0, 1.0 - share),
                _ => (1.0 - share, 0.0),
            };
            let offsets = tile.offsets(south + a * grid.height, west + o * grid.width);
            plane.lattice(tile.unit_vector(offsets))
        })
        .collect();
    let (low_u, low_v) = outline
        .iter()
        .fold((f64::MAX, f64::MAX), |(u, v), &(a, b)| (u.min(a), v.min(b)));
    let high_v = outline.iter().fold(f64::MIN, |v, &(_, b)| v.max(b));
    plane.first = (low_u.floor() - 2.0, low_v.floor() - 2.0);
    // Each row j takes the lattice points near the outline's span within the band
    // [j - 1, j + 1] (a point nearest to a point of row j is within 2/3 of it), grown by
    // two points on either side. The tile is convex, so that span is its outline's.
    let height = (high_v.ceil() + 3.0 - plane.first.1) as usize;
    let mut rows = Vec::with_capacity(height + 1);
    let mut size: u32 = 0;
    for j in 0..height {
        let band = (
            plane.first.1 + j as f64 - 1.0,
            plane.first.1 + j as f64 + 1.0,
        );
        let (mut low, mut high) = (f64::MAX, f64::MIN);
        for (k, &(u, v)) in outline.iter().enumerate() {
            let (next_u, next_v) = outline[(k + 1) % outline.len()];
            if let Some((a, b)) = clipped(((u, v), (next_u, next_v)), band) {
                (low, high) = (low.min(a.min(b)), high.max(a.max(b)));
            }
        }
        let (start, length) = if low > high {
            (0, 0)
        } else {
            let start = low.floor() - 2.0 - plane.first.0;
            (
                start as i32,
                (high.ceil() + 3.0 - plane.first.0 - start) as u32,
            )
        };
        rows.push(Row {
            start,
            offset: size,
        });
        size = size.checked_add(length)?;
    }
    rows.push(Row {
        start: 0,
        offset: size,
    });
    if size as usize > MAX_TABLE {
        return None;
    }
    plane.rows = rows.into_boxed_slice();
    plane.cells = (0..size).map(|_| AtomicU64::new(0)).collect();
    Some(plane)
}

/// The `u` at the ends of the part of segment `((u, v), (u, v))` whose `v` is within
/// `band`, if any.
fn clipped(
    ((u0, v0), (u1, v1)): ((f64, f64), (f64, f64)),
    (low, high): (f64, f64),
) -> Option<(f64, f64)> {
    if v0.max(v1) < low || v0.min(v1) > high {
        return None;
    }
    let at = |v: f64| {
        if v1.total_cmp(&v0).is_eq() {
            u0
        } else {
            u0 + (u1 - u0) * ((v - v0) / (v1 - v0))
        }
    };
    let (from, to) = (v0.min(v1).max(low), v0.max(v1).min(high));
    Some((at(from), at(to)))
}

/// What a locator of one thread knows of a tile.
#[derive(Clone, Copy, Debug)]
enum Seen {
    /// Points seen in it so far, the tile not yet built.
    Points(u32),
    /// The tile's place among the view's tiles.
    Tile(u32),
    /// The tile will not be built (over budget, polar, across faces).
    Never,
}

/// What a locator of one thread keeps of a shared raster: the tiles it has used, an
/// index of them over the box of their rows and columns, and room for the steps of a
/// batch.
#[derive(Clone, Debug)]
pub(super) struct RasterView {
    raster: Arc<CellRaster>,
    grid: Option<Grid>,
    seen: FxHashMap<u64, Seen>,
    tiles: Vec<Arc<Tile>>,
    counted: usize,
    /// The places of the tiles used, row by row over the box of rows `index_rows` and
    /// columns `index_columns` ([`NO_TILE`] for the others): what most points find
    /// their tile in.
    index: Vec<u32>,
    index_rows: (u32, u32),
    index_columns: (u32, u32),
    /// Room for a batch: each point's tile's place ([`NO_TILE`] without one) and its
    /// offsets from the tile's centre, then the contents of the entries read.
    slots: Vec<(u32, (f64, f64))>,
    bits: Vec<u64>,
    /// Entries filled by h3o.
    filled: u64,
}

/// A tile not built (yet).
const NO_TILE: u32 = u32::MAX;

/// The most rows times columns an index covers (4 MiB).
const MAX_INDEX: usize = 1 << 20;

impl RasterView {
    pub(super) fn new(raster: Arc<CellRaster>) -> Self {
        Self {
            raster,
            grid: None,
            seen: FxHashMap::default(),
            tiles: Vec::new(),
            counted: 0,
            index: Vec::new(),
            index_rows: (0, 0),
            index_columns: (0, 0),
            slots: Vec::new(),
            bits: Vec::new(),
            filled: 0,
        }
    }

    /// Entries of the tables this view filled by asking h3o.
    pub(super) fn filled(&self) -> u64 {
        self.filled
    }

    /// The cells (their bits) of the positions that the raster knows surely, in `cells`
    /// (left alone for the others, which are left to the locator, and for positions
    /// that are not finite or beyond ±90 and ±180).
    ///
    /// A batch goes in steps over all its points: their tiles (and offsets, which
    /// reads the tiles), their entries, the reads of the entries alone, then the cells
    /// (entries met for the first time filled by h3o). Points in time order are far
    /// apart and their entries rarely in a cache: this way the reads of different
    /// points overlap rather than wait for one another.
    pub(super) fn cells(&mut self, lat: &[f64], lon: &[f64], cells: &mut [u64]) {
        self.slots.clear();
        for (&lat, &lon) in lat.iter().zip(lon) {
            // Also false for a position that is not finite.
            if !(lat.abs() < MAX_LATITUDE && lon.abs() <= 180.0) {
                self.slots.push((NO_TILE, (0.0, 0.0)));
                continue;
            }
            let grid = match self.grid {
                Some(grid) => grid,
                None => *self.grid.insert(self.raster.grid(lat)),
            };
            let slot = self.indexed_slot(grid.tile(lat, lon), grid);
            let offsets = if slot == NO_TILE {
                (0.0, 0.0)
            } else {
                self.tiles[slot as usize].offsets(lat, lon)
            };
            self.slots.push((slot, offsets));
        }
        let mut entries: Vec<(usize, &AtomicU64)> = Vec::with_capacity(lat.len());
        for (k, &(slot, offsets)) in self.slots.iter().enumerate() {
            if slot == NO_TILE {
                continue;
            }
            let tile = &self.tiles[slot as usize];
            if let Some(entry) = tile.entry(offsets) {
                entries.push((
                    k,
                    &tile.planes[entry.plane as usize].cells[entry.at as usize],
                ));
            }
        }
        self.bits.clear();
        self.bits.extend(
            entries
                .iter()
                .map(|(_, entry)| entry.load(Ordering::Relaxed)),
        );
        let resolution = self.raster.resolution;
        for (&(k, entry), &bits) in entries.iter().zip(&self.bits) {
            if bits != 0 {
                cells[k] = bits;
                continue;
            }
            // An entry no point met yet. The point is surely in the entry's hexagon, so
            // h3o's cell for it is the entry's (see the module documentation).
            if let Ok(position) = LatLng::new(lat[k], lon[k]) {
                let cell = u64::from(position.to_cell(resolution));
                entry.store(cell, Ordering::Relaxed);
                self.filled += 1;
                cells[k] = cell;
            }
        }
    }

    /// The place of the tile at `tile` among the view's tiles, from the index when it
    /// is there.
    #[inline]
    fn indexed_slot(&mut self, tile: (u32, u32), grid: Grid) -> u32 {
        let row = tile.0.wrapping_sub(self.index_rows.0);
        let column = tile.1.wrapping_sub(self.index_columns.0);
        if row < self.index_rows.1 && column < self.index_columns.1 {
            let slot = self.index[row as usize * self.index_columns.1 as usize + column as usize];
            if slot != NO_TILE {
                return slot;
            }
        }
        self.slot(tile, grid)
    }

    /// The place of the tile at `tile` among the view's tiles, asked of the raster the
    /// first time (a tile another thread built is used at once), built once enough
    /// points fell in it; [`NO_TILE`] while it is not.
    fn slot(&mut self, tile: (u32, u32), grid: Grid) -> u32 {
        let key = tile_key(tile);
        let seen = if let Some(&seen) = self.seen.get(&key) {
            seen
        } else {
            let seen = match self.raster.built(key) {
                Some(Some(built)) => Seen::Tile(self.used(tile, built)),
                Some(None) => Seen::Never,
                None => {
                    self.counted += 1;
                    Seen::Points(0)
                }
            };
            self.seen.insert(key, seen);
            seen
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
                    Some(built) => {
                        let slot = self.used(tile, built);
                        (Seen::Tile(slot), slot)
                    }
                    None => (Seen::Never, NO_TILE),
                };
                self.seen.insert(key, seen);
                slot
            }
        }
    }

    /// Takes a built tile among the view's tiles, in the index when it fits: the index's
    /// box grows to take it in (by half again, so that it grows seldom) while it stays
    /// within [`MAX_INDEX`].
    fn used(&mut self, tile: (u32, u32), built: Arc<Tile>) -> u32 {
        self.tiles.push(built);
        let slot = (self.tiles.len() - 1) as u32;
        let (rows, columns) = (self.index_rows, self.index_columns);
        let inside = |(start, length): (u32, u32), at: u32| at.wrapping_sub(start) < length;
        if !(inside(rows, tile.0) && inside(columns, tile.1)) {
            let grown = |(start, length): (u32, u32), at: u32| {
                if length == 0 {
                    return (at, 1);
                }
                let (low, high) = (start.min(at), (start + length).max(at + 1));
                let more = (high - low) / 2;
                let low = if at < start {
                    low.saturating_sub(more)
                } else {
                    low
                };
                let high = if at >= start + length {
                    high.saturating_add(more)
                } else {
                    high
                };
                (low, high - low)
            };
            let (rows, columns) = (grown(rows, tile.0), grown(columns, tile.1));
            if (rows.1 as usize).saturating_mul(columns.1 as usize) > MAX_INDEX {
                return slot;
            }
            self.index_rows = rows;
            self.index_columns = columns;
            self.index = vec![NO_TILE; rows.1 as usize * columns.1 as usize];
            let placed: Vec<(u64, u32)> = self
                .seen
                .iter()
                .filter_map(|(&key, &seen)| match seen {
                    Seen::Tile(slot) => Some((key, slot)),
                    _ => None,
                })
                .collect();
            for (key, slot) in placed {
                self.place(((key >> 32) as u32, key as u32), slot);
            }
        }
        self.place(tile, slot);
        slot
    }

    /// Puts a tile in the index, when the index covers it.
    fn place(&mut self, tile: (u32, u32), slot: u32) {
        let row = tile.0.wrapping_sub(self.index_rows.0);
        let column = tile.1.wrapping_sub(self.index_columns.0);
        if row < self.index_rows.1 && column < self.index_columns.1 {
            self.index[row as usize * self.index_columns.1 as usize + column as usize] = slot;
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

/// The sine and cosine of a small angle (below 0.01 radians) by their series to the
/// fifth and sixth power: the next terms are below 2e-19 and 3e-21.
#[inline]
fn small_sin_cos(x: f64) -> (f64, f64) {
    let x2 = x * x;
    let sin = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0));
    let cos = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0));
    (sin, cos)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use h3o::{CellIndex, LatLng, Resolution};

    use crate::synth::Rng;

    use super::{
        CellRaster, DEFAULT_RASTER_BUDGET, PER_ROW_HEIGHT, ROW_HEIGHT, RasterView, dot,
        face_centres, face_planes, lattice_scale, position, small_sin_cos, unit_vector,
    };

    /// Locates the points twice (the first time builds the tiles and fills their
    /// entries) and checks every answer against h3o; gives the cells the raster
    /// answered the second time (0 for the points it left to the locator).
    fn answers(lat: &[f64], lon: &[f64], resolution: Resolution) -> Vec<u64> {
        let raster = Arc::new(CellRaster::new(resolution, DEFAULT_RASTER_BUDGET));
        let mut view = RasterView::new(raster);
        let mut cells = vec![0; lat.len()];
        view.cells(lat, lon, &mut cells);
        cells.fill(0);
        view.cells(lat, lon, &mut cells);
        for ((&lat, &lon), &cell) in lat.iter().zip(lon).zip(&cells) {
            if cell != 0 {
                let want = LatLng::new(lat, lon).expect("valid").to_cell(resolution);
                assert_eq!(cell, u64::from(want), "({lat}, {lon}) at {resolution:?}");
            }
        }
        cells
    }

    /// The points the raster answered (each checked against h3o).
    fn located(lat: &[f64], lon: &[f64], resolution: Resolution) -> usize {
        answers(lat, lon, resolution)
            .iter()
            .filter(|&&cell| cell != 0)
            .count()
    }

    /// Points spread uniformly over a box.
    fn spread(
        seed: u64,
        n: usize,
        (lat, lon): (f64, f64),
        (height, width): (f64, f64),
    ) -> (Vec<f64>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut uniform = || rng.uniform();
        (0..n)
            .map(|_| (lat + uniform() * height, lon + uniform() * width))
            .unzip()
    }

    #[test]
    fn the_neighbours_of_a_face_centre_lie_one_lattice_step_away_on_an_axis() {
        for r in 1..=5 {
            let resolution = Resolution::try_from(r).expect("a resolution");
            let scale = lattice_scale(resolution);
            for (face, plane) in face_planes()[usize::from(resolution.is_class3())]
                .iter()
                .enumerate()
            {
                assert!((dot(plane.centre, face_centres()[face]) - 1.0).abs() < 1e-15);
                let cell = position(plane.centre).to_cell(resolution);
                for neighbour in cell.grid_disk::<Vec<_>>(1) {
                    let point = unit_vector(LatLng::from(neighbour));
                    let along = dot(point, plane.centre);
                    let x = scale * dot(point, plane.x_axis) / along;
                    let y = scale * dot(point, plane.y_axis) / along;
                    let length = x.hypot(y);
                    let tolerance = 1e-13 * scale;
                    if neighbour == cell {
                        assert!(length < tolerance, "face {face} r{r}: centre at {length}");
                        continue;
                    }
                    assert!(
                        (length - 1.0).abs() < tolerance,
                        "face {face} r{r}: {length}"
                    );
                    // On an axis: at a multiple of 60°.
                    let turns = y.atan2(x) / std::f64::consts::FRAC_PI_3;
                    assert!(
                        (turns - turns.round()).abs() < tolerance,
                        "face {face} r{r}: {turns}"
                    );
                }
            }
        }
    }

    #[test]
    fn random_points_answer_as_h3o_and_nearly_all_from_the_tables() {
        let (lat, lon) = spread(17, 400_000, (50.80, 3.22), (0.06, 0.09));
        let answered = located(&lat, &lon, Resolution::Nine);
        // Only points within micrometres of an edge are left to the locator.
        assert!(answered > 399_900, "{answered}");
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
        let mut beside = 0;
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
                            beside += 1;
                        }
                    }
                }
            }
        }
        let (more_lat, more_lon) = spread(3, 100_000, (50.81, 3.24), (0.04, 0.05));
        lat.extend(more_lat);
        lon.extend(more_lon);
        let answered = located(&lat, &lon, resolution);
        // Points a millionth of a degree (10 cm) or more from an edge are answered.
        assert!(
            answered > 100_000 + beside / 2,
            "{answered} of {}",
            lat.len()
        );
    }

    #[test]
    fn coarse_and_fine_resolutions_answer_as_h3o() {
        for (resolution, size) in [
            (Resolution::Five, 2.0),
            (Resolution::Seven, 0.3),
            (Resolution::Eleven, 0.004),
            (Resolution::Thirteen, 0.0003),
            (Resolution::Fifteen, 0.00002),
        ] {
            let (lat, lon) = spread(
                u64::from(u8::from(resolution)),
                200_000,
                (-33.9, 151.1),
                (size, size),
            );
            let answered = located(&lat, &lon, resolution);
            assert!(answered > 190_000, "{resolution:?}: {answered}");
        }
    }

    #[test]
    fn around_pentagons_and_across_the_antimeridian_answers_are_h3o() {
        // Around three pentagons at resolutions 1 and 2, where whole tiles lie in a
        // pentagon's part of a face, and where the last column of tiles passes 180°.
        for (r, pentagon) in [(1_u8, 0), (2, 5), (1, 11)] {
            let resolution = Resolution::try_from(r).expect("a resolution");
            let centre = LatLng::from(resolution.pentagons().nth(pentagon).expect("12 pentagons"));
            let (lat, lon) = spread(
                u64::from(r),
                200_000,
                (centre.lat() - 6.0, centre.lng() - 6.0),
                (12.0, 12.0),
            );
            // Tiles near the pentagon's centre, where five faces meet, are not built;
            // those in the middle of its sectors are.
            let cells = answers(&lat, &lon, resolution);
            let answered = cells.iter().filter(|&&cell| cell != 0).count();
            assert!(answered > 50_000, "r{r}: {answered}");
            let in_pentagon = cells
                .iter()
                .filter_map(|&cell| CellIndex::try_from(cell).ok())
                .filter(|cell| cell.is_pentagon())
                .count();
            assert!(in_pentagon > 1_000, "r{r}: {in_pentagon}");
        }
        let (lat, lon) = spread(9, 200_000, (-17.8, 179.95), (0.1, 0.05));
        let (mut west_lat, west_lon) = spread(10, 200_000, (-17.8, -180.0), (0.1, 0.05));
        let mut lat = lat;
        lat.append(&mut west_lat);
        let lon: Vec<f64> = lon.into_iter().chain(west_lon).collect();
        assert!(located(&lat, &lon, Resolution::Nine) > 399_000);
    }

    #[test]
    fn the_lattice_rows_are_as_high_as_h3o_takes_them() {
        assert!((ROW_HEIGHT - 3_f64.sqrt() / 2.0).abs() < 1e-16);
        assert!((PER_ROW_HEIGHT * ROW_HEIGHT - 1.0).abs() <= f64::EPSILON);
    }

    #[test]
    fn small_angles_have_the_sine_and_cosine_of_the_library() {
        // A point is at most a tile's half width (0.005 radians) from the tile's centre.
        for k in -1000..=1000 {
            let x = f64::from(k) * 1e-5;
            let (sin, cos) = small_sin_cos(x);
            let (want_sin, want_cos) = x.sin_cos();
            assert!((sin - want_sin).abs() < 1e-16, "sin {x}");
            assert!((cos - want_cos).abs() < 2e-16, "cos {x}");
        }
    }
}
