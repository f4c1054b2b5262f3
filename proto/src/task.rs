//! The contract between the scheduler and the executor, which meet only through Mesos.
//!
//! Three small JSON documents, each carrying a `version`:
//!
//! - [`TaskSpec`], in `TaskInfo.data`: which workload the task runs and with what settings.
//!   The executor refuses a spec it cannot run with a `TASK_FAILED` whose message names the
//!   field ([`SpecError`]), so a bad spec is never half-run.
//! - [`StatsReport`], in the executor's `MESSAGE` calls: the workload's live numbers, so the
//!   scheduler's policy can see throughput and sink health.
//! - [`ExecutorCommand`], in the scheduler's `MESSAGE` calls: runtime changes (the producer's
//!   rate) without a relaunch.
//!
//! Secrets never travel here (`TaskInfo.data` is visible in the master's state); a spec names
//! the environment variable that holds one instead.
//!
//! Pure: (de)serialisation and checks only.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The version of [`TaskSpec`], [`StatsReport`] and [`ExecutorCommand`] this crate writes and
/// reads.
pub const VERSION: u32 = 1;

/// Default topic of the sensor readings.
pub const DEFAULT_TOPIC: &str = "sensor-temp";
/// Default consumer group.
pub const DEFAULT_GROUP: &str = "sensor-temp-sink";
/// Default directory of the slot's volume, relative to the sandbox.
pub const DEFAULT_SPOOL_DIR: &str = "spool";

/// What a task runs: `TaskInfo.data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Always [`VERSION`] when written by this crate.
    pub version: u32,
    /// The workload and its settings.
    pub workload: Workload,
    /// How often the executor sends a [`StatsReport`], milliseconds.
    #[serde(default = "default_stats_interval_ms")]
    pub stats_interval_ms: u64,
}

/// The workload of a task, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Workload {
    /// The sensor simulator, publishing to Kafka.
    Producer(ProducerSpec),
    /// The Kafka → Cassandra sink.
    Consumer(ConsumerSpec),
    /// A one-shot check that Cassandra is reachable and the schema is in place.
    CassandraCheck(CassandraSpec),
    /// Holds its slot and does nothing: reports running at once and stops when killed. For
    /// measuring the scheduler's launch pipeline without the workloads' load (1,000 slots).
    Noop,
}

impl Workload {
    /// The kind as written in the spec.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Producer(_) => WorkloadKind::Producer,
            Workload::Consumer(_) => WorkloadKind::Consumer,
            Workload::CassandraCheck(_) => WorkloadKind::CassandraCheck,
            Workload::Noop => WorkloadKind::Noop,
        }
    }
}

/// The kind of a workload, without its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// See [`Workload::Producer`].
    Producer,
    /// See [`Workload::Consumer`].
    Consumer,
    /// See [`Workload::CassandraCheck`].
    CassandraCheck,
    /// See [`Workload::Noop`].
    Noop,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Producer => "producer",
            WorkloadKind::Consumer => "consumer",
            WorkloadKind::CassandraCheck => "cassandra-check",
            WorkloadKind::Noop => "noop",
        })
    }
}

/// Where the Kafka cluster is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    /// Bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// The topic of the readings.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Extra librdkafka properties (security, tuning). Secrets do not belong here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Where the Cassandra cluster is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSpec {
    /// Contact points, `host:port` each.
    pub contact_points: Vec<String>,
    /// Keyspace of the readings.
    #[serde(default = "default_keyspace")]
    pub keyspace: String,
    /// Keyspace replication if the workload creates it: `3` or `dc1:3,dc2:2`.
    #[serde(default = "default_replication")]
    pub replication: String,
    /// Data center to prefer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_dc: Option<String>,
    /// User name, if Cassandra requires authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The environment variable (of the task) that holds the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

/// The producer's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    /// Where to publish.
    pub kafka: KafkaSpec,
    /// Number of simulated sensors.
    #[serde(default = "default_sensors")]
    pub sensors: u32,
    /// Target rate, events per second (all sensors together); 0 pauses.
    pub rate: f64,
    /// Partitions of the topic if the producer creates it.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topic if the producer creates it (`None`: the broker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i16>,
}

