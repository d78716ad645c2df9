//! The synthetic population: who lives where, what they do, and where they are each hour.

use h3o::{CellIndex, LatLng};

use super::rng::Rng;
use super::world::{RESOLUTION, World};

/// What a person really is, by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Lives in the study city.
    Resident,
    /// Studies in the city on weekdays; some sleep in a student room Monday to Thursday.
    Student,
    /// Works in the city on weekdays.
    Commuter,
    /// Comes for a day, one or more times (shopping, market day, events).
    DayVisitor,
    /// Stays 1 to 4 nights in the hotel district.
    Tourist,
    /// A foreign SIM visiting for a day or a few nights; seen only while in the country.
    Roamer,
    /// Lives elsewhere in the country and never comes.
    Other,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 7] = [
        Self::Resident,
        Self::Student,
        Self::Commuter,
        Self::DayVisitor,
        Self::Tourist,
        Self::Roamer,
        Self::Other,
    ];

    /// The role's name in truth tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::Student => "student",
            Self::Commuter => "commuter",
            Self::DayVisitor => "day_visitor",
            Self::Tourist => "tourist",
            Self::Roamer => "roamer",
            Self::Other => "other",
        }
    }
}

/// A place with its cell and the centre's coordinates (cached: no geometry per ping).
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// The resolution-9 cell.
    pub cell: CellIndex,
    /// Latitude of the cell centre.
    pub lat: f64,
    /// Longitude of the cell centre.
    pub lon: f64,
}

impl Place {
    pub(crate) fn of(cell: CellIndex) -> Self {
        let centre = LatLng::from(cell);
        Self {
            cell,
            lat: centre.lat(),
            lon: centre.lng(),
        }
    }
}

/// One simulated person.
#[derive(Clone, Debug)]
pub struct Person {
    /// What the person is.
    pub role: Role,
    /// Home municipality index, `None` abroad.
    pub municipality: Option<u32>,
    /// SIM country for roamers.
    pub country: Option<&'static str>,
    /// Whether the person is the operator's customer (only customers produce pings).
    pub customer: bool,
    pub(crate) home: Place,
    pub(crate) work: Place,
    /// Student room (Monday to Thursday nights) or hotel (during a stay).
    pub(crate) room: Option<Place>,
    /// Days (from the period start) of day visits.
    pub(crate) visit_days: Vec<u16>,
    /// First day and number of nights of a stay.
    pub(crate) stay: Option<(u16, u16)>,
}

/// The calendar facts the routines depend on.
#[derive(Clone, Debug)]
pub struct Calendar {
    /// Number of days.
    pub days: u16,
    /// Weekday of day 0 (0 = Monday).
    pub first_weekday: u16,
    /// Festival days (from the period start).
    pub festival: Vec<u16>,
}

impl Calendar {
    fn weekday(&self, day: u16) -> u16 {
        (self.first_weekday + day) % 7
    }

    /// Relative attraction of a day for day visits: Saturdays, the Monday market and the
    /// festival weekend draw more people.
    fn weight(&self, day: u16) -> f64 {
        if self.festival.contains(&day) {
            6.0
        } else {
            match self.weekday(day) {
                5 => 3.0,
                0 => 2.0,
                6 => 1.5,
                _ => 1.0,
            }
        }
    }

    fn draw_day(&self, rng: &mut Rng) -> u16 {
        let total: f64 = (0..self.days).map(|d| self.weight(d)).sum();
        let mut target = rng.uniform() * total;
        for day in 0..self.days {
            target -= self.weight(day);
            if target < 0.0 {
                return day;
            }
        }
        self.days - 1
    }
}

fn random_cell_in(cells: &[CellIndex], rng: &mut Rng) -> CellIndex {
    let parent = cells[rng.below(cells.len() as u64) as usize];
    let children = parent.children_count(RESOLUTION);
    parent
        .child_at(rng.below(children), RESOLUTION)
        .unwrap_or_else(|| parent.center_child(RESOLUTION).unwrap_or(parent))
}

