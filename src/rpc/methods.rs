//! The sidecar's JSON-RPC methods: params in, settings resolved, engine
//! called, frames out.
//!
//! Thin by design: params are checked here (every problem at once, settings
//! problems included), settings come from [`Catalog::resolve`], completions
//! from [`Engine::complete`] (`llm/testConnection` takes the very same path as
//! `llm/complete`), and the engine's [`Failure`]s become JSON-RPC errors with
//! their data.

use std::collections::HashSet;
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

mod discovery;
mod fim_test;
mod inline;
mod lsp;
mod params;
mod trace;

use params::{Named, params_object, parse_messages, take_trace};

use super::message::{RequestId, code, error, notification, response};
use super::outbox::{ChunkStream, Outbox};
use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind, TraceSink};

use crate::completion::Completer;
use crate::settings::{Catalog, Problem, Settings};
use crate::{presets, probe};

/// State shared by every request.
#[derive(Debug, Default)]
pub struct Methods {
    engine: Engine,
    /// Code completion: its cache and each document's running request.
    completer: Completer,
    catalog: RwLock<Catalog>,
    /// The stream ids of the completions running now: one id, one stream.
    streams: Mutex<HashSet<RequestId>>,
    /// Documents synced over LSP, for `textDocument/inlineCompletion`.
    lsp: lsp::Lsp,
}

/// Holds a stream id for one completion; frees it when dropped.
struct StreamClaim<'a> {
    streams: &'a Mutex<HashSet<RequestId>>,
    id: RequestId,
}

impl Drop for StreamClaim<'_> {
    fn drop(&mut self) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Requests that run as their own task.
const TASK_METHODS: &[&str] = &[
    "llm/complete",
    "llm/inlineCompletion",
    "llm/testConnection",
    "llm/validateSettings",
    "llm/presets",
    "llm/detect",
    "llm/models",
    lsp::INLINE_COMPLETION,
];
/// A request that panics on purpose, to test the panic guard; only served
/// when `LLM_SIDECAR_TEST_HOOKS=1`.
const PANIC_METHOD: &str = "llm-sidecar/test/panic";

/// True when `method` is handled by [`Methods::request`].
pub fn is_known(method: &str) -> bool {
    TASK_METHODS.contains(&method) || (method == PANIC_METHOD && test_hooks())
}

/// The panic hook exists only in debug builds (the test suite's), and only
/// with `LLM_SIDECAR_TEST_HOOKS=1`.
fn test_hooks() -> bool {
    cfg!(debug_assertions) && std::env::var("LLM_SIDECAR_TEST_HOOKS").is_ok_and(|v| v == "1")
}

/// Sends each piece as an `llm/chunk` notification, when a stream id was given.
///
/// The part of the frame up to the stream id is serialised once per stream;
/// the outbox frames each piece (or merges pieces, see [`super::outbox`]).
struct NotifySink {
    /// Trace frames to write before the next chunk (`"trace": true`).
    trace: Option<trace::Pending>,
    stream: Option<ChunkStream>,
    out: Outbox,
}

impl NotifySink {
    fn new(stream_id: Option<&Value>, trace: Option<trace::Pending>, out: &Outbox) -> Self {
        let stream = stream_id.map(|id| {
            let mut prefix =
                br#"{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId":"#.to_vec();
            // A string or a number: serialising it cannot fail.
            serde_json::to_writer(&mut prefix, id).expect("serialisable stream id");
            prefix.extend_from_slice(br#","seq":"#);
            out.chunk_stream(prefix)
        });
        NotifySink {
            trace,
            stream,
            out: out.clone(),
        }
    }
}

impl ChunkSink for NotifySink {
    async fn chunk(&mut self, kind: ChunkKind, text: &str) {
        if let Some(pending) = &self.trace {
            pending.flush(&self.out);
        }
        if let Some(stream) = &mut self.stream {
            stream.chunk(kind, text);
        }
    }
}

/// A JSON-RPC error before it is framed.
#[derive(Debug, Clone)]
struct RpcError {
    code: i64,
    message: String,
    data: Value,
}

impl RpcError {
    fn frame(&self, id: &Value) -> Bytes {
        error(id, self.code, &self.message, Some(&self.data))
    }

    fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message, "data": self.data})
    }
}

impl Methods {
    pub fn new() -> Self {
        Methods::default()
    }

