//! Disclosure control (method §7): k-anonymity on one release table, group by group,
//! across a category and its members, and on the dwell bands of each released group.
//!
//! Within a released group, an origin row is either released with every measure or
//! merged into a coarser row: below-k origin rows pool into `other:<parent>` level by
//! level up the region tree (roamers into `other:abroad`), what is still below k forms
//! the residual `other`, and a residual below k takes released rows, smallest first,
//! until it reaches k. Every step only adds rows together, so the released origin rows
//! always partition the group's total. A group below k is its suppressed total row
//! alone (step 1); a category group is suppressed with its suppressed members when the
//! union minus the others would reveal them (step 2); dwell bands are released on total
//! rows only, each counting 0 or at least k devices, with a complementary band withheld
//! (step 6).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::Serialize;

mod table;

pub(crate) use table::protect_table;

use crate::aggregate::Measures;
use crate::extrapolate::EstimateSums;
use crate::geo::{RegionIndex, Regions};

/// Measures and estimate of a row under construction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cell {
    /// The additive measures.
    pub measures: Measures,
    /// The estimate's sums.
    pub estimate: EstimateSums,
}

impl AddAssign for Cell {
    fn add_assign(&mut self, other: Self) {
        self.measures += other.measures;
        self.estimate += other.estimate;
    }
}

/// An origin at the release level.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LevelOrigin {
    /// A region of the tree (at the release level, or a leaf with no ancestor there).
    Region(RegionIndex),
    /// A roamer country, as `country:XX`.
    Country(String),
    /// Domestic devices without a home.
    Unknown,
}

/// What disclosure control did, summed over groups (§9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DisclosureCounts {
    /// The threshold applied.
    pub k: u64,
    /// Groups (zone, bucket, class) in the grid.
    pub groups: u64,
    /// Groups released as a suppressed total row alone.
    pub groups_suppressed: u64,
    /// Rows released with their measures (total rows included).
    pub rows_released: u64,
    /// Origin rows below k that were pooled (into `other:…` or the residual).
    pub origin_rows_rolled_up: u64,
    /// Released rows moved into the residual to lift it to k (secondary suppression).
    pub origin_rows_moved_to_residual: u64,
    /// Category groups suppressed because their suppressed member zones hold 1 to k − 1
    /// devices (§7 step 2); counted in `groups_suppressed` too.
    pub groups_suppressed_as_unions: u64,
    /// Dwell bands withheld on released total rows (§7 step 6).
    pub bands_withheld: u64,
}

/// The outcome for one group.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Group {
    /// The total is below k: only a suppressed total row is shown.
    Suppressed,
    /// The total and the released origin rows, in origin byte order.
    Released {
        /// The total row's cell.
        total: Cell,
        /// Released origin rows by name.
        origins: Vec<(String, Cell)>,
    },
}

/// How origin rows are named and pooled.
pub(crate) struct Disclosure<'a> {
    /// The region tree.
    pub regions: &'a Regions,
    /// The threshold on observed devices.
    pub k: u64,
    /// Whether below-k rows pool up the tree (§7.3) before the residual.
    pub roll_up: bool,
}

impl Disclosure<'_> {
    fn name(&self, origin: &LevelOrigin) -> String {
        match origin {
            LevelOrigin::Region(region) => self.regions.id(*region).to_owned(),
            LevelOrigin::Country(name) => name.clone(),
            LevelOrigin::Unknown => "unknown".to_owned(),
        }
    }

    fn depth(&self, region: RegionIndex) -> usize {
        self.regions.ancestors(region).count()
    }

    /// Protects one group, given its origin rows at the release level (each origin once,
    /// none empty).
    pub(crate) fn protect(
        &self,
        rows: Vec<(LevelOrigin, Cell)>,
        counts: &mut DisclosureCounts,
    ) -> Group {
        counts.groups += 1;
        let mut total = Cell::default();
        for (_, cell) in &rows {
            total += *cell;
        }
        if total.measures.devices < self.k {
            counts.groups_suppressed += 1;
            return Group::Suppressed;
        }
        let mut released: Vec<(String, Cell)> = Vec::new();
        let mut residual = Cell::default();
        // Pools keyed deepest first, then by region.
        let mut pools: BTreeMap<(Reverse<usize>, RegionIndex), Cell> = BTreeMap::new();
        let mut abroad: Option<Cell> = None;
        for (origin, cell) in rows {
            if cell.measures.devices >= self.k {
                released.push((self.name(&origin), cell));
                continue;
            }
            counts.origin_rows_rolled_up += 1;
            match origin {
                LevelOrigin::Region(region) if self.roll_up => match self.regions.parent(region) {
                    Some(parent) => {
                        *pools
                            .entry((Reverse(self.depth(parent)), parent))
                            .or_default() += cell;
                    }
                    None => residual += cell,
                },
                LevelOrigin::Country(_) if self.roll_up => *abroad.get_or_insert_default() += cell,
                _ => residual += cell,
            }
        }
        while let Some(((_, region), cell)) = pools.pop_first() {
            if cell.measures.devices >= self.k {
                released.push((format!("other:{}", self.regions.id(region)), cell));
            } else if let Some(parent) = self.regions.parent(region) {
                *pools
                    .entry((Reverse(self.depth(parent)), parent))
                    .or_default() += cell;
            } else {
                residual += cell;
            }
        }
        if let Some(cell) = abroad {
            if cell.measures.devices >= self.k {
                released.push(("other:abroad".to_owned(), cell));
            } else {
                residual += cell;
            }
        }
        if (1..self.k).contains(&residual.measures.devices) {
            // Secondary suppression: the smallest released rows join the residual.
            released.sort_by(|a, b| {
                (a.1.measures.devices, a.0.as_bytes()).cmp(&(b.1.measures.devices, b.0.as_bytes()))
            });
            let mut moved = 0;
            while residual.measures.devices < self.k && moved < released.len() {
                residual += released[moved].1;
                moved += 1;
            }
            released.drain(..moved);
            counts.origin_rows_moved_to_residual += moved as u64;
        }
        if residual.measures.devices > 0 {
            released.push(("other".to_owned(), residual));
        }
        released.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        counts.rows_released += released.len() as u64 + 1;
        Group::Released {
            total,
            origins: released,
        }
    }
}

#[cfg(test)]
mod tests;
