//! The I/O shell around [`Cluster`]: it owns the state machine behind one mutex, carries out
//! the effects it returns (event streams, processes, signals, directories, listeners), and
//! runs its timers.
//!
//! Every step takes the lock, calls the core, and carries out the effects before releasing
//! it. Carrying out never blocks: events go into bounded per-stream queues (a stream whose
//! queue is full is closed, as if its client had gone away), processes and file work are
//! spawned as tasks. So event order on each stream is exactly the core's order, and the lock
//! is never held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc, watch};

use crate::cluster::{Cluster, ConnId, Effect, Now, Signal};
use crate::wire::Encoding;

/// Events a stream may have queued before devcluster gives up on its reader.
pub const STREAM_QUEUE: usize = 16 * 1024;

/// The current time on both clocks.
pub fn now() -> Now {
    Now {
        at: tokio::time::Instant::now(),
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    }
}

/// The sending side of one event stream.
#[derive(Debug)]
struct StreamSink {
    tx: mpsc::Sender<Bytes>,
    encoding: Encoding,
}

/// What the lock protects.
#[derive(Debug)]
pub(crate) struct Inner {
    pub cluster: Cluster,
    streams: HashMap<ConnId, StreamSink>,
    /// (agent, process key) → process group id.
    processes: HashMap<(usize, String), u32>,
}

/// State shared by the servers, the timer driver and the launcher tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    next_conn: AtomicU64,
    /// Wakes the timer driver when the next deadline may have moved.
    timers_changed: Notify,
    /// Per agent: `true` while its listener should be open.
    pub agent_up: Vec<watch::Sender<bool>>,
    /// Signals every background task to stop.
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn new(cluster: Cluster) -> Arc<Shared> {
        let agents = cluster.ports().agents.len();
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                cluster,
                streams: HashMap::new(),
                processes: HashMap::new(),
            }),
            next_conn: AtomicU64::new(1),
            timers_changed: Notify::new(),
            agent_up: (0..agents).map(|_| watch::channel(true).0).collect(),
            shutdown: watch::channel(false).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Invariant: no code panics while holding the lock; if one did, the cluster state
        // may be half-updated, and carrying on with it is still the most useful thing a test
        // cluster can do.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` on the cluster and carries out the effects it produced.
    pub fn step<R>(self: &Arc<Self>, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.lock();
        let result = f(&mut inner);
        self.carry_out(&mut inner);
        drop(inner);
        self.timers_changed.notify_one();
        result
    }

    /// Registers the sending side of a stream the core just opened.
    pub fn open_stream(
        inner: &mut Inner,
        conn: ConnId,
        encoding: Encoding,
    ) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        inner.streams.insert(conn, StreamSink { tx, encoding });
        rx
    }

    /// The client side of a stream went away.
    pub fn stream_dropped(self: &Arc<Self>, conn: ConnId) {
        self.step(|inner| {
            inner.streams.remove(&conn);
            inner.cluster.stream_closed(now(), conn);
        });
    }

    fn carry_out(self: &Arc<Self>, inner: &mut Inner) {
        loop {
            let effects = inner.cluster.take_effects();
            if effects.is_empty() {
                return;
            }
            let mut overflowed = Vec::new();
            for effect in effects {
                match effect {
                    Effect::SchedulerEvent { conn, event } => {
                        send_record(inner, conn, |e| e.encode(&event), &mut overflowed)
                    }
                    Effect::ExecutorEvent { conn, event } => {
                        send_record(inner, conn, |e| e.encode(&event), &mut overflowed)
                    }
                    Effect::CloseStream { conn } => {
                        inner.streams.remove(&conn);
                    }
                    Effect::Launch(spec) => {
                        let shared = Arc::clone(self);
                        tokio::spawn(crate::launcher::run(shared, spec));
                    }
                    Effect::Signal {
                        agent,
                        process,
                        signal,
                    } => {
                        if let Some(pid) = inner.processes.get(&(agent, process)) {
                            crate::launcher::signal_group(*pid, signal);
                        }
                    }
                    Effect::RemoveDir { path } => {
                        tokio::spawn(async move {
                            if let Err(e) = tokio::fs::remove_dir_all(&path).await
                                && e.kind() != std::io::ErrorKind::NotFound
                            {
                                tracing::warn!(path = %path.display(), error = %e, "could not remove volume directory");
                            }
                        });
                    }
                    Effect::AgentListener { agent, up } => {
                        if let Some(tx) = self.agent_up.get(agent) {
                            tx.send_replace(up);
                        }
                    }
                }
            }
            for conn in overflowed {
                tracing::warn!(conn, "event stream reader too slow; closing the stream");
                inner.cluster.stream_closed(now(), conn);
            }
        }
    }

    /// A launched process got its pid.
    pub fn process_started(self: &Arc<Self>, agent: usize, process: &str, pid: u32) {
        self.step(|inner| {
            inner.processes.insert((agent, process.to_owned()), pid);
            inner.cluster.process_started(now(), agent, process, pid);
        });
    }

    /// A launched process ended.
    pub fn process_exited(
        self: &Arc<Self>,
        agent: usize,
        process: &str,
        exit: crate::cluster::ExitInfo,
    ) {
        self.step(|inner| {
            inner.processes.remove(&(agent, process.to_owned()));
            inner.cluster.process_exited(now(), agent, process, exit);
        });
    }

    /// A launch failed before a process existed.
    pub fn process_failed(self: &Arc<Self>, agent: usize, process: &str, message: &str) {
        self.step(|inner| inner.cluster.process_failed(now(), agent, process, message));
    }

    /// Kills every process devcluster started (at stop).
    pub fn kill_all(&self) {
        let inner = self.lock();
        for pid in inner.processes.values() {
            crate::launcher::signal_group(*pid, Signal::Kill);
        }
    }

    /// Read-only access to the cluster.
    pub fn with_cluster<R>(&self, f: impl FnOnce(&Cluster) -> R) -> R {
        f(&self.lock().cluster)
    }

    /// Fires timers until shutdown.
    pub async fn drive_timers(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let deadline = self.lock().cluster.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {
                    self.step(|inner| inner.cluster.tick(now()));
                }
                () = self.timers_changed.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn send_record(
    inner: &mut Inner,
    conn: ConnId,
    encode: impl FnOnce(Encoding) -> Vec<u8>,
    overflowed: &mut Vec<ConnId>,
) {
    let Some(sink) = inner.streams.get(&conn) else {
        return;
    };
    let payload = encode(sink.encoding);
    let mut frame = BytesMut::with_capacity(payload.len() + 12);
    fastdata_proto::recordio::encode(&payload, &mut frame);
    match sink.tx.try_send(frame.freeze()) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            inner.streams.remove(&conn);
            overflowed.push(conn);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            inner.streams.remove(&conn);
        }
    }
}
