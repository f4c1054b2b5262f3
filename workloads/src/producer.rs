//! The producer workload: simulated sensors publishing readings to Kafka at a target rate.
//!
//! `N` sensors (`sensor-0` … `sensor-{N-1}`) each random-walk a temperature; they take turns,
//! so every sensor publishes `rate / N` readings per second. Each reading goes to the topic
//! (created with the configured partition count if missing) with the sensor id as key (all of
//! a sensor's readings land in one partition, in order) and the JSON value of
//! [`crate::event`]. `seq` starts at the producer's start time in microseconds since the epoch
//! and increases by one per reading, so it keeps increasing across producer restarts.
//!
//! Kafka settings: idempotent producer, `acks=all`, and the `murmur2_random` partitioner, so a
//! key lands in the same partition as with the Java client. The rate (see [`crate::pacing`])
//! can be changed while running through [`ProducerHandle::set_rate`]. On stop the producer
//! flushes (bounded by the flush timeout) and reports how many events Kafka acknowledged.
//!
//! This module must not know about Mesos: the executor drives it through [`SensorProducer`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::event::SensorReading;
use crate::kafka::{TopicOutcome, ensure_topic, log_to_tracing};
pub use crate::pacing::TargetRate;
use crate::pacing::{MAX_CATCH_UP, Pacer};
use crate::window::RollingWindow;

/// Default topic.
pub const DEFAULT_TOPIC: &str = "sensor-temp";

/// Events sent between two looks at the shutdown signal, the rate and the clock.
const CHUNK: u64 = 1024;

/// What the producer needs.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Kafka bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// Topic to publish to.
    pub topic: String,
    /// Number of simulated sensors.
    pub sensors: u32,
    /// Initial target rate (change it later with [`ProducerHandle::set_rate`]).
    pub rate: TargetRate,
    /// Partitions of the topic if this creates it.
    pub partitions: i32,
    /// Replication factor of the topic if this creates it; `None`: the broker's default.
    pub replication_factor: Option<i16>,
    /// Stop by itself after this many events (tests and benchmarks).
    pub max_events: Option<u64>,
    /// How long the final flush may wait for acknowledgements.
    pub flush_timeout: Duration,
    /// How long creating the topic may take before the brokers count as unreachable.
    pub admin_timeout: Duration,
    /// How often [`ProducerStats`] are published.
    pub stats_interval: Duration,
    /// Seed of the random walks (`None`: random).
    pub seed: Option<u64>,
    /// First `seq` of every sensor (`None`: the start time in microseconds since the epoch).
    pub first_seq: Option<i64>,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Extra librdkafka properties (security, tuning); they override ours.
    pub kafka_properties: Vec<(String, String)>,
}

impl ProducerConfig {
    /// Defaults: topic `sensor-temp`, 50 sensors at 50 events/s (the original's), 12
    /// partitions, the broker's replication factor, 30 s flush timeout.
    pub fn new(brokers: impl Into<String>) -> Self {
        ProducerConfig {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            sensors: 50,
            rate: TargetRate::PerSecond(50.0),
            partitions: 12,
            replication_factor: None,
            max_events: None,
            flush_timeout: Duration::from_secs(30),
            admin_timeout: Duration::from_secs(30),
            stats_interval: Duration::from_secs(1),
            seed: None,
            first_seq: None,
            client_id: "fastdata-producer".to_owned(),
            kafka_properties: Vec::new(),
        }
    }

    /// Checks what can be checked without a connection; the error says what to fix.
    pub fn validate(&self) -> Result<(), ProducerError> {
        let fail = |m: String| Err(ProducerError::Config(m));
        if self.brokers.trim().is_empty() {
            return fail(
                "no Kafka brokers given; set --kafka-brokers (e.g. 127.0.0.1:9092)".into(),
            );
        }
        if !valid_topic(&self.topic) {
            return fail(format!(
                "topic {:?} is not a valid Kafka topic name; use 1 to 249 letters, digits, '.', '_' or '-'",
                self.topic
            ));
        }
        if self.sensors == 0 {
            return fail("--sensors must be at least 1".into());
        }
        self.rate.validate().map_err(ProducerError::Config)?;
        if self.partitions < 1 {
            return fail(format!(
                "--partitions must be at least 1 (got {})",
                self.partitions
            ));
        }
        if self.replication_factor.is_some_and(|r| r < 1) {
            return fail("--replication-factor must be at least 1".into());
        }
        if self.stats_interval.is_zero() {
            return fail("the stats interval must be longer than zero".into());
        }
        Ok(())
    }

