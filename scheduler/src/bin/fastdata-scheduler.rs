//! `fastdata-scheduler`: the framework scheduler. See the crate docs and `--help`.

use std::process::ExitCode;

use fastdata_scheduler::config::SchedulerArgs;

fn main() -> ExitCode {
    let args = SchedulerArgs::from_env();
    let config = match args.check() {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("fastdata-scheduler: {problems}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    eprintln!("fastdata-scheduler: the framework loop is not wired yet");
    ExitCode::FAILURE
}
