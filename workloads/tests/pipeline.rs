//! End-to-end tests of the producer and the consumer against the real Kafka and Cassandra of
//! `dev/services` (`dev/services up` first). Each test has its own topic, group and keyspace.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fastdata_workloads::cassandra_check::{self, CheckConfig, CheckRound};
use fastdata_workloads::consumer::{ConsumerState, SinkConsumer};
use fastdata_workloads::dead_letter::{self, Encoding};
use fastdata_workloads::event::{SensorReading, parse_reading};
use fastdata_workloads::producer::{SensorProducer, TargetRate};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::oneshot;

/// 100,000 events produced → exactly 100,000 rows, each equal to its event; every offset
/// committed when the consumer stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_become_exactly_as_many_matching_rows() {
    const EVENTS: u64 = 100_000;
    const PARTITIONS: i32 = 6;
    let _lock = cassandra_shared().await;
    require_kafka().await;
    let session = require_cassandra().await;
    let name = unique("hundredk");

    produce(&name, PARTITIONS, 100, EVENTS, TargetRate::Unthrottled).await;

    let mut config = consumer_config(&name, &name, &name, spool_dir(&name));
    config.max_in_flight = 512;
    let consumer = SinkConsumer::new(config).unwrap();
    let handle = consumer.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(120), handle.ready())
        .await
        .expect("consumer ready within 120 s")
        .unwrap();
    wait_until(
        "all rows written",
        Duration::from_secs(300),
        Duration::from_millis(500),
        || {
            let stats = handle.stats();
            async move { stats.rows_written >= EVENTS }
        },
    )
    .await;
    stop.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        report.rows_written, EVENTS,
        "no replays without failures: {report:?}"
    );
    assert_eq!(report.dead_letters, 0);
    assert!(report.committed && report.left_group, "{report:?}");
    assert_eq!(report.abandoned, 0);
    assert_eq!(handle.stats().state, ConsumerState::Stopped);

    let committed = committed_offsets(&name, &name, PARTITIONS).await;
    let high = high_watermarks(&name, PARTITIONS).await;
    assert_eq!(committed, high, "every offset committed at stop");

    let events = topic_readings(&name).await;
    assert_eq!(events.len() as u64, EVENTS);
    let rows = table_rows(&session, &name).await;
    assert_rows_match(&rows, &events);
    cleanup(Some(&session), &name).await;
}

