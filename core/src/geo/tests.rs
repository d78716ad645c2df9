use h3o::LatLng;

use super::*;

fn cell_at(lat: f64, lon: f64, resolution: Resolution) -> CellIndex {
    LatLng::new(lat, lon).expect("finite").to_cell(resolution)
}

/// Kortrijk's resolution-7 cell and one of its neighbours (for Menen).
fn region_cells_7() -> (CellIndex, CellIndex) {
    let kortrijk = cell_at(50.828, 3.265, Resolution::Seven);
    let menen = kortrijk
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .find(|&c| c != kortrijk)
        .expect("a neighbour");
    (kortrijk, menen)
}

/// Two resolution-9 cells inside Kortrijk's resolution-7 cell, and one inside Menen's.
fn zone_cells_9() -> (CellIndex, CellIndex, CellIndex) {
    let (kortrijk, menen) = region_cells_7();
    let markt = kortrijk.center_child(Resolution::Nine).expect("finer");
    let street = markt
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .find(|&c| c != markt && c.parent(Resolution::Seven) == Some(kortrijk))
        .expect("a neighbour in the same parent");
    let station = menen.center_child(Resolution::Nine).expect("finer");
    (markt, street, station)
}

/// The four tables, the analysis resolution and the study area, ready to be broken.
#[derive(Clone)]
struct Tables {
    regions: RegionTable,
    region_cells: RegionCellTable,
    zones: ZoneTable,
    zone_cells: ZoneCellTable,
    resolution: u8,
    study_area: Vec<String>,
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|&v| v.to_owned()).collect()
}

impl Tables {
    /// `BE` → `wvl` → {`kortrijk`, `menen`}, `BE` → `brussel`; zones `grote-markt`
    /// (culture), `shopping` (retail, overlapping it), `museum` (culture), `station`.
    fn valid() -> Self {
        let (kortrijk, menen) = region_cells_7();
        let (markt, street, station) = zone_cells_9();
        Self {
            regions: RegionTable {
                region_id: strings(&["BE", "wvl", "kortrijk", "menen", "brussel"]),
                level: strings(&[
                    "country",
                    "province",
                    "municipality",
                    "municipality",
                    "municipality",
                ]),
                parent_id: vec![
                    None,
                    Some("BE".into()),
                    Some("wvl".into()),
                    Some("wvl".into()),
                    Some("BE".into()),
                ],
                population: vec![None, None, Some(80_000), Some(33_000), Some(1_200_000)],
                name: Vec::new(),
            },
            region_cells: RegionCellTable {
                cell: vec![kortrijk.into(), menen.into()],
                region_id: strings(&["kortrijk", "menen"]),
            },
            zones: ZoneTable {
                zone_id: strings(&["grote-markt", "shopping", "museum", "station"]),
                name: vec![
                    Some("Grote Markt".into()),
                    Some("Shopping".into()),
                    None,
                    None,
                ],
                category: vec![
                    Some("culture".into()),
                    Some("retail".into()),
                    Some("culture".into()),
                    Some(String::new()),
                ],
            },
            zone_cells: ZoneCellTable {
                zone_id: strings(&["grote-markt", "shopping", "shopping", "museum", "station"]),
                cell: vec![
                    markt.into(),
                    markt.into(),
                    street.into(),
                    street.into(),
                    station.into(),
                ],
            },
            resolution: 9,
            study_area: strings(&["kortrijk"]),
        }
    }

    fn build(&self) -> Result<Geography> {
        Geography::from_tables(
            &self.regions,
            &self.region_cells,
            &self.zones,
            &self.zone_cells,
            self.resolution,
            &self.study_area,
        )
    }

    fn push_region(&mut self, id: &str, parent: Option<&str>, population: Option<i64>) {
        self.regions.region_id.push(id.to_owned());
        self.regions.level.push("municipality".to_owned());
        self.regions.parent_id.push(parent.map(str::to_owned));
        self.regions.population.push(population);
    }
}

/// Builds broken tables and checks the error is a geography error naming `field`, with
/// a message containing every one of `needles`.
#[track_caller]
fn assert_geography_error(tables: &Tables, field: &str, needles: &[&str]) {
    let err = tables.build().expect_err("the tables are invalid");
    assert!(matches!(err, Error::Geography { .. }), "{err:?}");
    assert_eq!(err.field(), Some(field), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("`{field}`")), "{message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} does not mention {needle:?}"
        );
    }
}

fn index(geography: &Geography, id: &str) -> RegionIndex {
    geography.regions().index_of(id).expect("known region")
}

// --- Errors: the region tree -------------------------------------------------------------

#[test]
fn the_valid_fixture_builds() {
    Tables::valid().build().unwrap();
}

#[test]
fn duplicate_region_id() {
    let mut tables = Tables::valid();
    tables.push_region("menen", Some("wvl"), Some(1));
    assert_geography_error(
        &tables,
        "regions.region_id",
        &["row 5", "duplicate", "\"menen\""],
    );
}

