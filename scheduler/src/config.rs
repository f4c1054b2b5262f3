//! The scheduler's configuration: command-line flags with environment fallbacks, as Marathon
//! passes them (the Universe package's `marathon.json.mustache` sets the environment).
//!
//! Owns parsing and checking only. [`SchedulerArgs`] is what clap reads; [`SchedulerArgs::check`]
//! turns it into a [`SchedulerConfig`] or into every problem at once, each a sentence that says
//! what to fix (bad configuration stops the program; it is never half-applied). Secrets are read
//! from files or the environment and are kept in [`Secret`], whose `Debug` prints nothing.
//!
//! Names follow the DC/OS SDK where one exists (`FRAMEWORK_NAME`, `FRAMEWORK_ROLE`,
//! `FRAMEWORK_PRINCIPAL`, `FRAMEWORK_USER`, `PORT_API`, `SDK_UNINSTALL`,
//! `DCOS_SERVICE_ACCOUNT_CREDENTIAL`); the rest are `FASTDATA_*`, the same names the workload
//! binaries and `dev/services env` use for Kafka, Cassandra and ZooKeeper.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fastdata_proto::duration::parse_duration;

use crate::policy::{ScalingConfig, ScalingMode};

/// The fastdata framework scheduler: watches the consumer group's lag and launches or kills
/// consumer tasks through the Mesos v1 HTTP scheduler API.
///
/// Every flag can also be set with the environment variable shown. Durations take a unit:
/// 500ms, 30s, 2m, 1h, 7d, 1w.
#[derive(Debug, Clone, Parser)]
#[command(name = "fastdata-scheduler", version)]
pub struct SchedulerArgs {
    // ---- identity (DC/OS SDK names) ----
    /// Service name: the framework name, the ZooKeeper root `/dcos-service-<name>`, and the
    /// prefix of task and volume names.
    #[arg(long, env = "FRAMEWORK_NAME", default_value = "fastdata")]
    pub service_name: String,
    /// Mesos role of reservations and tasks [default: SERVICE_NAME-role].
    #[arg(long, env = "FRAMEWORK_ROLE")]
    pub role: Option<String>,
    /// Mesos principal [default: SERVICE_NAME-principal].
    #[arg(long, env = "FRAMEWORK_PRINCIPAL")]
    pub principal: Option<String>,
    /// User the tasks run as.
    #[arg(long, env = "FRAMEWORK_USER", default_value = "nobody")]
    pub user: String,
    /// How long Mesos keeps the tasks running while the scheduler is away.
    #[arg(long, env = "FASTDATA_FAILOVER_TIMEOUT", default_value = "1w", value_parser = parse_duration)]
    pub failover_timeout: Duration,
    /// URL shown as the framework's web UI in Mesos [default: none].
    #[arg(long, env = "FRAMEWORK_WEB_URL")]
    pub webui_url: Option<String>,

