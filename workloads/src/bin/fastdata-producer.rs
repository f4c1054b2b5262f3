//! `fastdata-producer`: the sensor producer, alone. See `fastdata_workloads::producer`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fastdata_workloads::cli;
use fastdata_workloads::producer::{ProducerConfig, SensorProducer, TargetRate};
use fastdata_workloads::settings::{parse_duration, parse_kafka_property};

/// Simulated temperature sensors publishing JSON readings to Kafka at a target rate.
///
/// Stops on SIGTERM or Ctrl-C (flushing first; a second signal stops at once) or after
/// --max-events, then prints its report as one JSON line on stdout. Logs go to stderr
/// (RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(name = "fastdata-producer", version)]
struct Args {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "FASTDATA_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    kafka_brokers: String,
    /// Topic to publish to (created if missing).
    #[arg(long, env = "FASTDATA_TOPIC", default_value = "sensor-temp")]
    topic: String,
    /// Number of simulated sensors (sensor-0 ... sensor-{N-1}).
    #[arg(long, env = "FASTDATA_SENSORS", default_value_t = 50)]
    sensors: u32,
    /// Total events per second over all sensors, or `unthrottled`.
    #[arg(long, env = "FASTDATA_RATE", default_value = "50", value_parser = parse_rate)]
    rate: TargetRate,
    /// Partitions of the topic if it has to be created.
    #[arg(long, env = "FASTDATA_PARTITIONS", default_value_t = 12)]
    partitions: i32,
    /// Replication factor of the topic if it has to be created [default: the broker's].
    #[arg(long, env = "FASTDATA_REPLICATION_FACTOR")]
    replication_factor: Option<i16>,
    /// Stop after this many events.
    #[arg(long, env = "FASTDATA_MAX_EVENTS")]
    max_events: Option<u64>,
    /// How long the final flush may wait for acknowledgements.
    #[arg(long, env = "FASTDATA_FLUSH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    flush_timeout: Duration,
    /// How often to log the producer's stats.
    #[arg(long, env = "FASTDATA_STATS_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    stats_interval: Duration,
    /// Seed of the sensors' random walks [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Extra librdkafka property (repeatable), e.g. security.protocol=SSL.
    #[arg(long = "kafka-property", env = "FASTDATA_KAFKA_PROPERTIES", value_delimiter = ',',
          value_name = "KEY=VALUE", value_parser = parse_kafka_property)]
    kafka_properties: Vec<(String, String)>,
}

fn parse_rate(text: &str) -> Result<TargetRate, String> {
    text.parse()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut config = ProducerConfig::new(args.kafka_brokers);
    config.topic = args.topic;
    config.sensors = args.sensors;
    config.rate = args.rate;
    config.partitions = args.partitions;
    config.replication_factor = args.replication_factor;
    config.max_events = args.max_events;
    config.flush_timeout = args.flush_timeout;
    config.seed = args.seed;
    config.kafka_properties = args.kafka_properties;
    let (producer, shutdown) = match cli::prepare(SensorProducer::new(config)) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let handle = producer.handle();
    let stats_interval = args.stats_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(stats_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let s = handle.stats();
            tracing::info!(
                state = ?s.state,
                rate = %s.target_rate, per_sec = format!("{:.1}", s.events_per_sec),
                sent = s.sent, acked = s.acked, failed = s.failed, "producer stats"
            );
        }
    });
    match producer.run(shutdown).await {
        Ok(report) => {
            cli::print_report(&report);
            if report.failed == 0 && report.unacknowledged == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "error: {} events failed and {} were not acknowledged; see the log above",
                    report.failed, report.unacknowledged
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
