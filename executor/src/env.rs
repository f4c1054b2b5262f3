//! The environment a Mesos agent gives an executor, read and checked.
//!
//! Owns the names and meaning of the `MESOS_*` variables (reference 3.1, recorded in
//! `executor-env.json` and `executor-env-checkpoint.json`). Pure: [`ExecutorEnv::from_vars`]
//! reads through a lookup function, so it is tested with tables and never touches the process
//! environment; only [`ExecutorEnv::from_process`] does. A missing or malformed variable is an
//! [`EnvError`] that names it, and the binary stops with that sentence (exit code 2).
//!
//! Must not: log the authentication token, or guess a value Mesos always sets.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fastdata_proto::duration::parse_duration;

/// The agent's `ip:port` (our `POST /api/v1/executor` goes there).
pub const AGENT_ENDPOINT: &str = "MESOS_AGENT_ENDPOINT";
/// `ExecutorInfo.framework_id.value`.
pub const FRAMEWORK_ID: &str = "MESOS_FRAMEWORK_ID";
/// `ExecutorInfo.executor_id.value`.
pub const EXECUTOR_ID: &str = "MESOS_EXECUTOR_ID";
/// The sandbox on the host (deprecated by Mesos, still always set).
pub const DIRECTORY: &str = "MESOS_DIRECTORY";
/// The sandbox as the executor sees it (inside the container).
pub const SANDBOX: &str = "MESOS_SANDBOX";
/// `"1"` when the framework checkpoints (the executor survives an agent restart), else `"0"`.
pub const CHECKPOINT: &str = "MESOS_CHECKPOINT";
/// How long SHUTDOWN may take before the agent kills the executor.
pub const SHUTDOWN_GRACE_PERIOD: &str = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD";
/// With checkpointing: how long to keep trying to reach a restarted agent.
pub const RECOVERY_TIMEOUT: &str = "MESOS_RECOVERY_TIMEOUT";
/// With checkpointing: the longest wait between two re-subscription attempts.
pub const SUBSCRIPTION_BACKOFF_MAX: &str = "MESOS_SUBSCRIPTION_BACKOFF_MAX";
/// With executor authentication: the bearer token for every call (a secret).
pub const AUTHENTICATION_TOKEN: &str = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN";
/// The agent's id (only for logs).
pub const AGENT_ID: &str = "MESOS_SLAVE_ID";

/// A variable that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct EnvError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong with it and what Mesos would have written.
    pub problem: String,
}

impl EnvError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        EnvError {
            variable,
            problem: problem.into(),
        }
    }
}

/// What the executor knows from its environment.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecutorEnv {
    /// `host:port` of the agent.
    pub agent_endpoint: String,
    /// Our framework.
    pub framework_id: String,
    /// Our own id.
    pub executor_id: String,
    /// The sandbox on the host.
    pub directory: PathBuf,
    /// The sandbox as we see it; relative paths of a task spec start here.
    pub sandbox: PathBuf,
    /// The agent's id, when given (logs only).
    pub agent_id: Option<String>,
    /// How long SHUTDOWN may take.
    pub shutdown_grace_period: Duration,
    /// What to do when the connection to the agent breaks.
    pub recovery: Recovery,
    /// Bearer token for the executor API, if executor authentication is on.
    pub authentication_token: Option<String>,
}