#[test]
fn empty_region_id() {
    let mut tables = Tables::valid();
    tables.push_region("", Some("wvl"), Some(1));
    assert_geography_error(&tables, "regions.region_id", &["row 5", "empty"]);
}

#[test]
fn reserved_region_ids() {
    for id in [
        "unknown",
        "other",
        "*",
        "country:FR",
        "other:x",
        "other:wvl",
    ] {
        let mut tables = Tables::valid();
        tables.push_region(id, Some("wvl"), Some(1));
        assert_geography_error(
            &tables,
            "regions.region_id",
            &["row 5", "reserved", &format!("{id:?}")],
        );
    }
    // Only the exact names and the prefixes are reserved.
    let mut tables = Tables::valid();
    tables.push_region("unknownville", Some("wvl"), Some(1));
    tables.push_region("country", Some("wvl"), Some(1));
    tables.push_region("others", Some("wvl"), Some(1));
    tables.build().unwrap();
}

#[test]
fn unknown_parent() {
    let mut tables = Tables::valid();
    tables.push_region("ieper", Some("west-vlaanderen"), Some(35_000));
    assert_geography_error(
        &tables,
        "regions.parent_id",
        &["row 5", "unknown parent", "\"west-vlaanderen\""],
    );
}

#[test]
fn zero_roots() {
    let mut tables = Tables::valid();
    tables.regions.parent_id[0] = Some("brussel".into());
    assert_geography_error(
        &tables,
        "regions.parent_id",
        &["exactly one root", "found 0"],
    );
}

#[test]
fn two_roots() {
    let mut tables = Tables::valid();
    tables.push_region("NL", None, Some(17_000_000));
    assert_geography_error(
        &tables,
        "regions.parent_id",
        &["exactly one root", "found 2"],
    );
    // An empty parent id is a root too.
    let mut tables = Tables::valid();
    tables.push_region("NL", Some(""), Some(17_000_000));
    assert_geography_error(
        &tables,
        "regions.parent_id",
        &["exactly one root", "found 2"],
    );
}

#[test]
fn a_cycle_beside_the_root() {
    let mut tables = Tables::valid();
    tables.push_region("a", Some("b"), Some(1));
    tables.push_region("b", Some("a"), Some(1));
    assert_geography_error(&tables, "regions.parent_id", &["cycle"]);
    // A region that is its own parent.
    let mut tables = Tables::valid();
    tables.push_region("self", Some("self"), Some(1));
    assert_geography_error(&tables, "regions.parent_id", &["cycle", "\"self\""]);
    // A leaf hanging below a cycle is reported too.
    let mut tables = Tables::valid();
    tables.push_region("a", Some("b"), None);
    tables.push_region("b", Some("c"), None);
    tables.push_region("c", Some("a"), None);
    tables.push_region("leaf", Some("c"), Some(1));
    assert_geography_error(&tables, "regions.parent_id", &["cycle"]);
}

#[test]
fn negative_population() {
    let mut tables = Tables::valid();
    tables.regions.population[3] = Some(-1);
    assert_geography_error(&tables, "regions.population", &["row 3", "negative", "-1"]);
    // On an inner region too.
    let mut tables = Tables::valid();
    tables.regions.population[1] = Some(-113_000);
    assert_geography_error(&tables, "regions.population", &["row 1", "negative"]);
}

#[test]
fn inner_population_inconsistent_with_its_leaves() {
    let mut tables = Tables::valid();
    tables.regions.population[1] = Some(100_000);
    assert_geography_error(
        &tables,
        "regions.population",
        &["\"wvl\"", "100000", "113000"],
    );
    let mut tables = Tables::valid();
    tables.regions.population[0] = Some(1);
    assert_geography_error(&tables, "regions.population", &["\"BE\"", "1313000"]);
    // A stated value that agrees is accepted.
    let mut tables = Tables::valid();
    tables.regions.population[0] = Some(1_313_000);
    tables.regions.population[1] = Some(113_000);
    tables.build().unwrap();
}

#[test]
fn columns_of_different_lengths() {
    let mut tables = Tables::valid();
    tables.regions.level.pop();
    assert_geography_error(&tables, "regions", &["lengths"]);
    let mut tables = Tables::valid();
    tables.region_cells.region_id.pop();
    assert_geography_error(&tables, "region_cells", &["lengths"]);
    let mut tables = Tables::valid();
    tables.zones.category.pop();
    assert_geography_error(&tables, "zones", &["lengths"]);
    let mut tables = Tables::valid();
    tables.zone_cells.cell.pop();
    assert_geography_error(&tables, "zone_cells", &["lengths"]);
}

// --- Errors: region cells ----------------------------------------------------------------

#[test]
fn invalid_region_cell() {
    for raw in [0_u64, 1, u64::MAX, 0x0871_94d3_a0ff_fff0] {
        let mut tables = Tables::valid();
        tables.region_cells.cell[1] = raw;
        assert_geography_error(
            &tables,
            "region_cells.cell",
            &["row 1", "not a valid H3 cell"],
        );
    }
}

