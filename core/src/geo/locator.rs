//! Exact lat/lon → H3 cell, several times faster than converting every point when
//! points cluster, as pings do around homes, workplaces and visited places.
//!
//! # Why the answer is always h3o's
//! h3o puts a point on the icosahedron face with the nearest centre and then in the
//! hexagon of that face's lattice whose centre is nearest in the face's gnomonic
//! projection. A cell whose vertices all lie on one face (neither a pentagon nor a cell
//! that crosses a face edge) is therefore the convex hexagon those vertices span in
//! that projection; the gnomonic projection maps its straight edges to great circles,
//! so the cell is the spherical hexagon bounded by the great circles through
//! consecutive vertices, and it lies inside its face.
//!
//! The locator keeps, for each cell it has met, the inward unit normals of those six
//! great circles. A point whose unit vector is on the inner side of all six by more
//! than the cell's margin is in that cell, and so far from every edge and from its
//! face's edges that rounding in h3o or here cannot put it elsewhere: it gets the cell
//! without h3o. Every other point, and every point in a pentagon, a face-crossing cell
//! or a cell within 1° of a pole, is converted by h3o itself. The lat/lon grid of tiles
//! only says which cells to try first; it never decides an answer.
//!
//! # The margin
//! Rounding here (unit vectors, normals, dot products) and in h3o's vertices is about
//! 1e-15 radians. h3o's own conversion is as exact except near a face centre: it takes
//! the angle `r` to the centre as `acos(1 - d²/2)`, which loses `1.1e-16 / r` radians.
//! A cell's margin is therefore [`MARGIN`] (1e-12, about 6 µm on the ground) plus
//! `1e-15 / r` for the least `r` of its points, and cells nearer than 1e-6 radians
//! (6 m) to a face centre are left to h3o.

use std::sync::Arc;

use h3o::{CellIndex, LatLng, Resolution};
use rustc_hash::FxHashMap;

use super::raster::{CellRaster, DEFAULT_RASTER_BUDGET, RasterView};

/// How far inside every edge (as the sine of the angle to its great circle) a point
/// must be for the fast path: many orders above the rounding error of either side.
pub(super) const MARGIN: f64 = 1e-12;

/// Cells nearer a face centre than this (radians) are left to h3o (see the margin).
pub(super) const MIN_FACE_CENTRE_DISTANCE: f64 = 1e-6;

/// Cells with a vertex nearer a pole than 1° are left to h3o: latitudes computed there
/// by `asin` lose precision.
const MAX_ABS_LATITUDE: f64 = 89.0;

/// The cells a tile remembers; a tile is half an edge on a side, so it meets few.
const TILE_CELLS: usize = 4;

/// A slot of a tile without a cell.
const EMPTY: u32 = u32::MAX;

/// In `shape_of`: a cell the fast path cannot serve (pentagon, face-crossing).
const NOT_CONVEX: u32 = u32::MAX - 1;

/// The most tiles and cell shapes kept: past them the locator starts afresh, so that
/// its memory stays bounded (about 16 MiB) whatever the input.
const MAX_TILES: usize = 1 << 18;
const MAX_SHAPES: usize = 1 << 16;

/// A unit vector on the sphere.
pub(super) type Vec3 = [f64; 3];

/// A cell with the inward unit normals of its six edges' great circles.
#[derive(Clone, Debug)]
struct CellShape {
    cell: CellIndex,
    normals: [Vec3; 6],
    /// How far inside every edge a point must be to be surely in the cell.
    margin: f64,
}

