//! The Cassandra check: the original system's "tester", done right.
//!
//! Every interval (3 s by default) it writes one reading for one sensor (a random walk, with
//! the time taken now and `seq` counting up) into the readings table of its own keyspace
//! (default `fastdata_check`, so the check never mixes with real sensors), then reads back
//! that sensor's newest readings with a real partition-key query (today's partition, and
//! yesterday's if today has fewer than asked, so the answer stays right across midnight).
//! While Cassandra is unreachable it says so and retries every interval, reconnecting as
//! needed. Each round's outcome goes to the `on_round` callback and the log.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior};

use crate::cassandra::{self, CassandraConfig, CassandraError, ReadingsTable};
use crate::event::SensorReading;

/// What the check needs.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Where to write (keyspace default `fastdata_check`).
    pub cassandra: CassandraConfig,
    /// The sensor the check writes as.
    pub sensor_id: String,
    /// Time between rounds.
    pub interval: Duration,
    /// How many newest readings to read back.
    pub read_back: u16,
    /// Stop after this many successful rounds (`None`: until shutdown).
    pub rounds: Option<u64>,
}

impl CheckConfig {
    /// Defaults: keyspace `fastdata_check`, sensor `check-sensor`, every 3 s, 10 readings.
    pub fn new(contact_points: Vec<String>) -> Self {
        let mut cassandra = CassandraConfig::new(contact_points);
        cassandra.keyspace = "fastdata_check".to_owned();
        CheckConfig {
            cassandra,
            sensor_id: "check-sensor".to_owned(),
            interval: Duration::from_secs(3),
            read_back: 10,
            rounds: None,
        }
    }

    /// Checks what can be checked without a connection.
    pub fn validate(&self) -> Result<(), CheckError> {
        self.cassandra.validate().map_err(CheckError::Config)?;
        if self.sensor_id.is_empty() {
            return Err(CheckError::Config("--sensor-id must not be empty".into()));
        }
        if self.interval.is_zero() {
            return Err(CheckError::Config(
                "--interval must be longer than zero".into(),
            ));
        }
        if self.read_back == 0 {
            return Err(CheckError::Config("--read-back must be at least 1".into()));
        }
        if self.rounds == Some(0) {
            return Err(CheckError::Config("--rounds must be at least 1".into()));
        }
        Ok(())
    }
}

/// What went wrong (unreachable Cassandra is not an error: the check retries).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The configuration cannot work; the text says what to change.
    #[error("{0}")]
    Config(String),
}

/// One round's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckRound {
    /// Written and read back.
    Ok {
        /// What was written.
        written: SensorReading,
        /// The sensor's newest readings, newest first.
        newest: Vec<SensorReading>,
        /// Whether `written` was among them (it must be).
        found_written: bool,
        /// Time for the write and the read(s).
        took: Duration,
    },
    /// Cassandra could not be reached or a request failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// What a finished check did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Rounds that wrote and read back their reading.
    pub ok_rounds: u64,
    /// Rounds that failed.
    pub failed_rounds: u64,
    /// The last successful read-back.
    pub last_newest: Vec<SensorReading>,
}

/// Runs rounds until `shutdown` completes or `rounds` succeeded.
pub async fn run(
    config: CheckConfig,
    mut on_round: impl FnMut(&CheckRound),
    shutdown: impl Future<Output = ()>,
) -> Result<CheckReport, CheckError> {
    config.validate()?;
    tokio::pin!(shutdown);
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let mut temperature: f64 = 70.0;
    let mut seq = Utc::now().timestamp_micros();
    let mut table: Option<Arc<ReadingsTable>> = None;
    let mut report = CheckReport::default();
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        temperature = (temperature + rng.random_range(-1.0..=1.0)).clamp(40.0, 100.0);
        let written = SensorReading {
            sensor_id: config.sensor_id.clone(),
            temperature: (temperature * 100.0).round() / 100.0,
            event_time: now_millis(),
            seq,
        };
        let begun = Instant::now();
        let round = tokio::select! {
            biased;
            () = &mut shutdown => break,
            round = one_round(&config, &mut table, &written) => round,
        };
        let round = match round {
            Ok(newest) => {
                seq += 1;
                report.ok_rounds += 1;
                let found_written = newest.contains(&written);
                tracing::info!(
                    sensor = %written.sensor_id, temperature = written.temperature,
                    newest = newest.len(), found_written, took = ?begun.elapsed(),
                    "Cassandra check: wrote a reading and read back the newest"
                );
                report.last_newest.clone_from(&newest);
                CheckRound::Ok {
                    written,
                    newest,
                    found_written,
                    took: begun.elapsed(),
                }
            }
            Err(e) => {
                report.failed_rounds += 1;
                // Reconnect next time: the session may be the problem.
                if matches!(e, CassandraError::Connect { .. }) {
                    table = None;
                }
                tracing::warn!(
                    error = %e,
                    "Cassandra check: could not reach Cassandra; retrying in {:?}",
                    config.interval
                );
                CheckRound::Failed {
                    error: e.to_string(),
                }
            }
        };
        on_round(&round);
        if config.rounds.is_some_and(|n| report.ok_rounds >= n) {
            break;
        }
    }
    Ok(report)
}

async fn one_round(
    config: &CheckConfig,
    table: &mut Option<Arc<ReadingsTable>>,
    written: &SensorReading,
) -> Result<Vec<SensorReading>, CassandraError> {
    let table = match table {
        Some(t) => t.clone(),
        None => {
            let session = cassandra::connect(&config.cassandra).await?;
            cassandra::ensure_schema(
                &session,
                &config.cassandra.keyspace,
                &config.cassandra.replication,
            )
            .await?;
            let t = Arc::new(ReadingsTable::prepare(session, &config.cassandra.keyspace).await?);
            *table = Some(t.clone());
            t
        }
    };
    table.insert(written).await?;
    let limit = i32::from(config.read_back);
    let today = written.day();
    let mut newest = table.newest(&written.sensor_id, today, limit).await?;
    if newest.len() < usize::from(config.read_back)
        && let Some(yesterday) = today.checked_sub_days(Days::new(1))
    {
        let more = limit - newest.len() as i32;
        newest.extend(table.newest(&written.sensor_id, yesterday, more).await?);
    }
    Ok(newest)
}

fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
