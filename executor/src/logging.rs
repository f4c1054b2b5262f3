//! Log lines that say which task they are about.
//!
//! Owns the executor's `tracing` output: every line goes to stderr (the sandbox's `stderr`
//! file, which the agent and the DC/OS UI show) and starts with `task_id=<ids>` and
//! `executor_id=<id>`, so a line copied out of a sandbox still names its task. The task id
//! only arrives with LAUNCH, a few milliseconds after start, so the first lines are held back
//! until it does (at most [`HOLD`]; lines still held then, or when the executor exits, are
//! written with `task_id=-`: no task yet). `RUST_LOG` filters; the default is the workloads'
//! ([`fastdata_workloads::cli::DEFAULT_LOG_FILTER`]).
//!
//! Must not: print secrets (nothing here sees them; the token and passwords stay out of every
//! field), or lose a held line.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Longest time the first lines wait for the task id.
pub const HOLD: Duration = Duration::from_secs(1);

struct Shared {
    executor_id: String,
    tasks: String,
    /// Lines written before the task id was known, while holding.
    held: Vec<u8>,
    hold_until: Option<Instant>,
    out: Box<dyn Write + Send>,
}

impl Shared {
    fn emit(&mut self, text: &[u8]) {
        let prefix = format!("task_id={} executor_id={} ", self.tasks, self.executor_id);
        let mut line_start = true;
        let mut out = Vec::with_capacity(text.len() + prefix.len());
        for &byte in text {
            if line_start {
                out.extend_from_slice(prefix.as_bytes());
            }
            out.push(byte);
            line_start = byte == b'\n';
        }
        // Nowhere to report a failed write to stderr.
        let _ = self.out.write_all(&out);
        let _ = self.out.flush();
    }

    fn release(&mut self) {
        if self.hold_until.take().is_some() {
            let held = std::mem::take(&mut self.held);
            self.emit(&held);
        }
    }
}

/// The prefix of every line and the writer behind it; cheap to clone.
#[derive(Clone)]
pub struct TaskLabel(Arc<Mutex<Shared>>);

impl std::fmt::Debug for TaskLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskLabel")
    }
}

impl TaskLabel {
    /// A label writing to `out`, holding lines back for [`HOLD`].
    pub fn new(executor_id: &str, out: Box<dyn Write + Send>) -> Self {
        TaskLabel(Arc::new(Mutex::new(Shared {
            executor_id: executor_id.to_owned(),
            tasks: "-".to_owned(),
            held: Vec::new(),
            hold_until: Some(Instant::now() + HOLD),
            out,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this lock only ever interrupts a write; keep logging.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the task ids shown on every later line (and on the held ones).
    pub fn set_tasks(&self, ids: &[String]) {
        let mut shared = self.lock();
        let text = if ids.is_empty() {
            "-".to_owned()
        } else {
            ids.join(",")
        };
        if shared.tasks != text {
            shared.tasks = text;
        }
        if !ids.is_empty() {
            shared.release();
        }
    }

    /// When held lines must be written even without a task id.
    pub fn hold_until(&self) -> Option<Instant> {
        self.lock().hold_until
    }

    /// Writes the held lines if their time is up.
    pub fn release_if_due(&self) {
        let mut shared = self.lock();
        if shared.hold_until.is_some_and(|t| Instant::now() >= t) {
            shared.release();
        }
    }

    /// Writes the held lines now (at exit).
    pub fn release(&self) {
        self.lock().release();
    }

    fn write_event(&self, text: &[u8]) {
        let mut shared = self.lock();
        match shared.hold_until {
            Some(until) if Instant::now() < until => shared.held.extend_from_slice(text),
            Some(_) => {
                shared.release();
                shared.emit(text);
            }
            None => shared.emit(text),
        }
    }
}

/// Collects one formatted event and hands it to the label when dropped.
#[derive(Debug)]
pub struct EventWriter {
    label: TaskLabel,
    buf: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.label.write_event(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for TaskLabel {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            label: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// Installs the labelled stderr logger; returns the label to update.
pub fn init(executor_id: &str) -> TaskLabel {
    let label = TaskLabel::new(executor_id, Box::new(std::io::stderr()));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(fastdata_workloads::cli::DEFAULT_LOG_FILTER)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(label.clone())
        .with_ansi(false)
        .try_init();
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn logger(label: &TaskLabel) -> impl tracing::Subscriber + use<> {
        tracing_subscriber::fmt()
            .with_writer(label.clone())
            .with_ansi(false)
            .finish()
    }

    #[test]
    fn lines_before_the_launch_wait_for_the_task_id() {
        let out = Captured::default();
        let label = TaskLabel::new("slot-3.executor", Box::new(out.clone()));
        tracing::subscriber::with_default(logger(&label), || {
            tracing::info!("starting");
            tracing::info!("subscribed");
            assert!(out.lines().is_empty(), "held back");
            label.set_tasks(&["slot-3".to_owned()]);
            tracing::warn!(partition = 2, "multi\nline");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        for line in &lines {
            assert!(
                line.starts_with("task_id=slot-3 executor_id=slot-3.executor "),
                "{line}"
            );
        }
        assert!(lines[0].contains("starting") && lines[1].contains("subscribed"));
        assert!(lines[2].contains("multi") && lines[3].ends_with("line partition=2"));
    }

    #[test]
    fn without_a_task_the_held_lines_come_out_in_time() {
        let out = Captured::default();
        let label = TaskLabel::new("e", Box::new(out.clone()));
        tracing::subscriber::with_default(logger(&label), || {
            tracing::info!("cannot reach the agent");
        });
        assert!(out.lines().is_empty());
        label.release_if_due();
        assert!(out.lines().is_empty(), "not before its time");
        assert!(label.hold_until().is_some());
        label.release();
        assert_eq!(out.lines().len(), 1);
        assert!(out.lines()[0].starts_with("task_id=- executor_id=e "));
        assert_eq!(label.hold_until(), None);
        tracing::subscriber::with_default(logger(&label), || tracing::info!("later"));
        assert_eq!(out.lines().len(), 2, "no holding after release");
    }
}
