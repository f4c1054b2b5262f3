//! What the scheduler launches: task ids, the `TaskSpec` each task carries, and the
//! `TaskInfo` with our executor, its volume and its kill policy.
//!
//! Pure builders over the configuration. Naming: task ids are `<service>__<slot>__<uuid>`
//! (Mesos refuses `/` in ids; the slot is readable in the id, so an operator can tell what a
//! task is from `mesos task list`), executor ids `<task id>.executor`, volumes
//! `<service>-consumer-<n>`.

use std::time::Duration;

use fastdata_proto::mesos_ext::mesos_container;
use fastdata_proto::task::{
    CassandraSpec, ConsumerSpec, KafkaSpec, ProducerSpec, TaskSpec, Workload,
};
use fastdata_proto::v1::{
    AgentId, CommandInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo, FrameworkId,
    KillPolicy, Label, Labels, Parameter, Parameters, Resource, Secret, TaskId, TaskInfo, Volume,
    command_info, environment, executor_info, secret, volume,
};

use super::resources::Amount;
use super::slots::{SlotKind, SlotName};
use crate::config::{ExecutorSource, Pipeline, TasksConfig};

/// The file name the executor is fetched to in the sandbox.
pub const EXECUTOR_FILE: &str = "fastdata-executor";
/// Where the slot's volume is mounted, relative to the sandbox.
pub const SPOOL_DIR: &str = "spool";
/// Kill grace period of producer tasks (they flush their buffer and stop).
const PRODUCER_GRACE: Duration = Duration::from_secs(10);

/// Builds everything a launch needs from the configuration.
#[derive(Debug, Clone)]
pub struct TaskTemplate {
    /// Service name (escaped).
    pub service_name: String,
    /// Task settings.
    pub tasks: TasksConfig,
    /// Kafka and Cassandra.
    pub pipeline: Pipeline,
}

impl TaskTemplate {
    /// What a task of this kind plus its executor needs.
    pub fn needs(&self, kind: SlotKind) -> Amount {
        let task = match kind {
            SlotKind::Consumer => self.tasks.consumer,
            SlotKind::Producer => self.tasks.producer,
        };
        Amount::new(
            task.cpus + self.tasks.executor.cpus,
            task.mem + self.tasks.executor.mem,
        )
    }

    /// The executor's share.
    pub fn executor_amount(&self) -> Amount {
        Amount::new(self.tasks.executor.cpus, self.tasks.executor.mem)
    }

    /// A fresh task id for a slot.
    pub fn new_task_id(&self, slot: SlotName) -> String {
        format!("{}__{slot}__{}", self.service_name, uuid::Uuid::new_v4())
    }

    /// The slot a task id of this service belongs to.
    pub fn slot_of(&self, task_id: &str) -> Option<SlotName> {
        let rest = task_id
            .strip_prefix(&self.service_name)?
            .strip_prefix("__")?;
        let (slot, _) = rest.split_once("__")?;
        slot.parse().ok()
    }

    /// The Docker volume of a consumer slot.
    pub fn volume_name(&self, slot: SlotName) -> Option<String> {
        (slot.kind == SlotKind::Consumer)
            .then(|| format!("{}-consumer-{}", self.service_name, slot.index))
    }

    /// Kill grace period of a slot's task.
    pub fn grace(&self, kind: SlotKind) -> Duration {
        match kind {
            SlotKind::Consumer => self.tasks.consumer_grace_period,
            SlotKind::Producer => PRODUCER_GRACE,
        }
    }

    fn kafka(&self) -> KafkaSpec {
        KafkaSpec {
            brokers: self.pipeline.kafka_brokers.clone(),
            topic: self.pipeline.topic.clone(),
            properties: self.pipeline.kafka_properties.clone(),
        }
    }