    /// The `initialize` result; `initializationOptions.customLlms` and
    /// `.profiles` are taken into the catalog.
    pub fn initialize(&self, params: &Value) -> Value {
        let problems = match params.get("initializationOptions") {
            Some(options @ Value::Object(_)) => self.update_catalog(options),
            _ => Vec::new(),
        };
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .summary();
        let mut result = json!({
            "serverInfo": {"name": "llm-sidecar", "version": env!("CARGO_PKG_VERSION")},
            "capabilities": {
                "methods": TASK_METHODS,
                "notifications": ["llm/chunk", "llm/trace"],
                "responseTypes": ["SSE", "JSON", "NDJSON"],
                "cancel": "$/cancelRequest",
                "configuration": "workspace/didChangeConfiguration",
            },
            "configuration": {"customLlms": catalog["customLlms"], "profiles": catalog["profiles"], "completion": catalog["completion"], "problems": problems},
        });
        if let (Value::Object(caps), Value::Object(lsp)) =
            (&mut result["capabilities"], self.lsp.initialize(params))
        {
            caps.extend(lsp);
        }
        result
    }

    /// Called by the reader loop as request `id` arrives, before any later
    /// notification is handled (see [`lsp::Lsp::arrived`]).
    pub fn arrived(&self, id: &RequestId, method: &str, params: &Value) {
        self.lsp.arrived(id, method, params);
    }

    fn update_catalog(&self, config: &Value) -> Vec<Problem> {
        let problems = self
            .catalog
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .update(config);
        for problem in &problems {
            tracing::warn!(field = %problem.field, message = %problem.message, "configuration problem");
        }
        problems
    }

    /// A notification other than the lifecycle ones.
    pub async fn notification(&self, method: &str, params: &Value, tx: &Outbox) {
        if self.lsp.notification(method, params) {
            return;
        }
        match method {
            "workspace/didChangeConfiguration" => {
                let config = params.get("settings").unwrap_or(&Value::Null);
                let problems = self.update_catalog(config);
                if !problems.is_empty() {
                    let lines: Vec<String> = problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                        .collect();
                    let message =
                        format!("llm-sidecar: configuration problems: {}", lines.join("; "));
                    tx.send(notification(
                        "window/showMessage",
                        &json!({"type": 2, "message": message}),
                    ));
                }
            }
            _ => tracing::debug!(%method, "ignoring notification"),
        }
    }

    /// Handles one request; returns the response frame.
    pub async fn request(
        &self,
        method: &str,
        id: &Value,
        params: Value,
        tx: &Outbox,
        cancel: &CancellationToken,
    ) -> Bytes {
        match method {
            "llm/complete" => self.complete(id, params, tx, cancel).await,
            "llm/inlineCompletion" => self.inline_completion(id, params, tx, cancel).await,
            "llm/testConnection" => self.test_connection(id, params, tx, cancel).await,
            "llm/validateSettings" => self.validate(id, params),
            "llm/presets" => response(id, &presets::listing()),
            "llm/detect" => self.detect(id, params, cancel).await,
            "llm/models" => self.models(id, params, cancel).await,
            lsp::INLINE_COMPLETION => self.lsp_inline_completion(id, params, cancel).await,
            PANIC_METHOD if test_hooks() => panic!("panic requested through {PANIC_METHOD}"),
            _ => error(
                id,
                code::METHOD_NOT_FOUND,
                &format!("unknown method `{method}`"),
                None,
            ),
        }
    }

    fn resolve(&self, named: &Named, problems: &mut Vec<Problem>) -> Option<Settings> {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        match catalog.resolve(named.selection()) {
            Ok(settings) => Some(settings),
            Err(mut found) => {
                problems.append(&mut found);
                None
            }
        }
    }

