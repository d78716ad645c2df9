//! The observed pings of a scenario: each person's true places, slot by slot, as the
//! operator would see them (customers only, with jitter, gaps, noise and dirty rows),
//! shuffled within windows as real feeds are.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema};

use super::Scenario;
use super::people::Place;
use super::rng::Rng;
use crate::error::{Error, Result};

impl Scenario {
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

    pub(super) fn slots(&self) -> u32 {
        (i64::from(self.config.days) * 86_400 / self.config.ping_interval) as u32
    }

    /// The true place of person `i` in slot `k` (from the person's own random stream).
    pub(super) fn true_place(&self, i: usize, k: u32, rng: &mut Rng) -> Option<Place> {
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
    /// stream that [`Study::prepare`](crate::Study::prepare) and
    /// [`Study::release`](crate::Study::release) take as
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
