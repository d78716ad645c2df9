//! Per-device analytics through the public API (method §4–5): visits and their dwell,
//! homes, roamers, presence days, nights in the study area, classes and origins.
//!
//! Every case is a golden case computed by hand from the method; the comment above each
//! assertion gives the reasoning. Times are Brussels local time unless they carry an
//! offset; in July Brussels is at UTC+2.

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampSecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use crowdtally::geo::RegionIndex;
use crowdtally::profile::{Origin, Profiles, origin_name, profile};
use crowdtally::{Config, DeviceClass, Geography, Key, Prepared, Pseudonymizer};
use crowdtally_harness::{
    GeographyBuilder, KEY, MARKT_CELL, OUTSIDE_CELL, Ping, QUIET_CELL, STREET_CELL,
    assert_consistent, batch, brussels, config, fixture_builder, free_neighbours_of_kortrijk,
    local_period, prepare, quiet_menen_cell,
};
use h3o::{CellIndex, Resolution};

const HOUR: i64 = 3_600;

// --- Fixtures ---------------------------------------------------------------------------

/// A Brussels local time (or a time with an offset) in epoch seconds.
fn t(text: &str) -> i64 {
    brussels(text)
}

/// The defaults with the given period.
fn config_for(start: &str, end: &str) -> Config {
    let mut config = config();
    config.period = Some(local_period(start, end));
    config
}

/// The defaults over the week 2026-07-01 to 2026-07-08: D_p = 7, so
/// usual_env_min_days = max(5, ceil(7 / 4)) = max(5, 2) = 5.
fn week() -> Config {
    config_for("2026-07-01", "2026-07-08")
}

/// Resolution-9 cells to ping from, besides the fixture's (`MARKT_CELL`, `STREET_CELL`,
/// `QUIET_CELL` in `kortrijk`, `STATION_CELL` in `menen`, `OUTSIDE_CELL` in no leaf).
struct Cells {
    /// In `menen` and in no zone.
    menen: u64,
    /// In the leaf `harelbeke`.
    harelbeke: u64,
    /// In the leaf `B`.
    upper_b: u64,
    /// In the leaf `a`.
    lower_a: u64,
    /// The resolution-7 cells of `harelbeke`, `B` and `a`.
    leaves: [u64; 3],
}

fn cells() -> Cells {
    let ring = free_neighbours_of_kortrijk();
    let inner = |raw: u64| -> u64 {
        CellIndex::try_from(raw)
            .unwrap()
            .center_child(Resolution::Nine)
            .unwrap()
            .into()
    };
    let menen = quiet_menen_cell();
    Cells {
        menen,
        harelbeke: inner(ring[0]),
        upper_b: inner(ring[1]),
        lower_a: inner(ring[2]),
        leaves: [ring[0], ring[1], ring[2]],
    }
}

/// The fixture geography plus three leaves: `harelbeke` (in the province `wvl`, beside
/// `kortrijk` and `menen`), and `a` and `B` directly under `BE`, listed `a` first so that
/// a tie broken by table order would pick `a`. Zones: `grote-markt` (culture) on the
/// Markt, `shopping` (retail) on the Markt and the street, `museum` (culture) on the
/// street, `station` in Menen, so `category:culture` is the Markt and the street.
fn builder() -> GeographyBuilder {
    let cells = cells();
    fixture_builder()
        .region("harelbeke", "municipality", Some("wvl"), Some(28_000))
        .region("a", "municipality", Some("BE"), Some(1_000))
        .region("B", "municipality", Some("BE"), Some(1_000))
        .region_cells("harelbeke", &[cells.leaves[0]])
        .region_cells("B", &[cells.leaves[1]])
        .region_cells("a", &[cells.leaves[2]])
}

/// The geography of [`builder`] with the study area `kortrijk`.
fn geography() -> Geography {
    builder().build().unwrap()
}

/// The geography of [`builder`] with the study area `kortrijk` and `harelbeke`.
fn two_leaf_geography() -> Geography {
    builder()
        .study_area(&["kortrijk", "harelbeke"])
        .build()
        .unwrap()
}

/// A ping of `subscriber` at a local time in a cell.
fn ping(subscriber: &str, time: &str, cell: u64) -> Ping {
    Ping::in_cell(subscriber, t(time), cell)
}

/// Pings of `subscriber` in a cell at `time` (`HH:MM:SS`) on each of the given July 2026
/// days.
fn daily(subscriber: &str, days: &[u32], time: &str, cell: u64) -> Vec<Ping> {
    days.iter()
        .map(|d| ping(subscriber, &format!("2026-07-{d:02} {time}"), cell))
        .collect()
}

/// Prepares and profiles the rows, checking the invariants of both.
fn run(rows: &[Ping], geography: &Geography, config: &Config) -> (Prepared, Profiles) {
    let prepared = prepare(vec![batch(rows)], geography, config).expect("prepare");
    assert_consistent(&prepared);
    let profiles = profile(prepared.pings(), geography, config).expect("profile");
    assert_eq!(profiles.devices.device, prepared.pings().devices());
    assert_eq!(profiles.period, prepared.pings().period);
    (prepared, profiles)
}

/// The index of a subscriber's device in the profiles.
fn device(prepared: &Prepared, subscriber: &str) -> usize {
    let label = prepared.pings().period_label.as_deref().unwrap();
    let pseudonym = Pseudonymizer::new(&Key::new(KEY.to_vec()), label)
        .unwrap()
        .device(subscriber.as_bytes());
    prepared
        .pings()
        .devices()
        .iter()
        .position(|&d| d == pseudonym)
        .unwrap_or_else(|| panic!("no device for {subscriber}"))
}

fn zone(geography: &Geography, id: &str) -> u32 {
    geography.zones().iter().position(|z| z.id == id).unwrap() as u32
}

fn leaf(geography: &Geography, id: &str) -> RegionIndex {
    geography.regions().index_of(id).unwrap()
}

/// The (start, end) of a device's visits to one zone, in order.
fn visits(
    profiles: &Profiles,
    geography: &Geography,
    device: usize,
    zone_id: &str,
) -> Vec<(i64, i64)> {
    let z = zone(geography, zone_id);
    let v = &profiles.visits;
    (0..v.len())
        .filter(|&i| v.device[i] as usize == device && v.zone[i] == z)
        .map(|i| (v.start[i], v.end[i]))
        .collect()
}

/// The index of the one visit of a device to a zone.
fn only_visit(profiles: &Profiles, geography: &Geography, zone_id: &str) -> usize {
    let z = zone(geography, zone_id);
    let found: Vec<usize> = (0..profiles.visits.len())
        .filter(|&i| profiles.visits.zone[i] == z)
        .collect();
    assert_eq!(found.len(), 1, "one visit to {zone_id}");
    found[0]
}

/// The values of a dictionary-encoded or plain string column, `None` for nulls.
fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(name).unwrap();
    if let Some(dictionary) = array.as_dictionary_opt::<UInt32Type>() {
        let values = dictionary.values().as_string::<i32>();
        return dictionary
            .keys()
            .iter()
            .map(|k| k.map(|k| values.value(k as usize).to_owned()))
            .collect();
    }
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

