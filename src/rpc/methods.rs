//! The sidecar's JSON-RPC methods: params in, engine call, frames out.
//!
//! Thin by design: params are checked here (every problem at once, settings
//! problems included), the completion itself is [`Engine::complete`], and
//! the engine's [`Failure`]s become JSON-RPC errors with their data.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::{code, error, notification, response};
use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind};
use crate::request::Message;
use crate::settings::{Problem, Settings};

/// State shared by every request.
#[derive(Debug, Default)]
pub struct Methods {
    engine: Engine,
}

/// Requests that run as their own task.
const TASK_METHODS: &[&str] = &["llm/complete"];

/// True when `method` is handled by [`Methods::request`].
pub fn is_known(method: &str) -> bool {
    TASK_METHODS.contains(&method)
}

/// `llm/chunk` params.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkParams<'a> {
    stream_id: &'a Value,
    seq: u64,
    text: &'a str,
    kind: ChunkKind,
}

/// Sends each piece as an `llm/chunk` notification, when a stream id was given.
struct NotifySink {
    stream_id: Option<Value>,
    seq: u64,
    tx: mpsc::Sender<Bytes>,
}

impl ChunkSink for NotifySink {
    async fn chunk(&mut self, kind: ChunkKind, text: &str) {
        let Some(stream_id) = &self.stream_id else {
            return;
        };
        let frame = notification(
            "llm/chunk",
            &ChunkParams {
                stream_id,
                seq: self.seq,
                text,
                kind,
            },
        );
        self.seq += 1;
        let _ = self.tx.send(frame).await;
    }
}

/// Checked `llm/complete` params.
struct CompleteParams {
    stream_id: Option<Value>,
    settings: Settings,
    messages: Vec<Message>,
}

impl Methods {
    pub fn new() -> Self {
        Methods::default()
    }

    /// The `initialize` result.
    pub fn initialize(&self, _params: &Value) -> Value {
        json!({
            "serverInfo": {"name": "llm-sidecar", "version": env!("CARGO_PKG_VERSION")},
            "capabilities": {
                "methods": ["llm/complete"],
                "notifications": ["llm/chunk"],
                "responseTypes": ["SSE", "JSON", "NDJSON"],
                "cancel": "$/cancelRequest",
            }
        })
    }

    /// A notification other than the lifecycle ones.
    pub fn notification(&self, method: &str, _params: &Value) {
        tracing::debug!(%method, "ignoring notification");
    }

    /// Handles one request; returns the response frame.
    pub async fn request(
        &self,
        method: &str,
        id: &Value,
        params: Value,
        tx: &mpsc::Sender<Bytes>,
        cancel: &CancellationToken,
    ) -> Bytes {
        match method {
            "llm/complete" => self.complete(id, params, tx, cancel).await,
            _ => error(id, code::METHOD_NOT_FOUND, &format!("unknown method `{method}`"), None),
        }
    }

    async fn complete(&self, id: &Value, params: Value, tx: &mpsc::Sender<Bytes>, cancel: &CancellationToken) -> Bytes {
        let params = match parse_complete(params) {
            Ok(params) => params,
            Err(problems) => return invalid_params(id, &problems),
        };
        let mut sink = NotifySink {
            stream_id: params.stream_id,
            seq: 0,
            tx: tx.clone(),
        };
        let outcome = self
            .engine
            .complete(&params.settings, &params.messages, &mut sink, cancel)
            .await;
        match outcome {
            Ok(completion) => {
                tracing::info!(
                    chunks = completion.chunks,
                    chars = completion.text.len(),
                    first_byte_ms = completion.timings.first_byte_ms,
                    total_ms = completion.timings.total_ms,
                    "completion finished"
                );
                response(id, &completion)
            }
            Err(failure) => failure_response(id, &failure),
        }
    }
}

/// `-32602` with every problem.
fn invalid_params(id: &Value, problems: &[Problem]) -> Bytes {
    let in_settings = problems.iter().any(|p| !p.field.starts_with("messages") && p.field != "streamId");
    let kind = if in_settings { "invalid_settings" } else { "invalid_params" };
    let summary = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ");
    let data = json!({"kind": kind, "problems": problems});
    error(id, code::INVALID_PARAMS, &format!("invalid {}: {summary}", kind.replace('_', " ").trim_start_matches("invalid ")), Some(&data))
}

