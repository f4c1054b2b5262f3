//! The framework's state in ZooKeeper under `/dcos-service-<name>`.
//!
//! Skeleton: implemented in the state-store work.