    /// The spec a slot's task carries in `TaskInfo.data`.
    pub fn spec(&self, slot: SlotName) -> TaskSpec {
        let workload = match slot.kind {
            SlotKind::Consumer if self.tasks.noop_consumers => Workload::Noop,
            SlotKind::Consumer => {
                let grace = self.grace(SlotKind::Consumer);
                // The workload stops a little before the kill policy cuts it off, so that its
                // commit and LeaveGroup are not the part that gets cut.
                let margin = (grace / 5).clamp(Duration::from_millis(500), Duration::from_secs(5));
                Workload::Consumer(ConsumerSpec {
                    kafka: self.kafka(),
                    group: self.pipeline.group.clone(),
                    // Dynamic membership: a member that leaves hands its partitions over at
                    // once; a static one would hold them for the session timeout.
                    group_instance_id: None,
                    cassandra: CassandraSpec {
                        contact_points: self.pipeline.cassandra_contact_points.clone(),
                        keyspace: self.pipeline.keyspace.clone(),
                        replication: self.pipeline.replication.clone(),
                        local_dc: self.pipeline.cassandra_local_dc.clone(),
                        username: self.pipeline.cassandra_username.clone(),
                        password_env: self.pipeline.cassandra_password_env.clone(),
                    },
                    spool_dir: SPOOL_DIR.to_owned(),
                    grace_ms: grace
                        .saturating_sub(margin)
                        .max(Duration::from_secs(1))
                        .as_millis() as u64,
                    max_in_flight: self.tasks.consumer_max_in_flight,
                    batch_size: self.tasks.consumer_batch_size,
                    max_rate: self.tasks.consumer_max_rate,
                })
            }
            SlotKind::Producer => Workload::Producer(ProducerSpec {
                kafka: self.kafka(),
                sensors: self.tasks.producer_sensors,
                rate: self.tasks.producer_rate,
                partitions: self.pipeline.partitions,
                replication_factor: None,
            }),
        };
        let mut spec = TaskSpec::new(workload);
        spec.stats_interval_ms = self.tasks.stats_interval.as_millis() as u64;
        spec
    }

    /// How the agent starts our executor: fetched into the sandbox, or from where it is
    /// installed. Run without a shell, so that signals reach the executor itself.
    fn executor_command(&self) -> CommandInfo {
        let (uris, value) = match &self.tasks.executor_source {
            ExecutorSource::Fetch { uri } => (
                vec![command_info::Uri {
                    value: uri.clone(),
                    executable: Some(true),
                    extract: Some(false),
                    cache: None,
                    output_file: Some(EXECUTOR_FILE.to_owned()),
                }],
                format!("./{EXECUTOR_FILE}"),
            ),
            ExecutorSource::Installed { path } => (Vec::new(), path.clone()),
        };
        // The Cassandra password reaches the tasks as a secret the agent resolves, so it
        // never appears in the TaskInfo (which the master shows to anyone who can read it).
        let environment = match (
            &self.pipeline.cassandra_password_env,
            &self.pipeline.cassandra_password_secret,
        ) {
            (Some(name), Some(secret)) => Some(Environment {
                variables: vec![environment::Variable {
                    name: name.clone(),
                    r#type: Some(environment::variable::Type::Secret as i32),
                    value: None,
                    secret: Some(Secret {
                        r#type: Some(secret::Type::Reference as i32),
                        reference: Some(secret::Reference {
                            name: secret.clone(),
                            key: None,
                        }),
                        value: None,
                    }),
                }],
            }),
            _ => None,
        };
        CommandInfo {
            uris,
            environment,
            shell: Some(false),
            value: Some(value),
            arguments: vec![EXECUTOR_FILE.to_owned()],
            ..Default::default()
        }
    }

