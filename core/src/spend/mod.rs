//! Spend per visitor: card-payment aggregates joined to a release's rows, protected as
//! official statistics protect turnover (docs/METHOD.md, "Spend per visitor").
//!
//! A spend table is aligned to one release: its groups (zone, bucket) and origin rows
//! are the release's, for one of its classes, so that every spend cell has the visitor
//! row it is divided by. A payment's origin goes to the release row that holds it (its
//! own row, else its nearest pool `other:<ancestor>` or `other:abroad`, else `other`).
//! Merchants are the protected unit: a cell is released only when its visitor row is,
//! it has enough merchants, and it passes the p % rule; complementary suppression then
//! withholds further cells until no withheld cell can be computed from the released
//! ones (docs/METHOD.md gives the rules). Merchant ids never leave the reader: cells
//! hold amounts only.

mod payments;
mod protect;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use serde_json::{Value, json};

pub use payments::{PaymentCounts, PaymentDrop};
pub use protect::SpendCounts;

use crate::aggregate::{BucketKind, Buckets, ReleaseClass};
use crate::calendar::format_local;
use crate::columns::{column, plain, texts};
use crate::config::Period;
use crate::error::{Error, Result};
use crate::geo::Regions;
use crate::release::{Estimate, Release, ReleaseRow};
use crate::study::Study;
use payments::{PaymentOrigin, Payments, Reader};
use protect::{Cell, Line, Rules};

/// What every spend table says about its meaning.
pub const SPEND_CAVEATS: [&str; 5] = [
    "Spend is what the card schemes delivered: payments by their cards only, not cash, \
     and not cards of schemes missing from the input (foreign cards often are).",
    "Spend per visitor divides the card spend of a row by the estimated visitors of the \
     same release row: the spend includes residents' and other non-visitors' card \
     payments in the zone, and visitors who paid nothing count in the denominator.",
    "A cardholder's origin is the card issuer's address, a device's origin the home the \
     method infers from pings: the two rarely disagree for domestic visitors, but pooled \
     rows (other:…) hold the same origins only by the release's rule.",
    "The interval is the visitor estimate's (sampling of customers): the spend itself is \
     taken as exact.",
    "Zones smaller than the phones' position error (a square, a museum) undercount their \
     visitors, so their spend per visitor reads high: compare them with care.",
];

/// Which spend table to make: its breakdowns, the rules protecting merchants, and the
/// release class whose visitors divide it.
///
/// ```
/// use crowdtally::SpendSpec;
///
/// let spec = SpendSpec::by(&["zone", "bucket", "category"])?;
/// assert!(spec.by_category && !spec.by_origin);
/// assert_eq!((spec.p, spec.min_merchants), (10.0, 3));
/// # Ok::<(), crowdtally::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SpendSpec {
    /// Rows by the release's origin rows (default on).
    pub by_origin: bool,
    /// Rows by shop category (default on).
    pub by_category: bool,
    /// p of the p % rule, in percent (default 10).
    pub p: f64,
    /// The fewest merchants of a released non-empty cell (default 3).
    pub min_merchants: u32,
    /// The release class whose visitors divide spend (default `visitor` when the release
    /// has it, else its first class).
    pub class: Option<ReleaseClass>,
}

impl Default for SpendSpec {
    fn default() -> Self {
        Self {
            by_origin: true,
            by_category: true,
            p: 10.0,
            min_merchants: 3,
            class: None,
        }
    }
}

impl SpendSpec {
    /// The default spec broken down by `by`: `zone` and `bucket` (always, as the release
    /// is), and any of `origin` and `category`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `by` for another name, or without `zone` and `bucket`.
    pub fn by(names: &[&str]) -> Result<Self> {
        let known = ["zone", "bucket", "origin", "category"];
        if let Some(unknown) = names.iter().find(|name| !known.contains(name)) {
            return Err(Error::config(
                "by",
                format!(
                    "{unknown:?} is not a breakdown; give some of zone, bucket, origin, category"
                ),
            ));
        }
        if !names.contains(&"zone") || !names.contains(&"bucket") {
            return Err(Error::config(
                "by",
                "must hold \"zone\" and \"bucket\": spend is aligned to the release's groups",
            ));
        }
        Ok(Self {
            by_origin: names.contains(&"origin"),
            by_category: names.contains(&"category"),
            ..Self::default()
        })
    }

