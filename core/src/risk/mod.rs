//! How unique pseudonymous traces are: the re-identification risk of the per-device
//! microdata (`prepare`, `profile`, `visits`), measured on the operator's own data before
//! anything leaves a secure room (docs/METHOD.md, "Re-identification risk").
//!
//! Three measures, each a share of devices singled out:
//! - **unicity** (de Montjoye et al. 2013): p (place, time) points drawn at random from a
//!   device's own trace, at a chosen granularity; the device is singled out when it is
//!   the only one whose trace holds all p. Counted exactly, by intersecting the devices
//!   of each point (an inverted index), for every sampled device, on every core;
//! - **home–work anonymity** (Golle and Partridge 2009): devices sharing the pair (home
//!   region, most frequent weekday-daytime region), at each level of the region tree;
//! - **visit patterns**: devices sharing their set of (zone, local day) visits.
//!
//! Nothing here names a device: the results are counts and shares.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::aggregate::{BucketKind, Buckets};
use crate::calendar::{DayPart, DayParts};
use crate::error::{Error, Result};
use crate::geo::{RegionIndex, UNKNOWN_REGION};
use crate::study::Prepared;
use crate::synth::Rng;

/// The place of a point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spatial {
    /// The H3 cell at the analysis resolution.
    Cell,
    /// The zone (a ping in no zone is no point; categories are not places).
    Zone,
    /// The region at a level of the tree (a leaf with no ancestor there stays itself).
    Region(String),
}

impl FromStr for Spatial {
    type Err = Error;

    /// `cell`, `zone` or `region:<level>`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "cell" => Ok(Self::Cell),
            "zone" => Ok(Self::Zone),
            _ => match name.strip_prefix("region:") {
                Some(level) if !level.is_empty() => Ok(Self::Region(level.to_owned())),
                _ => Err(Error::config(
                    "spatial",
                    format!("must be \"cell\", \"zone\" or \"region:<level>\", got {name:?}"),
                )),
            },
        }
    }
}

impl Spatial {
    fn name(&self) -> String {
        match self {
            Self::Cell => "cell".into(),
            Self::Zone => "zone".into(),
            Self::Region(level) => format!("region:{level}"),
        }
    }
}

/// The time of a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporal {
    /// The clock hour.
    Hour,
    /// The local date.
    Day,
    /// The part of day: daytime (06:00–22:00 local) or the night that follows.
    Part,
}

impl FromStr for Temporal {
    type Err = Error;

    /// `hour`, `day` or `part`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            "part" => Ok(Self::Part),
            _ => Err(Error::config(
                "temporal",
                format!("must be \"hour\", \"day\" or \"part\", got {name:?}"),
            )),
        }
    }
}

impl Temporal {
    fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Part => "part",
        }
    }
}

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RiskSpec {
    /// The numbers of points of unicity (default 1 to 5).
    pub points: Vec<usize>,
    /// The place of a point (default the cell).
    pub spatial: Spatial,
    /// The time of a point (default the hour).
    pub temporal: Temporal,
    /// Devices sampled for unicity (`None`: every device).
    pub samples: Option<usize>,
    /// The seed of the sampling: the same seed gives the same numbers.
    pub seed: u64,
    /// The anonymity-set size below which a device counts as at risk (default: the
    /// study's k).
    pub k: Option<u32>,
}

impl Default for RiskSpec {
    fn default() -> Self {
        Self {
            points: vec![1, 2, 3, 4, 5],
            spatial: Spatial::Cell,
            temporal: Temporal::Hour,
            samples: None,
            seed: 0,
            k: None,
        }
    }
}

/// One measure's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskRow {
    /// `unicity`, `home_work` or `visit_pattern`.
    pub measure: &'static str,
    /// The granularity: `cell×hour` for unicity, the level for home–work, `zone×day`.
    pub granularity: String,
    /// The number of points (unicity only).
    pub points: Option<u64>,
    /// Devices measured.
    pub devices: u64,
    /// Devices singled out (an anonymity set of one).
    pub unique: u64,
    /// `unique / devices`.
    pub share_unique: f64,
    /// The 95 % Wilson interval of the share (unicity on sampled devices); the share
    /// itself when every device was measured.
    pub share_low: f64,
    /// The interval's upper end.
    pub share_high: f64,
    /// Devices in anonymity sets smaller than k (home–work and visit patterns).
    pub below_k: Option<u64>,
}

