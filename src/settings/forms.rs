//! Every generation of AutoDev's settings, rewritten into one canonical form,
//! and the layering of presets, profiles and `customLlms` entries.
//!
//! The canonical form is a JSON object with the v1 dialog keys
//! (`customEngineServer`, `customEngineToken`, `customEngineResponseType`,
//! `customEngineResponseFormat`, `customEngineRequestFormat` as an object) and
//! this sidecar's own keys. [`canonical`] accepts, as is:
//! - the v1 dialog fields;
//! - a 2.x `customLlms` entry: `{name, description, url, auth: {type, token},
//!   requestFormat, responseFormat, modelType}` (`auth.type` becomes `authType`);
//! - the 2.2 form: `customRequest: {headers, body, stream}` and `maxTokens`;
//! - the `model` shortcut (`customFields.model`).
//!
//! It remembers where each canonical key came from, so a problem found later
//! names the key the user typed ([`Origins::user_field`]).
//! [`merge`] layers one canonical object over another (later wins, key by key;
//! `customFields`, `customHeaders` and `messageKeys` merge entry by entry).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{AUTH_TYPE, Problem, REQUEST_FORMAT, RESPONSE_FORMAT, RESPONSE_TYPE, SERVER, TOKEN};

/// Entry-form keys that only describe the entry.
const METADATA_KEYS: &[&str] = &["name", "description", "modelType"];

/// Where canonical keys came from: canonical key prefix → the user's key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    renames: BTreeMap<String, String>,
}

impl Origins {
    fn note(&mut self, canonical: &str, user: &str) {
        self.renames.insert(canonical.to_owned(), user.to_owned());
    }

