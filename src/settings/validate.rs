//! Field-by-field checks of the canonical settings keys (all but the
//! request format, see [`super::request_format`]): each parser reads one
//! key, pushes a [`Problem`] naming it when it is wrong, and returns the
//! usable value or the default, so every problem is found in one pass.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderName;
use serde_json::{Map, Value};

use super::typo::closest;

use super::*;

/// Proxy schemes the HTTP client can use (`socks5h` resolves names at the proxy).
const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];
/// The longest retry wait that may be configured, in milliseconds.
const MAX_BACKOFF_MS: u64 = 60_000;
/// The longest time limit that may be configured, in milliseconds (24 h).
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

pub(super) fn check_unknown_keys(map: &Map<String, Value>, problems: &mut Vec<Problem>) {
    for key in map.keys() {
        if KNOWN_KEYS.contains(&key.as_str()) || AUTODEV_EXTRA_KEYS.contains(&key.as_str()) {
            continue;
        }
        match closest(key, KNOWN_KEYS) {
            Some(known) => problems.push(Problem::new(
                key.as_str(),
                format!("unknown key; did you mean `{known}`?"),
            )),
            None => tracing::warn!(key = %key, "ignoring unknown settings key"),
        }
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn parse_url(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Url> {
    let example = "e.g. https://api.deepseek.com/v1/chat/completions";
    let text = match value {
        None | Some(Value::Null) => {
            problems.push(Problem::new(
                SERVER,
                format!("is required: the full URL of the server's chat endpoint, {example}"),
            ));
            return None;
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push(Problem::new(
                SERVER,
                format!("is empty: give the full URL of the server's chat endpoint, {example}"),
            ));
            return None;
        }
        Some(Value::String(s)) => s.trim(),
        Some(other) => {
            problems.push(Problem::new(
                SERVER,
                format!("must be a string URL, got {}", kind_of(other)),
            ));
            return None;
        }
    };
    if let Some(problem) = rewritten_character(SERVER, text) {
        problems.push(problem);
        return None;
    }
    match Url::parse(text) {
        Ok(url) if url.scheme() != "http" && url.scheme() != "https" => {
            problems.push(Problem::new(
                SERVER,
                format!(
                    "must start with http:// or https:// (got `{}:`)",
                    url.scheme()
                ),
            ));
            None
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            problems.push(Problem::new(SERVER, "has no host name"));
            None
        }
        Ok(url) => Some(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            problems.push(Problem::new(
                SERVER,
                format!("is not a full URL: add the scheme, e.g. https://{text}"),
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::new(SERVER, format!("is not a valid URL: {e}")));
            None
        }
    }
}

pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(Problem::new(
                key,
                format!("must be a string, got {}", kind_of(other)),
            ));
            None
        }
    }
}

pub(super) fn parse_response_type(
    value: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> ResponseType {
    let text = match value {
        None | Some(Value::Null) => return ResponseType::Sse,
        Some(Value::String(s)) => s.trim(),
        Some(other) => {
            problems.push(Problem::new(
                RESPONSE_TYPE,
                format!(
                    "must be \"SSE\", \"JSON\" or \"NDJSON\", got {}",
                    kind_of(other)
                ),
            ));
            return ResponseType::Sse;
        }
    };
    match text.to_ascii_uppercase().as_str() {
        "" | "SSE" | "STREAM" | "EVENT-STREAM" | "TEXT/EVENT-STREAM" => ResponseType::Sse,
        "JSON" | "APPLICATION/JSON" => ResponseType::Json,
        "NDJSON" | "JSONL" | "JSON-LINES" | "APPLICATION/X-NDJSON" => ResponseType::Ndjson,
        _ => {
            problems.push(Problem::new(
                RESPONSE_TYPE,
                format!("unknown response type `{text}`: use \"SSE\" (streamed events), \"JSON\" (one JSON body) or \"NDJSON\" (one JSON object per line, as Ollama's native API)"),
            ));
            ResponseType::Sse
        }
    }
}

pub(super) fn parse_path(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<CompiledPath> {
    let text = optional_string(map, key, problems)?;
    if text.trim().is_empty() {
        return None;
    }
    match CompiledPath::compile(&text) {
        Ok(path) => Some(path),
        Err(e) => {
            problems.push(Problem::new(
                key,
                format!("invalid JsonPath `{}`: {e}", text.trim()),
            ));
            None
        }
    }
}

pub(super) fn parse_token_header(
    map: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Option<HeaderName> {
    let name = optional_string(map, TOKEN_HEADER, problems)?;
    let name = name.trim();
    if name.is_empty() || name.eq_ignore_ascii_case("authorization") {
        return None;
    }
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(header) => match super::request_format::refused_header(&header) {
            Some(why) => {
                problems.push(Problem::new(
                    TOKEN_HEADER,
                    format!("`{name}` cannot carry the token: {why}"),
                ));
                None
            }
            None => Some(header),
        },
        Err(_) => {
            problems.push(Problem::new(
                TOKEN_HEADER,
                "is not a valid HTTP header name",
            ));
            None
        }
    }
}

pub(super) fn object<'a>(
    value: Option<&'a Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    match value? {
        Value::Object(map) => Some(map),
        Value::Null => None,
        other => {
            problems.push(Problem::new(
                key,
                format!("must be an object, got {}", kind_of(other)),
            ));
            None
        }
    }
}

/// A positive integer member; `None` when absent or null.
pub(super) fn positive_integer(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    positive_integer_at(map.get(key), key, problems)
}

pub(super) fn positive_integer_at(
    value: Option<&Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    match value? {
        Value::Null => None,
        Value::Number(n) if n.as_u64().is_some_and(|v| v > 0) => n.as_u64(),
        other => {
            problems.push(Problem::new(
                field,
                format!("must be a positive whole number, got {other}"),
            ));
            None
        }
    }
}

pub(super) fn parse_timeouts(value: Option<&Value>, problems: &mut Vec<Problem>) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let Some(map) = object(value, TIMEOUTS, problems) else {
        return timeouts;
    };
    let mut known: BTreeMap<&str, u64> = BTreeMap::new();
    for (key, member) in map {
        let field = format!("{TIMEOUTS}.{key}");
        match key.as_str() {
            "connectMs" | "firstByteMs" | "idleMs" | "totalMs" => {
                if let Some(ms) = bounded_ms(member, &field, MAX_TIMEOUT_MS, "24 hours", problems) {
                    known.insert(key.as_str(), ms);
                }
            }
            _ => problems.push(Problem::new(
                field,
                "unknown timeout; use connectMs, firstByteMs, idleMs or totalMs",
            )),
        }
    }
    let ms = Duration::from_millis;
    if let Some(v) = known.get("connectMs") {
        timeouts.connect = ms(*v);
    }
    if let Some(v) = known.get("firstByteMs") {
        timeouts.first_byte = ms(*v);
    }
    if let Some(v) = known.get("idleMs") {
        timeouts.idle = ms(*v);
    }
    timeouts.total = known.get("totalMs").map(|v| ms(*v));
    timeouts
}

