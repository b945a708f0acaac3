//! The HTTP body of one code completion: the context cut to its budget, the
//! prompt rendered from the FIM template, and the fields the server's shape
//! expects (`prompt`/`suffix`, llama.cpp's `input_prefix`/`input_suffix`,
//! a chat message), with `maxTokens` and the stop tokens in the fields that
//! API uses for them. A `fields` template takes the placeholders `$prefix`,
//! `$suffix`, `$fimPrompt`, `$language`, `$path` (and `$content`, the prompt)
//! at any depth, like AutoDev's `$content`.

use serde_json::{Map, Value};

use crate::extract::CompiledPath;
use crate::request::{
    self, CONTENT_PLACEHOLDER, FIM_PROMPT_PLACEHOLDER, LANGUAGE_PLACEHOLDER, Message,
    PATH_PLACEHOLDER, PREFIX_PLACEHOLDER, Role, SUFFIX_PLACEHOLDER,
};
use crate::settings::Settings;
use crate::settings::fim::{FimMode, FimSettings};

/// What the prompt is built from: the text around the cursor, cut to the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub prefix: String,
    pub suffix: String,
    pub language: Option<String>,
    pub path: Option<String>,
    /// Whether the answer may span lines.
    pub multiline: bool,
}

/// The API family a URL belongs to, for where the limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/v1/completions`, `/chat/completions`, `/fim/completions`, `/beta/completions`.
    OpenAi,
    /// llama.cpp `/completion` and `/infill`.
    LlamaCpp,
    /// Ollama `/api/generate` and `/api/chat`.
    Ollama,
    /// Anthropic `/v1/messages`.
    Anthropic,
    /// Anything else: the body is the user's, nothing is added.
    Other,
}

/// OpenAI's legacy completions accept at most four stop sequences.
const OPENAI_MAX_STOPS: usize = 4;

/// The hole marker of the chat instruction.
pub const HOLE: &str = "{{FILL_HERE}}";
/// The tags the chat answer is asked to put the code in.
pub const ANSWER_OPEN: &str = "<COMPLETION>";
pub const ANSWER_CLOSE: &str = "</COMPLETION>";

impl Shape {
    pub fn of(settings: &Settings) -> Shape {
        let path = settings.url.path().trim_end_matches('/');
        if path.ends_with("/api/generate") || path.ends_with("/api/chat") {
            Shape::Ollama
        } else if path.ends_with("/infill") || path.ends_with("/completion") {
            Shape::LlamaCpp
        } else if path.ends_with("/messages") {
            Shape::Anthropic
        } else if path.ends_with("completions") {
            Shape::OpenAi
        } else {
            Shape::Other
        }
    }
}

/// The text around the cursor cut to `fim`'s budget: whole lines, the
/// cursor's own line always kept.
pub fn context(
    fim: &FimSettings,
    prefix: &str,
    suffix: &str,
    language: Option<&str>,
    path: Option<&str>,
) -> Context {
    let prefix = cut_prefix(prefix, fim.prefix_lines, fim.prefix_chars);
    let suffix = cut_suffix(suffix, fim.suffix_lines, fim.suffix_chars);
    let rest_of_line = suffix.split('\n').next().unwrap_or_default();
    let multiline = fim
        .multiline
        .unwrap_or_else(|| rest_of_line.trim().is_empty());
    Context {
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
        language: language.map(str::to_owned),
        path: path.map(str::to_owned),
        multiline,
    }
}

/// The end of `text`: at most `lines` lines before the cursor's line and at
/// most `chars` bytes, starting at a line start where one is in reach.
fn cut_prefix(text: &str, lines: Option<usize>, chars: usize) -> &str {
    let mut start = 0;
    if let Some(lines) = lines {
        // The cursor's line plus `lines` lines before it.
        if let Some((i, _)) = text.rmatch_indices('\n').nth(lines) {
            start = i + 1;
        }
    }
    if text.len() - start > chars {
        let mut cut = text.len() - chars;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        start = match text[cut..].find('\n') {
            Some(nl) if cut + nl + 1 < text.len() => cut + nl + 1,
            _ => cut,
        };
    }
    &text[start..]
}

