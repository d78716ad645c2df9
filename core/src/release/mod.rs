//! The release (method §6–9): what a city receives. A [`ReleaseSpec`] says which table
//! (bucket, origin level, classes, the inputs of extrapolation); [`Release::protect`]
//! turns a merged aggregate into the protected table (disclosure control, §7), with
//! estimates (§8) and the quality and privacy report (§9).

pub(crate) mod grid;
mod labels;
pub(crate) mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

pub use crate::disclosure::DisclosureCounts;
pub use crate::extrapolate::SubscriberSource;
pub use report::{DeviceReport, ExtrapolationReport, ReleaseReport};

use crate::aggregate::{Aggregate, BucketKind, DWELL_BANDS, ReleaseClass};
use crate::disclosure::Disclosure;
use crate::disclosure::protect_table;
use crate::error::{Error, Result};
use crate::extrapolate::{Factors, normalise_roaming_factors, validate_subscribers};
use crate::geo::{Geography, RegionIndex};
use crate::privacy::{ContributionBounds, Privacy, account};
use crate::report::QualityReport;
use crate::study::Study;
use grid::Grid;
pub use labels::ReleaseLabels;
use report::Protection;

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
    /// Whether below-k origin rows roll up the region tree (default on; k-anonymity
    /// only).
    pub roll_up: bool,
    /// How the release is protected (default k-anonymity).
    pub privacy: Privacy,
    /// Whether a k-anonymity release may differ from an earlier one of the same period
    /// in its ledger (another bucket, level, class set or zone set); the ledger and the
    /// report record it.
    pub allow_differencing: bool,
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
            privacy: Privacy::KAnonymity,
            allow_differencing: false,
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
        if let Privacy::DifferentialPrivacy(dp) = &self.privacy {
            dp.validate()?;
            if self.subscribers.is_none() {
                return Err(Error::config(
                    "subscribers",
                    "must be given (from billing) in the differential-privacy mode: factors \
                     detected from the same private data would break its guarantee",
                ));
            }
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
    pub measures: Option<RowMeasures>,
    /// Whether the group is suppressed (this is then its total row, alone).
    pub suppressed: bool,
    /// The row's estimate; `None` when suppressed or when an origin in the row has no
    /// factor.
    pub estimate: Option<Estimate>,
}

/// The released measures of a row (§6): devices, visits and dwell, and the dwell bands
/// (on total rows only, each withheld as §7 step 6 says; noisy in the
/// differential-privacy mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowMeasures {
    /// Distinct devices with a qualifying visit overlapping the bucket.
    pub devices: u64,
    /// Qualifying visits starting in the bucket.
    pub visits: u64,
    /// Seconds of qualifying visits inside the bucket.
    pub dwell_s: i64,
    /// The visits by whole dwell (see [`DWELL_BANDS`]); `None` where withheld, and on
    /// every origin row.
    pub bands: [Option<u64>; 5],
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
    /// The names of its zones and origins and the time zone of its buckets, for the
    /// columns after §6's.
    pub labels: ReleaseLabels,
}

impl Release {
    /// Protects and extrapolates an aggregate (possibly merged from shards) into a
    /// release: disclosure control (§7) or the differential-privacy mode (§10),
    /// estimates (§8) and the report (§9). `None` (no period, no pings) gives an empty
    /// release.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid spec, or naming `aggregate` for one computed for
    /// other classes, buckets, zones, privacy, time zone, period or geography than the
    /// spec and study ask for; [`Error::Randomness`] when the operating system gives no
    /// randomness for the noise.
    pub(crate) fn protect(
        study: &Study,
        aggregate: Option<&Aggregate>,
        quality: &QualityReport,
        spec: &ReleaseSpec,
    ) -> Result<Release> {
        let (geography, config) = (study.geography(), study.config());
        let roaming = study.check_spec(spec)?;
        let Some(aggregate) = aggregate else {
            let report =
                ReleaseReport::new(study, spec, quality, None, Protection::empty(config), None);
            return Ok(Release {
                rows: Vec::new(),
                report,
                labels: ReleaseLabels::new(geography, &config.tz, []),
            });
        };
        check_aggregate(aggregate, study, spec)?;
        let period = aggregate.spec().period;
        let label = config
            .period_label
            .clone()
            .or_else(|| quality.period_label.clone())
            .unwrap_or_else(|| period.default_label());
        let (subscribers, source) = match &spec.subscribers {
            Some(given) => (given, SubscriberSource::Given),
            None => (&aggregate.devices().subscribers, SubscriberSource::Detected),
        };
        let grid = Grid::new(
            aggregate,
            geography.regions(),
            spec.level.as_deref(),
            study.calendar(),
        )?;
        if let Some(bounds) = &aggregate.spec().contribution
            && let Privacy::DifferentialPrivacy(dp) = &spec.privacy
        {
            crate::privacy::dp::scales(bounds, dp.rho)?;
        }
        // Everything that can be refused is checked: the ledger records the release
        // before anything is computed from the data, and refuses it (budget, another cut,
        // other factors) under its lock.
        let digest = account::factors_digest(&config.key, source, subscribers, &roaming);
        let recorded = account::record(study, spec, period, &label, digest)?;
        let (rows, protection) = match &spec.privacy {
            Privacy::KAnonymity => {
                let factors = Factors::new(aggregate.origins(), geography, subscribers, &roaming);
                let disclosure = Disclosure {
                    regions: geography.regions(),
                    k: u64::from(config.k),
                    roll_up: spec.roll_up,
                };
                let (rows, counts) = protect_table(&grid, &disclosure, &factors);
                let protection = Protection::KAnonymity {
                    counts,
                    factors: Some((factors, source)),
                };
                (rows, protection)
            }
            Privacy::DifferentialPrivacy(dp) => {
                let (rows, report) =
                    crate::privacy::dp::noisy_table(&grid, study, spec, dp, &roaming)?;
                (rows, Protection::Differential(report))
            }
        };
        let report = ReleaseReport::new(
            study,
            spec,
            quality,
            Some(aggregate),
            protection,
            recorded.as_ref(),
        );
        let origins: std::collections::BTreeSet<&str> =
            rows.iter().map(|row| row.origin.as_str()).collect();
        let labels = ReleaseLabels::new(geography, &config.tz, origins);
        Ok(Release {
            rows,
            report,
            labels,
        })
    }

