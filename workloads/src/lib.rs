//! The fastdata workloads.
//!
//! Will own: the sensor producer (simulated sensors publishing JSON readings to Kafka at a
//! controlled rate), the consumer (a Kafka consumer group writing readings into Cassandra with
//! at-least-once offsets and a dead-letter store), and the Cassandra check. Knows nothing of
//! Mesos: the executor runs these libraries, and thin binaries run them alone.
