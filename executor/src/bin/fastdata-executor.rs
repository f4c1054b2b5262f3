//! `fastdata-executor`: started by a Mesos agent for each fastdata task. See the library docs.
//!
//! Exit codes: 0 when every task ended and was reported (or SHUTDOWN completed), 1 when the
//! agent was lost (or the executor could not start its runtime), 2 when the environment is not
//! a Mesos executor environment (the message names the variable), 130 after a second
//! SIGTERM/SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use fastdata_executor::{ExecutorEnv, logging, run};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    let env = match ExecutorEnv::from_process() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("fastdata-executor: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let label = logging::init(&env.executor_id);
    // Two workers are plenty for one task's workload and its HTTP calls; blocking client
    // calls get their own threads on demand.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fastdata-executor")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fastdata-executor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let held = label.clone();
    let result = runtime.block_on(async move {
        let signals = match signals() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
                return None;
            }
        };
        match run(env, signals, label).await {
            Ok(reason) => Some(reason.code()),
            Err(e) => {
                tracing::error!(error = %e, "cannot run");
                None
            }
        }
    });
    // Lines still waiting for a task id are written as they are.
    held.release();
    // A workload that was cut off may still be unwinding; exiting is its final cut-off.
    runtime.shutdown_timeout(Duration::from_millis(200));
    ExitCode::from(result.unwrap_or(1))
}

/// One `()` per SIGTERM or SIGINT.
fn signals() -> std::io::Result<mpsc::Receiver<()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