#[test]
fn mixed_region_cell_resolutions() {
    let mut tables = Tables::valid();
    let brussel = cell_at(50.8467, 4.3525, Resolution::Eight);
    tables.region_cells.cell.push(brussel.into());
    tables.region_cells.region_id.push("brussel".into());
    assert_geography_error(
        &tables,
        "region_cells.cell",
        &["row 2", "resolution 8", "at 7"],
    );
}

#[test]
fn region_cells_finer_than_the_analysis_resolution() {
    let mut tables = Tables::valid();
    tables.resolution = 6;
    tables.zone_cells = ZoneCellTable::default();
    assert_geography_error(
        &tables,
        "region_cells.cell",
        &["finer than the analysis resolution"],
    );
}

#[test]
fn cell_mapped_to_two_leaves() {
    let mut tables = Tables::valid();
    let kortrijk = tables.region_cells.cell[0];
    tables.region_cells.cell.push(kortrijk);
    tables.region_cells.region_id.push("brussel".into());
    assert_geography_error(
        &tables,
        "region_cells.cell",
        &["row 2", "two leaves", "\"kortrijk\"", "\"brussel\""],
    );
    // The same mapping given twice is harmless.
    let mut tables = Tables::valid();
    tables.region_cells.cell.push(kortrijk);
    tables.region_cells.region_id.push("kortrijk".into());
    tables.build().unwrap();
}

#[test]
fn cell_mapped_to_an_inner_region() {
    let mut tables = Tables::valid();
    tables.region_cells.region_id[1] = "wvl".into();
    assert_geography_error(
        &tables,
        "region_cells.region_id",
        &["row 1", "\"wvl\"", "inner region"],
    );
}

#[test]
fn unknown_region_in_region_cells() {
    let mut tables = Tables::valid();
    tables.region_cells.region_id[0] = "kortryk".into();
    assert_geography_error(
        &tables,
        "region_cells.region_id",
        &["row 0", "unknown region", "\"kortryk\""],
    );
}

// --- Errors: zones -----------------------------------------------------------------------

#[test]
fn duplicate_zone_id() {
    let mut tables = Tables::valid();
    tables.zones.zone_id.push("museum".into());
    tables.zones.name.push(None);
    tables.zones.category.push(None);
    assert_geography_error(
        &tables,
        "zones.zone_id",
        &["row 4", "duplicate", "\"museum\""],
    );
}

#[test]
fn reserved_or_empty_zone_id() {
    for id in ["category:culture", "category:", ""] {
        let mut tables = Tables::valid();
        tables.zones.zone_id[2] = id.into();
        tables.zone_cells.zone_id[3] = id.into();
        assert_geography_error(&tables, "zones.zone_id", &["row 2", "\"category:\""]);
    }
}

#[test]
fn zone_cells_naming_an_unknown_zone() {
    let mut tables = Tables::valid();
    tables.zone_cells.zone_id[4] = "statoin".into();
    assert_geography_error(
        &tables,
        "zone_cells.zone_id",
        &["row 4", "unknown zone", "\"statoin\""],
    );
}

#[test]
fn invalid_zone_cell() {
    let mut tables = Tables::valid();
    tables.zone_cells.cell[2] = 42;
    assert_geography_error(
        &tables,
        "zone_cells.cell",
        &["row 2", "not a valid H3 cell", "0x2a"],
    );
}

#[test]
fn zone_cell_at_the_wrong_resolution() {
    let (markt, _, _) = zone_cells_9();
    for resolution in [Resolution::Eight, Resolution::Ten] {
        let mut tables = Tables::valid();
        let wrong = if resolution < Resolution::Nine {
            markt.parent(resolution)
        } else {
            markt.center_child(resolution)
        };
        tables.zone_cells.cell[1] = wrong.expect("exists").into();
        assert_geography_error(
            &tables,
            "zone_cells.cell",
            &[
                "row 1",
                &format!("resolution {resolution}"),
                "analysis resolution 9",
            ],
        );
    }
}

// --- Errors: study area and resolution ---------------------------------------------------

#[test]
fn empty_study_area() {
    let mut tables = Tables::valid();
    tables.study_area.clear();
    assert_geography_error(&tables, "study_area", &["at least one region"]);
}

#[test]
fn unknown_study_area() {
    let mut tables = Tables::valid();
    tables.study_area.push("Kortrijk".into());
    assert_geography_error(&tables, "study_area", &["unknown region", "\"Kortrijk\""]);
}

#[test]
fn analysis_resolution_above_15_is_a_config_error() {
    let mut tables = Tables::valid();
    tables.resolution = 16;
    let err = tables.build().unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert_eq!(err.field(), Some("resolution"));
    assert!(err.to_string().contains("16"));
}

// --- Look-ups ----------------------------------------------------------------------------

