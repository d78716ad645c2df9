//! Partials: what reducers give, as rows of one table that add up by key. Any engine
//! sums them (`GROUP BY` the key columns, `SUM` the value columns), in any number of
//! steps; [`finish`] sums whatever it is given once more, so summed and raw partials
//! alike finish into the releases a single run gives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::map::kind_name;
use super::plan::{Plan, Table};
use crate::aggregate::{
    Aggregate, AggregateSpec, DeviceCounts, GroupKey, Measures, RowKey, UnionMembers,
};
use crate::config::SubscriberKind;
use crate::error::{Error, Result};
use crate::profile::DeviceClass;
use crate::release::{Release, ReleaseSpec};
use crate::report::{DropReason, QualityReport};
use crate::study::Study;

/// The key columns of a partial row: which part it is (`cell`, `union`, `devices` or
/// `quality`), the table (index into the plan's), zone, bucket and class indexes, the
/// leaf origin of a cell, and a name (a counter's, or a union's member zones).
pub const PARTIAL_KEYS: [&str; 7] = ["part", "table", "zone", "bucket", "class", "origin", "name"];

/// The value columns of a partial row, all 64-bit integers that add up.
pub const PARTIAL_VALUES: [&str; 14] = [
    "devices",
    "visits",
    "dwell_s",
    "band_0",
    "band_1",
    "band_2",
    "band_3",
    "band_4",
    "band_devices_0",
    "band_devices_1",
    "band_devices_2",
    "band_devices_3",
    "band_devices_4",
    "value",
];

/// The schema of partials: [`PARTIAL_KEYS`] (nullable: a part uses those it needs),
/// then [`PARTIAL_VALUES`].
#[must_use]
pub fn partials_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("part", DataType::Utf8, false),
        Field::new("table", DataType::Int32, true),
        Field::new("zone", DataType::Int32, true),
        Field::new("bucket", DataType::Int32, true),
        Field::new("class", DataType::Int32, true),
        Field::new("origin", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ];
    fields.extend(
        PARTIAL_VALUES
            .iter()
            .map(|&name| Field::new(name, DataType::Int64, false)),
    );
    Arc::new(Schema::new(fields))
}

/// The key of a partial row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    part: String,
    table: Option<i32>,
    zone: Option<i32>,
    bucket: Option<i32>,
    class: Option<i32>,
    origin: Option<String>,
    name: Option<String>,
}

type Values = [i64; 14];

const CELL: &str = "cell";
const UNION: &str = "union";
const DEVICES: &str = "devices";
const QUALITY: &str = "quality";

fn measures_values(m: &Measures) -> Values {
    let mut values = [0; 14];
    values[0] = m.devices as i64;
    values[1] = m.visits as i64;
    values[2] = m.dwell_s;
    for band in 0..5 {
        values[3 + band] = m.bands[band] as i64;
        values[8 + band] = m.band_devices[band] as i64;
    }
    values
}

fn values_measures(values: &Values) -> Measures {
    Measures {
        devices: values[0] as u64,
        visits: values[1] as u64,
        dwell_s: values[2],
        bands: std::array::from_fn(|band| values[3 + band] as u64),
        band_devices: std::array::from_fn(|band| values[8 + band] as u64),
    }
}

fn counter(value: i64) -> Values {
    let mut values = [0; 14];
    values[13] = value;
    values
}

/// Rows under construction.
#[derive(Default)]
struct Rows(Vec<(Key, Values)>);

impl Rows {
    fn counter(&mut self, part: &str, table: Option<i32>, name: String, value: i64) {
        self.0.push((
            Key {
                part: part.to_owned(),
                table,
                zone: None,
                bucket: None,
                class: None,
                origin: None,
                name: Some(name),
            },
            counter(value),
        ));
    }

    fn batch(self) -> Result<RecordBatch> {
        let rows = &self.0;
        let int = |f: &dyn Fn(&Key) -> Option<i32>| -> ArrayRef {
            Arc::new(rows.iter().map(|(k, _)| f(k)).collect::<Int32Array>())
        };
        let text = |f: &dyn Fn(&Key) -> Option<&str>| -> ArrayRef {
            Arc::new(rows.iter().map(|(k, _)| f(k)).collect::<StringArray>())
        };
        let mut columns: Vec<ArrayRef> = vec![
            text(&|k| Some(k.part.as_str())),
            int(&|k| k.table),
            int(&|k| k.zone),
            int(&|k| k.bucket),
            int(&|k| k.class),
            text(&|k| k.origin.as_deref()),
            text(&|k| k.name.as_deref()),
        ];
        for column in 0..PARTIAL_VALUES.len() {
            columns.push(Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, v)| v[column]),
            )));
        }
        Ok(RecordBatch::try_new(partials_schema(), columns)?)
    }
}

