//! Aggregation (method §6): per (zone, bucket, class, origin) the distinct devices with a
//! qualifying visit overlapping the bucket, the visits starting in it, the dwell inside
//! it and the dwell bands of the visits counted.
//!
//! [`Aggregate`] is the partial result: keyed by each device's *leaf* origin (home leaf,
//! `country:XX` or `unknown`), so that any origin level and the extrapolation (which
//! needs leaf factors) can be derived from it afterwards. Every number in it is a sum
//! over devices, so aggregates of device-disjoint shards merge exactly with
//! [`Aggregate::merge`], on one machine or many (it is serde-serialisable; origins are
//! carried by name, not by local numbers).

mod buckets;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::AddAssign;
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use buckets::{BucketKind, Buckets};

use crate::config::Period;
use crate::error::{Error, Result};
use crate::ingest::LocatedPings;
use crate::profile::{DeviceClass, Origin, Profiles, origin_name};
use crate::release::ReleaseSpec;
use crate::study::Study;

/// The dwell bands of §6, as `[lower, upper)` seconds of a visit's whole dwell.
pub const DWELL_BANDS: [(&str, i64); 5] = [
    ("band_0_1h", 0),
    ("band_1_2h", 3_600),
    ("band_2_4h", 2 * 3_600),
    ("band_4_8h", 4 * 3_600),
    ("band_8h_plus", 8 * 3_600),
];

/// The band index of a dwell.
fn band_of(dwell: i64) -> usize {
    DWELL_BANDS
        .iter()
        .rposition(|&(_, lower)| dwell >= lower)
        .unwrap_or(0)
}

/// A class a release is grouped by: one device class, or `visitor` (both visitor classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseClass {
    /// Day and overnight visitors together.
    Visitor,
    /// One device class.
    #[serde(untagged)]
    Device(DeviceClass),
}

impl ReleaseClass {
    /// The class's name in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Device(class) => class.name(),
        }
    }

    /// Whether a device of `class` belongs to this release class.
    #[must_use]
    pub fn contains(self, class: DeviceClass) -> bool {
        match self {
            Self::Visitor => class.is_visitor(),
            Self::Device(own) => own == class,
        }
    }

    /// Checks a list of release classes: not empty, no repeats, and not `visitor`
    /// together with one of its parts (§4).
    ///
    /// # Errors
    /// [`Error::Config`] naming `classes`.
    pub fn validate_list(classes: &[Self]) -> Result<()> {
        if classes.is_empty() {
            return Err(Error::config("classes", "must name at least one class"));
        }
        for (i, class) in classes.iter().enumerate() {
            if classes[..i].contains(class) {
                return Err(Error::config(
                    "classes",
                    format!("names {:?} twice", class.name()),
                ));
            }
        }
        let has_part = classes
            .iter()
            .any(|c| matches!(c, Self::Device(d) if d.is_visitor()));
        if classes.contains(&Self::Visitor) && has_part {
            return Err(Error::config(
                "classes",
                "may group by `visitor` or by its parts (`overnight_visitor`, `day_visitor`), not both",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ReleaseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReleaseClass {
    type Err = Error;

    /// Parses a class name.
    ///
    /// # Errors
    /// [`Error::Config`] naming `classes` for an unknown name.
    fn from_str(name: &str) -> Result<Self> {
        if name == "visitor" {
            return Ok(Self::Visitor);
        }
        DeviceClass::ALL
            .into_iter()
            .find(|class| class.name() == name)
            .map(Self::Device)
            .ok_or_else(|| {
                Error::config(
                    "classes",
                    format!(
                        "must name classes among visitor, overnight_visitor, day_visitor, \
                         resident, regular; got {name:?}"
                    ),
                )
            })
    }
}

/// The additive measures of one row (§6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measures {
    /// Distinct devices with a qualifying visit overlapping the bucket.
    pub devices: u64,
    /// Qualifying visits starting in the bucket.
    pub visits: u64,
    /// Seconds of qualifying visits inside the bucket.
    pub dwell_s: i64,
    /// The visits counted in `visits`, by whole dwell (see [`DWELL_BANDS`]).
    pub bands: [u64; 5],
}

impl AddAssign for Measures {
    fn add_assign(&mut self, other: Self) {
        self.devices += other.devices;
        self.visits += other.visits;
        self.dwell_s += other.dwell_s;
        for (mine, theirs) in self.bands.iter_mut().zip(other.bands) {
            *mine += theirs;
        }
    }
}

/// What a partial aggregate was computed for; two partials merge only when theirs agree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpec {
    /// The bucket kind.
    pub bucket: BucketKind,
    /// The release classes, in order.
    pub classes: Vec<ReleaseClass>,
    /// The period of the grid.
    pub period: Period,
    /// The time zone.
    pub tz: String,
    /// The zone ids (categories included), in the geography's order.
    pub zones: Vec<String>,
    /// The bucket bounds, epoch seconds.
    pub bounds: Vec<i64>,
}

/// The key of one partial row: zone, bucket, class and leaf origin, as indexes into the
/// spec's zones, the buckets, the spec's classes and [`Aggregate::origins`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RowKey {
    /// Index into [`AggregateSpec::zones`].
    pub zone: u32,
    /// Bucket index.
    pub bucket: u32,
    /// Index into [`AggregateSpec::classes`].
    pub class: u8,
    /// Index into [`Aggregate::origins`].
    pub origin: u32,
}

/// Devices by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Residents.
    pub resident: u64,
    /// Regulars (commuters, students).
    pub regular: u64,
    /// Overnight visitors (tourists).
    pub overnight_visitor: u64,
    /// Day visitors (excursionists).
    pub day_visitor: u64,
}

