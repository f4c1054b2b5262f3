//! Consumer benchmark: fastdata's consumer against a bare writer, same rows, same run.
//!
//! First the events are produced to a fresh topic and read back (not timed). The baseline
//! then inserts those same readings into a fresh keyspace with the scylla driver: the same
//! prepared idempotent INSERT, `buffer_unordered(concurrency)`, nothing else. It is tried at
//! several concurrencies on a quarter of the rows and run in full at the best one. The
//! consumer then consumes the topic into another fresh keyspace with that same concurrency as
//! `max_in_flight`; its rate is rows written from the moment it is ready (group joined,
//! Cassandra reached) to the last row. The two alternate for `FASTDATA_BENCH_ROUNDS` rounds
//! (default 3) and the best of each counts, because a single local Cassandra node drifts
//! (memtable flushes, compaction, GC) more than the difference being measured. The ratio
//! consumer / baseline is the share of the bare write rate that survives Kafka polling,
//! parsing, offset tracking and flow control.
//!
//! Run (Kafka and Cassandra from `dev/services up`):
//!
//! ```text
//! eval "$(dev/services env)"
//! cargo bench -p fastdata-workloads --bench consumer_vs_baseline
//! ```
//!
//! `FASTDATA_BENCH_EVENTS` (default 200,000) and `FASTDATA_BENCH_PARTITIONS` (default 6)
//! change the size. Prints both rates and their ratio, and drops what it created.

mod common;
use common::thousands;

use std::sync::Arc;
use std::time::Duration;

use fastdata_workloads::cassandra::{self, CassandraConfig, ReadingsTable};
use fastdata_workloads::consumer::{ConsumerConfig, SinkConsumer};
use fastdata_workloads::event::{SensorReading, parse_reading};
use fastdata_workloads::producer::{ProducerConfig, SensorProducer, TargetRate};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::time::Instant;

