//! The fastdata workloads: the sensor producer, the Kafka → Cassandra consumer, and the
//! Cassandra check.
//!
//! Each workload is a library the executor runs in-process, and a thin binary in `src/bin/`
//! that runs it alone. They know nothing of Mesos. The shape is the same for each:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use fastdata_workloads::consumer::{ConsumerConfig, SinkConsumer};
//!
//! let config = ConsumerConfig::new("127.0.0.1:9092", vec!["127.0.0.1:9042".into()], "spool");
//! let consumer = SinkConsumer::new(config)?; // validates, no I/O
//! let handle = consumer.handle(); // stats snapshots; `ready()` for TASK_RUNNING
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let run = tokio::spawn(consumer.run(async move {
//!     let _ = stopped.await;
//! }));
//! handle.ready().await?;
//! println!("{:?}", handle.stats());
//! let _ = stop.send(()); // graceful stop within the grace period
//! let report = run.await??;
//! # let _ = report; Ok(()) }
//! ```
//!
//! Modules: [`event`] (the reading and its parsing), [`producer`], [`consumer`],
//! [`cassandra_check`]; the pure pieces they are built from: [`pacing`] (rate control),
//! [`offsets`] (which offset may be stored), [`dead_letter`] (record format and store),
//! [`backoff`], [`window`] (rates and latency percentiles), [`settings`] (parsers); and the
//! I/O shared by the workloads: [`cassandra`] (session, schema, statements) and [`kafka`];
//! [`cli`] is what the binaries share (logging, signals).
//!
//! Tests: pure unit tests next to the code; `tests/` runs the workloads against the real Kafka
//! and Cassandra of `dev/services` (`dev/services up`, then `cargo test -p fastdata-workloads`;
//! a missing service fails the tests with that hint). `tests/cassandra_outage.rs` stops and
//! starts that shared Cassandra, so it is a test binary of its own and takes the Cassandra test
//! lock exclusively. Benchmarks (`benches/`, run with `cargo bench -p fastdata-workloads
//! --bench producer_vs_kafka` or `--bench consumer_vs_baseline`) print our rate, a baseline's
//! rate measured in the same run, and their ratio.

pub mod backoff;
pub mod cassandra;
pub mod cassandra_check;
pub mod cli;
pub mod consumer;
pub mod dead_letter;
pub mod event;
pub mod kafka;
pub mod offsets;
pub mod pacing;
pub mod producer;
pub mod settings;
pub mod window;
