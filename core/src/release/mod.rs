//! The release (method §6–9): aggregation over the grid, disclosure control,
//! extrapolation and the quality and privacy report, from raw pings in one call
//! ([`analyze`]) or from merged partial aggregates ([`release`]).

pub mod disclosure;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema};

pub use disclosure::DisclosureCounts;
pub use report::{DeviceReport, ExtrapolationReport, ReleaseReport};

use crate::aggregate::{Aggregate, BucketKind, DWELL_BANDS, Measures, ReleaseClass};
use crate::calendar::{Calendar, format_local};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::extrapolate::{
    Estimate, Factors, SubscriberSource, normalise_roaming_factors, validate_subscribers,
};
use crate::geo::{Geography, RegionIndex};
use crate::ingest::{Ingester, PingColumns, Prepared};
use crate::profile::profile;
use crate::report::QualityReport;
use crate::run::RunOptions;
use disclosure::{Cell, Disclosure, Group, LevelOrigin};

/// The shape of a release: bucket kind, origin level, classes, and the inputs of
/// extrapolation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReleaseOptions {
    /// The time bucket (default: the whole period).
    pub bucket: BucketKind,
    /// The origin level, a level name of the region tree (default: the leaves).
    pub level: Option<String>,
    /// The classes (default: `visitor`).
    pub classes: Vec<ReleaseClass>,
    /// Subscribers per leaf id (from billing); `None` detects them from the input.
    pub subscribers: Option<BTreeMap<String, u64>>,
    /// Roaming expansion factors per country code.
    pub roaming_factors: BTreeMap<String, f64>,
    /// Whether below-k origin rows roll up the region tree (default on).
    pub roll_up: bool,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        Self {
            bucket: BucketKind::Period,
            level: None,
            classes: vec![ReleaseClass::Visitor],
            subscribers: None,
            roaming_factors: BTreeMap::new(),
            roll_up: true,
        }
    }
}

impl ReleaseOptions {
    /// Checks the options against a geography, and returns the roaming factors by
    /// upper-cased country code.
    ///
    /// # Errors
    /// [`Error::Config`] naming `classes`, `level`, `subscribers` or `roaming_factors`.
    pub fn validate(&self, geography: &Geography) -> Result<BTreeMap<String, f64>> {
        ReleaseClass::validate_list(&self.classes)?;
        if let Some(level) = &self.level {
            let regions = geography.regions();
            let known = (0..regions.len() as RegionIndex).any(|r| regions.level(r) == level);
            if !known {
                return Err(Error::config(
                    "level",
                    format!("{level:?} is not a level of the region tree"),
                ));
            }
        }
        if let Some(subscribers) = &self.subscribers {
            validate_subscribers(subscribers, geography)?;
        }
        normalise_roaming_factors(&self.roaming_factors)
    }
}

/// One row of a release table (§6's columns).
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseRow {
    /// Zone id, or `category:<name>`.
    pub zone: Arc<str>,
    /// Bucket start, local time `YYYY-MM-DDTHH:MM:SS±HH:MM`.
    pub bucket_start: Arc<str>,
    /// The release class.
    pub class: ReleaseClass,
    /// `*` for the total row; else a region id, `country:XX`, `unknown`, `other:<id>`,
    /// `other:abroad` or `other`.
    pub origin: String,
    /// The measures; `None` in a suppressed group.
    pub measures: Option<Measures>,
    /// Whether the group is suppressed (this is then its total row, alone).
    pub suppressed: bool,
    /// `[est_devices, est_visits, est_low, est_high]`; `None` when suppressed or when an
    /// origin in the row has no factor.
    pub estimate: Option<[f64; 4]>,
}

/// A protected release: the table and its report.
#[derive(Clone, Debug)]
pub struct Release {
    /// The rows, group by group (zones in the geography's order, then buckets, then
    /// classes), each group's total row first, then its origin rows in byte order.
    pub rows: Vec<ReleaseRow>,
    /// The quality and privacy report.
    pub report: ReleaseReport,
}

/// Runs the whole method on raw pings: cleaning, pseudonymization and location,
/// per-device analytics, aggregation, disclosure control, extrapolation and the report.
/// `run` sets the threads and the memory budget: pings beyond it are spilled to disk by
/// device and analysed shard by shard, with the same result.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration or options, [`Error::Input`] for
/// unreadable pings.
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{analyze, Config, Key, PingColumns, ReleaseOptions};
/// use crowdtally::run::RunOptions;
///
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// let release = analyze(
///     [Ok(pings())],
///     &geography(),
///     &config,
///     &PingColumns::default(),
///     &ReleaseOptions::default(),
///     &RunOptions::default(),
/// )?;
/// // One device is far below k = 30: every group is suppressed.
/// assert!(release.rows.iter().all(|row| row.suppressed && row.measures.is_none()));
/// assert_eq!(release.report.disclosure.groups_suppressed, release.rows.len() as u64);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn analyze<I>(
    batches: I,
    geography: &Geography,
    config: &Config,
    columns: &PingColumns,
    options: &ReleaseOptions,
    run: &RunOptions,
) -> Result<Release>
where
    I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
{
    config.validate()?;
    options.validate(geography)?;
    let mut ingester = Ingester::new(geography, config, columns)?.with_run(run)?;
    for batch in batches {
        ingester.push(&batch?)?;
    }
    ingester.release(options)
}

