//! What a devcluster is made of: its agents and the timings and flags a Mesos master and
//! agent would take on their command lines.
//!
//! Defaults are Mesos 1.12's defaults (M: src/master/constants.hpp, src/slave/constants.hpp,
//! src/slave/flags.cpp); tests shorten them.

use std::path::PathBuf;
use std::time::Duration;

/// One attribute value of an agent (`--attributes`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A SCALAR attribute.
    Scalar(f64),
    /// A TEXT attribute.
    Text(String),
}

/// One simulated agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// `cpus` resource.
    pub cpus: f64,
    /// `mem` resource, MB.
    pub mem: f64,
    /// `disk` resource, MB.
    pub disk: f64,
    /// `ports` resource, inclusive ranges.
    pub ports: Vec<(u64, u64)>,
    /// Attributes, offered as `Offer.attributes`.
    pub attributes: Vec<(String, AttributeValue)>,
    /// Fault-domain region (`DomainInfo.fault_domain.region.name`).
    pub region: String,
    /// Fault-domain zone; `None` leaves the agent without a `DomainInfo`.
    pub zone: Option<String>,
    /// Docker volume drivers this agent supports (a Mesos agent with the `docker/volume`
    /// isolator and that driver installed). Empty: a task with `DOCKER_VOLUME` fails as in
    /// `volumes.jsonl` ("Volumes in ContainerInfo is not supported").
    pub volume_drivers: Vec<String>,
    /// `AgentInfo.hostname` (Mesos takes it from the host; all agents here are on loopback).
    pub hostname: String,
    /// Port of the agent's own HTTP listener; 0 picks a free one.
    pub port: u16,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            cpus: 4.0,
            mem: 4096.0,
            disk: 10000.0,
            ports: vec![(31000, 32000)],
            attributes: Vec::new(),
            region: "devcluster".into(),
            zone: None,
            volume_drivers: vec!["pxd".into()],
            hostname: "localhost".into(),
            port: 0,
        }
    }
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// The agents, in order (agent `i` gets id `<master id>-S<i>`).
    pub agents: Vec<AgentConfig>,
    /// Port of the master's listener; 0 picks a free one.
    pub master_port: u16,
    /// Also open a second, non-leading master address that redirects to the leader (307) or
    /// answers 503 when no leader is elected.
    pub standby_master: bool,
    /// Root of sandboxes and volume directories; `None` makes a fresh temporary directory.
    pub work_dir: Option<PathBuf>,
    /// `heartbeat_interval_seconds` of SUBSCRIBED and the HEARTBEAT period (Mesos: 15 s,
    /// not configurable there).
    pub heartbeat_interval: Duration,
    /// Allocation period (`--allocation_interval`, 1 s).
    pub allocation_interval: Duration,
    /// First retry of an unacknowledged status update (10 s), doubling up to
    /// `status_update_retry_max` (10 min).
    pub status_update_retry_min: Duration,
    /// Cap of the status update retry interval.
    pub status_update_retry_max: Duration,
    /// Time an executor has to subscribe after it was started (`--executor_registration_timeout`,
    /// 1 min).
    pub executor_registration_timeout: Duration,
    /// `--executor_shutdown_grace_period` (5 s): SHUTDOWN to SIGKILL.
    pub executor_shutdown_grace_period: Duration,
    /// Kill grace period of command tasks without a kill policy (3 s, the command executor's).
    pub default_kill_grace_period: Duration,
    /// HEARTBEAT events to executors (30 min).
    pub executor_heartbeat_interval: Duration,
    /// `--recovery_timeout` (15 min), given to checkpointing executors as
    /// `MESOS_RECOVERY_TIMEOUT`.
    pub recovery_timeout: Duration,
    /// `--executor_reregistration_timeout` (2 s): `MESOS_SUBSCRIPTION_BACKOFF_MAX`, and how
    /// long a restarted agent waits for its executors to re-subscribe.
    pub executor_reregistration_timeout: Duration,
    /// HTTP Basic credentials (principal, secret). Non-empty turns on
    /// `--authenticate_http_frameworks` with the `basic` authenticator.
    pub credentials: Vec<(String, String)>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            agents: vec![AgentConfig::default()],
            master_port: 0,
            standby_master: false,
            work_dir: None,
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_secs(1),
            status_update_retry_min: Duration::from_secs(10),
            status_update_retry_max: Duration::from_secs(600),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            default_kill_grace_period: Duration::from_secs(3),
            executor_heartbeat_interval: Duration::from_secs(30 * 60),
            recovery_timeout: Duration::from_secs(15 * 60),
            executor_reregistration_timeout: Duration::from_secs(2),
            credentials: Vec::new(),
        }
    }
}

impl ClusterConfig {
    /// `n` identical agents with the given resources, zones `zone-0`, `zone-1`, ... (three
    /// zones round-robin) and the `pxd` volume driver.
    pub fn with_agents(n: usize, cpus: f64, mem: f64) -> Self {
        ClusterConfig {
            agents: (0..n)
                .map(|i| AgentConfig {
                    cpus,
                    mem,
                    zone: Some(format!("zone-{}", i % 3)),
                    ..AgentConfig::default()
                })
                .collect(),
            ..ClusterConfig::default()
        }
    }

    /// Timings short enough for tests that run in seconds: 1 s heartbeats, 100 ms allocation,
    /// 500 ms status update retries, 1 s kill grace.
    pub fn fast(mut self) -> Self {
        self.heartbeat_interval = Duration::from_secs(1);
        self.allocation_interval = Duration::from_millis(100);
        self.status_update_retry_min = Duration::from_millis(500);
        self.status_update_retry_max = Duration::from_secs(2);
        self.executor_registration_timeout = Duration::from_secs(10);
        self.executor_shutdown_grace_period = Duration::from_secs(1);
        self.default_kill_grace_period = Duration::from_secs(1);
        self.executor_reregistration_timeout = Duration::from_secs(1);
        self
    }
}

/// A stout `Duration` string as the agent writes it into executor environments (reference
/// 1.4): the largest unit that divides the value, else a fraction (`5secs`, `15mins`,
/// `1500ms`).
pub fn stout_duration(d: Duration) -> String {
    const UNITS: [(u128, &str); 8] = [
        (7 * 24 * 3_600_000_000_000, "weeks"),
        (24 * 3_600_000_000_000, "days"),
        (3_600_000_000_000, "hrs"),
        (60_000_000_000, "mins"),
        (1_000_000_000, "secs"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let ns = d.as_nanos();
    if ns == 0 {
        return "0ns".into();
    }
    for (i, (unit, name)) in UNITS.iter().enumerate() {
        if ns >= *unit {
            if ns.is_multiple_of(*unit) {
                return format!("{}{name}", ns / unit);
            }
            if let Some((smaller, smaller_name)) = UNITS.get(i + 1)
                && ns.is_multiple_of(*smaller)
            {
                return format!("{}{smaller_name}", ns / smaller);
            }
            return format!("{}{name}", ns as f64 / *unit as f64);
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stout_durations_as_recorded() {
        assert_eq!(stout_duration(Duration::from_secs(5)), "5secs");
        assert_eq!(stout_duration(Duration::from_secs(15 * 60)), "15mins");
        assert_eq!(stout_duration(Duration::from_secs(2)), "2secs");
        assert_eq!(stout_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(stout_duration(Duration::from_secs(90)), "90secs");
        assert_eq!(
            stout_duration(Duration::from_micros(1_000_500)),
            "1.0005secs"
        );
    }
}
