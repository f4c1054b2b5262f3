//! The state machine driven through whole task lives with plain values: no socket, no clock.

use std::collections::BTreeMap;

use fastdata_proto::task::{
    CassandraSpec, ConsumerSpec, KafkaSpec, ProducerSpec, TaskSpec, Workload,
};
use fastdata_proto::v1::framework_info::Capability as FrameworkCapability;
use fastdata_proto::v1::{
    AgentInfo, FrameworkInfo, KillPolicy, TaskId, executor::event, task_status::Reason,
};
use fastdata_proto::validate::Validate as _;

use super::*;

const GRACE: Duration = Duration::from_secs(4);

fn checkpointed() -> Recovery {
    Recovery::Checkpointed {
        timeout: Duration::from_secs(10),
        backoff_max: Duration::from_secs(2),
    }
}

fn noop() -> Vec<u8> {
    TaskSpec::new(Workload::Noop).to_json()
}

fn producer(rate: f64) -> Vec<u8> {
    TaskSpec::new(Workload::Producer(ProducerSpec {
        kafka: KafkaSpec {
            brokers: "127.0.0.1:9092".into(),
            topic: "sensor-temp".into(),
            properties: BTreeMap::new(),
        },
        sensors: 5,
        rate,
        partitions: 3,
        replication_factor: None,
    }))
    .to_json()
}

fn consumer() -> Vec<u8> {
    TaskSpec::new(Workload::Consumer(ConsumerSpec {
        kafka: KafkaSpec {
            brokers: "127.0.0.1:9092".into(),
            topic: "sensor-temp".into(),
            properties: BTreeMap::new(),
        },
        group: "g".into(),
        group_instance_id: None,
        cassandra: CassandraSpec {
            contact_points: vec!["127.0.0.1:9042".into()],
            keyspace: "sensors".into(),
            replication: "1".into(),
            local_dc: None,
            username: None,
            password_env: None,
        },
        spool_dir: "spool".into(),
        grace_ms: 30_000,
        max_in_flight: None,
        batch_size: None,
        max_rate: None,
    }))
    .to_json()
}

/// Drives a [`Lifecycle`] and keeps what it sent.
struct Harness {
    lc: Lifecycle,
    now: Instant,
    /// The subscription in use.
    conn: Option<ConnId>,
    /// Every status update sent in an UPDATE call, in order (a resend appears again).
    sent: Vec<TaskStatus>,
    /// UPDATE calls not yet answered: (conn, uuid).
    flying: Vec<(ConnId, Vec<u8>)>,
    /// Every non-update action, in order.
    actions: Vec<Action>,
    exit: Option<ExitReason>,
}

impl Harness {
    fn new(recovery: Recovery) -> Harness {
        let now = Instant::now();
        let config = LifecycleConfig {
            ids: CallIds {
                framework_id: "fw-0000".into(),
                executor_id: "task-1.executor".into(),
            },
            sandbox: "/sandbox".into(),
            shutdown_grace: GRACE,
            recovery,
            env: Arc::new(|_| None),
            seed: 7,
        };
        Harness {
            lc: Lifecycle::new(config, Harness::clock_at(now)),
            now,
            conn: None,
            sent: Vec::new(),
            flying: Vec::new(),
            actions: Vec::new(),
            exit: None,
        }
    }

    fn clock_at(now: Instant) -> Clock {
        Clock {
            now,
            unix: 1_790_000_000.0,
        }
    }

    fn step(&mut self, input: Input) -> Vec<Action> {
        assert!(self.exit.is_none(), "input after exit: {input:?}");
        let actions = self.lc.step(input, Harness::clock_at(self.now));
        for action in &actions {
            match action {
                Action::Update { conn, uuid, call } => {
                    call.validate().expect("every UPDATE is valid");
                    let status = call.update.clone().unwrap().status;
                    assert_eq!(status.uuid.as_deref(), Some(uuid.as_slice()));
                    assert_eq!(
                        status.executor_id.as_ref().unwrap().value,
                        "task-1.executor"
                    );
                    self.sent.push(status);
                    self.flying.push((*conn, uuid.clone()));
                }
                Action::Subscribe { conn, call } => {
                    call.validate().expect("every SUBSCRIBE is valid");
                    self.conn = Some(*conn);
                    self.actions.push(action.clone());
                }
                Action::Exit(reason) => {
                    self.exit = Some(reason.clone());
                    self.actions.push(action.clone());
                }
                other => self.actions.push(other.clone()),
            }
        }
        actions
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.step(Input::Tick);
    }