fn u32s(batch: &RecordBatch, name: &str) -> Vec<u32> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<UInt32Type>()
        .values()
        .to_vec()
}

fn bools(batch: &RecordBatch, name: &str) -> Vec<bool> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_boolean()
        .iter()
        .map(Option::unwrap)
        .collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_owned())).collect()
}

// --- Visits: gaps and midpoints (§5) ----------------------------------------------------

#[test]
fn a_gap_of_exactly_max_gap_is_bridged() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 14:00:00", MARKT_CELL),
        ping("v", "2026-07-01 15:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // Pings t1..t4 at 10:00, 11:00, 14:00, 15:00; t2 and t3 are on the Markt. g2 = 14:00 −
    // 11:00 = 10800 s = max_gap, and g_m ≤ max_gap holds, so 2..3 is one visit.
    // start = t1 + floor(g1 / 2) = 10:00 + 1800 s = 10:30 (g1 = 3600 ≤ max_gap);
    // end = t3 + floor(g3 / 2) = 14:00 + 1800 s = 14:30 (g3 = 3600 ≤ max_gap).
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(t("2026-07-01 10:30:00"), t("2026-07-01 14:30:00"))]
    );
    // Dwell = 14:30 − 10:30 = 4 h.
    let i = only_visit(&profiles, &geography, "grote-markt");
    assert_eq!(profiles.visits.dwell(i), 4 * HOUR);
}

#[test]
fn a_gap_one_second_over_max_gap_splits_the_visit() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 14:00:01", MARKT_CELL),
        ping("v", "2026-07-01 15:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // g1 = 3600, g2 = 14:00:01 − 11:00:00 = 10801 > 10800, g3 = 15:00:00 − 14:00:01 = 3599.
    // The Markt pings 2 and 3 are not joined: two runs 2..2 and 3..3.
    // Visit 1: start = t1 + 1800 = 10:30:00; g2 is not bridged, so end = t2 = 11:00:00
    // (dwell 1800). Visit 2: g2 is not bridged, so start = t3 = 14:00:01; end = t3 +
    // floor(3599 / 2) = 14:00:01 + 1799 s = 14:30:00 (dwell 1799).
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [
            (t("2026-07-01 10:30:00"), t("2026-07-01 11:00:00")),
            (t("2026-07-01 14:00:01"), t("2026-07-01 14:30:00")),
        ]
    );
}

#[test]
fn odd_second_gaps_split_at_the_floored_midpoint() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 10:00:07", MARKT_CELL),
        ping("v", "2026-07-01 10:00:20", MARKT_CELL),
        ping("v", "2026-07-01 10:00:33", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // g1 = 7 s, g2 = 13 s, g3 = 13 s. start = 10:00:00 + floor(7 / 2) = 10:00:03;
    // end = 10:00:20 + floor(13 / 2) = 10:00:26; dwell = 23 s (not 24: both halves floor).
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(t("2026-07-01 10:00:03"), t("2026-07-01 10:00:26"))]
    );
    let i = only_visit(&profiles, &geography, "grote-markt");
    assert_eq!(profiles.visits.dwell(i), 23);
}

#[test]
fn visits_at_the_first_and_last_ping_start_and_end_there() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", MARKT_CELL),
        ping("v", "2026-07-01 11:00:00", QUIET_CELL),
        ping("v", "2026-07-01 12:00:00", MARKT_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // Visit 1 is run 1..1: i = 1, so start = t1 = 10:00 (nothing before the first ping);
    // end = t1 + floor(3600 / 2) = 10:30. Visit 2 is run 3..3: start = t2 + 1800 = 11:30;
    // j = n, so end = t3 = 12:00 (nothing after the last ping).
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [
            (t("2026-07-01 10:00:00"), t("2026-07-01 10:30:00")),
            (t("2026-07-01 11:30:00"), t("2026-07-01 12:00:00")),
        ]
    );
}

#[test]
fn a_single_ping_between_long_gaps_is_a_zero_length_visit() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 08:00:00", QUIET_CELL),
        ping("v", "2026-07-01 12:00:00", MARKT_CELL),
        ping("v", "2026-07-01 16:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // g1 = g2 = 4 h > max_gap = 3 h: neither side is bridged, so start = end = t2 = 12:00.
    // The Markt is in grote-markt, shopping and both categories: four such visits.
    let noon = t("2026-07-01 12:00:00");
    assert_eq!(profiles.visits.len(), 4);
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(noon, noon)]
    );
    // Dwell 0 ≥ the default min_dwell 0: it qualifies.
    assert!((0..4).all(|i| profiles.visits.dwell(i) == 0 && profiles.visits.qualifies(i)));

    // With min_dwell = 1 s the visit is still a visit, but 0 < 1: it does not qualify.
    let mut strict = week();
    strict.min_dwell = 1;
    let (_, profiles) = run(&rows, &geography, &strict);
    assert_eq!(profiles.visits.len(), 4);
    assert!((0..4).all(|i| !profiles.visits.qualifies(i)));
}

#[test]
fn a_visit_bridged_to_the_next_ping_only() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 08:00:00", QUIET_CELL),
        ping("v", "2026-07-01 12:00:00", MARKT_CELL),
        ping("v", "2026-07-01 13:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // g1 = 4 h > max_gap: start = t2 = 12:00. g2 = 1 h ≤ max_gap: end = 12:00 + 30 min.
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(t("2026-07-01 12:00:00"), t("2026-07-01 12:30:00"))]
    );
}

#[test]
fn a_visit_bridged_to_the_previous_ping_only() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 08:00:00", QUIET_CELL),
        ping("v", "2026-07-01 09:00:00", MARKT_CELL),
        ping("v", "2026-07-01 13:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // g1 = 1 h ≤ max_gap: start = 08:00 + 30 min = 08:30. g2 = 4 h > max_gap: end = t2.
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(t("2026-07-01 08:30:00"), t("2026-07-01 09:00:00"))]
    );
}

#[test]
fn a_ping_in_overlapping_zones_gives_a_visit_in_each() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 12:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // The Markt cell is in grote-markt and shopping (and so in category:culture and
    // category:retail): one visit [10:30, 11:30] in each of the four, none in museum or
    // station. Visits of one start are ordered by zone index.
    let span = (t("2026-07-01 10:30:00"), t("2026-07-01 11:30:00"));
    let zone_ids: Vec<&str> = profiles
        .visits
        .zone
        .iter()
        .map(|&z| geography.zones()[z as usize].id.as_str())
        .collect();
    assert_eq!(
        zone_ids,
        [
            "grote-markt",
            "shopping",
            "category:culture",
            "category:retail"
        ]
    );
    for id in [
        "grote-markt",
        "shopping",
        "category:culture",
        "category:retail",
    ] {
        assert_eq!(visits(&profiles, &geography, 0, id), [span], "{id}");
    }
}