    /// The TaskInfo of a launch: our executor (fetched from the configured URI), the slot's
    /// volume mounted at `spool` for consumers, the kill policy, the spec as data. Resources
    /// are given split: the task's and the executor's.
    pub fn task_info(
        &self,
        slot: SlotName,
        task_id: &str,
        agent_id: &str,
        framework_id: &str,
        task_resources: Vec<Resource>,
        executor_resources: Vec<Resource>,
    ) -> TaskInfo {
        let mut container = mesos_container();
        if let Some(volume) = self.volume_name(slot) {
            container.volumes.push(Volume {
                mode: volume::Mode::Rw as i32,
                container_path: SPOOL_DIR.to_owned(),
                source: Some(volume::Source {
                    r#type: Some(volume::source::Type::DockerVolume as i32),
                    docker_volume: Some(volume::source::DockerVolume {
                        driver: Some(self.tasks.volume.driver.clone()),
                        name: volume,
                        driver_options: Some(Parameters {
                            parameter: self
                                .tasks
                                .volume
                                .options
                                .iter()
                                .map(|(key, value)| Parameter {
                                    key: key.clone(),
                                    value: value.clone(),
                                })
                                .collect(),
                        }),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let executor = ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: ExecutorId {
                value: executor_id(task_id),
            },
            framework_id: Some(FrameworkId {
                value: framework_id.to_owned(),
            }),
            command: Some(self.executor_command()),
            container: Some(container),
            resources: executor_resources,
            name: Some(format!("{} executor for {slot}", self.service_name)),
            ..Default::default()
        };
        let grace = self.grace(slot.kind);
        TaskInfo {
            name: format!("{}-{slot}", self.service_name),
            task_id: TaskId {
                value: task_id.to_owned(),
            },
            agent_id: AgentId {
                value: agent_id.to_owned(),
            },
            resources: task_resources,
            executor: Some(executor),
            kill_policy: Some(kill_policy(grace)),
            data: Some(self.spec(slot).to_json()),
            labels: Some(Labels {
                labels: vec![
                    Label {
                        key: "slot".to_owned(),
                        value: Some(slot.to_string()),
                    },
                    Label {
                        key: "kind".to_owned(),
                        value: Some(slot.kind.as_str().to_owned()),
                    },
                ],
            }),
            ..Default::default()
        }
    }
}

/// The executor id of a task (one executor per task).
pub fn executor_id(task_id: &str) -> String {
    format!("{task_id}.executor")
}

/// A kill policy with this grace period.
pub fn kill_policy(grace: Duration) -> KillPolicy {
    KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
        }),
    }
}

/// Splits resources (`cpus` and `mem`, reserved or not) into the executor's share and the
/// task's (the rest), each keeping the original's reservation and allocation. Several entries
/// of one name are summed into one.
pub fn split(resources: &[Resource], executor: Amount) -> (Vec<Resource>, Vec<Resource>) {
    let mut task = Vec::new();
    let mut exec = Vec::new();
    for (name, share) in [("cpus", executor.cpus), ("mem", executor.mem)] {
        let entries: Vec<&Resource> = resources.iter().filter(|r| r.name == name).collect();
        let Some(template) = entries.first() else {
            continue;
        };
        let total: f64 = entries
            .iter()
            .map(|r| r.scalar.as_ref().map_or(0.0, |s| s.value))
            .sum();
        let with = |value: f64| {
            let mut r = (*template).clone();
            r.scalar = Some(fastdata_proto::v1::value::Scalar {
                value: (value * 1000.0).round() / 1000.0,
            });
            r
        };
        exec.push(with(share.min(total)));
        task.push(with((total - share).max(0.0)));
    }
    (task, exec)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{TaskResources, VolumeConfig};
    use crate::framework::resources::{ReservationLabels, resources};
    use fastdata_proto::validate::Validate as _;

    pub(crate) fn template() -> TaskTemplate {
        TaskTemplate {
            service_name: "fastdata".into(),
            tasks: TasksConfig {
                consumer: TaskResources {
                    cpus: 1.0,
                    mem: 512.0,
                },
                consumer_grace_period: Duration::from_secs(30),
                consumer_max_in_flight: None,
                consumer_max_rate: None,
                consumer_batch_size: None,
                max_consumers_per_agent: Some(1),
                spread_zones: true,
                noop_consumers: false,
                volume: VolumeConfig {
                    driver: "pxd".into(),
                    options: BTreeMap::from([
                        ("size".into(), "1".into()),
                        ("repl".into(), "2".into()),
                    ]),
                },
                producer_count: 1,
                producer_rate: 100.0,
                producer_sensors: 10,
                producer: TaskResources {
                    cpus: 0.5,
                    mem: 256.0,
                },
                executor_source: ExecutorSource::Fetch {
                    uri: "/opt/fastdata/fastdata-executor".into(),
                },
                executor: TaskResources {
                    cpus: 0.1,
                    mem: 64.0,
                },
                stats_interval: Duration::from_secs(5),
            },
            pipeline: Pipeline {
                kafka_brokers: "127.0.0.1:9092".into(),
                kafka_properties: BTreeMap::new(),
                topic: "sensor-temp".into(),
                group: "sensor-temp-sink".into(),
                partitions: 12,
                cassandra_contact_points: vec!["127.0.0.1:9042".into()],
                keyspace: "sensors".into(),
                replication: "1".into(),
                cassandra_local_dc: None,
                cassandra_username: None,
                cassandra_password_env: None,
                cassandra_password_secret: None,
            },
        }
    }

    #[test]
    fn task_ids_name_their_slot() {
        let t = template();
        let id = t.new_task_id(SlotName::consumer(3));
        assert!(id.starts_with("fastdata__consumer-3__"), "{id}");
        assert_eq!(t.slot_of(&id), Some(SlotName::consumer(3)));
        assert_eq!(t.slot_of("other__consumer-3__x"), None);
        assert_eq!(t.slot_of("fastdata__nonsense__x"), None);
        assert!(!id.contains('/'));
    }

    #[test]
    fn a_consumer_task_runs_our_executor_with_its_volume() {
        let t = template();
        let labels = ReservationLabels {
            role: "fastdata-role".into(),
            principal: "fastdata-principal".into(),
            framework_id: "fw".into(),
            slot: "consumer-3".into(),
            resource_id: "r".into(),
        };
        let reserved = resources(t.needs(SlotKind::Consumer), "fastdata-role", Some(&labels));
        let (task_res, exec_res) = split(&reserved, t.executor_amount());
        let info = t.task_info(
            SlotName::consumer(3),
            "fastdata__consumer-3__x",
            "agent-1",
            "fw",
            task_res,
            exec_res,
        );
        let executor = info.executor.as_ref().unwrap();
        assert_eq!(executor.r#type, Some(executor_info::Type::Custom as i32));
        let command = executor.command.as_ref().unwrap();
        assert_eq!(command.uris[0].value, "/opt/fastdata/fastdata-executor");
        assert_eq!(command.uris[0].executable, Some(true));
        assert_eq!(command.value.as_deref(), Some("./fastdata-executor"));
        let container = executor.container.as_ref().unwrap();
        assert_eq!(
            container.r#type,
            fastdata_proto::v1::container_info::Type::Mesos as i32
        );
        let source = container.volumes[0].source.as_ref().unwrap();
        let docker = source.docker_volume.as_ref().unwrap();
        assert_eq!(
            (docker.driver.as_deref(), docker.name.as_str()),
            (Some("pxd"), "fastdata-consumer-3")
        );
        assert_eq!(container.volumes[0].container_path, "spool");
        let cpus = |rs: &[Resource]| {
            rs.iter()
                .find(|r| r.name == "cpus")
                .unwrap()
                .scalar
                .as_ref()
                .unwrap()
                .value
        };
        assert_eq!(cpus(&info.resources), 1.0);
        assert_eq!(cpus(&executor.resources), 0.1);
        assert_eq!(
            info.resources[0].reservations, reserved[0].reservations,
            "launched on the reservation"
        );
        assert_eq!(
            info.kill_policy
                .as_ref()
                .unwrap()
                .grace_period
                .as_ref()
                .unwrap()
                .nanoseconds,
            30_000_000_000
        );
        let spec = TaskSpec::from_json(info.data.as_ref().unwrap()).expect("a valid spec");
        let Workload::Consumer(c) = spec.workload else {
            panic!("consumer expected")
        };
        assert_eq!(c.spool_dir, "spool");
        assert!(
            c.grace_ms < 30_000 && c.grace_ms >= 25_000,
            "{}",
            c.grace_ms
        );
        assert_eq!(c.group_instance_id, None);

        // The LAUNCH this goes into is a valid call.
        let call = fastdata_proto::v1::scheduler::Call {
            framework_id: Some(FrameworkId { value: "fw".into() }),
            r#type: Some(fastdata_proto::v1::scheduler::call::Type::Accept as i32),
            accept: Some(fastdata_proto::v1::scheduler::call::Accept {
                offer_ids: vec![fastdata_proto::v1::OfferId { value: "o".into() }],
                operations: vec![fastdata_proto::v1::offer::Operation {
                    r#type: Some(fastdata_proto::v1::offer::operation::Type::Launch as i32),
                    launch: Some(fastdata_proto::v1::offer::operation::Launch {
                        task_infos: vec![info],
                    }),
                    ..Default::default()
                }],
                filters: None,
            }),
            ..Default::default()
        };
        call.validate().expect("valid ACCEPT");
    }

    #[test]
    fn an_installed_executor_is_not_fetched() {
        let mut t = template();
        t.tasks.executor_source = ExecutorSource::Installed {
            path: "/usr/local/bin/fastdata-executor".into(),
        };
        let command = t.executor_command();
        assert!(command.uris.is_empty());
        assert_eq!(
            command.value.as_deref(),
            Some("/usr/local/bin/fastdata-executor")
        );
        assert_eq!(command.shell, Some(false));
    }

    #[test]
    fn the_cassandra_password_is_a_secret_reference_not_a_value() {
        let mut t = template();
        assert_eq!(t.executor_command().environment, None);
        t.pipeline.cassandra_username = Some("writer".into());
        t.pipeline.cassandra_password_env = Some("CASSANDRA_PASSWORD".into());
        t.pipeline.cassandra_password_secret = Some("fastdata/cassandra-password".into());
        let environment = t.executor_command().environment.expect("an environment");
        let variable = &environment.variables[0];
        assert_eq!(variable.name, "CASSANDRA_PASSWORD");
        assert_eq!(
            variable.r#type,
            Some(environment::variable::Type::Secret as i32)
        );
        assert_eq!(variable.value, None);
        let secret = variable.secret.as_ref().unwrap();
        assert_eq!(secret.r#type, Some(secret::Type::Reference as i32));
        assert_eq!(
            secret.reference.as_ref().unwrap().name,
            "fastdata/cassandra-password"
        );
        assert_eq!(secret.value, None);
    }

    #[test]
    fn noop_and_producer_specs() {
        let mut t = template();
        assert!(matches!(
            t.spec(SlotName::producer(0)).workload,
            Workload::Producer(_)
        ));
        assert_eq!(t.volume_name(SlotName::producer(0)), None);
        t.tasks.noop_consumers = true;
        assert_eq!(t.spec(SlotName::consumer(0)).workload, Workload::Noop);
    }

    #[test]
    fn split_gives_the_executor_its_share_and_the_task_the_rest() {
        let all = resources(Amount::new(1.1, 576.0), "r", None);
        let (task, exec) = split(&all, Amount::new(0.1, 64.0));
        let value = |rs: &[Resource], n: &str| {
            rs.iter()
                .find(|r| r.name == n)
                .unwrap()
                .scalar
                .as_ref()
                .unwrap()
                .value
        };
        assert_eq!((value(&task, "cpus"), value(&task, "mem")), (1.0, 512.0));
        assert_eq!((value(&exec, "cpus"), value(&exec, "mem")), (0.1, 64.0));
    }
}
