//! A small region tree for the tests of later stages: the country `BE`, provinces `P1`
//! (municipalities `m1`, `m2`) and `P2` (`m3`), each municipality one resolution-7 cell.

use h3o::{LatLng, Resolution};

use super::{RegionCellTable, RegionTable};

/// The centres of `m1`, `m2` and `m3` (resolution-7 cells about 35 km apart).
pub(crate) const MUNICIPALITY_CENTRES: [(f64, f64); 3] = [(50.0, 3.0), (50.0, 3.5), (50.0, 4.0)];

/// The tree, each municipality of `population` people, and its region cells.
pub(crate) fn two_provinces(population: i64) -> (RegionTable, RegionCellTable) {
    let regions = RegionTable {
        region_id: ["BE", "P1", "P2", "m1", "m2", "m3"]
            .map(String::from)
            .to_vec(),
        level: [
            "country",
            "province",
            "province",
            "municipality",
            "municipality",
            "municipality",
        ]
        .map(String::from)
        .to_vec(),
        parent_id: vec![
            None,
            Some("BE".into()),
            Some("BE".into()),
            Some("P1".into()),
            Some("P1".into()),
            Some("P2".into()),
        ],
        population: vec![
            None,
            None,
            None,
            Some(population),
            Some(population),
            Some(population),
        ],
        name: Vec::new(),
    };
    let region_cells = RegionCellTable {
        cell: MUNICIPALITY_CENTRES
            .map(|(a, o)| {
                u64::from(
                    LatLng::new(a, o)
                        .expect("valid centre")
                        .to_cell(Resolution::Seven),
                )
            })
            .to_vec(),
        region_id: ["m1", "m2", "m3"].map(String::from).to_vec(),
    };
    (regions, region_cells)
}