/// The audit's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Risk {
    /// One row per unicity point count, home–work level, and the visit patterns.
    pub rows: Vec<RiskRow>,
    /// The parameters, devices not measurable by reason, and the anonymity-set sizes.
    pub report: Value,
}

impl Risk {
    /// The table's columns.
    #[must_use]
    pub fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("measure", DataType::Utf8, false),
            Field::new("granularity", DataType::Utf8, false),
            Field::new("points", DataType::UInt64, true),
            Field::new("devices", DataType::UInt64, false),
            Field::new("unique", DataType::UInt64, false),
            Field::new("share_unique", DataType::Float64, false),
            Field::new("share_low", DataType::Float64, false),
            Field::new("share_high", DataType::Float64, false),
            Field::new("below_k", DataType::UInt64, true),
        ]))
    }

    /// The table as one Arrow batch.
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let rows = &self.rows;
        let float = |f: fn(&RiskRow) -> f64| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<Float64Array>())
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.measure))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.granularity.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(rows.iter().map(|r| r.points).collect::<UInt64Array>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.devices))
                    .collect::<UInt64Array>(),
            ),
            Arc::new(rows.iter().map(|r| Some(r.unique)).collect::<UInt64Array>()),
            float(|r| r.share_unique),
            float(|r| r.share_low),
            float(|r| r.share_high),
            Arc::new(rows.iter().map(|r| r.below_k).collect::<UInt64Array>()),
        ];
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }
}

