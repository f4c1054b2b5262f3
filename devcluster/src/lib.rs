//! devcluster: a Mesos master and N agents in one process, on loopback.
//!
//! Will own: the master side of `POST /api/v1/scheduler` (subscriptions, offers, operations,
//! status updates, reconciliation, failover) and the agent side of `POST /api/v1/executor`
//! (executors as local processes with the environment a Mesos agent gives them, `pxd` volumes
//! as directories that outlive tasks), fault injection, and a JSON state endpoint. It follows
//! the Mesos reference and the recorded real-Mesos exchanges, and shares only the proto crate
//! with the framework.
