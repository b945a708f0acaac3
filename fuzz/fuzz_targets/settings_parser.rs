//! Settings parser.
//!
//! Two ways in, chosen by the input itself:
//! - **raw**: an input that parses as JSON is given to `Settings::from_json` as is
//!   (the seeds are whole settings objects);
//! - **structured**: any other input drives `arbitrary` to build a settings object
//!   from the known keys (`customEngineServer`, `customEngineResponseType`,
//!   `customEngineResponseFormat`, `customEngineRequestFormat` as a JSON string or an
//!   object, `timeouts`, `retry`, limits, `proxy`, …) filled with arbitrary strings,
//!   numbers and JSON, so the fuzzer reaches the deep checks (URL, JsonPath, header
//!   names and values, nested request format) instead of stopping at "not an object".
//!
//! Checks: `from_json` never panics; an `Err` has at least one problem and every
//! problem has a non-empty field and message; an `Ok` is usable: its limits are
//! positive, the request body built from it is valid JSON, its headers build, and
//! the token is scrubbed from text that echoes it.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use llm_sidecar::extract::Extractor;
use llm_sidecar::request::{self, Message, Role};
use llm_sidecar::settings::Settings;
use serde_json::{Map, Number, Value};

const KNOWN_KEYS: &[&str] = &[
    "customEngineServer",
    "customEngineToken",
    "customEngineResponseType",
    "customEngineResponseFormat",
    "customEngineRequestFormat",
    "reasoningFormat",
    "timeouts",
    "retry",
    "maxEventBytes",
    "maxResponseBytes",
    "proxy",
    "caCertificates",
    "tokenHeader",
    "systemField",
    "preset",
    // The 2.x `customLlms` entry form and the 2.2 form.
    "url",
    "auth",
    "requestFormat",
    "responseFormat",
    "responseType",
    "customRequest",
    "maxTokens",
    "model",
    "name",
    "description",
    "modelType",
    // Other AutoDev settings, accepted silently.
    "aiEngine",
    "customModel",
    "openAiKey",
];
const PRESETS: &[&str] = &[
    "openai", "azure-openai", "azure", "anthropic", "claude", "gemini", "deepseek", "yi", "glm", "moonshot", "qwen",
    "openrouter", "groq", "mistral", "ollama", "ollama-openai", "lm-studio", "vllm", "llama.cpp", "OpenAI",
];
const AUTH_TYPES: &[&str] = &["Bearer", "bearer", "Basic", "None", "ApiKey"];
const SCHEMES: &[&str] = &["http", "https", "HTTP", "ftp", "socks5", "socks5h", "file", "data", ""];
const HOSTS: &[&str] = &["127.0.0.1:8080", "api.deepseek.com", "[::1]:11434", "localhost", "user:pa%20ss@h", "", "xn--n3h.com"];
const RESPONSE_TYPES: &[&str] = &["SSE", "sse", "JSON", "ndjson", "JSONL", "json-lines", "text/event-stream", "application/json", "application/x-ndjson", "stream", "", " Sse "];
const PATHS: &[&str] = &[
    "$.choices[0].delta.content",
    "$.candidates[0].content.parts[0].text",
    "$.delta.text",
    "$.message.content",
    "choices[0].message.content",
    "[0].text",
    "$..content",
    "$.choices[?(@.index==0)].delta.content",
    "$['a b'][-1:]",
    "$.choices[0.delta",
];
const TIMEOUT_KEYS: &[&str] = &["connectMs", "firstByteMs", "idleMs", "totalMs", "idle", "connect_ms"];
const RETRY_KEYS: &[&str] = &["maxRetries", "initialBackoffMs", "maxBackoffMs", "retries"];
const FORMAT_KEYS: &[&str] = &["customFields", "customHeaders", "messageKeys", "fields", "custumFields", "model"];
const HEADER_NAMES: &[&str] = &["Authorization", "X-Api-Key", "api-key", "Content-Type", "x-goog-api-key", "bad name", "X-Trace"];

