//! The lag monitor against a real Kafka (tier 3): start it with `dev/services up kafka`.
//!
//! Nothing here is mocked: topics, records and commits are made with rdkafka, and the
//! reference numbers come from Kafka's own consumer-group tool.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use fastdata_scheduler::lag::{
    GroupPhase, KafkaOffsetSampler, LagConfig, LagTracker, NoCommitPolicy, SampleError,
    SamplerConfig,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

async fn produce(brokers: &str, topic: &str, counts: BTreeMap<i32, usize>) -> Result<()> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || support::produce(&brokers, &topic, &counts)).await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_partition_lag_equals_kafkas_consumer_group_tool() -> Result<()> {
    let brokers = support::require_kafka();
    let classpath = support::kafka_classpath()?;
    let topic = support::unique("lag-test");
    let group = support::unique("lag-test-group");
    support::create_topic(&brokers, &topic, 6).await?;

    // Known counts per partition; commits at chosen offsets; partition 5 never committed.
    let counts: BTreeMap<i32, usize> =
        [(0, 15), (1, 25), (2, 35), (3, 45), (4, 55), (5, 65)].into();
    produce(&brokers, &topic, counts).await?;
    let commits: BTreeMap<i32, i64> = [(0, 15), (1, 10), (2, 0), (3, 44), (4, 20)].into();
    support::commit(&brokers, &group, &topic, &commits)?;

    let sampler = KafkaOffsetSampler::new(SamplerConfig::new(&brokers, &topic, &group))?;
    let mut tracker = LagTracker::new(LagConfig::default());
    let observation = tracker.observe(sampler.sample().await?);

    // Our numbers are the ones we set up...
    let ours: Vec<(i32, Option<i64>, i64, u64, bool)> = observation
        .partitions
        .iter()
        .map(|p| (p.partition, p.committed, p.log_end, p.lag, p.no_commit))
        .collect();
    assert_eq!(
        ours,
        vec![
            (0, Some(15), 15, 0, false),
            (1, Some(10), 25, 15, false),
            (2, Some(0), 35, 35, false),
            (3, Some(44), 45, 1, false),
            (4, Some(20), 55, 35, false),
            // No commit, `earliest`: the whole log, from its start.
            (5, None, 65, 65, true),
        ]
    );
    assert_eq!(observation.total_lag, 151);
    assert_eq!(observation.no_commit_partitions, 1);
    assert_eq!(observation.stale, None);
    let group_state = observation.group.context("group state")?;
    assert_eq!(
        (group_state.phase, group_state.members),
        (GroupPhase::Empty, 0)
    );

    // ...and Kafka's tool agrees on every partition it lists.
    let (tool, raw) = tokio::task::spawn_blocking({
        let (brokers, group, topic) = (brokers.clone(), group.clone(), topic.clone());
        move || support::describe_group(&classpath, &brokers, &group, &topic)
    })
    .await??;
    assert_eq!(
        tool.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "the tool lists the committed partitions of a group without members:\n{raw}"
    );
    for (partition, row) in &tool {
        let ours = observation.partition(*partition).context("partition")?;
        assert_eq!(
            (row.current, row.log_end, row.lag),
            (ours.committed, Some(ours.log_end), Some(ours.lag as i64)),
            "partition {partition}:\n{raw}"
        );
    }

    // With the `latest` policy the uncommitted partition counts as zero, still flagged.
    let mut latest = LagTracker::new(LagConfig {
        no_commit_policy: NoCommitPolicy::Latest,
        ..LagConfig::default()
    });
    let observation = latest.observe(sampler.sample().await?);
    let p5 = observation.partition(5).context("partition 5")?;
    assert_eq!((p5.lag, p5.no_commit), (0, true));
    assert_eq!(observation.total_lag, 86);
    support::clean_up(&brokers, &topic, &group).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_picked_up_and_rates_measured() -> Result<()> {
    let brokers = support::require_kafka();
    let topic = support::unique("lag-grow");
    let group = support::unique("lag-grow-group");
    support::create_topic(&brokers, &topic, 2).await?;
    produce(&brokers, &topic, [(0, 10), (1, 10)].into()).await?;
    support::commit(&brokers, &group, &topic, &[(0, 10), (1, 10)].into())?;

    let sampler = KafkaOffsetSampler::new(SamplerConfig::new(&brokers, &topic, &group))?;
    let mut tracker = LagTracker::new(LagConfig::default());
    let first = tracker.observe(sampler.sample().await?);
    assert_eq!((first.partitions.len(), first.total_lag), (2, 0));

    support::add_partitions(&brokers, &topic, 4).await?;
    produce(&brokers, &topic, [(0, 100), (2, 7), (3, 3)].into()).await?;
    let grown = tracker.observe(sampler.sample().await?);
    assert_eq!(grown.partitions_added, vec![2, 3]);
    assert_eq!(grown.partitions.len(), 4);
    // The new partitions have no commit: counted from their log start.
    assert_eq!(grown.total_lag, 100 + 7 + 3);
    assert_eq!(grown.no_commit_partitions, 2);
    // 100 records appended to partition 0 between the samples (new partitions are not in
    // the first sample, so they do not count towards the rate).
    let window = grown.rate_window_secs;
    let rate = grown.produce_rate.context("produce rate")?;
    assert!(
        (rate * window - 100.0).abs() < 1e-6,
        "{rate}/s over {window} s"
    );
    support::clean_up(&brokers, &topic, &group).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_measures_against_the_last_stable_offset() -> Result<()> {
    let brokers = support::require_kafka();
    let topic = support::unique("lag-txn");
    let group = support::unique("lag-txn-group");
    support::create_topic(&brokers, &topic, 1).await?;
    produce(&brokers, &topic, [(0, 5)].into()).await?;
    support::commit(&brokers, &group, &topic, &[(0, 5)].into())?;

    // An open transaction with 10 records: the high watermark moves past them, the last stable
    // offset stays at 5 until the transaction ends.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", support::unique("lag-txn-producer"))
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    producer.begin_transaction()?;
    for i in 0..10 {
        let payload = i.to_string();
        producer
            .send(
                BaseRecord::<(), str>::to(&topic)
                    .partition(0)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;

    let uncommitted = KafkaOffsetSampler::new(SamplerConfig::new(&brokers, &topic, &group))?;
    let committed = KafkaOffsetSampler::new(SamplerConfig {
        read_committed: true,
        ..SamplerConfig::new(&brokers, &topic, &group)
    })?;
    let hw = uncommitted.sample().await?.partitions[0].log_end;
    let lso = committed.sample().await?.partitions[0].log_end;
    assert_eq!((hw, lso), (15, 5));

    producer.commit_transaction(Duration::from_secs(30))?;
    // The coordinator writes the commit marker (which takes an offset too) after the commit
    // returns: the last stable offset moves to 16 shortly after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut lso = committed.sample().await?.partitions[0].log_end;
    while lso != 16 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lso = committed.sample().await?.partitions[0].log_end;
    }
    assert_eq!(lso, 16);
    support::clean_up(&brokers, &topic, &group).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_give_a_stale_observation_with_the_reason() -> Result<()> {
    // Nothing listens on port 1: every request fails; the sample must end within its
    // timeout with an error that names the brokers.
    let sampler = KafkaOffsetSampler::new(SamplerConfig {
        request_timeout: Duration::from_millis(1500),
        sample_timeout: Duration::from_secs(3),
        ..SamplerConfig::new("127.0.0.1:1", "sensor-temp", "sensor-temp-sink")
    })?;
    let started = std::time::Instant::now();
    let error = sampler.sample().await.expect_err("no broker there");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(
        matches!(
            error,
            SampleError::Metadata { .. } | SampleError::Timeout { .. }
        ),
        "{message}"
    );
    assert!(message.contains("127.0.0.1:1"), "{message}");

    let mut tracker = LagTracker::new(LagConfig::default());
    let observation = tracker.observe_failure(0, message.clone());
    assert_eq!(observation.stale.map(|s| s.reason), Some(message));
    Ok(())
}