/// The 95 % Wilson score interval of `x` successes in `n` trials.
fn wilson(x: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (x, n, z) = (x as f64, n as f64, 1.96_f64);
    let centre = (x + z * z / 2.0) / (n + z * z);
    let half = z * (x * (n - x) / n + z * z / 4.0).sqrt() / (n + z * z);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A share measured on every device: its interval is itself.
fn exact_row(
    measure: &'static str,
    granularity: String,
    devices: u64,
    unique: u64,
    below_k: u64,
) -> RiskRow {
    let share = if devices == 0 {
        0.0
    } else {
        unique as f64 / devices as f64
    };
    RiskRow {
        measure,
        granularity,
        points: None,
        devices,
        unique,
        share_unique: share,
        share_low: share,
        share_high: share,
        below_k: Some(below_k),
    }
}

/// Runs the audit on prepared pings.
pub(crate) fn risk(prepared: &Prepared, spec: &RiskSpec) -> Result<Risk> {
    let study = prepared.study();
    let (geography, config) = (study.geography(), study.config());
    if spec.points.is_empty() || spec.points.iter().any(|&p| p == 0 || p > 1_000) {
        return Err(Error::config(
            "points",
            "must be numbers of points from 1 to 1000",
        ));
    }
    if spec.samples == Some(0) {
        return Err(Error::config(
            "samples",
            "must be at least 1 device (or none for all)",
        ));
    }
    if let Spatial::Region(level) = &spec.spatial {
        let regions = geography.regions();
        if !(0..regions.len() as RegionIndex).any(|r| regions.level(r) == level) {
            return Err(Error::config(
                "spatial",
                format!("names level {level:?}, which is not a level of the region tree"),
            ));
        }
    }
    let k = u64::from(spec.k.unwrap_or(config.k));
    let pings = prepared.pings();
    let mut rows = Vec::new();
    let mut report = json!({
        "parameters": {
            "points": spec.points,
            "spatial": spec.spatial.name(),
            "temporal": spec.temporal.name(),
            "samples": spec.samples,
            "seed": spec.seed,
            "k": k,
        },
    });
    let Some(period) = pings.period else {
        report["devices"] = json!(0);
        return Ok(Risk { rows, report });
    };
    let calendar = study.calendar();
    let traces = Traces::build(prepared, spec, period)?;
    let granularity = format!("{}×{}", spec.spatial.name(), spec.temporal.name());
    let sampled = sample(traces.devices(), spec.samples, spec.seed);
    let mut too_short = BTreeMap::new();
    for &p in &spec.points {
        let outcomes: Vec<Option<bool>> = sampled
            .par_iter()
            .map(|&device| traces.singled_out(device, p, spec.seed))
            .collect();
        let measured = outcomes.iter().flatten().count() as u64;
        let unique = outcomes.iter().flatten().filter(|&&u| u).count() as u64;
        too_short.insert(p.to_string(), sampled.len() as u64 - measured);
        let share = if measured == 0 {
            0.0
        } else {
            unique as f64 / measured as f64
        };
        let (low, high) = if sampled.len() == traces.devices() {
            (share, share)
        } else {
            wilson(unique, measured)
        };
        rows.push(RiskRow {
            measure: "unicity",
            granularity: granularity.clone(),
            points: Some(p as u64),
            devices: measured,
            unique,
            share_unique: share,
            share_low: low,
            share_high: high,
            below_k: None,
        });
    }
    let profiles = prepared.profiles()?;
    let (home_work, sizes) = home_work_rows(prepared, profiles, period, k);
    rows.extend(home_work);
    rows.push(visit_pattern_row(
        profiles,
        study.geography().zones(),
        calendar,
        period,
        k,
    ));
    report["devices"] = json!(traces.devices());
    report["devices_sampled"] = json!(sampled.len());
    report["points_in_traces"] = json!(traces.points());
    report["too_few_points"] = json!(too_short);
    report["home_work_set_sizes"] = sizes;
    Ok(Risk { rows, report })
}

/// Every device's distinct points, and the devices of every point, each as one flat
/// list cut by offsets (millions of small lists would cost more in the allocator than
/// in the counting).
struct Traces {
    /// Device `d`'s point numbers, sorted: `points[point_offsets[d]..point_offsets[d + 1]]`.
    points: Vec<u32>,
    point_offsets: Vec<usize>,
    /// Point `t`'s devices, sorted: `holders[holder_offsets[t]..holder_offsets[t + 1]]`.
    holders: Vec<u32>,
    holder_offsets: Vec<usize>,
}

impl Traces {
    fn build(prepared: &Prepared, spec: &RiskSpec, period: crate::Period) -> Result<Self> {
        let study = prepared.study();
        let (geography, calendar) = (study.geography(), study.calendar());
        let pings = prepared.pings();
        let regions = geography.regions();
        let time = Clock::new(spec.temporal, calendar, period);
        let at_level = |leaf: RegionIndex, level: &str| -> Option<RegionIndex> {
            (leaf != UNKNOWN_REGION).then(|| {
                regions
                    .ancestors(leaf)
                    .find(|&r| regions.level(r) == level)
                    .unwrap_or(leaf)
            })
        };
        let mut number_of: FxHashMap<(u64, u32), u32> = FxHashMap::default();
        let mut points: Vec<u32> = Vec::with_capacity(pings.len());
        let mut point_offsets = Vec::with_capacity(pings.devices().len() + 1);
        point_offsets.push(0);
        // Devices per point, counted first, so that the holders fill one flat list.
        let mut held: Vec<usize> = Vec::new();
        let mut places: Vec<u64> = Vec::new();
        for d in 0..pings.devices().len() {
            let start = points.len();
            for row in pings.device_rows(d) {
                let Some(when) = time.of(pings.ts()[row]) else {
                    continue;
                };
                places.clear();
                match &spec.spatial {
                    Spatial::Cell => places.push(pings.cell()[row]),
                    Spatial::Zone => places.extend(
                        geography
                            .zone_set(pings.zone_set()[row])
                            .iter()
                            .filter(|&&z| !geography.zones()[z as usize].is_category)
                            .map(|&z| u64::from(z)),
                    ),
                    Spatial::Region(level) => {
                        places.extend(at_level(pings.leaf()[row], level).map(u64::from));
                    }
                }
                for &place in &places {
                    let next = u32::try_from(number_of.len()).map_err(|_| {
                        Error::config("spatial", "gives more than 4 billion distinct points")
                    })?;
                    let number = *number_of.entry((place, when)).or_insert(next);
                    if number == next {
                        held.push(0);
                    }
                    points.push(number);
                }
            }
            let trace = &mut points[start..];
            trace.sort_unstable();
            let mut kept = start;
            for i in start..points.len() {
                if i == start || points[i] != points[kept - 1] {
                    points[kept] = points[i];
                    held[points[kept] as usize] += 1;
                    kept += 1;
                }
            }
            points.truncate(kept);
            point_offsets.push(points.len());
        }
        let mut holder_offsets = Vec::with_capacity(held.len() + 1);
        holder_offsets.push(0);
        for count in &held {
            holder_offsets.push(holder_offsets.last().copied().unwrap_or(0) + count);
        }
        let mut next = holder_offsets.clone();
        let mut holders = vec![0; points.len()];
        for d in 0..pings.devices().len() {
            for &point in &points[point_offsets[d]..point_offsets[d + 1]] {
                holders[next[point as usize]] = d as u32;
                next[point as usize] += 1;
            }
        }
        Ok(Self {
            points,
            point_offsets,
            holders,
            holder_offsets,
        })
    }

    fn devices(&self) -> usize {
        self.point_offsets.len() - 1
    }

    fn points(&self) -> u64 {
        self.points.len() as u64
    }

    /// A device's points, sorted.
    fn trace(&self, device: u32) -> &[u32] {
        let d = device as usize;
        &self.points[self.point_offsets[d]..self.point_offsets[d + 1]]
    }

    /// A point's devices, sorted.
    fn holders_of(&self, point: u32) -> &[u32] {
        let t = point as usize;
        &self.holders[self.holder_offsets[t]..self.holder_offsets[t + 1]]
    }

    /// The `p` points drawn from `device`'s trace (at least `p` long) with `seed`.
    fn chosen(&self, device: u32, p: usize, seed: u64) -> Vec<u32> {
        let trace = self.trace(device);
        let mut rng = Rng::stream(seed, u64::from(device), p as u64);
        // Floyd's sampling of p distinct positions.
        let mut chosen: Vec<usize> = Vec::with_capacity(p);
        for j in trace.len() - p..trace.len() {
            let t = rng.below(j as u64 + 1) as usize;
            chosen.push(if chosen.contains(&t) { j } else { t });
        }
        chosen.into_iter().map(|i| trace[i]).collect()
    }

    /// Whether `p` points drawn from `device`'s trace single it out; `None` when the
    /// trace has fewer than `p` points.
    fn singled_out(&self, device: u32, p: usize, seed: u64) -> Option<bool> {
        if self.trace(device).len() < p {
            return None;
        }
        let mut lists: Vec<&[u32]> = self
            .chosen(device, p, seed)
            .into_iter()
            .map(|point| self.holders_of(point))
            .collect();
        lists.sort_by_key(|list| list.len());
        let mut common: Vec<u32> = lists[0].to_vec();
        for list in &lists[1..] {
            if common.len() == 1 {
                break;
            }
            common.retain(|d| list.binary_search(d).is_ok());
        }
        Some(common.len() == 1)
    }
}

/// The time of a point, from an instant.
struct Clock {
    temporal: Temporal,
    buckets: Option<Buckets>,
    parts: Option<DayParts>,
}

impl Clock {
    fn new(
        temporal: Temporal,
        calendar: &crate::calendar::Calendar,
        period: crate::Period,
    ) -> Self {
        let (buckets, parts) = match temporal {
            Temporal::Hour => (Some(Buckets::new(BucketKind::Hour, calendar, period)), None),
            Temporal::Day => (Some(Buckets::new(BucketKind::Day, calendar, period)), None),
            Temporal::Part => (
                None,
                Some(DayParts::for_period(calendar, period.start, period.end)),
            ),
        };
        Self {
            temporal,
            buckets,
            parts,
        }
    }

    fn of(&self, instant: i64) -> Option<u32> {
        match (self.temporal, &self.buckets, &self.parts) {
            (Temporal::Part, _, Some(parts)) => Some(match parts.part_span(instant).0 {
                // Index −1 is the night before the first date.
                DayPart::Day(i) => 2 * (i + 1) as u32,
                DayPart::Night(i) => 2 * (i + 1) as u32 + 1,
            }),
            (_, Some(buckets), _) => buckets.bucket_of(instant).map(|b| b as u32),
            _ => None,
        }
    }
}

/// The devices to measure: all of them, or `samples` drawn without replacement.
fn sample(devices: usize, samples: Option<usize>, seed: u64) -> Vec<u32> {
    let mut all: Vec<u32> = (0..devices as u32).collect();
    let Some(samples) = samples.filter(|&s| s < devices) else {
        return all;
    };
    let mut rng = Rng::new(seed);
    for i in 0..samples {
        let j = i + rng.below((devices - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(samples);
    all.sort_unstable();
    all
}

/// Home–work anonymity at each level of the region tree (finest first), and the
/// distribution of the sets' sizes per level.
fn home_work_rows(
    prepared: &Prepared,
    profiles: &crate::profile::Profiles,
    period: crate::Period,
    k: u64,
) -> (Vec<RiskRow>, Value) {
    let study = prepared.study();
    let (regions, calendar) = (study.geography().regions(), study.calendar());
    let pings = prepared.pings();
    let devices = &profiles.devices;
    // Whether each local clock hour of the period is weekday daytime (Monday to Friday,
    // 09:00 to 17:00): looked up once per hour, not once per ping.
    let hours = Buckets::new(BucketKind::Hour, calendar, period);
    let daytime: Vec<bool> = hours.bounds()[..hours.len()]
        .iter()
        .map(|&start| {
            let local = start + i64::from(calendar.offset_at(start));
            let (day, second) = (local.div_euclid(86_400), local.rem_euclid(86_400));
            // 1970-01-01 was a Thursday: Monday is 0.
            let weekday = (day + 3).rem_euclid(7);
            weekday < 5 && (9 * 3_600..17 * 3_600).contains(&second)
        })
        .collect();
    // The most frequent leaf of each device's weekday daytime pings.
    let mut pairs: Vec<(RegionIndex, RegionIndex)> = Vec::new();
    for (i, &home) in devices.home.iter().enumerate() {
        let Some(home) = home else { continue };
        let d = pings.devices().binary_search(&devices.device[i]);
        let Ok(d) = d else { continue };
        let mut counts: BTreeMap<RegionIndex, u32> = BTreeMap::new();
        for row in pings.device_rows(d) {
            let leaf = pings.leaf()[row];
            let at_work = hours
                .bucket_of(pings.ts()[row])
                .is_some_and(|hour| daytime[hour]);
            if at_work && leaf != UNKNOWN_REGION {
                *counts.entry(leaf).or_default() += 1;
            }
        }
        // Ties: the region first in the tree's order.
        if let Some((&work, _)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) {
            pairs.push((home, work));
        }
    }
    let mut levels: Vec<(usize, &str)> = (0..regions.len() as RegionIndex)
        .map(|r| (regions.ancestors(r).count(), regions.level(r)))
        .collect();
    levels.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut seen = Vec::new();
    levels.retain(|&(_, level)| {
        let new = !seen.contains(&level);
        seen.push(level);
        new
    });
    let mut rows = Vec::new();
    let mut sizes = serde_json::Map::new();
    for (_, level) in levels {
        let lift = |r: RegionIndex| {
            regions
                .ancestors(r)
                .find(|&a| regions.level(a) == level)
                .unwrap_or(r)
        };
        let mut count: FxHashMap<(RegionIndex, RegionIndex), u64> = FxHashMap::default();
        for &(home, work) in &pairs {
            *count.entry((lift(home), lift(work))).or_default() += 1;
        }
        let (mut unique, mut below_k) = (0, 0);
        let mut histogram: BTreeMap<&'static str, u64> = BTreeMap::new();
        for &(home, work) in &pairs {
            let size = count[&(lift(home), lift(work))];
            unique += u64::from(size == 1);
            below_k += u64::from(size < k);
            let bin = match size {
                1 => "1",
                2..=4 => "2-4",
                5..=9 => "5-9",
                10..=29 => "10-29",
                _ => "30+",
            };
            *histogram.entry(bin).or_default() += 1;
        }
        sizes.insert(level.to_owned(), json!(histogram));
        rows.push(exact_row(
            "home_work",
            level.to_owned(),
            pairs.len() as u64,
            unique,
            below_k,
        ));
    }
    (rows, Value::Object(sizes))
}

/// Devices unique by their set of (zone, local day) visits.
fn visit_pattern_row(
    profiles: &crate::profile::Profiles,
    zones: &[crate::geo::Zone],
    calendar: &crate::calendar::Calendar,
    period: crate::Period,
    k: u64,
) -> RiskRow {
    let days = Buckets::new(BucketKind::Day, calendar, period);
    let visits = &profiles.visits;
    let mut patterns: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    // Qualifying visits to zones: a category's visits repeat its zones'.
    for j in (0..visits.len())
        .filter(|&j| visits.qualifies(j) && !zones[visits.zone[j] as usize].is_category)
    {
        let pattern = patterns.entry(visits.device[j]).or_default();
        for day in days.overlapped(visits.start[j], visits.end[j].max(visits.start[j] + 1)) {
            pattern.push((visits.zone[j], day as u32));
        }
    }
    let mut count: FxHashMap<Vec<(u32, u32)>, u64> = FxHashMap::default();
    for pattern in patterns.values_mut() {
        pattern.sort_unstable();
        pattern.dedup();
        *count.entry(pattern.clone()).or_default() += 1;
    }
    let (mut unique, mut below_k) = (0, 0);
    for pattern in patterns.values() {
        let size = count[pattern];
        unique += u64::from(size == 1);
        below_k += u64::from(size < k);
    }
    exact_row(
        "visit_pattern",
        "zone×day".to_owned(),
        patterns.len() as u64,
        unique,
        below_k,
    )
}

#[cfg(test)]
mod tests;