    // ---- Mesos ----
    /// Mesos master URL(s), comma-separated; a non-leading master redirects to the leader.
    #[arg(
        long = "mesos-master",
        env = "FASTDATA_MESOS_MASTERS",
        value_delimiter = ',',
        default_value = "http://leader.mesos:5050"
    )]
    pub mesos_masters: Vec<String>,
    /// File holding the secret for HTTP Basic authentication with the principal (open DC/OS or
    /// plain Mesos with --authenticate_http_frameworks).
    #[arg(long, env = "FASTDATA_MESOS_SECRET_FILE")]
    pub mesos_secret_file: Option<PathBuf>,
    /// The DC/OS service account credential (strict mode): a path to the JSON file with `uid`
    /// and `private_key` (as Marathon mounts it), or the JSON itself.
    #[arg(long, env = "DCOS_SERVICE_ACCOUNT_CREDENTIAL")]
    pub service_account_credential: Option<String>,
    /// The DC/OS IAM login endpoint the service account's token is exchanged at.
    #[arg(
        long,
        env = "FASTDATA_IAM_LOGIN_URL",
        default_value = "http://master.mesos/acs/api/v1/auth/login"
    )]
    pub iam_login_url: String,
    /// A subscription with no event for this many heartbeat intervals is dropped and
    /// re-subscribed (Mesos sends one every 15 s; its docs suggest 5).
    #[arg(long, env = "FASTDATA_HEARTBEAT_MISSES", default_value_t = 5)]
    pub heartbeat_misses: u32,
    /// Longest wait between two subscription attempts (jittered exponential backoff).
    #[arg(long, env = "FASTDATA_SUBSCRIBE_BACKOFF_MAX", default_value = "15s", value_parser = parse_duration)]
    pub subscribe_backoff_max: Duration,
    /// Period of implicit task reconciliation (explicit reconciliation runs on every
    /// subscription).
    #[arg(long, env = "FASTDATA_RECONCILE_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub reconcile_interval: Duration,

    // ---- state ----
    /// ZooKeeper connect string for the framework's state (`/dcos-service-<name>`).
    #[arg(
        long = "zk",
        env = "FASTDATA_ZK_CONNECT",
        default_value = "master.mesos:2181"
    )]
    pub zk_connect: String,

    // ---- API ----
    /// Address of the REST API (DC/OS: Marathon's port `PORT_API`, see --api-port).
    #[arg(long, env = "FASTDATA_API_ADDRESS", default_value = "0.0.0.0")]
    pub api_address: String,
    /// Port of the REST API and the status page (0: any free port).
    #[arg(long, env = "PORT_API", default_value_t = 8080)]
    pub api_port: u16,
    /// Port of the gRPC control API (0: any free port).
    #[arg(long, env = "PORT_GRPC", default_value_t = 8081)]
    pub grpc_port: u16,

    // ---- Kafka ----
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "FASTDATA_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,
    /// Topic of the readings.
    #[arg(long, env = "FASTDATA_TOPIC", default_value = fastdata_proto::task::DEFAULT_TOPIC)]
    pub topic: String,
    /// Consumer group of the consumer tasks.
    #[arg(long, env = "FASTDATA_GROUP", default_value = fastdata_proto::task::DEFAULT_GROUP)]
    pub group: String,
    /// Partitions of the topic when the producer creates it.
    #[arg(long, env = "FASTDATA_PARTITIONS", default_value_t = 12)]
    pub partitions: i32,
    /// Extra librdkafka property for every Kafka client, KEY=VALUE (repeatable or
    /// comma-separated), e.g. security.protocol=SSL. Secrets do not belong here: they would
    /// travel in the tasks' data.
    #[arg(
        long = "kafka-property",
        env = "FASTDATA_KAFKA_PROPERTIES",
        value_delimiter = ',',
        value_name = "KEY=VALUE"
    )]
    pub kafka_properties: Vec<String>,

    // ---- Cassandra ----
    /// Cassandra contact points, host:port[,host:port...].
    #[arg(
        long,
        env = "FASTDATA_CASSANDRA_CONTACT_POINTS",
        value_delimiter = ',',
        value_name = "HOST:PORT,..."
    )]
    pub cassandra_contact_points: Vec<String>,
    /// Keyspace of the readings.
    #[arg(long, env = "FASTDATA_KEYSPACE", default_value = "sensors")]
    pub keyspace: String,
    /// Keyspace replication if the consumers create it: a factor (3) or per data center
    /// (dc1:3,dc2:2).
    #[arg(long, env = "FASTDATA_REPLICATION", default_value = "1")]
    pub replication: String,
    /// Data center the consumers prefer.
    #[arg(long, env = "FASTDATA_CASSANDRA_LOCAL_DC")]
    pub cassandra_local_dc: Option<String>,
    /// Cassandra user name (its password reaches the tasks through the environment variable
    /// named by --cassandra-password-env).
    #[arg(long, env = "FASTDATA_CASSANDRA_USERNAME")]
    pub cassandra_username: Option<String>,
    /// The tasks' environment variable that holds the Cassandra password.
    #[arg(long, env = "FASTDATA_CASSANDRA_PASSWORD_ENV")]
    pub cassandra_password_env: Option<String>,
    /// The DC/OS secret (path in the secret store) each task gets in that variable: the agent
    /// resolves it, so the password never appears in a TaskInfo [default: the agents provide
    /// the variable themselves].
    #[arg(long, env = "FASTDATA_CASSANDRA_PASSWORD_SECRET")]
    pub cassandra_password_secret: Option<String>,

    // ---- scaling (install-time defaults; `PUT /v1/scaling` changes them at runtime) ----
    /// `proportional` (sizes the group from measured throughput) or `step` (the original
    /// +1/-1 rule).
    #[arg(long, env = "FASTDATA_SCALING_MODE", default_value = "proportional", value_parser = parse_mode)]
    pub scaling_mode: ScalingMode,
    /// Backlog (messages) above which the group grows.
    #[arg(long, env = "FASTDATA_SCALE_UP_LAG", default_value_t = 500)]
    pub scale_up_lag: u64,
    /// Backlog below which the group may shrink.
    #[arg(long, env = "FASTDATA_SCALE_DOWN_LAG", default_value_t = 100)]
    pub scale_down_lag: u64,
    /// Fewest consumers.
    #[arg(long, env = "FASTDATA_MIN_CONSUMERS", default_value_t = 1)]
    pub min_consumers: u32,
    /// Most consumers (the partition count caps it too).
    #[arg(long, env = "FASTDATA_MAX_CONSUMERS", default_value_t = 10)]
    pub max_consumers: u32,
    /// `step` mode: time between two changes.
    #[arg(long, env = "FASTDATA_STEP_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub step_interval: Duration,
    /// Scale down only when every sample of this window agrees.
    #[arg(long, env = "FASTDATA_STABILIZATION_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub stabilization_window: Duration,
    /// After a change, no further scale-up until the new consumers joined, or this long.
    #[arg(long, env = "FASTDATA_COOLDOWN", default_value = "120s", value_parser = parse_duration)]
    pub cooldown: Duration,
    /// `proportional` mode: drain the backlog within this time.
    #[arg(long, env = "FASTDATA_TARGET_DRAIN_TIME", default_value = "60s", value_parser = parse_duration)]
    pub target_drain_time: Duration,
    /// Period of the lag monitor.
    #[arg(long, env = "FASTDATA_LAG_TICK", default_value = "1s", value_parser = parse_duration)]
    pub lag_tick: Duration,

    // ---- consumer slots ----
    /// CPUs of one consumer task.
    #[arg(long, env = "FASTDATA_CONSUMER_CPUS", default_value_t = 1.0)]
    pub consumer_cpus: f64,
    /// Memory (MB) of one consumer task.
    #[arg(long, env = "FASTDATA_CONSUMER_MEM", default_value_t = 512.0)]
    pub consumer_mem: f64,
    /// How long a killed consumer may take to commit and leave its group (the kill policy's
    /// grace period).
    #[arg(long, env = "FASTDATA_CONSUMER_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub consumer_grace_period: Duration,
    /// Most Cassandra writes in flight per consumer task [default: the consumer's own, 256].
    /// Lower values bound what one consumer can write per second.
    #[arg(long, env = "FASTDATA_CONSUMER_MAX_IN_FLIGHT")]
    pub consumer_max_in_flight: Option<usize>,
    /// Most messages a consumer task takes per poll [default: the consumer's own, 500].
    #[arg(long, env = "FASTDATA_CONSUMER_BATCH_SIZE")]
    pub consumer_batch_size: Option<usize>,
    /// Most messages one consumer task handles per second [default: no cap]. For a sink that
    /// must not be pushed harder per consumer, and for demos on one machine, where a local
    /// Cassandra is faster than any real one.
    #[arg(long, env = "FASTDATA_CONSUMER_MAX_RATE")]
    pub consumer_max_rate: Option<f64>,
    /// Most consumer slots on one agent (0: no limit).
    #[arg(long, env = "FASTDATA_MAX_CONSUMERS_PER_AGENT", default_value_t = 1)]
    pub max_consumers_per_agent: u32,
    /// Spread consumer slots across fault-domain zones, when agents have them.
    #[arg(long, env = "FASTDATA_SPREAD_ZONES", default_value_t = true, action = clap::ArgAction::Set)]
    pub spread_zones: bool,
    /// What consumer slots run: `consumer` (the Kafka → Cassandra sink), or `noop` (holds the
    /// slot and does nothing; for measuring the launch pipeline alone).
    #[arg(
        long,
        env = "FASTDATA_CONSUMER_WORKLOAD",
        default_value = "consumer",
        hide = true
    )]
    pub consumer_workload: String,

    // ---- Portworx volume of each slot ----
    /// Docker volume driver of the slots' volumes.
    #[arg(long, env = "FASTDATA_VOLUME_DRIVER", default_value = "pxd")]
    pub volume_driver: String,
    /// Size of each slot's volume, GB (the `size` driver option).
    #[arg(long, env = "FASTDATA_VOLUME_SIZE_GB", default_value_t = 1)]
    pub volume_size_gb: u32,
    /// Extra driver options, KEY=VALUE (repeatable or comma-separated), e.g. repl=2.
    #[arg(
        long = "volume-option",
        env = "FASTDATA_VOLUME_OPTIONS",
        value_delimiter = ',',
        value_name = "KEY=VALUE"
    )]
    pub volume_options: Vec<String>,

    // ---- producer tasks ----
    /// Number of producer tasks (the sensor simulator); 0 on a real cluster.
    #[arg(long, env = "FASTDATA_PRODUCER_COUNT", default_value_t = 0)]
    pub producer_count: u32,
    /// Events per second of each producer task.
    #[arg(long, env = "FASTDATA_PRODUCER_RATE", default_value_t = 1000.0)]
    pub producer_rate: f64,
    /// Simulated sensors of each producer task.
    #[arg(long, env = "FASTDATA_PRODUCER_SENSORS", default_value_t = 50)]
    pub producer_sensors: u32,
    /// CPUs of one producer task.
    #[arg(long, env = "FASTDATA_PRODUCER_CPUS", default_value_t = 0.5)]
    pub producer_cpus: f64,
    /// Memory (MB) of one producer task.
    #[arg(long, env = "FASTDATA_PRODUCER_MEM", default_value_t = 256.0)]
    pub producer_mem: f64,

    // ---- executor ----
    /// URI the agent fetches the executor binary from (`CommandInfo.uris`): http(s)://, file://
    /// or an absolute path.
    #[arg(long, env = "FASTDATA_EXECUTOR_URI")]
    pub executor_uri: Option<String>,
    /// Instead of a URI: the absolute path where every agent already has fastdata-executor
    /// (nothing is fetched; agents set up with the executor, devcluster, launch benchmarks).
    #[arg(long, env = "FASTDATA_EXECUTOR_PATH", conflicts_with = "executor_uri")]
    pub executor_path: Option<String>,
    /// CPUs of the executor beside each task.
    #[arg(long, env = "FASTDATA_EXECUTOR_CPUS", default_value_t = 0.1)]
    pub executor_cpus: f64,
    /// Memory (MB) of the executor beside each task.
    #[arg(long, env = "FASTDATA_EXECUTOR_MEM", default_value_t = 64.0)]
    pub executor_mem: f64,
    /// How often each executor reports its workload's stats.
    #[arg(long, env = "FASTDATA_STATS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub stats_interval: Duration,

    // ---- uninstall ----
    /// Uninstall mode (set by Cosmos on `dcos package uninstall`): kill every task, unreserve
    /// everything, tear the framework down and delete its ZooKeeper state.
    #[arg(long, env = "SDK_UNINSTALL", default_value_t = false, action = clap::ArgAction::Set)]
    pub uninstall: bool,

    /// Check the configuration, print it (secrets hidden) and exit: 0 if usable, 2 with every
    /// problem otherwise.
    #[arg(long)]
    pub check_config: bool,
}

