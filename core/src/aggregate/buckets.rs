//! Time buckets (method §6): local calendar intervals `[b0, b1)` of one kind, covering
//! the period.
//!
//! Bounds are instants computed once from local calendar dates with the compatible rule,
//! so DST days are 23 or 25 hours long and an autumn night has two hour buckets labelled
//! 02:00 (one at each offset). A visit's buckets are then found by binary search.

use std::fmt;
use std::str::FromStr;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::config::Period;
use crate::error::{Error, Result};

const HOUR: i64 = 3_600;

/// The kind of time bucket a release is broken down by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketKind {
    /// Local clock hours.
    Hour,
    /// Local dates.
    Day,
    /// ISO weeks, from Monday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// The whole period as one bucket.
    #[default]
    Period,
}

impl BucketKind {
    /// Every kind, finest first.
    pub const ALL: [Self; 6] = [
        Self::Hour,
        Self::Day,
        Self::Week,
        Self::Month,
        Self::Quarter,
        Self::Period,
    ];

    /// The kind's name in the method and the API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Period => "period",
        }
    }
}

impl fmt::Display for BucketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BucketKind {
    type Err = Error;

    /// Parses a bucket kind by name.
    ///
    /// # Errors
    /// [`Error::Config`] naming `bucket` for an unknown name.
    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                Error::config(
                    "bucket",
                    format!("must be one of hour, day, week, month, quarter, period; got {name:?}"),
                )
            })
    }
}

/// The buckets of one kind overlapping a period: contiguous, as `n + 1` increasing bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buckets {
    bounds: Vec<i64>,
}

impl Buckets {
    /// Every bucket of `kind` that overlaps the period (whole calendar intervals, even
    /// where they stick out of it).
    #[must_use]
    pub fn new(kind: BucketKind, calendar: &Calendar, period: Period) -> Self {
        let period_start = calendar.start_of(period.start);
        let period_end = calendar.start_of(period.end);
        let bounds = match kind {
            BucketKind::Period => vec![period_start, period_end],
            BucketKind::Hour => {
                let mut bounds = vec![period_start];
                let mut at = period_start;
                while at < period_end {
                    at = next_hour(calendar, at);
                    bounds.push(at);
                }
                bounds
            }
            BucketKind::Day | BucketKind::Week | BucketKind::Month | BucketKind::Quarter => {
                let mut date = first_date(kind, period.start);
                let mut bounds = vec![calendar.start_of(date)];
                while date < period.end {
                    date = next_date(kind, date);
                    bounds.push(calendar.start_of(date));
                }
                bounds
            }
        };
        Self { bounds }
    }

    /// The number of buckets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The bounds: bucket `b` is `[bounds[b], bounds[b + 1])`.
    #[must_use]
    pub fn bounds(&self) -> &[i64] {
        &self.bounds
    }

    /// Bucket `b` as `[b0, b1)`.
    #[must_use]
    pub fn interval(&self, bucket: usize) -> (i64, i64) {
        (self.bounds[bucket], self.bounds[bucket + 1])
    }

    /// The bucket holding an instant, if any.
    #[must_use]
    pub fn bucket_of(&self, instant: i64) -> Option<usize> {
        let after = self.bounds.partition_point(|&b| b <= instant);
        (after > 0 && after < self.bounds.len()).then(|| after - 1)
    }

    /// The buckets a visit `[start, end)` overlaps: `start < b1 and end > b0`, or, for a
    /// zero-length visit, the bucket holding its start.
    #[must_use]
    pub fn overlapped(&self, start: i64, end: i64) -> std::ops::Range<usize> {
        if end <= start {
            return self.bucket_of(start).map_or(0..0, |b| b..b + 1);
        }
        // First bucket with b1 > start; one past the last bucket with b0 < end.
        let first = self.bounds[1..].partition_point(|&b1| b1 <= start);
        let last = self.bounds[..self.len()].partition_point(|&b0| b0 < end);
        first..last.max(first)
    }

