//! The executor binary under devcluster's agent, over real HTTP: launch → STARTING →
//! RUNNING, KILL → KILLING → KILLED within the grace period, a failing workload, bad task
//! data, SHUTDOWN, stats MESSAGEs, and an agent restart with updates the agent has not
//! acknowledged. No Kafka or Cassandra is needed here (`services.rs` has those).

#[path = "../../devcluster/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::Scheduler;
use fastdata_proto::task::{
    CassandraSpec, ConsumerSpec, KafkaSpec, ProducerSpec, TaskSpec, Workload, WorkloadKind,
};
use fastdata_proto::v1::{AgentId, ExecutorId, TaskState, scheduler, task_status::Reason};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use support::*;
use tokio::time::Instant;

use TaskState::*;

fn noop() -> Vec<u8> {
    TaskSpec::new(Workload::Noop).to_json()
}

/// Launches a noop task and waits until it runs; returns the scheduler, its log and agent.
async fn running_noop(
    cluster: &fastdata_devcluster::DevCluster,
    task_id: &str,
    checkpoint: bool,
) -> (Scheduler, UpdateLog, String) {
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(checkpoint)).await;
    let agent = cluster.agent_ids()[0].clone();
    let options = TaskOptions {
        grace: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    launch(&mut s, executor_task(&agent, task_id, noop(), &options)).await;
    let mut log = UpdateLog::default();
    log.until(&mut s, task_id, TaskRunning, LONG).await;
    (s, log, agent)
}

