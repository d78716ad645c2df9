//! Reading pings from Parquet files (`Run::push_parquet`, `Study::prepare_parquet`): the
//! same pings give the same result as the batches they were written from, whatever the
//! compression, the row groups, the split into files or the extra columns; and every
//! unreadable file is an `Error::File` naming the file, and the column when one is at
//! fault.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::builder::{ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Int32Array, RecordBatch, StructArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field};
use crowdtally::{Error, Geography, PARQUET_BATCH_ROWS, PingColumns, Prepared, RunOptions, Study};
use crowdtally_harness::{
    DirtyMix, Ping, T0, assert_consistent, batch, config, dirty_pings, fixture_geography, floats,
    ints, prepare, record_batch, texts,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// A fresh directory under the system's temporary directory, removed when dropped (also
/// when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "crowdtally-parquet-{}-{}-{test}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a writable temporary directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the batches (all of one schema) to a Parquet file.
fn write_with(path: &Path, batches: &[RecordBatch], properties: WriterProperties) {
    let file = fs::File::create(path).expect("create the file");
    let schema = batches.first().expect("at least one batch").schema();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).expect("a writer");
    for batch in batches {
        writer.write(batch).expect("write a batch");
    }
    writer.close().expect("close the file");
}

fn write(path: &Path, batches: &[RecordBatch]) {
    write_with(path, batches, WriterProperties::default());
}

/// Enough rows that the reader returns several batches, several row groups per file.
const ROWS: usize = PARQUET_BATCH_ROWS + PARQUET_BATCH_ROWS / 2;

fn pings(rows: usize, seed: u64) -> Vec<Ping> {
    dirty_pings(rows, seed, DirtyMix::default())
}

fn prepare_files(paths: &[PathBuf], columns: &PingColumns) -> crowdtally::Result<Prepared> {
    Study::new(fixture_geography(), config())?
        .with_columns(columns.clone())
        .prepare_parquet(paths, &RunOptions::default())
}

/// Asserts two results are identical: same pings (as the record batch of the method's
/// output) and same report.
fn assert_same(expected: &Prepared, actual: &Prepared, geography: &Geography) {
    assert_consistent(actual);
    assert_eq!(expected.report(), actual.report());
    assert_eq!(
        expected.pings().to_record_batch(geography).unwrap(),
        actual.pings().to_record_batch(geography).unwrap()
    );
}

/// The result of `prepare` on the in-memory batches.
fn expected(batches: Vec<RecordBatch>) -> Prepared {
    let prepared = prepare(batches, &fixture_geography(), &config()).expect("dirty values");
    assert_consistent(&prepared);
    prepared
}

/// The parts of a file error.
fn file_error(error: Error) -> (String, Option<String>, String) {
    let shown = error.to_string();
    let field = error.field().map(str::to_owned);
    match error {
        Error::File {
            path,
            column,
            message,
            ..
        } => {
            assert_eq!(field.as_ref(), Some(column.as_ref().unwrap_or(&path)));
            assert!(shown.contains(&path), "{shown}");
            assert!(shown.contains(&message), "{shown}");
            (path, column, message)
        }
        other => panic!("expected Error::File, got {other:?}"),
    }
}

/// Asserts an error is `Error::File` naming `path` and `column`, and returns it as shown.
fn assert_file_error(error: Error, path: &Path, column: Option<&str>) -> String {
    let shown = error.to_string();
    let (at, at_column, _) = file_error(error);
    assert_eq!(at, path.display().to_string(), "{shown}");
    assert_eq!(at_column.as_deref(), column, "{shown}");
    assert!(shown.starts_with("cannot read `"), "{shown}");
    if let Some(column) = column {
        assert!(shown.contains(&format!("`{column}`")), "{shown}");
    }
    shown
}

// -- the same pings, from Parquet -------------------------------------------------------

#[test]
fn a_parquet_file_gives_the_same_result_as_its_batches() {
    let scratch = Scratch::new("same");
    let rows = pings(ROWS, 1);
    let whole = batch(&rows);
    let path = scratch.path("pings.parquet");
    // Several row groups, and several reader batches per file.
    write_with(
        &path,
        std::slice::from_ref(&whole),
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(40_000))
            .build(),
    );
    let expected = expected(vec![whole]);
    assert!(expected.report().pings_kept > 0);
    assert!(expected.report().dropped.total() > 0);
    let geography = fixture_geography();
    let from_file = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap();
    assert_same(&expected, &from_file, &geography);
    assert_eq!(from_file.report().pings_read, ROWS as u64);

    // A run's own method, on one thread and on several.
    for threads in [1, 2] {
        let config = config();
        let mut run = Study::new(geography.clone(), config)
            .unwrap()
            .run(&RunOptions::with_threads(threads))
            .unwrap();
        run.push_parquet(&path).unwrap();
        assert_same(&expected, &run.prepare().unwrap(), &geography);
    }
}