impl CellShape {
    /// The shape of `cell`, `None` when it is not one face's convex hexagon away from
    /// the face's centre and the poles.
    fn of(cell: CellIndex) -> Option<Self> {
        if cell.is_pentagon() {
            return None;
        }
        let mut faces = cell.icosahedron_faces().iter();
        let (Some(face), None) = (faces.next(), faces.next()) else {
            return None;
        };
        let boundary = cell.boundary();
        if boundary.len() != 6 || boundary.iter().any(|v| v.lat().abs() > MAX_ABS_LATITUDE) {
            return None;
        }
        let vertices: Vec<Vec3> = boundary.iter().map(|&v| unit_vector(v)).collect();
        let centre = unit_vector(LatLng::from(cell));
        let mut normals = [[0.0; 3]; 6];
        for (k, normal) in normals.iter_mut().enumerate() {
            // v × (w − v) is v × w, but without the cancellation of two nearly equal
            // products: the difference of close vertices is exact.
            let (v, w) = (vertices[k], vertices[(k + 1) % 6]);
            let mut n = cross(v, [w[0] - v[0], w[1] - v[1], w[2] - v[2]]);
            let length = dot(n, n).sqrt();
            if !length.is_normal() {
                return None;
            }
            n = n.map(|x| x / length);
            if dot(n, centre) < 0.0 {
                n = n.map(|x| -x);
            }
            // The centre is well inside every edge; anything else is not this shape.
            if dot(n, centre) <= 1e3 * MARGIN {
                return None;
            }
            *normal = n;
        }
        // The least angle from the face centre to a point of the cell: the angle to the
        // cell's centre less the cell's circumradius.
        let face_centre = face_centres()[usize::from(face)];
        let circumradius = vertices
            .iter()
            .map(|&v| angle(v, centre))
            .fold(0.0, f64::max);
        let nearest = angle(face_centre, centre) - circumradius;
        if nearest < MIN_FACE_CENTRE_DISTANCE {
            return None;
        }
        Some(Self {
            cell,
            normals,
            margin: MARGIN + 1e-15 / nearest.sin(),
        })
    }

    /// Whether `point` is inside every edge by more than the margin.
    #[inline]
    fn surely_contains(&self, point: Vec3) -> bool {
        self.normals.iter().all(|&n| dot(n, point) > self.margin)
    }
}

/// The centres of the icosahedron's 20 faces, by face number: the normalised sums of
/// each face's three vertices, which are the centres of the base pentagons whose faces
/// include it.
pub(super) fn face_centres() -> &'static [Vec3; 20] {
    static CENTRES: std::sync::OnceLock<[Vec3; 20]> = std::sync::OnceLock::new();
    CENTRES.get_or_init(|| {
        let mut sums = [[0.0; 3]; 20];
        let mut vertices = [0; 20];
        for pentagon in CellIndex::base_cells().filter(|cell| cell.is_pentagon()) {
            let vertex = unit_vector(LatLng::from(pentagon));
            for face in pentagon.icosahedron_faces().iter() {
                let sum = &mut sums[usize::from(face)];
                (0..3).for_each(|i| sum[i] += vertex[i]);
                vertices[usize::from(face)] += 1;
            }
        }
        assert!(
            vertices.iter().all(|&n| n == 3),
            "each face has three vertices"
        );
        sums.map(|sum| {
            let length = dot(sum, sum).sqrt();
            sum.map(|x| x / length)
        })
    })
}

/// Converts lat/lon to H3 cells at one resolution, giving exactly h3o's cell for every
/// point (see the module documentation for why), in any order of the points.
///
/// A point is first looked up in a [`CellRaster`] (shared by the locators of a run's
/// threads: [`CellLocator::with_raster`]); what the raster does not know is answered by
/// the shapes of cells met nearby, and the rest by h3o.
///
/// # Example
/// ```
/// use crowdtally::geo::CellLocator;
/// use h3o::{LatLng, Resolution};
///
/// let mut locator = CellLocator::new(Resolution::Nine);
/// for (lat, lon) in [(50.8280, 3.2650), (50.8281, 3.2652), (50.8279, 3.2649)] {
///     let exact = LatLng::new(lat, lon)?.to_cell(Resolution::Nine);
///     assert_eq!(locator.cell(lat, lon), Some(exact));
/// }
/// assert_eq!(locator.cell(f64::NAN, 3.0), None);
/// # Ok::<(), h3o::error::InvalidLatLng>(())
/// ```
#[derive(Clone, Debug)]
pub struct CellLocator {
    resolution: Resolution,
    raster: RasterView,
    /// Tiles per degree of latitude or longitude.
    tiles_per_degree: f64,
    /// Shape indexes (into `shapes`) of the cells met in each tile.
    tiles: FxHashMap<u64, [u32; TILE_CELLS]>,
    shapes: Vec<CellShape>,
    /// Each cell met: its index into `shapes`, or [`NOT_CONVEX`].
    shape_of: FxHashMap<u64, u32>,
    /// Points answered by the raster or the shapes, and by h3o.
    fast: u64,
    exact: u64,
    /// Room for a batch's cells as bits, in [`CellLocator::cells`].
    bits: Vec<u64>,
    single: Vec<Option<CellIndex>>,
}

impl CellLocator {
    /// A locator for cells at `resolution`, with a raster of its own
    /// ([`DEFAULT_RASTER_BUDGET`]).
    #[must_use]
    pub fn new(resolution: Resolution) -> Self {
        Self::with_raster(Arc::new(CellRaster::new(resolution, DEFAULT_RASTER_BUDGET)))
    }

