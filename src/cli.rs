//! The command-line front ends over the same engine the RPC server uses:
//! `complete` (one completion, printed as it streams) and `check` (settings
//! validation and, with `--connect`, a test connection, in words a person
//! reads).

pub mod fim;
mod trace;

use std::io::{ErrorKind, Write};
use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind};
use crate::probe::{self, CapSource, Report};
use crate::request::{Message, Role};
use crate::settings::{Settings, TOKEN};

/// Exit codes of the `complete` command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_SETTINGS: u8 = 2;
}

/// How many of the server's events a `no_match` explanation shows.
const SAMPLE_EVENTS_SHOWN: usize = 3;
/// How much of one event or suggested text is shown.
const PREVIEW_CHARS: usize = 160;

/// Writes content to stdout and reasoning to stderr, as it arrives. When
/// stdout is closed (`| head -c 10`), it stops the completion.
struct TerminalSink {
    in_reasoning: bool,
    /// Cancelled when stdout is closed.
    stop: CancellationToken,
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
                    note("");
                }
                let mut out = std::io::stdout().lock();
                if write!(out, "{text}").and_then(|()| out.flush()).is_err() {
                    self.stop.cancel();
                }
            }
        }
    }
}

/// Prints a line on stdout; when stdout is closed (the reader went away, as
/// `| head` does), the program ends quietly, as command-line tools do.
fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush())
        && e.kind() == ErrorKind::BrokenPipe
    {
        std::process::exit(exit::OK.into());
    }
}

/// Prints a line on stderr, ignoring a closed stderr.
fn note(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The first `max_chars` characters of `text`, cut after a whole word when
/// there is one, with `…` when something was cut.
pub fn preview(text: &str, max_chars: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max_chars) else {
        return text.to_owned();
    };
    let head = &text[..cut];
    let at_word = text[cut..].starts_with(char::is_whitespace);
    let head = match head.rfind(char::is_whitespace) {
        Some(space) if !at_word && space >= cut / 2 => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end())
}

/// A failure in sentences for a person: `no_match` with what the events
/// looked like and the paths that would have worked, others with their details.
pub fn explain_failure(failure: &Failure) -> Vec<String> {
    let FailureKind::NoMatch {
        path,
        events,
        non_text_events,
        sample,
        suggestions,
    } = &failure.kind
    else {
        let mut lines = vec![failure.message()];
        if let Ok(Value::Object(data)) = serde_json::to_value(&failure.kind) {
            for (key, value) in data.iter().filter(|(k, _)| *k != "kind") {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                lines.push(format!("  {key}: {}", preview(&value, 4 * PREVIEW_CHARS)));
            }
        }
        return lines;
    };
    let mut lines = vec![if *non_text_events > 0 {
        format!(
            "the response format (JsonPath) `{path}` selected objects or numbers, never text, in the {events} events the server sent"
        )
    } else {
        format!(
            "the response format (JsonPath) `{path}` matched nothing in any of the {events} events the server sent"
        )
    }];
    if !sample.is_empty() {
        let shown = sample.len().min(SAMPLE_EVENTS_SHOWN);
        lines.push(format!("  the first {shown} events looked like this:"));
        for event in sample.iter().take(SAMPLE_EVENTS_SHOWN) {
            lines.push(format!("    {}", preview(event, PREVIEW_CHARS)));
        }
    }
    if suggestions.is_empty() {
        lines.push("  no path would have produced text from them: check that this URL is the chat endpoint".to_owned());
    } else {
        lines.push("  paths that would have produced text (set customEngineResponseFormat to one of them):".to_owned());
        for s in suggestions {
            lines.push(format!(
                "    {}  →  {:?}",
                s.path,
                preview(&s.sample_text, PREVIEW_CHARS)
            ));
        }
    }
    lines
}

