//! The grid of a release (method §6): every zone × bucket × class group, with the
//! aggregate's rows of each group and each leaf origin's origin at the release level.

use std::sync::Arc;

use crate::aggregate::{Aggregate, GroupKey, Measures, ReleaseClass, RowKey};
use crate::calendar::{Calendar, format_local};
use crate::disclosure::LevelOrigin;
use crate::error::{Error, Result};
use crate::geo::Regions;

/// Every group of a release and the aggregate rows in it.
pub(crate) struct Grid<'a> {
    pub(crate) aggregate: &'a Aggregate,
    /// Zone ids, in the geography's order (categories last).
    pub(crate) zones: Vec<Arc<str>>,
    /// Bucket starts as local time text.
    pub(crate) labels: Vec<Arc<str>>,
    pub(crate) classes: &'a [ReleaseClass],
    /// The release-level origin of each of the aggregate's leaf origins.
    pub(crate) level_origin: Vec<LevelOrigin>,
}

/// One group of the grid: its key, names, and its rows in the aggregate (by leaf
/// origin, possibly none).
pub(crate) struct GridGroup<'a> {
    pub(crate) key: GroupKey,
    pub(crate) zone: &'a Arc<str>,
    pub(crate) label: &'a Arc<str>,
    pub(crate) class: ReleaseClass,
    pub(crate) rows: &'a [(RowKey, Measures)],
}

impl<'a> Grid<'a> {
    /// The grid of an aggregate at `level` (`None`: the leaves).
    ///
    /// # Errors
    /// [`Error::Config`] naming `aggregate` when it names origins that are not leaf regions
    /// of this geography (partials merged from another one).
    pub(crate) fn new(
        aggregate: &'a Aggregate,
        regions: &Regions,
        level: Option<&str>,
        calendar: &Calendar,
    ) -> Result<Self> {
        let spec = aggregate.spec();
        let level_origin = aggregate
            .origins()
            .iter()
            .map(|name| {
                if name == "unknown" {
                    return Ok(LevelOrigin::Unknown);
                }
                if name.starts_with("country:") {
                    return Ok(LevelOrigin::Country(name.clone()));
                }
                // Merged partials from another geography would pool silently: refuse them.
                let leaf = regions
                    .index_of(name)
                    .filter(|&r| regions.is_leaf(r))
                    .ok_or_else(|| {
                        Error::config(
                            "aggregate",
                            "names origins that are not leaf regions of this geography",
                        )
                    })?;
                let at_level = level
                    .and_then(|level| regions.ancestors(leaf).find(|&r| regions.level(r) == level));
                Ok(LevelOrigin::Region(at_level.unwrap_or(leaf)))
            })
            .collect::<Result<_>>()?;
        let buckets = spec.bounds.len().saturating_sub(1);
        Ok(Self {
            aggregate,
            zones: spec.zones.iter().map(|z| Arc::from(z.as_str())).collect(),
            labels: spec.bounds[..buckets]
                .iter()
                .map(|&b0| Arc::from(format_local(calendar, b0)))
                .collect(),
            classes: &spec.classes,
            level_origin,
        })
    }

    /// Every group in table order (zones, then buckets, then classes), empty ones
    /// included.
    pub(crate) fn groups(&self) -> impl Iterator<Item = GridGroup<'_>> + '_ {
        let rows = self.aggregate.rows();
        let mut cursor = 0;
        let keys = self.zones.iter().enumerate().flat_map(move |(zone, _)| {
            (0..self.labels.len()).flat_map(move |bucket| {
                (0..self.classes.len()).map(move |class| GroupKey {
                    zone: zone as u32,
                    bucket: bucket as u32,
                    class: class as u8,
                })
            })
        });
        keys.map(move |key| {
            let start = cursor;
            while rows.get(cursor).is_some_and(|(row, _)| {
                (row.zone, row.bucket, row.class) == (key.zone, key.bucket, key.class)
            }) {
                cursor += 1;
            }
            GridGroup {
                key,
                zone: &self.zones[key.zone as usize],
                label: &self.labels[key.bucket as usize],
                class: self.classes[key.class as usize],
                rows: &rows[start..cursor],
            }
        })
    }

    /// The index of a group in table order.
    pub(crate) fn index(&self, key: GroupKey) -> usize {
        (key.zone as usize * self.labels.len() + key.bucket as usize) * self.classes.len()
            + key.class as usize
    }

    /// The number of groups.
    pub(crate) fn len(&self) -> usize {
        self.zones.len() * self.labels.len() * self.classes.len()
    }
}
