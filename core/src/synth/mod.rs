//! Synthetic city scenarios with ground truth.
//!
//! Nobody may share real subscriber pings, so the method is tested, demonstrated and
//! measured on a simulated population whose truth is known: a country of municipalities
//! around a study city near a border, zones of interest in the city, and people with
//! daily routines (residents, students, commuters, day visitors, tourists, roamers and
//! everybody else), of whom only the operator's customers produce pings, about hourly,
//! with jitter, missing pings, position noise and dirty rows.
//!
//! Everything is deterministic per seed, and each person's hours come from their own
//! random stream, so pings stream out in batches of people (10^8 and more without holding
//! them) and any batch can be generated alone.
//!
//! The truth of every person, customer or not, is the method (§4–5) applied to their
//! true trajectory: one exact position per hour, nothing missing, no noise.

mod payments;
mod people;
mod pings;
mod rng;
mod truth;
mod world;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar as LocalCalendar;
use crate::config::{Config, Period};
use crate::error::{Error, Result};
use crate::geo::Geography;
use crate::pseudonym::Key;

pub use payments::{SHOP_CATEGORIES, SyntheticPayments};
use people::{Calendar, Person};
pub use people::{Role, roamers_at_full_scale, role_chances};
pub(crate) use rng::Rng;
pub use truth::Truth;
pub use world::World;

/// The parameters of a scenario, with defaults for the `kortrijk` preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ScenarioConfig {
    /// The preset (only `kortrijk` so far).
    pub preset: String,
    /// Share of the full-scale population simulated (1.0: about 1.4 million people in the
    /// country plus roamers).
    pub scale: f64,
    /// Days in the period.
    pub days: u16,
    /// The first local date.
    pub start: Date,
    /// The seed of every random draw.
    pub seed: u64,
    /// Municipalities in the country, the study city included.
    pub municipalities: usize,
    /// The operator's share among inbound roamers.
    pub roaming_share: f64,
    /// Seconds between pings (a ping's slot).
    pub ping_interval: i64,
    /// Largest shift of a ping from the middle of its slot, in seconds.
    pub jitter: i64,
    /// Share of pings that never arrive.
    pub missing_rate: f64,
    /// Standard deviation of the position error, in metres.
    pub position_error_m: f64,
    /// Share of rows with a null subscriber.
    pub null_subscriber_rate: f64,
    /// Share of rows with an unusable position.
    pub bad_position_rate: f64,
    /// Share of rows sent twice.
    pub duplicate_rate: f64,
    /// Share of rows stamped before the period.
    pub outside_period_rate: f64,
    /// Shuffle the rows of each batch, within windows of 65,536 rows (real feeds are
    /// not sorted).
    pub shuffle: bool,
    /// Subscriber ids as 64-bit integers instead of IMSI-like strings.
    pub integer_ids: bool,
    /// Positions as H3 cells (resolution 9, no noise) instead of noisy lat/lon.
    pub cells: bool,
    /// The IANA time zone.
    pub tz: String,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            preset: "kortrijk".into(),
            scale: 0.001,
            days: 92,
            start: jiff::civil::date(2026, 7, 1),
            seed: 0,
            municipalities: 60,
            roaming_share: 0.3,
            ping_interval: 3_600,
            jitter: 900,
            missing_rate: 0.1,
            position_error_m: 150.0,
            null_subscriber_rate: 0.002,
            bad_position_rate: 0.003,
            duplicate_rate: 0.002,
            outside_period_rate: 0.001,
            shuffle: true,
            integer_ids: false,
            cells: false,
            tz: "Europe/Brussels".into(),
        }
    }
}

impl ScenarioConfig {
    fn validate(&self) -> Result<()> {
        if self.preset != "kortrijk" {
            return Err(Error::config(
                "preset",
                format!("is unknown: {:?} (known: \"kortrijk\")", self.preset),
            ));
        }
        if !(self.scale > 0.0 && self.scale <= 10.0) {
            return Err(Error::config(
                "scale",
                format!("must be in (0, 10], got {}", self.scale),
            ));
        }
        if self.days == 0 {
            return Err(Error::config("days", "must be at least 1"));
        }
        if self.ping_interval <= 0 || self.jitter < 0 || 2 * self.jitter > self.ping_interval {
            return Err(Error::config(
                "jitter",
                "ping_interval must be positive and jitter from 0 to half of it",
            ));
        }
        for (field, rate) in [
            ("roaming_share", self.roaming_share),
            ("missing_rate", self.missing_rate),
            ("null_subscriber_rate", self.null_subscriber_rate),
            ("bad_position_rate", self.bad_position_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("outside_period_rate", self.outside_period_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::config(
                    field,
                    format!("must be a share from 0 to 1, got {rate}"),
                ));
            }
        }
        let dirty = self.outside_period_rate
            + self.null_subscriber_rate
            + self.bad_position_rate
            + self.duplicate_rate;
        if dirty > 1.0 {
            return Err(Error::config(
                "duplicate_rate",
                format!(
                    "with outside_period_rate, null_subscriber_rate and bad_position_rate \
                     must not exceed 1 in total (each dirty row has one defect), got {dirty}"
                ),
            ));
        }
        if !(self.position_error_m >= 0.0 && self.position_error_m.is_finite()) {
            return Err(Error::config(
                "position_error_m",
                "must be a non-negative number of metres",
            ));
        }
        LocalCalendar::new(&self.tz)?;
        Ok(())
    }
}

