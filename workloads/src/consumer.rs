//! The consumer workload: a Kafka consumer group member that writes readings into Cassandra
//! and loses nothing.
//!
//! One [`SinkConsumer`] is one member of the group (default `sensor-temp-sink`) on the topic.
//! What it guarantees and how:
//!
//! * **At-least-once into the table, effectively exactly-once in it.** Auto-commit is on but
//!   the automatic offset *store* is off (`enable.auto.offset.store=false`): an offset is
//!   stored only when every message before it in its partition is done ([`crate::offsets`]),
//!   and only stored offsets are ever committed. A replay after a crash or a rebalance writes
//!   the same primary key `((sensor_id, day), event_time, seq)` with the same values, so the
//!   table ends up with each reading once.
//! * **Commit on revoke.** Before partitions leave this member the rebalance callback commits
//!   the stored offsets synchronously, so the next owner starts where this one stopped.
//! * **Nothing dropped silently.** A message that is not a reading ([`crate::event`]) goes to
//!   the dead-letter store ([`crate::dead_letter`]) with its coordinates and the reason, is
//!   counted, and the partition moves on; its offset is stored once the record is on disk.
//! * **Cassandra failing.** Failed writes are retried with jittered exponential backoff
//!   ([`crate::backoff`]) and never stored; the sink is reported unhealthy; the assigned
//!   partitions are paused (Kafka keeps fetching nothing, and polling continues so that
//!   rebalances are still served) instead of buffering; when a write succeeds again the sink
//!   is healthy and consumption resumes by itself. The session reconnects by itself.
//! * **Bounded.** At most `max_in_flight` writes at a time and at most `batch_size` received
//!   messages waiting for a write slot.
//! * **Graceful stop.** When `shutdown` completes the member stops fetching, finishes the
//!   writes in flight (retrying failures) within the grace period, commits, and leaves the
//!   group (closing the consumer); whatever could not be finished is not committed and will be
//!   replayed by the next owner.
//!
//! Cooperative-sticky assignment keeps a member's partitions in place when another joins or
//! leaves. Live numbers ([`ConsumerStats`]) go out on a `watch` channel through
//! [`ConsumerHandle`]; `ready` turns true once the member has reached Cassandra (schema in
//! place, statements prepared) and joined the group. This module must not know about Mesos.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::backoff::Backoff;
use crate::cassandra::{self, CassandraConfig, CassandraError, ReadingsTable};
use crate::dead_letter::{DeadLetter, DeadLetterStore};
use crate::event::{SensorReading, parse_reading};
use crate::kafka::log_to_tracing;
use crate::offsets::{OffsetTracker, Ticket};
use crate::pacing::{Pacer, TargetRate};
use crate::window::RollingWindow;

/// Default consumer group.
pub const DEFAULT_GROUP: &str = "sensor-temp-sink";

/// A waiting buffer that has stayed full this long means the sink is too slow: pause the
/// partitions so that polling (and so rebalancing) goes on without fetching more.
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// What the consumer needs.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Kafka bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// Topic to consume.
    pub topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Static group membership (`group.instance.id`), e.g. the slot name, if wanted. A static
    /// member that restarts within the session timeout gets its partitions back without a
    /// rebalance; it does not leave the group on stop.
    pub group_instance_id: Option<String>,
    /// Where and how to write.
    pub cassandra: CassandraConfig,
    /// Directory of the dead-letter store (the slot's volume).
    pub spool_dir: PathBuf,
    /// Most writes (rows or dead letters) in flight at once.
    pub max_in_flight: usize,
    /// Most messages taken from Kafka per poll, and most waiting for a write slot.
    pub batch_size: usize,
    /// Most messages handled per second (`None`: as fast as Cassandra takes them). A cap on
    /// what one consumer does, like a sink slower than a local Cassandra: demos and tests on
    /// one machine use it to make a burst need several consumers. Held back messages wait in
    /// Kafka (the partitions are paused), not in memory.
    pub max_rate: Option<f64>,
    /// How long a graceful stop may take in total.
    pub grace_period: Duration,
    /// How often stored offsets are committed (`auto.commit.interval.ms`).
    pub commit_interval: Duration,
    /// Kafka group session timeout: how soon a crashed member's partitions move.
    pub session_timeout: Duration,
    /// Retry delays of failed writes and of the first connection to Cassandra.
    pub backoff: Backoff,
    /// How often [`ConsumerStats`] are published.
    pub stats_interval: Duration,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Extra librdkafka properties (security, tuning); they override ours.
    pub kafka_properties: Vec<(String, String)>,
}

