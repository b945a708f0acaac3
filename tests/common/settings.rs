//! Builders for `llm/complete` params (settings as AutoDev names them) and for the response bodies
//! the mock serves.

use serde_json::{Map, Value, json};

/// The default path for OpenAI-style streams.
pub const DELTA_PATH: &str = "$.choices[0].delta.content";
/// The default path for OpenAI-style JSON bodies.
pub const MESSAGE_PATH: &str = "$.choices[0].message.content";

/// The `settings` object of `llm/complete`.
#[derive(Clone, Debug)]
pub struct Settings(Map<String, Value>);

impl Settings {
    /// Only `customEngineServer`: every other key takes its default.
    pub fn new(url: impl Into<String>) -> Settings {
        let mut map = Map::new();
        map.insert("customEngineServer".into(), Value::String(url.into()));
        Settings(map)
    }

    /// SSE with the given JsonPath.
    pub fn sse(url: impl Into<String>, path: &str) -> Settings {
        Settings::new(url).response_type("SSE").path(path)
    }

    /// `customEngineResponseType`.
    pub fn response_type(self, response_type: &str) -> Settings {
        self.set("customEngineResponseType", response_type)
    }

    /// `customEngineResponseFormat` (the JsonPath).
    pub fn path(self, path: &str) -> Settings {
        self.set("customEngineResponseFormat", path)
    }

    /// `customEngineToken`.
    pub fn token(self, token: &str) -> Settings {
        self.set("customEngineToken", token)
    }

    /// `customEngineRequestFormat`, as an object or as a JSON string.
    pub fn request_format(self, format: Value) -> Settings {
        self.set("customEngineRequestFormat", format)
    }

    /// `reasoningFormat`.
    pub fn reasoning(self, path: &str) -> Settings {
        self.set("reasoningFormat", path)
    }

    /// `retry.maxRetries = 0`, so error tests see exactly one attempt.
    pub fn no_retries(self) -> Settings {
        self.set("retry", json!({"maxRetries": 0}))
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Settings {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn remove(mut self, key: &str) -> Settings {
        self.0.remove(key);
        self
    }

    /// `llm/complete` params with one user message "hi" and no streamId.
    pub fn params(self) -> Complete {
        Complete::new(self)
    }
}

impl From<Settings> for Value {
    fn from(settings: Settings) -> Value {
        Value::Object(settings.0)
    }
}

/// `llm/complete` params.
#[derive(Clone, Debug)]
pub struct Complete(Map<String, Value>);

impl Complete {
    pub fn new(settings: impl Into<Value>) -> Complete {
        let mut map = Map::new();
        map.insert("settings".into(), settings.into());
        map.insert("messages".into(), user("hi"));
        Complete(map)
    }

    pub fn stream_id(mut self, id: impl Into<Value>) -> Complete {
        self.0.insert("streamId".into(), id.into());
        self
    }

    pub fn messages(mut self, messages: Value) -> Complete {
        self.0.insert("messages".into(), messages);
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

impl From<Complete> for Value {
    fn from(params: Complete) -> Value {
        params.build()
    }
}

/// `[{"role": "user", "content": text}]`
pub fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// One SSE event with single-line `data`.
pub fn sse_event(data: &str) -> String {
    format!("data: {data}\n\n")
}

/// An OpenAI chat-completion chunk carrying `text` in `choices[0].delta.content`.
pub fn openai_delta(text: &str) -> String {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
        .to_string()
}

/// An OpenAI SSE body: one event per text, then `data: [DONE]`.
pub fn openai_sse(texts: &[&str]) -> String {
    let mut body: String = texts.iter().map(|t| sse_event(&openai_delta(t))).collect();
    body.push_str(&sse_event("[DONE]"));
    body
}

/// An OpenAI non-streaming chat completion whose message is `text`.
pub fn openai_message(text: &str) -> String {
    json!({
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }]
    })
    .to_string()
}

/// `json` re-serialised pretty-printed (multi-line, as many servers send JSON bodies).
/// A code completion answer (one JSON body) with `text` wherever the common completion shapes
/// put it: OpenAI-style `choices[0].text` and `choices[0].message.content`, llama.cpp's
/// `content`, Ollama's `response`.
pub fn completion_answer(text: &str) -> String {
    json!({
        "choices": [{"index": 0, "text": text, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "content": text,
        "response": text,
    })
    .to_string()
}

pub fn pretty(json: &str) -> String {
    let value: Value = serde_json::from_str(json).expect("valid JSON");
    serde_json::to_string_pretty(&value).unwrap()
}
