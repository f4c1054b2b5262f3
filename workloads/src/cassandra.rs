//! The Cassandra side shared by the consumer and the check: one session, the schema, and the
//! prepared statements of the readings table.
//!
//! Owns the CQL text. Keyspace names are validated identifiers (DDL cannot bind names); every
//! value goes through a prepared statement, marked idempotent: writing a reading twice
//! writes the same cells. Retries are left to the callers (the consumer's backoff), so the
//! driver's own retry policy is set to fall through and every failure is seen and counted.
//!
//! The table, newest first within a sensor's day:
//!
//! ```text
//! CREATE TABLE <keyspace>.temperature_by_day (
//!     sensor_id text, day date, event_time timestamp, seq bigint, temperature double,
//!     PRIMARY KEY ((sensor_id, day), event_time, seq)
//! ) WITH CLUSTERING ORDER BY (event_time DESC, seq DESC)
//! ```
//!
//! `event_time` is a CQL `timestamp`, so it keeps milliseconds; `seq` tells apart readings of
//! the same sensor within one millisecond (the original truncated to whole seconds and lost
//! such readings).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use scylla::client::PoolSize;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;

use crate::event::SensorReading;
use crate::settings::{Replication, check_cql_identifier};

/// The table every reading goes to.
pub const TABLE: &str = "temperature_by_day";

/// How to reach Cassandra and where the readings live.
#[derive(Clone)]
pub struct CassandraConfig {
    /// `host:port` contact points; the driver discovers the rest of the ring.
    pub contact_points: Vec<String>,
    /// Keyspace of the readings table, created if missing.
    pub keyspace: String,
    /// Replication of the keyspace when this creates it (an existing keyspace is left as is).
    pub replication: Replication,
    /// Consistency of reads and writes.
    pub consistency: Consistency,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one request may take before it counts as failed.
    pub request_timeout: Duration,
    /// Plain-text authentication, if the cluster requires it.
    pub credentials: Option<(String, String)>,
    /// The data center requests go to first (`LOCAL_QUORUM` then counts its replicas);
    /// `None`: any, as the driver finds them.
    pub local_dc: Option<String>,
}

impl std::fmt::Debug for CassandraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("CassandraConfig")
            .field("contact_points", &self.contact_points)
            .field("keyspace", &self.keyspace)
            .field("replication", &self.replication)
            .field("consistency", &self.consistency)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("local_dc", &self.local_dc)
            .finish()
    }
}

impl CassandraConfig {
    /// Defaults for the given contact points: keyspace `sensors`, replication 1, LOCAL_QUORUM,
    /// 5 s to connect, 10 s per request.
    pub fn new(contact_points: Vec<String>) -> Self {
        CassandraConfig {
            contact_points,
            keyspace: "sensors".to_owned(),
            replication: Replication::default(),
            consistency: Consistency::LocalQuorum,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            credentials: None,
            local_dc: None,
        }
    }

    /// Checks what can be checked without a connection.
    pub fn validate(&self) -> Result<(), String> {
        if self.contact_points.is_empty() {
            return Err(
                "no Cassandra contact points; set --cassandra-contact-points (e.g. 127.0.0.1:9042)"
                    .to_owned(),
            );
        }
        check_cql_identifier("keyspace", &self.keyspace)?;
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("Cassandra timeouts must be longer than zero".to_owned());
        }
        Ok(())
    }
}