impl ConsumerConfig {
    /// Defaults: topic `sensor-temp`, group `sensor-temp-sink`, keyspace `sensors`
    /// (replication 1), 256 writes in flight, batches of 500, 30 s grace, 1 s commits.
    pub fn new(
        brokers: impl Into<String>,
        cassandra_contact_points: Vec<String>,
        spool_dir: impl Into<PathBuf>,
    ) -> Self {
        ConsumerConfig {
            brokers: brokers.into(),
            topic: crate::producer::DEFAULT_TOPIC.to_owned(),
            group_id: DEFAULT_GROUP.to_owned(),
            group_instance_id: None,
            cassandra: CassandraConfig::new(cassandra_contact_points),
            spool_dir: spool_dir.into(),
            max_in_flight: 256,
            batch_size: 500,
            max_rate: None,
            grace_period: Duration::from_secs(30),
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            stats_interval: Duration::from_secs(1),
            client_id: "fastdata-consumer".to_owned(),
            kafka_properties: Vec::new(),
        }
    }

    /// Checks what can be checked without a connection; the error says what to fix.
    pub fn validate(&self) -> Result<(), ConsumerError> {
        let fail = |m: String| Err(ConsumerError::Config(m));
        if self.brokers.trim().is_empty() {
            return fail(
                "no Kafka brokers given; set --kafka-brokers (e.g. 127.0.0.1:9092)".into(),
            );
        }
        if self.topic.trim().is_empty() {
            return fail("no topic given; set --topic".into());
        }
        if self.group_id.trim().is_empty() {
            return fail("no consumer group given; set --group".into());
        }
        self.cassandra.validate().map_err(ConsumerError::Config)?;
        if self.spool_dir.as_os_str().is_empty() {
            return fail("no spool directory given; set --spool-dir".into());
        }
        if self.max_in_flight == 0 {
            return fail("--max-in-flight must be at least 1".into());
        }
        if self.batch_size == 0 {
            return fail("--batch-size must be at least 1".into());
        }
        if let Some(rate) = self.max_rate {
            TargetRate::PerSecond(rate)
                .validate()
                .map_err(|e| ConsumerError::Config(format!("--max-rate: {e}")))?;
        }
        if self.grace_period < Duration::from_secs(1) {
            return fail("--grace-period must be at least 1s".into());
        }
        if self.commit_interval.is_zero() || self.stats_interval.is_zero() {
            return fail("the commit and stats intervals must be longer than zero".into());
        }
        if self.session_timeout < Duration::from_secs(6) {
            return fail(
                "--session-timeout must be at least 6s (Kafka's group.min.session.timeout.ms)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The librdkafka settings of the consumer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group_id)
            .set("client.id", &self.client_id)
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                self.commit_interval.as_millis().to_string(),
            )
            // The heart of at-least-once: only offsets we store get committed.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set("enable.partition.eof", "false");
        if let Some(id) = &self.group_instance_id {
            config.set("group.instance.id", id);
        }
        for (key, value) in &self.kafka_properties {
            config.set(key, value);
        }
        config
    }
}

/// What went wrong (Cassandra being down is not an error: the consumer waits and retries).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The configuration cannot work; the text says what to change.
    #[error("{0}")]
    Config(String),
    /// The Kafka client refused.
    #[error("{what} failed: {source}; check --kafka-brokers {brokers} and the Kafka settings")]
    Kafka {
        /// What was being done.
        what: String,
        /// The brokers.
        brokers: String,
        /// The client's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The dead-letter store cannot be opened.
    #[error("cannot open the dead-letter store in {path}: {source}; check --spool-dir")]
    DeadLetterStore {
        /// The spool directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Where the consumer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerState {
    /// Connecting to Cassandra, creating the schema, preparing statements.
    ConnectingToCassandra,
    /// Waiting for the group to assign partitions.
    JoiningGroup,
    /// Consuming.
    Running,
    /// Finishing writes, committing, leaving the group.
    Stopping,
    /// Done.
    Stopped,
}

/// Whether writes to Cassandra work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkStatus {
    /// Nothing written or failed yet.
    Unknown,
    /// The last write succeeded.
    Healthy,
    /// The last write (or connection attempt) failed.
    Unhealthy,
}

/// The sink's health as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkHealth {
    /// Current status.
    pub status: SinkStatus,
    /// When it last changed.
    pub since: DateTime<Utc>,
    /// The last failure, if the sink is unhealthy.
    pub last_error: Option<String>,
}

/// Live numbers for the executor to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerStats {
    /// Life cycle.
    pub state: ConsumerState,
    /// Reached Cassandra and joined the group (stays true until stopped).
    pub ready: bool,
    /// Messages handled (rows written + dead letters) per second over the last 10 s.
    pub events_per_sec: f64,
    /// Rows written (a replayed message counts again).
    pub rows_written: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
    /// Failed write attempts (each retry that fails counts).
    pub write_errors: u64,
    /// Median write latency over the last 10 s, milliseconds.
    pub write_latency_p50_ms: Option<f64>,
    /// 99th percentile write latency over the last 10 s, milliseconds.
    pub write_latency_p99_ms: Option<f64>,
    /// Partitions currently assigned to this member.
    pub assigned_partitions: Vec<i32>,
    /// Cassandra's health as this member sees it.
    pub sink: SinkHealth,
    /// Consumption paused (sink failing, or stopping).
    pub paused: bool,
    /// Writes in flight.
    pub in_flight: usize,
    /// Rebalances this member went through.
    pub rebalances: u64,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerReport {
    /// Rows written.
    pub rows_written: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
    /// Failed write attempts.
    pub write_errors: u64,
    /// Writes still unfinished when the grace period ran out (not committed: replayed later).
    pub abandoned: usize,
    /// The final commit succeeded (or there was nothing new to commit).
    pub committed: bool,
    /// The consumer closed (left the group) within the grace period.
    pub left_group: bool,
    /// From start to stop.
    pub ran_for: Duration,
}