impl Ingester<'_> {
    /// Finishes ingestion and releases: per-device analytics and partial aggregates
    /// shard by shard in parallel within the memory budget, merged into one aggregate,
    /// then disclosure control, extrapolation and the report.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options; the errors of [`Ingester::finish_shards`].
    pub fn release(self, options: &ReleaseOptions) -> Result<Release> {
        let (geography, config) = (self.geography(), self.config());
        options.validate(geography)?;
        let (parts, quality) = self.finish_shards(|pings| {
            let profiles = profile(pings, geography, config)?;
            Aggregate::new(
                &profiles,
                pings,
                geography,
                config,
                options.bucket,
                &options.classes,
            )
        })?;
        let aggregate = Aggregate::merge_all(parts.into_iter().flatten())?;
        release(aggregate.as_ref(), geography, config, options, &quality)
    }
}

/// The release of pings already prepared: per-device analytics, aggregation, disclosure
/// control, extrapolation and the report.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration or options.
pub fn analyze_prepared(
    prepared: &Prepared,
    geography: &Geography,
    config: &Config,
    options: &ReleaseOptions,
) -> Result<Release> {
    options.validate(geography)?;
    let profiles = profile(&prepared.pings, geography, config)?;
    let aggregate = Aggregate::new(
        &profiles,
        &prepared.pings,
        geography,
        config,
        options.bucket,
        &options.classes,
    )?;
    release(
        aggregate.as_ref(),
        geography,
        config,
        options,
        &prepared.report,
    )
}

/// Protects and extrapolates an aggregate (possibly merged from shards) into a release.
/// `None` (no period, no pings) gives an empty release.
///
/// # Errors
/// [`Error::Config`] for invalid options, or an aggregate computed for other classes or
/// buckets than the options ask for.
pub fn release(
    aggregate: Option<&Aggregate>,
    geography: &Geography,
    config: &Config,
    options: &ReleaseOptions,
    quality: &QualityReport,
) -> Result<Release> {
    config.validate()?;
    let roaming = options.validate(geography)?;
    let Some(aggregate) = aggregate else {
        let report = ReleaseReport::new(
            config,
            options,
            quality,
            None,
            None,
            DisclosureCounts {
                k: u64::from(config.k),
                ..DisclosureCounts::default()
            },
            geography,
        );
        return Ok(Release {
            rows: Vec::new(),
            report,
        });
    };
    let spec = aggregate.spec();
    if spec.classes != options.classes || spec.bucket != options.bucket {
        return Err(Error::config(
            "aggregate",
            "was computed for other classes or another bucket than the release asks for",
        ));
    }
    // Bucket bounds are local calendar instants of the aggregate's zone and period: read
    // in another zone they would be mislabelled.
    if spec.tz != config.tz || config.period.is_some_and(|p| p != spec.period) {
        return Err(Error::config(
            "aggregate",
            format!(
                "was computed for time zone {:?} and period [{}, {}), not for the \
                 configuration's",
                spec.tz, spec.period.start, spec.period.end
            ),
        ));
    }
    let regions = geography.regions();
    let (subscribers, source) = match &options.subscribers {
        Some(given) => (given, SubscriberSource::Given),
        None => (&aggregate.devices().subscribers, SubscriberSource::Detected),
    };
    // Each leaf origin's origin at the release level.
    let level_origin: Vec<LevelOrigin> = aggregate
        .origins()
        .iter()
        .map(|name| {
            if name == "unknown" {
                return Ok(LevelOrigin::Unknown);
            }
            if name.starts_with("country:") {
                return Ok(LevelOrigin::Country(name.clone()));
            }
            // Merged partials from another geography would pool silently: refuse them.
            let leaf = regions.index_of(name).ok_or_else(|| {
                Error::config(
                    "aggregate",
                    "names origins that are not regions of this geography",
                )
            })?;
            let at_level = options
                .level
                .as_deref()
                .and_then(|level| regions.ancestors(leaf).find(|&r| regions.level(r) == level));
            Ok(LevelOrigin::Region(at_level.unwrap_or(leaf)))
        })
        .collect::<Result<_>>()?;
    let factors = Factors::new(aggregate.origins(), geography, subscribers, &roaming);
    let calendar = Calendar::new(&config.tz)?;
    let zones: Vec<Arc<str>> = spec.zones.iter().map(|z| Arc::from(z.as_str())).collect();
    let buckets = spec.bounds.len().saturating_sub(1);
    let labels: Vec<Arc<str>> = spec.bounds[..buckets]
        .iter()
        .map(|&b0| Arc::from(format_local(&calendar, b0)))
        .collect();
    let disclosure = Disclosure {
        regions,
        k: u64::from(config.k),
        roll_up: options.roll_up,
    };
    let mut counts = DisclosureCounts {
        k: u64::from(config.k),
        ..DisclosureCounts::default()
    };
    let mut rows = Vec::new();
    let source_rows = aggregate.rows();
    let mut cursor = 0;
    for (zone, zone_id) in zones.iter().enumerate() {
        for (bucket, label) in labels.iter().enumerate() {
            for (slot, &class) in spec.classes.iter().enumerate() {
                let mut cells: BTreeMap<LevelOrigin, Cell> = BTreeMap::new();
                while let Some(&(key, measures)) = source_rows.get(cursor) {
                    if (key.zone as usize, key.bucket as usize, key.class as usize)
                        != (zone, bucket, slot)
                    {
                        break;
                    }
                    let origin = key.origin as usize;
                    let estimate =
                        Estimate::of(measures.devices, measures.visits, factors.by_origin[origin]);
                    *cells.entry(level_origin[origin].clone()).or_default() +=
                        Cell { measures, estimate };
                    cursor += 1;
                }
                let row = |origin: String, cell: Option<Cell>| ReleaseRow {
                    zone: Arc::clone(zone_id),
                    bucket_start: Arc::clone(label),
                    class,
                    origin,
                    measures: cell.map(|c| c.measures),
                    suppressed: cell.is_none(),
                    estimate: cell.and_then(|c| c.estimate.finish(c.measures.devices)),
                };
                match disclosure.protect(cells.into_iter().collect(), &mut counts) {
                    Group::Suppressed => rows.push(row("*".to_owned(), None)),
                    Group::Released { total, origins } => {
                        rows.push(row("*".to_owned(), Some(total)));
                        rows.extend(
                            origins
                                .into_iter()
                                .map(|(name, cell)| row(name, Some(cell))),
                        );
                    }
                }
            }
        }
    }
    let report = ReleaseReport::new(
        config,
        options,
        quality,
        Some(aggregate),
        Some((&factors, source)),
        counts,
        geography,
    );
    Ok(Release { rows, report })
}

