//! From a task to the configuration of its workload.
//!
//! Owns the mapping from [`TaskSpec`] (the JSON in `TaskInfo.data`, `fastdata_proto::task`)
//! to the `fastdata-workloads` configurations, and every check that must pass before a
//! workload starts, so that a bad spec ends in one TASK_FAILED whose message names the field
//! ([`SpecError`]) and a workload is never half-run. Pure: the sandbox path and the
//! environment lookup (for `password_env`) are arguments.
//!
//! Choices:
//! - Relative `spool_dir`s start at the sandbox (`MESOS_SANDBOX`), where the agent links the
//!   slot's volume.
//! - The workloads publish their own numbers at most once a second; the executor reports them
//!   every `stats_interval_ms`.
//! - A producer `rate` of 0 means paused: the executor starts the producer when a rate above
//!   0 arrives (`ExecutorCommand::set_rate`) and stops it again at 0.
//! - The Cassandra check is a one-shot task ([`CHECK_ATTEMPTS`] rounds
//!   [`CHECK_INTERVAL`] apart at most); it writes into the keyspace the spec names.
//! - `cassandra.local_dc` makes the consumer send its requests to that data center first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fastdata_proto::task::{
    CassandraSpec, ConsumerSpec, KafkaSpec, ProducerSpec, SpecError, TaskSpec, Workload,
    WorkloadKind,
};
use fastdata_proto::v1::TaskInfo;
use fastdata_workloads::cassandra::CassandraConfig;
use fastdata_workloads::cassandra_check::CheckConfig;
use fastdata_workloads::consumer::ConsumerConfig;
use fastdata_workloads::pacing::{MAX_RATE, TargetRate};
use fastdata_workloads::producer::ProducerConfig;
use fastdata_workloads::settings::{Replication, check_cql_identifier};

/// Rounds the Cassandra check tries before its task fails.
pub const CHECK_ATTEMPTS: u32 = 5;
/// Time between two rounds of the Cassandra check.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Longest interval at which a workload publishes its own stats.
const WORKLOAD_STATS_INTERVAL: Duration = Duration::from_secs(1);

/// A task's workload, ready to start.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which workload.
    pub kind: WorkloadKind,
    /// Its configuration.
    pub workload: WorkloadPlan,
    /// How often the executor sends a stats report.
    pub stats_interval: Duration,
    /// The graceful stop the workload asks for (the consumer's `grace_ms`).
    pub grace: Option<Duration>,
}

/// The configuration of each workload.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per task, built once and moved once
pub enum WorkloadPlan {
    /// The sensor producer; `rate` 0 starts it paused (`config.rate` is set at each start).
    Producer {
        /// Everything but the rate.
        config: ProducerConfig,
        /// Events per second, 0 = paused.
        rate: f64,
    },
    /// The Kafka → Cassandra consumer.
    Consumer(ConsumerConfig),
    /// The one-shot Cassandra check.
    CassandraCheck {
        /// The check's settings (`rounds = Some(1)`).
        config: CheckConfig,
        /// Failed rounds before the task fails.
        attempts: u32,
    },
    /// Holds its slot; no client of anything is created.
    Noop,
}

impl Plan {
    /// The graceful stop the workload itself asks for, used when neither the KILL nor the
    /// task carries a kill policy (the consumer's `grace_ms`).
    pub fn own_grace(&self) -> Option<Duration> {
        self.grace
    }
}