/// How the test connection was bounded, in words.
fn describe_bounds(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    match &report.max_tokens {
        Some(cap) if cap.dropped => lines.push(format!(
            "  answer not capped: the server refused the {} field this test added, so it was tested again without it",
            cap.field
        )),
        Some(cap) if cap.set_by == CapSource::Test => lines.push(format!(
            "  answer capped at {} tokens for this test ({}, added to the request; chat does not send it)",
            cap.value, cap.field
        )),
        Some(cap) => lines.push(format!(
            "  answer capped at {} tokens by your own {} setting",
            cap.value, cap.field
        )),
        None => lines.push(
            "  answer not capped: the request's shape (a fields template) has no known length field"
                .to_owned(),
        ),
    }
    if report.stopped_early {
        lines.push(
            "  reading stopped once the sample text was complete (the answer was longer)"
                .to_owned(),
        );
    }
    let limit = report.time_limit_ms;
    let limit = if limit.is_multiple_of(1000) {
        format!("{} s", limit / 1000)
    } else {
        format!("{limit} ms")
    };
    lines.push(format!("  time limit for the whole test: {limit}"));
    lines
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
            say(format!("✗ {message}"));
            return exit::BAD_SETTINGS;
        }
    };
    say(format!(
        "✓ the settings in {} are valid",
        settings_path.display()
    ));
    for warning in &settings.warnings {
        say(format!("⚠ {}: {}", warning.field, warning.message));
    }
    say(format!("  server:        {}", settings.display_url()));
    say(format!(
        "  token:         {}",
        match &settings.token {
            Some(t) => format!(
                "{} in {}",
                crate::secrets::mask(t),
                settings.token_header.as_ref().map_or_else(
                    || format!("Authorization: {}", settings.auth_scheme.as_str()),
                    |h| h.as_str().to_owned()
                )
            ),
            None => "none".to_owned(),
        }
    ));
    say(format!(
        "  response type: {}",
        settings.response_type.as_str().to_uppercase()
    ));
    say(format!(
        "  text path:     {}",
        settings.content_path.as_ref().map_or("(default) $.choices[0].delta.content for streams, $.choices[0].message.content for JSON".to_owned(), |p| p.normalized.clone())
    ));
    if let Some(p) = &settings.reasoning_path {
        say(format!("  reasoning:     {}", p.normalized));
    }
    if !connect {
        return exit::OK;
    }
    if crate::detect::fim::is_completion_settings(&settings) {
        return check_completion(&settings).await;
    }
    say(format!(
        "\n… sending a test completion (the same path as chat) to {}",
        settings.display_url()
    ));
    let engine = Engine::new();
    let (report, failure) = probe::run(
        &engine,
        &settings,
        &probe::test_messages(),
        &CancellationToken::new(),
    )
    .await;
    if let Some(status) = report.status {
        say(format!(
            "  HTTP status:   {status} ({})",
            report.content_type.as_deref().unwrap_or("no Content-Type")
        ));
    }
    let code = match failure {
        None => {
            say(format!(
                "✓ the server answered and the text path matched: {:?}",
                report.sample_text
            ));
            let read_as = report
                .detected_response_type
                .map_or("?", |t| t.as_str())
                .to_uppercase();
            let total = report.total_ms.unwrap_or(0);
            say(match report.first_byte_ms {
                Some(first_byte) => format!(
                    "  read as {read_as}, first byte after {first_byte} ms, done after {total} ms"
                ),
                None => format!(
                    "  read as {read_as}, first text after {} ms, stopped after {total} ms",
                    report.first_chunk_ms.unwrap_or(0)
                ),
            });
            if report.finish_reason.as_deref() == Some("length") {
                say("  the answer was cut by the length cap (finish reason `length`)");
            }
            exit::OK
        }
        Some(failure) => {
            let mut lines = explain_failure(&failure).into_iter();
            if let Some(first) = lines.next() {
                say(format!("✗ {first}"));
            }
            lines.for_each(say);
            exit::FAILED
        }
    };
    describe_bounds(&report).into_iter().for_each(say);
    code
}

