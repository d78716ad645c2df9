//! Properties of the per-device analytics on random devices, pings and zones: the result
//! does not depend on row order, batches or how devices are split into shards; visits of
//! a device to a zone are ordered and disjoint and fit in its observed span; classes
//! follow their rules; and every number agrees with a direct reading of method §4–5.

use std::collections::{BTreeMap, HashMap};

use crowdtally::geo::{RegionIndex, UNKNOWN_REGION};
use crowdtally::profile::{Profiles, profile};
use crowdtally::{Config, DeviceClass, Geography, Prepared};
use crowdtally_harness::{
    MARKT_CELL, OUTSIDE_CELL, Ping, QUIET_CELL, STATION_CELL, STREET_CELL, assert_consistent,
    batch, brussels, brussels_period, config, fixture_builder, free_neighbours_of_kortrijk,
    prepare, quiet_menen_cell,
};
use h3o::{CellIndex, Resolution};
use proptest::collection::vec;
use proptest::prelude::*;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const SUBSCRIBERS: u8 = 5;
const COUNTRIES: [Option<&str>; 6] = [
    None,
    Some(""),
    Some("be"),
    Some("BE"),
    Some("nl"),
    Some("FR"),
];
const CATEGORIES: [Option<&str>; 3] = [None, Some("culture"), Some("retail")];
const STUDY_AREAS: [&[&str]; 4] = [
    &["kortrijk"],
    &["kortrijk", "harelbeke"],
    &["wvl"],
    &["menen"],
];
const MAX_GAPS: [i64; 3] = [1_800, 3 * HOUR, 6 * HOUR];

/// A resolution-9 cell of `menen` outside every fixture zone, and one of `harelbeke`
/// with the resolution-7 cell of that leaf (a neighbour of Kortrijk).
fn extra_cells() -> (u64, u64, u64) {
    let ring = free_neighbours_of_kortrijk();
    let harelbeke = CellIndex::try_from(ring[0])
        .unwrap()
        .center_child(Resolution::Nine)
        .unwrap()
        .into();
    let menen = quiet_menen_cell();
    (menen, harelbeke, ring[0])
}

/// The cells pings fall in: three in `kortrijk`, two in `menen`, one in `harelbeke` and
/// one in no leaf.
fn cell_pool() -> [u64; 7] {
    let (menen, harelbeke, _) = extra_cells();
    [
        MARKT_CELL,
        STREET_CELL,
        QUIET_CELL,
        STATION_CELL,
        menen,
        harelbeke,
        OUTSIDE_CELL,
    ]
}

/// The random parts of a run other than the pings.
#[derive(Clone, Debug)]
struct Setting {
    /// Per zone: a non-empty subset of [`cell_pool`] (bit k for cell k) and a category.
    zones: Vec<(u8, usize)>,
    study_area: usize,
    autumn: bool,
    max_gap: i64,
    min_dwell: i64,
    min_nights: u32,
    usual_env_min_days: Option<u32>,
}

fn setting() -> impl Strategy<Value = Setting> {
    (
        vec((1..128_u8, 0..CATEGORIES.len()), 4),
        0..STUDY_AREAS.len(),
        any::<bool>(),
        0..MAX_GAPS.len(),
        prop_oneof![Just(0_i64), Just(1_800_i64)],
        1..4_u32,
        prop::option::of(1..4_u32),
    )
        .prop_map(
            |(mut zones, study_area, autumn, gap, min_dwell, min_nights, usual_env_min_days)| {
                // At least one category, so that a category zone is always analysed.
                zones[0].1 = 1;
                Setting {
                    zones,
                    study_area,
                    autumn,
                    max_gap: MAX_GAPS[gap],
                    min_dwell,
                    min_nights,
                    usual_env_min_days,
                }
            },
        )
}

