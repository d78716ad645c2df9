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

/// Refuses parameters that cannot be measured.
pub(crate) fn check(spec: &RiskSpec, geography: &crate::Geography) -> Result<()> {
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
    Ok(())
}

/// A device that may be sampled: its sample key, its pseudonym, and the points drawn
/// for each number of points (`None` where its trace is shorter).
type Candidate = (u64, u64, Vec<Option<Vec<Point>>>);

/// What one shard of a run gives the audit: its devices' points (in a file of the spill
/// directory, not in memory), the points drawn for its devices that may be sampled, and
/// its home–work pairs and visit patterns.
pub(crate) struct ShardFound {
    period: Option<crate::Period>,
    devices: u64,
    points: u64,
    /// Per device, its number of points (`u32`) then its sorted points (`u64` place,
    /// `u32` time), little-endian; rewound.
    traces: Option<std::fs::File>,
    /// Devices that may be sampled.
    candidates: Vec<Candidate>,
    pairs: Vec<(RegionIndex, RegionIndex)>,
    patterns: Vec<u128>,
}

/// The audit's share of one shard of whole devices.
pub(crate) fn shard(
    pings: &crate::LocatedPings,
    study: &crate::Study,
    spec: &RiskSpec,
    spill_dir: &std::path::Path,
) -> Result<ShardFound> {
    use std::io::{Seek, Write};
    let Some(period) = pings.period else {
        return Ok(ShardFound {
            period: None,
            devices: 0,
            points: 0,
            traces: None,
            candidates: Vec::new(),
            pairs: Vec::new(),
            patterns: Vec::new(),
        });
    };
    let io = |e: std::io::Error| {
        Error::config_source("spill_dir", "cannot hold the audit's points of a shard", e)
    };
    let pointer = Pointer::new(study, spec, period);
    let mut writer = std::io::BufWriter::new(tempfile::tempfile_in(spill_dir).map_err(io)?);
    let mut candidates = Vec::with_capacity(pings.devices().len());
    let (mut trace, mut points) = (Vec::new(), 0);
    for (d, &device) in pings.devices().iter().enumerate() {
        pointer.points(pings, d, &mut trace);
        points += trace.len() as u64;
        let length = u32::try_from(trace.len())
            .map_err(|_| Error::config("spatial", "gives a device more than 4 billion points"))?;
        writer.write_all(&length.to_le_bytes()).map_err(io)?;
        for &(place, time) in &trace {
            writer.write_all(&place.to_le_bytes()).map_err(io)?;
            writer.write_all(&time.to_le_bytes()).map_err(io)?;
        }
        let drawn = spec
            .points
            .iter()
            .map(|&p| {
                (trace.len() >= p).then(|| {
                    draw(trace.len(), p, spec.seed, device)
                        .into_iter()
                        .map(|i| trace[i])
                        .collect()
                })
            })
            .collect();
        candidates.push((sample_key(spec.seed, device), device, drawn));
    }
    // Only the shard's own smallest keys can be among the run's.
    if let Some(n) = spec.samples {
        candidates.sort_unstable_by_key(|&(key, device, _)| (key, device));
        candidates.truncate(n);
    }
    let mut traces = writer.into_inner().map_err(|e| io(e.into_error()))?;
    traces.rewind().map_err(io)?;
    let profiles = crate::profile::profile(pings, study.geography(), study.config())?;
    Ok(ShardFound {
        period: Some(period),
        devices: pings.devices().len() as u64,
        points,
        traces: Some(traces),
        candidates,
        pairs: home_work_pairs(pings, &profiles, study, period),
        patterns: visit_patterns(&profiles, study, period),
    })
}

