//! The same release on a cluster (a distributed engine such as Spark), Arrow in and
//! Arrow out, with no engine in here.
//!
//! Every measure of the method is a sum over devices, so a release splits at the device:
//!
//! ```text
//! driver:   Plan::new ─► [Scanner on every part, merge_spans, Plan::with_span] ─►
//! workers:  Mapper (raw pings → pseudonymous pings + counters)
//!           ─► partition by `device` (every ping of a device to one reducer)
//!           ─► Reducer (whole devices → additive partials)
//!           ─► sum by key (GROUP BY PARTIAL_KEYS, SUM PARTIAL_VALUES)
//! driver:   finish (disclosure control or noise, extrapolation, report, ledger)
//! ```
//!
//! Raw subscriber ids never leave the mappers: they cross the network as pseudonyms
//! (§3) and tags (the next 64 bits of the same HMAC, so that the reducers count
//! pseudonym collisions as a single run does), opted-out ids as keyed digests. The key
//! itself is not in the [`Plan`]: each worker is given it by the engine's own means, and
//! checked against the plan's keyed check value. What depends on every device (the
//! period when none is given, distinct opted-out subscribers, collisions, detected
//! subscribers, drop counts) is either additive or found by the scan.
//!
//! [`finish`] on the summed partials gives exactly the releases, rows and reports, of a
//! single [`crate::Study::releases`] over the same pings.

mod map;
mod partials;
mod plan;
mod reduce;

pub use crate::ingest::{PSEUDONYMOUS_COLUMNS, pseudonymous_schema};
pub use map::{Mapper, Scanner, span_schema};
pub use partials::{PARTIAL_KEYS, PARTIAL_VALUES, finish, partials_schema};
pub use plan::{Plan, Table, merge_spans};
pub use reduce::Reducer;

#[cfg(test)]
mod tests;
