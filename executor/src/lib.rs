//! The fastdata executor: the program a Mesos agent starts for each fastdata task.
//!
//! It reads the agent's environment ([`env`]), subscribes to the agent over the Mesos v1 HTTP
//! executor API (`POST http://$MESOS_AGENT_ENDPOINT/api/v1/executor`, reference 3), runs the
//! workload named in the task's JSON spec (`TaskInfo.data`, `fastdata_proto::task`) in-process
//! with `fastdata-workloads`, and reports honestly: TASK_STARTING while the workload is set
//! up, TASK_RUNNING when it really runs, TASK_FINISHED / TASK_FAILED with a message saying
//! why, TASK_KILLING then TASK_KILLED on KILL within the kill policy's grace period; stats
//! reports to the scheduler as MESSAGE calls every `stats_interval_ms`. It meets the
//! scheduler only through Mesos.
//!
//! # Shape
//!
//! Pure core, thin shell:
//! - [`env`]: the `MESOS_*` variables, checked (a bad one names itself; exit code 2).
//! - [`calls`]: executor calls and their HTTP requests as values.
//! - [`updates`]: status updates kept until ACKNOWLEDGED and re-sent on re-SUBSCRIBE.
//! - [`connection`]: the subscription state machine (retry and recovery per `MESOS_CHECKPOINT`).
//! - [`plan`]: task spec → workload configuration, with the field at fault on error.
//! - [`report`]: workload numbers → `StatsReport`; terminal messages.
//! - [`lifecycle`]: the state machine that ties them together (`step(input) -> actions`).
//! - [`agent`], [`running`], [`shell`]: the I/O — HTTP to the agent, the workloads, the loop.
//! - [`logging`]: stderr lines that start with the task and executor ids.
//!
//! # What each workload does as a task
//!
//! | workload | TASK_RUNNING when | ends by itself with | on KILL |
//! |---|---|---|---|
//! | `consumer` | it joined its group and reached Cassandra | TASK_FAILED (a consumer only stops when asked) | finishes writes in flight, commits, leaves the group; TASK_KILLED says whether it committed |
//! | `producer` | its topic exists and events go out (at once when started paused, rate 0) | TASK_FAILED | flushes; TASK_KILLED with the acknowledged count |
//! | `cassandra-check` | at once (rounds begin) | TASK_FINISHED after the first round that wrote and read back a reading; TASK_FAILED after 5 failed rounds, 2 s apart, with the last error | stops |
//! | `noop` | at once | never | stops at once |
//!
//! No stats reports are sent for `noop` tasks (nothing to report; the 1,000-slot benchmark
//! stays light). A producer takes `ExecutorCommand::set_rate` from scheduler MESSAGEs; 0
//! pauses it.
//!
//! # Tests
//!
//! Unit tests next to the code (tables, no sockets, no clocks). `tests/environment.rs` runs the
//! binary alone (bad environments, no agent, SIGTERM); `tests/protocol.rs` runs it under
//! devcluster's agent with a small test scheduler (devcluster's own test client); and
//! `tests/services.rs` runs real workloads against the Kafka and Cassandra of `dev/services`
//! (`dev/services up` first; a missing service fails the test with that hint).

pub mod agent;
pub mod calls;
pub mod connection;
pub mod env;
pub mod lifecycle;
pub mod logging;
pub mod plan;
pub mod report;
pub mod running;
pub mod shell;
pub mod updates;

pub use env::{EnvError, ExecutorEnv};
pub use lifecycle::ExitReason;
pub use shell::{RunError, run};