/// The audit of a run from its shards: the sampled devices' drawn points are looked for
/// in every device's points, read back file by file.
pub(crate) fn merge(parts: Vec<ShardFound>, study: &crate::Study, spec: &RiskSpec) -> Result<Risk> {
    if parts.iter().all(|part| part.period.is_none()) {
        return Ok(rows(study, spec, None));
    }
    let devices = parts.iter().map(|part| part.devices).sum();
    let points = parts.iter().map(|part| part.points).sum();
    let mut candidates: Vec<Candidate> = Vec::new();
    let (mut pairs, mut patterns, mut files) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        candidates.extend(part.candidates);
        pairs.extend(part.pairs);
        patterns.extend(part.patterns);
        files.extend(part.traces);
    }
    if let Some(n) = spec.samples {
        candidates.sort_unstable_by_key(|&(key, device, _)| (key, device));
        candidates.truncate(n);
    }
    // Every drawn set of points, and the sets by their first point: a device holds a
    // set only if it holds its first point.
    let mut sets: Vec<(usize, Vec<Point>)> = Vec::new();
    for (_, _, drawn) in &mut candidates {
        for (i, set) in drawn.iter_mut().enumerate() {
            if let Some(set) = set.take() {
                sets.push((i, set));
            }
        }
    }
    let mut by_first: FxHashMap<Point, Vec<u32>> = FxHashMap::default();
    for (id, (_, set)) in sets.iter().enumerate() {
        let first = *set.iter().min().unwrap_or(&set[0]);
        by_first.entry(first).or_default().push(id as u32);
    }
    let counts: Vec<Vec<u32>> = files
        .into_par_iter()
        .map(|file| holders_in(file, &sets, &by_first))
        .collect::<Result<_>>()?;
    let mut unicity = vec![(0_u64, 0_u64); spec.points.len()];
    for (id, (i, _)) in sets.iter().enumerate() {
        let holders: u32 = counts.iter().map(|count| count[id]).sum();
        unicity[*i].0 += 1;
        unicity[*i].1 += u64::from(holders == 1);
    }
    let found = Found {
        devices,
        sampled: candidates.len() as u64,
        points,
        unicity,
        pairs,
        patterns,
    };
    Ok(rows(study, spec, Some(&found)))
}

/// How many devices of a file of traces hold each set.
fn holders_in(
    file: std::fs::File,
    sets: &[(usize, Vec<Point>)],
    by_first: &FxHashMap<Point, Vec<u32>>,
) -> Result<Vec<u32>> {
    use std::io::Read;
    let io = |e: std::io::Error| {
        Error::config_source("spill_dir", "cannot read back the audit's points", e)
    };
    let mut reader = std::io::BufReader::new(file);
    let mut holders = vec![0_u32; sets.len()];
    let mut trace: Vec<Point> = Vec::new();
    let mut word = [0_u8; 4];
    let mut point = [0_u8; 12];
    loop {
        match reader.read_exact(&mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io(e)),
        }
        trace.clear();
        for _ in 0..u32::from_le_bytes(word) {
            reader.read_exact(&mut point).map_err(io)?;
            let (place, time) = point.split_at(8);
            trace.push((
                u64::from_le_bytes(place.try_into().unwrap_or_default()),
                u32::from_le_bytes(time.try_into().unwrap_or_default()),
            ));
        }
        for point in &trace {
            for &id in by_first.get(point).into_iter().flatten() {
                let set = &sets[id as usize].1;
                if set.iter().all(|p| trace.binary_search(p).is_ok()) {
                    holders[id as usize] += 1;
                }
            }
        }
    }
    Ok(holders)
}

/// What the measures found, before they become rows: per number of points, the devices
/// measured and singled out; the home–work pairs and the visit patterns of all devices.
struct Found {
    devices: u64,
    sampled: u64,
    points: u64,
    unicity: Vec<(u64, u64)>,
    pairs: Vec<(RegionIndex, RegionIndex)>,
    patterns: Vec<u128>,
}

/// Runs the audit on prepared pings.
pub(crate) fn risk(prepared: &Prepared, spec: &RiskSpec) -> Result<Risk> {
    let study = prepared.study();
    check(spec, study.geography())?;
    let pings = prepared.pings();
    let Some(period) = pings.period else {
        return Ok(rows(study, spec, None));
    };
    let traces = Traces::build(pings, study, spec, period)?;
    let pseudonyms = pings.devices();
    let sampled: Vec<u32> = match spec.samples {
        Some(n) if n < pseudonyms.len() => {
            let mut keyed: Vec<(u64, u64, u32)> = pseudonyms
                .iter()
                .enumerate()
                .map(|(d, &device)| (sample_key(spec.seed, device), device, d as u32))
                .collect();
            keyed.sort_unstable();
            let mut chosen: Vec<u32> = keyed[..n].iter().map(|&(_, _, d)| d).collect();
            chosen.sort_unstable();
            chosen
        }
        _ => (0..pseudonyms.len() as u32).collect(),
    };
    let unicity = spec
        .points
        .iter()
        .map(|&p| {
            let outcomes: Vec<Option<bool>> = sampled
                .par_iter()
                .map(|&d| traces.singled_out(d, pseudonyms[d as usize], p, spec.seed))
                .collect();
            let measured = outcomes.iter().flatten().count() as u64;
            let unique = outcomes.iter().flatten().filter(|&&u| u).count() as u64;
            (measured, unique)
        })
        .collect();
    let profiles = prepared.profiles()?;
    let found = Found {
        devices: pseudonyms.len() as u64,
        sampled: sampled.len() as u64,
        points: traces.points(),
        unicity,
        pairs: home_work_pairs(pings, profiles, study, period),
        patterns: visit_patterns(profiles, study, period),
    };
    Ok(rows(study, spec, Some(&found)))
}