/// Role probabilities of an inhabitant of a municipality `distance_km` from the city,
/// over a period of `days` days: commuter, student, day visitor, tourist.
#[must_use]
pub fn role_chances(distance_km: f64, days: u16) -> [f64; 4] {
    let period = (f64::from(days) / 92.0).min(1.0);
    [
        0.20 * (-distance_km / 12.0).exp(),
        0.04 * (-distance_km / 15.0).exp(),
        0.95 * (-distance_km / 60.0).exp() * period,
        0.02 * period,
    ]
}

/// Roamers visiting in a period of `days` days, at full scale.
#[must_use]
pub fn roamers_at_full_scale(days: u16) -> f64 {
    700_000.0 * f64::from(days) / 92.0
}

impl Person {
    /// Draws the people of the scenario, in a fixed order: municipality by municipality,
    /// then the roamers.
    pub(crate) fn population(
        world: &World,
        calendar: &Calendar,
        scale: f64,
        roaming_share: f64,
        seed: u64,
    ) -> Vec<Self> {
        let mut rng = Rng::stream(seed, 1, 0);
        let city_cells = &world.municipalities[0].cells;
        let hotel = world
            .spots
            .iter()
            .find(|s| s.id == "hotel-district")
            .map(|s| s.cells.clone())
            .unwrap_or_default();
        let mut people = Vec::new();
        for (index, m) in world.municipalities.iter().enumerate() {
            let expected = m.population as f64 * scale;
            let count = expected.floor() as u64 + u64::from(rng.chance(expected.fract()));
            let chances = role_chances(m.distance_km, calendar.days);
            for _ in 0..count {
                let role = if index == 0 {
                    Role::Resident
                } else {
                    let draw = rng.uniform();
                    let mut edge = 0.0;
                    let roles = [
                        Role::Commuter,
                        Role::Student,
                        Role::DayVisitor,
                        Role::Tourist,
                    ];
                    roles
                        .iter()
                        .zip(chances)
                        .find(|(_, chance)| {
                            edge += chance;
                            draw < edge
                        })
                        .map_or(Role::Other, |(r, _)| *r)
                };
                let home = Place::of(random_cell_in(&m.cells, &mut rng));
                let works_in_city = match role {
                    Role::Resident => rng.chance(0.7),
                    Role::Commuter | Role::Student => true,
                    _ => false,
                };
                let work = Place::of(random_cell_in(
                    if works_in_city { city_cells } else { &m.cells },
                    &mut rng,
                ));
                let mut person = Self {
                    role,
                    municipality: Some(index as u32),
                    country: None,
                    customer: rng.chance(m.market_share),
                    home,
                    work,
                    room: None,
                    visit_days: Vec::new(),
                    stay: None,
                };
                person.plan(calendar, &hotel, city_cells, &mut rng);
                people.push(person);
            }
        }
        let roamers = roamers_at_full_scale(calendar.days) * scale;
        let count = roamers.floor() as u64 + u64::from(rng.chance(roamers.fract()));
        for _ in 0..count {
            let country = match rng.uniform() {
                u if u < 0.6 => "FR",
                u if u < 0.9 => "NL",
                _ => "DE",
            };
            let abroad = world.abroad[rng.below(world.abroad.len().max(1) as u64) as usize];
            let mut person = Self {
                role: Role::Roamer,
                municipality: None,
                country: Some(country),
                customer: rng.chance(roaming_share),
                home: Place::of(abroad.center_child(RESOLUTION).unwrap_or(abroad)),
                work: Place::of(abroad.center_child(RESOLUTION).unwrap_or(abroad)),
                room: None,
                visit_days: Vec::new(),
                stay: None,
            };
            person.plan(calendar, &hotel, city_cells, &mut rng);
            people.push(person);
        }
        people
    }

