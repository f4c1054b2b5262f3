//! `fastdata-cassandra-check`: a smoke check of a Cassandra cluster. See
//! `fastdata_workloads::cassandra_check`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fastdata_workloads::cassandra::parse_consistency;
use fastdata_workloads::cassandra_check::{self, CheckConfig, CheckRound};
use fastdata_workloads::cli;
use fastdata_workloads::settings::{Replication, parse_duration};
use scylla::statement::Consistency;

/// Writes a reading for one sensor every --interval and reads back that sensor's newest
/// readings (a partition-key query), retrying while Cassandra is unreachable.
///
/// Runs until SIGTERM or Ctrl-C, or until --rounds rounds succeeded; prints its report as
/// one JSON line on stdout. Exit status 0 if the last round succeeded. Logs go to stderr
/// (RUST_LOG; default: info, the Cassandra driver's own lines off).
#[derive(Debug, Parser)]
#[command(name = "fastdata-cassandra-check", version)]
struct Args {
    #[command(flatten)]
    cassandra: cli::CassandraConnectionArgs,
    /// Keyspace of the check's own readings table (created if missing).
    #[arg(
        long,
        env = "FASTDATA_CHECK_KEYSPACE",
        default_value = "fastdata_check"
    )]
    keyspace: String,
    /// Replication of the keyspace if it has to be created: a factor (3) or per data center
    /// (dc1:3,dc2:2).
    #[arg(long, env = "FASTDATA_REPLICATION", default_value = "1")]
    replication: Replication,
    /// Consistency level of the writes and reads.
    #[arg(long, env = "FASTDATA_CONSISTENCY", default_value = "local_quorum", value_parser = parse_consistency)]
    consistency: Consistency,
    /// The sensor the check writes as.
    #[arg(long, default_value = "check-sensor")]
    sensor_id: String,
    /// Time between rounds.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    interval: Duration,
    /// How many newest readings to read back.
    #[arg(long, default_value_t = 10)]
    read_back: u16,
    /// Stop after this many successful rounds.
    #[arg(long)]
    rounds: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut config = CheckConfig::new(args.cassandra.contact_points());
    config.cassandra.keyspace = args.keyspace;
    config.cassandra.replication = args.replication;
    config.cassandra.consistency = args.consistency;
    args.cassandra.apply(&mut config.cassandra);
    config.sensor_id = args.sensor_id;
    config.interval = args.interval;
    config.read_back = args.read_back;
    config.rounds = args.rounds;
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let shutdown = match cli::graceful_shutdown() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut last_ok = false;
    let on_round = |round: &CheckRound| {
        last_ok = matches!(
            round,
            CheckRound::Ok {
                found_written: true,
                ..
            }
        );
        if let CheckRound::Ok { newest, .. } = round {
            for r in newest {
                tracing::info!(
                    sensor = %r.sensor_id, event_time = %r.event_time, seq = r.seq,
                    temperature = r.temperature, "  newest"
                );
            }
        }
    };
    match cassandra_check::run(config, on_round, shutdown).await {
        Ok(report) => {
            cli::print_report(&report);
            if last_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