#[test]
fn pings_split_across_files_give_the_same_result_in_any_file_order() {
    let scratch = Scratch::new("split");
    let rows = pings(ROWS, 2);
    let cuts = [0, 7, 30_000, 30_001, ROWS];
    let mut paths = Vec::new();
    for (i, part) in cuts.windows(2).enumerate() {
        let path = scratch.path(&format!("part-{i}.parquet"));
        write(&path, &[batch(&rows[part[0]..part[1]])]);
        paths.push(path);
    }
    // An empty file among them changes nothing.
    let empty = scratch.path("empty.parquet");
    write(&empty, &[batch(&[])]);
    paths.insert(2, empty);

    let geography = fixture_geography();
    let expected = expected(vec![batch(&rows)]);
    assert_same(
        &expected,
        &prepare_files(&paths, &PingColumns::default()).unwrap(),
        &geography,
    );
    paths.reverse();
    assert_same(
        &expected,
        &prepare_files(&paths, &PingColumns::default()).unwrap(),
        &geography,
    );
    // The same file twice reads its pings twice: the second copy of each kept ping is a
    // duplicate of the first.
    let twice = prepare_files(
        &[paths[0].clone(), paths[0].clone()],
        &PingColumns::default(),
    )
    .unwrap();
    let once = prepare_files(&paths[..1], &PingColumns::default()).unwrap();
    assert_eq!(twice.report().pings_read, 2 * once.report().pings_read);
    assert_eq!(twice.report().pings_kept, once.report().pings_kept);
    assert_eq!(
        twice.report().dropped.duplicate,
        2 * once.report().dropped.duplicate + once.report().pings_kept
    );
    assert_eq!(
        twice.pings().to_record_batch(&geography).unwrap(),
        once.pings().to_record_batch(&geography).unwrap()
    );
}