/// The table and the report of what was found (`None`: no period, nothing measured).
fn rows(study: &crate::Study, spec: &RiskSpec, found: Option<&Found>) -> Risk {
    let k = u64::from(spec.k.unwrap_or(study.config().k));
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
    let Some(found) = found else {
        report["devices"] = json!(0);
        return Risk {
            rows: Vec::new(),
            report,
        };
    };
    let granularity = format!("{}×{}", spec.spatial.name(), spec.temporal.name());
    let mut rows = Vec::new();
    let mut too_short = BTreeMap::new();
    for (&p, &(measured, unique)) in spec.points.iter().zip(&found.unicity) {
        too_short.insert(p.to_string(), found.sampled - measured);
        let share = if measured == 0 {
            0.0
        } else {
            unique as f64 / measured as f64
        };
        let (low, high) = if found.sampled == found.devices {
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
    let (home_work, sizes) = home_work_rows(&found.pairs, study.geography().regions(), k);
    rows.extend(home_work);
    rows.push(visit_pattern_row(&found.patterns, k));
    report["devices"] = json!(found.devices);
    report["devices_sampled"] = json!(found.sampled);
    report["points_in_traces"] = json!(found.points);
    report["too_few_points"] = json!(too_short);
    report["home_work_set_sizes"] = sizes;
    Risk { rows, report }
}

/// A device's place in the sample: the devices of the `samples` smallest keys are
/// measured, in memory or shard by shard alike.
fn sample_key(seed: u64, device: u64) -> u64 {
    Rng::stream(seed, device, u64::MAX).next_u64()
}

/// The positions of `p` distinct points drawn from a trace of `len` points (at least
/// `p`) of the device with pseudonym `device`: the same in memory and shard by shard.
fn draw(len: usize, p: usize, seed: u64, device: u64) -> Vec<usize> {
    let mut rng = Rng::stream(seed, device, p as u64);
    // Floyd's sampling of p distinct positions.
    let mut chosen: Vec<usize> = Vec::with_capacity(p);
    for j in len - p..len {
        let t = rng.below(j as u64 + 1) as usize;
        chosen.push(if chosen.contains(&t) { j } else { t });
    }
    chosen
}

/// A point: its place and its time.
type Point = (u64, u32);

/// The points of the devices of some located pings.
struct Pointer<'a> {
    geography: &'a crate::Geography,
    spatial: &'a Spatial,
    clock: Clock,
}

impl<'a> Pointer<'a> {
    fn new(study: &'a crate::Study, spec: &'a RiskSpec, period: crate::Period) -> Self {
        Self {
            geography: study.geography(),
            spatial: &spec.spatial,
            clock: Clock::new(spec.temporal, study.calendar(), period),
        }
    }

    /// Device `d`'s distinct points, sorted, into `points` (cleared first).
    fn points(&self, pings: &crate::LocatedPings, d: usize, points: &mut Vec<Point>) {
        let (geography, regions) = (self.geography, self.geography.regions());
        points.clear();
        for row in pings.device_rows(d) {
            let Some(when) = self.clock.of(pings.ts()[row]) else {
                continue;
            };
            match self.spatial {
                Spatial::Cell => points.push((pings.cell()[row], when)),
                Spatial::Zone => points.extend(
                    geography
                        .zone_set(pings.zone_set()[row])
                        .iter()
                        .filter(|&&z| !geography.zones()[z as usize].is_category)
                        .map(|&z| (u64::from(z), when)),
                ),
                Spatial::Region(level) => {
                    let leaf = pings.leaf()[row];
                    if leaf != UNKNOWN_REGION {
                        let region = regions
                            .ancestors(leaf)
                            .find(|&r| regions.level(r) == level)
                            .unwrap_or(leaf);
                        points.push((u64::from(region), when));
                    }
                }
            }
        }
        points.sort_unstable();
        points.dedup();
    }
}

/// Every device's distinct points, and the devices of every point, each as one flat
/// list cut by offsets (millions of small lists would cost more in the allocator than
/// in the counting).
struct Traces {
    /// Device `d`'s point numbers, in the order of its sorted points:
    /// `points[point_offsets[d]..point_offsets[d + 1]]`.
    points: Vec<u32>,
    point_offsets: Vec<usize>,
    /// Point `t`'s devices, sorted: `holders[holder_offsets[t]..holder_offsets[t + 1]]`.
    holders: Vec<u32>,
    holder_offsets: Vec<usize>,
}

impl Traces {
    fn build(
        pings: &crate::LocatedPings,
        study: &crate::Study,
        spec: &RiskSpec,
        period: crate::Period,
    ) -> Result<Self> {
        let pointer = Pointer::new(study, spec, period);
        let mut number_of: FxHashMap<Point, u32> = FxHashMap::default();
        let mut points: Vec<u32> = Vec::with_capacity(pings.len());
        let mut point_offsets = Vec::with_capacity(pings.devices().len() + 1);
        point_offsets.push(0);
        // Devices per point, counted first, so that the holders fill one flat list.
        let mut held: Vec<usize> = Vec::new();
        let mut trace: Vec<Point> = Vec::new();
        for d in 0..pings.devices().len() {
            pointer.points(pings, d, &mut trace);
            for &point in &trace {
                let next = u32::try_from(number_of.len()).map_err(|_| {
                    Error::config("spatial", "gives more than 4 billion distinct points")
                })?;
                let number = *number_of.entry(point).or_insert(next);
                if number == next {
                    held.push(0);
                }
                held[number as usize] += 1;
                points.push(number);
            }
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

    #[cfg(test)]
    fn devices(&self) -> usize {
        self.point_offsets.len() - 1
    }

    fn points(&self) -> u64 {
        self.points.len() as u64
    }

    /// A device's points, in the order of its sorted points.
    fn trace(&self, device: u32) -> &[u32] {
        let d = device as usize;
        &self.points[self.point_offsets[d]..self.point_offsets[d + 1]]
    }

    /// A point's devices, sorted.
    fn holders_of(&self, point: u32) -> &[u32] {
        let t = point as usize;
        &self.holders[self.holder_offsets[t]..self.holder_offsets[t + 1]]
    }

    /// The `p` points drawn from device `device`'s trace (at least `p` long; pseudonym
    /// `pseudonym`) with `seed`.
    fn chosen(&self, device: u32, pseudonym: u64, p: usize, seed: u64) -> Vec<u32> {
        let trace = self.trace(device);
        draw(trace.len(), p, seed, pseudonym)
            .into_iter()
            .map(|i| trace[i])
            .collect()
    }

    /// Whether `p` points drawn from `device`'s trace single it out; `None` when the
    /// trace has fewer than `p` points.
    fn singled_out(&self, device: u32, pseudonym: u64, p: usize, seed: u64) -> Option<bool> {
        if self.trace(device).len() < p {
            return None;
        }
        let mut lists: Vec<&[u32]> = self
            .chosen(device, pseudonym, p, seed)
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

/// The (home, most frequent weekday daytime region) of every device with both.
fn home_work_pairs(
    pings: &crate::LocatedPings,
    profiles: &crate::profile::Profiles,
    study: &crate::Study,
    period: crate::Period,
) -> Vec<(RegionIndex, RegionIndex)> {
    let calendar = study.calendar();
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
    let mut pairs = Vec::new();
    for (i, &home) in devices.home.iter().enumerate() {
        let Some(home) = home else { continue };
        let Ok(d) = pings.devices().binary_search(&devices.device[i]) else {
            continue;
        };
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
    pairs
}

/// Home–work anonymity at each level of the region tree (finest first), and the
/// distribution of the sets' sizes per level.
fn home_work_rows(
    pairs: &[(RegionIndex, RegionIndex)],
    regions: &crate::geo::Regions,
    k: u64,
) -> (Vec<RiskRow>, Value) {
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
        for &(home, work) in pairs {
            *count.entry((lift(home), lift(work))).or_default() += 1;
        }
        let (mut unique, mut below_k) = (0, 0);
        let mut histogram: BTreeMap<&'static str, u64> = BTreeMap::new();
        for &(home, work) in pairs {
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

/// Every device's set of (zone, local day) of its qualifying visits to zones, as a
/// 128-bit digest (two sets that differ have different digests but for a chance of
/// 2⁻¹²⁸), one per device with such a visit.
fn visit_patterns(
    profiles: &crate::profile::Profiles,
    study: &crate::Study,
    period: crate::Period,
) -> Vec<u128> {
    let zones = study.geography().zones();
    let days = Buckets::new(BucketKind::Day, study.calendar(), period);
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
    patterns
        .into_values()
        .map(|mut pattern| {
            pattern.sort_unstable();
            pattern.dedup();
            let digest = |seed: u64| {
                let mut rng = Rng::new(seed ^ pattern.len() as u64);
                pattern.iter().fold(rng.next_u64(), |h, &(zone, day)| {
                    Rng::stream(h, u64::from(zone), u64::from(day)).next_u64()
                })
            };
            u128::from(digest(1)) << 64 | u128::from(digest(2))
        })
        .collect()
}

/// Devices unique by their set of (zone, local day) visits.
fn visit_pattern_row(patterns: &[u128], k: u64) -> RiskRow {
    let mut count: FxHashMap<u128, u64> = FxHashMap::default();
    for &pattern in patterns {
        *count.entry(pattern).or_default() += 1;
    }
    let (mut unique, mut below_k) = (0, 0);
    for pattern in patterns {
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
