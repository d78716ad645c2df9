//! The geography of a study (method §1.2): the origin-region tree and its cells, the
//! zones of interest and their categories, and the study area.
//!
//! A [`Geography`] is validated whole when it is built; afterwards every look-up a ping
//! needs (its leaf region, its zones) is one hash probe.

mod geojson;
mod locator;
mod raster;
mod tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

pub use locator::CellLocator;
pub use raster::{CellRaster, DEFAULT_RASTER_BUDGET};
pub use tables::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};

/// The index of a region in [`Geography::regions`].
pub type RegionIndex = u32;

/// The leaf index of pings that fall in no leaf region (origin `unknown`).
pub const UNKNOWN_REGION: RegionIndex = RegionIndex::MAX;

/// The index of a set of zones in [`Geography::zone_set`]; `0` is the empty set.
pub type ZoneSetIndex = u32;

/// Origin names the method gives a meaning to; no region may take them.
const RESERVED_REGION_IDS: [&str; 3] = ["unknown", "other", "*"];
const RESERVED_REGION_PREFIXES: [&str; 2] = ["country:", "other:"];

/// The region tree: ids, level names, parents and populations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regions {
    ids: Vec<String>,
    levels: Vec<String>,
    parents: Vec<Option<RegionIndex>>,
    populations: Vec<Option<u64>>,
    /// Display names given (`None`: the id).
    names: Vec<Option<String>>,
    is_leaf: Vec<bool>,
    root: RegionIndex,
    by_id: HashMap<String, RegionIndex>,
}

impl Regions {
    fn build(table: &RegionTable) -> Result<Self> {
        let count = table.region_id.len();
        let mut by_id = HashMap::with_capacity(count);
        for (row, id) in table.region_id.iter().enumerate() {
            if id.is_empty() {
                return Err(Error::geography(
                    "regions.region_id",
                    format!("row {row}: must not be empty"),
                ));
            }
            if RESERVED_REGION_IDS.contains(&id.as_str())
                || RESERVED_REGION_PREFIXES.iter().any(|p| id.starts_with(p))
            {
                return Err(Error::geography(
                    "regions.region_id",
                    format!("row {row}: {id:?} is reserved for origins the method names"),
                ));
            }
            if by_id.insert(id.clone(), row as RegionIndex).is_some() {
                return Err(Error::geography(
                    "regions.region_id",
                    format!("row {row}: duplicate id {id:?}"),
                ));
            }
        }
        let mut parents = Vec::with_capacity(count);
        for (row, parent) in table.parent_id.iter().enumerate() {
            let parent = match parent.as_deref() {
                None | Some("") => None,
                Some(parent) => Some(*by_id.get(parent).ok_or_else(|| {
                    Error::geography(
                        "regions.parent_id",
                        format!("row {row}: unknown parent {parent:?}"),
                    )
                })?),
            };
            parents.push(parent);
        }
        let roots: Vec<usize> = (0..count).filter(|&i| parents[i].is_none()).collect();
        let [root] = roots[..] else {
            return Err(Error::geography(
                "regions.parent_id",
                format!(
                    "the region tree must have exactly one root (a region without parent), found {}",
                    roots.len()
                ),
            ));
        };
        // Every region must reach the root; a region that does not is on a cycle.
        let mut depth_known = vec![false; count];
        depth_known[root] = true;
        for start in 0..count {
            let mut path = Vec::new();
            let mut at = start;
            while !depth_known[at] {
                if path.len() > count {
                    return Err(Error::geography(
                        "regions.parent_id",
                        format!("region {:?} is on a cycle", table.region_id[start]),
                    ));
                }
                path.push(at);
                at = parents[at].map_or(at, |p| p as usize);
            }
            for visited in path {
                depth_known[visited] = true;
            }
        }
        let mut is_leaf = vec![true; count];
        for parent in parents.iter().flatten() {
            is_leaf[*parent as usize] = false;
        }
        let populations = Self::populations(table, &parents, &is_leaf)?;
        let names = if table.name.is_empty() {
            vec![None; table.region_id.len()]
        } else {
            // A name that is empty or the id says nothing more than the id.
            table
                .name
                .iter()
                .zip(&table.region_id)
                .map(|(name, id)| name.clone().filter(|name| !name.is_empty() && name != id))
                .collect()
        };
        Ok(Self {
            ids: table.region_id.clone(),
            levels: table.level.clone(),
            parents,
            populations,
            names,
            is_leaf,
            root: root as RegionIndex,
            by_id,
        })
    }