/// Reads `task.data` and maps it; the error names the field at fault.
pub fn plan(
    task: &TaskInfo,
    sandbox: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, SpecError> {
    let spec = TaskSpec::from_json(task.data.as_deref().unwrap_or_default())?;
    plan_spec(&spec, sandbox, env)
}

/// Maps a checked spec.
pub fn plan_spec(
    spec: &TaskSpec,
    sandbox: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, SpecError> {
    spec.check()?;
    let workload = match &spec.workload {
        Workload::Producer(p) => producer(p)?,
        Workload::Consumer(c) => WorkloadPlan::Consumer(consumer(c, sandbox, env)?),
        Workload::CassandraCheck(c) => {
            let mut config = CheckConfig::new(c.contact_points.clone());
            config.cassandra = cassandra(c, "workload", env)?;
            config.interval = CHECK_INTERVAL;
            config.rounds = Some(1);
            config
                .validate()
                .map_err(|e| field("workload", e.to_string()))?;
            WorkloadPlan::CassandraCheck {
                config,
                attempts: CHECK_ATTEMPTS,
            }
        }
        Workload::Noop => WorkloadPlan::Noop,
    };
    let grace = match &spec.workload {
        Workload::Consumer(c) => Some(Duration::from_millis(c.grace_ms)),
        _ => None,
    };
    Ok(Plan {
        kind: spec.workload.kind(),
        workload,
        stats_interval: Duration::from_millis(spec.stats_interval_ms),
        grace,
    })
}

fn field(at: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: at.to_owned(),
        message: message.into(),
    }
}

fn producer(p: &ProducerSpec) -> Result<WorkloadPlan, SpecError> {
    check_topic(&p.kafka)?;
    if p.rate > MAX_RATE {
        return Err(field(
            "workload.rate",
            format!(
                "{} events/s is more than one producer can send; use at most {MAX_RATE}",
                p.rate
            ),
        ));
    }
    let mut config = ProducerConfig::new(p.kafka.brokers.clone());
    config.topic = p.kafka.topic.clone();
    config.sensors = p.sensors;
    config.partitions = p.partitions;
    config.replication_factor = p.replication_factor;
    config.kafka_properties = kafka_properties(&p.kafka);
    config.stats_interval = WORKLOAD_STATS_INTERVAL;
    if p.replication_factor.is_some_and(|r| r < 1) {
        return Err(field("workload.replication_factor", "use 1 or more"));
    }
    // Checked with a usable rate; the real one is set at each start.
    config.rate = TargetRate::PerSecond(p.rate.max(1.0));
    config
        .validate()
        .map_err(|e| field("workload", e.to_string()))?;
    Ok(WorkloadPlan::Producer {
        config,
        rate: p.rate,
    })
}

fn consumer(
    c: &ConsumerSpec,
    sandbox: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConsumerConfig, SpecError> {
    check_topic(&c.kafka)?;
    if c.group_instance_id
        .as_ref()
        .is_some_and(|id| id.trim().is_empty())
    {
        return Err(field(
            "workload.group_instance_id",
            "empty; leave it out for dynamic membership",
        ));
    }
    let spool_dir = if Path::new(&c.spool_dir).is_absolute() {
        PathBuf::from(&c.spool_dir)
    } else {
        sandbox.join(&c.spool_dir)
    };
    let mut config = ConsumerConfig::new(c.kafka.brokers.clone(), Vec::new(), spool_dir);
    config.topic = c.kafka.topic.clone();
    config.group_id = c.group.clone();
    config.group_instance_id = c.group_instance_id.clone();
    config.cassandra = cassandra(&c.cassandra, "workload.cassandra", env)?;
    let grace = Duration::from_millis(c.grace_ms);
    config.grace_period = stop_budget(grace);
    if grace < Duration::from_secs(1) {
        return Err(field(
            "workload.grace_ms",
            format!(
                "{} ms is too short to commit and leave the group; use 1000 or more",
                c.grace_ms
            ),
        ));
    }
    if let Some(n) = c.max_in_flight {
        config.max_in_flight = n;
    }
    if let Some(n) = c.batch_size {
        config.batch_size = n;
    }
    config.max_rate = c.max_rate;
    config.kafka_properties = kafka_properties(&c.kafka);
    config.stats_interval = WORKLOAD_STATS_INTERVAL;
    config
        .validate()
        .map_err(|e| field("workload", e.to_string()))?;
    Ok(config)
}

/// The consumer's own budget for a graceful stop: its grace less a reserve (a tenth, at most
/// 1 s; never below the 1 s it needs), so that it finishes and says how it left things before
/// the executor cuts it off when the kill policy's grace (normally `grace_ms`) runs out.
pub fn stop_budget(grace: Duration) -> Duration {
    grace
        .saturating_sub((grace / 10).min(Duration::from_secs(1)))
        .max(Duration::from_secs(1))
}

fn cassandra(
    c: &CassandraSpec,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CassandraConfig, SpecError> {
    let mut config = CassandraConfig::new(
        c.contact_points
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    );
    check_cql_identifier("keyspace", &c.keyspace)
        .map_err(|e| field(&format!("{at}.keyspace"), e))?;
    config.keyspace = c.keyspace.clone();
    config.replication = c
        .replication
        .parse::<Replication>()
        .map_err(|e| field(&format!("{at}.replication"), e))?;
    config.local_dc = c.local_dc.clone().filter(|dc| !dc.trim().is_empty());
    if let (Some(user), Some(variable)) = (&c.username, &c.password_env) {
        let password = env(variable).filter(|p| !p.is_empty()).ok_or_else(|| {
            field(
                &format!("{at}.password_env"),
                format!(
                    "the environment variable {variable} holding the password of {user:?} is \
                     not set in the task's environment (CommandInfo.environment or a secret)"
                ),
            )
        })?;
        config.credentials = Some((user.clone(), password));
    }
    config.validate().map_err(|e| field(at, e))?;
    Ok(config)
}

fn check_topic(kafka: &KafkaSpec) -> Result<(), SpecError> {
    let t = &kafka.topic;
    let valid = (1..=249).contains(&t.len())
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(field(
            "workload.kafka.topic",
            format!(
                "{t:?} is not a Kafka topic name; use 1 to 249 letters, digits, '.', '_' or '-'"
            ),
        ))
    }
}

fn kafka_properties(kafka: &KafkaSpec) -> Vec<(String, String)> {
    kafka
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fastdata_proto::task::{self, VERSION};

    use super::*;

    fn kafka() -> KafkaSpec {
        KafkaSpec {
            brokers: "127.0.0.1:9092".into(),
            topic: task::DEFAULT_TOPIC.into(),
            properties: BTreeMap::from([("linger.ms".to_owned(), "5".to_owned())]),
        }
    }

    fn cassandra_spec() -> CassandraSpec {
        CassandraSpec {
            contact_points: vec!["127.0.0.1:9042".into(), " ".into()],
            keyspace: "sensors".into(),
            replication: "1".into(),
            local_dc: None,
            username: None,
            password_env: None,
        }
    }

    fn consumer_spec() -> ConsumerSpec {
        ConsumerSpec {
            kafka: kafka(),
            group: "sensor-temp-sink".into(),
            group_instance_id: None,
            cassandra: cassandra_spec(),
            spool_dir: "spool".into(),
            grace_ms: 30_000,
            max_in_flight: Some(64),
            batch_size: None,
            max_rate: None,
        }
    }

    fn spec(workload: Workload) -> TaskSpec {
        TaskSpec {
            version: VERSION,
            workload,
            stats_interval_ms: 2_500,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn sandbox() -> PathBuf {
        PathBuf::from("/var/lib/mesos/sandbox")
    }

    #[test]
    fn consumer_spec_maps_onto_the_consumer_config() {
        let plan = plan_spec(
            &spec(Workload::Consumer(consumer_spec())),
            &sandbox(),
            &no_env,
        )
        .unwrap();
        assert_eq!(plan.kind, WorkloadKind::Consumer);
        assert_eq!(plan.stats_interval, Duration::from_millis(2_500));
        assert_eq!(plan.own_grace(), Some(Duration::from_secs(30)));
        let WorkloadPlan::Consumer(c) = plan.workload else {
            panic!("not a consumer")
        };
        assert_eq!(c.brokers, "127.0.0.1:9092");
        assert_eq!(c.topic, "sensor-temp");
        assert_eq!(c.group_id, "sensor-temp-sink");
        assert_eq!(c.group_instance_id, None, "dynamic membership");
        assert_eq!(
            c.cassandra.contact_points,
            vec!["127.0.0.1:9042".to_owned()]
        );
        assert_eq!(c.cassandra.keyspace, "sensors");
        assert_eq!(c.cassandra.replication, Replication::Simple(1));
        assert_eq!(c.cassandra.credentials, None);
        assert_eq!(c.spool_dir, sandbox().join("spool"));
        assert_eq!(
            c.grace_period,
            Duration::from_secs(29),
            "a 1 s reserve for reporting"
        );
        assert_eq!(c.max_in_flight, 64);
        assert_eq!(
            c.batch_size,
            ConsumerConfig::new("b", vec![], "s").batch_size
        );
        assert_eq!(c.kafka_properties, vec![("linger.ms".into(), "5".into())]);
        assert_eq!(c.stats_interval, Duration::from_secs(1));
        assert_eq!(c.cassandra.local_dc, None);
        assert_eq!(c.max_rate, None);

        let mut spec_with_dc = consumer_spec();
        spec_with_dc.cassandra.local_dc = Some("dc-east".into());
        spec_with_dc.max_rate = Some(1_000.0);
        let plan = plan_spec(&spec(Workload::Consumer(spec_with_dc)), &sandbox(), &no_env).unwrap();
        let WorkloadPlan::Consumer(c) = plan.workload else {
            panic!("not a consumer")
        };
        assert_eq!(
            c.cassandra.local_dc.as_deref(),
            Some("dc-east"),
            "requests go to that data center first"
        );
        assert_eq!(c.max_rate, Some(1_000.0));
    }

    #[test]
    fn the_consumer_stops_a_little_before_the_cut_off() {
        let ms = Duration::from_millis;
        for (grace, budget) in [
            (ms(30_000), ms(29_000)),
            (ms(5_000), ms(4_500)),
            (ms(1_500), ms(1_350)),
            (ms(1_000), ms(1_000)),
        ] {
            assert_eq!(stop_budget(grace), budget, "{grace:?}");
        }
    }

    #[test]
    fn spool_dirs_are_relative_to_the_sandbox_unless_absolute() {
        for (given, want) in [
            ("spool", sandbox().join("spool")),
            ("volumes/slot-3", sandbox().join("volumes/slot-3")),
            ("/mnt/pxd/slot-3", PathBuf::from("/mnt/pxd/slot-3")),
        ] {
            let mut c = consumer_spec();
            c.spool_dir = given.into();
            let plan = plan_spec(&spec(Workload::Consumer(c)), &sandbox(), &no_env).unwrap();
            let WorkloadPlan::Consumer(c) = plan.workload else {
                panic!()
            };
            assert_eq!(c.spool_dir, want, "{given}");
        }
    }

    #[test]
    fn the_password_comes_from_the_named_variable() {
        let mut c = consumer_spec();
        c.cassandra.username = Some("app".into());
        c.cassandra.password_env = Some("CASSANDRA_PASSWORD".into());
        let env = |name: &str| (name == "CASSANDRA_PASSWORD").then(|| "pw".to_owned());
        let plan = plan_spec(&spec(Workload::Consumer(c.clone())), &sandbox(), &env).unwrap();
        let WorkloadPlan::Consumer(config) = plan.workload else {
            panic!()
        };
        assert_eq!(
            config.cassandra.credentials,
            Some(("app".into(), "pw".into()))
        );
        assert!(
            !format!("{config:?}").contains("pw\""),
            "no password in Debug"
        );

        let err = plan_spec(&spec(Workload::Consumer(c)), &sandbox(), &no_env).unwrap_err();
        assert_eq!(err.field, "workload.cassandra.password_env");
        assert!(err.message.contains("CASSANDRA_PASSWORD"), "{err}");
    }

    #[test]
    fn producer_spec_maps_and_rate_zero_is_paused() {
        let p = ProducerSpec {
            kafka: kafka(),
            sensors: 10,
            rate: 0.0,
            partitions: 6,
            replication_factor: Some(1),
        };
        let plan = plan_spec(&spec(Workload::Producer(p)), &sandbox(), &no_env).unwrap();
        assert_eq!(plan.own_grace(), None);
        let WorkloadPlan::Producer { config, rate } = plan.workload else {
            panic!()
        };
        assert_eq!(rate, 0.0);
        assert_eq!(config.sensors, 10);
        assert_eq!(config.partitions, 6);
        assert_eq!(config.replication_factor, Some(1));
        assert_eq!(config.topic, "sensor-temp");
    }

    #[test]
    fn cassandra_check_is_one_shot_in_the_named_keyspace() {
        let mut c = cassandra_spec();
        c.keyspace = "fastdata_check".into();
        c.replication = "dc1:3,dc2:2".into();
        let plan = plan_spec(&spec(Workload::CassandraCheck(c)), &sandbox(), &no_env).unwrap();
        let WorkloadPlan::CassandraCheck { config, attempts } = plan.workload else {
            panic!()
        };
        assert_eq!(attempts, CHECK_ATTEMPTS);
        assert_eq!(config.rounds, Some(1));
        assert_eq!(config.interval, CHECK_INTERVAL);
        assert_eq!(config.cassandra.keyspace, "fastdata_check");
        assert_eq!(
            config.cassandra.replication,
            Replication::NetworkTopology(vec![("dc1".into(), 3), ("dc2".into(), 2)])
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases: Vec<(Workload, &str)> = vec![
            (
                Workload::Consumer(ConsumerSpec {
                    kafka: KafkaSpec {
                        topic: "sensor temp".into(),
                        ..kafka()
                    },
                    ..consumer_spec()
                }),
                "workload.kafka.topic",
            ),
            (
                Workload::Consumer(ConsumerSpec {
                    cassandra: CassandraSpec {
                        keyspace: "sensors; DROP".into(),
                        ..cassandra_spec()
                    },
                    ..consumer_spec()
                }),
                "workload.cassandra.keyspace",
            ),
            (
                Workload::Consumer(ConsumerSpec {
                    cassandra: CassandraSpec {
                        replication: "three".into(),
                        ..cassandra_spec()
                    },
                    ..consumer_spec()
                }),
                "workload.cassandra.replication",
            ),
            (
                Workload::Consumer(ConsumerSpec {
                    group_instance_id: Some(" ".into()),
                    ..consumer_spec()
                }),
                "workload.group_instance_id",
            ),
            (
                Workload::Consumer(ConsumerSpec {
                    grace_ms: 500,
                    ..consumer_spec()
                }),
                "workload.grace_ms",
            ),
            (
                Workload::Consumer(ConsumerSpec {
                    kafka: KafkaSpec {
                        brokers: String::new(),
                        ..kafka()
                    },
                    ..consumer_spec()
                }),
                "workload.kafka.brokers",
            ),
            (
                Workload::Producer(ProducerSpec {
                    kafka: kafka(),
                    sensors: 1,
                    rate: 1e12,
                    partitions: 1,
                    replication_factor: None,
                }),
                "workload.rate",
            ),
            (
                Workload::Producer(ProducerSpec {
                    kafka: kafka(),
                    sensors: 1,
                    rate: 5.0,
                    partitions: 1,
                    replication_factor: Some(0),
                }),
                "workload.replication_factor",
            ),
            (
                Workload::CassandraCheck(CassandraSpec {
                    contact_points: vec![" ".into()],
                    ..cassandra_spec()
                }),
                "workload.contact_points",
            ),
        ];
        for (workload, want) in cases {
            let err = plan_spec(&spec(workload.clone()), &sandbox(), &no_env)
                .expect_err(&format!("{workload:?}"));
            assert_eq!(err.field, want, "{err}");
            assert!(
                err.to_string().starts_with(&format!("task data: {want}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn task_data_is_read_from_the_task() {
        let good = TaskInfo {
            data: Some(spec(Workload::Noop).to_json()),
            ..Default::default()
        };
        let planned = plan(&good, &sandbox(), &no_env).unwrap();
        assert_eq!(planned.kind, WorkloadKind::Noop);
        assert!(matches!(planned.workload, WorkloadPlan::Noop));

        for (data, want) in [
            (None, "."),
            (Some(b"{not json".to_vec()), "."),
            (
                Some(
                    br#"{"version":1,"workload":{"kind":"consumer","kafka":{"brokers":"b"}}}"#
                        .to_vec(),
                ),
                "workload",
            ),
        ] {
            let task = TaskInfo {
                data,
                ..Default::default()
            };
            let err = plan(&task, &sandbox(), &no_env).unwrap_err();
            assert!(err.field.starts_with(want), "{err}");
        }
    }
}