impl Release {
    /// The schema of the release table: §6's columns in order.
    #[must_use]
    pub fn schema() -> Arc<Schema> {
        let mut fields = vec![
            Field::new("zone", DataType::Utf8, false),
            Field::new("bucket_start", DataType::Utf8, false),
            Field::new("class", DataType::Utf8, false),
            Field::new("origin", DataType::Utf8, false),
            Field::new("devices", DataType::UInt64, true),
            Field::new("visits", DataType::UInt64, true),
            Field::new("dwell_s", DataType::Int64, true),
        ];
        fields.extend(
            DWELL_BANDS
                .iter()
                .map(|&(name, _)| Field::new(name, DataType::UInt64, true)),
        );
        fields.push(Field::new("suppressed", DataType::Boolean, false));
        for name in ["est_devices", "est_visits", "est_low", "est_high"] {
            fields.push(Field::new(name, DataType::Float64, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// The release table as one Arrow batch.
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let rows = &self.rows;
        let text = |f: &dyn Fn(&ReleaseRow) -> &str| -> ArrayRef {
            Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
        };
        let count = |f: &dyn Fn(&Measures) -> u64| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.measures.as_ref().map(f))
                    .collect::<UInt64Array>(),
            )
        };
        let estimate = |i: usize| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.estimate.map(|e| e[i]))
                    .collect::<Float64Array>(),
            )
        };
        let mut columns = vec![
            text(&|r| &r.zone),
            text(&|r| &r.bucket_start),
            text(&|r| r.class.name()),
            text(&|r| &r.origin),
            count(&|m| m.devices),
            count(&|m| m.visits),
            Arc::new(
                rows.iter()
                    .map(|r| r.measures.map(|m| m.dwell_s))
                    .collect::<Int64Array>(),
            ) as ArrayRef,
        ];
        for band in 0..DWELL_BANDS.len() {
            columns.push(count(&|m| m.bands[band]));
        }
        columns.push(Arc::new(
            rows.iter()
                .map(|r| Some(r.suppressed))
                .collect::<BooleanArray>(),
        ));
        for i in 0..4 {
            columns.push(estimate(i));
        }
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }
}
