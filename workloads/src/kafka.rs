//! Kafka plumbing shared by the workloads: librdkafka's logs into `tracing`, topic creation.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Forwards one librdkafka log line to `tracing` (called from librdkafka's threads).
pub(crate) fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// What [`ensure_topic`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOutcome {
    /// The topic was created.
    Created,
    /// It existed already (its partition count is left as it is).
    Existed,
}

/// Creates `topic` with `partitions` partitions if it does not exist. `replication_factor`
/// `None` means the broker's `default.replication.factor` (KIP-464, Kafka 2.4+).
pub async fn ensure_topic(
    client_config: &ClientConfig,
    topic: &str,
    partitions: i32,
    replication_factor: Option<i16>,
    timeout: Duration,
) -> Result<TopicOutcome, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config.create()?;
    let replication = TopicReplication::Fixed(replication_factor.map_or(-1, i32::from));
    let new_topic = NewTopic::new(topic, partitions, replication);
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let results = admin.create_topics([&new_topic], &options).await?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(TopicOutcome::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(TopicOutcome::Existed),
        Some(Err((_, code))) => Err(KafkaError::AdminOp(code)),
        None => Err(KafkaError::AdminOpCreation(
            "no result for the topic creation request".to_owned(),
        )),
    }
}
