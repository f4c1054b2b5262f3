//! The executor running real workloads under devcluster, against the real Kafka and Cassandra
//! of `dev/services` (`dev/services up`; a missing service fails the test with that hint).
//!
//! - A consumer task killed by the scheduler mid-stream commits and leaves its group within
//!   the grace period; a second consumer task in the same slot finishes the topic; the table
//!   then holds every reading exactly once and the group's lag is 0.
//! - A producer task takes `set_rate` commands from scheduler MESSAGEs (0 pauses it) and
//!   reports how many events Kafka acknowledged.
//! - The Cassandra check task finishes when Cassandra answers and fails, with the error, when
//!   it does not.

#[path = "../../devcluster/tests/common/mod.rs"]
mod common;
#[path = "../../workloads/tests/common/mod.rs"]
mod services;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Scheduler;
use fastdata_proto::task::{
    CassandraSpec, ConsumerSpec, ExecutorCommand, KafkaSpec, ProducerSpec, SinkState, TaskSpec,
    VERSION, Workload,
};
use fastdata_proto::v1::TaskState;
use fastdata_workloads::dead_letter;
use fastdata_workloads::producer::TargetRate;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::*;
use tokio::time::Instant;

use TaskState::*;

const PARTITIONS: i32 = 4;

fn consumer_spec(name: &str) -> Vec<u8> {
    let mut spec = TaskSpec::new(Workload::Consumer(ConsumerSpec {
        kafka: KafkaSpec {
            brokers: services::kafka_brokers(),
            topic: name.into(),
            properties: BTreeMap::new(),
        },
        group: name.into(),
        group_instance_id: None,
        cassandra: CassandraSpec {
            contact_points: services::cassandra_contact_points(),
            keyspace: name.into(),
            replication: "1".into(),
            local_dc: None,
            username: None,
            password_env: None,
        },
        spool_dir: "spool".into(),
        grace_ms: 20_000,
        max_in_flight: Some(32),
        batch_size: Some(200),
        max_rate: None,
    }));
    spec.stats_interval_ms = 500;
    spec.to_json()
}

/// The members of a consumer group, as the group coordinator lists them.
async fn group_members(group: &str) -> usize {
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", services::kafka_brokers())
            .create()
            .unwrap();
        let list = consumer
            .fetch_group_list(Some(&group), Duration::from_secs(10))
            .expect("listing the group");
        list.groups()
            .iter()
            .filter(|g| g.name() == group)
            .map(|g| g.members().len())
            .sum()
    })
    .await
    .unwrap()
}

/// Sends `n` messages that are not readings; returns their (partition, offset).
async fn send_garbage(topic: &str, n: usize) -> BTreeSet<(i32, i64)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", services::kafka_brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let (key, payload) = (format!("bad-{i}"), format!("{{not a reading {i}"));
        let record: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(payload.as_str());
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("Kafka takes the message");
        sent.insert((delivery.partition, delivery.offset));
    }
    sent
}

/// Sum of the group's committed offsets and of the topic's high watermarks.
async fn committed_and_end(name: &str) -> (i64, i64) {
    let committed = services::committed_offsets(name, name, PARTITIONS).await;
    let ends = services::high_watermarks(name, PARTITIONS).await;
    (committed.values().sum(), ends.values().sum())
}