/// Arbitrary JSON, nested at most `depth` levels.
fn json(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::String(text(u)?),
        6 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array((0..n).map(|_| json(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(text(u)?, json(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// A string: arbitrary, or one of `choices`, or one of them with arbitrary text around it.
fn pick(u: &mut Unstructured, choices: &[&str]) -> Result<String> {
    Ok(match u.choose_index(4)? {
        0 => text(u)?,
        1 => format!("{}{}", u.choose(choices)?, text(u)?),
        2 => format!("{}{}", text(u)?, u.choose(choices)?),
        _ => (*u.choose(choices)?).to_owned(),
    })
}

fn text(u: &mut Unstructured) -> Result<String> {
    u.arbitrary()
}

/// A value for a key: usually the expected shape, sometimes any JSON.
fn or_any(u: &mut Unstructured, expected: impl FnOnce(&mut Unstructured) -> Result<Value>) -> Result<Value> {
    if u.ratio(1, 8)? { json(u, 2) } else { expected(u) }
}

fn number(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.choose_index(6)? {
        0 => Value::from(u.int_in_range(0u64..=20)?),
        1 => Value::from(u.arbitrary::<u64>()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(text(u)?),
        _ => Value::from(u64::MAX),
    })
}

fn url(u: &mut Unstructured) -> Result<Value> {
    Ok(Value::String(match u.choose_index(3)? {
        0 => text(u)?,
        _ => format!("{}://{}{}", u.choose(SCHEMES)?, pick(u, HOSTS)?, text(u)?),
    }))
}

fn keyed_object(u: &mut Unstructured, keys: &[&str], value: fn(&mut Unstructured) -> Result<Value>) -> Result<Value> {
    let n = u.int_in_range(0..=4)?;
    let mut map = Map::new();
    for _ in 0..n {
        map.insert(pick(u, keys)?, value(u)?);
    }
    Ok(Value::Object(map))
}

fn header_value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.choose_index(4)? {
        0 => Value::from(u.arbitrary::<i64>()?),
        1 => Value::Bool(u.arbitrary()?),
        2 => json(u, 1)?,
        _ => Value::String(text(u)?),
    })
}

fn request_format(u: &mut Unstructured) -> Result<Value> {
    let mut map = Map::new();
    let n = u.int_in_range(0..=4)?;
    for _ in 0..n {
        let key = pick(u, FORMAT_KEYS)?;
        let value = match key.as_str() {
            "customFields" => or_any(u, |u| json(u, 3))?,
            "customHeaders" => or_any(u, |u| keyed_object(u, HEADER_NAMES, header_value))?,
            "messageKeys" => or_any(u, |u| keyed_object(u, &["role", "content", "name"], |u| json(u, 0)))?,
            "fields" => or_any(u, |u| {
                keyed_object(u, &["query", "inputs", "prompt"], |u| {
                    Ok(if u.arbitrary()? { Value::from("$content") } else { json(u, 2)? })
                })
            })?,
            _ => json(u, 2)?,
        };
        map.insert(key, value);
    }
    let object = Value::Object(map);
    // As the AutoDev dialog stores it (a JSON string), as an object, or as any text.
    Ok(match u.choose_index(3)? {
        0 => Value::String(object.to_string()),
        1 => object,
        _ => Value::String(text(u)?),
    })
}

fn structured(u: &mut Unstructured) -> Result<Value> {
    if u.ratio(1, 32)? {
        return json(u, 3);
    }
    let mut map = Map::new();
    let n = u.int_in_range(0..=16)?;
    for _ in 0..n {
        let key = pick(u, KNOWN_KEYS)?;
        let value = match key.as_str() {
            "customEngineServer" => or_any(u, url)?,
            "customEngineResponseType" => or_any(u, |u| Ok(Value::String(pick(u, RESPONSE_TYPES)?)))?,
            "customEngineResponseFormat" | "reasoningFormat" => or_any(u, |u| Ok(Value::String(pick(u, PATHS)?)))?,
            "customEngineRequestFormat" => request_format(u)?,
            "timeouts" => or_any(u, |u| keyed_object(u, TIMEOUT_KEYS, number))?,
            "retry" => or_any(u, |u| keyed_object(u, RETRY_KEYS, number))?,
            "maxEventBytes" | "maxResponseBytes" => number(u)?,
            "proxy" => or_any(u, url)?,
            "url" => or_any(u, url)?,
            "preset" => or_any(u, |u| Ok(Value::String(pick(u, PRESETS)?)))?,
            "tokenHeader" => or_any(u, |u| Ok(Value::String(pick(u, HEADER_NAMES)?)))?,
            "requestFormat" => request_format(u)?,
            "responseFormat" => or_any(u, |u| Ok(Value::String(pick(u, PATHS)?)))?,
            "responseType" => or_any(u, |u| Ok(Value::String(pick(u, RESPONSE_TYPES)?)))?,
            "maxTokens" => number(u)?,
            "model" => or_any(u, |u| Ok(Value::String(text(u)?)))?,
            "auth" => or_any(u, |u| {
                let mut auth = Map::new();
                if u.arbitrary()? {
                    auth.insert("type".into(), Value::String(pick(u, AUTH_TYPES)?));
                }
                if u.arbitrary()? {
                    auth.insert("token".into(), Value::String(text(u)?));
                }
                Ok(Value::Object(auth))
            })?,
            "customRequest" => or_any(u, |u| {
                let mut request = Map::new();
                if u.arbitrary()? {
                    request.insert("headers".into(), or_any(u, |u| keyed_object(u, HEADER_NAMES, header_value))?);
                }
                if u.arbitrary()? {
                    request.insert("body".into(), json(u, 3)?);
                }
                if u.arbitrary()? {
                    request.insert("stream".into(), json(u, 0)?);
                }
                Ok(Value::Object(request))
            })?,
            _ => or_any(u, |u| Ok(Value::String(text(u)?)))?,
        };
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn check(value: &Value, messages: &[Message]) {
    match Settings::from_json(value) {
        Err(problems) => {
            assert!(!problems.is_empty(), "Err without a problem for {value}");
            for p in &problems {
                assert!(!p.field.is_empty(), "problem without a field: {p:?} for {value}");
                assert!(!p.message.is_empty(), "problem without a message: {p:?} for {value}");
            }
        }
        Ok(settings) => {
            assert!(matches!(settings.url.scheme(), "http" | "https"), "accepted URL {}", settings.url);
            assert!(settings.limits.max_event_bytes > 0 && settings.limits.max_response_bytes > 0);
            assert!(settings.retry.max_retries <= 10);
            let _ = settings.display_url();
            let body = request::body(&settings.body, messages);
            serde_json::from_slice::<Value>(&body).expect("the request body is JSON");
            let _ = request::headers(&settings);
            if let Some(token) = &settings.token {
                let token = token.trim();
                // A secret containing the mask's own `…` could be re-formed by masking.
                if token.len() >= 4 && !token.contains('…') {
                    let scrubbed = settings.secrets.scrub(&format!("echo {token} and {token}."));
                    assert!(!scrubbed.contains(token), "token {token:?} survives scrubbing: {scrubbed:?}");
                }
            }
            let _ = Extractor::new(settings.content_path.as_ref(), settings.reasoning_path.as_ref());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let messages = [
        Message { role: Role::System, content: "be brief".into() },
        Message { role: Role::User, content: "hi $content".into() },
    ];
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check(&value, &messages);
        return;
    }
    let mut u = Unstructured::new(data);
    if let Ok(value) = structured(&mut u) {
        let role = *u.choose(&[Role::System, Role::User, Role::Assistant]).unwrap_or(&Role::User);
        let content: String = u.arbitrary().unwrap_or_default();
        let messages = [Message { role, content }];
        check(&value, &messages);
    }
});
