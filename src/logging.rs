//! Logging: stderr only, through `tracing`, and never in the way of serving.
//!
//! The level comes from `LLM_SIDECAR_LOG`, else `RUST_LOG`, else `info`.
//! Whatever the filter asks, other crates' events are capped at `info`: the
//! HTTP and TLS libraries log requests, headers included, at debug and trace,
//! and their output must never carry the user's keys.
//!
//! Lines go through `tracing-appender`'s non-blocking writer: a bounded queue
//! drained by one thread of its own. Many editors never read a child's
//! stderr; once its pipe is full, that thread waits, the queue fills, and
//! further lines are dropped instead of stopping the runtime's workers. When
//! stderr is read again, the first line written says how many were dropped.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use tracing::Level;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// Keeps the log writer's thread; dropping it writes out what is queued
/// (waiting at most about a second when stderr is not read).
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(Option<WorkerGuard>);

/// stderr, preceded by a note of the lines dropped since the last write.
struct DropReporting {
    stderr: io::Stderr,
    dropped: Arc<OnceLock<ErrorCounter>>,
    reported: usize,
}

/// The environment variables read for the filter, in order.
const FILTER_VARS: [&str; 2] = ["LLM_SIDECAR_LOG", "RUST_LOG"];
/// Lines queued for stderr before new ones are dropped.
const QUEUED_LINES: usize = 1024;

impl Write for DropReporting {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let dropped = self.dropped.get().map_or(0, ErrorCounter::dropped_lines);
        if dropped > self.reported {
            let note = format!(
                "llm-sidecar: {} log lines were dropped while stderr was not being read\n",
                dropped - self.reported
            );
            self.stderr.write_all(note.as_bytes())?;
            self.reported = dropped;
        }
        self.stderr.write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stderr.flush()
    }
}

/// Installs the stderr logger. Call once per process and keep the guard
/// until the end.
pub fn init() -> LogGuard {
    let spec = FILTER_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned());
    let (filter, bad_spec) = match EnvFilter::try_new(&spec) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    let dropped = Arc::new(OnceLock::new());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("llm-sidecar-log")
        .finish(DropReporting {
            stderr: io::stderr(),
            dropped: Arc::clone(&dropped),
            reported: 0,
        });
    let _ = dropped.set(writer.error_counter());
    let library_cap =
        filter_fn(|meta| is_own_target(meta.target()) || *meta.level() <= Level::INFO);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(library_cap)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_target(false),
        )
        .try_init();
    if let Some(e) = bad_spec {
        tracing::warn!(error = %e, "ignoring an invalid log filter; logging at info");
    }
    LogGuard(installed.is_ok().then_some(guard))
}

impl LogGuard {
    /// Writes out what is queued and stops the writer (before `process::exit`,
    /// which runs no destructors).
    pub fn finish(mut self) {
        self.0.take();
    }
}

fn is_own_target(target: &str) -> bool {
    target == "llm_sidecar" || target.starts_with("llm_sidecar::")
}