#[test]
fn a_category_spanning_two_adjacent_zones_is_one_visit() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 12:00:00", STREET_CELL),
        ping("v", "2026-07-01 13:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // grote-markt (Markt only): run 2..2, [10:30, 11:30].
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(t("2026-07-01 10:30:00"), t("2026-07-01 11:30:00"))]
    );
    // museum (street only): run 3..3, [11:30, 12:30].
    assert_eq!(
        visits(&profiles, &geography, 0, "museum"),
        [(t("2026-07-01 11:30:00"), t("2026-07-01 12:30:00"))]
    );
    // category:culture is the Markt and the street: pings 2 and 3 are both in it with
    // g2 = 1 h, so one run 2..3, [10:30, 12:30]: one category visit for two zone visits.
    assert_eq!(
        visits(&profiles, &geography, 0, "category:culture"),
        [(t("2026-07-01 10:30:00"), t("2026-07-01 12:30:00"))]
    );
}

#[test]
fn leaving_and_reentering_a_zone_gives_two_visits() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 09:00:00", QUIET_CELL),
        ping("v", "2026-07-01 10:00:00", MARKT_CELL),
        ping("v", "2026-07-01 11:00:00", STREET_CELL),
        ping("v", "2026-07-01 12:00:00", MARKT_CELL),
        ping("v", "2026-07-01 13:00:00", QUIET_CELL),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // grote-markt holds pings 2 and 4 but not 3: two runs, 2..2 = [09:30, 10:30] and
    // 4..4 = [11:30, 12:30].
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [
            (t("2026-07-01 09:30:00"), t("2026-07-01 10:30:00")),
            (t("2026-07-01 11:30:00"), t("2026-07-01 12:30:00")),
        ]
    );
    // category:culture holds pings 2, 3 and 4: one run 2..4 = [09:30, 12:30].
    assert_eq!(
        visits(&profiles, &geography, 0, "category:culture"),
        [(t("2026-07-01 09:30:00"), t("2026-07-01 12:30:00"))]
    );
}

#[test]
fn min_dwell_qualifies_at_the_boundary_and_not_one_second_below() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 12:00:00", QUIET_CELL),
        ping("v", "2026-07-02 10:00:00", QUIET_CELL),
        ping("v", "2026-07-02 11:00:00", MARKT_CELL),
        ping("v", "2026-07-02 11:59:59", QUIET_CELL),
    ];
    let mut config = week();
    config.min_dwell = HOUR;
    let (_, profiles) = run(&rows, &geography, &config);
    let markt = visits(&profiles, &geography, 0, "grote-markt");
    // Day 1: [10:00 + 1800, 11:00 + 1800] = [10:30, 11:30], dwell 3600 = min_dwell: qualifies.
    // Day 2: the gap after the Markt ping is 3599 s, so end = 11:00:00 + floor(3599 / 2) =
    // 11:29:59 and dwell = 3599 < 3600: does not qualify. (12:00 on day 1 to 10:00 on
    // day 2 is 22 h > max_gap: the days do not touch.)
    assert_eq!(
        markt,
        [
            (t("2026-07-01 10:30:00"), t("2026-07-01 11:30:00")),
            (t("2026-07-02 10:30:00"), t("2026-07-02 11:29:59")),
        ]
    );
    let z = zone(&geography, "grote-markt");
    let judged: Vec<(i64, bool)> = (0..profiles.visits.len())
        .filter(|&i| profiles.visits.zone[i] == z)
        .map(|i| (profiles.visits.dwell(i), profiles.visits.qualifies(i)))
        .collect();
    assert_eq!(judged, [(3600, true), (3599, false)]);
    assert_eq!(profiles.visits.min_dwell(), HOUR);
}

#[test]
fn a_shorter_max_gap_is_followed() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", MARKT_CELL),
        ping("v", "2026-07-01 10:30:00", MARKT_CELL),
        ping("v", "2026-07-01 11:00:01", MARKT_CELL),
    ];
    let mut config = week();
    config.max_gap = 1800;
    let (_, profiles) = run(&rows, &geography, &config);
    // max_gap = 30 min. g1 = 1800 ≤ 1800 joins pings 1 and 2; g2 = 1801 > 1800 splits.
    // Visit 1: start = t1 (first ping), end = t2 = 10:30 (g2 not bridged).
    // Visit 2: start = t3 = 11:00:01 (g2 not bridged), end = t3 (last ping): zero length.
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [
            (t("2026-07-01 10:00:00"), t("2026-07-01 10:30:00")),
            (t("2026-07-01 11:00:01"), t("2026-07-01 11:00:01")),
        ]
    );
}

#[test]
fn visits_of_several_devices_are_kept_apart() {
    let geography = geography();
    let rows = [
        ping("x", "2026-07-01 10:00:00", MARKT_CELL),
        ping("y", "2026-07-01 10:30:00", QUIET_CELL),
        ping("x", "2026-07-01 11:00:00", MARKT_CELL),
        ping("y", "2026-07-01 11:00:00", MARKT_CELL),
    ];
    let (prepared, profiles) = run(&rows, &geography, &week());
    let (x, y) = (device(&prepared, "x"), device(&prepared, "y"));
    // x: both pings on the Markt, g1 = 1 h: [10:00, 11:00] (first and last ping).
    assert_eq!(
        visits(&profiles, &geography, x, "grote-markt"),
        [(t("2026-07-01 10:00:00"), t("2026-07-01 11:00:00"))]
    );
    // y: quiet at 10:30, Markt at 11:00: start = 10:30 + floor(1800 / 2) = 10:45, end = 11:00
    // (its last ping). x's pings never split or extend y's visit.
    assert_eq!(
        visits(&profiles, &geography, y, "grote-markt"),
        [(t("2026-07-01 10:45:00"), t("2026-07-01 11:00:00"))]
    );
}

#[test]
fn the_visits_batch_has_one_row_per_visit() {
    let geography = geography();
    let rows = [
        ping("v", "2026-07-01 10:00:00", QUIET_CELL),
        ping("v", "2026-07-01 11:00:00", MARKT_CELL),
        ping("v", "2026-07-01 12:00:00", STREET_CELL),
        ping("v", "2026-07-01 13:00:00", QUIET_CELL),
    ];
    let mut config = week();
    config.min_dwell = HOUR + 1;
    let (prepared, profiles) = run(&rows, &geography, &config);
    let out = profiles.visits_batch(&geography).unwrap();
    assert_eq!(out.schema(), Profiles::visits_schema());
    // As in the category case: the Markt zones start at 10:30, the museum at 11:30; rows
    // are ordered by start, then zone index (grote-markt 0, shopping 1, museum 2,
    // category:culture 4, category:retail 5).
    assert_eq!(
        strings(&out, "zone"),
        some(&[
            "grote-markt",
            "shopping",
            "category:culture",
            "category:retail",
            "museum"
        ])
    );
    let times = |name: &str| -> Vec<i64> {
        out.column_by_name(name)
            .unwrap()
            .as_primitive::<TimestampSecondType>()
            .values()
            .to_vec()
    };
    let (t1030, t1130, t1230) = (
        t("2026-07-01 10:30:00"),
        t("2026-07-01 11:30:00"),
        t("2026-07-01 12:30:00"),
    );
    assert_eq!(times("start"), [t1030, t1030, t1030, t1030, t1130]);
    assert_eq!(times("end"), [t1130, t1230, t1230, t1230, t1230]);
    // grote-markt and museum last 1 h, the zones over both cells 2 h; min_dwell = 3601 s,
    // so the 3600 s visits do not qualify.
    let dwell = out.column_by_name("dwell_s").unwrap();
    assert_eq!(
        dwell
            .as_primitive::<arrow_array::types::Int64Type>()
            .values()
            .to_vec(),
        [3600, 7200, 7200, 7200, 3600]
    );
    assert_eq!(bools(&out, "qualifies"), [false, true, true, true, false]);
    // The device column is the pseudonym, not the device index.
    let devices = out
        .column_by_name("device")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert!(
        devices
            .values()
            .iter()
            .all(|&d| d == prepared.pings().devices()[0])
    );
    assert_eq!(out.column_by_name("start").unwrap().null_count(), 0);
}

