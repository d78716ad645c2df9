//! Disclosure control rule by rule (§7), directly on [`Disclosure::protect`] with
//! hand-made cells. Every expected number is worked out in the comment above its
//! assertion.

use h3o::{LatLng, Resolution};

use super::*;
use crate::aggregate::Measures;
use crate::extrapolate::EstimateSums;
use crate::geo::{Geography, RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};

/// The four-level region tree of the release tests: country `BE`; provinces `ovl` and
/// `wvl`; arrondissements `arr-gent` (under `ovl`), `arr-kortrijk` and `arr-brugge`
/// (under `wvl`); municipalities `gent`, `aalst` (under `arr-gent`), `kortrijk`, `menen`
/// (under `arr-kortrijk`), `brugge` (under `arr-brugge`) and `brussel` (under `BE`
/// directly), each on a resolution-7 cell of its own; one zone `markt`.
fn geography() -> Geography {
    let tree = [
        ("BE", "country", None, None),
        ("ovl", "province", Some("BE"), None),
        ("wvl", "province", Some("BE"), None),
        ("arr-gent", "arrondissement", Some("ovl"), None),
        ("arr-kortrijk", "arrondissement", Some("wvl"), None),
        ("arr-brugge", "arrondissement", Some("wvl"), None),
        ("gent", "municipality", Some("arr-gent"), Some(600)),
        ("aalst", "municipality", Some("arr-gent"), Some(500)),
        ("kortrijk", "municipality", Some("arr-kortrijk"), Some(300)),
        ("menen", "municipality", Some("arr-kortrijk"), Some(100)),
        ("brugge", "municipality", Some("arr-brugge"), Some(400)),
        ("brussel", "municipality", Some("BE"), Some(1_000)),
    ];
    let regions = RegionTable {
        region_id: tree.iter().map(|r| r.0.to_owned()).collect(),
        level: tree.iter().map(|r| r.1.to_owned()).collect(),
        parent_id: tree.iter().map(|r| r.2.map(str::to_owned)).collect(),
        population: tree.iter().map(|r| r.3).collect(),
        name: Vec::new(),
    };
    let leaves = ["gent", "aalst", "kortrijk", "menen", "brugge", "brussel"];
    let mut region_cells = RegionCellTable::default();
    for (i, leaf) in leaves.iter().enumerate() {
        let point = LatLng::new(50.0 + 0.2 * i as f64, 3.0).unwrap();
        region_cells
            .cell
            .push(point.to_cell(Resolution::Seven).into());
        region_cells.region_id.push((*leaf).to_owned());
    }
    let markt = LatLng::new(50.4, 3.0).unwrap().to_cell(Resolution::Nine);
    let zones = ZoneTable {
        zone_id: vec!["markt".into()],
        name: vec![None],
        category: vec![None],
    };
    let zone_cells = ZoneCellTable {
        zone_id: vec!["markt".into()],
        cell: vec![markt.into()],
    };
    Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["kortrijk".into()],
    )
    .unwrap()
}

fn origin(geography: &Geography, id: &str) -> LevelOrigin {
    LevelOrigin::Region(geography.regions().index_of(id).unwrap())
}

fn country(code: &str) -> LevelOrigin {
    LevelOrigin::Country(format!("country:{code}"))
}

/// A cell of `devices` devices whose other measures tell it apart from other cells:
/// visits = devices + 1, dwell = 600 s per device + 7 s, bands [devices, 1, 0, 0, 0]
/// from [devices, 1, 0, 0, 0] devices.
fn cell(devices: u64) -> Cell {
    Cell {
        measures: Measures {
            devices,
            visits: devices + 1,
            dwell_s: 600 * devices as i64 + 7,
            bands: [devices, 1, 0, 0, 0],
            band_devices: [devices, 1, 0, 0, 0],
        },
        estimate: EstimateSums::default(),
    }
}

