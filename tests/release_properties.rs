//! Properties of releases on random devices, pings, zones and options (method §6–9): no
//! released row is below k and suppressed groups show nothing; released origin rows
//! partition their total; the release does not depend on row order or on how devices
//! are split into shards; the threshold looks at observed devices only; and the partial
//! aggregate agrees with a direct reading of §6.

use std::collections::{BTreeMap, BTreeSet};

use crowdtally::profile::Profiles;
use crowdtally::{
    Aggregate, BucketKind, Config, DeviceClass, Estimate, Geography, Measures, Prepared, Release,
    ReleaseClass, ReleaseSpec, RunOptions, Study,
};
use crowdtally_harness::{
    MARKT_CELL, OUTSIDE_CELL, Ping, QUIET_CELL, STATION_CELL, STREET_CELL, batch, brussels,
    brussels_period, config, four_level_tree, free_neighbours_of_kortrijk, prepare,
    quiet_menen_cell,
};
use h3o::{CellIndex, Resolution};
use jiff::ToSpan;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use proptest::collection::vec;
use proptest::prelude::*;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Days in the period.
const DAYS: i64 = 3;
const COUNTRIES: [Option<&str>; 4] = [None, Some("BE"), Some("FR"), Some("NL")];
const CATEGORIES: [Option<&str>; 3] = [None, Some("culture"), Some("retail")];
const LEVELS: [Option<&str>; 5] = [
    None,
    Some("municipality"),
    Some("arrondissement"),
    Some("province"),
    Some("country"),
];
const CLASS_LISTS: [&[&str]; 6] = [
    &["visitor"],
    &["overnight_visitor", "day_visitor"],
    &["day_visitor"],
    &["resident", "regular"],
    &["regular", "visitor", "resident"],
    &["day_visitor", "resident", "overnight_visitor", "regular"],
];
const ROAMING: [Option<f64>; 4] = [None, Some(1.0), Some(1.5), Some(3.0)];

/// Resolution-9 cells to ping from: the Markt and a street (zone cells of the fixture),
/// a quiet cell of `kortrijk`, the station and a quiet cell of `menen`, cells of `gent`,
/// `aalst`, `brugge` and `brussel`, and one cell in no leaf. Zones are drawn from the
/// first six.
fn cell_pool() -> [u64; 10] {
    let ring = free_neighbours_of_kortrijk();
    let inner = |raw: u64| -> u64 {
        CellIndex::try_from(raw)
            .unwrap()
            .center_child(Resolution::Nine)
            .unwrap()
            .into()
    };
    [
        MARKT_CELL,
        STREET_CELL,
        QUIET_CELL,
        STATION_CELL,
        quiet_menen_cell(),
        inner(ring[0]),
        inner(ring[1]),
        inner(ring[2]),
        inner(ring[3]),
        OUTSIDE_CELL,
    ]
}

/// Where homes can be (indexes into [`cell_pool`]): kortrijk, menen, gent, aalst,
/// brugge, brussel, and no leaf.
const HOMES: [usize; 7] = [2, 4, 5, 6, 7, 8, 9];

/// The random parts of one device: its SIM country, its home cell, on which of the
/// period's nights it pings there (02:00), and its trips: a start (half-hours from the
/// period's start) and pings after gaps of some minutes (some over `max_gap`) in cells
/// of the pool.
#[derive(Clone, Debug)]
struct DeviceSpec {
    country: usize,
    home: usize,
    nights: u8,
    trips: Vec<(i64, Vec<(i64, usize)>)>,
}

fn device_spec() -> impl Strategy<Value = DeviceSpec> {
    let step = (
        prop_oneof![3 => 10..90_i64, 1 => 90..240_i64],
        prop_oneof![3 => 0..4_usize, 1 => 0..10_usize],
    );
    (
        prop_oneof![6 => Just(0_usize), 1 => Just(1), 2 => Just(2), 1 => Just(3)],
        // Mostly the leaves outside the study area, two under each arrondissement pool,
        // so that leaf rows and pools reach k.
        prop_oneof![2 => Just(2_usize), 2 => Just(3), 2 => Just(1), 1 => Just(4), 2 => 0..HOMES.len()],
        prop_oneof![3 => 1..8_u8, 1 => Just(0)],
        vec((0..DAYS * 48, vec(step, 1..6)), 0..5),
    )
        .prop_map(|(country, home, nights, trips)| DeviceSpec {
            country,
            home,
            nights,
            trips,
        })
}