/// The consumer ended before it was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the consumer stopped before it reached Cassandra and joined its group")]
pub struct NotReady;

/// Reads a running consumer's stats; cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    stats: watch::Receiver<ConsumerStats>,
}

impl ConsumerHandle {
    /// The latest stats.
    pub fn stats(&self) -> ConsumerStats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every new stats snapshot.
    pub fn watch_stats(&self) -> watch::Receiver<ConsumerStats> {
        self.stats.clone()
    }

    /// Completes when the consumer has reached Cassandra and joined its group (the moment
    /// for TASK_RUNNING), or fails if it stopped first.
    pub async fn ready(&self) -> Result<(), NotReady> {
        let mut rx = self.stats.clone();
        let stats = rx
            .wait_for(|s| s.ready || s.state == ConsumerState::Stopped)
            .await
            .map_err(|_| NotReady)?;
        if stats.ready { Ok(()) } else { Err(NotReady) }
    }
}

/// The consumer workload: `new`, take a `handle`, then `run` until shutdown.
#[derive(Debug)]
pub struct SinkConsumer {
    config: ConsumerConfig,
    stats: watch::Sender<ConsumerStats>,
}

impl SinkConsumer {
    /// Validates the configuration (no I/O yet).
    pub fn new(config: ConsumerConfig) -> Result<Self, ConsumerError> {
        config.validate()?;
        let (stats, _) = watch::channel(ConsumerStats {
            state: ConsumerState::ConnectingToCassandra,
            ready: false,
            events_per_sec: 0.0,
            rows_written: 0,
            dead_letters: 0,
            write_errors: 0,
            write_latency_p50_ms: None,
            write_latency_p99_ms: None,
            assigned_partitions: Vec::new(),
            sink: SinkHealth {
                status: SinkStatus::Unknown,
                since: Utc::now(),
                last_error: None,
            },
            paused: false,
            in_flight: 0,
            rebalances: 0,
        });
        Ok(SinkConsumer { config, stats })
    }

    /// A handle to read stats and wait for readiness.
    pub fn handle(&self) -> ConsumerHandle {
        ConsumerHandle {
            stats: self.stats.subscribe(),
        }
    }

    /// Consumes until `shutdown` completes, then stops gracefully within the grace period.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ConsumerReport, ConsumerError> {
        let started = Instant::now();
        let SinkConsumer { config, stats } = self;
        tokio::pin!(shutdown);
        let dead_letters = DeadLetterStore::open(&config.spool_dir).map_err(|source| {
            ConsumerError::DeadLetterStore {
                path: config.spool_dir.clone(),
                source,
            }
        })?;
        let mut sink = Sink::new(config, stats, dead_letters, started);
        let Some(table) = sink.connect_cassandra(shutdown.as_mut()).await else {
            return Ok(sink.finish_without_kafka());
        };
        sink.consume(table, shutdown).await
    }
}

/// Runs a consumer with a fresh [`SinkConsumer`]; see [`SinkConsumer::run`].
pub async fn run(
    config: ConsumerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ConsumerReport, ConsumerError> {
    SinkConsumer::new(config)?.run(shutdown).await
}

// ----------------------------------------------------------------------------- internals

/// A message taken from Kafka, owned (the borrowed one pins the consumer).
#[derive(Debug)]
struct Incoming {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
}

impl Incoming {
    fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Incoming {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
        }
    }
}

/// How one unit of work ended.
#[derive(Debug)]
enum Completion {
    Written {
        ticket: Ticket,
        latency: Duration,
    },
    WriteFailed {
        ticket: Ticket,
        reading: SensorReading,
        attempt: u32,
        error: Box<CassandraError>,
    },
    DeadLettered {
        ticket: Ticket,
    },
    DeadLetterFailed {
        ticket: Ticket,
        record: Box<DeadLetter>,
        attempt: u32,
        error: io::Error,
    },
}

type Work = Pin<Box<dyn Future<Output = Completion> + Send>>;

fn write_work(
    table: Arc<ReadingsTable>,
    ticket: Ticket,
    reading: SensorReading,
    attempt: u32,
    delay: Duration,
) -> Work {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let begun = Instant::now();
        match table.insert(&reading).await {
            Ok(()) => Completion::Written {
                ticket,
                latency: begun.elapsed(),
            },
            Err(error) => Completion::WriteFailed {
                ticket,
                reading,
                attempt,
                error: Box::new(error),
            },
        }
    })
}