/// `check --connect` for code-completion settings: one FIM request with a
/// tiny prefix and suffix, through the same path as editor completions.
async fn check_completion(settings: &crate::settings::Settings) -> u8 {
    use crate::detect::fim;
    say(format!(
        "\n… sending a test code completion (fill in the middle, mode {}) to {}",
        settings.fim.mode.as_str(),
        settings.display_url()
    ));
    let completer = crate::completion::Completer::new();
    let engine = Engine::new();
    let cancel = CancellationToken::new();
    let (report, failure) =
        fim::test_completion(&completer, &engine, settings, &cancel, None).await;
    match failure {
        None if report.empty => {
            say(
                "⚠ the server answered, but nothing was left of the answer after clean-up (blank, or only text already around the cursor)",
            );
            exit::OK
        }
        None => {
            say(format!(
                "✓ the server completed {:?}|{:?} with {:?}",
                fim::TEST_PREFIX,
                fim::TEST_SUFFIX,
                report.sample_text
            ));
            say(format!(
                "  first byte after {} ms, done after {} ms",
                report.first_byte_ms.unwrap_or(0),
                report.total_ms.unwrap_or(0)
            ));
            exit::OK
        }
        Some(failure) => {
            let mut lines = explain_failure(&failure).into_iter();
            if let Some(first) = lines.next() {
                say(format!("✗ {first}"));
            }
            lines.for_each(say);
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
    traced: bool,
) -> u8 {
    let settings = match load_settings(settings_path, token) {
        Ok(settings) => settings,
        Err(message) => {
            note(format!("error: {message}"));
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
    let stdout_closed = cancel.child_token();
    let mut sink = TerminalSink {
        in_reasoning: false,
        stop: stdout_closed.clone(),
    };
    // The curl command shows what is sent: the key commands' output in place
    // (masked); a failing command is reported by the completion below.
    let resolved = match traced {
        true => engine.with_keys(&settings, &cancel).await.ok().flatten(),
        false => None,
    };
    let shown = resolved.as_ref().unwrap_or(&settings);
    let mut tracer = traced.then(|| {
        note("# the same request with curl (the token is read from $LLM_SIDECAR_TOKEN):");
        note(trace::curl(shown, &messages));
        trace::StderrTrace::new(shown)
    });
    let trace_sink = tracer
        .as_mut()
        .map(|t| t as &mut dyn crate::engine::TraceSink);
    let result = engine
        .complete_traced(&settings, &messages, &mut sink, &stdout_closed, trace_sink)
        .await;
    if stdout_closed.is_cancelled() && !cancel.is_cancelled() {
        // The reader went away (`| head`): nothing more to say to anyone.
        return exit::OK;
    }
    match result {
        Ok(done) => {
            say("");
            let reason = done.finish_reason.as_deref().unwrap_or("end of stream");
            note(format!(
                "[{} chunks, first byte {} ms, total {} ms, {reason}]",
                done.chunks, done.timings.first_byte_ms, done.timings.total_ms
            ));
            exit::OK
        }
        Err(failure) => {
            if !failure.partial_text.is_empty() {
                say("");
            }
            let mut lines = explain_failure(&failure).into_iter();
            if let Some(first) = lines.next() {
                note(format!("error ({}): {first}", failure.kind_name()));
            }
            lines.for_each(note);
            exit::FAILED
        }
    }
}

/// `llm-sidecar detect URL`: the best candidate's settings as JSON on stdout
/// (without the token: it comes from `--token` or `LLM_SIDECAR_TOKEN` when
/// the file is used), one line per request on stderr; `--json`: the whole
/// result, token masked. Exit 0 with a candidate, 1 without, 2 for bad input.
pub async fn detect(url: &str, token: Option<&str>, whole: bool) -> u8 {
    let mut params = serde_json::Map::new();
    params.insert("url".into(), Value::from(url));
    if let Some(token) = token {
        params.insert("token".into(), Value::from(token));
    }
    let options = match crate::detect::parse_options(&params) {
        Ok(options) => options,
        Err(problems) => {
            for p in problems {
                note(format!("{}: {}", p.field, p.message));
            }
            return exit::BAD_SETTINGS;
        }
    };
    let engine = Engine::new();
    let Ok(mut found) = crate::detect::detect(&engine, &options, &CancellationToken::new()).await
    else {
        return exit::FAILED;
    };
    for candidate in &mut found.candidates {
        if let Some(settings) = candidate.settings.as_object_mut() {
            settings.remove(TOKEN);
        }
    }
    for tried in &found.tried {
        let status = tried.status.map(|s| format!(" [{s}]")).unwrap_or_default();
        let mark = if tried.accepted { "ok  " } else { "no  " };
        note(format!(
            "{mark}{}{status}: {}",
            tried.request, tried.outcome
        ));
    }
    let best = found.candidates.first();
    if whole {
        say(serde_json::to_string_pretty(&found).unwrap_or_default());
    } else if let Some(best) = best {
        say(serde_json::to_string_pretty(&best.settings).unwrap_or_default());
    }
    match best {
        Some(best) => {
            note(format!(
                "detected {} ({}), sample text {:?}{}",
                best.api,
                best.response_type,
                best.sample_text,
                if token.is_some() {
                    "; the token is not written out: pass it with --token or LLM_SIDECAR_TOKEN"
                } else {
                    ""
                }
            ));
            exit::OK
        }
        None => {
            note("no API shape gave text; see the requests above");
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_between_words() {
        assert_eq!(preview("short", 10), "short");
        assert_eq!(preview("Hello from the demo", 12), "Hello from…");
        assert_eq!(preview("Hello from the demo", 10), "Hello from…");
        assert_eq!(preview("{\"id\":\"chatcmpl-1\"}", 8), "{\"id\":\"c…");
        assert_eq!(preview("héllo wörld again", 13), "héllo wörld…");
    }
}
