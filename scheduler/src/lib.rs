//! The fastdata framework scheduler.
//!
//! Built so far:
//!
//! - [`lag`]: the Kafka lag monitor. Reads, every second, the group's committed offset and
//!   the log-end offset of every partition in a constant number of round trips per broker,
//!   and publishes a [`lag::LagObservation`] (lag, backlog, rates, seconds behind,
//!   Burrow-style status) on a `watch` channel.
//! - [`policy`]: the scaling policy, a pure `decide(input, config, state, now) -> Decision`
//!   with the original `step` rule and the default `proportional` (DS2-style) sizing, the
//!   guards both share, the validated [`policy::ScalingConfig`], the bounded decision audit
//!   log, and a closed-loop simulation that compares the two modes.
//!
//! Will own: the Mesos v1 HTTP scheduler client (subscription state machine, leader
//! following, heartbeat watchdog), the offer matcher (a pure `plan(offers, demand) ->
//! Vec<Operation>`), the consumer-slot lifecycle with reservations and Portworx volumes,
//! framework state in ZooKeeper, and the REST and gRPC APIs.
//!
//! The lag monitor and the policy never call the Mesos client: the reconcile loop feeds them
//! and carries out what they decide. Talks to the executor only through Mesos.

pub mod api;
pub mod config;
pub mod framework;
pub mod lag;
pub mod mesos;
pub mod policy;
pub mod state;
pub mod status;