    /// The columns that follow §6's, for people and BI tools: the bucket's start as a
    /// timestamp (milliseconds, Parquet's coarsest unit, in the study's time zone), and the zone's and the origin's
    /// display names.
    pub const LABEL_COLUMNS: [&'static str; 3] = ["bucket_ts", "zone_name", "origin_name"];

    /// The schema of the release table: §6's columns, then [`Self::LABEL_COLUMNS`].
    #[must_use]
    pub fn table_schema(&self) -> Arc<Schema> {
        let mut fields: Vec<Field> = Self::schema()
            .fields()
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        let [bucket_ts, zone_name, origin_name] = Self::LABEL_COLUMNS;
        fields.push(Field::new(
            bucket_ts,
            DataType::Timestamp(TimeUnit::Millisecond, Some(self.labels.tz.as_str().into())),
            true,
        ));
        fields.push(Field::new(zone_name, DataType::Utf8, false));
        fields.push(Field::new(origin_name, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    /// The schema of §6's columns, in order: the fixed start of every release table.
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
        let count = |f: &dyn Fn(&RowMeasures) -> Option<u64>| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.measures.as_ref().and_then(f))
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
            count(&|m| Some(m.devices)),
            count(&|m| Some(m.visits)),
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
        columns.push(Arc::new(
            rows.iter()
                .map(|r| labels::bucket_instant(&r.bucket_start).map(|s| s * 1_000))
                .collect::<TimestampMillisecondArray>()
                .with_timezone(self.labels.tz.as_str()),
        ));
        let labels = &self.labels;
        columns.push(Arc::new(
            rows.iter()
                .map(|r| Some(labels.zone(&r.zone)))
                .collect::<StringArray>(),
        ));
        columns.push(Arc::new(
            rows.iter()
                .map(|r| Some(labels.origin(&r.origin)))
                .collect::<StringArray>(),
        ));
        Ok(RecordBatch::try_new(self.table_schema(), columns)?)
    }
}

/// Refuses an aggregate computed for another table than `spec` asks for, or in another
/// time zone or period than the study's: its buckets would be mislabelled.
fn check_aggregate(aggregate: &Aggregate, study: &Study, spec: &ReleaseSpec) -> Result<()> {
    let (computed, config) = (aggregate.spec(), study.config());
    if computed.classes != spec.classes || computed.bucket != spec.bucket {
        return Err(Error::config(
            "aggregate",
            "was computed for other classes or another bucket than the release asks for",
        ));
    }
    // The noise is scaled to the bounds the devices were held to: they must be the ones
    // the release asks for, never a deserialised aggregate's own.
    let asked = match &spec.privacy {
        Privacy::KAnonymity => None,
        Privacy::DifferentialPrivacy(dp) => Some(ContributionBounds::of_grid(
            dp,
            computed.zones.len(),
            &computed.bounds,
        )),
    };
    if computed.contribution != asked {
        return Err(Error::config(
            "aggregate",
            "was computed for another privacy mode or other contribution bounds than the \
             release asks for",
        ));
    }
    aggregate.check_indexes()?;
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
    Ok(())
}
