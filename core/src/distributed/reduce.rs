//! The reduce side of a distributed run: pseudonymous pings of whole devices in,
//! additive partials out. A reducer is a run (`crate::Run`) over pings pseudonymized
//! elsewhere: the same shards, spill files and memory budget, the same profile and
//! aggregate.

use std::sync::Arc;

use arrow_array::RecordBatch;

use super::partials::encode;
use super::plan::Plan;
use crate::error::Result;
use crate::geo::Geography;
use crate::pipeline::{Run, RunOptions};
use crate::pseudonym::Key;
use crate::release::ReleaseSpec;

/// Reads the pseudonymous pings of whole devices (every ping of a device reaches the
/// same reducer; partition the mapped pings by `device`) and gives the partial
/// aggregates of the plan's tables, the device counts and the quality counts as one
/// table of additive rows ([`crate::distributed::partials_schema`]), with the mappers'
/// counter rows passed on.
#[derive(Debug)]
pub struct Reducer {
    run: Run,
    specs: Vec<ReleaseSpec>,
}

impl Reducer {
    /// A reducer of `plan`'s pings with `key` (the driver's: the differential-privacy
    /// mode orders a device's pairs under it), within `options`' threads and memory
    /// budget.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `key` when it is not the plan's, `period` when the
    /// plan still needs its scan, or a field of `options`.
    pub fn new(
        plan: &Plan,
        geography: impl Into<Arc<Geography>>,
        key: Key,
        options: &RunOptions,
    ) -> Result<Self> {
        if plan.needs_scan() {
            return Err(crate::Error::config(
                "period",
                "is not known yet: scan the input and give the plan its span first",
            ));
        }
        let study = plan.worker_study(geography, key)?;
        let period = plan.period().zip(plan.label().map(str::to_owned));
        Ok(Self {
            run: Run::pseudonymous(&study, options, period)?,
            specs: plan.tables().iter().map(super::plan::Table::spec).collect(),
        })
    }

    /// Reads one batch of pseudonymous pings (and counter rows).
    ///
    /// # Errors
    /// [`crate::Error::Input`] naming the column at fault (see
    /// [`crate::ingest::pseudonymous_schema`]); the errors of [`Run::push`].
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.run.push(batch)
    }

    /// Profiles and aggregates the devices read, and gives the partials.
    ///
    /// # Errors
    /// The errors of [`Run::aggregates`].
    pub fn finish(mut self) -> Result<RecordBatch> {
        let counters = self.run.take_counters();
        let (aggregates, report) = self.run.aggregates(&self.specs)?;
        encode(&aggregates, &report, &counters)
    }

    /// Profiles the devices read and gives their rows of the devices table
    /// ([`crate::profile::Profiles::devices_schema`]), in increasing pseudonym. The
    /// tables of all reducers together are a single run's [`crate::Run::devices`], each
    /// device in the reducer that held its pings.
    ///
    /// # Errors
    /// The errors of [`Run::devices`].
    pub fn devices(self) -> Result<RecordBatch> {
        self.run.devices()
    }

    /// The visits of the devices read ([`crate::profile::Profiles::visits_schema`]), as
    /// [`Reducer::devices`] gives their profiles.
    ///
    /// # Errors
    /// The errors of [`Run::visits`].
    pub fn visits(self) -> Result<RecordBatch> {
        self.run.visits()
    }
}
