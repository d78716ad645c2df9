//! The plan of a distributed run: everything the workers need but the key and the
//! geography, as a value that may travel (JSON).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

use crate::aggregate::{BucketKind, ReleaseClass};
use crate::calendar::Calendar;
use crate::config::{Config, OptOut, OptOutDigests, Period, SubscriberKind};
use crate::error::{Error, Result};
use crate::geo::Geography;
use crate::ingest::decoded::Decoded;
use crate::ingest::{PingColumns, Reader, period_covering};
use crate::privacy::{Privacy, hex};
use crate::pseudonym::Key;
use crate::release::ReleaseSpec;
use crate::study::Study;
use crate::workers::Threads;

/// What a worker aggregates for one release: the parts of its spec that the partial
/// aggregate depends on (the rest is applied once, when the partials are finished).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The time bucket.
    pub bucket: BucketKind,
    /// The classes.
    pub classes: Vec<ReleaseClass>,
    /// The protection (its contribution bounds shape the partial).
    pub privacy: Privacy,
}

impl Table {
    pub(crate) fn of(spec: &ReleaseSpec) -> Self {
        Self {
            bucket: spec.bucket,
            classes: spec.classes.clone(),
            privacy: spec.privacy.clone(),
        }
    }

    pub(crate) fn spec(&self) -> ReleaseSpec {
        let mut spec = ReleaseSpec::new(self.bucket);
        spec.classes.clone_from(&self.classes);
        spec.privacy = self.privacy.clone();
        spec
    }
}

/// The plan of a distributed run, made on the driver ([`Plan::new`]) and read by every
/// worker: the configuration without its key and with the opt-out list as keyed digests,
/// the column names, the period and its label, and the tables to aggregate. It holds a
/// keyed check value so that a worker given another key fails at once.
///
/// When the configuration gives no period, the period is the data's (§1.4), found by a
/// first pass over the input ([`crate::distributed::Scanner`]) and set with
/// [`Plan::with_span`] before the pings are mapped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    config: Config,
    opt_out: OptOutDigests,
    key_check: String,
    columns: PingColumns,
    period: Option<Period>,
    /// Whether the period was found by a scan of the data (then no valid ping may fall
    /// outside it).
    scanned: bool,
    label: Option<String>,
    tables: Vec<Table>,
}

/// The keyed check value of a key: it tells whether two keys are equal, not what they
/// are.
fn key_check(key: &Key) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
    mac.update(b"crowdtally/key-check");
    hex(&mac.finalize().into_bytes()[..16])
}

impl Plan {
    /// The plan of the releases `specs` of `study`'s pings. The releases are checked
    /// here, against the ledger too (see [`Study::authorize`]), before any data are read.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the field of an invalid spec;
    /// [`crate::Error::Ledger`] when the ledger refuses a release.
    pub fn new(study: &Study, specs: &[ReleaseSpec]) -> Result<Self> {
        study.authorize(specs)?;
        let config = study.config();
        let period = config.period;
        // Neither the key nor the raw opt-out ids are part of the plan, even in memory.
        let mut shared = config.clone();
        shared.key = Key::default();
        shared.opt_out = OptOut::default();
        Ok(Self {
            config: shared,
            opt_out: config.opt_out.digests(&config.key),
            key_check: key_check(&config.key),
            columns: study.columns().clone(),
            period,
            scanned: false,
            label: period.map(|p| label_of(config, p)),
            tables: specs.iter().map(Table::of).collect(),
        })
    }

    /// Whether the period must first be found by a scan of the data.
    #[must_use]
    pub fn needs_scan(&self) -> bool {
        self.period.is_none() && !self.scanned
    }

    /// The plan with the period of the data: the local dates from the first to the last
    /// instant of the valid pings (`span`, merged over every part of the input with
    /// [`merge_spans`]); no period when there is no valid ping.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `period` when the plan already has one.
    pub fn with_span(mut self, span: Option<(i64, i64)>) -> Result<Self> {
        if !self.needs_scan() {
            return Err(Error::config(
                "period",
                "is already known to the plan: a scan is for a configuration without one",
            ));
        }
        let calendar = Calendar::new(&self.config.tz)?;
        self.period = period_covering(&calendar, span);
        self.label = self.period.map(|p| label_of(&self.config, p));
        self.scanned = true;
        Ok(self)
    }

    /// The period of the run, once known.
    #[must_use]
    pub fn period(&self) -> Option<Period> {
        self.period
    }

    /// The pseudonym label of the run, once the period is known.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Whether the period was found by a scan.
    pub(crate) fn scanned(&self) -> bool {
        self.scanned
    }

    /// The tables the workers aggregate.
    #[must_use]
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The column names of the input.
    #[must_use]
    pub fn columns(&self) -> &PingColumns {
        &self.columns
    }

    /// Checks the input's schema on the driver, before the workers read anything (a
    /// missing column, an unsupported type, opt-out ids of another kind than the
    /// subscriber column's), and gives the kind of its subscriber ids: what the report
    /// says when no worker sees a batch (an empty input).
    ///
    /// # Errors
    /// [`Error::Input`] naming the column at fault; [`Error::Config`] naming `opt_out`.
    pub fn input_kind(&self, study: &Study, schema: &Schema) -> Result<Option<SubscriberKind>> {
        let mut reader = Reader::new(study);
        let empty = RecordBatch::new_empty(Arc::new(schema.clone()));
        reader.read(&empty, &Threads::new(1)?, &mut Decoded::default(), None)?;
        Ok(reader.report().subscriber_kind)
    }

    /// The plan as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // A plan is plain data: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A plan from its JSON.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `plan` when the text is not a plan.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|error| {
            // The parser's message may quote the text: give its position only.
            Error::config(
                "plan",
                format!(
                    "is not a crowdtally plan (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
        })
    }

    /// The study a worker runs: the plan's configuration with `key` (checked against
    /// the driver's), the opt-out digests, and the plan's period as the configuration's
    /// (so that pings outside it are dropped as they are read).
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `key` when it is not the driver's, or a field of
    /// the geography or configuration that does not validate.
    pub(crate) fn worker_study(
        &self,
        geography: impl Into<Arc<Geography>>,
        key: Key,
    ) -> Result<Study> {
        key.validate()?;
        if key_check(&key) != self.key_check {
            return Err(Error::config(
                "key",
                "is not the key of the plan: the workers must be given the driver's key",
            ));
        }
        let mut config = self.config.clone();
        config.key = key;
        config.opt_out = OptOut::from_digests(self.opt_out.clone());
        config.period = self.period;
        config.period_label.clone_from(&self.label);
        // Only the driver records releases.
        config.ledger = None;
        config.budget = None;
        Ok(Study::new(geography, config)?.with_columns(self.columns.clone()))
    }
}

fn label_of(config: &Config, period: Period) -> String {
    config
        .period_label
        .clone()
        .unwrap_or_else(|| period.default_label())
}

/// The span of two parts of the input: from the earlier first instant to the later last
/// one.
#[must_use]
pub fn merge_spans(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((f1, l1)), Some((f2, l2))) => Some((f1.min(f2), l1.max(l2))),
        (one, None) | (None, one) => one,
    }
}
