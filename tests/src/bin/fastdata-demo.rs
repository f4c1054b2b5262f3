//! `fastdata-demo`: the driver behind `dev/demo`, the I/O shell around
//! [`fastdata_tests::demo`].
//!
//! It expects Kafka, Cassandra and ZooKeeper to answer (dev/demo starts them with
//! `dev/services up` and exports their addresses) and the release `fastdata-scheduler` and
//! `fastdata-executor` beside itself. It then creates this run's topic, starts devcluster (as
//! a library, with its work directory in the run's log directory), starts the scheduler as a
//! process in its own process group (a Ctrl-C in the terminal reaches only the demo, which
//! stops it after draining), waits for the pipeline to flow, and drives the producer's rate
//! through the schedule with `PUT /v1/producers`, redrawing the live view every second.
//!
//! Stopping (end of the schedule, Ctrl-C or SIGTERM): the producer is paused, the consumers
//! drain for at most --drain-timeout, the scheduler gets SIGTERM, devcluster stops with every
//! executor, then the summary counts the topic's log-end offsets, the rows of the run's
//! keyspace and the dead letters of the slots' volumes, and the run's topic, keyspace and
//! ZooKeeper state are removed (unless --keep-data). A second signal kills the scheduler and
//! every executor at once and exits with 130.
//!
//! Exit codes: 0 after a run (completed or interrupted), 1 when something it needs failed,
//! 2 for a bad command line, 130 after a second Ctrl-C.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_tests::cluster::docker_volumes;
use fastdata_tests::demo::options::{DemoArgs, DemoPlan};
use fastdata_tests::demo::schedule::RateMeter;
use fastdata_tests::demo::view::{
    DecisionSeen, Drain, Ending, Endpoints, Frame, LoadNow, StatusReading, Summary, TimedDecision,
    render_frame, render_summary,
};
use fastdata_tests::kafka::{delete_group, delete_topic, try_create_topic, try_produced};
use fastdata_tests::scheduler::SchedulerProcess;
use fastdata_tests::{accepts_tcp, unique_name};
use serde_json::Value;
use tokio::sync::watch;

/// How long the pipeline may take to start flowing before the demo gives up.
const WARM_UP_LIMIT: Duration = Duration::from_secs(240);
/// How often a plain (non-terminal) output prints a frame.
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// ANSI: cursor home, clear the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Where the stop signals are: 0 running, 1 stop gracefully, 2 stop at once.
type Stop = watch::Receiver<u8>;

fn main() -> ExitCode {
    let args = match DemoArgs::try_parse() {
        Ok(args) => args,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's first line is the sentence; the rest is usage it repeats anyway.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("dev/demo: {first}; see dev/demo --help");
            return ExitCode::from(2);
        }
    };
    let plan = match args.check() {
        Ok(plan) => plan,
        Err(problem) => {
            eprintln!("dev/demo: {problem}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dev/demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (stop_tx, stop) = watch::channel(0u8);
        if let Err(e) = listen_for_signals(stop_tx) {
            eprintln!("dev/demo: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
        let held = Held::default();
        let mut hard = stop.clone();
        tokio::select! {
            result = run(plan, stop, held.clone()) => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The view may have left the cursor anywhere: start on a new line.
                    eprintln!("\ndev/demo: {e}{}", held.leftovers());
                    held.kill_all().await;
                    ExitCode::FAILURE
                }
            },
            _ = hard.wait_for(|s| *s >= 2) => {
                held.kill_all().await;
                eprintln!(
                    "\ndev/demo: stopped at once: the scheduler and every executor were killed.{}",
                    held.leftovers()
                );
                ExitCode::from(130)
            }
        }
    })
}

/// First SIGINT or SIGTERM: stop gracefully; the second: at once.
fn listen_for_signals(stop: watch::Sender<u8>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            stop.send_modify(|s| *s = (*s + 1).min(2));
        }
    });
    Ok(())
}

/// What must be killed on a hard stop, and what the run leaves behind: shared with the
/// signal path, which cannot wait for the run to unwind.
#[derive(Debug, Clone, Default)]
struct Held {
    cluster: Arc<tokio::sync::Mutex<Option<DevCluster>>>,
    scheduler_pid: Arc<Mutex<Option<u32>>>,
    data: Arc<Mutex<Option<RunNames>>>,
}