/// What went wrong talking to Cassandra. The driver's errors are boxed: they are large and
/// this error travels through every write's result.
#[derive(Debug, thiserror::Error)]
pub enum CassandraError {
    /// No contact point answered.
    #[error(
        "Cassandra at {contact_points} unreachable: {source}; check the contact points and that Cassandra is up"
    )]
    Connect {
        /// The contact points tried.
        contact_points: String,
        /// The driver's error.
        #[source]
        source: Box<scylla::errors::NewSessionError>,
    },
    /// Creating the keyspace or table failed.
    #[error("creating {what} failed: {source}")]
    Schema {
        /// `keyspace x` or `table x.y`.
        what: String,
        /// The driver's error.
        #[source]
        source: Box<scylla::errors::ExecutionError>,
    },
    /// The nodes did not agree on the schema in time.
    #[error("Cassandra nodes did not agree on the schema: {0}")]
    SchemaAgreement(#[source] Box<scylla::errors::SchemaAgreementError>),
    /// Preparing a statement failed.
    #[error("preparing a statement failed: {0}")]
    Prepare(#[source] Box<scylla::errors::PrepareError>),
    /// A write or read request failed (unavailable, timed out, connection lost, ...).
    #[error("Cassandra request failed: {0}")]
    Request(#[source] Box<scylla::errors::ExecutionError>),
    /// Paging through a result failed.
    #[error("Cassandra paged read failed: {0}")]
    Paging(#[source] Box<scylla::errors::PagerExecutionError>),
    /// A result did not have the expected rows.
    #[error("unexpected Cassandra result: {0}")]
    Result(String),
}

impl From<scylla::errors::SchemaAgreementError> for CassandraError {
    fn from(e: scylla::errors::SchemaAgreementError) -> Self {
        CassandraError::SchemaAgreement(Box::new(e))
    }
}

impl From<scylla::errors::PrepareError> for CassandraError {
    fn from(e: scylla::errors::PrepareError) -> Self {
        CassandraError::Prepare(Box::new(e))
    }
}

impl From<scylla::errors::ExecutionError> for CassandraError {
    fn from(e: scylla::errors::ExecutionError) -> Self {
        CassandraError::Request(Box::new(e))
    }
}

impl From<scylla::errors::PagerExecutionError> for CassandraError {
    fn from(e: scylla::errors::PagerExecutionError) -> Self {
        CassandraError::Paging(Box::new(e))
    }
}

/// Opens one session (share it: it is a connection pool with cluster metadata).
pub async fn connect(config: &CassandraConfig) -> Result<Arc<Session>, CassandraError> {
    let mut profile = ExecutionProfile::builder()
        .consistency(config.consistency)
        .request_timeout(Some(config.request_timeout))
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()));
    if let Some(dc) = &config.local_dc {
        profile = profile.load_balancing_policy(
            DefaultPolicy::builder()
                .prefer_datacenter(dc.clone())
                .build(),
        );
    }
    let profile = profile.build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.contact_points)
        .connection_timeout(config.connect_timeout)
        // Two connections per node: writes keep flowing while one is being re-established.
        .pool_size(PoolSize::PerHost(
            std::num::NonZeroUsize::new(2).expect("2 > 0"),
        ))
        .default_execution_profile_handle(profile.into_handle());
    if let Some((user, password)) = &config.credentials {
        builder = builder.user(user, password);
    }
    builder
        .build()
        .await
        .map(Arc::new)
        .map_err(|source| CassandraError::Connect {
            contact_points: config.contact_points.join(","),
            source: Box::new(source),
        })
}

/// Creates the keyspace and the readings table if they are missing and waits for schema
/// agreement (two consumers starting at once may both try; `IF NOT EXISTS` makes that safe).
pub async fn ensure_schema(
    session: &Session,
    keyspace: &str,
    replication: &Replication,
) -> Result<(), CassandraError> {
    check_cql_identifier("keyspace", keyspace).map_err(CassandraError::Result)?;
    let create_keyspace = format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
        replication.to_cql()
    );
    session
        .query_unpaged(create_keyspace, ())
        .await
        .map_err(|source| CassandraError::Schema {
            what: format!("keyspace {keyspace}"),
            source: Box::new(source),
        })?;
    let create_table = format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{TABLE} (\
             sensor_id text, day date, event_time timestamp, seq bigint, temperature double, \
             PRIMARY KEY ((sensor_id, day), event_time, seq)\
         ) WITH CLUSTERING ORDER BY (event_time DESC, seq DESC)"
    );
    session
        .query_unpaged(create_table, ())
        .await
        .map_err(|source| CassandraError::Schema {
            what: format!("table {keyspace}.{TABLE}"),
            source: Box::new(source),
        })?;
    session.await_schema_agreement().await?;
    Ok(())
}