    /// Checks the rules' parameters.
    ///
    /// # Errors
    /// [`Error::Config`] naming `p` (not within 0 to 100) or `min_merchants` (below 2: a
    /// cell of one merchant is its turnover).
    pub fn validate(&self) -> Result<()> {
        if !(self.p.is_finite() && (0.0..=100.0).contains(&self.p)) {
            return Err(Error::config(
                "p",
                format!("must be a percentage from 0 to 100, got {}", self.p),
            ));
        }
        if self.min_merchants < 2 {
            return Err(Error::config(
                "min_merchants",
                format!(
                    "must be at least 2 (a cell of one merchant is its turnover), got {}",
                    self.min_merchants
                ),
            ));
        }
        Ok(())
    }

    fn breakdowns(&self) -> Vec<&'static str> {
        let mut by = vec!["zone", "bucket"];
        if self.by_origin {
            by.push("origin");
        }
        if self.by_category {
            by.push("category");
        }
        by
    }
}

/// What a spend table needs to know of the release it joins: the cut its rows were made
/// for, as its report's parameters give it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReleaseCut {
    /// The bucket kind.
    pub bucket: BucketKind,
    /// The origin level (`None`: the leaves).
    pub level: Option<String>,
    /// The period.
    pub period: Period,
    /// The time zone of the buckets.
    pub tz: String,
    /// The protection's name (`k_anonymity` or `differential_privacy`).
    pub privacy: String,
}

impl ReleaseCut {
    /// The cut of a release.
    ///
    /// # Errors
    /// As [`ReleaseCut::from_parameters`].
    pub fn of(release: &Release) -> Result<Self> {
        Self::from_parameters(&release.report.parameters)
    }

    /// The cut from a release report's `parameters` (as written beside a release
    /// table).
    ///
    /// # Errors
    /// [`Error::Input`] naming `release.parameters.<field>` when one is missing or
    /// invalid (an empty release has no period).
    pub fn from_parameters(parameters: &Value) -> Result<Self> {
        let field = |name: &str| {
            parameters.get(name).ok_or_else(|| {
                Error::input(
                    format!("release.parameters.{name}"),
                    "is missing: give the release's report as it was written",
                )
            })
        };
        let text = |name: &str| -> Result<String> {
            field(name)?
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::input(format!("release.parameters.{name}"), "must be text"))
        };
        let bucket = text("bucket")?
            .parse()
            .map_err(|_| Error::input("release.parameters.bucket", "is not a bucket kind"))?;
        let level = match parameters.get("level") {
            None | Some(Value::Null) => None,
            Some(Value::String(level)) => Some(level.clone()),
            Some(_) => return Err(Error::input("release.parameters.level", "must be text")),
        };
        let period: Period = serde_json::from_value(field("period")?.clone()).map_err(|_| {
            Error::input(
                "release.parameters.period",
                "must be a period {\"start\": \"YYYY-MM-DD\", \"end\": \"YYYY-MM-DD\"} (an \
                 empty release has none and no spend)",
            )
        })?;
        Ok(Self {
            bucket,
            level,
            period,
            tz: text("tz")?,
            privacy: text("privacy")?,
        })
    }
}

/// The spend measures of a released cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendMeasures {
    /// Spend in cents of the currency.
    pub cents: i64,
    /// Transactions.
    pub transactions: u64,
    /// Distinct merchants with a payment in the cell.
    pub merchants: u64,
}

