//! Log lines that say which task they are about.
//!
//! Owns the executor's `tracing` output: every line goes to stderr (the sandbox's `stderr`
//! file, which the agent and the DC/OS UI show) and starts with `task_id=<ids>` (the tasks
//! this executor was given; `-` before the first LAUNCH) and `executor_id=<id>`, so a line
//! copied out of a sandbox still names its task. `RUST_LOG` filters; the default is the
//! workloads' ([`fastdata_workloads::cli::DEFAULT_LOG_FILTER`]).
//!
//! Must not: print secrets (nothing here sees them; the token and passwords stay out of every
//! field).

use std::fmt;
use std::sync::{Arc, RwLock};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The prefix of every line; shared between the formatter and whoever learns the task ids.
#[derive(Debug, Clone)]
pub struct TaskLabel {
    executor_id: String,
    tasks: Arc<RwLock<String>>,
}

impl TaskLabel {
    /// A label with no task yet.
    pub fn new(executor_id: &str) -> Self {
        TaskLabel {
            executor_id: executor_id.to_owned(),
            tasks: Arc::new(RwLock::new("-".to_owned())),
        }
    }

    /// Sets the task ids shown on every later line.
    pub fn set_tasks(&self, ids: &[String]) {
        let text = if ids.is_empty() {
            "-".to_owned()
        } else {
            ids.join(",")
        };
        if let Ok(mut current) = self.tasks.write()
            && *current != text
        {
            *current = text;
        }
    }

    /// `task_id=<ids> executor_id=<id>`.
    pub fn prefix(&self) -> String {
        let tasks = self.tasks.read().map(|t| t.clone()).unwrap_or_default();
        format!("task_id={tasks} executor_id={}", self.executor_id)
    }
}

/// Wraps a formatter and writes the label first.
#[derive(Debug)]
pub struct Labelled<F> {
    label: TaskLabel,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for Labelled<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "{} ", self.label.prefix())?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// Installs the labelled stderr logger; returns the label to update.
pub fn init(executor_id: &str) -> TaskLabel {
    let label = TaskLabel::new(executor_id);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(fastdata_workloads::cli::DEFAULT_LOG_FILTER)
    });
    let format = Labelled {
        label: label.clone(),
        inner: tracing_subscriber::fmt::format().with_ansi(false),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(format)
        .try_init();
    label
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

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

    #[test]
    fn every_line_starts_with_the_task_and_executor() {
        let captured = Captured::default();
        let label = TaskLabel::new("slot-3.executor");
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(Labelled {
                label: label.clone(),
                inner: tracing_subscriber::fmt::format().with_ansi(false),
            })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before the launch");
            label.set_tasks(&["slot-3".to_owned()]);
            tracing::warn!(partition = 2, "after the launch");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("task_id=- executor_id=slot-3.executor "),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("task_id=slot-3 executor_id=slot-3.executor "),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("after the launch") && lines[1].contains("partition=2"));
    }
}