async fn run_consumer_until_killed(
    s: &mut Scheduler,
    log: &mut UpdateLog,
    cluster: &fastdata_devcluster::DevCluster,
    task_id: &str,
    name: &str,
    kill_when: impl AsyncFnMut() -> bool,
) -> Duration {
    let agent = cluster.agent_ids()[0].clone();
    let options = TaskOptions {
        grace: Some(Duration::from_secs(20)),
        volume: Some(format!("{name}-consumer-0")),
        ..Default::default()
    };
    launch(
        s,
        executor_task(&agent, task_id, consumer_spec(name), &options),
    )
    .await;
    let running = log
        .until(s, task_id, TaskRunning, Duration::from_secs(120))
        .await;
    let message = running.message.unwrap();
    assert!(
        message.contains(&format!("joined consumer group {name}")),
        "{message}"
    );

    // Reports flow while it works: rows written, a healthy sink, every partition.
    let report = wait_report(s, log, task_id, LONG, |r| r.rows_written > 0).await;
    assert_eq!(report.sink, SinkState::Healthy);
    assert!(report.ready && report.events_per_sec >= 0.0, "{report:?}");
    assert_eq!(
        report.assigned_partitions.len(),
        PARTITIONS as usize,
        "the only member holds every partition: {report:?}"
    );
    assert!(report.write_latency_p50_ms.is_some(), "{report:?}");

    let mut kill_when = kill_when;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !kill_when().await {
        assert!(Instant::now() < deadline, "the kill condition never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = Instant::now();
    kill(s, &agent, task_id, None).await;
    let killed = log.until(s, task_id, TaskKilled, LONG).await;
    let took = log.arrival(task_id, TaskKilled).unwrap() - sent;
    assert_eq!(
        log.states(task_id),
        [TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
    log.check_executor_updates(task_id);
    let message = killed.message.unwrap();
    assert!(
        message
            .starts_with("killed by the scheduler: consumer committed its offsets and left group"),
        "{message}"
    );
    wait_executor_exit(cluster, task_id, LONG).await;
    took
}

/// A consumer task killed through Mesos mid-stream (readings keep arriving) commits what it
/// wrote and leaves the group within the grace period; the slot's next consumer finishes the
/// topic; every reading is then in Cassandra exactly once, every message that is not a
/// reading is in the slot's dead-letter store, and the lag is 0.
#[tokio::test]
async fn a_killed_consumer_commits_and_leaves_within_the_grace_period() {
    let _lock = services::cassandra_shared().await;
    services::require_kafka().await;
    let session = services::require_cassandra().await;
    let name = services::unique("exec_kill");
    services::create_topic(&name, PARTITIONS).await;
    // 40,000 readings over 16 s, then 5 messages that are not readings.
    let total: u64 = 40_000;
    const BAD: usize = 5;
    let messages = total as i64 + BAD as i64;
    let producing = tokio::spawn({
        let name = name.clone();
        async move {
            services::produce(&name, PARTITIONS, 40, total, TargetRate::PerSecond(2_500.0)).await;
            send_garbage(&name, BAD).await
        }
    });

    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let mut log = UpdateLog::default();

    // First consumer: killed once a tenth of the readings are in, while more arrive.
    let first_kill = run_consumer_until_killed(&mut s, &mut log, &cluster, "consumer-1", &name, {
        let session = session.clone();
        let name = name.clone();
        async move || services::count_rows(&session, &name).await >= (total / 10) as i64
    })
    .await;
    assert!(
        first_kill < Duration::from_secs(20),
        "KILLED {first_kill:?} after KILL; grace 20 s"
    );
    assert_eq!(group_members(&name).await, 0, "it left the group");
    let (committed, end) = committed_and_end(&name).await;
    let rows = services::count_rows(&session, &name).await;
    assert!(committed > 0, "it committed what it wrote");
    assert!(
        committed <= rows + BAD as i64,
        "{committed} committed but only {rows} rows: a commit ran ahead of the writes"
    );
    assert!(
        end < messages,
        "killed while readings were still arriving ({end} so far)"
    );
    eprintln!(
        "first consumer: KILLED {first_kill:?} after KILL; {committed} committed, {rows} rows written, {end} in the topic then"
    );

    // The slot's next consumer (same group, same volume) picks up from the commits.
    let second_kill = run_consumer_until_killed(&mut s, &mut log, &cluster, "consumer-2", &name, {
        let session = session.clone();
        let name = name.clone();
        async move || {
            services::count_rows(&session, &name).await == total as i64
                && committed_and_end(&name).await.0 == messages
        }
    })
    .await;
    assert!(second_kill < Duration::from_secs(20), "{second_kill:?}");
    eprintln!("second consumer: KILLED {second_kill:?} after KILL");
    assert_eq!(group_members(&name).await, 0);
    let (committed, end) = committed_and_end(&name).await;
    assert_eq!((committed, end), (messages, messages), "lag 0");
    let bad = producing.await.expect("the test's producer");
    let readings: Vec<_> = services::read_topic(&name)
        .await
        .iter()
        .filter(|r| !r.key.as_deref().unwrap_or_default().starts_with(b"bad-"))
        .map(|r| {
            fastdata_workloads::event::parse_reading(r.payload.as_deref().unwrap_or_default())
                .expect("a reading")
        })
        .collect();
    assert_eq!(readings.len() as u64, total);
    let rows = services::table_rows(&session, &name).await;
    services::assert_rows_match(&rows, &readings);
    // The dead letters are on the slot's volume (devcluster's `pxd` directory), each once or
    // more (a replay may record one twice), none missing.
    let store = cluster
        .work_dir()
        .join(format!("volumes/pxd/{name}-consumer-0"))
        .join(dead_letter::FILE_NAME);
    let records = dead_letter::read_file(&store).expect("the dead-letter store on the volume");
    let found: BTreeSet<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(found, bad, "every dead letter, at its coordinates");

    cluster.stop().await;
    services::cleanup(Some(&session), &name).await;
}

/// A producer task starts paused (rate 0), produces at the rate a scheduler MESSAGE sets,
/// pauses again on `set_rate: 0`, and its TASK_KILLED counts what Kafka acknowledged: exactly
/// what is in the topic.
#[tokio::test]
async fn a_producer_task_follows_the_schedulers_rate() {
    services::require_kafka().await;
    let name = services::unique("exec_prod");
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut spec = TaskSpec::new(Workload::Producer(ProducerSpec {
        kafka: KafkaSpec {
            brokers: services::kafka_brokers(),
            topic: name.clone(),
            properties: BTreeMap::new(),
        },
        sensors: 10,
        rate: 0.0,
        partitions: PARTITIONS,
        replication_factor: Some(1),
    }));
    spec.stats_interval_ms = 300;
    launch(
        &mut s,
        executor_task(&agent, "producer", spec.to_json(), &TaskOptions::default()),
    )
    .await;
    let mut log = UpdateLog::default();
    log.until(&mut s, "producer", TaskRunning, LONG).await;

    let rate = |r: f64| {
        ExecutorCommand {
            version: VERSION,
            set_rate: Some(r),
        }
        .to_json()
    };
    message(&s, &agent, "producer", rate(400.0)).await;
    let going = wait_report(&mut s, &mut log, "producer", LONG, |r| r.acked >= 400).await;
    assert_eq!(going.failed, 0);
    message(&s, &agent, "producer", rate(0.0)).await;
    let paused = wait_report(&mut s, &mut log, "producer", LONG, |r| {
        r.events_per_sec == 0.0 && r.acked > 0
    })
    .await;
    // Paused: the count stays put.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = wait_report(&mut s, &mut log, "producer", LONG, |_| true).await;
    assert_eq!(
        later.acked, paused.acked,
        "nothing is produced while paused"
    );

    kill(&s, &agent, "producer", None).await;
    let killed = log.until(&mut s, "producer", TaskKilled, LONG).await;
    let message_text = killed.message.unwrap();
    let in_topic: i64 = services::high_watermarks(&name, PARTITIONS)
        .await
        .values()
        .sum();
    assert_eq!(in_topic as u64, paused.acked);
    assert!(
        message_text.contains(&format!(
            "{in_topic} events acknowledged by Kafka, 0 failed"
        )),
        "{message_text}"
    );
    cluster.stop().await;
    services::cleanup(None, &name).await;
}

/// The Cassandra check as a task: TASK_FINISHED when it writes and reads back a reading;
/// TASK_FAILED with the error after its rounds fail.
#[tokio::test]
async fn the_cassandra_check_finishes_or_fails_with_the_reason() {
    let _lock = services::cassandra_shared().await;
    let session = services::require_cassandra().await;
    let name = services::unique("exec_check");
    let cluster = start_cluster().await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework(true)).await;
    let agent = cluster.agent_ids()[0].clone();
    let check = |points: Vec<String>| {
        TaskSpec::new(Workload::CassandraCheck(CassandraSpec {
            contact_points: points,
            keyspace: name.clone(),
            replication: "1".into(),
            local_dc: None,
            username: None,
            password_env: None,
        }))
        .to_json()
    };
    let mut log = UpdateLog::default();
    launch(
        &mut s,
        executor_task(
            &agent,
            "check-ok",
            check(services::cassandra_contact_points()),
            &TaskOptions::default(),
        ),
    )
    .await;
    let finished = log
        .until(&mut s, "check-ok", TaskFinished, Duration::from_secs(120))
        .await;
    assert_eq!(
        log.states("check-ok"),
        [TaskStarting, TaskRunning, TaskFinished]
    );
    let message = finished.message.unwrap();
    assert!(
        message.starts_with(&format!(
            "Cassandra check passed: wrote a reading of check-sensor into {name}.temperature_by_day and read it back"
        )),
        "{message}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    launch(
        &mut s,
        executor_task(
            &agent,
            "check-down",
            check(vec![format!("127.0.0.1:{port}")]),
            &TaskOptions::default(),
        ),
    )
    .await;
    let failed = log
        .until(&mut s, "check-down", TaskFailed, Duration::from_secs(120))
        .await;
    let message = failed.message.unwrap();
    assert!(
        message.starts_with("Cassandra check failed 5 times; last error: "),
        "{message}"
    );
    assert!(
        message.contains(&port.to_string()),
        "names the contact point: {message}"
    );
    cluster.stop().await;
    services::cleanup(Some(&session), &name).await;
}
