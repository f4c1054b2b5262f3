//! `fastdata-consumer`: the Kafka → Cassandra consumer, alone. See `fastdata_workloads::consumer`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fastdata_workloads::backoff::Backoff;
use fastdata_workloads::cassandra::parse_consistency;
use fastdata_workloads::cli;
use fastdata_workloads::consumer::{ConsumerConfig, SinkConsumer};
use fastdata_workloads::settings::{Replication, parse_duration, parse_kafka_property};
use scylla::statement::Consistency;

/// A consumer group member writing sensor readings from Kafka into Cassandra, at least once,
/// with a dead-letter store for messages that are not readings.
///
/// Stops on SIGTERM or Ctrl-C: finishes writes in flight, commits and leaves the group
/// within --grace-period (a second signal stops at once), then prints its report as one JSON
/// line on stdout. Logs go to stderr (RUST_LOG; default: info, the Cassandra driver's own
/// lines off).
#[derive(Debug, Parser)]
#[command(name = "fastdata-consumer", version)]
struct Args {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "FASTDATA_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    kafka_brokers: String,
    /// Topic to consume.
    #[arg(long, env = "FASTDATA_TOPIC", default_value = "sensor-temp")]
    topic: String,
    /// Consumer group.
    #[arg(long, env = "FASTDATA_GROUP", default_value = "sensor-temp-sink")]
    group: String,
    /// Static group membership id (e.g. the slot name) [default: dynamic membership].
    #[arg(long, env = "FASTDATA_GROUP_INSTANCE_ID")]
    group_instance_id: Option<String>,
    #[command(flatten)]
    cassandra: cli::CassandraConnectionArgs,
    /// Keyspace of the readings table (created if missing).
    #[arg(long, env = "FASTDATA_KEYSPACE", default_value = "sensors")]
    keyspace: String,
    /// Replication of the keyspace if it has to be created: a factor (3) or per data center
    /// (dc1:3,dc2:2).
    #[arg(long, env = "FASTDATA_REPLICATION", default_value = "1")]
    replication: Replication,
    /// Consistency level of the writes.
    #[arg(long, env = "FASTDATA_CONSISTENCY", default_value = "local_quorum", value_parser = parse_consistency)]
    consistency: Consistency,
    /// Timeout of one Cassandra request.
    #[arg(long, env = "FASTDATA_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Directory of the dead-letter store (the slot's volume).
    #[arg(long, env = "FASTDATA_SPOOL_DIR", default_value = "spool")]
    spool_dir: PathBuf,
    /// Most writes in flight at once.
    #[arg(long, env = "FASTDATA_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Most messages handled per second [default: no cap].
    #[arg(long, env = "FASTDATA_MAX_RATE")]
    max_rate: Option<f64>,
    /// Most messages taken per poll (and waiting for a write slot).
    #[arg(long, env = "FASTDATA_BATCH_SIZE", default_value_t = 500)]
    batch_size: usize,
    /// How long a graceful stop may take.
    #[arg(long, env = "FASTDATA_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    grace_period: Duration,
    /// How often stored offsets are committed.
    #[arg(long, env = "FASTDATA_COMMIT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    commit_interval: Duration,
    /// Kafka group session timeout (how soon a crashed member's partitions move).
    #[arg(long, env = "FASTDATA_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    session_timeout: Duration,
    /// Longest delay between two retries of a failed write.
    #[arg(long, env = "FASTDATA_MAX_BACKOFF", default_value = "5s", value_parser = parse_duration)]
    max_backoff: Duration,
    /// How often to log the consumer's stats.
    #[arg(long, env = "FASTDATA_STATS_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    stats_interval: Duration,
    /// Extra librdkafka property (repeatable), e.g. security.protocol=SSL.
    #[arg(long = "kafka-property", env = "FASTDATA_KAFKA_PROPERTIES", value_delimiter = ',',
          value_name = "KEY=VALUE", value_parser = parse_kafka_property)]
    kafka_properties: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut config = ConsumerConfig::new(
        args.kafka_brokers,
        args.cassandra.contact_points(),
        args.spool_dir,
    );
    config.topic = args.topic;
    config.group_id = args.group;
    config.group_instance_id = args.group_instance_id;
    config.cassandra.keyspace = args.keyspace;
    config.cassandra.replication = args.replication;
    config.cassandra.consistency = args.consistency;
    config.cassandra.request_timeout = args.request_timeout;
    args.cassandra.apply(&mut config.cassandra);
    config.max_in_flight = args.max_in_flight;
    config.max_rate = args.max_rate;
    config.batch_size = args.batch_size;
    config.grace_period = args.grace_period;
    config.commit_interval = args.commit_interval;
    config.session_timeout = args.session_timeout;
    config.backoff = Backoff {
        max: args.max_backoff,
        ..Backoff::default()
    };
    config.kafka_properties = args.kafka_properties;
    let (consumer, shutdown) = match cli::prepare(SinkConsumer::new(config)) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let handle = consumer.handle();
    let stats_interval = args.stats_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(stats_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let s = handle.stats();
            tracing::info!(
                state = ?s.state,
                per_sec = format!("{:.1}", s.events_per_sec),
                rows = s.rows_written,
                dead_letters = s.dead_letters,
                write_errors = s.write_errors,
                p50_ms = ?s.write_latency_p50_ms,
                p99_ms = ?s.write_latency_p99_ms,
                partitions = ?s.assigned_partitions,
                sink = ?s.sink.status,
                "consumer stats"
            );
        }
    });
    match consumer.run(shutdown).await {
        Ok(report) => {
            cli::print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