    /// The librdkafka settings of the producer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Java's default partitioner, so a sensor's partition does not depend on the client.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5");
        for (key, value) in &self.kafka_properties {
            config.set(key, value);
        }
        config
    }
}

fn valid_topic(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The configuration cannot work; the text says what to change.
    #[error("{0}")]
    Config(String),
    /// Kafka refused or did not answer.
    #[error("{what} failed: {source}; check --kafka-brokers {brokers} and that Kafka is up")]
    Kafka {
        /// What was being done.
        what: String,
        /// The brokers.
        brokers: String,
        /// The client's error.
        #[source]
        source: Box<KafkaError>,
    },
}

/// Simulated sensors: each a random walk, taking turns.
#[derive(Debug, Clone)]
pub struct SensorFleet {
    sensors: Vec<Sensor>,
    next: usize,
    rng: SmallRng,
}

#[derive(Debug, Clone)]
struct Sensor {
    id: String,
    temperature: f64,
    seq: i64,
}

/// The random walks stay within this band (well inside the accepted range).
const WALK_RANGE: (f64, f64) = (0.0, 140.0);

impl SensorFleet {
    /// `count` sensors starting around 70 degrees, each sensor's `seq` starting at `first_seq`.
    pub fn new(count: u32, first_seq: i64, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let sensors = (0..count)
            .map(|i| Sensor {
                id: format!("sensor-{i}"),
                temperature: round2(70.0 + rng.random_range(-5.0..=5.0)),
                seq: first_seq,
            })
            .collect();
        SensorFleet {
            sensors,
            next: 0,
            rng,
        }
    }

    /// The next sensor's next reading, taken at `now`.
    pub fn next_reading(&mut self, now: DateTime<Utc>) -> SensorReading {
        let step: f64 = self.rng.random_range(-0.5..=0.5);
        let index = self.next;
        self.next = (index + 1) % self.sensors.len();
        let sensor = &mut self.sensors[index];
        let mut t = sensor.temperature + step;
        // Reflect at the band's edges.
        if t < WALK_RANGE.0 {
            t = 2.0 * WALK_RANGE.0 - t;
        } else if t > WALK_RANGE.1 {
            t = 2.0 * WALK_RANGE.1 - t;
        }
        sensor.temperature = round2(t);
        let reading = SensorReading {
            sensor_id: sensor.id.clone(),
            temperature: sensor.temperature,
            event_time: now,
            seq: sensor.seq,
        };
        sensor.seq += 1;
        reading
    }
}

fn round2(t: f64) -> f64 {
    (t * 100.0).round() / 100.0
}

/// Where the producer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProducerState {
    /// Creating the topic and the client.
    Starting,
    /// Publishing.
    Producing,
    /// Stopping: waiting for the last acknowledgements.
    Flushing,
    /// Done.
    Stopped,
}

/// Live numbers, published every stats interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerStats {
    /// Life cycle.
    pub state: ProducerState,
    /// Current target.
    pub target_rate: TargetRate,
    /// Events handed to Kafka per second over the last 10 s.
    pub events_per_sec: f64,
    /// Events handed to the Kafka client.
    pub sent: u64,
    /// Events Kafka acknowledged (`acks=all`).
    pub acked: u64,
    /// Events Kafka refused or that timed out.
    pub failed: u64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerReport {
    /// Events handed to the Kafka client.
    pub sent: u64,
    /// Events Kafka acknowledged.
    pub acked: u64,
    /// Events that failed.
    pub failed: u64,
    /// Events with no answer when the flush timeout ran out.
    pub unacknowledged: u64,
    /// From start (topic ready) to the end of the flush.
    pub elapsed: Duration,
}