impl Held {
    /// SIGKILL to the scheduler; devcluster stops and SIGKILLs every executor.
    async fn kill_all(&self) {
        let pid = self
            .scheduler_pid
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(cluster) = self.cluster.lock().await.take() {
            cluster.stop().await;
        }
    }

    /// What a hard stop leaves behind, in a sentence (empty when nothing).
    fn leftovers(&self) -> String {
        match &*self.data.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(names) => format!(
                " Left behind: topic {topic}, consumer group {group}, keyspace {keyspace} (dev/services cql 'DROP KEYSPACE {keyspace}') and ZooKeeper state /dcos-service-{service}.",
                topic = names.topic,
                group = names.group,
                keyspace = names.keyspace,
                service = names.service
            ),
            None => String::new(),
        }
    }
}

/// The run's names in the shared services.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunNames {
    service: String,
    topic: String,
    group: String,
    keyspace: String,
}

/// The services' addresses, as `dev/services env` exports them.
#[derive(Debug, Clone)]
struct Services {
    kafka: String,
    cassandra: String,
    zookeeper: String,
}

fn services() -> Result<Services, String> {
    let read = |variable: &str, default: &str, name: &str| {
        let value = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
        let first = value.split(',').next().unwrap_or_default().to_owned();
        if accepts_tcp(&first) {
            Ok(value)
        } else {
            Err(format!(
                "{name} is not reachable at {first} ({variable}); run the demo with dev/demo, which starts it, or start it with dev/services up"
            ))
        }
    };
    Ok(Services {
        kafka: read("FASTDATA_KAFKA_BROKERS", "127.0.0.1:9092", "Kafka")?,
        cassandra: read(
            "FASTDATA_CASSANDRA_CONTACT_POINTS",
            "127.0.0.1:9042",
            "Cassandra",
        )?,
        zookeeper: read("FASTDATA_ZK_CONNECT", "127.0.0.1:2181", "ZooKeeper")?,
    })
}

/// The release binaries beside this one.
struct Binaries {
    scheduler: PathBuf,
    executor: PathBuf,
    cli: Option<PathBuf>,
}

