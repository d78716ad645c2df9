//! Releases through the public API (method §6–9): buckets and their measures, the grid,
//! classes and origin levels, disclosure control, extrapolation, bad options and the
//! report.
//!
//! Disclosure control (§7) is tested twice: directly on the rules with hand-made cells,
//! one test per rule (in the crate, `disclosure::tests`), and end to end through
//! [`Study::release`] with pings placed by hand. Every expected number is worked out in the comment above
//! its assertion. Times are Brussels local time unless they carry an offset; in July
//! Brussels is at UTC+2.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use crowdtally::{
    Aggregate, BucketKind, Config, DeviceClass, DisclosureCounts, Estimate, Geography, Measures,
    OptOut, Release, ReleaseClass, ReleaseRow, ReleaseSpec, RowMeasures, RunOptions, Study,
    SubscriberId, SubscriberSource,
};
use crowdtally_harness::{
    KEY, MARKT_CELL, OUTSIDE_CELL, Ping, QUIET_CELL, STATION_CELL, STREET_CELL, batch, brussels,
    config, four_level_tree, free_neighbours_of_kortrijk, local_period, prepare, quiet_menen_cell,
};
use h3o::{CellIndex, Resolution};

const HOUR: i64 = 3_600;

// --- Fixtures ---------------------------------------------------------------------------

/// A Brussels local time (or a time with an offset) in epoch seconds.
fn t(text: &str) -> i64 {
    brussels(text)
}

/// The defaults with the given period, threshold `k` and `min_nights = 1` (one night
/// ping makes a home).
fn config_for(start: &str, end: &str, k: u32) -> Config {
    let mut config = config();
    config.period = Some(local_period(start, end));
    config.k = k;
    config.min_nights = 1;
    config
}

/// The default options with another bucket kind.
fn options(bucket: BucketKind) -> ReleaseSpec {
    ReleaseSpec::new(bucket)
}

/// The study of a geography and configuration.
fn study(geography: &Geography, config: &Config) -> Study {
    Study::new(geography.clone(), config.clone()).unwrap()
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

/// Resolution-9 cells in the leaves that have no fixture cell of their own (their
/// resolution-7 cells are free neighbours of Kortrijk), and in `menen` outside every
/// zone. `QUIET_CELL` is `kortrijk`'s, outside every zone.
struct Homes {
    gent: u64,
    aalst: u64,
    brugge: u64,
    brussel: u64,
    menen: u64,
}

fn homes() -> Homes {
    let ring = free_neighbours_of_kortrijk();
    let inner = |raw: u64| -> u64 {
        CellIndex::try_from(raw)
            .unwrap()
            .center_child(Resolution::Nine)
            .unwrap()
            .into()
    };
    Homes {
        gent: inner(ring[0]),
        aalst: inner(ring[1]),
        brugge: inner(ring[2]),
        brussel: inner(ring[3]),
        menen: quiet_menen_cell(),
    }
}

/// The region tree of every test here, [`four_level_tree`] (2900 inhabitants in all;
/// study area `kortrijk`), with one zone `markt` on `MARKT_CELL` (no category).
fn geography() -> Geography {
    four_level_tree()
        .zone("markt", None, &[MARKT_CELL])
        .build()
        .unwrap()
}

/// A ping at a local time in a cell.
fn ping(who: &str, time: &str, cell: u64) -> Ping {
    Ping::in_cell(who, t(time), cell)
}

/// A domestic device: with a home cell, one ping there at 2026-07-01 03:00 (the night of
/// 30 June: with `min_nights = 1` that night makes the home), then one ping on the Markt
/// at each time. Without a home cell it has no night ping and so no home (`unknown`).
fn visitor(who: &str, home: Option<u64>, times: &[&str]) -> Vec<Ping> {
    let mut rows: Vec<Ping> = home
        .map(|cell| ping(who, "2026-07-01 03:00:00", cell))
        .into_iter()
        .collect();
    rows.extend(times.iter().map(|time| ping(who, time, MARKT_CELL)));
    rows
}

/// An inbound roamer with one ping on the Markt at each time.
fn roamer(who: &str, country: &str, times: &[&str]) -> Vec<Ping> {
    times
        .iter()
        .map(|time| ping(who, time, MARKT_CELL).country(country))
        .collect()
}

/// The Markt visit most tests use: pings at 10:00 and 11:00 on 2026-07-01, more than
/// `max_gap` after the 03:00 home ping, so the visit is exactly [10:00, 11:00]: one
/// visit, 3600 s, in the band [1h, 2h).
const ONE_HOUR: [&str; 2] = ["2026-07-01 10:00:00", "2026-07-01 11:00:00"];

/// Runs the whole method and checks every group's invariants.
fn run(rows: &[Ping], geography: &Geography, config: &Config, options: &ReleaseSpec) -> Release {
    let release = study(geography, config)
        .release([Ok(batch(rows))], options, &RunOptions::default())
        .expect("release");
    assert_groups(&release, u64::from(config.k));
    release
}

fn m(devices: u64, visits: u64, dwell_s: i64, bands: [u64; 5]) -> Measures {
    Measures {
        devices,
        visits,
        dwell_s,
        bands,
        // Not shown in a table: what §7 step 6 looks at, worked out per test.
        band_devices: bands,
    }
}

/// Measures as a release shows them when nothing is withheld: bands on the total row
/// (`*`) only, none on origin rows (§7 step 6).
fn as_shown(origin: &str, measures: Measures) -> RowMeasures {
    RowMeasures {
        devices: measures.devices,
        visits: measures.visits,
        dwell_s: measures.dwell_s,
        bands: if origin == "*" {
            measures.bands.map(Some)
        } else {
            [None; 5]
        },
    }
}

/// `n` devices with one visit of one hour each.
fn hours(n: u64) -> Measures {
    m(n, n, 3_600 * n as i64, [0, n, 0, 0, 0])
}

/// A released row as (bucket_start, class, origin, measures).
type Shown = (String, String, String, RowMeasures);

/// The released rows of one zone, in release order.
fn released(release: &Release, zone: &str) -> Vec<Shown> {
    release
        .rows
        .iter()
        .filter(|row| &*row.zone == zone && !row.suppressed)
        .map(|row| {
            (
                row.bucket_start.to_string(),
                row.class.name().to_owned(),
                row.origin.clone(),
                row.measures.expect("a released row has its measures"),
            )
        })
        .collect()
}

fn shown(expected: &[(&str, &str, &str, Measures)]) -> Vec<Shown> {
    expected
        .iter()
        .map(|&(bucket, class, origin, measures)| {
            (
                bucket.to_owned(),
                class.to_owned(),
                origin.to_owned(),
                as_shown(origin, measures),
            )
        })
        .collect()
}

/// The released origin rows of the only group of a release: (origin, measures).
fn origins_of(release: &Release) -> Vec<(String, RowMeasures)> {
    release
        .rows
        .iter()
        .filter(|row| !row.suppressed)
        .map(|row| (row.origin.clone(), row.measures.unwrap()))
        .collect()
}

fn named(expected: &[(&str, Measures)]) -> Vec<(String, RowMeasures)> {
    expected
        .iter()
        .map(|&(origin, measures)| (origin.to_owned(), as_shown(origin, measures)))
        .collect()
}

/// The bucket labels of the groups of one zone and the first class, in order.
fn labels(release: &Release, zone: &str) -> Vec<String> {
    let class = release.rows[0].class;
    release
        .rows
        .iter()
        .filter(|row| &*row.zone == zone && row.class == class && row.origin == "*")
        .map(|row| row.bucket_start.to_string())
        .collect()
}

/// The row of a release with this origin (in a one-group release).
fn row<'a>(release: &'a Release, origin: &str) -> &'a ReleaseRow {
    release
        .rows
        .iter()
        .find(|row| row.origin == origin)
        .unwrap_or_else(|| panic!("no row {origin:?}"))
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// `[est_devices, est_visits, est_low, est_high]` as §8 defines them, from a row's observed
/// devices, its estimates and its variance.
fn interval(devices: u64, est: f64, est_visits: f64, variance: f64) -> [f64; 4] {
    let half = 1.96 * variance.sqrt();
    [
        est,
        est_visits,
        (est - half).max(devices as f64),
        est + half,
    ]
}