/// The partials of a reducer: its aggregates (one per table of the plan), the quality
/// counts of its devices, and the mappers' counters it was given.
pub(crate) fn encode(
    aggregates: &[Option<Aggregate>],
    report: &QualityReport,
    counters: &BTreeMap<String, i64>,
) -> Result<RecordBatch> {
    let mut rows = Rows::default();
    for (name, &value) in counters {
        rows.counter(QUALITY, None, name.clone(), value);
    }
    for (name, value) in [
        ("pings_kept", report.pings_kept),
        ("dropped.duplicate", report.dropped.duplicate),
        ("pings_in_regions", report.pings_in_regions),
        ("pings_in_study_area", report.pings_in_study_area),
        ("pings_in_zones", report.pings_in_zones),
        ("devices", report.devices),
        ("pseudonym_collisions", report.pseudonym_collisions),
    ] {
        rows.counter(QUALITY, None, name.to_owned(), value as i64);
    }
    for (table, aggregate) in aggregates.iter().enumerate() {
        let Some(aggregate) = aggregate else { continue };
        let table = Some(table as i32);
        for &(key, measures) in aggregate.rows() {
            rows.0.push((
                Key {
                    part: CELL.to_owned(),
                    table,
                    zone: Some(key.zone as i32),
                    bucket: Some(key.bucket as i32),
                    class: Some(i32::from(key.class)),
                    origin: Some(aggregate.origins()[key.origin as usize].clone()),
                    name: None,
                },
                measures_values(&measures),
            ));
        }
        for union in aggregate.unions() {
            let members: Vec<String> = union.members.iter().map(u32::to_string).collect();
            rows.0.push((
                Key {
                    part: UNION.to_owned(),
                    table,
                    zone: Some(union.group.zone as i32),
                    bucket: Some(union.group.bucket as i32),
                    class: Some(i32::from(union.group.class)),
                    origin: None,
                    name: Some(members.join(",")),
                },
                counter(union.devices as i64),
            ));
        }
        let devices = aggregate.devices();
        for class in DeviceClass::ALL {
            let name = format!("class:{}", class.name());
            rows.counter(DEVICES, table, name, devices.by_class.get(class) as i64);
        }
        for (name, value) in [
            ("roamers", devices.roamers),
            ("domestic_unknown_home", devices.domestic_unknown_home),
            ("pairs_dropped", devices.pairs_dropped),
            ("visits_dropped", devices.visits_dropped),
        ] {
            rows.counter(DEVICES, table, name.to_owned(), value as i64);
        }
        for (leaf, &count) in &devices.subscribers {
            rows.counter(DEVICES, table, format!("subscribers:{leaf}"), count as i64);
        }
    }
    rows.batch()
}