/// Spend per estimated visitor, with the interval of the visitor estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerVisitor {
    /// Spend (currency units) over the estimated visitors.
    pub spend: f64,
    /// Spend over the estimate's upper end.
    pub low: f64,
    /// Spend over the estimate's lower end.
    pub high: f64,
}

/// One row of a spend table.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendRow {
    /// The release row's zone.
    pub zone: Arc<str>,
    /// The release row's bucket start.
    pub bucket_start: Arc<str>,
    /// The class whose visitors divide the spend.
    pub class: ReleaseClass,
    /// The release row's origin (`*` for all), or `other` for origins no shown row
    /// holds when the release has no `other` row.
    pub origin: String,
    /// The shop category, `*` for all.
    pub category: String,
    /// The measures; `None` when withheld.
    pub measures: Option<SpendMeasures>,
    /// Whether the cell is withheld.
    pub suppressed: bool,
    /// Spend per visitor; `None` when withheld, or without a visitor estimate.
    pub per_visitor: Option<PerVisitor>,
}

/// What a spend table says of itself: parameters, the payments read and dropped, what
/// protection did, warnings and caveats. Never a merchant id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpendReport {
    /// The spec and the release cut.
    pub parameters: Value,
    /// Payment rows read, kept, dropped by reason.
    pub payments: PaymentCounts,
    /// Cells released and withheld, by rule.
    pub protection: SpendCounts,
    /// What a user should look at.
    pub warnings: Vec<String>,
    /// The meaning's limits.
    pub caveats: Vec<&'static str>,
}

/// A protected spend table and its report.
#[derive(Clone, Debug)]
pub struct Spend {
    /// The rows, group by group in the release's order; in a group, origins in the
    /// release's order (`*` first), then categories (`*` first, then by name).
    pub rows: Vec<SpendRow>,
    /// The report.
    pub report: SpendReport,
}

impl Spend {
    /// The spend table's columns, in order.
    #[must_use]
    pub fn schema() -> Arc<Schema> {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        Arc::new(Schema::new(vec![
            text("zone"),
            text("bucket_start"),
            text("class"),
            text("origin"),
            text("category"),
            Field::new("spend", DataType::Float64, true),
            Field::new("transactions", DataType::UInt64, true),
            Field::new("merchants", DataType::UInt64, true),
            Field::new("spend_per_visitor", DataType::Float64, true),
            Field::new("spend_per_visitor_low", DataType::Float64, true),
            Field::new("spend_per_visitor_high", DataType::Float64, true),
            Field::new("suppressed", DataType::Boolean, false),
        ]))
    }

    /// The table as one Arrow batch (spend in currency units).
    ///
    /// # Errors
    /// An Arrow error if the batch cannot be assembled (it always can).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let rows = &self.rows;
        let text = |f: &dyn Fn(&SpendRow) -> &str| -> ArrayRef {
            Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
        };
        let count = |f: &dyn Fn(&SpendMeasures) -> u64| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.measures.as_ref().map(f))
                    .collect::<UInt64Array>(),
            )
        };
        let per_visitor = |f: &dyn Fn(&PerVisitor) -> f64| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| r.per_visitor.as_ref().map(f))
                    .collect::<Float64Array>(),
            )
        };
        let columns = vec![
            text(&|r| &r.zone),
            text(&|r| &r.bucket_start),
            text(&|r| r.class.name()),
            text(&|r| &r.origin),
            text(&|r| &r.category),
            Arc::new(
                rows.iter()
                    .map(|r| r.measures.map(|m| m.cents as f64 / 100.0))
                    .collect::<Float64Array>(),
            ) as ArrayRef,
            count(&|m| m.transactions),
            count(&|m| m.merchants),
            per_visitor(&|v| v.spend),
            per_visitor(&|v| v.low),
            per_visitor(&|v| v.high),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.suppressed))
                    .collect::<BooleanArray>(),
            ),
        ];
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }
}

