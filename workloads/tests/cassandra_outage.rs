//! Cassandra stopped for 20 s in the middle of a run: the consumer reports the sink unhealthy,
//! pauses, retries, and once Cassandra is back it recovers by itself with nothing lost.
//!
//! This test stops and starts the shared Cassandra of `dev/services`, so it lives in its own
//! test binary (cargo runs test binaries one after another) and holds the Cassandra test lock
//! exclusively (other tests taking the lock wait). It always starts Cassandra again, even
//! when it fails, and waits until Cassandra answers before it ends.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fastdata_workloads::backoff::Backoff;
use fastdata_workloads::consumer::{SinkConsumer, SinkStatus};
use fastdata_workloads::producer::TargetRate;
use tokio::sync::oneshot;
use tokio::time::Instant;

fn services(command: &str) {
    let status = Command::new(dev_services())
        .args([command, "cassandra"])
        .status()
        .unwrap_or_else(|e| panic!("running dev/services {command} cassandra: {e}"));
    assert!(
        status.success(),
        "dev/services {command} cassandra failed: {status}"
    );
}

/// Starts Cassandra again if the test ends while it is stopped.
struct RestartOnDrop {
    stopped: bool,
}

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.stopped {
            services("start");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_stopped_for_20s_loses_nothing_and_health_recovers() {
    const EVENTS: u64 = 40_000;
    const PARTITIONS: i32 = 4;
    let _lock = cassandra_exclusive().await;
    require_kafka().await;
    let session = require_cassandra().await;
    let name = unique("outage");
    create_topic(&name, PARTITIONS).await;

    let mut config = consumer_config(&name, &name, &name, spool_dir(&name));
    config.cassandra.request_timeout = Duration::from_secs(2);
    config.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    let consumer = SinkConsumer::new(config).unwrap();
    let handle = consumer.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    // Every change of sink status, in order, and whether consumption was ever paused.
    let seen: Arc<Mutex<(Vec<SinkStatus>, bool)>> = Arc::default();
    tokio::spawn({
        let seen = seen.clone();
        let mut stats = handle.watch_stats();
        async move {
            while stats.changed().await.is_ok() {
                let s = stats.borrow_and_update().clone();
                let mut seen = seen.lock().unwrap();
                if seen.0.last() != Some(&s.sink.status) {
                    seen.0.push(s.sink.status);
                }
                seen.1 |= s.paused && s.sink.status == SinkStatus::Unhealthy;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(120), handle.ready())
        .await
        .expect("consumer ready within 120 s")
        .unwrap();

    // 800 events/s for 50 s: the outage falls in the middle.
    let producing = tokio::spawn({
        let name = name.clone();
        async move { produce(&name, PARTITIONS, 50, EVENTS, TargetRate::PerSecond(800.0)).await }
    });
    wait_until(
        "rows flowing",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let s = handle.stats();
            async move { s.rows_written >= 3_000 }
        },
    )
    .await;

    let mut guard = RestartOnDrop { stopped: true };
    tokio::task::spawn_blocking(|| services("stop"))
        .await
        .unwrap();
    let stopped_at = Instant::now();
    wait_until(
        "the sink reported unhealthy",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let s = handle.stats();
            async move { s.sink.status == SinkStatus::Unhealthy && s.paused }
        },
    )
    .await;
    let rows_during = handle.stats().rows_written;
    tokio::time::sleep_until(stopped_at + Duration::from_secs(20)).await;
    assert_eq!(
        handle.stats().rows_written,
        rows_during,
        "nothing can be written while Cassandra is down"
    );
    tokio::task::spawn_blocking(|| services("start"))
        .await
        .unwrap();
    guard.stopped = false;

    wait_until(
        "the sink healthy again",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || {
            let s = handle.stats();
            async move { s.sink.status == SinkStatus::Healthy && !s.paused }
        },
    )
    .await;
    producing.await.unwrap();
    wait_for_rows(
        &session,
        &name,
        EVENTS as i64,
        "every event in the table",
        Duration::from_secs(240),
        Duration::from_secs(2),
    )
    .await;
    stop.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(report.committed && report.left_group, "{report:?}");
    assert!(
        report.write_errors > 0,
        "writes failed during the outage: {report:?}"
    );

    let (statuses, paused) = seen.lock().unwrap().clone();
    let healthy_unhealthy_healthy = statuses.windows(3).any(|w| {
        w == [
            SinkStatus::Healthy,
            SinkStatus::Unhealthy,
            SinkStatus::Healthy,
        ]
    });
    assert!(
        healthy_unhealthy_healthy,
        "sink statuses seen: {statuses:?}"
    );
    assert!(paused, "consumption paused while the sink was unhealthy");

    let events = topic_readings(&name).await;
    assert_eq!(events.len() as u64, EVENTS);
    let rows = table_rows(&session, &name).await;
    assert_rows_match(&rows, &events);
    assert_eq!(
        committed_offsets(&name, &name, PARTITIONS).await,
        high_watermarks(&name, PARTITIONS).await
    );
    cleanup(Some(&session), &name).await;
}
