//! The I/O half of the lag monitor: one [`OffsetSample`] per call, read from Kafka with
//! rdkafka.
//!
//! Per sample, whatever the partition count:
//!
//! 1. one `Metadata` request for the topic (partitions come and go);
//! 2. one `OffsetFetch` to the group coordinator for the committed offsets of every partition
//!    (`committed_offsets` with the whole partition list);
//! 3. two `ListOffsets` requests per partition leader, sent side by side: log end (timestamp
//!    `-1`, `LATEST`) and log start (timestamp `-2`, `EARLIEST`). rdkafka 0.39 does not expose the admin
//!    `ListOffsets` API, and `fetch_watermarks` costs one request per partition; but
//!    `offsets_for_times` hands the whole partition list to librdkafka's
//!    `rd_kafka_offsets_for_times`, which groups the partitions by leader and sends one
//!    `ListOffsets` request per leader, and the protocol reads the timestamps `-1`/`-2` as
//!    latest/earliest. The request carries the client's `isolation.level`, so with
//!    `read_committed` the end offset is the last stable offset;
//! 4. the group's state and member count (`ListGroups` to each broker, then `DescribeGroups`),
//!    best effort: a failure leaves the state unknown rather than failing the sample. rdkafka
//!    0.39 has no `ConsumerGroupDescribe`, so this sees classic-protocol groups only; for a
//!    KIP-848 group (`group.protocol=consumer`) the state is unknown, and rebalances are
//!    then known only from the scheduler's own count and the policy's cooldown.
//!
//! Committed offsets are read before end offsets, so a lag is never negative because of the
//! order of the reads. The client uses the monitored group's id only to find its coordinator:
//! it never subscribes, so it never joins the group, and auto-commit is off.
//!
//! Every librdkafka call blocks, so [`KafkaOffsetSampler::sample`] runs them on tokio's
//! blocking pool, bounded by a timeout, and refuses to start a sample while the previous one is
//! still running (slow brokers cannot pile up blocked threads).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::observation::{GroupPhase, GroupState, OffsetSample, PartitionOffsets};