/// Malformed messages mixed with good ones (both shapes): each malformed one is
/// dead-lettered once with its coordinates, key, payload and reason; every good one is
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_dead_lettered_and_good_ones_written() {
    let _lock = cassandra_shared().await;
    require_kafka().await;
    let session = require_cassandra().await;
    let name = unique("malformed");
    create_topic(&name, 3).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    // (key, payload, expected reason kind) for the bad ones.
    let bad: Vec<(&str, Option<&[u8]>, &str)> = vec![
        ("sensor-1", Some(br#"{"sensor_id": "sensor-1", "temperature": "#), "invalid_json"),
        (
            "sensor-2",
            Some(br#"{"sensor_id":"sensor-2","temperature":70.5,"event_time":"2026-11-25T10:00:00Z"}"#),
            "missing_field",
        ),
        (
            "sensor-3",
            Some(br#"{"sensor_id":"sensor-3","temperature":"hot","event_time":"2026-11-25T10:00:00Z","seq":1}"#),
            "wrong_type",
        ),
        (
            "sensor-4",
            Some(br#"{"sensor_id":"sensor-4","temperature":1000000.0,"event_time":"2026-11-25T10:00:00Z","seq":1}"#),
            "out_of_range",
        ),
        ("sensor-5", Some(b""), "empty"),
        ("sensor-6", None, "empty"),
        ("sensor-7", Some(&[0xff, 0xfe, 0x00]), "invalid_json"),
    ];
    let mut sent_bad = Vec::new(); // (partition, offset, key, payload, kind)
    let mut good = Vec::new();
    let now = chrono::Utc::now();
    for i in 0..300i64 {
        let reading = SensorReading {
            sensor_id: format!("sensor-{}", i % 10),
            temperature: 60.0 + (i % 20) as f64 / 4.0,
            event_time: chrono::DateTime::from_timestamp_millis(now.timestamp_millis() - i)
                .unwrap(),
            seq: i,
        };
        send(
            &producer,
            &name,
            &reading.sensor_id,
            Some(&reading.to_json()),
        )
        .await;
        good.push(reading);
        if i % 40 == 20 {
            let (key, payload, kind) = bad[(i / 40) as usize];
            let (partition, offset) = send(&producer, &name, key, payload).await;
            sent_bad.push((partition, offset, key, payload.map(<[u8]>::to_vec), kind));
        }
    }
    // The original system's shape: integer temperature, `eventdate` without a zone (UTC).
    for i in 0..20 {
        let payload = format!(
            r#"{{"machineid":"sensor{i}","temperature":{},"eventdate":"2017-07-10T12:34:{:02}.{:06}"}}"#,
            70 + i,
            i,
            i * 1000 + 7
        );
        send(
            &producer,
            &name,
            &format!("sensor{i}"),
            Some(payload.as_bytes()),
        )
        .await;
        good.push(parse_reading(payload.as_bytes()).unwrap());
    }
    assert_eq!(sent_bad.len(), bad.len());
    let total = (good.len() + bad.len()) as u64;

    let spool = spool_dir(&name);
    let consumer = SinkConsumer::new(consumer_config(&name, &name, &name, spool.clone())).unwrap();
    let handle = consumer.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    wait_until(
        "every message handled",
        Duration::from_secs(180),
        Duration::from_millis(200),
        || {
            let s = handle.stats();
            async move { s.rows_written + s.dead_letters >= total }
        },
    )
    .await;
    stop.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.dead_letters, bad.len() as u64, "{report:?}");
    assert_eq!(report.rows_written, good.len() as u64, "{report:?}");

    let records = dead_letter::read_file(&spool.join(dead_letter::FILE_NAME)).unwrap();
    assert_eq!(records.len(), bad.len(), "{records:#?}");
    let by_coordinates: HashMap<(i32, i64), _> = records
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    for (partition, offset, key, payload, kind) in &sent_bad {
        let record = by_coordinates
            .get(&(*partition, *offset))
            .unwrap_or_else(|| panic!("no dead letter for {partition}/{offset} ({kind})"));
        assert_eq!(record.topic, name);
        assert_eq!(record.kind, *kind, "{record:?}");
        assert!(!record.reason.is_empty());
        assert_eq!(
            record.payload_bytes().unwrap(),
            payload.clone().unwrap_or_default(),
            "{record:?}"
        );
        match record.encoding {
            Encoding::Utf8 => assert_eq!(record.key.as_deref(), Some(*key)),
            Encoding::Base64 => assert!(record.key.is_some()),
        }
    }

    let rows = table_rows(&session, &name).await;
    assert_rows_match(&rows, &good);
    // All committed, dead letters included: the partitions moved on.
    assert_eq!(
        committed_offsets(&name, &name, 3).await,
        high_watermarks(&name, 3).await
    );
    cleanup(Some(&session), &name).await;
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: Option<&[u8]>,
) -> (i32, i64) {
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
    if let Some(p) = payload {
        record = record.payload(p);
    }
    let delivery = producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    (delivery.partition, delivery.offset)
}

/// Two consumers share the partitions; one stops gracefully mid-stream, commits and leaves;
/// its partitions move to the other; every event ends up in the table exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_to_the_remaining_consumer_without_loss() {
    const EVENTS: u64 = 24_000;
    const PARTITIONS: i32 = 4;
    let _lock = cassandra_shared().await;
    require_kafka().await;
    let session = require_cassandra().await;
    let name = unique("handover");
    create_topic(&name, PARTITIONS).await;

    // Events keep coming while the group changes: 1,500/s for 16 s.
    let producing = tokio::spawn({
        let name = name.clone();
        async move { produce(&name, PARTITIONS, 40, EVENTS, TargetRate::PerSecond(1500.0)).await }
    });

    let start = |member: &str| {
        let mut config =
            consumer_config(&name, &name, &name, spool_dir(&format!("{name}-{member}")));
        config.client_id = format!("consumer-{member}");
        config.grace_period = Duration::from_secs(20);
        let consumer = SinkConsumer::new(config).unwrap();
        let handle = consumer.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(consumer.run(async move {
            let _ = stopped.await;
        }));
        (handle, stop, run)
    };
    let (a, stop_a, run_a) = start("a");
    let (b, stop_b, run_b) = start("b");
    wait_until(
        "both members sharing the partitions",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || {
            let (sa, sb) = (a.stats(), b.stats());
            async move {
                !sa.assigned_partitions.is_empty()
                    && !sb.assigned_partitions.is_empty()
                    && sa.assigned_partitions.len() + sb.assigned_partitions.len()
                        == PARTITIONS as usize
            }
        },
    )
    .await;
    // Let both work for a while, then stop B gracefully mid-stream.
    wait_until(
        "B has written rows",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let s = b.stats();
            async move { s.rows_written >= 2_000 }
        },
    )
    .await;
    let b_partitions = b.stats().assigned_partitions;
    stop_b.send(()).unwrap();
    let report_b = run_b.await.unwrap().unwrap();
    assert!(report_b.committed && report_b.left_group, "{report_b:?}");
    assert_eq!(report_b.abandoned, 0, "{report_b:?}");
    wait_until(
        "A owning every partition",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let s = a.stats();
            async move { s.assigned_partitions == (0..PARTITIONS).collect::<Vec<_>>() }
        },
    )
    .await;
    assert!(!b_partitions.is_empty());

    producing.await.unwrap();
    let session2 = Arc::clone(&session);
    let keyspace = name.clone();
    wait_until(
        "every event in the table",
        Duration::from_secs(240),
        Duration::from_secs(2),
        || {
            let (session, keyspace) = (session2.clone(), keyspace.clone());
            async move { count_rows(&session, &keyspace).await >= EVENTS as i64 }
        },
    )
    .await;
    stop_a.send(()).unwrap();
    let report_a = run_a.await.unwrap().unwrap();
    assert!(report_a.committed && report_a.left_group, "{report_a:?}");
    assert!(report_a.rows_written + report_b.rows_written >= EVENTS);

    let events = topic_readings(&name).await;
    let rows = table_rows(&session, &name).await;
    assert_rows_match(&rows, &events);
    assert_eq!(
        committed_offsets(&name, &name, PARTITIONS).await,
        high_watermarks(&name, PARTITIONS).await
    );
    for member in ["a", "b"] {
        cleanup(None, &format!("{name}-{member}")).await;
    }
    cleanup(Some(&session), &name).await;
}

/// The producer holds its target rate within 2 % over every 10 s window, and a rate change
/// at runtime takes effect (timestamps are the producer's create times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_holds_its_rate_and_changes_it_at_runtime() {
    require_kafka().await;
    let name = unique("rate");
    let mut config = producer_config(&name, 1, 20);
    config.rate = TargetRate::PerSecond(200.0);
    let producer = SensorProducer::new(config).unwrap();
    let handle = producer.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(producer.run(async move {
        let _ = stopped.await;
    }));
    assert!(handle.ready().await, "the producer started");
    tokio::time::sleep(Duration::from_millis(11_500)).await;
    handle.set_rate(TargetRate::PerSecond(400.0)).unwrap();
    let changed_at = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(11_500)).await;
    stop.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.acked, report.sent, "{report:?}");
    assert!(handle.set_rate(TargetRate::PerSecond(-1.0)).is_err());

    let times: Vec<i64> = read_topic(&name)
        .await
        .iter()
        .map(|r| r.timestamp_ms.unwrap())
        .collect();
    let first = times[0];
    let last = *times.last().unwrap();
    // Windows wholly inside each phase (with 200 ms of margin around the change).
    let check = |from: i64, to: i64, rate: f64| {
        let expected = rate * 10.0;
        let tolerance = (expected * 0.02).max(1.0);
        let mut start = from;
        let mut windows = 0;
        while start + 10_000 <= to {
            let count = times
                .iter()
                .filter(|t| **t >= start && **t < start + 10_000)
                .count();
            assert!(
                (count as f64 - expected).abs() <= tolerance,
                "{count} events in the 10 s from {start}, expected {expected} ± {tolerance}"
            );
            start += 100;
            windows += 1;
        }
        assert!(windows > 0, "no full window between {from} and {to}");
    };
    check(first, changed_at - 200, 200.0);
    check(changed_at + 200, last, 400.0);
    cleanup(None, &name).await;
}