impl ClassCounts {
    /// The devices of one class.
    #[must_use]
    pub fn get(&self, class: DeviceClass) -> u64 {
        match class {
            DeviceClass::Resident => self.resident,
            DeviceClass::Regular => self.regular,
            DeviceClass::OvernightVisitor => self.overnight_visitor,
            DeviceClass::DayVisitor => self.day_visitor,
        }
    }

    fn add(&mut self, class: DeviceClass, count: u64) {
        let slot = match class {
            DeviceClass::Resident => &mut self.resident,
            DeviceClass::Regular => &mut self.regular,
            DeviceClass::OvernightVisitor => &mut self.overnight_visitor,
            DeviceClass::DayVisitor => &mut self.day_visitor,
        };
        *slot += count;
    }

    /// All devices.
    #[must_use]
    pub fn total(&self) -> u64 {
        DeviceClass::ALL.iter().map(|&class| self.get(class)).sum()
    }
}

/// Counts over all devices (every class), for extrapolation and the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounts {
    /// Devices by class.
    pub by_class: ClassCounts,
    /// Inbound roamers.
    pub roamers: u64,
    /// Domestic devices without a home.
    pub domestic_unknown_home: u64,
    /// Detected subscribers (§8): non-roamer devices by home leaf id.
    pub subscribers: BTreeMap<String, u64>,
}

impl DeviceCounts {
    fn merge(&mut self, other: &Self) {
        for class in DeviceClass::ALL {
            self.by_class.add(class, other.by_class.get(class));
        }
        self.roamers += other.roamers;
        self.domestic_unknown_home += other.domestic_unknown_home;
        for (leaf, count) in &other.subscribers {
            *self.subscribers.entry(leaf.clone()).or_default() += count;
        }
    }

    /// All devices.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_class.total()
    }
}

/// A partial aggregate over some devices: rows keyed by leaf origin, sorted by key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    spec: AggregateSpec,
    origins: Vec<String>,
    rows: Vec<(RowKey, Measures)>,
    devices: DeviceCounts,
}