fn binaries() -> Result<Binaries, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where fastdata-demo is: {e}"))?;
    let dir = exe
        .parent()
        .ok_or("fastdata-demo has no parent directory")?
        .to_path_buf();
    let need = |name: &str| {
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} is missing; build it beside fastdata-demo (dev/demo runs cargo build --release -p fastdata-scheduler -p fastdata-executor -p fastdata-tests)",
                path.display()
            ))
        }
    };
    Ok(Binaries {
        scheduler: need("fastdata-scheduler")?,
        executor: need("fastdata-executor")?,
        cli: Some(dir.join("dcos-fastdata")).filter(|p| p.is_file()),
    })
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The whole demo; returns after the summary.
async fn run(plan: DemoPlan, stop: Stop, held: Held) -> Result<(), String> {
    let services = services()?;
    let binaries = binaries()?;
    // Short, unique and a valid CQL identifier: the service, topic and keyspace name.
    let id = unique_name("fddemo");
    let run_name = id[..id.len().min(15)].to_owned();
    let names = RunNames {
        service: run_name.clone(),
        topic: run_name.clone(),
        group: format!("{run_name}_sink"),
        keyspace: run_name.clone(),
    };
    let logs = std::env::temp_dir().join(format!("fastdata-demo-{run_name}"));
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    log_to_file(&logs.join("devcluster.log"))?;

    say(&format!(
        "fastdata demo {run_name}: logs in {}",
        logs.display()
    ));
    say(&format!(
        "creating topic {} ({} partitions)",
        names.topic, plan.partitions
    ));
    try_create_topic(&services.kafka, &names.topic, plan.partitions).await?;
    *held.data.lock().unwrap_or_else(|e| e.into_inner()) = Some(names.clone());

    say(&format!(
        "starting devcluster: a Mesos master and {} agents (2 cpus, 2 GB each)",
        plan.agents
    ));
    let mut config = ClusterConfig::with_agents(plan.agents, 2.0, 2048.0);
    config.work_dir = Some(logs.join("cluster"));
    let cluster = DevCluster::start(config)
        .await
        .map_err(|e| format!("devcluster did not start: {e}"))?;
    let master = cluster.master_url();
    *held.cluster.lock().await = Some(cluster);

    say("starting the scheduler");
    let env = scheduler_env(&plan, &names, &services, &master, &binaries);
    let scheduler_log = logs.join("scheduler.log");
    let mut scheduler =
        SchedulerProcess::start_program(&binaries.scheduler, &env, &scheduler_log, true).await?;
    *held.scheduler_pid.lock().unwrap_or_else(|e| e.into_inner()) = scheduler.pid();

    let endpoints = Endpoints {
        rest: scheduler.rest.clone(),
        grpc: scheduler.grpc.clone(),
        master,
        agents: plan.agents,
        cli: binaries.cli.as_ref().map(|p| p.display().to_string()),
        logs: format!(
            "{} (scheduler.log, devcluster.log, cluster/ sandboxes)",
            logs.display()
        ),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot set up an HTTP client: {e}"))?;
    let mut show = Show::new(plan.plain || !std::io::stdout().is_terminal());
    let mut driver = Driver {
        plan: &plan,
        names: &names,
        http,
        endpoints,
        stop,
        meter: RateMeter::new(Duration::from_secs(5)),
        changes: Vec::new(),
        latest: None,
        max_running: 0,
        schedule_start_unix_ms: None,
        applied_rate: Some(plan.schedule.steady_rate()),
    };

    let outcome = driver.drive(&mut show).await;
    // From here on the run stops, whatever happened; a failure above is reported after.
    let drain = match &outcome {
        Ok(_) if driver.schedule_start_unix_ms.is_none() => Drain::Skipped,
        Ok(_) => driver.drain(&mut show).await,
        Err(_) => Drain::Unknown,
    };
    driver.collect_decisions().await;
    show.finish();
    say("stopping the scheduler (SIGTERM)");
    let code = scheduler.stop().await;
    *held.scheduler_pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if code != Some(0) {
        say(&format!(
            "the scheduler exited with {code:?}; its log: {}",
            scheduler_log.display()
        ));
    }
    // Volumes are directories of devcluster's work directory, which is the run's: they
    // outlive devcluster.
    let volumes = match &*held.cluster.lock().await {
        Some(cluster) => docker_volumes(&cluster.state()),
        None => Default::default(),
    };
    say("stopping devcluster and every executor");
    if let Some(cluster) = held.cluster.lock().await.take() {
        cluster.stop().await;
    }

    say("counting events, rows and dead letters");
    let kafka = services.kafka.clone();
    let topic = names.topic.clone();
    let produced = tokio::task::spawn_blocking(move || try_produced(&kafka, &topic))
        .await
        .map_err(|e| format!("counting the topic's offsets failed: {e}"))
        .and_then(|r| r)
        .map(|n| u64::try_from(n).unwrap_or(0));
    let rows = count_rows(&services.cassandra, &names.keyspace).await;
    let dead_letters = count_dead_letters(volumes.values());
    let data = if plan.keep_data {
        format!(
            "kept: topic {}, consumer group {}, keyspace {} (dev/services cql 'SELECT COUNT(*) FROM {}.temperature_by_day'), ZooKeeper /dcos-service-{}",
            names.topic, names.group, names.keyspace, names.keyspace, names.service
        )
    } else {
        remove_data(&services, &names).await
    };
    *held.data.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let ending = match &outcome {
        Ok(ending) => *ending,
        Err(_) => Ending::Interrupted {
            at: driver.elapsed(),
        },
    };
    let summary = Summary {
        run: &run_name,
        ending,
        partitions: plan.partitions,
        produced,
        rows,
        dead_letters,
        drain,
        changes: &driver.changes,
        max_running: driver.max_running,
        max_consumers: plan.max_consumers,
        data,
    };
    println!();
    print!("{}", render_summary(&summary));
    println!(
        "{:15}{} (scheduler.log, devcluster.log, cluster/)",
        "Logs",
        logs.display()
    );
    outcome.map(|_| ())
}

/// devcluster's (and anything else's) tracing goes to a file: the terminal is the view's.
fn log_to_file(path: &Path) -> Result<(), String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .init();
    Ok(())
}

