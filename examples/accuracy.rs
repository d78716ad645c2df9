//! Accuracy of homes and classes on the synthetic `kortrijk` scenario.
//!
//! About 10,000 people over four weeks of July 2026: residents, students, commuters, day
//! visitors, tourists, roamers and everybody else, of whom only the operator's customers
//! ping (hourly with jitter, 10 % missing, 150 m of position noise, dirty rows). The
//! example runs the method on the observed pings and compares each customer's detected
//! home and class with the truth: where the person really lives, and the class the
//! method gives their true trajectory (every hour, exact, nothing missing). It prints the
//! home accuracy and the class confusion matrix quoted in docs/METHOD.md.
//!
//! Run with `cargo run --release --example accuracy`.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use crowdtally::profile::DeviceClass;
use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{Pseudonymizer, RunOptions, Study};

fn main() -> Result<(), Box<dyn Error>> {
    // The scale can be given as the first argument (the tests run a smaller city).
    let scale = std::env::args()
        .nth(1)
        .map_or(Ok(0.007), |a| a.parse::<f64>())?;
    let mut config = ScenarioConfig::default();
    config.scale = scale;
    config.days = 28;
    config.seed = 2026;
    let scenario = Scenario::new(config)?;
    let run = scenario.run_config();
    let batches = scenario.batches(2_000).collect::<Result<Vec<_>, _>>()?;
    let prepared = Study::new(scenario.geography().clone(), run.clone())?
        .prepare(batches.into_iter().map(Ok), &RunOptions::default())?;
    let profiles = prepared.profiles()?;
    let truth = scenario.truth()?;

    let persons = &truth.persons;
    let subscriber = persons.column(1).as_string::<i32>();
    let customer = persons.column(2).as_boolean();
    let role = persons.column(3).as_string::<i32>();
    let true_class = persons.column(4).as_string::<i32>();
    let municipality = persons.column(7).as_string::<i32>();
    let label = prepared.pings().period_label.clone().unwrap_or_default();
    let pseudonymizer = Pseudonymizer::new(&run.key, &label)?;
    let row_of: HashMap<u64, usize> = profiles
        .devices
        .device
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, i))
        .collect();
    let regions = scenario.geography().regions();
    let (mut domestic, mut homes_right) = (0_u32, 0_u32);
    let mut confusion: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
    for person in 0..persons.num_rows() {
        if !customer.value(person) || true_class.is_null(person) {
            continue;
        }
        let device = pseudonymizer.device(subscriber.value(person).as_bytes());
        let Some(&row) = row_of.get(&device) else {
            continue;
        };
        if municipality.is_valid(person) {
            domestic += 1;
            let detected = profiles.devices.home[row].map(|leaf| regions.id(leaf));
            homes_right += u32::from(detected == Some(municipality.value(person)));
        }
        // People who never come are day visitors by the letter of the method; they add
        // to no release row and would only pad the diagonal.
        if role.value(person) == "other" {
            continue;
        }
        let device = pseudonymizer.device(subscriber.value(person).as_bytes());
        let Some(&row) = row_of.get(&device) else {
            continue;
        };
        let devices = &profiles.devices;
        if municipality.is_valid(person) {
            domestic += 1;
            let detected = devices.home[row].map(|leaf| regions.id(leaf));
            homes_right += u32::from(detected == Some(municipality.value(person)));
        }
        *confusion
            .entry((
                true_class.value(person).to_owned(),
                devices.class[row].name(),
            ))
            .or_default() += 1;
    }
    println!(
        "{} people ({} pings kept); homes right for {homes_right} of {domestic} domestic customers ({:.1} %)",
        scenario.people(),
        prepared.report().pings_kept,
        100.0 * f64::from(homes_right) / f64::from(domestic.max(1))
    );
    println!(
        "\nclass confusion of customers who come (rows: class of the true trajectory; columns: detected class)"
    );
    print!("{:<18}", "");
    for class in DeviceClass::ALL {
        print!("{:>18}", class.name());
    }
    println!();
    for truth in DeviceClass::ALL {
        print!("{:<18}", truth.name());
        for class in DeviceClass::ALL {
            print!(
                "{:>18}",
                confusion
                    .get(&(truth.name().to_owned(), class.name()))
                    .copied()
                    .unwrap_or(0)
            );
        }
        println!();
    }
    Ok(())
}