impl ProducerReport {
    /// Acknowledged events per second over the run.
    pub fn acked_per_sec(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Controls a running producer; cheap to clone.
#[derive(Debug, Clone)]
pub struct ProducerHandle {
    rate: Arc<watch::Sender<TargetRate>>,
    stats: watch::Receiver<ProducerStats>,
}

impl ProducerHandle {
    /// Changes the target rate; takes effect at once.
    pub fn set_rate(&self, rate: TargetRate) -> Result<(), ProducerError> {
        let rate = rate.validate().map_err(ProducerError::Config)?;
        self.rate.send_replace(rate);
        Ok(())
    }

    /// The latest stats.
    pub fn stats(&self) -> ProducerStats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every new stats snapshot.
    pub fn watch_stats(&self) -> watch::Receiver<ProducerStats> {
        self.stats.clone()
    }

    /// Completes once the topic exists and events are going out (the moment for
    /// TASK_RUNNING); `false` if the producer stopped first.
    pub async fn ready(&self) -> bool {
        let mut rx = self.stats.clone();
        rx.wait_for(|s| s.state != ProducerState::Starting)
            .await
            .is_ok_and(|s| s.state == ProducerState::Producing)
    }
}

/// The producer workload: `new`, take a `handle`, then `run` until shutdown.
#[derive(Debug)]
pub struct SensorProducer {
    config: ProducerConfig,
    rate: Arc<watch::Sender<TargetRate>>,
    stats: watch::Sender<ProducerStats>,
}

impl SensorProducer {
    /// Validates the configuration (no I/O yet).
    pub fn new(config: ProducerConfig) -> Result<Self, ProducerError> {
        config.validate()?;
        let (rate, _) = watch::channel(config.rate);
        let (stats, _) = watch::channel(ProducerStats {
            state: ProducerState::Starting,
            target_rate: config.rate,
            events_per_sec: 0.0,
            sent: 0,
            acked: 0,
            failed: 0,
            last_error: None,
        });
        Ok(SensorProducer {
            config,
            rate: Arc::new(rate),
            stats,
        })
    }

    /// A handle to change the rate and read stats.
    pub fn handle(&self) -> ProducerHandle {
        ProducerHandle {
            rate: self.rate.clone(),
            stats: self.stats.subscribe(),
        }
    }

    /// Publishes until `shutdown` completes (or `max_events` were sent), then flushes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ProducerReport, ProducerError> {
        let SensorProducer {
            config,
            rate: rate_tx,
            stats: stats_tx,
        } = self;
        let kafka_error = |what: String| {
            let brokers = config.brokers.clone();
            move |source| ProducerError::Kafka {
                what,
                brokers,
                source: Box::new(source),
            }
        };
        let client_config = config.client_config();
        match ensure_topic(
            &client_config,
            &config.topic,
            config.partitions,
            config.replication_factor,
            config.admin_timeout,
        )
        .await
        .map_err(kafka_error(format!("creating topic {}", config.topic)))?
        {
            TopicOutcome::Created => tracing::info!(
                topic = %config.topic, partitions = config.partitions, "created the topic"
            ),
            TopicOutcome::Existed => tracing::debug!(topic = %config.topic, "topic exists"),
        }

        let counters = Arc::new(DeliveryCounters::default());
        let producer: ThreadedProducer<DeliveryContext> = client_config
            .create_with_context(DeliveryContext(counters.clone()))
            .map_err(kafka_error("creating the Kafka producer".to_owned()))?;
        let producer = Arc::new(producer);

        let started = Instant::now();
        let seed = config.seed.unwrap_or_else(rand::random);
        let first_seq = config
            .first_seq
            .unwrap_or_else(|| Utc::now().timestamp_micros());
        let mut fleet = SensorFleet::new(config.sensors, first_seq, seed);
        let mut rate_rx = rate_tx.subscribe();
        let mut pacer = Pacer::new(*rate_rx.borrow_and_update(), started);
        let mut window = RollingWindow::ten_seconds(started);
        let mut stats_tick = tokio::time::interval(config.stats_interval);
        stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut payload = Vec::with_capacity(128);
        // A reading the full queue refused; sent before any new one, so no `seq` is skipped.
        let mut pending: Option<SensorReading> = None;
        let mut sent: u64 = 0;
        let mut queue_full_since: Option<Instant> = None;
        tracing::info!(
            topic = %config.topic, sensors = config.sensors, rate = %pacer.rate(),
            "producing"
        );
        let publish =
            |state: ProducerState, rate: TargetRate, sent: u64, window: &RollingWindow| {
                stats_tx.send_replace(ProducerStats {
                    state,
                    target_rate: rate,
                    events_per_sec: window.rate(Instant::now()),
                    sent,
                    acked: counters.acked.load(Ordering::Relaxed),
                    failed: counters.failed.load(Ordering::Relaxed)
                        + counters.refused.load(Ordering::Relaxed),
                    last_error: counters.last_error.lock().ok().and_then(|e| e.clone()),
                });
            };
        publish(ProducerState::Producing, pacer.rate(), sent, &window);

        tokio::pin!(shutdown);
        'produce: loop {
            let remaining = config.max_events.map_or(u64::MAX, |max| max - sent);
            if remaining == 0 {
                break;
            }
            let now = Instant::now();
            let due = pacer.due(now).min(CHUNK).min(remaining);
            let mut released = 0;
            let mut queue_full = false;
            while released < due {
                let reading = pending
                    .take()
                    .unwrap_or_else(|| fleet.next_reading(now_millis()));
                payload.clear();
                reading.write_json(&mut payload);
                let record = BaseRecord::to(&config.topic)
                    .key(reading.sensor_id.as_str())
                    .payload(payload.as_slice());
                match producer.send(record) {
                    Ok(()) => {
                        released += 1;
                        sent += 1;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        pending = Some(reading);
                        queue_full = true;
                        break;
                    }
                    Err((e, _)) => {
                        // Refused locally (e.g. too large): counted, never retried.
                        released += 1;
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, sensor = %reading.sensor_id, "Kafka refused a reading");
                    }
                }
            }
            pacer.release(released);
            window.record_events(Instant::now(), released);
            if queue_full {
                // Kafka is slower than the target (or unreachable): wait for deliveries to
                // make room. The pacer drops debt beyond MAX_CATCH_UP, so no flood follows.
                let since = *queue_full_since.get_or_insert(now);
                if since.elapsed() > MAX_CATCH_UP * 10 {
                    tracing::warn!(
                        topic = %config.topic,
                        "Kafka's send queue has been full for {:?}; brokers slow or unreachable",
                        since.elapsed()
                    );
                    queue_full_since = Some(Instant::now());
                }
            } else {
                queue_full_since = None;
            }
            let wait = if queue_full {
                Some(Instant::now() + Duration::from_millis(1))
            } else if due == released && pacer.rate() == TargetRate::Unthrottled {
                None
            } else {
                pacer.next_due()
            };
            let Some(wait) = wait else {
                // Unthrottled: give other tasks a turn between chunks, look at the controls
                // without waiting, and go on.
                tokio::task::yield_now().await;
                if (&mut shutdown).now_or_never().is_some() {
                    break 'produce;
                }
                if rate_rx.has_changed().unwrap_or(false) {
                    let rate = *rate_rx.borrow_and_update();
                    tracing::info!(rate = %rate, "target rate changed");
                    pacer.set_rate(rate, Instant::now());
                }
                if stats_tick.tick().now_or_never().is_some() {
                    publish(ProducerState::Producing, pacer.rate(), sent, &window);
                }
                continue;
            };
            let sleep = tokio::time::sleep_until(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => break 'produce,
                    Ok(()) = rate_rx.changed() => {
                        let rate = *rate_rx.borrow_and_update();
                        tracing::info!(rate = %rate, "target rate changed");
                        pacer.set_rate(rate, Instant::now());
                        break;
                    }
                    _ = stats_tick.tick() => {
                        publish(ProducerState::Producing, pacer.rate(), sent, &window);
                    }
                    () = &mut sleep => break,
                }
            }
        }

        publish(ProducerState::Flushing, pacer.rate(), sent, &window);
        let flush_timeout = config.flush_timeout;
        let flusher = producer.clone();
        let flushed = tokio::task::spawn_blocking(move || flusher.flush(flush_timeout)).await;
        if let Ok(Err(e)) = &flushed {
            tracing::warn!(error = %e, "not every event was acknowledged within the flush timeout");
        }
        let elapsed = started.elapsed();
        // Dropping purges anything still queued and stops the polling thread: off the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
        let acked = counters.acked.load(Ordering::Relaxed);
        let delivery_failed = counters.failed.load(Ordering::Relaxed);
        let failed = delivery_failed + counters.refused.load(Ordering::Relaxed);
        // Purged messages are reported as failed deliveries; whatever is left had no answer.
        let unacknowledged = sent.saturating_sub(acked + delivery_failed);
        publish(ProducerState::Stopped, pacer.rate(), sent, &window);
        let report = ProducerReport {
            sent,
            acked,
            failed,
            unacknowledged,
            elapsed,
        };
        tracing::info!(
            sent,
            acked,
            failed,
            unacknowledged,
            per_sec = format!("{:.0}", report.acked_per_sec()),
            "producer stopped"
        );
        Ok(report)
    }
}