/// The error response for a failed completion.
pub fn failure_response(id: &Value, failure: &Failure) -> Bytes {
    if let FailureKind::InvalidSettings { problems } = &failure.kind {
        return invalid_params(id, problems);
    }
    let mut data = match serde_json::to_value(&failure.kind) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    data.insert("partialText".to_owned(), Value::from(failure.partial_text.as_str()));
    data.insert("attempts".to_owned(), Value::from(failure.attempts));
    let code = match failure.kind {
        FailureKind::Cancelled => code::REQUEST_CANCELLED,
        _ => code::REQUEST_FAILED,
    };
    tracing::warn!(kind = failure.kind_name(), attempts = failure.attempts, "completion failed");
    error(id, code, &failure.message(), Some(&Value::Object(data)))
}

#[derive(Deserialize)]
struct RawMessage {
    role: Value,
    content: Value,
}

/// Checks `llm/complete` params; every problem is reported at once.
fn parse_complete(params: Value) -> Result<CompleteParams, Vec<Problem>> {
    let mut problems = Vec::new();
    let Value::Object(mut map) = params else {
        return Err(vec![Problem::new(
            "params",
            "must be an object: {\"settings\": {...}, \"messages\": [...], \"streamId\"?: ...}",
        )]);
    };
    let stream_id = match map.remove("streamId") {
        None | Some(Value::Null) => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => {
            problems.push(Problem::new("streamId", "must be a string or a number"));
            None
        }
    };
    let messages = parse_messages(map.remove("messages"), &mut problems);
    let settings = match map.remove("settings") {
        None | Some(Value::Null) => {
            problems.push(Problem::new("settings", "is required: the LLM server settings (at least customEngineServer)"));
            None
        }
        Some(value) => match Settings::from_json(&value) {
            Ok(settings) => Some(settings),
            Err(mut found) => {
                problems.append(&mut found);
                None
            }
        },
    };
    match settings {
        Some(settings) if problems.is_empty() => Ok(CompleteParams {
            stream_id,
            settings,
            messages,
        }),
        _ => Err(problems),
    }
}

fn parse_messages(value: Option<Value>, problems: &mut Vec<Problem>) -> Vec<Message> {
    let list = match value {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            problems.push(Problem::new("messages", "must hold at least one message"));
            return Vec::new();
        }
        None | Some(Value::Null) => {
            problems.push(Problem::new("messages", "is required: [{\"role\": \"user\", \"content\": \"...\"}]"));
            return Vec::new();
        }
        Some(_) => {
            problems.push(Problem::new("messages", "must be an array of {role, content}"));
            return Vec::new();
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let field = format!("messages[{i}]");
        let Ok(raw) = serde_json::from_value::<RawMessage>(item) else {
            problems.push(Problem::new(field, "must be an object with `role` and `content`"));
            continue;
        };
        let role = serde_json::from_value(raw.role.clone());
        let content = raw.content.as_str().map(str::to_owned);
        if role.is_err() {
            problems.push(Problem::new(
                format!("{field}.role"),
                format!("must be \"system\", \"user\" or \"assistant\", got {}", raw.role),
            ));
        }
        if content.is_none() {
            problems.push(Problem::new(format!("{field}.content"), "must be a string"));
        }
        if let (Ok(role), Some(content)) = (role, content) {
            messages.push(Message { role, content });
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_param_problems_at_once() {
        let problems = parse_complete(json!({
            "streamId": {"x": 1},
            "settings": {"customEngineServer": "nope"},
            "messages": [{"role": "robot", "content": 1}]
        }))
        .err()
        .unwrap();
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["streamId", "messages[0].role", "messages[0].content", "customEngineServer"]);
    }

    #[test]
    fn good_params() {
        let p = parse_complete(json!({
            "streamId": 3,
            "settings": {"customEngineServer": "http://127.0.0.1:9/"},
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .ok()
        .unwrap();
        assert_eq!(p.stream_id, Some(json!(3)));
        assert_eq!(p.messages.len(), 1);
    }
}
