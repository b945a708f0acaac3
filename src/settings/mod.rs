//! Settings: every accepted form of the user's server configuration,
//! validated once into one plain [`Settings`] value.
//!
//! The input is the `settings` object of `llm/complete` in any of AutoDev's
//! generations ([`forms`] rewrites them into the v1 dialog keys), layered over
//! a preset, a `customLlms` entry or a profile ([`catalog`]).
//! [`Settings::from_canonical`] then checks every field and returns **every**
//! problem at once, each naming the field as the user typed it, so one round
//! trip shows everything to fix. Nothing downstream re-validates: a
//! `Settings` value is always usable.

pub mod catalog;
pub mod forms;
pub mod schema;

pub use catalog::{Catalog, Selection};

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::decode::ResponseType;
use crate::extract::CompiledPath;
use crate::secrets::{Secrets, is_secret_name};

/// A validated, normalised server configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The endpoint; the request is POSTed to it as written.
    pub url: Url,
    /// The bearer token, when non-empty.
    pub token: Option<String>,
    /// What the user said the server answers with.
    pub response_type: ResponseType,
    /// `customEngineResponseFormat`; `None` means the defaults.
    pub content_path: Option<CompiledPath>,
    /// `reasoningFormat`.
    pub reasoning_path: Option<CompiledPath>,
    /// How the request body is built.
    pub body: BodySpec,
    /// `customHeaders`, in the order given.
    pub custom_headers: Vec<(HeaderName, HeaderValue)>,
    /// `tokenHeader`: the header that carries the token; `None` means
    /// `Authorization: Bearer <token>`, another name carries the bare token.
    pub token_header: Option<HeaderName>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub network: NetworkConfig,
    /// Values to keep out of logs and errors.
    pub secrets: Secrets,
}

/// The request body recipe (see [`crate::request`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BodySpec {
    /// Added at the top level of the body.
    pub custom_fields: Map<String, Value>,
    /// The key that holds each message's role.
    pub role_key: String,
    /// The key that holds each message's text.
    pub content_key: String,
    /// AutoDev's `fields`: a whole-body template that replaces the default body.
    pub template: Option<Map<String, Value>>,
    /// `systemField`: system messages go in this top-level field instead of
    /// `messages` (Anthropic's `system`).
    pub system_field: Option<String>,
}

/// Time limits for one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Option<Duration>,
}

/// When and how often a failed attempt is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// Size limits for the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_response_bytes: usize,
}

/// What selects the HTTP client: proxy and TLS roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NetworkConfig {
    /// `proxy`: overrides the `HTTPS_PROXY` / `HTTP_PROXY` environment.
    pub proxy: Option<String>,
    /// `caCertificates`: a PEM bundle added to the platform's roots.
    pub ca_certificates: Option<std::path::PathBuf>,
}

/// One thing wrong with the settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The key as the user typed it, dotted for nested keys.
    pub field: String,
    pub message: String,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: None,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 8 << 20,
            max_response_bytes: 64 << 20,
        }
    }
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Keys of the AutoDev dialog.
pub const SERVER: &str = "customEngineServer";
pub const TOKEN: &str = "customEngineToken";
pub const RESPONSE_TYPE: &str = "customEngineResponseType";
pub const RESPONSE_FORMAT: &str = "customEngineResponseFormat";
pub const REQUEST_FORMAT: &str = "customEngineRequestFormat";
/// This sidecar's own keys.
pub const REASONING_FORMAT: &str = "reasoningFormat";
pub const TIMEOUTS: &str = "timeouts";
pub const RETRY: &str = "retry";
pub const MAX_EVENT_BYTES: &str = "maxEventBytes";
pub const MAX_RESPONSE_BYTES: &str = "maxResponseBytes";
pub const PROXY: &str = "proxy";
pub const CA_CERTIFICATES: &str = "caCertificates";
pub const TOKEN_HEADER: &str = "tokenHeader";
pub const SYSTEM_FIELD: &str = "systemField";

const KNOWN_KEYS: &[&str] = &[
    SERVER,
    TOKEN,
    RESPONSE_TYPE,
    RESPONSE_FORMAT,
    REQUEST_FORMAT,
    REASONING_FORMAT,
    TIMEOUTS,
    RETRY,
    MAX_EVENT_BYTES,
    MAX_RESPONSE_BYTES,
    PROXY,
    CA_CERTIFICATES,
    TOKEN_HEADER,
    SYSTEM_FIELD,
    catalog::PRESET,
    "model",
];