#[test]
fn leaf_of_goes_through_the_parent_at_the_region_resolution() {
    let geography = Tables::valid().build().unwrap();
    let (kortrijk7, menen7) = region_cells_7();
    assert_eq!(geography.resolution(), Resolution::Nine);
    assert_eq!(geography.region_resolution(), Some(Resolution::Seven));
    let kortrijk = index(&geography, "kortrijk");
    let menen = index(&geography, "menen");
    // Every resolution-9 cell of Kortrijk's resolution-7 cell is in Kortrijk.
    let children: Vec<CellIndex> = kortrijk7.children(Resolution::Nine).collect();
    assert_eq!(children.len(), 49);
    for child in children {
        assert_eq!(geography.leaf_of(child), kortrijk);
    }
    for child in menen7.children(Resolution::Nine) {
        assert_eq!(geography.leaf_of(child), menen);
    }
    // A cell beyond both is in no leaf.
    let far = cell_at(50.5, 4.0, Resolution::Nine);
    assert_eq!(geography.leaf_of(far), UNKNOWN_REGION);
    let ring2 = kortrijk7
        .grid_ring_fast(2)
        .flatten()
        .next()
        .expect("a cell two steps away");
    let outside = ring2.center_child(Resolution::Nine).expect("finer");
    assert_eq!(geography.leaf_of(outside), UNKNOWN_REGION);
    assert!(!geography.in_study_area(UNKNOWN_REGION));
}

#[test]
fn region_cells_at_the_analysis_resolution_map_directly() {
    let mut tables = Tables::valid();
    let (markt, street, _) = zone_cells_9();
    tables.region_cells = RegionCellTable {
        cell: vec![markt.into()],
        region_id: vec!["kortrijk".into()],
    };
    let geography = tables.build().unwrap();
    assert_eq!(geography.region_resolution(), Some(Resolution::Nine));
    assert_eq!(geography.leaf_of(markt), index(&geography, "kortrijk"));
    assert_eq!(geography.leaf_of(street), UNKNOWN_REGION);
}

#[test]
fn no_region_cells_puts_every_cell_in_unknown() {
    let mut tables = Tables::valid();
    tables.region_cells = RegionCellTable::default();
    let geography = tables.build().unwrap();
    assert_eq!(geography.region_resolution(), None);
    let (markt, _, _) = zone_cells_9();
    assert_eq!(geography.leaf_of(markt), UNKNOWN_REGION);
}