const CONCURRENCIES: [usize; 4] = [64, 128, 256, 512];

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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let brokers =
        std::env::var("FASTDATA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let contact_points: Vec<String> = std::env::var("FASTDATA_CASSANDRA_CONTACT_POINTS")
        .unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let events = env_number("FASTDATA_BENCH_EVENTS", 200_000);
    let partitions = env_number("FASTDATA_BENCH_PARTITIONS", 6) as i32;
    let stamp = std::process::id();
    let topic = format!("bench_consumer_{stamp}");

    // The events, in Kafka and in memory.
    let mut producer = ProducerConfig::new(&brokers);
    producer.topic = topic.clone();
    producer.partitions = partitions;
    producer.sensors = 100;
    producer.rate = TargetRate::Unthrottled;
    producer.max_events = Some(events);
    let produced = SensorProducer::new(producer)?
        .run(std::future::pending())
        .await
        .map_err(|e| anyhow::anyhow!("{e}; start Kafka with `dev/services up`"))?;
    anyhow::ensure!(
        produced.acked == events,
        "only {} events acknowledged",
        produced.acked
    );
    let readings = read_topic(&brokers, &topic).await?;
    anyhow::ensure!(
        readings.len() as u64 == events,
        "read back {} events",
        readings.len()
    );
    println!(
        "consumer benchmark: {events} readings, {partitions} partitions, one local Cassandra node"
    );

    // Baseline: the bare driver, at its best concurrency.
    let session_config = CassandraConfig::new(contact_points.clone());
    let session = cassandra::connect(&session_config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; start Cassandra with `dev/services up`"))?;
    let sample = &readings[..readings.len() / 4];
    let mut best = (0usize, 0.0f64);
    for concurrency in CONCURRENCIES {
        let keyspace = format!("bench_probe_{concurrency}_{stamp}");
        let rate = baseline(&session, &keyspace, sample, concurrency).await?;
        drop_keyspace(&session, &keyspace).await;
        println!("  baseline probe, concurrency {concurrency:>4}: {rate:>10.0} rows/s");
        if rate > best.1 {
            best = (concurrency, rate);
        }
    }
    let concurrency = best.0;

    // Then the full rows, alternating baseline and consumer so that Cassandra's own drift
    // (memtable flushes, compaction, GC) hits both alike; the best run of each counts.
    let rounds = env_number("FASTDATA_BENCH_ROUNDS", 3);
    let (mut best_baseline, mut best_consumer) = (0.0f64, 0.0f64);
    for round in 1..=rounds {
        let keyspace = format!("bench_base_{round}_{stamp}");
        let rate = baseline(&session, &keyspace, &readings, concurrency).await?;
        drop_keyspace(&session, &keyspace).await;
        println!("  round {round}: baseline writer   {rate:>10.0} rows/s");
        best_baseline = best_baseline.max(rate);

        let keyspace = format!("bench_sink_{round}_{stamp}");
        let spool = std::env::temp_dir().join(format!("fastdata-bench-spool-{stamp}"));
        let mut config = ConsumerConfig::new(&brokers, contact_points.clone(), &spool);
        config.topic = topic.clone();
        config.group_id = format!("bench_{round}_{stamp}");
        config.cassandra.keyspace = keyspace.clone();
        config.max_in_flight = concurrency;
        config.batch_size = concurrency.max(500);
        config.stats_interval = Duration::from_millis(50);
        let consumer = SinkConsumer::new(config)?;
        let handle = consumer.handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(consumer.run(async move {
            let _ = stopped.await;
        }));
        handle.ready().await?;
        let began = Instant::now();
        let mut stats = handle.watch_stats();
        stats
            .wait_for(|s| s.rows_written + s.dead_letters >= events)
            .await?;
        let rate = events as f64 / began.elapsed().as_secs_f64();
        let _ = stop.send(());
        let report = run.await??;
        anyhow::ensure!(
            report.dead_letters == 0,
            "{} dead letters",
            report.dead_letters
        );
        drop_keyspace(&session, &keyspace).await;
        let _ = std::fs::remove_dir_all(&spool);
        println!(
            "  round {round}: fastdata consumer {rate:>10.0} rows/s   (write errors {})",
            report.write_errors
        );
        best_consumer = best_consumer.max(rate);
    }

    println!(
        "  best baseline writer (concurrency {concurrency})    : {best_baseline:>10.0} rows/s"
    );
    println!(
        "  best fastdata consumer (max in flight {concurrency}): {best_consumer:>10.0} rows/s"
    );
    println!(
        "  ratio consumer / baseline                   : {:>10.2}",
        best_consumer / best_baseline
    );
    // The line `dev/bench` collects into its table (tab-separated: benchmark, fastdata,
    // baseline, ratio, conditions).
    println!(
        "bench-row\tconsumer throughput, Kafka to Cassandra (higher is better)\t{} rows/s\tbare Cassandra writer (same prepared INSERT, concurrency {concurrency}): {} rows/s\t{:.2}\t{events} readings, {partitions} partitions, one local Cassandra node, best of {rounds}",
        thousands(best_consumer),
        thousands(best_baseline),
        best_consumer / best_baseline
    );

    // Leave nothing behind.
    let mut admin = ClientConfig::new();
    admin.set("bootstrap.servers", &brokers);
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        admin.create()?;
    let _ = admin
        .delete_topics(&[topic.as_str()], &rdkafka::admin::AdminOptions::new())
        .await;
    Ok(())
}

async fn drop_keyspace(session: &scylla::client::session::Session, keyspace: &str) {
    let _ = session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await;
}

/// Inserts `rows` into a fresh keyspace at `concurrency`; rows per second.
async fn baseline(
    session: &Arc<scylla::client::session::Session>,
    keyspace: &str,
    rows: &[SensorReading],
    concurrency: usize,
) -> anyhow::Result<f64> {
    cassandra::ensure_schema(session, keyspace, &Default::default()).await?;
    let table = ReadingsTable::prepare(session.clone(), keyspace).await?;
    let began = Instant::now();
    let mut writes = futures::stream::iter(rows)
        .map(|r| table.insert(r))
        .buffer_unordered(concurrency);
    while let Some(result) = writes.next().await {
        result?;
    }
    Ok(rows.len() as f64 / began.elapsed().as_secs_f64())
}

/// Every reading in the topic (blocking client, off the runtime).
async fn read_topic(brokers: &str, topic: &str) -> anyhow::Result<Vec<SensorReading>> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("reader_{topic}"))
            .set("enable.auto.commit", "false")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut tpl = TopicPartitionList::new();
        let mut remaining = std::collections::HashMap::new();
        for p in metadata.topics()[0].partitions() {
            let (low, high) = consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
            if high > low {
                remaining.insert(p.id(), high);
            }
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut readings = Vec::new();
        while !remaining.is_empty() {
            let Some(message) = consumer.poll(Duration::from_secs(1)) else {
                continue;
            };
            let m = message?;
            readings.push(parse_reading(m.payload().unwrap_or_default())?);
            if remaining
                .get(&m.partition())
                .is_some_and(|h| m.offset() + 1 >= *h)
            {
                remaining.remove(&m.partition());
            }
        }
        Ok(readings)
    })
    .await?
}