/// Other AutoDev settings that may come along with the dialog's fields; they
/// do not affect a completion and are accepted silently.
const AUTODEV_EXTRA_KEYS: &[&str] = &[
    "aiEngine",
    "customModel",
    "customOpenAiHost",
    "openAiKey",
    "openAiModel",
    "maxTokenLength",
    "delaySeconds",
    "customPrompts",
    "language",
    "name",
    "description",
];

const REQUEST_FORMAT_KEYS: &[&str] = &["customFields", "customHeaders", "messageKeys", "fields"];

impl Settings {
    /// Validates one `settings` object in any accepted form (a preset it
    /// names included). On failure every problem is returned.
    pub fn from_json(value: &Value) -> Result<Settings, Vec<Problem>> {
        Catalog::default().resolve(Selection {
            settings: Some(value),
            ..Selection::default()
        })
    }

    /// Validates settings already in the canonical form ([`forms`]).
    pub fn from_canonical(map: &Map<String, Value>) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        check_unknown_keys(map, &mut problems);

        let url = parse_url(map.get(SERVER), &mut problems);
        let token = optional_string(map, TOKEN, &mut problems).filter(|t| !t.trim().is_empty());
        if token
            .as_deref()
            .is_some_and(|t| HeaderValue::from_str(t.trim()).is_err())
        {
            problems.push(Problem::new(
                TOKEN,
                "contains a line break or another character a header cannot carry (was it pasted with extra text?)",
            ));
        }
        let response_type = parse_response_type(map.get(RESPONSE_TYPE), &mut problems);
        let content_path = parse_path(map, RESPONSE_FORMAT, &mut problems);
        let reasoning_path = parse_path(map, REASONING_FORMAT, &mut problems);
        let (mut body, custom_headers) =
            parse_request_format(map.get(REQUEST_FORMAT), &mut problems);
        body.system_field =
            optional_string(map, SYSTEM_FIELD, &mut problems).filter(|f| !f.trim().is_empty());
        let token_header = parse_token_header(map, &mut problems);
        let timeouts = parse_timeouts(map.get(TIMEOUTS), &mut problems);
        let retry = parse_retry(map.get(RETRY), &mut problems);
        let limits = Limits {
            max_event_bytes: positive_integer(map, MAX_EVENT_BYTES, &mut problems)
                .unwrap_or(Limits::default().max_event_bytes as u64)
                as usize,
            max_response_bytes: positive_integer(map, MAX_RESPONSE_BYTES, &mut problems)
                .unwrap_or(Limits::default().max_response_bytes as u64)
                as usize,
        };
        let network = NetworkConfig {
            proxy: parse_proxy(map, &mut problems),
            ca_certificates: optional_string(map, CA_CERTIFICATES, &mut problems)
                .filter(|p| !p.trim().is_empty())
                .map(std::path::PathBuf::from),
        };