pub(super) fn parse_retry(value: Option<&Value>, problems: &mut Vec<Problem>) -> RetryPolicy {
    let mut retry = RetryPolicy::default();
    let Some(map) = object(value, RETRY, problems) else {
        return retry;
    };
    let max_given = map.get("maxBackoffMs").is_some_and(|v| !v.is_null());
    for (key, member) in map {
        let field = format!("{RETRY}.{key}");
        match key.as_str() {
            "maxRetries" => match member.as_u64() {
                Some(n) if n <= 10 => retry.max_retries = n as u32,
                _ => problems.push(Problem::new(field, "must be a whole number from 0 to 10")),
            },
            "initialBackoffMs" => {
                if let Some(v) = bounded_ms(member, &field, MAX_BACKOFF_MS, "60 s", problems) {
                    retry.initial_backoff = Duration::from_millis(v);
                }
            }
            "maxBackoffMs" => {
                if let Some(v) = bounded_ms(member, &field, MAX_BACKOFF_MS, "60 s", problems) {
                    retry.max_backoff = Duration::from_millis(v);
                }
            }
            _ => problems.push(Problem::new(
                field,
                "unknown retry setting; use maxRetries, initialBackoffMs or maxBackoffMs",
            )),
        }
    }
    if retry.initial_backoff > retry.max_backoff {
        problems.push(Problem::new(
            format!("{RETRY}.initialBackoffMs"),
            format!(
                "is {} ms, more than maxBackoffMs ({} ms{}): the first wait must not be longer than the longest one",
                retry.initial_backoff.as_millis(),
                retry.max_backoff.as_millis(),
                if max_given { "" } else { ", the default" }
            ),
        ));
    }
    retry
}

/// A positive number of milliseconds of at most `max`.
fn bounded_ms(
    member: &Value,
    field: &str,
    max: u64,
    max_words: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    let ms = positive_integer_at(Some(member), field, problems)?;
    if ms > max {
        problems.push(Problem::new(
            field,
            format!("is {ms} ms; at most {max} ({max_words}) is accepted"),
        ));
        return None;
    }
    Some(ms)
}

/// A character that the URL parser would silently drop, percent-encode or
/// rewrite, pasted inside a URL: control characters (tab and line breaks are
/// removed), spaces, invisible characters, the backslash (turned into `/`),
/// and the quote, angle brackets, backtick, braces, bar and caret
/// (percent-encoded).
fn rewritten_character(field: &str, url: &str) -> Option<Problem> {
    let (position, c) = url.chars().enumerate().find(|(_, c)| {
        c.is_control()
            || c.is_whitespace()
            || matches!(c, '\\' | '"' | '<' | '>' | '`' | '{' | '}' | '|' | '^')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}')
    })?;
    let name = match c {
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        ' ' => "a space".to_owned(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c => format!("an invisible character (U+{:04X})", c as u32),
    };
    Some(Problem::new(
        field,
        format!(
            "contains {name} at position {}, which the URL parser would silently remove or rewrite; was it pasted with extra text? Write the URL without it (a space in a query value is written %20)",
            position + 1
        ),
    ))
}

pub(super) fn parse_proxy(map: &Map<String, Value>, problems: &mut Vec<Problem>) -> Proxy {
    let Some(text) = optional_string(map, PROXY, problems) else {
        return Proxy::FromEnvironment;
    };
    let text = text.trim();
    if text.is_empty() {
        return Proxy::FromEnvironment;
    }
    if text.eq_ignore_ascii_case(Proxy::DIRECT) {
        return Proxy::Direct;
    }
    if let Some(problem) = rewritten_character(PROXY, text) {
        problems.push(problem);
        return Proxy::FromEnvironment;
    }
    match Url::parse(text) {
        Ok(url) if PROXY_SCHEMES.contains(&url.scheme()) => Proxy::Url(text.to_owned()),
        Ok(url) => {
            problems.push(Problem::new(
                PROXY,
                format!(
                    "unsupported proxy scheme `{}`; use http://, https://, socks5:// or socks5h:// (or \"none\" to connect directly)",
                    url.scheme()
                ),
            ));
            Proxy::FromEnvironment
        }
        Err(e) => {
            problems.push(Problem::new(
                PROXY,
                format!("is not a valid proxy URL: {e}"),
            ));
            Proxy::FromEnvironment
        }
    }
}
