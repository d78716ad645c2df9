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
mod classes;
mod contributions;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::AddAssign;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use buckets::{BucketKind, Buckets};
pub use classes::{ClassCounts, ReleaseClass};
pub(crate) use contributions::PairRanks;

use crate::calendar::format_local;
use crate::config::Period;
use crate::error::{Error, Result};
use crate::ingest::LocatedPings;
use crate::privacy::{ContributionBounds, Privacy};
use crate::profile::{DeviceClass, Origin, Profiles, origin_name};
use crate::release::ReleaseSpec;
use crate::study::Study;
use contributions::Contribution;

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
    /// The distinct devices with a visit counted in each band: what the threshold of
    /// §7 step 6 looks at.
    pub band_devices: [u64; 5],
}

impl AddAssign for Measures {
    fn add_assign(&mut self, other: Self) {
        self.devices += other.devices;
        self.visits += other.visits;
        self.dwell_s += other.dwell_s;
        for (mine, theirs) in self.bands.iter_mut().zip(other.bands) {
            *mine += theirs;
        }
        for (mine, theirs) in self.band_devices.iter_mut().zip(other.band_devices) {
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
    /// Each device's contribution as the differential-privacy mode bounds it; `None`
    /// in the k-anonymity mode (unbounded).
    pub contribution: Option<ContributionBounds>,
}

impl AggregateSpec {
    /// What an aggregate of `study`'s pings over `period` is computed for, for `spec`,
    /// with its buckets.
    pub(crate) fn new(study: &Study, spec: &ReleaseSpec, period: Period) -> Self {
        let buckets = Buckets::new(spec.bucket, study.calendar(), period);
        Self::of(study, spec, period, &buckets)
    }

    /// [`AggregateSpec::new`] with the buckets already made.
    pub(crate) fn of(study: &Study, spec: &ReleaseSpec, period: Period, buckets: &Buckets) -> Self {
        let zones: Vec<String> = study
            .geography()
            .zones()
            .iter()
            .map(|z| z.id.clone())
            .collect();
        let contribution = match &spec.privacy {
            Privacy::KAnonymity => None,
            Privacy::DifferentialPrivacy(dp) => Some(ContributionBounds::of_grid(
                dp,
                zones.len(),
                buckets.bounds(),
            )),
        };
        Self {
            bucket: spec.bucket,
            classes: spec.classes.clone(),
            period,
            tz: study.config().tz.clone(),
            zones,
            bounds: buckets.bounds().to_vec(),
            contribution,
        }
    }
}

/// The key of one group of a release: zone, bucket and class, as in [`RowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// Index into [`AggregateSpec::zones`].
    pub zone: u32,
    /// Bucket index.
    pub bucket: u32,
    /// Index into [`AggregateSpec::classes`].
    pub class: u8,
}

/// Devices of a category's group by the set of its member zones they count in (§7 step
/// 2): which devices a suppressed member holds is read from these, once the step-1
/// outcome of the members is known.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnionMembers {
    /// The category's group.
    pub group: GroupKey,
    /// The member zones (indexes into [`AggregateSpec::zones`]) the devices count in.
    pub members: Vec<u32>,
    /// How many devices count in exactly these members.
    pub devices: u64,
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
    /// (zone, bucket) pairs dropped by the contribution bounds (§10).
    pub pairs_dropped: u64,
    /// Visits dropped by the contribution bounds (§10).
    pub visits_dropped: u64,
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
        self.pairs_dropped += other.pairs_dropped;
        self.visits_dropped += other.visits_dropped;
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
    unions: Vec<UnionMembers>,
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
        let classes = &spec.classes[..];
        ReleaseClass::validate_list(classes)?;
        let Some(period) = profiles.period.or(config.period) else {
            return Ok(None);
        };
        let buckets = Buckets::new(spec.bucket, study.calendar(), period);
        let zones: Vec<String> = geography.zones().iter().map(|z| z.id.clone()).collect();
        let bounded = match &spec.privacy {
            Privacy::KAnonymity => None,
            Privacy::DifferentialPrivacy(dp) => {
                Some(bounds_of(study, dp, &buckets, &zones, period))
            }
        };
        let members = if bounded.is_some() {
            vec![Vec::new(); zones.len()]
        } else {
            category_members(geography)
        };
        let spec = AggregateSpec::of(study, spec, period, &buckets);
        let devices = &profiles.devices;
        let visits = &profiles.visits;
        let mut counts = DeviceCounts::default();
        let mut origin_numbers: FxHashMap<Origin, u32> = FxHashMap::default();
        let mut origins = Vec::new();
        let mut sums = Sums::default();
        let mut contribution = Contribution::default();
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
            contribution.clear();
            for v in (first_visit..visit).filter(|&v| visits.qualifies(v)) {
                let (zone, start, end) = (visits.zone[v], visits.start[v], visits.end[v]);
                contribution.add_visit(zone, start, end, visits.dwell(v), &buckets);
            }
            contribution.finish(bounded.as_ref().map(|(bounds, ranks)| (bounds, ranks)));
            counts.pairs_dropped += contribution.pairs_dropped;
            counts.visits_dropped += contribution.visits_dropped;
            if contribution.pairs.is_empty() {
                continue;
            }
            // Only origins with a row are named, so that the factors' warnings concern
            // rows of the release.
            let origin_number = *origin_numbers.entry(origin).or_insert_with(|| {
                origins.push(origin_name(origin, pings, geography));
                (origins.len() - 1) as u32
            });
            sums.add(&contribution, slot as u8, origin_number, &members);
        }
        counts.subscribers = subscribers
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(leaf, &n)| (geography.regions().id(leaf as u32).to_owned(), n))
            .collect();
        let mut unions = sums.unions();
        unions.sort_unstable();
        let mut rows: Vec<(RowKey, Measures)> = sums.cells.into_iter().collect();
        rows.sort_unstable_by_key(|&(key, _)| key);
        let mut aggregate = Self {
            spec,
            origins,
            rows,
            unions,
            devices: counts,
        };
        aggregate.canonicalise();
        Ok(Some(aggregate))
    }

    /// An aggregate from its parts (rows keyed by numbers into `origins`), put in the
    /// canonical order.
    pub(crate) fn from_parts(
        spec: AggregateSpec,
        origins: Vec<String>,
        mut rows: Vec<(RowKey, Measures)>,
        mut unions: Vec<UnionMembers>,
        devices: DeviceCounts,
    ) -> Self {
        rows.sort_unstable_by_key(|&(key, _)| key);
        unions.sort_unstable();
        let mut aggregate = Self {
            spec,
            origins,
            rows,
            unions,
            devices,
        };
        aggregate.canonicalise();
        aggregate
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

    /// Checks that every row and union refers to a zone, bucket, class and origin of the
    /// aggregate, in key order: a deserialised aggregate could hold anything.
    ///
    /// # Errors
    /// [`Error::Config`] naming `aggregate`.
    pub(crate) fn check_indexes(&self) -> Result<()> {
        let spec = &self.spec;
        let (zones, buckets) = (spec.zones.len(), spec.bounds.len().saturating_sub(1));
        let in_grid = |zone: u32, bucket: u32, class: u8| {
            (zone as usize) < zones
                && (bucket as usize) < buckets
                && usize::from(class) < spec.classes.len()
        };
        let rows_fit = self.rows.iter().all(|(key, _)| {
            in_grid(key.zone, key.bucket, key.class) && (key.origin as usize) < self.origins.len()
        });
        let sorted = self.rows.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let unions_fit = self.unions.iter().all(|union| {
            let group = union.group;
            in_grid(group.zone, group.bucket, group.class)
                && union.members.iter().all(|&m| (m as usize) < zones)
        });
        if rows_fit && sorted && unions_fit {
            Ok(())
        } else {
            Err(Error::config(
                "aggregate",
                "holds rows or unions outside its own zones, buckets, classes or origins, \
                 or rows out of order",
            ))
        }
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
        let mut unions: Vec<UnionMembers> = parts.iter().flat_map(|p| p.unions.clone()).collect();
        unions.sort_unstable_by(|a, b| (a.group, &a.members).cmp(&(b.group, &b.members)));
        let mut folded_unions: Vec<UnionMembers> = Vec::with_capacity(unions.len());
        for union in unions {
            match folded_unions.last_mut() {
                Some(last) if (last.group, &last.members) == (union.group, &union.members) => {
                    last.devices += union.devices;
                }
                _ => folded_unions.push(union),
            }
        }
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
            unions: folded_unions,
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

    /// The devices of each category group by the member zones they count in, sorted by
    /// group (k-anonymity only; empty in the differential-privacy mode).
    #[must_use]
    pub fn unions(&self) -> &[UnionMembers] {
        &self.unions
    }
}

/// The rows of an aggregate under construction, and its category groups' devices by
/// the member zones they count in.
#[derive(Default)]
struct Sums {
    cells: FxHashMap<RowKey, Measures>,
    /// Devices by category group and set of member zones (a number in `member_sets`).
    unions: FxHashMap<(GroupKey, u32), u64>,
    /// Every distinct set of member zones, numbered once (most devices share a few).
    member_sets: FxHashMap<Vec<u32>, u32>,
    /// The member zones of the pair at hand, reused from pair to pair.
    scratch: Vec<u32>,
}

impl Sums {
    /// Adds one device's contribution, in class slot `class`, from origin `origin`;
    /// `members` are the member zones of each category zone.
    ///
    /// The pairs and the visit starts are both sorted by (zone, bucket), so they are
    /// walked together and each row is looked up once.
    fn add(&mut self, contribution: &Contribution, class: u8, origin: u32, members: &[Vec<u32>]) {
        let (pairs, starts) = (&contribution.pairs, &contribution.starts);
        let (mut p, mut s) = (0, 0);
        while p < pairs.len() || s < starts.len() {
            let pair = pairs.get(p).map(|&(zone, bucket, _)| (zone, bucket));
            let start = starts.get(s).map(|v| (v.zone, v.bucket));
            let Some((zone, bucket)) = pair.min(start).or(pair).or(start) else {
                break;
            };
            let row = self
                .cells
                .entry(RowKey {
                    zone,
                    bucket,
                    class,
                    origin,
                })
                .or_default();
            if pair == Some((zone, bucket)) {
                row.devices += 1;
                row.dwell_s += pairs[p].2;
                p += 1;
            }
            // Every visit starts in a pair it overlaps (one of no length overlaps the
            // bucket of its start; bounding drops the visits of dropped pairs).
            let mut bands_seen = 0_u8;
            while let Some(visit) = starts
                .get(s)
                .filter(|v| (v.zone, v.bucket) == (zone, bucket))
            {
                row.visits += 1;
                row.bands[visit.band as usize] += 1;
                bands_seen |= 1 << visit.band;
                s += 1;
            }
            for (band, devices) in row.band_devices.iter_mut().enumerate() {
                *devices += u64::from(bands_seen >> band & 1);
            }
            if pair == Some((zone, bucket)) {
                self.add_union(
                    contribution,
                    members,
                    GroupKey {
                        zone,
                        bucket,
                        class,
                    },
                );
            }
        }
    }

    /// Counts the device in its category group by the member zones it counts in.
    fn add_union(&mut self, contribution: &Contribution, members: &[Vec<u32>], group: GroupKey) {
        self.scratch.clear();
        self.scratch.extend(
            members[group.zone as usize]
                .iter()
                .copied()
                .filter(|&m| contribution.has_pair(m, group.bucket)),
        );
        if self.scratch.is_empty() {
            return;
        }
        let set = if let Some(&set) = self.member_sets.get(self.scratch.as_slice()) {
            set
        } else {
            let next = self.member_sets.len() as u32;
            self.member_sets.insert(self.scratch.clone(), next);
            next
        };
        *self.unions.entry((group, set)).or_default() += 1;
    }

    /// The unions, each with its member zones.
    fn unions(&self) -> Vec<UnionMembers> {
        let mut sets = vec![&[][..]; self.member_sets.len()];
        for (members, &set) in &self.member_sets {
            sets[set as usize] = members;
        }
        self.unions
            .iter()
            .map(|(&(group, set), &devices)| UnionMembers {
                group,
                members: sets[set as usize].to_vec(),
                devices,
            })
            .collect()
    }
}

/// The contribution bounds of a differentially private release and the keyed order of
/// its pairs (§10): the order depends on the key and the period label only.
fn bounds_of(
    study: &Study,
    dp: &crate::privacy::DpSpec,
    buckets: &Buckets,
    zones: &[String],
    period: Period,
) -> (ContributionBounds, PairRanks) {
    let config = study.config();
    let labels: Vec<String> = (0..buckets.len())
        .map(|b| format_local(study.calendar(), buckets.interval(b).0))
        .collect();
    let bounds = ContributionBounds::of_grid(dp, zones.len(), buckets.bounds());
    let label = config
        .period_label
        .clone()
        .unwrap_or_else(|| period.default_label());
    (bounds, PairRanks::new(&config.key, &label, zones, &labels))
}

/// The member zones of each category zone (none for a plain zone): §7 step 2 reads
/// which of them a category's devices count in.
fn category_members(geography: &crate::geo::Geography) -> Vec<Vec<u32>> {
    let zones = geography.zones();
    zones
        .iter()
        .map(|zone| {
            if !zone.is_category {
                return Vec::new();
            }
            (0..zones.len() as u32)
                .filter(|&m| {
                    let member = &zones[m as usize];
                    !member.is_category && member.category == zone.category
                })
                .collect()
        })
        .collect()
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
}
