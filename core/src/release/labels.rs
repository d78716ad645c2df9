//! What a release's rows are called for people and BI tools (method §6 lets such columns
//! follow the fixed ones): the zone's and the origin's names, and the bucket's start as a
//! timestamp in the study's time zone.

use std::collections::BTreeMap;

use crate::geo::{Geography, Regions};

/// The names of a release's zones and origins, and the time zone of its buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseLabels {
    /// The study's time zone (IANA name), that of `bucket_ts`.
    pub tz: String,
    /// Zone ids (and `category:<name>`) and their display names.
    pub zones: BTreeMap<String, String>,
    /// Origins of the release and their names.
    pub origins: BTreeMap<String, String>,
}

impl ReleaseLabels {
    /// The labels of a release of `origins` over the zones of `geography`.
    pub(crate) fn new<'o>(
        geography: &Geography,
        tz: &str,
        origins: impl IntoIterator<Item = &'o str>,
    ) -> Self {
        let zones = geography
            .zones()
            .iter()
            .map(|zone| (zone.id.clone(), zone.name.clone()))
            .collect();
        let origins = origins
            .into_iter()
            .map(|origin| (origin.to_owned(), origin_name(origin, geography.regions())))
            .collect();
        Self {
            tz: tz.to_owned(),
            zones,
            origins,
        }
    }

    /// A zone's display name (its id when it has none).
    #[must_use]
    pub fn zone<'a>(&'a self, zone: &'a str) -> &'a str {
        self.zones.get(zone).map_or(zone, String::as_str)
    }

    /// An origin's display name (the origin when it has none).
    #[must_use]
    pub fn origin<'a>(&'a self, origin: &'a str) -> &'a str {
        self.origins.get(origin).map_or(origin, String::as_str)
    }
}

/// An origin in words: a region's name, a country's name, or what the method's own
/// origins mean.
fn origin_name(origin: &str, regions: &Regions) -> String {
    let region = |id: &str| {
        regions
            .index_of(id)
            .map_or_else(|| id.to_owned(), |index| regions.name(index).to_owned())
    };
    match origin {
        "*" => "all origins".to_owned(),
        "unknown" => "unknown origin".to_owned(),
        "other" => "other places".to_owned(),
        "other:abroad" => "other countries".to_owned(),
        _ => {
            if let Some(code) = origin.strip_prefix("country:") {
                country_name(code).map_or_else(|| format!("country {code}"), str::to_owned)
            } else if let Some(id) = origin.strip_prefix("other:") {
                format!("other places in {}", region(id))
            } else {
                region(origin)
            }
        }
    }
}

/// English names of the countries whose roamers a European city most often sees.
const COUNTRIES: [(&str, &str); 56] = [
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AL", "Albania"),
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BA", "Bosnia and Herzegovina"),
    ("BE", "Belgium"),
    ("BG", "Bulgaria"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CL", "Chile"),
    ("CN", "China"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("EE", "Estonia"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("GR", "Greece"),
    ("HR", "Croatia"),
    ("HU", "Hungary"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IN", "India"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("KR", "South Korea"),
    ("LI", "Liechtenstein"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MT", "Malta"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("SE", "Sweden"),
    ("SI", "Slovenia"),
    ("SK", "Slovakia"),
    ("TN", "Tunisia"),
    ("TR", "Türkiye"),
    ("UA", "Ukraine"),
    ("US", "United States"),
    ("ZA", "South Africa"),
];

/// A country's English name by its ISO 3166 alpha-2 code, for the common ones.
fn country_name(code: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(code))
        .map(|&(_, name)| name)
}

/// The instant (epoch seconds) of a bucket start written `YYYY-MM-DDTHH:MM:SS±HH:MM`.
pub(crate) fn bucket_instant(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 25 || bytes[10] != b'T' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let sign = match bytes[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = sign * (number(20..22)? * 3600 + number(23..25)? * 60);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = of_era * 365 + of_era / 4 - of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::{bucket_instant, country_name};

    #[test]
    fn bucket_starts_are_read_as_instants() {
        assert_eq!(bucket_instant("1970-01-01T00:00:00+00:00"), Some(0));
        // Midnight in Brussels in summer is 22:00 UTC the day before.
        assert_eq!(
            bucket_instant("2026-07-01T00:00:00+02:00"),
            Some(1_782_856_800)
        );
        assert_eq!(
            bucket_instant("2026-10-25T00:00:00+02:00"),
            Some(1_792_879_200)
        );
        assert_eq!(
            bucket_instant("2024-02-29T12:30:15-05:30"),
            Some(1_709_229_615)
        );
        assert_eq!(bucket_instant("2026-07-01 00:00:00+02:00"), None);
        assert_eq!(bucket_instant("2026-07-01T00:00:00"), None);
    }

    #[test]
    fn countries_are_named_in_either_case() {
        assert_eq!(country_name("FR"), Some("France"));
        assert_eq!(country_name("nl"), Some("Netherlands"));
        assert_eq!(country_name("XX"), None);
    }
}