fn assert_estimate(row: &ReleaseRow, want: [f64; 4]) {
    let got = parts(
        row.estimate
            .unwrap_or_else(|| panic!("{:?} has no estimate", row.origin)),
    );
    assert!(
        got.iter().zip(want).all(|(&g, w)| close(g, w)),
        "{}: got {got:?}, want {want:?}",
        row.origin
    );
}

/// Checks every group of a release: its total row comes first; a suppressed group is
/// that row alone, with no measure and no estimate; in a released group every row has at
/// least k devices, the origin rows sum to the total for every measure and, when the
/// total has estimates, every origin row has them and they sum to the total's; est_low is
/// at least devices.
fn assert_groups(release: &Release, k: u64) {
    let rows = &release.rows;
    let mut first = 0;
    while first < rows.len() {
        let total = &rows[first];
        assert_eq!(total.origin, "*", "a group starts with its total row");
        let end = (first + 1..rows.len())
            .find(|&i| rows[i].origin == "*")
            .unwrap_or(rows.len());
        let origins = &rows[first + 1..end];
        for row in origins {
            assert_eq!(
                (&row.zone, &row.bucket_start, row.class),
                (&total.zone, &total.bucket_start, total.class)
            );
        }
        if total.suppressed {
            assert!(origins.is_empty(), "a suppressed group is its total alone");
            assert_eq!((total.measures, total.estimate), (None, None));
        } else {
            let mut sum = Measures::default();
            for row in &rows[first..end] {
                assert!(!row.suppressed);
                let measures = row.measures.unwrap();
                assert!(measures.devices >= k, "{row:?} is below k");
                if let Some([_, _, low, high]) = row.estimate.map(parts) {
                    assert!(low >= measures.devices as f64 && high >= low, "{row:?}");
                }
            }
            for row in origins {
                let measures = row.measures.unwrap();
                assert_eq!(measures.bands, [None; 5], "origin rows have no bands");
                sum.devices += measures.devices;
                sum.visits += measures.visits;
                sum.dwell_s += measures.dwell_s;
            }
            let whole = total.measures.unwrap();
            assert_eq!(
                (sum.devices, sum.visits, sum.dwell_s),
                (whole.devices, whole.visits, whole.dwell_s),
                "origins partition the total"
            );
            let estimates: Option<Vec<[f64; 4]>> =
                origins.iter().map(|r| r.estimate.map(parts)).collect();
            match (total.estimate.map(parts), estimates) {
                (Some(whole), Some(parts)) => {
                    let devices: f64 = parts.iter().map(|e| e[0]).sum();
                    let visits: f64 = parts.iter().map(|e| e[1]).sum();
                    assert!(close(devices, whole[0]) && close(visits, whole[1]));
                }
                (None, Some(_)) => panic!("a null total estimate over non-null origin rows"),
                (Some(_), None) => panic!("a total estimate over a null origin row"),
                (None, None) => {}
            }
        }
        first = end;
    }
}

// --- Buckets and measures end to end (§6) -----------------------------------------------

#[test]
fn hour_buckets_count_devices_visits_and_dwell_per_clock_hour() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    // Three day visitors homed in gent (a 03:00 ping there), pinging the Markt:
    // - a: 10:15 and 11:45 → one visit [10:15, 11:45], dwell 5400 s (band [1h, 2h)): 2700 s
    //   in the 10:00 hour, 2700 s in the 11:00 hour;
    // - b: Markt 10:30, Kortrijk (no zone) 10:40, Markt 10:50 and 11:10 → two visits:
    //   [10:30, 10:35] (the next ping is 10 min later: end at the midpoint) and [10:45,
    //   11:10] (start at the midpoint after 10:40), dwells 300 s and 1500 s (band [0, 1h));
    //   in the 10:00 hour 300 + 900 = 1200 s, in the 11:00 hour 600 s;
    // - c: Markt 11:00:00 alone → a zero-length visit at 11:00, in the bucket holding its
    //   start: the 11:00 hour, not the 10:00 one.
    let mut rows = visitor(
        "a",
        Some(homes.gent),
        &["2026-07-01 10:15:00", "2026-07-01 11:45:00"],
    );
    rows.extend(visitor("b", Some(homes.gent), &["2026-07-01 10:30:00"]));
    rows.push(ping("b", "2026-07-01 10:40:00", QUIET_CELL));
    rows.extend(visitor(
        "b",
        None,
        &["2026-07-01 10:50:00", "2026-07-01 11:10:00"],
    ));
    rows.extend(visitor("c", Some(homes.gent), &["2026-07-01 11:00:00"]));
    let release = run(&rows, &geography, &config, &options(BucketKind::Hour));

    // 10:00: devices a, b = 2 (b counts once for its two visits); visits a 1 + b 2 = 3,
    // all starting in the hour; dwell 2700 + 1200 = 3900; bands: b's two in [0, 1h),
    // a's in [1h, 2h).
    let ten = m(2, 3, 3_900, [2, 1, 0, 0, 0]);
    // 11:00: devices a, b, c = 3; visits: only c's starts here; dwell 2700 + 600 + 0 =
    // 3300; bands: c's zero dwell in [0, 1h).
    let eleven = m(3, 1, 3_300, [1, 0, 0, 0, 0]);
    let mut expected = shown(&[
        ("2026-07-01T10:00:00+02:00", "visitor", "*", ten),
        ("2026-07-01T10:00:00+02:00", "visitor", "gent", ten),
        ("2026-07-01T11:00:00+02:00", "visitor", "*", eleven),
        ("2026-07-01T11:00:00+02:00", "visitor", "gent", eleven),
    ]);
    // §7 step 6 with k = 2, on the total rows: at 10:00 band [0, 1h) counts b's two
    // visits, one device, and band [1h, 2h) a's, one device: both are withheld (two
    // withheld bands need no complement). At 11:00 band [0, 1h) counts c alone: it is
    // withheld, and as no released band has visits, all five are.
    expected[0].3.bands = [None, None, Some(0), Some(0), Some(0)];
    expected[2].3.bands = [None; 5];
    assert_eq!(released(&release, "markt"), expected);
    // The grid: 24 hours, each with its total row; the 22 empty ones suppressed.
    let hours: Vec<String> = (0..24)
        .map(|h| format!("2026-07-01T{h:02}:00:00+02:00"))
        .collect();
    assert_eq!(labels(&release, "markt"), hours);
    assert_eq!(release.rows.len(), 22 + 4);
    let disclosure = release.report.disclosure.unwrap();
    assert_eq!(
        (
            disclosure.k,
            disclosure.groups,
            disclosure.groups_suppressed,
            disclosure.rows_released
        ),
        (2, 24, 22, 4)
    );
}

