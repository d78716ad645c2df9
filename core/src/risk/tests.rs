//! The audit's measures on traces made by hand, and the exact counting against brute
//! force.

use h3o::{LatLng, Resolution};
use jiff::civil::date;

use super::*;
use crate::geo::fixtures::{MUNICIPALITY_CENTRES, two_provinces};
use crate::geo::{ZoneCellTable, ZoneTable};
use crate::ingest::{LocatedPings, NO_COUNTRY};
use crate::report::QualityReport;
use crate::{Config, Geography, Key, Period, Study};

/// BE → P1 (m1, m2), P2 (m3); a zone `square` over m1's first cell.
fn geography() -> Geography {
    let (regions, region_cells) = two_provinces(10);
    let zones = ZoneTable {
        zone_id: vec!["square".into()],
        name: vec![None],
        category: vec![Some("culture".into())],
    };
    let zone_cells = ZoneCellTable {
        zone_id: vec!["square".into()],
        cell: vec![cell(0, 0)],
    };
    Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["m1".into()],
    )
    .unwrap()
}

/// Resolution-9 cell `n` of municipality `m` (cells a few hundred metres apart).
fn cell(m: usize, n: usize) -> u64 {
    let (a, o) = MUNICIPALITY_CENTRES[m];
    u64::from(
        LatLng::new(a + 0.004 * n as f64, o)
            .unwrap()
            .to_cell(Resolution::Nine),
    )
}

fn config() -> Config {
    let mut config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
    config.period = Some(period());
    config.k = 2;
    config.min_nights = 1;
    config
}

fn period() -> Period {
    // A Monday to the next Monday.
    Period::new(date(2026, 7, 6), date(2026, 7, 13)).unwrap()
}

/// 2026-07-06 (a Monday) 00:00 UTC, and the hour `h` after it.
fn at(h: i64) -> i64 {
    1_783_296_000 + h * 3_600
}

/// Prepared pings of devices given as (time, municipality, cell) triples.
fn prepared(devices: &[Vec<(i64, usize, usize)>]) -> Prepared {
    let geography = geography();
    let study = Study::new(geography.clone(), config()).unwrap();
    let mut pings = LocatedPings::with_capacity(0, vec![String::new()]);
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for (d, trace) in devices.iter().enumerate() {
        let mut trace = trace.clone();
        trace.sort_unstable();
        for &(ts, m, n) in &trace {
            let c = h3o::CellIndex::try_from(cell(m, n)).unwrap();
            let place = (geography.leaf_of(c), geography.zone_set_of(c));
            pings.push(d as u64, ts, cell(m, n), place, NO_COUNTRY);
        }
        ids.push(d as u64);
        offsets.push(pings.len());
    }
    pings.set_devices(ids, offsets);
    pings.period = Some(period());
    Prepared::new(study, pings, QualityReport::default())
}

/// `n` devices of `points(rng)` random points each, among `hours` hours and `cells`
/// cells of each municipality.
fn random_devices(
    rng: &mut Rng,
    n: usize,
    points: impl Fn(&mut Rng) -> usize,
    hours: u64,
    cells: u64,
) -> Vec<Vec<(i64, usize, usize)>> {
    (0..n)
        .map(|_| {
            (0..points(rng))
                .map(|_| {
                    (
                        at(rng.below(hours) as i64),
                        rng.below(3) as usize,
                        rng.below(cells) as usize,
                    )
                })
                .collect()
        })
        .collect()
}

fn unicity(risk: &Risk, p: u64) -> &RiskRow {
    risk.rows
        .iter()
        .find(|r| r.measure == "unicity" && r.points == Some(p))
        .unwrap()
}

#[test]
fn unicity_on_hand_made_traces() {
    // A and B share their one point; C and D share both of theirs; E is alone.
    let prepared = prepared(&[
        vec![(at(10), 0, 0)],
        vec![(at(10), 0, 0)],
        vec![(at(10), 1, 0), (at(11), 1, 1)],
        vec![(at(10), 1, 0), (at(11), 1, 1)],
        vec![(at(10), 2, 0)],
    ]);
    let spec = RiskSpec {
        points: vec![1, 2, 3],
        ..RiskSpec::default()
    };
    let risk = risk(&prepared, &spec).unwrap();
    let one = unicity(&risk, 1);
    assert_eq!((one.devices, one.unique), (5, 1));
    assert!((one.share_unique - 0.2).abs() < 1e-12);
    // Every device measured: the share is exact.
    assert_eq!((one.share_low, one.share_high), (0.2, 0.2));
    let two = unicity(&risk, 2);
    assert_eq!((two.devices, two.unique), (2, 0));
    let three = unicity(&risk, 3);
    assert_eq!((three.devices, three.unique), (0, 0));
    assert_eq!(risk.report["too_few_points"]["3"], 5);
    // The same traces by zone: only the square is a zone, and only A and B are in it.
    let by_zone = RiskSpec {
        points: vec![1],
        spatial: Spatial::Zone,
        ..RiskSpec::default()
    };
    let zone = super::risk(&prepared, &by_zone).unwrap();
    assert_eq!(
        (unicity(&zone, 1).devices, unicity(&zone, 1).unique),
        (2, 0)
    );
    // By province and day: A and B in P1, C and D in P1, E in P2 → E alone.
    let by_province = RiskSpec {
        points: vec![1],
        spatial: Spatial::Region("province".into()),
        temporal: Temporal::Day,
        ..RiskSpec::default()
    };
    let province = super::risk(&prepared, &by_province).unwrap();
    assert_eq!(unicity(&province, 1).unique, 1);
}