/// One random run: geography, pings and options.
#[derive(Clone, Debug)]
struct Scenario {
    /// Per zone: a non-empty subset of the first six pool cells and a category.
    zones: Vec<(u8, usize)>,
    autumn: bool,
    devices: Vec<DeviceSpec>,
    k: u32,
    bucket: usize,
    level: usize,
    classes: usize,
    roll_up: bool,
    roaming: usize,
    given_subscribers: bool,
    min_dwell: i64,
    min_nights: u32,
    usual_env_min_days: Option<u32>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        (
            vec((1..64_u8, 0..CATEGORIES.len()), 3),
            any::<bool>(),
            vec(device_spec(), 0..28),
        ),
        (
            2..6_u32,
            0..BucketKind::ALL.len(),
            0..LEVELS.len(),
            0..CLASS_LISTS.len(),
            prop_oneof![4 => Just(true), 1 => Just(false)],
            0..ROAMING.len(),
            prop_oneof![4 => Just(false), 1 => Just(true)],
            prop_oneof![Just(0_i64), Just(1_800_i64)],
            1..3_u32,
            prop::option::of(Just(2_u32)),
        ),
    )
        .prop_map(
            |(
                (mut zones, autumn, devices),
                (
                    k,
                    bucket,
                    level,
                    classes,
                    roll_up,
                    roaming,
                    given_subscribers,
                    min_dwell,
                    min_nights,
                    usual_env_min_days,
                ),
            )| {
                // At least one category, so that a category zone is always analysed.
                zones[0].1 = 1;
                Scenario {
                    zones,
                    autumn,
                    devices,
                    k,
                    bucket,
                    level,
                    classes,
                    roll_up,
                    roaming,
                    given_subscribers,
                    min_dwell,
                    min_nights,
                    usual_env_min_days,
                }
            },
        )
}

impl Scenario {
    /// `BE` → provinces `ovl`, `wvl` → arrondissements → municipalities, with `brussel`
    /// directly under `BE`; study area `kortrijk`; zones `z0`..`z2` over the pool.
    fn geography(&self) -> Geography {
        let pool = cell_pool();
        let mut builder = four_level_tree();
        for (z, &(mask, category)) in self.zones.iter().enumerate() {
            let cells: Vec<u64> = (0..6)
                .filter(|bit| mask >> bit & 1 == 1)
                .map(|bit| pool[bit])
                .collect();
            builder = builder.zone(&format!("z{z}"), CATEGORIES[category], &cells);
        }
        builder.build().expect("a valid random geography")
    }

    fn start(&self) -> &'static str {
        if self.autumn {
            "2026-10-24"
        } else {
            "2026-07-01"
        }
    }

    fn base(&self) -> i64 {
        brussels(&format!("{} 00:00:00", self.start()))
    }

    /// The period is given, so that shards share the grid.
    fn config(&self) -> Config {
        let mut config = config();
        let base = self.base();
        config.period = Some(brussels_period(base, base + DAYS * DAY + 12 * HOUR));
        config.k = self.k;
        config.min_dwell = self.min_dwell;
        config.min_nights = self.min_nights;
        config.usual_env_min_days = self.usual_env_min_days;
        config
    }

    fn classes(&self) -> Vec<ReleaseClass> {
        CLASS_LISTS[self.classes]
            .iter()
            .map(|name| name.parse().unwrap())
            .collect()
    }

    fn options(&self) -> ReleaseSpec {
        let mut options = ReleaseSpec::default();
        options.bucket = BucketKind::ALL[self.bucket];
        options.level = LEVELS[self.level].map(str::to_owned);
        options.classes = self.classes();
        options.roll_up = self.roll_up;
        if let Some(factor) = ROAMING[self.roaming] {
            options.roaming_factors = BTreeMap::from([("FR".to_owned(), factor)]);
        }
        if self.given_subscribers {
            // Few subscribers: large factors, far above k.
            options.subscribers = Some(BTreeMap::from([
                ("gent".to_owned(), 1),
                ("kortrijk".to_owned(), 2),
            ]));
        }
        options
    }

    /// The pings of device `d`.
    fn device_rows(&self, d: usize) -> Vec<Ping> {
        let spec = &self.devices[d];
        let pool = cell_pool();
        let base = self.base();
        let who = format!("sub{d}");
        let at = |ts: i64, cell: u64| {
            let mut ping = Ping::in_cell(&who, ts, cell);
            ping.country = COUNTRIES[spec.country].map(str::to_owned);
            ping
        };
        let mut rows = Vec::new();
        for night in 0..DAYS {
            if spec.nights >> night & 1 == 1 {
                rows.push(at(base + night * DAY + 2 * HOUR, pool[HOMES[spec.home]]));
            }
        }
        for (start, steps) in &spec.trips {
            let mut ts = base + start * 1_800;
            for &(gap_minutes, cell) in steps {
                rows.push(at(ts, pool[cell]));
                ts += gap_minutes * 60;
            }
        }
        rows
    }

    fn rows(&self) -> Vec<Ping> {
        (0..self.devices.len())
            .flat_map(|d| self.device_rows(d))
            .collect()
    }
}

