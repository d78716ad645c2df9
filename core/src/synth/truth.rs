//! The ground truth of a scenario: every person's role, true class, origin and home, and
//! the (person, zone, date) of every true visit, against which releases are checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use super::Scenario;
use super::people::Person;
use super::rng::Rng;
use crate::aggregate::ReleaseClass;
use crate::calendar::Calendar as LocalCalendar;
use crate::error::Result;
use crate::ingest::{LocatedPings, NO_COUNTRY};
use crate::profile::{DeviceClass, origin_name, profile};

impl Scenario {
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
                    let home = d.home[row].map(|leaf| regions.id(leaf).to_owned());
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
