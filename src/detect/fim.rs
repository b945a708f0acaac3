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

/// What `llm/detect` found out about code completion.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FimDetection {
    /// The FIM shapes (`api`) that answered a completion.
    pub offered: Vec<&'static str>,
    /// Completion settings verified by a test completion, in the order tried.
    pub candidates: Vec<FimCandidate>,
}

/// Completion settings that worked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FimCandidate {
    /// In the v1 dialog form with `fim`, ready to send as `completion` settings.
    pub settings: serde_json::Value,
    /// The built-in completion preset of this shape.
    pub preset: &'static str,
    /// `openai-completions`, `llama.cpp-infill`, `ollama-generate` or `mistral-fim`.
    pub api: &'static str,
    /// The test completion of [`TEST_PREFIX`]`|`[`TEST_SUFFIX`] (`""` when the model had nothing to add).
    pub sample_text: String,
    pub first_byte_ms: u64,
}

/// One FIM shape to try.
struct FimShape {
    api: &'static str,
    preset: &'static str,
    url: reqwest::Url,
    /// The JSON path of the answer's text.
    path: &'static str,
    model: Option<String>,
}

impl super::Detector<'_> {
    /// Tries the FIM shapes that fit what was found, within the request
    /// budget; `Err` only when cancelled.
    pub(super) async fn fim(
        &mut self,
        listed: Option<&super::ModelList>,
        tags: Option<&super::ModelList>,
    ) -> Result<FimDetection, super::Cancelled> {
        let completer = Completer::new();
        let mut found = FimDetection::default();
        for shape in self.fim_shapes(listed, tags) {
            let what = format!("POST {} ({}, test completion)", shape.url, shape.api);
            if !self.budget(&what) {
                break;
            }
            let v1 = fim_settings(&shape, self.options.access());
            let settings = match self.options.probe_settings(v1.clone()) {
                Ok(settings) => settings,
                Err(problems) => {
                    let outcome = problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    self.note(what, None, outcome, false);
                    continue;
                }
            };
            let request = format!(
                "POST {} ({}{})",
                settings.display_url(),
                shape.api,
                shape
                    .model
                    .as_deref()
                    .map(|m| format!(", model {m}"))
                    .unwrap_or_default()
            );
            let (report, failure) =
                test_completion(&completer, self.engine, &settings, self.cancel, None).await;
            if self.cancel.is_cancelled() {
                return Err(super::Cancelled);
            }
            match failure {
                None => {
                    let outcome = if report.empty {
                        "a completion came back, empty after clean-up".to_owned()
                    } else {
                        format!("completion: {:?}", report.sample_text)
                    };
                    self.note(request, Some(200), outcome, true);
                    found.offered.push(shape.api);
                    // The probe's 16-token cap is not for real use.
                    let mut settings = v1;
                    settings.insert("fim".into(), serde_json::json!({"mode": "separate"}));
                    found.candidates.push(FimCandidate {
                        settings: serde_json::Value::Object(settings),
                        preset: shape.preset,
                        api: shape.api,
                        sample_text: report.sample_text,
                        first_byte_ms: report.first_byte_ms.unwrap_or(0),
                    });
                }
                Some(failure) => {
                    let status = failure.http.as_ref().map(|h| h.status);
                    self.note(request, status, failure.message(), false);
                }
            }
        }
        Ok(found)
    }

    /// The FIM shapes worth a request: the one the URL names, Ollama's
    /// `/api/generate` when its tags answered, `/v1/completions` when a model
    /// list answered (and llama.cpp's `/infill` on a plain-HTTP server),
    /// Mistral's `/v1/fim/completions` on Mistral's hosts.
    fn fim_shapes(
        &self,
        listed: Option<&super::ModelList>,
        tags: Option<&super::ModelList>,
    ) -> Vec<FimShape> {
        let given = &self.options.url;
        let host = given.host_str().unwrap_or_default().to_ascii_lowercase();
        let path = given.path().trim_end_matches('/');
        let listed_model = listed.and_then(|l| l.pick()).map(str::to_owned);
        let tags_model = tags.and_then(|l| l.pick()).map(str::to_owned);
        // The versioned base (`…/v1`) and the root, from the list URLs.
        let at = |suffix: &str, root: bool| {
            let mut url = if root {
                self.bases.tags()
            } else {
                self.bases.versioned_models()
            };
            let base = url.path().to_owned();
            let base = base
                .strip_suffix(if root { "/api/tags" } else { "/models" })
                .unwrap_or_default();
            url.set_path(&format!("{base}{suffix}"));
            url.set_query(None);
            url
        };
        let mut shapes = Vec::new();
        let named = [
            ("/fim/completions", "mistral-fim"),
            ("/infill", "llama.cpp-infill"),
            ("/api/generate", "ollama-generate"),
            ("/completions", "openai-completions"),
        ]
        .into_iter()
        .find(|(suffix, _)| path.ends_with(suffix) && !path.ends_with("/chat/completions"));
        if let Some((_, api)) = named {
            let model = if api == "ollama-generate" {
                tags_model.clone()
            } else {
                listed_model.clone()
            };
            shapes.push(shape(api, given.clone(), model));
        }
        if tags.is_some() {
            shapes.push(shape(
                "ollama-generate",
                at("/api/generate", true),
                tags_model,
            ));
        }
        if listed.is_some() {
            if host.contains("mistral") {
                shapes.push(shape(
                    "mistral-fim",
                    at("/fim/completions", false),
                    listed_model.clone(),
                ));
            } else {
                shapes.push(shape(
                    "openai-completions",
                    at("/completions", false),
                    listed_model.clone(),
                ));
                if given.scheme() == "http" {
                    shapes.push(shape("llama.cpp-infill", at("/infill", true), None));
                }
            }
        }
        let mut seen = Vec::new();
        shapes.retain(|s| {
            let new = !seen.contains(&s.url);
            seen.push(s.url.clone());
            new
        });
        shapes
    }
}

