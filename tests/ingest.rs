//! Ingestion through the public API (method §1–3): reading every supported column type,
//! each cleaning reason and their order, the period, pseudonyms, location, errors, and
//! that raw ids and the key never leak.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, LargeStringArray, ListArray, NullArray, RecordBatch,
    StringArray, StringViewArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
};
use arrow_schema::ArrowError;
use crowdtally::geo::UNKNOWN_REGION;
use crowdtally::{
    Config, Error, Key, LocatedPings, OptOut, PingColumns, Prepared, SubscriberId, SubscriberKind,
};
use crowdtally_harness::{
    GeographyBuilder, KEY, KORTRIJK_CELL, MARKT_CELL, MARKT_POINT, MENEN_CELL, OUTSIDE_CELL,
    OUTSIDE_POINT, Ping, QUIET_CELL, QUIET_POINT, RESOLUTION, STATION_CELL, STATION_POINT,
    STREET_CELL, STREET_POINT, T0, assert_consistent, batch, brussels_period, config,
    fixture_geography, floats, ints, record_batch, texts, uints,
};
use h3o::{CellIndex, LatLng, Resolution};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Prepares the batches with the fixture geography and checks the invariants.
fn run(batches: Vec<RecordBatch>, config: &Config) -> Prepared {
    let prepared = crowdtally_harness::prepare(batches, &fixture_geography(), config)
        .unwrap_or_else(|e| panic!("prepare failed: {e}"));
    assert_consistent(&prepared);
    prepared
}

/// Prepares the batches with the fixture geography, expecting an error.
fn run_err(batches: Vec<RecordBatch>, config: &Config, columns: &PingColumns) -> Error {
    crowdtally_harness::prepare_with(
        batches.into_iter().map(Ok),
        &fixture_geography(),
        config,
        columns,
    )
    .expect_err("prepare should fail")
}

fn with_opt_out(ids: Vec<SubscriberId>) -> Config {
    let mut config = config();
    config.opt_out = OptOut::new(ids);
    config
}

fn with_period(start: i64, end: i64) -> Config {
    let mut config = config();
    config.period = Some(brussels_period(start, end));
    config
}