/// The consumer's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// Where to read.
    pub kafka: KafkaSpec,
    /// Consumer group.
    #[serde(default = "default_group")]
    pub group: String,
    /// Static membership (`group.instance.id`), if wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    /// Where to write.
    pub cassandra: CassandraSpec,
    /// The slot's volume (dead-letter store), relative to the sandbox unless absolute.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: String,
    /// How long a graceful stop may take, milliseconds; the kill policy's grace period
    /// should be at least this.
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// Most writes in flight (`None`: the workload's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Most messages per poll (`None`: the workload's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Most messages handled per second (`None`: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
}

fn default_stats_interval_ms() -> u64 {
    5_000
}
fn default_topic() -> String {
    DEFAULT_TOPIC.to_owned()
}
fn default_keyspace() -> String {
    "sensors".to_owned()
}
fn default_replication() -> String {
    "1".to_owned()
}
fn default_sensors() -> u32 {
    50
}
fn default_partitions() -> i32 {
    12
}
fn default_group() -> String {
    DEFAULT_GROUP.to_owned()
}
fn default_spool_dir() -> String {
    DEFAULT_SPOOL_DIR.to_owned()
}
fn default_grace_ms() -> u64 {
    30_000
}

/// A spec the executor cannot run: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task data: {field}: {message}")]
pub struct SpecError {
    /// Dotted path of the field, e.g. `workload.kafka.brokers` (`.` for the whole document).
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl SpecError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        SpecError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl TaskSpec {
    /// A spec of the current [`VERSION`] with the default stats interval.
    pub fn new(workload: Workload) -> Self {
        TaskSpec {
            version: VERSION,
            workload,
            stats_interval_ms: default_stats_interval_ms(),
        }
    }

    /// The JSON that goes into `TaskInfo.data`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TaskSpec always serialises")
    }