/// Everything one run computes.
struct Run {
    prepared: Prepared,
    profiles: Profiles,
    aggregate: Aggregate,
    release: Release,
}

/// Prepares, profiles, aggregates and releases the rows, and checks that the release
/// is the one `analyze` gives.
fn run(scenario: &Scenario, rows: &[Ping], geography: &Geography) -> Run {
    let config = scenario.config();
    let options = scenario.options();
    let prepared = prepare(vec![batch(rows)], geography, &config).expect("prepare");
    let profiles = prepared.profiles().expect("profile").clone();
    let aggregate = prepared
        .aggregate(&options)
        .expect("aggregate")
        .expect("a given period makes a grid");
    let study = prepared.study();
    let release = study
        .release_aggregate(Some(&aggregate), prepared.report(), &options)
        .expect("release");
    let analyzed = study
        .release([Ok(batch(rows))], &options, &RunOptions::default())
        .expect("analyze");
    assert_eq!(analyzed.rows, release.rows);
    Run {
        prepared,
        profiles,
        aggregate,
        release,
    }
}

/// An estimate as `[est_devices, est_visits, est_low, est_high]`.
fn parts(estimate: Estimate) -> [f64; 4] {
    [
        estimate.devices,
        estimate.visits,
        estimate.low,
        estimate.high,
    ]
}

/// The groups of a release: (first row, one past the last row).
fn groups(release: &Release) -> Vec<(usize, usize)> {
    let rows = &release.rows;
    let starts: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].origin == "*").collect();
    starts
        .iter()
        .enumerate()
        .map(|(g, &start)| (start, starts.get(g + 1).copied().unwrap_or(rows.len())))
        .collect()
}

/// The number of groups of the grid: zones × buckets × classes.
fn grid(aggregate: &Aggregate) -> usize {
    let spec = aggregate.spec();
    spec.zones.len() * (spec.bounds.len() - 1) * spec.classes.len()
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance * want.abs().max(1.0)
}

// --- A direct reading of §6 -------------------------------------------------------------

/// The bucket bounds by the method's words: local calendar intervals in Brussels
/// covering the period, whole even where they stick out of it.
fn reference_bounds(kind: BucketKind, start: Date, end: Date) -> Vec<i64> {
    let tz = TimeZone::get("Europe/Brussels").unwrap();
    let at = |date: Date| {
        tz.to_ambiguous_timestamp(date.to_datetime(Time::midnight()))
            .compatible()
            .unwrap()
            .as_second()
    };
    let (first, step) = match kind {
        // Brussels offsets are whole hours, so its whole local hours are whole UTC hours.
        BucketKind::Hour => {
            return (at(start)..=at(end)).step_by(3_600).collect();
        }
        BucketKind::Period => return vec![at(start), at(end)],
        BucketKind::Day => (start, 1.day()),
        BucketKind::Week => {
            let back = i64::from(start.weekday().to_monday_zero_offset());
            (start - back.days(), 7.days())
        }
        BucketKind::Month => (start.first_of_month(), 1.month()),
        BucketKind::Quarter => {
            let month = (start.month() - 1) / 3 * 3 + 1;
            (Date::new(start.year(), month, 1).unwrap(), 3.months())
        }
    };
    let mut date = first;
    let mut bounds = vec![at(date)];
    while date < end {
        date = date.checked_add(step).unwrap();
        bounds.push(at(date));
    }
    bounds
}

