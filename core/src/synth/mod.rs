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

mod people;
mod rng;
mod world;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::aggregate::ReleaseClass;
use crate::calendar::Calendar as LocalCalendar;
use crate::config::{Config, Period};
use crate::error::{Error, Result};
use crate::geo::{Geography, UNKNOWN_REGION};
use crate::ingest::{LocatedPings, NO_COUNTRY};
use crate::profile::{DeviceClass, origin_name, profile};
use crate::pseudonym::Key;

use people::{Calendar, Person, Place};
pub use people::{Role, roamers_at_full_scale, role_chances};
use rng::Rng;
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

    /// The raw id of person `i` as the operator would have it.
    #[must_use]
    pub fn subscriber_id(&self, i: usize) -> String {
        format!("2060100{i:08}")
    }

    fn subscriber_number(i: usize) -> u64 {
        206_010_000_000_000 + i as u64
    }

    /// The schema of ping batches.
    #[must_use]
    pub fn pings_schema(&self) -> Arc<Schema> {
        let subscriber = if self.config.integer_ids {
            DataType::UInt64
        } else {
            DataType::Utf8
        };
        let mut fields = vec![
            Field::new("subscriber", subscriber, true),
            Field::new("ts", DataType::Int64, false),
        ];
        if self.config.cells {
            fields.push(Field::new("cell", DataType::UInt64, true));
        } else {
            fields.push(Field::new("lat", DataType::Float64, true));
            fields.push(Field::new("lon", DataType::Float64, true));
        }
        fields.push(Field::new("country", DataType::Utf8, true));
        Arc::new(Schema::new(fields))
    }

    fn slots(&self) -> u32 {
        (i64::from(self.config.days) * 86_400 / self.config.ping_interval) as u32
    }

    /// The true place of person `i` in slot `k` (from the person's own random stream).
    fn true_place(&self, i: usize, k: u32, rng: &mut Rng) -> Option<Place> {
        let hour = (i64::from(k) * self.config.ping_interval / 3_600) as u32;
        self.people[i].place_at(hour, &self.calendar, &self.world, rng)
    }

    /// The observed pings of people `from..to`, as one batch.
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled.
    pub fn pings_of(&self, from: usize, to: usize) -> Result<RecordBatch> {
        let c = &self.config;
        let to = to.min(self.people.len());
        // Reserve for every slot of every customer, so the columns never move.
        let customers = self.people[from.min(to)..to]
            .iter()
            .filter(|p| p.customer)
            .count();
        let mut rows = Rows::with_capacity(customers * self.slots() as usize, c.cells);
        // People are generated into a small scratch that is shuffled and appended to the
        // batch whenever it holds a window's worth of rows, so that the random accesses
        // of the shuffle stay in the CPU caches and nothing large is written twice.
        let mut scratch = Rows::with_capacity(2 * SHUFFLE_WINDOW, c.cells);
        let mut order: Vec<u32> = Vec::with_capacity(2 * SHUFFLE_WINDOW);
        let mut shuffle_rng = Rng::stream(c.seed, 4, from as u64);
        let metres_per_degree = 111_320.0;
        // One uniform draw decides whether a ping is missing and, if not, its defect: the
        // dirty-row rates are disjoint slices of the rest of the unit interval, so each
        // dirty row has exactly one defect and every rate holds among emitted pings.
        let kept = 1.0 - c.missing_rate;
        let outside_until = c.outside_period_rate;
        let null_until = outside_until + c.null_subscriber_rate;
        let bad_until = null_until + c.bad_position_rate;
        let duplicate_until = bad_until + c.duplicate_rate;
        for i in from..to {
            let person = &self.people[i];
            if !person.customer {
                continue;
            }
            let lon_scale = metres_per_degree * person.home.lat.to_radians().cos();
            for k in 0..self.slots() {
                let mut rng = Rng::stream(c.seed, i as u64 + 10, u64::from(k));
                let Some(place) = self.true_place(i, k, &mut rng) else {
                    continue;
                };
                let draw = rng.uniform();
                if draw < c.missing_rate {
                    continue;
                }
                let defect = (draw - c.missing_rate) / kept;
                let shift = if c.jitter > 0 {
                    rng.below(2 * c.jitter as u64 + 1) as i64 - c.jitter
                } else {
                    0
                };
                let mut ts = self.start_instant
                    + i64::from(k) * c.ping_interval
                    + c.ping_interval / 2
                    + shift;
                if defect < outside_until {
                    ts -= i64::from(c.days) * 86_400 + 86_400;
                }
                let null_subscriber = (outside_until..null_until).contains(&defect);
                let bad_position = (null_until..bad_until).contains(&defect);
                let copies = if (bad_until..duplicate_until).contains(&defect) {
                    2
                } else {
                    1
                };
                let person_number = if null_subscriber {
                    i as u32 | NULL_SUBSCRIBER
                } else {
                    i as u32
                };
                for _ in 0..copies {
                    scratch.person.push(person_number);
                    scratch.ts.push(ts);
                    if c.cells {
                        // H3 index 0 is no cell: it stands for null.
                        scratch.cell.push(if bad_position {
                            0
                        } else {
                            u64::from(place.cell)
                        });
                    } else if bad_position {
                        scratch
                            .lat
                            .push(if defect < f64::midpoint(null_until, bad_until) {
                                f64::NAN
                            } else {
                                123.0
                            });
                        scratch.lon.push(place.lon);
                    } else {
                        scratch.lat.push(
                            place.lat + rng.quick_normal() * c.position_error_m / metres_per_degree,
                        );
                        scratch
                            .lon
                            .push(place.lon + rng.quick_normal() * c.position_error_m / lon_scale);
                    }
                }
            }
            if scratch.len() >= SHUFFLE_WINDOW {
                scratch.flush_into(&mut rows, &mut order, c.shuffle.then_some(&mut shuffle_rng));
            }
        }
        scratch.flush_into(&mut rows, &mut order, c.shuffle.then_some(&mut shuffle_rng));
        self.assemble(from, rows)
    }

    /// The batch from rows in output order: every column is one sequential pass.
    fn assemble(&self, from: usize, mut rows: Rows) -> Result<RecordBatch> {
        let persons = std::mem::take(&mut rows.person);
        let person = |number: u32| {
            (
                (number & !NULL_SUBSCRIBER) as usize,
                number & NULL_SUBSCRIBER != 0,
            )
        };
        // One past the last person with a row.
        let end = persons
            .iter()
            .map(|&number| person(number).0 + 1)
            .max()
            .unwrap_or(from);
        let subscriber: ArrayRef = if self.config.integer_ids {
            Arc::new(
                persons
                    .iter()
                    .map(|&number| {
                        let (p, null) = person(number);
                        (!null).then(|| Self::subscriber_number(p))
                    })
                    .collect::<UInt64Array>(),
            )
        } else {
            // Each person's id is formatted once per batch, not once per ping.
            let ids: Vec<String> = (from..end).map(|i| self.subscriber_id(i)).collect();
            let mut builder = StringBuilder::with_capacity(persons.len(), persons.len() * 15);
            for &number in &persons {
                match person(number) {
                    (_, true) => builder.append_null(),
                    (p, false) => builder.append_value(&ids[p - from]),
                }
            }
            Arc::new(builder.finish())
        };
        let ts: ArrayRef = Arc::new(Int64Array::from(rows.ts));
        let mut columns = vec![subscriber, ts];
        if self.config.cells {
            columns.push(Arc::new(
                rows.cell
                    .iter()
                    .map(|&cell| Some(cell).filter(|&c| c != 0))
                    .collect::<UInt64Array>(),
            ));
        } else {
            columns.push(Arc::new(Float64Array::from(rows.lat)));
            columns.push(Arc::new(Float64Array::from(rows.lon)));
        }
        let codes: Vec<&str> = self.people[from.min(end)..end]
            .iter()
            .map(|p| p.country.unwrap_or("BE"))
            .collect();
        let mut country = StringBuilder::with_capacity(persons.len(), 2 * persons.len());
        for &number in &persons {
            country.append_value(codes[person(number).0 - from]);
        }
        columns.push(Arc::new(country.finish()));
        Ok(RecordBatch::try_new(self.pings_schema(), columns)?)
    }

    /// The observed pings in batches of `people_per_batch` people, as an Arrow batch
    /// stream that [`prepare`](crate::prepare) and [`analyze`](crate::analyze) take as
    /// it is.
    pub fn batches(
        &self,
        people_per_batch: usize,
    ) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + '_ {
        let step = people_per_batch.max(1);
        (0..self.people.len().div_ceil(step)).map(move |b| {
            self.pings_of(b * step, (b + 1) * step)
                .map_err(|error| match error {
                    Error::Arrow(arrow) => arrow,
                    other => ArrowError::ExternalError(Box::new(other)),
                })
        })
    }

    /// The true trajectories of people `from..to` as located pings (device = person
    /// number), one exact position per slot, nothing missing.
    fn true_pings(&self, from: usize, to: usize) -> LocatedPings {
        let countries = vec![String::new(), "DE".into(), "FR".into(), "NL".into()];
        let number_of = |code: Option<&str>| match code {
            Some("DE") => 1,
            Some("FR") => 2,
            Some("NL") => 3,
            _ => NO_COUNTRY,
        };
        let geography = &self.world.geography;
        let mut pings = LocatedPings::with_capacity(0, countries);
        let mut devices = Vec::new();
        let mut offsets = vec![0];
        for i in from..to.min(self.people.len()) {
            let country = number_of(self.people[i].country);
            let mut any = false;
            for k in 0..self.slots() {
                let mut rng = Rng::stream(self.config.seed, i as u64 + 10, u64::from(k));
                if let Some(place) = self.true_place(i, k, &mut rng) {
                    let ts = self.start_instant
                        + i64::from(k) * self.config.ping_interval
                        + self.config.ping_interval / 2;
                    let at = (
                        geography.leaf_of(place.cell),
                        geography.zone_set_of(place.cell),
                    );
                    pings.push(i as u64, ts, u64::from(place.cell), at, country);
                    any = true;
                }
            }
            if any {
                devices.push(i as u64);
                offsets.push(pings.len());
            }
        }
        pings.set_devices(devices, offsets);
        pings.period = Some(self.period);
        pings
    }

    /// The truth: one row per person (`persons`) and one per person, zone and local date
    /// of a true visit (`zone_days`).
    ///
    /// # Errors
    /// An Arrow error if a table cannot be assembled.
    pub fn truth(&self) -> Result<Truth> {
        let config = self.run_config();
        let local = LocalCalendar::new(&self.config.tz)?;
        let geography = &self.world.geography;
        let regions = geography.regions();
        let zones = geography.zones();
        let mut persons = TruthPersons::default();
        let mut zone_days = (
            Vec::new(),
            StringDictionaryBuilder::<UInt32Type>::new(),
            StringBuilder::new(),
        );
        for from in (0..self.people.len()).step_by(2_000) {
            let to = (from + 2_000).min(self.people.len());
            let pings = self.true_pings(from, to);
            let profiles = profile(&pings, geography, &config)?;
            let d = &profiles.devices;
            let mut row = 0;
            for i in from..to {
                let person = &self.people[i];
                let seen = d.device.get(row) == Some(&(i as u64));
                let (class, origin, home) = if seen {
                    let origin = origin_name(d.origin(row), &pings, geography);
                    let home =
                        (d.home[row] != UNKNOWN_REGION).then(|| regions.id(d.home[row]).to_owned());
                    (Some(d.class[row].name()), Some(origin), home)
                } else {
                    (None, None, None)
                };
                if seen {
                    row += 1;
                }
                persons.push(self, i, person, class, origin, home);
            }
            let v = &profiles.visits;
            for j in 0..v.len() {
                let person = d.device[v.device[j] as usize] as u32;
                let (start, end) = (v.start[j], v.end[j]);
                let mut date = local.date_of(start);
                loop {
                    zone_days.0.push(person);
                    zone_days.1.append_value(&zones[v.zone[j] as usize].id);
                    zone_days.2.append_value(date.to_string());
                    let Ok(next) = date.tomorrow() else { break };
                    if local.start_of(next) >= end {
                        break;
                    }
                    date = next;
                }
            }
        }
        let zone_days_schema = Arc::new(Schema::new(vec![
            Field::new("person", DataType::UInt32, false),
            Field::new(
                "zone",
                DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("date", DataType::Utf8, false),
        ]));
        let zone_days = RecordBatch::try_new(
            zone_days_schema,
            vec![
                Arc::new(UInt32Array::from(zone_days.0)),
                Arc::new(zone_days.1.finish()),
                Arc::new(zone_days.2.finish()),
            ],
        )?;
        Ok(Truth {
            persons: persons.finish(self.config.integer_ids)?,
            zone_days,
        })
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

/// Rows shuffled together: unsorted in time and by subscriber, as real feeds are (several
/// people's weeks), while the shuffle stays in the CPU caches.
const SHUFFLE_WINDOW: usize = 1 << 12;

/// The flag, on a row's person number, of a ping whose subscriber is null.
const NULL_SUBSCRIBER: u32 = 1 << 31;

/// Pings under construction, before shuffling: only the position columns the scenario
/// writes are filled.
struct Rows {
    /// Person number, with [`NULL_SUBSCRIBER`] set for a null subscriber.
    person: Vec<u32>,
    ts: Vec<i64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    /// Cells, 0 for a bad position.
    cell: Vec<u64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.ts.len()
    }

    /// Appends these rows to `out`, shuffled when a generator is given, and empties them.
    fn flush_into(&mut self, out: &mut Self, order: &mut Vec<u32>, shuffle: Option<&mut Rng>) {
        order.clear();
        order.extend(0..self.len() as u32);
        if let Some(rng) = shuffle {
            for j in (1..order.len()).rev() {
                order.swap(j, rng.below(j as u64 + 1) as usize);
            }
        }
        let at = |r: &u32| *r as usize;
        out.person.extend(order.iter().map(|r| self.person[at(r)]));
        out.ts.extend(order.iter().map(|r| self.ts[at(r)]));
        if self.cell.is_empty() {
            out.lat.extend(order.iter().map(|r| self.lat[at(r)]));
            out.lon.extend(order.iter().map(|r| self.lon[at(r)]));
        } else {
            out.cell.extend(order.iter().map(|r| self.cell[at(r)]));
        }
        self.person.clear();
        self.ts.clear();
        self.cell.clear();
        self.lat.clear();
        self.lon.clear();
    }

    fn with_capacity(capacity: usize, cells: bool) -> Self {
        let (cell_capacity, degree_capacity) = if cells { (capacity, 0) } else { (0, capacity) };
        Self {
            person: Vec::with_capacity(capacity),
            ts: Vec::with_capacity(capacity),
            lat: Vec::with_capacity(degree_capacity),
            lon: Vec::with_capacity(degree_capacity),
            cell: Vec::with_capacity(cell_capacity),
        }
    }
}

/// The ground truth of a scenario.
#[derive(Clone, Debug)]
pub struct Truth {
    /// One row per person: `person`, `subscriber`, `customer`, `role`, `class` (the
    /// method on the true trajectory; null for a roamer never in the country), `origin`,
    /// `home`, `municipality` (where the person really lives) and `country`.
    pub persons: RecordBatch,
    /// One row per person, zone and local date with a true visit: `person`, `zone`,
    /// `date` (`YYYY-MM-DD`).
    pub zone_days: RecordBatch,
}

impl Truth {
    /// The true number of distinct people (customers or not) of the given classes who
    /// visited each zone during the period, by zone id and origin (a leaf id,
    /// `country:XX` or `unknown`; origin `*` is the zone's total): what a release of the
    /// period at the leaf level estimates.
    #[must_use]
    pub fn visitors(&self, classes: &[ReleaseClass]) -> BTreeMap<(String, String), u64> {
        let persons = &self.persons;
        let class = persons.column(4).as_string::<i32>();
        let origin = persons.column(5).as_string::<i32>();
        let counted = |person: usize| {
            class.is_valid(person)
                && classes.iter().any(|c| {
                    DeviceClass::ALL
                        .iter()
                        .any(|d| d.name() == class.value(person) && c.contains(*d))
                })
        };
        let person = self.zone_days.column(0).as_primitive::<UInt32Type>();
        let zone = self.zone_days.column(1).as_dictionary::<UInt32Type>();
        let zone_names = zone.values().as_string::<i32>();
        let mut pairs: Vec<(u32, u32)> = (0..self.zone_days.num_rows())
            .map(|row| (zone.keys().value(row), person.value(row)))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut visitors = BTreeMap::new();
        for (zone_key, p) in pairs {
            let p = p as usize;
            if !counted(p) {
                continue;
            }
            let zone_id = zone_names.value(zone_key as usize).to_owned();
            for key in [origin.value(p), "*"] {
                *visitors
                    .entry((zone_id.clone(), key.to_owned()))
                    .or_default() += 1;
            }
        }
        visitors
    }
}

#[derive(Default)]
struct TruthPersons {
    person: Vec<u32>,
    subscriber: Vec<String>,
    customer: Vec<bool>,
    role: Vec<&'static str>,
    class: Vec<Option<&'static str>>,
    origin: Vec<Option<String>>,
    home: Vec<Option<String>>,
    municipality: Vec<Option<String>>,
    country: Vec<Option<&'static str>>,
}

impl TruthPersons {
    fn push(
        &mut self,
        scenario: &Scenario,
        i: usize,
        person: &Person,
        class: Option<&'static str>,
        origin: Option<String>,
        home: Option<String>,
    ) {
        self.person.push(i as u32);
        self.subscriber.push(scenario.subscriber_id(i));
        self.customer.push(person.customer);
        self.role.push(person.role.name());
        self.class.push(class);
        self.origin.push(origin);
        self.home.push(home);
        self.municipality.push(
            person
                .municipality
                .map(|m| scenario.world.municipalities[m as usize].id.clone()),
        );
        self.country.push(person.country);
    }

    fn finish(self, integer_ids: bool) -> Result<RecordBatch> {
        let subscriber: ArrayRef = if integer_ids {
            Arc::new(
                self.person
                    .iter()
                    .map(|&p| Scenario::subscriber_number(p as usize))
                    .collect::<UInt64Array>(),
            )
        } else {
            Arc::new(StringArray::from(self.subscriber))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("person", DataType::UInt32, false),
            Field::new("subscriber", subscriber.data_type().clone(), false),
            Field::new("customer", DataType::Boolean, false),
            Field::new("role", DataType::Utf8, false),
            Field::new("class", DataType::Utf8, true),
            Field::new("origin", DataType::Utf8, true),
            Field::new("home", DataType::Utf8, true),
            Field::new("municipality", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
        ]));
        Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt32Array::from(self.person)),
                subscriber,
                Arc::new(BooleanArray::from(self.customer)),
                Arc::new(StringArray::from(self.role)),
                Arc::new(StringArray::from(self.class)),
                Arc::new(StringArray::from(self.origin)),
                Arc::new(StringArray::from(self.home)),
                Arc::new(StringArray::from(self.municipality)),
                Arc::new(StringArray::from(self.country)),
            ],
        )?)
    }
}