    /// Advances to the state machine's next deadline and ticks.
    fn advance_to_deadline(&mut self) -> Instant {
        let at = self.lc.next_deadline().expect("a deadline");
        assert!(at >= self.now);
        self.now = at;
        self.step(Input::Tick);
        at
    }

    fn event(&mut self, event: executor::Event) -> Vec<Action> {
        let conn = self.conn.expect("a connection");
        self.step(Input::Event {
            conn,
            event: Box::new(event),
        })
    }

    fn subscribed_event(killing_state: bool) -> executor::Event {
        let capabilities = if killing_state {
            vec![FrameworkCapability {
                r#type: Some(Capability::TaskKillingState as i32),
            }]
        } else {
            Vec::new()
        };
        executor::Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                executor_info: Default::default(),
                framework_info: FrameworkInfo {
                    capabilities,
                    ..Default::default()
                },
                agent_info: AgentInfo::default(),
                container_id: None,
            }),
            ..Default::default()
        }
    }

    /// Start, SUBSCRIBE, SUBSCRIBED.
    fn subscribe(&mut self, killing_state: bool) {
        self.step(Input::Start);
        assert!(matches!(
            self.actions.last(),
            Some(Action::Subscribe { .. })
        ));
        self.event(Harness::subscribed_event(killing_state));
        assert!(self.lc.is_subscribed());
    }

    fn launch(&mut self, task_id: &str, data: Vec<u8>, policy: Option<Duration>) -> Vec<Action> {
        self.event(executor::Event {
            r#type: Some(event::Type::Launch as i32),
            launch: Some(event::Launch {
                task: TaskInfo {
                    name: task_id.into(),
                    task_id: TaskId {
                        value: task_id.into(),
                    },
                    data: Some(data),
                    kill_policy: policy.map(|g| KillPolicy {
                        grace_period: Some(DurationInfo {
                            nanoseconds: g.as_nanos() as i64,
                        }),
                    }),
                    ..Default::default()
                },
            }),
            ..Default::default()
        })
    }

    fn kill(&mut self, task_id: &str, grace: Option<Duration>) -> Vec<Action> {
        self.event(executor::Event {
            r#type: Some(event::Type::Kill as i32),
            kill: Some(event::Kill {
                task_id: TaskId {
                    value: task_id.into(),
                },
                kill_policy: grace.map(|g| KillPolicy {
                    grace_period: Some(DurationInfo {
                        nanoseconds: g.as_nanos() as i64,
                    }),
                }),
            }),
            ..Default::default()
        })
    }

    fn simple_event(&mut self, kind: event::Type) -> Vec<Action> {
        self.event(executor::Event {
            r#type: Some(kind as i32),
            ..Default::default()
        })
    }

    /// Answers every UPDATE in flight with `answer`, oldest first.
    fn answer_updates(&mut self, answer: &CallAnswer) {
        while !self.flying.is_empty() {
            let (conn, uuid) = self.flying.remove(0);
            self.step(Input::UpdateAnswered {
                conn,
                uuid,
                answer: answer.clone(),
            });
        }
    }

    /// ACKNOWLEDGED for the n-th sent update.
    fn ack(&mut self, n: usize) {
        let status = self.sent[n].clone();
        self.event(executor::Event {
            r#type: Some(event::Type::Acknowledged as i32),
            acknowledged: Some(event::Acknowledged {
                task_id: status.task_id.clone(),
                uuid: status.uuid.unwrap(),
            }),
            ..Default::default()
        });
    }

    /// The agent takes and acknowledges every update as it comes, as a healthy agent does.
    fn deliver_all(&mut self) {
        while !self.flying.is_empty() && self.exit.is_none() {
            let (conn, uuid) = self.flying.remove(0);
            let n = self
                .sent
                .iter()
                .rposition(|s| s.uuid.as_deref() == Some(uuid.as_slice()))
                .expect("sent");
            self.step(Input::UpdateAnswered {
                conn,
                uuid,
                answer: CallAnswer::Accepted,
            });
            if self.exit.is_none() {
                self.ack(n);
            }
        }
    }

    /// Answers the oldest UPDATE in flight.
    fn answer_one(&mut self, answer: CallAnswer) {
        let (conn, uuid) = self.flying.remove(0);
        self.step(Input::UpdateAnswered { conn, uuid, answer });
    }

    fn states(&self) -> Vec<TaskState> {
        self.sent
            .iter()
            .map(|s| TaskState::try_from(s.state).unwrap())
            .collect()
    }

    fn last_sent(&self) -> &TaskStatus {
        self.sent.last().expect("an update")
    }

    fn took(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.actions.iter().filter(|a| f(a)).count()
    }
}

