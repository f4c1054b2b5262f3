//! Prints the closed-loop comparison of the scaling modes (see `fastdata_scheduler::policy::sim`).
//!
//! ```text
//! cargo run -p fastdata-scheduler --example policy_sim            # the table
//! cargo run -p fastdata-scheduler --example policy_sim -- --trace # and every decision
//! ```

use std::time::Duration;

use fastdata_scheduler::policy::sim::{
    self, LoadProfile, PROFILE_END, STEP_DOWN_AT, STEP_UP_AT, SimConfig, SimReport,
};

fn main() {
    let trace = std::env::args().any(|a| a == "--trace");
    let config = SimConfig::default();
    let reports = sim::compare(&config);
    print!("{}", sim::table(&config, &reports));
    bench_rows(&config, &reports);
    if trace {
        let profile = LoadProfile(vec![
            (0.0, 1000.0),
            (STEP_UP_AT, 10_000.0),
            (STEP_DOWN_AT, 1000.0),
        ]);
        for (label, scaling) in sim::configurations() {
            println!("\n{label}:");
            let run = sim::simulate(
                &config,
                &scaling,
                &profile,
                Duration::from_secs_f64(PROFILE_END),
                1,
            );
            for d in run.decisions {
                println!(
                    "  t={:>6.1} s  {:>2} -> {:<2} {}",
                    d.t, d.from, d.to, d.reason
                );
            }
        }
    }
}

/// The lines `dev/bench` collects into its table (tab-separated: benchmark, fastdata,
/// baseline, ratio, conditions): proportional against the original step rule as it ran
/// under Vamp (no stabilization window, no waiting for joins), in simulated time.
fn bench_rows(config: &SimConfig, reports: &[SimReport]) {
    let find = |label: &str| reports.iter().find(|r| r.label == label);
    let (Some(ours), Some(original)) = (find("proportional"), find("step, original (no guards)"))
    else {
        return;
    };
    let seconds = |t: Option<f64>| t.map_or("never".to_owned(), |s| format!("{s:.0} s"));
    let decisions = |n: Option<usize>| match n {
        Some(1) => "1 decision".to_owned(),
        Some(n) => format!("{n} decisions"),
        None => "not reached".to_owned(),
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    };
    let window = sim::configurations()
        .into_iter()
        .find(|(label, _)| *label == "proportional")
        .map_or(0, |(_, scaling)| scaling.stabilization_window.as_secs());
    let conditions = format!(
        "closed-loop simulation (policy_sim), load 1,000/s -> 10,000/s -> 1,000/s, {:.0}/s per consumer, {} partitions",
        config.consumer_capacity, config.partitions
    );
    println!(
        "bench-row\tscale-up: time to the needed {} consumers after a 10x load step (lower is better)\tproportional: {} ({})\toriginal step rule: {} ({})\t{}\t{conditions}",
        ours.needed_high,
        seconds(ours.time_to_needed_up),
        decisions(ours.decisions_to_needed_up),
        seconds(original.time_to_needed_up),
        decisions(original.decisions_to_needed_up),
        ratio(ours.time_to_needed_up, original.time_to_needed_up),
    );
    println!(
        "bench-row\tscale-down: time back to {} consumers after the load drops (lower is better)\tproportional: {} ({})\toriginal step rule: {} ({})\t{}\t{conditions}; proportional scales down only after its {window} s stabilization window",
        ours.needed_low,
        seconds(ours.time_to_needed_down),
        decisions(ours.decisions_to_needed_down),
        seconds(original.time_to_needed_down),
        decisions(original.decisions_to_needed_down),
        ratio(ours.time_to_needed_down, original.time_to_needed_down),
    );
}