/// The method's pseudonym, computed from its definition (§3).
fn pseudonym(label: &str, subscriber: &[u8]) -> u64 {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
    mac.update(b"crowdtally/v1\x00");
    mac.update(label.as_bytes());
    mac.update(b"\x00");
    mac.update(subscriber);
    let digest = mac.finalize().into_bytes();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn cell9(point: (f64, f64)) -> u64 {
    LatLng::new(point.0, point.1)
        .unwrap()
        .to_cell(Resolution::Nine)
        .into()
}

fn cell(raw: u64) -> CellIndex {
    CellIndex::try_from(raw).unwrap()
}

/// A batch of one subscriber column (and a valid time and position on every row).
fn subscriber_batch(subscriber: ArrayRef) -> RecordBatch {
    let n = subscriber.len();
    let ts: Vec<Option<i64>> = (0..n as i64).map(|i| Some(T0 + 60 * i)).collect();
    record_batch(vec![
        ("subscriber", subscriber),
        ("ts", ints(&ts)),
        ("cell", uints(&vec![Some(MARKT_CELL); n])),
    ])
}

/// A batch of one subscriber `s` at the Grote Markt, with the given time column.
fn ts_batch(ts: ArrayRef) -> RecordBatch {
    let n = ts.len();
    record_batch(vec![
        ("subscriber", texts(&vec![Some("s"); n])),
        ("ts", ts),
        ("cell", uints(&vec![Some(MARKT_CELL); n])),
    ])
}

/// The instant a one-row time column is read as, or `None` when the row is dropped as
/// `bad_ts`.
fn instant_of(ts: ArrayRef, tz: &str) -> Option<i64> {
    assert_eq!(ts.len(), 1);
    let mut config = config();
    tz.clone_into(&mut config.tz);
    let prepared = run(vec![ts_batch(ts)], &config);
    match prepared.pings().ts() {
        [] => {
            assert_eq!(prepared.report().dropped.bad_ts, 1);
            None
        }
        [instant] => Some(*instant),
        more => panic!("one row gave {more:?}"),
    }
}

// --- The fixture ------------------------------------------------------------------------

#[test]
fn fixture_constants_agree_with_h3() {
    for (raw, point) in [
        (MARKT_CELL, MARKT_POINT),
        (STREET_CELL, STREET_POINT),
        (QUIET_CELL, QUIET_POINT),
        (STATION_CELL, STATION_POINT),
        (OUTSIDE_CELL, OUTSIDE_POINT),
    ] {
        assert_eq!(cell9(point), raw, "{point:?}");
        // The points are the cells' centres exactly, as written by Rust's shortest
        // round-trip formatting.
        let centre = LatLng::from(cell(raw));
        assert_eq!(centre.lat().to_bits(), point.0.to_bits());
        assert_eq!(centre.lng().to_bits(), point.1.to_bits());
    }
    let parent = |raw| u64::from(cell(raw).parent(Resolution::Seven).unwrap());
    for raw in [MARKT_CELL, STREET_CELL, QUIET_CELL] {
        assert_eq!(parent(raw), KORTRIJK_CELL);
    }
    assert_eq!(parent(STATION_CELL), MENEN_CELL);
    assert!(![KORTRIJK_CELL, MENEN_CELL].contains(&parent(OUTSIDE_CELL)));
    let ring: Vec<u64> = cell(KORTRIJK_CELL)
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .map(u64::from)
        .collect();
    assert!(ring.contains(&MENEN_CELL));
    let geography = fixture_geography();
    assert_eq!(u8::from(geography.resolution()), RESOLUTION);
    assert_eq!(geography.zone_set_of(cell(QUIET_CELL)), 0);
}

// --- Opt-out ----------------------------------------------------------------------------

#[test]
fn opt_out_of_text_ids() {
    let rows = [
        Ping::at("A", T0, MARKT_POINT),
        Ping::at("B", T0, MARKT_POINT),
        Ping::at("A", T0 + 60, MARKT_POINT),
        Ping::at("B", T0 + 60, MARKT_POINT),
        Ping::at("A", T0 + 120, MARKT_POINT),
    ];
    let config = with_opt_out(vec![
        SubscriberId::Text("A".into()),
        SubscriberId::Text("A".into()),
        SubscriberId::Text("Z".into()),
    ]);
    // The opted-out subscriber appears in two batches; it is one subscriber.
    let prepared = run(vec![batch(&rows[..3]), batch(&rows[3..])], &config);
    let report = prepared.report();
    assert_eq!(report.dropped.opt_out, 3);
    assert_eq!(report.opt_out.pings, 3);
    assert_eq!(report.opt_out.subscribers, 1, "Z is not in the input");
    assert_eq!(report.pings_kept, 2);
    assert_eq!(report.devices, 1);
    assert_eq!(report.subscriber_kind, Some(SubscriberKind::Text));
    let label = report.period_label.as_deref().unwrap();
    assert_eq!(prepared.pings().devices(), [pseudonym(label, b"B")]);
}

#[test]
fn opt_out_of_binary_ids() {
    let ids: Vec<Option<&[u8]>> = vec![
        Some(b"\x00\x01"),
        Some(b"\xff"),
        Some(b"\x00\x01"),
        Some(b""),
    ];
    let subscribers: ArrayRef = Arc::new(BinaryArray::from(ids));
    let config = with_opt_out(vec![
        SubscriberId::Bytes(vec![0, 1]),
        SubscriberId::Bytes(vec![2]),
    ]);
    let prepared = run(vec![subscriber_batch(subscribers.clone())], &config);
    let report = prepared.report();
    assert_eq!(report.subscriber_kind, Some(SubscriberKind::Binary));
    assert_eq!(report.dropped.opt_out, 2);
    assert_eq!(report.opt_out.subscribers, 1);
    let label = report.period_label.as_deref().unwrap();
    let mut expected = vec![pseudonym(label, b"\xff"), pseudonym(label, b"")];
    expected.sort_unstable();
    assert_eq!(prepared.pings().devices(), expected);
    // Text ids do not match a binary column: an error naming `opt_out`, without the id.
    let config = with_opt_out(vec![
        SubscriberId::Bytes(vec![1]),
        SubscriberId::Text("secret-id".into()),
    ]);
    let err = run_err(
        vec![subscriber_batch(subscribers)],
        &config,
        &PingColumns::default(),
    );
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert_eq!(err.field(), Some("opt_out"));
    assert!(err.to_string().contains("#1"), "{err}");
    assert!(!err.to_string().contains("secret-id"));
}

#[test]
fn opt_out_of_integer_ids_reads_text_ids_as_integers() {
    let values = [
        Some(42),
        Some(42),
        Some(7),
        Some(9),
        None,
        Some(-3),
        Some(7),
    ];
    let config = with_opt_out(vec![
        SubscriberId::Integer(42),
        SubscriberId::Text(" 7 ".into()),
        SubscriberId::Text("1000".into()),
    ]);
    let columns: [ArrayRef; 3] = [
        ints(&values),
        Arc::new(Int32Array::from(
            values
                .iter()
                .map(|v| v.map(|v| v as i32))
                .collect::<Vec<_>>(),
        )),
        // The negative id is null here: a uint64 column cannot hold it.
        uints(
            &values
                .iter()
                .map(|v| v.and_then(|v| u64::try_from(v).ok()))
                .collect::<Vec<_>>(),
        ),
    ];
    for subscribers in columns {
        let prepared = run(vec![subscriber_batch(subscribers)], &config);
        let report = prepared.report();
        assert_eq!(report.subscriber_kind, Some(SubscriberKind::Integer));
        assert_eq!(report.dropped.opt_out, 4);
        assert_eq!(report.opt_out.subscribers, 2);
        assert_eq!(report.dropped.bad_subscriber, 2);
        assert_eq!(report.pings_kept, 1);
        let label = report.period_label.as_deref().unwrap();
        assert_eq!(
            prepared.pings().devices(),
            [pseudonym(label, &9_u64.to_be_bytes())]
        );
    }
}

#[test]
fn opt_out_ids_that_are_not_of_the_column_kind_are_config_errors() {
    let subscribers = ints(&[Some(1)]);
    for (id, position) in [
        (SubscriberId::Text("imsi-31415".into()), "#1"),
        (SubscriberId::Integer(-31_415), "#1"),
        (SubscriberId::Bytes(b"31415".to_vec()), "#1"),
    ] {
        let config = with_opt_out(vec![SubscriberId::Integer(1), id]);
        let err = run_err(
            vec![subscriber_batch(subscribers.clone())],
            &config,
            &PingColumns::default(),
        );
        assert_eq!(err.field(), Some("opt_out"), "{err}");
        assert!(err.to_string().contains(position), "{err}");
        assert!(!err.to_string().contains("31415"), "{err}");
    }
}

// --- The cleaning reasons ---------------------------------------------------------------

#[test]
fn bad_subscriber_is_a_null_or_a_negative_integer() {
    let prepared = run(
        vec![subscriber_batch(texts(&[Some("a"), None, Some(""), None]))],
        &config(),
    );
    assert_eq!(prepared.report().dropped.bad_subscriber, 2);
    // An empty string is an id like any other.
    assert_eq!(prepared.report().devices, 2);
    let prepared = run(
        vec![subscriber_batch(ints(&[
            Some(0),
            None,
            Some(-1),
            Some(i64::MIN),
            Some(i64::MAX),
        ]))],
        &config(),
    );
    assert_eq!(prepared.report().dropped.bad_subscriber, 3);
    assert_eq!(prepared.report().devices, 2);
    let negative: ArrayRef = Arc::new(Int32Array::from(vec![Some(-5), Some(5)]));
    let prepared = run(vec![subscriber_batch(negative)], &config());
    assert_eq!(prepared.report().dropped.bad_subscriber, 1);
}

#[test]
fn bad_position_of_lat_lon() {
    let lat_lon = [
        (None, Some(3.27)),
        (Some(50.83), None),
        (None, None),
        (Some(f64::NAN), Some(3.27)),
        (Some(50.83), Some(f64::NAN)),
        (Some(f64::INFINITY), Some(3.27)),
        (Some(50.83), Some(f64::NEG_INFINITY)),
        (Some(90.000_001), Some(3.27)),
        (Some(-90.5), Some(3.27)),
        (Some(50.83), Some(180.000_001)),
        (Some(50.83), Some(-540.0)),
        // The bounds themselves are valid.
        (Some(90.0), Some(180.0)),
        (Some(-90.0), Some(-180.0)),
        (Some(MARKT_POINT.0), Some(MARKT_POINT.1)),
    ];
    let rows: Vec<Ping> = lat_lon
        .iter()
        .enumerate()
        .map(|(i, &(lat, lon))| Ping {
            lat,
            lon,
            ..Ping::at("s", T0 + 60 * i as i64, (0.0, 0.0))
        })
        .collect();
    let prepared = run(vec![batch(&rows)], &config());
    assert_eq!(prepared.report().dropped.bad_position, 11);
    assert_eq!(prepared.report().pings_kept, 3);
    assert_eq!(prepared.pings().cell()[2], MARKT_CELL);
    // Lat/lon may be any numeric type.
    let prepared = run(
        vec![record_batch(vec![
            ("subscriber", texts(&[Some("s")])),
            ("ts", ints(&[Some(T0)])),
            ("lat", Arc::new(Int32Array::from(vec![50]))),
            ("lon", Arc::new(Int32Array::from(vec![3]))),
        ])],
        &config(),
    );
    assert_eq!(prepared.pings().cell(), [cell9((50.0, 3.0))]);
}

#[test]
fn bad_position_of_cells() {
    let markt = cell(MARKT_CELL);
    let edge = u64::from(markt.edges().next().unwrap());
    let vertex = u64::from(markt.vertexes().next().unwrap());
    let coarser = u64::from(markt.parent(Resolution::Eight).unwrap());
    let base = u64::from(markt.parent(Resolution::Zero).unwrap());
    let finest = u64::from(markt.center_child(Resolution::Fifteen).unwrap());
    let values = [
        Some(0),
        Some(u64::MAX),
        Some(MARKT_CELL & !0xf),
        Some(edge),
        Some(vertex),
        Some(coarser),
        Some(base),
        None,
        Some(MARKT_CELL),
        Some(finest),
    ];
    let rows: Vec<Ping> = values
        .iter()
        .enumerate()
        .map(|(i, &cell)| Ping {
            cell,
            ..Ping::in_cell("s", T0 + 60 * i as i64, 0)
        })
        .collect();
    let prepared = run(vec![batch(&rows)], &config());
    assert_eq!(prepared.report().dropped.bad_position, 8);
    assert_eq!(prepared.pings().cell(), [MARKT_CELL, MARKT_CELL]);

    // Signed integers and hexadecimal text.
    let cells: [ArrayRef; 2] = [
        ints(&[Some(-1), Some(MARKT_CELL as i64), Some(0)]),
        texts(&[Some("zz"), Some(" 89194d3a003ffff "), Some("")]),
    ];
    for cells in cells {
        let prepared = run(
            vec![record_batch(vec![
                ("subscriber", texts(&[Some("s"); 3])),
                ("ts", ints(&[Some(T0), Some(T0 + 60), Some(T0 + 120)])),
                ("cell", cells),
            ])],
            &config(),
        );
        assert_eq!(prepared.report().dropped.bad_position, 2);
        assert_eq!(prepared.pings().cell(), [MARKT_CELL]);
    }
}

#[test]
fn a_coarser_analysis_resolution_takes_parents_and_rejects_nothing_finer() {
    // At resolution 7, a resolution-9 cell is finer: it maps to its parent.
    let geography = GeographyBuilder::new(7)
        .region("BE", "country", None, None)
        .region("kortrijk", "municipality", Some("BE"), Some(1))
        .region_cells("kortrijk", &[KORTRIJK_CELL])
        .zone("town", None, &[KORTRIJK_CELL])
        .study_area(&["kortrijk"])
        .build()
        .unwrap();
    let config = config();
    let rows = [
        Ping::in_cell("s", T0, STREET_CELL),
        Ping::at("s", T0 + 60, MARKT_POINT),
    ];
    let prepared = crowdtally_harness::prepare(vec![batch(&rows)], &geography, &config).unwrap();
    assert_consistent(&prepared);
    assert_eq!(prepared.pings().cell(), [KORTRIJK_CELL, KORTRIJK_CELL]);
    assert_eq!(prepared.pings().leaf(), [1, 1]);
    let town = prepared.pings().zone_set()[0];
    assert_eq!(geography.zone_set(town), [0]);
}

#[test]
fn bad_ts_is_a_null_or_an_unparsable_string() {
    let strings = [
        None,
        Some("not a time"),
        Some("2026-02-30 10:00:00"),
        Some("2026-07-01T10:00"),
        Some("2026-07-01 10:00:00 +02:00"),
        Some("2026-07-01T10:00:00+0200"),
        Some("1782892800"),
        Some(""),
        Some("2026-07-01T10:00:00"),
    ];
    let prepared = run(vec![ts_batch(texts(&strings))], &config());
    assert_eq!(prepared.report().dropped.bad_ts, 8);
    assert_eq!(prepared.pings().ts(), [T0]);
    let prepared = run(vec![ts_batch(ints(&[None, Some(T0)]))], &config());
    assert_eq!(prepared.report().dropped.bad_ts, 1);
    let nulls: ArrayRef = Arc::new(NullArray::new(2));
    let prepared = run(vec![ts_batch(nulls)], &config());
    assert_eq!(prepared.report().dropped.bad_ts, 2);
}

#[test]
fn epoch_values_beyond_the_calendar_are_bad_ts() {
    // Milliseconds mistaken for seconds land tens of thousands of years ahead, where no
    // local date exists; they must not stretch or break the derived period.
    let values = [
        Some(T0 * 1_000),
        Some(T0),
        Some(i64::MAX),
        Some(i64::MIN),
        Some(-T0 * 1_000),
    ];
    let prepared = run(vec![ts_batch(ints(&values))], &config());
    assert_eq!(prepared.report().dropped.bad_ts, 4);
    assert_eq!(prepared.pings().ts(), [T0]);
    let period = prepared.report().period.unwrap();
    assert_eq!(period.start.to_string(), "2026-07-01");
    assert_eq!(period.end.to_string(), "2026-07-02");
    // The year 9999 has no next day to end a period on.
    assert_eq!(
        instant_of(texts(&[Some("9999-12-31T12:00:00Z")]), "Europe/Brussels"),
        None
    );
    assert_eq!(
        instant_of(texts(&[Some("9999-12-31T12:00:00")]), "Europe/Brussels"),
        None
    );
    // Long ago is fine.
    assert_eq!(
        instant_of(texts(&[Some("0001-01-01T00:00:00Z")]), "Europe/Brussels"),
        Some(-62_135_596_800)
    );
}

#[test]
fn a_column_of_epoch_milliseconds_is_refused_with_the_fix() {
    // Every value is past the year 3000 as seconds: the column is milliseconds.
    let values: Vec<Option<i64>> = (0..10).map(|i| Some((T0 + i * 3600) * 1_000)).collect();
    let err = run_err(
        vec![ts_batch(ints(&values))],
        &config(),
        &PingColumns::default(),
    );
    assert_eq!(err.field(), Some("ts"), "{err}");
    let message = err.to_string();
    assert!(message.contains("epoch milliseconds") && message.contains("divide by 1000"));
    // Half of them is still the column's unit, not a few bad rows.
    let mut half = values.clone();
    half[..5]
        .iter_mut()
        .for_each(|v| *v = v.map(|ms| ms / 1_000));
    let err = run_err(
        vec![ts_batch(ints(&half))],
        &config(),
        &PingColumns::default(),
    );
    assert_eq!(err.field(), Some("ts"));
}

#[test]
fn outside_period_with_a_given_period() {
    let strings = [
        Some("2026-06-30 23:59:59"),
        Some("2026-07-01 00:00:00"),
        Some("2026-07-01 23:59:59"),
        Some("2026-07-02 00:00:00"),
        Some("2026-06-30T22:00:01Z"),
        Some("2026-06-30T21:59:59Z"),
    ];
    let config = with_period(T0, T0 + DAY);
    let prepared = run(vec![ts_batch(texts(&strings))], &config);
    let report = prepared.report();
    assert_eq!(report.dropped.outside_period, 3);
    assert_eq!(report.pings_kept, 3);
    assert_eq!(report.period, config.period);
    assert_eq!(report.period_label.as_deref(), Some("2026Q3"));
    let midnight = T0 - 10 * HOUR;
    assert_eq!(
        prepared.pings().ts(),
        [midnight, midnight + 1, midnight + DAY - 1]
    );
}

#[test]
fn duplicates_keep_the_smallest_cell_then_the_smallest_country() {
    let mut cells = [MARKT_CELL, STREET_CELL, QUIET_CELL, STATION_CELL];
    cells.sort_unstable();
    let (small, large) = (cells[0], cells[3]);
    let rows = vec![
        // Same second: the smallest cell is kept, whatever the country.
        Ping::in_cell("s", T0, large).country("AA"),
        Ping::in_cell("s", T0, small).country("ZZ"),
        Ping::in_cell("s", T0, cells[1]),
        // Same cell: the smallest upper-cased country, null and empty last.
        Ping::in_cell("s", T0 + 60, MARKT_CELL).country("nl"),
        Ping::in_cell("s", T0 + 60, MARKT_CELL),
        Ping::in_cell("s", T0 + 60, MARKT_CELL).country(" be "),
        Ping::in_cell("s", T0 + 60, MARKT_CELL).country(""),
        Ping::in_cell("s", T0 + 60, MARKT_CELL).country("FR"),
        // Only null and empty: no country.
        Ping::in_cell("s", T0 + 120, MARKT_CELL).country(""),
        Ping::in_cell("s", T0 + 120, MARKT_CELL),
        // A finer cell is compared at the analysis resolution.
        Ping::in_cell(
            "s",
            T0 + 180,
            u64::from(cell(large).center_child(Resolution::Twelve).unwrap()),
        ),
        Ping::in_cell(
            "s",
            T0 + 180,
            u64::from(cell(small).center_child(Resolution::Ten).unwrap()),
        )
        .country("ZZ"),
        // Another subscriber at the same second is no duplicate.
        Ping::in_cell("t", T0, large),
    ];
    let check = |prepared: &Prepared| {
        let report = prepared.report();
        assert_eq!(report.dropped.duplicate, 8);
        assert_eq!(report.pings_kept, 5);
        let label = report.period_label.as_deref().unwrap();
        let s = pseudonym(label, b"s");
        let i = prepared
            .pings()
            .devices()
            .iter()
            .position(|&d| d == s)
            .unwrap();
        let rows = prepared.pings().device_rows(i);
        let pings = prepared.pings();
        assert_eq!(pings.ts()[rows.clone()], [T0, T0 + 60, T0 + 120, T0 + 180]);
        assert_eq!(
            pings.cell()[rows.clone()],
            [small, MARKT_CELL, MARKT_CELL, small]
        );
        let countries: Vec<Option<&str>> = pings.country()[rows]
            .iter()
            .map(|&c| pings.country_code(c))
            .collect();
        assert_eq!(countries, [Some("ZZ"), Some("BE"), None, Some("ZZ")]);
    };
    check(&run(vec![batch(&rows)], &config()));
    let mut reversed = rows.clone();
    reversed.reverse();
    check(&run(vec![batch(&reversed)], &config()));
    // Across batches too.
    let batches = rows.chunks(2).map(batch).collect();
    check(&run(batches, &config()));
    // Fractions of one second are the same second.
    let prepared = run(
        vec![ts_batch(texts(&[
            Some("2026-07-01T08:00:00.2Z"),
            Some("2026-07-01T08:00:00.7Z"),
        ]))],
        &config(),
    );
    assert_eq!(prepared.report().dropped.duplicate, 1);
}

#[test]
fn each_row_counts_under_its_first_reason_only() {
    let opted = "opted";
    let rows = vec![
        // opt_out before everything else.
        Ping {
            ts: None,
            ..Ping::in_cell(opted, T0, 0)
        },
        Ping {
            ts: Some(T0 - 400 * DAY),
            ..Ping::in_cell(opted, T0, MARKT_CELL)
        },
        Ping::in_cell(opted, T0, MARKT_CELL),
        // bad_subscriber before position and time.
        Ping {
            subscriber: None,
            ts: None,
            ..Ping::in_cell("x", T0, 0)
        },
        // bad_position before time and period.
        Ping {
            ts: None,
            ..Ping::in_cell("s", T0, 0)
        },
        Ping::in_cell("s", T0 - 400 * DAY, 1),
        // bad_ts before the period.
        Ping {
            ts: None,
            ..Ping::in_cell("s", T0, MARKT_CELL)
        },
        // outside_period before duplicate: two copies outside count as outside twice.
        Ping::in_cell("s", T0 - 400 * DAY, MARKT_CELL),
        Ping::in_cell("s", T0 - 400 * DAY, MARKT_CELL),
        // duplicate last.
        Ping::in_cell("s", T0, MARKT_CELL),
        Ping::in_cell("s", T0, MARKT_CELL),
    ];
    let mut config = with_period(T0, T0 + DAY);
    config.opt_out = OptOut::new(vec![SubscriberId::Text(opted.into())]);
    let prepared = run(vec![batch(&rows)], &config);
    let dropped = prepared.report().dropped;
    assert_eq!(dropped.opt_out, 3);
    assert_eq!(dropped.bad_subscriber, 1);
    assert_eq!(dropped.bad_position, 2);
    assert_eq!(dropped.bad_ts, 1);
    assert_eq!(dropped.outside_period, 2);
    assert_eq!(dropped.duplicate, 1);
    assert_eq!(prepared.report().pings_kept, 1);
    assert_eq!(prepared.report().pings_read, rows.len() as u64);
    assert_eq!(prepared.report().opt_out.subscribers, 1);
    // Every reason, by name, in the method's order.
    let names: Vec<&str> = crowdtally::DropReason::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    assert_eq!(
        names,
        [
            "opt_out",
            "bad_subscriber",
            "bad_position",
            "bad_ts",
            "outside_period",
            "duplicate"
        ]
    );
    let json = prepared.report().to_json();
    for name in names {
        assert!(json["dropped"][name].is_u64(), "{name} in {json}");
    }
}

// --- Positions --------------------------------------------------------------------------

#[test]
fn a_finer_cell_maps_to_its_parent_and_is_located() {
    let street = cell(STREET_CELL);
    let rows: Vec<Ping> = [Resolution::Ten, Resolution::Twelve, Resolution::Fifteen]
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ping::in_cell(
                "s",
                T0 + 60 * i as i64,
                street.center_child(r).unwrap().into(),
            )
        })
        .collect();
    let prepared = run(vec![batch(&rows)], &config());
    let geography = fixture_geography();
    let kortrijk = geography.regions().index_of("kortrijk").unwrap();
    assert_eq!(prepared.pings().cell(), [STREET_CELL; 3]);
    assert_eq!(prepared.pings().leaf(), [kortrijk; 3]);
    let zones = geography.zone_set(prepared.pings().zone_set()[0]);
    let ids: Vec<&str> = zones
        .iter()
        .map(|&z| geography.zones()[z as usize].id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["shopping", "museum", "category:culture", "category:retail"]
    );
}