fn parse_mode(text: &str) -> Result<ScalingMode, String> {
    match text.trim() {
        "proportional" => Ok(ScalingMode::Proportional),
        "step" => Ok(ScalingMode::Step),
        other => Err(format!(
            "{other:?} is not a scaling mode; use proportional or step"
        )),
    }
}

/// A secret value: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A DC/OS service account: its uid and its RSA private key (PEM, PKCS#8 or PKCS#1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The account's uid (the JWT's `uid` claim).
    pub uid: String,
    /// The private key, PEM.
    pub private_key: Secret,
    /// Where to exchange the signed login token for an authentication token.
    pub login_url: String,
}

/// How the scheduler authenticates to Mesos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MesosAuth {
    /// No authentication (a local devcluster, or Mesos without HTTP framework authentication).
    None,
    /// HTTP Basic with the framework's principal and this secret.
    Basic {
        /// The principal.
        principal: String,
        /// Its secret.
        secret: Secret,
    },
    /// A DC/OS service account: `Authorization: token=<IAM token>`.
    ServiceAccount(ServiceAccount),
}

/// Where the framework's tasks find Kafka and Cassandra.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// Extra librdkafka properties.
    pub kafka_properties: BTreeMap<String, String>,
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Partitions of the topic when the producer creates it.
    pub partitions: i32,
    /// Cassandra contact points.
    pub cassandra_contact_points: Vec<String>,
    /// Keyspace.
    pub keyspace: String,
    /// Keyspace replication.
    pub replication: String,
    /// Preferred data center.
    pub cassandra_local_dc: Option<String>,
    /// Cassandra user name.
    pub cassandra_username: Option<String>,
    /// The tasks' environment variable holding the Cassandra password.
    pub cassandra_password_env: Option<String>,
    /// The DC/OS secret put into that variable.
    pub cassandra_password_secret: Option<String>,
}