    /// Leaf populations as given; inner nodes sum their leaves (and must agree with a
    /// value given for them).
    fn populations(
        table: &RegionTable,
        parents: &[Option<RegionIndex>],
        is_leaf: &[bool],
    ) -> Result<Vec<Option<u64>>> {
        let count = parents.len();
        let mut given = Vec::with_capacity(count);
        for (row, population) in table.population.iter().enumerate() {
            given.push(
                population
                    .map(|p| {
                        u64::try_from(p).map_err(|_| {
                            Error::geography(
                                "regions.population",
                                format!("row {row}: must not be negative, got {p}"),
                            )
                        })
                    })
                    .transpose()?,
            );
        }
        let mut sums: Vec<Option<u64>> = vec![Some(0); count];
        for leaf in (0..count).filter(|&i| is_leaf[i]) {
            let mut at = Some(leaf as RegionIndex);
            while let Some(node) = at {
                let node = node as usize;
                sums[node] = match (sums[node], given[leaf]) {
                    (Some(sum), Some(p)) => Some(sum + p),
                    _ => None,
                };
                at = parents[node];
            }
        }
        for inner in (0..count).filter(|&i| !is_leaf[i]) {
            if let (Some(stated), Some(sum)) = (given[inner], sums[inner])
                && stated != sum
            {
                return Err(Error::geography(
                    "regions.population",
                    format!(
                        "region {:?} states {stated} but its leaves sum to {sum}",
                        table.region_id[inner]
                    ),
                ));
            }
        }
        Ok(sums)
    }

    /// The number of regions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no regions (never true of a built geography).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A region's id.
    #[must_use]
    pub fn id(&self, region: RegionIndex) -> &str {
        &self.ids[region as usize]
    }

    /// The display name of a region: the name given, or its id.
    #[must_use]
    pub fn name(&self, region: RegionIndex) -> &str {
        self.names[region as usize]
            .as_deref()
            .unwrap_or(&self.ids[region as usize])
    }

    /// A region's level name.
    #[must_use]
    pub fn level(&self, region: RegionIndex) -> &str {
        &self.levels[region as usize]
    }

    /// A region's parent, `None` at the root.
    #[must_use]
    pub fn parent(&self, region: RegionIndex) -> Option<RegionIndex> {
        self.parents[region as usize]
    }

    /// A region's population: given for leaves, summed for inner nodes; `None` where a
    /// leaf's population is missing.
    #[must_use]
    pub fn population(&self, region: RegionIndex) -> Option<u64> {
        self.populations[region as usize]
    }

    /// Whether a region is a leaf (has no children).
    #[must_use]
    pub fn is_leaf(&self, region: RegionIndex) -> bool {
        self.is_leaf[region as usize]
    }

    /// The root region.
    #[must_use]
    pub fn root(&self) -> RegionIndex {
        self.root
    }

    /// The index of a region id.
    #[must_use]
    pub fn index_of(&self, id: &str) -> Option<RegionIndex> {
        self.by_id.get(id).copied()
    }

    /// The region and its ancestors, from itself up to the root.
    pub fn ancestors(&self, region: RegionIndex) -> impl Iterator<Item = RegionIndex> + '_ {
        std::iter::successors(Some(region), |&r| self.parent(r))
    }
}

/// One zone of interest, or a category analysed as a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// The zone id, or `category:<name>` for a category.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The zone's category; for a category zone, its own name.
    pub category: Option<String>,
    /// Whether this zone is a category (the union of its zones' cells).
    pub is_category: bool,
}

/// A validated study geography.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geography {
    resolution: Resolution,
    region_resolution: Option<Resolution>,
    regions: Regions,
    leaf_of_cell: FxHashMap<u64, RegionIndex>,
    zones: Vec<Zone>,
    zone_set_of_cell: FxHashMap<u64, ZoneSetIndex>,
    zone_sets: Vec<Box<[u32]>>,
    /// What was done to the input that its user should hear of (polygons smaller than a
    /// cell given the cell of their centroid).
    notes: Vec<String>,
    in_study_area: Vec<bool>,
    study_area: Vec<String>,
}