#[test]
fn the_cell_wins_where_given_and_lat_lon_serve_where_it_is_null() {
    let rows = vec![
        Ping {
            cell: Some(STATION_CELL),
            ..Ping::at("s", T0, MARKT_POINT)
        },
        Ping {
            cell: None,
            ..Ping::at("s", T0 + 60, MARKT_POINT)
        },
        // An invalid cell is a bad position, even with a good lat/lon.
        Ping {
            cell: Some(1),
            ..Ping::at("s", T0 + 120, MARKT_POINT)
        },
        Ping {
            cell: None,
            lat: None,
            ..Ping::at("s", T0 + 180, MARKT_POINT)
        },
        // A cell alone, with null lat/lon.
        Ping {
            lat: None,
            lon: None,
            ..Ping::in_cell("s", T0 + 240, QUIET_CELL)
        },
    ];
    let prepared = run(vec![batch(&rows)], &config());
    assert_eq!(prepared.report().dropped.bad_position, 2);
    assert_eq!(
        prepared.pings().cell(),
        [STATION_CELL, MARKT_CELL, QUIET_CELL]
    );
    // Without a cell column, lat/lon alone; without lat/lon, the cell alone.
    let lat_lon_only = record_batch(vec![
        ("subscriber", texts(&[Some("s")])),
        ("ts", ints(&[Some(T0)])),
        ("lat", floats(&[Some(STATION_POINT.0)])),
        ("lon", floats(&[Some(STATION_POINT.1)])),
    ]);
    assert_eq!(
        run(vec![lat_lon_only], &config()).pings().cell(),
        [STATION_CELL]
    );
    // A cell column beside a lone latitude column is enough.
    let cell_and_lat = record_batch(vec![
        ("subscriber", texts(&[Some("s")])),
        ("ts", ints(&[Some(T0)])),
        ("cell", uints(&[Some(STATION_CELL)])),
        ("lat", floats(&[Some(1.0)])),
    ]);
    assert_eq!(
        run(vec![cell_and_lat], &config()).pings().cell(),
        [STATION_CELL]
    );
}

