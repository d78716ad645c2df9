//! The release (method §6–9): what a city receives. A [`ReleaseSpec`] says which table
//! (bucket, origin level, classes, the inputs of extrapolation); [`Release::protect`]
//! turns a merged aggregate into the protected table (disclosure control, §7), with
//! estimates (§8) and the quality and privacy report (§9).

mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

pub use crate::disclosure::DisclosureCounts;
pub use crate::extrapolate::SubscriberSource;
pub use report::{DeviceReport, ExtrapolationReport, ReleaseReport};

use crate::aggregate::{Aggregate, BucketKind, DWELL_BANDS, Measures, ReleaseClass};
use crate::calendar::format_local;
use crate::disclosure::{Cell, Disclosure, Group, LevelOrigin};
use crate::error::{Error, Result};
use crate::extrapolate::{EstimateSums, Factors, normalise_roaming_factors, validate_subscribers};
use crate::geo::{Geography, RegionIndex};
use crate::report::QualityReport;
use crate::study::Study;

/// Which table a release is: bucket kind, origin level, classes, and the inputs of
/// extrapolation (the method's settings of one release; the machine's are in
/// [`RunOptions`](crate::RunOptions)).
///
/// ```
/// use crowdtally::{BucketKind, ReleaseSpec};
///
/// let mut spec = ReleaseSpec::new(BucketKind::Day);
/// spec.level = Some("province".into());
/// spec.roaming_factors.insert("*".into(), 2.5);
/// assert!(spec.roll_up);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReleaseSpec {
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

impl Default for ReleaseSpec {
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

impl ReleaseSpec {
    /// The default spec with buckets of `bucket`.
    #[must_use]
    pub fn new(bucket: BucketKind) -> Self {
        Self {
            bucket,
            ..Self::default()
        }
    }

    /// Checks the spec against a geography, and returns the roaming factors by
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
                let mut levels: Vec<&str> = (0..regions.len() as RegionIndex)
                    .map(|r| regions.level(r))
                    .collect();
                levels.sort_unstable();
                levels.dedup();
                return Err(Error::config(
                    "level",
                    format!(
                        "{level:?} is not a level of the region tree; its levels are {}",
                        levels.join(", ")
                    ),
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
    /// The row's estimate; `None` when suppressed or when an origin in the row has no
    /// factor.
    pub estimate: Option<Estimate>,
}

/// The estimate of a row for the whole population (method §8), with its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Estimated people: `Σ devices_o · f_o`.
    pub devices: f64,
    /// Estimated visits: `Σ visits_o · f_o`.
    pub visits: f64,
    /// The interval's lower end, never below the devices observed.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
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

impl Release {
    /// Protects and extrapolates an aggregate (possibly merged from shards) into a release.
    /// `None` (no period, no pings) gives an empty release.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid spec, or naming `aggregate` for one computed for
    /// other classes, buckets, zones, time zone, period or geography than the spec and
    /// study ask for.
    #[expect(
        clippy::too_many_lines,
        reason = "one pass over the grid; the rules themselves live in disclosure and extrapolate"
    )]
    pub(crate) fn protect(
        study: &Study,
        aggregate: Option<&Aggregate>,
        quality: &QualityReport,
        spec: &ReleaseSpec,
    ) -> Result<Release> {
        let (geography, config) = (study.geography(), study.config());
        let roaming = spec.validate(geography)?;
        let Some(aggregate) = aggregate else {
            let report = ReleaseReport::new(
                config,
                spec,
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
        let computed = aggregate.spec();
        if computed.classes != spec.classes || computed.bucket != spec.bucket {
            return Err(Error::config(
                "aggregate",
                "was computed for other classes or another bucket than the release asks for",
            ));
        }
        // Bucket bounds are local calendar instants of the aggregate's zone and period: read
        // in another zone they would be mislabelled.
        if computed.tz != config.tz || config.period.is_some_and(|p| p != computed.period) {
            return Err(Error::config(
                "aggregate",
                format!(
                    "was computed for time zone {:?} and period [{}, {}), not for the \
                 configuration's",
                    computed.tz, computed.period.start, computed.period.end
                ),
            ));
        }
        let regions = geography.regions();
        let (subscribers, source) = match &spec.subscribers {
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
                let at_level = spec
                    .level
                    .as_deref()
                    .and_then(|level| regions.ancestors(leaf).find(|&r| regions.level(r) == level));
                Ok(LevelOrigin::Region(at_level.unwrap_or(leaf)))
            })
            .collect::<Result<_>>()?;
        let factors = Factors::new(aggregate.origins(), geography, subscribers, &roaming);
        let calendar = study.calendar();
        let zones: Vec<Arc<str>> = computed
            .zones
            .iter()
            .map(|z| Arc::from(z.as_str()))
            .collect();
        let buckets = computed.bounds.len().saturating_sub(1);
        let labels: Vec<Arc<str>> = computed.bounds[..buckets]
            .iter()
            .map(|&b0| Arc::from(format_local(calendar, b0)))
            .collect();
        let disclosure = Disclosure {
            regions,
            k: u64::from(config.k),
            roll_up: spec.roll_up,
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
                for (slot, &class) in computed.classes.iter().enumerate() {
                    let mut cells: BTreeMap<LevelOrigin, Cell> = BTreeMap::new();
                    while let Some(&(key, measures)) = source_rows.get(cursor) {
                        if (key.zone as usize, key.bucket as usize, key.class as usize)
                            != (zone, bucket, slot)
                        {
                            break;
                        }
                        let origin = key.origin as usize;
                        let estimate = EstimateSums::of(
                            measures.devices,
                            measures.visits,
                            factors.by_origin[origin],
                        );
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
            spec,
            quality,
            Some(aggregate),
            Some((&factors, source)),
            counts,
            geography,
        );
        Ok(Release { rows, report })
    }

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
        let estimate = |f: &dyn Fn(&Estimate) -> f64| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.estimate.as_ref().map(f))
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
        columns.push(estimate(&|e| e.devices));
        columns.push(estimate(&|e| e.visits));
        columns.push(estimate(&|e| e.low));
        columns.push(estimate(&|e| e.high));
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }
}
