//! The quarterly visitor release of the synthetic `kortrijk` scenario, checked against
//! its truth.
//!
//! Generates a summer quarter of pings (only the operator's customers ping, with jitter,
//! missing pings, position noise and dirty rows), runs the whole method with
//! [`crowdtally::analyze`] for the period at the municipality level, and prints for every
//! zone the observed visitors, the extrapolated estimate with its interval and the true
//! number of visitors (customers or not), then how often the released municipality
//! rows' intervals cover the truth.
//!
//! Run with `cargo run --release --example kortrijk [scale] [days]` (default scale 0.01,
//! 92 days from 2026-07-01).

use std::error::Error;

use crowdtally::synth::{Scenario, ScenarioConfig};
use crowdtally::{ReleaseClass, ReleaseSpec, RunOptions, Study};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut config = ScenarioConfig::default();
    config.scale = args.next().map_or(Ok(0.01), |a| a.parse::<f64>())?;
    config.days = args.next().map_or(Ok(92), |a| a.parse::<u16>())?;
    config.seed = 2026;
    let roaming_share = config.roaming_share;
    let scenario = Scenario::new(config)?;
    let run = scenario.run_config();

    let mut options = ReleaseSpec::default();
    // Roamers are the operator's inbound-roaming share of each country's visitors.
    options.roaming_factors = ["FR", "NL", "DE"]
        .into_iter()
        .map(|code| (code.to_owned(), 1.0 / roaming_share))
        .collect();
    let release = Study::new(scenario.geography().clone(), run)?.release(
        scenario.batches(2_000),
        &options,
        &RunOptions::default(),
    )?;
    let truth = scenario.truth()?.visitors(&[ReleaseClass::Visitor]);

    let report = &release.report;
    let disclosure = report.disclosure.unwrap_or_default();
    println!(
        "pings read {}, kept {}; devices {} (visitors {} + {}); k = {}",
        report.pings["read"],
        report.pings["kept"],
        report.devices.total,
        report.devices.by_class["day_visitor"],
        report.devices.by_class["overnight_visitor"],
        disclosure.k,
    );
    println!(
        "groups {}, suppressed {}, rows released {}, origin rows rolled up {}, moved to the residual {}",
        disclosure.groups,
        disclosure.groups_suppressed,
        disclosure.rows_released,
        disclosure.origin_rows_rolled_up,
        disclosure.origin_rows_moved_to_residual,
    );
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    println!();
    println!(
        "{:<24} {:>9} {:>11} {:>23} {:>9} {:>7}",
        "zone", "observed", "estimate", "95% interval", "truth", "error"
    );
    let (mut covered, mut compared) = (0_u32, 0_u32);
    let (mut centre_covered, mut centre_compared) = (0_u32, 0_u32);
    for row in &release.rows {
        let (Some(measures), Some(estimate)) = (row.measures, row.estimate) else {
            continue;
        };
        let (est, low, high) = (estimate.devices, estimate.low, estimate.high);
        let true_count = truth
            .get(&(row.zone.to_string(), row.origin.clone()))
            .copied()
            .unwrap_or(0);
        if row.origin == "*" {
            println!(
                "{:<24} {:>9} {:>11.0} {:>11.0} – {:<9.0} {:>9} {:>+6.1}%",
                row.zone,
                measures.devices,
                est,
                low,
                high,
                true_count,
                100.0 * (est - true_count as f64) / true_count.max(1) as f64
            );
        } else if !row.origin.starts_with("other") && !row.origin.starts_with("country:") {
            let covers = u32::from(low <= true_count as f64 && true_count as f64 <= high);
            compared += 1;
            covered += covers;
            if &*row.zone == "city-centre" {
                centre_compared += 1;
                centre_covered += covers;
            }
        }
    }
    println!();
    println!(
        "released municipality rows whose interval covers the truth: {covered} of {compared} ({:.1} %)",
        100.0 * f64::from(covered) / f64::from(compared.max(1))
    );
    println!(
        "of which in city-centre: {centre_covered} of {centre_compared} ({:.1} %)",
        100.0 * f64::from(centre_covered) / f64::from(centre_compared.max(1))
    );
    Ok(())
}
