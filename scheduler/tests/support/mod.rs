//! Helpers for the tests and benchmarks that need the local Kafka (`dev/services up kafka`):
//! topics, records and commits set up through rdkafka, and Kafka's own consumer-group tool.
//!
//! Shared by `tests/kafka_lag.rs` and `examples/lag_bench.rs` (through `#[path]`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The class of Kafka's consumer-group tool (`kafka-consumer-groups.sh`) in Kafka 4.x.
pub const CONSUMER_GROUP_COMMAND: &str =
    "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

/// Kafka's bootstrap servers from `FASTDATA_KAFKA_BROKERS` (default `127.0.0.1:9092`); panics
/// with instructions when nothing listens there.
pub fn require_kafka() -> String {
    let brokers =
        std::env::var("FASTDATA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let first = brokers.split(',').next().unwrap_or_default().to_owned();
    let reachable = first.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    });
    assert!(
        reachable,
        "Kafka is not reachable at {first} (FASTDATA_KAFKA_BROKERS). Start it with \
         `dev/services up kafka` (then `eval \"$(dev/services env)\"`), or point \
         FASTDATA_KAFKA_BROKERS at a running Kafka."
    );
    brokers
}

/// A name unique to this run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating the Kafka admin client")
}

/// Creates `topic` with `partitions` partitions and waits until its metadata shows them all
/// with a leader.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin = admin(brokers)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .context("CreateTopics")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("creating topic {name}: {code}");
        }
    }
    wait_for_partitions(brokers, topic, partitions).await
}

/// Deletes `topic` and `group`, best effort (leaves the local Kafka as it was).
pub async fn clean_up(brokers: &str, topic: &str, group: &str) {
    let Ok(admin) = admin(brokers) else {
        return;
    };
    let options = AdminOptions::new();
    let _ = admin.delete_groups(&[group], &options).await;
    let _ = admin.delete_topics(&[topic], &options).await;
}

/// Adds partitions to `topic` until it has `total`.
pub async fn add_partitions(brokers: &str, topic: &str, total: usize) -> Result<()> {
    let admin = admin(brokers)?;
    let results = admin
        .create_partitions(&[NewPartitions::new(topic, total)], &AdminOptions::new())
        .await
        .context("CreatePartitions")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("adding partitions to {name}: {code}");
        }
    }
    wait_for_partitions(brokers, topic, total as i32).await
}

async fn wait_for_partitions(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating a metadata client")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .context("metadata")?;
        let ready = metadata.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} did not show {partitions} partitions with leaders within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produces `counts[p]` records to partition `p` and waits until all are acknowledged.
pub fn produce(brokers: &str, topic: &str, counts: &BTreeMap<i32, usize>) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .context("creating the producer")?;
    for (&partition, &count) in counts {
        for i in 0..count {
            let payload = format!("{{\"seq\":{i}}}");
            let mut record = BaseRecord::<(), str>::to(topic)
                .partition(partition)
                .payload(payload.as_str());
            // The queue may fill up with many partitions: wait and retry.
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((error, returned)) => {
                        ensure!(
                            error.rdkafka_error_code()
                                == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                            "producing to {topic}/{partition}: {error}"
                        );
                        record = returned;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the producer")?;
    Ok(())
}

/// Commits `offsets` for `group` as a standalone (never subscribed) consumer, so the group
/// stays without members.
pub fn commit(brokers: &str, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the committing consumer")?;
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .context("building the commit")?;
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .with_context(|| format!("committing offsets for group {group}"))?;
    Ok(())
}

/// The Java classpath of the local Kafka: `FASTDATA_KAFKA_CLASSPATH`, else what
/// `dev/services classpath kafka` prints.
pub fn kafka_classpath() -> Result<String> {
    if let Ok(classpath) = std::env::var("FASTDATA_KAFKA_CLASSPATH") {
        return Ok(classpath);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dev/services");
    let output = Command::new(&script)
        .args(["classpath", "kafka"])
        .output()
        .with_context(|| format!("running {} classpath kafka", script.display()))?;
    ensure!(
        output.status.success(),
        "`dev/services classpath kafka` failed ({}): {}; run `dev/services up kafka` first, \
         or set FASTDATA_KAFKA_CLASSPATH",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let classpath = String::from_utf8(output.stdout)?.trim().to_owned();
    ensure!(
        !classpath.is_empty(),
        "`dev/services classpath kafka` printed nothing"
    );
    Ok(classpath)
}

/// One row of `ConsumerGroupCommand --describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedPartition {
    /// `CURRENT-OFFSET`, `None` for `-`.
    pub current: Option<i64>,
    /// `LOG-END-OFFSET`.
    pub log_end: Option<i64>,
    /// `LAG`, `None` for `-`.
    pub lag: Option<i64>,
}

/// Runs Kafka's consumer-group tool: `--describe --group GROUP`. Returns the rows of `topic`
/// by partition, and the raw output.
pub fn describe_group(
    classpath: &str,
    brokers: &str,
    group: &str,
    topic: &str,
) -> Result<(BTreeMap<i32, DescribedPartition>, String)> {
    let output = Command::new("java")
        .args(["-cp", classpath, CONSUMER_GROUP_COMMAND])
        .args([
            "--bootstrap-server",
            brokers,
            "--describe",
            "--group",
            group,
        ])
        .output()
        .context("running java (Java 17+ must be on PATH)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "ConsumerGroupCommand failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((parse_describe(&stdout, topic)?, stdout))
}

/// Parses the `--describe` table (header `GROUP TOPIC PARTITION CURRENT-OFFSET
/// LOG-END-OFFSET LAG ...`), by column name.
pub fn parse_describe(stdout: &str, topic: &str) -> Result<BTreeMap<i32, DescribedPartition>> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .find(|l| l.split_whitespace().next() == Some("GROUP"))
        .with_context(|| format!("no table header in:\n{stdout}"))?
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no column {name} in {header:?}"))
    };
    let (c_topic, c_partition) = (column("TOPIC")?, column("PARTITION")?);
    let (c_current, c_end, c_lag) = (
        column("CURRENT-OFFSET")?,
        column("LOG-END-OFFSET")?,
        column("LAG")?,
    );
    let number = |cell: &str| -> Result<Option<i64>> {
        if cell == "-" {
            Ok(None)
        } else {
            Ok(Some(
                cell.parse()
                    .with_context(|| format!("not a number: {cell}"))?,
            ))
        }
    };
    let mut rows = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.get(c_topic) != Some(&topic) {
            continue;
        }
        let partition: i32 = cells[c_partition].parse()?;
        rows.insert(
            partition,
            DescribedPartition {
                current: number(cells[c_current])?,
                log_end: number(cells[c_end])?,
                lag: number(cells[c_lag])?,
            },
        );
    }
    Ok(rows)
}

#[test]
fn parses_the_describe_table() {
    let out = "\n\
Consumer group 'g' has no active members.\n\
\n\
GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
g               t               1          10              25              15              -               -               -\n\
g               t               0          15              15              0               -               -               -\n\
g               other           0          1               2               1               -               -               -\n\
g               t               2          -               35              -               c-1             /127.0.0.1      c\n";
    let rows = parse_describe(out, "t").expect("parses");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[&1],
        DescribedPartition {
            current: Some(10),
            log_end: Some(25),
            lag: Some(15)
        }
    );
    assert_eq!(rows[&2].current, None);
}
