//! Located pings: the columnar output of ingestion that every later stage reads.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, RecordBatch, TimestampSecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::config::Period;
use crate::error::Result;
use crate::geo::{Geography, RegionIndex, UNKNOWN_REGION, ZoneSetIndex};

/// The country number of pings without a country.
pub(crate) const NO_COUNTRY: u16 = 0;

/// Cleaned, pseudonymized, located pings as columns, grouped by device (in increasing
/// pseudonym) and sorted by time within each device, with one ping per device and second.
#[derive(Clone, Debug, Default)]
pub struct LocatedPings {
    device: Vec<u64>,
    ts: Vec<i64>,
    cell: Vec<u64>,
    leaf: Vec<RegionIndex>,
    zone_set: Vec<ZoneSetIndex>,
    country: Vec<u16>,
    countries: Vec<String>,
    devices: Vec<u64>,
    device_offsets: Vec<usize>,
    /// The study period the pings were cut to (`None` when there was none to derive).
    pub period: Option<Period>,
    /// The pseudonym period label used.
    pub period_label: Option<String>,
}

impl LocatedPings {
    /// The country number of pings without a country (see [`LocatedPings::country`]).
    pub const NO_COUNTRY: u16 = NO_COUNTRY;

    pub(crate) fn empty(countries: Vec<String>) -> Self {
        Self {
            countries,
            device_offsets: vec![0],
            ..Self::default()
        }
    }

    pub(crate) fn with_capacity(capacity: usize, countries: Vec<String>) -> Self {
        Self {
            device: Vec::with_capacity(capacity),
            ts: Vec::with_capacity(capacity),
            cell: Vec::with_capacity(capacity),
            leaf: Vec::with_capacity(capacity),
            zone_set: Vec::with_capacity(capacity),
            country: Vec::with_capacity(capacity),
            countries,
            ..Self::default()
        }
    }

    pub(crate) fn push(
        &mut self,
        device: u64,
        ts: i64,
        cell: u64,
        (leaf, zone_set): (RegionIndex, ZoneSetIndex),
        country: u16,
    ) {
        self.device.push(device);
        self.ts.push(ts);
        self.cell.push(cell);
        self.leaf.push(leaf);
        self.zone_set.push(zone_set);
        self.country.push(country);
    }

    pub(crate) fn set_devices(&mut self, devices: Vec<u64>, offsets: Vec<usize>) {
        self.devices = devices;
        self.device_offsets = offsets;
    }

    /// The number of pings.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there are no pings.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The device pseudonym of each ping.
    #[must_use]
    pub fn device(&self) -> &[u64] {
        &self.device
    }

    /// The instant of each ping, in epoch seconds.
    #[must_use]
    pub fn ts(&self) -> &[i64] {
        &self.ts
    }

    /// The H3 cell of each ping at the analysis resolution.
    #[must_use]
    pub fn cell(&self) -> &[u64] {
        &self.cell
    }

    /// The leaf region of each ping ([`UNKNOWN_REGION`] outside every leaf).
    #[must_use]
    pub fn leaf(&self) -> &[RegionIndex] {
        &self.leaf
    }

    /// The zone set of each ping (see [`Geography::zone_set`]).
    #[must_use]
    pub fn zone_set(&self) -> &[ZoneSetIndex] {
        &self.zone_set
    }

    /// The country number of each ping (see [`LocatedPings::country_code`]).
    #[must_use]
    pub fn country(&self) -> &[u16] {
        &self.country
    }

    /// The upper-cased code of a country number; `None` for [`LocatedPings::NO_COUNTRY`].
    #[must_use]
    pub fn country_code(&self, number: u16) -> Option<&str> {
        (number != NO_COUNTRY).then(|| self.countries[number as usize].as_str())
    }

    /// The distinct devices, in increasing pseudonym.
    #[must_use]
    pub fn devices(&self) -> &[u64] {
        &self.devices
    }

    /// The rows of the `i`-th device of [`LocatedPings::devices`].
    #[must_use]
    pub fn device_rows(&self, i: usize) -> std::ops::Range<usize> {
        self.device_offsets[i]..self.device_offsets[i + 1]
    }

    /// The schema of [`LocatedPings::to_record_batch`].
    #[must_use]
    pub fn schema() -> Arc<Schema> {
        let region = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("device", DataType::UInt64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
                false,
            ),
            Field::new("cell", DataType::UInt64, false),
            Field::new("region", region, false),
            Field::new("zones", DataType::new_list(DataType::Utf8, true), false),
            Field::new("country", DataType::Utf8, true),
        ]))
    }

    /// The pings as one Arrow record batch: `device`, `ts` (UTC seconds), `cell`,
    /// `region` (leaf id, or `unknown`), `zones` (zone ids, categories included) and
    /// `country`.
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can for pings built by
    /// [`Study::prepare`](crate::Study::prepare) with the same geography).
    pub fn to_record_batch(&self, geography: &Geography) -> Result<RecordBatch> {
        let regions = geography.regions();
        let mut region = StringDictionaryBuilder::<UInt32Type>::new();
        for &leaf in &self.leaf {
            if leaf == UNKNOWN_REGION {
                region.append_value("unknown");
            } else {
                region.append_value(regions.id(leaf));
            }
        }
        let zones_of = geography.zones();
        let mut zones = ListBuilder::new(StringBuilder::new());
        for &set in &self.zone_set {
            for &zone in geography.zone_set(set) {
                zones.values().append_value(&zones_of[zone as usize].id);
            }
            zones.append(true);
        }
        let country: arrow_array::StringArray =
            self.country.iter().map(|&c| self.country_code(c)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(self.device.clone())),
            Arc::new(TimestampSecondArray::from(self.ts.clone()).with_timezone("UTC")),
            Arc::new(UInt64Array::from(self.cell.clone())),
            Arc::new(region.finish()),
            Arc::new(zones.finish()),
            Arc::new(country),
        ];
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }
}
