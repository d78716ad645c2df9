//! Spend joined to hand-made releases: keys, routing, the rules, bad rows, and the
//! protection's properties on random inputs.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use h3o::{LatLng, Resolution};
use jiff::civil::date;
use proptest::prelude::*;

use super::*;
use crate::geo::fixtures::two_provinces;
use crate::geo::{ZoneCellTable, ZoneTable};
use crate::{Config, Geography, Key, RowMeasures};

/// BE → provinces P1 (m1, m2) and P2 (m3); zones markt and hall (shopping), museum
/// (culture), one resolution-9 cell each.
fn geography() -> Geography {
    let (regions, region_cells) = two_provinces(1000);
    let zones = ZoneTable {
        zone_id: ["markt", "hall", "museum"].map(String::from).to_vec(),
        name: vec![None, None, None],
        category: vec![
            Some("shopping".into()),
            Some("shopping".into()),
            Some("culture".into()),
        ],
    };
    let zone_cells = ZoneCellTable {
        zone_id: ["markt", "hall", "museum"].map(String::from).to_vec(),
        cell: [CELLS[0], CELLS[1], CELLS[2]].to_vec(),
    };
    Geography::from_tables(
        &regions,
        &region_cells,
        &zones,
        &zone_cells,
        9,
        &["m1".into()],
    )
    .unwrap()
}

/// Resolution-9 cells of markt, hall and museum, and one outside every zone.
static CELLS: std::sync::LazyLock<[u64; 4]> = std::sync::LazyLock::new(|| {
    [
        (50.001, 3.001),
        (50.003, 3.003),
        (50.005, 3.005),
        (50.2, 3.2),
    ]
    .map(|(a, o)| u64::from(LatLng::new(a, o).unwrap().to_cell(Resolution::Nine)))
});

fn study() -> Study {
    let mut config = Config::new(Key::new(b"a secret of 16+ bytes".to_vec()));
    config.period = Some(Period::new(date(2026, 7, 1), date(2026, 7, 3)).unwrap());
    Study::new(geography(), config).unwrap()
}

fn cut(bucket: BucketKind, level: Option<&str>) -> ReleaseCut {
    ReleaseCut {
        bucket,
        level: level.map(str::to_owned),
        period: Period::new(date(2026, 7, 1), date(2026, 7, 3)).unwrap(),
        tz: "Europe/Brussels".into(),
        privacy: "k_anonymity".into(),
    }
}

/// A released release row with `devices` devices and an estimate of twice them.
fn row(zone: &str, bucket: &str, origin: &str, devices: u64) -> ReleaseRow {
    let d = devices as f64;
    ReleaseRow {
        zone: zone.into(),
        bucket_start: bucket.into(),
        class: ReleaseClass::Visitor,
        origin: origin.into(),
        measures: Some(RowMeasures {
            devices,
            ..RowMeasures::default()
        }),
        suppressed: false,
        estimate: Some(Estimate {
            devices: 2.0 * d,
            visits: 2.0 * d,
            low: 1.5 * d,
            high: 2.5 * d,
        }),
    }
}

fn suppressed(zone: &str, bucket: &str) -> ReleaseRow {
    ReleaseRow {
        measures: None,
        suppressed: true,
        estimate: None,
        ..row(zone, bucket, "*", 0)
    }
}

const PERIOD_START: &str = "2026-07-01T00:00:00+02:00";
const ZONES: [&str; 5] = [
    "markt",
    "hall",
    "museum",
    "category:culture",
    "category:shopping",
];

/// A period release at the leaves: every zone released with origins m1, other:P1,
/// country:FR and other, unless named in `suppressed_zones`.
fn period_release(suppressed_zones: &[&str]) -> Vec<ReleaseRow> {
    let mut rows = Vec::new();
    for zone in ZONES {
        if suppressed_zones.contains(&zone) {
            rows.push(suppressed(zone, PERIOD_START));
            continue;
        }
        rows.push(row(zone, PERIOD_START, "*", 200));
        for (origin, devices) in [
            ("country:FR", 40),
            ("m1", 60),
            ("other", 50),
            ("other:P1", 50),
        ] {
            rows.push(row(zone, PERIOD_START, origin, devices));
        }
    }
    rows
}