#[test]
fn calendar_buckets_are_whole_intervals_and_split_dwell_at_their_bounds() {
    let geography = geography();
    // The week from Tuesday 30 June to Monday 6 July (period end Tuesday 7 July). Two
    // French roamers each make two visits, by pings on the Markt at 23:30 and 00:30:
    // [30 June 23:30, 1 July 00:30] across the end of June, of Q2 and of a day, and
    // [Sunday 5 July 23:30, Monday 6 July 00:30] across the end of an ISO week. The pings
    // are days apart, so each visit is exactly one hour (band [1h, 2h)).
    let config = config_for("2026-06-30", "2026-07-07", 2);
    let times = [
        "2026-06-30 23:30:00",
        "2026-07-01 00:30:00",
        "2026-07-05 23:30:00",
        "2026-07-06 00:30:00",
    ];
    let mut rows = roamer("r1", "FR", &times);
    rows.extend(roamer("r2", "FR", &times));
    let both = |measures: Measures| [measures, measures];
    // Each released group is its total and the one origin row country:FR (2 devices).
    let check = |bucket: BucketKind, expected: &[(&str, Measures)], grid: &[&str]| {
        let release = run(&rows, &geography, &config, &options(bucket));
        let mut want = Vec::new();
        for &(label, measures) in expected {
            for (origin, measures) in ["*", "country:FR"].into_iter().zip(both(measures)) {
                want.push((label, "visitor", origin, measures));
            }
        }
        assert_eq!(released(&release, "markt"), shown(&want), "{bucket}");
        assert_eq!(labels(&release, "markt"), grid, "{bucket}");
    };
    // Days: 30 June holds both visits' starts and 1800 s of each; 1 July the other
    // 1800 s each and no start; likewise 5 and 6 July. 2–4 July are empty.
    check(
        BucketKind::Day,
        &[
            ("2026-06-30T00:00:00+02:00", m(2, 2, 3_600, [0, 2, 0, 0, 0])),
            ("2026-07-01T00:00:00+02:00", m(2, 0, 3_600, [0; 5])),
            ("2026-07-05T00:00:00+02:00", m(2, 2, 3_600, [0, 2, 0, 0, 0])),
            ("2026-07-06T00:00:00+02:00", m(2, 0, 3_600, [0; 5])),
        ],
        &[
            "2026-06-30T00:00:00+02:00",
            "2026-07-01T00:00:00+02:00",
            "2026-07-02T00:00:00+02:00",
            "2026-07-03T00:00:00+02:00",
            "2026-07-04T00:00:00+02:00",
            "2026-07-05T00:00:00+02:00",
            "2026-07-06T00:00:00+02:00",
        ],
    );
    // ISO weeks: the first starts on Monday 29 June, before the period. It holds all four
    // starts, the whole first visits (3600 s each) and the first half of the second
    // (1800 s each): 2 × 5400 = 10800. The week of 6 July holds 1800 s each.
    check(
        BucketKind::Week,
        &[
            (
                "2026-06-29T00:00:00+02:00",
                m(2, 4, 10_800, [0, 4, 0, 0, 0]),
            ),
            ("2026-07-06T00:00:00+02:00", m(2, 0, 3_600, [0; 5])),
        ],
        &["2026-06-29T00:00:00+02:00", "2026-07-06T00:00:00+02:00"],
    );
    // Months: June (from 1 June) holds the first visits' starts and 1800 s each; July
    // 1800 + 3600 = 5400 s each and the second visits' starts.
    let june = m(2, 2, 3_600, [0, 2, 0, 0, 0]);
    let july = m(2, 2, 10_800, [0, 2, 0, 0, 0]);
    check(
        BucketKind::Month,
        &[
            ("2026-06-01T00:00:00+02:00", june),
            ("2026-07-01T00:00:00+02:00", july),
        ],
        &["2026-06-01T00:00:00+02:00", "2026-07-01T00:00:00+02:00"],
    );
    // Quarters: Q2 from 1 April, Q3 from 1 July; the same split as the months.
    check(
        BucketKind::Quarter,
        &[
            ("2026-04-01T00:00:00+02:00", june),
            ("2026-07-01T00:00:00+02:00", july),
        ],
        &["2026-04-01T00:00:00+02:00", "2026-07-01T00:00:00+02:00"],
    );
    // The period: one bucket from its first day, holding everything: 4 visits, 4 × 3600 s.
    check(
        BucketKind::Period,
        &[(
            "2026-06-30T00:00:00+02:00",
            m(2, 4, 14_400, [0, 4, 0, 0, 0]),
        )],
        &["2026-06-30T00:00:00+02:00"],
    );
}

/// Two French roamers pinging the Markt every hour on the hour (UTC) from `first` to
/// `last` inclusive: one visit each from the first ping to the last.
fn hourly_roamers(first: &str, last: &str) -> Vec<Ping> {
    let (first, last) = (t(first), t(last));
    let mut rows = Vec::new();
    for who in ["r1", "r2"] {
        let mut at = first;
        while at <= last {
            rows.push(Ping::in_cell(who, at, MARKT_CELL).country("FR"));
            at += HOUR;
        }
    }
    rows
}