/// A progress line before the live view starts.
fn say(text: &str) {
    println!("dev/demo: {text}");
}

fn scheduler_env(
    plan: &DemoPlan,
    names: &RunNames,
    services: &Services,
    master: &str,
    binaries: &Binaries,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("FRAMEWORK_NAME", names.service.clone()),
        ("FASTDATA_MESOS_MASTERS", master.to_owned()),
        ("FASTDATA_ZK_CONNECT", services.zookeeper.clone()),
        ("FASTDATA_KAFKA_BROKERS", services.kafka.clone()),
        (
            "FASTDATA_CASSANDRA_CONTACT_POINTS",
            services.cassandra.clone(),
        ),
        ("FASTDATA_TOPIC", names.topic.clone()),
        ("FASTDATA_GROUP", names.group.clone()),
        ("FASTDATA_KEYSPACE", names.keyspace.clone()),
        (
            "FASTDATA_EXECUTOR_PATH",
            binaries.executor.display().to_string(),
        ),
        // Loopback only, on free ports.
        ("FASTDATA_API_ADDRESS", "127.0.0.1".to_owned()),
        ("PORT_API", "0".to_owned()),
        ("PORT_GRPC", "0".to_owned()),
        // devcluster lives as long as the demo: no need to wait a week for the scheduler.
        ("FASTDATA_FAILOVER_TIMEOUT", "10m".to_owned()),
        (
            "RUST_LOG",
            "info,scylla=warn,rdkafka=warn,fastdata_scheduler::lag=warn".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(
        plan.scheduler_settings()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

/// The terminal: redraw in place, or print a frame now and then.
struct Show {
    plain: bool,
    last_plain: Option<Instant>,
    drawn: bool,
}

impl Show {
    fn new(plain: bool) -> Show {
        Show {
            plain,
            last_plain: None,
            drawn: false,
        }
    }

    /// Draws `frame`; `force` prints it in plain mode too (a phase change).
    fn frame(&mut self, text: &str, force: bool) {
        let mut out = std::io::stdout().lock();
        if self.plain {
            let due = self.last_plain.is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
            if !(due || force) {
                return;
            }
            self.last_plain = Some(Instant::now());
            let _ = write!(out, "\n{text}");
        } else {
            let _ = write!(out, "{CLEAR}{text}");
        }
        self.drawn = true;
        let _ = out.flush();
    }

    /// After the last frame: what follows goes below it.
    fn finish(&mut self) {
        if self.drawn {
            println!();
        }
    }
}

/// The running demo's state between ticks.
struct Driver<'a> {
    plan: &'a DemoPlan,
    names: &'a RunNames,
    http: reqwest::Client,
    endpoints: Endpoints,
    stop: Stop,
    meter: RateMeter,
    changes: Vec<TimedDecision>,
    latest: Option<TimedDecision>,
    max_running: u32,
    /// Wall-clock start of the schedule, once warmed up.
    schedule_start_unix_ms: Option<u64>,
    /// The producer rate the scheduler confirmed last; `None` when unknown.
    applied_rate: Option<f64>,
}

/// What one poll of the scheduler gave.
struct Poll {
    status: Result<StatusReading, String>,
}

impl Driver<'_> {
    fn elapsed(&self) -> Duration {
        self.schedule_start_unix_ms.map_or(Duration::ZERO, |start| {
            Duration::from_millis(now_unix_ms().saturating_sub(start))
        })
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() >= 1
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.endpoints.rest);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let code = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("GET {path}: the answer is not JSON: {e}"))?;
        if code == 200 {
            Ok(body)
        } else {
            Err(format!("GET {path}: {code} {}", body["message"]))
        }
    }

    /// `PUT /v1/producers`; the rate in force on success.
    async fn set_rate(&mut self, rate: f64) -> Result<f64, String> {
        let response = self
            .http
            .put(format!("{}/v1/producers", self.endpoints.rest))
            .json(&serde_json::json!({ "rate": rate }))
            .send()
            .await
            .map_err(|e| format!("PUT /v1/producers: {e}"))?;
        let code = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("PUT /v1/producers: the answer is not JSON: {e}"))?;
        match body["rate"].as_f64() {
            Some(rate) if code == 200 => {
                self.applied_rate = Some(rate);
                Ok(rate)
            }
            _ => Err(format!("PUT /v1/producers: {code} {}", body["message"])),
        }
    }

    /// Reads the status and folds it into the rates, the changes and the maximum.
    async fn poll(&mut self) -> Poll {
        let status = self
            .get("/v1/status")
            .await
            .map(|v| StatusReading::from_json(&v));
        if let Ok(status) = &status {
            if let Some(offsets) = status.offsets {
                let at = Duration::from_millis(now_unix_ms());
                self.meter.record(at, offsets);
            }
            self.max_running = self.max_running.max(status.running);
            self.note_decisions(&status.decisions);
            self.latest = status.decisions.first().map(|d| self.place(d));
        }
        Poll { status }
    }

    /// `decision` on the demo's clock (`None` before the schedule started).
    fn place(&self, decision: &DecisionSeen) -> TimedDecision {
        let at = self
            .schedule_start_unix_ms
            .filter(|start| decision.at_unix_ms >= *start)
            .map(|start| Duration::from_millis(decision.at_unix_ms - start));
        TimedDecision {
            at,
            decision: decision.clone(),
        }
    }

    /// Keeps every scaling change seen, once, oldest first.
    fn note_decisions(&mut self, decisions: &[DecisionSeen]) {
        for decision in decisions.iter().filter(|d| d.is_change()) {
            if self
                .changes
                .iter()
                .any(|c| c.decision.at_unix_ms == decision.at_unix_ms)
            {
                continue;
            }
            let placed = self.place(decision);
            self.changes.push(placed);
        }
        self.changes.sort_by_key(|c| c.decision.at_unix_ms);
    }

    /// The whole decision log, for changes the status polls missed.
    async fn collect_decisions(&mut self) {
        if let Ok(log) = self.get("/v1/decisions").await {
            let decisions: Vec<DecisionSeen> = log["decisions"]
                .as_array()
                .map(|d| d.iter().map(DecisionSeen::from_json).collect())
                .unwrap_or_default();
            self.note_decisions(&decisions);
        }
    }

    fn frame(&self, load: LoadNow, status: &Result<StatusReading, String>) -> String {
        render_frame(&Frame {
            run: &self.names.service,
            elapsed: self.elapsed(),
            total: self.plan.schedule.total(),
            load,
            rates: self.meter.rates(),
            status: status.as_ref().map_err(String::as_str),
            max_running: self.max_running,
            changes: &self.changes,
            latest: self.latest.as_ref(),
            endpoints: &self.endpoints,
        })
    }

    /// Waits one tick, or less when a stop signal comes.
    async fn tick(&mut self) {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s >= 1) => {}
        }
    }

    /// Warm-up, then the schedule; returns how it ended.
    async fn drive(&mut self, show: &mut Show) -> Result<Ending, String> {
        let began = Instant::now();
        loop {
            if self.stopping() {
                return Ok(Ending::Interrupted { at: Duration::ZERO });
            }
            let poll = self.poll().await;
            let waiting_for = match &poll.status {
                Err(e) => Some(format!("the scheduler's API ({e})")),
                Ok(status) => self.warming_up(status).await,
            };
            let Some(waiting_for) = waiting_for else {
                break;
            };
            if began.elapsed() > WARM_UP_LIMIT {
                return Err(format!(
                    "the pipeline did not start within {} s: still waiting for {waiting_for}; see the logs in {}",
                    WARM_UP_LIMIT.as_secs(),
                    self.endpoints.logs
                ));
            }
            let text = self.frame(LoadNow::WarmingUp { waiting_for }, &poll.status);
            show.frame(&text, false);
            self.tick().await;
        }
        self.schedule_start_unix_ms = Some(now_unix_ms());
        // Changes of the warm-up (the first consumer) keep `at: None`.
        let mut last_phase = None;
        loop {
            if self.stopping() {
                return Ok(Ending::Interrupted { at: self.elapsed() });
            }
            let elapsed = self.elapsed();
            let Some((index, phase)) = self.plan.schedule.at(elapsed) else {
                return Ok(Ending::Completed);
            };
            let mut problem = None;
            if self.applied_rate != Some(phase.rate)
                && let Err(e) = self.set_rate(phase.rate).await
            {
                // Tried again next tick.
                problem = Some(e);
            }
            let poll = self.poll().await;
            let status = match (poll.status, problem) {
                (Ok(_), Some(e)) => Err(format!("{e}; retrying")),
                (status, _) => status,
            };
            let load = LoadNow::Running {
                index,
                phase,
                left: phase.end().saturating_sub(self.elapsed()),
                next: self.plan.schedule.phases().get(index + 1).copied(),
            };
            let text = self.frame(load, &status);
            show.frame(&text, last_phase != Some(index));
            last_phase = Some(index);
            self.tick().await;
        }
    }

    /// What the warm-up still waits for; `None` once events flow into Cassandra.
    async fn warming_up(&self, status: &StatusReading) -> Option<String> {
        match status.phase.as_str() {
            "running" => {}
            "starting" | "waiting_for_lock" | "" => {
                return Some("the scheduler to take its ZooKeeper lock".to_owned());
            }
            _ => {
                return Some(format!(
                    "the scheduler to subscribe to devcluster ({})",
                    status.phase_message
                ));
            }
        }
        let producer_running = match self.get("/v1/tasks").await {
            Ok(tasks) => tasks["tasks"].as_array().is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|t| t["kind"] == "producer" && t["state"] == "TASK_RUNNING")
            }),
            Err(_) => false,
        };
        if !producer_running {
            return Some("the producer task".to_owned());
        }
        if status.running == 0 {
            return Some("the first consumer".to_owned());
        }
        match status.offsets {
            Some(offsets) if offsets.consumed > 0 => None,
            _ => Some("the first events to reach Cassandra".to_owned()),
        }
    }

    /// Producer paused, then wait (bounded) for the lag to reach 0.
    async fn drain(&mut self, show: &mut Show) -> Drain {
        let began = Instant::now();
        let limit = self.plan.drain_timeout;
        let mut paused = false;
        let mut last_produced = None;
        loop {
            if *self.stop.borrow() >= 2 {
                return Drain::Unknown;
            }
            if !paused {
                paused = self.set_rate(0.0).await.is_ok();
            }
            let poll = self.poll().await;
            let left = limit.saturating_sub(began.elapsed());
            let text = self.frame(LoadNow::Draining { left }, &poll.status);
            show.frame(&text, false);
            let lag = poll.status.as_ref().ok().and_then(|s| s.lag);
            let produced = poll
                .status
                .as_ref()
                .ok()
                .and_then(|s| s.offsets.map(|o| o.produced));
            // Drained: nothing more arrives (the producer stopped) and the group is level.
            if paused && lag == Some(0) && produced.is_some() && produced == last_produced {
                return Drain::Drained(began.elapsed());
            }
            last_produced = produced;
            if began.elapsed() >= limit {
                return match lag {
                    Some(lag) => Drain::TimedOut {
                        lag,
                        after: began.elapsed(),
                    },
                    None => Drain::Unknown,
                };
            }
            // Only a second signal ends the drain early.
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s >= 2) => {}
            }
        }
    }
}