impl Setting {
    /// The fixture regions plus the leaf `harelbeke`, with random zones `z0`..`z3` over
    /// the cell pool (overlapping wherever their subsets meet).
    fn geography(&self) -> Geography {
        let (_, _, harelbeke) = extra_cells();
        let pool = cell_pool();
        let mut builder = fixture_builder();
        builder.zones = crowdtally::geo::ZoneTable::default();
        builder.zone_cells = crowdtally::geo::ZoneCellTable::default();
        let mut builder = builder
            .region("harelbeke", "municipality", Some("wvl"), Some(28_000))
            .region_cells("harelbeke", &[harelbeke])
            .study_area(STUDY_AREAS[self.study_area]);
        for (z, &(mask, category)) in self.zones.iter().enumerate() {
            let cells: Vec<u64> = (0..pool.len())
                .filter(|k| mask >> k & 1 == 1)
                .map(|k| pool[k])
                .collect();
            builder = builder.zone(&format!("z{z}"), CATEGORIES[category], &cells);
        }
        builder.build().expect("a valid random geography")
    }

    /// The first day of the given three-day period: a summer week or the days around
    /// the October change of time.
    fn start(&self) -> &'static str {
        if self.autumn {
            "2026-10-24"
        } else {
            "2026-07-01"
        }
    }

    fn config(&self) -> Config {
        let start = brussels(&format!("{} 00:00:00", self.start()));
        let mut config = config();
        config.period = Some(brussels_period(start, start + 3 * DAY + 12 * HOUR));
        config.max_gap = self.max_gap;
        config.min_dwell = self.min_dwell;
        config.min_nights = self.min_nights;
        config.usual_env_min_days = self.usual_env_min_days;
        config
    }

    /// The rows of raw pings: from 8 h before the period to a day after it, on a
    /// half-hour grid with random seconds added to some.
    fn rows(&self, raw: &[RawPing]) -> Vec<Ping> {
        let base = brussels(&format!("{} 00:00:00", self.start())) - 8 * HOUR;
        let pool = cell_pool();
        raw.iter()
            .map(|&(subscriber, half_hour, jitter, cell, country)| {
                let mut ping = Ping::in_cell(
                    &format!("sub{subscriber}"),
                    base + half_hour * 1_800 + jitter,
                    pool[cell],
                );
                ping.country = COUNTRIES[country].map(str::to_owned);
                ping
            })
            .collect()
    }
}

/// Subscriber, half-hour, added seconds, cell and country of one ping.
type RawPing = (u8, i64, i64, usize, usize);

fn raw_pings() -> impl Strategy<Value = Vec<RawPing>> {
    let ping = (
        0..SUBSCRIBERS,
        0..208_i64,
        prop_oneof![3 => Just(0_i64), 1 => 0..1_800_i64],
        0..cell_pool().len(),
        0..COUNTRIES.len(),
    );
    vec(ping, 0..120)
}

fn run(rows: &[Ping], geography: &Geography, config: &Config) -> (Prepared, Profiles) {
    let prepared = prepare(vec![batch(rows)], geography, config).expect("prepare");
    assert_consistent(&prepared);
    let profiles = profile(prepared.pings(), geography, config).expect("profile");
    (prepared, profiles)
}

/// Splits rows into batches at the given cut points.
fn batches(rows: &[Ping], cuts: &[usize]) -> Vec<arrow_array::RecordBatch> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(rows.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([rows.len()]) {
        out.push(batch(&rows[start..cut]));
        start = cut;
    }
    out
}

/// Everything known of one device, with country codes instead of numbers, so that
/// results of different runs compare.
#[derive(Debug, PartialEq, Eq)]
struct DeviceRow {
    home: RegionIndex,
    home_nights: u32,
    country: Option<String>,
    roamer: bool,
    presence_days: u32,
    study_nights: u32,
    class: DeviceClass,
    /// (zone, start, end, qualifies) of its visits, in order.
    visits: Vec<(u32, i64, i64, bool)>,
}

fn device_rows(prepared: &Prepared, profiles: &Profiles) -> BTreeMap<u64, DeviceRow> {
    let d = &profiles.devices;
    let v = &profiles.visits;
    let mut rows = BTreeMap::new();
    for i in 0..d.len() {
        let visits = (0..v.len())
            .filter(|&k| v.device[k] as usize == i)
            .map(|k| (v.zone[k], v.start[k], v.end[k], v.qualifies(k)))
            .collect();
        rows.insert(
            d.device[i],
            DeviceRow {
                home: d.home[i].unwrap_or(UNKNOWN_REGION),
                home_nights: d.home_nights[i],
                country: prepared
                    .pings()
                    .country_code(d.country[i])
                    .map(str::to_owned),
                roamer: d.roamer[i],
                presence_days: d.presence_days[i],
                study_nights: d.study_nights[i],
                class: d.class[i],
                visits,
            },
        );
    }
    rows
}