fn sum(cells: &[Cell]) -> Cell {
    let mut total = Cell::default();
    for &one in cells {
        total += one;
    }
    total
}

/// Protects one group with fresh counters.
fn protect(
    geography: &Geography,
    k: u64,
    roll_up: bool,
    rows: &[(LevelOrigin, Cell)],
) -> (Group, DisclosureCounts) {
    let disclosure = Disclosure {
        regions: geography.regions(),
        k,
        roll_up,
    };
    let mut counts = DisclosureCounts::default();
    let group = disclosure.protect(rows.to_vec(), &mut counts);
    (group, counts)
}

/// The released origin rows of a group, after checking that its total is the sum of the
/// input rows and that the released rows sum to it (every measure and estimate).
fn released_origins(group: &Group, rows: &[(LevelOrigin, Cell)]) -> Vec<(String, Cell)> {
    let inputs: Vec<Cell> = rows.iter().map(|(_, c)| *c).collect();
    match group {
        Group::Suppressed => panic!("the group is suppressed"),
        Group::Released { total, origins } => {
            assert_eq!(*total, sum(&inputs), "the total sums every origin row");
            let parts: Vec<Cell> = origins.iter().map(|(_, c)| *c).collect();
            assert_eq!(sum(&parts), *total, "released rows partition the total");
            origins.clone()
        }
    }
}

fn cells(expected: &[(&str, Cell)]) -> Vec<(String, Cell)> {
    expected
        .iter()
        .map(|&(name, c)| (name.to_owned(), c))
        .collect()
}

fn counts(
    groups: u64,
    groups_suppressed: u64,
    rows_released: u64,
    origin_rows_rolled_up: u64,
    origin_rows_moved_to_residual: u64,
) -> DisclosureCounts {
    DisclosureCounts {
        k: 0,
        groups,
        groups_suppressed,
        rows_released,
        origin_rows_rolled_up,
        origin_rows_moved_to_residual,
        ..DisclosureCounts::default()
    }
}

#[test]
fn disclosure_suppresses_a_group_whose_total_is_below_k() {
    let geography = geography();
    // k = 3; gent 1 + country:FR 1 = 2 devices < 3: rule 1, the total row alone.
    let rows = [
        (origin(&geography, "gent"), cell(1)),
        (country("FR"), cell(1)),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(group, Group::Suppressed);
    assert_eq!(got, counts(1, 1, 0, 0, 0));

    // With exactly k = 3 devices the group is released: gent 2 < 3 rolls up
    // other:arr-gent (2) → other:ovl (2) → other:BE (2 < 3) → the residual, with
    // unknown 1: residual 3 = k, released as `other`.
    let gent = cell(2);
    let unknown = cell(1);
    let rows = [
        (origin(&geography, "gent"), gent),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("other", sum(&[gent, unknown]))])
    );
    assert_eq!(got, counts(1, 0, 2, 2, 0));
}

#[test]
fn disclosure_releases_origin_rows_of_k_devices_or_more() {
    let geography = geography();
    // k = 3: every row has ≥ 3 devices, so rule 2 releases each as it is, `unknown` and
    // `country:FR` included; nothing is left for the residual, so no `other` row. Rows
    // come in byte order of their names.
    let (gent, brugge, unknown, france) = (cell(3), cell(5), cell(4), cell(3));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "brugge"), brugge),
        (LevelOrigin::Unknown, unknown),
        (country("FR"), france),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("brugge", brugge),
            ("country:FR", france),
            ("gent", gent),
            ("unknown", unknown),
        ])
    );
    // Rows released: the total and four origin rows.
    assert_eq!(got, counts(1, 0, 5, 0, 0));
}

#[test]
fn disclosure_rolls_small_rows_up_one_level() {
    let geography = geography();
    // k = 3: gent 5 is released; kortrijk 2 and menen 1 pool into their parent's
    // `other:arr-kortrijk` = 3 ≥ k, released there.
    let (gent, kortrijk, menen) = (cell(5), cell(2), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "menen"), menen),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("gent", gent),
            ("other:arr-kortrijk", sum(&[kortrijk, menen])),
        ])
    );
    assert_eq!(got, counts(1, 0, 3, 2, 0));
}

