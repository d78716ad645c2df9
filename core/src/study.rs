//! The front door: a [`Study`] is one geography and one configuration, checked together
//! once, and every stage of the method runs through it.
//!
//! A study is cheap to clone (it is shared), so a service keeps one per city and period
//! and runs as many releases as it likes from it. What a study computes keeps the study
//! it came from: a [`Prepared`] set of pings can only be released with the geography and
//! configuration it was located with.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use crate::aggregate::Aggregate;
use crate::calendar::Calendar;
use crate::config::Config;
use crate::error::Result;
use crate::geo::Geography;
use crate::ingest::{LocatedPings, PingColumns};
use crate::pipeline::{Run, RunOptions};
use crate::profile::{Profiles, profile};
use crate::release::{Release, ReleaseRow, ReleaseSpec};
use crate::report::QualityReport;
use crate::risk::{Risk, RiskSpec};
use crate::spend::{ReleaseCut, Spend, SpendSpec};

/// One geography and one configuration: what every stage of the method needs.
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{BucketKind, Config, Key, ReleaseSpec, RunOptions, Study};
///
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// let study = Study::new(geography(), config)?;
/// let run = RunOptions::default();
///
/// // The whole method in one call.
/// let release = study.release([Ok(pings())], &ReleaseSpec::default(), &run)?;
/// // One device is far below k = 30: every group is a suppressed total row.
/// assert!(release.rows.iter().all(|row| row.suppressed && row.measures.is_none()));
///
/// // Or read the pings once and release several tables from them.
/// let prepared = study.prepare([Ok(pings())], &run)?;
/// let by_day = prepared.release(&ReleaseSpec::new(BucketKind::Day))?;
/// let by_hour = prepared.release(&ReleaseSpec::new(BucketKind::Hour))?;
/// assert_eq!(by_hour.rows.len(), 24 * by_day.rows.len());
/// # Ok::<(), crowdtally::Error>(())
/// ```
#[derive(Clone)]
pub struct Study(Arc<Inner>);

struct Inner {
    geography: Arc<Geography>,
    config: Config,
    columns: PingColumns,
    calendar: Calendar,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration shows its key and opt-out list as sizes only.
        f.debug_struct("Study")
            .field("config", &self.0.config)
            .field("resolution", &self.0.geography.resolution())
            .field("zones", &self.0.geography.zones().len())
            .field("columns", &self.0.columns)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// A study of `geography` under `config`, with the default column names.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the first invalid field of the
    /// configuration.
    pub fn new(geography: impl Into<Arc<Geography>>, config: Config) -> Result<Self> {
        config.validate()?;
        let calendar = Calendar::new(&config.tz)?;
        Ok(Self(Arc::new(Inner {
            geography: geography.into(),
            config,
            columns: PingColumns::default(),
            calendar,
        })))
    }

    /// The same study, reading pings with these column names.
    #[must_use]
    pub fn with_columns(self, columns: PingColumns) -> Self {
        let inner = &self.0;
        Self(Arc::new(Inner {
            geography: Arc::clone(&inner.geography),
            config: inner.config.clone(),
            columns,
            calendar: inner.calendar.clone(),
        }))
    }

    /// The geography.
    #[must_use]
    pub fn geography(&self) -> &Geography {
        &self.0.geography
    }

    /// The geography, shared.
    #[must_use]
    pub fn geography_arc(&self) -> &Arc<Geography> {
        &self.0.geography
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The column names pings are read with.
    #[must_use]
    pub fn columns(&self) -> &PingColumns {
        &self.0.columns
    }

    pub(crate) fn calendar(&self) -> &Calendar {
        &self.0.calendar
    }

    /// A run that reads pings pushed batch by batch (a stream, files, a service's
    /// queue), then gives a release, several, the located pings or the per-device
    /// tables.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `threads` or `memory_limit`.
    pub fn run(&self, options: &RunOptions) -> Result<Run> {
        Run::new(self, options)
    }

    /// Cleans, pseudonymizes and locates pings (method §1–3), all in memory.
    ///
    /// `batches` may come from any Arrow source (a Parquet reader, an FFI stream, a
    /// `Vec`). Rows are dropped under the first reason of §2 that applies and counted in
    /// the report; nothing is dropped silently.
    ///
    /// # Errors
    /// [`Error::Input`](crate::Error::Input) naming the column for a missing column, an
    /// unsupported type, or subscriber columns of different kinds across batches; an
    /// Arrow error raised by the batch source; the errors of [`Study::run`].
    pub fn prepare<I>(&self, batches: I, options: &RunOptions) -> Result<Prepared>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        self.read(batches, options)?.prepare()
    }