/// The rows of a release table (the 17 columns of §6, possibly followed by others) as
/// [`ReleaseRow`]s with what spend needs: keys, `suppressed`, `devices` and the
/// estimate. Band and visit columns are not read.
///
/// # Errors
/// [`Error::Input`] naming `release.<column>` when a column is missing or of the wrong
/// type, or a class is unknown.
pub fn release_rows(batch: &RecordBatch) -> Result<Vec<ReleaseRow>> {
    let text = |name: &str| -> Result<Vec<String>> {
        let values = texts(column(batch, name, "release")?, &format!("release.{name}"))?;
        values
            .into_iter()
            .map(|v| v.ok_or_else(|| Error::input(format!("release.{name}"), "has a null")))
            .collect()
    };
    let float = |name: &str| -> Result<Float64Array> {
        let array = plain(column(batch, name, "release")?)?;
        Ok(arrow_cast::cast(&array, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    };
    let (zones, buckets, classes, origins) = (
        text("zone")?,
        text("bucket_start")?,
        text("class")?,
        text("origin")?,
    );
    let devices =
        crate::columns::integers(column(batch, "devices", "release")?, "release.devices")?;
    let suppressed = column(batch, "suppressed", "release")?;
    let suppressed = suppressed
        .as_boolean_opt()
        .ok_or_else(|| Error::input("release.suppressed", "must be a boolean column"))?;
    let (est, low, high, visits) = (
        float("est_devices")?,
        float("est_low")?,
        float("est_high")?,
        float("est_visits")?,
    );
    let mut zone_names: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let mut bucket_names: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let intern = |names: &mut FxHashMap<String, Arc<str>>, name: String| {
        Arc::clone(names.entry(name.clone()).or_insert_with(|| name.into()))
    };
    (0..batch.num_rows())
        .map(|row| {
            let class: ReleaseClass = classes[row]
                .parse()
                .map_err(|_| Error::input("release.class", format!("row {row}: unknown class")))?;
            let estimate =
                (!est.is_null(row) && !low.is_null(row) && !high.is_null(row)).then(|| Estimate {
                    devices: est.value(row),
                    visits: if visits.is_null(row) {
                        0.0
                    } else {
                        visits.value(row)
                    },
                    low: low.value(row),
                    high: high.value(row),
                });
            Ok(ReleaseRow {
                zone: intern(&mut zone_names, zones[row].clone()),
                bucket_start: intern(&mut bucket_names, buckets[row].clone()),
                class,
                origin: origins[row].clone(),
                measures: devices[row]
                    .and_then(|d| u64::try_from(d).ok())
                    .map(|devices| crate::release::RowMeasures {
                        devices,
                        ..Default::default()
                    }),
                suppressed: suppressed.is_valid(row) && suppressed.value(row),
                estimate,
            })
        })
        .collect()
}

/// One group of the release (zone, bucket) for the chosen class: the rows of its
/// origins, `*` first.
struct Group<'r> {
    zone: u32,
    bucket: u32,
    suppressed: bool,
    origins: Vec<&'r ReleaseRow>,
}

/// Joins and protects: the entry of [`Study::spend`].
pub(crate) fn spend<I>(
    study: &Study,
    rows: &[ReleaseRow],
    cut: &ReleaseCut,
    payments: I,
    spec: &SpendSpec,
) -> Result<Spend>
where
    I: IntoIterator<Item = Result<RecordBatch>>,
{
    spec.validate()?;
    check_cut(study, cut)?;
    let (geography, calendar) = (study.geography(), study.calendar());
    let buckets = Buckets::new(cut.bucket, calendar, cut.period);
    let bucket_of_label: FxHashMap<String, u32> = (0..buckets.len())
        .map(|b| (format_local(calendar, buckets.bounds()[b]), b as u32))
        .collect();
    let zones = geography.zones();
    let zone_index: FxHashMap<&str, u32> = zones
        .iter()
        .enumerate()
        .map(|(i, zone)| (zone.id.as_str(), i as u32))
        .collect();
    let category_zone: Vec<Option<u32>> = zones
        .iter()
        .map(|zone| {
            (!zone.is_category)
                .then_some(zone.category.as_ref())
                .flatten()
                .and_then(|c| zone_index.get(format!("category:{c}").as_str()).copied())
        })
        .collect();
    let class = chosen_class(rows, spec.class)?;
    let groups = release_groups(rows, class, &zone_index, &bucket_of_label)?;

    let reader = Reader {
        geography,
        calendar,
        buckets: &buckets,
        bucket_kind: cut.bucket,
        period: (
            calendar.start_of(cut.period.start),
            calendar.start_of(cut.period.end),
        ),
        level: cut.level.as_deref(),
        zone_index: zone_index.clone(),
        category_zone: category_zone.clone(),
    };
    let mut read = Payments::new();
    for batch in payments {
        reader.read(&batch?, &mut read)?;
    }
    read.counts.merchants = read.merchants_kept();

    let categories = Categories::of(&read, spec.by_category);
    let mut table = Table::default();
    for group in &groups {
        let (origin_names, amounts) =
            group_amounts(group, &read, spec, geography.regions(), &categories);
        table.add_group(group, &origin_names, categories.slots, amounts);
    }
    table.add_union_lines(&groups, zones, &category_zone, categories.slots);
    let counts = protect::protect(
        &mut table.cells,
        &table.lines,
        Rules {
            p: spec.p,
            min_merchants: spec.min_merchants as usize,
        },
    );
    let rows = table.rows(&groups, class, &categories, &read.categories);
    let report = SpendReport {
        parameters: json!({
            "by": spec.breakdowns(),
            "p": spec.p,
            "min_merchants": spec.min_merchants,
            "class": class.name(),
            "bucket": cut.bucket,
            "level": cut.level,
            "period": cut.period,
            "tz": cut.tz,
            "version": env!("CARGO_PKG_VERSION"),
        }),
        warnings: warnings(&read.counts),
        payments: read.counts,
        protection: counts,
        caveats: SPEND_CAVEATS.to_vec(),
    };
    Ok(Spend { rows, report })
}

/// Refuses a release of another mode, time zone, period or geography than the study's.
fn check_cut(study: &Study, cut: &ReleaseCut) -> Result<()> {
    let (config, regions) = (study.config(), study.geography().regions());
    if cut.privacy != "k_anonymity" {
        return Err(Error::config(
            "release",
            "is differentially private: spend joins k-anonymity releases only (a noised \
             spend, bounded per merchant and day, is not available)",
        ));
    }
    if cut.tz != config.tz || config.period.is_some_and(|period| period != cut.period) {
        return Err(Error::config(
            "release",
            format!(
                "was made for time zone {:?} and period [{}, {}), not for this study's",
                cut.tz, cut.period.start, cut.period.end
            ),
        ));
    }
    if let Some(level) = &cut.level
        && !(0..regions.len()).any(|r| regions.level(r as u32) == level)
    {
        return Err(Error::config(
            "release",
            format!("has origin level {level:?}, which the geography does not know"),
        ));
    }
    Ok(())
}

/// The shop categories of the table: sorted by name, and the slot of each (`*` is 0).
struct Categories {
    /// Category numbers (of the payments read) in slot order, from slot 1.
    sorted: Vec<u32>,
    /// The slot of each category number.
    slot_of: Vec<usize>,
    /// Slots per origin: 1 (`*` alone) without the breakdown.
    slots: usize,
}

impl Categories {
    fn of(read: &Payments, by_category: bool) -> Self {
        let mut sorted: Vec<u32> = (0..read.categories.len() as u32).collect();
        sorted.sort_by(|&a, &b| read.categories[a as usize].cmp(&read.categories[b as usize]));
        let mut slot_of = vec![0; sorted.len()];
        for (s, &c) in sorted.iter().enumerate() {
            slot_of[c as usize] = s + 1;
        }
        let slots = if by_category { sorted.len() + 1 } else { 1 };
        Self {
            sorted,
            slot_of,
            slots,
        }
    }

    fn name(&self, slot: usize, names: &[String]) -> String {
        if slot == 0 {
            "*".to_owned()
        } else {
            names[self.sorted[slot - 1] as usize].clone()
        }
    }
}

/// Merchants' amounts in cents and transactions, by merchant number.
type MerchantSums = FxHashMap<u32, (i64, u64)>;

/// A group's origin rows (the release's, then `other` if payments need it) and its
/// merchants' amounts per (origin slot, category slot).
fn group_amounts(
    group: &Group<'_>,
    read: &Payments,
    spec: &SpendSpec,
    regions: &Regions,
    categories: &Categories,
) -> (Vec<String>, BTreeMap<(usize, usize), MerchantSums>) {
    let by_origin = spec.by_origin && !group.suppressed;
    let names: FxHashSet<&str> = group.origins[1..]
        .iter()
        .map(|row| row.origin.as_str())
        .collect();
    let mut origin_names: Vec<String> = if by_origin {
        group.origins.iter().map(|row| row.origin.clone()).collect()
    } else {
        vec!["*".to_owned()]
    };
    let mut amounts: BTreeMap<(usize, usize), MerchantSums> = BTreeMap::new();
    let Some(sums) = read.by_zone.get(&group.zone) else {
        return (origin_names, amounts);
    };
    for (key, amount) in sums.iter().filter(|(key, _)| key.bucket == group.bucket) {
        let mut origin_slots = vec![0];
        if by_origin {
            let name = route(&key.origin, &names, regions);
            let slot = origin_names
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| {
                    origin_names.push(name);
                    origin_names.len() - 1
                });
            origin_slots.push(slot);
        }
        let mut category_slots = vec![0];
        if spec.by_category {
            category_slots.push(categories.slot_of[key.category as usize]);
        }
        for &o in &origin_slots {
            for &c in &category_slots {
                let sum = amounts
                    .entry((o, c))
                    .or_default()
                    .entry(key.merchant)
                    .or_default();
                sum.0 = sum.0.saturating_add(amount.cents);
                sum.1 = sum.1.saturating_add(amount.transactions);
            }
        }
    }
    (origin_names, amounts)
}