    /// Draws visit days, stays and rooms.
    fn plan(
        &mut self,
        calendar: &Calendar,
        hotel: &[CellIndex],
        city: &[CellIndex],
        rng: &mut Rng,
    ) {
        let overnight = match self.role {
            Role::Tourist => true,
            Role::Roamer => rng.chance(0.3),
            _ => false,
        };
        if overnight && calendar.days > 5 {
            let nights = 1 + rng.below(4) as u16;
            let first = rng.below(u64::from(calendar.days - nights)) as u16;
            self.stay = Some((first, nights));
            self.room = hotel
                .get(rng.below(hotel.len().max(1) as u64) as usize)
                .map(|&c| Place::of(c));
        } else if matches!(self.role, Role::DayVisitor | Role::Roamer) {
            // One visit, then more with probability 0.4 each.
            let mut days = vec![calendar.draw_day(rng)];
            while rng.chance(0.4) && days.len() < 10 {
                days.push(calendar.draw_day(rng));
            }
            days.sort_unstable();
            days.dedup();
            self.visit_days = days;
        } else if self.role == Role::Student && rng.chance(0.4) {
            self.room = Some(Place::of(random_cell_in(city, rng)));
        }
    }

    /// Where the person is during hour `hour` (from the period start), or `None` when a
    /// roamer is out of the country (and so invisible to the operator).
    pub(crate) fn place_at(
        &self,
        hour: u32,
        calendar: &Calendar,
        world: &World,
        rng: &mut Rng,
    ) -> Option<Place> {
        let day = (hour / 24) as u16;
        let hour_of_day = hour % 24;
        let weekday = calendar.weekday(day);
        let workday = weekday < 5;
        // Nights run 22:00 to 07:00; a night belongs to the day it starts on.
        let night_of = if hour_of_day < 7 {
            day.checked_sub(1)
        } else {
            Some(day)
        };
        let at_night = !(7..22).contains(&hour_of_day);
        let wander = |rng: &mut Rng| -> Place {
            let festival = calendar.festival.contains(&day);
            let spots = &world.spots;
            let spot = if festival && rng.chance(0.6) {
                spots
                    .iter()
                    .find(|s| s.id == "event-site")
                    .unwrap_or(&spots[0])
            } else {
                &spots[rng.below(spots.len() as u64) as usize]
            };
            spot.places[rng.below(spot.places.len() as u64) as usize]
        };
        if let Some((first, nights)) = self.stay {
            let arrive = u32::from(first) * 24 + 14;
            let leave = (u32::from(first) + u32::from(nights)) * 24 + 11;
            if (arrive..leave).contains(&hour) {
                return Some(if at_night {
                    self.room.unwrap_or(self.home)
                } else {
                    wander(rng)
                });
            }
            return (self.role != Role::Roamer).then_some(self.home);
        }
        match self.role {
            Role::Roamer => (self.visit_days.contains(&day) && (10..17).contains(&hour_of_day))
                .then(|| wander(rng)),
            Role::DayVisitor => Some(
                if self.visit_days.contains(&day) && (10..17).contains(&hour_of_day) {
                    wander(rng)
                } else {
                    self.home
                },
            ),
            Role::Student => {
                let room_night = night_of.is_some_and(|n| calendar.weekday(n) < 4);
                Some(match (at_night, self.room) {
                    (true, Some(room)) if room_night => room,
                    (true, _) => self.home,
                    (false, _) if workday && (9..16).contains(&hour_of_day) => self.work,
                    _ => self.room.filter(|_| workday).unwrap_or(self.home),
                })
            }
            Role::Resident | Role::Commuter | Role::Other => Some(if at_night {
                self.home
            } else if workday && (8..17).contains(&hour_of_day) {
                self.work
            } else if self.role == Role::Resident
                && weekday == 5
                && (14..17).contains(&hour_of_day)
                && rng.chance(0.5)
            {
                wander(rng)
            } else {
                self.home
            }),
            Role::Tourist => Some(self.home),
        }
    }
}