    /// Reads `TaskInfo.data` and checks it; the error names the field at fault.
    pub fn from_json(data: &[u8]) -> Result<TaskSpec, SpecError> {
        if data.is_empty() {
            return Err(SpecError::new(
                ".",
                "the task carries no data; fastdata tasks carry a JSON spec in TaskInfo.data",
            ));
        }
        // Serde reads an internally tagged enum through a buffer that forgets where it was,
        // so the envelope and the workload are read in two steps to keep the path.
        let envelope: Envelope = at_path("", &mut serde_json::Deserializer::from_slice(data))?;
        let mut fields = envelope.workload;
        let kind = match fields.remove("kind") {
            Some(serde_json::Value::String(kind)) => kind,
            Some(other) => {
                return Err(SpecError::new(
                    "workload.kind",
                    format!("{other} is not a workload kind; {KINDS}"),
                ));
            }
            None => return Err(SpecError::new("workload.kind", format!("missing; {KINDS}"))),
        };
        let fields = serde_json::Value::Object(fields);
        let workload = match kind.as_str() {
            "producer" => Workload::Producer(at_path("workload.", fields)?),
            "consumer" => Workload::Consumer(at_path("workload.", fields)?),
            "cassandra-check" => Workload::CassandraCheck(at_path("workload.", fields)?),
            "noop" => match fields.as_object().and_then(|f| f.keys().next()) {
                Some(extra) => {
                    return Err(SpecError::new(
                        &format!("workload.{extra}"),
                        "the noop workload takes no settings",
                    ));
                }
                None => Workload::Noop,
            },
            other => {
                return Err(SpecError::new(
                    "workload.kind",
                    format!("unknown workload {other:?}; {KINDS}"),
                ));
            }
        };
        let spec = TaskSpec {
            version: envelope.version,
            workload,
            stats_interval_ms: envelope.stats_interval_ms,
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks what the types cannot: version, empty lists, ranges.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.version != VERSION {
            return Err(SpecError::new(
                "version",
                format!(
                    "version {} is not understood by this executor, which reads version {VERSION}",
                    self.version
                ),
            ));
        }
        if self.stats_interval_ms < 100 {
            return Err(SpecError::new(
                "stats_interval_ms",
                format!(
                    "{} ms is too often; use 100 or more",
                    self.stats_interval_ms
                ),
            ));
        }
        match &self.workload {
            Workload::Producer(p) => {
                check_kafka("workload.kafka", &p.kafka)?;
                if !p.rate.is_finite() || p.rate < 0.0 {
                    return Err(SpecError::new(
                        "workload.rate",
                        format!("{} is not a rate; use events per second, 0 or more", p.rate),
                    ));
                }
                if p.sensors == 0 {
                    return Err(SpecError::new("workload.sensors", "use 1 or more sensors"));
                }
                if p.partitions < 1 {
                    return Err(SpecError::new(
                        "workload.partitions",
                        "use 1 or more partitions",
                    ));
                }
            }
            Workload::Consumer(c) => {
                check_kafka("workload.kafka", &c.kafka)?;
                if c.group.trim().is_empty() {
                    return Err(SpecError::new("workload.group", "the group name is empty"));
                }
                check_cassandra("workload.cassandra", &c.cassandra)?;
                if c.spool_dir.trim().is_empty() {
                    return Err(SpecError::new(
                        "workload.spool_dir",
                        "the spool directory is empty; the default is `spool`",
                    ));
                }
                if c.grace_ms == 0 {
                    return Err(SpecError::new(
                        "workload.grace_ms",
                        "a grace period of 0 ms cannot commit; use e.g. 30000",
                    ));
                }
                if c.max_in_flight == Some(0) {
                    return Err(SpecError::new("workload.max_in_flight", "use 1 or more"));
                }
                if c.batch_size == Some(0) {
                    return Err(SpecError::new("workload.batch_size", "use 1 or more"));
                }
                if c.max_rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                    return Err(SpecError::new(
                        "workload.max_rate",
                        "use messages per second above 0, or leave it out for no cap",
                    ));
                }
            }
            Workload::CassandraCheck(c) => check_cassandra("workload", c)?,
            Workload::Noop => {}
        }
        Ok(())
    }
}

const KINDS: &str = "use producer, consumer, cassandra-check or noop";

/// [`TaskSpec`] with the workload not yet read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    version: u32,
    workload: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_stats_interval_ms")]
    stats_interval_ms: u64,
}

/// Deserialises, naming the field at fault as `prefix` + its path.
fn at_path<'de, T, D>(prefix: &str, input: D) -> Result<T, SpecError>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: fmt::Display,
{
    serde_path_to_error::deserialize(input).map_err(|e| {
        // A syntax error leaves the key it was reading unknown (`?`): name what is known.
        let path = e.path().to_string();
        let path = path.trim_end_matches('?').trim_end_matches('.');
        let field = match (prefix, path) {
            ("", "." | "") => ".".to_owned(),
            (prefix, "." | "") => prefix.trim_end_matches('.').to_owned(),
            (prefix, path) => format!("{prefix}{path}"),
        };
        SpecError::new(&field, e.into_inner().to_string())
    })
}

fn check_kafka(at: &str, kafka: &KafkaSpec) -> Result<(), SpecError> {
    if kafka.brokers.trim().is_empty() {
        return Err(SpecError::new(
            &format!("{at}.brokers"),
            "no Kafka brokers given; write host:port[,host:port...]",
        ));
    }
    if kafka.topic.trim().is_empty() {
        return Err(SpecError::new(&format!("{at}.topic"), "the topic is empty"));
    }
    Ok(())
}

fn check_cassandra(at: &str, cassandra: &CassandraSpec) -> Result<(), SpecError> {
    if cassandra.contact_points.iter().all(|p| p.trim().is_empty()) {
        return Err(SpecError::new(
            &format!("{at}.contact_points"),
            "no Cassandra contact points given; write [\"host:port\", ...]",
        ));
    }
    if cassandra.username.is_some() != cassandra.password_env.is_some() {
        return Err(SpecError::new(
            &format!("{at}.password_env"),
            "give both username and password_env, or neither",
        ));
    }
    Ok(())
}