/// Sums partial batches by key.
fn sum(partials: &[RecordBatch]) -> Result<BTreeMap<Key, Values>> {
    let mut summed: BTreeMap<Key, Values> = BTreeMap::new();
    for batch in partials {
        let column = |name: &str| -> Result<&ArrayRef> {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::input(name, "is missing from the partials"))
        };
        let text = |name: &str| -> Result<ArrayRef> {
            let array = column(name)?;
            match array.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                    Ok(arrow_cast::cast(array, &DataType::Utf8)?)
                }
                other => Err(Error::input(name, format!("must be text, got {other}"))),
            }
        };
        let integers = |name: &str, to: &DataType| -> Result<ArrayRef> {
            let array = column(name)?;
            if array.data_type().is_integer() || *array.data_type() == DataType::Null {
                Ok(arrow_cast::cast(array, to)?)
            } else {
                let found = array.data_type().clone();
                Err(Error::input(name, format!("must be integers, got {found}")))
            }
        };
        let part = text("part")?;
        let origin = text("origin")?;
        let name = text("name")?;
        let keys: Vec<ArrayRef> = ["table", "zone", "bucket", "class"]
            .iter()
            .map(|name| integers(name, &DataType::Int32))
            .collect::<Result<_>>()?;
        let values: Vec<ArrayRef> = PARTIAL_VALUES
            .iter()
            .map(|name| integers(name, &DataType::Int64))
            .collect::<Result<_>>()?;
        let (part, origin, name) = (
            part.as_string::<i32>(),
            origin.as_string::<i32>(),
            name.as_string::<i32>(),
        );
        let int = |array: &ArrayRef, row: usize| {
            let array = array.as_primitive::<Int32Type>();
            array.is_valid(row).then(|| array.value(row))
        };
        let text_at = |array: &arrow_array::StringArray, row: usize| {
            array.is_valid(row).then(|| array.value(row).to_owned())
        };
        for row in 0..batch.num_rows() {
            let key = Key {
                part: text_at(part, row)
                    .ok_or_else(|| Error::input("part", "is null in the partials"))?,
                table: int(&keys[0], row),
                zone: int(&keys[1], row),
                bucket: int(&keys[2], row),
                class: int(&keys[3], row),
                origin: text_at(origin, row),
                name: text_at(name, row),
            };
            let sums = summed.entry(key).or_insert([0; 14]);
            for (sum, array) in sums.iter_mut().zip(&values) {
                let array = array.as_primitive::<Int64Type>();
                *sum += if array.is_valid(row) {
                    array.value(row)
                } else {
                    0
                };
            }
        }
    }
    Ok(summed)
}

/// The quality report of the whole input, from the summed counters of the mappers and
/// reducers.
fn quality(
    study: &Study,
    plan: &Plan,
    summed: &BTreeMap<Key, Values>,
    input_kind: Option<SubscriberKind>,
) -> Result<QualityReport> {
    let mut report = QualityReport {
        version: crate::VERSION,
        tz: study.config().tz.clone(),
        resolution: u8::from(study.geography().resolution()),
        period: plan.period(),
        period_label: plan.period().and(plan.label().map(str::to_owned)),
        ..QualityReport::default()
    };
    let mut kinds = BTreeSet::new();
    for (key, values) in summed.iter().filter(|(key, _)| key.part == QUALITY) {
        let (Some(name), value) = (key.name.as_deref(), values[13]) else {
            continue;
        };
        let value = value as u64;
        match name {
            "pings_read" => report.pings_read += value,
            "pings_kept" => report.pings_kept += value,
            "pings_in_regions" => report.pings_in_regions += value,
            "pings_in_study_area" => report.pings_in_study_area += value,
            "pings_in_zones" => report.pings_in_zones += value,
            "devices" => report.devices += value,
            "pseudonym_collisions" => report.pseudonym_collisions += value,
            _ => {
                if let Some(reason) = name.strip_prefix("dropped.") {
                    let reason = DropReason::ALL
                        .into_iter()
                        .find(|r| r.name() == reason)
                        .ok_or_else(|| Error::input("name", "holds an unknown drop reason"))?;
                    report.dropped.add(reason, value);
                } else if name.starts_with("opt_out_seen:") {
                    report.opt_out.subscribers += 1;
                } else if let Some(kind) = name.strip_prefix("kind:") {
                    kinds.insert(kind.to_owned());
                }
            }
        }
    }
    report.opt_out.pings = report.dropped.opt_out;
    let kind_of = |name: &str| {
        [
            SubscriberKind::Text,
            SubscriberKind::Binary,
            SubscriberKind::Integer,
        ]
        .into_iter()
        .find(|&kind| kind_name(kind) == name)
    };
    report.subscriber_kind = match kinds.len() {
        0 => input_kind,
        1 => kinds.iter().next().and_then(|name| kind_of(name)),
        _ => {
            let listed = kinds.into_iter().collect::<Vec<_>>().join(" and ");
            return Err(Error::input(
                &plan.columns().subscriber,
                format!("holds ids of several kinds in different parts of the input: {listed}"),
            ));
        }
    };
    Ok(report)
}

