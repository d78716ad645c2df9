//! Grouping rows into shards: by subscriber, so that a shard holds whole devices, with
//! the partitions of subscribers whose pseudonyms collide joined.

use crate::ingest::decoded::Decoded;

/// The rows `rows` by group, `group_of(row)` among `groups`: one list of rows, each
/// group's in row order one after the other, and each group's place in it. A counting
/// sort: the list is exactly as long as the rows, with no slack.
pub(crate) fn rows_by_group(
    rows: std::ops::Range<usize>,
    groups: usize,
    group_of: impl Fn(usize) -> usize,
) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
    let mut starts = vec![0_usize; groups + 1];
    for row in rows.clone() {
        starts[group_of(row) + 1] += 1;
    }
    for g in 1..=groups {
        starts[g] += starts[g - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0_u32; rows.len()];
    for row in rows {
        let slot = &mut next[group_of(row)];
        order[*slot] = row as u32;
        *slot += 1;
    }
    let ranges = starts.windows(2).map(|w| w[0]..w[1]).collect();
    (order, ranges)
}

/// Rows grouped as [`rows_by_group`] groups them, in consecutive blocks of rows, each
/// block on its own thread: a group's rows are its rows of each block, block after
/// block, so in row order.
pub(crate) struct BlockGroups(Vec<(Vec<u32>, Vec<std::ops::Range<usize>>)>);

impl BlockGroups {
    /// The rows `0..rows` by group, `group_of(row)` among `groups`, grouped on the
    /// current rayon pool.
    pub(crate) fn new(
        rows: usize,
        groups: usize,
        group_of: impl Fn(usize) -> usize + Sync,
    ) -> Self {
        use rayon::prelude::*;
        let blocks = rayon::current_num_threads().clamp(1, rows.div_ceil(1 << 16).max(1));
        let block_rows = rows.div_ceil(blocks).max(1);
        Self(
            (0..blocks)
                .into_par_iter()
                .map(|b| {
                    let rows = (b * block_rows).min(rows)..((b + 1) * block_rows).min(rows);
                    rows_by_group(rows, groups, &group_of)
                })
                .collect(),
        )
    }

    /// The rows of group `group`, in row order, a slice per block.
    pub(crate) fn rows(&self, group: usize) -> Vec<&[u32]> {
        self.0
            .iter()
            .map(|(order, ranges)| &order[ranges[group].clone()])
            .collect()
    }
}

/// The groups of partitions that must be finished together: partitions holding
/// subscribers that share a pseudonym are joined. Each group is sorted; groups are in
/// order of their first partition.
pub(crate) fn partition_groups(
    partitions: usize,
    colliding: &[(u32, u32)],
    partition_of_number: impl Fn(u32) -> usize,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..partitions).collect();
    for &(a, b) in colliding {
        let (ra, rb) = (
            root(&mut parent, partition_of_number(a)),
            root(&mut parent, partition_of_number(b)),
        );
        parent[ra.max(rb)] = ra.min(rb);
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); partitions];
    for p in 0..partitions {
        let r = root(&mut parent, p);
        groups[r].push(p);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// The root of a partition in a union-find forest, halving the path on the way.
fn root(parent: &mut [usize], mut p: usize) -> usize {
    while parent[p] != p {
        parent[p] = parent[parent[p]];
        p = parent[p];
    }
    p
}

/// For each partition, the group holding it.
pub(crate) fn group_of_partition(groups: &[Vec<usize>]) -> Vec<usize> {
    let mut group_of = vec![0; groups.iter().map(Vec::len).sum()];
    for (g, group) in groups.iter().enumerate() {
        for &p in group {
            group_of[p] = g;
        }
    }
    group_of
}

/// The rows of decoded pings by group, `group_of(subscriber)` among `groups`: see
/// [`rows_by_group`].
pub(crate) fn subscriber_rows_by_group(
    decoded: &Decoded,
    groups: usize,
    group_of: impl Fn(u32) -> usize,
) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
    let subscriber = &decoded.subscriber;
    rows_by_group(0..decoded.len(), groups, |row| group_of(subscriber[row]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_subscribers_join_their_partitions() {
        // Numbers 0..8 in partition n % 4; 1 and 6 collide, and 6 and 3.
        let groups = partition_groups(4, &[(1, 6), (6, 3)], |n| n as usize % 4);
        assert_eq!(groups, vec![vec![0], vec![1, 2, 3]]);
        let alone = partition_groups(3, &[], |n| n as usize % 3);
        assert_eq!(alone, vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn block_groups_list_each_groups_rows_in_row_order() {
        let mut decoded = Decoded::default();
        for i in 0..200_000_u32 {
            decoded.subscriber.push(i.wrapping_mul(2_654_435_761) % 977);
            decoded.ts.push(i64::from(i));
            decoded.cell.push(u64::from(i));
            decoded.country.push(0);
        }
        let group_of = |n: u32| n as usize % 13;
        let (rows, ranges) = subscriber_rows_by_group(&decoded, 13, group_of);
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let blocks = pool.install(|| {
                BlockGroups::new(decoded.len(), 13, |row| group_of(decoded.subscriber[row]))
            });
            assert_eq!(blocks.0.len(), threads.min(4), "{threads} threads");
            for (group, range) in ranges.iter().enumerate() {
                let listed: Vec<u32> = blocks.rows(group).concat();
                assert_eq!(
                    listed,
                    rows[range.clone()],
                    "group {group}, {threads} threads"
                );
                let gathered = Decoded::gather(&decoded, &blocks.rows(group));
                assert!(gathered.subscriber.iter().all(|&n| group_of(n) == group));
            }
        }
    }

    #[test]
    fn an_in_memory_split_keeps_every_row_once_and_subscribers_whole() {
        let mut decoded = Decoded::default();
        for i in 0..1000_u32 {
            decoded.subscriber.push(i % 41);
            decoded.ts.push(i64::from(i));
            decoded.cell.push(u64::from(i));
            decoded.country.push(0);
        }
        let groups = partition_groups(8, &[(3, 4)], |n| n as usize % 8);
        let group_of = group_of_partition(&groups);
        let (rows, ranges) =
            subscriber_rows_by_group(&decoded, groups.len(), |n| group_of[n as usize % 8]);
        assert_eq!(rows.len(), 1000);
        let parts: Vec<Decoded> = ranges
            .into_iter()
            .map(|range| {
                // Each group's rows in row order.
                assert!(rows[range.clone()].is_sorted());
                Decoded::gather(&decoded, &[&rows[range]])
            })
            .collect();
        assert_eq!(parts.iter().map(Decoded::len).sum::<usize>(), 1000);
        let mut ts: Vec<i64> = parts.iter().flat_map(|p| p.ts.iter()).collect();
        ts.sort_unstable();
        assert_eq!(ts, (0..1000).collect::<Vec<_>>());
        let holder = |n: u32| parts.iter().position(|p| p.subscriber.contains(&n));
        assert_eq!(holder(3), holder(4), "colliding subscribers share a shard");
        for n in 0..41 {
            let holding = parts.iter().filter(|p| p.subscriber.contains(&n)).count();
            assert_eq!(holding, 1);
        }
    }
}