    /// A locator for the cells of `raster`, which it shares with other locators (one per
    /// thread).
    #[must_use]
    pub fn with_raster(raster: Arc<CellRaster>) -> Self {
        let resolution = raster.resolution();
        let tile_degrees = resolution.edge_length_rads().to_degrees() / 2.0;
        Self {
            resolution,
            raster: RasterView::new(raster),
            tiles_per_degree: 1.0 / tile_degrees,
            tiles: FxHashMap::default(),
            shapes: Vec::new(),
            shape_of: FxHashMap::default(),
            fast: 0,
            exact: 0,
            bits: Vec::new(),
            single: Vec::with_capacity(1),
        }
    }

    /// The resolution cells are given at.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The cell of the point at `lat`, `lon` (degrees): h3o's cell, or `None` when
    /// the point is not finite or outside [-90, 90] × [-180, 180]. [`CellLocator::cells`]
    /// locates many points at once faster.
    pub fn cell(&mut self, lat: f64, lon: f64) -> Option<CellIndex> {
        let mut cells = std::mem::take(&mut self.single);
        self.cells(&[lat], &[lon], &mut cells);
        let cell = cells[0];
        self.single = cells;
        cell
    }

    /// The cells of the points `lat[k]`, `lon[k]` (degrees) into `cells` (cleared
    /// first), as [`CellLocator::cell`] gives them one by one. Many points at once let
    /// the memory reads of different points overlap: give batches of a few thousand.
    ///
    /// # Panics
    /// When `lat` and `lon` have different lengths.
    pub fn cells(&mut self, lat: &[f64], lon: &[f64], cells: &mut Vec<Option<CellIndex>>) {
        let mut bits = std::mem::take(&mut self.bits);
        self.cell_bits(lat, lon, &mut bits);
        cells.clear();
        cells.extend(bits.iter().map(|&bits| CellIndex::try_from(bits).ok()));
        self.bits = bits;
    }

    /// The cells of the points `lat[k]`, `lon[k]` (degrees) as their 64-bit H3 indexes
    /// into `bits` (cleared first), 0 where [`CellLocator::cell`] gives `None`: as
    /// [`CellLocator::cells`], without making a [`CellIndex`] of each (which checks its
    /// bits), for callers that keep the bits.
    ///
    /// # Panics
    /// When `lat` and `lon` have different lengths.
    pub fn cell_bits(&mut self, lat: &[f64], lon: &[f64], bits: &mut Vec<u64>) {
        assert_eq!(lat.len(), lon.len(), "as many latitudes as longitudes");
        let valid = |lat: f64, lon: f64| {
            lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
        };
        bits.clear();
        bits.resize(lat.len(), 0);
        let filled = self.raster.filled();
        self.raster.cells(lat, lon, bits);
        // Entries the raster filled were asked of h3o.
        let filled = self.raster.filled() - filled;
        self.exact += filled;
        self.fast += bits.iter().filter(|&&bits| bits != 0).count() as u64 - filled;
        for (k, bits) in bits.iter_mut().enumerate() {
            let (a, o) = (lat[k], lon[k]);
            if *bits == 0 && valid(a, o) {
                *bits = self.without_raster(a, o).map_or(0, u64::from);
            }
        }
    }

    /// The cell of a valid position the raster does not know: from a shape met nearby,
    /// or h3o's.
    fn without_raster(&mut self, lat: f64, lon: f64) -> Option<CellIndex> {
        let position = LatLng::new(lat, lon).ok()?;
        let point = unit_vector(position);
        let tile = self.tile_of(lat, lon);
        if let Some(slots) = self.tiles.get(&tile) {
            for &slot in slots.iter().take_while(|&&slot| slot != EMPTY) {
                let shape = &self.shapes[slot as usize];
                if shape.surely_contains(point) {
                    self.fast += 1;
                    return Some(shape.cell);
                }
            }
        }
        self.exact += 1;
        let cell = position.to_cell(self.resolution);
        self.learn(tile, cell);
        Some(cell)
    }

