//! Merchants in the city's zones and the card payments of the scenario's people, as a
//! card scheme delivers them (summed per merchant, day and cardholder origin), with the
//! true spend of every zone.
//!
//! Payments follow the true visits: a person who visited a zone on a day pays by card
//! there with a chance set by their role, once or twice, at merchants chosen with
//! weights by shop category (visitors favour horeca and retail), amounts drawn around a
//! category's typical basket and raised for tourists and foreign visitors. One
//! hypermarket in the ring shopping centre takes forty times a shop's baskets, so that the
//! p % rule has a dominant merchant to find.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use super::rng::Rng;
use super::{Scenario, Truth};
use crate::error::Result;

/// Shop categories (groups of merchant category codes).
pub const SHOP_CATEGORIES: [&str; 5] = ["retail", "horeca", "culture", "transport", "leisure"];

/// The merchants a zone of a category holds: (shop category, how many).
fn merchants_of(zone: &str, zone_category: &str) -> &'static [(&'static str, usize)] {
    if zone == "ring-shopping" {
        // A hypermarket (the first) and a few shops beside it.
        return &[("retail", 4), ("horeca", 3)];
    }
    match zone_category {
        "retail" => &[("retail", 14), ("horeca", 5)],
        "horeca" => &[("horeca", 12), ("retail", 3), ("leisure", 2)],
        "transport" => &[("transport", 2), ("horeca", 3), ("retail", 2)],
        "culture" => &[("culture", 1), ("horeca", 3), ("retail", 1)],
        _ => &[("leisure", 3), ("horeca", 6), ("retail", 1)],
    }
}

/// A typical card payment in a shop category, in cents.
fn basket(category: &str) -> f64 {
    match category {
        "retail" => 2_600.0,
        "horeca" => 1_800.0,
        "culture" => 1_200.0,
        "transport" => 700.0,
        _ => 2_000.0,
    }
}

/// One merchant of the synthetic city.
#[derive(Clone, Debug)]
struct Merchant {
    id: String,
    cell: u64,
    zone: usize,
    category: &'static str,
    /// How much larger its baskets are than the category's.
    size: f64,
}

/// The synthetic payments of a scenario.
#[derive(Clone, Debug)]
pub struct SyntheticPayments {
    /// One row per merchant: `merchant_id`, `merchant_cell`, `zone`, `category` (for
    /// the operator's eyes only: merchant ids are never published).
    pub merchants: RecordBatch,
    /// One row per merchant, local day and cardholder origin: `merchant_id`,
    /// `merchant_cell`, `category`, `day` (`YYYY-MM-DD`), `origin` (the cardholder's
    /// municipality id, `country:XX`, or null), `amount` (integer cents) and
    /// `transactions`.
    pub payments: RecordBatch,
    /// The true card spend (cents) of the period by zone id, category zones
    /// (`category:<name>`) included.
    pub spend_by_zone: BTreeMap<String, i64>,
}

impl Scenario {
    /// The scenario's merchants and the card payments of its people during the period,
    /// driven by their true visits (`truth` is [`Scenario::truth`]).
    ///
    /// # Errors
    /// An Arrow error if a table cannot be assembled.
    pub fn payments(&self, truth: &Truth) -> Result<SyntheticPayments> {
        let (merchants, of_zone) = self.merchants();
        let zone_of_id: BTreeMap<&str, usize> = self
            .world
            .spots
            .iter()
            .enumerate()
            .map(|(z, spot)| (spot.id, z))
            .collect();
        let persons = &truth.persons;
        let role = persons.column(3).as_string::<i32>();
        let municipality = persons.column(7).as_string::<i32>();
        let country = persons.column(8).as_string::<i32>();
        let person = truth.zone_days.column(0).as_primitive::<UInt32Type>();
        let zone = truth.zone_days.column(1).as_dictionary::<UInt32Type>();
        let zone_names = zone.values().as_string::<i32>();
        let date = truth.zone_days.column(2).as_string::<i32>();
        // (merchant, day, origin) → (cents, transactions)
        let mut sums: BTreeMap<(usize, String, Option<String>), (i64, i64)> = BTreeMap::new();
        // A person's day at a zone once, however many visits it held.
        let zone_days: std::collections::BTreeSet<(usize, usize, &str)> =
            (0..truth.zone_days.num_rows())
                .filter_map(|row| {
                    let z = zone_of_id.get(zone_names.value(zone.keys().value(row) as usize))?;
                    Some((person.value(row) as usize, *z, date.value(row)))
                })
                .collect();
        for (k, &(p, z, day)) in zone_days.iter().enumerate() {
            let mut rng = Rng::stream(self.config.seed, u64::MAX - 8, k as u64);
            let role = role.value(p);
            let visitor = matches!(role, "day_visitor" | "tourist" | "roamer");
            // People of the city and its regulars pay here on few of their many days.
            if !rng.chance(if visitor { 0.4 } else { 0.03 }) {
                continue;
            }
            let origin = if country.is_valid(p) {
                Some(format!("country:{}", country.value(p)))
            } else if municipality.is_valid(p) && !rng.chance(0.03) {
                Some(municipality.value(p).to_owned())
            } else {
                None
            };
            let spend_factor = match role {
                "roamer" => 1.3,
                "tourist" => 1.2,
                _ => 1.0,
            };
            for _ in 0..=rng.below(2) {
                let weights: Vec<f64> = of_zone[z]
                    .iter()
                    .map(|&m| match (merchants[m].category, visitor) {
                        ("horeca", true) => 2.0,
                        ("retail", true) => 1.5,
                        (_, true) | ("retail" | "horeca", false) => 1.0,
                        _ => 0.5,
                    })
                    .collect();
                let mut pick = rng.uniform() * weights.iter().sum::<f64>();
                let mut chosen = of_zone[z][0];
                for (&m, &w) in of_zone[z].iter().zip(&weights) {
                    chosen = m;
                    if pick < w {
                        break;
                    }
                    pick -= w;
                }
                let merchant = &merchants[chosen];
                let cents = (basket(merchant.category)
                    * merchant.size
                    * spend_factor
                    * (0.4 + 1.2 * rng.uniform()))
                .round() as i64;
                let sum = sums
                    .entry((chosen, day.to_owned(), origin.clone()))
                    .or_default();
                sum.0 += cents.max(1);
                sum.1 += 1;
            }
        }
        // Every zone holding the merchant's cell, as the spend table counts it.
        let geography = self.geography();
        let mut spend_by_zone: BTreeMap<String, i64> = BTreeMap::new();
        for (&(m, _, _), &(cents, _)) in &sums {
            let cell = h3o::CellIndex::try_from(merchants[m].cell).ok();
            let set = cell.map_or(0, |cell| geography.zone_set_of(cell));
            for &zone in geography.zone_set(set) {
                *spend_by_zone
                    .entry(geography.zones()[zone as usize].id.clone())
                    .or_default() += cents;
            }
        }
        let (merchants, payments) = self.tables(&merchants, &sums)?;
        Ok(SyntheticPayments {
            merchants,
            payments,
            spend_by_zone,
        })
    }

