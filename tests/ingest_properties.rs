//! Properties of ingestion on random, dirty input: the result does not depend on the
//! order of the rows or on how they are split into batches, and every row is accounted
//! for under the reason the method gives it.

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use crowdtally::{Config, OptOut, Prepared, SubscriberId};
use crowdtally_harness::{
    COUNTRY_SPELLINGS, MARKT_CELL, MARKT_POINT, OUTSIDE_CELL, OUTSIDE_POINT, Ping, QUIET_CELL,
    QUIET_POINT, STATION_CELL, STATION_POINT, STREET_CELL, STREET_POINT, T0, assert_consistent,
    batch, batches, brussels_period, config, fixture_geography, prepare,
};
use h3o::{CellIndex, Resolution};
use proptest::collection::vec;
use proptest::prelude::*;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Local midnight starting 2026-07-01 in Brussels, the first instant of the given period.
const PERIOD_START: i64 = T0 - 10 * HOUR;
const OPTED_OUT: &str = "sub1";

/// One way of giving a position: the cell, lat and lon columns' values, and the cell at
/// the analysis resolution the row should be located in (`None`: `bad_position`).
#[derive(Clone, Copy, Debug)]
struct Position {
    cell: Option<u64>,
    lat: Option<f64>,
    lon: Option<f64>,
    located: Option<u64>,
}

fn positions() -> Vec<Position> {
    let cell = |cell| Position {
        cell: Some(cell),
        lat: None,
        lon: None,
        located: Some(cell),
    };
    let point = |(lat, lon): (f64, f64), located| Position {
        cell: None,
        lat: Some(lat),
        lon: Some(lon),
        located: Some(located),
    };
    let bad = |cell, lat, lon| Position {
        cell,
        lat,
        lon,
        located: None,
    };
    let street = CellIndex::try_from(STREET_CELL).unwrap();
    let markt = CellIndex::try_from(MARKT_CELL).unwrap();
    vec![
        cell(MARKT_CELL),
        cell(STREET_CELL),
        cell(QUIET_CELL),
        cell(STATION_CELL),
        cell(OUTSIDE_CELL),
        point(MARKT_POINT, MARKT_CELL),
        point(STREET_POINT, STREET_CELL),
        point(QUIET_POINT, QUIET_CELL),
        point(STATION_POINT, STATION_CELL),
        point(OUTSIDE_POINT, OUTSIDE_CELL),
        // A finer cell, located in its parent.
        Position {
            located: Some(STREET_CELL),
            ..cell(street.center_child(Resolution::Eleven).unwrap().into())
        },
        // A cell and lat/lon: the cell wins.
        Position {
            cell: Some(STATION_CELL),
            ..point(MARKT_POINT, STATION_CELL)
        },
        bad(None, None, None),
        bad(None, Some(f64::NAN), Some(3.2)),
        bad(None, Some(91.0), Some(3.2)),
        bad(None, Some(50.8), Some(f64::INFINITY)),
        bad(None, Some(50.8), None),
        bad(Some(1), Some(MARKT_POINT.0), Some(MARKT_POINT.1)),
        bad(
            Some(markt.parent(Resolution::Eight).unwrap().into()),
            None,
            None,
        ),
    ]
}

const COUNTRIES: [Option<&str>; 6] = COUNTRY_SPELLINGS;

/// A random row: subscribers from a small pool (so that devices have several pings and
/// duplicates happen), times on a half-hour grid from the day before the given period to
/// the day after, nulls everywhere.
fn ping() -> impl Strategy<Value = Ping> {
    let subscriber =
        prop_oneof![1 => Just(None), 12 => (0..6_u8).prop_map(|i| Some(format!("sub{i}")))];
    let ts = prop_oneof![1 => Just(None), 12 => (0..96_i64).prop_map(|k| Some(PERIOD_START - DAY + k * 1_800))];
    let position = 0..positions().len();
    let country = 0..COUNTRIES.len();
    (subscriber, ts, position, country).prop_map(|(subscriber, ts, position, country)| {
        let position = positions()[position];
        Ping {
            subscriber,
            ts,
            lat: position.lat,
            lon: position.lon,
            cell: position.cell,
            country: COUNTRIES[country].map(str::to_owned),
        }
    })
}

/// The configuration of a case: with or without opt-out and a given period.
fn case_config(opt_out: bool, given_period: bool) -> Config {
    let mut config = config();
    if opt_out {
        config.opt_out = OptOut::new(vec![SubscriberId::Text(OPTED_OUT.into())]);
    }
    if given_period {
        config.period = Some(brussels_period(T0, T0 + DAY));
    }
    config
}

fn run(batches: Vec<RecordBatch>, config: &Config) -> Prepared {
    let prepared =
        prepare(batches, &fixture_geography(), config).expect("dirty values are not errors");
    assert_consistent(&prepared);
    prepared
}

/// Rows, the same rows shuffled, and cut points for splitting them into batches.
fn rows_shuffled_and_cuts() -> impl Strategy<Value = (Vec<Ping>, Vec<Ping>, Vec<usize>)> {
    vec(ping(), 0..80).prop_flat_map(|rows| {
        let n = rows.len();
        (
            Just(rows.clone()),
            Just(rows).prop_shuffle(),
            vec(0..=n, 0..5),
        )
    })
}

