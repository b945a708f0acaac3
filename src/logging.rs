//! Logging: stderr only, through `tracing`.
//!
//! The level comes from `LLM_SIDECAR_LOG`, else `RUST_LOG`, else `info`.
//! Whatever the filter asks, other crates' events are capped at `info`: the
//! HTTP and TLS libraries log requests, headers included, at debug and trace,
//! and their output must never carry the user's keys.

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// The environment variables read for the filter, in order.
const FILTER_VARS: [&str; 2] = ["LLM_SIDECAR_LOG", "RUST_LOG"];

/// Installs the stderr logger. Safe to call once per process.
pub fn init() {
    let spec = FILTER_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned());
    let (filter, bad_spec) = match EnvFilter::try_new(&spec) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    let library_cap =
        filter_fn(|meta| is_own_target(meta.target()) || *meta.level() <= Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(library_cap)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .try_init();
    if let Some(e) = bad_spec {
        tracing::warn!(error = %e, "ignoring an invalid log filter; logging at info");
    }
}

fn is_own_target(target: &str) -> bool {
    target == "llm_sidecar" || target.starts_with("llm_sidecar::")
}
