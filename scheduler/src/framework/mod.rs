//! The framework: consumer and producer slots on the cluster, from the policy's target to
//! Mesos operations, and the run loop that ties the parts together.
//!
//! Pure core first: [`slots`] (what a slot is and what is persisted about it), [`resources`]
//! (reading offers, building reservations), [`matcher`] (which offer gets which slot, and why
//! not), [`tasks`] (TaskInfos), [`core`] (the lifecycle state machine: inputs in, ZooKeeper
//! writes and Mesos calls out). The I/O shell is [`run`]: it feeds the core from the Mesos
//! client, the lag monitor, the APIs and a timer, and carries out what it returns.

pub mod core;
#[cfg(test)]
mod core_tests;
pub mod matcher;
pub mod resources;
pub mod run;
pub mod slots;
pub mod tasks;