use TaskState::*;

fn is_start(a: &Action) -> bool {
    matches!(a, Action::StartWorkload { .. })
}
fn is_stop(a: &Action) -> bool {
    matches!(a, Action::StopWorkload { .. })
}
fn is_abort(a: &Action) -> bool {
    matches!(a, Action::AbortWorkload { .. })
}

#[test]
fn launch_reports_starting_then_running_when_the_workload_is_ready() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    assert_eq!(h.took(is_start), 1);
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting]);
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "holding its slot".into(),
    });
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting, TaskRunning]);
    assert_eq!(h.last_sent().message.as_deref(), Some("holding its slot"));
    assert_eq!(
        h.last_sent().source,
        Some(task_status::Source::Executor as i32)
    );
    assert_eq!(h.last_sent().timestamp, Some(1_790_000_000.0));
    assert!(h.exit.is_none(), "a running task keeps the executor alive");
}

#[test]
fn kill_reports_killing_then_killed_and_the_executor_exits() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    h.deliver_all();
    h.kill("task-1", Some(Duration::from_secs(2)));
    assert_eq!(h.took(is_stop), 1);
    assert_eq!(h.lc.next_deadline(), Some(h.now + Duration::from_secs(2)));
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting, TaskRunning, TaskKilling]);
    // A second KILL changes nothing.
    h.kill("task-1", Some(Duration::from_secs(1)));
    assert_eq!(h.took(is_stop), 1);
    assert!(h.flying.is_empty());
    h.now += Duration::from_millis(300);
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("noop stopped".into()),
    });
    h.deliver_all();
    assert_eq!(
        h.states(),
        [TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
    assert_eq!(
        h.last_sent().message.as_deref(),
        Some("killed by the scheduler: noop stopped")
    );
    assert_eq!(h.exit, Some(ExitReason::Done));
    assert_eq!(h.took(is_abort), 0);
}

#[test]
fn no_task_killing_without_the_capability() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(false);
    h.launch("task-1", noop(), None);
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    h.kill("task-1", None);
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("noop stopped".into()),
    });
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting, TaskRunning, TaskKilled]);
}

#[test]
fn a_workload_that_outlives_its_grace_is_cut_off() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", consumer(), None);
    h.deliver_all();
    h.kill("task-1", Some(Duration::from_secs(2)));
    h.deliver_all();
    h.advance(Duration::from_millis(1999));
    assert_eq!(h.took(is_abort), 0);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.took(is_abort), 1);
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting, TaskKilling, TaskKilled]);
    let message = h.last_sent().message.clone().unwrap();
    assert!(
        message.contains("did not stop within the grace period of 2 s and was cut off"),
        "{message}"
    );
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn the_kill_grace_comes_from_the_kill_then_the_task_then_the_workload() {
    // (task data, task's kill policy, KILL's kill policy, expected grace)
    let secs = Duration::from_secs;
    let cases = [
        (consumer(), Some(secs(20)), Some(secs(5)), secs(5)),
        (consumer(), Some(secs(20)), None, secs(20)),
        (consumer(), None, None, secs(30)),
        (noop(), None, None, DEFAULT_KILL_GRACE),
        (noop(), Some(secs(7)), None, secs(7)),
    ];
    for (data, task_policy, kill_policy, want) in cases {
        let mut h = Harness::new(checkpointed());
        h.subscribe(true);
        h.launch("task-1", data, task_policy);
        h.deliver_all();
        h.kill("task-1", kill_policy);
        assert_eq!(
            h.lc.next_deadline(),
            Some(h.now + want),
            "task {task_policy:?}, kill {kill_policy:?}"
        );
    }
}