/// The sink's health as a consumer sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkState {
    /// Nothing written or failed yet (and every producer task).
    #[default]
    Unknown,
    /// The last write succeeded.
    Healthy,
    /// The last write (or connection attempt) failed.
    Unhealthy,
}

/// A workload's live numbers: executor `MESSAGE` data. Readers ignore fields they do not know
/// and default the ones that are missing, so either side may be one version ahead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsReport {
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// The task this is about.
    pub task_id: String,
    /// Its workload.
    pub kind: Option<WorkloadKind>,
    /// When the numbers were taken, milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// The workload is really running (the consumer joined its group and reached Cassandra).
    pub ready: bool,
    /// Events handled (consumer) or sent (producer) per second, recent average.
    pub events_per_sec: f64,
    /// Consumer: rows written so far.
    pub rows_written: u64,
    /// Consumer: messages sent to the dead-letter store so far.
    pub dead_letters: u64,
    /// Consumer: failed write attempts so far.
    pub write_errors: u64,
    /// Consumer: recent median write latency, milliseconds.
    pub write_latency_p50_ms: Option<f64>,
    /// Consumer: recent 99th-percentile write latency, milliseconds.
    pub write_latency_p99_ms: Option<f64>,
    /// Consumer: partitions assigned to this member.
    pub assigned_partitions: Vec<i32>,
    /// Consumer: Cassandra's health as this member sees it.
    pub sink: SinkState,
    /// Consumer: the last sink error when unhealthy (at most [`MAX_ERROR_LEN`] bytes).
    pub sink_error: Option<String>,
    /// Producer: events acknowledged by Kafka so far.
    pub acked: u64,
    /// Producer: events that failed so far.
    pub failed: u64,
}

/// Longest error text carried in a [`StatsReport`], so reports stay small.
pub const MAX_ERROR_LEN: usize = 240;

impl StatsReport {
    /// The JSON that goes into the `MESSAGE` call.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a StatsReport always serialises")
    }

    /// Reads a report.
    pub fn from_json(data: &[u8]) -> Result<StatsReport, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// Cuts an error text to [`MAX_ERROR_LEN`] bytes on a character boundary.
    pub fn short_error(text: &str) -> String {
        if text.len() <= MAX_ERROR_LEN {
            return text.to_owned();
        }
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}

/// A runtime change sent by the scheduler: scheduler `MESSAGE` data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutorCommand {
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// Producer: the new target rate, events per second.
    pub set_rate: Option<f64>,
}