// --- Homes (§4) -------------------------------------------------------------------------

#[test]
fn home_is_the_leaf_with_the_most_nights_not_the_most_pings() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("h", &[1, 2, 3], "23:00:00", c.menen);
    for night in [4, 5] {
        for (day, hour) in [(night, 22), (night, 23), (night + 1, 0), (night + 1, 1)] {
            rows.push(ping(
                "h",
                &format!("2026-07-{day:02} {hour:02}:00:00"),
                QUIET_CELL,
            ));
        }
    }
    let (_, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // Menen: 3 nights (07-01, 07-02, 07-03), 3 night pings. Kortrijk: 2 nights (07-04 and
    // 07-05, each 22:00–01:00), 8 night pings. Most nights wins: home menen, 3 nights.
    assert_eq!(d.home[0], Some(leaf(&geography, "menen")));
    assert_eq!(d.home_nights[0], 3);
    assert_eq!(d.origin(0), Origin::Leaf(leaf(&geography, "menen")));
    // The two Kortrijk nights are spent in the study area; no daytime pings: an overnight
    // visitor.
    assert_eq!(d.study_nights[0], 2);
    assert_eq!(d.presence_days[0], 0);
    assert_eq!(d.class[0], DeviceClass::OvernightVisitor);
}

#[test]
fn equal_nights_go_to_more_night_pings() {
    let geography = geography();
    let c = cells();
    // B: 3 nights with 1 ping each, plus 5 daytime pings that are no night pings.
    let mut rows = daily("h", &[1, 2, 3], "23:00:00", c.upper_b);
    rows.extend(daily("h", &[1, 2, 3, 4, 5], "12:00:00", c.upper_b));
    // a: 3 nights (07-04, 07-05, 07-06) with 2 pings each, at 23:00 and 02:00 the day after.
    rows.extend(daily("h", &[4, 5, 6], "23:00:00", c.lower_a));
    rows.extend(daily("h", &[5, 6, 7], "02:00:00", c.lower_a));
    let (_, profiles) = run(&rows, &geography, &week());
    // 3 nights each; night pings B 3, a 6: a wins, although "B" < "a" and B has more
    // pings in all (8).
    assert_eq!(profiles.devices.home[0], Some(leaf(&geography, "a")));
    assert_eq!(profiles.devices.home_nights[0], 3);
}

#[test]
fn equal_nights_and_night_pings_go_to_the_smaller_id_in_byte_order() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("h", &[1, 2, 3], "23:00:00", c.upper_b);
    rows.extend(daily("h", &[4, 5, 6], "23:00:00", c.lower_a));
    let (prepared, profiles) = run(&rows, &geography, &week());
    // 3 nights and 3 night pings each. Byte order: "B" is 0x42, "a" is 0x61, so "B" wins
    // (a case-insensitive or table-order comparison would pick "a").
    assert_eq!(profiles.devices.home[0], Some(leaf(&geography, "B")));
    assert_eq!(
        origin_name(profiles.devices.origin(0), prepared.pings(), &geography),
        "B"
    );
}

#[test]
fn exactly_min_nights_make_a_home_and_one_fewer_do_not() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("three", &[1, 2, 3], "23:00:00", c.menen);
    rows.extend(daily("two", &[1, 2], "23:00:00", c.menen));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    let (three, two) = (device(&prepared, "three"), device(&prepared, "two"));
    // 3 nights = min_nights (default 3): home menen.
    assert_eq!(d.home[three], Some(leaf(&geography, "menen")));
    assert_eq!(d.home_nights[three], 3);
    // 2 nights < 3: no home, 0 home nights, origin unknown.
    assert_eq!(d.home[two], None);
    assert_eq!(d.home_nights[two], 0);
    assert_eq!(d.origin(two), Origin::Unknown);
}

#[test]
fn a_given_min_nights_is_followed() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("four", &[1, 2, 3, 4], "23:00:00", c.menen);
    rows.extend(daily("three", &[1, 2, 3], "23:00:00", c.menen));
    let mut config = week();
    config.min_nights = 4;
    let (prepared, profiles) = run(&rows, &geography, &config);
    let d = &profiles.devices;
    // min_nights = 4: 4 nights make a home, 3 do not.
    assert_eq!(
        d.home[device(&prepared, "four")],
        Some(leaf(&geography, "menen"))
    );
    assert_eq!(d.home[device(&prepared, "three")], None);
    // min_nights = 1: a single night makes a home.
    config.min_nights = 1;
    let rows = daily("one", &[1], "23:00:00", c.menen);
    let (_, profiles) = run(&rows, &geography, &config);
    assert_eq!(profiles.devices.home[0], Some(leaf(&geography, "menen")));
    assert_eq!(profiles.devices.home_nights[0], 1);
}

#[test]
fn pings_in_no_leaf_never_make_a_home() {
    let geography = geography();
    let c = cells();
    // "few": 5 nights outside every leaf, 2 nights in Menen.
    let mut rows = daily("few", &[1, 2, 3, 4, 5], "23:00:00", OUTSIDE_CELL);
    rows.extend(daily("few", &[6, 7], "23:00:00", c.menen));
    // "enough": 5 nights outside (at 23:00 on 07-01..07-05), 3 in Menen (03:00 on 07-02,
    // 07-03, 07-04, so the nights of 07-01, 07-02, 07-03).
    rows.extend(daily("enough", &[1, 2, 3, 4, 5], "23:00:00", OUTSIDE_CELL));
    rows.extend(daily("enough", &[2, 3, 4], "03:00:00", c.menen));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // few: `unknown` has the most nights but is never a home; Menen's 2 < 3: no home.
    let few = device(&prepared, "few");
    assert_eq!(d.home[few], None);
    assert_eq!(d.origin(few), Origin::Unknown);
    // enough: Menen's 3 nights make the home, whatever the 5 nights outside.
    let enough = device(&prepared, "enough");
    assert_eq!(d.home[enough], Some(leaf(&geography, "menen")));
    assert_eq!(d.home_nights[enough], 3);
}

