//! The API shapes detection knows, where each lives relative to the URL the
//! user pasted, the v1 dialog settings of each, and the model lists.
//!
//! A pasted URL is a base (`http://host:8080`), a versioned base (`…/v1`) or
//! a full endpoint (`…/v1/chat/completions`, `…/api/chat`, `…/v1/messages`);
//! [`Bases`] strips a known endpoint, remembers the shape it named, and
//! derives every other endpoint from what remains.

use reqwest::Url;
use serde_json::{Map, Value, json};

/// One API shape a server may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// OpenAI-compatible chat completions (`…/v1/chat/completions`).
    OpenAi,
    /// Anthropic's Messages API (`…/v1/messages`).
    Anthropic,
    /// Ollama's native chat (`…/api/chat`, NDJSON).
    Ollama,
}

/// The URLs derived from the pasted one.
#[derive(Debug, Clone)]
pub struct Bases {
    /// The URL as given.
    pub given: Url,
    /// The shape the given URL's path names, if any.
    pub named: Option<Shape>,
    /// The path before any version segment (`` or `/openai`).
    root: String,
    /// The versioned base path (`/v1`, `/api/paas/v4`).
    versioned: String,
}

/// The token and extra headers every request of a detection carries.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub token: Option<&'a str>,
    pub headers: &'a Map<String, Value>,
}

/// A model list as read from one of the list endpoints.
#[derive(Debug, Clone, Default)]
pub struct ModelList {
    pub ids: Vec<String>,
    /// The entries look like Anthropic's (`type: "model"`, `display_name`).
    pub anthropic: bool,
}

/// Known endpoint suffixes, longest first, and the shape each names.
const ENDPOINTS: &[(&str, Option<Shape>)] = &[
    ("/chat/completions", Some(Shape::OpenAi)),
    ("/api/generate", Some(Shape::Ollama)),
    ("/api/chat", Some(Shape::Ollama)),
    ("/api/tags", Some(Shape::Ollama)),
    ("/completions", Some(Shape::OpenAi)),
    ("/messages", Some(Shape::Anthropic)),
    ("/models", None),
    ("/api", Some(Shape::Ollama)),
];

/// Model names that are not chat models, passed over when one is picked.
const NOT_CHAT: &[&str] = &[
    "embed",
    "whisper",
    "tts",
    "dall-e",
    "moderation",
    "rerank",
    "transcribe",
];