/// Now, at the millisecond precision the payload and Cassandra keep.
fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

#[derive(Debug, Default)]
struct DeliveryCounters {
    acked: AtomicU64,
    /// Delivery reports with an error (including messages purged at stop).
    failed: AtomicU64,
    /// Readings the client refused at once (never queued).
    refused: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Counts delivery reports (called on the producer's polling thread).
struct DeliveryContext(Arc<DeliveryCounters>);

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, "Kafka producer: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.0.last_error.lock() {
                    *last = Some(error.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_reading;

    #[test]
    fn sensors_take_turns_and_count_up() {
        let mut fleet = SensorFleet::new(3, 100, 1);
        let now = now_millis();
        let readings: Vec<_> = (0..7).map(|_| fleet.next_reading(now)).collect();
        let ids: Vec<_> = readings.iter().map(|r| r.sensor_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "sensor-0", "sensor-1", "sensor-2", "sensor-0", "sensor-1", "sensor-2", "sensor-0"
            ]
        );
        let seqs: Vec<_> = readings.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [100, 100, 100, 101, 101, 101, 102]);
        for r in &readings {
            assert_eq!(parse_reading(&r.to_json()).as_ref(), Ok(r));
        }
    }

    #[test]
    fn random_walks_stay_in_their_band() {
        let mut fleet = SensorFleet::new(2, 0, 42);
        let now = now_millis();
        let mut previous: [Option<f64>; 2] = [None, None];
        for i in 0..200_000 {
            let r = fleet.next_reading(now);
            assert!((WALK_RANGE.0..=WALK_RANGE.1).contains(&r.temperature));
            if let Some(p) = previous[i % 2] {
                assert!((r.temperature - p).abs() <= 0.5 + 1e-9);
            }
            previous[i % 2] = Some(r.temperature);
        }
    }