/// The class whose visitors divide spend.
fn chosen_class(rows: &[ReleaseRow], asked: Option<ReleaseClass>) -> Result<ReleaseClass> {
    let classes: BTreeSet<&'static str> = rows.iter().map(|row| row.class.name()).collect();
    match asked {
        Some(class) if rows.is_empty() || classes.contains(class.name()) => Ok(class),
        Some(class) => Err(Error::config(
            "class",
            format!(
                "{:?} is not a class of the release; its classes are {}",
                class.name(),
                classes.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )),
        None => Ok(rows
            .iter()
            .map(|row| row.class)
            .find(|&class| class == ReleaseClass::Visitor)
            .or_else(|| rows.first().map(|row| row.class))
            .unwrap_or(ReleaseClass::Visitor)),
    }
}

/// The release's groups of `class`, in the release's order, each with its total row
/// first.
fn release_groups<'r>(
    rows: &'r [ReleaseRow],
    class: ReleaseClass,
    zone_index: &FxHashMap<&str, u32>,
    bucket_of_label: &FxHashMap<String, u32>,
) -> Result<Vec<Group<'r>>> {
    let mut groups: Vec<Group<'r>> = Vec::new();
    let mut seen: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    for row in rows.iter().filter(|row| row.class == class) {
        let zone = *zone_index.get(&*row.zone).ok_or_else(|| {
            Error::input(
                "release.zone",
                format!("{:?} is not a zone of the study's geography", &*row.zone),
            )
        })?;
        let bucket = *bucket_of_label.get(&*row.bucket_start).ok_or_else(|| {
            Error::input(
                "release.bucket_start",
                format!(
                    "{:?} is not the start of a bucket of the release's period and bucket kind",
                    &*row.bucket_start
                ),
            )
        })?;
        let index = *seen.entry((zone, bucket)).or_insert_with(|| {
            groups.push(Group {
                zone,
                bucket,
                suppressed: false,
                origins: Vec::new(),
            });
            groups.len() - 1
        });
        let group = &mut groups[index];
        if row.origin == "*" {
            group.suppressed = row.suppressed;
            group.origins.insert(0, row);
        } else {
            group.origins.push(row);
        }
    }
    if let Some(group) = groups
        .iter()
        .find(|group| group.origins.first().is_none_or(|row| row.origin != "*"))
    {
        return Err(Error::input(
            "release.origin",
            format!(
                "zone {:?} has no total row (origin \"*\")",
                group.origins.first().map_or("", |row| &*row.zone)
            ),
        ));
    }
    Ok(groups)
}