/// What to sample and how.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Topic the group consumes.
    pub topic: String,
    /// Consumer group whose committed offsets are read.
    pub group: String,
    /// The group reads with `isolation.level=read_committed`: measure lag against the last
    /// stable offset instead of the high watermark (else a transactional topic shows a
    /// permanent lag of one commit marker per partition; KEDA #5675).
    pub read_committed: bool,
    /// Timeout of each librdkafka call (default 5 s).
    pub request_timeout: Duration,
    /// Timeout of a whole sample (default 10 s).
    pub sample_timeout: Duration,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`, ...), passed
    /// through as they are.
    pub client_properties: Vec<(String, String)>,
}

impl SamplerConfig {
    /// A configuration with the default timeouts and no extra properties.
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        group: impl Into<String>,
    ) -> SamplerConfig {
        SamplerConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            group: group.into(),
            read_committed: false,
            request_timeout: Duration::from_secs(5),
            sample_timeout: Duration::from_secs(10),
            client_properties: Vec::new(),
        }
    }
}

/// Why a sample failed. The messages name the brokers, topic or group and say what to check.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The client could not be created (bad property).
    #[error(
        "cannot create the Kafka client for brokers {brokers}: {source}; check the Kafka client properties"
    )]
    Client {
        /// Bootstrap servers.
        brokers: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// No metadata for the topic.
    #[error(
        "Kafka brokers {brokers} did not return metadata for topic {topic}: {source}; check that the brokers are up and --kafka-brokers is right"
    )]
    Metadata {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// The topic does not exist (or has no partitions).
    #[error(
        "topic {topic} does not exist on Kafka brokers {brokers} ({detail}); create it or check the topic name"
    )]
    TopicNotFound {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
        /// What the broker said.
        detail: String,
    },
    /// The group coordinator did not return the committed offsets.
    #[error(
        "reading the committed offsets of group {group} on topic {topic} failed: {source}; the group coordinator may be unavailable"
    )]
    Committed {
        /// Group.
        group: String,
        /// Topic.
        topic: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// A `ListOffsets` round failed as a whole.
    #[error(
        "listing the {which} offsets of topic {topic} failed: {source}; a partition leader may be unavailable"
    )]
    ListOffsets {
        /// `log-end` or `log-start`.
        which: &'static str,
        /// Topic.
        topic: String,
        /// librdkafka's error.
        source: Box<KafkaError>,
    },
    /// Some partitions came back without an offset.
    #[error("topic {topic}: no {which} offset for partition(s) {partitions}: {detail}")]
    PartitionOffsets {
        /// `committed`, `log-end` or `log-start`.
        which: &'static str,
        /// Topic.
        topic: String,
        /// The partitions, comma-separated (at most 10 shown).
        partitions: String,
        /// The first partition's error.
        detail: String,
    },
    /// The sample took longer than its timeout.
    #[error(
        "sampling offsets of topic {topic} from Kafka brokers {brokers} took longer than {timeout:?}; check that the brokers are reachable"
    )]
    Timeout {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The previous sample is still blocked in librdkafka.
    #[error(
        "the previous offset sample from Kafka brokers {brokers} is still running; the brokers are slow or unreachable"
    )]
    Busy {
        /// Bootstrap servers.
        brokers: String,
    },
    /// The blocking task panicked or was cancelled.
    #[error("the offset sampling task failed: {0}")]
    Task(String),
}

/// Reads committed and log offsets of one group on one topic.
#[derive(Clone)]
pub struct KafkaOffsetSampler {
    consumer: Arc<BaseConsumer>,
    config: Arc<SamplerConfig>,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for KafkaOffsetSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOffsetSampler")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .field("group", &self.config.group)
            .finish_non_exhaustive()
    }
}

impl KafkaOffsetSampler {
    /// Creates the client. Does not contact the brokers yet.
    pub fn new(config: SamplerConfig) -> Result<KafkaOffsetSampler, SampleError> {
        let timeout_ms = config.request_timeout.as_millis().to_string();
        let mut client = ClientConfig::new();
        for (key, value) in &config.client_properties {
            client.set(key, value);
        }
        client
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group)
            .set("client.id", "fastdata-lag-monitor")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "isolation.level",
                if config.read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .set("socket.timeout.ms", &timeout_ms)
            .set("allow.auto.create.topics", "false");
        let consumer: BaseConsumer = client.create().map_err(|source| SampleError::Client {
            brokers: config.brokers.clone(),
            source: Box::new(source),
        })?;
        Ok(KafkaOffsetSampler {
            consumer: Arc::new(consumer),
            config: Arc::new(config),
            in_flight: Arc::new(Semaphore::new(1)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Takes one sample on the blocking pool, within `sample_timeout`.
    pub async fn sample(&self) -> Result<OffsetSample, SampleError> {
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| SampleError::Busy {
                brokers: self.config.brokers.clone(),
            })?;
        let this = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.sample_blocking()
        });
        match tokio::time::timeout(self.config.sample_timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(SampleError::Task(join.to_string())),
            Err(_) => Err(SampleError::Timeout {
                brokers: self.config.brokers.clone(),
                topic: self.config.topic.clone(),
                timeout: self.config.sample_timeout,
            }),
        }
    }

    /// Takes one sample on the calling thread. Blocks for up to a few request timeouts; call
    /// it only from a blocking context.
    pub fn sample_blocking(&self) -> Result<OffsetSample, SampleError> {
        let config = &*self.config;
        let timeout = config.request_timeout;
        // Serve (and drop) queued client events, such as broker-down errors; this client
        // never receives messages.
        while let Some(event) = self.consumer.poll(Duration::ZERO) {
            if let Err(error) = event {
                tracing::debug!(brokers = %config.brokers, error = %error, "lag monitor client event");
            }
        }

        let partitions = self.partitions(timeout)?;

        let mut list = TopicPartitionList::with_capacity(partitions.len());
        for &partition in &partitions {
            list.add_partition(&config.topic, partition);
        }
        let committed = self
            .consumer
            .committed_offsets(list.clone(), timeout)
            .map_err(|source| SampleError::Committed {
                group: config.group.clone(),
                topic: config.topic.clone(),
                source: Box::new(source),
            })?;
        let committed = read_offsets(&config.topic, "committed", &committed, |o| match o {
            Offset::Offset(n) => Some(Some(n)),
            // librdkafka reports "no committed offset" as OFFSET_INVALID.
            Offset::Invalid => Some(None),
            _ => None,
        })?;

        let at = Instant::now();
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // The two ListOffsets rounds are independent: run them side by side.
        let (log_end, log_start) = std::thread::scope(|scope| {
            let start =
                scope.spawn(|| self.list_offsets(&list, Offset::Beginning, "log-start", timeout));
            let end = self.list_offsets(&list, Offset::End, "log-end", timeout);
            let start = start
                .join()
                .map_err(|_| SampleError::Task("the log-start offsets thread panicked".into()))?;
            Ok::<_, SampleError>((end?, start?))
        })?;

        let group = self.group_state(timeout);

        let partitions = partitions
            .iter()
            .map(|&partition| PartitionOffsets {
                partition,
                committed: committed.get(&partition).copied().flatten(),
                log_start: log_start.get(&partition).copied().unwrap_or(0),
                log_end: log_end.get(&partition).copied().unwrap_or(0),
            })
            .collect();
        Ok(OffsetSample {
            at,
            at_unix_ms,
            partitions,
            group,
        })
    }

    fn partitions(&self, timeout: Duration) -> Result<Vec<i32>, SampleError> {
        let config = &*self.config;
        let metadata = self
            .consumer
            .fetch_metadata(Some(&config.topic), timeout)
            .map_err(|source| SampleError::Metadata {
                brokers: config.brokers.clone(),
                topic: config.topic.clone(),
                source: Box::new(source),
            })?;
        let not_found = |detail: String| SampleError::TopicNotFound {
            brokers: config.brokers.clone(),
            topic: config.topic.clone(),
            detail,
        };
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic)
            .ok_or_else(|| not_found("not in the metadata response".into()))?;
        if let Some(error) = topic.error() {
            return Err(not_found(format!(
                "{:?}",
                rdkafka::error::RDKafkaErrorCode::from(error)
            )));
        }
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        if partitions.is_empty() {
            return Err(not_found("no partitions".into()));
        }
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// One `offsets_for_times` call: one `ListOffsets` request per partition leader.
    fn list_offsets(
        &self,
        partitions: &TopicPartitionList,
        which_offset: Offset,
        which: &'static str,
        timeout: Duration,
    ) -> Result<std::collections::BTreeMap<i32, i64>, SampleError> {
        let topic = &self.config.topic;
        let mut query = partitions.clone();
        query
            .set_all_offsets(which_offset)
            .map_err(|source| SampleError::ListOffsets {
                which,
                topic: topic.clone(),
                source: Box::new(source),
            })?;
        let answer = self
            .consumer
            .offsets_for_times(query, timeout)
            .map_err(|source| SampleError::ListOffsets {
                which,
                topic: topic.clone(),
                source: Box::new(source),
            })?;
        read_offsets(topic, which, &answer, |o| match o {
            Offset::Offset(n) => Some(n),
            _ => None,
        })
    }

    fn group_state(&self, timeout: Duration) -> Option<GroupState> {
        let group = &self.config.group;
        match self.consumer.fetch_group_list(Some(group), timeout) {
            Ok(list) => list
                .groups()
                .iter()
                .find(|g| g.name() == group)
                .map(|g| GroupState {
                    phase: GroupPhase::from_kafka(g.state()),
                    members: g.members().len() as u32,
                })
                // `Dead` is ambiguous: a group that does not exist, or one that uses the
                // KIP-848 protocol (`group.protocol=consumer`), which the classic
                // DescribeGroups cannot see (Kafka 4.4 answers Dead with no members while it
                // has members). Unknown is the honest answer.
                .filter(|g| g.phase != GroupPhase::Dead),
            Err(error) => {
                tracing::debug!(group = %group, error = %error, "cannot describe consumer group");
                None
            }
        }
    }
}

/// Reads one offset per partition from an answered list; every partition must have one.
fn read_offsets<T>(
    topic: &str,
    which: &'static str,
    list: &TopicPartitionList,
    read: impl Fn(Offset) -> Option<T>,
) -> Result<std::collections::BTreeMap<i32, T>, SampleError> {
    let mut offsets = std::collections::BTreeMap::new();
    let mut missing = Vec::new();
    let mut detail = None;
    for element in list.elements() {
        let value = match element.error() {
            Ok(()) => read(element.offset()),
            Err(error) => {
                detail.get_or_insert_with(|| error.to_string());
                None
            }
        };
        match value {
            Some(v) => {
                offsets.insert(element.partition(), v);
            }
            None => {
                detail.get_or_insert_with(|| format!("unexpected offset {:?}", element.offset()));
                missing.push(element.partition());
            }
        }
    }
    if missing.is_empty() {
        return Ok(offsets);
    }
    let shown: Vec<String> = missing.iter().take(10).map(i32::to_string).collect();
    let more = if missing.len() > 10 {
        format!(" and {} more", missing.len() - 10)
    } else {
        String::new()
    };
    Err(SampleError::PartitionOffsets {
        which,
        topic: topic.to_owned(),
        partitions: format!("{}{more}", shown.join(", ")),
        detail: detail.unwrap_or_default(),
    })
}
