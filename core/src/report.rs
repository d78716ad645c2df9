//! The quality report of a run (method §9, the ingestion part): what was read, what was
//! dropped and why, and the parameters used (never the key).

use serde::Serialize;

use crate::config::{Period, SubscriberKind};

/// Why a ping was dropped (method §2), in the order the reasons are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The subscriber is on the opt-out list.
    OptOut,
    /// Null subscriber, or a negative integer id.
    BadSubscriber,
    /// Null, non-finite or out-of-range position, invalid H3 index, or a cell coarser
    /// than the analysis resolution.
    BadPosition,
    /// Null timestamp, a string that does not parse, or an instant outside the calendar
    /// (beyond about ±9999 years, e.g. milliseconds read as seconds).
    BadTs,
    /// Outside the study period.
    OutsidePeriod,
    /// A second ping of the same device at the same second.
    Duplicate,
}

impl DropReason {
    /// Every reason, in the method's order.
    pub const ALL: [Self; 6] = [
        Self::OptOut,
        Self::BadSubscriber,
        Self::BadPosition,
        Self::BadTs,
        Self::OutsidePeriod,
        Self::Duplicate,
    ];

    /// The reason's name in the method and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::OptOut => "opt_out",
            Self::BadSubscriber => "bad_subscriber",
            Self::BadPosition => "bad_position",
            Self::BadTs => "bad_ts",
            Self::OutsidePeriod => "outside_period",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Dropped pings by reason; each dropped ping is counted once, under its first reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Pings of opted-out subscribers.
    pub opt_out: u64,
    /// Pings with no usable subscriber id.
    pub bad_subscriber: u64,
    /// Pings with no usable position.
    pub bad_position: u64,
    /// Pings with no usable timestamp.
    pub bad_ts: u64,
    /// Pings outside the study period.
    pub outside_period: u64,
    /// Duplicates of (device, second) beyond the one kept.
    pub duplicate: u64,
}

impl Dropped {
    /// The count for one reason.
    #[must_use]
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::OptOut => self.opt_out,
            DropReason::BadSubscriber => self.bad_subscriber,
            DropReason::BadPosition => self.bad_position,
            DropReason::BadTs => self.bad_ts,
            DropReason::OutsidePeriod => self.outside_period,
            DropReason::Duplicate => self.duplicate,
        }
    }

    pub(crate) fn add(&mut self, reason: DropReason, count: u64) {
        let slot = match reason {
            DropReason::OptOut => &mut self.opt_out,
            DropReason::BadSubscriber => &mut self.bad_subscriber,
            DropReason::BadPosition => &mut self.bad_position,
            DropReason::BadTs => &mut self.bad_ts,
            DropReason::OutsidePeriod => &mut self.outside_period,
            DropReason::Duplicate => &mut self.duplicate,
        };
        *slot += count;
    }

    /// All dropped pings.
    #[must_use]
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.get(r)).sum()
    }
}

impl std::ops::AddAssign for Dropped {
    fn add_assign(&mut self, other: Self) {
        for reason in DropReason::ALL {
            self.add(reason, other.get(reason));
        }
    }
}

/// What the opt-out list removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OptOutCounts {
    /// Pings dropped.
    pub pings: u64,
    /// Distinct opted-out subscribers present in the input.
    pub subscribers: u64,
}

/// The quality report of ingestion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QualityReport {
    /// The library version that made the report.
    pub version: &'static str,
    /// Input rows read.
    pub pings_read: u64,
    /// Pings kept after cleaning: `pings_read = pings_kept + dropped.total()`.
    pub pings_kept: u64,
    /// Dropped pings by reason.
    pub dropped: Dropped,
    /// Opt-out counts.
    pub opt_out: OptOutCounts,
    /// Kept pings in a region of the geography.
    pub pings_in_regions: u64,
    /// Kept pings in the study area.
    pub pings_in_study_area: u64,
    /// Kept pings in a zone.
    pub pings_in_zones: u64,
    /// Distinct devices among the kept pings.
    pub devices: u64,
    /// Distinct subscribers that share a pseudonym with another one (64-bit pseudonyms
    /// collide with probability about n²/2⁶⁵; such subscribers are merged).
    pub pseudonym_collisions: u64,
    /// The study period used (given, or derived from the data).
    pub period: Option<Period>,
    /// The pseudonym period label used.
    pub period_label: Option<String>,
    /// The time zone.
    pub tz: String,
    /// The analysis resolution.
    pub resolution: u8,
    /// How subscriber ids were read.
    pub subscriber_kind: Option<SubscriberKind>,
}

impl QualityReport {
    /// The report as JSON.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
