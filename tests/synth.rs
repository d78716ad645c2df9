//! The synthetic scenario: deterministic, realistic in its rates, and true to its truth.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, RecordBatch};
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{RunOptions, Study};

fn small(seed: u64) -> ScenarioConfig {
    let mut config = ScenarioConfig::default();
    config.scale = 0.002;
    config.days = 14;
    config.seed = seed;
    config
}

fn all_pings(scenario: &Scenario) -> Vec<RecordBatch> {
    scenario
        .batches(500)
        .collect::<Result<_, _>>()
        .expect("pings")
}

#[test]
fn same_seed_same_scenario_other_seed_other_scenario() {
    let a = Scenario::new(small(1)).unwrap();
    let b = Scenario::new(small(1)).unwrap();
    let c = Scenario::new(small(2)).unwrap();
    assert_eq!(all_pings(&a), all_pings(&b));
    assert_ne!(all_pings(&a), all_pings(&c));
    // Batch size does not change what is generated (up to row order within batches).
    let rows = |batches: &[RecordBatch]| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    let one_batch: Vec<RecordBatch> = a.batches(usize::MAX).collect::<Result<_, _>>().unwrap();
    assert_eq!(rows(&one_batch), rows(&all_pings(&a)));
}

#[test]
fn rates_match_the_parameters() {
    let mut config = small(7);
    config.missing_rate = 0.2;
    config.null_subscriber_rate = 0.01;
    config.bad_position_rate = 0.02;
    config.duplicate_rate = 0.03;
    config.outside_period_rate = 0.01;
    let scenario = Scenario::new(config.clone()).unwrap();
    let batches = all_pings(&scenario);
    let run = scenario.run_config();
    let prepared = Study::new(scenario.geography().clone(), run)
        .unwrap()
        .prepare(batches.iter().cloned().map(Ok), &RunOptions::default())
        .unwrap();
    let r = prepared.report();
    let read = r.pings_read as f64;
    let near = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 0.25 * want + 0.002,
            "{what}: got {got:.4}, want {want:.4}"
        );
    };
    near(
        r.dropped.bad_subscriber as f64 / read,
        0.01,
        "null subscribers",
    );
    near(
        r.dropped.bad_position as f64 / read,
        0.02 * 0.99,
        "bad positions",
    );
    near(r.dropped.duplicate as f64 / read, 0.03 / 1.03, "duplicates");
    near(
        r.dropped.outside_period as f64 / read,
        0.01,
        "outside the period",
    );

    // Ping cadence and missing pings: a domestic customer is seen in about 80 % of hours.
    let truth = scenario.truth().unwrap();
    let persons = &truth.persons;
    let customer = persons.column(2).as_boolean();
    let role = persons.column(3).as_string::<i32>();
    let residents = (0..persons.num_rows())
        .filter(|&i| customer.value(i) && role.value(i) == "resident")
        .count();
    let slots = 14 * 24;
    let resident_ids: std::collections::HashSet<String> = (0..persons.num_rows())
        .filter(|&i| customer.value(i) && role.value(i) == "resident")
        .map(|i| persons.column(1).as_string::<i32>().value(i).to_owned())
        .collect();
    let mut resident_rows = 0;
    for batch in &batches {
        let subscriber = batch.column(0).as_string::<i32>();
        resident_rows += (0..batch.num_rows())
            .filter(|&i| subscriber.is_valid(i) && resident_ids.contains(subscriber.value(i)))
            .count();
    }
    let seen = resident_rows as f64 / (residents * slots) as f64;
    // Missing 20 %, plus the dirty rows that add (duplicates) or keep (the rest) rows.
    near(seen, 0.8 * 1.03, "pings per resident-hour");
}

#[test]
fn market_share_and_roles_follow_the_parameters() {
    let mut config = small(3);
    // Four weeks: a tourist's 1 to 4 nights away never outnumber the nights at home
    // (in a one-week period the method would rightly find a home in the hotel).
    config.scale = 0.005;
    config.days = 28;
    let scenario = Scenario::new(config).unwrap();
    let truth = scenario.truth().unwrap();
    let p = &truth.persons;
    let customer = p.column(2).as_boolean();
    let role = p.column(3).as_string::<i32>();
    let municipality = p.column(7).as_string::<i32>();
    let mut per_municipality: HashMap<&str, (u32, u32)> = HashMap::new();
    for i in 0..p.num_rows() {
        if municipality.is_valid(i) {
            let entry = per_municipality.entry(municipality.value(i)).or_default();
            entry.0 += 1;
            entry.1 += u32::from(customer.value(i));
        }
    }
    for m in &scenario.world().municipalities {
        let (people, customers) = per_municipality
            .get(m.id.as_str())
            .copied()
            .unwrap_or_default();
        if people >= 150 {
            let share = f64::from(customers) / f64::from(people);
            assert!(
                (share - m.market_share).abs() < 0.1,
                "{}: {share} vs {}",
                m.id,
                m.market_share
            );
        }
    }
    // The true class follows the role for the clear-cut roles.
    let class = p.column(4).as_string::<i32>();
    let mut agree = HashMap::<&str, (u32, u32)>::new();
    for i in 0..p.num_rows() {
        let expected = match role.value(i) {
            "resident" => "resident",
            "commuter" => "regular",
            "tourist" => "overnight_visitor",
            "day_visitor" => "day_visitor",
            _ => continue,
        };
        let entry = agree.entry(role.value(i)).or_default();
        entry.0 += 1;
        entry.1 += u32::from(class.is_valid(i) && class.value(i) == expected);
    }
    for (role, (n, right)) in agree {
        assert!(n > 0);
        assert!(
            f64::from(right) >= 0.9 * f64::from(n),
            "{role}: {right} of {n}"
        );
    }
}

