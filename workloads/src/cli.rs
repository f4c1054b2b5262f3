//! What the three binaries share: logging setup, signal handling, start-up, and the
//! Cassandra connection flags.
//!
//! Logs go to stderr (`RUST_LOG` filters, default [`DEFAULT_LOG_FILTER`]); a binary's final report goes to
//! stdout as one JSON line. The first SIGTERM or Ctrl-C asks for a graceful stop; a second
//! one exits at once with status 130.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// The log filter when `RUST_LOG` is not set: our own and librdkafka's lines at `info`; the
/// Cassandra driver's off, because during an outage it logs every reconnection attempt and
/// the consumer already reports the outage (with the driver's error) once, then every 10 s.
pub const DEFAULT_LOG_FILTER: &str = "info,scylla=off";

/// Sets up `tracing` to stderr, filtered by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Completes at the first SIGTERM or SIGINT; from then on a second one exits the process
/// with status 130 (the hard stop). Call inside a Tokio runtime.
pub fn graceful_shutdown() -> std::io::Result<impl Future<Output = ()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "stopping gracefully; send the signal again to stop at once"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::warn!("second signal: stopping at once");
            std::process::exit(130);
        });
    })
}

/// Prints a report as one JSON line on stdout.
/// What every workload binary does before running: a workload whose configuration was refused
/// ends the program with exit code 2 and the refusal's one sentence; failing to listen for
/// signals ends it with exit code 1. Otherwise the workload and its shutdown signal.
pub fn prepare<T, E: std::fmt::Display>(
    workload: Result<T, E>,
) -> Result<(T, impl Future<Output = ()>), std::process::ExitCode> {
    let workload = workload.map_err(|e| {
        eprintln!("error: {e}");
        std::process::ExitCode::from(2)
    })?;
    let shutdown = graceful_shutdown().map_err(|e| {
        eprintln!("error: cannot listen for signals: {e}");
        std::process::ExitCode::FAILURE
    })?;
    Ok((workload, shutdown))
}

pub fn print_report<T: serde::Serialize>(report: &T) {
    match serde_json::to_string(report) {
        Ok(line) => println!("{line}"),
        Err(e) => tracing::warn!(error = %e, "could not print the report"),
    }
}

/// The Cassandra connection flags of the consumer and the Cassandra check.
#[derive(Debug, clap::Args)]
pub struct CassandraConnectionArgs {
    /// Cassandra contact points, host:port[,host:port...].
    #[arg(
        long,
        env = "FASTDATA_CASSANDRA_CONTACT_POINTS",
        value_name = "HOST:PORT,..."
    )]
    pub cassandra_contact_points: String,
    /// Cassandra user name, if authentication is on.
    #[arg(
        long,
        env = "FASTDATA_CASSANDRA_USERNAME",
        requires = "cassandra_password"
    )]
    pub cassandra_username: Option<String>,
    /// Cassandra password (prefer the environment variable).
    #[arg(long, env = "FASTDATA_CASSANDRA_PASSWORD", hide_env_values = true)]
    pub cassandra_password: Option<String>,
    /// Data center to send requests to first [default: any].
    #[arg(long, env = "FASTDATA_CASSANDRA_LOCAL_DC")]
    pub cassandra_local_dc: Option<String>,
}

impl CassandraConnectionArgs {
    /// The contact points as a list.
    pub fn contact_points(&self) -> Vec<String> {
        crate::settings::split_addresses(&self.cassandra_contact_points)
    }

    /// Applies the credentials (when both user and password are given) and the local data
    /// center to a Cassandra configuration.
    pub fn apply(self, config: &mut crate::cassandra::CassandraConfig) {
        config.credentials = self.cassandra_username.zip(self.cassandra_password);
        config.local_dc = self.cassandra_local_dc;
    }
}