#[test]
fn pings_are_located_in_leaves_and_zones() {
    let rows = vec![
        Ping::at("s", T0, MARKT_POINT),
        Ping::at("s", T0 + 60, STATION_POINT),
        Ping::at("s", T0 + 120, OUTSIDE_POINT).country("nl"),
        Ping::at("s", T0 + 180, QUIET_POINT),
    ];
    let prepared = run(vec![batch(&rows)], &config());
    let geography = fixture_geography();
    let index = |id| geography.regions().index_of(id).unwrap();
    let pings = prepared.pings();
    assert_eq!(
        pings.leaf(),
        [
            index("kortrijk"),
            index("menen"),
            UNKNOWN_REGION,
            index("kortrijk")
        ]
    );
    assert!(geography.in_study_area(pings.leaf()[0]));
    assert!(!geography.in_study_area(pings.leaf()[1]));
    assert_eq!(pings.zone_set()[2], 0);
    assert_eq!(pings.zone_set()[3], 0);

    let out = pings.to_record_batch(&geography).unwrap();
    assert_eq!(out.schema(), crowdtally::LocatedPings::schema());
    assert_eq!(out.num_rows(), 4);
    let region = string_values(out.column(3));
    assert_eq!(region, ["kortrijk", "menen", "unknown", "kortrijk"]);
    let zones = out.column(4).as_any().downcast_ref::<ListArray>().unwrap();
    let zone_ids = |row: usize| -> Vec<String> {
        let list = zones.value(row);
        let list = list.as_any().downcast_ref::<StringArray>().unwrap();
        list.iter().map(|v| v.unwrap().to_owned()).collect()
    };
    assert_eq!(
        zone_ids(0),
        [
            "grote-markt",
            "shopping",
            "category:culture",
            "category:retail"
        ]
    );
    assert_eq!(zone_ids(1), ["station"]);
    assert!(zone_ids(2).is_empty());
    let country = out
        .column(5)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        country.iter().collect::<Vec<_>>(),
        [None, None, Some("NL"), None]
    );
    let ts = out
        .column(1)
        .as_any()
        .downcast_ref::<TimestampSecondArray>()
        .unwrap();
    assert_eq!(ts.values().to_vec(), [T0, T0 + 60, T0 + 120, T0 + 180]);
    let cells = out
        .column(2)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    assert_eq!(
        cells.values().to_vec(),
        [MARKT_CELL, STATION_CELL, OUTSIDE_CELL, QUIET_CELL]
    );
}