impl fmt::Debug for ExecutorEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token never reaches a log line.
        f.debug_struct("ExecutorEnv")
            .field("agent_endpoint", &self.agent_endpoint)
            .field("framework_id", &self.framework_id)
            .field("executor_id", &self.executor_id)
            .field("directory", &self.directory)
            .field("sandbox", &self.sandbox)
            .field("agent_id", &self.agent_id)
            .field("shutdown_grace_period", &self.shutdown_grace_period)
            .field("recovery", &self.recovery)
            .field(
                "authentication_token",
                &self.authentication_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The agent-restart policy, from `MESOS_CHECKPOINT` (reference 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The framework checkpoints: on a broken connection keep re-subscribing at random
    /// intervals up to `backoff_max`, and give up after `timeout`.
    Checkpointed {
        /// `MESOS_RECOVERY_TIMEOUT`.
        timeout: Duration,
        /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`.
        backoff_max: Duration,
    },
    /// No checkpointing: the executor dies with the agent, so a broken connection means
    /// shutting the workloads down and exiting.
    Exit,
}

impl ExecutorEnv {
    /// Reads the process environment.
    pub fn from_process() -> Result<ExecutorEnv, EnvError> {
        ExecutorEnv::from_vars(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into()))
    }

    /// Reads the variables through `lookup` (`None`: not set).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<ExecutorEnv, EnvError> {
        let required = |name: &'static str| {
            lookup(name).ok_or_else(|| {
                EnvError::new(
                    name,
                    "not set; fastdata-executor is started by a Mesos agent, which sets it",
                )
            })
        };
        let agent_endpoint = parse_endpoint(&required(AGENT_ENDPOINT)?)?;
        let framework_id = non_empty(FRAMEWORK_ID, required(FRAMEWORK_ID)?)?;
        let executor_id = non_empty(EXECUTOR_ID, required(EXECUTOR_ID)?)?;
        let directory = absolute_path(DIRECTORY, required(DIRECTORY)?)?;
        let sandbox = absolute_path(SANDBOX, required(SANDBOX)?)?;
        let checkpoint = match required(CHECKPOINT)?.as_str() {
            "1" => true,
            "0" => false,
            other => {
                return Err(EnvError::new(
                    CHECKPOINT,
                    format!("{other:?} is neither \"1\" nor \"0\""),
                ));
            }
        };
        let shutdown_grace_period =
            duration(SHUTDOWN_GRACE_PERIOD, &required(SHUTDOWN_GRACE_PERIOD)?)?;
        let recovery = if checkpoint {
            let timeout = duration(RECOVERY_TIMEOUT, &required(RECOVERY_TIMEOUT)?)?;
            let backoff_max = duration(
                SUBSCRIPTION_BACKOFF_MAX,
                &required(SUBSCRIPTION_BACKOFF_MAX)?,
            )?;
            if backoff_max.is_zero() {
                return Err(EnvError::new(
                    SUBSCRIPTION_BACKOFF_MAX,
                    "0 leaves no time between attempts; Mesos writes e.g. 2secs",
                ));
            }
            Recovery::Checkpointed {
                timeout,
                backoff_max,
            }
        } else {
            Recovery::Exit
        };
        let authentication_token = match lookup(AUTHENTICATION_TOKEN) {
            Some(token) if token.trim().is_empty() => {
                return Err(EnvError::new(AUTHENTICATION_TOKEN, "set but empty"));
            }
            token => token,
        };
        Ok(ExecutorEnv {
            agent_endpoint,
            framework_id,
            executor_id,
            directory,
            sandbox,
            agent_id: lookup(AGENT_ID).filter(|a| !a.is_empty()),
            shutdown_grace_period,
            recovery,
            authentication_token,
        })
    }

    /// `http://<agent>/api/v1/executor` (reference 1.1).
    pub fn executor_api_url(&self) -> String {
        format!("http://{}/api/v1/executor", self.agent_endpoint)
    }
}

fn non_empty(variable: &'static str, value: String) -> Result<String, EnvError> {
    if value.trim().is_empty() {
        Err(EnvError::new(variable, "set but empty"))
    } else {
        Ok(value)
    }
}

fn absolute_path(variable: &'static str, value: String) -> Result<PathBuf, EnvError> {
    let path = PathBuf::from(non_empty(variable, value)?);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(EnvError::new(
            variable,
            format!(
                "{:?} is not an absolute path; the agent sets the sandbox's full path",
                path.display().to_string()
            ),
        ))
    }
}

fn duration(variable: &'static str, value: &str) -> Result<Duration, EnvError> {
    parse_duration(value).map_err(|e| EnvError::new(variable, e))
}

/// `ip:port` or `host:port` with a numeric port, as the agent's libprocess address is
/// written.
fn parse_endpoint(value: &str) -> Result<String, EnvError> {
    let value = value.trim();
    let problem = || {
        EnvError::new(
            AGENT_ENDPOINT,
            format!("{value:?} is not host:port (the agent's address, e.g. 127.0.0.1:5051)"),
        )
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return if addr.port() == 0 {
            Err(problem())
        } else {
            Ok(value.to_owned())
        };
    }
    let (host, port) = value.rsplit_once(':').ok_or_else(problem)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(problem());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// `executor-env.json` and `executor-env-checkpoint.json` as recorded from a real agent.
    fn recorded(checkpoint: bool) -> HashMap<String, String> {
        let file = if checkpoint {
            "executor-env-checkpoint.json"
        } else {
            "executor-env.json"
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../proto/tests/data/mesos-transcripts")
            .join(file);
        let text = std::fs::read_to_string(path).expect("recorded environment");
        let map: HashMap<String, String> = serde_json::from_str(&text).expect("JSON");
        // The recording replaced the agent's work_dir prefix with a placeholder.
        map.into_iter()
            .map(|(k, v)| (k, v.replace("<work_dir>", "/var/lib/mesos")))
            .collect()
    }

    fn read(vars: &HashMap<String, String>) -> Result<ExecutorEnv, EnvError> {
        ExecutorEnv::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn reads_the_recorded_environments() {
        let plain = read(&recorded(false)).unwrap();
        assert_eq!(plain.agent_endpoint, "127.0.0.1:5051");
        assert_eq!(plain.executor_id, "fdx-custom-executor");
        assert_eq!(
            plain.framework_id,
            "0b7730e5-9ad7-43dc-8238-dfd1185d5a85-0000"
        );
        assert_eq!(plain.recovery, Recovery::Exit);
        assert_eq!(plain.shutdown_grace_period, Duration::from_secs(5));
        assert!(plain.sandbox.starts_with("/var/lib/mesos/slaves/"));
        assert_eq!(plain.sandbox, plain.directory);
        assert_eq!(
            plain.agent_id.as_deref(),
            Some("0b7730e5-9ad7-43dc-8238-dfd1185d5a85-S0")
        );
        assert_eq!(
            plain.executor_api_url(),
            "http://127.0.0.1:5051/api/v1/executor"
        );

        let checkpointed = read(&recorded(true)).unwrap();
        assert_eq!(
            checkpointed.recovery,
            Recovery::Checkpointed {
                timeout: Duration::from_secs(15 * 60),
                backoff_max: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn every_bad_variable_is_named() {
        // (variable, value or None for "unset", checkpointing?, words the problem contains)
        let cases: &[(&str, Option<&str>, bool, &str)] = &[
            (AGENT_ENDPOINT, None, false, "not set"),
            (AGENT_ENDPOINT, Some("localhost"), false, "host:port"),
            (AGENT_ENDPOINT, Some("127.0.0.1:http"), false, "host:port"),
            (AGENT_ENDPOINT, Some("127.0.0.1:0"), false, "host:port"),
            (
                AGENT_ENDPOINT,
                Some("http://127.0.0.1:5051"),
                false,
                "host:port",
            ),
            (FRAMEWORK_ID, None, false, "not set"),
            (FRAMEWORK_ID, Some(""), false, "empty"),
            (EXECUTOR_ID, None, false, "not set"),
            (EXECUTOR_ID, Some("  "), false, "empty"),
            (DIRECTORY, None, false, "not set"),
            (SANDBOX, None, false, "not set"),
            (SANDBOX, Some("runs/latest"), false, "absolute"),
            (CHECKPOINT, None, false, "not set"),
            (CHECKPOINT, Some("true"), false, "neither"),
            (CHECKPOINT, Some(""), false, "neither"),
            (SHUTDOWN_GRACE_PERIOD, None, false, "not set"),
            (SHUTDOWN_GRACE_PERIOD, Some("5 parsecs"), false, "unit"),
            (SHUTDOWN_GRACE_PERIOD, Some("soon"), false, "not a duration"),
            (RECOVERY_TIMEOUT, None, true, "not set"),
            (RECOVERY_TIMEOUT, Some("-1secs"), true, "not a duration"),
            (SUBSCRIPTION_BACKOFF_MAX, None, true, "not set"),
            (
                SUBSCRIPTION_BACKOFF_MAX,
                Some("0secs"),
                true,
                "0 leaves no time",
            ),
            (AUTHENTICATION_TOKEN, Some(""), false, "empty"),
        ];
        for (variable, value, checkpoint, words) in cases {
            let mut vars = recorded(*checkpoint);
            match value {
                Some(v) => vars.insert((*variable).to_owned(), (*v).to_owned()),
                None => vars.remove(*variable),
            };
            let err = read(&vars).expect_err(&format!("{variable}={value:?}"));
            assert_eq!(err.variable, *variable, "{err}");
            assert!(
                err.to_string().starts_with(variable) && err.problem.contains(words),
                "{variable}={value:?}: {err}"
            );
        }
    }

    #[test]
    fn durations_in_every_stout_unit() {
        for (text, want) in [
            ("5secs", Duration::from_secs(5)),
            ("1500ms", Duration::from_millis(1500)),
            ("15mins", Duration::from_secs(900)),
            ("2hrs", Duration::from_secs(7200)),
            ("1days", Duration::from_secs(86_400)),
            ("1weeks", Duration::from_secs(604_800)),
            ("250us", Duration::from_micros(250)),
            ("1.0005secs", Duration::from_micros(1_000_500)),
        ] {
            let mut vars = recorded(false);
            vars.insert(SHUTDOWN_GRACE_PERIOD.into(), text.into());
            let env = read(&vars).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(env.shutdown_grace_period.abs_diff(want) < Duration::from_nanos(2));
        }
    }

    #[test]
    fn checkpoint_variables_are_only_needed_with_checkpointing() {
        let mut vars = recorded(false);
        vars.insert(RECOVERY_TIMEOUT.into(), "garbage".into());
        assert_eq!(read(&vars).unwrap().recovery, Recovery::Exit);
    }

    #[test]
    fn the_token_is_kept_but_never_printed() {
        let mut vars = recorded(false);
        vars.insert(AUTHENTICATION_TOKEN.into(), "s3cret-token".into());
        let env = read(&vars).unwrap();
        assert_eq!(env.authentication_token.as_deref(), Some("s3cret-token"));
        assert!(!format!("{env:?}").contains("s3cret"));
    }
}