#[test]
fn the_nine_hour_night_of_the_october_change() {
    let geography = geography();
    let c = cells();
    // Brussels leaves summer time at 2026-10-25 03:00 CEST, back to 02:00 CET. The night of
    // 10-24 runs from 22:00 CEST (20:00Z) to 06:00 CET (05:00Z): 9 h.
    assert_eq!(
        t("2026-10-25 06:00:00") - t("2026-10-24 22:00:00"),
        9 * HOUR
    );
    // A local 02:30 that occurs twice is read as the earlier, CEST one (§1.4).
    assert_eq!(t("2026-10-25 02:30:00"), t("2026-10-25 02:30:00+02:00"));
    let rows = [
        // home: 05:59:59 CET on 10-25 (04:59:59Z) is in the night of 10-24 (a night taken
        // as 8 h would have ended at 04:00Z); with the nights of 10-25 and 10-26 that makes
        // 3 nights in Menen.
        ping("home", "2026-10-25 05:59:59", c.menen),
        ping("home", "2026-10-25 23:00:00", c.menen),
        ping("home", "2026-10-26 23:00:00", c.menen),
        // town: both 02:30s and 05:30 CET are all in the one night of 10-24; 06:00 CET is
        // the daytime of 10-25.
        ping("town", "2026-10-25 02:30:00+02:00", QUIET_CELL),
        ping("town", "2026-10-25 02:30:00+01:00", QUIET_CELL),
        ping("town", "2026-10-25 05:30:00", QUIET_CELL),
        ping("town", "2026-10-25 06:00:00", QUIET_CELL),
    ];
    let config = config_for("2026-10-24", "2026-10-28");
    let (prepared, profiles) = run(&rows, &geography, &config);
    let d = &profiles.devices;
    let home = device(&prepared, "home");
    // 3 nights of presence in Menen = min_nights: home menen.
    assert_eq!(d.home[home], Some(leaf(&geography, "menen")));
    assert_eq!(d.home_nights[home], 3);
    let town = device(&prepared, "town");
    // One night spent in Kortrijk (three night pings, one night) and one presence day.
    assert_eq!(d.study_nights[town], 1);
    assert_eq!(d.presence_days[town], 1);
    // 1 presence day < 5, 1 night in the study area, no home: an overnight visitor.
    assert_eq!(d.class[town], DeviceClass::OvernightVisitor);
}

#[test]
fn the_seven_hour_night_of_the_march_change() {
    let geography = geography();
    let c = cells();
    // Brussels goes to summer time at 2026-03-29 02:00 CET, on to 03:00 CEST. The night of
    // 03-28 runs from 22:00 CET (21:00Z) to 06:00 CEST (04:00Z): 7 h.
    assert_eq!(
        t("2026-03-29 06:00:00") - t("2026-03-28 22:00:00"),
        7 * HOUR
    );
    // A local 02:30 that does not exist moves forward by the gap, to 03:30 CEST (01:30Z).
    assert_eq!(t("2026-03-29 02:30:00"), t("2026-03-29 03:30:00"));
    let rows = [
        // home: 05:59:59 CEST (03:59:59Z) is in the night of 03-28; with 03-27 and 03-29,
        // 3 nights in Menen.
        ping("home", "2026-03-27 23:00:00", c.menen),
        ping("home", "2026-03-29 05:59:59", c.menen),
        ping("home", "2026-03-29 23:00:00", c.menen),
        // day: 06:00 CEST (04:00Z) is already daytime (a night taken as 8 h would have run
        // to 05:00Z), so only 2 nights in Menen.
        ping("day", "2026-03-27 23:00:00", c.menen),
        ping("day", "2026-03-29 06:00:00", c.menen),
        ping("day", "2026-03-29 23:00:00", c.menen),
        // town: the moved 02:30 is in the night of 03-28, 06:00 CEST in the daytime of 03-29.
        ping("town", "2026-03-29 02:30:00", QUIET_CELL),
        ping("town", "2026-03-29 06:00:00", QUIET_CELL),
    ];
    let config = config_for("2026-03-27", "2026-03-31");
    let (prepared, profiles) = run(&rows, &geography, &config);
    let d = &profiles.devices;
    let home = device(&prepared, "home");
    assert_eq!(d.home[home], Some(leaf(&geography, "menen")));
    assert_eq!(d.home_nights[home], 3);
    // 2 nights < min_nights 3: no home.
    assert_eq!(d.home[device(&prepared, "day")], None);
    let town = device(&prepared, "town");
    assert_eq!(d.study_nights[town], 1);
    assert_eq!(d.presence_days[town], 1);
}

#[test]
fn nights_sticking_out_of_the_period_count_with_their_pings() {
    let geography = geography();
    let rows = [
        // 03:00 on the period's first day: the night of 06-30, which starts before the
        // period and counts with this ping.
        ping("edge", "2026-07-01 03:00:00", QUIET_CELL),
        ping("edge", "2026-07-02 23:00:00", QUIET_CELL),
        // 23:00 on the period's last day: the night of 07-03, which ends after it.
        ping("edge", "2026-07-03 23:00:00", QUIET_CELL),
        // 01:00 on 07-04 is outside the period [07-01, 07-04): dropped, adds nothing.
        ping("edge", "2026-07-04 01:00:00", QUIET_CELL),
    ];
    let config = config_for("2026-07-01", "2026-07-04");
    let (prepared, profiles) = run(&rows, &geography, &config);
    assert_eq!(prepared.report().dropped.outside_period, 1);
    let d = &profiles.devices;
    // Nights of 06-30, 07-02 and 07-03 in Kortrijk: 3 = min_nights, a resident, all three
    // nights spent in the study area.
    assert_eq!(d.home[0], Some(leaf(&geography, "kortrijk")));
    assert_eq!(d.home_nights[0], 3);
    assert_eq!(d.study_nights[0], 3);
    assert_eq!(d.presence_days[0], 0);
    assert_eq!(d.class[0], DeviceClass::Resident);
}

// --- Roamers (§4) -----------------------------------------------------------------------

#[test]
fn a_roamer_country_is_the_most_frequent_tied_to_the_smaller_code() {
    let geography = geography();
    let rows = [
        ping("r", "2026-07-01 23:00:00", QUIET_CELL).country("nl"),
        ping("r", "2026-07-02 23:00:00", QUIET_CELL).country("NL"),
        ping("r", "2026-07-03 23:00:00", QUIET_CELL).country("FR"),
        ping("r", "2026-07-02 12:00:00", QUIET_CELL).country("FR"),
        ping("r", "2026-07-03 12:00:00", QUIET_CELL).country(""),
        ping("r", "2026-07-04 12:00:00", QUIET_CELL),
    ];
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // Non-empty countries: "nl" is upper-cased to NL, so NL 2 and FR 2 (the empty and the
    // null country do not count). A tie goes to the smaller code: FR.
    assert_eq!(prepared.pings().country_code(d.country[0]), Some("FR"));
    // FR ≠ BE: a roamer, origin country:FR, and no home although its 3 nights in Kortrijk
    // would make one.
    assert!(d.roamer[0]);
    assert_eq!(d.home[0], None);
    assert_eq!(d.home_nights[0], 0);
    assert!(matches!(d.origin(0), Origin::Country(_)));
    assert_eq!(
        origin_name(d.origin(0), prepared.pings(), &geography),
        "country:FR"
    );
    // Presence days 07-02, 07-03, 07-04 (3 < 5) and 3 nights in Kortrijk: never a
    // resident, an overnight visitor.
    assert_eq!(d.presence_days[0], 3);
    assert_eq!(d.study_nights[0], 3);
    assert_eq!(d.class[0], DeviceClass::OvernightVisitor);
}