fn shape(api: &'static str, url: reqwest::Url, model: Option<String>) -> FimShape {
    let (preset, path) = match api {
        "mistral-fim" => ("codestral-fim", "$.choices[0].message.content"),
        "llama.cpp-infill" => ("llama.cpp-infill", "$.content"),
        "ollama-generate" => ("ollama-fim", "$.response"),
        _ => ("openai-completions", "$.choices[0].text"),
    };
    FimShape {
        api,
        preset,
        url,
        path,
        model,
    }
}

/// The v1 settings of one FIM shape: prefix and suffix in their own fields
/// (`mode: separate`), so the server's own template is used; not streamed.
fn fim_settings(
    shape: &FimShape,
    access: super::shapes::Access<'_>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut fields = serde_json::Map::new();
    if let Some(model) = &shape.model {
        fields.insert("model".into(), Value::from(model.as_str()));
    }
    fields.insert("stream".into(), Value::from(false));
    if shape.api == "ollama-generate" {
        fields.insert("options".into(), json!({"temperature": 0}));
    } else {
        fields.insert("temperature".into(), Value::from(0));
    }
    let mut format = serde_json::Map::new();
    format.insert("customFields".into(), Value::Object(fields));
    if !access.headers.is_empty() {
        format.insert(
            "customHeaders".into(),
            Value::Object(access.headers.clone()),
        );
    }
    let mut map = serde_json::Map::new();
    map.insert("customEngineServer".into(), Value::from(shape.url.as_str()));
    if let Some(token) = access.token {
        map.insert("customEngineToken".into(), Value::from(token));
    }
    map.insert("customEngineResponseType".into(), Value::from("JSON"));
    map.insert(
        "customEngineRequestFormat".into(),
        Value::from(Value::Object(format).to_string()),
    );
    map.insert("customEngineResponseFormat".into(), Value::from(shape.path));
    map.insert("fim".into(), json!({"mode": "separate", "maxTokens": 16}));
    map
}