impl ExecutorCommand {
    /// The JSON that goes into the `MESSAGE` call.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an ExecutorCommand always serialises")
    }

    /// Reads a command.
    pub fn from_json(data: &[u8]) -> Result<ExecutorCommand, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer() -> TaskSpec {
        TaskSpec::new(Workload::Consumer(ConsumerSpec {
            kafka: KafkaSpec {
                brokers: "127.0.0.1:9092".into(),
                topic: default_topic(),
                properties: BTreeMap::new(),
            },
            group: default_group(),
            group_instance_id: Some("fastdata-consumer-3".into()),
            cassandra: CassandraSpec {
                contact_points: vec!["127.0.0.1:9042".into()],
                keyspace: default_keyspace(),
                replication: default_replication(),
                local_dc: None,
                username: None,
                password_env: None,
            },
            spool_dir: default_spool_dir(),
            grace_ms: 30_000,
            max_in_flight: None,
            batch_size: None,
            max_rate: None,
        }))
    }

    #[test]
    fn a_spec_round_trips_through_json() {
        let spec = consumer();
        let json = spec.to_json();
        assert_eq!(TaskSpec::from_json(&json).unwrap(), spec);
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""kind":"consumer""#), "{text}");
    }

    #[test]
    fn defaults_fill_what_a_short_spec_leaves_out() {
        let spec = TaskSpec::from_json(
            br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":"b:9092"},"rate":10}}"#,
        )
        .unwrap();
        let Workload::Producer(p) = spec.workload else {
            panic!("not a producer")
        };
        assert_eq!(p.kafka.topic, "sensor-temp");
        assert_eq!((p.sensors, p.partitions), (50, 12));
        assert_eq!(spec.stats_interval_ms, 5_000);
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "."),
            (b"not json", "."),
            (b"{not json", "."),
            (br#"{"version":1,"workload":{"kind":"noop",}}"#, "workload"),
            (
                br#"{"workload":{"kind":"producer","kafka":{"brokers":"b"},"rate":1}}"#,
                ".",
            ),
            (br#"{"version":1,"workload":{"kind":"producer"}}"#, "workload"),
            (br#"{"version":1,"workload":{"kind":"mystery"}}"#, "workload"),
            (
                br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":"b"},"rate":"fast"}}"#,
                "workload.rate",
            ),
            (
                br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":"b","tpoic":"x"},"rate":1}}"#,
                "workload.kafka.tpoic",
            ),
            (
                br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":" "},"rate":1}}"#,
                "workload.kafka.brokers",
            ),
            (
                br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":"b"},"rate":-1}}"#,
                "workload.rate",
            ),
            (
                br#"{"version":2,"workload":{"kind":"producer","kafka":{"brokers":"b"},"rate":1}}"#,
                "version",
            ),
            (
                br#"{"version":1,"workload":{"kind":"cassandra-check","contact_points":[]}}"#,
                "workload.contact_points",
            ),
        ];
        for (data, field) in cases {
            let err = TaskSpec::from_json(data).unwrap_err();
            let text = String::from_utf8_lossy(data);
            assert!(
                err.field == *field || err.field.starts_with(&format!("{field}.")),
                "{text}: expected field {field}, got {err}"
            );
            assert!(!err.message.is_empty(), "{text}");
        }
    }

    #[test]
    fn consumer_checks_cover_its_own_fields() {
        let mut spec = consumer();
        let Workload::Consumer(c) = &mut spec.workload else {
            unreachable!()
        };
        c.grace_ms = 0;
        assert_eq!(spec.check().unwrap_err().field, "workload.grace_ms");

        let mut spec = consumer();
        let Workload::Consumer(c) = &mut spec.workload else {
            unreachable!()
        };
        c.cassandra.username = Some("app".into());
        assert_eq!(
            spec.check().unwrap_err().field,
            "workload.cassandra.password_env"
        );
    }

    #[test]
    fn stats_reports_tolerate_other_versions() {
        let report = StatsReport::from_json(br#"{"version":2,"task_id":"t","future":[1,2]}"#)
            .expect("unknown fields are ignored");
        assert_eq!(report.task_id, "t");
        assert_eq!(report.sink, SinkState::Unknown);
        let full = StatsReport {
            version: VERSION,
            task_id: "t".into(),
            kind: Some(WorkloadKind::Consumer),
            sink: SinkState::Unhealthy,
            sink_error: Some(StatsReport::short_error(&"é".repeat(400))),
            ..StatsReport::default()
        };
        let json = full.to_json();
        assert!(json.len() < 1024, "{} bytes", json.len());
        assert_eq!(StatsReport::from_json(&json).unwrap(), full);
    }

    #[test]
    fn noop_takes_no_settings() {
        let spec = TaskSpec::new(Workload::Noop);
        assert_eq!(TaskSpec::from_json(&spec.to_json()).unwrap(), spec);
        let err = TaskSpec::from_json(br#"{"version":1,"workload":{"kind":"noop","rate":1}}"#)
            .unwrap_err();
        assert_eq!(err.field, "workload.rate");
    }

    #[test]
    fn commands_round_trip() {
        let command = ExecutorCommand {
            version: VERSION,
            set_rate: Some(250.0),
        };
        assert_eq!(
            ExecutorCommand::from_json(&command.to_json()).unwrap(),
            command
        );
    }
}