impl Shape {
    /// How the shape is named in results.
    pub fn name(self) -> &'static str {
        match self {
            Shape::OpenAi => "openai-chat",
            Shape::Anthropic => "anthropic-messages",
            Shape::Ollama => "ollama-chat",
        }
    }

    /// The built-in preset of this shape, if one fits any server of it.
    pub fn preset(self) -> Option<&'static str> {
        match self {
            Shape::OpenAi => None,
            Shape::Anthropic => Some("anthropic"),
            Shape::Ollama => Some("ollama"),
        }
    }

    /// The response type asked for.
    pub fn response_type(self, stream: bool) -> &'static str {
        match (self, stream) {
            (_, false) => "JSON",
            (Shape::Ollama, true) => "NDJSON",
            (_, true) => "SSE",
        }
    }

    /// Where the text is, in the shape's documented events.
    pub fn text_path(self, stream: bool) -> &'static str {
        match (self, stream) {
            (Shape::OpenAi, true) => "$.choices[0].delta.content",
            (Shape::OpenAi, false) => "$.choices[0].message.content",
            (Shape::Anthropic, true) => "$.delta.text",
            (Shape::Anthropic, false) => "$.content[0].text",
            (Shape::Ollama, _) => "$.message.content",
        }
    }

    /// The body field that asks this shape for a deterministic answer
    /// (temperature 0), where the API takes it: not on OpenAI's and Azure's
    /// own hosts, whose reasoning models refuse any temperature but 1.
    pub fn temperature_field(self, url: &Url) -> Option<&'static str> {
        let host = url.host_str().unwrap_or_default();
        match self {
            Shape::Ollama => Some("options.temperature"),
            Shape::Anthropic => Some("temperature"),
            Shape::OpenAi if host == "api.openai.com" || host.ends_with(".openai.azure.com") => {
                None
            }
            Shape::OpenAi => Some("temperature"),
        }
    }

    /// The v1 dialog settings for this shape at `url`.
    pub fn settings(
        self,
        url: &Url,
        model: Option<&str>,
        stream: bool,
        path: &str,
        response_type: &str,
        access: Access<'_>,
    ) -> Map<String, Value> {
        let Access { token, headers } = access;
        let mut fields = Map::new();
        if let Some(model) = model {
            fields.insert("model".into(), Value::from(model));
        }
        if self == Shape::Anthropic {
            fields.insert("max_tokens".into(), Value::from(4096));
        }
        fields.insert("stream".into(), Value::from(stream));
        let mut custom_headers = headers.clone();
        if self == Shape::Anthropic
            && !custom_headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("anthropic-version"))
        {
            custom_headers.insert("anthropic-version".into(), Value::from("2023-06-01"));
        }
        let mut format = Map::new();
        format.insert("customFields".into(), Value::Object(fields));
        if !custom_headers.is_empty() {
            format.insert("customHeaders".into(), Value::Object(custom_headers));
        }
        let mut map = Map::new();
        map.insert("customEngineServer".into(), Value::from(url.as_str()));
        if let Some(token) = token {
            map.insert("customEngineToken".into(), Value::from(token));
        }
        map.insert(
            "customEngineResponseType".into(),
            Value::from(response_type),
        );
        // AutoDev's dialog keeps the request format as a JSON string.
        map.insert(
            "customEngineRequestFormat".into(),
            Value::from(Value::Object(format).to_string()),
        );
        map.insert("customEngineResponseFormat".into(), Value::from(path));
        if self == Shape::Anthropic {
            map.insert("tokenHeader".into(), json!("x-api-key"));
            map.insert("systemField".into(), json!("system"));
        }
        map
    }
}

impl Bases {
    /// Splits the pasted URL into its bases and the shape it names.
    pub fn new(given: &Url) -> Bases {
        let path = given.path().trim_end_matches('/');
        let mut rest = path;
        let mut named = None;
        for (suffix, shape) in ENDPOINTS {
            if let Some(stripped) = rest.strip_suffix(suffix) {
                rest = stripped;
                named = *shape;
                break;
            }
        }
        let last = rest.rsplit('/').next().unwrap_or("");
        let is_version = last.len() >= 2
            && last.starts_with('v')
            && last[1..2].chars().all(|c| c.is_ascii_digit());
        let (root, versioned) = if is_version {
            (
                rest[..rest.len() - last.len() - 1].to_owned(),
                rest.to_owned(),
            )
        } else {
            (rest.to_owned(), format!("{rest}/v1"))
        };
        Bases {
            given: given.clone(),
            named,
            root,
            versioned,
        }
    }

    /// The URL with `path`, keeping the given URL's query.
    fn at(&self, path: &str) -> Url {
        let mut url = self.given.clone();
        url.set_path(path);
        url
    }

    /// The completion endpoint of `shape`: the given URL for the shape it names.
    pub fn endpoint(&self, shape: Shape) -> Url {
        if self.named == Some(shape) && self.given.path().ends_with(self.suffix(shape)) {
            return self.given.clone();
        }
        self.at(&match shape {
            Shape::OpenAi => format!("{}/chat/completions", self.versioned),
            Shape::Anthropic => format!("{}/messages", self.versioned),
            Shape::Ollama => format!("{}/api/chat", self.root),
        })
    }

    fn suffix(&self, shape: Shape) -> &'static str {
        match shape {
            Shape::OpenAi => "/chat/completions",
            Shape::Anthropic => "/messages",
            Shape::Ollama => "/api/chat",
        }
    }

    /// `…/v1/models`.
    pub fn versioned_models(&self) -> Url {
        self.at(&format!("{}/models", self.versioned))
    }

    /// `…/models` under the root (`None` when it is the same as the versioned one).
    pub fn root_models(&self) -> Option<Url> {
        let path = format!("{}/models", self.root);
        (path != format!("{}/models", self.versioned)).then(|| self.at(&path))
    }

    /// Ollama's `…/api/tags`.
    pub fn tags(&self) -> Url {
        self.at(&format!("{}/api/tags", self.root))
    }
}