    async fn complete(
        &self,
        id: &Value,
        params: Value,
        tx: &Outbox,
        cancel: &CancellationToken,
    ) -> Bytes {
        let mut problems = Vec::new();
        let Some(mut params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let stream_id = match params.remove("streamId") {
            None | Some(Value::Null) => None,
            Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
            Some(_) => {
                problems.push(Problem::new("streamId", "must be a string or a number"));
                None
            }
        };
        let messages = parse_messages(params.remove("messages"), true, &mut problems);
        let traced = take_trace(&mut params, &mut problems);
        let named = Named::take(&mut params, &mut problems);
        let settings = self.resolve(&named, &mut problems);
        let Some(settings) = settings.filter(|_| problems.is_empty()) else {
            return invalid_params(&problems).frame(id);
        };
        // Two streams under one id could not be told apart by the client.
        let _claim = match stream_id.as_ref().map(|s| self.claim_stream(s)) {
            Some(Err(problem)) => return invalid_params(&[problem]).frame(id),
            Some(Ok(claim)) => claim,
            None => None,
        };
        let pending = traced.then(trace::Pending::default);
        let mut tracer = pending.clone().map(|pending| {
            trace::TraceNotifier::new(stream_id.clone(), settings.secrets.clone(), pending)
        });
        let mut sink = NotifySink::new(stream_id.as_ref(), pending.clone(), tx);
        let trace_sink = tracer.as_mut().map(|t| t as &mut dyn TraceSink);
        let result = self
            .engine
            .complete_traced(&settings, &messages, &mut sink, cancel, trace_sink)
            .await;
        if let Some(pending) = &pending {
            pending.flush(tx);
        }
        match result {
            Ok(mut completion) => {
                if let Some(stream) = &sink.stream {
                    // Pieces merged while the client was not reading count once.
                    completion.chunks = stream.frames();
                }
                tracing::info!(
                    chunks = completion.chunks,
                    chars = completion.text.len(),
                    first_byte_ms = completion.timings.first_byte_ms,
                    total_ms = completion.timings.total_ms,
                    "completion finished"
                );
                response(id, &completion)
            }
            Err(failure) => failure_error(&failure).frame(id),
        }
    }

    /// Takes `stream_id` for one completion, unless a running one has it.
    fn claim_stream(&self, stream_id: &Value) -> Result<Option<StreamClaim<'_>>, Problem> {
        let Ok(id) = RequestId::from_value(stream_id) else {
            return Ok(None);
        };
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if !streams.insert(id.clone()) {
            return Err(Problem::new(
                "streamId",
                format!(
                    "{id} is in use by a completion that is still running; give each request its own streamId"
                ),
            ));
        }
        Ok(Some(StreamClaim {
            streams: &self.streams,
            id,
        }))
    }

