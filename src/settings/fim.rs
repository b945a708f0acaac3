//! The `fim` settings object: how a code completion is asked for (template,
//! mode, limits, context size, single or multi-line), checked field by field
//! and named `fim.<key>` in its problems.
//!
//! The mode is settled here, once, from what the rest of the settings say
//! when `fim.mode` is not given: a template means `prompt`; a `fields`
//! template with `$prefix`/`$suffix` means `separate`; a chat endpoint
//! (`…/chat/completions`, Ollama's `/api/chat`, Anthropic's `/messages`)
//! means `chat`; anything else `separate` (OpenAI's `prompt` + `suffix`).

use reqwest::Url;
use serde_json::{Map, Value};

use super::typo::closest;
use super::validate::kind_of;
use super::{Problem, REQUEST_FORMAT};
use crate::completion::fim::{TEMPLATE_NAMES, Template, template_of_model};
use crate::request::{BodySpec, FIM_PROMPT_PLACEHOLDER, PREFIX_PLACEHOLDER, SUFFIX_PLACEHOLDER};

/// The key of the object.
pub const FIM: &str = "fim";

const FIM_KEYS: &[&str] = &[
    "template",
    "mode",
    "maxTokens",
    "stop",
    "prefixLines",
    "suffixLines",
    "prefixChars",
    "suffixChars",
    "multiline",
];

/// How prefix and suffix reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimMode {
    /// The template renders one prompt (`prompt` / `$fimPrompt`).
    Prompt,
    /// Prefix and suffix in their own fields; the server applies the template.
    Separate,
    /// A chat model is asked to fill the hole; the code is taken from its answer.
    Chat,
}

/// The validated `fim` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimSettings {
    pub template: Option<Template>,
    pub mode: FimMode,
    /// Default 128; goes in the field the server's API uses for it.
    pub max_tokens: u64,
    /// Extra stop strings (the template brings its own).
    pub stop: Vec<String>,
    /// At most this many lines before / after the cursor (`None`: no line limit).
    pub prefix_lines: Option<usize>,
    pub suffix_lines: Option<usize>,
    /// At most this many characters before / after the cursor, cut at a line start.
    pub prefix_chars: usize,
    pub suffix_chars: usize,
    /// `None`: single line when the cursor's line has text after it.
    pub multiline: Option<bool>,
}

/// Default `fim.maxTokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 128;
/// Default character budgets before and after the cursor.
pub const DEFAULT_PREFIX_CHARS: usize = 8_000;
pub const DEFAULT_SUFFIX_CHARS: usize = 2_000;

impl FimMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FimMode::Prompt => "prompt",
            FimMode::Separate => "separate",
            FimMode::Chat => "chat",
        }
    }
}

impl FimSettings {
    /// The `fim` object as it will be used (the mode settled, defaults filled in).
    pub fn describe(&self) -> Value {
        let template = match &self.template {
            None => Value::Null,
            Some(t) if t.name == "custom" => serde_json::json!({
                "prefix": t.prefix, "suffix": t.suffix, "middle": t.middle, "stop": t.stops,
            }),
            Some(t) => Value::from(t.name.as_str()),
        };
        serde_json::json!({
            "template": template,
            "mode": self.mode.as_str(),
            "maxTokens": self.max_tokens,
            "stop": self.stop,
            "prefixLines": self.prefix_lines,
            "suffixLines": self.suffix_lines,
            "prefixChars": self.prefix_chars,
            "suffixChars": self.suffix_chars,
            "multiline": self.multiline.map_or(Value::from("auto"), Value::from),
        })
    }
}

/// `fim` settings that work but probably not as meant.
pub(super) fn warnings(fim: &FimSettings, url: &Url) -> Vec<Problem> {
    let mut warnings = Vec::new();
    if fim.mode == FimMode::Chat && fim.template.is_some() {
        warnings.push(Problem::new(
            format!("{FIM}.template"),
            "is not used with fim.mode \"chat\": the chat model is asked in words to fill the hole; remove it, or use fim.mode \"prompt\" with a completions endpoint",
        ));
    }
    if fim.mode == FimMode::Prompt && is_chat_url(url) {
        warnings.push(Problem::new(
            format!("{FIM}.mode"),
            "is \"prompt\" but the URL is a chat endpoint, which puts the FIM tokens inside a chat message: the model sees them as text; use the server's completions endpoint (e.g. /v1/completions) or fim.mode \"chat\"",
        ));
    }
    warnings
}

/// True when the URL is a chat endpoint.
pub fn is_chat_url(url: &Url) -> bool {
    let path = url.path().trim_end_matches('/');
    path.ends_with("/chat/completions")
        || path.ends_with("/api/chat")
        || path.ends_with("/messages")
        || path.ends_with("/chat")
}