#[test]
fn the_home_country_in_lower_case_is_not_a_roamer() {
    let geography = geography();
    let rows: Vec<Ping> = daily("d", &[1, 2, 3], "23:00:00", QUIET_CELL)
        .into_iter()
        .map(|p| p.country("be"))
        .collect();
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // "be" upper-cases to BE = home_country: not a roamer; 3 nights in Kortrijk: resident.
    assert_eq!(prepared.pings().country_code(d.country[0]), Some("BE"));
    assert!(!d.roamer[0]);
    assert_eq!(d.home[0], Some(leaf(&geography, "kortrijk")));
    assert_eq!(d.class[0], DeviceClass::Resident);
}

#[test]
fn frequency_decides_the_country_before_code_order() {
    let geography = geography();
    let countries = |subscriber: &str, codes: &[&str]| -> Vec<Ping> {
        codes
            .iter()
            .enumerate()
            .map(|(k, code)| {
                ping(subscriber, &format!("2026-07-01 1{k}:00:00"), QUIET_CELL).country(code)
            })
            .collect()
    };
    let mut rows = countries("domestic", &["be", "BE", "be", "NL", "NL"]);
    rows.extend(countries("dutch", &["NL", "NL", "NL", "DE", "DE"]));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // domestic: BE 3, NL 2: country BE, not a roamer.
    let domestic = device(&prepared, "domestic");
    assert_eq!(
        prepared.pings().country_code(d.country[domestic]),
        Some("BE")
    );
    assert!(!d.roamer[domestic]);
    assert_eq!(d.origin(domestic), Origin::Unknown);
    // dutch: NL 3, DE 2: NL although DE is the smaller code.
    let dutch = device(&prepared, "dutch");
    assert_eq!(prepared.pings().country_code(d.country[dutch]), Some("NL"));
    assert!(d.roamer[dutch]);
}

#[test]
fn a_roamer_can_be_regular() {
    let geography = geography();
    let mut rows = daily("r", &[1, 2, 3, 4, 5], "12:00:00", QUIET_CELL);
    rows.extend(daily("r", &[1, 2, 3], "23:00:00", QUIET_CELL));
    let rows: Vec<Ping> = rows.into_iter().map(|p| p.country("DE")).collect();
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // A DE roamer with 5 presence days ≥ 5: regular (not resident, whatever its nights).
    assert!(d.roamer[0]);
    assert_eq!(d.presence_days[0], 5);
    assert_eq!(d.class[0], DeviceClass::Regular);
    assert_eq!(
        origin_name(d.origin(0), prepared.pings(), &geography),
        "country:DE"
    );
}

#[test]
fn a_roamer_can_be_a_day_visitor() {
    let geography = geography();
    let rows = [ping("r", "2026-07-01 12:00:00", MARKT_CELL).country("NL")];
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // One daytime ping in Kortrijk, no night: 1 presence day < 5, no night: day visitor.
    assert_eq!(d.class[0], DeviceClass::DayVisitor);
    assert_eq!(
        origin_name(d.origin(0), prepared.pings(), &geography),
        "country:NL"
    );
    // Its visit counts like anyone's: a zero-length visit at its only ping.
    let noon = t("2026-07-01 12:00:00");
    assert_eq!(
        visits(&profiles, &geography, 0, "grote-markt"),
        [(noon, noon)]
    );
}

#[test]
fn roaming_is_judged_against_the_configured_home_country() {
    let geography = geography();
    let mut rows = daily("dutch", &[1, 2, 3], "23:00:00", QUIET_CELL);
    rows.extend(daily("belgian", &[1, 2, 3], "23:00:00", QUIET_CELL));
    let rows: Vec<Ping> = rows
        .into_iter()
        .map(|p| {
            let code = if p.subscriber.as_deref() == Some("dutch") {
                "nl"
            } else {
                "BE"
            };
            p.country(code)
        })
        .collect();
    let mut config = week();
    "nl".clone_into(&mut config.home_country);
    let (prepared, profiles) = run(&rows, &geography, &config);
    let d = &profiles.devices;
    // home_country "nl" is upper-cased to NL: the NL device is domestic (a resident with
    // 3 nights in Kortrijk), the BE device a roamer.
    let dutch = device(&prepared, "dutch");
    assert!(!d.roamer[dutch]);
    assert_eq!(d.class[dutch], DeviceClass::Resident);
    let belgian = device(&prepared, "belgian");
    assert!(d.roamer[belgian]);
    assert_eq!(
        origin_name(d.origin(belgian), prepared.pings(), &geography),
        "country:BE"
    );
    assert_eq!(d.class[belgian], DeviceClass::OvernightVisitor);
}

// --- In the study area (§4) -------------------------------------------------------------