/// Resources of one task and its executor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskResources {
    /// CPUs of the task.
    pub cpus: f64,
    /// Memory of the task, MB.
    pub mem: f64,
}

/// The slots' volumes.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfig {
    /// Docker volume driver (`pxd`).
    pub driver: String,
    /// Driver options, `size` included.
    pub options: BTreeMap<String, String>,
}

/// Where agents get the executor binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorSource {
    /// Fetched into each sandbox from this URI (`CommandInfo.uris`).
    Fetch {
        /// http(s)://, file:// or an absolute path.
        uri: String,
    },
    /// Already on every agent at this absolute path; nothing is fetched.
    Installed {
        /// The path.
        path: String,
    },
}

/// Everything about consumer and producer tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct TasksConfig {
    /// One consumer task.
    pub consumer: TaskResources,
    /// Its kill grace period.
    pub consumer_grace_period: Duration,
    /// Its writes in flight (`None`: the workload's default).
    pub consumer_max_in_flight: Option<usize>,
    /// Its messages per poll (`None`: the workload's default).
    pub consumer_batch_size: Option<usize>,
    /// Its messages per second (`None`: no cap).
    pub consumer_max_rate: Option<f64>,
    /// Most consumer slots per agent (`None`: no limit).
    pub max_consumers_per_agent: Option<u32>,
    /// Spread consumer slots across zones.
    pub spread_zones: bool,
    /// Run the no-op workload in consumer slots (launch benchmarks).
    pub noop_consumers: bool,
    /// The slots' volumes.
    pub volume: VolumeConfig,
    /// Producer tasks.
    pub producer_count: u32,
    /// Events per second of each producer.
    pub producer_rate: f64,
    /// Sensors per producer.
    pub producer_sensors: u32,
    /// One producer task.
    pub producer: TaskResources,
    /// Where agents get the executor.
    pub executor_source: ExecutorSource,
    /// The executor beside each task.
    pub executor: TaskResources,
    /// Stats report period.
    pub stats_interval: Duration,
}