/// Rows, the same rows shuffled, and cut points for splitting them into batches.
fn shuffled_rows() -> impl Strategy<Value = (Vec<RawPing>, Vec<RawPing>, Vec<usize>)> {
    raw_pings().prop_flat_map(|rows| {
        let n = rows.len();
        (
            Just(rows.clone()),
            Just(rows).prop_shuffle(),
            vec(0..=n, 0..5),
        )
    })
}

/// The part of day of an instant by the method's words, from its local wall-clock time:
/// `(true, D)` for the night of local date D (`[D 22:00, D+1 06:00)`), `(false, D)` for
/// the daytime of D. Dates are days since 1970-01-01.
fn part_of_day(tz: &jiff::tz::TimeZone, instant: i64) -> (bool, i64) {
    let local = tz.to_datetime(jiff::Timestamp::from_second(instant).unwrap());
    let day = i64::from((local.date() - jiff::civil::date(1970, 1, 1)).get_days());
    match local.hour() {
        hour if hour >= 22 => (true, day),
        hour if hour < 6 => (true, day - 1),
        _ => (false, day),
    }
}

/// The method's §4–5 read directly, device by device, from the located pings.
#[expect(
    clippy::too_many_lines,
    reason = "the reference reads §4–5 as written, rule after rule"
)]
fn reference(
    prepared: &Prepared,
    geography: &Geography,
    config: &Config,
) -> BTreeMap<u64, DeviceRow> {
    let calendar = jiff::tz::TimeZone::get(&config.tz).unwrap();
    let pings = prepared.pings();
    let period = pings.period.unwrap();
    // Given, or max(5, ceil(D_p / 4)).
    let threshold = match config.usual_env_min_days {
        Some(days) => i64::from(days),
        None => ((period.days() + 3) / 4).max(5),
    };
    let mut out = BTreeMap::new();
    for (i, &device) in pings.devices().iter().enumerate() {
        let rows = pings.device_rows(i);
        let ts = &pings.ts()[rows.clone()];
        let leaves = &pings.leaf()[rows.clone()];
        let zone_sets = &pings.zone_set()[rows.clone()];
        let countries = &pings.country()[rows];

        // Pings per leaf in each daytime and night.
        let mut parts: BTreeMap<(bool, i64), HashMap<RegionIndex, u32>> = BTreeMap::new();
        for (&t, &leaf) in ts.iter().zip(leaves) {
            let counts = parts.entry(part_of_day(&calendar, t)).or_default();
            if leaf != UNKNOWN_REGION {
                *counts.entry(leaf).or_default() += 1;
            }
        }
        let in_study_area = |counts: &HashMap<RegionIndex, u32>| {
            let study: u32 = counts
                .iter()
                .filter(|(l, _)| geography.in_study_area(**l))
                .map(|(_, c)| c)
                .sum();
            let elsewhere = counts
                .iter()
                .filter(|(l, _)| !geography.in_study_area(**l))
                .map(|(_, c)| *c)
                .max()
                .unwrap_or(0);
            study >= 1 && study >= elsewhere
        };
        let presence_days = parts
            .iter()
            .filter(|((night, _), counts)| !night && in_study_area(counts))
            .count() as u32;
        let study_nights = parts
            .iter()
            .filter(|((night, _), counts)| *night && in_study_area(counts))
            .count() as u32;

        // Home: most nights, then most night pings, then the smaller id.
        let mut nights: HashMap<RegionIndex, (u32, u32)> = HashMap::new();
        for ((night, _), counts) in &parts {
            if *night {
                for (&leaf, &count) in counts {
                    let entry = nights.entry(leaf).or_default();
                    entry.0 += 1;
                    entry.1 += count;
                }
            }
        }
        let regions = geography.regions();
        let best = nights.iter().max_by(|a, b| {
            (a.1.0, a.1.1)
                .cmp(&(b.1.0, b.1.1))
                .then_with(|| regions.id(*b.0).as_bytes().cmp(regions.id(*a.0).as_bytes()))
        });

        // Country: most frequent non-empty code, then the smaller code.
        let mut codes: BTreeMap<&str, u32> = BTreeMap::new();
        for &c in countries {
            if let Some(code) = pings.country_code(c) {
                *codes.entry(code).or_default() += 1;
            }
        }
        let country = codes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(code, _)| (*code).to_owned());
        let roamer = country
            .as_deref()
            .is_some_and(|code| code != config.home_country.to_ascii_uppercase());
        let (home, home_nights) = match best {
            Some((&leaf, &(n, _))) if n >= config.min_nights && !roamer => (leaf, n),
            _ => (UNKNOWN_REGION, 0),
        };
        let class = if home != UNKNOWN_REGION && geography.in_study_area(home) {
            DeviceClass::Resident
        } else if i64::from(presence_days) >= threshold {
            DeviceClass::Regular
        } else if study_nights >= 1 {
            DeviceClass::OvernightVisitor
        } else {
            DeviceClass::DayVisitor
        };

        // Visits: maximal runs in the zone with gaps ≤ max_gap, split at floored midpoints.
        let n = ts.len();
        let gap = |k: usize| ts[k + 1] - ts[k];
        let mut visits = Vec::new();
        for z in 0..geography.zones().len() as u32 {
            let inside = |k: usize| geography.zone_set(zone_sets[k]).contains(&z);
            let mut k = 0;
            while k < n {
                if !inside(k) {
                    k += 1;
                    continue;
                }
                let i = k;
                let mut j = k;
                while j + 1 < n && inside(j + 1) && gap(j) <= config.max_gap {
                    j += 1;
                }
                let start = if i > 0 && gap(i - 1) <= config.max_gap {
                    ts[i - 1] + gap(i - 1) / 2
                } else {
                    ts[i]
                };
                let end = if j + 1 < n && gap(j) <= config.max_gap {
                    ts[j] + gap(j) / 2
                } else {
                    ts[j]
                };
                visits.push((z, start, end, end - start >= config.min_dwell));
                k = j + 1;
            }
        }
        visits.sort_unstable_by_key(|&(z, start, _, _)| (start, z));

        out.insert(
            device,
            DeviceRow {
                home,
                home_nights,
                country,
                roamer,
                presence_days,
                study_nights,
                class,
                visits,
            },
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (a) Row order and batches change nothing.
    #[test]
    fn shuffling_and_splitting_the_rows_changes_nothing(
        setting in setting(),
        (raw, shuffled, cuts) in shuffled_rows(),
    ) {
        let geography = setting.geography();
        let config = setting.config();
        let (a_prepared, a) = run(&setting.rows(&raw), &geography, &config);
        let b_prepared = prepare(batches(&setting.rows(&shuffled), &cuts), &geography, &config)
            .expect("prepare");
        let b = profile(b_prepared.pings(), &geography, &config).expect("profile");
        prop_assert_eq!(&a.devices, &b.devices);
        prop_assert_eq!(&a.visits, &b.visits);
        prop_assert_eq!(a.period, b.period);
        prop_assert_eq!(a.usual_env_min_days, b.usual_env_min_days);
        prop_assert_eq!(
            a.devices_batch(a_prepared.pings(), &geography).unwrap(),
            b.devices_batch(b_prepared.pings(), &geography).unwrap()
        );
        prop_assert_eq!(
            a.visits_batch(&geography).unwrap(),
            b.visits_batch(&geography).unwrap()
        );
    }

    /// (b) Devices split into shards, each prepared and profiled on its own with the same
    /// given period, give the same rows as the whole.
    #[test]
    fn shards_of_devices_give_the_rows_of_the_whole(
        setting in setting(),
        raw in raw_pings(),
        shard_mask in any::<u8>(),
    ) {
        let geography = setting.geography();
        let config = setting.config();
        let (whole_prepared, whole) = run(&setting.rows(&raw), &geography, &config);
        let (in_shard, rest): (Vec<RawPing>, Vec<RawPing>) =
            raw.iter().copied().partition(|p| shard_mask >> p.0 & 1 == 1);
        let mut sharded = BTreeMap::new();
        for part in [in_shard, rest] {
            let (prepared, profiles) = run(&setting.rows(&part), &geography, &config);
            prop_assert_eq!(profiles.usual_env_min_days, whole.usual_env_min_days);
            for (device, row) in device_rows(&prepared, &profiles) {
                prop_assert!(sharded.insert(device, row).is_none(), "a device in two shards");
            }
        }
        prop_assert_eq!(device_rows(&whole_prepared, &whole), sharded);
    }

    /// (c)–(e) Visits are ordered, disjoint per zone and within the observed span; each
    /// device has one class and the class rules hold.
    #[test]
    fn visits_and_classes_keep_their_invariants(setting in setting(), raw in raw_pings()) {
        let geography = setting.geography();
        let config = setting.config();
        let (prepared, profiles) = run(&setting.rows(&raw), &geography, &config);
        let d = &profiles.devices;
        let v = &profiles.visits;
        prop_assert_eq!(d.len(), prepared.pings().devices().len());
        prop_assert_eq!(d.class.len(), d.len());

        // Grouped by device in the order of `devices`, then by start, then zone.
        for k in 1..v.len() {
            prop_assert!(
                (v.device[k - 1], v.start[k - 1], v.zone[k - 1]) < (v.device[k], v.start[k], v.zone[k]),
                "visit {} is out of order", k
            );
        }
        for i in 0..d.len() {
            let ts = &prepared.pings().ts()[prepared.pings().device_rows(i)];
            let (first, last) = (ts[0], ts[ts.len() - 1]);
            let mut by_zone: BTreeMap<u32, Vec<(i64, i64)>> = BTreeMap::new();
            for k in (0..v.len()).filter(|&k| v.device[k] as usize == i) {
                prop_assert!(first <= v.start[k] && v.start[k] <= v.end[k] && v.end[k] <= last);
                by_zone.entry(v.zone[k]).or_default().push((v.start[k], v.end[k]));
            }
            for spans in by_zone.values() {
                // (c) One visit ends before the next to the same zone starts: between them
                // lies at least one ping outside the zone, or a gap over max_gap.
                for pair in spans.windows(2) {
                    prop_assert!(pair[0].1 < pair[1].0, "{:?}", pair);
                }
                // (d) The total dwell in a zone fits in the observed span.
                let dwell: i64 = spans.iter().map(|(s, e)| e - s).sum();
                prop_assert!(dwell <= last - first);
            }

            // (e) Class rules.
            let home_in_study = d.home[i].is_some_and(|leaf| geography.in_study_area(leaf));
            let threshold = profiles.usual_env_min_days;
            prop_assert_eq!(d.class[i] == DeviceClass::Resident, home_in_study && !d.roamer[i]);
            if d.roamer[i] {
                prop_assert_ne!(d.class[i], DeviceClass::Resident);
                prop_assert_eq!(d.home[i], None);
            }
            if d.home[i].is_none() {
                prop_assert_eq!(d.home_nights[i], 0);
            } else {
                prop_assert!(d.home_nights[i] >= config.min_nights);
            }
            match d.class[i] {
                DeviceClass::Resident => {}
                DeviceClass::Regular => {
                    prop_assert!(i64::from(d.presence_days[i]) >= threshold);
                }
                DeviceClass::OvernightVisitor => {
                    prop_assert!(d.study_nights[i] >= 1);
                    prop_assert!(i64::from(d.presence_days[i]) < threshold);
                }
                DeviceClass::DayVisitor => {
                    prop_assert_eq!(d.study_nights[i], 0);
                    prop_assert!(i64::from(d.presence_days[i]) < threshold);
                }
            }
        }
    }

    /// Every device row and visit agrees with the method read directly.
    #[test]
    fn profiles_agree_with_the_method_read_directly(setting in setting(), raw in raw_pings()) {
        let geography = setting.geography();
        let config = setting.config();
        let (prepared, profiles) = run(&setting.rows(&raw), &geography, &config);
        prop_assert_eq!(device_rows(&prepared, &profiles), reference(&prepared, &geography, &config));
    }
}