    fn validate(&self, id: &Value, params: Value) -> Bytes {
        let mut problems = Vec::new();
        let Some(mut params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let named = Named::take(&mut params, &mut problems);
        let settings = self.resolve(&named, &mut problems);
        let (normalized, warnings) = match (&settings, problems.is_empty()) {
            (Some(settings), true) => (settings.describe(), settings.warnings.clone()),
            _ => (Value::Null, Vec::new()),
        };
        response(
            id,
            &json!({"ok": problems.is_empty(), "problems": problems, "warnings": warnings, "normalized": normalized}),
        )
    }

    async fn test_connection(
        &self,
        id: &Value,
        params: Value,
        tx: &Outbox,
        cancel: &CancellationToken,
    ) -> Bytes {
        if let Some(frame) = self.test_completion_if_asked(id, &params, tx, cancel).await {
            return frame;
        }
        let mut problems = Vec::new();
        let Some(mut params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let mut messages = parse_messages(params.remove("messages"), false, &mut problems);
        if messages.is_empty() {
            messages = probe::test_messages();
        }
        let traced = take_trace(&mut params, &mut problems);
        let stream_id = params
            .remove("streamId")
            .filter(|v| v.is_string() || v.is_number());
        let named = Named::take(&mut params, &mut problems);
        let settings = self.resolve(&named, &mut problems);
        let Some(settings) = settings.filter(|_| problems.is_empty()) else {
            let report = json!({"ok": false, "status": null, "contentType": null, "detectedResponseType": null,
                "firstByteMs": null, "firstChunkMs": null, "totalMs": null, "sampleText": "", "matched": false,
                "suggestions": [], "finishReason": null, "maxTokens": null, "stoppedEarly": false,
                "timeLimitMs": null, "error": invalid_params(&problems).to_json()});
            return response(id, &report);
        };
        let pending = traced.then(trace::Pending::default);
        let mut tracer = pending
            .clone()
            .map(|pending| trace::TraceNotifier::new(stream_id, settings.secrets.clone(), pending));
        let trace_sink = tracer.as_mut().map(|t| t as &mut dyn TraceSink);
        let (report, failure) =
            probe::run_traced(&self.engine, &settings, &messages, cancel, trace_sink).await;
        if let Some(pending) = &pending {
            pending.flush(tx);
        }
        let mut report = serde_json::to_value(&report).unwrap_or_default();
        if let Some(failure) = failure {
            // Cancelled by the client: answered as every cancelled request is.
            if cancel.is_cancelled() && matches!(failure.kind, FailureKind::Cancelled) {
                return failure_error(&failure).frame(id);
            }
            report["error"] = failure_error(&failure).to_json();
        }
        response(id, &report)
    }
}

/// `-32602` with every problem.
fn invalid_params(problems: &[Problem]) -> RpcError {
    // The request's own params; any other field belongs to the settings.
    const PARAMS: &[&str] = &[
        "streamId", "params", "trace", "prefix", "suffix", "language", "path", "invoked",
    ];
    let in_settings = problems
        .iter()
        .any(|p| !p.field.starts_with("messages") && !PARAMS.contains(&p.field.as_str()));
    let kind = if in_settings {
        "invalid_settings"
    } else {
        "invalid_params"
    };
    let summary = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ");
    let what = if in_settings { "settings" } else { "params" };
    RpcError {
        code: code::INVALID_PARAMS,
        message: format!("invalid {what}: {summary}"),
        data: json!({"kind": kind, "problems": problems}),
    }
}

/// The error for a failed completion.
fn failure_error(failure: &Failure) -> RpcError {
    if let FailureKind::InvalidSettings { problems } = &failure.kind {
        return invalid_params(problems);
    }
    let mut data = match serde_json::to_value(&failure.kind) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    data.insert(
        "partialText".to_owned(),
        Value::from(failure.partial_text.as_str()),
    );
    if !failure.partial_reasoning.is_empty() {
        data.insert(
            "partialReasoning".to_owned(),
            Value::from(failure.partial_reasoning.as_str()),
        );
    }
    data.insert("attempts".to_owned(), Value::from(failure.attempts));
    if let Some(read_as) = failure.response_type {
        data.insert("responseType".to_owned(), Value::from(read_as.as_str()));
    }
    let mut timings = Map::new();
    if let Some(first_byte) = failure.first_byte_ms {
        timings.insert("firstByteMs".to_owned(), Value::from(first_byte));
    }
    timings.insert("totalMs".to_owned(), Value::from(failure.total_ms));
    data.insert("timings".to_owned(), Value::Object(timings));
    let code = match failure.kind {
        FailureKind::Cancelled => code::REQUEST_CANCELLED,
        _ => code::REQUEST_FAILED,
    };
    if matches!(failure.kind, FailureKind::Cancelled) {
        tracing::info!(attempts = failure.attempts, "completion cancelled");
    } else {
        tracing::warn!(
            kind = failure.kind_name(),
            attempts = failure.attempts,
            "completion failed"
        );
    }
    RpcError {
        code,
        message: failure.message(),
        data: Value::Object(data),
    }
}

#[cfg(test)]
mod tests {
    use super::super::outbox::chunk_frame;
    use super::*;

    #[test]
    fn error_kinds_for_params() {
        let e = invalid_params(&[Problem::new("messages", "x")]);
        assert_eq!(e.data["kind"], "invalid_params");
        let e = invalid_params(&[
            Problem::new("messages", "x"),
            Problem::new("customEngineServer", "y"),
        ]);
        assert_eq!(e.data["kind"], "invalid_settings");
        assert_eq!(e.code, code::INVALID_PARAMS);
    }

    #[test]
    fn chunk_frames_are_what_serde_would_write() {
        use serde::Serialize;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChunkParams<'a> {
            stream_id: &'a Value,
            seq: u64,
            text: &'a str,
            kind: ChunkKind,
        }
        let out = Outbox::new();
        for id in [json!("chat-42"), json!(7), json!("q\"\\\u{1}é")] {
            let sink = NotifySink::new(Some(&id), None, &out);
            let prefix = sink.stream.as_ref().unwrap().prefix();
            for (seq, kind, text) in [
                (0, ChunkKind::Content, "Hello"),
                (10, ChunkKind::Reasoning, ""),
                (
                    u64::MAX,
                    ChunkKind::Content,
                    "a \"quote\"\n\\ \u{7f} 👋 \u{2028}",
                ),
            ] {
                let expected = notification(
                    "llm/chunk",
                    &ChunkParams {
                        stream_id: &id,
                        seq,
                        text,
                        kind,
                    },
                );
                assert_eq!(chunk_frame(prefix, seq, kind, text), expected);
            }
        }
        assert!(NotifySink::new(None, None, &out).stream.is_none());
    }
}