/// The release row of a group that holds a payment's origin: its own row, else the
/// nearest pool of an ancestor (or `other:abroad`), else `other`.
fn route(origin: &PaymentOrigin, names: &FxHashSet<&str>, regions: &Regions) -> String {
    let shown = |name: &str| names.contains(name).then(|| name.to_owned());
    let found = match origin {
        PaymentOrigin::Region(region) => shown(regions.id(*region)).or_else(|| {
            regions
                .ancestors(*region)
                .skip(1)
                .find_map(|ancestor| shown(&format!("other:{}", regions.id(ancestor))))
        }),
        PaymentOrigin::Country(code) => shown(code).or_else(|| shown("other:abroad")),
        PaymentOrigin::Unknown => shown("unknown"),
        PaymentOrigin::Coarser => None,
    };
    found.unwrap_or_else(|| "other".to_owned())
}

/// A cell's place in the output.
struct CellKey {
    group: usize,
    origin: String,
    category: usize,
    transactions: u64,
}

/// The cells of the table and the lines tying them.
#[derive(Default)]
struct Table {
    cells: Vec<Cell>,
    keys: Vec<CellKey>,
    lines: Vec<Line>,
    /// The first cell of each group, and its origin slots.
    groups: Vec<(usize, usize)>,
}

impl Table {
    fn add_group(
        &mut self,
        group: &Group<'_>,
        origin_names: &[String],
        category_slots: usize,
        mut amounts: BTreeMap<(usize, usize), MerchantSums>,
    ) {
        let first = self.cells.len();
        let released: FxHashSet<&str> = group
            .origins
            .iter()
            .filter(|row| !row.suppressed)
            .map(|row| row.origin.as_str())
            .collect();
        let index = self.groups.len();
        for (o, origin) in origin_names.iter().enumerate() {
            for c in 0..category_slots {
                let merchants = amounts.remove(&(o, c)).unwrap_or_default();
                let transactions = merchants.values().map(|&(_, t)| t).sum();
                let mut by_merchant: Vec<i64> =
                    merchants.values().map(|&(cents, _)| cents).collect();
                by_merchant.sort_unstable_by(|a, b| b.cmp(a));
                self.cells.push(Cell {
                    cents: by_merchant.iter().sum(),
                    merchants: by_merchant,
                    visitor_released: released.contains(origin.as_str()),
                    ..Cell::default()
                });
                self.keys.push(CellKey {
                    group: index,
                    origin: origin.clone(),
                    category: c,
                    transactions,
                });
            }
        }
        let at = |o: usize, c: usize| first + o * category_slots + c;
        let origins = origin_names.len();
        if origins > 1 {
            for c in 0..category_slots {
                self.lines.push(Line {
                    total: at(0, c),
                    members: (1..origins).map(|o| at(o, c)).collect(),
                });
            }
        }
        if category_slots > 1 {
            for o in 0..origins {
                self.lines.push(Line {
                    total: at(o, 0),
                    members: (1..category_slots).map(|c| at(o, c)).collect(),
                });
            }
        }
        self.groups.push((first, origins));
    }

