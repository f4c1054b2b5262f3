//! The pure core of the local demo (`dev/demo`, binary `fastdata-demo`): its options and
//! their checks ([`options`]), the load schedule and the rates measured from offsets
//! ([`schedule`]), and the text of the live view and of the summary ([`view`]).
//!
//! Nothing here does I/O or reads a clock: the binary (`src/bin/fastdata-demo.rs`) starts
//! devcluster and the scheduler, polls the scheduler's REST API, changes the producer rate
//! with `PUT /v1/producers`, counts what reached Kafka and Cassandra, and passes what it saw
//! to these functions, with times as durations since the load schedule started.

pub mod options;
pub mod schedule;
pub mod view;
