//! # crowdtally
//!
//! Visitor statistics from mobile-network pings, done right: keyed and rotated
//! pseudonyms with opt-out, H3 location, home and usual-environment inference, visits and
//! dwell, aggregation with disclosure control, and extrapolation with honest intervals.
//! Every number is defined by the method (`docs/METHOD.md` in the repository).
//!
//! The front door is [`Study`]: one [`Geography`] and one [`Config`], checked together.
//! Everything runs through it, and what it computes keeps it, so a table can never be
//! released with another geography than its pings were located in:
//!
//! - [`Study::release`] runs the whole method on raw pings and returns a protected
//!   [`Release`] (its table and its report) for a [`ReleaseSpec`] (bucket, origin level,
//!   classes, extrapolation inputs); [`Study::releases`] gives several tables from one
//!   reading of the pings;
//! - [`Study::prepare`] gives the located pings ([`Prepared`]), from which any number of
//!   releases and the per-device tables follow;
//! - [`Study::run`] reads pings pushed batch by batch ([`Run`]), from streams or Parquet
//!   files, for inputs far larger than memory;
//! - [`RunOptions`] holds the machine's settings (threads, memory budget, spill
//!   directory, progress, stop), which never change a number.
//!
//! The data flows one way through the stages, in the order of the method: `ingest`
//! (cleaning, pseudonyms, location) → `profile` (homes, classes, visits) → `aggregate` →
//! `disclosure` → `extrapolate` → the release and its report, driven by `pipeline`
//! (shards, spill, threads). A distributed run computes [`Aggregate`]s anywhere, merges
//! them with [`Aggregate::merge_all`], and finishes with [`Study::release_aggregate`].
//!
//! ```
//! use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
//! use crowdtally::{Config, Geography, Key, ReleaseSpec, RunOptions, Study};
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//!
//! // A country with one municipality made of one resolution-7 cell, and one zone.
//! let home = h3o::LatLng::new(50.828, 3.265)?.to_cell(h3o::Resolution::Seven);
//! let square = h3o::LatLng::new(50.828, 3.265)?.to_cell(h3o::Resolution::Nine);
//! let regions = RegionTable {
//!     region_id: vec!["BE".into(), "kortrijk".into()],
//!     level: vec!["country".into(), "municipality".into()],
//!     parent_id: vec![None, Some("BE".into())],
//!     population: vec![None, Some(80_000)],
//!     name: Vec::new(),
//! };
//! let region_cells = RegionCellTable { cell: vec![home.into()], region_id: vec!["kortrijk".into()] };
//! let zones = ZoneTable {
//!     zone_id: vec!["grote-markt".into()],
//!     name: vec![Some("Grote Markt".into())],
//!     category: vec![Some("culture".into())],
//! };
//! let zone_cells = ZoneCellTable { zone_id: vec!["grote-markt".into()], cell: vec![square.into()] };
//! let geography = Geography::from_tables(
//!     &regions, &region_cells, &zones, &zone_cells, 9, &["kortrijk".to_owned()],
//! )?;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("subscriber", DataType::Utf8, true),
//!     Field::new("ts", DataType::Utf8, true),
//!     Field::new("lat", DataType::Float64, true),
//!     Field::new("lon", DataType::Float64, true),
//! ]));
//! let pings = RecordBatch::try_new(schema, vec![
//!     Arc::new(StringArray::from(vec!["206010000000001", "206010000000001"])),
//!     Arc::new(StringArray::from(vec!["2026-07-01 10:00:00", "2026-07-01 11:00:00"])),
//!     Arc::new(Float64Array::from(vec![50.828, 50.828])),
//!     Arc::new(Float64Array::from(vec![3.265, 3.265])),
//! ])?;
//!
//! let study = Study::new(geography, Config::new(Key::new(b"a secret of 16+ bytes".to_vec())))?;
//! let prepared = study.prepare([Ok(pings)], &RunOptions::default())?;
//! assert_eq!(prepared.report().pings_kept, 2);
//! assert_eq!(prepared.pings().devices().len(), 1);
//! // One device is below k = 30: the release is one suppressed total row per group.
//! let release = prepared.release(&ReleaseSpec::default())?;
//! assert!(release.rows.iter().all(|row| row.suppressed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod calendar;
mod columns;
mod config;
mod disclosure;
pub mod distributed;
mod error;
mod extrapolate;
pub mod geo;
mod ingest;
mod pipeline;
pub mod privacy;
pub mod profile;
mod pseudonym;
mod release;
mod report;
pub mod risk;
pub mod spend;
mod study;
pub mod synth;
mod workers;

#[doc(hidden)]
pub mod doc_example;

pub use aggregate::{
    Aggregate, AggregateSpec, BucketKind, ClassCounts, DWELL_BANDS, DeviceCounts, GroupKey,
    Measures, ReleaseClass, RowKey, UnionMembers,
};
pub use config::{
    Config, OptOut, OptOutDigests, Period, SubscriberId, SubscriberKind, parse_duration,
};
pub use error::{Error, Result, Source};
pub use geo::Geography;
pub use ingest::{
    LocatedPings, PARQUET_BATCH_ROWS, PingColumns, parquet_rows, pseudonymize_column, read_parquet,
    read_parquet_table, write_parquet,
};
pub use pipeline::{
    MIN_MEMORY_LIMIT, Progress, ProgressCallback, Run, RunOptions, Stage, StopSignal,
    default_memory_limit, parse_bytes,
};
pub use privacy::{DpSpec, Privacy};
pub use profile::DeviceClass;
pub use pseudonym::{Key, Pseudonymizer};
pub use release::{
    DeviceReport, DisclosureCounts, Estimate, ExtrapolationReport, Release, ReleaseLabels,
    ReleaseReport, ReleaseRow, ReleaseSpec, RowMeasures, SubscriberSource,
};
pub use report::{DropReason, Dropped, OptOutCounts, QualityReport};
pub use risk::{Risk, RiskSpec};
pub use spend::{ReleaseCut, Spend, SpendSpec};
pub use study::{Prepared, Study};

/// The library version, as reported in every quality report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's Rust example, run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
