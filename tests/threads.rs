//! Locating pings on several threads (`RunOptions::threads`, and `prepare`, which uses
//! every core) gives exactly the result of one thread, on batches large enough for the
//! parallel path to share them out (it takes batches above 4,096 rows, 4,096 rows a
//! task).

use arrow_array::RecordBatch;
use crowdtally::{Config, Prepared, RunOptions, Study};
use crowdtally_harness::{
    DirtyMix, T0, assert_consistent, batch, batches, brussels_period, config, dirty_pings,
    fixture_geography,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Rows a task of the parallel path takes at least; batches must be larger than this to
/// run on several threads, and twice as large to make two tasks.
const ROWS_PER_TASK: usize = 1 << 12;

fn with_threads(batches: &[RecordBatch], config: &Config, threads: usize) -> Prepared {
    let geography = fixture_geography();
    let mut run = Study::new(geography, config.clone())
        .unwrap()
        .run(&RunOptions::with_threads(threads))
        .unwrap();
    for batch in batches {
        run.push(batch).unwrap();
    }
    let prepared = run.prepare().unwrap();
    assert_consistent(&prepared);
    prepared
}

fn mix() -> impl Strategy<Value = DirtyMix> {
    (0..=40_u8, 0..=60_u8, 0..=20_u8, 0..=10_u8).prop_map(
        |(cells, repeated, bad_positions, bad_other)| DirtyMix {
            cells,
            repeated,
            bad_positions,
            bad_other,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_number_of_threads_changes_nothing(
        seed in any::<u64>(),
        rows in (3 * ROWS_PER_TASK + 1)..(5 * ROWS_PER_TASK),
        mix in mix(),
        // At most one cut, so that at least one batch takes the parallel path.
        cuts in vec(0..=ROWS_PER_TASK, 0..=1),
        given_period in any::<bool>(),
    ) {
        let rows = dirty_pings(rows, seed, mix);
        let batches = batches(&rows, &cuts);
        prop_assert!(batches.iter().any(|b| b.num_rows() > 2 * ROWS_PER_TASK));
        let mut config = config();
        if given_period {
            config.period = Some(brussels_period(T0, T0 + 86_400));
        }
        let geography = fixture_geography();
        let one = with_threads(&batches, &config, 1);
        let expected = one.pings().to_record_batch(&geography).unwrap();
        for threads in [2, 4] {
            let many = with_threads(&batches, &config, threads);
            prop_assert_eq!(one.report(), many.report(), "{} threads", threads);
            prop_assert_eq!(&expected, &many.pings().to_record_batch(&geography).unwrap());
        }
        // `prepare` locates on every core.
        let all_cores = crowdtally_harness::prepare(batches, &geography, &config).unwrap();
        prop_assert_eq!(one.report(), all_cores.report());
        prop_assert_eq!(&expected, &all_cores.pings().to_record_batch(&geography).unwrap());
    }
}

#[test]
fn a_batch_just_above_the_threshold_and_one_at_it_agree() {
    // At the threshold the batch is located on the calling thread; one row more and the
    // pool takes it, as one task.
    let geography = fixture_geography();
    let config = config();
    for rows in [ROWS_PER_TASK, ROWS_PER_TASK + 1, 2 * ROWS_PER_TASK + 1] {
        let batches = [batch(&dirty_pings(rows, rows as u64, DirtyMix::default()))];
        let one = with_threads(&batches, &config, 1);
        let many = with_threads(&batches, &config, 3);
        assert_eq!(one.report(), many.report(), "{rows} rows");
        assert_eq!(
            one.pings().to_record_batch(&geography).unwrap(),
            many.pings().to_record_batch(&geography).unwrap(),
            "{rows} rows"
        );
    }
}

#[test]
fn zero_threads_is_one_per_core_and_agrees() {
    let geography = fixture_geography();
    let config = config();
    let batches = [batch(&dirty_pings(
        3 * ROWS_PER_TASK,
        7,
        DirtyMix::default(),
    ))];
    let one = with_threads(&batches, &config, 1);
    let per_core = with_threads(&batches, &config, 0);
    assert_eq!(one.report(), per_core.report());
    assert_eq!(
        one.pings().to_record_batch(&geography).unwrap(),
        per_core.pings().to_record_batch(&geography).unwrap()
    );
}
