//! `customEngineRequestFormat`: the body recipe (`customFields`,
//! `messageKeys`, the `fields` template) and `customHeaders`, each checked
//! and named in its problems as `customEngineRequestFormat.<key>…`.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::typo::closest;
use super::validate::kind_of;
use super::*;
use crate::request::{CONTENT_PLACEHOLDER, holds_placeholder};
use crate::secrets::is_secret_name;

const REQUEST_FORMAT_KEYS: &[&str] = &["customFields", "customHeaders", "messageKeys", "fields"];

/// Headers `customHeaders` may not set (lowercase), and why: the message
/// framing, which the HTTP client computes; hop-by-hop headers, which
/// concern one connection and are managed by the client's pool; content
/// codings, which the client negotiates and decodes itself; and proxy
/// credentials, which would go to the LLM server instead of the proxy.
/// The same headers browsers and mature clients refuse to let callers set.
const REFUSED_HEADERS: &[(&str, &str)] = &[
    (
        "content-length",
        "the HTTP client computes it from the body it sends; a wrong value cuts the body or leaves the server waiting for more",
    ),
    (
        "transfer-encoding",
        "the HTTP client sets the body's framing; another value corrupts the request",
    ),
    (
        "host",
        "it comes from customEngineServer; put the host (and port) in the URL instead",
    ),
    (
        "connection",
        "it is a hop-by-hop header; connections are pooled and managed by the HTTP client",
    ),
    (
        "keep-alive",
        "it is a hop-by-hop header; connections are pooled and managed by the HTTP client",
    ),
    (
        "proxy-connection",
        "it is a hop-by-hop header; connections are pooled and managed by the HTTP client",
    ),
    (
        "te",
        "it is a hop-by-hop header about the response's framing, which the HTTP client negotiates",
    ),
    (
        "trailer",
        "it announces trailer fields, which the request does not have",
    ),
    (
        "upgrade",
        "it asks to switch protocols on the connection, which would break the HTTP exchange",
    ),
    (
        "expect",
        "`Expect: 100-continue` makes the server wait before the body; the body is sent at once",
    ),
    (
        "content-encoding",
        "the body is sent as plain JSON; declaring another coding makes the server misread it",
    ),
    (
        "accept-encoding",
        "the sidecar negotiates compression itself (gzip, brotli) and decodes the response; another value can leave the answer unreadable",
    ),
    (
        "proxy-authorization",
        "it would be sent to the LLM server, not to the proxy; put the proxy's credentials in the proxy setting (http://user:password@host:port)",
    ),
];

/// Header values from a key source (`{"env": ...}`, `{"command": [...]}`).
pub(super) type SourcedHeaders = Vec<(HeaderName, key_source::SourcedKey)>;

pub(super) fn parse_request_format(
    value: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> (BodySpec, Vec<(HeaderName, HeaderValue)>, SourcedHeaders) {
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
        None | Some(Value::Null) => return (body, headers, Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => return (body, headers, Vec::new()),
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
                return (body, headers, Vec::new());
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
        return (body, headers, Vec::new());
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
        if fields.contains_key("messages") {
            problems.push(Problem::new(
                format!("{REQUEST_FORMAT}.customFields.messages"),
                "cannot be set: `messages` is built from the conversation the editor sends; remove it (messageKeys renames the keys inside each message, `fields` replaces the whole body)",
            ));
        }
        body.custom_fields = fields.clone();
    }
    if let Some(template) = object_member(format, "fields", problems) {
        if !template.values().any(holds_placeholder) {
            problems.push(Problem::new(
                format!("{REQUEST_FORMAT}.fields"),
                format!(
                    "has no value exactly \"{CONTENT_PLACEHOLDER}\", so the user's message would never be sent; put \"{CONTENT_PLACEHOLDER}\" where the prompt goes, e.g. {{\"query\": \"{CONTENT_PLACEHOLDER}\"}} (at any depth; for code completion \"$prefix\", \"$suffix\" or \"$fimPrompt\")"
                ),
            ));
        }
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
    if body.role_key == body.content_key {
        problems.push(Problem::new(
            format!("{REQUEST_FORMAT}.messageKeys"),
            format!(
                "maps both `role` and `content` to `{}`: each message would keep only one of them and the role would be lost; give them different names",
                body.role_key
            ),
        ));
    }
    let mut sourced = Vec::new();
    if let Some(map) = object_member(format, "customHeaders", problems) {
        (headers, sourced) = parse_headers(map, problems);
    }
    (body, headers, sourced)
}

/// Why `customHeaders` (or `tokenHeader`) may not set `name`, if it may not.
pub(super) fn refused_header(name: &HeaderName) -> Option<&'static str> {
    REFUSED_HEADERS
        .iter()
        .find(|(refused, _)| name.as_str() == *refused)
        .map(|(_, why)| *why)
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

/// `customHeaders`: plain values, and those read from a key source (an
/// environment variable's value is in place already; a command's comes later).
fn parse_headers(
    map: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> (Vec<(HeaderName, HeaderValue)>, SourcedHeaders) {
    let mut headers = Vec::new();
    let mut sourced = Vec::new();
    for (name, value) in map {
        let field = format!("{REQUEST_FORMAT}.customHeaders.{name}");
        let mut source = None;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(object) => {
                match key_source::parse_header_source(object, &field, problems) {
                    Some((kind, read)) => {
                        source = Some(kind);
                        read.unwrap_or_default()
                    }
                    None => continue,
                }
            }
            other => {
                problems.push(Problem::new(
                    field,
                    format!(
                        "must be a string, {{\"env\": \"VARIABLE\"}} or {{\"command\": [...]}}, got {}",
                        kind_of(other)
                    ),
                ));
                continue;
            }
        };
        let Ok(header_name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            problems.push(Problem::new(field, "is not a valid HTTP header name"));
            continue;
        };
        if let Some(why) = refused_header(&header_name) {
            problems.push(Problem::new(
                field,
                format!(
                    "`{}` cannot be set: {why}; remove it from customHeaders",
                    name.trim()
                ),
            ));
            continue;
        }
        if let Some(source) = source {
            let key = key_source::SourcedKey { field, source };
            // An environment variable's value now; a command's when it runs.
            if matches!(key.source, key_source::KeySource::Env(_)) && !text.is_empty() {
                match key_source::header_value(&text, &key.field, &key.source) {
                    Ok(value) => headers.push((header_name.clone(), value)),
                    Err(problem) => problems.push(problem),
                }
            }
            sourced.push((header_name, key));
            continue;
        }
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
    (headers, sourced)
}