#[test]
fn a_border_resident_scattering_into_the_study_area_is_not_present() {
    let geography = geography();
    let c = cells();
    let rows = [
        ping("b", "2026-07-01 09:00:00", c.menen),
        ping("b", "2026-07-01 10:00:00", QUIET_CELL),
        ping("b", "2026-07-01 11:00:00", c.menen),
        ping("b", "2026-07-01 12:00:00", QUIET_CELL),
        ping("b", "2026-07-01 13:00:00", c.menen),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // Daytime of 07-01: 2 pings in the study area < 3 in Menen: not present.
    assert_eq!(profiles.devices.presence_days[0], 0);
    assert_eq!(profiles.devices.class[0], DeviceClass::DayVisitor);
}

#[test]
fn a_commuter_all_day_in_the_study_area_is_present() {
    let geography = geography();
    let c = cells();
    let days = [1, 2, 3, 4, 5];
    let mut rows = daily("c", &days, "07:00:00", c.menen);
    for hour in 8..=17 {
        rows.extend(daily("c", &days, &format!("{hour:02}:00:00"), QUIET_CELL));
    }
    rows.extend(daily("c", &days, "18:00:00", c.menen));
    rows.extend(daily("c", &days, "23:00:00", c.menen));
    let (_, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // Each daytime: 10 pings in Kortrijk ≥ 2 in Menen: 5 presence days. Home Menen (5
    // nights). Not resident, 5 ≥ usual_env_min_days 5: regular.
    assert_eq!(d.presence_days[0], 5);
    assert_eq!(d.home[0], Some(leaf(&geography, "menen")));
    assert_eq!(d.study_nights[0], 0);
    assert_eq!(d.class[0], DeviceClass::Regular);
}

#[test]
fn an_exact_tie_goes_to_the_study_area() {
    let geography = geography();
    let c = cells();
    let rows = [
        ping("e", "2026-07-01 10:00:00", QUIET_CELL),
        ping("e", "2026-07-01 11:00:00", c.menen),
        ping("e", "2026-07-01 12:00:00", QUIET_CELL),
        ping("e", "2026-07-01 13:00:00", c.menen),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // 2 in Kortrijk ≥ 2 in Menen: present.
    assert_eq!(profiles.devices.presence_days[0], 1);
}

#[test]
fn study_area_leaves_are_counted_together() {
    let c = cells();
    let rows = [
        ping("s", "2026-07-01 09:00:00", QUIET_CELL),
        ping("s", "2026-07-01 10:00:00", QUIET_CELL),
        ping("s", "2026-07-01 11:00:00", c.harelbeke),
        ping("s", "2026-07-01 12:00:00", c.harelbeke),
        ping("s", "2026-07-01 13:00:00", c.menen),
        ping("s", "2026-07-01 14:00:00", c.menen),
        ping("s", "2026-07-01 15:00:00", c.menen),
    ];
    // Study area Kortrijk + Harelbeke: 2 + 2 = 4 ≥ 3 in Menen: present.
    let two = two_leaf_geography();
    let (_, profiles) = run(&rows, &two, &week());
    assert_eq!(profiles.devices.presence_days[0], 1);
    // Study area Kortrijk alone: 2 < max(Harelbeke 2, Menen 3) = 3: not present.
    let one = geography();
    let (_, profiles) = run(&rows, &one, &week());
    assert_eq!(profiles.devices.presence_days[0], 0);
}

#[test]
fn other_leaves_are_not_counted_together() {
    let geography = geography();
    let c = cells();
    let rows = [
        ping("s", "2026-07-01 10:00:00", QUIET_CELL),
        ping("s", "2026-07-01 11:00:00", QUIET_CELL),
        ping("s", "2026-07-01 12:00:00", c.menen),
        ping("s", "2026-07-01 13:00:00", c.menen),
        ping("s", "2026-07-01 14:00:00", c.upper_b),
        ping("s", "2026-07-01 15:00:00", c.upper_b),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    // 2 in Kortrijk against the most in any single other leaf, max(Menen 2, B 2) = 2 (not
    // their sum 4): present.
    assert_eq!(profiles.devices.presence_days[0], 1);
}

#[test]
fn pings_in_no_leaf_do_not_count_for_presence() {
    let geography = geography();
    let mut rows = vec![ping("scatter", "2026-07-01 12:00:00", QUIET_CELL)];
    for hour in 8..=11 {
        rows.push(ping(
            "scatter",
            &format!("2026-07-01 {hour:02}:00:00"),
            OUTSIDE_CELL,
        ));
    }
    rows.extend(daily("away", &[1], "12:00:00", OUTSIDE_CELL));
    rows.extend(daily("away", &[1], "23:00:00", OUTSIDE_CELL));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // scatter: 1 in Kortrijk, none in any other leaf (4 in no leaf do not count): 1 ≥ 0,
    // present.
    assert_eq!(d.presence_days[device(&prepared, "scatter")], 1);
    // away: no ping in the study area, by day or night: neither present nor a night.
    let away = device(&prepared, "away");
    assert_eq!(d.presence_days[away], 0);
    assert_eq!(d.study_nights[away], 0);
    assert_eq!(d.class[away], DeviceClass::DayVisitor);
}

#[test]
fn nights_in_the_study_area_follow_the_same_rule() {
    let geography = geography();
    let c = cells();
    let rows = [
        // Night of 07-01: Kortrijk 1, Menen 2: not in the study area.
        ping("n", "2026-07-01 23:00:00", QUIET_CELL),
        ping("n", "2026-07-02 00:00:00", c.menen),
        ping("n", "2026-07-02 01:00:00", c.menen),
        // Night of 07-02: Kortrijk 2, Menen 2: a tie, in the study area.
        ping("n", "2026-07-02 23:00:00", QUIET_CELL),
        ping("n", "2026-07-03 00:00:00", QUIET_CELL),
        ping("n", "2026-07-03 01:00:00", c.menen),
        ping("n", "2026-07-03 02:00:00", c.menen),
    ];
    let (_, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    assert_eq!(d.study_nights[0], 1);
    // Night presence counts any ping: 2 nights in each leaf, < 3, so no home; one night
    // in the study area: an overnight visitor.
    assert_eq!(d.home[0], None);
    assert_eq!(d.class[0], DeviceClass::OvernightVisitor);
}

// --- Classes (§4) -----------------------------------------------------------------------

#[test]
fn a_home_in_the_study_area_is_a_resident() {
    let geography = geography();
    let rows = daily("r", &[1, 2, 3], "23:00:00", QUIET_CELL);
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // 3 nights in Kortrijk: home Kortrijk, in the study area: resident.
    assert_eq!(d.class[0], DeviceClass::Resident);
    assert_eq!(d.origin(0), Origin::Leaf(leaf(&geography, "kortrijk")));
    assert_eq!(
        origin_name(d.origin(0), prepared.pings(), &geography),
        "kortrijk"
    );
}

#[test]
fn a_home_in_a_study_area_of_two_leaves_is_a_resident() {
    let geography = two_leaf_geography();
    let c = cells();
    let rows = daily("r", &[1, 2, 3], "23:00:00", c.harelbeke);
    let (_, profiles) = run(&rows, &geography, &week());
    // Home Harelbeke, which is in the study area Kortrijk + Harelbeke: resident.
    assert_eq!(
        profiles.devices.home[0],
        Some(leaf(&geography, "harelbeke"))
    );
    assert_eq!(profiles.devices.class[0], DeviceClass::Resident);
}

#[test]
fn the_default_usual_environment_threshold_in_a_week() {
    let geography = geography();
    let mut rows = daily("five", &[1, 2, 3, 4, 5], "12:00:00", QUIET_CELL);
    rows.extend(daily("four", &[1, 2, 3, 4], "12:00:00", QUIET_CELL));
    let (prepared, profiles) = run(&rows, &geography, &week());
    // D_p = 7: max(5, ceil(7 / 4)) = 5.
    assert_eq!(profiles.usual_env_min_days, 5);
    let d = &profiles.devices;
    // 5 presence days ≥ 5: regular; 4 < 5 and no night: day visitor.
    assert_eq!(d.class[device(&prepared, "five")], DeviceClass::Regular);
    assert_eq!(d.class[device(&prepared, "four")], DeviceClass::DayVisitor);
}

#[test]
fn the_default_usual_environment_threshold_rounds_a_quarter_of_the_days_up() {
    let geography = geography();
    let days: Vec<u32> = (1..=6).collect();
    let mut rows = daily("six", &days, "12:00:00", QUIET_CELL);
    rows.extend(daily("five", &days[..5], "12:00:00", QUIET_CELL));
    let config = config_for("2026-07-01", "2026-07-22");
    let (prepared, profiles) = run(&rows, &geography, &config);
    // D_p = 21: ceil(21 / 4) = ceil(5.25) = 6 > 5, so the threshold is 6.
    assert_eq!(profiles.usual_env_min_days, 6);
    let d = &profiles.devices;
    assert_eq!(d.class[device(&prepared, "six")], DeviceClass::Regular);
    assert_eq!(d.class[device(&prepared, "five")], DeviceClass::DayVisitor);
}

#[test]
fn a_given_usual_environment_threshold_is_followed() {
    let geography = geography();
    let mut rows = daily("two", &[1, 2], "12:00:00", QUIET_CELL);
    rows.extend(daily("one", &[1], "12:00:00", QUIET_CELL));
    let mut config = week();
    config.usual_env_min_days = Some(2);
    let (prepared, profiles) = run(&rows, &geography, &config);
    assert_eq!(profiles.usual_env_min_days, 2);
    let d = &profiles.devices;
    // 2 presence days ≥ 2: regular; 1 < 2: day visitor.
    assert_eq!(d.class[device(&prepared, "two")], DeviceClass::Regular);
    assert_eq!(d.class[device(&prepared, "one")], DeviceClass::DayVisitor);
}

#[test]
fn a_night_in_the_study_area_makes_an_overnight_visitor() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("o", &[1, 2, 3], "23:00:00", c.menen);
    rows.extend(daily("o", &[4], "23:00:00", QUIET_CELL));
    rows.extend(daily("o", &[5, 6], "12:00:00", QUIET_CELL));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // Home Menen (3 nights against Kortrijk's 1), not in the study area; 2 presence days
    // < 5; 1 night in Kortrijk ≥ 1: overnight visitor from Menen.
    assert_eq!(d.study_nights[0], 1);
    assert_eq!(d.presence_days[0], 2);
    assert_eq!(d.class[0], DeviceClass::OvernightVisitor);
    assert_eq!(
        origin_name(d.origin(0), prepared.pings(), &geography),
        "menen"
    );
}

#[test]
fn everyone_else_is_a_day_visitor() {
    let geography = geography();
    let c = cells();
    let mut rows = daily("d", &[1, 2, 3], "23:00:00", c.menen);
    rows.extend(daily("d", &[2], "12:00:00", MARKT_CELL));
    let (_, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    // Home Menen, 1 presence day < 5, no night in Kortrijk: day visitor.
    assert_eq!(d.presence_days[0], 1);
    assert_eq!(d.study_nights[0], 0);
    assert_eq!(d.class[0], DeviceClass::DayVisitor);
    assert!(d.class[0].is_visitor());
}

#[test]
fn resident_comes_before_regular_and_regular_before_overnight() {
    let geography = geography();
    let c = cells();
    // res: home Kortrijk (3 nights) and 7 presence days ≥ 5: still resident.
    let mut rows = daily("res", &[1, 2, 3], "23:00:00", QUIET_CELL);
    rows.extend(daily("res", &[1, 2, 3, 4, 5, 6, 7], "12:00:00", QUIET_CELL));
    // reg: home Menen (3 nights against Kortrijk's 1), 5 presence days ≥ 5 and a night in
    // Kortrijk: regular, not overnight visitor.
    rows.extend(daily("reg", &[1, 2, 3], "23:00:00", c.menen));
    rows.extend(daily("reg", &[5], "23:00:00", QUIET_CELL));
    rows.extend(daily("reg", &[1, 2, 3, 4, 5], "12:00:00", QUIET_CELL));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    let res = device(&prepared, "res");
    assert_eq!(d.presence_days[res], 7);
    assert_eq!(d.class[res], DeviceClass::Resident);
    let reg = device(&prepared, "reg");
    assert_eq!(d.home[reg], Some(leaf(&geography, "menen")));
    assert_eq!(d.study_nights[reg], 1);
    assert_eq!(d.class[reg], DeviceClass::Regular);
}

// --- Origins and the devices table (§4) -------------------------------------------------

#[test]
fn origins_and_the_devices_batch() {
    let geography = geography();
    // res: a resident of Kortrijk, its SIM says "be".
    let mut rows: Vec<Ping> = daily("res", &[1, 2, 3], "23:00:00", QUIET_CELL)
        .into_iter()
        .map(|p| p.country("be"))
        .collect();
    // nl: a roamer with one daytime ping.
    rows.push(ping("nl", "2026-07-02 12:00:00", MARKT_CELL).country("nl"));
    // nobody: one daytime ping, no country, no home.
    rows.push(ping("nobody", "2026-07-02 12:00:00", MARKT_CELL));
    let (prepared, profiles) = run(&rows, &geography, &week());
    let d = &profiles.devices;
    let (res, nl, nobody) = (
        device(&prepared, "res"),
        device(&prepared, "nl"),
        device(&prepared, "nobody"),
    );
    assert_eq!(d.origin(res), Origin::Leaf(leaf(&geography, "kortrijk")));
    assert!(matches!(d.origin(nl), Origin::Country(_)));
    assert_eq!(d.origin(nobody), Origin::Unknown);

    let out = profiles
        .devices_batch(prepared.pings(), &geography)
        .unwrap();
    assert_eq!(out.schema(), Profiles::devices_schema());
    assert_eq!(out.num_rows(), 3);
    let at = |values: Vec<Option<String>>| -> [Option<String>; 3] {
        [
            values[res].clone(),
            values[nl].clone(),
            values[nobody].clone(),
        ]
    };
    let pick = |values: Vec<u32>| [values[res], values[nl], values[nobody]];
    let text = |v: &str| Some(v.to_owned());
    // res: resident, origin and home kortrijk, 3 home nights, 0 presence days, 3 nights in
    // the study area, country BE, not a roamer.
    // nl: day visitor (1 presence day, no night), origin country:NL, home null, country NL.
    // nobody: day visitor, origin unknown, home null, country null.
    assert_eq!(
        at(strings(&out, "class")),
        [text("resident"), text("day_visitor"), text("day_visitor")]
    );
    assert_eq!(
        at(strings(&out, "origin")),
        [text("kortrijk"), text("country:NL"), text("unknown")]
    );
    assert_eq!(at(strings(&out, "home")), [text("kortrijk"), None, None]);
    assert_eq!(pick(u32s(&out, "home_nights")), [3, 0, 0]);
    assert_eq!(pick(u32s(&out, "presence_days")), [0, 1, 1]);
    assert_eq!(pick(u32s(&out, "nights")), [3, 0, 0]);
    assert_eq!(at(strings(&out, "country")), [text("BE"), text("NL"), None]);
    let roamer = bools(&out, "roamer");
    assert_eq!(
        [roamer[res], roamer[nl], roamer[nobody]],
        [false, true, false]
    );
    let devices = out
        .column_by_name("device")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert_eq!(devices.values().to_vec(), prepared.pings().devices());
}

#[test]
fn no_pings_give_no_profiles() {
    let geography = geography();
    let config = config();
    let (_, profiles) = run(&[], &geography, &config);
    // Without a given period and without pings there is no period and nobody.
    assert!(profiles.devices.is_empty());
    assert!(profiles.visits.is_empty());
    assert_eq!(profiles.period, None);
}