    /// The field as the user typed it, for a canonical field name.
    pub fn user_field(&self, field: &str) -> String {
        let best = self
            .renames
            .iter()
            .filter(|(canonical, _)| {
                field == canonical.as_str()
                    || field
                        .strip_prefix(canonical.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(canonical, _)| canonical.len());
        match best {
            Some((canonical, user)) => format!("{user}{}", &field[canonical.len()..]),
            None => field.to_owned(),
        }
    }

    /// Rewrites the fields of `problems` into the user's terms.
    pub fn translate(&self, problems: &mut [Problem]) {
        for problem in problems {
            problem.field = self.user_field(&problem.field);
        }
    }

    /// Layers another source's renames over these: a key the later source
    /// sets (under any name) now comes from it.
    pub fn layer(&mut self, keys: impl IntoIterator<Item = String>, other: Origins) {
        for key in keys {
            self.renames.retain(|canonical, _| {
                canonical != &key && !canonical.starts_with(&format!("{key}."))
            });
        }
        self.renames.extend(other.renames);
    }
}

/// Rewrites any accepted form into the canonical one.
pub fn canonical(value: &Value, problems: &mut Vec<Problem>) -> (Map<String, Value>, Origins) {
    let mut origins = Origins::default();
    let Some(input) = value.as_object() else {
        problems.push(Problem::new(
            "settings",
            format!("must be an object, got {}", super::validate::kind_of(value)),
        ));
        return (Map::new(), origins);
    };
    let mut out = Map::new();
    let mut request_format: Option<Value> = None;

    // Canonical keys first, so that aliases can be checked against them.
    for (key, value) in input {
        match key.as_str() {
            REQUEST_FORMAT => request_format = Some(value.clone()),
            "url" | "auth" | "requestFormat" | "responseFormat" | "responseType"
            | "customRequest" | "maxTokens" | "model" => {}
            k if METADATA_KEYS.contains(&k) => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in input {
        match key.as_str() {
            "url" => renamed(
                &mut out,
                &mut origins,
                SERVER,
                "url",
                value.clone(),
                problems,
            ),
            "responseFormat" => renamed(
                &mut out,
                &mut origins,
                RESPONSE_FORMAT,
                "responseFormat",
                value.clone(),
                problems,
            ),
            "responseType" => renamed(
                &mut out,
                &mut origins,
                RESPONSE_TYPE,
                "responseType",
                value.clone(),
                problems,
            ),
            "auth" => match value {
                Value::Object(auth) => {
                    if let Some(token) = auth.get("token") {
                        renamed(
                            &mut out,
                            &mut origins,
                            TOKEN,
                            "auth.token",
                            token.clone(),
                            problems,
                        );
                    }
                    for (key, canonical) in [
                        ("tokenEnv", super::key_source::TOKEN_ENV),
                        ("tokenCommand", super::key_source::TOKEN_COMMAND),
                    ] {
                        if let Some(source) = auth.get(key) {
                            renamed(
                                &mut out,
                                &mut origins,
                                canonical,
                                &format!("auth.{key}"),
                                source.clone(),
                                problems,
                            );
                        }
                    }
                    if let Some(kind) = auth.get("type").filter(|k| !k.is_null()) {
                        renamed(
                            &mut out,
                            &mut origins,
                            AUTH_TYPE,
                            "auth.type",
                            kind.clone(),
                            problems,
                        );
                    }
                }
                Value::Null => {}
                other => problems.push(Problem::new(
                    "auth",
                    format!(
                        "must be an object {{\"type\": \"Bearer\", \"token\": \"...\"}}, got {}",
                        super::validate::kind_of(other)
                    ),
                )),
            },
            "requestFormat" => {
                if request_format.is_some() {
                    problems.push(Problem::new(
                        "requestFormat",
                        format!("conflicts with `{REQUEST_FORMAT}`, which is also given; keep one of them"),
                    ));
                } else {
                    origins.note(REQUEST_FORMAT, "requestFormat");
                    request_format = Some(value.clone());
                }
            }
            _ => {}
        }
    }

    // The request format as an object, so later layers can merge into it.
    let mut format = match request_format {
        None | Some(Value::Null) => Map::new(),
        Some(Value::String(s)) if s.trim().is_empty() => Map::new(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => map,
            // Left as it is: validation explains what is wrong with it.
            _ => {
                out.insert(REQUEST_FORMAT.to_owned(), Value::String(s));
                return (out, origins);
            }
        },
        Some(Value::Object(map)) => map,
        Some(other) => {
            out.insert(REQUEST_FORMAT.to_owned(), other);
            return (out, origins);
        }
    };
    apply_custom_request(input, &mut format, &mut out, &mut origins, problems);
    if let Some(model) = input.get("model") {
        match model {
            Value::String(m) if !m.trim().is_empty() => {
                fields_of(&mut format)
                    .insert("model".to_owned(), Value::String(m.trim().to_owned()));
            }
            Value::Null => {}
            _ => problems.push(Problem::new(
                "model",
                "must be a non-empty string: the model name sent as customFields.model",
            )),
        }
    }
    if !format.is_empty() {
        out.insert(REQUEST_FORMAT.to_owned(), Value::Object(format));
    }
    (out, origins)
}

/// Puts an aliased key under its canonical name, unless that name is already
/// given with another value.
fn renamed(
    out: &mut Map<String, Value>,
    origins: &mut Origins,
    canonical: &str,
    user: &str,
    value: Value,
    problems: &mut Vec<Problem>,
) {
    if let Some(existing) = out.get(canonical) {
        if *existing != value {
            problems.push(Problem::new(
                user,
                format!("conflicts with `{canonical}`, which is also given; keep one of them"),
            ));
        }
        return;
    }
    origins.note(canonical, user);
    out.insert(canonical.to_owned(), value);
}

/// The 2.2 form: `customRequest {headers, body, stream}` and `maxTokens`.
fn apply_custom_request(
    input: &Map<String, Value>,
    format: &mut Map<String, Value>,
    out: &mut Map<String, Value>,
    origins: &mut Origins,
    problems: &mut Vec<Problem>,
) {
    let prefix = format!("{REQUEST_FORMAT}.");
    if let Some(request) = input.get("customRequest") {
        let Value::Object(request) = request else {
            if !request.is_null() {
                problems.push(Problem::new(
                    "customRequest",
                    "must be an object {\"headers\": {...}, \"body\": {...}, \"stream\": true}",
                ));
            }
            return;
        };
        for (key, target) in [("headers", "customHeaders"), ("body", "customFields")] {
            match request.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(entries)) => {
                    origins.note(
                        &format!("{prefix}{target}"),
                        &format!("customRequest.{key}"),
                    );
                    let slot = format
                        .entry(target)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(slot) = slot {
                        for (k, v) in entries {
                            slot.insert(k.clone(), v.clone());
                        }
                    }
                }
                Some(other) => problems.push(Problem::new(
                    format!("customRequest.{key}"),
                    format!("must be an object, got {}", super::validate::kind_of(other)),
                )),
            }
        }
        match request.get("stream") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(stream)) => {
                fields_of(format)
                    .entry("stream")
                    .or_insert(Value::Bool(*stream));
                if !stream && !out.contains_key(RESPONSE_TYPE) {
                    origins.note(RESPONSE_TYPE, "customRequest.stream");
                    out.insert(RESPONSE_TYPE.to_owned(), Value::from("JSON"));
                }
            }
            Some(_) => problems.push(Problem::new(
                "customRequest.stream",
                "must be true or false",
            )),
        }
    }
    match input.get("maxTokens") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
            fields_of(format)
                .entry("max_tokens")
                .or_insert(Value::Number(n.clone()));
        }
        Some(_) => problems.push(Problem::new("maxTokens", "must be a positive whole number")),
    }
}