impl Geography {
    /// Builds and validates a geography from its four tables.
    ///
    /// `resolution` is the analysis resolution: zone cells must be at it, region cells at
    /// one resolution no finer than it. `study_area` names regions at any level.
    ///
    /// # Errors
    /// [`Error::Geography`] naming the table and column at fault: a duplicate, empty or
    /// reserved region id, an unknown parent, no or several roots, a cycle, a negative or
    /// inconsistent population, an invalid cell or one at the wrong resolution, a cell
    /// mapped to two leaves or to an inner region, region cells finer than the analysis
    /// resolution, a duplicate zone id, zone cells naming an unknown zone, an empty or
    /// unknown study area. [`Error::Config`] naming `resolution` for a resolution above 15.
    pub fn from_tables(
        regions: &RegionTable,
        region_cells: &RegionCellTable,
        zones: &ZoneTable,
        zone_cells: &ZoneCellTable,
        resolution: u8,
        study_area: &[String],
    ) -> Result<Self> {
        let resolution = Resolution::try_from(resolution).map_err(|_| {
            Error::config(
                "resolution",
                format!("must be an H3 resolution from 0 to 15, got {resolution}"),
            )
        })?;
        regions.check_lengths()?;
        region_cells.check_lengths()?;
        zones.check_lengths()?;
        zone_cells.check_lengths()?;
        let region_tree = Regions::build(regions)?;
        let (region_resolution, leaf_of_cell) =
            Self::leaf_cells(&region_tree, region_cells, resolution)?;
        let (zone_list, zone_set_of_cell, zone_sets) =
            Self::zone_cells(zones, zone_cells, resolution)?;
        let in_study_area = Self::study_area_leaves(&region_tree, study_area)?;
        Ok(Self {
            resolution,
            region_resolution,
            regions: region_tree,
            leaf_of_cell,
            zones: zone_list,
            zone_set_of_cell,
            zone_sets,
            notes: Vec::new(),
            in_study_area,
            study_area: study_area.to_vec(),
        })
    }

    fn leaf_cells(
        regions: &Regions,
        table: &RegionCellTable,
        resolution: Resolution,
    ) -> Result<(Option<Resolution>, FxHashMap<u64, RegionIndex>)> {
        let mut region_resolution = None;
        let mut leaf_of_cell = FxHashMap::default();
        leaf_of_cell.reserve(table.cell.len());
        for (row, (&raw, id)) in table.cell.iter().zip(&table.region_id).enumerate() {
            let cell = CellIndex::try_from(raw).map_err(|_| {
                Error::geography(
                    "region_cells.cell",
                    format!("row {row}: {raw:#x} is not a valid H3 cell"),
                )
            })?;
            let declared = *region_resolution.get_or_insert(cell.resolution());
            if cell.resolution() != declared {
                return Err(Error::geography(
                    "region_cells.cell",
                    format!(
                        "row {row}: cell {cell} is at resolution {}, but the table's cells are at {declared}",
                        cell.resolution()
                    ),
                ));
            }
            if declared > resolution {
                return Err(Error::geography(
                    "region_cells.cell",
                    format!(
                        "region cells at resolution {declared} are finer than the analysis resolution {resolution}"
                    ),
                ));
            }
            let region = regions.index_of(id).ok_or_else(|| {
                Error::geography(
                    "region_cells.region_id",
                    format!("row {row}: unknown region {id:?}"),
                )
            })?;
            if !regions.is_leaf(region) {
                return Err(Error::geography(
                    "region_cells.region_id",
                    format!("row {row}: {id:?} is an inner region; cells map to leaves only"),
                ));
            }
            if let Some(previous) = leaf_of_cell.insert(u64::from(cell), region)
                && previous != region
            {
                return Err(Error::geography(
                    "region_cells.cell",
                    format!(
                        "row {row}: cell {cell} is mapped to two leaves, {:?} and {id:?}",
                        regions.id(previous)
                    ),
                ));
            }
        }
        Ok((region_resolution, leaf_of_cell))
    }