#[test]
fn bad_task_data_fails_the_task_naming_the_field() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    let data = br#"{"version":1,"workload":{"kind":"producer","kafka":{"brokers":" "},"rate":5}}"#
        .to_vec();
    h.launch("task-1", data, None);
    assert_eq!(h.took(is_start), 0, "nothing is half-run");
    h.deliver_all();
    assert_eq!(h.states(), [TaskFailed]);
    let failed = h.last_sent();
    assert_eq!(failed.reason, Some(Reason::TaskInvalid as i32));
    let message = failed.message.clone().unwrap();
    assert!(
        message.starts_with("task data: workload.kafka.brokers: "),
        "{message}"
    );
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn workload_endings_map_to_terminal_states() {
    let cases = [
        (
            WorkloadOutcome::Finished("Cassandra check passed".into()),
            TaskFinished,
            "Cassandra check passed",
        ),
        (
            WorkloadOutcome::Failed("cannot open the dead-letter store in /x".into()),
            TaskFailed,
            "cannot open the dead-letter store in /x",
        ),
        (
            WorkloadOutcome::Stopped("flushed".into()),
            TaskFailed,
            "the producer workload stopped without being asked to: flushed",
        ),
    ];
    for (outcome, state, message) in cases {
        let mut h = Harness::new(checkpointed());
        h.subscribe(true);
        h.launch("task-1", producer(10.0), None);
        h.step(Input::WorkloadExited {
            task_id: "task-1".into(),
            outcome,
        });
        h.deliver_all();
        assert_eq!(h.states(), [TaskStarting, state]);
        assert_eq!(h.last_sent().message.as_deref(), Some(message));
        assert_eq!(h.last_sent().reason, None);
        assert_eq!(h.exit, Some(ExitReason::Done));
    }
}

#[test]
fn updates_made_while_disconnected_ride_on_the_next_subscribe() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.deliver_all();
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    // The agent takes TASK_RUNNING (202) but dies before acknowledging it.
    h.answer_updates(&CallAnswer::Accepted);
    let first = h.conn.unwrap();
    h.step(Input::StreamEnded {
        conn: first,
        error: Some("connection reset".into()),
    });
    assert!(!h.lc.is_subscribed());
    // While down: the workload fails; its update cannot go anywhere yet.
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Failed("broke".into()),
    });
    assert!(h.flying.is_empty(), "no UPDATE while disconnected");
    assert!(h.exit.is_none(), "waits for the agent");
    let retry_at = h.lc.next_deadline().unwrap();
    assert!(
        retry_at - h.now <= Duration::from_secs(1),
        "within half the backoff max"
    );
    h.advance_to_deadline();
    let Some(Action::Subscribe { conn, call }) = h.actions.last().cloned() else {
        panic!("a SUBSCRIBE is due: {:?}", h.actions.last());
    };
    assert_ne!(conn, first);
    let subscribe = call.subscribe.unwrap();
    let carried: Vec<i32> = subscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.state)
        .collect();
    assert_eq!(carried, [TaskRunning as i32, TaskFailed as i32]);
    assert!(
        subscribe.unacknowledged_tasks.is_empty(),
        "TASK_STARTING was acknowledged, so the task is"
    );
    // News from the old stream is ignored.
    h.step(Input::StreamEnded {
        conn: first,
        error: None,
    });
    h.event(Harness::subscribed_event(true));
    assert!(h.flying.is_empty(), "carried by SUBSCRIBE, not sent again");
    // The agent acknowledges both after the re-subscription; then the executor is done.
    let running = subscribe.unacknowledged_updates[0].status.clone();
    let failed = subscribe.unacknowledged_updates[1].status.clone();
    for status in [running, failed] {
        assert!(h.exit.is_none());
        h.event(executor::Event {
            r#type: Some(event::Type::Acknowledged as i32),
            acknowledged: Some(event::Acknowledged {
                task_id: status.task_id,
                uuid: status.uuid.unwrap(),
            }),
            ..Default::default()
        });
    }
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn without_checkpointing_a_lost_agent_stops_the_workloads_and_exits() {
    let mut h = Harness::new(Recovery::Exit);
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.deliver_all();
    let conn = h.conn.unwrap();
    h.step(Input::StreamEnded { conn, error: None });
    assert_eq!(h.took(is_stop), 1);
    assert!(h.exit.is_none(), "waits for the workload to stop");
    assert!(
        h.took(|a| matches!(a, Action::Subscribe { .. })) == 1,
        "no new SUBSCRIBE"
    );
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("noop stopped".into()),
    });
    let Some(ExitReason::AgentLost(why)) = h.exit.clone() else {
        panic!("{:?}", h.exit)
    };
    assert!(why.contains("does not checkpoint"), "{why}");
    assert_eq!(ExitReason::AgentLost(why).code(), 1);
}

