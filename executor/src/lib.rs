//! The fastdata executor.
//!
//! Will own: the Mesos v1 HTTP executor client (SUBSCRIBE, UPDATE with fresh UUIDs kept until
//! ACKNOWLEDGED and re-sent on re-subscribe, MESSAGE, disconnection and recovery as the agent
//! environment says), reading the task's configuration, and running one workload per task from
//! `fastdata-workloads` with graceful KILL and SHUTDOWN. It meets the scheduler only through
//! Mesos.