#[test]
fn spring_forward_day_has_23_hour_buckets_and_a_23_hour_day() {
    let geography = geography();
    // 29 March 2026: 02:00 +01:00 becomes 03:00 +02:00. Pings every hour from
    // 29 March 00:00 +01:00 to 30 March 00:00 +02:00: one visit each, exactly the whole
    // 29 March, 23 h = 82800 s (band 8h+), ending where 30 March begins (no overlap).
    let config = config_for("2026-03-29", "2026-03-31", 2);
    let rows = hourly_roamers("2026-03-29 00:00:00+01:00", "2026-03-30 00:00:00+02:00");

    let release = run(&rows, &geography, &config, &options(BucketKind::Hour));
    let grid = labels(&release, "markt");
    // 23 hours on 29 March, 24 on 30 March.
    assert_eq!(grid.len(), 23 + 24);
    assert_eq!(
        grid[..4],
        [
            "2026-03-29T00:00:00+01:00",
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ]
    );
    assert_eq!(grid[22], "2026-03-29T23:00:00+02:00");
    assert_eq!(grid[23], "2026-03-30T00:00:00+02:00");
    // Each of the 23 hours of 29 March: both devices, 3600 s each; both visits start in
    // the first hour. 30 March is empty.
    let mut want = Vec::new();
    for (h, label) in grid[..23].iter().enumerate() {
        let measures = if h == 0 {
            m(2, 2, 7_200, [0, 0, 0, 0, 2])
        } else {
            m(2, 0, 7_200, [0; 5])
        };
        for origin in ["*", "country:FR"] {
            want.push((label.as_str(), "visitor", origin, measures));
        }
    }
    assert_eq!(released(&release, "markt"), shown(&want));
    assert_eq!(release.report.disclosure.unwrap().groups_suppressed, 24);

    // The day bucket of 29 March is 23 h long: 2 × 82800 s.
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    assert_eq!(
        labels(&release, "markt"),
        ["2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
    );
    let day = m(2, 2, 2 * 82_800, [0, 0, 0, 0, 2]);
    assert_eq!(
        released(&release, "markt"),
        shown(&[
            ("2026-03-29T00:00:00+01:00", "visitor", "*", day),
            ("2026-03-29T00:00:00+01:00", "visitor", "country:FR", day),
        ])
    );
}

#[test]
fn fall_back_day_has_25_hour_buckets_two_labelled_two_oclock() {
    let geography = geography();
    // 25 October 2026: 03:00 +02:00 becomes 02:00 +01:00. Pings every hour from
    // 25 October 00:00 +02:00 to 26 October 00:00 +01:00: the whole 25 h day, 90000 s.
    let config = config_for("2026-10-25", "2026-10-27", 2);
    let rows = hourly_roamers("2026-10-25 00:00:00+02:00", "2026-10-26 00:00:00+01:00");

    let release = run(&rows, &geography, &config, &options(BucketKind::Hour));
    let grid = labels(&release, "markt");
    assert_eq!(grid.len(), 25 + 24);
    assert_eq!(
        grid[..5],
        [
            "2026-10-25T00:00:00+02:00",
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]
    );
    assert_eq!(grid[24], "2026-10-25T23:00:00+01:00");
    assert_eq!(grid[25], "2026-10-26T00:00:00+01:00");
    let mut want = Vec::new();
    for (h, label) in grid[..25].iter().enumerate() {
        let measures = if h == 0 {
            m(2, 2, 7_200, [0, 0, 0, 0, 2])
        } else {
            m(2, 0, 7_200, [0; 5])
        };
        for origin in ["*", "country:FR"] {
            want.push((label.as_str(), "visitor", origin, measures));
        }
    }
    assert_eq!(released(&release, "markt"), shown(&want));

    // The day bucket of 25 October is 25 h long: 2 × 90000 s.
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    let day = m(2, 2, 2 * 90_000, [0, 0, 0, 0, 2]);
    assert_eq!(
        released(&release, "markt"),
        shown(&[
            ("2026-10-25T00:00:00+02:00", "visitor", "*", day),
            ("2026-10-25T00:00:00+02:00", "visitor", "country:FR", day),
        ])
    );
}

#[test]
fn every_zone_category_bucket_and_class_has_its_total_row() {
    // Zones markt and street (category culture) and station (no category): the zones
    // are markt, street, station and category:culture, in that order.
    let geography = four_level_tree()
        .zone("markt", Some("culture"), &[MARKT_CELL])
        .zone("street", Some("culture"), &[STREET_CELL])
        .zone("station", None, &[STATION_CELL])
        .build()
        .unwrap();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    let mut options = options(BucketKind::Day);
    options.classes = vec![
        ReleaseClass::Device(DeviceClass::DayVisitor),
        ReleaseClass::Device(DeviceClass::OvernightVisitor),
        ReleaseClass::Device(DeviceClass::Resident),
    ];
    // Two day visitors from gent, one hour on the Markt on 1 July.
    let mut rows = visitor("d1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("d2", Some(homes.gent), &ONE_HOUR));
    let release = run(&rows, &geography, &config, &options);

    // 4 zones × 2 days × 3 classes = 24 groups, in zone, bucket, class order; each has
    // its total row. Only markt and category:culture on 1 July for day visitors are
    // released (total and gent); the other 22 are suppressed.
    let mut want = Vec::new();
    for zone in ["markt", "street", "station", "category:culture"] {
        for day in ["2026-07-01T00:00:00+02:00", "2026-07-02T00:00:00+02:00"] {
            for class in ["day_visitor", "overnight_visitor", "resident"] {
                let open = (zone == "markt" || zone == "category:culture")
                    && day.starts_with("2026-07-01")
                    && class == "day_visitor";
                want.push((zone, day, class, "*", !open));
                if open {
                    want.push((zone, day, class, "gent", false));
                }
            }
        }
    }
    let got: Vec<(&str, &str, &str, &str, bool)> = release
        .rows
        .iter()
        .map(|r| {
            (
                &*r.zone,
                &*r.bucket_start,
                r.class.name(),
                r.origin.as_str(),
                r.suppressed,
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(release.report.disclosure.unwrap().groups, 24);
    assert_eq!(release.report.disclosure.unwrap().groups_suppressed, 22);
    let one = hours(2);
    for zone in ["markt", "category:culture"] {
        assert_eq!(
            released(&release, zone),
            shown(&[
                ("2026-07-01T00:00:00+02:00", "day_visitor", "*", one),
                ("2026-07-01T00:00:00+02:00", "day_visitor", "gent", one),
            ])
        );
    }
}

#[test]
fn an_empty_input_with_a_period_gives_the_grid_of_suppressed_totals() {
    let geography = geography();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    // No ping: one zone × 2 days × 1 class = 2 groups, each a suppressed total row.
    let release = run(&[], &geography, &config, &options(BucketKind::Day));
    assert_eq!(release.rows.len(), 2);
    assert!(release.rows.iter().all(|r| r.suppressed && r.origin == "*"));
    assert_eq!(release.report.devices.total, 0);
}

#[test]
fn without_a_period_the_grid_follows_the_pings_and_no_ping_means_no_grid() {
    let geography = geography();
    let homes = homes();
    let mut config = config_for("2026-07-01", "2026-07-02", 2);
    config.period = None;
    // No period and no valid ping: no grid, an empty release (and nobody in the report).
    let release = run(&[], &geography, &config, &options(BucketKind::Period));
    assert!(release.rows.is_empty());
    assert_eq!(release.report.devices.total, 0);
    assert_eq!(release.report.disclosure.unwrap().groups, 0);
    assert!(release.report.extrapolation.is_none());

    // Pings on 1 July only: the period is [1 July, 2 July), one day bucket.
    let mut rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("g2", Some(homes.gent), &ONE_HOUR));
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    assert_eq!(
        released(&release, "markt"),
        shown(&[
            ("2026-07-01T00:00:00+02:00", "visitor", "*", hours(2)),
            ("2026-07-01T00:00:00+02:00", "visitor", "gent", hours(2)),
        ])
    );
    assert_eq!(release.rows.len(), 2);
}

#[test]
fn classes_group_visitors_or_their_parts_and_the_others() {
    let geography = geography();
    let homes = homes();
    // Three days, 1–3 July; presence on 2 days makes a regular.
    let mut config = config_for("2026-07-01", "2026-07-04", 2);
    config.usual_env_min_days = Some(2);
    // Everyone who visits spends [12:00, 13:00] on 2 July on the Markt.
    let noon = ["2026-07-02 12:00:00", "2026-07-02 13:00:00"];
    let mut rows = Vec::new();
    for who in ["dv1", "dv2"] {
        // Day visitors: home gent; one presence day (2 July), no night in Kortrijk.
        rows.extend(visitor(who, Some(homes.gent), &noon));
    }
    for who in ["ov1", "ov2"] {
        // Overnight visitors: home gent (nights of 30 June and 3 July there, against one
        // in Kortrijk: 2 July at 23:00), one presence day.
        rows.extend(visitor(who, Some(homes.gent), &noon));
        rows.push(ping(who, "2026-07-02 23:00:00", QUIET_CELL));
        rows.push(ping(who, "2026-07-03 23:00:00", homes.gent));
    }
    for who in ["re1", "re2"] {
        // Residents: home kortrijk.
        rows.extend(visitor(who, Some(QUIET_CELL), &noon));
    }
    for who in ["rg1", "rg2"] {
        // Regulars: home gent, presence on 2 and 3 July (2 ≥ usual_env_min_days).
        rows.extend(visitor(who, Some(homes.gent), &noon));
        rows.push(ping(who, "2026-07-03 12:00:00", QUIET_CELL));
    }
    // A device that never comes to Kortrijk: a day visitor without visits.
    rows.push(ping("nv", "2026-07-01 03:00:00", homes.brugge));
    rows.push(ping("nv", "2026-07-02 12:00:00", homes.brugge));

    // `visitor`: the day and overnight visitors together, 4 devices from gent, one hour
    // each.
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    let label = "2026-07-01T00:00:00+02:00";
    assert_eq!(
        released(&release, "markt"),
        shown(&[
            (label, "visitor", "*", hours(4)),
            (label, "visitor", "gent", hours(4)),
        ])
    );

    // The parts and the other classes, in the order asked for: 2 devices each.
    let mut options = options(BucketKind::Period);
    options.classes = ["overnight_visitor", "day_visitor", "resident", "regular"]
        .iter()
        .map(|name| name.parse().unwrap())
        .collect();
    let release = run(&rows, &geography, &config, &options);
    let two = hours(2);
    assert_eq!(
        released(&release, "markt"),
        shown(&[
            (label, "overnight_visitor", "*", two),
            (label, "overnight_visitor", "gent", two),
            (label, "day_visitor", "*", two),
            (label, "day_visitor", "gent", two),
            (label, "resident", "*", two),
            (label, "resident", "kortrijk", two),
            (label, "regular", "*", two),
            (label, "regular", "gent", two),
        ])
    );
    // Devices by class count every device, the one without visits too.
    let by_class = &release.report.devices.by_class;
    assert_eq!(by_class["resident"], 2);
    assert_eq!(by_class["regular"], 2);
    assert_eq!(by_class["overnight_visitor"], 2);
    assert_eq!(by_class["day_visitor"], 3);
    assert_eq!(release.report.devices.total, 9);
}

#[test]
fn origins_at_a_coarser_level_are_ancestors() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    // Ten visitors, one hour each on the Markt: menen 1, brugge 1, gent 2, brussel 2,
    // unknown 2, country:FR 2.
    let mut rows = visitor("me", Some(homes.menen), &ONE_HOUR);
    rows.extend(visitor("br", Some(homes.brugge), &ONE_HOUR));
    for who in ["g1", "g2"] {
        rows.extend(visitor(who, Some(homes.gent), &ONE_HOUR));
    }
    for who in ["x1", "x2"] {
        rows.extend(visitor(who, Some(homes.brussel), &ONE_HOUR));
    }
    // u1 has no night ping; u2's night ping is in no leaf, which never makes a home.
    rows.extend(visitor("u1", None, &ONE_HOUR));
    rows.extend(visitor("u2", Some(OUTSIDE_CELL), &ONE_HOUR));
    for who in ["f1", "f2"] {
        rows.extend(roamer(who, "FR", &ONE_HOUR));
    }
    let at_level = |level: Option<&str>| {
        let mut options = options(BucketKind::Period);
        options.level = level.map(str::to_owned);
        origins_of(&run(&rows, &geography, &config, &options))
    };
    // Leaves: menen 1 → other:arr-kortrijk 1 and brugge 1 → other:arr-brugge 1, both
    // below k = 2, merge into other:wvl = 2. The rest have 2 and are released as they are.
    let leaves = named(&[
        ("*", hours(10)),
        ("brussel", hours(2)),
        ("country:FR", hours(2)),
        ("gent", hours(2)),
        ("other:wvl", hours(2)),
        ("unknown", hours(2)),
    ]);
    assert_eq!(at_level(None), leaves);
    assert_eq!(at_level(Some("municipality")), leaves);
    // Arrondissements: menen → arr-kortrijk 1, brugge → arr-brugge 1, both pool into
    // other:wvl = 2; gent → arr-gent 2; brussel has no arrondissement and stays itself;
    // country:FR and unknown stay as they are.
    assert_eq!(
        at_level(Some("arrondissement")),
        named(&[
            ("*", hours(10)),
            ("arr-gent", hours(2)),
            ("brussel", hours(2)),
            ("country:FR", hours(2)),
            ("other:wvl", hours(2)),
            ("unknown", hours(2)),
        ])
    );
    // Provinces: menen and brugge are both in wvl (2), gent in ovl (2).
    assert_eq!(
        at_level(Some("province")),
        named(&[
            ("*", hours(10)),
            ("brussel", hours(2)),
            ("country:FR", hours(2)),
            ("ovl", hours(2)),
            ("unknown", hours(2)),
            ("wvl", hours(2)),
        ])
    );
    // The country: every domestic device with a home is in BE (6).
    assert_eq!(
        at_level(Some("country")),
        named(&[
            ("*", hours(10)),
            ("BE", hours(6)),
            ("country:FR", hours(2)),
            ("unknown", hours(2)),
        ])
    );
}

#[test]
fn min_dwell_excludes_short_visits() {
    let geography = geography();
    let homes = homes();
    // Visitors from gent: v1 and v2 one hour each; v3 [14:00, 14:20] (1200 s); v4
    // [16:00, 16:30] (exactly 1800 s).
    let mut rows = visitor("v1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("v2", Some(homes.gent), &ONE_HOUR));
    rows.extend(visitor(
        "v3",
        Some(homes.gent),
        &["2026-07-01 14:00:00", "2026-07-01 14:20:00"],
    ));
    rows.extend(visitor(
        "v4",
        Some(homes.gent),
        &["2026-07-01 16:00:00", "2026-07-01 16:30:00"],
    ));
    // min_dwell 0: all four count: 3600 + 3600 + 1200 + 1800 = 10200 s; v3, v4 in
    // [0, 1h), v1, v2 in [1h, 2h).
    let mut config = config_for("2026-07-01", "2026-07-02", 2);
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    assert_eq!(
        origins_of(&release)[0].1,
        as_shown("*", m(4, 4, 10_200, [2, 2, 0, 0, 0]))
    );
    // min_dwell 1800: v3's 1200 s visit does not qualify, so v3 is not counted at all;
    // v4's 1800 s visit does (dwell ≥ min_dwell): 3 devices, 9000 s.
    config.min_dwell = 1_800;
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    let kept = m(3, 3, 9_000, [1, 2, 0, 0, 0]);
    let mut expected = named(&[("*", kept), ("gent", kept)]);
    // §7 step 6 with k = 2: band [0, 1h) holds v4 alone, one device: withheld; the one
    // withheld band takes the released non-empty band with the fewest visits with it,
    // [1h, 2h), so that visits minus the others does not give it back.
    expected[0].1.bands = [None, None, Some(0), Some(0), Some(0)];
    assert_eq!(origins_of(&release), expected);
}

// --- Extrapolation (§8) -----------------------------------------------------------------

#[test]
fn estimates_use_detected_subscribers_and_their_factors() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let mut options = options(BucketKind::Period);
    options.roaming_factors = BTreeMap::from([("FR".to_owned(), 2.5)]);
    // Visitors, one hour each: gent 2, menen 1, brugge 1, unknown 1, country:FR 2; and a
    // resident of kortrijk without visits.
    let mut rows = Vec::new();
    for who in ["g1", "g2"] {
        rows.extend(visitor(who, Some(homes.gent), &ONE_HOUR));
    }
    rows.extend(visitor("me", Some(homes.menen), &ONE_HOUR));
    rows.extend(visitor("br", Some(homes.brugge), &ONE_HOUR));
    rows.extend(visitor("un", None, &ONE_HOUR));
    for who in ["f1", "f2"] {
        rows.extend(roamer(who, "FR", &ONE_HOUR));
    }
    rows.push(ping("re", "2026-07-01 03:00:00", QUIET_CELL));
    let release = run(&rows, &geography, &config, &options);

    // Detected subscribers (non-roamers by home, whatever their class): gent 2, menen 1,
    // brugge 1, kortrijk 1 (the resident); 5 in all. Factors: gent 600 / 2 = 300, menen
    // 100 / 1 = 100, brugge 400 / 1 = 400; national 2900 / 5 = 580 for unknown;
    // country:FR 2.5 as given.
    let extrapolation = release.report.extrapolation.as_ref().unwrap();
    assert_eq!(extrapolation.subscribers, SubscriberSource::Detected);
    // Subscriber counts are the operator's: the report gives the national factor only.
    assert!(
        !release
            .report
            .to_json()
            .to_string()
            .contains("subscribers_total")
    );
    assert!(close(extrapolation.national_factor.unwrap(), 580.0));
    assert!(
        release.report.warnings.is_empty(),
        "{:?}",
        release.report.warnings
    );

    // Disclosure at k = 2: gent 2 and country:FR 2 are released; menen and brugge merge
    // into other:wvl = 2, released; unknown 1 is a residual below k, and the smallest
    // released rows tie at 2: "country:FR" < "gent" < "other:wvl", so country:FR moves:
    // `other` = unknown + country:FR = 3.
    assert_eq!(
        origins_of(&release),
        named(&[
            ("*", hours(7)),
            ("gent", hours(2)),
            ("other", hours(3)),
            ("other:wvl", hours(2)),
        ])
    );
    // One visit per device, so est_visits = est_devices. var = Σ devices · f · (f − 1).
    // gent: 2 · 300 = 600; var 2 · 300 · 299 = 179400.
    let gent_var = 2.0 * 300.0 * 299.0;
    assert_estimate(row(&release, "gent"), interval(2, 600.0, 600.0, gent_var));
    // other:wvl: 100 + 400 = 500; var 100 · 99 + 400 · 399 = 169500.
    let wvl_var = 100.0 * 99.0 + 400.0 * 399.0;
    assert_estimate(
        row(&release, "other:wvl"),
        interval(2, 500.0, 500.0, wvl_var),
    );
    // other: unknown 580 + country:FR 2 · 2.5 = 585; var 580 · 579 + 2 · 2.5 · 1.5 =
    // 335827.5.
    let other_var = 580.0 * 579.0 + 2.0 * 2.5 * 1.5;
    assert_estimate(row(&release, "other"), interval(3, 585.0, 585.0, other_var));
    // The total: 600 + 500 + 585 = 1685, var the sum of the three. est_low would be
    // 1685 − 1.96 · √684727.5 ≈ 63.1 ≥ 7.
    assert_estimate(
        row(&release, "*"),
        interval(7, 1_685.0, 1_685.0, gent_var + wvl_var + other_var),
    );
    // gent's est_low: 600 − 1.96 · √179400 ≈ −230 < 2: clamped up to the devices, 2.
    assert!(close(row(&release, "gent").estimate.unwrap().low, 2.0));
}

#[test]
fn a_roamer_country_without_a_factor_nulls_its_rows_and_the_total() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let mut options = options(BucketKind::Period);
    options.roaming_factors = BTreeMap::from([("fr".to_owned(), 2.0)]);
    // gent 2, country:FR 2 (factor 2, given lower-case), country:NL 2 (no factor).
    let mut rows = Vec::new();
    for who in ["g1", "g2"] {
        rows.extend(visitor(who, Some(homes.gent), &ONE_HOUR));
    }
    for who in ["f1", "f2"] {
        rows.extend(roamer(who, "FR", &ONE_HOUR));
    }
    for who in ["n1", "n2"] {
        rows.extend(roamer(who, "NL", &ONE_HOUR));
    }
    let release = run(&rows, &geography, &config, &options);
    assert_eq!(
        origins_of(&release),
        named(&[
            ("*", hours(6)),
            ("country:FR", hours(2)),
            ("country:NL", hours(2)),
            ("gent", hours(2)),
        ])
    );
    // country:NL has no factor: its row and the total (which contains it) have null
    // estimates, and a warning names it.
    assert_eq!(row(&release, "country:NL").estimate, None);
    assert_eq!(row(&release, "*").estimate, None);
    assert!(
        release
            .report
            .warnings
            .iter()
            .any(|w| w.contains("country:NL") && w.contains("roaming factor")),
        "{:?}",
        release.report.warnings
    );
    // country:FR: 2 · 2 = 4, var 2 · 2 · 1 = 4: [4, 4, max(2, 4 − 3.92), 4 + 3.92].
    assert_estimate(row(&release, "country:FR"), interval(2, 4.0, 4.0, 4.0));
    assert!(close(
        row(&release, "country:FR").estimate.unwrap().high,
        7.92
    ));
    // gent (detected: 2 subscribers): 600 / 2 = 300 → 600.
    assert_estimate(
        row(&release, "gent"),
        interval(2, 600.0, 600.0, 2.0 * 300.0 * 299.0),
    );
}

#[test]
fn given_subscribers_override_detection_and_empty_leaves_use_the_parent_factor() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let mut options = options(BucketKind::Period);
    options.subscribers = Some(BTreeMap::from([
        ("gent".to_owned(), 4),
        ("brugge".to_owned(), 100),
    ]));
    // Two visitors from each of gent, aalst, brugge, menen and brussel: all released.
    let mut rows = Vec::new();
    for (home, cell) in [
        ("g", homes.gent),
        ("a", homes.aalst),
        ("b", homes.brugge),
        ("m", homes.menen),
        ("x", homes.brussel),
    ] {
        for n in 1..=2 {
            rows.extend(visitor(&format!("{home}{n}"), Some(cell), &ONE_HOUR));
        }
    }
    let release = run(&rows, &geography, &config, &options);
    assert_eq!(
        origins_of(&release),
        named(&[
            ("*", hours(10)),
            ("aalst", hours(2)),
            ("brugge", hours(2)),
            ("brussel", hours(2)),
            ("gent", hours(2)),
            ("menen", hours(2)),
        ])
    );
    // Given subscribers replace the detected ones (which would give gent 600 / 2 = 300):
    // gent 600 / 4 = 150 → 300, var 2 · 150 · 149 = 44700.
    assert_estimate(
        row(&release, "gent"),
        interval(2, 300.0, 300.0, 2.0 * 150.0 * 149.0),
    );
    // brugge 400 / 100 = 4 → 8, var 2 · 4 · 3 = 24.
    assert_estimate(
        row(&release, "brugge"),
        interval(2, 8.0, 8.0, 2.0 * 4.0 * 3.0),
    );
    // aalst has no subscriber: its parent arr-gent pools (600 + 500) / (4 + 0) = 275 →
    // 550, var 2 · 275 · 274 = 150700.
    assert_estimate(
        row(&release, "aalst"),
        interval(2, 550.0, 550.0, 2.0 * 275.0 * 274.0),
    );
    // menen has none, nor has its parent arr-kortrijk (kortrijk 0): up one more level,
    // wvl pools (300 + 100 + 400) / (0 + 0 + 100) = 8 → 16, var 2 · 8 · 7 = 112.
    assert_estimate(
        row(&release, "menen"),
        interval(2, 16.0, 16.0, 2.0 * 8.0 * 7.0),
    );
    // brussel has none and its parent is the root: the national factor 2900 / 104.
    let national = 2_900.0 / 104.0;
    assert_estimate(
        row(&release, "brussel"),
        interval(
            2,
            2.0 * national,
            2.0 * national,
            2.0 * national * (national - 1.0),
        ),
    );
    let extrapolation = release.report.extrapolation.as_ref().unwrap();
    assert_eq!(extrapolation.subscribers, SubscriberSource::Given);
    assert!(close(extrapolation.national_factor.unwrap(), national));
    assert_eq!(release.report.parameters["subscribers"], "given");
    assert!(
        release.report.warnings.is_empty(),
        "{:?}",
        release.report.warnings
    );
}

#[test]
fn leaf_factors_below_one_are_clamped_and_roaming_factors_below_one_refused() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let mut options = options(BucketKind::Period);
    // 1000 subscribers for 600 inhabitants: factor 0.6, clamped to 1 with a warning
    // (§8: wrong inputs, but a release can still be made); roamers get the factor of
    // every country, `*`, here 1.
    options.subscribers = Some(BTreeMap::from([("gent".to_owned(), 1_000)]));
    options.roaming_factors = BTreeMap::from([("*".to_owned(), 1.0)]);
    let mut rows = Vec::new();
    for who in ["g1", "g2"] {
        rows.extend(visitor(who, Some(homes.gent), &ONE_HOUR));
    }
    for who in ["f1", "f2"] {
        rows.extend(roamer(who, "FR", &ONE_HOUR));
    }
    let release = run(&rows, &geography, &config, &options);
    // Both factors are 1: estimates equal the devices, variance 0, so the interval is
    // [2, 2].
    for origin in ["gent", "country:FR"] {
        assert_estimate(row(&release, origin), [2.0, 2.0, 2.0, 2.0]);
    }
    assert_estimate(row(&release, "*"), [4.0, 4.0, 4.0, 4.0]);
    let warning = release
        .report
        .warnings
        .iter()
        .find(|w| w.contains("clamped"))
        .expect("a clamping warning");
    assert!(warning.contains("gent"), "{warning}");
    // A roaming factor below 1, or a key that is no country code, is a config error
    // (§8): one roamer stands for at least itself, and keys are checked by form only.
    for (code, factor) in [("FR", 0.5), ("France", 3.3), ("", 2.0), ("F1", 2.0)] {
        options.roaming_factors = BTreeMap::from([(code.to_owned(), factor)]);
        let error = study(&geography, &config)
            .release([Ok(batch(&rows))], &options, &RunOptions::default())
            .unwrap_err();
        assert_eq!(
            error.field(),
            Some("roaming_factors"),
            "{code} {factor}: {error}"
        );
    }
}