/// The values of a dictionary-encoded or plain string column.
fn string_values(array: &ArrayRef) -> Vec<String> {
    if let Some(plain) = array.as_any().downcast_ref::<StringArray>() {
        return plain
            .iter()
            .map(|v| v.unwrap_or("<null>").to_owned())
            .collect();
    }
    let dictionary = array
        .as_any()
        .downcast_ref::<arrow_array::DictionaryArray<arrow_array::types::UInt32Type>>()
        .expect("a string dictionary");
    let values = dictionary
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    dictionary
        .keys()
        .iter()
        .map(|k| k.map_or("<null>".to_owned(), |k| values.value(k as usize).to_owned()))
        .collect()
}

#[test]
fn countries_are_trimmed_and_upper_cased() {
    let rows = vec![
        Ping::at("s", T0, MARKT_POINT).country(" nl "),
        Ping::at("s", T0 + 60, MARKT_POINT).country("NL"),
        Ping::at("s", T0 + 120, MARKT_POINT).country("be"),
        Ping::at("s", T0 + 180, MARKT_POINT).country("  "),
        Ping::at("s", T0 + 240, MARKT_POINT),
    ];
    let prepared = run(vec![batch(&rows)], &config());
    let pings = prepared.pings();
    let codes: Vec<Option<&str>> = pings
        .country()
        .iter()
        .map(|&c| pings.country_code(c))
        .collect();
    assert_eq!(codes, [Some("NL"), Some("NL"), Some("BE"), None, None]);
    assert_eq!(pings.country()[0], pings.country()[1]);
    assert_eq!(pings.country()[3], LocatedPings::NO_COUNTRY);
    // A null-typed country column is no country.
    let prepared = run(
        vec![record_batch(vec![
            ("subscriber", texts(&[Some("s")])),
            ("ts", ints(&[Some(T0)])),
            ("cell", uints(&[Some(MARKT_CELL)])),
            ("country", Arc::new(NullArray::new(1))),
        ])],
        &config(),
    );
    assert_eq!(prepared.pings().country(), [LocatedPings::NO_COUNTRY]);
}

// --- Time -------------------------------------------------------------------------------

#[test]
fn arrow_timestamps_of_every_unit_and_zone_are_utc_and_floored() {
    let tokyo_ns: ArrayRef = Arc::new(
        TimestampNanosecondArray::from(vec![T0 * 1_000_000_000 + 999_999_999])
            .with_timezone("Asia/Tokyo"),
    );
    assert_eq!(instant_of(tokyo_ns, "Europe/Brussels"), Some(T0));
    let naive_ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![T0 * 1_000 + 999]));
    assert_eq!(instant_of(naive_ms, "Europe/Brussels"), Some(T0));
    // Negative values floor towards the past.
    for (millis, seconds) in [
        (-1, -1),
        (-1_000, -1),
        (-1_001, -2),
        (-1_500, -2),
        (-2_000, -2),
    ] {
        let ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![millis]));
        assert_eq!(
            instant_of(ms, "Europe/Brussels"),
            Some(seconds),
            "{millis} ms"
        );
    }
    let us: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![-1]).with_timezone("+05:30"));
    assert_eq!(instant_of(us, "Europe/Brussels"), Some(-1));
    let s: ArrayRef = Arc::new(TimestampSecondArray::from(vec![T0]).with_timezone("UTC"));
    assert_eq!(instant_of(s, "Asia/Tokyo"), Some(T0));
    // Integer epoch seconds, of any width.
    assert_eq!(instant_of(ints(&[Some(-1)]), "Europe/Brussels"), Some(-1));
    assert_eq!(instant_of(ints(&[Some(T0)]), "Asia/Tokyo"), Some(T0));
    let narrow: ArrayRef = Arc::new(Int32Array::from(vec![T0 as i32]));
    assert_eq!(instant_of(narrow, "Europe/Brussels"), Some(T0));
}

#[test]
fn timestamp_strings_with_fractions_z_and_offsets() {
    let brussels = |s: &str| instant_of(texts(&[Some(s)]), "Europe/Brussels");
    assert_eq!(brussels("2026-07-01T08:00:00Z"), Some(T0));
    assert_eq!(brussels("2026-07-01 08:00:00.999999999999Z"), Some(T0));
    assert_eq!(brussels("2026-07-01T08:00:00.5z"), Some(T0));
    assert_eq!(brussels("2026-07-01T10:00:00+02:00"), Some(T0));
    assert_eq!(brussels("2026-07-01T06:30:00.1-01:30"), Some(T0));
    assert_eq!(brussels("1969-12-31T23:59:59.5Z"), Some(-1));
    // Without an offset: local time in the configured zone.
    assert_eq!(brussels("2026-07-01T10:00:00"), Some(T0));
    assert_eq!(brussels("2026-07-01 10:00:00.123456"), Some(T0));
    assert_eq!(brussels("2026-01-15 09:00:00"), Some(1_768_464_000));
    assert_eq!(
        instant_of(texts(&[Some("2026-07-01 17:00:00")]), "Asia/Tokyo"),
        Some(T0)
    );
    assert_eq!(
        instant_of(texts(&[Some("2026-07-01 17:00:00Z")]), "Asia/Tokyo"),
        Some(T0 + 9 * HOUR)
    );
}

