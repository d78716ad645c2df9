//! Per-device analytics (method §4–5): each device's home, roamer country, presence days,
//! nights spent in the study area, class and origin, and its visits to every zone and
//! category with their start, end and dwell.
//!
//! One streaming pass over each device's time-sorted pings computes all of it: the
//! part of day of each ping comes from a precomputed list of local 06:00 / 22:00
//! boundaries, leaf counts are kept per part of day, and a visit run is kept open per
//! zone of the current ping's zone set, so overlapping zones and categories cost nothing
//! extra and the pings are never re-scanned. Devices are independent: any split of the
//! devices into shards gives the same rows.

mod tables;
mod visits;

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, DayPart, DayParts};
use crate::config::{Config, Period};
use crate::error::Result;
use crate::geo::{Geography, RegionIndex, UNKNOWN_REGION};
use crate::ingest::{LocatedPings, NO_COUNTRY};

pub use tables::origin_name;
pub use visits::Visits;

/// The class of a device over the period (§4): exactly one of four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// Home in the study area.
    Resident,
    /// Not resident, but the study area is in the usual environment (commuters,
    /// students): presence days at least `usual_env_min_days`.
    Regular,
    /// Any other device with at least one night spent in the study area (tourists).
    OvernightVisitor,
    /// Every other device (excursionists).
    DayVisitor,
}

impl DeviceClass {
    /// Every class, in the method's order.
    pub const ALL: [Self; 4] = [
        Self::Resident,
        Self::Regular,
        Self::OvernightVisitor,
        Self::DayVisitor,
    ];

    /// The class's name in the method and in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::Regular => "regular",
            Self::OvernightVisitor => "overnight_visitor",
            Self::DayVisitor => "day_visitor",
        }
    }

    /// Whether the class is one of the two visitor classes.
    #[must_use]
    pub fn is_visitor(self) -> bool {
        matches!(self, Self::OvernightVisitor | Self::DayVisitor)
    }
}

/// Where a device comes from (§4): its home leaf, its country for a roamer, or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The device's home leaf region.
    Leaf(RegionIndex),
    /// A roamer's country number (see [`LocatedPings::country_code`]).
    Country(u16),
    /// A domestic device without a home.
    Unknown,
}

/// One row per device, in increasing pseudonym.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Devices {
    /// Device pseudonyms.
    pub device: Vec<u64>,
    /// Home leaf, `None` when none (always for roamers).
    pub home: Vec<Option<RegionIndex>>,
    /// Nights of presence in the home leaf (0 without a home).
    pub home_nights: Vec<u32>,
    /// Most frequent non-empty country of the device's pings ([`LocatedPings::NO_COUNTRY`] if none).
    pub country: Vec<u16>,
    /// Whether the device is an inbound roamer.
    pub roamer: Vec<bool>,
    /// Local dates whose daytime is in the study area.
    pub presence_days: Vec<u32>,
    /// Nights spent in the study area.
    pub study_nights: Vec<u32>,
    /// The device's class.
    pub class: Vec<DeviceClass>,
}

impl Devices {
    /// The number of devices.
    #[must_use]
    pub fn len(&self) -> usize {
        self.device.len()
    }

    /// Whether there are no devices.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.device.is_empty()
    }

    /// The origin of device `i`.
    #[must_use]
    pub fn origin(&self, i: usize) -> Origin {
        if self.roamer[i] {
            Origin::Country(self.country[i])
        } else {
            self.home[i].map_or(Origin::Unknown, Origin::Leaf)
        }
    }
}

/// The per-device results of a run: devices and their visits.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    /// One row per device.
    pub devices: Devices,
    /// One row per visit, grouped by device (in the order of `devices`), then by start.
    pub visits: Visits,
    /// The period the devices were observed over (`None` without pings).
    pub period: Option<Period>,
    /// The usual-environment threshold in days that was applied.
    pub usual_env_min_days: i64,
}

