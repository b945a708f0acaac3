//! `llm-sidecar complete`: one completion from the command line, through the
//! same engine the RPC server uses, printing text as it streams.

use std::io::Write;
use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::{ChunkKind, ChunkSink, Engine};
use crate::request::{Message, Role};
use crate::settings::{Settings, TOKEN};

/// Exit codes of the `complete` command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_SETTINGS: u8 = 2;
}

/// Writes content to stdout and reasoning to stderr, as it arrives.
struct TerminalSink {
    in_reasoning: bool,
}

impl ChunkSink for TerminalSink {
    async fn chunk(&mut self, kind: ChunkKind, text: &str) {
        match kind {
            ChunkKind::Reasoning => {
                self.in_reasoning = true;
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{text}");
                let _ = err.flush();
            }
            ChunkKind::Content => {
                if std::mem::take(&mut self.in_reasoning) {
                    eprintln!();
                }
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{text}");
                let _ = out.flush();
            }
        }
    }
}

/// Reads a settings file; a token given on the command line or in
/// `LLM_SIDECAR_TOKEN` fills in where the file has none.
pub fn load_settings(path: &Path, token: Option<&str>) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let Some(map) = value.as_object_mut() else {
        return Err(format!("{} must hold a JSON object of settings", path.display()));
    };
    let file_token_empty = map.get(TOKEN).and_then(Value::as_str).is_none_or(|t| t.trim().is_empty());
    if let (true, Some(token)) = (file_token_empty, token.filter(|t| !t.is_empty())) {
        map.insert(TOKEN.to_owned(), Value::from(token));
    }
    Settings::from_json(&value).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {}: {}", p.field, p.message)).collect();
        format!("the settings in {} have problems:\n{}", path.display(), lines.join("\n"))
    })
}

/// Runs `complete`; returns the process exit code.
pub async fn complete(settings_path: &Path, token: Option<&str>, system: Option<&str>, prompt: &str) -> u8 {
    let settings = match load_settings(settings_path, token) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::BAD_SETTINGS;
        }
    };
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(Message {
            role: Role::System,
            content: system.to_owned(),
        });
    }
    messages.push(Message {
        role: Role::User,
        content: prompt.to_owned(),
    });
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let engine = Engine::new();
    let mut sink = TerminalSink { in_reasoning: false };
    match engine.complete(&settings, &messages, &mut sink, &cancel).await {
        Ok(done) => {
            println!();
            let reason = done.finish_reason.as_deref().unwrap_or("end of stream");
            eprintln!(
                "[{} chunks, first byte {} ms, total {} ms, {reason}]",
                done.chunks, done.timings.first_byte_ms, done.timings.total_ms
            );
            exit::OK
        }
        Err(failure) => {
            if !failure.partial_text.is_empty() {
                println!();
            }
            eprintln!("error ({}): {}", failure.kind_name(), failure.message());
            if let Ok(Value::Object(data)) = serde_json::to_value(&failure.kind) {
                for (key, value) in data.iter().filter(|(k, _)| *k != "kind") {
                    eprintln!("  {key}: {value}");
                }
            }
            exit::FAILED
        }
    }
}
