//! Prints the closed-loop comparison of the scaling modes (see `fastdata_scheduler::policy::sim`).
//!
//! ```text
//! cargo run -p fastdata-scheduler --example policy_sim            # the table
//! cargo run -p fastdata-scheduler --example policy_sim -- --trace # and every decision
//! ```

use std::time::Duration;

use fastdata_scheduler::policy::sim::{
    self, LoadProfile, PROFILE_END, STEP_DOWN_AT, STEP_UP_AT, SimConfig,
};

fn main() {
    let trace = std::env::args().any(|a| a == "--trace");
    let config = SimConfig::default();
    let reports = sim::compare(&config);
    print!("{}", sim::table(&config, &reports));
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