/// The readings table with its prepared statements.
#[derive(Debug, Clone)]
pub struct ReadingsTable {
    session: Arc<Session>,
    insert: PreparedStatement,
    newest: PreparedStatement,
}

/// One row of the readings table.
pub type ReadingRow = (String, NaiveDate, DateTime<Utc>, i64, f64);

impl ReadingsTable {
    /// Prepares the statements (once per process).
    pub async fn prepare(session: Arc<Session>, keyspace: &str) -> Result<Self, CassandraError> {
        check_cql_identifier("keyspace", keyspace).map_err(CassandraError::Result)?;
        let mut insert = session
            .prepare(format!(
                "INSERT INTO {keyspace}.{TABLE} (sensor_id, day, event_time, seq, temperature) \
                 VALUES (?, ?, ?, ?, ?)"
            ))
            .await?;
        // The same reading always writes the same cells: safe to retry and to replay.
        insert.set_is_idempotent(true);
        let mut newest = session
            .prepare(format!(
                "SELECT sensor_id, day, event_time, seq, temperature FROM {keyspace}.{TABLE} \
                 WHERE sensor_id = ? AND day = ? LIMIT ?"
            ))
            .await?;
        newest.set_is_idempotent(true);
        Ok(ReadingsTable {
            session,
            insert,
            newest,
        })
    }

    /// The session the statements run on.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Writes one reading.
    pub async fn insert(&self, reading: &SensorReading) -> Result<(), CassandraError> {
        self.session
            .execute_unpaged(
                &self.insert,
                (
                    &reading.sensor_id,
                    reading.day(),
                    reading.event_time,
                    reading.seq,
                    reading.temperature,
                ),
            )
            .await?;
        Ok(())
    }

    /// The newest `limit` readings of a sensor on one UTC day (one partition), newest first.
    pub async fn newest(
        &self,
        sensor_id: &str,
        day: NaiveDate,
        limit: i32,
    ) -> Result<Vec<SensorReading>, CassandraError> {
        let result = self
            .session
            .execute_unpaged(&self.newest, (sensor_id, day, limit))
            .await?;
        let rows = result
            .into_rows_result()
            .map_err(|e| CassandraError::Result(e.to_string()))?;
        let typed = rows
            .rows::<ReadingRow>()
            .map_err(|e| CassandraError::Result(e.to_string()))?;
        typed
            .map(|row| {
                row.map(row_to_reading)
                    .map_err(|e| CassandraError::Result(e.to_string()))
            })
            .collect()
    }
}

/// A table row as a reading.
pub fn row_to_reading(
    (sensor_id, _day, event_time, seq, temperature): ReadingRow,
) -> SensorReading {
    SensorReading {
        sensor_id,
        temperature,
        event_time,
        seq,
    }
}

/// Parses a consistency level written as in CQL (`local_quorum`, `QUORUM`, `one`, ...).
pub fn parse_consistency(text: &str) -> Result<Consistency, String> {
    let level = match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        _ => {
            return Err(format!(
                "{text:?} is not a consistency level; use one, quorum, local_quorum, each_quorum, local_one, two, three, all or any"
            ));
        }
    };
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_levels() {
        assert_eq!(
            parse_consistency("LOCAL_QUORUM"),
            Ok(Consistency::LocalQuorum)
        );
        assert_eq!(parse_consistency("local-one"), Ok(Consistency::LocalOne));
        assert_eq!(parse_consistency("quorum"), Ok(Consistency::Quorum));
        assert!(parse_consistency("most").is_err());
    }

    #[test]
    fn password_never_printed() {
        let mut config = CassandraConfig::new(vec!["c:9042".into()]);
        config.credentials = Some(("app".into(), "s3cret".into()));
        let printed = format!("{config:?}");
        assert!(
            printed.contains("app") && !printed.contains("s3cret"),
            "{printed}"
        );
    }
}