/// Reads `fim` (absent: every default) against the URL and body it goes with.
pub(super) fn parse_fim(
    value: Option<&Value>,
    url: Option<&Url>,
    body: &BodySpec,
    problems: &mut Vec<Problem>,
) -> FimSettings {
    let empty = Map::new();
    let map = match value {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => {
            problems.push(Problem::new(
                FIM,
                format!(
                    "must be an object, e.g. {{\"template\": \"qwen\", \"mode\": \"prompt\"}}, got {}",
                    kind_of(other)
                ),
            ));
            &empty
        }
    };
    for key in map.keys() {
        if !FIM_KEYS.contains(&key.as_str()) {
            let hint = match closest(key, FIM_KEYS) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("known keys: {}", FIM_KEYS.join(", ")),
            };
            problems.push(Problem::new(
                format!("{FIM}.{key}"),
                format!("unknown key; {hint}"),
            ));
        }
    }
    let template = parse_template(map.get("template"), problems);
    let mode = match map.get("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "prompt" => Some(FimMode::Prompt),
            "separate" => Some(FimMode::Separate),
            "chat" => Some(FimMode::Chat),
            _ => {
                problems.push(Problem::new(
                    format!("{FIM}.mode"),
                    format!("must be \"prompt\", \"separate\" or \"chat\", got \"{s}\""),
                ));
                None
            }
        },
        Some(other) => {
            problems.push(Problem::new(
                format!("{FIM}.mode"),
                format!(
                    "must be \"prompt\", \"separate\" or \"chat\", got {}",
                    kind_of(other)
                ),
            ));
            None
        }
    };
    let fields = body.template.as_ref();
    let uses = |placeholder: &str| {
        fields.is_some_and(|f| f.values().any(|v| crate::request::holds(v, placeholder)))
    };
    let mode = mode.unwrap_or(if template.is_some() || uses(FIM_PROMPT_PLACEHOLDER) {
        FimMode::Prompt
    } else if uses(PREFIX_PLACEHOLDER) || uses(SUFFIX_PLACEHOLDER) {
        FimMode::Separate
    } else if url.is_some_and(is_chat_url) {
        FimMode::Chat
    } else {
        FimMode::Separate
    });
    if mode == FimMode::Prompt && template.is_none() && map.get("template").is_none() {
        problems.push(Problem::new(
            format!("{FIM}.template"),
            format!(
                "is required with fim.mode \"prompt\": the prompt is rendered from it; name one of {} or give {{\"prefix\", \"suffix\", \"middle\"}} (or use fim.mode \"separate\" if the server takes prefix and suffix in their own fields)",
                TEMPLATE_NAMES.join(", ")
            ),
        ));
    }
    if template.is_none() && map.get("template").is_none() && uses(FIM_PROMPT_PLACEHOLDER) {
        problems.push(Problem::new(
            format!("{REQUEST_FORMAT}.fields"),
            format!(
                "uses \"{FIM_PROMPT_PLACEHOLDER}\" but fim.template is not set, so there is no prompt to put there; set fim.template (e.g. \"qwen\") or use \"{PREFIX_PLACEHOLDER}\" and \"{SUFFIX_PLACEHOLDER}\""
            ),
        ));
    }
    if mode == FimMode::Chat && fields.is_some() && !uses(crate::request::CONTENT_PLACEHOLDER) {
        problems.push(Problem::new(
            format!("{FIM}.mode"),
            format!(
                "is \"chat\", but the fields template has no \"{}\" to carry the chat message; add it or use fim.mode \"separate\"",
                crate::request::CONTENT_PLACEHOLDER
            ),
        ));
    }
    let max_tokens = match map.get("maxTokens") {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => n,
            None => {
                problems.push(Problem::new(
                    format!("{FIM}.maxTokens"),
                    format!("must be a positive whole number, got {v}"),
                ));
                DEFAULT_MAX_TOKENS
            }
        },
    };
    let stop = parse_stops(map.get("stop"), &format!("{FIM}.stop"), problems);
    let count = |key: &str, problems: &mut Vec<Problem>| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n as usize),
            None => {
                problems.push(Problem::new(
                    format!("{FIM}.{key}"),
                    format!("must be a whole number (0 or more), got {v}"),
                ));
                None
            }
        },
    };
    let prefix_lines = count("prefixLines", problems);
    let suffix_lines = count("suffixLines", problems);
    let prefix_chars = count("prefixChars", problems).unwrap_or(DEFAULT_PREFIX_CHARS);
    let suffix_chars = count("suffixChars", problems).unwrap_or(DEFAULT_SUFFIX_CHARS);
    let multiline = match map.get("multiline") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "auto" => None,
        Some(other) => {
            problems.push(Problem::new(
                format!("{FIM}.multiline"),
                format!("must be true, false or \"auto\", got {other}"),
            ));
            None
        }
    };
    FimSettings {
        template,
        mode,
        max_tokens,
        stop,
        prefix_lines,
        suffix_lines,
        prefix_chars,
        suffix_chars,
        multiline,
    }
}

/// A stop list: one non-empty string or an array of them (an empty stop
/// string would end every answer before it starts).
fn parse_stops(value: Option<&Value>, field: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }
        Some(_) => {
            problems.push(Problem::new(
                field,
                "must be a non-empty string or an array of non-empty strings, e.g. [\"\\n\\n\"]",
            ));
            Vec::new()
        }
    }
}