#[test]
fn disclosure_merges_a_small_pool_into_the_grandparent_pool() {
    let geography = geography();
    // k = 3: kortrijk 1 + menen 1 pool into other:arr-kortrijk = 2 < 3, brugge 1 into
    // other:arr-brugge = 1 < 3; both arrondissement pools (depth 3) are judged before the
    // province pools (depth 2) and merge into other:wvl = 3 ≥ k, released there.
    let (gent, kortrijk, menen, brugge) = (cell(4), cell(1), cell(1), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "menen"), menen),
        (origin(&geography, "brugge"), brugge),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("gent", gent),
            ("other:wvl", sum(&[kortrijk, menen, brugge]))
        ])
    );
    assert_eq!(got, counts(1, 0, 3, 3, 0));
}

#[test]
fn disclosure_releases_other_root_when_it_reaches_k() {
    let geography = geography();
    // k = 3: kortrijk 1 → other:arr-kortrijk 1 → other:wvl 1 → other:BE; gent 1 →
    // other:arr-gent 1 → other:ovl 1 → other:BE; brussel 1 (directly under BE) →
    // other:BE. other:BE = 3 ≥ k: released as `other:BE`, no residual.
    let (kortrijk, gent, brussel) = (cell(1), cell(1), cell(1));
    let rows = [
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "gent"), gent),
        (origin(&geography, "brussel"), brussel),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("other:BE", sum(&[kortrijk, gent, brussel]))])
    );
    assert_eq!(got, counts(1, 0, 2, 3, 0));
}

#[test]
fn disclosure_sends_other_root_below_k_to_the_residual() {
    let geography = geography();
    // k = 3: kortrijk 1 and brussel 1 reach other:BE = 2 < 3, which goes to the
    // residual; unknown 1 goes there too: residual 3 ≥ k, shown as `other` (not
    // `other:BE`). gent 4 is released; no row moves.
    let (gent, kortrijk, brussel, unknown) = (cell(4), cell(1), cell(1), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "brussel"), brussel),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("gent", gent),
            ("other", sum(&[kortrijk, brussel, unknown]))
        ])
    );
    assert_eq!(got, counts(1, 0, 3, 3, 0));
}

#[test]
fn disclosure_pools_roamer_countries_into_other_abroad() {
    let geography = geography();
    // k = 3: country:FR 1 + country:NL 2 pool into other:abroad = 3 ≥ k, released.
    let (gent, france, netherlands) = (cell(3), cell(1), cell(2));
    let rows = [
        (origin(&geography, "gent"), gent),
        (country("FR"), france),
        (country("NL"), netherlands),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("gent", gent),
            ("other:abroad", sum(&[france, netherlands])),
        ])
    );
    assert_eq!(got, counts(1, 0, 3, 2, 0));

    // other:abroad is the roamers' own top: country:FR 2 gives other:abroad 2 < 3, which
    // goes to the residual, not into other:BE; brussel 1 gives other:BE 1 < 3, also to
    // the residual: residual 3, shown as `other`. (Pooled together they would have made
    // a released `other:BE` or `other:abroad` of 3.)
    let (gent, france, brussel) = (cell(3), cell(2), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (country("FR"), france),
        (origin(&geography, "brussel"), brussel),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("gent", gent), ("other", sum(&[france, brussel]))])
    );
    assert_eq!(got, counts(1, 0, 3, 2, 0));
}