#[test]
fn every_compression_gives_the_same_result() {
    let scratch = Scratch::new("compression");
    let rows = pings(20_000, 3);
    let whole = batch(&rows);
    let geography = fixture_geography();
    let expected = expected(vec![whole.clone()]);
    let compressions = [
        ("uncompressed", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("lz4", Compression::LZ4),
        ("lz4_raw", Compression::LZ4_RAW),
        ("gzip", Compression::GZIP(GzipLevel::default())),
    ];
    let mut paths = Vec::new();
    for (name, compression) in compressions {
        let path = scratch.path(&format!("pings-{name}.parquet"));
        write_with(
            &path,
            std::slice::from_ref(&whole),
            WriterProperties::builder()
                .set_compression(compression)
                .set_max_row_group_row_count(Some(8_000))
                .build(),
        );
        let prepared = prepare_files(std::slice::from_ref(&path), &PingColumns::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same(&expected, &prepared, &geography);
        paths.push(path);
    }
    // Files of different compressions in one run: every file's pings, duplicates of each
    // other.
    let all = prepare_files(&paths, &PingColumns::default()).unwrap();
    assert_eq!(all.report().pings_read, 6 * expected.report().pings_read);
    assert_eq!(all.report().pings_kept, expected.report().pings_kept);
    assert_eq!(
        all.pings().to_record_batch(&geography).unwrap(),
        expected.pings().to_record_batch(&geography).unwrap()
    );
}

#[test]
fn columns_the_run_does_not_read_are_ignored_whatever_their_type() {
    let scratch = Scratch::new("extra");
    let rows = pings(5_000, 4);
    let plain = batch(&rows);
    // Extra columns of types no role accepts (a list, a struct), placed first.
    let mut list = ListBuilder::new(arrow_array::builder::Int32Builder::new());
    for i in 0..rows.len() {
        list.values().append_value(i as i32);
        list.append(i % 3 != 0);
    }
    let list: ArrayRef = Arc::new(list.finish());
    let inner: ArrayRef = Arc::new(Int32Array::from_iter_values(0..rows.len() as i32));
    let nested: ArrayRef = Arc::new(StructArray::from(vec![(
        Arc::new(Field::new("ts", DataType::Int32, false)),
        inner,
    )]));
    let mut columns: Vec<(&str, ArrayRef)> = vec![("extra_list", list), ("meta", nested)];
    // The roles' columns in another order.
    for name in ["country", "cell", "ts", "lon", "subscriber", "lat"] {
        columns.push((name, Arc::clone(plain.column_by_name(name).unwrap())));
    }
    let path = scratch.path("wide.parquet");
    write(&path, &[record_batch(columns)]);
    assert_same(
        &expected(vec![plain]),
        &prepare_files(&[path], &PingColumns::default()).unwrap(),
        &fixture_geography(),
    );
}

#[test]
fn the_users_column_names_are_read() {
    let scratch = Scratch::new("names");
    let rows = pings(3_000, 5);
    let plain = batch(&rows);
    let renamed: Vec<(&str, ArrayRef)> = [
        ("subscriber", "imsi"),
        ("ts", "event_time"),
        ("lat", "latitude"),
        ("lon", "longitude"),
        ("cell", "h3"),
        ("country", "mcc_country"),
    ]
    .into_iter()
    .map(|(role, name)| (name, Arc::clone(plain.column_by_name(role).unwrap())))
    // A column named like a default role, which must not be read.
    .chain([("ts", ints(&vec![Some(0); rows.len()]))])
    .collect();
    let path = scratch.path("renamed.parquet");
    write(&path, &[record_batch(renamed)]);
    let columns = PingColumns {
        subscriber: "imsi".into(),
        ts: "event_time".into(),
        lat: "latitude".into(),
        lon: "longitude".into(),
        cell: "h3".into(),
        country: "mcc_country".into(),
    };
    assert_same(
        &expected(vec![plain]),
        &prepare_files(&[path], &columns).unwrap(),
        &fixture_geography(),
    );
}

#[test]
fn timestamps_and_dictionary_columns_round_trip() {
    let scratch = Scratch::new("types");
    let rows = pings(4_000, 6);
    let plain = batch(&rows);
    let ts: ArrayRef = Arc::new(
        rows.iter()
            .map(|p| p.ts.map(|t| t * 1_000 + 999))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    );
    let mut subscriber = StringDictionaryBuilder::<Int32Type>::new();
    for ping in &rows {
        subscriber.append_option(ping.subscriber.as_deref());
    }
    let subscriber: ArrayRef = Arc::new(subscriber.finish());
    let typed = record_batch(vec![
        ("subscriber", subscriber),
        ("ts", ts),
        ("lat", Arc::clone(plain.column_by_name("lat").unwrap())),
        ("lon", Arc::clone(plain.column_by_name("lon").unwrap())),
        ("cell", Arc::clone(plain.column_by_name("cell").unwrap())),
        (
            "country",
            Arc::clone(plain.column_by_name("country").unwrap()),
        ),
    ]);
    let path = scratch.path("typed.parquet");
    write(&path, std::slice::from_ref(&typed));
    let geography = fixture_geography();
    let from_file = prepare_files(&[path], &PingColumns::default()).unwrap();
    // Millisecond timestamps with a time zone and dictionary-encoded ids come back as
    // such, and read as they do in memory.
    assert_same(&expected(vec![typed]), &from_file, &geography);
}

#[test]
fn an_empty_file_gives_an_empty_result() {
    // A file of no rows with the pings' columns reads as an empty batch of them: the same
    // report, the subscriber kind included.
    let scratch = Scratch::new("empty");
    let path = scratch.path("empty.parquet");
    write(&path, &[batch(&[])]);
    let prepared = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap();
    assert_same(&expected(vec![batch(&[])]), &prepared, &fixture_geography());
    assert_eq!(prepared.report().pings_read, 0);
    assert!(prepared.pings().is_empty());
    // No files at all: as no batches at all.
    let none: [PathBuf; 0] = [];
    let prepared = prepare_files(&none, &PingColumns::default()).unwrap();
    assert_eq!(prepared.report(), expected(vec![]).report());
}

#[test]
fn the_configuration_is_checked_before_any_file_is_opened() {
    let mut config = config();
    config.k = 0;
    let error = Study::new(fixture_geography(), config)
        .and_then(|study| {
            study.prepare_parquet(
                &[Path::new("/nonexistent/crowdtally/pings.parquet")],
                &RunOptions::default(),
            )
        })
        .unwrap_err();
    assert!(matches!(error, Error::Config { field: "k", .. }), "{error}");
}

// -- unreadable files -------------------------------------------------------------------

#[test]
fn a_missing_file_is_a_file_error_naming_it() {
    let scratch = Scratch::new("missing");
    let path = scratch.path("no-such-file.parquet");
    let error = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
    assert_file_error(error, &path, None);
}

#[test]
fn a_directory_is_a_file_error_naming_it() {
    let scratch = Scratch::new("directory");
    let path = scratch.path("pings.parquet");
    fs::create_dir(&path).unwrap();
    let error = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
    assert_file_error(error, &path, None);
}

#[test]
fn a_file_that_is_not_parquet_is_a_file_error_naming_it() {
    let scratch = Scratch::new("not-parquet");
    let contents: [(&str, &[u8]); 4] = [
        (
            "pings.csv.parquet",
            b"subscriber,ts,lat,lon\n206010000000001,1782892800,50.83,3.27\n",
        ),
        ("zero-bytes.parquet", b""),
        ("magic-only.parquet", b"PAR1"),
        // The magic at both ends around garbage: a footer that claims too long a length.
        (
            "fake.parquet",
            b"PAR1 not really parquet \xff\xff\xff\x7fPAR1",
        ),
    ];
    for (name, bytes) in contents {
        let path = scratch.path(name);
        fs::write(&path, bytes).unwrap();
        let error =
            prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
        let shown = assert_file_error(error, &path, None);
        assert!(shown.contains("Parquet"), "{name}: {shown}");
    }
}

#[test]
fn a_truncated_file_is_a_file_error_naming_it() {
    let scratch = Scratch::new("truncated");
    let whole = scratch.path("whole.parquet");
    write(&whole, &[batch(&pings(10_000, 7))]);
    let bytes = fs::read(&whole).unwrap();
    for keep in [bytes.len() - 1, bytes.len() - 8, bytes.len() / 2, 100, 4] {
        let path = scratch.path(&format!("cut-{keep}.parquet"));
        fs::write(&path, &bytes[..keep]).unwrap();
        let error =
            prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
        assert_file_error(error, &path, None);
    }
}

#[test]
fn a_file_with_corrupt_pages_is_read_or_a_file_error_never_a_panic() {
    let scratch = Scratch::new("corrupt");
    let whole = scratch.path("whole.parquet");
    write_with(
        &whole,
        &[batch(&pings(10_000, 8))],
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let bytes = fs::read(&whole).unwrap();
    let mut errors = 0;
    for at in (8..bytes.len() / 2).step_by(bytes.len() / 40) {
        let mut corrupt = bytes.clone();
        for byte in &mut corrupt[at..at + 16] {
            *byte ^= 0xA5;
        }
        let path = scratch.path(&format!("corrupt-{at}.parquet"));
        fs::write(&path, &corrupt).unwrap();
        match prepare_files(std::slice::from_ref(&path), &PingColumns::default()) {
            Ok(prepared) => assert_consistent(&prepared),
            Err(error) => {
                let (at_path, _, _) = file_error(error);
                assert_eq!(at_path, path.display().to_string());
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "some corruption is detected");
}

#[test]
fn a_file_without_rows_is_still_checked_for_its_columns() {
    // As `prepare` checks an empty batch: a schema error does not wait for a row.
    let scratch = Scratch::new("empty-no-ts");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("subscriber", texts(&[])),
        ("lat", floats(&[])),
        ("lon", floats(&[])),
    ];
    let in_memory = prepare(
        vec![record_batch(columns.clone())],
        &fixture_geography(),
        &config(),
    )
    .unwrap_err();
    assert_eq!(in_memory.field(), Some("ts"), "{in_memory}");
    let path = scratch.path("empty-no-ts.parquet");
    write(&path, &[record_batch(columns)]);
    let error = prepare_files(std::slice::from_ref(&path), &PingColumns::default())
        .expect_err("a file without a `ts` column is an error, rows or not");
    assert_file_error(error, &path, Some("ts"));
}

#[test]
fn a_file_without_the_ts_column_is_a_file_error_naming_file_and_column() {
    let scratch = Scratch::new("no-ts");
    let rows = pings(1_000, 9);
    let plain = batch(&rows);
    let columns: Vec<(&str, ArrayRef)> = ["subscriber", "lat", "lon", "cell", "country"]
        .into_iter()
        .map(|name| (name, Arc::clone(plain.column_by_name(name).unwrap())))
        .collect();
    let path = scratch.path("no-ts.parquet");
    write(&path, &[record_batch(columns.clone())]);
    let error = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
    let shown = assert_file_error(error, &path, Some("ts"));
    assert!(shown.contains("missing"), "{shown}");

    // Under the user's name for the column.
    let renamed = PingColumns {
        ts: "event_time".into(),
        ..PingColumns::default()
    };
    let error = prepare_files(std::slice::from_ref(&path), &renamed).unwrap_err();
    assert_file_error(error, &path, Some("event_time"));

    // Neither a cell nor lat/lon: the position is missing.
    let no_position: Vec<(&str, ArrayRef)> = vec![
        ("subscriber", texts(&[Some("a")])),
        ("ts", ints(&[Some(T0)])),
    ];
    let path = scratch.path("no-position.parquet");
    write(&path, &[record_batch(no_position)]);
    let error = prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
    assert_file_error(error, &path, Some("cell"));
}

#[test]
fn a_column_of_a_wrong_type_is_a_file_error_naming_file_and_column() {
    let scratch = Scratch::new("wrong-type");
    let good: Vec<(&str, ArrayRef)> = vec![
        ("subscriber", texts(&[Some("a"), Some("b")])),
        ("ts", ints(&[Some(T0), Some(T0 + 60)])),
        ("lat", floats(&[Some(50.83), Some(50.84)])),
        ("lon", floats(&[Some(3.27), Some(3.26)])),
    ];
    let wrong: [(&str, ArrayRef, &str); 4] = [
        ("ts", floats(&[Some(T0 as f64), Some(1.5)]), "Float64"),
        ("subscriber", floats(&[Some(1.0), Some(2.0)]), "Float64"),
        ("lat", texts(&[Some("50.83"), Some("50.84")]), "Utf8"),
        (
            "lon",
            Arc::new(arrow_array::BooleanArray::from(vec![true, false])),
            "Boolean",
        ),
    ];
    for (column, array, type_name) in wrong {
        let columns: Vec<(&str, ArrayRef)> = good
            .iter()
            .map(|(name, good)| {
                let array = if *name == column { &array } else { good };
                (*name, Arc::clone(array))
            })
            .collect();
        let path = scratch.path(&format!("{column}-as-{type_name}.parquet"));
        write(&path, &[record_batch(columns)]);
        let error =
            prepare_files(std::slice::from_ref(&path), &PingColumns::default()).unwrap_err();
        let shown = assert_file_error(error, &path, Some(column));
        assert!(shown.contains(type_name), "{shown}");
    }
}

#[test]
fn an_error_in_a_later_file_names_that_file() {
    let scratch = Scratch::new("later");
    let good = scratch.path("a-good.parquet");
    write(&good, &[batch(&pings(500, 10))]);
    let bad = scratch.path("b-float-ts.parquet");
    write(
        &bad,
        &[record_batch(vec![
            ("subscriber", texts(&[Some("a")])),
            ("ts", floats(&[Some(T0 as f64)])),
            (
                "cell",
                Arc::new(arrow_array::UInt64Array::from(vec![1_u64])),
            ),
        ])],
    );
    let error = prepare_files(&[good.clone(), bad.clone()], &PingColumns::default()).unwrap_err();
    let shown = assert_file_error(error, &bad, Some("ts"));
    assert!(!shown.contains("a-good"), "{shown}");

    let missing = scratch.path("c-missing.parquet");
    let error = prepare_files(&[good, missing.clone()], &PingColumns::default()).unwrap_err();
    assert_file_error(error, &missing, None);
}

#[test]
fn subscriber_ids_of_another_kind_in_a_later_file_name_file_and_column() {
    let scratch = Scratch::new("kinds");
    let text = scratch.path("text.parquet");
    write(&text, &[batch(&pings(100, 11))]);
    let integer = scratch.path("integer.parquet");
    write(
        &integer,
        &[record_batch(vec![
            ("subscriber", ints(&[Some(206_010_000_000_001)])),
            ("ts", ints(&[Some(T0)])),
            (
                "cell",
                Arc::new(arrow_array::UInt64Array::from(vec![1_u64])),
            ),
        ])],
    );
    let error = prepare_files(&[text, integer.clone()], &PingColumns::default()).unwrap_err();
    assert_file_error(error, &integer, Some("subscriber"));
}

#[test]
fn in_file_turns_input_and_arrow_errors_into_file_errors() {
    let path = Path::new("/data/pings-2026-07.parquet");
    let input = Error::Input {
        column: "ts".into(),
        message: "is missing".into(),
    };
    let error = input.in_file(path);
    assert_eq!(error.field(), Some("ts"));
    assert_eq!(
        error.to_string(),
        "cannot read `/data/pings-2026-07.parquet`: `ts` is missing"
    );
    let arrow = Error::Arrow(arrow_schema::ArrowError::ParseError("bad page".into()));
    let error = arrow.in_file(path);
    assert_eq!(error.field(), Some("/data/pings-2026-07.parquet"));
    assert!(
        matches!(&error, Error::File { column: None, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("bad page"), "{error}");
    // Other errors are not about the file: they stay as they are.
    let config = Error::config("k", "must be at least 2");
    assert!(matches!(
        config.in_file(path),
        Error::Config { field: "k", .. }
    ));
}

// -- whole tables ------------------------------------------------------------------------

#[test]
fn read_parquet_gives_back_every_row_and_column() {
    use crowdtally::geo::RegionTable;
    use crowdtally::read_parquet;

    let scratch = Scratch::new("whole-table");
    let path = scratch.path("regions.parquet");
    let regions = record_batch(vec![
        ("region_id", texts(&[Some("BE"), Some("kortrijk")])),
        ("level", texts(&[Some("country"), Some("municipality")])),
        ("parent_id", texts(&[None, Some("BE")])),
        ("population", ints(&[None, Some(80_000)])),
    ]);
    write(&path, std::slice::from_ref(&regions));
    let read = read_parquet(&path).unwrap();
    assert_eq!(read, vec![regions.clone()]);
    assert_eq!(
        RegionTable::from_arrow(&read).unwrap(),
        RegionTable::from_arrow(&[regions]).unwrap()
    );

    // A table's column error, said of the file, names the file and the column.
    let no_level = scratch.path("no-level.parquet");
    write(
        &no_level,
        &[record_batch(vec![("region_id", texts(&[Some("BE")]))])],
    );
    let error = RegionTable::from_arrow(&read_parquet(&no_level).unwrap())
        .unwrap_err()
        .in_file(&no_level);
    let shown = error.to_string();
    let (at, column, _) = file_error(error);
    assert_eq!(at, no_level.display().to_string(), "{shown}");
    assert!(column.is_some_and(|c| c.contains("level")), "{shown}");
}

#[test]
fn read_parquet_names_a_missing_truncated_or_foreign_file() {
    let scratch = Scratch::new("whole-table-bad");
    let whole = scratch.path("whole.parquet");
    write(&whole, &[batch(&pings(ROWS, 3))]);
    let bytes = fs::read(&whole).unwrap();
    let missing = scratch.path("missing.parquet");
    assert_file_error(
        crowdtally::read_parquet(&missing).unwrap_err(),
        &missing,
        None,
    );
    for (name, contents) in [
        ("half.parquet", &bytes[..bytes.len() / 2]),
        ("all-but-one.parquet", &bytes[..bytes.len() - 1]),
        ("magic.parquet", &b"PAR1"[..]),
        ("csv.parquet", &b"region_id,level\nBE,country\n"[..]),
    ] {
        let path = scratch.path(name);
        fs::write(&path, contents).unwrap();
        assert_file_error(crowdtally::read_parquet(&path).unwrap_err(), &path, None);
    }
}

#[test]
fn write_parquet_round_trips_and_leaves_nothing_on_error() {
    use arrow_array::RecordBatchIterator;
    use crowdtally::{read_parquet, write_parquet};

    let scratch = Scratch::new("write-table");
    let rows = batch(&pings(1_000, 5));
    let cut = [rows.slice(0, 400), rows.slice(400, 600)];
    let path = scratch.path("written.parquet");
    let reader = RecordBatchIterator::new(cut.clone().map(Ok), rows.schema());
    write_parquet(&path, reader).unwrap();
    // Fewer rows than the reader's batch: they come back as one batch.
    assert_eq!(read_parquet(&path).unwrap(), vec![rows.clone()]);

    // A reader that fails part-way: the error names the file, and the file is gone.
    let failing = RecordBatchIterator::new(
        [
            Ok(cut[0].clone()),
            Err(arrow_schema::ArrowError::ComputeError(
                "the source went away".into(),
            )),
        ],
        rows.schema(),
    );
    let shown = assert_file_error(write_parquet(&path, failing).unwrap_err(), &path, None);
    assert!(shown.contains("the source went away"), "{shown}");
    assert!(!path.exists());

    let nowhere = scratch.path("no-such-directory").join("out.parquet");
    let reader = RecordBatchIterator::new([Ok(rows.clone())], rows.schema());
    assert_file_error(write_parquet(&nowhere, reader).unwrap_err(), &nowhere, None);
}