/// Rows of the run's table: the partitions (sensor, day) first, then a count in each, so
/// that no single query scans the whole table.
async fn count_rows(contact_points: &str, keyspace: &str) -> Result<u64, String> {
    use futures::TryStreamExt as _;
    use scylla::value::CqlDate;
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(contact_points.split(','))
        .connection_timeout(Duration::from_secs(10))
        .build()
        .await
        .map_err(|e| format!("cannot connect to Cassandra at {contact_points}: {e}"))?;
    let table = format!("{keyspace}.temperature_by_day");
    let partitions: Vec<(String, CqlDate)> = session
        .query_iter(format!("SELECT DISTINCT sensor_id, day FROM {table}"), ())
        .await
        .map_err(|e| format!("listing the partitions of {table}: {e}"))?
        .rows_stream::<(String, CqlDate)>()
        .map_err(|e| format!("reading the partitions of {table}: {e}"))?
        .try_collect()
        .await
        .map_err(|e| format!("reading the partitions of {table}: {e}"))?;
    let count = session
        .prepare(format!(
            "SELECT COUNT(*) FROM {table} WHERE sensor_id = ? AND day = ?"
        ))
        .await
        .map_err(|e| format!("preparing the count of {table}: {e}"))?;
    let mut total = 0u64;
    for (sensor, day) in partitions {
        let result = session
            .execute_unpaged(&count, (&sensor, day))
            .await
            .map_err(|e| format!("counting the rows of {sensor} in {table}: {e}"))?;
        let (n,) = result
            .into_rows_result()
            .map_err(|e| format!("counting the rows of {sensor}: {e}"))?
            .single_row::<(i64,)>()
            .map_err(|e| format!("counting the rows of {sensor}: {e}"))?;
        total += u64::try_from(n).unwrap_or(0);
    }
    Ok(total)
}