impl Aggregate {
    /// Aggregates the visits of profiled devices (of `pings`, in `study`) for the table
    /// `spec` asks for. With no period (no pings and none given) there is no grid and the
    /// aggregate is `None`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid class list.
    pub(crate) fn new(
        profiles: &Profiles,
        pings: &LocatedPings,
        study: &Study,
        spec: &ReleaseSpec,
    ) -> Result<Option<Self>> {
        let (geography, config) = (study.geography(), study.config());
        let (bucket, classes) = (spec.bucket, &spec.classes[..]);
        ReleaseClass::validate_list(classes)?;
        let Some(period) = profiles.period.or(config.period) else {
            return Ok(None);
        };
        let buckets = Buckets::new(bucket, study.calendar(), period);
        let spec = AggregateSpec {
            bucket,
            classes: classes.to_vec(),
            period,
            tz: config.tz.clone(),
            zones: geography.zones().iter().map(|z| z.id.clone()).collect(),
            bounds: buckets.bounds().to_vec(),
        };
        let devices = &profiles.devices;
        let visits = &profiles.visits;
        let mut counts = DeviceCounts::default();
        let mut origin_numbers: FxHashMap<Origin, u32> = FxHashMap::default();
        let mut origins = Vec::new();
        let mut cells: FxHashMap<RowKey, Measures> = FxHashMap::default();
        let mut overlapped: Vec<(u32, u32)> = Vec::new();
        // Detected subscribers by leaf index, named once at the end.
        let mut subscribers = vec![0_u64; geography.regions().len()];
        let mut visit = 0;
        for i in 0..devices.len() {
            let class = devices.class[i];
            let origin = devices.origin(i);
            counts.by_class.add(class, 1);
            match origin {
                Origin::Country(_) => counts.roamers += 1,
                Origin::Unknown => counts.domestic_unknown_home += 1,
                Origin::Leaf(leaf) => subscribers[leaf as usize] += 1,
            }
            let first_visit = visit;
            while visit < visits.len() && visits.device[visit] as usize == i {
                visit += 1;
            }
            let Some(slot) = classes.iter().position(|c| c.contains(class)) else {
                continue;
            };
            if !(first_visit..visit).any(|v| visits.qualifies(v)) {
                continue;
            }
            // Only origins with a row are named, so that the factors' warnings concern
            // rows of the release.
            let origin_number = *origin_numbers.entry(origin).or_insert_with(|| {
                origins.push(origin_name(origin, pings, geography));
                (origins.len() - 1) as u32
            });
            let key = |zone: u32, bucket: usize| RowKey {
                zone,
                bucket: bucket as u32,
                class: slot as u8,
                origin: origin_number,
            };
            overlapped.clear();
            for v in first_visit..visit {
                if !visits.qualifies(v) {
                    continue;
                }
                let (zone, start, end) = (visits.zone[v], visits.start[v], visits.end[v]);
                for b in buckets.overlapped(start, end) {
                    let (b0, b1) = buckets.interval(b);
                    let row = cells.entry(key(zone, b)).or_default();
                    row.dwell_s += end.min(b1) - start.max(b0);
                    overlapped.push((zone, b as u32));
                }
                if let Some(b) = buckets.bucket_of(start) {
                    let row = cells.entry(key(zone, b)).or_default();
                    row.visits += 1;
                    row.bands[band_of(visits.dwell(v))] += 1;
                }
            }
            overlapped.sort_unstable();
            overlapped.dedup();
            for &(zone, b) in &overlapped {
                cells.entry(key(zone, b as usize)).or_default().devices += 1;
            }
        }
        counts.subscribers = subscribers
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(leaf, &n)| (geography.regions().id(leaf as u32).to_owned(), n))
            .collect();
        let mut rows: Vec<(RowKey, Measures)> = cells.into_iter().collect();
        rows.sort_unstable_by_key(|&(key, _)| key);
        let mut aggregate = Self {
            spec,
            origins,
            rows,
            devices: counts,
        };
        aggregate.canonicalise();
        Ok(Some(aggregate))
    }

    /// Renumbers origins in name order, so that equal aggregates are equal values
    /// whatever order the devices came in.
    fn canonicalise(&mut self) {
        let mut order: Vec<u32> = (0..self.origins.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.origins[a as usize].cmp(&self.origins[b as usize]));
        let mut renumber = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        self.origins = order
            .iter()
            .map(|&old| std::mem::take(&mut self.origins[old as usize]))
            .collect();
        for (key, _) in &mut self.rows {
            key.origin = renumber[key.origin as usize];
        }
        self.rows.sort_unstable_by_key(|&(key, _)| key);
    }

    /// Adds another partial aggregate over a disjoint set of devices.
    ///
    /// # Errors
    /// [`Error::Config`] naming `aggregate` when the two were computed for different
    /// buckets, classes, periods, time zones or zones.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        let mine = self.clone();
        if let Some(merged) = Self::merge_all([mine, other.clone()])? {
            *self = merged;
        }
        Ok(())
    }

    /// Merges partial aggregates over disjoint sets of devices in one pass (the shards
    /// of a run); `None` when there are none.
    ///
    /// # Errors
    /// As [`Aggregate::merge`].
    pub fn merge_all(parts: impl IntoIterator<Item = Self>) -> Result<Option<Self>> {
        let parts: Vec<Self> = parts.into_iter().collect();
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        if parts.iter().any(|p| p.spec != first.spec) {
            return Err(Error::config(
                "aggregate",
                "cannot merge partial aggregates of different buckets, classes, periods, \
                 time zones or zones",
            ));
        }
        let names: BTreeSet<&str> = parts
            .iter()
            .flat_map(|p| &p.origins)
            .map(String::as_str)
            .collect();
        let merged: Vec<String> = names.into_iter().map(str::to_owned).collect();
        let index = |name: &str| {
            merged
                .binary_search_by(|m| m.as_str().cmp(name))
                .unwrap_or(0) as u32
        };
        let mut rows: Vec<(RowKey, Measures)> =
            Vec::with_capacity(parts.iter().map(|p| p.rows.len()).sum());
        let mut devices = DeviceCounts::default();
        for part in &parts {
            let numbers: Vec<u32> = part.origins.iter().map(|n| index(n)).collect();
            rows.extend(part.rows.iter().map(|&(key, measures)| {
                let key = RowKey {
                    origin: numbers[key.origin as usize],
                    ..key
                };
                (key, measures)
            }));
            devices.merge(&part.devices);
        }
        rows.sort_unstable_by_key(|&(key, _)| key);
        let mut folded: Vec<(RowKey, Measures)> = Vec::with_capacity(rows.len());
        for (key, measures) in rows {
            match folded.last_mut() {
                Some((last, sum)) if *last == key => *sum += measures,
                _ => folded.push((key, measures)),
            }
        }
        Ok(Some(Self {
            spec: first.spec.clone(),
            origins: merged,
            rows: folded,
            devices,
        }))
    }

    /// What the aggregate was computed for.
    #[must_use]
    pub fn spec(&self) -> &AggregateSpec {
        &self.spec
    }

    /// The leaf origin names the rows refer to, in byte order.
    #[must_use]
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// The rows, sorted by key; only non-empty rows are present.
    #[must_use]
    pub fn rows(&self) -> &[(RowKey, Measures)] {
        &self.rows
    }

    /// Counts over all devices.
    #[must_use]
    pub fn devices(&self) -> &DeviceCounts {
        &self.devices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_split_at_whole_hours() {
        assert_eq!(band_of(0), 0);
        assert_eq!(band_of(3_599), 0);
        assert_eq!(band_of(3_600), 1);
        assert_eq!(band_of(4 * 3_600 - 1), 2);
        assert_eq!(band_of(8 * 3_600), 4);
        assert_eq!(band_of(100 * 3_600), 4);
    }

    #[test]
    fn class_lists_are_checked() {
        let parse = |names: &[&str]| -> Result<Vec<ReleaseClass>> {
            names.iter().map(|n| n.parse()).collect()
        };
        let ok = parse(&["overnight_visitor", "day_visitor", "resident"]).unwrap();
        ReleaseClass::validate_list(&ok).unwrap();
        for bad in [
            &["visitor", "day_visitor"][..],
            &["regular", "regular"],
            &[],
        ] {
            let err = ReleaseClass::validate_list(&parse(bad).unwrap()).unwrap_err();
            assert_eq!(err.field(), Some("classes"));
        }
        assert_eq!(parse(&["tourist"]).unwrap_err().field(), Some("classes"));
    }
}