    /// The merchants of every zone, and each zone's merchant numbers.
    fn merchants(&self) -> (Vec<Merchant>, Vec<Vec<usize>>) {
        let mut rng = Rng::stream(self.config.seed, u64::MAX - 7, 0);
        let mut merchants = Vec::new();
        let mut of_zone: Vec<Vec<usize>> = vec![Vec::new(); self.world.spots.len()];
        for (z, spot) in self.world.spots.iter().enumerate() {
            for &(category, count) in merchants_of(spot.id, spot.category) {
                for k in 0..count {
                    let cell = spot.cells[rng.below(spot.cells.len() as u64) as usize];
                    let size = if spot.id == "ring-shopping" && category == "retail" && k == 0 {
                        40.0
                    } else {
                        0.6 + 0.8 * rng.uniform()
                    };
                    of_zone[z].push(merchants.len());
                    merchants.push(Merchant {
                        id: format!("{}-{category}-{k}", spot.id),
                        cell: u64::from(cell),
                        zone: z,
                        category,
                        size,
                    });
                }
            }
        }
        (merchants, of_zone)
    }

    /// The merchants' table and the payments' table.
    fn tables(
        &self,
        merchants: &[Merchant],
        sums: &BTreeMap<(usize, String, Option<String>), (i64, i64)>,
    ) -> Result<(RecordBatch, RecordBatch)> {
        let text =
            |values: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
        let payments = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("merchant_id", DataType::Utf8, false),
                Field::new("merchant_cell", DataType::UInt64, false),
                Field::new("category", DataType::Utf8, false),
                Field::new("day", DataType::Utf8, false),
                Field::new("origin", DataType::Utf8, true),
                Field::new("amount", DataType::Int64, false),
                Field::new("transactions", DataType::Int64, false),
            ])),
            vec![
                text(
                    sums.keys()
                        .map(|k| Some(merchants[k.0].id.clone()))
                        .collect(),
                ),
                Arc::new(
                    sums.keys()
                        .map(|k| merchants[k.0].cell)
                        .collect::<UInt64Array>(),
                ),
                text(
                    sums.keys()
                        .map(|k| Some(merchants[k.0].category.to_owned()))
                        .collect(),
                ),
                text(sums.keys().map(|k| Some(k.1.clone())).collect()),
                text(sums.keys().map(|k| k.2.clone()).collect()),
                Arc::new(sums.values().map(|v| v.0).collect::<Int64Array>()),
                Arc::new(sums.values().map(|v| v.1).collect::<Int64Array>()),
            ],
        )?;
        let merchant_table = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("merchant_id", DataType::Utf8, false),
                Field::new("merchant_cell", DataType::UInt64, false),
                Field::new("zone", DataType::Utf8, false),
                Field::new("category", DataType::Utf8, false),
            ])),
            vec![
                text(merchants.iter().map(|m| Some(m.id.clone())).collect()),
                Arc::new(merchants.iter().map(|m| m.cell).collect::<UInt64Array>()),
                text(
                    merchants
                        .iter()
                        .map(|m| Some(self.world.spots[m.zone].id.to_owned()))
                        .collect(),
                ),
                text(
                    merchants
                        .iter()
                        .map(|m| Some(m.category.to_owned()))
                        .collect(),
                ),
            ],
        )?;
        Ok((merchant_table, payments))
    }
}
