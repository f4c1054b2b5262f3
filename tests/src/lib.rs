//! Shared helpers for fastdata's end-to-end tests.
//!
//! Tests run against real Apache Kafka, Cassandra and ZooKeeper started on loopback by
//! `dev/services up` (the README's test command, `dev/test`, does that). Endpoints come from
//! the same environment variables the script prints with `dev/services env`. A test that
//! cannot reach a service fails with a message saying how to start it; it never passes
//! silently.

use std::{
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    time::Duration,
};

/// Where the local services listen.
#[derive(Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub kafka_brokers: String,
    /// Cassandra contact points, `host:port[,host:port]`.
    pub cassandra_contact_points: Vec<String>,
    /// ZooKeeper connect string, `host:port[,host:port]`.
    pub zk_connect: String,
}

impl Services {
    /// Reads the endpoints from `FASTDATA_KAFKA_BROKERS`, `FASTDATA_CASSANDRA_CONTACT_POINTS`
    /// and `FASTDATA_ZK_CONNECT`, defaulting to the ports `dev/services` uses.
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Services {
            kafka_brokers: var("FASTDATA_KAFKA_BROKERS", "127.0.0.1:9092"),
            cassandra_contact_points: var("FASTDATA_CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042")
                .split(',')
                .map(str::to_owned)
                .collect(),
            zk_connect: var("FASTDATA_ZK_CONNECT", "127.0.0.1:2181"),
        }
    }

    /// Like [`Services::from_env`], and panics with instructions unless every service
    /// accepts TCP connections.
    pub fn require() -> Self {
        let services = Self::from_env();
        let checks = [
            (
                "Kafka",
                "FASTDATA_KAFKA_BROKERS",
                services.kafka_brokers.clone(),
            ),
            (
                "Cassandra",
                "FASTDATA_CASSANDRA_CONTACT_POINTS",
                services.cassandra_contact_points.join(","),
            ),
            (
                "ZooKeeper",
                "FASTDATA_ZK_CONNECT",
                services.zk_connect.clone(),
            ),
        ];
        for (name, variable, endpoints) in checks {
            let first = endpoints.split(',').next().unwrap_or_default();
            if !accepts_tcp(first) {
                panic!(
                    "{name} is not reachable at {first} ({variable}). Start the local services with \
                     `dev/services up` (or run the whole suite with `dev/test`), or point {variable} \
                     at a running {name}."
                );
            }
        }
        services
    }
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