proptest! {
    #[test]
    fn shuffling_and_splitting_the_rows_changes_nothing(
        (rows, shuffled, cuts) in rows_shuffled_and_cuts(),
        opt_out in any::<bool>(),
        given_period in any::<bool>(),
    ) {
        let config = case_config(opt_out, given_period);
        let geography = fixture_geography();
        let one = run(vec![batch(&rows)], &config);
        let other = run(batches(&shuffled, &cuts), &config);
        prop_assert_eq!(one.report(), other.report());
        let (a, b) = (one.pings(), other.pings());
        prop_assert_eq!(a.devices(), b.devices());
        prop_assert_eq!(a.device(), b.device());
        prop_assert_eq!(a.ts(), b.ts());
        prop_assert_eq!(a.cell(), b.cell());
        prop_assert_eq!(a.leaf(), b.leaf());
        prop_assert_eq!(a.zone_set(), b.zone_set());
        // Country numbers follow the order codes are first seen; the codes they stand for
        // do not.
        let codes = |p: &crowdtally::LocatedPings| -> Vec<Option<String>> {
            p.country().iter().map(|&c| p.country_code(c).map(str::to_owned)).collect()
        };
        prop_assert_eq!(codes(a), codes(b));
        prop_assert_eq!(&a.period, &b.period);
        prop_assert_eq!(&a.period_label, &b.period_label);
        prop_assert_eq!(a.to_record_batch(&geography).unwrap(), b.to_record_batch(&geography).unwrap());
    }

    #[test]
    fn every_row_is_counted_once_under_its_first_reason(
        rows in vec(ping(), 0..80),
        opt_out in any::<bool>(),
        given_period in any::<bool>(),
    ) {
        let config = case_config(opt_out, given_period);
        let prepared = run(vec![batch(&rows)], &config);
        let report = prepared.report();

        // The method's reasons, row by row, in its order.
        let key = |cell: Option<u64>, lat: Option<f64>, lon: Option<f64>| (cell, lat.map(f64::to_bits), lon.map(f64::to_bits));
        let located: HashMap<_, Option<u64>> = positions()
            .iter()
            .map(|p| (key(p.cell, p.lat, p.lon), p.located))
            .collect();
        let (mut opted, mut bad_subscriber, mut bad_position, mut bad_ts, mut outside) = (0, 0, 0, 0, 0);
        let mut opted_subscribers = HashSet::new();
        let mut valid: HashMap<(String, i64), Vec<u64>> = HashMap::new();
        for row in &rows {
            let Some(subscriber) = &row.subscriber else {
                bad_subscriber += 1;
                continue;
            };
            if opt_out && subscriber == OPTED_OUT {
                opted += 1;
                opted_subscribers.insert(subscriber.clone());
                continue;
            }
            let Some(cell) = located[&key(row.cell, row.lat, row.lon)] else {
                bad_position += 1;
                continue;
            };
            let Some(ts) = row.ts else {
                bad_ts += 1;
                continue;
            };
            if given_period && !(PERIOD_START..PERIOD_START + DAY).contains(&ts) {
                outside += 1;
                continue;
            }
            valid.entry((subscriber.clone(), ts)).or_default().push(cell);
        }
        let duplicate: u64 = valid.values().map(|cells| cells.len() as u64 - 1).sum();
        let dropped = report.dropped;
        prop_assert_eq!(report.pings_read, rows.len() as u64);
        prop_assert_eq!(dropped.opt_out, opted);
        prop_assert_eq!(report.opt_out.pings, opted);
        prop_assert_eq!(report.opt_out.subscribers, opted_subscribers.len() as u64);
        prop_assert_eq!(dropped.bad_subscriber, bad_subscriber);
        prop_assert_eq!(dropped.bad_position, bad_position);
        prop_assert_eq!(dropped.bad_ts, bad_ts);
        prop_assert_eq!(dropped.outside_period, outside);
        prop_assert_eq!(dropped.duplicate, duplicate);
        prop_assert_eq!(report.pings_kept, valid.len() as u64);
        prop_assert_eq!(report.pings_read, report.pings_kept + dropped.total());
        let subscribers: HashSet<&String> = valid.keys().map(|(s, _)| s).collect();
        prop_assert_eq!(report.devices, subscribers.len() as u64);

        // Each kept ping has the smallest cell of its (subscriber, second).
        let mut kept: Vec<(i64, u64)> = prepared.pings().ts().iter().copied().zip(prepared.pings().cell().iter().copied()).collect();
        kept.sort_unstable();
        let mut expected: Vec<(i64, u64)> = valid
            .iter()
            .map(|((_, ts), cells)| (*ts, *cells.iter().min().unwrap()))
            .collect();
        expected.sort_unstable();
        prop_assert_eq!(kept, expected);

        // The derived period spans the valid pings' local dates, so it drops nothing.
        if !given_period && report.pings_kept > 0 {
            let period = report.period.unwrap();
            let first = prepared.pings().ts().iter().min().unwrap();
            let last = prepared.pings().ts().iter().max().unwrap();
            prop_assert_eq!(period, brussels_period(*first, *last + DAY));
        }
    }
}