#[test]
fn checkpointed_executors_give_up_after_the_recovery_timeout() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.deliver_all();
    let lost_at = h.now;
    let conn = h.conn.unwrap();
    h.step(Input::StreamEnded { conn, error: None });
    let mut attempts = 0;
    while h.took(is_stop) == 0 {
        h.advance_to_deadline();
        if let Some(Action::Subscribe { conn, .. }) = h.actions.last().cloned() {
            attempts += 1;
            h.step(Input::SubscribeFailed {
                conn,
                status: if attempts % 2 == 0 { None } else { Some(503) },
                error: "connection refused".into(),
            });
        }
        assert!(h.now <= lost_at + Duration::from_secs(11), "gave up late");
    }
    assert!(h.now >= lost_at + Duration::from_secs(10), "gave up early");
    assert!(
        attempts >= 10,
        "{attempts} attempts in 10 s with a 2 s backoff max"
    );
    // The workload does not stop: cut off at the shutdown cut-off, exit at the grace.
    h.advance_to_deadline();
    assert_eq!(h.took(is_abort), 1);
    let Some(ExitReason::AgentLost(why)) = h.exit.clone() else {
        panic!("{:?}", h.exit)
    };
    assert!(why.contains("within 10 s"), "{why}");
}

#[test]
fn shutdown_kills_every_task_and_exits() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", consumer(), None);
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    h.deliver_all();
    h.simple_event(event::Type::Shutdown);
    assert_eq!(h.took(is_stop), 1);
    // Cut-off: the 4 s shutdown grace less 1 s, not the consumer's 30 s.
    assert_eq!(h.lc.next_deadline(), Some(h.now + Duration::from_secs(3)));
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("consumer committed".into()),
    });
    h.deliver_all();
    assert_eq!(h.states(), [TaskStarting, TaskRunning, TaskKilled]);
    assert_eq!(
        h.last_sent().message.as_deref(),
        Some("stopped because the agent shut the executor down: consumer committed")
    );
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn shutdown_answering_subscribe_exits_at_once() {
    let mut h = Harness::new(checkpointed());
    h.step(Input::Start);
    h.simple_event(event::Type::Shutdown);
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn shutdown_exits_at_the_grace_period_even_without_acknowledgements() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.deliver_all();
    h.simple_event(event::Type::Shutdown);
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("noop stopped".into()),
    });
    h.answer_updates(&CallAnswer::Unreachable("reset".into()));
    assert!(h.exit.is_none());
    h.advance(GRACE);
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.step(Input::Terminate);
    assert_eq!(h.took(is_stop), 1);
    assert!(h.exit.is_none());
    h.step(Input::Terminate);
    assert_eq!(h.exit, Some(ExitReason::Interrupted));
    assert_eq!(ExitReason::Interrupted.code(), 130);
}

#[test]
fn failed_update_calls_are_retried_in_order() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.answer_updates(&CallAnswer::Unreachable("connection reset".into()));
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    assert_eq!(h.states(), [TaskStarting], "RUNNING waits behind STARTING");
    assert!(h.flying.is_empty());
    h.advance(UPDATE_RETRY / 2);
    assert!(h.flying.is_empty(), "not before the retry time");
    h.advance(UPDATE_RETRY / 2);
    assert_eq!(h.states(), [TaskStarting, TaskStarting]);
    assert_eq!(h.sent[0].uuid, h.sent[1].uuid, "the same update again");
    h.answer_updates(&CallAnswer::Refused {
        status: 503,
        body: "Agent has not finished recovery".into(),
    });
    h.advance(UPDATE_RETRY);
    h.deliver_all();
    assert_eq!(
        h.states(),
        [TaskStarting, TaskStarting, TaskStarting, TaskRunning]
    );
}

#[test]
fn an_update_the_agent_calls_invalid_is_dropped() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.step(Input::WorkloadReady {
        task_id: "task-1".into(),
        detail: "ready".into(),
    });
    h.answer_one(CallAnswer::Refused {
        status: 400,
        body: "Failed to validate Executor::Call".into(),
    });
    assert_eq!(
        h.states(),
        [TaskStarting, TaskRunning],
        "the next one goes out"
    );
    assert_eq!(h.lc.unacknowledged(), 1, "only TASK_RUNNING waits");
}

#[test]
fn not_subscribed_answers_start_a_new_subscription() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.answer_updates(&CallAnswer::Refused {
        status: 403,
        body: "Executor is not subscribed".into(),
    });
    assert!(!h.lc.is_subscribed());
    assert!(matches!(h.actions.last(), Some(Action::CloseStream)));
    h.advance_to_deadline();
    let Some(Action::Subscribe { call, .. }) = h.actions.last() else {
        panic!()
    };
    let subscribe = call.subscribe.as_ref().unwrap();
    assert_eq!(subscribe.unacknowledged_updates.len(), 1);
    assert_eq!(
        subscribe.unacknowledged_tasks.len(),
        1,
        "never acknowledged"
    );
}

