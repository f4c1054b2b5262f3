//! Benchmark: one lag sample of a 1,000-partition topic, next to Kafka's own consumer-group
//! tool on the same group in the same run. Needs the local Kafka (`dev/services up kafka`).
//!
//! ```text
//! eval "$(dev/services env)"
//! cargo run -p fastdata-scheduler --example lag_bench                      # 1,000 partitions
//! cargo run -p fastdata-scheduler --example lag_bench -- --partitions 200
//! ```
//!
//! Prints, per method, the median wall time and its ratio to our warm sample:
//! - ours, warm: one `KafkaOffsetSampler::sample` on a client that already sampled (what the
//!   monitor does every second);
//! - ours, cold: a new client and its first sample (connections, metadata, coordinator);
//! - naive: one `fetch_watermarks` per partition (the per-partition pattern the sampler avoids);
//! - `ConsumerGroupCommand --describe` (`kafka-consumer-groups.sh`), as an operator runs it;
//! - the same tool's `--version`: the JVM's start-up alone, to show what part of the tool's
//!   time is start-up.
//!
//! It also checks that our lag and the tool's agree on every partition.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use fastdata_scheduler::lag::{KafkaOffsetSampler, LagConfig, LagTracker, SamplerConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut partitions = 1000i32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--partitions" {
            partitions = args.next().context("--partitions N")?.parse()?;
        }
    }
    let brokers = support::require_kafka();
    let classpath = support::kafka_classpath()?;
    let topic = support::unique("lag-bench");
    let group = support::unique("lag-bench-group");

    println!(
        "setting up: topic {topic} with {partitions} partitions, 10 records each, commits on all but every 10th partition"
    );
    support::create_topic(&brokers, &topic, partitions).await?;
    let counts: BTreeMap<i32, usize> = (0..partitions).map(|p| (p, 10)).collect();
    {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || support::produce(&brokers, &topic, &counts)).await??;
    }
    let commits: BTreeMap<i32, i64> = (0..partitions)
        .filter(|p| p % 10 != 0)
        .map(|p| (p, i64::from(p % 10)))
        .collect();
    support::commit(&brokers, &group, &topic, &commits)?;

    let result = run(&brokers, &classpath, &topic, &group, partitions).await;
    support::clean_up(&brokers, &topic, &group).await;
    result
}

async fn run(
    brokers: &str,
    classpath: &str,
    topic: &str,
    group: &str,
    partitions: i32,
) -> Result<()> {
    let config = SamplerConfig::new(brokers, topic, group);

    // Ours, cold: client creation plus its first sample.
    let mut cold = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let sampler = KafkaOffsetSampler::new(config.clone())?;
        sampler.sample().await?;
        cold.push(started.elapsed());
    }

    // Ours, warm: the monitor's steady state. Sample and observation timed apart.
    let sampler = KafkaOffsetSampler::new(config.clone())?;
    sampler.sample().await?;
    let mut tracker = LagTracker::new(LagConfig::default());
    let (mut warm, mut observe) = (Vec::new(), Vec::new());
    let mut observation = None;
    for _ in 0..20 {
        let started = Instant::now();
        let sample = sampler.sample().await?;
        warm.push(started.elapsed());
        let started = Instant::now();
        observation = Some(tracker.observe(sample));
        observe.push(started.elapsed());
    }
    let observation = observation.context("observed")?;
    ensure!(observation.partitions.len() == partitions as usize);

    // Naive: one watermark request per partition (committed offsets still batched).
    let naive = {
        let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || -> Result<Vec<Duration>> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()?;
            let mut times = Vec::new();
            for round in 0..4 {
                let started = Instant::now();
                for p in 0..partitions {
                    consumer.fetch_watermarks(&topic, p, Duration::from_secs(5))?;
                }
                if round > 0 {
                    times.push(started.elapsed());
                }
            }
            Ok(times)
        })
        .await??
    };

    // Kafka's consumer-group tool, same group, same run.
    let mut tool = Vec::new();
    let mut described = BTreeMap::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (rows, _) = support::describe_group(classpath, brokers, group, topic)?;
        tool.push(started.elapsed());
        described = rows;
    }
    let mut jvm = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let status = Command::new("java")
            .args([
                "-cp",
                classpath,
                support::CONSUMER_GROUP_COMMAND,
                "--version",
            ])
            .output()?
            .status;
        ensure!(status.success(), "ConsumerGroupCommand --version failed");
        jvm.push(started.elapsed());
    }

    // Same numbers?
    ensure!(
        described.len() == commits_len(partitions),
        "the tool listed {} partitions",
        described.len()
    );
    for (partition, row) in &described {
        let ours = observation.partition(*partition).context("partition")?;
        ensure!(
            row.lag == Some(ours.lag as i64) && row.current == ours.committed,
            "partition {partition}: tool {row:?}, ours {ours:?}"
        );
    }

    let warm_median = median(warm);
    println!();
    println!(
        "one lag sample, {partitions} partitions, 1 broker on loopback; median wall time; our lag equals the tool's on all {} partitions it lists",
        described.len()
    );
    println!("| method | time | × ours (warm) |");
    println!("|---|---|---|");
    let line = |name: &str, d: Duration| {
        println!(
            "| {name} | {} | {:.1}× |",
            ms(d),
            d.as_secs_f64() / warm_median.as_secs_f64()
        );
    };
    line("ours, warm: KafkaOffsetSampler::sample", warm_median);
    line(
        "ours, cold: new client + first sample",
        median(cold.clone()),
    );
    line(
        "naive: fetch_watermarks per partition (end offsets only)",
        median(naive),
    );
    line("ConsumerGroupCommand --describe", median(tool.clone()));
    line(
        "  of which JVM start-up (ConsumerGroupCommand --version)",
        median(jvm.clone()),
    );
    let tool_work = median(tool.clone()).saturating_sub(median(jvm.clone()));
    line(
        "ConsumerGroupCommand --describe minus JVM start-up",
        tool_work,
    );
    println!(
        "(turning a sample into an observation, CPU only: {} median)",
        ms(median(observe))
    );
    // The line `dev/bench` collects into its table (tab-separated: benchmark, fastdata,
    // baseline, ratio, conditions). The ratio is against the tool as an operator runs it.
    let tool_median = median(tool);
    println!(
        "bench-row\tlag sample, {partitions} partitions (lower is better)\t{} (warm; new client + first sample {})\tkafka-consumer-groups --describe: {} (of which JVM start-up {})\t{:.4} ({:.0}x faster)\tsame group, same run, lag equal on all {} committed partitions; 1 broker on loopback",
        ms(warm_median),
        ms(median(cold)),
        ms(tool_median),
        ms(median(jvm)),
        warm_median.as_secs_f64() / tool_median.as_secs_f64(),
        tool_median.as_secs_f64() / warm_median.as_secs_f64(),
        described.len()
    );
    Ok(())
}

fn commits_len(partitions: i32) -> usize {
    (0..partitions).filter(|p| p % 10 != 0).count()
}
