//! Reading pings from Parquet files, without Python or pyarrow: only the columns the run
//! uses are decoded (projection), a batch of rows at a time.

use std::fs::File;
use std::path::Path;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;

use super::PingColumns;
use super::columns::is_dictionary_id_type;
use crate::error::{Error, Result};

/// Rows decoded at a time: large enough to amortise per-batch work, small enough that a
/// batch stays a few megabytes.
pub const PARQUET_BATCH_ROWS: usize = 1 << 16;

/// Reads the pings of one Parquet file, batch by batch, handing each to `push`: only the
/// columns the run reads are decoded, subscriber ids and country codes as the dictionaries
/// Parquet stores them in (each distinct value is then looked up once per column chunk,
/// not once per row). Decoding runs on a thread of its own, a few batches ahead of
/// `push`. A file without rows still has its columns checked: `push` gets one empty
/// batch.
///
/// # Errors
/// [`Error::File`] naming the file (and the column, when one is at fault) for a file
/// that is missing, not Parquet or truncated, lacks a column, or holds a column of an
/// unsupported type; `push`'s own errors, said of the file. Rows pushed from the file
/// before the error stay pushed.
pub(crate) fn read_ping_file(
    path: &Path,
    columns: &PingColumns,
    mut push: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::file_source(path, "", e))?;
    let unreadable = |e: ParquetError| Error::file_source(path, not_parquet(path), e);
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(unreadable)?;
    let schema = with_dictionaries(metadata.schema(), columns);
    let metadata = ArrowReaderMetadata::try_new(
        std::sync::Arc::clone(metadata.metadata()),
        ArrowReaderOptions::new().with_schema(schema),
    )
    .map_err(unreadable)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata);
    let mask = projection(&builder, columns);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(PARQUET_BATCH_ROWS)
        .build()
        .map_err(unreadable)?;
    let schema = reader.schema();
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(READ_AHEAD);
        scope.spawn(move || {
            let mut reader = reader;
            loop {
                // A corrupt page can make the decoder panic: it is this file's error,
                // not the run's crash.
                let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
                    .unwrap_or_else(|_| {
                        Some(Err(arrow_schema::ArrowError::ParquetError(
                            "the decoder failed on a corrupt page".into(),
                        )))
                    });
                let Some(batch) = next else { break };
                let failed = batch.is_err();
                // The receiver is gone when pushing failed; after an error the reader
                // is in no state to go on.
                if sender.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        let mut pushed = false;
        for batch in receiver {
            push(&batch?)?;
            pushed = true;
        }
        if !pushed {
            push(&RecordBatch::new_empty(schema))?;
        }
        Ok(())
    })
    .map_err(|e: Error| e.in_file(path))
}

/// Batches decoded ahead of the one being pushed.
const READ_AHEAD: usize = 8;

/// `schema` with the subscriber column, when it holds text or binary, and the country
/// column, when it holds text, as dictionaries.
fn with_dictionaries(schema: &SchemaRef, columns: &PingColumns) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            t if (field.name() == &columns.subscriber && is_dictionary_id_type(t))
                || (field.name() == &columns.country && *t == DataType::Utf8) =>
            {
                field.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(field.data_type().clone()),
                ))
            }
            _ => field.as_ref().clone(),
        })
        .collect();
    std::sync::Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The top-level columns of the file that the run reads; missing ones are reported by
/// the ingester with their role's name.
fn projection(
    builder: &ParquetRecordBatchReaderBuilder<File>,
    columns: &PingColumns,
) -> ProjectionMask {
    let wanted = [
        &columns.subscriber,
        &columns.ts,
        &columns.lat,
        &columns.lon,
        &columns.cell,
        &columns.country,
    ];
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| wanted.contains(&field.name()))
        .map(|(i, _)| i)
        .collect();
    ProjectionMask::roots(builder.parquet_schema(), roots)
}

/// What to say of a file that is not Parquet: how to read it when its name says CSV.
fn not_parquet(path: &Path) -> &'static str {
    let csv = path
        .extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| {
            ["csv", "tsv", "txt", "gz"].contains(&extension.to_ascii_lowercase().as_str())
        });
    if csv {
        "is not a Parquet file (pings paths are read as Parquet): read a CSV file as a \
         table and pass the table (pyarrow.csv.read_csv(path), polars.read_csv(path), or \
         duckdb.read_csv(path)), or convert it to Parquet once"
    } else {
        "is not a readable Parquet file"
    }
}

/// A reader of a whole Parquet file, every column; errors name the file.
fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| Error::file_source(path, "", e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::file_source(path, "is not a readable Parquet file", e))
}

/// The number of rows of a Parquet file, from its footer (the pings are not read).
///
/// # Errors
/// [`Error::File`] naming the file if it is missing or not Parquet.
pub fn parquet_rows(path: &Path) -> Result<u64> {
    let builder = open_parquet(path)?;
    Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
}

/// Every row and column of a Parquet file, as record batches: for small tables such as
/// the geography's, which are wanted whole.
///
/// # Errors
/// [`Error::File`] naming the file if it is missing, not Parquet, or truncated.
///
/// # Example
/// ```no_run
/// use crowdtally::geo::RegionTable;
/// use crowdtally::read_parquet;
///
/// let path = std::path::Path::new("geography/regions.parquet");
/// let regions = RegionTable::from_arrow(&read_parquet(path)?).map_err(|e| e.in_file(path))?;
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    read_parquet_table(path).map(|(_, batches)| batches)
}

/// Every row and column of a Parquet file, with the file's Arrow schema, its metadata
/// included (a release file keeps its report there); the batches carry that schema.
///
/// # Errors
/// As [`read_parquet`].
pub fn read_parquet_table(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let builder = open_parquet(path)?;
    let schema = std::sync::Arc::clone(builder.schema());
    let batches = builder
        .build()
        .map_err(|e| Error::file_source(path, "", e))?
        .map(|batch| batch.and_then(|b| b.with_schema(std::sync::Arc::clone(&schema))))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Arrow(e).in_file(path))?;
    Ok((schema, batches))
}

/// Writes the batches of a reader as one Parquet file at `path` (Snappy-compressed, as
/// most tools write by default), replacing any file there. On an error, nothing is left
/// at `path`.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be created or written, or if the reader
/// fails.
pub fn write_parquet(path: &Path, reader: impl RecordBatchReader) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::file_source(path, "", e))?;
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let written = (|| {
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, reader.schema(), Some(properties))
                .map_err(|e| Error::file_source(path, "", e))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Arrow(e).in_file(path))?;
            writer
                .write(&batch)
                .map_err(|e| Error::file_source(path, "", e))?;
        }
        writer
            .close()
            .map_err(|e| Error::file_source(path, "", e))?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}