#[test]
fn error_events_lead_to_a_new_subscription() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.event(executor::Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: "Framework failed over".into(),
        }),
        ..Default::default()
    });
    assert!(!h.lc.is_subscribed());
    h.advance_to_deadline();
    assert!(matches!(h.actions.last(), Some(Action::Subscribe { .. })));
}

#[test]
fn scheduler_commands_go_to_producers_only() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", producer(0.0), None);
    h.launch("task-2", noop(), None);
    let message = |data: &[u8]| executor::Event {
        r#type: Some(event::Type::Message as i32),
        message: Some(event::Message {
            data: data.to_vec(),
        }),
        ..Default::default()
    };
    let actions = h.event(message(br#"{"version":1,"set_rate":250.0}"#));
    let commands: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Command { task_id, command } => Some((task_id.clone(), command.set_rate)),
            _ => None,
        })
        .collect();
    assert_eq!(commands, [("task-1".to_owned(), Some(250.0))]);
    let garbage = h.event(message(b"\xff not json"));
    assert!(!garbage.iter().any(|a| matches!(a, Action::Command { .. })));
}

#[test]
fn launch_during_shutdown_fails_the_task() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.step(Input::Terminate);
    h.launch("task-2", noop(), None);
    assert_eq!(h.took(is_start), 1);
    let failed =
        h.lc.book
            .subscribe_payload()
            .unacknowledged_updates
            .into_iter()
            .find(|u| u.status.task_id.value == "task-2")
            .unwrap()
            .status;
    assert_eq!(failed.state, TaskFailed as i32);
    assert!(failed.message.unwrap().contains("shutting down"));
}

#[test]
fn the_executor_waits_a_bounded_time_for_the_last_acknowledgements() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", producer(1.0), None);
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Failed("Kafka unreachable".into()),
    });
    h.answer_updates(&CallAnswer::Accepted);
    h.answer_updates(&CallAnswer::Accepted);
    assert!(h.exit.is_none());
    h.advance(FINAL_ACK_WAIT - Duration::from_millis(1));
    assert!(h.exit.is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.exit, Some(ExitReason::Done));
}

#[test]
fn kill_of_an_unknown_or_ended_task_is_ignored() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    assert!(h.kill("nobody", None).is_empty());
    h.launch("task-1", br#"{"version":9}"#.to_vec(), None);
    let before = h.sent.len();
    h.kill("task-1", None);
    assert_eq!(h.sent.len(), before);
}

#[test]
fn a_subscription_the_agent_refuses_is_not_retried() {
    for (status, retried) in [
        (400, false),
        (401, false),
        (415, false),
        (404, true),
        (503, true),
        (500, true),
    ] {
        let mut h = Harness::new(checkpointed());
        h.step(Input::Start);
        let conn = h.conn.unwrap();
        h.step(Input::SubscribeFailed {
            conn,
            status: Some(status),
            error: format!("the agent answered SUBSCRIBE with {status}: Executor cannot be found"),
        });
        if retried {
            assert!(h.exit.is_none(), "{status}");
            assert!(h.lc.next_deadline().is_some(), "{status}: a retry is due");
        } else {
            let Some(ExitReason::AgentLost(why)) = h.exit.clone() else {
                panic!("{status}: {:?}", h.exit)
            };
            assert!(why.contains("refused the subscription"), "{why}");
            assert!(why.contains("Executor cannot be found"), "{why}");
        }
    }
}

#[test]
fn a_refused_resubscription_stops_the_task_and_exits_without_waiting_for_acknowledgements() {
    let mut h = Harness::new(checkpointed());
    h.subscribe(true);
    h.launch("task-1", noop(), None);
    h.deliver_all();
    let conn = h.conn.unwrap();
    h.step(Input::StreamEnded { conn, error: None });
    h.advance_to_deadline();
    let conn = h.conn.unwrap();
    h.step(Input::SubscribeFailed {
        conn,
        status: Some(400),
        error: "the agent answered SUBSCRIBE with 400: Executor cannot be found".into(),
    });
    assert_eq!(h.took(is_stop), 1);
    h.step(Input::WorkloadExited {
        task_id: "task-1".into(),
        outcome: WorkloadOutcome::Stopped("noop stopped".into()),
    });
    assert!(
        matches!(h.exit, Some(ExitReason::AgentLost(_))),
        "its TASK_KILLED can go nowhere: {:?}",
        h.exit
    );
}