#[test]
fn customers_pings_come_from_their_true_trajectory_and_others_have_none() {
    let mut config = small(11);
    config.cells = true;
    config.null_subscriber_rate = 0.0;
    config.bad_position_rate = 0.0;
    config.outside_period_rate = 0.0;
    config.duplicate_rate = 0.0;
    let scenario = Scenario::new(config).unwrap();
    let truth = scenario.truth().unwrap();
    let p = &truth.persons;
    let subscriber = p.column(1).as_string::<i32>();
    let customer = p.column(2).as_boolean();
    let customers: HashMap<String, bool> = (0..p.num_rows())
        .map(|i| (subscriber.value(i).to_owned(), customer.value(i)))
        .collect();
    let batches = all_pings(&scenario);
    let mut seen = std::collections::HashSet::new();
    for batch in &batches {
        let ids = batch.column(0).as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert_eq!(
                customers.get(ids.value(i)),
                Some(&true),
                "a non-customer pinged"
            );
            seen.insert(ids.value(i).to_owned());
        }
    }
    assert!(!seen.is_empty());
    // With exact cells and no dirt, every observed ping in a zone is in a true visit:
    // its (person, zone, local date) is in the truth.
    let run = scenario.run_config();
    let prepared = Study::new(scenario.geography().clone(), run.clone())
        .unwrap()
        .prepare(batches.into_iter().map(Ok), &RunOptions::default())
        .unwrap();
    let zone_days = &truth.zone_days;
    let day_person = zone_days.column(0).as_primitive::<UInt32Type>();
    let day_zone = arrow_cast::cast(zone_days.column(1), &arrow_schema::DataType::Utf8).unwrap();
    let day_zone = day_zone.as_string::<i32>();
    let day_date = zone_days.column(2).as_string::<i32>();
    let true_days: std::collections::HashSet<(u32, String, String)> = (0..zone_days.num_rows())
        .map(|i| {
            (
                day_person.value(i),
                day_zone.value(i).to_owned(),
                day_date.value(i).to_owned(),
            )
        })
        .collect();
    let pseudonymizer = crowdtally::Pseudonymizer::new(&run.key, "2026Q3").unwrap();
    let person_of: HashMap<u64, u32> = (0..p.num_rows())
        .map(|i| {
            (
                pseudonymizer.device(subscriber.value(i).as_bytes()),
                i as u32,
            )
        })
        .collect();
    let calendar = jiff::tz::TimeZone::get(&run.tz).unwrap();
    let located = prepared.pings();
    let zones = scenario.geography().zones();
    let mut checked = 0;
    for row in 0..located.len() {
        let person = person_of[&located.device()[row]];
        let date = calendar
            .to_datetime(jiff::Timestamp::from_second(located.ts()[row]).unwrap())
            .date()
            .to_string();
        for &zone in scenario.geography().zone_set(located.zone_set()[row]) {
            let key = (person, zones[zone as usize].id.clone(), date.clone());
            assert!(true_days.contains(&key), "{key:?} is not a true visit");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} pings in zones");
}

#[test]
fn a_full_scale_summer_quarter_has_about_1_8_million_visitors() {
    // Only the country is built at this scale: the people are drawn at a tiny scale.
    let mut config = ScenarioConfig::default();
    config.scale = 0.0001;
    let scenario = Scenario::new(config).unwrap();
    let visitors = scenario.visitors_at_full_scale();
    assert!((1.2e6..2.4e6).contains(&visitors), "{visitors}");
    let people = scenario.people_at_full_scale();
    assert!(people > visitors, "{people}");
    // The scale draws about that share of the people.
    let drawn = scenario.people() as f64;
    assert!(
        (drawn - 0.0001 * people).abs() < 0.2 * 0.0001 * people,
        "{drawn} of {people}"
    );
}
