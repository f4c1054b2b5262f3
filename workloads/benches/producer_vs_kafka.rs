//! Producer benchmark: fastdata's producer against Kafka's own `ProducerPerformance`, same run.
//!
//! Both send the same number of records of the same size (the mean key + JSON payload size of
//! our readings) to fresh topics with the same partition count, with the same settings:
//! `acks=all`, `enable.idempotence=true`, `linger.ms=5`, `batch.size=131072`, no compression.
//! Each one's rate is acknowledged records over the whole run (send and final flush), which is
//! how `ProducerPerformance` counts too. Differences that remain: its records have no key (so
//! its sticky partitioner fills one batch at a time) and random bytes; ours are keyed JSON
//! readings generated on the fly (random walks, timestamps, serialisation included).
//!
//! Run (Kafka from `dev/services up`; Java 17 for the Kafka tool):
//!
//! ```text
//! eval "$(dev/services env)"
//! cargo bench -p fastdata-workloads --bench producer_vs_kafka
//! ```
//!
//! `FASTDATA_BENCH_EVENTS` (default 1,000,000), `FASTDATA_BENCH_PARTITIONS` (default 6) and
//! `FASTDATA_BENCH_ROUNDS` (default 3; the two alternate and the best run of each counts)
//! change the size. Prints every run, the best of each, and their ratio.

mod common;
use common::thousands;

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use fastdata_workloads::kafka::ensure_topic;
use fastdata_workloads::producer::{ProducerConfig, SensorFleet, SensorProducer, TargetRate};
use rdkafka::ClientConfig;

const LINGER_MS: &str = "5";
const BATCH_SIZE: &str = "131072";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench`; nothing to do under `cargo test`");
        return Ok(());
    }
    let brokers =
        std::env::var("FASTDATA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let events = env_number("FASTDATA_BENCH_EVENTS", 1_000_000);
    let partitions = env_number("FASTDATA_BENCH_PARTITIONS", 6) as i32;
    let runtime = tokio::runtime::Runtime::new()?;

    // The record size: mean key + payload of our readings.
    let mut fleet = SensorFleet::new(50, Utc::now().timestamp_micros(), 1);
    let sample = 10_000;
    let bytes: usize = (0..sample)
        .map(|_| {
            let r = fleet.next_reading(Utc::now());
            r.sensor_id.len() + r.to_json().len()
        })
        .sum();
    let record_size = (bytes as f64 / sample as f64).round() as u64;

    let stamp = std::process::id();
    let kafka_topic = format!("bench-kafka-perf-{stamp}");
    let ours_topic = format!("bench-fastdata-{stamp}");
    let mut admin = ClientConfig::new();
    admin.set("bootstrap.servers", &brokers);
    for topic in [&kafka_topic, &ours_topic] {
        runtime
            .block_on(ensure_topic(
                &admin,
                topic,
                partitions,
                None,
                Duration::from_secs(30),
            ))
            .map_err(|e| {
                anyhow::anyhow!(
                    "Kafka at {brokers} unreachable ({e}); start it with `dev/services up`"
                )
            })?;
    }
    println!(
        "producer benchmark: {events} records of {record_size} bytes, {partitions} partitions, \
         acks=all, enable.idempotence=true, linger.ms={LINGER_MS}, batch.size={BATCH_SIZE}"
    );

    // Kafka's ProducerPerformance, from the jars dev/services fetched.
    let services = concat!(env!("CARGO_MANIFEST_DIR"), "/../dev/services");
    let classpath = Command::new(services)
        .args(["classpath", "kafka"])
        .output()?;
    anyhow::ensure!(
        classpath.status.success(),
        "`dev/services classpath kafka` failed: {}",
        String::from_utf8_lossy(&classpath.stderr)
    );
    let classpath = String::from_utf8(classpath.stdout)?.trim().to_owned();

    // Alternate the two so that the machine's drift (2 cores shared with the broker) hits
    // both alike; the best run of each counts.
    let rounds = env_number("FASTDATA_BENCH_ROUNDS", 3);
    let (mut best_kafka, mut best_ours) = (0.0f64, 0.0f64);
    for round in 1..=rounds {
        let (kafka_rate, summary) =
            producer_performance(&classpath, &brokers, &kafka_topic, events, record_size)?;
        println!(
            "  round {round}: Kafka ProducerPerformance {kafka_rate:>10.0} records/s   ({summary})"
        );
        best_kafka = best_kafka.max(kafka_rate);

        let mut config = ProducerConfig::new(&brokers);
        config.topic = ours_topic.clone();
        config.partitions = partitions;
        config.rate = TargetRate::Unthrottled;
        config.max_events = Some(events);
        config.kafka_properties = vec![
            ("linger.ms".into(), LINGER_MS.into()),
            ("batch.size".into(), BATCH_SIZE.into()),
            ("compression.type".into(), "none".into()),
        ];
        let report = runtime.block_on(SensorProducer::new(config)?.run(std::future::pending()))?;
        anyhow::ensure!(
            report.acked == events,
            "fastdata producer: only {} of {events} acknowledged",
            report.acked
        );
        let ours_rate = report.acked_per_sec();
        println!("  round {round}: fastdata producer         {ours_rate:>10.0} records/s");
        best_ours = best_ours.max(ours_rate);
    }

    println!("  best Kafka ProducerPerformance : {best_kafka:>10.0} records/s");
    println!("  best fastdata producer         : {best_ours:>10.0} records/s");
    println!(
        "  ratio fastdata / Kafka         : {:>10.2}",
        best_ours / best_kafka
    );
    // The line `dev/bench` collects into its table (tab-separated: benchmark, fastdata,
    // baseline, ratio, conditions).
    println!(
        "bench-row\tproducer throughput (higher is better)\t{} records/s\tKafka ProducerPerformance: {} records/s\t{:.2}\t{events} records of {record_size} B, {partitions} partitions, acks=all, idempotent, best of {rounds}",
        thousands(best_ours),
        thousands(best_kafka),
        best_ours / best_kafka
    );

    // Leave no benchmark topics behind.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        admin.create()?;
    let _ = runtime.block_on(admin.delete_topics(
        &[kafka_topic.as_str(), ours_topic.as_str()],
        &rdkafka::admin::AdminOptions::new(),
    ));
    Ok(())
}

/// Runs `ProducerPerformance` once; its records/s and its summary line.
fn producer_performance(
    classpath: &str,
    brokers: &str,
    topic: &str,
    events: u64,
    record_size: u64,
) -> anyhow::Result<(f64, String)> {
    let output = Command::new("java")
        .args(["-Xmx512m", "-cp", classpath])
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", topic])
        .args(["--num-records", &events.to_string()])
        .args(["--record-size", &record_size.to_string()])
        .args(["--throughput", "-1"])
        .arg("--producer-props")
        .arg(format!("bootstrap.servers={brokers}"))
        .arg("acks=all")
        .arg("enable.idempotence=true")
        .arg(format!("linger.ms={LINGER_MS}"))
        .arg(format!("batch.size={BATCH_SIZE}"))
        .arg("compression.type=none")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .rfind(|l| l.contains("records sent,"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "ProducerPerformance printed no summary:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?
        .to_owned();
    let rate: f64 = summary
        .split(" records/sec")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read the rate in: {summary}"))?;
    Ok((rate, summary))
}
