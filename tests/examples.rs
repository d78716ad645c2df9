//! Every Rust example runs and says what it should. `cargo test` builds the examples next
//! to the test binaries, so they are run from there.

use std::path::PathBuf;
use std::process::Command;

fn run_example(name: &str, args: &[&str]) -> String {
    let deps = std::env::current_exe().expect("test binary path");
    let profile_dir = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    let binary: PathBuf = profile_dir.join("examples").join(name);
    let output = Command::new(&binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    assert!(
        output.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn demo_prints_a_balanced_quality_report() {
    let out = run_example("demo", &[]);
    let json_start = out.find('{').expect("a JSON report");
    let json_end = out.rfind('}').expect("a JSON report");
    let report: serde_json::Value =
        serde_json::from_str(&out[json_start..=json_end]).expect("valid JSON");
    let read = report["pings_read"].as_u64().unwrap();
    let kept = report["pings_kept"].as_u64().unwrap();
    let dropped: u64 = report["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(read, kept + dropped);
    for reason in [
        "opt_out",
        "bad_subscriber",
        "bad_position",
        "bad_ts",
        "duplicate",
    ] {
        assert!(report["dropped"][reason].as_u64().unwrap() > 0, "{reason}");
    }
    assert_eq!(report["opt_out"]["subscribers"], 1);
}

#[test]
fn accuracy_example_finds_homes_and_classes() {
    // A smaller city than the documented run, so that the debug build stays quick.
    let out = run_example("accuracy", &["0.002"]);
    let line = out.lines().next().expect("a summary line");
    // "... homes right for H of D domestic customers (P %)"
    let numbers: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    let share = numbers[numbers.len() - 1];
    assert!(share >= 95.0, "home accuracy {share} % in: {line}");
    // The confusion matrix: most people land on the diagonal.
    let classes = ["resident", "regular", "overnight_visitor", "day_visitor"];
    let rows: Vec<Vec<u32>> = out
        .lines()
        .filter(|l| classes.iter().any(|c| l.starts_with(c)))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows.iter().all(|r| r.len() == 4), "{out}");
    let total: u32 = rows.iter().flatten().sum();
    let diagonal: u32 = (0..4).map(|i| rows[i][i]).sum();
    assert!(total > 100, "{out}");
    assert!(f64::from(diagonal) >= 0.9 * f64::from(total), "{out}");
}

#[test]
fn scale_writes_parquet_then_releases_it_within_a_budget_and_times_the_h3_floor() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("latlon");
    let data = data.to_str().expect("utf-8 path");
    let written = run_example("scale", &["write", data, "2e5", "latlon"]);
    assert!(written.starts_with("wrote "), "{written}");
    let released = run_example("scale", &["run", data, "2MiB", "4"]);
    assert!(released.contains("lat/lon form"), "{released}");
    assert!(released.contains("budget 2 MiB"), "{released}");
    let file = std::path::Path::new(data).join("pings-0000.parquet");
    let floor = run_example("scale", &["floor", file.to_str().expect("utf-8 path")]);
    let floor: serde_json::Value = serde_json::from_str(floor.trim()).expect("JSON");
    assert!(
        floor["points"].as_u64().expect("points") > 100_000,
        "{floor}"
    );
}
