//! The fastdata framework scheduler (binary `fastdata-scheduler`).
//!
//! It subscribes to Mesos through the v1 HTTP scheduler API, watches the consumer group's lag,
//! and launches or kills consumer tasks itself, each on a dynamically reserved share of an agent
//! with a Portworx-backed volume; it survives its own restarts and the master's. The parts:
//!
//! - [`config`]: flags and environment (DC/OS SDK names where they exist), checked all at once.
//! - [`lag`]: the Kafka lag monitor: per-partition lag, backlog, rates, seconds behind and a
//!   Burrow-style status, every second, in a constant number of round trips per broker.
//! - [`policy`]: the scaling policy, a pure `decide(input, config, state, now) -> Decision`
//!   (`step`, the original +1/-1 rule, and `proportional`, the default), its guards, the
//!   validated [`policy::ScalingConfig`] and the bounded decision log.
//! - [`mesos`]: the Mesos v1 HTTP scheduler client: subscription state machine, leader
//!   following (307), heartbeat watchdog, HTTP Basic and DC/OS service-account authentication.
//! - [`state`]: the framework's state in ZooKeeper under `/dcos-service-<name>` (framework id,
//!   lock, thresholds, slots, decisions), with versioned writes.
//! - [`framework`]: consumer and producer slots: the pure lifecycle core and offer matcher, and
//!   [`framework::run::run`], the loop that ties everything together.
//! - [`status`] and [`api`]: the snapshot the loop publishes, the REST API (with the DC/OS SDK
//!   endpoints, OpenAPI document and status page) and the gRPC control API.
//!
//! The lag monitor and the policy never call the Mesos client: the run loop feeds them and
//! carries out what they decide. It meets the executor only through Mesos (task specs in
//! `TaskInfo.data`, stats reports in executor messages).

pub mod api;
pub mod config;
pub mod framework;
pub mod lag;
pub mod mesos;
pub mod policy;
pub mod state;
pub mod status;
