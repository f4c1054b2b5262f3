//! Launch benchmark (issue 6 "Scale", issue 9 "Benchmark table"): the fastdata scheduler
//! grows from 1 to N consumer slots (default 1,000) on N devcluster agents, next to a bare
//! protocol driver doing the same launches on a fresh devcluster of the same size, same run.
//!
//! Ours: devcluster in this process (N agents, 2 cpus and 2 GiB each, `fast` timers), the
//! release `fastdata-scheduler` as a process with the `noop` consumer workload and
//! `FASTDATA_EXECUTOR_PATH` set to the release `fastdata-executor` (nothing copied per
//! sandbox), one consumer per agent (the default), a fresh topic of at least N partitions (the
//! policy caps consumers at the partition count), and the real ZooKeeper and Kafka of
//! `dev/services`. Once the scheduler runs its one consumer with the deploy plan complete,
//! `PUT /v1/scaling` sets min = max = N: the clock starts at that target change. Over the
//! period: the scheduler's CPU time (utime + stime from /proc) and peak RSS (VmHWM, reset at
//! the start through /proc/<pid>/clear_refs); from its log, when the new target was decided
//! (the next lag observation) and when the last launch was.
//!
//! Baseline: `fastdata_tests::bare_driver` on a fresh devcluster of the same size: it
//! subscribes, launches slot 0, suppresses; the clock starts when it is told to grow (REVIVE).
//! It RESERVEs and LAUNCHes the same noop executor task (same command, volume, kill policy,
//! spec and amounts) on every offer as fast as offers come, with up to
//! `bare_driver::CALLS_IN_FLIGHT` calls in flight, and acknowledges updates. Its CPU time is
//! that of its own thread (a current-thread runtime).
//!
//! The clock stops when all N tasks are TASK_RUNNING in devcluster's state. Building that
//! state for 1,000 agents holds the cluster for most of a second, so it is not polled: the
//! framework's own count is (every 100 ms: the scheduler's `GET /v1/status`, whose CPU cost
//! is measured beforehand and shown; the driver's counter), and one read of the state
//! confirms the end.
//!
//! Also printed: the executors' memory (RSS each, PSS summed: what the N processes really
//! take) and the lowest MemAvailable seen. A run stops with an error if MemAvailable falls
//! below 1 GiB (the machine does not fit N executors: use `--slots`). Everything is stopped
//! at the end (scheduler, devclusters, executors, the topic, the ZooKeeper state), and the
//! benchmark checks that no executor outlived its devcluster.
//!
//! ```text
//! eval "$(dev/services env)"        # Kafka and ZooKeeper from `dev/services up`
//! cargo bench -p fastdata-tests --bench launch_slots                  # 1,000 slots
//! cargo bench -p fastdata-tests --bench launch_slots -- --slots 200 --rounds 1
//! ```
//!
//! `--slots N` (or `FASTDATA_BENCH_SLOTS`), `--rounds R` (or `FASTDATA_BENCH_ROUNDS`, default
//! 2: the two alternate, and the best of each counts, as the machine's load drifts). The last
//! line is the `bench-row` that `dev/bench` collects.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail, ensure};
use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_tests::bare_driver::{self, DriverCommand, DriverNews, TaskShape};
use fastdata_tests::binaries::binary;
use fastdata_tests::kafka::create_topic;
use fastdata_tests::procfs;
use fastdata_tests::scheduler::{SchedulerProcess, log_lines};
use fastdata_tests::{kafka_brokers, unique_name, zk_connect};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How often the framework's count of running tasks is read while the clock runs.
const WATCH_POLL: Duration = Duration::from_millis(100);
/// How often readiness is checked before the clock starts.
const POLL: Duration = Duration::from_millis(250);
/// Below this much available memory a run is stopped (the machine does not fit the executors).
const MEMORY_FLOOR_KIB: u64 = 1024 * 1024;
/// What each consumer task and executor asks for (the scheduler's test settings).
const TASK: (f64, f64) = (0.5, 128.0);
const EXECUTOR: (f64, f64) = (0.1, 64.0);
const GRACE: Duration = Duration::from_secs(3);
/// Status reads made to measure what one costs the scheduler.
const PROBE_SAMPLES: u32 = 50;

#[derive(Debug, Clone)]
struct Options {
    slots: usize,
    rounds: usize,
}