#[test]
fn local_strings_in_the_dst_fold_and_gap() {
    let brussels = |s: &str| instant_of(texts(&[Some(s)]), "Europe/Brussels");
    // Autumn fold, 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the earlier.
    let fold = brussels("2026-10-25 02:30:00");
    assert_eq!(fold, Some(1_792_888_200));
    assert_eq!(fold, brussels("2026-10-25T02:30:00+02:00"));
    assert_eq!(
        brussels("2026-10-25T02:30:00+01:00"),
        Some(1_792_888_200 + HOUR)
    );
    assert_eq!(brussels("2026-10-25 01:59:59"), Some(1_792_888_200 - 1_801));
    assert_eq!(
        brussels("2026-10-25 03:00:00"),
        Some(1_792_888_200 + HOUR + 1_800)
    );
    // Spring gap, 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist; it moves
    // forward by the gap, to 03:30 CEST.
    let gap = brussels("2026-03-29 02:30:00");
    assert_eq!(gap, Some(1_774_747_800));
    assert_eq!(gap, brussels("2026-03-29T03:30:00+02:00"));
    assert_eq!(brussels("2026-03-29 01:59:59"), Some(1_774_747_800 - 1_801));
    assert_eq!(brussels("2026-03-29 03:00:00"), Some(1_774_747_800 - 1_800));
    // Many rows in one column, across both transitions, agree with one-row reading.
    let strings = [
        "2026-03-29 01:30:00",
        "2026-03-29 02:30:00",
        "2026-03-29 03:30:00",
        "2026-10-25 01:30:00",
        "2026-10-25 02:30:00",
        "2026-10-25 03:30:00",
    ];
    let column: Vec<Option<&str>> = strings.iter().map(|&s| Some(s)).collect();
    let prepared = run(vec![ts_batch(texts(&column))], &config());
    // 02:30 and 03:30 of the spring day are one instant: a duplicate.
    assert_eq!(prepared.report().dropped.duplicate, 1);
    let mut expected: Vec<i64> = strings.iter().map(|s| brussels(s).unwrap()).collect();
    expected.dedup();
    assert_eq!(prepared.pings().ts(), expected);
}

#[test]
fn string_columns_of_every_layout() {
    let values = vec![
        Some("2026-07-01T10:00:00"),
        None,
        Some("2026-07-01T08:01:00Z"),
    ];
    let large: ArrayRef = Arc::new(LargeStringArray::from(values.clone()));
    let view: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
    let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
    for value in &values {
        dictionary.append_option(*value);
    }
    let dictionary: ArrayRef = Arc::new(dictionary.finish());
    for ts in [texts(&values), large, view, dictionary] {
        let prepared = run(vec![ts_batch(ts.clone())], &config());
        assert_eq!(prepared.pings().ts(), [T0, T0 + 60], "{:?}", ts.data_type());
        assert_eq!(prepared.report().dropped.bad_ts, 1);
        // The same layouts hold subscriber ids.
        let text_ids = run(vec![subscriber_batch(texts(&values))], &config());
        let prepared = run(vec![subscriber_batch(ts)], &config());
        assert_eq!(prepared.pings().devices(), text_ids.pings().devices());
    }
}

// --- The period -------------------------------------------------------------------------

#[test]
fn the_default_period_runs_over_the_local_dates_of_the_valid_pings() {
    let opted = "opted";
    let rows = vec![
        // 2026-06-30T22:30Z is 2026-07-01 00:30 in Brussels.
        Ping::in_cell("s", T0 - 9 * HOUR - 30 * 60, MARKT_CELL),
        Ping::in_cell("s", T0 + 30 * DAY, MARKT_CELL),
        // 2026-09-30T21:30Z is 2026-09-30 23:30 in Brussels.
        Ping::in_cell("t", 1_790_803_800, MARKT_CELL),
        // Pings dropped before the period is derived do not stretch it.
        Ping::in_cell("t", T0 - 100 * DAY, 0),
        Ping::in_cell(opted, T0 + 200 * DAY, MARKT_CELL),
        Ping {
            subscriber: None,
            ..Ping::in_cell("x", T0 - 200 * DAY, MARKT_CELL)
        },
        // Duplicates count as valid for the period.
        Ping::in_cell("t", 1_790_803_800, STREET_CELL),
    ];
    let config = with_opt_out(vec![SubscriberId::Text(opted.into())]);
    let prepared = run(vec![batch(&rows)], &config);
    let period = prepared.report().period.unwrap();
    assert_eq!(period.start.to_string(), "2026-07-01");
    assert_eq!(period.end.to_string(), "2026-10-01");
    assert_eq!(period.days(), 92);
    assert_eq!(prepared.report().period_label.as_deref(), Some("2026Q3"));
    assert_eq!(prepared.report().dropped.outside_period, 0);
    assert_eq!(prepared.report().dropped.duplicate, 1);
    assert_eq!(prepared.pings().period, Some(period));

    // The label follows the start's quarter.
    let prepared = run(
        vec![batch(&[Ping::in_cell("s", 1_798_671_600, MARKT_CELL)])],
        &config,
    );
    let period = prepared.report().period.unwrap();
    assert_eq!(period.start.to_string(), "2026-12-31");
    assert_eq!(period.end.to_string(), "2027-01-01");
    assert_eq!(prepared.report().period_label.as_deref(), Some("2026Q4"));
}

#[test]
fn a_given_label_rotates_the_pseudonyms() {
    let rows = [Ping::at("206010000000001", T0, MARKT_POINT)];
    let default = run(vec![batch(&rows)], &config());
    assert_eq!(
        default.pings().devices(),
        [pseudonym("2026Q3", b"206010000000001")]
    );
    let mut config = config();
    config.period_label = Some("release-7".into());
    let relabelled = run(vec![batch(&rows)], &config);
    assert_eq!(
        relabelled.report().period_label.as_deref(),
        Some("release-7")
    );
    assert_eq!(
        relabelled.pings().devices(),
        [pseudonym("release-7", b"206010000000001")]
    );
    assert_ne!(relabelled.pings().devices(), default.pings().devices());
    // Another key gives other pseudonyms.
    config.key = Key::new(b"another key of 16+ bytes".to_vec());
    let rekeyed = run(vec![batch(&rows)], &config);
    assert_ne!(rekeyed.pings().devices(), relabelled.pings().devices());
}

// --- Pseudonyms -------------------------------------------------------------------------

#[test]
fn devices_are_the_method_hmac_of_the_subscriber_bytes() {
    let label = "2026Q3";
    let text = run(
        vec![subscriber_batch(texts(&[
            Some("206010000000001"),
            Some("42"),
        ]))],
        &config(),
    );
    let mut expected = vec![
        pseudonym(label, b"206010000000001"),
        pseudonym(label, b"42"),
    ];
    expected.sort_unstable();
    assert_eq!(text.pings().devices(), expected);
    assert_eq!(text.report().pseudonym_collisions, 0);

    let integer_columns: [ArrayRef; 3] = [
        ints(&[Some(42)]),
        uints(&[Some(42)]),
        Arc::new(Int32Array::from(vec![42])),
    ];
    for column in integer_columns {
        let integer = run(vec![subscriber_batch(column)], &config());
        assert_eq!(
            integer.pings().devices(),
            [pseudonym(label, &42_u64.to_be_bytes())]
        );
        assert!(
            !text
                .pings()
                .devices()
                .contains(&integer.pings().devices()[0]),
            "\"42\" and 42 differ"
        );
    }
    let big = run(vec![subscriber_batch(uints(&[Some(u64::MAX)]))], &config());
    assert_eq!(
        big.pings().devices(),
        [pseudonym(label, &u64::MAX.to_be_bytes())]
    );

    let binary: ArrayRef = Arc::new(BinaryArray::from(vec![&b"42"[..]]));
    let binary = run(vec![subscriber_batch(binary)], &config());
    // The bytes of a binary id are hashed as they are, like the bytes of a string.
    assert_eq!(binary.pings().devices(), [pseudonym(label, b"42")]);
    // Every ping carries its device.
    let pings = &text.pings();
    for (i, &device) in pings.devices().iter().enumerate() {
        assert!(
            pings.device()[pings.device_rows(i)]
                .iter()
                .all(|&d| d == device)
        );
    }
}