    /// [`Study::prepare`] of the pings of Parquet files, read in order.
    ///
    /// # Errors
    /// As [`Study::prepare`], and [`Error::File`](crate::Error::File) naming the file at
    /// fault.
    pub fn prepare_parquet<P: AsRef<Path>>(
        &self,
        paths: &[P],
        options: &RunOptions,
    ) -> Result<Prepared> {
        let mut run = self.run(options)?;
        for path in paths {
            run.push_parquet(path.as_ref())?;
        }
        run.prepare()
    }

    /// The whole method on raw pings (§2–9): cleaning, pseudonymization and location,
    /// per-device analytics, aggregation, disclosure control, extrapolation and the
    /// report, shard by shard within the memory budget.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid spec (before any ping is
    /// read); the errors of [`Study::prepare`].
    pub fn release<I>(
        &self,
        batches: I,
        spec: &ReleaseSpec,
        options: &RunOptions,
    ) -> Result<Release>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        self.authorize(std::slice::from_ref(spec))?;
        self.read(batches, options)?.release(spec)
    }

    /// Several releases of the same pings, read once (see [`Run::releases`]).
    ///
    /// # Errors
    /// As [`Study::release`].
    pub fn releases<I>(
        &self,
        batches: I,
        specs: &[ReleaseSpec],
        options: &RunOptions,
    ) -> Result<Vec<Release>>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        self.authorize(specs)?;
        self.read(batches, options)?.releases(specs)
    }

    /// Per-device microdata of raw pings (method §4), shard by shard: see
    /// [`Run::devices`].
    ///
    /// # Errors
    /// As [`Study::prepare`].
    pub fn devices<I>(&self, batches: I, options: &RunOptions) -> Result<RecordBatch>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        self.read(batches, options)?.devices()
    }

    /// Visits of raw pings (method §5), shard by shard: see [`Run::visits`].
    ///
    /// # Errors
    /// As [`Study::prepare`].
    pub fn visits<I>(&self, batches: I, options: &RunOptions) -> Result<RecordBatch>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        self.read(batches, options)?.visits()
    }

    /// Protects, extrapolates and reports an aggregate: the last stages of a release,
    /// for partial aggregates computed elsewhere (other machines, other runs) and merged
    /// with [`Aggregate::merge_all`]. `None` (no period, no pings) gives an empty
    /// release.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid spec, or naming `aggregate`
    /// for one computed for another spec, time zone, period or geography.
    pub fn release_aggregate(
        &self,
        aggregate: Option<&Aggregate>,
        quality: &QualityReport,
        spec: &ReleaseSpec,
    ) -> Result<Release> {
        self.check_spec(spec)?;
        Release::protect(self, aggregate, quality, spec)
    }

    /// Spend per visitor: card-payment aggregates joined to a release's rows and
    /// protected (docs/METHOD.md, "Spend per visitor"). `payments` are batches with
    /// `merchant_id`, `merchant_cell` or `zone`, `category`, `day` or `ts`, `origin`
    /// (optional), `amount` (integer cents or a decimal) and `transactions`; bad rows are
    /// dropped and counted by reason in the report.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `p`, `min_merchants`, `class` or
    /// `release` (a differentially private release, or one of another time zone or
    /// period); [`Error::Input`](crate::Error::Input) naming the payments column that
    /// cannot be read, or the release column that does not fit the geography.
    pub fn spend<I>(&self, release: &Release, payments: I, spec: &SpendSpec) -> Result<Spend>
    where
        I: IntoIterator<Item = Result<RecordBatch>>,
    {
        crate::spend::spend(
            self,
            &release.rows,
            &ReleaseCut::of(release)?,
            payments,
            spec,
        )
    }

    /// [`Study::spend`] for a release read back from its table and report
    /// ([`crate::spend::release_rows`], [`ReleaseCut::from_parameters`]).
    ///
    /// # Errors
    /// As [`Study::spend`].
    pub fn spend_of_rows<I>(
        &self,
        rows: &[ReleaseRow],
        cut: &ReleaseCut,
        payments: I,
        spec: &SpendSpec,
    ) -> Result<Spend>
    where
        I: IntoIterator<Item = Result<RecordBatch>>,
    {
        crate::spend::spend(self, rows, cut, payments, spec)
    }

    /// Checks releases before any data are read: their specs against the geography and
    /// configuration, and against the ledger when there is one and the period is given,
    /// as if recorded one after the other (a differentially private release past the
    /// budget, the ρ of the ones before it included, or a k-anonymity release cut
    /// otherwise than the period's earlier ones, is refused here, and nothing is
    /// written). [`Study::release`], [`Study::releases`], [`Run::releases`] and
    /// [`Prepared::releases`] call it; call it yourself before the workers of a
    /// distributed run start.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the field at fault;
    /// [`Error::Ledger`](crate::Error::Ledger) when the ledger refuses a release.
    pub fn authorize(&self, specs: &[ReleaseSpec]) -> Result<()> {
        for spec in specs {
            self.check_spec(spec)?;
        }
        crate::privacy::account::check(self, specs)
    }

    /// Checks a spec against the geography and the configuration; returns its roaming
    /// factors by upper-cased code.
    pub(crate) fn check_spec(
        &self,
        spec: &ReleaseSpec,
    ) -> Result<std::collections::BTreeMap<String, f64>> {
        let roaming = spec.validate(self.geography())?;
        if matches!(spec.privacy, crate::Privacy::DifferentialPrivacy(_))
            && self.config().period.is_none()
        {
            return Err(crate::Error::config(
                "period",
                "must be given in the differential-privacy mode: its keys (the buckets of the \
                 period) are declared before the data are read",
            ));
        }
        Ok(roaming)
    }

    fn read<I>(&self, batches: I, options: &RunOptions) -> Result<Run>
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    {
        let mut run = self.run(options)?;
        for batch in batches {
            run.push(&batch?)?;
        }
        Ok(run)
    }
}