    #[cfg(test)]
    /// Bucket `b`'s start as local time text, `YYYY-MM-DDTHH:MM:SS±HH:MM`.
    #[must_use]
    pub fn label(&self, calendar: &Calendar, bucket: usize) -> String {
        crate::calendar::format_local(calendar, self.bounds[bucket])
    }
}

/// The first date of the bucket holding `date`.
fn first_date(kind: BucketKind, date: Date) -> Date {
    match kind {
        BucketKind::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            date.checked_sub(back.days()).unwrap_or(date)
        }
        BucketKind::Month => date.first_of_month(),
        BucketKind::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            Date::new(date.year(), month, 1).unwrap_or(date)
        }
        _ => date,
    }
}

/// The first date of the next bucket after the one starting at `date`.
fn next_date(kind: BucketKind, date: Date) -> Date {
    let step = match kind {
        BucketKind::Week => 7.days(),
        BucketKind::Month => 1.month(),
        BucketKind::Quarter => 3.months(),
        _ => 1.day(),
    };
    debug_assert!(kind != BucketKind::Week || date.weekday() == Weekday::Monday);
    // Dates of a valid period are far from the end of jiff's range.
    date.checked_add(step).unwrap_or(Date::MAX)
}

/// The next instant after `at` whose local time is a whole hour.
///
/// Within one UTC offset whole local hours are an arithmetic progression; across a
/// transition the next one is the transition itself when it lands on a whole hour (the
/// usual DST change), else the next whole hour at the new offset.
fn next_hour(calendar: &Calendar, at: i64) -> i64 {
    let offset = i64::from(calendar.offset_at(at));
    let candidate = at + (HOUR - (at + offset).rem_euclid(HOUR));
    if i64::from(calendar.offset_at(candidate)) == offset {
        return candidate;
    }
    // The offset changes in (at, candidate]: find the first instant of the new offset.
    let (mut same, mut changed) = (at, candidate);
    while changed - same > 1 {
        let mid = same + (changed - same) / 2;
        if i64::from(calendar.offset_at(mid)) == offset {
            same = mid;
        } else {
            changed = mid;
        }
    }
    let local = changed + i64::from(calendar.offset_at(changed));
    match local.rem_euclid(HOUR) {
        0 => changed,
        past => changed + (HOUR - past),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn brussels() -> Calendar {
        Calendar::new("Europe/Brussels").unwrap()
    }

    fn labels(buckets: &Buckets) -> Vec<String> {
        let calendar = brussels();
        (0..buckets.len())
            .map(|b| buckets.label(&calendar, b))
            .collect()
    }

    fn period(start: Date, end: Date) -> Period {
        Period::new(start, end).unwrap()
    }

    #[test]
    fn spring_forward_day_has_23_hours() {
        let buckets = Buckets::new(
            BucketKind::Hour,
            &brussels(),
            period(date(2026, 3, 29), date(2026, 3, 30)),
        );
        assert_eq!(buckets.len(), 23);
        let labels = labels(&buckets);
        assert_eq!(labels[1], "2026-03-29T01:00:00+01:00");
        assert_eq!(labels[2], "2026-03-29T03:00:00+02:00");
        assert!(buckets.bounds().windows(2).all(|w| w[1] - w[0] == HOUR));
    }

    #[test]
    fn fall_back_day_has_25_hours_two_of_them_at_two() {
        let buckets = Buckets::new(
            BucketKind::Hour,
            &brussels(),
            period(date(2026, 10, 25), date(2026, 10, 26)),
        );
        assert_eq!(buckets.len(), 25);
        let labels = labels(&buckets);
        assert_eq!(labels[2], "2026-10-25T02:00:00+02:00");
        assert_eq!(labels[3], "2026-10-25T02:00:00+01:00");
        assert_eq!(labels[4], "2026-10-25T03:00:00+01:00");
    }

    #[test]
    fn half_hour_transition_lands_on_the_next_whole_hour() {
        // Lord Howe Island moves by 30 minutes: +10:30 to +11:00 at 02:00 local.
        let calendar = Calendar::new("Australia/Lord_Howe").unwrap();
        let buckets = Buckets::new(
            BucketKind::Hour,
            &calendar,
            period(date(2026, 10, 4), date(2026, 10, 5)),
        );
        let labels: Vec<String> = (0..buckets.len())
            .map(|b| buckets.label(&calendar, b))
            .collect();
        assert_eq!(labels[1], "2026-10-04T01:00:00+10:30");
        assert_eq!(labels[2], "2026-10-04T03:00:00+11:00");
        assert_eq!(
            buckets.interval(1).1 - buckets.interval(1).0,
            HOUR + HOUR / 2
        );
        assert_eq!(buckets.len(), 23);
    }

    #[test]
    fn days_are_23_and_25_hours_long_on_dst_days() {
        let buckets = Buckets::new(
            BucketKind::Day,
            &brussels(),
            period(date(2026, 3, 28), date(2026, 3, 31)),
        );
        let lengths: Vec<i64> = (0..3)
            .map(|b| buckets.interval(b).1 - buckets.interval(b).0)
            .collect();
        assert_eq!(lengths, vec![24 * HOUR, 23 * HOUR, 24 * HOUR]);
        let autumn = Buckets::new(
            BucketKind::Day,
            &brussels(),
            period(date(2026, 10, 25), date(2026, 10, 26)),
        );
        assert_eq!(autumn.interval(0).1 - autumn.interval(0).0, 25 * HOUR);
    }

    #[test]
    fn weeks_months_quarters_are_whole_calendar_intervals() {
        let calendar = brussels();
        // 2026-07-01 is a Wednesday: its ISO week starts on Monday 29 June.
        let p = period(date(2026, 7, 1), date(2026, 10, 1));
        let weeks = Buckets::new(BucketKind::Week, &calendar, p);
        assert_eq!(labels(&weeks)[0], "2026-06-29T00:00:00+02:00");
        assert_eq!(labels(&weeks).last().unwrap(), "2026-09-28T00:00:00+02:00");
        assert_eq!(weeks.len(), 14);
        let months = Buckets::new(BucketKind::Month, &calendar, p);
        assert_eq!(months.len(), 3);
        let quarters = Buckets::new(
            BucketKind::Quarter,
            &calendar,
            period(date(2026, 8, 15), date(2026, 10, 2)),
        );
        assert_eq!(
            labels(&quarters),
            vec!["2026-07-01T00:00:00+02:00", "2026-10-01T00:00:00+02:00"]
        );
        let whole = Buckets::new(BucketKind::Period, &calendar, p);
        assert_eq!(whole.len(), 1);
    }

    #[test]
    fn overlap_follows_the_method() {
        let calendar = brussels();
        let days = Buckets::new(
            BucketKind::Day,
            &calendar,
            period(date(2026, 7, 1), date(2026, 7, 4)),
        );
        let (d0, d1) = days.interval(0);
        let (_, d2) = days.interval(1);
        // A visit ending exactly at midnight does not overlap the next day.
        assert_eq!(days.overlapped(d0 + 10, d1), 0..1);
        // One crossing midnight overlaps both days.
        assert_eq!(days.overlapped(d1 - 10, d1 + 10), 0..2);
        // A zero-length visit at midnight belongs to the day it starts.
        assert_eq!(days.overlapped(d1, d1), 1..2);
        assert_eq!(days.overlapped(d2 - 1, d2 + 1), 1..3);
        // Outside the grid: nothing.
        assert_eq!(days.overlapped(d0 - 100, d0 - 10), 0..0);
        assert_eq!(days.bucket_of(d0 - 1), None);
        assert_eq!(days.bucket_of(d0), Some(0));
    }

    #[test]
    fn names_round_trip_and_unknown_names_the_field() {
        for kind in BucketKind::ALL {
            assert_eq!(kind.name().parse::<BucketKind>().unwrap(), kind);
        }
        assert_eq!(
            "fortnight".parse::<BucketKind>().unwrap_err().field(),
            Some("bucket")
        );
    }
}
