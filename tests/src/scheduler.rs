//! The scheduler as a real process, and the HTTP helpers the end-to-end tests use with it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::binaries::binary;

/// A running `fastdata-scheduler`.
#[derive(Debug)]
pub struct SchedulerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>` of its REST API.
    pub rest: String,
    /// `http://127.0.0.1:<port>` of its gRPC API.
    pub grpc: String,
    /// Where its logs go.
    pub log: PathBuf,
}

/// The environment every test scheduler gets besides its own settings: loopback APIs on free
/// ports, short timers, debug logs of our crates.
pub fn base_env() -> Vec<(String, String)> {
    [
        ("PORT_API", "0"),
        ("PORT_GRPC", "0"),
        ("FASTDATA_API_ADDRESS", "127.0.0.1"),
        ("FASTDATA_FAILOVER_TIMEOUT", "1h"),
        ("FASTDATA_SUBSCRIBE_BACKOFF_MAX", "2s"),
        ("FASTDATA_LAG_TICK", "500ms"),
        (
            "RUST_LOG",
            "info,fastdata_scheduler=debug,scylla=off,rdkafka=warn",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl SchedulerProcess {
    /// Starts the scheduler with `env` (on top of PATH and HOME only), logging to `log`, and
    /// waits until its APIs listen.
    pub async fn start(env: &[(String, String)], log: &Path) -> SchedulerProcess {
        let bin = binary("fastdata-scheduler", "fastdata-scheduler");
        SchedulerProcess::start_program(&bin, env, log, false)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SchedulerProcess::start`] with a given binary, the failure as a sentence. With
    /// `own_process_group`, a Ctrl-C in the terminal does not reach the scheduler (the demo
    /// stops it itself, after draining).
    pub async fn start_program(
        bin: &Path,
        env: &[(String, String)],
        log: &Path,
        own_process_group: bool,
    ) -> Result<SchedulerProcess, String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let mut command = Command::new(bin);
        command
            .env_clear()
            .envs(
                ["PATH", "HOME"]
                    .iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true);
        if own_process_group {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the scheduler's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("fastdata-scheduler REST ") {
                    return Some(line);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(line) = line else {
            let _ = child.start_kill();
            return Err(format!(
                "the scheduler did not report its API addresses within 60 s; its log ({}):\n{}",
                log.display(),
                tail(log)
            ));
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut words = line.split_whitespace();
        let (Some(rest), Some(grpc)) = (words.nth(2), words.nth(1)) else {
            return Err(format!(
                "the scheduler's address line is not understood: {line}"
            ));
        };
        Ok(SchedulerProcess {
            rest: rest.to_owned(),
            grpc: grpc.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// SIGKILL: the scheduler dies without closing anything.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits for the exit (at most 30 s); returns the exit code.
    pub async fn stop(&mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                self.kill().await;
                None
            }
        }
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `GET <rest><path>`: status code and JSON body (`null` if the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        http_json(reqwest::Client::new().get(format!("{}{path}", self.rest))).await
    }

    /// `PUT <rest><path>` with a JSON body.
    pub async fn put(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        http_json(
            reqwest::Client::new()
                .put(format!("{}{path}", self.rest))
                .json(body),
        )
        .await
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

async fn http_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    match request.timeout(Duration::from_secs(10)).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            )
        }
        Err(e) => (0, serde_json::Value::String(e.to_string())),
    }
}

/// The last 60 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Polls `check` every 250 ms until it returns `Ok`, for at most `timeout`; panics with
/// `what` and the last `Err` it gave otherwise.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(why) => why,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Everything a scheduler under test runs against: a devcluster, a fresh topic with its
/// group, a unique service name (so its ZooKeeper root, role and task names are its own),
/// and the environment that points the scheduler at them.
#[derive(Debug)]
pub struct Stage {
    /// The cluster.
    pub cluster: fastdata_devcluster::DevCluster,
    /// Service name.
    pub service: String,
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// The scheduler's environment.
    pub env: Vec<(String, String)>,
    /// Where the processes' logs go.
    pub logs: PathBuf,
}

impl Stage {
    /// A stage with a topic of `partitions` partitions on `cluster`; consumer slots run
    /// `workload` (`consumer` or `noop`).
    pub async fn new(
        prefix: &str,
        cluster: fastdata_devcluster::DevCluster,
        partitions: i32,
        workload: &str,
    ) -> Stage {
        let brokers = crate::kafka_brokers();
        let zk = crate::zk_connect();
        let cassandra = crate::cassandra_contact_points();
        let service = crate::unique_name(prefix);
        let topic = crate::unique_name(&format!("{prefix}_topic"));
        let group = format!("{topic}-group");
        crate::kafka::create_topic(&brokers, &topic, partitions).await;
        let logs = std::env::temp_dir().join(format!("{service}-logs"));
        std::fs::create_dir_all(&logs).expect("log dir");
        let mut env = base_env();
        env.extend(
            [
                ("FRAMEWORK_NAME", service.clone()),
                ("FASTDATA_MESOS_MASTERS", cluster.master_url()),
                ("FASTDATA_ZK_CONNECT", zk),
                ("FASTDATA_KAFKA_BROKERS", brokers),
                ("FASTDATA_TOPIC", topic.clone()),
                ("FASTDATA_GROUP", group.clone()),
                ("FASTDATA_CASSANDRA_CONTACT_POINTS", cassandra.join(",")),
                ("FASTDATA_KEYSPACE", service.to_lowercase()),
                (
                    "FASTDATA_EXECUTOR_PATH",
                    binary("fastdata-executor", "fastdata-executor")
                        .display()
                        .to_string(),
                ),
                ("FASTDATA_CONSUMER_WORKLOAD", workload.to_owned()),
                ("FASTDATA_CONSUMER_CPUS", "0.5".into()),
                ("FASTDATA_CONSUMER_MEM", "128".into()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        Stage {
            cluster,
            service,
            topic,
            group,
            env,
            logs,
        }
    }

    /// Sets (or replaces) one variable of the scheduler's environment.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    /// Starts a scheduler with the stage's environment, logging to `<logs>/<name>.log`.
    pub async fn scheduler(&self, name: &str) -> SchedulerProcess {
        SchedulerProcess::start(&self.env, &self.logs.join(format!("{name}.log"))).await
    }

    /// The id prefix of this stage's consumer tasks.
    pub fn consumer_prefix(&self) -> String {
        format!("{}__consumer-", self.service)
    }
}

impl SchedulerProcess {
    /// The framework id the scheduler reports, once it has one.
    pub async fn framework_id(&self) -> String {
        eventually(
            Duration::from_secs(120),
            "the scheduler reports a framework id",
            || async {
                let (code, body) = self.get("/v1/state/frameworkId").await;
                match body[0].as_str() {
                    Some(id) if code == 200 => Ok(id.to_owned()),
                    _ => Err(format!("{code} {body}")),
                }
            },
        )
        .await
    }

    /// Waits until `/v1/health` answers `code`; returns its body.
    pub async fn health_becomes(&self, code: u16, within: Duration) -> serde_json::Value {
        eventually(within, &format!("/v1/health answers {code}"), || async {
            let (got, body) = self.get("/v1/health").await;
            if got == code {
                Ok(body)
            } else {
                Err(format!("{got} {body}\n{}", self.log_tail()))
            }
        })
        .await
    }
}

/// The lines of a scheduler log that contain `needle`, with their timestamps (the log's
/// lines start with an RFC 3339 UTC time, `2026-12-01T14:16:21.595897Z`). Lines without one
/// are skipped.
pub fn log_lines(log: &Path, needle: &str) -> Vec<(SystemTime, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| {
            let stamp = line.split_whitespace().next()?;
            Some((parse_utc(stamp)?, line.to_owned()))
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as a time.
pub fn parse_utc(stamp: &str) -> Option<SystemTime> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.splitn(3, ':');
    let hours: u64 = hms.next()?.parse().ok()?;
    let minutes: u64 = hms.next()?.parse().ok()?;
    let seconds: f64 = hms.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hours > 23 || minutes > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let whole = days * 86_400 + hours * 3600 + minutes * 60;
    Some(UNIX_EPOCH + Duration::from_secs(whole) + Duration::try_from_secs_f64(seconds).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_parse_as_utc() {
        let at =
            |s: &str| parse_utc(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(at("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        let t = at("2026-12-01T14:16:21.595897Z").unwrap();
        assert!((t - 1_796_134_581.595_897).abs() < 1e-5, "{t}");
        assert_eq!(at("2026-12-01 14:16:21Z"), None);
        assert_eq!(at("2026-13-01T14:16:21Z"), None);
        assert_eq!(at("INFO"), None);
    }
}