#[test]
fn without_any_subscriber_domestic_estimates_are_null_with_a_warning() {
    let geography = geography();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    // Two domestic visitors without a home: no subscriber anywhere, no national factor.
    let mut rows = visitor("u1", None, &ONE_HOUR);
    rows.extend(visitor("u2", None, &ONE_HOUR));
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    assert_eq!(
        origins_of(&release),
        named(&[("*", hours(2)), ("unknown", hours(2))])
    );
    assert!(release.rows.iter().all(|r| r.estimate.is_none()));
    assert_eq!(
        release
            .report
            .extrapolation
            .as_ref()
            .unwrap()
            .national_factor,
        None
    );
    assert!(
        release
            .report
            .warnings
            .iter()
            .any(|w| w.contains("no subscriber")),
        "{:?}",
        release.report.warnings
    );
}

#[test]
fn the_threshold_applies_to_observed_devices_not_estimates() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    // One visitor from gent, the only subscriber there: factor 600 / 1 = 600, far above
    // k = 2. One observed device < k: the group is suppressed, estimates included.
    let rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    assert_eq!(release.rows.len(), 1);
    assert!(release.rows[0].suppressed);
    assert_eq!(
        (release.rows[0].measures, release.rows[0].estimate),
        (None, None)
    );

    // With two roamers (factor 1) the group has 3 devices and is released, but the gent
    // row (1 device, estimate 600) is not: it climbs other:arr-gent, other:ovl and
    // other:BE (1 each) into the residual (1), which takes country:FR (2): `other` = 3.
    let mut options = options(BucketKind::Period);
    options.roaming_factors = BTreeMap::from([("FR".to_owned(), 1.0)]);
    let mut rows = rows;
    for who in ["f1", "f2"] {
        rows.extend(roamer(who, "FR", &ONE_HOUR));
    }
    let release = run(&rows, &geography, &config, &options);
    assert_eq!(
        origins_of(&release),
        named(&[("*", hours(3)), ("other", hours(3))])
    );
    // other: 600 + 2 · 1 = 602, var 600 · 599 + 0.
    assert_estimate(
        row(&release, "other"),
        interval(3, 602.0, 602.0, 600.0 * 599.0),
    );
}