        match url {
            Some(url) if problems.is_empty() => {
                let secrets = collect_secrets(
                    &url,
                    token.as_deref(),
                    &custom_headers,
                    network.proxy.as_deref(),
                );
                if let Some(name) = &token_header
                    && custom_headers.iter().any(|(h, _)| h == name)
                {
                    tracing::debug!(header = %name, "customHeaders replaces the token header");
                }
                Ok(Settings {
                    url,
                    token,
                    response_type,
                    content_path,
                    reasoning_path,
                    body,
                    custom_headers,
                    token_header,
                    timeouts,
                    retry,
                    limits,
                    network,
                    secrets,
                })
            }
            _ => Err(problems),
        }
    }

    /// The URL without its query string and credentials, safe to show.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }

    /// The settings as they will be used, in the canonical keys, with secrets
    /// masked: what `llm/validateSettings` returns as `normalized`.
    pub fn describe(&self) -> Value {
        let ms = |d: Duration| Value::from(d.as_millis() as u64);
        let headers: Map<String, Value> = self
            .custom_headers
            .iter()
            .map(|(name, value)| {
                let shown = match value.to_str() {
                    Ok(v) if is_secret_name(name.as_str()) => crate::secrets::mask(v),
                    Ok(v) => v.to_owned(),
                    Err(_) => "(not text)".to_owned(),
                };
                (name.as_str().to_owned(), Value::from(shown))
            })
            .collect();
        let mut format = Map::new();
        format.insert(
            "customFields".into(),
            Value::Object(self.body.custom_fields.clone()),
        );
        format.insert("customHeaders".into(), Value::Object(headers));
        format.insert(
            "messageKeys".into(),
            serde_json::json!({"role": self.body.role_key, "content": self.body.content_key}),
        );
        if let Some(template) = &self.body.template {
            format.insert("fields".into(), Value::Object(template.clone()));
        }
        let path = |p: &Option<CompiledPath>| {
            p.as_ref()
                .map_or(Value::Null, |p| Value::from(p.normalized.as_str()))
        };
        serde_json::json!({
            SERVER: self.secrets.scrub(self.url.as_str()),
            TOKEN: self.token.as_deref().map(crate::secrets::mask),
            RESPONSE_TYPE: self.response_type.as_str().to_uppercase(),
            RESPONSE_FORMAT: path(&self.content_path),
            REASONING_FORMAT: path(&self.reasoning_path),
            REQUEST_FORMAT: format,
            TOKEN_HEADER: self.token_header.as_ref().map_or("Authorization", |h| h.as_str()),
            SYSTEM_FIELD: self.body.system_field,
            TIMEOUTS: {
                "connectMs": ms(self.timeouts.connect),
                "firstByteMs": ms(self.timeouts.first_byte),
                "idleMs": ms(self.timeouts.idle),
                "totalMs": self.timeouts.total.map_or(Value::Null, ms),
            },
            RETRY: {
                "maxRetries": self.retry.max_retries,
                "initialBackoffMs": ms(self.retry.initial_backoff),
                "maxBackoffMs": ms(self.retry.max_backoff),
            },
            MAX_EVENT_BYTES: self.limits.max_event_bytes,
            MAX_RESPONSE_BYTES: self.limits.max_response_bytes,
            PROXY: self.network.proxy.as_deref().map(|p| self.secrets.scrub(p)),
            CA_CERTIFICATES: self.network.ca_certificates.as_ref().map(|p| p.display().to_string()),
        })
    }
}

/// A URL without query and credentials.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

fn collect_secrets(
    url: &Url,
    token: Option<&str>,
    headers: &[(HeaderName, HeaderValue)],
    proxy: Option<&str>,
) -> Secrets {
    let mut secrets = Secrets::default();
    if let Some(token) = token {
        secrets.add(token);
    }
    for (name, value) in headers {
        if is_secret_name(name.as_str())
            && let Ok(v) = value.to_str()
        {
            secrets.add(v);
            // `Bearer xyz`: the credential alone may be echoed too.
            if let Some((_, credential)) = v.split_once(' ') {
                secrets.add(credential);
            }
        }
    }
    for (name, value) in url.query_pairs() {
        if is_secret_name(&name) {
            secrets.add(&value);
        }
    }
    let proxy = proxy.and_then(|p| Url::parse(p).ok());
    for url in std::iter::once(url).chain(proxy.as_ref()) {
        if let Some(password) = url.password() {
            secrets.add(password);
        }
    }
    secrets
}