/// One payment: merchant, place (a cell or a zone), day, category, origin, cents.
#[derive(Clone)]
struct Payment {
    merchant: String,
    cell: Option<u64>,
    day: &'static str,
    category: Option<&'static str>,
    origin: Option<&'static str>,
    cents: Option<i64>,
    transactions: Option<i64>,
}

fn pay(
    merchant: &str,
    cell: u64,
    category: &'static str,
    origin: &'static str,
    cents: i64,
) -> Payment {
    Payment {
        merchant: merchant.into(),
        cell: Some(cell),
        day: "2026-07-01",
        category: Some(category),
        origin: Some(origin),
        cents: Some(cents),
        transactions: Some(1),
    }
}

fn batch(payments: &[Payment]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("merchant_id", DataType::Utf8, true),
        Field::new("merchant_cell", DataType::UInt64, true),
        Field::new("day", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("origin", DataType::Utf8, true),
        Field::new("amount", DataType::Int64, true),
        Field::new("transactions", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            payments
                .iter()
                .map(|p| Some(p.merchant.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(payments.iter().map(|p| p.cell).collect::<UInt64Array>()),
        Arc::new(
            payments
                .iter()
                .map(|p| Some(p.day))
                .collect::<StringArray>(),
        ),
        Arc::new(payments.iter().map(|p| p.category).collect::<StringArray>()),
        Arc::new(payments.iter().map(|p| p.origin).collect::<StringArray>()),
        Arc::new(payments.iter().map(|p| p.cents).collect::<Int64Array>()),
        Arc::new(
            payments
                .iter()
                .map(|p| p.transactions)
                .collect::<Int64Array>(),
        ),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn spend_of(
    rows: &[ReleaseRow],
    cut: &ReleaseCut,
    payments: &[Payment],
    spec: &SpendSpec,
) -> Spend {
    study()
        .spend_of_rows(rows, cut, [Ok(batch(payments))], spec)
        .unwrap()
}

fn find<'s>(spend: &'s Spend, zone: &str, origin: &str, category: &str) -> &'s SpendRow {
    spend
        .rows
        .iter()
        .find(|r| &*r.zone == zone && r.origin == origin && r.category == category)
        .unwrap_or_else(|| panic!("no row {zone} {origin} {category}"))
}

fn cents(row: &SpendRow) -> Option<i64> {
    row.measures.map(|m| m.cents)
}

#[test]
fn a_dominant_merchant_is_withheld_and_three_equal_merchants_released() {
    let [markt, _, museum, _] = *CELLS;
    let mut payments = vec![
        pay("big", markt, "retail", "m1", 100_000),
        pay("mid", markt, "retail", "m1", 10_000),
        pay("small", markt, "retail", "m1", 5_000),
    ];
    for name in ["a", "b", "c"] {
        payments.push(pay(name, museum, "culture", "m1", 2_000));
    }
    let spec = SpendSpec::by(&["zone", "bucket"]).unwrap();
    let spend = spend_of(
        &period_release(&[]),
        &cut(BucketKind::Period, None),
        &payments,
        &spec,
    );
    // After its two largest, markt holds 5 000 < 10 % of 100 000: withheld, and so is
    // its shopping union, which holds the same merchants.
    let markt_total = find(&spend, "markt", "*", "*");
    assert!(markt_total.suppressed && markt_total.measures.is_none());
    assert!(find(&spend, "category:shopping", "*", "*").suppressed);
    assert_eq!(spend.report.protection.suppressed_dominance, 2);
    // hall is empty: released as zero.
    assert_eq!(cents(find(&spend, "hall", "*", "*")), Some(0));
    // Three equal merchants: released, with its union.
    let museum_total = find(&spend, "museum", "*", "*");
    assert_eq!(cents(museum_total), Some(6_000));
    assert_eq!(museum_total.measures.unwrap().merchants, 3);
    assert_eq!(
        cents(find(&spend, "category:culture", "*", "*")),
        Some(6_000)
    );
    // Spend per visitor: 60 € over 400 estimated visitors, within 60/500 to 60/300.
    let per = museum_total.per_visitor.unwrap();
    assert!((per.spend - 0.15).abs() < 1e-12);
    assert!((per.low - 0.12).abs() < 1e-12 && (per.high - 0.2).abs() < 1e-12);
}

#[test]
fn origins_route_to_their_row_their_pool_or_other() {
    let [markt, ..] = *CELLS;
    let mut payments = Vec::new();
    for (k, origin) in ["m1", "m2", "m3", "country:FR", "country:DE"]
        .iter()
        .enumerate()
    {
        for m in 0..3 {
            payments.push(pay(
                &format!("shop{m}"),
                markt,
                "retail",
                origin,
                1_000 * (k as i64 + 1),
            ));
        }
    }
    let spec = SpendSpec {
        p: 0.0,
        ..SpendSpec::by(&["zone", "bucket", "origin"]).unwrap()
    };
    let spend = spend_of(
        &period_release(&[]),
        &cut(BucketKind::Period, None),
        &payments,
        &spec,
    );
    // m1 its own row; m2 the pool of P1; m3 (no pool of P2 shown) and DE (no
    // other:abroad) the residual; FR its own row.
    assert_eq!(cents(find(&spend, "markt", "m1", "*")), Some(3_000));
    assert_eq!(cents(find(&spend, "markt", "other:P1", "*")), Some(6_000));
    assert_eq!(
        cents(find(&spend, "markt", "other", "*")),
        Some(9_000 + 15_000)
    );
    assert_eq!(
        cents(find(&spend, "markt", "country:FR", "*")),
        Some(12_000)
    );
    assert_eq!(cents(find(&spend, "markt", "*", "*")), Some(45_000));
    assert_eq!(spend.report.protection.suppressed_complementary, 0);
}

#[test]
fn origins_join_the_release_level_and_days_their_bucket() {
    let [markt, ..] = *CELLS;
    let day2 = "2026-07-02T00:00:00+02:00";
    let mut rows = Vec::new();
    for zone in ZONES {
        for bucket in [PERIOD_START, day2] {
            rows.push(row(zone, bucket, "*", 100));
            rows.push(row(zone, bucket, "P1", 60));
            rows.push(row(zone, bucket, "other", 40));
        }
    }
    let mut payments = Vec::new();
    for (day, origin, cents) in [
        ("2026-07-01", "m1", 100),
        ("2026-07-01", "m2", 200),
        ("2026-07-02", "m3", 400),
        ("2026-07-02", "P1", 800),
    ] {
        for m in 0..3 {
            payments.push(Payment {
                day,
                ..pay(&format!("s{m}"), markt, "retail", origin, cents)
            });
        }
    }
    let spec = SpendSpec {
        p: 0.0,
        ..SpendSpec::by(&["zone", "bucket", "origin"]).unwrap()
    };
    let spend = spend_of(
        &rows,
        &cut(BucketKind::Day, Some("province")),
        &payments,
        &spec,
    );
    let at = |bucket: &str, origin: &str| {
        spend
            .rows
            .iter()
            .find(|r| &*r.zone == "markt" && &*r.bucket_start == bucket && r.origin == origin)
            .and_then(cents)
    };
    assert_eq!(at(PERIOD_START, "P1"), Some(900));
    assert_eq!(at(PERIOD_START, "*"), Some(900));
    assert_eq!(at(day2, "P1"), Some(2_400));
    assert_eq!(at(day2, "other"), Some(1_200));
    assert_eq!(at(day2, "*"), Some(3_600));
}

#[test]
fn bad_rows_are_counted_by_reason_and_never_fatal() {
    let [markt, _, _, outside] = *CELLS;
    let good = pay("s", markt, "retail", "m1", 100);
    let bad = [
        Payment {
            merchant: String::new(),
            ..good.clone()
        },
        Payment {
            cell: None,
            ..good.clone()
        },
        Payment {
            cell: Some(12345),
            ..good.clone()
        },
        Payment {
            day: "01/07/2026",
            ..good.clone()
        },
        Payment {
            day: "2026-07-03",
            ..good.clone()
        },
        Payment {
            category: None,
            ..good.clone()
        },
        Payment {
            origin: Some("atlantis"),
            ..good.clone()
        },
        Payment {
            origin: Some("country:FRA"),
            ..good.clone()
        },
        Payment {
            cents: Some(-5),
            ..good.clone()
        },
        Payment {
            cents: None,
            ..good.clone()
        },
        Payment {
            transactions: Some(-1),
            ..good.clone()
        },
        Payment {
            cell: Some(outside),
            ..good.clone()
        },
        good.clone(),
    ];
    let mut payments: Vec<Payment> = bad.to_vec();
    // An empty merchant id is an id; a null one is missing.
    let mut batch = batch(&payments);
    let mut merchants: Vec<Option<&str>> =
        payments.iter().map(|p| Some(p.merchant.as_str())).collect();
    merchants[0] = None;
    let mut columns = batch.columns().to_vec();
    columns[0] = Arc::new(StringArray::from(merchants));
    batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
    payments.clear();
    let spend = study()
        .spend_of_rows(
            &period_release(&[]),
            &cut(BucketKind::Period, None),
            [Ok(batch)],
            &SpendSpec::default(),
        )
        .unwrap();
    let counts = &spend.report.payments;
    let dropped = |reason: PaymentDrop| counts.dropped[reason.name()];
    assert_eq!(counts.rows_read, 13);
    assert_eq!(dropped(PaymentDrop::MissingMerchant), 1);
    assert_eq!(dropped(PaymentDrop::BadLocation), 2);
    assert_eq!(dropped(PaymentDrop::BadTime), 1);
    assert_eq!(dropped(PaymentDrop::OutsidePeriod), 1);
    assert_eq!(dropped(PaymentDrop::MissingCategory), 1);
    assert_eq!(dropped(PaymentDrop::UnknownOrigin), 2);
    assert_eq!(dropped(PaymentDrop::BadAmount), 2);
    assert_eq!(dropped(PaymentDrop::BadTransactions), 1);
    assert_eq!(
        (counts.rows_kept, counts.outside_zones, counts.merchants),
        (2, 1, 1)
    );
    assert!(
        spend
            .report
            .warnings
            .iter()
            .any(|w| w.contains("as bad_location"))
    );
    // Nothing of a merchant id in the report.
    let report = serde_json::to_string(&spend.report).unwrap();
    assert!(!report.contains("\"s\""));
}

#[test]
fn unreadable_columns_are_errors_naming_them() {
    let [markt, ..] = *CELLS;
    let good = batch(&[pay("s", markt, "retail", "m1", 100)]);
    let without = |name: &str| {
        let schema = good.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).name() != name)
            .collect();
        good.project(&keep).unwrap()
    };
    let error = |batch: RecordBatch| {
        study()
            .spend_of_rows(
                &period_release(&[]),
                &cut(BucketKind::Period, None),
                [Ok(batch)],
                &SpendSpec::default(),
            )
            .unwrap_err()
            .to_string()
    };
    assert!(error(without("merchant_cell")).contains("payments.merchant_cell"));
    assert!(error(without("day")).contains("payments.day"));
    assert!(error(without("amount")).contains("payments.amount"));
    // Floating-point money is refused with the fix.
    let mut columns = good.columns().to_vec();
    columns[5] = Arc::new(Float64Array::from(vec![1.0]));
    let schema = Arc::new(Schema::new(
        good.schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == 5 {
                    Field::new("amount", DataType::Float64, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let message = error(RecordBatch::try_new(schema, columns).unwrap());
    assert!(message.contains("payments.amount") && message.contains("decimal"));
    // An hourly release needs times.
    let hourly = study().spend_of_rows(
        &[],
        &cut(BucketKind::Hour, None),
        [Ok(good.clone())],
        &SpendSpec::default(),
    );
    assert!(hourly.unwrap_err().to_string().contains("payments.day"));
    // Differentially private releases are refused.
    let dp = ReleaseCut {
        privacy: "differential_privacy".into(),
        ..cut(BucketKind::Period, None)
    };
    let refused = study().spend_of_rows(&[], &dp, [Ok(good)], &SpendSpec::default());
    assert!(refused.unwrap_err().to_string().contains("`release`"));
    assert!(SpendSpec::by(&["zone", "origin"]).is_err());
    assert!(SpendSpec::by(&["zone", "bucket", "shop"]).is_err());
    assert!(
        SpendSpec {
            min_merchants: 1,
            ..SpendSpec::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        SpendSpec {
            p: -1.0,
            ..SpendSpec::default()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn dates_decimals_and_zone_ids_are_read() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("merchant_id", DataType::Int64, true),
        Field::new("zone", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("transactions", DataType::Int64, true),
    ]));
    let day = i32::try_from(crate::calendar::days_from_civil(2026, 7, 1)).unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![
                "museum", "museum", "museum", "nowhere",
            ])),
            Arc::new(Date32Array::from(vec![day; 4])),
            Arc::new(StringArray::from(vec!["culture"; 4])),
            Arc::new(
                Decimal128Array::from(vec![1_050, 1_000, 999, 5])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(Int64Array::from(vec![1; 4])),
        ],
    )
    .unwrap();
    let spend = study()
        .spend_of_rows(
            &period_release(&[]),
            &cut(BucketKind::Period, None),
            [Ok(batch)],
            &SpendSpec::by(&["zone", "bucket"]).unwrap(),
        )
        .unwrap();
    assert_eq!(cents(find(&spend, "museum", "*", "*")), Some(3_049));
    // The museum's category union holds the same merchants.
    assert_eq!(
        cents(find(&spend, "category:culture", "*", "*")),
        Some(3_049)
    );
    assert_eq!(spend.report.payments.dropped["unknown_zone"], 1);
}

#[test]
fn a_suppressed_visitor_group_withholds_its_spend_and_a_complement() {
    let [markt, hall, ..] = *CELLS;
    let mut payments = Vec::new();
    for m in 0..4 {
        payments.push(pay(&format!("a{m}"), markt, "retail", "m1", 1_000));
        payments.push(pay(&format!("b{m}"), hall, "retail", "m1", 1_000));
    }
    let spec = SpendSpec::by(&["zone", "bucket"]).unwrap();
    let spend = spend_of(
        &period_release(&["hall"]),
        &cut(BucketKind::Period, None),
        &payments,
        &spec,
    );
    assert!(find(&spend, "hall", "*", "*").suppressed);
    // hall = shopping − markt: one of them is withheld too.
    assert!(
        find(&spend, "markt", "*", "*").suppressed
            || find(&spend, "category:shopping", "*", "*").suppressed
    );
    assert_eq!(spend.report.protection.suppressed_visitor_row, 1);
    assert_eq!(spend.report.protection.suppressed_complementary, 1);
}

/// Whether a withheld cell of a two-way table with margins (row 0 and column 0 the
/// totals) lies on no cycle of withheld cells: then the rows' and columns' sums give
/// its value exactly.
fn bridge_cells(withheld: &[Vec<bool>]) -> Vec<(usize, usize)> {
    let (rows, columns) = (withheld.len(), withheld[0].len());
    let edges: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| (0..columns).map(move |c| (r, c)))
        .filter(|&(r, c)| withheld[r][c])
        .collect();
    let connected_without = |skip: usize| {
        // Vertices: rows 0..rows, columns rows..rows + columns.
        let (from, to) = (edges[skip].0, rows + edges[skip].1);
        let mut seen = vec![false; rows + columns];
        let mut stack = vec![from];
        seen[from] = true;
        while let Some(v) = stack.pop() {
            for (e, &(r, c)) in edges.iter().enumerate() {
                if e == skip {
                    continue;
                }
                let (a, b) = (r, rows + c);
                let other = if a == v {
                    b
                } else if b == v {
                    a
                } else {
                    continue;
                };
                if !seen[other] {
                    seen[other] = true;
                    stack.push(other);
                }
            }
        }
        seen[to]
    };
    (0..edges.len())
        .filter(|&e| !connected_without(e))
        .map(|e| edges[e])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On random merchants over random origins and categories: every released non-empty
    /// cell has its visitor row, enough merchants and passes the p % rule; released
    /// cells add up along their lines; and no withheld cell of a group's two-way table
    /// can be computed from the released ones.
    #[test]
    fn released_cells_keep_the_rules_and_nothing_withheld_is_recoverable(
        payments in proptest::collection::vec(
            (0_usize..12, 0_usize..5, 0_usize..4, 1_i64..100_000),
            1..120,
        ),
    ) {
        let [markt, ..] = *CELLS;
        let origins = ["m1", "m2", "m3", "country:FR", "country:DE"];
        let categories = ["retail", "horeca", "culture", "transport"];
        let payments: Vec<Payment> = payments
            .iter()
            .map(|&(m, o, c, cents)| pay(&format!("m{m}"), markt, categories[c], origins[o], cents))
            .collect();
        let spend = spend_of(&period_release(&[]), &cut(BucketKind::Period, None), &payments, &SpendSpec::default());
        let markt_rows: Vec<&SpendRow> = spend.rows.iter().filter(|r| &*r.zone == "markt").collect();
        for r in &markt_rows {
            if let Some(m) = r.measures {
                prop_assert!(m.merchants == 0 || m.merchants >= 3);
            }
        }
        // The two-way table of markt: origins × categories with margins.
        let mut origin_names: Vec<&str> = Vec::new();
        let mut category_names: Vec<&str> = Vec::new();
        for r in &markt_rows {
            if !origin_names.contains(&r.origin.as_str()) { origin_names.push(&r.origin); }
            if !category_names.contains(&r.category.as_str()) { category_names.push(&r.category); }
        }
        let mut withheld = vec![vec![false; category_names.len()]; origin_names.len()];
        let mut values = vec![vec![0_i64; category_names.len()]; origin_names.len()];
        for r in &markt_rows {
            let o = origin_names.iter().position(|n| *n == r.origin).unwrap();
            let c = category_names.iter().position(|n| *n == r.category).unwrap();
            withheld[o][c] = r.suppressed;
            values[o][c] = cents(r).unwrap_or(0);
        }
        prop_assert_eq!(bridge_cells(&withheld), Vec::<(usize, usize)>::new());
        // Released rows and columns with every member released add up.
        for (o, row) in values.iter().enumerate() {
            if withheld[o].iter().all(|w| !w) {
                prop_assert_eq!(row[0], row[1..].iter().sum::<i64>());
            }
        }
        // The p % rule and the merchant minimum, recomputed from the payments.
        for r in &markt_rows {
            if r.suppressed || r.origin != "*" { continue; }
            let mut by_merchant: BTreeMap<&str, i64> = BTreeMap::new();
            for p in payments.iter().filter(|p| r.category == "*" || Some(r.category.as_str()) == p.category) {
                *by_merchant.entry(&p.merchant).or_default() += p.cents.unwrap();
            }
            let mut amounts: Vec<i64> = by_merchant.into_values().collect();
            amounts.sort_unstable_by(|a, b| b.cmp(a));
            if !amounts.is_empty() {
                prop_assert!(amounts.len() >= 3);
                let rest: i64 = amounts[2..].iter().sum();
                prop_assert!(10 * rest >= amounts[0]);
                prop_assert_eq!(cents(r), Some(amounts.iter().sum::<i64>()));
            }
        }
    }

    /// Shuffling the payments changes nothing.
    #[test]
    fn the_table_does_not_depend_on_the_payments_order(
        payments in proptest::collection::vec((0_usize..8, 0_usize..3, 0_usize..3, 1_i64..10_000), 1..60),
        seed in any::<u64>(),
    ) {
        let [markt, hall, museum, _] = *CELLS;
        let cells = [markt, hall, museum];
        let origins = ["m1", "m2", "country:FR"];
        let mut payments: Vec<Payment> = payments
            .iter()
            .map(|&(m, o, c, cents)| pay(&format!("m{m}"), cells[c], "retail", origins[o], cents))
            .collect();
        let a = spend_of(&period_release(&[]), &cut(BucketKind::Period, None), &payments, &SpendSpec::default());
        let mut rng = crate::synth::Rng::new(seed);
        for i in (1..payments.len()).rev() {
            payments.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let b = spend_of(&period_release(&[]), &cut(BucketKind::Period, None), &payments, &SpendSpec::default());
        prop_assert_eq!(a.rows, b.rows);
    }
}