    /// The output rows, with spend per visitor from each cell's release row.
    fn rows(
        &self,
        groups: &[Group<'_>],
        class: ReleaseClass,
        categories: &Categories,
        names: &[String],
    ) -> Vec<SpendRow> {
        self.keys
            .iter()
            .zip(&self.cells)
            .map(|(key, cell)| {
                let group = &groups[key.group];
                let row = group.origins.iter().find(|row| row.origin == key.origin);
                let measures = (!cell.suppressed).then_some(SpendMeasures {
                    cents: cell.cents,
                    transactions: key.transactions,
                    merchants: cell.merchants.len() as u64,
                });
                let per_visitor = measures.and_then(|m| {
                    let estimate = row?.estimate?;
                    let spend = m.cents as f64 / 100.0;
                    (estimate.devices > 0.0 && estimate.low > 0.0).then(|| PerVisitor {
                        spend: spend / estimate.devices,
                        low: spend / estimate.high,
                        high: spend / estimate.low,
                    })
                });
                SpendRow {
                    zone: Arc::clone(&group.origins[0].zone),
                    bucket_start: Arc::clone(&group.origins[0].bucket_start),
                    class,
                    origin: key.origin.clone(),
                    category: categories.name(key.category, names),
                    measures,
                    suppressed: cell.suppressed,
                    per_visitor,
                }
            })
            .collect()
    }

    /// A category union's cells of all origins are the sums of its member zones' in the
    /// same bucket.
    fn add_union_lines(
        &mut self,
        groups: &[Group<'_>],
        zones: &[crate::geo::Zone],
        category_zone: &[Option<u32>],
        category_slots: usize,
    ) {
        let group_of: FxHashMap<(u32, u32), usize> = groups
            .iter()
            .enumerate()
            .map(|(g, group)| ((group.zone, group.bucket), g))
            .collect();
        for (g, group) in groups.iter().enumerate() {
            if !zones[group.zone as usize].is_category {
                continue;
            }
            let members: Vec<usize> = category_zone
                .iter()
                .enumerate()
                .filter(|&(_, union)| *union == Some(group.zone))
                .filter_map(|(zone, _)| group_of.get(&(zone as u32, group.bucket)).copied())
                .collect();
            if members.is_empty() {
                continue;
            }
            for c in 0..category_slots {
                let cell = |g: usize| self.groups[g].0 + c;
                self.lines.push(Line {
                    total: cell(g),
                    members: members.iter().map(|&m| cell(m)).collect(),
                });
            }
        }
    }
}

/// What a user should look at in the payments read.
fn warnings(counts: &PaymentCounts) -> Vec<String> {
    let mut warnings = Vec::new();
    if counts.rows_read == 0 {
        warnings.push("the payments table is empty: every spend cell is empty".to_owned());
        return warnings;
    }
    for (reason, &dropped) in &counts.dropped {
        if dropped * 20 > counts.rows_read {
            warnings.push(format!(
                "{dropped} of {} payment rows ({:.0} %) were dropped as {reason}",
                counts.rows_read,
                100.0 * dropped as f64 / counts.rows_read as f64
            ));
        }
    }
    if counts.rows_kept > 0 && counts.outside_zones * 2 > counts.rows_kept {
        warnings.push(format!(
            "{} of {} valid payment rows are of merchants outside every zone: is \
             merchant_cell the merchant's place at the geography's resolution?",
            counts.outside_zones, counts.rows_kept
        ));
    }
    if counts.origin_coarser_than_level > 0 {
        warnings.push(format!(
            "{} payment rows give an origin above the release's origin level: they count \
             in totals and in origin `other` only",
            counts.origin_coarser_than_level
        ));
    }
    warnings
}

#[cfg(test)]
mod tests;