#[test]
fn exact_counting_agrees_with_brute_force() {
    // 300 devices, each one to six points among 39 cells × 6 hours.
    let mut rng = Rng::new(11);
    let devices = random_devices(&mut rng, 300, |rng| 1 + rng.below(6) as usize, 6, 13);
    let prepared = prepared(&devices);
    let spec = RiskSpec::default();
    let period = prepared.pings().period.unwrap();
    let traces = Traces::build(prepared.pings(), prepared.study(), &spec, period).unwrap();
    let pseudonym = |device: u32| prepared.pings().devices()[device as usize];
    for p in 1..=4 {
        for device in 0..traces.devices() as u32 {
            let Some(fast) = traces.singled_out(device, pseudonym(device), p, 5) else {
                assert!(traces.trace(device).len() < p);
                continue;
            };
            let chosen = traces.chosen(device, pseudonym(device), p, 5);
            assert_eq!(chosen.len(), p);
            let holders = (0..traces.devices() as u32)
                .filter(|&other| {
                    chosen
                        .iter()
                        .all(|point| traces.trace(other).contains(point))
                })
                .count();
            assert!(holders >= 1);
            assert_eq!(fast, holders == 1, "device {device}, {p} points");
        }
    }
}

#[test]
fn sampling_is_deterministic_with_a_seed_and_its_interval_holds_the_share() {
    let mut rng = Rng::new(3);
    let devices = random_devices(&mut rng, 400, |_| 3, 4, 5);
    let prepared = prepared(&devices);
    let spec = RiskSpec {
        samples: Some(100),
        seed: 9,
        ..RiskSpec::default()
    };
    let a = risk(&prepared, &spec).unwrap();
    let b = risk(&prepared, &spec).unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.report["devices_sampled"], 100);
    // Every device measured: the exact shares, which the sample's intervals hold.
    let all = risk(
        &prepared,
        &RiskSpec {
            seed: 9,
            ..RiskSpec::default()
        },
    )
    .unwrap();
    for (row, exact) in a
        .rows
        .iter()
        .zip(&all.rows)
        .filter(|(r, _)| r.measure == "unicity" && r.devices > 0)
    {
        assert!(row.share_low <= row.share_unique && row.share_unique <= row.share_high);
        assert!(row.share_high - row.share_low > 0.0);
        assert!(
            row.share_low <= exact.share_unique && exact.share_unique <= row.share_high,
            "{row:?} against {exact:?}"
        );
    }
    // Another seed draws other devices.
    let other = risk(
        &prepared,
        &RiskSpec {
            samples: Some(100),
            seed: 10,
            ..RiskSpec::default()
        },
    )
    .unwrap();
    assert_ne!(a.rows, other.rows);
}

#[test]
fn home_work_pairs_at_each_level() {
    // Homes from night pings (22:00–06:00), work from weekday pings 09:00–17:00.
    // A, B: home m1, work m2; C: home m1, work m3; D: home m3, work m3.
    let day = |h: i64, m: usize| (at(h), m, 0);
    let person = |home: usize, work: usize| {
        let mut trace = Vec::new();
        for d in 0..5 {
            trace.push(day(24 * d + 1, home)); // 03:00 local
            trace.push(day(24 * d + 9, work)); // 11:00 local
        }
        trace
    };
    let prepared = prepared(&[person(0, 1), person(0, 1), person(0, 2), person(2, 2)]);
    let risk = risk(&prepared, &RiskSpec::default()).unwrap();
    let level = |name: &str| {
        risk.rows
            .iter()
            .find(|r| r.measure == "home_work" && r.granularity == name)
            .unwrap()
    };
    // Municipalities: (m1, m2) × 2, (m1, m3), (m3, m3): two unique; k = 2: two below.
    let m = level("municipality");
    assert_eq!((m.devices, m.unique, m.below_k), (4, 2, Some(2)));
    // Provinces: (P1, P1) × 2, (P1, P2), (P2, P2).
    let p = level("province");
    assert_eq!((p.devices, p.unique), (4, 2));
    // The country: everyone shares (BE, BE).
    let c = level("country");
    assert_eq!((c.devices, c.unique, c.below_k), (4, 0, Some(0)));
    assert_eq!(risk.report["home_work_set_sizes"]["country"]["2-4"], 4);
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let prepared = prepared(&[vec![(at(1), 0, 0)]]);
    let refused = |spec: RiskSpec| risk(&prepared, &spec).unwrap_err().to_string();
    assert!(
        refused(RiskSpec {
            points: vec![0],
            ..RiskSpec::default()
        })
        .contains("`points`")
    );
    assert!(
        refused(RiskSpec {
            samples: Some(0),
            ..RiskSpec::default()
        })
        .contains("`samples`")
    );
    let level = RiskSpec {
        spatial: Spatial::Region("gemeente".into()),
        ..RiskSpec::default()
    };
    assert!(refused(level).contains("`spatial`"));
    assert!("region:".parse::<Spatial>().is_err());
    assert!("street".parse::<Spatial>().is_err());
    assert!("minute".parse::<Temporal>().is_err());
    assert_eq!(
        "region:province".parse::<Spatial>().unwrap(),
        Spatial::Region("province".into())
    );
}

#[test]
fn the_wilson_interval_of_known_cases() {
    let (low, high) = wilson(0, 10);
    assert!(low == 0.0 && (high - 0.2775).abs() < 1e-3);
    let (low, high) = wilson(50, 100);
    assert!((low - 0.4038).abs() < 1e-3 && (high - 0.5962).abs() < 1e-3);
}