/// A generated scenario: its country, its people and their pings and truth.
#[derive(Debug)]
pub struct Scenario {
    config: ScenarioConfig,
    world: World,
    people: Vec<Person>,
    calendar: Calendar,
    period: Period,
    start_instant: i64,
    /// The world's geography with the simulated people as its populations.
    geography: Geography,
}

impl Scenario {
    /// Generates the country and the people (not yet their pings).
    ///
    /// # Errors
    /// [`Error::Config`] naming the parameter at fault.
    pub fn new(config: ScenarioConfig) -> Result<Self> {
        config.validate()?;
        let local = LocalCalendar::new(&config.tz)?;
        let end = config
            .start
            .checked_add(jiff::Span::new().days(i64::from(config.days)))
            .map_err(|_| Error::config("days", "takes the period past the calendar's end"))?;
        let period = Period::new(config.start, end)?;
        let mut rng = Rng::stream(config.seed, 0, 0);
        let world = World::build(config.municipalities, &mut rng)?;
        let first_weekday = config.start.weekday().to_monday_zero_offset() as u16;
        // The festival: the weekend after the middle of the period.
        let middle = config.days / 2;
        let saturday = (0..7)
            .map(|d| middle + d)
            .find(|&d| (first_weekday + d) % 7 == 5)
            .unwrap_or(middle);
        let festival = [saturday, saturday + 1]
            .into_iter()
            .filter(|&d| d < config.days)
            .collect();
        let calendar = Calendar {
            days: config.days,
            first_weekday,
            festival,
        };
        let people = Person::population(
            &world,
            &calendar,
            config.scale,
            config.roaming_share,
            config.seed,
        );
        let geography = census_geography(&world, &people)?;
        Ok(Self {
            start_instant: local.start_of(config.start),
            config,
            world,
            people,
            calendar,
            period,
            geography,
        })
    }

    /// The parameters.
    #[must_use]
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// The study geography.
    #[must_use]
    pub fn geography(&self) -> &Geography {
        &self.geography
    }

    /// The country: municipalities and geography tables.
    #[must_use]
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The number of simulated people (customers or not).
    #[must_use]
    pub fn people(&self) -> usize {
        self.people.len()
    }

    /// The study period.
    #[must_use]
    pub fn period(&self) -> Period {
        self.period
    }

    /// People in the country and roamers at full scale (`scale = 1`) for this period:
    /// `scale` times this is about the number of people simulated.
    #[must_use]
    pub fn people_at_full_scale(&self) -> f64 {
        let inhabitants: u64 = self.world.municipalities.iter().map(|m| m.population).sum();
        inhabitants as f64 + roamers_at_full_scale(self.config.days)
    }

    /// The expected number of distinct visitors (day visitors, tourists and roamers) at
    /// full scale for this period, from the role probabilities.
    #[must_use]
    pub fn visitors_at_full_scale(&self) -> f64 {
        let domestic: f64 = self.world.municipalities[1..]
            .iter()
            .map(|m| {
                let [_, _, day, tourist] = role_chances(m.distance_km, self.config.days);
                m.population as f64 * (day + tourist)
            })
            .sum();
        domestic + roamers_at_full_scale(self.config.days)
    }

    /// The festival days, as days from the start.
    #[must_use]
    pub fn festival_days(&self) -> &[u16] {
        &self.calendar.festival
    }

    /// A run configuration for this scenario: its period and zone, and a key derived
    /// from the seed (fine for synthetic data; use a real secret for real data).
    #[must_use]
    pub fn run_config(&self) -> Config {
        let mut rng = Rng::stream(self.config.seed, 3, 0);
        let key: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_be_bytes()).collect();
        let mut config = Config::new(Key::new(key));
        config.period = Some(self.period);
        config.tz.clone_from(&self.config.tz);
        config
    }

    /// The operator's customers per municipality where they live, as its billing counts
    /// them: the `subscribers` of a release, known without reading any ping (the
    /// differential-privacy mode needs them so, method §10).
    #[must_use]
    pub fn subscribers(&self) -> std::collections::BTreeMap<String, u64> {
        let mut counts = std::collections::BTreeMap::new();
        for person in self.people.iter().filter(|p| p.customer) {
            if let Some(m) = person.municipality {
                let id = &self.world.municipalities[m as usize].id;
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
        counts
    }

    /// The raw id of person `i` as the operator would have it.
    #[must_use]
    pub fn subscriber_id(&self, i: usize) -> String {
        format!("2060100{i:08}")
    }

    fn subscriber_number(i: usize) -> u64 {
        206_010_000_000_000 + i as u64
    }
}

/// The world's geography with each municipality's population replaced by the number of
/// people simulated there, so that extrapolation targets the simulated population (at
/// any scale) and its truth.
fn census_geography(world: &World, people: &[Person]) -> Result<Geography> {
    let mut inhabitants = vec![0_i64; world.municipalities.len()];
    for person in people {
        if let Some(m) = person.municipality {
            inhabitants[m as usize] += 1;
        }
    }
    let mut regions = world.regions.clone();
    for (m, municipality) in world.municipalities.iter().enumerate() {
        if let Some(row) = regions
            .region_id
            .iter()
            .position(|id| *id == municipality.id)
        {
            regions.population[row] = Some(inhabitants[m]);
        }
    }
    let geography = &world.geography;
    Geography::from_tables(
        &regions,
        &world.region_cells,
        &world.zones,
        &world.zone_cells,
        geography.resolution().into(),
        geography.study_area(),
    )
}