impl ModelList {
    /// Reads an OpenAI-style (`data: [{id}]`), Anthropic-style or Ollama-style
    /// (`models: [{name}]`) list; `None` when the body is none of them.
    pub fn parse(body: &[u8]) -> Option<ModelList> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let entries = match &value {
            Value::Array(list) => list,
            Value::Object(map) => match map.get("data").or_else(|| map.get("models")) {
                Some(Value::Array(list)) => list,
                _ => return None,
            },
            _ => return None,
        };
        let mut list = ModelList::default();
        for entry in entries {
            let id = match entry {
                Value::String(id) => Some(id.as_str()),
                Value::Object(e) => ["id", "name", "model"]
                    .iter()
                    .find_map(|k| e.get(*k).and_then(Value::as_str)),
                _ => None,
            };
            if let Some(id) = id.filter(|id| !id.trim().is_empty()) {
                list.ids.push(id.to_owned());
            }
            if entry.get("type").and_then(Value::as_str) == Some("model")
                && entry.get("display_name").is_some()
            {
                list.anthropic = true;
            }
        }
        Some(list)
    }

    /// The model a probe uses: the first that looks like a chat model.
    pub fn pick(&self) -> Option<&str> {
        self.ids
            .iter()
            .find(|id| {
                let lower = id.to_ascii_lowercase();
                !NOT_CHAT.iter().any(|n| lower.contains(n))
            })
            .or(self.ids.first())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(u: &str) -> Bases {
        Bases::new(&Url::parse(u).unwrap())
    }

    #[test]
    fn endpoints_from_every_kind_of_url() {
        let b = bases("http://h:8080");
        assert_eq!(b.named, None);
        assert_eq!(
            b.endpoint(Shape::OpenAi).as_str(),
            "http://h:8080/v1/chat/completions"
        );
        assert_eq!(b.endpoint(Shape::Ollama).as_str(), "http://h:8080/api/chat");
        assert_eq!(b.versioned_models().as_str(), "http://h:8080/v1/models");
        assert_eq!(b.root_models().unwrap().as_str(), "http://h:8080/models");
        let b = bases("http://h/v1/");
        assert_eq!(
            b.endpoint(Shape::Anthropic).as_str(),
            "http://h/v1/messages"
        );
        assert_eq!(b.tags().as_str(), "http://h/api/tags");
        let b = bases("http://h/api/paas/v4/chat/completions");
        assert_eq!(b.named, Some(Shape::OpenAi));
        assert_eq!(b.versioned_models().as_str(), "http://h/api/paas/v4/models");
        let b = bases("http://h/api/chat");
        assert_eq!(b.named, Some(Shape::Ollama));
        assert_eq!(b.endpoint(Shape::Ollama).as_str(), "http://h/api/chat");
        assert_eq!(
            b.endpoint(Shape::OpenAi).as_str(),
            "http://h/v1/chat/completions"
        );
        let b = bases("http://h/v1/messages?beta=1");
        assert_eq!(b.named, Some(Shape::Anthropic));
        assert_eq!(
            b.endpoint(Shape::Anthropic).as_str(),
            "http://h/v1/messages?beta=1"
        );
    }

    #[test]
    fn model_lists() {
        let l =
            ModelList::parse(br#"{"data":[{"id":"text-embedding-3"},{"id":"gpt-x"}]}"#).unwrap();
        assert_eq!(l.ids, ["text-embedding-3", "gpt-x"]);
        assert_eq!(l.pick(), Some("gpt-x"));
        assert!(!l.anthropic);
        let l = ModelList::parse(
            br#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest"}]}"#,
        )
        .unwrap();
        assert_eq!(l.pick(), Some("llama3.2:latest"));
        let l = ModelList::parse(
            br#"{"data":[{"type":"model","id":"claude-x","display_name":"Claude"}]}"#,
        )
        .unwrap();
        assert!(l.anthropic);
        assert!(ModelList::parse(b"<html>").is_none());
    }
}
