//! Shared helpers for fastdata's end-to-end tests.
//!
//! Tests run against real Apache Kafka, Cassandra and ZooKeeper started on loopback by
//! `dev/services up` (the README's test command, `dev/test`, does that). Endpoints come from
//! the same environment variables the script prints with `dev/services env`. A test that
//! cannot reach a service fails with a message saying how to start it; it never passes
//! silently.
//!
//! The crate also holds the local demo (`dev/demo`): its pure core in [`demo`], its I/O in the
//! `fastdata-demo` binary, which reuses these helpers.

pub mod bare_driver;
pub mod binaries;
pub mod cluster;
pub mod demo;
pub mod kafka;
pub mod pipeline;
pub mod procfs;
pub mod scheduler;

use std::{
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    time::Duration,
};

/// One of the real services the end-to-end tests use.
#[derive(Debug, Clone, Copy)]
enum Service {
    Kafka,
    Cassandra,
    ZooKeeper,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Kafka => "Kafka",
            Service::Cassandra => "Cassandra",
            Service::ZooKeeper => "ZooKeeper",
        }
    }

    /// The variable `dev/services env` sets, and the default matching its default ports.
    fn variable(self) -> (&'static str, &'static str) {
        match self {
            Service::Kafka => ("FASTDATA_KAFKA_BROKERS", "127.0.0.1:9092"),
            Service::Cassandra => ("FASTDATA_CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042"),
            Service::ZooKeeper => ("FASTDATA_ZK_CONNECT", "127.0.0.1:2181"),
        }
    }

    /// The endpoints (`host:port,...`), after checking the first accepts TCP connections;
    /// panics with instructions otherwise.
    fn require(self) -> String {
        let (variable, default) = self.variable();
        let endpoints = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
        let first = endpoints.split(',').next().unwrap_or_default();
        assert!(
            accepts_tcp(first),
            "{name} is not reachable at {first} ({variable}). Start the local services with \
             `dev/services up` (or run the whole suite with `dev/test`), or point {variable} at a \
             running {name}.",
            name = self.name()
        );
        endpoints
    }
}

/// Kafka bootstrap servers of a reachable Kafka (`FASTDATA_KAFKA_BROKERS`).
pub fn kafka_brokers() -> String {
    Service::Kafka.require()
}

/// Contact points of a reachable Cassandra (`FASTDATA_CASSANDRA_CONTACT_POINTS`).
pub fn cassandra_contact_points() -> Vec<String> {
    Service::Cassandra
        .require()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Connect string of a reachable ZooKeeper (`FASTDATA_ZK_CONNECT`).
pub fn zk_connect() -> String {
    Service::ZooKeeper.require()
}

/// True when `addr` (`host:port`) accepts a TCP connection within two seconds.
pub fn accepts_tcp(addr: &str) -> bool {
    let Ok(mut resolved) = addr.to_socket_addrs() else {
        return false;
    };
    resolved.any(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// A name unique to this test run, for topics, groups, keyspaces and znodes.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