    #[allow(clippy::type_complexity)]
    fn zone_cells(
        zones: &ZoneTable,
        zone_cells: &ZoneCellTable,
        resolution: Resolution,
    ) -> Result<(Vec<Zone>, FxHashMap<u64, ZoneSetIndex>, Vec<Box<[u32]>>)> {
        let mut zone_list = Vec::with_capacity(zones.zone_id.len());
        let mut by_id = HashMap::new();
        for (row, id) in zones.zone_id.iter().enumerate() {
            if id.is_empty() || id.starts_with("category:") {
                return Err(Error::geography(
                    "zones.zone_id",
                    format!("row {row}: {id:?} is empty or uses the reserved prefix \"category:\""),
                ));
            }
            if by_id.insert(id.clone(), row as u32).is_some() {
                return Err(Error::geography(
                    "zones.zone_id",
                    format!("row {row}: duplicate id {id:?}"),
                ));
            }
            let category = zones.category[row].clone().filter(|c| !c.is_empty());
            zone_list.push(Zone {
                id: id.clone(),
                name: zones.name[row].clone().unwrap_or_else(|| id.clone()),
                category,
                is_category: false,
            });
        }
        let categories: BTreeSet<String> = zone_list
            .iter()
            .filter_map(|z| z.category.clone())
            .collect();
        let mut category_zone = BTreeMap::new();
        for category in categories {
            category_zone.insert(category.clone(), zone_list.len() as u32);
            zone_list.push(Zone {
                id: format!("category:{category}"),
                name: category.clone(),
                category: Some(category),
                is_category: true,
            });
        }
        let mut sets_of_cell: FxHashMap<u64, BTreeSet<u32>> = FxHashMap::default();
        for (row, (id, &raw)) in zone_cells.zone_id.iter().zip(&zone_cells.cell).enumerate() {
            let zone = *by_id.get(id).ok_or_else(|| {
                Error::geography(
                    "zone_cells.zone_id",
                    format!("row {row}: unknown zone {id:?}"),
                )
            })?;
            let cell = CellIndex::try_from(raw).map_err(|_| {
                Error::geography(
                    "zone_cells.cell",
                    format!("row {row}: {raw:#x} is not a valid H3 cell"),
                )
            })?;
            if cell.resolution() != resolution {
                return Err(Error::geography(
                    "zone_cells.cell",
                    format!(
                        "row {row}: cell {cell} is at resolution {}, not at the analysis resolution {resolution}",
                        cell.resolution()
                    ),
                ));
            }
            let set = sets_of_cell.entry(raw).or_default();
            set.insert(zone);
            if let Some(category) = &zone_list[zone as usize].category {
                set.insert(category_zone[category]);
            }
        }
        let mut zone_sets: Vec<Box<[u32]>> = vec![Box::new([])];
        let mut set_index: HashMap<Vec<u32>, ZoneSetIndex> = HashMap::new();
        let mut zone_set_of_cell = FxHashMap::default();
        zone_set_of_cell.reserve(sets_of_cell.len());
        for (cell, set) in sets_of_cell {
            let set: Vec<u32> = set.into_iter().collect();
            let index = *set_index.entry(set.clone()).or_insert_with(|| {
                zone_sets.push(set.into_boxed_slice());
                (zone_sets.len() - 1) as ZoneSetIndex
            });
            zone_set_of_cell.insert(cell, index);
        }
        Ok((zone_list, zone_set_of_cell, zone_sets))
    }

    fn study_area_leaves(regions: &Regions, study_area: &[String]) -> Result<Vec<bool>> {
        if study_area.is_empty() {
            return Err(Error::geography(
                "study_area",
                "must name at least one region",
            ));
        }
        let mut named = vec![false; regions.len()];
        for id in study_area {
            let region = regions
                .index_of(id)
                .ok_or_else(|| Error::geography("study_area", format!("unknown region {id:?}")))?;
            named[region as usize] = true;
        }
        Ok((0..regions.len() as RegionIndex)
            .map(|r| regions.is_leaf(r) && regions.ancestors(r).any(|a| named[a as usize]))
            .collect())
    }

    /// The analysis resolution.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The resolution of the cell → leaf table, if it has any cells.
    #[must_use]
    pub fn region_resolution(&self) -> Option<Resolution> {
        self.region_resolution
    }

    /// The region tree.
    #[must_use]
    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    /// The zones, followed by one zone per category (`category:<name>`).
    #[must_use]
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The study area as given.
    #[must_use]
    pub fn study_area(&self) -> &[String] {
        &self.study_area
    }

