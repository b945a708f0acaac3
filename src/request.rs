//! The HTTP request for one completion: body and headers, built exactly as
//! AutoDev's custom server does it.
//!
//! Body: `{"messages": [{role, content}…]}` with every `customFields` entry
//! added at the top level and `messages` written last, so `customFields`
//! cannot replace it; `messageKeys` renames the keys inside each message;
//! AutoDev's `fields` template replaces the whole body instead (`customFields`
//! are still added to it); every value exactly `"$content"`, at any depth,
//! becomes the last message's text.
//! With `systemField` (Anthropic), system messages go into that top-level
//! field instead of `messages`.
//! Headers: `Content-Type: application/json`, `Authorization: Bearer` (or
//! `Basic`, per `authType`) when a token is set (or the bare token in
//! `tokenHeader`), then `customHeaders`,
//! each replacing a header of the same name (case-insensitively),
//! `Authorization` included.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::settings::Settings;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// The request body recipe.
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

/// The placeholder of AutoDev's `fields` template.
pub const CONTENT_PLACEHOLDER: &str = "$content";
/// Code completion's placeholders: the text before and after the cursor, the
/// prompt a FIM template renders from them, the document's language and path.
pub const PREFIX_PLACEHOLDER: &str = "$prefix";
pub const SUFFIX_PLACEHOLDER: &str = "$suffix";
pub const FIM_PROMPT_PLACEHOLDER: &str = "$fimPrompt";
pub const LANGUAGE_PLACEHOLDER: &str = "$language";
pub const PATH_PLACEHOLDER: &str = "$path";
/// The placeholders that carry the text of a request (one of them must be in `fields`).
const TEXT_PLACEHOLDERS: &[&str] = &[
    CONTENT_PLACEHOLDER,
    PREFIX_PLACEHOLDER,
    SUFFIX_PLACEHOLDER,
    FIM_PROMPT_PLACEHOLDER,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// The JSON body to POST.
pub fn body(spec: &BodySpec, messages: &[Message]) -> Vec<u8> {
    let value = match &spec.template {
        Some(template) => {
            let mut body = fill_template(template, messages);
            for (key, value) in &spec.custom_fields {
                if key != "messages" {
                    body.insert(key.clone(), value.clone());
                }
            }
            body
        }
        None => {
            let mut body = spec.custom_fields.clone();
            body.shift_remove("messages");
            let (system, chat): (Vec<&Message>, Vec<&Message>) = match &spec.system_field {
                Some(_) => messages.iter().partition(|m| m.role == Role::System),
                None => (Vec::new(), messages.iter().collect()),
            };
            if let (Some(field), false) = (&spec.system_field, system.is_empty()) {
                let text: Vec<&str> = system.iter().map(|m| m.content.as_str()).collect();
                body.insert(field.clone(), Value::from(text.join("\n\n")));
            }
            let list = chat
                .into_iter()
                .map(|m| {
                    let mut entry = Map::with_capacity(2);
                    entry.insert(spec.role_key.clone(), Value::from(m.role.as_str()));
                    entry.insert(spec.content_key.clone(), Value::from(m.content.as_str()));
                    Value::Object(entry)
                })
                .collect();
            body.insert("messages".to_owned(), Value::Array(list));
            body
        }
    };
    serde_json::to_vec(&value).expect("a JSON map always serialises")
}

/// The template with every string value exactly `"$content"`, at any
/// depth, replaced by the last message's text.
fn fill_template(template: &Map<String, Value>, messages: &[Message]) -> Map<String, Value> {
    let last = messages
        .last()
        .map(|m| m.content.as_str())
        .unwrap_or_default();
    fill_placeholders(template, &[(CONTENT_PLACEHOLDER, last)])
}

/// The template with every string value exactly equal to one of the
/// placeholders, at any depth, replaced by its text.
pub fn fill_placeholders(
    template: &Map<String, Value>,
    values: &[(&str, &str)],
) -> Map<String, Value> {
    fn fill(value: &mut Value, values: &[(&str, &str)]) {
        match value {
            Value::String(s) => {
                if let Some((_, text)) = values.iter().find(|(name, _)| name == s) {
                    *value = Value::from(*text);
                }
            }
            Value::Object(map) => map.values_mut().for_each(|v| fill(v, values)),
            Value::Array(items) => items.iter_mut().for_each(|v| fill(v, values)),
            _ => {}
        }
    }
    let mut body = template.clone();
    body.values_mut().for_each(|v| fill(v, values));
    body
}

/// True when `value` is, or holds at any depth, a placeholder that carries
/// the request's text (`$content`, or completion's `$prefix`, `$suffix`, `$fimPrompt`).
pub fn holds_placeholder(value: &Value) -> bool {
    TEXT_PLACEHOLDERS.iter().any(|p| holds(value, p))
}

/// True when `value` is, or holds at any depth, the string `placeholder`.
pub fn holds(value: &Value, placeholder: &str) -> bool {
    match value {
        Value::String(s) => s == placeholder,
        Value::Object(map) => map.values().any(|v| holds(v, placeholder)),
        Value::Array(items) => items.iter().any(|v| holds(v, placeholder)),
        _ => false,
    }
}

/// The request headers.
pub fn headers(settings: &Settings) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("llm-sidecar/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(token) = &settings.token {
        let (name, value) = match &settings.token_header {
            Some(name) => (name.clone(), token.trim().to_owned()),
            None => (
                AUTHORIZATION,
                format!("{} {}", settings.auth_scheme.as_str(), token.trim()),
            ),
        };
        // A token that cannot be a header value was refused by settings.
        if let Ok(mut value) = HeaderValue::from_str(&value) {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    for (name, value) in &settings.custom_headers {
        headers.insert(name.clone(), value.clone());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Settings {
        Settings::from_json(&v).unwrap()
    }

    fn msgs() -> Vec<Message> {
        vec![
            Message {
                role: Role::System,
                content: "be brief".into(),
            },
            Message {
                role: Role::User,
                content: "hi".into(),
            },
        ]
    }

    #[test]
    fn body_with_custom_fields_and_renamed_keys() {
        let s = settings(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat": {
            "customFields": {"model": "m", "stream": 1, "stop": ["a"], "opts": {"x": true}},
            "messageKeys": {"role": "speaker", "content": "message"}}}),
        );
        let text = String::from_utf8(body(&s.body, &msgs())).unwrap();
        assert_eq!(
            text,
            r#"{"model":"m","stream":1,"stop":["a"],"opts":{"x":true},"messages":[{"speaker":"system","message":"be brief"},{"speaker":"user","message":"hi"}]}"#
        );
    }

    #[test]
    fn template_replaces_body() {
        let s = settings(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat":
            "{\"fields\": {\"inputs\": {\"feature\": \"$content\"}, \"query\": \"$content\", \"user\": \"u\"}}"}),
        );
        let v: Value = serde_json::from_slice(&body(&s.body, &msgs())).unwrap();
        assert_eq!(
            v,
            json!({"inputs": {"feature": "hi"}, "query": "hi", "user": "u"})
        );
        let s = settings(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat":
            {"fields": {"query": "$content", "user": "u"}, "customFields": {"user": "v", "mode": "streaming"}}}),
        );
        let v: Value = serde_json::from_slice(&body(&s.body, &msgs())).unwrap();
        assert_eq!(v, json!({"query": "hi", "user": "v", "mode": "streaming"}));
    }

    #[test]
    fn system_field_and_token_header() {
        let s = settings(
            json!({"customEngineServer": "http://h/", "customEngineToken": "key-123456",
            "tokenHeader": "x-api-key", "systemField": "system",
            "customEngineRequestFormat": {"customFields": {"max_tokens": 9}}}),
        );
        let v: Value = serde_json::from_slice(&body(&s.body, &msgs())).unwrap();
        assert_eq!(
            v,
            json!({"max_tokens": 9, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]})
        );
        let h = headers(&s);
        assert_eq!(h["x-api-key"], "key-123456");
        assert!(h.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn headers_token_and_overrides() {
        let s =
            settings(json!({"customEngineServer": "http://h/", "customEngineToken": "tok-123456"}));
        let h = headers(&s);
        assert_eq!(h[AUTHORIZATION], "Bearer tok-123456");
        assert_eq!(h[CONTENT_TYPE], "application/json");
        let s = settings(
            json!({"customEngineServer": "http://h/", "customEngineToken": "",
            "customEngineRequestFormat": {"customHeaders": {"authorization": "Basic x", "X-A": "1"}}}),
        );
        let h = headers(&s);
        assert_eq!(h.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(h[AUTHORIZATION], "Basic x");
        assert_eq!(h["x-a"], "1");
        let s = settings(json!({"customEngineServer": "http://h/"}));
        assert!(headers(&s).get(AUTHORIZATION).is_none());
    }
}