/// The check writes a reading and reads back the sensor's newest, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_check_reads_back_what_it_wrote() {
    let _lock = cassandra_shared().await;
    let session = require_cassandra().await;
    let keyspace = unique("check");
    let mut config = CheckConfig::new(cassandra_contact_points());
    config.cassandra.keyspace = keyspace.clone();
    config.interval = Duration::from_millis(100);
    config.read_back = 3;
    config.rounds = Some(4);
    let mut rounds = Vec::new();
    let report = cassandra_check::run(config, |r| rounds.push(r.clone()), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.ok_rounds, 4);
    let CheckRound::Ok {
        written,
        newest,
        found_written,
        ..
    } = rounds.last().unwrap().clone()
    else {
        panic!("last round failed: {rounds:?}");
    };
    assert!(found_written);
    assert_eq!(newest.len(), 3, "LIMIT honoured");
    assert_eq!(newest[0], written, "newest first");
    assert!(
        newest
            .windows(2)
            .all(|w| w[0].event_time >= w[1].event_time)
    );
    cleanup(Some(&session), &keyspace).await;
}

/// `max_rate` caps what one consumer writes per second, and what it holds back is written
/// later: every event still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rate_caps_a_consumer_and_loses_nothing() {
    const EVENTS: u64 = 3_000;
    const RATE: f64 = 500.0;
    let _lock = cassandra_shared().await;
    require_kafka().await;
    let _session = require_cassandra().await;
    let name = unique("maxrate");
    produce(&name, 3, 30, EVENTS, TargetRate::Unthrottled).await;

    let mut config = consumer_config(&name, &name, &name, spool_dir(&name));
    config.max_rate = Some(RATE);
    let consumer = SinkConsumer::new(config).unwrap();
    let handle = consumer.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(120), handle.ready())
        .await
        .expect("consumer ready within 120 s")
        .unwrap();
    // The backlog is all there at once; the consumer may still only take RATE a second
    // (plus the schedule's one second of catch-up).
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let written = handle.stats().rows_written;
    let bound = (started.elapsed().as_secs_f64() + 1.0) * RATE;
    assert!(
        (written as f64) <= bound,
        "{written} rows in {:?}: more than {RATE}/s",
        started.elapsed()
    );
    assert!(written > 0, "held back, not stopped");
    wait_until(
        "every event written",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            let stats = handle.stats();
            async move { stats.rows_written >= EVENTS }
        },
    )
    .await;
    stop.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.rows_written, EVENTS, "{report:?}");
}
