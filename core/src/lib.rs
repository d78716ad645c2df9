//! # crowdtally
//!
//! Visitor statistics from mobile-network pings, done right: keyed and rotated
//! pseudonyms with opt-out, H3 location, home and usual-environment inference, visits and
//! dwell, aggregation with disclosure control, and extrapolation with honest intervals.
//! Every number is defined by the method (`docs/METHOD.md` in the repository).
//!
//! The data flows one way through the modules, in the order of the method:
//! [`config`] → [`geo`] → [`ingest`] (cleaning, [`pseudonym`], location) → [`profile`](mod@profile)
//! (homes, classes, visits) → [`aggregate`] → [`release`](mod@release) (disclosure control,
//! [`extrapolate`], the report). [`analyze`] runs all of it in one call.
//!
//! ```
//! use crowdtally::{prepare, Config, Geography, Key, PingColumns};
//! use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
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
//! let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
//! let prepared = prepare([Ok(pings)], &geography, &config, &PingColumns::default())?;
//! assert_eq!(prepared.report.pings_kept, 2);
//! assert_eq!(prepared.pings.devices().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aggregate;
pub mod calendar;
mod columns;
pub mod config;
mod error;
pub mod extrapolate;
pub mod geo;
pub mod ingest;
pub mod profile;
pub mod pseudonym;
pub mod release;
pub mod report;
pub mod run;
pub mod synth;

#[doc(hidden)]
pub mod doc_example;

pub use aggregate::{Aggregate, BucketKind, ReleaseClass};
pub use config::{Config, OptOut, Period, SubscriberId, SubscriberKind, parse_duration};
pub use error::{Error, Result};
pub use geo::Geography;
pub use ingest::{LocatedPings, PingColumns, Prepared, prepare, prepare_parquet};
pub use profile::{DeviceClass, Profiles, profile};
pub use pseudonym::{Key, Pseudonymizer};
pub use release::{
    Release, ReleaseOptions, ReleaseReport, ReleaseRow, analyze, analyze_prepared, release,
};
pub use report::{DropReason, QualityReport};

/// The library version, as reported in every quality report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's Rust example, run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