fn dead_letter_work(
    store: DeadLetterStore,
    ticket: Ticket,
    record: Box<DeadLetter>,
    attempt: u32,
    delay: Duration,
) -> Work {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match store.append(&record).await {
            Ok(()) => Completion::DeadLettered { ticket },
            Err(error) => Completion::DeadLetterFailed {
                ticket,
                record,
                attempt,
                error,
            },
        }
    })
}

/// What the flow control decided for this turn of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    /// Keep the assigned partitions paused.
    pub pause: bool,
    /// Ask Kafka for messages (and rebalance events) this turn.
    pub poll: bool,
}

/// Flow control, pure. Pausing stops fetching while polling goes on (so the member keeps its
/// place in the group); not polling is the cheap backpressure for a short full buffer.
pub(crate) fn flow(
    waiting: usize,
    batch_size: usize,
    sink_healthy: bool,
    stopping: bool,
    backlog_for: Duration,
) -> Flow {
    let pause = stopping || !sink_healthy || backlog_for >= STALLED_AFTER;
    Flow {
        pause,
        poll: pause || waiting < batch_size,
    }
}

/// Whether a new unit of work may start: a free slot, and a healthy sink (or nothing in
/// flight, so that one write probes a failing sink).
pub(crate) fn may_start(in_flight: usize, max_in_flight: usize, sink_healthy: bool) -> bool {
    in_flight < max_in_flight && (sink_healthy || in_flight == 0)
}

#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    Failed(String),
}

/// The consumer's librdkafka context: rebalance callbacks run inside the consumer's poll,
/// that is inside our own `recv()`, and leave their news here for the loop.
struct SinkContext {
    topic: String,
    events: Mutex<Vec<RebalanceEvent>>,
    news: Notify,
}

impl SinkContext {
    fn push(&self, event: RebalanceEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
        self.news.notify_one();
    }

    fn take(&self) -> Vec<RebalanceEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, "Kafka consumer: {reason}");
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = self.partitions(tpl);
            // Commit what is stored before the partitions go to their next owner: the
            // auto-commit timer may not have run since the last rows were written.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(?partitions, "committed offsets on revoke"),
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                    tracing::debug!(?partitions, "nothing new to commit on revoke")
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?partitions, "commit on revoke failed; the next owner replays from the last commit")
                }
            }
            self.push(RebalanceEvent::Revoked(partitions));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.push(RebalanceEvent::Assigned(self.partitions(tpl))),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => self.push(RebalanceEvent::Failed(e.to_string())),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(
                error = %e, partitions = offsets.count(),
                "committing offsets failed; they are committed again on the next interval"
            ),
        }
    }
}

/// Tracks the sink's health; logs transitions once.
#[derive(Debug)]
struct Health {
    report: SinkHealth,
    unhealthy_since: Option<Instant>,
    failures_since_log: u64,
    last_log: Instant,
}

impl Health {
    fn new() -> Self {
        Health {
            report: SinkHealth {
                status: SinkStatus::Unknown,
                since: Utc::now(),
                last_error: None,
            },
            unhealthy_since: None,
            failures_since_log: 0,
            last_log: Instant::now(),
        }
    }

    fn is_healthy(&self) -> bool {
        self.report.status != SinkStatus::Unhealthy
    }

    fn succeeded(&mut self) {
        if self.report.status != SinkStatus::Healthy {
            if let Some(since) = self.unhealthy_since.take() {
                tracing::info!(
                    outage = ?since.elapsed(),
                    "Cassandra writes succeed again; resuming consumption"
                );
            }
            self.report = SinkHealth {
                status: SinkStatus::Healthy,
                since: Utc::now(),
                last_error: None,
            };
        }
    }

    /// Unhealthy, without the write-failure log lines (the caller logs).
    fn mark_failed(&mut self, error: &dyn std::fmt::Display) {
        if self.report.status != SinkStatus::Unhealthy {
            self.unhealthy_since = Some(Instant::now());
            self.report.status = SinkStatus::Unhealthy;
            self.report.since = Utc::now();
        }
        self.report.last_error = Some(error.to_string());
    }

    fn failed(&mut self, error: &dyn std::fmt::Display) {
        let text = error.to_string();
        if self.report.status != SinkStatus::Unhealthy {
            tracing::warn!(
                error = %text,
                "Cassandra writes failing; pausing consumption and retrying with backoff"
            );
            self.unhealthy_since = Some(Instant::now());
            self.report.status = SinkStatus::Unhealthy;
            self.report.since = Utc::now();
            self.failures_since_log = 0;
            self.last_log = Instant::now();
        } else {
            self.failures_since_log += 1;
            if self.last_log.elapsed() >= Duration::from_secs(10) {
                tracing::warn!(
                    error = %text,
                    failures = self.failures_since_log,
                    unhealthy_for = ?self.unhealthy_since.map(|s| s.elapsed()),
                    "Cassandra writes still failing"
                );
                self.failures_since_log = 0;
                self.last_log = Instant::now();
            }
        }
        self.report.last_error = Some(text);
    }
}