fn parse_token_header(map: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<HeaderName> {
    let name = optional_string(map, TOKEN_HEADER, problems)?;
    let name = name.trim();
    if name.is_empty() || name.eq_ignore_ascii_case("authorization") {
        return None;
    }
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(header) => Some(header),
        Err(_) => {
            problems.push(Problem::new(
                TOKEN_HEADER,
                "is not a valid HTTP header name",
            ));
            None
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

fn check_unknown_keys(map: &Map<String, Value>, problems: &mut Vec<Problem>) {
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

/// The known key within a small edit distance of `key`, ignoring case.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 8))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn parse_url(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Url> {
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

fn optional_string(
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

fn parse_response_type(value: Option<&Value>, problems: &mut Vec<Problem>) -> ResponseType {
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

fn parse_path(
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

fn parse_request_format(
    value: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> (BodySpec, Vec<(HeaderName, HeaderValue)>) {
    let mut body = BodySpec {
        custom_fields: Map::new(),
        role_key: "role".to_owned(),
        content_key: "content".to_owned(),
        template: None,
        system_field: None,
    };
    let mut headers = Vec::new();
    let parsed;
    let format = match value {
        None | Some(Value::Null) => return (body, headers),
        Some(Value::String(s)) if s.trim().is_empty() => return (body, headers),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(e) => {
                problems.push(Problem::new(
                    REQUEST_FORMAT,
                    format!("is not valid JSON ({e}); expected e.g. {{\"customFields\": {{\"model\": \"deepseek-chat\", \"stream\": true}}}}"),
                ));
                return (body, headers);
            }
        },
        Some(other) => other,
    };
    let Some(format) = format.as_object() else {
        problems.push(Problem::new(
            REQUEST_FORMAT,
            format!(
                "must be a JSON object with customFields, customHeaders or messageKeys, got {}",
                kind_of(format)
            ),
        ));
        return (body, headers);
    };
    for key in format.keys() {
        if !REQUEST_FORMAT_KEYS.contains(&key.as_str()) {
            let hint = match closest(key, REQUEST_FORMAT_KEYS) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!(
                    "put body fields under customFields, e.g. {{\"customFields\": {{\"{key}\": ...}}}}; allowed keys are customFields, customHeaders, messageKeys and fields"
                ),
            };
            problems.push(Problem::new(
                format!("{REQUEST_FORMAT}.{key}"),
                format!("unknown key; {hint}"),
            ));
        }
    }
    if let Some(fields) = object_member(format, "customFields", problems) {
        body.custom_fields = fields.clone();
    }
    if let Some(template) = object_member(format, "fields", problems) {
        body.template = Some(template.clone());
    }
    if let Some(keys) = object_member(format, "messageKeys", problems) {
        for (key, target) in keys {
            let field = format!("{REQUEST_FORMAT}.messageKeys.{key}");
            let Some(name) = target.as_str().filter(|n| !n.is_empty()) else {
                problems.push(Problem::new(
                    field,
                    "must be a non-empty string: the key to use in each message",
                ));
                continue;
            };
            match key.as_str() {
                "role" => body.role_key = name.to_owned(),
                "content" => body.content_key = name.to_owned(),
                _ => problems.push(Problem::new(
                    field,
                    "unknown message key; only `role` and `content` can be renamed",
                )),
            }
        }
    }
    if let Some(map) = object_member(format, "customHeaders", problems) {
        headers = parse_headers(map, problems);
    }
    (body, headers)
}

fn object_member<'a>(
    format: &'a Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    match format.get(key)? {
        Value::Object(map) => Some(map),
        Value::Null => None,
        other => {
            problems.push(Problem::new(
                format!("{REQUEST_FORMAT}.{key}"),
                format!("must be an object, got {}", kind_of(other)),
            ));
            None
        }
    }
}

fn parse_headers(
    map: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    for (name, value) in map {
        let field = format!("{REQUEST_FORMAT}.customHeaders.{name}");
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                problems.push(Problem::new(
                    field,
                    format!("must be a string, got {}", kind_of(other)),
                ));
                continue;
            }
        };
        let Ok(header_name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            problems.push(Problem::new(field, "is not a valid HTTP header name"));
            continue;
        };
        match HeaderValue::from_str(&text) {
            Ok(mut header_value) => {
                if is_secret_name(name) {
                    header_value.set_sensitive(true);
                }
                headers.push((header_name, header_value));
            }
            Err(_) => problems.push(Problem::new(
                field,
                "is not a valid HTTP header value (line breaks and control characters are not allowed)",
            )),
        }
    }
    headers
}

fn object<'a>(
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
fn positive_integer(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    positive_integer_at(map.get(key), key, problems)
}

fn positive_integer_at(
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

fn parse_timeouts(value: Option<&Value>, problems: &mut Vec<Problem>) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let Some(map) = object(value, TIMEOUTS, problems) else {
        return timeouts;
    };
    let mut known: BTreeMap<&str, u64> = BTreeMap::new();
    for (key, member) in map {
        let field = format!("{TIMEOUTS}.{key}");
        match key.as_str() {
            "connectMs" | "firstByteMs" | "idleMs" | "totalMs" => {
                if let Some(ms) = positive_integer_at(Some(member), &field, problems) {
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

fn parse_retry(value: Option<&Value>, problems: &mut Vec<Problem>) -> RetryPolicy {
    let mut retry = RetryPolicy::default();
    let Some(map) = object(value, RETRY, problems) else {
        return retry;
    };
    for (key, member) in map {
        let field = format!("{RETRY}.{key}");
        match key.as_str() {
            "maxRetries" => match member.as_u64() {
                Some(n) if n <= 10 => retry.max_retries = n as u32,
                _ => problems.push(Problem::new(field, "must be a whole number from 0 to 10")),
            },
            "initialBackoffMs" => {
                if let Some(v) = positive_integer_at(Some(member), &field, problems) {
                    retry.initial_backoff = Duration::from_millis(v);
                }
            }
            "maxBackoffMs" => {
                if let Some(v) = positive_integer_at(Some(member), &field, problems) {
                    retry.max_backoff = Duration::from_millis(v);
                }
            }
            _ => problems.push(Problem::new(
                field,
                "unknown retry setting; use maxRetries, initialBackoffMs or maxBackoffMs",
            )),
        }
    }
    retry
}

fn parse_proxy(map: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<String> {
    let text = optional_string(map, PROXY, problems)?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.eq_ignore_ascii_case(crate::client::DIRECT) {
        return Some(crate::client::DIRECT.to_owned());
    }
    match Url::parse(text) {
        Ok(url) if ["http", "https", "socks5", "socks5h"].contains(&url.scheme()) => {
            Some(text.to_owned())
        }
        Ok(url) => {
            problems.push(Problem::new(
                PROXY,
                format!(
                    "unsupported proxy scheme `{}`; use http:// or https://",
                    url.scheme()
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::new(
                PROXY,
                format!("is not a valid proxy URL: {e}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value) -> Vec<Problem> {
        Settings::from_json(&v).unwrap_err()
    }

    #[test]
    fn minimal_settings() {
        let s =
            Settings::from_json(&json!({"customEngineServer": "http://127.0.0.1:1/v1"})).unwrap();
        assert_eq!(s.response_type, ResponseType::Sse);
        assert!(s.token.is_none());
        assert!(s.content_path.is_none());
        assert_eq!(s.body.role_key, "role");
    }

    #[test]
    fn every_problem_at_once() {
        let p = problems(json!({
            "customEngineServer": "ftp://x",
            "customEngineResponseType": "XML",
            "customEngineResponseFormat": "$.choices[0.delta",
            "customEngineRequestFormat": "{not json",
        }));
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [SERVER, RESPONSE_TYPE, RESPONSE_FORMAT, REQUEST_FORMAT],
            "{p:?}"
        );
        assert!(p[2].message.contains("column"), "{}", p[2].message);
    }

    #[test]
    fn request_format_as_string_or_object() {
        let a = Settings::from_json(&json!({"customEngineServer": "http://h/", "customEngineRequestFormat": "{\"customFields\":{\"model\":\"m\"},\"messageKeys\":{\"content\":\"message\"}}"})).unwrap();
        let b = Settings::from_json(&json!({"customEngineServer": "http://h/", "customEngineRequestFormat": {"customFields":{"model":"m"},"messageKeys":{"content":"message"}}})).unwrap();
        assert_eq!(a.body, b.body);
        assert_eq!(a.body.content_key, "message");
    }

    #[test]
    fn misplaced_body_field_is_explained() {
        let p = problems(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat": {"model": "x"}}),
        );
        assert_eq!(p[0].field, "customEngineRequestFormat.model");
        assert!(p[0].message.contains("customFields"));
    }

    #[test]
    fn typo_in_a_key_is_caught() {
        let p = problems(json!({"customEngineSever": "http://h/"}));
        assert!(p.iter().any(|p| p.field == "customEngineSever" && p.message.contains("customEngineServer")));
    }

    #[test]
    fn bad_headers() {
        let p = problems(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat": {"customHeaders": {"X-A": "a\nb", "bad name": "x"}}}),
        );
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn secrets_are_collected() {
        let s = Settings::from_json(&json!({
            "customEngineServer": "http://h/x?key=abcdefgh",
            "customEngineToken": "sk-secret-token",
            "customEngineRequestFormat": {"customHeaders": {"x-api-key": "hdr-secret-1", "X-Trace": "visible"}}
        }))
        .unwrap();
        let out = s
            .secrets
            .scrub("sk-secret-token hdr-secret-1 abcdefgh visible");
        assert_eq!(out, "sk-…oken hdr…et-1 … visible");
        assert_eq!(s.display_url(), "http://h/x");
    }

    #[test]
    fn timeouts_and_retry() {
        let s = Settings::from_json(&json!({"customEngineServer": "http://h/", "timeouts": {"idleMs": 5, "totalMs": 9}, "retry": {"maxRetries": 0}})).unwrap();
        assert_eq!(s.timeouts.idle, Duration::from_millis(5));
        assert_eq!(s.timeouts.total, Some(Duration::from_millis(9)));
        assert_eq!(s.retry.max_retries, 0);
        let p = problems(
            json!({"customEngineServer": "http://h/", "timeouts": {"idle": 5, "connectMs": -1}}),
        );
        assert_eq!(p.len(), 2);
    }
}