// --- Bad options (§2, §4, §6) ------------------------------------------------------------

#[test]
fn bad_options_are_errors_naming_the_field_before_any_work() {
    let geography = geography();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    // A batch without the default columns: reading it would be an input error, so a
    // config error proves the options were checked first.
    let unreadable =
        crowdtally_harness::record_batch(vec![("nothing", crowdtally_harness::ints(&[Some(1)]))]);
    let field_of = |options: &ReleaseSpec| {
        let err = study(&geography, &config)
            .release([Ok(unreadable.clone())], options, &RunOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, crowdtally::Error::Config { .. }),
            "{err:?} is not a config error"
        );
        err.field().unwrap().to_owned()
    };
    let mut options = ReleaseSpec::default();
    options.level = Some("canton".to_owned());
    assert_eq!(field_of(&options), "level");

    for region in ["wvl", "BE", "nowhere"] {
        let mut options = ReleaseSpec::default();
        options.subscribers = Some(BTreeMap::from([(region.to_owned(), 3)]));
        assert_eq!(field_of(&options), "subscribers", "{region}");
    }

    for factor in [0.0, -1.0, f64::NAN] {
        let mut options = ReleaseSpec::default();
        options.roaming_factors = BTreeMap::from([("FR".to_owned(), factor)]);
        assert_eq!(field_of(&options), "roaming_factors", "{factor}");
    }

    let mut options = ReleaseSpec::default();
    options.classes = vec![
        ReleaseClass::Visitor,
        ReleaseClass::Device(DeviceClass::DayVisitor),
    ];
    assert_eq!(field_of(&options), "classes");
}