/// Computes every device's home, class and origin, and its visits to every zone.
///
/// # Errors
/// [`Error::Config`](crate::Error::Config) for an invalid configuration.
///
/// # Example
/// ```
/// # use crowdtally::doc_example::{geography, pings};
/// use crowdtally::{Config, DeviceClass, Key, RunOptions, Study};
/// use crowdtally::profile::profile;
///
/// let config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
/// let study = Study::new(geography(), config.clone())?;
/// let prepared = study.prepare([Ok(pings())], &RunOptions::default())?;
/// let profiles = profile(prepared.pings(), study.geography(), &config)?;
/// // Two daytime pings in the study area and no night: a day visitor, with one visit
/// // to the zone and one to its category.
/// assert_eq!(profiles.devices.class, vec![DeviceClass::DayVisitor]);
/// assert_eq!(profiles.visits.len(), 2);
/// assert_eq!(profiles.visits.dwell(0), 3600);
/// # Ok::<(), crowdtally::Error>(())
/// ```
pub fn profile(pings: &LocatedPings, geography: &Geography, config: &Config) -> Result<Profiles> {
    config.validate()?;
    let Some(period) = pings.period else {
        return Ok(Profiles::default());
    };
    let calendar = Calendar::new(&config.tz)?;
    let parts = DayParts::for_period(&calendar, period.start, period.end);
    let home_country = config.home_country_code();
    let usual_env_min_days = config.usual_env_min_days_for(period.days());
    let context = Context {
        pings,
        geography,
        parts: &parts,
        min_nights: config.min_nights,
        usual_env_min_days,
        max_gap: config.max_gap,
        home_country: &home_country,
    };
    let mut profiles = Profiles {
        period: Some(period),
        usual_env_min_days,
        ..Profiles::default()
    };
    profiles.visits.set_min_dwell(config.min_dwell);
    let mut scratch = Scratch::default();
    for i in 0..pings.devices().len() {
        context.device(i, &mut scratch, &mut profiles);
    }
    Ok(profiles)
}

struct Context<'a> {
    pings: &'a LocatedPings,
    geography: &'a Geography,
    parts: &'a DayParts,
    min_nights: u32,
    usual_env_min_days: i64,
    max_gap: i64,
    home_country: &'a str,
}

/// Per-device working memory, reused across devices.
#[derive(Default)]
struct Scratch {
    /// Pings per leaf in the current part of day.
    part_leaves: Vec<(RegionIndex, u32)>,
    /// Per leaf: nights of presence and night pings.
    night_leaves: Vec<(RegionIndex, u32, u32)>,
    /// Pings per country number.
    countries: Vec<(u16, u32)>,
    presence_days: u32,
    study_nights: u32,
    runs: visits::OpenRuns,
}

fn bump<K: PartialEq>(counts: &mut Vec<(K, u32)>, key: K) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, count)) => *count += 1,
        None => counts.push((key, 1)),
    }
}

