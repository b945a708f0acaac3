//! `customEngineRequestFormat`: the body recipe (`customFields`,
//! `messageKeys`, the `fields` template) and `customHeaders`, each checked
//! and named in its problems as `customEngineRequestFormat.<key>…`.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::typo::closest;
use super::validate::kind_of;
use super::*;
use crate::secrets::is_secret_name;

const REQUEST_FORMAT_KEYS: &[&str] = &["customFields", "customHeaders", "messageKeys", "fields"];

pub(super) fn parse_request_format(
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
