//! Kafka set-up for end-to-end tests: topics, and counting what was produced.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// An admin client for `brokers`, and options that wait up to 30 s for an operation.
fn admin(brokers: &str) -> Result<(AdminClient<DefaultClientContext>, AdminOptions), String> {
    let admin = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client for {brokers}: {e}"))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    Ok((admin, options))
}

/// Creates `topic` with `partitions` partitions (replication 1) and waits until every
/// partition has a leader; panics if it cannot.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    if let Err(e) = try_create_topic(brokers, topic, partitions).await {
        panic!("{e}");
    }
}

/// [`create_topic`], with the failure as a sentence.
pub async fn try_create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let (admin, options) = admin(brokers)?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .map_err(|e| format!("creating topic {topic} on {brokers}: {e}"))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(format!("creating topic {name}: {code}"));
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer for {brokers}: {e}"))?;
    for _ in 0..120 {
        if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = metadata.topics().first()
            && t.partitions().len() == partitions as usize
            && t.partitions().iter().all(|p| p.leader() >= 0)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "topic {topic} has no leader for all {partitions} partitions after 30 s"
    ))
}

/// Deletes `topic`.
pub async fn delete_topic(brokers: &str, topic: &str) -> Result<(), String> {
    let (admin, options) = admin(brokers)?;
    let results = admin
        .delete_topics(&[topic], &options)
        .await
        .map_err(|e| format!("deleting topic {topic}: {e}"))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(format!("deleting topic {name}: {code}"));
        }
    }
    Ok(())
}

/// Deletes the consumer group `group` (it must have no members).
pub async fn delete_group(brokers: &str, group: &str) -> Result<(), String> {
    let (admin, options) = admin(brokers)?;
    let results = admin
        .delete_groups(&[group], &options)
        .await
        .map_err(|e| format!("deleting consumer group {group}: {e}"))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(format!("deleting consumer group {name}: {code}"));
        }
    }
    Ok(())
}

/// Sum of the log-end offsets of every partition of `topic`: the events produced to it;
/// panics if they cannot be read.
pub fn produced(brokers: &str, topic: &str) -> i64 {
    try_produced(brokers, topic).unwrap_or_else(|e| panic!("{e}"))
}

/// [`produced`], with the failure as a sentence. Blocking (rdkafka's metadata and watermark
/// calls): async callers run it with `spawn_blocking`.
pub fn try_produced(brokers: &str, topic: &str) -> Result<i64, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer for {brokers}: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("reading the metadata of topic {topic}: {e}"))?;
    let topic_meta = metadata
        .topics()
        .first()
        .ok_or_else(|| format!("Kafka does not know topic {topic}"))?;
    let mut total = 0;
    for p in topic_meta.partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .map_err(|e| format!("reading the offsets of {topic}/{}: {e}", p.id()))?;
        total += high;
    }
    Ok(total)
}