/// The aggregate of table `table` from the summed partials.
fn aggregate(
    study: &Study,
    spec: &ReleaseSpec,
    table: i32,
    period: crate::config::Period,
    summed: &BTreeMap<Key, Values>,
) -> Result<Aggregate> {
    let aggregate_spec = AggregateSpec::new(study, spec, period);
    let in_table = |key: &&Key| key.table == Some(table);
    let index = |value: Option<i32>, name: &str| -> Result<u32> {
        value
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Error::input(name, "is missing or negative in a partial row"))
    };
    let mut origins: Vec<String> = Vec::new();
    let mut origin_number: BTreeMap<String, u32> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut unions = Vec::new();
    let mut devices = DeviceCounts::default();
    for (key, values) in summed.iter().filter(|(key, _)| in_table(key)) {
        match key.part.as_str() {
            CELL => {
                let name = key
                    .origin
                    .clone()
                    .ok_or_else(|| Error::input("origin", "is null in a cell partial"))?;
                let next = origins.len() as u32;
                let origin = *origin_number.entry(name.clone()).or_insert_with(|| {
                    origins.push(name);
                    next
                });
                let row = RowKey {
                    zone: index(key.zone, "zone")?,
                    bucket: index(key.bucket, "bucket")?,
                    class: index(key.class, "class")? as u8,
                    origin,
                };
                rows.push((row, values_measures(values)));
            }
            UNION => {
                let members = key
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::parse::<u32>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Error::input("name", "is not a list of zones in a union"))?;
                unions.push(UnionMembers {
                    group: GroupKey {
                        zone: index(key.zone, "zone")?,
                        bucket: index(key.bucket, "bucket")?,
                        class: index(key.class, "class")? as u8,
                    },
                    members,
                    devices: values[13] as u64,
                });
            }
            DEVICES => add_device_counter(&mut devices, key.name.as_deref(), values[13] as u64)?,
            _ => {}
        }
    }
    let aggregate = Aggregate::from_parts(aggregate_spec, origins, rows, unions, devices);
    aggregate.check_indexes()?;
    Ok(aggregate)
}

fn add_device_counter(devices: &mut DeviceCounts, name: Option<&str>, value: u64) -> Result<()> {
    let name = name.ok_or_else(|| Error::input("name", "is null in a devices partial"))?;
    match name {
        "roamers" => devices.roamers += value,
        "domestic_unknown_home" => devices.domestic_unknown_home += value,
        "pairs_dropped" => devices.pairs_dropped += value,
        "visits_dropped" => devices.visits_dropped += value,
        _ => {
            if let Some(class) = name.strip_prefix("class:") {
                let class = DeviceClass::ALL
                    .into_iter()
                    .find(|c| c.name() == class)
                    .ok_or_else(|| Error::input("name", "holds an unknown device class"))?;
                devices.by_class.add(class, value);
            } else if let Some(leaf) = name.strip_prefix("subscribers:") {
                // A leaf without subscribers is left out, as a single run leaves it.
                if value > 0 {
                    *devices.subscribers.entry(leaf.to_owned()).or_default() += value;
                }
            } else {
                return Err(Error::input("name", "holds an unknown device counter"));
            }
        }
    }
    Ok(())
}

/// The releases of `specs` (those the plan was made for, in its order) from the partials
/// of every reducer, summed or not: disclosure control or the noise, extrapolation and
/// the report run once, here, and the ledger records each release. `input_kind` is the
/// kind of the input's subscriber column, for an input without any row (no mapper saw a
/// batch).
///
/// # Errors
/// [`Error::Config`] naming `specs` when they are not the plan's; [`Error::Input`]
/// naming the column of a malformed partial; the errors of
/// [`Study::release_aggregate`].
pub fn finish(
    study: &Study,
    plan: &Plan,
    specs: &[ReleaseSpec],
    partials: &[RecordBatch],
    input_kind: Option<SubscriberKind>,
) -> Result<Vec<Release>> {
    let tables: Vec<Table> = specs.iter().map(Table::of).collect();
    if tables != plan.tables() {
        return Err(Error::config(
            "specs",
            "are not the releases the plan was made for (bucket, classes or privacy differ)",
        ));
    }
    let summed = sum(partials)?;
    let report = quality(study, plan, &summed, input_kind)?;
    specs
        .iter()
        .enumerate()
        .map(|(table, spec)| {
            let aggregate = plan
                .period()
                .map(|period| aggregate(study, spec, table as i32, period, &summed))
                .transpose()?;
            study.release_aggregate(aggregate.as_ref(), &report, spec)
        })
        .collect()
}
