//! The fastdata framework scheduler.
//!
//! Will own: the Mesos v1 HTTP scheduler client (subscription state machine, leader
//! following, heartbeat watchdog), the Kafka lag monitor, the scaling policy (a pure
//! `decide(observation, config, state) -> Decision`), the offer matcher (a pure
//! `plan(offers, demand) -> Vec<Operation>`), the consumer-slot lifecycle with reservations
//! and Portworx volumes, framework state in ZooKeeper, and the REST and gRPC APIs.
//!
//! The lag monitor and the policy never call the Mesos client: the reconcile loop feeds them
//! and carries out what they decide. Talks to the executor only through Mesos.