#[test]
fn disclosure_never_pools_unknown() {
    let geography = geography();
    // k = 3: kortrijk 1 climbs to other:BE = 1 < 3 and goes to the residual; unknown 2
    // goes straight to the residual: `other` = 3. Had unknown been pooled into other:BE
    // (or other:abroad below), that pool would have been released at 3.
    let (gent, kortrijk, unknown) = (cell(3), cell(1), cell(2));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, _) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("gent", gent), ("other", sum(&[kortrijk, unknown]))])
    );

    let (gent, france, unknown) = (cell(3), cell(1), cell(2));
    let rows = [
        (origin(&geography, "gent"), gent),
        (country("FR"), france),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, _) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("gent", gent), ("other", sum(&[france, unknown]))])
    );
}

#[test]
fn disclosure_lifts_a_small_residual_with_the_smallest_released_row() {
    let geography = geography();
    // k = 3: gent 3, country:FR 3, brugge 3 and kortrijk 4 are released; unknown 1 makes
    // a residual of 1, between 1 and k − 1. Released rows move in smallest first: three
    // tie at 3 devices, and byte order picks "brugge" < "country:FR" < "gent" (region
    // index order would pick gent, listed before brugge; so would input order). One
    // move makes 1 + 3 = 4 ≥ k.
    let (gent, france, brugge, kortrijk, unknown) = (cell(3), cell(3), cell(3), cell(4), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (country("FR"), france),
        (origin(&geography, "brugge"), brugge),
        (origin(&geography, "kortrijk"), kortrijk),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("country:FR", france),
            ("gent", gent),
            ("kortrijk", kortrijk),
            ("other", sum(&[unknown, brugge])),
        ])
    );
    // Released: total + 4; rolled up: unknown; moved: brugge.
    assert_eq!(got, counts(1, 0, 5, 1, 1));

    // A released pool is a row like any other: kortrijk 2 + menen 1 make
    // other:arr-kortrijk 3 ≥ k; unknown 2 is a residual below k; the smallest released
    // row is other:arr-kortrijk (3 < gent's 4), which moves: `other` = 5.
    let (gent, kortrijk, menen, unknown) = (cell(4), cell(2), cell(1), cell(2));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "menen"), menen),
        (LevelOrigin::Unknown, unknown),
    ];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("gent", gent), ("other", sum(&[kortrijk, menen, unknown]))])
    );
    assert_eq!(got, counts(1, 0, 3, 3, 1));
}

#[test]
fn disclosure_without_roll_up_sends_every_small_row_to_the_residual() {
    let geography = geography();
    // k = 3. Rows: gent 3, kortrijk 2, menen 1, country:FR 1, country:NL 2, unknown 1.
    let (gent, kortrijk, menen, france, netherlands, unknown) =
        (cell(3), cell(2), cell(1), cell(1), cell(2), cell(1));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "menen"), menen),
        (country("FR"), france),
        (country("NL"), netherlands),
        (LevelOrigin::Unknown, unknown),
    ];
    // Without roll-up every row below k goes to the residual: 2 + 1 + 1 + 2 + 1 = 7.
    let (group, got) = protect(&geography, 3, false, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("gent", gent),
            (
                "other",
                sum(&[kortrijk, menen, france, netherlands, unknown])
            ),
        ])
    );
    assert_eq!(got, counts(1, 0, 3, 5, 0));

    // With roll-up: other:arr-kortrijk 3 and other:abroad 3 are released, unknown 1 is a
    // residual of 1; the smallest released rows tie at 3 ("gent" < "other:abroad" <
    // "other:arr-kortrijk"): gent moves, `other` = 4.
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[
            ("other", sum(&[unknown, gent])),
            ("other:abroad", sum(&[france, netherlands])),
            ("other:arr-kortrijk", sum(&[kortrijk, menen])),
        ])
    );
    assert_eq!(got, counts(1, 0, 4, 5, 1));

    // Without roll-up a residual below k still takes released rows: kortrijk 1 is a
    // residual of 1, gent 3 moves in.
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), cell(1)),
    ];
    let (group, got) = protect(&geography, 3, false, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("other", sum(&[cell(1), gent]))])
    );
    assert_eq!(got, counts(1, 0, 2, 1, 1));
}