/// One run's state: the loop feeds it events and it carries out the decisions.
struct Sink {
    config: ConsumerConfig,
    stats_tx: watch::Sender<ConsumerStats>,
    dead_letter_store: DeadLetterStore,
    started: Instant,
    state: ConsumerState,
    ready: bool,
    health: Health,
    tracker: OffsetTracker,
    in_flight: FuturesUnordered<Work>,
    waiting: VecDeque<Incoming>,
    backlog_since: Option<Instant>,
    to_store: HashMap<i32, i64>,
    assigned: BTreeSet<i32>,
    paused: bool,
    window: RollingWindow,
    rows_written: u64,
    dead_letters: u64,
    write_errors: u64,
    rebalances: u64,
    dead_letter_log_budget: u32,
    /// The `max_rate` schedule, if there is one.
    pacer: Option<Pacer>,
}

impl Sink {
    fn new(
        config: ConsumerConfig,
        stats_tx: watch::Sender<ConsumerStats>,
        dead_letter_store: DeadLetterStore,
        started: Instant,
    ) -> Self {
        let config_rate = config.max_rate;
        Sink {
            config,
            stats_tx,
            dead_letter_store,
            started,
            state: ConsumerState::ConnectingToCassandra,
            ready: false,
            health: Health::new(),
            tracker: OffsetTracker::new(),
            in_flight: FuturesUnordered::new(),
            waiting: VecDeque::new(),
            backlog_since: None,
            to_store: HashMap::new(),
            assigned: BTreeSet::new(),
            paused: false,
            window: RollingWindow::ten_seconds(started),
            rows_written: 0,
            dead_letters: 0,
            write_errors: 0,
            rebalances: 0,
            dead_letter_log_budget: 10,
            pacer: config_rate.map(|rate| Pacer::new(TargetRate::PerSecond(rate), started)),
        }
    }

    fn publish(&self) {
        let now = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.stats_tx.send_replace(ConsumerStats {
            state: self.state,
            ready: self.ready,
            events_per_sec: self.window.rate(now),
            rows_written: self.rows_written,
            dead_letters: self.dead_letters,
            write_errors: self.write_errors,
            write_latency_p50_ms: self.window.latency_quantile(now, 0.5).map(ms),
            write_latency_p99_ms: self.window.latency_quantile(now, 0.99).map(ms),
            assigned_partitions: self.assigned.iter().copied().collect(),
            sink: self.health.report.clone(),
            paused: self.paused,
            in_flight: self.in_flight.len(),
            rebalances: self.rebalances,
        });
    }