/// The start of `text`: the rest of the cursor's line, at most `lines` lines
/// after it and at most `chars` bytes, ending at a line end where one is in reach.
fn cut_suffix(text: &str, lines: Option<usize>, chars: usize) -> &str {
    let mut end = text.len();
    if let Some(lines) = lines
        && let Some((i, _)) = text.match_indices('\n').nth(lines)
    {
        end = i;
    }
    if end > chars {
        let mut cut = chars;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        end = match text[..cut].rfind('\n') {
            Some(nl) if nl > 0 => nl,
            _ => cut,
        };
    }
    &text[..end]
}

/// The messages of `fim.mode: chat`: our hole-filling instruction.
pub fn chat_messages(ctx: &Context) -> Vec<Message> {
    let mut system = format!(
        "You are a code completion engine. The user sends a file with a hole marked {HOLE}. \
         Reply with only the code that goes in place of {HOLE}, between {ANSWER_OPEN} and {ANSWER_CLOSE}: \
         no explanation, no markdown fence, and never repeat the code before or after the hole."
    );
    if !ctx.multiline {
        system.push_str(" Complete only the rest of the current line.");
    }
    let mut user = String::new();
    if let Some(path) = &ctx.path {
        user.push_str(&format!("File: {path}\n"));
    }
    if let Some(language) = &ctx.language {
        user.push_str(&format!("Language: {language}\n"));
    }
    user.push_str("<CODE>\n");
    user.push_str(&ctx.prefix);
    user.push_str(HOLE);
    user.push_str(&ctx.suffix);
    user.push_str("\n</CODE>");
    vec![
        Message {
            role: Role::System,
            content: system,
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

/// The rendered prompt, when there is a template.
pub fn fim_prompt(fim: &FimSettings, ctx: &Context) -> Option<String> {
    fim.template
        .as_ref()
        .map(|t| t.render(&ctx.prefix, &ctx.suffix))
}

/// The stop strings of these settings: the user's, then the template's.
pub fn stops(fim: &FimSettings) -> Vec<String> {
    let mut all = fim.stop.clone();
    if let Some(template) = &fim.template {
        for stop in &template.stops {
            if !all.contains(stop) {
                all.push(stop.clone());
            }
        }
    }
    all
}

/// The JSON body to POST.
pub fn body(settings: &Settings, ctx: &Context) -> Vec<u8> {
    let fim = &settings.fim;
    let shape = Shape::of(settings);
    let prompt = fim_prompt(fim, ctx);
    let mut map = if fim.mode == FimMode::Chat {
        let bytes = request::body(&settings.body, &chat_messages(ctx));
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    } else if let Some(template) = &settings.body.template {
        let text = prompt.as_deref().unwrap_or(&ctx.prefix);
        let values = [
            (PREFIX_PLACEHOLDER, ctx.prefix.as_str()),
            (SUFFIX_PLACEHOLDER, ctx.suffix.as_str()),
            (FIM_PROMPT_PLACEHOLDER, text),
            (CONTENT_PLACEHOLDER, text),
            (
                LANGUAGE_PLACEHOLDER,
                ctx.language.as_deref().unwrap_or_default(),
            ),
            (PATH_PLACEHOLDER, ctx.path.as_deref().unwrap_or_default()),
        ];
        let mut map = request::fill_placeholders(template, &values);
        for (key, value) in &settings.body.custom_fields {
            map.insert(key.clone(), value.clone());
        }
        map
    } else {
        let mut map = settings.body.custom_fields.clone();
        match (fim.mode, prompt) {
            (FimMode::Prompt, Some(prompt)) => {
                map.insert("prompt".to_owned(), Value::from(prompt));
                if shape == Shape::Ollama {
                    map.entry("raw").or_insert(Value::Bool(true));
                }
            }
            _ if settings
                .url
                .path()
                .trim_end_matches('/')
                .ends_with("/infill") =>
            {
                map.insert("input_prefix".to_owned(), Value::from(ctx.prefix.as_str()));
                map.insert("input_suffix".to_owned(), Value::from(ctx.suffix.as_str()));
            }
            _ => {
                map.insert("prompt".to_owned(), Value::from(ctx.prefix.as_str()));
                map.insert("suffix".to_owned(), Value::from(ctx.suffix.as_str()));
            }
        }
        map
    };
    let stops = match fim.mode {
        FimMode::Chat => {
            let mut stops = fim.stop.clone();
            stops.push(ANSWER_CLOSE.to_owned());
            stops
        }
        _ => stops(fim),
    };
    add_limits(&mut map, shape, fim.max_tokens, &stops);
    serde_json::to_vec(&Value::Object(map)).expect("a JSON map always serialises")
}

/// Puts `maxTokens` and the stop strings where the API takes them, unless
/// the body already sets them.
fn add_limits(map: &mut Map<String, Value>, shape: Shape, max_tokens: u64, stops: &[String]) {
    let has = |map: &Map<String, Value>, keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
    let stop_list = |limit: usize| {
        Value::Array(
            stops
                .iter()
                .take(limit)
                .map(|s| Value::from(s.as_str()))
                .collect(),
        )
    };
    match shape {
        Shape::OpenAi | Shape::LlamaCpp | Shape::Anthropic => {
            let (limit_key, limit_keys): (&str, &[&str]) = match shape {
                Shape::LlamaCpp => ("n_predict", &["n_predict", "max_tokens"]),
                _ => ("max_tokens", &["max_tokens", "max_completion_tokens"]),
            };
            if !has(map, limit_keys) {
                map.insert(limit_key.to_owned(), Value::from(max_tokens));
            }
            let (stop_key, limit) = match shape {
                Shape::Anthropic => ("stop_sequences", usize::MAX),
                Shape::OpenAi => ("stop", OPENAI_MAX_STOPS),
                _ => ("stop", usize::MAX),
            };
            if !stops.is_empty() && !has(map, &["stop", "stop_sequences"]) {
                map.insert(stop_key.to_owned(), stop_list(limit));
            }
        }
        Shape::Ollama => {
            let options = map
                .entry("options")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(options) = options {
                options
                    .entry("num_predict")
                    .or_insert(Value::from(max_tokens));
                if !stops.is_empty() {
                    options
                        .entry("stop")
                        .or_insert_with(|| stop_list(usize::MAX));
                }
            }
        }
        Shape::Other => {}
    }
}

/// The response path when the settings name none and the shape's answer is
/// not under the general defaults: `$.content` for llama.cpp, `$.choices[0].text`
/// for OpenAI-style (non-chat) completions.
pub fn default_path(settings: &Settings) -> Option<CompiledPath> {
    if settings.content_path.is_some() || settings.fim.mode == FimMode::Chat {
        return None;
    }
    let path = settings.url.path().trim_end_matches('/');
    let source = match Shape::of(settings) {
        Shape::LlamaCpp => "$.content",
        Shape::OpenAi
            if !path.ends_with("/chat/completions") && !path.ends_with("/fim/completions") =>
        {
            "$.choices[0].text"
        }
        _ => return None,
    };
    Some(CompiledPath::compile(source).expect("a valid built-in path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_budget_keeps_whole_lines_and_the_cursor_line() {
        assert_eq!(cut_prefix("a\nb\nc\nde", Some(1), 100), "c\nde");
        assert_eq!(cut_prefix("a\nb\nc\nde", Some(0), 100), "de");
        assert_eq!(cut_prefix("a\nb\nc\nde", None, 100), "a\nb\nc\nde");
        assert_eq!(cut_prefix("aaaa\nbbbb\ncc", None, 6), "cc");
        assert_eq!(cut_prefix("aaaaaaaaaa", None, 3), "aaa");
        assert_eq!(cut_prefix("éééé", None, 3), "é");
    }

    #[test]
    fn suffix_budget_keeps_whole_lines_and_the_rest_of_the_line() {
        assert_eq!(cut_suffix(")\n}\nx\ny", Some(1), 100), ")\n}");
        assert_eq!(cut_suffix(")\n}\nx\ny", Some(0), 100), ")");
        assert_eq!(cut_suffix("ab\ncd\nef", None, 6), "ab\ncd");
        assert_eq!(cut_suffix("abcdef", None, 3), "abc");
    }
}