/// Cleaned, pseudonymized, located pings with their quality report, in memory, and the
/// study they were located for: release as many tables from them as needed (the devices
/// are profiled once, on first use).
///
/// The pings are microdata: pseudonymous, not anonymous. Never publish them.
pub struct Prepared {
    study: Study,
    pings: LocatedPings,
    report: QualityReport,
    profiles: OnceLock<Profiles>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("pings", &self.pings.len())
            .field("devices", &self.pings.devices().len())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    pub(crate) fn new(study: Study, pings: LocatedPings, report: QualityReport) -> Self {
        Self {
            study,
            pings,
            report,
            profiles: OnceLock::new(),
        }
    }

    /// The study the pings were located for.
    #[must_use]
    pub fn study(&self) -> &Study {
        &self.study
    }

    /// The located pings, grouped by device and sorted by time.
    #[must_use]
    pub fn pings(&self) -> &LocatedPings {
        &self.pings
    }

    /// What was read and dropped.
    #[must_use]
    pub fn report(&self) -> &QualityReport {
        &self.report
    }

    /// Every device's home, class and origin, and its visits (method §4–5), computed
    /// once.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid configuration (never, for a
    /// study's).
    pub fn profiles(&self) -> Result<&Profiles> {
        if let Some(profiles) = self.profiles.get() {
            return Ok(profiles);
        }
        let profiles = profile(&self.pings, self.study.geography(), self.study.config())?;
        Ok(self.profiles.get_or_init(|| profiles))
    }

    /// The aggregate of these pings for a release (method §6), before disclosure control:
    /// what [`Study::release_aggregate`] protects, mergeable with others over other
    /// devices. `None` without a period (no pings and none given).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid spec.
    pub fn aggregate(&self, spec: &ReleaseSpec) -> Result<Option<Aggregate>> {
        self.study.check_spec(spec)?;
        Aggregate::new(self.profiles()?, &self.pings, &self.study, spec)
    }

    /// One release of these pings (method §6–9).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid spec.
    pub fn release(&self, spec: &ReleaseSpec) -> Result<Release> {
        let aggregate = self.aggregate(spec)?;
        Release::protect(&self.study, aggregate.as_ref(), &self.report, spec)
    }

    /// Several releases of these pings, in the order of `specs`.
    ///
    /// # Errors
    /// As [`Prepared::release`].
    pub fn releases(&self, specs: &[ReleaseSpec]) -> Result<Vec<Release>> {
        self.study.authorize(specs)?;
        specs.iter().map(|spec| self.release(spec)).collect()
    }

    /// The re-identification risk of these pings' microdata (docs/METHOD.md,
    /// "Re-identification risk"): unicity of random points of each trace, home–work
    /// anonymity at each level of the region tree, and uniqueness of visit patterns.
    /// For the operator's data protection officer: counts and shares only.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `points`, `samples` or `spatial`;
    /// as [`Prepared::profiles`].
    pub fn risk(&self, spec: &RiskSpec) -> Result<Risk> {
        crate::risk::risk(self, spec)
    }

    /// The devices table ([`Profiles::devices_batch`]).
    ///
    /// # Errors
    /// As [`Prepared::profiles`].
    pub fn devices(&self) -> Result<RecordBatch> {
        self.profiles()?
            .devices_batch(&self.pings, self.study.geography())
    }

    /// The visits table ([`Profiles::visits_batch`]).
    ///
    /// # Errors
    /// As [`Prepared::profiles`].
    pub fn visits(&self) -> Result<RecordBatch> {
        self.profiles()?.visits_batch(self.study.geography())
    }

    /// The located pings as an Arrow batch ([`LocatedPings::schema`]).
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        self.pings.to_record_batch(self.study.geography())
    }
}