#[test]
fn aggregates_of_different_buckets_or_classes_do_not_merge() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    let prepared = prepare(vec![batch(&rows)], &geography, &config).unwrap();
    let aggregate = |bucket: BucketKind, classes: &[ReleaseClass]| -> Aggregate {
        let mut spec = ReleaseSpec::new(bucket);
        spec.classes = classes.to_vec();
        prepared.aggregate(&spec).unwrap().unwrap()
    };
    let visitors = [ReleaseClass::Visitor];
    let day = aggregate(BucketKind::Day, &visitors);
    let hour = aggregate(BucketKind::Hour, &visitors);
    let err = day.clone().merge(&hour).unwrap_err();
    assert_eq!(err.field(), Some("aggregate"));
    let residents = aggregate(
        BucketKind::Day,
        &[ReleaseClass::Device(DeviceClass::Resident)],
    );
    assert_eq!(
        day.clone().merge(&residents).unwrap_err().field(),
        Some("aggregate")
    );
    // Releasing an aggregate with options for another bucket is refused too.
    let err = study(&geography, &config)
        .release_aggregate(Some(&day), prepared.report(), &options(BucketKind::Hour))
        .unwrap_err();
    assert_eq!(err.field(), Some("aggregate"));
}

#[test]
fn releasing_an_aggregate_with_a_config_of_another_time_zone_does_not_mislabel_it() {
    // An aggregate computed in Europe/Brussels (day buckets from Brussels midnights) and
    // released with a configuration in America/New_York. §1.4 and §6: buckets and their
    // `bucket_start` are local calendar times in `tz`; §9: the report gives the
    // parameters used. `merge` refuses aggregates of another time zone; the release
    // must not silently label Brussels days in New York time either. Either refusing
    // (naming `aggregate`, like `merge` and a bucket mismatch) or labelling in the
    // aggregate's own zone is correct; a Brussels day labelled
    // "2026-06-30T18:00:00-04:00" under `tz` = America/New_York is not.
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-02", 2);
    let mut rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("g2", Some(homes.gent), &ONE_HOUR));
    let prepared = prepare(vec![batch(&rows)], &geography, &config).unwrap();
    let day = prepared
        .aggregate(&options(BucketKind::Day))
        .unwrap()
        .unwrap();
    let mut elsewhere = config.clone();
    elsewhere.tz = "America/New_York".to_owned();
    match study(&geography, &elsewhere).release_aggregate(
        Some(&day),
        prepared.report(),
        &options(BucketKind::Day),
    ) {
        Err(err) => assert_eq!(err.field(), Some("aggregate")),
        Ok(release) => {
            assert_eq!(
                labels(&release, "markt"),
                ["2026-07-01T00:00:00+02:00"],
                "Brussels days labelled in another zone"
            );
            assert_eq!(release.report.parameters["tz"], "Europe/Brussels");
        }
    }
}

// --- The report and the table (§6, §9) ----------------------------------------------------

#[test]
fn the_report_counts_devices_and_pings_and_shows_no_key_or_raw_id() {
    let geography = geography();
    let homes = homes();
    let mut config = config_for("2026-07-01", "2026-07-02", 2);
    let opted_out = "imsi-optout-0000009";
    config.opt_out = OptOut::new(vec![SubscriberId::Text(opted_out.to_owned())]);
    let (v1, v2, nohome, roaming, resident) = (
        "imsi-visitor-000001",
        "imsi-visitor-000002",
        "imsi-nohome-0000003",
        "imsi-roamer-0000004",
        "imsi-resident-00005",
    );
    let mut rows = visitor(v1, Some(homes.gent), &ONE_HOUR); // 3 pings
    rows.extend(visitor(v2, Some(homes.gent), &ONE_HOUR)); // 3
    rows.push(ping(v2, ONE_HOUR[0], MARKT_CELL)); // a duplicate of (v2, 10:00)
    rows.extend(visitor(nohome, None, &ONE_HOUR)); // 2
    rows.extend(roamer(roaming, "FR", &ONE_HOUR)); // 2
    rows.push(ping(resident, "2026-07-01 03:00:00", QUIET_CELL)); // 1
    rows.extend(visitor(opted_out, None, &ONE_HOUR)); // 2, opted out
    rows.push(Ping {
        subscriber: None,
        ..ping("x", "2026-07-01 12:00:00", MARKT_CELL)
    }); // bad_subscriber
    rows.push(ping(v1, "2026-07-03 10:00:00", MARKT_CELL)); // outside_period
    assert_eq!(rows.len(), 16);
    let release = run(&rows, &geography, &config, &options(BucketKind::Period));
    let report = &release.report;

    // 16 read: 2 opt_out, 1 bad_subscriber, 1 outside_period, 1 duplicate; 11 kept.
    assert_eq!(report.pings["read"], 16);
    assert_eq!(report.pings["kept"], 11);
    let dropped: Vec<u64> = [
        "opt_out",
        "bad_subscriber",
        "bad_position",
        "bad_ts",
        "outside_period",
        "duplicate",
    ]
    .iter()
    .map(|&reason| report.pings["dropped"][reason].as_u64().unwrap())
    .collect();
    assert_eq!(dropped, [2, 1, 0, 0, 1, 1]);
    assert_eq!(report.opt_out["pings"], 2);
    assert_eq!(report.opt_out["subscribers"], 1);

    // Devices (all five, by class): the resident; v1, v2, the device without a home and
    // the roamer are day visitors. One roamer, one domestic device without a home.
    assert_eq!(report.devices.total, 5);
    assert_eq!(
        report.devices.by_class,
        BTreeMap::from([
            ("day_visitor", 4),
            ("overnight_visitor", 0),
            ("regular", 0),
            ("resident", 1),
        ])
    );
    assert_eq!(report.devices.roamers, 1);
    assert_eq!(report.devices.domestic_unknown_home, 1);

    // The group: gent 2 released; unknown 1 to the residual, country:FR 1 to
    // other:abroad (1 < 2) and then the residual: `other` = 2.
    assert_eq!(
        origins_of(&release),
        named(&[("*", hours(4)), ("gent", hours(2)), ("other", hours(2))])
    );
    assert_eq!(
        report.disclosure,
        Some(DisclosureCounts {
            k: 2,
            groups: 1,
            groups_suppressed: 0,
            rows_released: 3,
            origin_rows_rolled_up: 2,
            origin_rows_moved_to_residual: 0,
            ..DisclosureCounts::default()
        })
    );
    assert_eq!(report.version, crowdtally::VERSION);
    let parameters = &report.parameters;
    assert_eq!(parameters["k"], 2);
    assert_eq!(parameters["bucket"], "period");
    assert_eq!(parameters["classes"], serde_json::json!(["visitor"]));
    assert_eq!(parameters["subscribers"], "detected");
    assert_eq!(parameters["min_nights"], 1);
    let keys: Vec<&String> = parameters.as_object().unwrap().keys().collect();
    assert!(
        !keys.iter().any(|k| k.contains("key") || k.contains("opt")),
        "{keys:?}"
    );

    // Neither the key nor any raw id appears anywhere in the report.
    let text = serde_json::to_string(&report.to_json()).unwrap();
    let key = std::str::from_utf8(KEY).unwrap();
    assert!(!text.contains(key), "the key leaks");
    for raw in [v1, v2, nohome, roaming, resident, opted_out] {
        assert!(!text.contains(raw), "{raw} leaks");
    }
    let debug = format!("{release:?}");
    assert!(!debug.contains(key));
    for raw in [v1, v2, nohome, roaming, resident, opted_out] {
        assert!(!debug.contains(raw), "{raw} leaks");
    }
}