#[test]
fn a_dictionary_subscriber_column_reads_as_its_values() {
    let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
    for value in ["a", "b", "a"] {
        dictionary.append_value(value);
    }
    dictionary.append_null();
    let dictionary: ArrayRef = Arc::new(dictionary.finish());
    let plain = run(
        vec![subscriber_batch(texts(&[
            Some("a"),
            Some("b"),
            Some("a"),
            None,
        ]))],
        &config(),
    );
    let encoded = run(vec![subscriber_batch(dictionary)], &config());
    assert_eq!(encoded.pings().devices(), plain.pings().devices());
    assert_eq!(encoded.report(), plain.report());
}

#[test]
fn an_all_null_first_batch_does_not_fix_the_subscriber_kind() {
    // Arrow writers type a column with no value at all as Null.
    let nulls = record_batch(vec![
        ("subscriber", Arc::new(NullArray::new(2))),
        ("ts", ints(&[Some(T0), Some(T0 + 60)])),
        ("cell", uints(&[Some(MARKT_CELL); 2])),
    ]);
    let integers = subscriber_batch(ints(&[Some(42), Some(7)]));
    let config = with_opt_out(vec![SubscriberId::Integer(7)]);
    let prepared = run(vec![nulls.clone(), integers.clone()], &config);
    assert_eq!(prepared.report().dropped.bad_subscriber, 2);
    assert_eq!(prepared.report().dropped.opt_out, 1);
    assert_eq!(
        prepared.report().subscriber_kind,
        Some(SubscriberKind::Integer)
    );
    assert_eq!(
        prepared.pings().devices(),
        [pseudonym("2026Q3", &42_u64.to_be_bytes())]
    );
    // And after typed batches, a null batch is fine too.
    let prepared = run(vec![integers, nulls.clone()], &config);
    assert_eq!(prepared.report().dropped.bad_subscriber, 2);
    // Only nulls: every row is a bad subscriber.
    let prepared = run(vec![nulls], &config);
    assert_eq!(prepared.report().dropped.bad_subscriber, 2);
    assert_eq!(prepared.report().pings_kept, 0);
}

#[test]
fn subscriber_kinds_must_agree_across_batches() {
    let err = run_err(
        vec![
            subscriber_batch(texts(&[Some("42")])),
            subscriber_batch(ints(&[Some(42)])),
        ],
        &config(),
        &PingColumns::default(),
    );
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    assert_eq!(err.field(), Some("subscriber"));
    assert!(
        err.to_string().contains("Integer") && err.to_string().contains("Text"),
        "{err}"
    );
}

// --- Empty input ------------------------------------------------------------------------

#[test]
fn empty_input_gives_an_empty_result() {
    let geography = fixture_geography();
    for batches in [vec![], vec![batch(&[])]] {
        let prepared = run(batches, &config());
        let report = prepared.report();
        assert_eq!(report.pings_read, 0);
        assert_eq!(report.pings_kept, 0);
        assert_eq!(report.dropped.total(), 0);
        assert_eq!(report.devices, 0);
        assert_eq!(report.opt_out.subscribers, 0);
        assert_eq!(report.period, None);
        assert_eq!(report.period_label, None);
        assert_eq!(report.tz, "Europe/Brussels");
        assert_eq!(report.resolution, 9);
        assert!(prepared.pings().is_empty());
        assert!(prepared.pings().devices().is_empty());
        assert_eq!(
            prepared
                .pings()
                .to_record_batch(&geography)
                .unwrap()
                .num_rows(),
            0
        );
    }
    // With a given period, the period and its label are known.
    let config = with_period(T0, T0 + 7 * DAY);
    let prepared = run(vec![], &config);
    assert_eq!(prepared.report().period, config.period);
    assert_eq!(prepared.report().period_label.as_deref(), Some("2026Q3"));
    assert!(prepared.pings().is_empty());
    // Rows that are all dropped are counted, and leave no period to derive.
    let rows = [
        Ping::in_cell("s", T0, 0),
        Ping {
            ts: None,
            ..Ping::in_cell("s", T0, MARKT_CELL)
        },
    ];
    let prepared = run(vec![batch(&rows)], &crowdtally_harness::config());
    assert_eq!(prepared.report().pings_read, 2);
    assert_eq!(prepared.report().dropped.bad_position, 1);
    assert_eq!(prepared.report().dropped.bad_ts, 1);
    assert_eq!(prepared.report().period, None);
    assert!(prepared.pings().is_empty());
}

// --- Errors -----------------------------------------------------------------------------

#[test]
fn missing_columns_are_named() {
    let full = batch(&[Ping::at("s", T0, MARKT_POINT)]);
    let without = |names: &[&str]| {
        let keep: Vec<usize> = (0..full.num_columns())
            .filter(|&i| !names.contains(&full.schema().field(i).name().as_str()))
            .collect();
        full.project(&keep).unwrap()
    };
    let columns = PingColumns::default();
    for (removed, named, mentions) in [
        (&["subscriber"][..], "subscriber", "missing"),
        (&["ts"][..], "ts", "missing"),
        (&["cell", "lat", "lon"][..], "cell", "`lat`/`lon`"),
        (&["cell", "lon"][..], "lon", "missing"),
        (&["cell", "lat"][..], "lat", "missing"),
    ] {
        let err = run_err(vec![without(removed)], &config(), &columns);
        assert!(matches!(err, Error::Input { .. }), "{err:?}");
        assert_eq!(err.field(), Some(named), "{err}");
        assert!(err.to_string().contains(mentions), "{err}");
    }
    // The message lists the columns that are there.
    let err = run_err(vec![without(&["subscriber"])], &config(), &columns);
    assert!(err.to_string().contains("\"ts\""), "{err}");
    // Country is optional.
    run(vec![without(&["country"])], &config());
}

#[test]
fn columns_of_unusable_types_are_named() {
    for (name, array) in [
        ("subscriber", floats(&[Some(1.0)])),
        ("ts", floats(&[Some(1.0)])),
        ("lat", texts(&[Some("50.8")])),
        ("lon", texts(&[Some("3.2")])),
        ("cell", floats(&[Some(1.0)])),
        ("country", ints(&[Some(32)])),
    ] {
        let mut columns = vec![
            ("subscriber", texts(&[Some("s")])),
            ("ts", ints(&[Some(T0)])),
            ("lat", floats(&[Some(MARKT_POINT.0)])),
            ("lon", floats(&[Some(MARKT_POINT.1)])),
            ("country", texts(&[Some("BE")])),
        ];
        match columns.iter_mut().find(|(n, _)| *n == name) {
            Some(column) => column.1 = array,
            None => columns.push((name, array)),
        }
        let err = run_err(
            vec![record_batch(columns)],
            &config(),
            &PingColumns::default(),
        );
        assert!(matches!(err, Error::Input { .. }), "{name}: {err:?}");
        assert_eq!(err.field(), Some(name), "{err}");
        assert!(err.to_string().contains("Arrow type"), "{err}");
    }
}

