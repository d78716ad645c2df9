//! Subscriber ids and country codes given as a dictionary (as Parquet stores them, and
//! as Arrow readers hand them out: one dictionary shared by every batch of a column
//! chunk) give exactly the result of the same values given plainly, whatever the
//! dictionary holds besides the values in use, and however rows are split into batches
//! and threads.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use crowdtally::{Config, OptOut, Prepared, RunOptions, Study, SubscriberId};
use crowdtally_harness::{
    DirtyMix, assert_consistent, batches, config, dirty_pings, fixture_geography,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// The batches with their text column `name` as keys into one dictionary shared by all
/// of them: every value of every batch, in an order of its own, after `unused` values no
/// row refers to and a null value, which rows with a null point at when `null_value`.
fn with_shared_dictionary(
    batches: &[RecordBatch],
    name: &str,
    unused: usize,
    null_value: bool,
) -> Vec<RecordBatch> {
    let mut present: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name(name).expect("column");
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    present.sort_unstable();
    present.dedup();
    present.reverse();
    let mut values: Vec<Option<String>> = (0..unused).map(|i| Some(format!("nobody{i}"))).collect();
    values.push(None);
    let null_key = (values.len() - 1) as i32;
    values.extend(present.iter().cloned().map(Some));
    let values: ArrayRef = Arc::new(values.iter().map(Option::as_deref).collect::<StringArray>());
    batches
        .iter()
        .map(|b| {
            let column = b.column_by_name(name).expect("column").as_string::<i32>();
            let keys: Int32Array = column
                .iter()
                .map(|id| match id {
                    Some(id) => Some(
                        null_key + 1 + present.iter().position(|i| i == id).expect("known") as i32,
                    ),
                    None if null_value => Some(null_key),
                    None => None,
                })
                .collect();
            let dictionary =
                DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&values)).expect("valid");
            let schema = b.schema();
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .map(|f| {
                    if f.name() == name {
                        Field::new(
                            name,
                            DataType::Dictionary(
                                Box::new(DataType::Int32),
                                Box::new(DataType::Utf8),
                            ),
                            true,
                        )
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect();
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| {
                    if f.name() == name {
                        Arc::new(dictionary.clone()) as ArrayRef
                    } else {
                        Arc::clone(c)
                    }
                })
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
        })
        .collect()
}

fn run(batches: &[RecordBatch], config: &Config, threads: usize) -> Prepared {
    let geography = fixture_geography();
    let mut run = Study::new(geography, config.clone())
        .expect("study")
        .run(&RunOptions::with_threads(threads))
        .expect("run");
    for batch in batches {
        run.push(batch).expect("push");
    }
    let prepared = run.prepare().expect("prepare");
    assert_consistent(&prepared);
    prepared
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn dictionaries_give_the_plain_result(
        seed in any::<u64>(),
        rows in 1_usize..12_000,
        cuts in vec(0_usize..12_000, 0..=3),
        unused in 0_usize..50,
        null_value in any::<bool>(),
        threads in 1_usize..=3,
        opt_out_first in any::<bool>(),
        columns in prop_oneof![
            Just(vec!["subscriber"]),
            Just(vec!["country"]),
            Just(vec!["subscriber", "country"]),
        ],
    ) {
        let mix = DirtyMix { cells: 20, repeated: 30, bad_positions: 10, bad_other: 10 };
        let plain = batches(&dirty_pings(rows, seed, mix), &cuts);
        let mut dictionary = plain.clone();
        for name in columns {
            dictionary = with_shared_dictionary(&dictionary, name, unused, null_value);
        }
        let mut config = config();
        if opt_out_first {
            // An id in use, opted out: its rows are dropped the same way.
            let first = plain.iter().find_map(|b| {
                b.column_by_name("subscriber")?.as_string::<i32>().iter().flatten().next().map(str::to_owned)
            });
            if let Some(id) = first {
                config.opt_out = OptOut::new(vec![SubscriberId::Text(id)]);
            }
        }
        let geography = fixture_geography();
        let expected = run(&plain, &config, 1);
        let got = run(&dictionary, &config, threads);
        prop_assert_eq!(expected.report(), got.report());
        prop_assert_eq!(
            expected.pings().to_record_batch(&geography).expect("pings"),
            got.pings().to_record_batch(&geography).expect("pings")
        );
    }
}

/// A dictionary without values (all rows null) is read like a column of nulls.
#[test]
fn an_empty_dictionary_is_all_bad_subscribers() {
    let plain = batches(&dirty_pings(50, 3, DirtyMix::default()), &[]);
    let batch = &plain[0];
    let keys = Int32Array::from(vec![None::<i32>; batch.num_rows()]);
    let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
    let dictionary: ArrayRef =
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("valid"));
    let schema = batch.schema();
    let mut columns: Vec<(&str, ArrayRef)> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let column = if field.name() == "subscriber" {
            Arc::clone(&dictionary)
        } else {
            Arc::clone(column)
        };
        columns.push((field.name().as_str(), column));
    }
    let batch = crowdtally_harness::record_batch(columns);
    let prepared = run(std::slice::from_ref(&batch), &config(), 1);
    assert_eq!(
        prepared.report().dropped.bad_subscriber,
        batch.num_rows() as u64
    );
    assert_eq!(prepared.report().pings_read, batch.num_rows() as u64);
}