fn column_u64(batch: &RecordBatch, name: &str) -> Vec<Option<u64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<UInt64Type>()
        .iter()
        .collect()
}

#[test]
fn the_record_batch_has_the_method_columns_in_order() {
    let geography = geography();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    let mut rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("g2", Some(homes.gent), &ONE_HOUR));
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    let table = release.to_record_batch().unwrap();
    let names: Vec<&str> = table
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "zone",
            "bucket_start",
            "class",
            "origin",
            "devices",
            "visits",
            "dwell_s",
            "band_0_1h",
            "band_1_2h",
            "band_2_4h",
            "band_4_8h",
            "band_8h_plus",
            "suppressed",
            "est_devices",
            "est_visits",
            "est_low",
            "est_high",
            "bucket_ts",
            "zone_name",
            "origin_name",
        ]
    );
    // Rows: 1 July total and gent (2 devices, 1 visit each of 1 h), 2 July suppressed.
    assert_eq!(table.num_rows(), 3);
    let origin: Vec<&str> = table
        .column_by_name("origin")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(origin, ["*", "gent", "*"]);
    assert_eq!(column_u64(&table, "devices"), [Some(2), Some(2), None]);
    // Bands are on the total row only (§7 step 6); origin rows and suppressed groups
    // have none.
    assert_eq!(column_u64(&table, "band_1_2h"), [Some(2), None, None]);
    let suppressed: Vec<Option<bool>> = table
        .column_by_name("suppressed")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(suppressed, [Some(false), Some(false), Some(true)]);
    let estimates = table
        .column_by_name("est_devices")
        .unwrap()
        .as_primitive::<Float64Type>();
    // gent: 600 / 2 = 300 per device → 600.
    assert!(close(estimates.value(0), 600.0));
    assert!(estimates.is_null(2));
    let (fixed, schema) = (Release::schema(), table.schema());
    assert_eq!(schema.fields()[..fixed.fields().len()], fixed.fields()[..]);
    let labels: Vec<&str> = schema.fields()[fixed.fields().len()..]
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    assert_eq!(labels, Release::LABEL_COLUMNS);
}

/// The warnings of a release's report that contain `text`.
fn warnings_with<'r>(release: &'r Release, text: &str) -> Vec<&'r String> {
    release
        .report
        .warnings
        .iter()
        .filter(|warning| warning.contains(text))
        .collect()
}

#[test]
fn an_empty_input_is_said_in_the_warnings() {
    let release = run(
        &[],
        &geography(),
        &config_for("2026-07-01", "2026-07-03", 2),
        &options(BucketKind::Day),
    );
    assert_eq!(warnings_with(&release, "the input holds no ping").len(), 1);
}

#[test]
fn a_drop_reason_over_five_percent_is_said_with_its_fix() {
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    let mut rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    let kept = rows.len();
    // One bad time in 20 pings is 5 %: not yet a warning; a second one is.
    let mut late = rows[0].clone();
    late.ts = None;
    let padding: Vec<Ping> = (0..(19 - kept))
        .map(|i| ping("g2", &format!("2026-07-01T0{}:00:00", i % 9), MARKT_CELL))
        .collect();
    rows.extend(padding);
    rows.push(late.clone());
    assert_eq!(rows.len(), 20);
    let five = run(&rows, &geography(), &config, &options(BucketKind::Day));
    assert!(warnings_with(&five, "bad_ts").is_empty());
    rows.push(late);
    let over = run(&rows, &geography(), &config, &options(BucketKind::Day));
    let said = warnings_with(&over, "dropped as bad_ts");
    assert_eq!(said.len(), 1, "{:?}", over.report.warnings);
    assert!(
        said[0].contains("9.5 %") && said[0].contains("ISO 8601"),
        "{}",
        said[0]
    );
}

#[test]
fn pings_outside_the_regions_and_zones_are_counted_and_said() {
    let config = config_for("2026-07-01", "2026-07-03", 2);
    // Swapped lat and lon: Kortrijk's (50.83, 3.26) read as (3.26, 50.83), in the sea
    // off Somalia, outside every region and zone.
    let rows: Vec<Ping> = (0..10)
        .map(|i| Ping::at(&format!("d{i}"), t("2026-07-01T10:00:00"), (3.26, 50.83)))
        .collect();
    let release = run(&rows, &geography(), &config, &options(BucketKind::Day));
    let pings = &release.report.pings;
    assert_eq!(pings["kept"], 10);
    assert_eq!(pings["in_regions"], 0);
    assert_eq!(pings["in_study_area"], 0);
    assert_eq!(pings["in_zones"], 0);
    assert_eq!(warnings_with(&release, "lat and lon swapped").len(), 1);
    assert_eq!(
        warnings_with(&release, "no kept ping falls in a zone").len(),
        1
    );
    // The same pings on the Markt are in a region, the study area and the zone.
    let rows: Vec<Ping> = (0..10)
        .map(|i| ping(&format!("d{i}"), "2026-07-01T10:00:00", MARKT_CELL))
        .collect();
    let release = run(&rows, &geography(), &config, &options(BucketKind::Day));
    let pings = &release.report.pings;
    assert_eq!(
        [
            &pings["in_regions"],
            &pings["in_study_area"],
            &pings["in_zones"]
        ],
        [10, 10, 10]
    );
    assert!(warnings_with(&release, "swapped").is_empty());
    assert!(warnings_with(&release, "falls in a zone").is_empty());
}

#[test]
fn a_zone_without_cells_is_named_in_the_warnings() {
    let homes = homes();
    let geography = four_level_tree()
        .zone("markt", None, &[MARKT_CELL])
        .zone("nowhere", None, &[])
        .build()
        .unwrap();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    let rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    let said = warnings_with(&release, "have no cell");
    assert_eq!(said.len(), 1);
    assert!(said[0].ends_with(": nowhere"), "{}", said[0]);
}

#[test]
fn the_columns_after_the_methods_name_zones_and_origins_and_time_the_buckets() {
    let geography = four_level_tree()
        .region_name("gent", "Gent (city)")
        .zone("grote-markt", None, &[MARKT_CELL])
        .build()
        .unwrap();
    let homes = homes();
    let config = config_for("2026-07-01", "2026-07-03", 2);
    let mut rows = visitor("g1", Some(homes.gent), &ONE_HOUR);
    rows.extend(visitor("g2", Some(homes.gent), &ONE_HOUR));
    let release = run(&rows, &geography, &config, &options(BucketKind::Day));
    let table = release.to_record_batch().unwrap();
    // Names for people: the zone's, the region's given name, the total's meaning.
    let text = |name: &str| -> Vec<String> {
        table
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|value| value.unwrap().to_owned())
            .collect()
    };
    assert_eq!(text("zone_name"), ["grote markt"; 3]);
    assert_eq!(
        text("origin_name"),
        ["all origins", "Gent (city)", "all origins"]
    );
    // Local midnight of 1 and 2 July in Brussels (UTC+2), in the study's time zone.
    let bucket_ts = table.column_by_name("bucket_ts").unwrap();
    assert_eq!(
        bucket_ts.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Brussels".into()))
    );
    let instants: Vec<Option<i64>> = bucket_ts
        .as_primitive::<TimestampMillisecondType>()
        .iter()
        .collect();
    assert_eq!(
        instants,
        [
            Some(1_782_856_800_000),
            Some(1_782_856_800_000),
            Some(1_782_943_200_000)
        ]
    );
}