fn parse_template(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Template> {
    let field = format!("{FIM}.template");
    match value? {
        Value::Null => None,
        Value::String(name) => {
            let found = Template::named(name);
            if found.is_none() {
                let hint = match (
                    closest(&name.to_ascii_lowercase(), TEMPLATE_NAMES),
                    template_of_model(name),
                ) {
                    (Some(known), _) => format!("did you mean `{known}`? "),
                    (None, Some(family)) => format!(
                        "that looks like a model name: use `{family}`, the template of its family. "
                    ),
                    (None, None) => String::new(),
                };
                problems.push(Problem::new(
                    field,
                    format!(
                        "unknown template `{name}`; {hint}built-in templates: {}, or a custom {{\"prefix\", \"suffix\", \"middle\"}}",
                        TEMPLATE_NAMES.join(", ")
                    ),
                ));
            }
            found
        }
        Value::Object(parts) => {
            let mut part = |key: &str, required: bool| match parts.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                None | Some(Value::Null) if !required => Some(String::new()),
                Some(other) => {
                    problems.push(Problem::new(
                        format!("{field}.{key}"),
                        format!("must be a string, got {}", kind_of(other)),
                    ));
                    None
                }
                None => {
                    problems.push(Problem::new(
                        format!("{field}.{key}"),
                        "is required: the text written before the prefix, before the suffix, and where the model answers",
                    ));
                    None
                }
            };
            let prefix = part("prefix", true);
            let suffix = part("suffix", true);
            let middle = part("middle", false);
            for key in parts.keys() {
                if !["prefix", "suffix", "middle", "stop"].contains(&key.as_str()) {
                    problems.push(Problem::new(
                        format!("{field}.{key}"),
                        "unknown key; a custom template has prefix, suffix, middle and stop",
                    ));
                }
            }
            let stops = parse_stops(parts.get("stop"), &format!("{field}.stop"), problems);
            match (prefix, suffix, middle) {
                (Some(p), Some(s), Some(m)) => {
                    if p.is_empty() && s.is_empty() && m.is_empty() {
                        problems.push(Problem::new(
                            field,
                            "has no markers at all: the model could not tell the prefix from the suffix",
                        ));
                        return None;
                    }
                    Some(Template::custom(&p, &s, &m, stops))
                }
                _ => None,
            }
        }
        other => {
            problems.push(Problem::new(
                field,
                format!(
                    "must be the name of a template ({}) or {{\"prefix\", \"suffix\", \"middle\"}}, got {}",
                    TEMPLATE_NAMES.join(", "),
                    kind_of(other)
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> BodySpec {
        BodySpec {
            custom_fields: Map::new(),
            role_key: "role".into(),
            content_key: "content".into(),
            template: None,
            system_field: None,
        }
    }

    fn parse(v: Value, url: &str) -> (FimSettings, Vec<Problem>) {
        let mut problems = Vec::new();
        let url = Url::parse(url).unwrap();
        let fim = parse_fim(Some(&v), Some(&url), &body(), &mut problems);
        (fim, problems)
    }

    #[test]
    fn mode_follows_from_the_rest() {
        let (f, p) = parse(json!({"template": "qwen"}), "http://h/v1/completions");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(f.mode, FimMode::Prompt);
        assert_eq!(f.max_tokens, 128);
        let (f, _) = parse(json!({}), "http://h/v1/chat/completions");
        assert_eq!(f.mode, FimMode::Chat);
        let (f, _) = parse(json!({}), "http://h/v1/fim/completions");
        assert_eq!(f.mode, FimMode::Separate);
    }

    #[test]
    fn doubtful_combinations_are_warnings() {
        let url = Url::parse("http://h/v1/chat/completions").unwrap();
        let (f, p) = parse(json!({"template": "qwen", "mode": "chat"}), url.as_str());
        assert!(p.is_empty());
        assert_eq!(warnings(&f, &url)[0].field, "fim.template");
        let (f, _) = parse(json!({"template": "qwen"}), url.as_str());
        assert_eq!(warnings(&f, &url)[0].field, "fim.mode");
        let url = Url::parse("http://h/v1/completions").unwrap();
        let (f, _) = parse(json!({"template": "qwen"}), url.as_str());
        assert!(warnings(&f, &url).is_empty());
    }

    #[test]
    fn impossible_combinations_name_the_field() {
        let (_, p) = parse(json!({"mode": "prompt"}), "http://h/v1/completions");
        assert_eq!(p[0].field, "fim.template");
        let (_, p) = parse(
            json!({"template": "starcodr", "maxTokens": 0, "multiline": 3, "stop": [1], "extra": 1}),
            "http://h/",
        );
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "fim.extra",
                "fim.template",
                "fim.maxTokens",
                "fim.stop",
                "fim.multiline"
            ],
            "{p:?}"
        );
        assert!(p[1].message.contains("starcoder"));
        let (_, p) = parse(json!({"template": {"prefix": "<A>"}}), "http://h/");
        assert_eq!(p[0].field, "fim.template.suffix");
    }
}
