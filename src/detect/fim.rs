//! Code-completion diagnostics: a test completion with a tiny prefix and
//! suffix for completion settings (`llm/testConnection`,
//! `llm-sidecar check --connect`), through the same [`Completer`] path as
//! `llm/inlineCompletion`, bounded by the test's time limit.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::completion::{Completer, InlineInput};
use crate::engine::{Engine, Failure, TraceSink};
use crate::probe::TIME_LIMIT;
use crate::settings::Settings;
use crate::settings::fim::is_chat_url;

/// The text before the hole of the test completion.
pub const TEST_PREFIX: &str = "def add(a, b):\n    return ";
/// The text after it.
pub const TEST_SUFFIX: &str = "\n\n\nprint(add(1, 2))\n";
/// The completion slot of tests, apart from every document's.
const TEST_DOCUMENT: &str = "llm-sidecar test completion";

/// What a test completion found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionReport {
    pub ok: bool,
    /// Always `completion`: this report is of a FIM request, not a chat one.
    pub kind: &'static str,
    pub prefix: &'static str,
    pub suffix: &'static str,
    /// The suggestion, as an editor would get it (`""` when none).
    pub sample_text: String,
    /// The server answered, but nothing was left after clean-up.
    pub empty: bool,
    pub first_byte_ms: Option<u64>,
    pub total_ms: Option<u64>,
    pub time_limit_ms: u64,
}

/// True when `settings` are for code completion by their endpoint alone: an
/// OpenAI-style `/completions` (not `/chat/completions`), llama.cpp's
/// `/completion` or `/infill`, Ollama's `/api/generate`, a `/fim/…` path, or
/// a FIM template.
pub fn is_completion_settings(settings: &Settings) -> bool {
    let path = settings.url.path().trim_end_matches('/');
    settings.fim.template.is_some()
        || (!is_chat_url(&settings.url)
            && (path.ends_with("/completions")
                || path.ends_with("/completion")
                || path.ends_with("/infill")
                || path.ends_with("/api/generate")
                || path.contains("/fim/")))
}

/// One completion of [`TEST_PREFIX`]`|`[`TEST_SUFFIX`], never from the cache,
/// within [`TIME_LIMIT`] (or the settings' lower `timeouts.totalMs`).
pub async fn test_completion(
    completer: &Completer,
    engine: &Engine,
    settings: &Settings,
    cancel: &CancellationToken,
    trace: Option<&mut dyn TraceSink>,
) -> (CompletionReport, Option<Failure>) {
    let mut bounded = settings.clone();
    let limit = settings
        .timeouts
        .total
        .map_or(TIME_LIMIT, |t| t.min(TIME_LIMIT));
    bounded.timeouts.total = Some(limit);
    let input = InlineInput {
        prefix: TEST_PREFIX.to_owned(),
        suffix: TEST_SUFFIX.to_owned(),
        language: Some("python".to_owned()),
        path: Some("test.py".to_owned()),
        invoked: true,
    };
    let result = completer
        .complete(engine, &bounded, &input, TEST_DOCUMENT, cancel, trace)
        .await;
    let mut report = CompletionReport {
        ok: false,
        kind: "completion",
        prefix: TEST_PREFIX,
        suffix: TEST_SUFFIX,
        sample_text: String::new(),
        empty: false,
        first_byte_ms: None,
        total_ms: None,
        time_limit_ms: limit.as_millis() as u64,
    };
    match result {
        Ok(answer) => {
            report.ok = true;
            report.sample_text = answer
                .items
                .first()
                .map(|item| item.insert_text.clone())
                .unwrap_or_default();
            report.empty = answer.items.is_empty();
            report.first_byte_ms = Some(answer.timings.first_byte_ms);
            report.total_ms = Some(answer.timings.total_ms);
            (report, None)
        }
        Err(failure) => {
            report.first_byte_ms = failure.first_byte_ms;
            report.total_ms = Some(failure.total_ms);
            (report, Some(failure))
        }
    }
}