/// The framework's identity and its connection to Mesos.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkConfig {
    /// The service name as installed (`/team/fastdata` for a DC/OS folder): the Mesos
    /// framework name, which DC/OS matches with the Marathon app's
    /// `DCOS_PACKAGE_FRAMEWORK_NAME`.
    pub framework_name: String,
    /// The service name escaped for ids, roles, volumes and the ZooKeeper root
    /// (`team__fastdata`).
    pub service_name: String,
    /// Role.
    pub role: String,
    /// Principal.
    pub principal: String,
    /// User.
    pub user: String,
    /// Failover timeout.
    pub failover_timeout: Duration,
    /// Web UI URL.
    pub webui_url: Option<String>,
    /// Master URLs, `http(s)://host:port`, without a path.
    pub masters: Vec<String>,
    /// Authentication.
    pub auth: MesosAuth,
    /// Heartbeat intervals without an event before the subscription is dropped.
    pub heartbeat_misses: u32,
    /// Longest backoff between subscription attempts.
    pub subscribe_backoff_max: Duration,
    /// Implicit reconciliation period.
    pub reconcile_interval: Duration,
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Identity and Mesos.
    pub framework: FrameworkConfig,
    /// ZooKeeper connect string.
    pub zk_connect: String,
    /// REST address.
    pub api_addr: SocketAddr,
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Kafka and Cassandra.
    pub pipeline: Pipeline,
    /// Install-time scaling thresholds (the ones stored in ZooKeeper win).
    pub scaling: ScalingConfig,
    /// Lag monitor period.
    pub lag_tick: Duration,
    /// Tasks.
    pub tasks: TasksConfig,
    /// Uninstall mode.
    pub uninstall: bool,
}

/// Every problem found in the configuration, each a sentence; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems(pub Vec<String>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the scheduler's configuration is not usable:")?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

fn key_values(
    flag: &str,
    items: &[String],
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => problems.push(format!("{flag} {item:?} is not KEY=VALUE")),
        }
    }
    map
}

/// `http://host:port` with any path and trailing slash removed; `None` if it is not an
/// http(s) URL with a host.
fn master_base(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

/// Reads a service-account credential: a file path or the JSON itself.
fn service_account(text: &str, login_url: &str) -> Result<ServiceAccount, String> {
    let json = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        std::fs::read_to_string(text).map_err(|e| {
            format!("DCOS_SERVICE_ACCOUNT_CREDENTIAL: cannot read {text}: {e}; give the path of the service account's JSON credential or the JSON itself")
        })?
    };
    #[derive(serde::Deserialize)]
    struct Credential {
        uid: String,
        private_key: String,
    }
    let credential: Credential = serde_json::from_str(&json).map_err(|e| {
        format!("DCOS_SERVICE_ACCOUNT_CREDENTIAL is not a service account credential ({e}); it needs \"uid\" and \"private_key\"")
    })?;
    if credential.uid.trim().is_empty() {
        return Err("DCOS_SERVICE_ACCOUNT_CREDENTIAL has an empty uid".into());
    }
    if !credential.private_key.contains("PRIVATE KEY-----") {
        return Err("DCOS_SERVICE_ACCOUNT_CREDENTIAL: private_key is not a PEM private key".into());
    }
    Ok(ServiceAccount {
        uid: credential.uid,
        private_key: Secret::new(credential.private_key),
        login_url: login_url.to_owned(),
    })
}

fn resources(what: &str, cpus: f64, mem: f64, problems: &mut Vec<String>) -> TaskResources {
    if !(cpus.is_finite() && cpus >= 0.01) {
        problems.push(format!("{what} cpus is {cpus}; Mesos needs at least 0.01"));
    }
    if !(mem.is_finite() && mem >= 32.0) {
        problems.push(format!("{what} mem is {mem} MB; Mesos needs at least 32"));
    }
    TaskResources { cpus, mem }
}

/// A name that can be part of task ids, volume names and a ZooKeeper path: Mesos refuses `/`
/// and control characters in ids, and DC/OS folders (`/a/b`) are escaped as `a__b`.
pub fn escape_service_name(name: &str) -> String {
    name.trim_matches('/').replace('/', "__")
}

impl SchedulerArgs {
    /// Parses the command line and the environment.
    pub fn from_env() -> SchedulerArgs {
        SchedulerArgs::parse()
    }