impl Context<'_> {
    fn device(&self, index: usize, scratch: &mut Scratch, out: &mut Profiles) {
        let rows = self.pings.device_rows(index);
        let ts = &self.pings.ts()[rows.clone()];
        let leaves = &self.pings.leaf()[rows.clone()];
        let zone_sets = &self.pings.zone_set()[rows.clone()];
        let countries = &self.pings.country()[rows];
        scratch.night_leaves.clear();
        scratch.countries.clear();
        scratch.presence_days = 0;
        scratch.study_nights = 0;
        scratch.runs.clear();
        let device_index = out.devices.device.len() as u32;
        // Taken before the loop: runs that close inside it are this device's visits too and
        // must be sorted with those closed at its last ping.
        let first_visit = out.visits.len();

        let mut part = None;
        // The instants of `part`: pings are sorted by time, so a part is looked up only
        // when a ping leaves the last one.
        let mut part_instants = 0..0;
        let mut previous_ts = None;
        for (k, &t) in ts.iter().enumerate() {
            if !part_instants.contains(&t) {
                if let Some(done) = part {
                    self.close_part(done, scratch);
                }
                let (this_part, instants) = self.parts.part_span(t);
                part = Some(this_part);
                part_instants = instants;
            }
            if leaves[k] != UNKNOWN_REGION {
                bump(&mut scratch.part_leaves, leaves[k]);
            }
            if countries[k] != NO_COUNTRY {
                bump(&mut scratch.countries, countries[k]);
            }
            let zones = self.geography.zone_set(zone_sets[k]);
            scratch.runs.step(
                device_index,
                previous_ts,
                t,
                zones,
                self.max_gap,
                &mut out.visits,
            );
            previous_ts = Some(t);
        }
        if let Some(done) = part {
            self.close_part(done, scratch);
        }
        if let Some(last) = previous_ts {
            scratch.runs.finish(device_index, last, &mut out.visits);
        }
        out.visits.sort_from(first_visit);
        self.classify(index, scratch, &mut out.devices);
    }

    /// Ends a part of day: decides whether it was spent in the study area and records
    /// night presence per leaf.
    fn close_part(&self, part: DayPart, scratch: &mut Scratch) {
        let mut in_study = 0_u32;
        let mut most_elsewhere = 0_u32;
        for &(leaf, count) in &scratch.part_leaves {
            if self.geography.in_study_area(leaf) {
                in_study += count;
            } else {
                most_elsewhere = most_elsewhere.max(count);
            }
        }
        // A tie goes to the study area, so region numbering never decides.
        let spent_in_study_area = in_study >= 1 && in_study >= most_elsewhere;
        match part {
            DayPart::Day(_) => scratch.presence_days += u32::from(spent_in_study_area),
            DayPart::Night(_) => {
                scratch.study_nights += u32::from(spent_in_study_area);
                for &(leaf, count) in &scratch.part_leaves {
                    match scratch.night_leaves.iter_mut().find(|(l, _, _)| *l == leaf) {
                        Some((_, nights, pings)) => {
                            *nights += 1;
                            *pings += count;
                        }
                        None => scratch.night_leaves.push((leaf, 1, count)),
                    }
                }
            }
        }
        scratch.part_leaves.clear();
    }

    fn classify(&self, index: usize, scratch: &Scratch, devices: &mut Devices) {
        let regions = self.geography.regions();
        // Most nights, then most night pings, then the smaller region id.
        let best = scratch.night_leaves.iter().copied().min_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then_with(|| regions.id(a.0).as_bytes().cmp(regions.id(b.0).as_bytes()))
        });
        let (mut home, mut home_nights) = match best {
            Some((leaf, nights, _)) if nights >= self.min_nights => (leaf, nights),
            _ => (UNKNOWN_REGION, 0),
        };
        // Most frequent country; ties to the smaller code (numbers follow code order).
        let country = scratch
            .countries
            .iter()
            .copied()
            .min_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)))
            .map_or(NO_COUNTRY, |(c, _)| c);
        let roamer = self
            .pings
            .country_code(country)
            .is_some_and(|code| code != self.home_country);
        if roamer {
            home = UNKNOWN_REGION;
            home_nights = 0;
        }
        let class = if home != UNKNOWN_REGION && self.geography.in_study_area(home) {
            DeviceClass::Resident
        } else if i64::from(scratch.presence_days) >= self.usual_env_min_days {
            DeviceClass::Regular
        } else if scratch.study_nights >= 1 {
            DeviceClass::OvernightVisitor
        } else {
            DeviceClass::DayVisitor
        };
        devices.device.push(self.pings.devices()[index]);
        devices.home.push((home != UNKNOWN_REGION).then_some(home));
        devices.home_nights.push(home_nights);
        devices.country.push(country);
        devices.roamer.push(roamer);
        devices.presence_days.push(scratch.presence_days);
        devices.study_nights.push(scratch.study_nights);
        devices.class.push(class);
    }
}
