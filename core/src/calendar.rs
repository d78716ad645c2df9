//! The local calendar of the study: time zone, local dates and timestamp parsing.
//!
//! Every calendar notion of the method (night, day, week, period) is local time in the
//! configured IANA zone, DST-aware. All arithmetic is in whole epoch seconds. A local
//! time that occurs twice (the autumn fold) takes the earlier instant; one that does not
//! exist (the spring gap) moves forward by the gap (RFC 9557's "compatible" rule).
//!
//! The time-zone database is bundled with the library, so results do not depend on the
//! host's copy of it.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::error::{Error, Result};

const SECONDS_PER_DAY: i64 = 86_400;

/// The study's time zone, resolving local times to instants and back.
#[derive(Clone, Debug)]
pub struct Calendar {
    tz: TimeZone,
}

impl Calendar {
    /// Looks up an IANA time zone by name (e.g. `Europe/Brussels`).
    ///
    /// # Errors
    /// [`Error::Config`] naming `tz` when the zone is unknown.
    pub fn new(name: &str) -> Result<Self> {
        let tz = TimeZone::get(name)
            .map_err(|_| Error::config("tz", format!("is not a known IANA time zone: {name:?}")))?;
        Ok(Self { tz })
    }

    /// The instant (epoch seconds) of a local wall-clock time, by the compatible rule.
    #[must_use]
    pub fn instant_of(&self, datetime: DateTime) -> i64 {
        // `compatible()` only fails outside jiff's supported range, which parsed
        // four-digit years and validated dates never reach; saturate rather than panic.
        self.tz
            .to_ambiguous_timestamp(datetime)
            .compatible()
            .map_or(i64::MIN, Timestamp::as_second)
    }

    /// The instant at which local date `date` begins (local midnight, or the first
    /// instant after it where midnight falls in a DST gap).
    #[must_use]
    pub fn start_of(&self, date: Date) -> i64 {
        self.instant_of(date.to_datetime(jiff::civil::Time::midnight()))
    }

    /// The local date of an instant.
    #[must_use]
    pub fn date_of(&self, instant: i64) -> Date {
        let ts = Timestamp::from_second(instant).unwrap_or(Timestamp::MIN);
        self.tz.to_datetime(ts).date()
    }

    /// The UTC offset in seconds in force at an instant.
    #[must_use]
    pub fn offset_at(&self, instant: i64) -> i32 {
        let ts = Timestamp::from_second(instant).unwrap_or(Timestamp::MIN);
        self.tz.to_offset(ts).seconds()
    }

    /// A resolver of local times to instants that caches the current UTC offset, so
    /// that a column of local-time strings costs one zone look-up per offset period
    /// rather than one per row.
    #[must_use]
    pub fn resolver(&self) -> LocalResolver<'_> {
        LocalResolver {
            calendar: self,
            offset: 0,
            safe_from: 1,
            safe_until: 0,
        }
    }
}

/// The daytimes `[D 06:00, D 22:00)` and nights `[D 22:00, D+1 06:00)` of a run of local
/// dates, as one increasing list of boundary instants (method §4).
///
/// Boundaries are computed once per date with the compatible rule, so 23 h and 25 h days
/// are exact; a ping's part of day is then a search in this list, not a zone look-up.
#[derive(Clone, Debug)]
pub struct DayParts {
    /// The date of index 0 (the method only needs the bounds; tests read dates back).
    #[cfg(test)]
    first: Date,
    /// `bounds[2k]` is `first + k` at 06:00, `bounds[2k + 1]` the same date at 22:00.
    bounds: Vec<i64>,
}

/// The part of a local day an instant falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DayPart {
    /// The daytime of the date with this index (days after [`DayParts::first`]).
    Day(i32),
    /// The night that starts on the date with this index.
    Night(i32),
}

impl DayParts {
    /// Day parts covering every instant from `first` 06:00 to the 06:00 after `last`.
    #[must_use]
    pub fn new(calendar: &Calendar, first: Date, last: Date) -> Self {
        let days = (last - first).get_days().max(0) + 2;
        let mut bounds = Vec::with_capacity(2 * days as usize);
        let mut date = first;
        for _ in 0..days {
            bounds.push(
                calendar.instant_of(date.to_datetime(jiff::civil::Time::constant(6, 0, 0, 0))),
            );
            bounds.push(
                calendar.instant_of(date.to_datetime(jiff::civil::Time::constant(22, 0, 0, 0))),
            );
            date = date.tomorrow().unwrap_or(date);
        }
        Self {
            #[cfg(test)]
            first,
            bounds,
        }
    }