fn options() -> Result<Options> {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
    };
    let mut options = Options {
        slots: env("FASTDATA_BENCH_SLOTS").unwrap_or(1000),
        rounds: env("FASTDATA_BENCH_ROUNDS").unwrap_or(2),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--slots" => options.slots = args.next().context("--slots N")?.parse()?,
            "--rounds" => options.rounds = args.next().context("--rounds N")?.parse()?,
            _ => {}
        }
    }
    ensure!(options.slots >= 2, "--slots must be at least 2");
    ensure!(options.rounds >= 1, "--rounds must be at least 1");
    Ok(options)
}

fn main() -> Result<()> {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench`; nothing to do under `cargo test`");
        return Ok(());
    }
    let options = options()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(options))
}

/// One timed launch of slots 1..N (slot 0 already runs).
#[derive(Debug, Clone, Default)]
struct LaunchRun {
    /// Target change (or REVIVE) to all N TASK_RUNNING in devcluster's state.
    time: Duration,
    /// Times at which 10 %, 50 % and 90 % ran.
    milestones: Vec<(u32, Duration)>,
    /// CPU time of the scheduler process (ours) or the driver's thread (baseline).
    cpu: Duration,
    /// Peak RSS of the scheduler over the period, KiB (ours only).
    peak_kib: Option<u64>,
    /// Executors at the end.
    executors: ExecutorMemory,
    /// Lowest MemAvailable seen, KiB.
    lowest_available_kib: u64,
    /// Time of the one read of devcluster's state that confirmed the end.
    state_read: Duration,
    /// Median time of one read of the framework's count (`GET /v1/status` for ours).
    probe: Duration,
    /// Reads of the framework's count while the clock ran.
    probes: u32,
    /// Estimated scheduler CPU spent answering those reads (ours).
    probe_cpu: Option<Duration>,
    /// When the scheduler decided the new target (its log), from the target change (ours).
    decided: Option<Duration>,
    /// When it had decided the last launch (its log), from the target change (ours).
    launches_decided: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
struct ExecutorMemory {
    count: usize,
    rss_median_kib: u64,
    rss_max_kib: u64,
    pss_total_kib: u64,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn gib(kib: u64) -> String {
    format!("{:.2} GiB", kib as f64 / (1024.0 * 1024.0))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn bench(options: Options) -> Result<()> {
    let slots = options.slots;
    let brokers = kafka_brokers();
    let zk = zk_connect();
    // Built first (SchedulerProcess starts the same build).
    binary("fastdata-scheduler", "fastdata-scheduler");
    let executor_bin = binary("fastdata-executor", "fastdata-executor");
    let available = procfs::mem_available_kib()?;
    let total = procfs::mem_total_kib()?;
    println!(
        "launch benchmark: 1 -> {slots} consumer slots on {slots} devcluster agents (one per agent), \
         noop workload, executor installed at {}; machine: {} cores, {} total, {} available",
        executor_bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        gib(total),
        gib(available)
    );
    let topic = unique_name("bench_launch");
    let partitions = i32::try_from(slots.max(1000)).context("slots")?;
    create_topic(&brokers, &topic, partitions).await;
    let logs = std::env::temp_dir().join(format!("fastdata-bench-launch-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;

    let mut ours_runs = Vec::new();
    let mut base_runs = Vec::new();
    let mut services = Vec::new();
    let mut failure = None;
    for round in 1..=options.rounds {
        let service = unique_name("fdlaunch");
        services.push(service.clone());
        let log = logs.join(format!("scheduler-{round}.log"));
        match ours(&service, slots, &brokers, &zk, &topic, &executor_bin, &log).await {
            Ok(run) => {
                report("fastdata scheduler", round, slots, &run, true);
                ours_runs.push(run);
            }
            Err(e) => {
                failure = Some(e.context(format!(
                    "fastdata scheduler, round {round}; its log: {}",
                    log.display()
                )));
                break;
            }
        }
        match baseline(slots, &executor_bin).await {
            Ok(run) => {
                report("bare driver", round, slots, &run, false);
                base_runs.push(run);
            }
            Err(e) => {
                failure = Some(e.context(format!("bare driver, round {round}")));
                break;
            }
        }
    }

    // Leave nothing behind: the topic and the schedulers' ZooKeeper state.
    delete_topic(&brokers, &topic).await;
    for service in &services {
        if let Err(e) = delete_tree(&zk, &format!("/dcos-service-{service}")).await {
            eprintln!("could not delete the ZooKeeper state of {service}: {e:#}");
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let best = |runs: &[LaunchRun]| {
        runs.iter()
            .min_by_key(|r| r.time)
            .cloned()
            .unwrap_or_default()
    };
    let (ours, base) = (best(&ours_runs), best(&base_runs));
    let ratio = ours.time.as_secs_f64() / base.time.as_secs_f64();
    let rounds = options.rounds;
    println!(
        "  best fastdata scheduler : {} (CPU {}, peak RSS {})",
        secs(ours.time),
        secs(ours.cpu),
        ours.peak_kib.map_or("-".into(), mib)
    );
    println!(
        "  best bare driver        : {} (CPU of its thread {})",
        secs(base.time),
        secs(base.cpu)
    );
    println!("  ratio fastdata / bare   : {ratio:.2}");
    println!("  scheduler logs: {}", logs.display());
    println!(
        "bench-row\tlaunch: target change to all {slots} slots TASK_RUNNING (lower is better)\t{}; scheduler CPU {}, peak RSS {}\tbare protocol driver: {}; its CPU {}\t{ratio:.2}\t{slots} agents, noop tasks, best of {rounds}; the scheduler decided the new target {} after the change (its next lag observation); executor RSS {} each (PSS {} for all {})",
        secs(ours.time),
        secs(ours.cpu),
        ours.peak_kib.map_or("-".into(), mib),
        secs(base.time),
        secs(base.cpu),
        ours.decided.map_or("-".into(), secs),
        mib(ours.executors.rss_median_kib),
        gib(ours.executors.pss_total_kib),
        ours.executors.count,
    );
    Ok(())
}

fn report(who: &str, round: usize, slots: usize, run: &LaunchRun, ours: bool) {
    let milestones: Vec<String> = run
        .milestones
        .iter()
        .map(|(pct, t)| format!("{pct}% {}", secs(*t)))
        .collect();
    let cpu = if ours {
        format!(
            "scheduler CPU {} (utime+stime; about {} of it answering the {} status reads of this benchmark), peak RSS {}; target decided after {}, last launch decided after {}",
            secs(run.cpu),
            run.probe_cpu.map_or("-".into(), secs),
            run.probes,
            run.peak_kib.map_or("-".into(), mib),
            run.decided.map_or("-".into(), secs),
            run.launches_decided.map_or("-".into(), secs),
        )
    } else {
        format!("driver thread CPU {}", secs(run.cpu))
    };
    println!(
        "  round {round}: {who:<18} 1 -> {slots}: all TASK_RUNNING after {} ({}); {cpu}",
        secs(run.time),
        milestones.join(", ")
    );
    println!(
        "           executors: {} running, RSS median {} (max {}), PSS total {}; lowest MemAvailable {}; one count read {:.1} ms, the confirming state read {:.0} ms",
        run.executors.count,
        mib(run.executors.rss_median_kib),
        mib(run.executors.rss_max_kib),
        gib(run.executors.pss_total_kib),
        gib(run.lowest_available_kib),
        run.probe.as_secs_f64() * 1000.0,
        run.state_read.as_secs_f64() * 1000.0
    );
}

/// A devcluster of `slots` agents with the tests' fast timers. Checkpointed executors wait
/// `recovery_timeout` for a vanished agent: kept short so that none could linger long.
async fn cluster(slots: usize) -> Result<DevCluster> {
    let mut config = ClusterConfig::with_agents(slots, 2.0, 2048.0).fast();
    config.recovery_timeout = Duration::from_secs(10);
    DevCluster::start(config)
        .await
        .context("devcluster starts (is the open-files limit high enough? `ulimit -n`)")
}

fn read_state(cluster: &DevCluster) -> Value {
    tokio::task::block_in_place(|| cluster.state())
}

/// Running tasks of `framework_id` whose id starts with `prefix`.
fn count_running(state: &Value, framework_id: &str, prefix: &str) -> usize {
    state["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["framework_id"] == framework_id && t["state"] == "TASK_RUNNING")
        .filter(|t| t["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .count()
}

/// Whose count of running tasks is watched while the clock runs.
enum Watched<'a> {
    /// The scheduler's `GET /v1/status` (`consumers.running`).
    Scheduler(&'a SchedulerProcess),
    /// The bare driver's count, and its result (to notice it stopping early).
    Driver {
        running: Arc<AtomicUsize>,
        done: &'a mut DriverDone,
    },
}

type DriverDone =
    tokio::sync::oneshot::Receiver<Result<bare_driver::DriverReport, bare_driver::DriverError>>;

impl Watched<'_> {
    /// Tasks the framework has seen TASK_RUNNING.
    async fn running(&mut self) -> Result<usize> {
        match self {
            Watched::Scheduler(scheduler) => {
                let (code, status) = scheduler.get("/v1/status").await;
                ensure!(code == 200, "GET /v1/status: {code} {status}");
                Ok(status["consumers"]["running"].as_u64().unwrap_or(0) as usize)
            }
            Watched::Driver { running, done } => match done.try_recv() {
                Ok(Err(e)) => bail!("the bare driver stopped: {e}"),
                Ok(Ok(_)) => bail!("the bare driver stopped early"),
                Err(_) => Ok(running.load(Ordering::Relaxed)),
            },
        }
    }
}

/// Waits from `started` until `wanted` tasks run. Devcluster's state is the ground truth,
/// but building it for 1,000 agents holds the whole cluster for about a second, which would
/// slow what is measured; so the framework's own count is polled (cheap), and once it reaches
/// `wanted` one read of the state confirms it. The master records a task's state before it
/// forwards the update, so the framework never sees TASK_RUNNING before the state does.
async fn wait_running(
    cluster: &DevCluster,
    framework_id: &str,
    prefix: &str,
    wanted: usize,
    started: Instant,
    mut watched: Watched<'_>,
) -> Result<LaunchRun> {
    let timeout = Duration::from_secs(120 + wanted as u64);
    let mut run = LaunchRun {
        lowest_available_kib: u64::MAX,
        ..Default::default()
    };
    let mut probes = Vec::new();
    let mut next_milestone = [10u32, 50, 90].into_iter().peekable();
    loop {
        let probe = Instant::now();
        let running = watched.running().await?;
        probes.push(probe.elapsed());
        run.probes += 1;
        let elapsed = started.elapsed();
        while let Some(&pct) = next_milestone.peek() {
            if running * 100 >= wanted * pct as usize {
                run.milestones.push((pct, elapsed));
                next_milestone.next();
            } else {
                break;
            }
        }
        let available = procfs::mem_available_kib()?;
        run.lowest_available_kib = run.lowest_available_kib.min(available);
        if running >= wanted {
            let read = Instant::now();
            let state = read_state(cluster);
            run.state_read = read.elapsed();
            let on_cluster = count_running(&state, framework_id, prefix);
            ensure!(
                on_cluster >= wanted,
                "the framework counts {running} running tasks, devcluster's state {on_cluster}"
            );
            run.time = elapsed;
            probes.sort();
            run.probe = probes[probes.len() / 2];
            return Ok(run);
        }
        if available < MEMORY_FLOOR_KIB {
            bail!(
                "only {} of memory left with {running} of {wanted} tasks running: this machine does not fit {wanted} executors; run with --slots {}",
                gib(available),
                running.saturating_sub(running / 5).max(2)
            );
        }
        if elapsed > timeout {
            bail!(
                "{running} of {wanted} tasks running after {}",
                secs(elapsed)
            );
        }
        tokio::time::sleep(WATCH_POLL).await;
    }
}

/// Pids of the executors devcluster runs for `framework_id`.
fn executor_pids(state: &Value, framework_id: &str) -> Vec<u32> {
    state["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["containers"].as_array().into_iter().flatten())
        .filter(|c| c["framework_id"] == framework_id)
        .filter_map(|c| c["pid"].as_u64())
        .filter_map(|p| u32::try_from(p).ok())
        .collect()
}

/// Pids of every executor devcluster runs.
fn all_executor_pids(state: &Value) -> Vec<u32> {
    state["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["containers"].as_array().into_iter().flatten())
        .filter_map(|c| c["pid"].as_u64())
        .filter_map(|p| u32::try_from(p).ok())
        .collect()
}

fn executor_memory(pids: &[u32]) -> ExecutorMemory {
    let ticks = procfs::clock_ticks_per_second();
    let mut rss: Vec<u64> = pids
        .iter()
        .filter_map(|p| procfs::sample_process(*p, ticks).ok())
        .map(|s| s.rss_kib)
        .collect();
    rss.sort_unstable();
    ExecutorMemory {
        count: rss.len(),
        rss_median_kib: rss.get(rss.len() / 2).copied().unwrap_or(0),
        rss_max_kib: rss.last().copied().unwrap_or(0),
        pss_total_kib: pids.iter().filter_map(|p| procfs::pss_kib(*p).ok()).sum(),
    }
}

/// Stops devcluster (it SIGKILLs every process group it started) and checks that none of
/// `pids` is still alive after that.
async fn stop_cluster(cluster: DevCluster, pids: &[u32]) -> Result<()> {
    cluster.stop().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| procfs::is_alive(*p))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} executors still alive 30 s after devcluster stopped: {alive:?}",
                alive.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ours(
    service: &str,
    slots: usize,
    brokers: &str,
    zk: &str,
    topic: &str,
    executor: &Path,
    log: &Path,
) -> Result<LaunchRun> {
    let cluster = cluster(slots).await?;
    let env: Vec<(String, String)> = [
        ("PORT_API", "0".to_owned()),
        ("PORT_GRPC", "0".to_owned()),
        ("FASTDATA_API_ADDRESS", "127.0.0.1".to_owned()),
        ("FASTDATA_FAILOVER_TIMEOUT", "1h".to_owned()),
        ("RUST_LOG", "info,scylla=off,rdkafka=warn".to_owned()),
        ("FRAMEWORK_NAME", service.to_owned()),
        ("FASTDATA_MESOS_MASTERS", cluster.master_url()),
        ("FASTDATA_ZK_CONNECT", zk.to_owned()),
        ("FASTDATA_KAFKA_BROKERS", brokers.to_owned()),
        ("FASTDATA_TOPIC", topic.to_owned()),
        ("FASTDATA_GROUP", format!("{topic}-group")),
        (
            "FASTDATA_CASSANDRA_CONTACT_POINTS",
            std::env::var("FASTDATA_CASSANDRA_CONTACT_POINTS")
                .unwrap_or_else(|_| "127.0.0.1:9042".into()),
        ),
        ("FASTDATA_EXECUTOR_PATH", executor.display().to_string()),
        ("FASTDATA_CONSUMER_WORKLOAD", "noop".to_owned()),
        ("FASTDATA_MIN_CONSUMERS", "1".to_owned()),
        ("FASTDATA_MAX_CONSUMERS", "1".to_owned()),
        ("FASTDATA_CONSUMER_CPUS", TASK.0.to_string()),
        ("FASTDATA_CONSUMER_MEM", TASK.1.to_string()),
        ("FASTDATA_EXECUTOR_CPUS", EXECUTOR.0.to_string()),
        ("FASTDATA_EXECUTOR_MEM", EXECUTOR.1.to_string()),
        (
            "FASTDATA_CONSUMER_GRACE_PERIOD",
            format!("{}s", GRACE.as_secs()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut scheduler = SchedulerProcess::start(&env, log).await;
    let result = ours_timed(&cluster, &scheduler, service, slots).await;
    let pids = result
        .as_ref()
        .map(|(_, pids)| pids.clone())
        .unwrap_or_else(|_| all_executor_pids(&cluster.state()));
    scheduler.stop().await;
    stop_cluster(cluster, &pids).await?;
    result.map(|(run, _)| run)
}

async fn ours_timed(
    cluster: &DevCluster,
    scheduler: &SchedulerProcess,
    service: &str,
    slots: usize,
) -> Result<(LaunchRun, Vec<u32>)> {
    let ticks = procfs::clock_ticks_per_second();
    let pid = scheduler.pid().context("the scheduler's pid")?;
    let prefix = format!("{service}__consumer-");
    // Subscribed, one consumer running, and settled (the plan complete, offers suppressed).
    let deadline = Instant::now() + Duration::from_secs(120);
    let framework_id = loop {
        let (_, status) = scheduler.get("/v1/status").await;
        let id = status["framework_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let settled = status["consumers"]["running"] == 1
            && status["plan"]["status"] == "COMPLETE"
            && count_running(&read_state(cluster), &id, &prefix) == 1;
        if settled {
            break id;
        }
        if Instant::now() > deadline {
            bail!(
                "the scheduler did not settle with 1 consumer in 120 s; status: {status}; log:\n{}",
                scheduler.log_tail()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    // What one `GET /v1/status` (the clock's probe) costs the scheduler, measured while it is
    // idle, so that its share of the CPU time below can be told apart.
    let idle = procfs::sample_process(pid, ticks)?;
    for _ in 0..PROBE_SAMPLES {
        scheduler.get("/v1/status").await;
    }
    let probe_cpu = procfs::sample_process(pid, ticks)?
        .cpu
        .saturating_sub(idle.cpu)
        / PROBE_SAMPLES;

    let peak_reset = procfs::reset_peak(pid).is_ok();
    let before = procfs::sample_process(pid, ticks)?;
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let (code, body) = scheduler
        .put(
            "/v1/scaling",
            &json!({"min_consumers": slots, "max_consumers": slots}),
        )
        .await;
    ensure!(code == 200, "PUT /v1/scaling: {code} {body}");
    let mut run = wait_running(
        cluster,
        &framework_id,
        &prefix,
        slots,
        started,
        Watched::Scheduler(scheduler),
    )
    .await
    .map_err(|e| e.context(format!("scheduler log:\n{}", scheduler.log_tail())))?;
    let after = procfs::sample_process(pid, ticks)?;
    run.cpu = after.cpu.saturating_sub(before.cpu);
    run.probe_cpu = Some(probe_cpu * run.probes);
    // Where the time went, from the scheduler's own log: the target changes on the next lag
    // observation, then the launches are decided.
    let after_start = |needle: &str| -> Vec<(Duration, String)> {
        log_lines(&scheduler.log, needle)
            .into_iter()
            .filter_map(|(at, line)| Some((at.duration_since(started_wall).ok()?, line)))
            .collect()
    };
    let target = format!("to={slots} ");
    run.decided = after_start("scaling decision")
        .into_iter()
        .find(|(_, line)| line.contains(&target))
        .map(|(at, _)| at);
    run.launches_decided = after_start("launching").last().map(|(at, _)| *at);
    run.peak_kib = peak_reset.then_some(after.peak_kib);
    if !peak_reset {
        eprintln!(
            "could not reset the scheduler's peak RSS (/proc/{pid}/clear_refs); the peak shown is since its start"
        );
        run.peak_kib = Some(after.peak_kib);
    }
    let pids = executor_pids(&read_state(cluster), &framework_id);
    run.executors = executor_memory(&pids);
    Ok((run, pids))
}

async fn baseline(slots: usize, executor: &Path) -> Result<LaunchRun> {
    let cluster = cluster(slots).await?;
    let service = unique_name("bare");
    let shape = TaskShape::new(&service, executor, TASK, EXECUTOR, GRACE);
    let (news_tx, mut news) = mpsc::unbounded_channel();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let running = Arc::new(AtomicUsize::new(0));
    let mut done = bare_driver::spawn(
        cluster.master_url(),
        shape,
        slots,
        news_tx,
        commands_rx,
        Arc::clone(&running),
    );
    let result = async {
        let mut framework_id = None;
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(n) = news.recv().await {
                match n {
                    DriverNews::Subscribed(id) => framework_id = Some(id),
                    DriverNews::Ready => return true,
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let why = match done.try_recv() {
                Ok(Err(e)) => e.to_string(),
                _ => "no TASK_RUNNING for slot 0 within 120 s".into(),
            };
            bail!("the bare driver did not get ready: {why}");
        }
        let framework_id = framework_id.context("subscribed")?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let _ = commands.send(DriverCommand::Grow);
        let prefix = format!("{service}__consumer-");
        let mut run = wait_running(
            &cluster,
            &framework_id,
            &prefix,
            slots,
            started,
            Watched::Driver {
                running,
                done: &mut done,
            },
        )
        .await?;
        let _ = commands.send(DriverCommand::Stop);
        let report = (&mut done).await.context("the driver's thread")??;
        run.cpu = report.cpu;
        let pids = executor_pids(&read_state(&cluster), &framework_id);
        run.executors = executor_memory(&pids);
        Ok::<_, anyhow::Error>((run, pids))
    }
    .await;
    let _ = commands.send(DriverCommand::Stop);
    let pids = match &result {
        Ok((_, pids)) => pids.clone(),
        Err(_) => all_executor_pids(&cluster.state()),
    };
    stop_cluster(cluster, &pids).await?;
    result.map(|(run, _)| run)
}

async fn delete_topic(brokers: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: Result<AdminClient<DefaultClientContext>, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create();
    if let Ok(admin) = admin {
        let _ = admin.delete_topics(&[topic], &AdminOptions::new()).await;
    }
}

/// Deletes `root` and everything under it.
async fn delete_tree(connect: &str, root: &str) -> Result<()> {
    let client = zookeeper_client::Client::connect(connect).await?;
    let mut order: Vec<String> = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        match client.list_children(&path).await {
            Ok(children) => {
                pending.extend(children.iter().map(|c| format!("{path}/{c}")));
                order.push(path);
            }
            Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let by_depth: BTreeMap<usize, Vec<String>> =
        order.into_iter().fold(BTreeMap::new(), |mut m, p| {
            m.entry(p.matches('/').count()).or_default().push(p);
            m
        });
    for paths in by_depth.values().rev() {
        for path in paths {
            match client.delete(path, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