#[test]
fn invalid_fields_are_raised_before_any_work() {
    // The analysis resolution is the geography's: the report says which.
    let prepared = run(vec![batch(&[Ping::at("s", T0, MARKT_POINT)])], &config());
    assert_eq!(prepared.report().resolution, 9);
    // Every invalid field is raised before any work.
    let mut config = crowdtally_harness::config();
    config.key = Key::new(b"short".to_vec());
    let err = run_err(vec![], &config, &PingColumns::default());
    assert_eq!(err.field(), Some("key"));
    let mut config = crowdtally_harness::config();
    config.tz = "Europe/Kortrijk".into();
    assert_eq!(
        run_err(vec![], &config, &PingColumns::default()).field(),
        Some("tz")
    );
}

#[test]
fn an_error_from_the_batch_source_is_returned() {
    let batches = vec![
        Ok(batch(&[Ping::at("s", T0, MARKT_POINT)])),
        Err(ArrowError::IoError(
            "disk".into(),
            std::io::Error::other("gone"),
        )),
    ];
    let err = crowdtally_harness::prepare_with(
        batches,
        &fixture_geography(),
        &config(),
        &PingColumns::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Arrow(_)), "{err:?}");
}

#[test]
fn a_custom_column_mapping_is_followed() {
    let columns = PingColumns {
        subscriber: "imsi".into(),
        ts: "event_time".into(),
        lat: "y".into(),
        lon: "x".into(),
        cell: "h3".into(),
        country: "home".into(),
    };
    let renamed = record_batch(vec![
        ("imsi", texts(&[Some("a"), Some("b"), Some("a")])),
        ("event_time", ints(&[Some(T0), Some(T0), Some(T0 + 60)])),
        (
            "y",
            floats(&[Some(MARKT_POINT.0), None, Some(STATION_POINT.0)]),
        ),
        (
            "x",
            floats(&[Some(MARKT_POINT.1), None, Some(STATION_POINT.1)]),
        ),
        ("h3", uints(&[None, Some(QUIET_CELL), None])),
        ("home", texts(&[Some("nl"), None, None])),
        // Columns with the default names are not read.
        ("subscriber", texts(&[None, None, None])),
        ("ts", texts(&[None, None, None])),
        ("cell", uints(&[Some(0), Some(0), Some(0)])),
    ]);
    let mapped = crowdtally_harness::prepare_with(
        [Ok(renamed.clone())],
        &fixture_geography(),
        &config(),
        &columns,
    )
    .unwrap();
    assert_consistent(&mapped);
    let rows = [
        Ping::at("a", T0, MARKT_POINT).country("nl"),
        Ping::in_cell("b", T0, QUIET_CELL),
        Ping::at("a", T0 + 60, STATION_POINT),
    ];
    let default = run(vec![batch(&rows)], &config());
    assert_eq!(mapped.report(), default.report());
    assert_eq!(mapped.pings().device(), default.pings().device());
    assert_eq!(mapped.pings().cell(), default.pings().cell());
    assert_eq!(mapped.pings().country(), default.pings().country());
    // Errors name the user's column.
    let without_ts = renamed.project(&[0, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let err = crowdtally_harness::prepare_with(
        [Ok(without_ts)],
        &fixture_geography(),
        &config(),
        &columns,
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("event_time"));
    let err = crowdtally_harness::prepare_with(
        [Ok(batch(&rows))],
        &fixture_geography(),
        &config(),
        &columns,
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("imsi"));
}

// --- No leak ----------------------------------------------------------------------------

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "every output a raw id or the key could reach, checked in one place"
)]
fn raw_ids_and_the_key_never_leak() {
    const TEXT_IDS: [&str; 2] = ["206019876543210", "32470123456"];
    const INTEGER_IDS: [i64; 2] = [206_011_234_567_890, 31_415_926_535];
    let key_text = std::str::from_utf8(KEY).unwrap();
    let key_hex = KEY.iter().fold(String::new(), |mut hex, b| {
        write!(hex, "{b:02x}").expect("writing to a string");
        hex
    });
    let mut secrets: Vec<String> = TEXT_IDS.iter().map(|s| (*s).to_owned()).collect();
    secrets.extend(INTEGER_IDS.iter().map(ToString::to_string));
    secrets.extend(INTEGER_IDS.iter().map(|i| format!("{i:x}")));
    secrets.extend([key_text.to_owned(), key_hex, "fixture key".to_owned()]);
    let check = |what: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows {secret:?}: {text}"
            );
        }
    };

    let mut config = config();
    config.opt_out = OptOut::new(vec![
        SubscriberId::Text(TEXT_IDS[1].into()),
        SubscriberId::Text(INTEGER_IDS[1].to_string()),
    ]);
    check("config", &format!("{config:?}"));
    let geography = fixture_geography();

    let text_rows: Vec<Ping> = TEXT_IDS
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            [
                Ping::at(id, T0 + i as i64, MARKT_POINT).country("nl"),
                Ping::at(id, T0 + 3_600, OUTSIDE_POINT),
            ]
        })
        .collect();
    let integer_batch = subscriber_batch(ints(&INTEGER_IDS.map(Some)));
    let mut integer_config = config.clone();
    integer_config.opt_out = OptOut::new(vec![SubscriberId::Integer(i128::from(INTEGER_IDS[1]))]);
    for (prepared, raw_devices) in [
        (run(vec![batch(&text_rows)], &config), vec![]),
        (
            run(vec![integer_batch.clone()], &integer_config),
            INTEGER_IDS.iter().map(|&i| i as u64).collect(),
        ),
    ] {
        assert!(prepared.report().pings_kept > 0);
        check("Prepared", &format!("{prepared:?}"));
        check("Prepared (pretty)", &format!("{prepared:#?}"));
        check("report", &format!("{:?}", prepared.report()));
        check("report JSON", &prepared.report().to_json().to_string());
        let out = prepared.pings().to_record_batch(&geography).unwrap();
        check("located batch", &format!("{out:?}"));
        let devices = out
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        for device in devices.values() {
            assert!(!raw_devices.contains(device), "a device is a raw id");
        }
        for column in out.columns() {
            check("column", &format!("{column:?}"));
        }
    }

    // Errors raised with these inputs show none of them either.
    let binary: ArrayRef = Arc::new(BinaryArray::from(vec![TEXT_IDS[0].as_bytes()]));
    let mut errors = vec![
        // Subscriber kinds that differ between batches.
        run_err(
            vec![batch(&text_rows), integer_batch.clone()],
            &config,
            &PingColumns::default(),
        ),
        // Text opt-out ids for a binary column.
        run_err(
            vec![subscriber_batch(binary)],
            &config,
            &PingColumns::default(),
        ),
        // A missing column.
        run_err(
            vec![integer_batch.project(&[0, 2]).unwrap()],
            &config,
            &PingColumns::default(),
        ),
    ];
    let mut short = config.clone();
    short.key = Key::new(&KEY[..15]);
    errors.push(run_err(
        vec![batch(&text_rows)],
        &short,
        &PingColumns::default(),
    ));
    let text_batch = batch(&text_rows);
    let schema = text_batch.schema();
    let mut columns: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .zip(text_batch.columns().iter().cloned())
        .collect();
    columns[5] = ("country", ints(&[Some(INTEGER_IDS[0]); 4]));
    errors.push(run_err(
        vec![record_batch(columns)],
        &config,
        &PingColumns::default(),
    ));
    for err in &errors {
        check("error", &err.to_string());
        check("error (debug)", &format!("{err:?}"));
    }
    assert!(errors.iter().all(|e| e.field().is_some()));
}
