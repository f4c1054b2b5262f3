//! The pipeline under test: load from an in-process sensor producer, and the accounting that
//! proves nothing was lost or duplicated (every event in the topic, read back, against every
//! row of the table).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fastdata_workloads::pacing::TargetRate;
use fastdata_workloads::producer::{
    ProducerConfig, ProducerHandle, ProducerReport, SensorProducer,
};
use futures::TryStreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A sensor producer running in this process, as the load of a test.
#[derive(Debug)]
pub struct Load {
    handle: ProducerHandle,
    stop: Option<oneshot::Sender<()>>,
    run: JoinHandle<Result<ProducerReport, String>>,
}

impl Load {
    /// Starts producing `rate` events/s from `sensors` sensors into `topic`; returns once
    /// events are going out.
    pub async fn start(brokers: &str, topic: &str, rate: f64, sensors: u32) -> Load {
        let mut config = ProducerConfig::new(brokers);
        config.topic = topic.to_owned();
        config.sensors = sensors;
        config.rate = TargetRate::PerSecond(rate);
        config.client_id = format!("{topic}-load");
        let producer = SensorProducer::new(config).expect("a valid producer configuration");
        let handle = producer.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(async move {
            producer
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| e.to_string())
        });
        assert!(handle.ready().await, "the load producer could not start");
        Load {
            handle,
            stop: Some(stop),
            run,
        }
    }

    /// Changes the rate.
    pub fn set_rate(&self, rate: f64) {
        self.handle
            .set_rate(TargetRate::PerSecond(rate))
            .expect("a valid rate");
    }

    /// Events acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.handle.stats().acked
    }

    /// Stops, flushes, and returns the report.
    pub async fn stop(mut self) -> ProducerReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.run
            .await
            .expect("the load task")
            .expect("the load producer ran")
    }
}

/// Every event in `topic`, read back from the start to the log end: `(sensor_id, seq)` →
/// copies.
pub fn events_in_topic(brokers: &str, topic: &str) -> BTreeMap<(String, i64), u32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-audit"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("audit consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut ends = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .expect("watermarks");
        if high > low {
            ends.insert(*p, high);
            list.add_partition_offset(topic, *p, Offset::Offset(low))
                .expect("partition");
        }
    }
    let mut events = BTreeMap::new();
    if ends.is_empty() {
        return events;
    }
    consumer.assign(&list).expect("assign");
    let mut idle = 0;
    while !ends.is_empty() {
        match consumer.poll(Duration::from_secs(1)) {
            Some(Ok(message)) => {
                idle = 0;
                let partition = message.partition();
                if let Some(payload) = message.payload()
                    && let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload)
                    && let (Some(sensor), Some(seq)) =
                        (value["sensor_id"].as_str(), value["seq"].as_i64())
                {
                    *events.entry((sensor.to_owned(), seq)).or_insert(0) += 1;
                }
                if ends
                    .get(&partition)
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    ends.remove(&partition);
                }
            }
            Some(Err(e)) => panic!("reading the topic back: {e}"),
            None => {
                idle += 1;
                assert!(idle < 60, "reading the topic back stalled: {ends:?} left");
            }
        }
    }
    events
}

/// A session to the local Cassandra.
pub async fn cassandra() -> Arc<Session> {
    let points = crate::cassandra_contact_points();
    Arc::new(
        SessionBuilder::new()
            .known_nodes(&points)
            .build()
            .await
            .expect("a Cassandra session"),
    )
}

/// Every row of `keyspace.temperature_by_day`: `(sensor_id, seq)` → rows.
pub async fn rows_in_table(session: &Session, keyspace: &str) -> BTreeMap<(String, i64), u32> {
    let pager = session
        .query_iter(
            format!("SELECT sensor_id, seq FROM {keyspace}.temperature_by_day"),
            (),
        )
        .await
        .expect("reading the table");
    let rows: Vec<(String, i64)> = pager
        .rows_stream::<(String, i64)>()
        .expect("row types")
        .try_collect()
        .await
        .expect("every row");
    let mut out = BTreeMap::new();
    for key in rows {
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// What an audit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audit {
    /// Distinct events in the topic.
    pub produced: usize,
    /// Rows in the table.
    pub rows: usize,
    /// Events in the topic with no row.
    pub missing: usize,
    /// Rows beyond the first for an event.
    pub duplicate: usize,
}

/// Compares the topic with the table.
pub fn audit(events: &BTreeMap<(String, i64), u32>, rows: &BTreeMap<(String, i64), u32>) -> Audit {
    let stored: HashSet<&(String, i64)> = rows.keys().collect();
    Audit {
        produced: events.len(),
        rows: rows.values().map(|n| *n as usize).sum(),
        missing: events.keys().filter(|k| !stored.contains(k)).count(),
        duplicate: rows.values().map(|n| (*n as usize).saturating_sub(1)).sum(),
    }
}

/// The repository's `dev/services` script.
pub fn services_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dev/services")
}

/// Runs `dev/services <command> <service>`; panics with its output if it fails.
pub async fn services(command: &str, service: &str) {
    let output = tokio::process::Command::new(services_script())
        .args([command, service])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running dev/services {command} {service}: {e}"));
    assert!(
        output.status.success(),
        "dev/services {command} {service} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