    /// Whether a leaf is in the study area ([`UNKNOWN_REGION`] never is).
    #[must_use]
    pub fn in_study_area(&self, leaf: RegionIndex) -> bool {
        self.in_study_area
            .get(leaf as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The leaf region of a cell at the analysis resolution, or [`UNKNOWN_REGION`].
    #[must_use]
    pub fn leaf_of(&self, cell: CellIndex) -> RegionIndex {
        let Some(region_resolution) = self.region_resolution else {
            return UNKNOWN_REGION;
        };
        let parent = cell.parent(region_resolution).unwrap_or(cell);
        self.leaf_of_cell
            .get(&u64::from(parent))
            .copied()
            .unwrap_or(UNKNOWN_REGION)
    }

    /// The set of zones (zone indexes into [`Geography::zones`]) a cell at the analysis
    /// resolution lies in, as an index into [`Geography::zone_set`].
    #[must_use]
    pub fn zone_set_of(&self, cell: CellIndex) -> ZoneSetIndex {
        self.zone_set_of_cell
            .get(&u64::from(cell))
            .copied()
            .unwrap_or(0)
    }

    /// What was done to the input that its user should hear of: polygons smaller than a
    /// cell, given the cell of their centroid.
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The zones (not categories) with no cell at the analysis resolution: a zone
    /// given by cells of another resolution, or by a polygon too small for its cells.
    pub fn zones_without_cells(&self) -> impl Iterator<Item = &Zone> + '_ {
        let mut covered = vec![false; self.zones.len()];
        for set in &self.zone_sets {
            for &zone in set {
                covered[zone as usize] = true;
            }
        }
        self.zones
            .iter()
            .zip(covered)
            .filter(|(zone, covered)| !zone.is_category && !covered)
            .map(|(zone, _)| zone)
    }

    /// The zones of a zone set, in increasing zone index.
    #[must_use]
    pub fn zone_set(&self, index: ZoneSetIndex) -> &[u32] {
        &self.zone_sets[index as usize]
    }

    /// The four tables this geography is made of, in canonical order (regions as given,
    /// cells sorted): [`Geography::from_tables`] of them, with the same resolution and
    /// study area, gives this geography back. Polygons given as GeoJSON come back as
    /// their cells; inner regions' populations as the sums of their leaves.
    #[must_use]
    pub fn to_tables(&self) -> (RegionTable, RegionCellTable, ZoneTable, ZoneCellTable) {
        let regions = &self.regions;
        let region_table = RegionTable {
            region_id: regions.ids.clone(),
            level: regions.levels.clone(),
            parent_id: regions
                .parents
                .iter()
                .map(|p| p.map(|p| regions.ids[p as usize].clone()))
                .collect(),
            population: regions
                .populations
                .iter()
                .map(|p| p.map(|p| i64::try_from(p).unwrap_or(i64::MAX)))
                .collect(),
            name: if regions.names.iter().all(Option::is_none) {
                Vec::new()
            } else {
                regions.names.clone()
            },
        };
        let mut leaf_cells: Vec<(u64, RegionIndex)> =
            self.leaf_of_cell.iter().map(|(&c, &r)| (c, r)).collect();
        leaf_cells.sort_unstable();
        let region_cells = RegionCellTable {
            cell: leaf_cells.iter().map(|&(c, _)| c).collect(),
            region_id: leaf_cells
                .iter()
                .map(|&(_, r)| regions.ids[r as usize].clone())
                .collect(),
        };
        let given: Vec<&Zone> = self.zones.iter().filter(|z| !z.is_category).collect();
        let zones = ZoneTable {
            zone_id: given.iter().map(|z| z.id.clone()).collect(),
            name: given.iter().map(|z| Some(z.name.clone())).collect(),
            category: given.iter().map(|z| z.category.clone()).collect(),
        };
        let mut zone_cells: Vec<(u32, u64)> = Vec::new();
        for (&cell, &set) in &self.zone_set_of_cell {
            for &zone in self.zone_set(set) {
                if !self.zones[zone as usize].is_category {
                    zone_cells.push((zone, cell));
                }
            }
        }
        zone_cells.sort_unstable();
        let zone_cells = ZoneCellTable {
            zone_id: zone_cells
                .iter()
                .map(|&(z, _)| self.zones[z as usize].id.clone())
                .collect(),
            cell: zone_cells.iter().map(|&(_, c)| c).collect(),
        };
        (region_table, region_cells, zones, zone_cells)
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
