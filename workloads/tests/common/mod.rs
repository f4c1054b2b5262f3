//! Helpers for the workloads' tests against the real Kafka and Cassandra of `dev/services`.
//!
//! Every test uses its own topic, group and keyspace (unique names), so tests do not see each
//! other's data. A service that cannot be reached fails the test with a message saying how to
//! start it; nothing is skipped.
//!
//! Tests that use Cassandra hold a shared lock on `$TMPDIR/fastdata-cassandra-tests.lock`;
//! the test that stops and restarts the shared Cassandra holds it exclusively, so it never
//! runs while another test (of this crate or any that takes the same lock) needs Cassandra.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use fastdata_workloads::cassandra::{ReadingRow, TABLE, row_to_reading};
use fastdata_workloads::consumer::ConsumerConfig;
use fastdata_workloads::event::{SensorReading, parse_reading};
use fastdata_workloads::producer::{ProducerConfig, ProducerReport, SensorProducer, TargetRate};
use fs4::fs_std::FileExt;
use futures::TryStreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::time::Instant;

pub const START_SERVICES: &str = "start the local services with `dev/services up` (then `eval \"$(dev/services env)\"` if you moved their ports)";

pub fn kafka_brokers() -> String {
    std::env::var("FASTDATA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn cassandra_contact_points() -> Vec<String> {
    std::env::var("FASTDATA_CASSANDRA_CONTACT_POINTS")
        .unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The repository's `dev/services` script.
pub fn dev_services() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dev/services")
}

/// A name no other test run uses: lowercase letters, digits and `_` (valid as topic, group
/// and keyspace), at most 48 characters.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "{prefix}_{}_{:x}",
        std::process::id(),
        nanos % 0xffff_ffff_ffff
    );
    name.chars().take(48).collect()
}

/// A fresh directory for a consumer's spool.
pub fn spool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fastdata-test-spool-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Logs of the workloads into the test's captured output (shown when a test fails, or with
/// `--nocapture`); `RUST_LOG` overrides the default `fastdata_workloads=info,warn`.
pub fn init_test_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("fastdata_workloads=info,warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Held for the duration of a test that needs Cassandra.
#[derive(Debug)]
pub struct CassandraLock(File);

fn lock_file() -> File {
    let path = std::env::temp_dir().join("fastdata-cassandra-tests.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the test lock {}: {e}", path.display()))
}

/// Shared: many ordinary Cassandra tests at once.
pub async fn cassandra_shared() -> CassandraLock {
    init_test_logging();
    tokio::task::spawn_blocking(|| {
        let file = lock_file();
        FileExt::lock_shared(&file).expect("taking the shared Cassandra test lock");
        CassandraLock(file)
    })
    .await
    .unwrap()
}

/// Exclusive: for the test that stops Cassandra.
pub async fn cassandra_exclusive() -> CassandraLock {
    init_test_logging();
    tokio::task::spawn_blocking(|| {
        let file = lock_file();
        FileExt::lock_exclusive(&file).expect("taking the exclusive Cassandra test lock");
        CassandraLock(file)
    })
    .await
    .unwrap()
}

/// Fails the test unless Kafka answers a metadata request.
pub async fn require_kafka() {
    init_test_logging();
    let brokers = kafka_brokers();
    let result = tokio::task::spawn_blocking({
        let brokers = brokers.clone();
        move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()
                .map_err(|e| e.to_string())?;
            consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await
    .unwrap();
    if let Err(e) = result {
        panic!("Kafka is not reachable at {brokers} ({e}); {START_SERVICES}");
    }
}

/// A session for checking the table; fails the test unless Cassandra answers within 60 s.
pub async fn require_cassandra() -> Arc<Session> {
    let points = cassandra_contact_points();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let profile = ExecutionProfile::builder()
            .request_timeout(Some(Duration::from_secs(60)))
            .build();
        let result = SessionBuilder::new()
            .known_nodes(&points)
            .default_execution_profile_handle(profile.into_handle())
            .build()
            .await;
        match result {
            Ok(session) => return Arc::new(session),
            Err(e) if Instant::now() >= deadline => {
                panic!(
                    "Cassandra is not reachable at {} ({e}); {START_SERVICES}",
                    points.join(",")
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Creates a topic with `partitions` partitions.
pub async fn create_topic(topic: &str, partitions: i32) {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka_brokers());
    fastdata_workloads::kafka::ensure_topic(
        &config,
        topic,
        partitions,
        Some(1),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("creating topic {topic}: {e}; {START_SERVICES}"));
}

/// The test's producer settings: unique topic, seeded, quick stats.
pub fn producer_config(topic: &str, partitions: i32, sensors: u32) -> ProducerConfig {
    let mut config = ProducerConfig::new(kafka_brokers());
    config.topic = topic.to_owned();
    config.partitions = partitions;
    config.replication_factor = Some(1);
    config.sensors = sensors;
    config.seed = Some(7);
    config.stats_interval = Duration::from_millis(200);
    config
}

/// Produces `count` events (unthrottled unless a rate is given) and checks all were acked.
pub async fn produce(
    topic: &str,
    partitions: i32,
    sensors: u32,
    count: u64,
    rate: TargetRate,
) -> ProducerReport {
    let mut config = producer_config(topic, partitions, sensors);
    config.max_events = Some(count);
    config.rate = rate;
    let report = SensorProducer::new(config)
        .unwrap()
        .run(std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("producing to {topic}: {e}"));
    assert_eq!(
        (report.sent, report.acked, report.failed),
        (count, count, 0),
        "every event must be acknowledged: {report:?}"
    );
    report
}

/// The test's consumer settings: unique group, keyspace and spool; quick stats.
pub fn consumer_config(topic: &str, group: &str, keyspace: &str, spool: PathBuf) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(kafka_brokers(), cassandra_contact_points(), spool);
    config.topic = topic.to_owned();
    config.group_id = group.to_owned();
    config.cassandra.keyspace = keyspace.to_owned();
    config.stats_interval = Duration::from_millis(200);
    config.session_timeout = Duration::from_secs(6);
    config
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct TopicRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
}

/// Everything in the topic, read from the beginning up to the high watermarks (no group).
pub async fn read_topic(topic: &str) -> Vec<TopicRecord> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("group.id", format!("reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let partitions: Vec<i32> = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        let mut remaining = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, *p, Duration::from_secs(10))
                .unwrap();
            if high > low {
                remaining.insert(*p, high);
            }
            tpl.add_partition_offset(&topic, *p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut records = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !remaining.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "reading {topic} back timed out"
            );
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = message.unwrap();
            records.push(TopicRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                timestamp_ms: m.timestamp().to_millis(),
            });
            if remaining
                .get(&m.partition())
                .is_some_and(|high| m.offset() + 1 >= *high)
            {
                remaining.remove(&m.partition());
            }
        }
        records
    })
    .await
    .unwrap()
}

/// The readings in a topic (all of it must parse).
pub async fn topic_readings(topic: &str) -> Vec<SensorReading> {
    read_topic(topic)
        .await
        .iter()
        .map(|r| parse_reading(r.payload.as_deref().unwrap_or_default()).unwrap())
        .collect()
}

/// The group's committed offsets for the topic's partitions (absent: none committed).
pub async fn committed_offsets(group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("group.id", &group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    })
    .await
    .unwrap()
}