fn member(class: ReleaseClass, device: DeviceClass) -> bool {
    match class {
        ReleaseClass::Visitor => matches!(
            device,
            DeviceClass::OvernightVisitor | DeviceClass::DayVisitor
        ),
        ReleaseClass::Device(own) => own == device,
    }
}

fn band(dwell: i64) -> usize {
    match dwell {
        d if d < HOUR => 0,
        d if d < 2 * HOUR => 1,
        d if d < 4 * HOUR => 2,
        d if d < 8 * HOUR => 3,
        _ => 4,
    }
}

/// (zone, bucket, class slot, leaf origin name).
type RowName = (u32, u32, u8, String);

/// §6 read directly: for every device of a requested class, its leaf origin, and every
/// qualifying visit, the buckets it overlaps (by `start < b1 and end > b0`, or for a
/// zero-length visit `b0 ≤ start < b1`) get the device, the dwell inside them, and the
/// bucket of its start the visit and its band.
fn reference_rows(
    run: &Run,
    geography: &Geography,
    config: &Config,
    classes: &[ReleaseClass],
    bounds: &[i64],
) -> BTreeMap<RowName, Measures> {
    let devices = &run.profiles.devices;
    let visits = &run.profiles.visits;
    let mut rows: BTreeMap<RowName, Measures> = BTreeMap::new();
    for i in 0..devices.len() {
        let Some(slot) = classes.iter().position(|&c| member(c, devices.class[i])) else {
            continue;
        };
        let origin = if devices.roamer[i] {
            let code = run
                .prepared
                .pings()
                .country_code(devices.country[i])
                .unwrap();
            format!("country:{code}")
        } else if let Some(leaf) = devices.home[i] {
            geography.regions().id(leaf).to_owned()
        } else {
            "unknown".to_owned()
        };
        let mut overlapped: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut banded: BTreeSet<(u32, u32, usize)> = BTreeSet::new();
        for v in (0..visits.len()).filter(|&v| visits.device[v] as usize == i) {
            let (zone, start, end) = (visits.zone[v], visits.start[v], visits.end[v]);
            if end - start < config.min_dwell {
                continue;
            }
            for (b, bucket) in bounds.windows(2).enumerate() {
                let (b0, b1) = (bucket[0], bucket[1]);
                let key = (zone, b as u32, slot as u8, origin.clone());
                let holds_start = (b0..b1).contains(&start);
                let overlaps = if end == start {
                    holds_start
                } else {
                    start < b1 && end > b0
                };
                if overlaps {
                    rows.entry(key.clone()).or_default().dwell_s += end.min(b1) - start.max(b0);
                    overlapped.insert((zone, b as u32));
                }
                if holds_start {
                    let row = rows.entry(key).or_default();
                    row.visits += 1;
                    row.bands[band(end - start)] += 1;
                    banded.insert((zone, b as u32, band(end - start)));
                }
            }
        }
        for (zone, b) in overlapped {
            rows.entry((zone, b, slot as u8, origin.clone()))
                .or_default()
                .devices += 1;
        }
        for (zone, b, band) in banded {
            rows.entry((zone, b, slot as u8, origin.clone()))
                .or_default()
                .band_devices[band] += 1;
        }
    }
    rows
}

