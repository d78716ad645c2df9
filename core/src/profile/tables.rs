//! The per-device results as Arrow tables: microdata, pseudonymous and never to be
//! published.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::types::UInt32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampSecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::{Origin, Profiles};
use crate::error::Result;
use crate::geo::Geography;
use crate::ingest::LocatedPings;

fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

fn utc_seconds() -> DataType {
    DataType::Timestamp(TimeUnit::Second, Some("UTC".into()))
}

/// The origin's name: a leaf id, `country:XX` or `unknown`.
#[must_use]
pub fn origin_name(origin: Origin, pings: &LocatedPings, geography: &Geography) -> String {
    match origin {
        Origin::Leaf(leaf) => geography.regions().id(leaf).to_owned(),
        Origin::Country(number) => format!("country:{}", pings.country_code(number).unwrap_or("")),
        Origin::Unknown => "unknown".to_owned(),
    }
}

impl Profiles {
    /// The schema of [`Profiles::devices_batch`].
    #[must_use]
    pub fn devices_schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("device", DataType::UInt64, false),
            Field::new("class", dictionary(), false),
            Field::new("origin", dictionary(), false),
            Field::new("home", dictionary(), true),
            Field::new("home_nights", DataType::UInt32, false),
            Field::new("presence_days", DataType::UInt32, false),
            Field::new("nights", DataType::UInt32, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("roamer", DataType::Boolean, false),
        ]))
    }

    /// One row per device: `device`, `class`, `origin`, `home` (leaf id or null),
    /// `home_nights`, `presence_days`, `nights` (spent in the study area), `country`
    /// (most frequent SIM country, or null) and `roamer`.
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can for profiles of
    /// these pings and geography).
    pub fn devices_batch(
        &self,
        pings: &LocatedPings,
        geography: &Geography,
    ) -> Result<RecordBatch> {
        let d = &self.devices;
        let mut class = StringDictionaryBuilder::<UInt32Type>::new();
        let mut origin = StringDictionaryBuilder::<UInt32Type>::new();
        let mut home = StringDictionaryBuilder::<UInt32Type>::new();
        let mut country = StringBuilder::new();
        for i in 0..d.len() {
            class.append_value(d.class[i].name());
            origin.append_value(origin_name(d.origin(i), pings, geography));
            match d.home[i] {
                None => home.append_null(),
                Some(leaf) => home.append_value(geography.regions().id(leaf)),
            }
            country.append_option(pings.country_code(d.country[i]));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(d.device.clone())),
            Arc::new(class.finish()),
            Arc::new(origin.finish()),
            Arc::new(home.finish()),
            Arc::new(UInt32Array::from(d.home_nights.clone())),
            Arc::new(UInt32Array::from(d.presence_days.clone())),
            Arc::new(UInt32Array::from(d.study_nights.clone())),
            Arc::new(country.finish()),
            Arc::new(BooleanArray::from(d.roamer.clone())),
        ];
        Ok(RecordBatch::try_new(Self::devices_schema(), columns)?)
    }

    /// The schema of [`Profiles::visits_batch`].
    #[must_use]
    pub fn visits_schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("device", DataType::UInt64, false),
            Field::new("zone", dictionary(), false),
            Field::new("start", utc_seconds(), false),
            Field::new("end", utc_seconds(), false),
            Field::new("dwell_s", DataType::Int64, false),
            Field::new("qualifies", DataType::Boolean, false),
        ]))
    }

    /// One row per visit: `device`, `zone` (zone id or `category:<name>`), `start`,
    /// `end`, `dwell_s` and `qualifies` (dwell ≥ `min_dwell`).
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled.
    pub fn visits_batch(&self, geography: &Geography) -> Result<RecordBatch> {
        let v = &self.visits;
        let zones = geography.zones();
        let mut zone = StringDictionaryBuilder::<UInt32Type>::new();
        for &z in &v.zone {
            zone.append_value(&zones[z as usize].id);
        }
        let device: UInt64Array = v
            .device
            .iter()
            .map(|&i| self.devices.device[i as usize])
            .collect();
        let dwell: Int64Array = (0..v.len()).map(|i| v.dwell(i)).collect();
        let qualifies: BooleanArray = (0..v.len()).map(|i| Some(v.qualifies(i))).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(device),
            Arc::new(zone.finish()),
            Arc::new(TimestampSecondArray::from(v.start.clone()).with_timezone("UTC")),
            Arc::new(TimestampSecondArray::from(v.end.clone()).with_timezone("UTC")),
            Arc::new(dwell),
            Arc::new(qualifies),
        ];
        Ok(RecordBatch::try_new(Self::visits_schema(), columns)?)
    }
}

impl Profiles {
    /// Shards' tables as one, ordered by device; each device's rows keep their order (they
    /// all come from one shard), as the sort is stable.
    pub(crate) fn by_device(schema: &Arc<Schema>, parts: &[RecordBatch]) -> Result<RecordBatch> {
        let all = arrow_select::concat::concat_batches(schema, parts)?;
        let device = all
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
        order.sort_by_key(|&row| device[row as usize]);
        let order = UInt32Array::from(order);
        let sorted = arrow_select::take::take_record_batch(&all, &order)?;
        // Concatenation appends the shards' dictionaries; one dictionary of distinct values
        // each, as a single shard would give.
        let columns = sorted
            .columns()
            .iter()
            .map(|column| match column.data_type() {
                dictionary @ DataType::Dictionary(_, _) => {
                    let plain = arrow_cast::cast(column, &DataType::Utf8)?;
                    arrow_cast::cast(&plain, dictionary)
                }
                _ => Ok(Arc::clone(column)),
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}
