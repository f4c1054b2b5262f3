//! The lag monitor task: samples on a tick, feeds the [`LagTracker`], publishes the latest
//! [`LagObservation`] on a `tokio::sync::watch` channel.
//!
//! It owns the tick and the shutdown; it does not decide anything. A failed or late sample is
//! published too, as a stale observation carrying the reason, so that readers see the failure
//! instead of old numbers that look fresh.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::observation::{LagObservation, LagTracker, OffsetSample};
use super::sampler::{KafkaOffsetSampler, SampleError};

/// Where samples come from: Kafka in production ([`KafkaOffsetSampler`]), values in tests.
pub trait OffsetSource: Send + Sync + 'static {
    /// Takes one sample. Must not block the async worker it runs on.
    fn sample(&self) -> impl Future<Output = Result<OffsetSample, SampleError>> + Send;
}

impl OffsetSource for KafkaOffsetSampler {
    fn sample(&self) -> impl Future<Output = Result<OffsetSample, SampleError>> + Send {
        KafkaOffsetSampler::sample(self)
    }
}

/// Tick and timeout of the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Time between samples (default 1 s). A sample slower than this delays the next tick
    /// rather than queueing ticks.
    pub tick: Duration,
    /// Backstop for a sample that never returns (default 15 s); the Kafka sampler has its own,
    /// shorter timeout.
    pub sample_timeout: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            tick: Duration::from_secs(1),
            sample_timeout: Duration::from_secs(15),
        }
    }
}

/// The receiving end: `None` until the first sample finished.
pub type ObservationReceiver = watch::Receiver<Option<Arc<LagObservation>>>;

/// Samples, tracks and publishes; see the module docs.
#[derive(Debug)]
pub struct LagMonitor<S> {
    source: S,
    tracker: LagTracker,
    config: MonitorConfig,
    publish: watch::Sender<Option<Arc<LagObservation>>>,
}

impl<S: OffsetSource> LagMonitor<S> {
    /// A monitor and the receiver its observations go to.
    pub fn new(
        source: S,
        tracker: LagTracker,
        config: MonitorConfig,
    ) -> (LagMonitor<S>, ObservationReceiver) {
        let (publish, receiver) = watch::channel(None);
        (
            LagMonitor {
                source,
                tracker,
                config,
                publish,
            },
            receiver,
        )
    }

    /// Another receiver of the same observations.
    pub fn subscribe(&self) -> ObservationReceiver {
        self.publish.subscribe()
    }

    /// Samples every tick until `shutdown` completes (also while a sample is running).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(self.config.tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let sample = tokio::time::timeout(self.config.sample_timeout, self.source.sample());
            let result = tokio::select! {
                () = &mut shutdown => break,
                result = sample => result,
            };
            let observation = match result {
                Ok(Ok(sample)) => {
                    let was_stale = self.tracker.last().is_some_and(|o| o.stale.is_some());
                    let observation = self.tracker.observe(sample);
                    if was_stale {
                        tracing::info!(total_lag = observation.total_lag, "lag sampling recovered");
                    }
                    observation
                }
                Ok(Err(error)) => self.failed(error.to_string()),
                Err(_) => self.failed(format!(
                    "offset sample did not finish within {:?}",
                    self.config.sample_timeout
                )),
            };
            self.publish.send_replace(Some(Arc::new(observation)));
        }
        tracing::debug!("lag monitor stopped");
    }

    fn failed(&mut self, reason: String) -> LagObservation {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let first = self.tracker.last().is_none_or(|o| o.stale.is_none());
        if first {
            tracing::warn!(error = %reason, "lag sample failed; observations are stale until it recovers");
        } else {
            tracing::debug!(error = %reason, "lag sample failed again");
        }
        self.tracker.observe_failure(now_ms, reason)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::lag::observation::{LagConfig, PartitionOffsets};

    /// Scripted samples: `Ok(end)` yields one partition with that log end; `Err(())` fails;
    /// past the script, it hangs forever.
    #[derive(Debug)]
    struct Script(Mutex<std::collections::VecDeque<Result<i64, ()>>>);

    impl OffsetSource for Script {
        async fn sample(&self) -> Result<OffsetSample, SampleError> {
            let next = self.0.lock().expect("script lock").pop_front();
            match next {
                Some(Ok(end)) => Ok(OffsetSample {
                    at: tokio::time::Instant::now(),
                    at_unix_ms: 0,
                    partitions: vec![PartitionOffsets {
                        partition: 0,
                        committed: Some(0),
                        log_start: 0,
                        log_end: end,
                    }],
                    group: None,
                }),
                Some(Err(())) => Err(SampleError::Busy {
                    brokers: "127.0.0.1:1".into(),
                }),
                None => std::future::pending().await,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_each_tick_marks_failures_and_timeouts_stale() {
        let script = Script(Mutex::new([Ok(10), Ok(20), Err(()), Ok(40)].into()));
        let (monitor, mut rx) = LagMonitor::new(
            script,
            LagTracker::new(LagConfig::default()),
            MonitorConfig {
                tick: Duration::from_secs(1),
                sample_timeout: Duration::from_secs(3),
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(monitor.run(async {
            let _ = stopped.await;
        }));

        let mut seen = Vec::new();
        for _ in 0..5 {
            rx.changed().await.expect("monitor alive");
            let obs = rx.borrow_and_update().clone().expect("published");
            seen.push((
                obs.total_lag,
                obs.stale
                    .as_ref()
                    .map(|s| s.reason.contains("still running")),
                obs.stale.as_ref().map(|s| s.reason.contains("within 3s")),
            ));
        }
        assert_eq!(
            seen,
            vec![
                (10, None, None),
                (20, None, None),
                (20, Some(true), Some(false)),
                (40, None, None),
                (40, Some(false), Some(true)),
            ]
        );
        stop.send(()).expect("monitor waiting");
        task.await.expect("monitor task");
    }

    #[tokio::test(start_paused = true)]
    async fn produce_rate_follows_the_tick() {
        let script = Script(Mutex::new((0..=12).map(|s| Ok(s * 100)).collect()));
        let (monitor, mut rx) = LagMonitor::new(
            script,
            LagTracker::new(LagConfig::default()),
            MonitorConfig::default(),
        );
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(monitor.run(std::future::pending()));
        let mut last = None;
        for _ in 0..=12 {
            rx.changed().await.expect("monitor alive");
            last = rx.borrow_and_update().clone();
        }
        let obs = last.expect("published");
        assert_eq!(obs.produce_rate, Some(100.0));
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(12),
            "the first tick is immediate, then one per second"
        );
        task.abort();
    }
}