/// Dead letters in the slots' stores (`dead-letters.jsonl` on each volume), each message
/// once: after a crash a store may hold a record twice (same partition and offset).
fn count_dead_letters<'a>(volumes: impl Iterator<Item = &'a PathBuf>) -> Result<u64, String> {
    let mut seen = std::collections::BTreeSet::new();
    for dir in volumes {
        let path = dir.join("dead-letters.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line)
                .map_err(|e| format!("{} has a line that is not JSON: {e}", path.display()))?;
            seen.insert((
                record["topic"].as_str().unwrap_or_default().to_owned(),
                record["partition"].as_i64(),
                record["offset"].as_i64(),
            ));
        }
    }
    Ok(seen.len() as u64)
}

/// Removes the run's topic, keyspace and ZooKeeper state; a sentence saying what was done.
async fn remove_data(services: &Services, names: &RunNames) -> String {
    let mut problems = Vec::new();
    if let Err(e) = delete_topic(&services.kafka, &names.topic).await {
        problems.push(e);
    }
    // Consumers killed with devcluster stay members until their session times out (10 s):
    // until then the group is not empty and cannot be deleted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match delete_group(&services.kafka, &names.group).await {
            Ok(()) => break,
            Err(e) if e.contains("NonEmptyGroup") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                problems.push(e);
                break;
            }
        }
    }
    if let Err(e) = drop_keyspace(&services.cassandra, &names.keyspace).await {
        problems.push(e);
    }
    let root = format!("/dcos-service-{}", names.service);
    if let Err(e) = delete_znodes(&services.zookeeper, &root).await {
        problems.push(e);
    }
    if problems.is_empty() {
        format!(
            "removed: topic {}, consumer group {}, keyspace {}, ZooKeeper {root} (--keep-data keeps them)",
            names.topic, names.group, names.keyspace
        )
    } else {
        format!("not all removed: {}", problems.join("; "))
    }
}

async fn drop_keyspace(contact_points: &str, keyspace: &str) -> Result<(), String> {
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(contact_points.split(','))
        .connection_timeout(Duration::from_secs(10))
        .build()
        .await
        .map_err(|e| format!("cannot connect to Cassandra at {contact_points}: {e}"))?;
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await
        .map_err(|e| format!("dropping keyspace {keyspace}: {e}"))?;
    Ok(())
}

/// Deletes `root` and everything under it.
async fn delete_znodes(connect: &str, root: &str) -> Result<(), String> {
    let client = zookeeper_client::Client::connect(connect)
        .await
        .map_err(|e| format!("cannot connect to ZooKeeper at {connect}: {e}"))?;
    // Depth first, children before their parent; the tree is small (a few dozen nodes).
    let mut pending = vec![(root.to_owned(), false)];
    while let Some((path, expanded)) = pending.pop() {
        if expanded {
            match client.delete(&path, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(format!("deleting {path}: {e}")),
            }
            continue;
        }
        let children = match client.list_children(&path).await {
            Ok(children) => children,
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(e) => return Err(format!("listing {path}: {e}")),
        };
        pending.push((path.clone(), true));
        for child in children {
            pending.push((format!("{path}/{child}"), false));
        }
    }
    Ok(())
}
