//! Compiled JsonPaths: the user's path as compiled once, the chain of default
//! paths used when none is configured, and what a path selects in one event.

use std::sync::LazyLock;

use serde_json::Value;
use serde_json_path::JsonPath;

/// A JsonPath as the user wrote it, compiled.
#[derive(Debug, Clone)]
pub struct CompiledPath {
    /// The text the user configured (before any dialect fix-ups).
    pub source: String,
    /// The RFC 9535 form that is evaluated.
    pub normalized: String,
    pub(crate) path: JsonPath,
}

/// A JsonPath that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// 1-based column in the text the user wrote.
    pub column: usize,
    pub message: String,
}

/// What a path selected in one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selected {
    Nothing,
    /// Only objects, arrays, numbers or booleans.
    NonText,
    /// At least one string or null (a null is a valid empty piece).
    Text,
}

/// Appends every string the path selects.
pub(crate) fn collect_strings(path: &JsonPath, value: &Value, out: &mut String) -> Selected {
    let mut selected = Selected::Nothing;
    for node in path.query(value) {
        match node {
            Value::String(s) => {
                out.push_str(s);
                selected = Selected::Text;
            }
            Value::Null => selected = Selected::Text,
            _ if selected == Selected::Nothing => selected = Selected::NonText,
            _ => {}
        }
    }
    selected
}

/// Default path for streams.
pub const DEFAULT_STREAM_PATH: &str = "$.choices[0].delta.content";
/// Default path for JSON bodies (and the next one for streams, as AutoDev's
/// Jackson mapping aliased `delta` to `message`).
pub const DEFAULT_JSON_PATH: &str = "$.choices[0].message.content";

/// Without a configured path, each event is tried against these in order and
/// the first that selects something is used: AutoDev's defaults first, then
/// the other common server families, so an empty setting works with them.
/// One chain serves every format: no stream event has a JSON answer's
/// fields and no JSON answer a stream event's, so the order only matters
/// within a family, and a body read as another type than announced needs
/// no other defaults.
const DEFAULT_PATH_SOURCES: &[&str] = &[
    DEFAULT_STREAM_PATH,
    DEFAULT_JSON_PATH,
    "$.message.content",                               // Ollama /api/chat
    "$.response",                                      // Ollama /api/generate, Cloudflare
    "$.delta.text",                                    // Anthropic content_block_delta
    "$.content[?@.type == 'text'].text",               // Anthropic JSON answer
    "$.candidates[0].content.parts[?!@.thought].text", // Gemini, without thought summaries
];

/// The leading paths of the default chain that are simple (see [`super::fast`]).
pub(crate) const DEFAULT_SIMPLE_PATHS: &[&str] = DEFAULT_PATH_SOURCES.split_at(5).0;

pub(crate) static DEFAULT_PATHS: LazyLock<Vec<JsonPath>> = LazyLock::new(|| {
    DEFAULT_PATH_SOURCES
        .iter()
        .map(|p| JsonPath::parse(p).expect("valid default path"))
        .collect()
});

impl CompiledPath {
    /// Compiles a path as users paste it from AutoDev (see [`dialect`]).
    pub fn compile(source: &str) -> Result<CompiledPath, PathError> {
        super::dialect::compile(source)
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}