    /// Connects, creates the schema and prepares the statements, retrying with backoff while
    /// Cassandra is unreachable. `None` if shutdown came first.
    async fn connect_cassandra(
        &mut self,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Arc<ReadingsTable>> {
        let cassandra = self.config.cassandra.clone();
        let mut attempt: u32 = 0;
        loop {
            let setup = async {
                let session = cassandra::connect(&cassandra).await?;
                cassandra::ensure_schema(&session, &cassandra.keyspace, &cassandra.replication)
                    .await?;
                ReadingsTable::prepare(session, &cassandra.keyspace).await
            };
            let result = tokio::select! {
                biased;
                () = shutdown.as_mut() => return None,
                result = setup => result,
            };
            match result {
                Ok(table) => {
                    tracing::info!(
                        keyspace = %cassandra.keyspace,
                        contact_points = %cassandra.contact_points.join(","),
                        "Cassandra reached; schema in place"
                    );
                    self.health.succeeded();
                    return Some(Arc::new(table));
                }
                Err(e) => {
                    self.health.mark_failed(&e);
                    self.publish();
                    let delay = self.config.backoff.delay_random(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(
                        error = %e, attempt, retry_in = ?delay,
                        "cannot set up the Cassandra sink yet; not joining the group until it works"
                    );
                    tokio::select! {
                        biased;
                        () = shutdown.as_mut() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    fn finish_without_kafka(mut self) -> ConsumerReport {
        self.state = ConsumerState::Stopped;
        self.publish();
        ConsumerReport {
            rows_written: 0,
            dead_letters: 0,
            write_errors: 0,
            abandoned: 0,
            committed: true,
            left_group: true,
            ran_for: self.started.elapsed(),
        }
    }

    async fn consume(
        mut self,
        table: Arc<ReadingsTable>,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<ConsumerReport, ConsumerError> {
        let kafka_error = |what: &str| {
            let what = what.to_owned();
            let brokers = self.config.brokers.clone();
            move |source| ConsumerError::Kafka {
                what,
                brokers,
                source: Box::new(source),
            }
        };
        let context = SinkContext {
            topic: self.config.topic.clone(),
            events: Mutex::new(Vec::new()),
            news: Notify::new(),
        };
        let consumer: StreamConsumer<SinkContext> = self
            .config
            .client_config()
            .create_with_context(context)
            .map_err(kafka_error("creating the Kafka consumer"))?;
        let consumer = Arc::new(consumer);
        consumer
            .subscribe(&[self.config.topic.as_str()])
            .map_err(kafka_error("subscribing to the topic"))?;
        self.state = ConsumerState::JoiningGroup;
        self.publish();
        tracing::info!(
            topic = %self.config.topic, group = %self.config.group_id,
            "joining the consumer group"
        );

        let mut stats_tick = tokio::time::interval(self.config.stats_interval);
        stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        enum Event<'a> {
            Shutdown,
            News,
            Done(Completion),
            Message(KafkaResult<BorrowedMessage<'a>>),
            Tick,
        }
        loop {
            self.apply_rebalances(&consumer);
            self.start_waiting(&table);
            self.store_offsets(&consumer);
            let now = Instant::now();
            let flow = flow(
                self.waiting.len(),
                self.config.batch_size,
                self.health.is_healthy(),
                false,
                self.backlog_since.map_or(Duration::ZERO, |s| now - s),
            );
            self.set_paused(&consumer, flow.pause);
            // Held back by `max_rate`: wake up when the next message may start.
            let paced = self
                .pacer
                .as_ref()
                .and_then(Pacer::next_due)
                .filter(|_| !self.waiting.is_empty());
            let event = tokio::select! {
                biased;
                () = shutdown.as_mut() => Event::Shutdown,
                () = consumer.context().news.notified() => Event::News,
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => Event::Done(done),
                () = tokio::time::sleep_until(paced.unwrap_or(now)), if paced.is_some() => Event::News,
                message = consumer.recv(), if flow.poll => Event::Message(message),
                _ = stats_tick.tick() => Event::Tick,
            };
            match event {
                Event::Shutdown => break,
                Event::News => {}
                Event::Done(done) => {
                    self.complete(&table, done);
                    // Take every other finished write now: one offset store for all of them.
                    while let Some(Some(done)) = self.in_flight.next().now_or_never() {
                        self.complete(&table, done);
                    }
                }
                Event::Message(first) => {
                    self.accept(first);
                    // Poll in batches: take what is already fetched, without waiting.
                    while self.waiting.len() < self.config.batch_size {
                        match consumer.recv().now_or_never() {
                            Some(message) => self.accept(message),
                            None => break,
                        }
                    }
                }
                Event::Tick => {
                    self.dead_letter_log_budget = 10;
                    self.publish();
                }
            }
        }
        self.stop(consumer, table).await
    }

    fn apply_rebalances(&mut self, consumer: &StreamConsumer<SinkContext>) {
        for event in consumer.context().take() {
            match event {
                RebalanceEvent::Assigned(partitions) => {
                    self.rebalances += 1;
                    self.assigned.extend(partitions.iter().copied());
                    tracing::info!(
                        added = ?partitions, assigned = ?self.assigned,
                        "partitions assigned"
                    );
                    if self.paused && !partitions.is_empty() {
                        // Newly assigned partitions start unpaused.
                        self.pause_resume(consumer, &partitions, true);
                    }
                    if !self.ready {
                        self.ready = true;
                        self.state = ConsumerState::Running;
                        tracing::info!("ready: Cassandra reached and group joined");
                    }
                    self.publish();
                }
                RebalanceEvent::Revoked(partitions) => {
                    self.rebalances += 1;
                    for p in &partitions {
                        self.assigned.remove(p);
                        self.tracker.revoke(*p);
                        self.to_store.remove(p);
                    }
                    self.waiting.retain(|m| !partitions.contains(&m.partition));
                    tracing::info!(
                        removed = ?partitions, assigned = ?self.assigned,
                        "partitions revoked"
                    );
                    self.publish();
                }
                RebalanceEvent::Failed(e) => tracing::warn!(error = %e, "rebalance failed"),
            }
        }
    }

    fn accept(&mut self, message: KafkaResult<BorrowedMessage<'_>>) {
        match message {
            Ok(m) => {
                self.waiting.push_back(Incoming::from_message(&m));
                if self.waiting.len() >= self.config.batch_size {
                    self.backlog_since.get_or_insert_with(Instant::now);
                }
            }
            Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
        }
    }

    fn start_waiting(&mut self, table: &Arc<ReadingsTable>) {
        let now = Instant::now();
        while may_start(
            self.in_flight.len(),
            self.config.max_in_flight,
            self.health.is_healthy(),
        ) {
            if let Some(pacer) = &mut self.pacer
                && pacer.due(now) == 0
            {
                break;
            }
            let Some(message) = self.waiting.pop_front() else {
                break;
            };
            self.start(table, &message);
            if let Some(pacer) = &mut self.pacer {
                pacer.release(1);
            }
        }
        if self.waiting.len() < self.config.batch_size {
            self.backlog_since = None;
        }
    }

    fn start(&mut self, table: &Arc<ReadingsTable>, m: &Incoming) {
        let ticket = self.tracker.start(m.partition, m.offset);
        match parse_reading(m.payload.as_deref().unwrap_or_default()) {
            Ok(reading) => {
                self.in_flight.push(write_work(
                    table.clone(),
                    ticket,
                    reading,
                    0,
                    Duration::ZERO,
                ));
            }
            Err(error) => {
                let record = DeadLetter::new(
                    &self.config.topic,
                    m.partition,
                    m.offset,
                    m.key.as_deref(),
                    m.payload.as_deref(),
                    &error,
                    Utc::now(),
                );
                if self.dead_letter_log_budget > 0 {
                    self.dead_letter_log_budget -= 1;
                    tracing::warn!(
                        partition = m.partition, offset = m.offset, reason = %error,
                        "not a reading; dead-lettered"
                    );
                }
                self.in_flight.push(dead_letter_work(
                    self.dead_letter_store.clone(),
                    ticket,
                    Box::new(record),
                    0,
                    Duration::ZERO,
                ));
            }
        }
    }

    fn complete(&mut self, table: &Arc<ReadingsTable>, done: Completion) {
        let now = Instant::now();
        match done {
            Completion::Written { ticket, latency } => {
                self.rows_written += 1;
                self.window.record_events(now, 1);
                self.window.record_latency(now, latency);
                self.health.succeeded();
                self.finish(ticket);
            }
            Completion::WriteFailed {
                ticket,
                reading,
                attempt,
                error,
            } => {
                self.write_errors += 1;
                self.health.failed(&error);
                if self.tracker.is_current(ticket) {
                    let delay = self.config.backoff.delay_random(attempt);
                    self.in_flight.push(write_work(
                        table.clone(),
                        ticket,
                        reading,
                        attempt.saturating_add(1),
                        delay,
                    ));
                }
                // Else the partition was revoked: its next owner replays the message.
            }
            Completion::DeadLettered { ticket } => {
                self.dead_letters += 1;
                self.window.record_events(now, 1);
                self.finish(ticket);
            }
            Completion::DeadLetterFailed {
                ticket,
                record,
                attempt,
                error,
            } => {
                tracing::error!(
                    error = %error, path = %self.dead_letter_store.path().display(),
                    "writing a dead letter failed; retrying (check the spool volume)"
                );
                if self.tracker.is_current(ticket) {
                    let delay = self.config.backoff.delay_random(attempt);
                    self.in_flight.push(dead_letter_work(
                        self.dead_letter_store.clone(),
                        ticket,
                        record,
                        attempt.saturating_add(1),
                        delay,
                    ));
                }
            }
        }
    }

    fn finish(&mut self, ticket: Ticket) {
        if let Some(position) = self.tracker.finish(ticket) {
            self.to_store.insert(ticket.partition, position);
        }
    }

    /// Hands the storable positions to librdkafka (auto-commit commits them).
    fn store_offsets(&mut self, consumer: &StreamConsumer<SinkContext>) {
        if self.to_store.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(self.to_store.len());
        for (partition, offset) in self.to_store.drain() {
            // Only fails for an invalid offset, which `OffsetTracker` never produces.
            let _ = tpl.add_partition_offset(&self.config.topic, partition, Offset::Offset(offset));
        }
        if let Err(e) = consumer.store_offsets(&tpl) {
            // `_STATE`: the partition was revoked meanwhile; its next owner replays.
            tracing::debug!(error = %e, "storing offsets failed");
        }
    }

    fn set_paused(&mut self, consumer: &StreamConsumer<SinkContext>, pause: bool) {
        if pause == self.paused {
            return;
        }
        let partitions: Vec<i32> = self.assigned.iter().copied().collect();
        self.pause_resume(consumer, &partitions, pause);
        self.paused = pause;
        tracing::info!(
            paused = pause,
            "consumption {}",
            if pause { "paused" } else { "resumed" }
        );
        self.publish();
    }

    fn pause_resume(
        &self,
        consumer: &StreamConsumer<SinkContext>,
        partitions: &[i32],
        pause: bool,
    ) {
        if partitions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for p in partitions {
            tpl.add_partition(&self.config.topic, *p);
        }
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, pause, "pausing or resuming partitions failed");
        }
    }

    /// Graceful stop: no new work, finish what is in flight within the grace period, store,
    /// commit, close (which revokes, commits again in the callback, and leaves the group).
    async fn stop(
        mut self,
        consumer: Arc<StreamConsumer<SinkContext>>,
        table: Arc<ReadingsTable>,
    ) -> Result<ConsumerReport, ConsumerError> {
        let grace = self.config.grace_period;
        let deadline = Instant::now() + grace;
        // Keep a share of the grace period for the commit and the close.
        let drain_deadline = deadline - (grace / 3).min(Duration::from_secs(5));
        tracing::info!(
            in_flight = self.in_flight.len(), grace = ?grace,
            "stopping: finishing writes in flight, then committing and leaving the group"
        );
        self.state = ConsumerState::Stopping;
        self.waiting.clear();
        self.set_paused(&consumer, true);
        self.publish();

        let drain = tokio::time::sleep_until(drain_deadline);
        tokio::pin!(drain);
        while !self.in_flight.is_empty() {
            self.apply_rebalances(&consumer);
            self.store_offsets(&consumer);
            tokio::select! {
                biased;
                () = &mut drain => break,
                Some(done) = self.in_flight.next() => self.complete(&table, done),
                // Serve rebalance callbacks; messages from before the pause are not started.
                _ = consumer.recv() => {}
            }
        }
        self.apply_rebalances(&consumer);
        self.store_offsets(&consumer);
        let abandoned = self.in_flight.len();
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "grace period ran out with writes unfinished; they are not committed and will be replayed"
            );
        }
        // Drop the abandoned writes now: they hold nothing the consumer needs.
        self.in_flight = FuturesUnordered::new();

        let committer = consumer.clone();
        let commit =
            tokio::task::spawn_blocking(move || committer.commit_consumer_state(CommitMode::Sync));
        let committed = match tokio::time::timeout_at(deadline, commit).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => true,
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "final commit failed");
                false
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("final commit did not finish within the grace period");
                false
            }
        };
        // Closing blocks (it waits for the group to acknowledge the leave): off the runtime.
        let close = tokio::task::spawn_blocking(move || drop(consumer));
        let left_group = matches!(tokio::time::timeout_at(deadline, close).await, Ok(Ok(())));
        if !left_group {
            tracing::warn!("leaving the group did not finish within the grace period");
        }
        self.assigned.clear();
        self.state = ConsumerState::Stopped;
        self.publish();
        let report = ConsumerReport {
            rows_written: self.rows_written,
            dead_letters: self.dead_letters,
            write_errors: self.write_errors,
            abandoned,
            committed,
            left_group,
            ran_for: self.started.elapsed(),
        };
        tracing::info!(?report, "consumer stopped");
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_control() {
        let s = Duration::from_secs;
        // (waiting, batch, healthy, stopping, backlog_for) -> (pause, poll)
        let table = [
            ((0, 500, true, false, s(0)), (false, true)),
            ((499, 500, true, false, s(0)), (false, true)),
            // Buffer full: stop polling for a moment (cheap backpressure) ...
            ((500, 500, true, false, s(1)), (false, false)),
            // ... but not for long: pause and keep polling so the group is served.
            ((500, 500, true, false, s(5)), (true, true)),
            // Sink failing: pause (no buffering), keep polling.
            ((0, 500, false, false, s(0)), (true, true)),
            ((500, 500, false, false, s(0)), (true, true)),
            // Stopping: pause.
            ((0, 500, true, true, s(0)), (true, true)),
        ];
        for ((waiting, batch, healthy, stopping, backlog), (pause, poll)) in table {
            assert_eq!(
                flow(waiting, batch, healthy, stopping, backlog),
                Flow { pause, poll },
                "waiting {waiting} healthy {healthy} stopping {stopping} backlog {backlog:?}"
            );
        }
    }

    #[test]
    fn starting_work() {
        assert!(may_start(0, 4, true));
        assert!(may_start(3, 4, true));
        assert!(!may_start(4, 4, true));
        // A failing sink gets one probe at a time.
        assert!(may_start(0, 4, false));
        assert!(!may_start(1, 4, false));
    }

    #[test]
    fn kafka_settings_keep_at_least_once() {
        let mut config = ConsumerConfig::new("b:9092", vec!["c:9042".into()], "/tmp/spool");
        config.group_instance_id = Some("slot-3".into());
        let c = config.client_config();
        assert_eq!(c.get("enable.auto.commit"), Some("true"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("group.id"), Some(DEFAULT_GROUP));
        assert_eq!(c.get("group.instance.id"), Some("slot-3"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn config_errors_say_what_to_fix() {
        let ok = ConsumerConfig::new("b:9092", vec!["c:9042".into()], "/tmp/spool");
        assert!(ok.validate().is_ok());
        let mut no_points = ok.clone();
        no_points.cassandra.contact_points.clear();
        let mut bad_keyspace = ok.clone();
        bad_keyspace.cassandra.keyspace = "my-keyspace".into();
        let cases = [
            (no_points, "no Cassandra contact points"),
            (bad_keyspace, "keyspace \"my-keyspace\" is not a valid name"),
            (
                ConsumerConfig {
                    max_in_flight: 0,
                    ..ok.clone()
                },
                "--max-in-flight must be at least 1",
            ),
            (
                ConsumerConfig {
                    grace_period: Duration::from_millis(10),
                    ..ok.clone()
                },
                "--grace-period must be at least 1s",
            ),
            (
                ConsumerConfig {
                    session_timeout: Duration::from_secs(1),
                    ..ok
                },
                "--session-timeout must be at least 6s",
            ),
        ];
        for (config, start) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.starts_with(start), "{message}");
        }
    }

    #[test]
    fn stats_serialise_for_the_executor() {
        let consumer = SinkConsumer::new(ConsumerConfig::new(
            "b:9092",
            vec!["c:9042".into()],
            "/tmp/x",
        ))
        .unwrap();
        let json = serde_json::to_value(consumer.handle().stats()).unwrap();
        assert_eq!(json["state"], "connecting_to_cassandra");
        assert_eq!(json["sink"]["status"], "unknown");
        assert_eq!(json["ready"], false);
    }
}