/// Per device in a release class: its class slot and the (zone, bucket) pairs its
/// qualifying visits overlap, read from §5–6 directly.
fn reference_pairs(
    run: &Run,
    config: &Config,
    classes: &[ReleaseClass],
    bounds: &[i64],
) -> Vec<(u8, BTreeSet<(u32, u32)>)> {
    let devices = &run.profiles.devices;
    let visits = &run.profiles.visits;
    let mut out = Vec::new();
    for i in 0..devices.len() {
        let Some(slot) = classes.iter().position(|&c| member(c, devices.class[i])) else {
            continue;
        };
        let mut pairs = BTreeSet::new();
        for v in (0..visits.len()).filter(|&v| visits.device[v] as usize == i) {
            let (zone, start, end) = (visits.zone[v], visits.start[v], visits.end[v]);
            if end - start < config.min_dwell {
                continue;
            }
            for (b, bucket) in bounds.windows(2).enumerate() {
                let overlaps = if end == start {
                    (bucket[0]..bucket[1]).contains(&start)
                } else {
                    start < bucket[1] && end > bucket[0]
                };
                if overlaps {
                    pairs.insert((zone, b as u32));
                }
            }
        }
        out.push((slot as u8, pairs));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// §7 rule 1 and the grid: every group has its total row first; a suppressed group is
    /// that row alone with every measure and estimate null; no released row has fewer
    /// than k devices; the counters agree with the rows.
    #[test]
    fn no_released_row_is_below_k_and_suppressed_groups_show_nothing(scenario in scenario()) {
        let geography = scenario.geography();
        let run = run(&scenario, &scenario.rows(), &geography);
        let release = &run.release;
        let k = u64::from(scenario.k);
        let groups = groups(release);
        prop_assert_eq!(groups.first().map_or(0, |g| g.0), 0, "the table starts with a total row");
        prop_assert_eq!(groups.len(), grid(&run.aggregate));
        let mut suppressed = 0;
        for &(first, end) in &groups {
            let total = &release.rows[first];
            if total.suppressed {
                suppressed += 1;
                prop_assert_eq!(end, first + 1, "a suppressed group is its total alone");
                prop_assert_eq!(total.measures, None);
                prop_assert_eq!(total.estimate, None);
            }
            for row in &release.rows[first..end] {
                prop_assert_eq!(row.suppressed, total.suppressed);
                if let Some(measures) = row.measures {
                    prop_assert!(measures.devices >= k, "{:?} is below k = {}", row, k);
                } else {
                    prop_assert!(row.suppressed);
                }
            }
        }
        let counts = release.report.disclosure.expect("a k-anonymous release");
        prop_assert_eq!(counts.k, k);
        prop_assert_eq!(counts.groups, groups.len() as u64);
        prop_assert_eq!(counts.groups_suppressed, suppressed);
        prop_assert_eq!(
            counts.rows_released,
            release.rows.iter().filter(|r| !r.suppressed).count() as u64
        );
    }

    /// §7 step 6: bands are on total rows only; every released band counts visits of 0 or
    /// at least k devices; and never exactly one band of a released total row is
    /// withheld (a lone withheld band would be `visits` minus the others).
    #[test]
    fn released_bands_come_from_zero_or_k_devices(scenario in scenario()) {
        let geography = scenario.geography();
        let run = run(&scenario, &scenario.rows(), &geography);
        let k = u64::from(scenario.k);
        let mut band_devices: BTreeMap<(u32, u32, u8), [u64; 5]> = BTreeMap::new();
        for (key, measures) in run.aggregate.rows() {
            let sum = band_devices.entry((key.zone, key.bucket, key.class)).or_default();
            for (total, devices) in sum.iter_mut().zip(measures.band_devices) {
                *total += devices;
            }
        }
        let zones = &run.aggregate.spec().zones;
        let labels: Vec<&str> = groups(&run.release)
            .iter()
            .map(|&(first, _)| &*run.release.rows[first].bucket_start)
            .collect();
        for (g, (first, end)) in groups(&run.release).into_iter().enumerate() {
            let total = &run.release.rows[first];
            for row in &run.release.rows[first + 1..end] {
                prop_assert_eq!(row.measures.unwrap().bands, [None; 5]);
            }
            let Some(measures) = total.measures else { continue };
            let zone = zones.iter().position(|z| **z == *total.zone).unwrap() as u32;
            let buckets = labels.iter().filter(|&&l| l == &*total.bucket_start).count();
            prop_assert!(buckets >= 1, "group {} has a bucket", g);
            let key = band_devices
                .keys()
                .find(|&&(z, b, c)| {
                    z == zone
                        && run.aggregate.spec().classes[c as usize] == total.class
                        && crowdtally_harness::label_of(&run.aggregate, b) == *total.bucket_start
                })
                .copied();
            let devices = key.map_or([0; 5], |key| band_devices[&key]);
            for (band, value) in measures.bands.iter().enumerate() {
                if value.is_some() {
                    prop_assert!(!(1..k).contains(&devices[band]), "{:?}: band {} from {} devices", total, band, devices[band]);
                }
            }
            let withheld = measures.bands.iter().filter(|b| b.is_none()).count();
            prop_assert!(withheld != 1, "{:?} withholds exactly one band", total);
        }
    }

    /// §7 step 2: a released category group never holds 1 to k − 1 devices of its
    /// step-1-suppressed member zones (same bucket and class), read from the visits
    /// directly: a suppressed member cannot be read off as the union minus the others.
    #[test]
    fn a_union_never_gives_away_a_suppressed_member(scenario in scenario()) {
        let geography = scenario.geography();
        let config = scenario.config();
        let run = run(&scenario, &scenario.rows(), &geography);
        let k = u64::from(scenario.k);
        let spec = run.aggregate.spec();
        let pairs = reference_pairs(&run, &config, &spec.classes, &spec.bounds);
        // Step 1 from the visits: a (zone, bucket, class) group below k.
        let mut devices: BTreeMap<(u32, u32, u8), u64> = BTreeMap::new();
        for (slot, device_pairs) in &pairs {
            for &(zone, bucket) in device_pairs {
                *devices.entry((zone, bucket, *slot)).or_default() += 1;
            }
        }
        let below_k = |key: (u32, u32, u8)| devices.get(&key).copied().unwrap_or(0) < k;
        let zones = geography.zones();
        for (c, category) in zones.iter().enumerate().filter(|(_, z)| z.is_category) {
            let members: Vec<u32> = (0..zones.len() as u32)
                .filter(|&m| !zones[m as usize].is_category && zones[m as usize].category == category.category)
                .collect();
            for bucket in 0..spec.bounds.len() as u32 - 1 {
                for slot in 0..spec.classes.len() as u8 {
                    let hidden: Vec<u32> = members.iter().copied().filter(|&m| below_k((m, bucket, slot))).collect();
                    let in_hidden = pairs
                        .iter()
                        .filter(|(s, p)| *s == slot && hidden.iter().any(|&m| p.contains(&(m, bucket))))
                        .count() as u64;
                    let released = run.release.rows.iter().any(|row| {
                        &*row.zone == category.id.as_str()
                            && row.origin == "*"
                            && !row.suppressed
                            && row.class == spec.classes[slot as usize]
                            && *row.bucket_start == crowdtally_harness::label_of(&run.aggregate, bucket)
                    });
                    if released {
                        prop_assert!(!(1..k).contains(&in_hidden), "{} bucket {} class {}: {} hidden devices", category.id, bucket, slot, in_hidden);
                    }
                    let _ = c;
                }
            }
        }
    }

    /// §7: in every released group the origin rows partition the total, exactly for the
    /// measures, and within 1e-6 (relative) for the estimates when they are all there.
    #[test]
    fn released_origin_rows_partition_their_total(scenario in scenario()) {
        let geography = scenario.geography();
        let run = run(&scenario, &scenario.rows(), &geography);
        let release = &run.release;
        for (first, end) in groups(release) {
            let total = &release.rows[first];
            if total.suppressed {
                continue;
            }
            let origins = &release.rows[first + 1..end];
            prop_assert!(!origins.is_empty(), "a released group has origin rows");
            let mut sum = (0, 0, 0);
            for row in origins {
                let measures = row.measures.unwrap();
                prop_assert_eq!(measures.bands, [None; 5], "origin rows have no bands");
                sum.0 += measures.devices;
                sum.1 += measures.visits;
                sum.2 += measures.dwell_s;
            }
            let whole = total.measures.unwrap();
            prop_assert_eq!(sum, (whole.devices, whole.visits, whole.dwell_s));
            let names: Vec<&str> = origins.iter().map(|r| r.origin.as_str()).collect();
            prop_assert!(names.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()), "{:?}", names);
            let estimates: Option<Vec<[f64; 4]>> =
                origins.iter().map(|r| r.estimate.map(parts)).collect();
            match (total.estimate.map(parts), estimates) {
                (Some(whole), Some(parts)) => {
                    let devices: f64 = parts.iter().map(|e| e[0]).sum();
                    let visits: f64 = parts.iter().map(|e| e[1]).sum();
                    prop_assert!(close(devices, whole[0], 1e-6), "{} vs {}", devices, whole[0]);
                    prop_assert!(close(visits, whole[1], 1e-6), "{} vs {}", visits, whole[1]);
                }
                (None, Some(_)) => {
                    return Err(TestCaseError::fail("a null total over non-null origin rows"));
                }
                (Some(_), None) => {
                    return Err(TestCaseError::fail("a total estimate over a null origin row"));
                }
                (None, None) => {}
            }
        }
    }

    /// §7: shuffling the input rows and cutting them into batches gives the same table.
    #[test]
    fn shuffled_rows_give_the_same_release(
        (scenario, order, cuts) in scenario().prop_flat_map(|scenario| {
            let n = scenario.rows().len();
            (
                Just(scenario),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                vec(0..=n, 0..4),
            )
        }),
    ) {
        let geography = scenario.geography();
        let rows = scenario.rows();
        let whole = run(&scenario, &rows, &geography);
        let shuffled: Vec<Ping> = order.iter().map(|&i| rows[i].clone()).collect();
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut batches = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([shuffled.len()]) {
            batches.push(Ok(batch(&shuffled[from..cut])));
            from = cut;
        }
        let release = Study::new(geography.clone(), scenario.config())
            .expect("study")
            .release(batches, &scenario.options(), &RunOptions::default())
            .expect("analyze");
        prop_assert_eq!(&release.rows, &whole.release.rows);
        prop_assert_eq!(release.report.disclosure, whole.release.report.disclosure);
        prop_assert_eq!(&release.report.devices, &whole.release.report.devices);
    }

    /// §6: devices split into shards, each aggregated on its own over the same given
    /// period, merge in any order into the aggregate of the whole, and release the same
    /// table; an aggregate survives a JSON round trip.
    #[test]
    fn merged_shards_release_the_table_of_the_whole(
        scenario in scenario(),
        shard_of in vec(0..3_usize, 28),
        merge_order in Just(vec![0_usize, 1, 2]).prop_shuffle(),
    ) {
        let geography = scenario.geography();
        let config = scenario.config();
        let options = scenario.options();
        let whole = run(&scenario, &scenario.rows(), &geography);
        let mut parts = Vec::new();
        for shard in 0..3 {
            let rows: Vec<Ping> = (0..scenario.devices.len())
                .filter(|&d| shard_of[d] == shard)
                .flat_map(|d| scenario.device_rows(d))
                .collect();
            parts.push(run(&scenario, &rows, &geography).aggregate);
        }
        let mut merged = parts[merge_order[0]].clone();
        for &shard in &merge_order[1..] {
            merged.merge(&parts[shard]).expect("shards of one grid merge");
        }
        prop_assert_eq!(&merged, &whole.aggregate);
        let release = Study::new(geography.clone(), config.clone())
            .expect("study")
            .release_aggregate(Some(&merged), whole.prepared.report(), &options)
            .expect("release");
        prop_assert_eq!(&release.rows, &whole.release.rows);
        prop_assert_eq!(&release.report.devices, &whole.release.report.devices);

        let json = serde_json::to_string(&whole.aggregate).expect("serialise");
        let back: Aggregate = serde_json::from_str(&json).expect("deserialise");
        prop_assert_eq!(&back, &whole.aggregate);
    }

    /// §7–8: the threshold looks at observed devices only. A group is suppressed exactly
    /// when its observed devices (summed from the aggregate) are below k, whatever its
    /// estimate; every released row has at least k devices whatever its est_devices; and
    /// est_low ≥ devices, with est_low ≤ est_devices ≤ est_high.
    #[test]
    fn the_threshold_is_on_observed_devices_never_on_estimates(scenario in scenario()) {
        let geography = scenario.geography();
        let run = run(&scenario, &scenario.rows(), &geography);
        let k = u64::from(scenario.k);
        let spec = run.aggregate.spec();
        let buckets = spec.bounds.len() - 1;
        let mut observed: BTreeMap<(usize, usize, usize), u64> = BTreeMap::new();
        for (key, measures) in run.aggregate.rows() {
            *observed
                .entry((key.zone as usize, key.bucket as usize, usize::from(key.class)))
                .or_default() += measures.devices;
        }
        let mut as_unions = 0;
        for (g, (first, _)) in groups(&run.release).into_iter().enumerate() {
            let total = &run.release.rows[first];
            let key = (g / (buckets * spec.classes.len()), g / spec.classes.len() % buckets, g % spec.classes.len());
            let devices = observed.get(&key).copied().unwrap_or(0);
            // Step 1 on observed devices; a category group of k or more may still be
            // suppressed by step 2 (its suppressed members hold 1 to k − 1 devices).
            if devices < k {
                prop_assert!(total.suppressed, "group {:?} has {} devices", key, devices);
            } else if total.suppressed {
                prop_assert!(total.zone.starts_with("category:"), "group {:?} has {} devices", key, devices);
                as_unions += 1;
            } else {
                prop_assert_eq!(total.measures.unwrap().devices, devices);
            }
        }
        let counts = run.release.report.disclosure.expect("a k-anonymous release");
        prop_assert_eq!(counts.groups_suppressed_as_unions, as_unions);
        for row in run.release.rows.iter().filter(|r| !r.suppressed) {
            let devices = row.measures.unwrap().devices;
            prop_assert!(devices >= k);
            if let Some([est, _, low, high]) = row.estimate.map(parts) {
                prop_assert!(low >= devices as f64, "{:?}", row);
                prop_assert!(est >= devices as f64 - 1e-9, "{:?}", row);
                prop_assert!(low <= est + 1e-9, "{:?}", row);
                prop_assert!(est <= high, "{:?}", row);
            }
        }
    }

    /// §6: the aggregate's rows and device counts agree with a direct reading of the
    /// method from the profiles, with bucket bounds computed from the calendar.
    #[test]
    fn aggregate_rows_agree_with_the_method_read_directly(scenario in scenario()) {
        let geography = scenario.geography();
        let config = scenario.config();
        let run = run(&scenario, &scenario.rows(), &geography);
        let spec = run.aggregate.spec();
        let period = config.period.unwrap();
        let bounds = reference_bounds(spec.bucket, period.start, period.end);
        prop_assert_eq!(&spec.bounds, &bounds);
        let zones: Vec<&str> = geography.zones().iter().map(|z| z.id.as_str()).collect();
        prop_assert_eq!(&spec.zones, &zones);
        let want = reference_rows(&run, &geography, &config, &scenario.classes(), &bounds);
        let got: BTreeMap<RowName, Measures> = run
            .aggregate
            .rows()
            .iter()
            .map(|(key, measures)| {
                let name = run.aggregate.origins()[key.origin as usize].clone();
                ((key.zone, key.bucket, key.class, name), *measures)
            })
            .collect();
        prop_assert_eq!(got, want);

        // Devices by class, roamers, unknown homes and detected subscribers, over all
        // devices.
        let devices = &run.profiles.devices;
        let counts = run.aggregate.devices();
        for class in DeviceClass::ALL {
            let n = devices.class.iter().filter(|&&d| d == class).count() as u64;
            prop_assert_eq!(counts.by_class.get(class), n, "{:?}", class);
        }
        let roamers = devices.roamer.iter().filter(|&&r| r).count() as u64;
        prop_assert_eq!(counts.roamers, roamers);
        let mut subscribers: BTreeMap<String, u64> = BTreeMap::new();
        let mut unknown = 0;
        for i in 0..devices.len() {
            if devices.roamer[i] {
                continue;
            }
            if let Some(leaf) = devices.home[i] {
                *subscribers.entry(geography.regions().id(leaf).to_owned()).or_default() += 1;
            } else {
                unknown += 1;
            }
        }
        prop_assert_eq!(counts.domestic_unknown_home, unknown);
        prop_assert_eq!(&counts.subscribers, &subscribers);
    }
}