#[test]
fn zone_sets_cover_overlaps_and_categories() {
    let geography = Tables::valid().build().unwrap();
    let ids: Vec<&str> = geography.zones().iter().map(|z| z.id.as_str()).collect();
    // The zones in table order, then one zone per category in byte order; an empty
    // category is no category.
    assert_eq!(
        ids,
        [
            "grote-markt",
            "shopping",
            "museum",
            "station",
            "category:culture",
            "category:retail"
        ]
    );
    let zones = geography.zones();
    assert_eq!(zones[0].name, "Grote Markt");
    assert_eq!(zones[2].name, "museum", "a missing name is the id");
    assert_eq!(zones[3].category, None);
    assert!(!zones[0].is_category);
    assert_eq!(
        zones[4],
        Zone {
            id: "category:culture".into(),
            name: "culture".into(),
            category: Some("culture".into()),
            is_category: true,
        }
    );

    let zone_ids = |cell: CellIndex| -> Vec<&str> {
        let set = geography.zone_set(geography.zone_set_of(cell));
        assert!(set.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        set.iter()
            .map(|&z| geography.zones()[z as usize].id.as_str())
            .collect()
    };
    let (markt, street, station) = zone_cells_9();
    assert_eq!(
        zone_ids(markt),
        [
            "grote-markt",
            "shopping",
            "category:culture",
            "category:retail"
        ]
    );
    assert_eq!(
        zone_ids(street),
        ["shopping", "museum", "category:culture", "category:retail"]
    );
    assert_eq!(zone_ids(station), ["station"]);
    // A cell in no zone has the empty set 0.
    let quiet = markt
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .find(|&c| c != markt && c != street)
        .expect("a neighbour");
    assert_eq!(geography.zone_set_of(quiet), 0);
    assert!(geography.zone_set(0).is_empty());
    // A category's cells are the union of its zones' cells.
    let culture = 4;
    let culture_cells: BTreeSet<u64> = geography
        .zone_set_of_cell
        .iter()
        .filter(|&(_, &set)| geography.zone_set(set).contains(&culture))
        .map(|(&cell, _)| cell)
        .collect();
    assert_eq!(
        culture_cells,
        BTreeSet::from([u64::from(markt), u64::from(street)])
    );
    // Equal sets share one index.
    let mut tables = Tables::valid();
    let other = quiet.into();
    tables.zone_cells.zone_id.push("station".into());
    tables.zone_cells.cell.push(other);
    let geography = tables.build().unwrap();
    assert_eq!(geography.zone_set_of(quiet), geography.zone_set_of(station));
    assert_eq!(geography.zone_sets.len(), 4);
}

#[test]
fn study_area_named_at_an_inner_level() {
    let mut tables = Tables::valid();
    tables.study_area = strings(&["wvl"]);
    let geography = tables.build().unwrap();
    assert_eq!(geography.study_area(), ["wvl"]);
    let is_in = |id| geography.in_study_area(index(&geography, id));
    assert!(is_in("kortrijk"));
    assert!(is_in("menen"));
    assert!(!is_in("brussel"));
    // Only leaves are in the study area; pings are located in leaves.
    assert!(!is_in("wvl"));
    assert!(!is_in("BE"));
    assert!(!geography.in_study_area(UNKNOWN_REGION));
}

#[test]
fn study_area_of_two_leaves() {
    let mut tables = Tables::valid();
    tables.study_area = strings(&["kortrijk", "brussel"]);
    let geography = tables.build().unwrap();
    let is_in = |id| geography.in_study_area(index(&geography, id));
    assert!(is_in("kortrijk"));
    assert!(is_in("brussel"));
    assert!(!is_in("menen"));
    // The whole country is every leaf.
    let mut tables = Tables::valid();
    tables.study_area = strings(&["BE"]);
    let geography = tables.build().unwrap();
    for id in ["kortrijk", "menen", "brussel"] {
        assert!(geography.in_study_area(index(&geography, id)), "{id}");
    }
}

#[test]
fn regions_tree_and_populations() {
    let geography = Tables::valid().build().unwrap();
    let regions = geography.regions();
    assert_eq!(regions.len(), 5);
    assert!(!regions.is_empty());
    let be = index(&geography, "BE");
    let wvl = index(&geography, "wvl");
    let kortrijk = index(&geography, "kortrijk");
    assert_eq!(regions.root(), be);
    assert_eq!(regions.parent(be), None);
    assert_eq!(regions.parent(kortrijk), Some(wvl));
    assert_eq!(
        regions.ancestors(kortrijk).collect::<Vec<_>>(),
        [kortrijk, wvl, be]
    );
    assert_eq!(regions.id(wvl), "wvl");
    assert_eq!(regions.level(wvl), "province");
    assert!(regions.is_leaf(kortrijk));
    assert!(!regions.is_leaf(wvl));
    assert!(!regions.is_leaf(be));
    assert_eq!(regions.index_of("nowhere"), None);
    // Leaves as given; inner nodes sum their leaves.
    assert_eq!(regions.population(kortrijk), Some(80_000));
    assert_eq!(regions.population(wvl), Some(113_000));
    assert_eq!(regions.population(be), Some(1_313_000));
}

#[test]
fn a_leaf_without_population_leaves_its_ancestors_without_one() {
    let mut tables = Tables::valid();
    tables.regions.population[3] = None;
    // A stated inner value cannot be checked then, and is not an error.
    tables.regions.population[1] = Some(1);
    let geography = tables.build().unwrap();
    let regions = geography.regions();
    assert_eq!(regions.population(index(&geography, "menen")), None);
    assert_eq!(regions.population(index(&geography, "wvl")), None);
    assert_eq!(regions.population(index(&geography, "BE")), None);
    assert_eq!(
        regions.population(index(&geography, "kortrijk")),
        Some(80_000)
    );
    assert_eq!(
        regions.population(index(&geography, "brussel")),
        Some(1_200_000)
    );
}

// --- Reading the tables from Arrow -------------------------------------------------------

mod from_arrow {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn tables_read_from_arrow_build_the_same_geography() {
        let valid = Tables::valid();
        let regions = RegionTable::from_arrow(&[batch(vec![
            (
                "region_id",
                Arc::new(StringArray::from(valid.regions.region_id.clone())),
            ),
            (
                "level",
                Arc::new(StringArray::from(valid.regions.level.clone())),
            ),
            (
                "parent_id",
                Arc::new(StringArray::from(valid.regions.parent_id.clone())),
            ),
            (
                "population",
                Arc::new(Int64Array::from(valid.regions.population.clone())),
            ),
        ])])
        .unwrap();
        assert_eq!(regions, valid.regions);
        let hex: Vec<String> = valid
            .region_cells
            .cell
            .iter()
            .map(|&c| CellIndex::try_from(c).unwrap().to_string())
            .collect();
        let region_cells = RegionCellTable::from_arrow(&[batch(vec![
            ("cell", Arc::new(StringArray::from(hex))),
            (
                "region_id",
                Arc::new(StringArray::from(valid.region_cells.region_id.clone())),
            ),
        ])])
        .unwrap();
        assert_eq!(region_cells, valid.region_cells);
        let zones = ZoneTable::from_arrow(&[batch(vec![(
            "zone_id",
            Arc::new(StringArray::from(valid.zones.zone_id.clone())) as ArrayRef,
        )])])
        .unwrap();
        assert_eq!(zones.name, vec![None; 4]);
        assert_eq!(zones.category, vec![None; 4]);
        let zone_cells = ZoneCellTable::from_arrow(&[batch(vec![
            (
                "zone_id",
                Arc::new(StringArray::from(valid.zone_cells.zone_id.clone())),
            ),
            (
                "cell",
                Arc::new(UInt64Array::from(valid.zone_cells.cell.clone())),
            ),
        ])])
        .unwrap();
        assert_eq!(zone_cells, valid.zone_cells);
    }

    #[test]
    fn null_ids_and_missing_columns_are_named() {
        let err = RegionTable::from_arrow(&[batch(vec![
            (
                "region_id",
                Arc::new(StringArray::from(vec![Some("BE"), None])),
            ),
            (
                "level",
                Arc::new(StringArray::from(vec!["country", "province"])),
            ),
            (
                "parent_id",
                Arc::new(StringArray::from(vec![None, Some("BE")])),
            ),
        ])])
        .unwrap_err();
        assert_eq!(err.field(), Some("regions.region_id"));
        assert!(err.to_string().contains("row 1"));
        let err = RegionTable::from_arrow(&[batch(vec![(
            "region_id",
            Arc::new(StringArray::from(vec!["BE"])) as ArrayRef,
        )])])
        .unwrap_err();
        assert!(matches!(err, Error::Input { .. }));
        assert_eq!(err.field(), Some("regions.level"));
        let err = ZoneCellTable::from_arrow(&[batch(vec![
            ("zone_id", Arc::new(StringArray::from(vec!["a"]))),
            ("cell", Arc::new(StringArray::from(vec!["not hex"]))),
        ])])
        .unwrap_err();
        assert_eq!(err.field(), Some("zone_cells.cell"));
        let err = RegionCellTable::from_arrow(&[batch(vec![
            ("cell", Arc::new(Int64Array::from(vec![1_i64]))),
            ("region_id", Arc::new(Int64Array::from(vec![1_i64]))),
        ])])
        .unwrap_err();
        assert_eq!(err.field(), Some("region_cells.region_id"));
    }
}

// --- GeoJSON -----------------------------------------------------------------------------

mod geojson {
    use serde_json::json;

    use super::*;

    /// An axis-aligned box as (south, west, north, east) degrees.
    type Bounds = (f64, f64, f64, f64);

    const KORTRIJK: Bounds = (50.81, 3.22, 50.85, 3.28);
    const MENEN: Bounds = (50.81, 3.28, 50.85, 3.34);
    const MARKT: Bounds = (50.826, 3.254, 50.834, 3.266);

    fn ring((south, west, north, east): Bounds) -> serde_json::Value {
        json!([
            [west, south],
            [east, south],
            [east, north],
            [west, north],
            [west, south]
        ])
    }

    fn polygon(bounds: Bounds) -> serde_json::Value {
        json!({ "type": "Polygon", "coordinates": [ring(bounds)] })
    }

    fn inside(cell: CellIndex, (south, west, north, east): Bounds) -> bool {
        let centre = LatLng::from(cell);
        (south..=north).contains(&centre.lat()) && (west..=east).contains(&centre.lng())
    }

    fn regions() -> serde_json::Value {
        json!({
            "type": "FeatureCollection",
            "features": [
                // An inner region's geometry is not used (it would map cells to an inner
                // region otherwise).
                { "type": "Feature", "geometry": polygon((50.79, 3.19, 50.87, 3.37)),
                  "properties": { "region_id": "BE", "level": "country", "parent_id": null } },
                { "type": "Feature", "geometry": polygon(KORTRIJK),
                  "properties": { "region_id": "kortrijk", "level": "municipality",
                                  "parent_id": "BE", "population": 80_000 } },
                { "type": "Feature",
                  "geometry": { "type": "MultiPolygon", "coordinates": [[ring(MENEN)]] },
                  "properties": { "region_id": "menen", "level": "municipality",
                                  "parent_id": "BE", "population": 33_000 } },
                { "type": "Feature", "geometry": null,
                  "properties": { "region_id": 21004, "level": "municipality",
                                  "parent_id": "BE", "population": 1_200_000 } },
            ]
        })
    }

    fn zones() -> serde_json::Value {
        json!({
            "type": "FeatureCollection",
            "features": [
                { "type": "Feature", "geometry": polygon(MARKT),
                  "properties": { "zone_id": "grote-markt", "name": "Grote Markt", "category": "culture" } },
                { "type": "Feature", "geometry": null,
                  "properties": { "zone_id": "empty" } },
            ]
        })
    }

    #[test]
    fn a_polygon_smaller_than_a_cell_gets_the_cell_of_its_centroid_and_a_note() {
        // A square of about 150 × 170 m on the Markt: no resolution-9 cell's centre
        // (cells are some 350 m across) need be inside it.
        let small = (50.8290, 3.2640, 50.8305, 3.2660);
        let zones = json!({
            "type": "FeatureCollection",
            "features": [
                { "type": "Feature", "geometry": polygon(small),
                  "properties": { "zone_id": "kiosk", "name": "The kiosk" } },
                { "type": "Feature", "geometry": polygon(MARKT),
                  "properties": { "zone_id": "grote-markt" } },
            ]
        });
        let geography = build(&regions(), &zones).unwrap();
        let centre = LatLng::new(50.82975, 3.2650)
            .unwrap()
            .to_cell(Resolution::Nine);
        let (_, _, zone_table, zone_cells) = geography.to_tables();
        assert_eq!(zone_table.zone_id, ["kiosk", "grote-markt"]);
        let kiosk: Vec<u64> = zone_cells
            .zone_id
            .iter()
            .zip(&zone_cells.cell)
            .filter(|(zone, _)| zone.as_str() == "kiosk")
            .map(|(_, &cell)| cell)
            .collect();
        assert_eq!(kiosk, [u64::from(centre)]);
        assert_eq!(geography.notes().len(), 1);
        assert!(geography.notes()[0].starts_with("zone \"kiosk\" is smaller than a cell"));
        assert_eq!(geography.zones_without_cells().count(), 0);
        // Polygons that hold cells' centres leave no note.
        assert!(
            build(&regions(), &self::zones())
                .unwrap()
                .notes()
                .is_empty()
        );
    }

    fn build(regions: &serde_json::Value, zones: &serde_json::Value) -> Result<Geography> {
        Geography::from_geojson(
            &regions.to_string(),
            &zones.to_string(),
            9,
            8,
            &strings(&["kortrijk"]),
        )
    }

    #[test]
    fn polygons_fill_by_centroid_containment() {
        let geography = build(&regions(), &zones()).unwrap();
        assert_eq!(geography.region_resolution(), Some(Resolution::Eight));
        let regions = geography.regions();
        let kortrijk = regions.index_of("kortrijk").unwrap();
        let menen = regions.index_of("menen").unwrap();
        assert_eq!(
            regions.population(regions.index_of("21004").unwrap()),
            Some(1_200_000)
        );
        assert_eq!(regions.population(regions.root()), Some(1_313_000));

        // Every mapped cell is at the region resolution, in a leaf, and its centre lies
        // in that leaf's polygon.
        let mut counts = [0_usize; 2];
        for (&raw, &leaf) in &geography.leaf_of_cell {
            let cell = CellIndex::try_from(raw).unwrap();
            assert_eq!(cell.resolution(), Resolution::Eight);
            if leaf == kortrijk {
                assert!(inside(cell, KORTRIJK), "{cell}");
                counts[0] += 1;
            } else {
                assert_eq!(leaf, menen, "inner regions get no cells");
                assert!(inside(cell, MENEN), "{cell}");
                counts[1] += 1;
            }
        }
        assert!(counts.iter().all(|&n| n >= 10), "{counts:?}");
        // Conversely, every resolution-8 cell around whose centre is inside is mapped.
        let centre = LatLng::new(50.83, 3.28).unwrap().to_cell(Resolution::Eight);
        for cell in centre.grid_disk::<Vec<_>>(12) {
            let expected = if inside(cell, KORTRIJK) && !inside(cell, MENEN) {
                Some(kortrijk)
            } else if inside(cell, MENEN) && !inside(cell, KORTRIJK) {
                Some(menen)
            } else {
                None
            };
            if expected.is_some() || !(inside(cell, KORTRIJK) || inside(cell, MENEN)) {
                assert_eq!(
                    geography.leaf_of_cell.get(&u64::from(cell)).copied(),
                    expected,
                    "{cell}"
                );
            }
        }

        // Zone cells are at the analysis resolution with their centres inside the zone.
        let zone_cells: Vec<CellIndex> = geography
            .zone_set_of_cell
            .keys()
            .map(|&raw| CellIndex::try_from(raw).unwrap())
            .collect();
        assert!(zone_cells.len() >= 3, "{}", zone_cells.len());
        for &cell in &zone_cells {
            assert_eq!(cell.resolution(), Resolution::Nine);
            assert!(inside(cell, MARKT), "{cell}");
            let ids: Vec<&str> = geography
                .zone_set(geography.zone_set_of(cell))
                .iter()
                .map(|&z| geography.zones()[z as usize].id.as_str())
                .collect();
            assert_eq!(ids, ["grote-markt", "category:culture"]);
            assert_eq!(geography.leaf_of(cell), kortrijk);
        }
        let ids: Vec<&str> = geography.zones().iter().map(|z| z.id.as_str()).collect();
        assert_eq!(ids, ["grote-markt", "empty", "category:culture"]);
        assert_eq!(geography.zones()[0].name, "Grote Markt");
        assert!(geography.in_study_area(kortrijk));
        assert!(!geography.in_study_area(menen));
    }

    #[test]
    fn a_hole_removes_its_cells() {
        let mut holed = regions();
        let hole = (50.82, 3.24, 50.84, 3.26);
        holed["features"][1]["geometry"]["coordinates"] = json!([ring(KORTRIJK), ring(hole)]);
        let geography = build(&holed, &zones()).unwrap();
        let kortrijk = geography.regions().index_of("kortrijk").unwrap();
        let kortrijk_cells: Vec<CellIndex> = geography
            .leaf_of_cell
            .iter()
            .filter(|&(_, &leaf)| leaf == kortrijk)
            .map(|(&raw, _)| CellIndex::try_from(raw).unwrap())
            .collect();
        assert!(!kortrijk_cells.is_empty());
        for cell in kortrijk_cells {
            assert!(inside(cell, KORTRIJK) && !inside(cell, hole), "{cell}");
        }
        // The hole holds cells that Kortrijk would otherwise have.
        let whole = build(&regions(), &zones()).unwrap();
        assert!(
            whole
                .leaf_of_cell
                .keys()
                .any(|&raw| inside(CellIndex::try_from(raw).unwrap(), hole))
        );
    }

    #[track_caller]
    fn assert_error(regions: &str, zones: &str, field: &str, needle: &str) {
        let err =
            Geography::from_geojson(regions, zones, 9, 8, &strings(&["kortrijk"])).unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }

    #[test]
    fn malformed_json_names_its_table() {
        let good_regions = regions().to_string();
        let good_zones = zones().to_string();
        assert_error("{", &good_zones, "regions", "not valid JSON");
        assert_error(&good_regions, "not json", "zones", "not valid JSON");
        let feature = json!({ "type": "Feature", "geometry": null, "properties": {} }).to_string();
        assert_error(&feature, &good_zones, "regions", "FeatureCollection");
        assert_error(&good_regions, "[]", "zones", "FeatureCollection");
        assert_error(
            &good_regions,
            r#"{"type": "FeatureCollection"}"#,
            "zones",
            "features",
        );
    }

    #[test]
    fn malformed_features_name_their_table() {
        let good_zones = zones().to_string();
        let mut point = regions();
        point["features"][1]["geometry"] = json!({ "type": "Point", "coordinates": [3.26, 50.83] });
        assert_error(
            &point.to_string(),
            &good_zones,
            "regions",
            "Polygon or MultiPolygon",
        );
        let mut no_coordinates = regions();
        no_coordinates["features"][1]["geometry"] = json!({ "type": "Polygon" });
        assert_error(
            &no_coordinates.to_string(),
            &good_zones,
            "regions",
            "no coordinates",
        );
        let mut bad_coordinates = regions();
        bad_coordinates["features"][1]["geometry"]["coordinates"] = json!([[["x", 1.0]]]);
        assert_error(
            &bad_coordinates.to_string(),
            &good_zones,
            "regions",
            "feature 1",
        );
        let mut no_id = regions();
        no_id["features"][2]["properties"] = json!({ "level": "municipality", "parent_id": "BE" });
        assert_error(
            &no_id.to_string(),
            &good_zones,
            "regions.region_id",
            "feature 2",
        );
        let mut no_zone_id = zones();
        no_zone_id["features"][0]["properties"] = json!({ "name": "Grote Markt" });
        assert_error(
            &regions().to_string(),
            &no_zone_id.to_string(),
            "zones.zone_id",
            "feature 0",
        );
        let mut zone_point = zones();
        zone_point["features"][0]["geometry"] = json!({ "type": "LineString", "coordinates": [] });
        assert_error(
            &regions().to_string(),
            &zone_point.to_string(),
            "zones",
            "Polygon or MultiPolygon",
        );
    }

    #[test]
    fn populations_that_are_not_integers_are_errors() {
        for population in [json!("80000"), json!(80_000.5), json!(true)] {
            let mut regions = regions();
            regions["features"][1]["properties"]["population"] = population.clone();
            assert_error(
                &regions.to_string(),
                &zones().to_string(),
                "regions.population",
                "feature 1",
            );
        }
        // A whole number written as a float (as some GIS exports do) is accepted, and a
        // null population is absent.
        let mut regions = regions();
        regions["features"][1]["properties"]["population"] = json!(80_000.0);
        regions["features"][2]["properties"]["population"] = json!(null);
        let geography = build(&regions, &zones()).unwrap();
        let kortrijk = geography.regions().index_of("kortrijk").unwrap();
        let menen = geography.regions().index_of("menen").unwrap();
        assert_eq!(geography.regions().population(kortrijk), Some(80_000));
        assert_eq!(geography.regions().population(menen), None);
    }

    #[test]
    fn geography_errors_pass_through() {
        // Region cells finer than the analysis resolution.
        let err = Geography::from_geojson(
            &regions().to_string(),
            &zones().to_string(),
            7,
            8,
            &strings(&["kortrijk"]),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("region_cells.cell"));
        // An unknown study area.
        let err = Geography::from_geojson(
            &regions().to_string(),
            &zones().to_string(),
            9,
            8,
            &strings(&["gent"]),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("study_area"));
        // Resolutions above 15.
        let err = Geography::from_geojson(
            &regions().to_string(),
            &zones().to_string(),
            16,
            8,
            &strings(&["kortrijk"]),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("resolution"));
        let err = Geography::from_geojson(
            &regions().to_string(),
            &zones().to_string(),
            9,
            16,
            &strings(&["kortrijk"]),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("region_resolution"));
    }
}