    /// Day parts for a study period: from the night before its first day (which holds
    /// its first early-morning pings) to the night of its last day.
    #[must_use]
    pub fn for_period(calendar: &Calendar, start: Date, end: Date) -> Self {
        let first = start.yesterday().unwrap_or(start);
        Self::new(calendar, first, end)
    }

    #[cfg(test)]
    /// The first date (index 0).
    #[must_use]
    pub fn first(&self) -> Date {
        self.first
    }

    #[cfg(test)]
    /// The date of an index.
    #[must_use]
    pub fn date(&self, index: i32) -> Date {
        self.first
            .checked_add(jiff::Span::new().days(i64::from(index)))
            .unwrap_or(self.first)
    }

    #[cfg(test)]
    /// The part of day of an instant. Instants before the first 06:00 fall in
    /// `Night(-1)`; instants past the last boundary in the last night.
    #[must_use]
    pub fn part_of(&self, instant: i64) -> DayPart {
        self.part_span(instant).0
    }

    /// The part of day of an instant, and every instant in that part: a caller that goes
    /// through time-sorted instants looks a part up once, not once per instant.
    #[must_use]
    pub fn part_span(&self, instant: i64) -> (DayPart, std::ops::Range<i64>) {
        let passed = self.bounds.partition_point(|&b| b <= instant);
        let from = passed.checked_sub(1).map_or(i64::MIN, |i| self.bounds[i]);
        let until = self.bounds.get(passed).copied().unwrap_or(i64::MAX);
        let passed = passed as i32;
        let part = if passed % 2 == 1 {
            DayPart::Day((passed - 1) / 2)
        } else {
            DayPart::Night(passed / 2 - 1)
        };
        (part, from..until)
    }
}

/// Resolves local times, given as seconds since `1970-01-01T00:00:00` local, to instants.
///
/// The cache holds one offset and a range of instants in which that offset is in force
/// and no transition lies within a day. Inside that range a local time has exactly one
/// reading (offsets differ by less than a day), so the fast path is exact.
#[derive(Debug)]
pub struct LocalResolver<'a> {
    calendar: &'a Calendar,
    offset: i64,
    safe_from: i64,
    safe_until: i64,
}

impl LocalResolver<'_> {
    /// The instant of a local wall-clock time given in local epoch seconds.
    pub fn instant(&mut self, local_seconds: i64) -> i64 {
        let candidate = local_seconds - self.offset;
        if candidate >= self.safe_from && candidate < self.safe_until {
            return candidate;
        }
        let datetime = datetime_of_local_seconds(local_seconds);
        let instant = self.calendar.instant_of(datetime);
        self.refresh(instant);
        instant
    }

    fn refresh(&mut self, instant: i64) {
        let Ok(ts) = Timestamp::from_second(instant) else {
            self.safe_from = 1;
            self.safe_until = 0;
            return;
        };
        let tz = &self.calendar.tz;
        self.offset = i64::from(tz.to_offset(ts).seconds());
        let previous = tz
            .preceding(ts)
            .next()
            .map_or(i64::MIN / 2, |t| t.timestamp().as_second());
        let next = tz
            .following(ts)
            .next()
            .map_or(i64::MAX / 2, |t| t.timestamp().as_second());
        self.safe_from = previous.saturating_add(SECONDS_PER_DAY);
        self.safe_until = next.saturating_sub(SECONDS_PER_DAY);
    }
}