    /// How many points were answered by the raster or a remembered shape, and how many
    /// by h3o.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.fast, self.exact)
    }

    /// The tile key of a valid position: row and column of the lat/lon grid.
    #[inline]
    fn tile_of(&self, lat: f64, lon: f64) -> u64 {
        let row = ((lat + 90.0) * self.tiles_per_degree) as u64;
        let column = ((lon + 180.0) * self.tiles_per_degree) as u64;
        row << 32 | column
    }

    /// Remembers `cell` in `tile`, so that the next points there are tried against it.
    fn learn(&mut self, tile: u64, cell: CellIndex) {
        if self.tiles.len() >= MAX_TILES || self.shapes.len() >= MAX_SHAPES {
            self.tiles.clear();
            self.shapes.clear();
            self.shape_of.clear();
        }
        let shapes = &mut self.shapes;
        let shape = *self.shape_of.entry(u64::from(cell)).or_insert_with(|| {
            CellShape::of(cell).map_or(NOT_CONVEX, |shape| {
                shapes.push(shape);
                (shapes.len() - 1) as u32
            })
        });
        if shape == NOT_CONVEX {
            return;
        }
        let slots = self.tiles.entry(tile).or_insert([EMPTY; TILE_CELLS]);
        // A cell already in the tile was missed only within the margin of an edge.
        if let Some(free) = slots
            .iter_mut()
            .find(|slot| **slot == EMPTY || **slot == shape)
        {
            *free = shape;
        }
    }
}

/// The unit vector of a position, as h3o computes it.
#[inline]
pub(super) fn unit_vector(position: LatLng) -> Vec3 {
    let (sin_lat, cos_lat) = position.lat_radians().sin_cos();
    let (sin_lon, cos_lon) = position.lng_radians().sin_cos();
    [cos_lon * cos_lat, sin_lon * cos_lat, sin_lat]
}

#[inline]
pub(super) fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The angle between two unit vectors, accurate for small angles too.
pub(super) fn angle(a: Vec3, b: Vec3) -> f64 {
    let c = cross(a, b);
    dot(c, c).sqrt().atan2(dot(a, b))
}

pub(super) fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[cfg(test)]
mod tests {
    use super::{CellShape, angle, face_centres, unit_vector};
    use h3o::{CellIndex, LatLng, Resolution};

    #[test]
    fn face_centres_are_the_centres_of_the_single_face_base_cells_of_their_faces() {
        for (face, &centre) in face_centres().iter().enumerate() {
            let norm = super::dot(centre, centre).sqrt();
            assert!((norm - 1.0).abs() < 1e-15);
            let position =
                LatLng::from_radians(centre[2].asin(), centre[1].atan2(centre[0])).expect("finite");
            let base = position.to_cell(Resolution::Zero);
            let faces: Vec<usize> = base.icosahedron_faces().iter().map(usize::from).collect();
            assert_eq!(faces, [face]);
            // The base cell's centre is the face centre (to rounding).
            assert!(angle(unit_vector(LatLng::from(base)), centre) < 1e-12);
        }
    }

    #[test]
    fn only_single_face_hexagons_away_from_face_centres_and_poles_have_shapes() {
        let at =
            |lat: f64, lon: f64, r: Resolution| LatLng::new(lat, lon).expect("valid").to_cell(r);
        assert!(CellShape::of(at(50.83, 3.26, Resolution::Nine)).is_some());
        for pentagon in Resolution::Nine.pentagons() {
            assert!(CellShape::of(pentagon).is_none());
        }
        assert!(CellShape::of(at(89.5, 0.0, Resolution::Nine)).is_none());
        let crossing = CellIndex::base_cells()
            .find(|c| c.icosahedron_faces().len() > 1 && !c.is_pentagon())
            .expect("a base cell crosses a face edge");
        assert!(CellShape::of(crossing).is_none());
        // A face centre's own cell at a fine resolution is left to h3o.
        let centre = face_centres()[0];
        let position =
            LatLng::from_radians(centre[2].asin(), centre[1].atan2(centre[0])).expect("finite");
        assert!(CellShape::of(position.to_cell(Resolution::Fifteen)).is_none());
    }

    #[test]
    fn a_shape_contains_its_centre_but_not_its_neighbours_centres() {
        let cell = LatLng::new(50.83, 3.26)
            .expect("valid")
            .to_cell(Resolution::Nine);
        let shape = CellShape::of(cell).expect("a plain hexagon");
        assert!(shape.surely_contains(unit_vector(LatLng::from(cell))));
        for neighbour in cell
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .filter(|&n| n != cell)
        {
            assert!(!shape.surely_contains(unit_vector(LatLng::from(neighbour))));
        }
        for vertex in cell.boundary().iter() {
            assert!(!shape.surely_contains(unit_vector(*vertex)));
        }
    }
}