#[test]
fn disclosure_of_rows_at_inner_levels_climbs_from_there() {
    let geography = geography();
    // Rows at the province level (brussel has no province: it stays itself). k = 3:
    // wvl 1, ovl 1 and brussel 1 all have the root as parent: other:BE = 3, released.
    let (wvl, ovl, brussel) = (cell(1), cell(1), cell(1));
    let rows = [
        (origin(&geography, "ovl"), ovl),
        (origin(&geography, "wvl"), wvl),
        (origin(&geography, "brussel"), brussel),
    ];
    let (group, _) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("other:BE", sum(&[ovl, wvl, brussel]))])
    );

    // A row at the root's own level has no parent to pool into: BE 2 < 3 goes to the
    // residual (2), which takes the smallest released row, country:FR 3: `other` = 5.
    let (belgium, france) = (cell(2), cell(3));
    let rows = [(origin(&geography, "BE"), belgium), (country("FR"), france)];
    let (group, got) = protect(&geography, 3, true, &rows);
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("other", sum(&[belgium, france]))])
    );
    assert_eq!(got, counts(1, 0, 2, 1, 1));
}

#[test]
fn disclosure_pools_estimates_with_the_measures() {
    let geography = geography();
    // Estimates add like measures, and a missing factor anywhere in a row nulls it.
    // Dyadic values keep every sum exact.
    let with = |devices: u64, est: f64, missing: bool| Cell {
        estimate: EstimateSums {
            devices: est,
            visits: 2.0 * est,
            variance: est / 4.0,
            missing,
        },
        ..cell(devices)
    };
    let (gent, kortrijk, menen) = (with(3, 4.5, false), with(1, 2.0, false), with(2, 3.0, true));
    let rows = [
        (origin(&geography, "gent"), gent),
        (origin(&geography, "kortrijk"), kortrijk),
        (origin(&geography, "menen"), menen),
    ];
    let (group, _) = protect(&geography, 3, true, &rows);
    let pool = sum(&[kortrijk, menen]);
    assert_eq!(
        pool.estimate,
        EstimateSums {
            devices: 5.0,
            visits: 10.0,
            variance: 1.25,
            missing: true,
        }
    );
    assert_eq!(
        released_origins(&group, &rows),
        cells(&[("gent", gent), ("other:arr-kortrijk", pool)])
    );
    let Group::Released { total, .. } = group else {
        panic!("released")
    };
    assert!(total.estimate.missing);
    assert!(close(total.estimate.devices, 9.5));
}

#[test]
fn disclosure_counters_add_up_over_groups() {
    let geography = geography();
    let disclosure = Disclosure {
        regions: geography.regions(),
        k: 3,
        roll_up: true,
    };
    let mut got = DisclosureCounts::default();
    let gent = || origin(&geography, "gent");
    // Group 1: 2 devices < 3, suppressed.
    disclosure.protect(vec![(gent(), cell(2))], &mut got);
    // Group 2: gent 3 and country:FR 4 released; nothing rolled up. 3 rows released.
    disclosure.protect(vec![(gent(), cell(3)), (country("FR"), cell(4))], &mut got);
    // Group 3: kortrijk 1 and menen 1 → other:arr-kortrijk 2 → other:wvl 2 → other:BE 2
    // → residual 2 (2 rows rolled up); gent 5 moves in (1 moved): `other` 7 alone. 2
    // rows released (total and `other`).
    disclosure.protect(
        vec![
            (gent(), cell(5)),
            (origin(&geography, "kortrijk"), cell(1)),
            (origin(&geography, "menen"), cell(1)),
        ],
        &mut got,
    );
    // Group 4: empty (no origin rows): 0 < 3, suppressed.
    disclosure.protect(Vec::new(), &mut got);
    assert_eq!(got, counts(4, 2, 5, 2, 1));
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}
