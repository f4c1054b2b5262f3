//! A consumer process killed with SIGKILL mid-stream and started again loses nothing: the
//! rows it wrote but had not committed are replayed and overwrite themselves, and every
//! event ends up in the table exactly once. Runs the real `fastdata-consumer` binary against
//! the real Kafka and Cassandra of `dev/services` (`dev/services up` first).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fastdata_workloads::consumer::ConsumerReport;
use fastdata_workloads::producer::TargetRate;

fn spawn_consumer(topic: &str, spool: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_fastdata-consumer"))
        .args(["--topic", topic, "--group", topic, "--keyspace", topic])
        .arg("--spool-dir")
        .arg(spool)
        .args(["--session-timeout", "6s", "--stats-interval", "1s"])
        .env("FASTDATA_KAFKA_BROKERS", kafka_brokers())
        .env(
            "FASTDATA_CASSANDRA_CONTACT_POINTS",
            cassandra_contact_points().join(","),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("starting fastdata-consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_with_sigkill_and_restarted_loses_nothing() {
    const EVENTS: u64 = 40_000;
    const PARTITIONS: i32 = 4;
    let _lock = cassandra_shared().await;
    require_kafka().await;
    let session = require_cassandra().await;
    let name = unique("sigkill");
    create_topic(&name, PARTITIONS).await;
    let spool = spool_dir(&name);
    let log_dir = std::env::temp_dir();

    // 4,000 events/s for 10 s, while the consumer is killed and restarted.
    let producing = tokio::spawn({
        let name = name.clone();
        async move { produce(&name, PARTITIONS, 50, EVENTS, TargetRate::PerSecond(4000.0)).await }
    });

    let first_log = log_dir.join(format!("{name}-first.log"));
    let mut first = spawn_consumer(&name, &spool, &first_log);
    wait_for_rows(
        &session,
        &name,
        5_000,
        "the first consumer writing rows",
        Duration::from_secs(120),
        Duration::from_millis(300),
    )
    .await;
    first.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    let status = first.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
    let at_kill = count_rows(&session, &name).await;
    assert!(
        at_kill < EVENTS as i64,
        "killed mid-stream ({at_kill} of {EVENTS} rows written); see {}",
        first_log.display()
    );

    let second_log = log_dir.join(format!("{name}-second.log"));
    let second = spawn_consumer(&name, &spool, &second_log);
    producing.await.unwrap();
    wait_for_rows(
        &session,
        &name,
        EVENTS as i64,
        "every event in the table after the restart",
        Duration::from_secs(240),
        Duration::from_secs(2),
    )
    .await;

    // Graceful stop of the second one: SIGTERM, report on stdout.
    let pid = second.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = tokio::task::spawn_blocking(move || second.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "second consumer exit {}; see {}",
        output.status,
        second_log.display()
    );
    let report: ConsumerReport = serde_json::from_slice(
        output
            .stdout
            .split(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    assert!(report.committed && report.left_group, "{report:?}");

    let events = topic_readings(&name).await;
    assert_eq!(events.len() as u64, EVENTS);
    let rows = table_rows(&session, &name).await;
    assert_rows_match(&rows, &events);
    assert_eq!(
        committed_offsets(&name, &name, PARTITIONS).await,
        high_watermarks(&name, PARTITIONS).await
    );
    let _ = std::fs::remove_file(first_log);
    let _ = std::fs::remove_file(second_log);
    cleanup(Some(&session), &name).await;
}
