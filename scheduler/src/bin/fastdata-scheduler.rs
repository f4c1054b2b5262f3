//! `fastdata-scheduler`: the framework scheduler. See the crate docs and `--help`.
//!
//! Exit codes: 0 after a graceful stop (SIGTERM or Ctrl-C; a second signal stops at once with
//! 130), 2 when the configuration is not usable (every problem is printed), 1 when the
//! scheduler had to stop (the APIs could not bind, ZooKeeper failed, or the lock was lost:
//! Marathon restarts it).

use std::io::Write as _;
use std::process::ExitCode;

use fastdata_scheduler::config::SchedulerArgs;
use fastdata_scheduler::framework::run::run;
use tokio::signal::unix::{SignalKind, signal};

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
        // A closed stdout (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{config:#?}");
        return ExitCode::SUCCESS;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fastdata-scheduler: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (Ok(mut terminate), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            eprintln!("fastdata-scheduler: cannot listen for signals");
            return ExitCode::FAILURE;
        };
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("stopping gracefully; send the signal again to stop at once");
            tokio::spawn(async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
                std::process::exit(130);
            });
        };
        let (tell, listening) =
            tokio::sync::oneshot::channel::<fastdata_scheduler::framework::run::Listening>();
        tokio::spawn(async move {
            if let Ok(at) = listening.await {
                // One line a script (the demo, tests) can wait for.
                println!(
                    "fastdata-scheduler REST http://{} gRPC http://{}",
                    at.rest, at.grpc
                );
            }
        });
        match run(config, shutdown, Some(tell)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "the scheduler stopped");
                eprintln!("fastdata-scheduler: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