    /// Checks everything and builds the configuration, or lists every problem.
    pub fn check(&self) -> Result<SchedulerConfig, ConfigProblems> {
        let mut problems = Vec::new();
        let name = escape_service_name(&self.service_name);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            problems.push(format!(
                "service name {:?} must be letters, digits, '-', '_' or '.' (folders with '/' are allowed)",
                self.service_name
            ));
        }
        let role = self.role.clone().unwrap_or_else(|| format!("{name}-role"));
        if role.is_empty() || role == "*" || role.starts_with('.') || role.contains(['/', ' ']) {
            problems.push(format!(
                "role {role:?} cannot hold dynamic reservations; use a name such as {name}-role"
            ));
        }
        let principal = self
            .principal
            .clone()
            .unwrap_or_else(|| format!("{name}-principal"));
        if self.user.trim().is_empty() {
            problems.push("FRAMEWORK_USER is empty; use e.g. nobody".into());
        }
        let masters: Vec<String> = self
            .mesos_masters
            .iter()
            .filter(|m| !m.trim().is_empty())
            .filter_map(|m| {
                let base = master_base(m);
                if base.is_none() {
                    problems.push(format!(
                        "Mesos master {m:?} is not an http:// or https:// URL; write e.g. http://leader.mesos:5050"
                    ));
                }
                base
            })
            .collect();
        if masters.is_empty() && self.mesos_masters.iter().all(|m| m.trim().is_empty()) {
            problems
                .push("no Mesos master given; set --mesos-master (FASTDATA_MESOS_MASTERS)".into());
        }
        if self.heartbeat_misses == 0 {
            problems.push("FASTDATA_HEARTBEAT_MISSES must be at least 1".into());
        }
        let auth = match (&self.service_account_credential, &self.mesos_secret_file) {
            (Some(_), Some(_)) => {
                problems.push("give either a service account (DCOS_SERVICE_ACCOUNT_CREDENTIAL) or a Mesos secret file (FASTDATA_MESOS_SECRET_FILE), not both".into());
                MesosAuth::None
            }
            (Some(credential), None) => match service_account(credential, &self.iam_login_url) {
                Ok(account) => MesosAuth::ServiceAccount(account),
                Err(e) => {
                    problems.push(e);
                    MesosAuth::None
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(secret) if !secret.trim().is_empty() => MesosAuth::Basic {
                    principal: principal.clone(),
                    secret: Secret::new(secret.trim()),
                },
                Ok(_) => {
                    problems.push(format!("the Mesos secret file {} is empty", path.display()));
                    MesosAuth::None
                }
                Err(e) => {
                    problems.push(format!(
                        "cannot read the Mesos secret file {}: {e}",
                        path.display()
                    ));
                    MesosAuth::None
                }
            },
            (None, None) => MesosAuth::None,
        };
        if self.zk_connect.trim().is_empty() {
            problems.push(
                "no ZooKeeper given; set --zk (FASTDATA_ZK_CONNECT), e.g. master.mesos:2181".into(),
            );
        }
        let ip: Option<std::net::IpAddr> = match self.api_address.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                problems.push(format!(
                    "FASTDATA_API_ADDRESS {:?} is not an IP address; use e.g. 0.0.0.0",
                    self.api_address
                ));
                None
            }
        };
        let ip = ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        if self.api_port != 0 && self.api_port == self.grpc_port {
            problems.push(format!(
                "the REST and gRPC APIs cannot share port {}",
                self.api_port
            ));
        }
        let kafka_brokers = self.kafka_brokers.clone().unwrap_or_default();
        if kafka_brokers.trim().is_empty() {
            problems.push("no Kafka brokers given; set --kafka-brokers (FASTDATA_KAFKA_BROKERS), host:port[,host:port...]".into());
        }
        let kafka_properties =
            key_values("--kafka-property", &self.kafka_properties, &mut problems);
        if self.topic.trim().is_empty() {
            problems.push("the topic is empty; the default is sensor-temp".into());
        }
        if self.group.trim().is_empty() {
            problems.push("the consumer group is empty; the default is sensor-temp-sink".into());
        }
        if self.partitions < 1 {
            problems.push(format!(
                "FASTDATA_PARTITIONS is {}; use 1 or more",
                self.partitions
            ));
        }
        let contact_points: Vec<String> = self
            .cassandra_contact_points
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if contact_points.is_empty() {
            problems.push("no Cassandra contact points given; set --cassandra-contact-points (FASTDATA_CASSANDRA_CONTACT_POINTS), host:port[,host:port...]".into());
        }
        if self.cassandra_password_secret.is_some() && self.cassandra_password_env.is_none() {
            problems.push("FASTDATA_CASSANDRA_PASSWORD_SECRET needs FASTDATA_CASSANDRA_PASSWORD_ENV: the name of the variable the tasks get it in".into());
        }
        if self.cassandra_username.is_some() != self.cassandra_password_env.is_some() {
            problems.push("give both FASTDATA_CASSANDRA_USERNAME and FASTDATA_CASSANDRA_PASSWORD_ENV, or neither".into());
        }
        let scaling = ScalingConfig {
            mode: self.scaling_mode,
            scale_up_lag: self.scale_up_lag,
            scale_down_lag: self.scale_down_lag,
            min_consumers: self.min_consumers,
            max_consumers: self.max_consumers,
            step_interval: self.step_interval,
            stabilization_window: self.stabilization_window,
            cooldown: self.cooldown,
            target_drain_time: self.target_drain_time,
            ..ScalingConfig::default()
        };
        if let Err(invalid) = scaling.validate() {
            problems.extend(invalid.0.iter().map(ToString::to_string));
        }
        if self.lag_tick < Duration::from_millis(100) {
            problems.push("FASTDATA_LAG_TICK must be at least 100ms".into());
        }
        let consumer = resources(
            "consumer",
            self.consumer_cpus,
            self.consumer_mem,
            &mut problems,
        );
        let producer = resources(
            "producer",
            self.producer_cpus,
            self.producer_mem,
            &mut problems,
        );
        let executor = resources(
            "executor",
            self.executor_cpus,
            self.executor_mem,
            &mut problems,
        );
        if self
            .consumer_max_rate
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            problems.push("FASTDATA_CONSUMER_MAX_RATE must be messages per second above 0 (leave it unset for no cap)".into());
        }
        if self.consumer_max_in_flight == Some(0) || self.consumer_batch_size == Some(0) {
            problems.push("FASTDATA_CONSUMER_MAX_IN_FLIGHT and FASTDATA_CONSUMER_BATCH_SIZE must be at least 1 when set".into());
        }
        if self.consumer_grace_period < Duration::from_secs(1) {
            problems.push("FASTDATA_CONSUMER_GRACE_PERIOD must be at least 1s: a consumer needs time to commit and leave its group".into());
        }
        let noop_consumers = match self.consumer_workload.as_str() {
            "consumer" => false,
            "noop" => true,
            other => {
                problems.push(format!(
                    "FASTDATA_CONSUMER_WORKLOAD {other:?} is not consumer or noop"
                ));
                false
            }
        };
        if self.volume_driver.trim().is_empty() {
            problems.push("FASTDATA_VOLUME_DRIVER is empty; the default is pxd".into());
        }
        let mut options = key_values("--volume-option", &self.volume_options, &mut problems);
        options
            .entry("size".to_owned())
            .or_insert_with(|| self.volume_size_gb.to_string());
        if !(self.producer_rate.is_finite() && self.producer_rate >= 0.0) {
            problems.push(format!(
                "FASTDATA_PRODUCER_RATE is {}; use events per second, 0 or more",
                self.producer_rate
            ));
        }
        if self.producer_sensors == 0 {
            problems.push("FASTDATA_PRODUCER_SENSORS must be at least 1".into());
        }
        let executor_source = match (&self.executor_uri, &self.executor_path) {
            (_, Some(path)) if path.starts_with('/') => {
                ExecutorSource::Installed { path: path.clone() }
            }
            (_, Some(path)) => {
                problems.push(format!(
                    "FASTDATA_EXECUTOR_PATH {path:?} is not an absolute path"
                ));
                ExecutorSource::Installed { path: path.clone() }
            }
            (Some(uri), None) if !uri.trim().is_empty() => ExecutorSource::Fetch {
                uri: uri.trim().to_owned(),
            },
            _ => {
                problems.push("no executor given; set --executor-uri (FASTDATA_EXECUTOR_URI) to where agents fetch fastdata-executor (http://, file:// or an absolute path), or --executor-path (FASTDATA_EXECUTOR_PATH) to where agents have it".into());
                ExecutorSource::Fetch { uri: String::new() }
            }
        };
        if self.stats_interval < Duration::from_millis(100) {
            problems.push("FASTDATA_STATS_INTERVAL must be at least 100ms".into());
        }
        if !problems.is_empty() {
            return Err(ConfigProblems(problems));
        }
        Ok(SchedulerConfig {
            framework: FrameworkConfig {
                framework_name: self.service_name.trim().to_owned(),
                service_name: name,
                role,
                principal,
                user: self.user.clone(),
                failover_timeout: self.failover_timeout,
                webui_url: self.webui_url.clone(),
                masters,
                auth,
                heartbeat_misses: self.heartbeat_misses,
                subscribe_backoff_max: self.subscribe_backoff_max,
                reconcile_interval: self.reconcile_interval,
            },
            zk_connect: self.zk_connect.clone(),
            api_addr: SocketAddr::new(ip, self.api_port),
            grpc_addr: SocketAddr::new(ip, self.grpc_port),
            pipeline: Pipeline {
                kafka_brokers,
                kafka_properties,
                topic: self.topic.clone(),
                group: self.group.clone(),
                partitions: self.partitions,
                cassandra_contact_points: contact_points,
                keyspace: self.keyspace.clone(),
                replication: self.replication.clone(),
                cassandra_local_dc: self.cassandra_local_dc.clone(),
                cassandra_username: self.cassandra_username.clone(),
                cassandra_password_env: self.cassandra_password_env.clone(),
                cassandra_password_secret: self
                    .cassandra_password_secret
                    .clone()
                    .filter(|s| !s.trim().is_empty()),
            },
            scaling,
            lag_tick: self.lag_tick,
            tasks: TasksConfig {
                consumer,
                consumer_grace_period: self.consumer_grace_period,
                consumer_max_in_flight: self.consumer_max_in_flight,
                consumer_batch_size: self.consumer_batch_size,
                consumer_max_rate: self.consumer_max_rate,
                max_consumers_per_agent: (self.max_consumers_per_agent > 0)
                    .then_some(self.max_consumers_per_agent),
                spread_zones: self.spread_zones,
                noop_consumers,
                volume: VolumeConfig {
                    driver: self.volume_driver.clone(),
                    options,
                },
                producer_count: self.producer_count,
                producer_rate: self.producer_rate,
                producer_sensors: self.producer_sensors,
                producer,
                executor_source,
                executor,
                stats_interval: self.stats_interval,
            },
            uninstall: self.uninstall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> SchedulerArgs {
        let mut argv = vec!["fastdata-scheduler"];
        if !extra.contains(&"--mesos-master") {
            argv.extend(["--mesos-master", "http://127.0.0.1:5050"]);
        }
        argv.extend([
            "--zk",
            "127.0.0.1:2181",
            "--kafka-brokers",
            "127.0.0.1:9092",
            "--cassandra-contact-points",
            "127.0.0.1:9042",
            "--executor-uri",
            "/usr/local/bin/fastdata-executor",
        ]);
        argv.extend_from_slice(extra);
        SchedulerArgs::try_parse_from(argv).expect("flags parse")
    }

    #[test]
    fn defaults_follow_the_sdk_conventions() {
        let config = args(&[]).check().expect("valid");
        let f = &config.framework;
        assert_eq!(f.service_name, "fastdata");
        assert_eq!(f.role, "fastdata-role");
        assert_eq!(f.principal, "fastdata-principal");
        assert_eq!(f.failover_timeout, Duration::from_secs(7 * 86_400));
        assert_eq!(f.masters, vec!["http://127.0.0.1:5050".to_owned()]);
        assert_eq!(f.auth, MesosAuth::None);
        assert_eq!(config.tasks.volume.driver, "pxd");
        assert_eq!(
            config.tasks.volume.options.get("size").map(String::as_str),
            Some("1")
        );
        assert_eq!(config.scaling, ScalingConfig::default());
    }

    #[test]
    fn folders_are_escaped_and_master_paths_dropped() {
        let config = args(&[
            "--service-name",
            "/team/fastdata",
            "--mesos-master",
            "http://m1:5050/,https://m2:5050/master",
        ])
        .check()
        .expect("valid");
        assert_eq!(config.framework.service_name, "team__fastdata");
        assert_eq!(config.framework.framework_name, "/team/fastdata");
        assert_eq!(config.framework.role, "team__fastdata-role");
        assert_eq!(
            config.framework.masters,
            vec!["http://m1:5050".to_owned(), "https://m2:5050".to_owned()]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_in_sentences() {
        let problems = SchedulerArgs::try_parse_from([
            "fastdata-scheduler",
            "--mesos-master",
            "leader.mesos:5050",
            "--scale-up-lag",
            "10",
            "--scale-down-lag",
            "20",
            "--consumer-cpus",
            "0",
            "--volume-option",
            "repl",
            // Explicitly empty, so that the environment (`dev/services env` exports these)
            // cannot fill them in.
            "--kafka-brokers",
            "",
            "--cassandra-contact-points",
            "",
            "--executor-uri",
            "",
        ])
        .expect("flags parse")
        .check()
        .expect_err("invalid");
        let text = problems.to_string();
        for expected in [
            "is not an http:// or https:// URL",
            "no Kafka brokers given",
            "no Cassandra contact points given",
            "scale_down_lag (20) must be below scale_up_lag (10)",
            "consumer cpus is 0",
            "\"repl\" is not KEY=VALUE",
            "no executor given",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn secrets_never_print() {
        let dir = std::env::temp_dir().join(format!("fastdata-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "hunter2\n").unwrap();
        let config = args(&["--mesos-secret-file", path.to_str().unwrap()])
            .check()
            .expect("valid");
        let MesosAuth::Basic { principal, secret } = &config.framework.auth else {
            panic!("basic auth expected");
        };
        assert_eq!(
            (principal.as_str(), secret.expose()),
            ("fastdata-principal", "hunter2")
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn service_account_credentials_are_checked() {
        let bad = args(&["--service-account-credential", r#"{"uid":"sa"}"#])
            .check()
            .expect_err("no key");
        assert!(
            bad.to_string().contains("\"uid\" and \"private_key\""),
            "{bad}"
        );
        let good = args(&[
            "--service-account-credential",
            r#"{"uid":"sa","private_key":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"}"#,
        ])
        .check()
        .expect("valid");
        let MesosAuth::ServiceAccount(account) = &good.framework.auth else {
            panic!("service account expected");
        };
        assert_eq!(account.uid, "sa");
        assert!(!format!("{good:?}").contains("BEGIN PRIVATE KEY"));
    }
}