/// The high watermark of every partition.
pub async fn high_watermarks(topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .create()
            .unwrap();
        (0..partitions)
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .unwrap();
                (p, high)
            })
            .collect()
    })
    .await
    .unwrap()
}

/// Every row of the keyspace's readings table, with its `day` column.
pub async fn table_rows(session: &Session, keyspace: &str) -> Vec<(SensorReading, NaiveDate)> {
    let pager = session
        .query_iter(
            format!("SELECT sensor_id, day, event_time, seq, temperature FROM {keyspace}.{TABLE}"),
            (),
        )
        .await
        .unwrap();
    let rows: Vec<ReadingRow> = pager
        .rows_stream::<ReadingRow>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let day = row.1;
            (row_to_reading(row), day)
        })
        .collect()
}

/// `SELECT COUNT(*)` of the readings table (0 if it does not exist yet).
pub async fn count_rows(session: &Session, keyspace: &str) -> i64 {
    let result = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {keyspace}.{TABLE}"), ())
        .await;
    match result {
        Ok(r) => {
            r.into_rows_result()
                .unwrap()
                .single_row::<(i64,)>()
                .unwrap()
                .0
        }
        Err(_) => 0,
    }
}

/// Asserts the table holds exactly the given readings: one row per reading, every column
/// equal (event time to the millisecond; the day column is the event time's UTC date), and
/// nothing else.
pub fn assert_rows_match(rows: &[(SensorReading, NaiveDate)], expected: &[SensorReading]) {
    let mut by_key: HashMap<(String, i64), &SensorReading> = HashMap::new();
    for e in expected {
        assert!(
            by_key.insert((e.sensor_id.clone(), e.seq), e).is_none(),
            "the test's own events must have unique keys: {e:?}"
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (row, day) in rows {
        let key = (row.sensor_id.clone(), row.seq);
        let event = by_key
            .get(&key)
            .unwrap_or_else(|| panic!("a row that matches no event: {row:?}"));
        // A CQL timestamp keeps milliseconds (the original shape carries microseconds, which
        // survive in `seq`).
        let mut expected = (*event).clone();
        expected.event_time =
            chrono::DateTime::from_timestamp_millis(event.event_time.timestamp_millis()).unwrap();
        assert_eq!(*row, expected, "row differs from its event");
        assert_eq!(*day, event.day(), "day column of {row:?}");
        assert!(seen.insert(key), "a reading stored twice: {row:?}");
    }
    assert_eq!(
        rows.len(),
        expected.len(),
        "{} rows for {} events: {} missing",
        rows.len(),
        expected.len(),
        expected.len().saturating_sub(rows.len())
    );
}

/// Polls `check` every `every` until it returns true; fails the test after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Waits until the test's table holds at least `rows` rows, polling every `every`; fails the
/// test after `timeout`, naming `what`.
pub async fn wait_for_rows(
    session: &Arc<Session>,
    keyspace: &str,
    rows: i64,
    what: &str,
    timeout: Duration,
    every: Duration,
) {
    wait_until(what, timeout, every, || async move {
        count_rows(session, keyspace).await >= rows
    })
    .await;
}

/// Drops the test's keyspace and topic and removes its spool (after a passing test; a failing
/// one leaves them for a look).
pub async fn cleanup(session: Option<&Session>, name: &str) {
    if let Some(session) = session {
        let _ = session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), ())
            .await;
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka_brokers());
    if let Ok(admin) =
        config.create::<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>>()
    {
        let _ = admin
            .delete_topics(&[name], &rdkafka::admin::AdminOptions::new())
            .await;
    }
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("fastdata-test-spool-{name}")));
}