    #[test]
    fn config_errors_say_what_to_fix() {
        let ok = ProducerConfig::new("127.0.0.1:9092");
        assert!(ok.validate().is_ok());
        let cases: Vec<(ProducerConfig, &str)> = vec![
            (
                ProducerConfig {
                    sensors: 0,
                    ..ok.clone()
                },
                "--sensors must be at least 1",
            ),
            (
                ProducerConfig {
                    topic: "bad topic".into(),
                    ..ok.clone()
                },
                "topic \"bad topic\" is not a valid Kafka topic name",
            ),
            (
                ProducerConfig {
                    rate: TargetRate::PerSecond(0.0),
                    ..ok.clone()
                },
                "rate 0 is not usable",
            ),
            (
                ProducerConfig {
                    partitions: 0,
                    ..ok.clone()
                },
                "--partitions must be at least 1",
            ),
            (
                ProducerConfig {
                    brokers: " ".into(),
                    ..ok
                },
                "no Kafka brokers given",
            ),
        ];
        for (config, start) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.starts_with(start), "{message}");
        }
    }

    #[test]
    fn kafka_settings() {
        let mut config = ProducerConfig::new("b:9092");
        config.kafka_properties = vec![("linger.ms".into(), "20".into())];
        let c = config.client_config();
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("partitioner"), Some("murmur2_random"));
        assert_eq!(c.get("linger.ms"), Some("20"), "extra properties win");
    }
}
