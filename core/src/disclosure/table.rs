//! k-anonymity over a whole release table (method §7): step 1 and the origin rows group
//! by group ([`Disclosure::protect`]), step 2 across a category and its member zones,
//! and step 6 on the dwell bands of each released total row.

use std::collections::BTreeMap;

use super::{Cell, Disclosure, DisclosureCounts, Group, LevelOrigin};
use crate::aggregate::{DWELL_BANDS, GroupKey, Measures};
use crate::extrapolate::{EstimateSums, Factors};
use crate::release::grid::Grid;
use crate::release::{ReleaseRow, RowMeasures};

/// The rows of a k-anonymous release, with what disclosure control did.
pub(crate) fn protect_table(
    grid: &Grid<'_>,
    disclosure: &Disclosure<'_>,
    factors: &Factors,
) -> (Vec<ReleaseRow>, DisclosureCounts) {
    let k = disclosure.k;
    // Step 1 for every group first: step 2 reads the members' outcome.
    let mut below_k = vec![false; grid.len()];
    for group in grid.groups() {
        let devices: u64 = group.rows.iter().map(|(_, m)| m.devices).sum();
        below_k[grid.index(group.key)] = devices < k;
    }
    let union_suppressed = unions_to_suppress(grid, &below_k, k);
    let mut counts = DisclosureCounts {
        k,
        ..DisclosureCounts::default()
    };
    let mut rows = Vec::new();
    for group in grid.groups() {
        let row = |origin: String, cell: Option<&Cell>, bands: [Option<u64>; 5]| ReleaseRow {
            zone: group.zone.clone(),
            bucket_start: group.label.clone(),
            class: group.class,
            origin,
            measures: cell.map(|c| RowMeasures {
                devices: c.measures.devices,
                visits: c.measures.visits,
                dwell_s: c.measures.dwell_s,
                bands,
            }),
            suppressed: cell.is_none(),
            estimate: cell.and_then(|c| c.estimate.finish(c.measures.devices)),
        };
        if union_suppressed[grid.index(group.key)] {
            counts.groups += 1;
            counts.groups_suppressed += 1;
            counts.groups_suppressed_as_unions += 1;
            rows.push(row("*".to_owned(), None, [None; 5]));
            continue;
        }
        let mut cells: BTreeMap<LevelOrigin, Cell> = BTreeMap::new();
        for &(key, measures) in group.rows {
            let origin = key.origin as usize;
            let estimate =
                EstimateSums::of(measures.devices, measures.visits, factors.by_origin[origin]);
            *cells.entry(grid.level_origin[origin].clone()).or_default() +=
                Cell { measures, estimate };
        }
        match disclosure.protect(cells.into_iter().collect(), &mut counts) {
            Group::Suppressed => rows.push(row("*".to_owned(), None, [None; 5])),
            Group::Released { total, origins } => {
                let bands = released_bands(&total.measures, k);
                counts.bands_withheld += bands.iter().filter(|b| b.is_none()).count() as u64;
                rows.push(row("*".to_owned(), Some(&total), bands));
                // Bands are a breakdown of the group: origin rows have none (step 6).
                rows.extend(
                    origins
                        .iter()
                        .map(|(name, cell)| row(name.clone(), Some(cell), [None; 5])),
                );
            }
        }
    }
    (rows, counts)
}

/// Step 2: for each category group that step 1 released, whether it must be suppressed
/// because the devices of its step-1-suppressed member zones (same bucket and class)
/// number 1 to k − 1: otherwise such a member would be read off as the union minus the
/// others. Indexed like the grid.
fn unions_to_suppress(grid: &Grid<'_>, below_k: &[bool], k: u64) -> Vec<bool> {
    let mut hidden_devices: BTreeMap<GroupKey, u64> = BTreeMap::new();
    for union in grid.aggregate.unions() {
        let member_below_k = |&member: &u32| {
            below_k[grid.index(GroupKey {
                zone: member,
                ..union.group
            })]
        };
        if union.members.iter().any(member_below_k) {
            *hidden_devices.entry(union.group).or_default() += union.devices;
        }
    }
    let mut suppress = vec![false; grid.len()];
    for (group, devices) in hidden_devices {
        let index = grid.index(group);
        if !below_k[index] && (1..k).contains(&devices) {
            suppress[index] = true;
        }
    }
    suppress
}

/// Step 6: the dwell bands a released total row shows. A band counted from 1 to k − 1
/// devices is withheld; when that leaves exactly one band withheld, the released
/// non-empty band with the fewest visits (ties: the lower band) is withheld too, so that
/// `visits` minus the others does not give it back; when no released band has visits,
/// all five are withheld.
pub(crate) fn released_bands(total: &Measures, k: u64) -> [Option<u64>; 5] {
    let mut bands: [Option<u64>; 5] = std::array::from_fn(|band| {
        (!(1..k).contains(&total.band_devices[band])).then_some(total.bands[band])
    });
    if bands.iter().filter(|b| b.is_none()).count() == 1 {
        let complement = (0..DWELL_BANDS.len())
            .filter(|&band| bands[band].is_some_and(|visits| visits > 0))
            .min_by_key(|&band| (bands[band], band));
        match complement {
            Some(band) => bands[band] = None,
            None => bands = [None; 5],
        }
    }
    bands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(bands: [u64; 5], band_devices: [u64; 5]) -> Measures {
        Measures {
            devices: band_devices.iter().sum(),
            visits: bands.iter().sum(),
            dwell_s: 0,
            bands,
            band_devices,
        }
    }

    #[test]
    fn bands_of_k_devices_or_none_are_released() {
        let released = released_bands(&total([40, 0, 31, 0, 0], [35, 0, 30, 0, 0]), 30);
        assert_eq!(released, [Some(40), Some(0), Some(31), Some(0), Some(0)]);
    }

    #[test]
    fn one_withheld_band_takes_the_smallest_non_empty_band_with_it() {
        // band_1_2h has 3 devices (< k = 30): withheld; the released non-empty bands are
        // 0_1h (40 visits) and 2_4h (31): the smaller, 2_4h, goes too.
        let released = released_bands(&total([40, 3, 31, 0, 0], [35, 3, 30, 0, 0]), 30);
        assert_eq!(released, [Some(40), None, None, Some(0), Some(0)]);
        // Ties go to the lower band.
        let tied = released_bands(&total([31, 3, 31, 0, 0], [30, 3, 30, 0, 0]), 30);
        assert_eq!(tied, [None, None, Some(31), Some(0), Some(0)]);
    }

    #[test]
    fn a_lone_withheld_band_with_only_empty_bands_left_withholds_all() {
        let released = released_bands(&total([0, 0, 7, 0, 0], [0, 0, 7, 0, 0]), 30);
        assert_eq!(released, [None; 5]);
    }

    #[test]
    fn two_withheld_bands_need_no_complement() {
        let released = released_bands(&total([40, 3, 4, 0, 0], [35, 3, 4, 0, 0]), 30);
        assert_eq!(released, [Some(40), None, None, Some(0), Some(0)]);
    }
}