/// `customFields` of a request format, created when missing.
fn fields_of(format: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = format
        .entry("customFields")
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Layers `over` on `base`: keys of `over` win; the maps inside the request
/// format merge entry by entry (headers case-insensitively).
///
/// The token's sources are one setting: a layer that gives any of them
/// replaces the source of the layers below.
pub fn merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    let token_keys = [
        TOKEN,
        super::key_source::TOKEN_ENV,
        super::key_source::TOKEN_COMMAND,
    ];
    let gives = |key: &str| match over.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    if token_keys.iter().any(|k| gives(k)) {
        for key in token_keys {
            base.remove(key);
        }
    }
    for (key, value) in over {
        match (key.as_str(), base.get_mut(&key), value) {
            (REQUEST_FORMAT, Some(Value::Object(base_format)), Value::Object(over_format)) => {
                merge_request_format(base_format, over_format);
            }
            // `fim` merges key by key, so a preset's mode stays under a user's template.
            (super::fim::FIM, Some(Value::Object(base_fim)), Value::Object(over_fim)) => {
                base_fim.extend(over_fim);
            }
            (_, _, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn merge_request_format(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (key.as_str(), base.get_mut(&key), value) {
            ("customHeaders", Some(Value::Object(headers)), Value::Object(new)) => {
                for (name, v) in new {
                    headers.retain(|existing, _| !existing.eq_ignore_ascii_case(&name));
                    headers.insert(name, v);
                }
            }
            ("customFields" | "messageKeys", Some(Value::Object(entries)), Value::Object(new)) => {
                entries.extend(new);
            }
            (_, _, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> (Value, Vec<Problem>, Origins) {
        let mut problems = Vec::new();
        let (map, origins) = canonical(&v, &mut problems);
        (Value::Object(map), problems, origins)
    }

    #[test]
    fn v1_fields_pass_through_with_request_format_parsed() {
        let (v, p, _) = canon(
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat": "{\"customFields\":{\"a\":1}}"}),
        );
        assert!(p.is_empty());
        assert_eq!(
            v,
            json!({"customEngineServer": "http://h/", "customEngineRequestFormat": {"customFields": {"a": 1}}})
        );
    }

    #[test]
    fn custom_llms_entry() {
        let (v, p, o) = canon(
            json!({"name": "DeepSeek R1", "description": "", "url": "https://api.deepseek.com/chat/completions",
            "auth": {"type": "Bearer", "token": "sk-ii"},
            "requestFormat": "{ \"customFields\": {\"model\": \"deepseek-reasoner\", \"stream\": true}}",
            "responseFormat": "$.choices[0].delta.content", "modelType": "Plan"}),
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            v,
            json!({"customEngineServer": "https://api.deepseek.com/chat/completions", "customEngineToken": "sk-ii", "authType": "Bearer",
            "customEngineResponseFormat": "$.choices[0].delta.content",
            "customEngineRequestFormat": {"customFields": {"model": "deepseek-reasoner", "stream": true}}})
        );
        assert_eq!(o.user_field("customEngineServer"), "url");
        assert_eq!(o.user_field("customEngineToken"), "auth.token");
        assert_eq!(
            o.user_field("customEngineRequestFormat.customFields"),
            "requestFormat.customFields"
        );
    }

    #[test]
    fn v22_custom_request() {
        let (v, p, o) = canon(
            json!({"name": "x", "url": "http://h/", "auth": {"type": "Bearer", "token": ""},
            "customRequest": {"headers": {"X-A": "1"}, "body": {"model": "m", "temperature": 0.0}, "stream": false},
            "maxTokens": 512}),
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            v["customEngineRequestFormat"],
            json!({"customHeaders": {"X-A": "1"},
            "customFields": {"model": "m", "temperature": 0.0, "stream": false, "max_tokens": 512}})
        );
        assert_eq!(v["customEngineResponseType"], "JSON");
        assert_eq!(
            o.user_field("customEngineRequestFormat.customHeaders.X-A"),
            "customRequest.headers.X-A"
        );
    }

    #[test]
    fn conflicting_aliases_are_reported() {
        let (_, p, _) = canon(json!({"url": "http://a/", "customEngineServer": "http://b/"}));
        assert_eq!(p[0].field, "url");
    }

    #[test]
    fn merge_layers() {
        let mut base = json!({"customEngineServer": "http://preset/", "customEngineRequestFormat": {
            "customFields": {"model": "a", "stream": true}, "customHeaders": {"Anthropic-Version": "1"}}})
        .as_object()
        .unwrap()
        .clone();
        let over = json!({"customEngineToken": "t", "customEngineRequestFormat": {
            "customFields": {"model": "b"}, "customHeaders": {"anthropic-version": "2"}}})
        .as_object()
        .unwrap()
        .clone();
        merge(&mut base, over);
        assert_eq!(
            Value::Object(base),
            json!({"customEngineServer": "http://preset/", "customEngineToken": "t",
            "customEngineRequestFormat": {"customFields": {"model": "b", "stream": true}, "customHeaders": {"anthropic-version": "2"}}})
        );
    }
}
