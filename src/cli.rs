//! The command-line front ends over the same engine the RPC server uses:
//! `complete` (one completion, printed as it streams) and `check` (settings
//! validation and, with `--connect`, a test connection, in words a person
//! reads).

use std::io::Write;
use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::{ChunkKind, ChunkSink, Engine, FailureKind};
use crate::probe;
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
    let value = read_settings_file(path, token)?;
    Settings::from_json(&value).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {}", p.field, p.message))
            .collect();
        format!(
            "the settings in {} have problems:\n{}",
            path.display(),
            lines.join("\n")
        )
    })
}

fn read_settings_file(path: &Path, token: Option<&str>) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let Some(map) = value.as_object_mut() else {
        return Err(format!(
            "{} must hold a JSON object of settings",
            path.display()
        ));
    };
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Ok(value);
    };
    let empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_none_or(|t| t.trim().is_empty())
    };
    let dialog_token_empty = empty(map.get(TOKEN));
    // Fill the token in where the file's form keeps it: a customLlms entry's
    // `auth.token`, else the dialog's field.
    match map.get_mut("auth").and_then(Value::as_object_mut) {
        Some(auth) => {
            if empty(auth.get("token")) && dialog_token_empty {
                auth.insert("token".to_owned(), Value::from(token));
            }
        }
        None => {
            if dialog_token_empty {
                map.insert(TOKEN.to_owned(), Value::from(token));
            }
        }
    }
    Ok(value)
}

/// Runs `check`: validation, and with `connect` a test completion.
pub async fn check(settings_path: &Path, token: Option<&str>, connect: bool) -> u8 {
    let settings = match load_settings(settings_path, token) {
        Ok(settings) => settings,
        Err(message) => {
            println!("✗ {message}");
            return exit::BAD_SETTINGS;
        }
    };
    println!("✓ the settings in {} are valid", settings_path.display());
    println!("  server:        {}", settings.display_url());
    println!(
        "  token:         {}",
        match &settings.token {
            Some(t) => format!(
                "{} in {}",
                crate::secrets::mask(t),
                settings
                    .token_header
                    .as_ref()
                    .map_or("Authorization: Bearer", |h| h.as_str())
            ),
            None => "none".to_owned(),
        }
    );
    println!(
        "  response type: {}",
        settings.response_type.as_str().to_uppercase()
    );
    println!(
        "  text path:     {}",
        settings.content_path.as_ref().map_or("(default) $.choices[0].delta.content for streams, $.choices[0].message.content for JSON".to_owned(), |p| p.normalized.clone())
    );
    if let Some(p) = &settings.reasoning_path {
        println!("  reasoning:     {}", p.normalized);
    }
    if !connect {
        return exit::OK;
    }
    println!(
        "\n… sending a test completion (the same path as chat) to {}",
        settings.display_url()
    );
    let engine = Engine::new();
    let (report, failure) = probe::run(
        &engine,
        &settings,
        &probe::test_messages(),
        &CancellationToken::new(),
    )
    .await;
    if let Some(status) = report.status {
        println!(
            "  HTTP status:   {status} ({})",
            report.content_type.as_deref().unwrap_or("no Content-Type")
        );
    }
    match failure {
        None => {
            println!(
                "✓ the server answered and the text path matched: {:?}",
                report.sample_text
            );
            println!(
                "  read as {}, first byte after {} ms, done after {} ms",
                report
                    .detected_response_type
                    .map_or("?", |t| t.as_str())
                    .to_uppercase(),
                report.first_byte_ms.unwrap_or(0),
                report.total_ms.unwrap_or(0)
            );
            exit::OK
        }
        Some(failure) => {
            println!("✗ {}", failure.message());
            if let FailureKind::NoMatch { sample, .. } = &failure.kind
                && let Some(first) = sample.first()
            {
                println!("  the first event was: {first}");
            }
            if !report.suggestions.is_empty() {
                println!("  paths that would have produced text:");
                for s in &report.suggestions {
                    println!("    {}  →  {:?}", s.path, s.sample_text);
                }
            }
            exit::FAILED
        }
    }
}

/// Runs `complete`; returns the process exit code.
pub async fn complete(
    settings_path: &Path,
    token: Option<&str>,
    system: Option<&str>,
    prompt: &str,
) -> u8 {
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
    let mut sink = TerminalSink {
        in_reasoning: false,
    };
    match engine
        .complete(&settings, &messages, &mut sink, &cancel)
        .await
    {
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