/// Launch → STARTING → RUNNING; KILL → KILLING → KILLED well within the grace period; every
/// update carries a fresh UUID, SOURCE_EXECUTOR, the executor id and a message; the
/// executor then exits with status 0; every log line names the task.
#[tokio::test]
async fn launch_run_and_kill_within_the_grace_period() {
    let cluster = start_cluster().await;
    let (mut s, mut log, agent) = running_noop(&cluster, "noop-1", true).await;
    let sandbox = sandbox(&cluster, "noop-1");

    let grace = Duration::from_secs(5);
    let sent = Instant::now();
    kill(&s, &agent, "noop-1", Some(grace)).await;
    log.until(&mut s, "noop-1", TaskKilled, LONG).await;
    let took = log.arrival("noop-1", TaskKilled).unwrap() - sent;
    assert!(took < grace, "KILLED {took:?} after KILL, grace {grace:?}");

    assert_eq!(
        log.states("noop-1"),
        [TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
    log.check_executor_updates("noop-1");
    let killed = log.distinct("noop-1").pop().unwrap();
    assert_eq!(
        killed.message.as_deref(),
        Some("killed by the scheduler: the noop workload stopped")
    );

    // The executor exits on its own once the agent has every update: FAILURE with status 0.
    // (It may arrive before the scheduler sees TASK_KILLED: the agent acknowledges the update
    // to the executor at once, and the executor leaves.)
    let mut failure = log.others.iter().find_map(|ev| ev.failure.clone());
    while failure.is_none() {
        failure = next_event(&mut s, LONG).await.failure;
    }
    let failure = failure.unwrap();
    assert_eq!(
        failure.executor_id.map(|e| e.value),
        Some(executor_id("noop-1"))
    );
    assert_eq!(failure.status, Some(0), "exit status 0");
    let text = executor_log(&sandbox);
    eprintln!("executor log:\n{text}");
    assert_lines_name_the_task(&text, "noop-1");
    cluster.stop().await;
}

/// A task whose spec cannot run fails at once, naming the field, with REASON_TASK_INVALID;
/// a workload that breaks fails with its reason.
#[tokio::test]
async fn bad_task_data_and_a_failing_workload_fail_with_the_reason() {
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut log = UpdateLog::default();

    let bad = br#"{"version":1,"workload":{"kind":"consumer","kafka":{"brokers":"127.0.0.1:9092"},"cassandra":{"contact_points":["127.0.0.1:9042"],"replication":"three"}}}"#;
    launch(
        &mut s,
        executor_task(&agent, "bad-spec", bad.to_vec(), &TaskOptions::default()),
    )
    .await;
    let failed = log.until(&mut s, "bad-spec", TaskFailed, LONG).await;
    assert_eq!(log.states("bad-spec"), [TaskFailed], "nothing was started");
    assert_eq!(failed.reason, Some(Reason::TaskInvalid as i32));
    let message = failed.message.unwrap();
    assert!(
        message.starts_with("task data: workload.cassandra.replication: "),
        "{message}"
    );

    // A consumer whose spool cannot be a directory: it fails before any Kafka or Cassandra
    // client is made, and says why.
    let blocker =
        std::env::temp_dir().join(format!("fastdata-exec-blocker-{}", std::process::id()));
    std::fs::write(&blocker, b"a file, not a directory").unwrap();
    let spec = TaskSpec::new(Workload::Consumer(ConsumerSpec {
        kafka: KafkaSpec {
            brokers: "127.0.0.1:9".into(),
            topic: "sensor-temp".into(),
            properties: Default::default(),
        },
        group: "g".into(),
        group_instance_id: None,
        cassandra: CassandraSpec {
            contact_points: vec!["127.0.0.1:9".into()],
            keyspace: "sensors".into(),
            replication: "1".into(),
            local_dc: None,
            username: None,
            password_env: None,
        },
        spool_dir: blocker.join("spool").display().to_string(),
        grace_ms: 5_000,
        max_in_flight: None,
        batch_size: None,
        max_rate: None,
    }));
    launch(
        &mut s,
        executor_task(&agent, "broken", spec.to_json(), &TaskOptions::default()),
    )
    .await;
    let failed = log.until(&mut s, "broken", TaskFailed, LONG).await;
    assert_eq!(log.states("broken"), [TaskStarting, TaskFailed]);
    assert_eq!(failed.reason, None);
    let message = failed.message.unwrap();
    assert!(
        message.contains("dead-letter store") && message.contains(&blocker.display().to_string()),
        "{message}"
    );
    log.check_executor_updates("broken");
    let _ = std::fs::remove_file(blocker);
    wait_executor_exit(&cluster, "broken", LONG).await;
    wait_executor_exit(&cluster, "bad-spec", LONG).await;
    cluster.stop().await;
}

/// SHUTDOWN of the executor: its task is killed (no TASK_KILLING, the task was not
/// KILLed), TASK_KILLED says why, and the process exits before the shutdown grace. This
/// executor is started from the binary's absolute path, with nothing fetched (an agent where
/// the executor is installed, and no copy of it per sandbox).
#[tokio::test]
async fn shutdown_kills_the_task_and_exits() {
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut task = executor_task(&agent, "noop-shutdown", noop(), &TaskOptions::default());
    let command = task
        .executor
        .as_mut()
        .and_then(|e| e.command.as_mut())
        .unwrap();
    command.uris.clear();
    command.value = Some(EXECUTOR.into());
    command.shell = Some(false);
    launch(&mut s, task).await;
    let mut log = UpdateLog::default();
    log.until(&mut s, "noop-shutdown", TaskRunning, LONG).await;
    assert!(
        !sandbox(&cluster, "noop-shutdown")
            .join("fastdata-executor")
            .exists(),
        "nothing was fetched"
    );
    let answer = s
        .call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Shutdown as i32),
            shutdown: Some(scheduler::call::Shutdown {
                executor_id: ExecutorId {
                    value: executor_id("noop-shutdown"),
                },
                agent_id: AgentId { value: agent },
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let sent = Instant::now();
    let killed = log.until(&mut s, "noop-shutdown", TaskKilled, LONG).await;
    assert_eq!(
        killed.message.as_deref(),
        Some("stopped because the agent shut the executor down: the noop workload stopped")
    );
    assert_eq!(
        log.states("noop-shutdown"),
        [TaskStarting, TaskRunning, TaskKilled]
    );
    wait_executor_exit(&cluster, "noop-shutdown", LONG).await;
    // devcluster's shutdown grace is 5 s; the executor left well before the SIGKILL.
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    cluster.stop().await;
}

/// Stats reports arrive as executor MESSAGEs every `stats_interval_ms`, versioned and
/// small; a paused producer (rate 0) runs without any Kafka client.
#[tokio::test]
async fn stats_reports_reach_the_scheduler() {
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut spec = TaskSpec::new(Workload::Producer(ProducerSpec {
        // Nothing listens here: a paused producer must not need it.
        kafka: KafkaSpec {
            brokers: "127.0.0.1:9".into(),
            topic: "sensor-temp".into(),
            properties: Default::default(),
        },
        sensors: 3,
        rate: 0.0,
        partitions: 1,
        replication_factor: None,
    }));
    spec.stats_interval_ms = 300;
    launch(
        &mut s,
        executor_task(&agent, "paused", spec.to_json(), &TaskOptions::default()),
    )
    .await;
    let mut log = UpdateLog::default();
    let running = log.until(&mut s, "paused", TaskRunning, LONG).await;
    assert!(running.message.unwrap().contains("paused"));
    let first = wait_report(&mut s, &mut log, "paused", LONG, |_| true).await;
    let second = wait_report(&mut s, &mut log, "paused", LONG, |_| true).await;
    for report in [&first, &second] {
        assert_eq!(report.version, fastdata_proto::task::VERSION);
        assert_eq!(report.task_id, "paused");
        assert_eq!(report.kind, Some(WorkloadKind::Producer));
        assert!(report.ready);
        assert_eq!((report.acked, report.failed), (0, 0));
        assert!(report.to_json().len() < 1024);
    }
    assert!(second.at_unix_ms > first.at_unix_ms);
    kill(&s, &agent, "paused", None).await;
    let killed = log.until(&mut s, "paused", TaskKilled, LONG).await;
    assert!(killed.message.unwrap().contains("0 events acknowledged"));
    cluster.stop().await;
}

/// The agent restarts while the executor holds updates it has not delivered: the executor
/// (frozen while the KILL arrives, thawed once the agent is down) makes TASK_KILLING and
/// TASK_KILLED while the agent is away, re-subscribes with both when it is back, the agent
/// acknowledges each once, and the scheduler sees every update once: STARTING, RUNNING,
/// KILLING, KILLED, nothing lost, nothing doubled (a redelivery of a UUID already seen is
/// Mesos' at-least-once delivery, `faults-checkpoint-executor.jsonl`, not a new update).
#[tokio::test]
async fn updates_made_while_the_agent_restarts_are_resent_and_acknowledged_once() {
    let cluster = start_cluster().await;
    let (mut s, mut log, agent) = running_noop(&cluster, "noop-restart", true).await;
    let sandbox = sandbox(&cluster, "noop-restart");
    let pid = executor_pid(&cluster, "noop-restart").await;
    // devcluster starts each executor in its own process group.
    let group = Pid::from_raw(pid);

    killpg(group, Signal::SIGSTOP).expect("freeze the executor");
    kill(&s, &agent, "noop-restart", None).await;
    // Let the agent write KILL into the executor's stream before it dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster
        .inject(fastdata_devcluster::Fault::RestartAgent {
            agent: 0,
            down_ms: 3000,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    killpg(group, Signal::SIGCONT).expect("thaw the executor");

    log.until(&mut s, "noop-restart", TaskKilled, LONG).await;
    wait_executor_exit(&cluster, "noop-restart", LONG).await;
    assert_eq!(
        log.states("noop-restart"),
        [TaskStarting, TaskRunning, TaskKilling, TaskKilled],
        "every update once, in order"
    );
    log.check_executor_updates("noop-restart");

    let text = executor_log(&sandbox);
    eprintln!("executor log:\n{text}");
    // Both were made while the agent was down and rode on the re-SUBSCRIBE that succeeded.
    assert!(
        text.lines().any(
            |l| l.contains("subscribed to the agent") && l.contains("unacknowledged_updates=2")
        ),
        "{text}"
    );
    // The agent acknowledged each of the four updates exactly once.
    assert_eq!(
        text.matches("update acknowledged by the agent").count(),
        4,
        "{text}"
    );
    assert!(!text.contains("no longer waiting"), "{text}");
    cluster.stop().await;
}

/// Without checkpointing the executor does not outlive its agent: when the agent goes
/// down, the executor stops its workload and exits (code 1, saying why). The agent would
/// kill its own child at once, so here the agent starts a stand-in that records the
/// environment it was given, and the test runs the executor with that environment.
#[tokio::test]
async fn without_checkpointing_the_executor_exits_when_the_agent_goes() {
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(false)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut task = executor_task(&agent, "noop-plain", noop(), &TaskOptions::default());
    let command = task
        .executor
        .as_mut()
        .and_then(|e| e.command.as_mut())
        .unwrap();
    command.uris.clear();
    command.value = Some("env > env.txt; exec sleep 600".into());
    launch(&mut s, task).await;

    let pid = executor_pid(&cluster, "noop-plain").await;
    assert!(pid > 0);
    let sandbox = sandbox(&cluster, "noop-plain");
    let env_file = sandbox.join("env.txt");
    let deadline = Instant::now() + LONG;
    let env = loop {
        let text = std::fs::read_to_string(&env_file).unwrap_or_default();
        if text.contains("MESOS_SUBSCRIPTION") || text.contains("MESOS_SLAVE_PID") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the stand-in never wrote its environment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("MESOS_") || k.starts_with("LIBPROCESS_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert!(
        vars.iter()
            .any(|(k, v)| k == "MESOS_CHECKPOINT" && v == "0")
    );
    let mut child = tokio::process::Command::new(EXECUTOR)
        .env_clear()
        .envs(vars)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let mut log = UpdateLog::default();
    log.until(&mut s, "noop-plain", TaskRunning, LONG).await;
    cluster
        .inject(fastdata_devcluster::Fault::RestartAgent {
            agent: 0,
            down_ms: 5000,
        })
        .unwrap();
    let lost = Instant::now();
    let status = tokio::time::timeout(LONG, child.wait())
        .await
        .expect("the executor exits")
        .unwrap();
    let took = lost.elapsed();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "{took:?}: before the agent came back"
    );
    assert!(stderr.contains("does not checkpoint"), "{stderr}");
    assert!(
        stderr.contains("stopping every task"),
        "the workload was stopped: {stderr}"
    );
    cluster.stop().await;
}

/// The noop workload keeps the executor light (the scheduler's 1,000-slot benchmark starts
/// one per slot): no Kafka or Cassandra client, a two-worker runtime. Prints the resident
/// memory and thread count of a running noop executor.
#[tokio::test]
async fn a_noop_executor_stays_light() {
    let cluster = start_cluster().await;
    let (_s, _log, _agent) = running_noop(&cluster, "noop-light", true).await;
    let pid = executor_pid(&cluster, "noop-light").await;
    // Let it settle (first stats tick, idle connections).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    let (rss_kib, peak_kib, threads) = (field("VmRSS:"), field("VmHWM:"), field("Threads:"));
    eprintln!(
        "noop executor (this build): RSS {} KiB, peak {} KiB, {} threads",
        rss_kib, peak_kib, threads
    );
    assert!(rss_kib < 64 * 1024, "RSS {rss_kib} KiB");
    assert!(
        threads <= 8,
        "{threads} threads: no client pools for a noop task"
    );
    cluster.stop().await;
}

/// A workload that does not stop within the kill policy's grace period is cut off when it
/// runs out: TASK_KILLED says so, and the executor exits. (The producer here cannot reach
/// Kafka and is still creating its topic, which it does not interrupt for a stop: up to 30 s.)
#[tokio::test]
async fn a_workload_that_does_not_stop_is_cut_off_at_the_grace_period() {
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let spec = TaskSpec::new(Workload::Producer(ProducerSpec {
        kafka: KafkaSpec {
            brokers: format!("127.0.0.1:{port}"),
            topic: "sensor-temp".into(),
            properties: Default::default(),
        },
        sensors: 3,
        rate: 10.0,
        partitions: 1,
        replication_factor: None,
    }));
    launch(
        &mut s,
        executor_task(&agent, "stuck", spec.to_json(), &TaskOptions::default()),
    )
    .await;
    let mut log = UpdateLog::default();
    log.until(&mut s, "stuck", TaskStarting, LONG).await;
    let grace = Duration::from_secs(2);
    let sent = Instant::now();
    kill(&s, &agent, "stuck", Some(grace)).await;
    let killed = log.until(&mut s, "stuck", TaskKilled, LONG).await;
    let took = log.arrival("stuck", TaskKilled).unwrap() - sent;
    assert!(took >= grace, "cut off before the grace ran out: {took:?}");
    assert!(
        took < grace + Duration::from_secs(3),
        "cut off late: {took:?}"
    );
    assert_eq!(
        killed.message.as_deref(),
        Some(
            "killed by the scheduler: the workload did not stop within the grace period of 2 s and was cut off"
        )
    );
    assert_eq!(log.states("stuck"), [TaskStarting, TaskKilling, TaskKilled]);
    wait_executor_exit(&cluster, "stuck", LONG).await;
    cluster.stop().await;
}

/// An executor the agent does not know (wrong framework id) is refused with 400; retrying
/// cannot help, so it exits at once (code 1) with the agent's words.
#[tokio::test]
async fn an_executor_the_agent_does_not_know_exits_with_its_answer() {
    let cluster = start_cluster().await;
    let endpoint = cluster.agent_endpoints()[0];
    let sandbox = std::env::temp_dir();
    let started = Instant::now();
    let output = tokio::process::Command::new(EXECUTOR)
        .env_clear()
        .env("MESOS_AGENT_ENDPOINT", endpoint.to_string())
        .env("MESOS_FRAMEWORK_ID", "no-such-framework")
        .env("MESOS_EXECUTOR_ID", "stray.executor")
        .env("MESOS_DIRECTORY", &sandbox)
        .env("MESOS_SANDBOX", &sandbox)
        .env("MESOS_CHECKPOINT", "1")
        .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")
        .env("MESOS_RECOVERY_TIMEOUT", "15mins")
        .env("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LONG, output).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the agent refused the subscription")
            && stderr.contains("400: Framework cannot be found"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    cluster.stop().await;
}