/// The instants that have a local date with days to spare on either side, in any zone:
/// jiff's range (about years -9999 to 9999) less two days at each end, so that a period
/// can always start on an instant's date and end on the day after.
pub(crate) fn instant_range() -> std::ops::RangeInclusive<i64> {
    let margin = 2 * SECONDS_PER_DAY;
    Timestamp::MIN.as_second() + margin..=Timestamp::MAX.as_second() - margin
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn datetime_of_local_seconds(local_seconds: i64) -> DateTime {
    let (year, month, day) = civil_from_days(local_seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = local_seconds.rem_euclid(SECONDS_PER_DAY);
    DateTime::new(
        i16::try_from(year).unwrap_or(i16::MAX),
        month as i8,
        day as i8,
        (second_of_day / 3600) as i8,
        (second_of_day / 60 % 60) as i8,
        (second_of_day % 60) as i8,
        0,
    )
    .unwrap_or(DateTime::MAX)
}

/// The proleptic Gregorian date `(year, month, day)` of a count of days since 1970-01-01.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A timestamp string read by [`parse_timestamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedTimestamp {
    /// The string carried `Z` or an offset: the instant, in epoch seconds.
    Instant(i64),
    /// The string carried no offset: local epoch seconds, to be read in the study's zone.
    Local(i64),
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.f…][Z or ±HH:MM]`, flooring any fraction.
///
/// Returns `None` for anything else, including impossible dates and times (a 31st of
/// April, hour 24, second 60).
#[must_use]
pub fn parse_timestamp(text: &[u8]) -> Option<ParsedTimestamp> {
    fn digits(bytes: &[u8]) -> Option<u32> {
        bytes.iter().try_fold(0_u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    }
    if text.len() < 19 {
        return None;
    }
    let (head, mut rest) = text.split_at(19);
    if head[4] != b'-' || head[7] != b'-' || !matches!(head[10], b'T' | b' ') {
        return None;
    }
    if head[13] != b':' || head[16] != b':' {
        return None;
    }
    let year = i64::from(digits(&head[0..4])?);
    let month = digits(&head[5..7])?;
    let day = digits(&head[8..10])?;
    let hour = digits(&head[11..13])?;
    let minute = digits(&head[14..16])?;
    let second = digits(&head[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if let [b'.', tail @ ..] = rest {
        let fraction_len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_len == 0 {
            return None;
        }
        rest = &tail[fraction_len..];
    }
    let local = days_from_civil(year, month, day) * SECONDS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second);
    match rest {
        [] => Some(ParsedTimestamp::Local(local)),
        [b'Z' | b'z'] => Some(ParsedTimestamp::Instant(local)),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            let offset = if *sign == b'-' { -offset } else { offset };
            Some(ParsedTimestamp::Instant(local - offset))
        }
        _ => None,
    }
}

/// Formats an instant as local time `YYYY-MM-DDTHH:MM:SS±HH:MM`.
#[must_use]
pub fn format_local(calendar: &Calendar, instant: i64) -> String {
    let ts = Timestamp::from_second(instant).unwrap_or(Timestamp::MIN);
    let offset = calendar.tz.to_offset(ts).seconds();
    let datetime = calendar.tz.to_datetime(ts);
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    format!(
        "{}{sign}{:02}:{:02}",
        datetime.strftime("%Y-%m-%dT%H:%M:%S"),
        offset / 3600,
        (offset % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brussels() -> Calendar {
        Calendar::new("Europe/Brussels").unwrap()
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2026, 7, 1), 20_635);
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_every_accepted_form() {
        let local = |s: &str| parse_timestamp(s.as_bytes());
        assert_eq!(
            local("1970-01-01T00:00:00"),
            Some(ParsedTimestamp::Local(0))
        );
        assert_eq!(
            local("1970-01-01 00:00:01"),
            Some(ParsedTimestamp::Local(1))
        );
        assert_eq!(
            local("1970-01-01T00:00:01.999999999"),
            Some(ParsedTimestamp::Local(1))
        );
        assert_eq!(
            local("1970-01-01T00:00:01Z"),
            Some(ParsedTimestamp::Instant(1))
        );
        assert_eq!(
            local("1970-01-01T01:00:00+01:00"),
            Some(ParsedTimestamp::Instant(0))
        );
        assert_eq!(
            local("1969-12-31T23:00:00-01:00"),
            Some(ParsedTimestamp::Instant(0))
        );
        assert_eq!(
            local("1970-01-01T00:00:00.5Z"),
            Some(ParsedTimestamp::Instant(0))
        );
    }

    #[test]
    fn rejects_malformed_and_impossible_times() {
        for bad in [
            "",
            "2026-04-31T00:00:00",
            "2026-02-29T00:00:00",
            "2026-01-01T24:00:00",
            "2026-01-01T00:60:00",
            "2026-01-01T00:00:60",
            "2026-01-01T00:00:00.",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00 ",
            "2026/01/01T00:00:00",
            "26-01-01T00:00:00",
            "2026-01-01X00:00:00",
            "2026-01-01T00:00:00+24:00",
        ] {
            assert_eq!(parse_timestamp(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(parse_timestamp(b"2024-02-29T00:00:00").is_some());
    }

    #[test]
    fn local_times_follow_the_compatible_rule_across_dst() {
        let calendar = brussels();
        let mut resolver = calendar.resolver();
        let local = |s: &str| match parse_timestamp(s.as_bytes()).unwrap() {
            ParsedTimestamp::Local(l) => l,
            ParsedTimestamp::Instant(_) => unreachable!(),
        };
        // Summer: UTC+2.
        assert_eq!(
            resolver.instant(local("2026-07-01T12:00:00")),
            1_782_900_000
        );
        // Spring gap (2026-03-29 02:00 -> 03:00): 02:30 moves forward to 03:30 CEST = 01:30Z.
        let gap = resolver.instant(local("2026-03-29T02:30:00"));
        assert_eq!(gap, 1_774_747_800);
        // Autumn fold (2026-10-25 03:00 -> 02:00): 02:30 takes the earlier, CEST reading.
        let fold = resolver.instant(local("2026-10-25T02:30:00"));
        assert_eq!(fold, 1_792_888_200);
        // The cached path agrees with the slow path on every hour of a year.
        let start = local("2026-01-01T00:00:00");
        let mut fresh = calendar.resolver();
        for hour in 0..(366 * 24) {
            let l = start + hour * 3600 + 1234;
            let slow = calendar.instant_of(datetime_of_local_seconds(l));
            assert_eq!(fresh.instant(l), slow, "hour {hour}");
        }
    }

    #[test]
    fn day_parts_follow_local_time_across_dst() {
        let calendar = brussels();
        let start = jiff::civil::date(2026, 10, 24);
        let parts = DayParts::for_period(&calendar, start, jiff::civil::date(2026, 10, 27));
        assert_eq!(parts.first(), jiff::civil::date(2026, 10, 23));
        let at = |s: &str| match parse_timestamp(s.as_bytes()).unwrap() {
            ParsedTimestamp::Instant(i) => i,
            ParsedTimestamp::Local(l) => calendar.resolver().instant(l),
        };
        // 2026-10-24 is index 1.
        assert_eq!(parts.part_of(at("2026-10-24T05:59:59")), DayPart::Night(0));
        assert_eq!(parts.part_of(at("2026-10-24T06:00:00")), DayPart::Day(1));
        assert_eq!(parts.part_of(at("2026-10-24T21:59:59")), DayPart::Day(1));
        assert_eq!(parts.part_of(at("2026-10-24T22:00:00")), DayPart::Night(1));
        // The 25-hour night of the autumn change: both 02:30s are in night 1.
        assert_eq!(parts.part_of(at("2026-10-25T00:30:00Z")), DayPart::Night(1));
        assert_eq!(parts.part_of(at("2026-10-25T01:30:00Z")), DayPart::Night(1));
        assert_eq!(parts.part_of(at("2026-10-25T05:00:00Z")), DayPart::Day(2));
        assert_eq!(parts.part_of(at("2026-10-26T23:00:00")), DayPart::Night(3));
        assert_eq!(parts.date(3), jiff::civil::date(2026, 10, 26));
    }

    #[test]
    fn part_spans_are_the_instants_of_each_part() {
        let calendar = brussels();
        let start = jiff::civil::date(2026, 3, 27);
        let parts = DayParts::for_period(&calendar, start, jiff::civil::date(2026, 4, 2));
        let first = parts.bounds[0];
        let last = *parts.bounds.last().unwrap();
        // Every 7 minutes and 13 seconds from a day before the first boundary to a day
        // after the last, across the spring change: each instant is in its part's span,
        // and the span's ends are where the part begins and ends.
        let mut t = first - 86_400;
        while t < last + 86_400 {
            let (part, span) = parts.part_span(t);
            assert_eq!(part, parts.part_of(t));
            assert!(span.contains(&t), "{t} outside {span:?}");
            if span.start != i64::MIN {
                assert_eq!(parts.part_of(span.start), part);
                assert_ne!(parts.part_of(span.start - 1), part);
            }
            if span.end != i64::MAX {
                assert_eq!(parts.part_of(span.end - 1), part);
                assert_ne!(parts.part_of(span.end), part);
            }
            t += 433;
        }
        assert_eq!(
            parts.part_span(first - 1),
            (DayPart::Night(-1), i64::MIN..first)
        );
        assert_eq!(parts.part_span(last).1, last..i64::MAX);
    }

    #[test]
    fn formats_local_time_with_offset() {
        let calendar = brussels();
        assert_eq!(
            format_local(&calendar, 1_782_900_000),
            "2026-07-01T12:00:00+02:00"
        );
        assert_eq!(format_local(&calendar, 0), "1970-01-01T01:00:00+01:00");
    }

    #[test]
    fn unknown_zone_names_the_field() {
        let err = Calendar::new("Mars/Olympus").unwrap_err();
        assert_eq!(err.field(), Some("tz"));
    }
}
