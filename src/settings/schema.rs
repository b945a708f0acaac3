//! The JSON Schema of the `settings` object, generated from these types.
//!
//! These types describe every accepted form for client authors and IDE
//! settings UIs; parsing itself is done field by field in [`super`] so that
//! every problem can be reported at once. A test keeps the two in step (every
//! key the parser accepts is described here) and keeps the committed
//! `protocol/settings.schema.json` equal to [`settings_schema`].

use std::collections::BTreeMap;

use schemars::{JsonSchema, schema_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Settings of one LLM server, in any of AutoDev's forms: the v1 "Custom LLM
/// Server" dialog fields, a 2.x `customLlms` entry, or the 2.2 `customRequest`
/// form, optionally starting from a built-in `preset`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "llm-sidecar settings")]
pub struct SettingsSchema {
    /// The full endpoint URL (http or https); the request is POSTed to it as written.
    /// Example: `https://api.deepseek.com/v1/chat/completions`.
    #[schemars(url)]
    pub custom_engine_server: Option<String>,
    /// The API token, sent as `Authorization: Bearer <token>` when non-empty. Spaces,
    /// line ends and invisible characters around it and a pasted `Bearer ` are removed.
    pub custom_engine_token: Option<String>,
    /// The token is read by the sidecar from its own environment variable of this name
    /// instead of being sent over the pipe. At most one of `customEngineToken`,
    /// `customEngineTokenEnv` and `customEngineTokenCommand` may be set. Only ever take it
    /// from the user's own settings, never from a workspace or project file.
    pub custom_engine_token_env: Option<String>,
    /// The token is the trimmed standard output of this program, run by the sidecar
    /// without a shell and without input (10 s at most), e.g. `["pass", "show", "deepseek"]`.
    /// The output is cached for the process and read again once after a 401 or 403.
    /// Only ever take it from the user's own settings, never from a workspace or project file.
    #[schemars(length(min = 1))]
    pub custom_engine_token_command: Option<Vec<String>>,
    /// What the server answers with. Default `SSE`. If the response's
    /// Content-Type says otherwise, the body is read as what it is.
    pub custom_engine_response_type: Option<ResponseTypeName>,
    /// JsonPath of the text in each event (RFC 9535; a missing leading `$` and
    /// Jayway's `[?(...)]` filters are accepted). Empty: `$.choices[0].delta.content`
    /// for streams, `$.choices[0].message.content` for JSON bodies, then the other
    /// common server families' paths (Ollama, Anthropic, Gemini).
    pub custom_engine_response_format: Option<String>,
    /// The request format: a JSON string (as AutoDev's dialog stores it) or an object.
    pub custom_engine_request_format: Option<RequestFormatInput>,
    /// JsonPath of reasoning text in each event, streamed with `kind: "reasoning"`,
    /// e.g. `$.choices[0].delta.reasoning_content`.
    pub reasoning_format: Option<String>,
    /// A built-in starting point (see `llm/presets`) that the other fields override,
    /// e.g. `deepseek`, `openai`, `ollama`, `anthropic`.
    pub preset: Option<String>,
    /// Shortcut for `customFields.model`.
    pub model: Option<String>,
    /// The header that carries the token. Default `Authorization` (as `Bearer <token>`);
    /// any other name carries the bare token (`api-key` for Azure, `x-api-key` for Anthropic).
    pub token_header: Option<String>,
    /// When set, system messages are sent in this top-level body field instead of
    /// `messages` (Anthropic: `system`). It cannot be `messages` nor a `customFields` key.
    pub system_field: Option<String>,
    /// How the token is sent in `Authorization`: `Bearer` (default) or `Basic` (a
    /// `user:password` token is base64-encoded; an already encoded one is sent as is).
    /// A `customLlms` entry's `auth.type` is read as this.
    pub auth_type: Option<AuthTypeName>,
    /// Time limits in milliseconds.
    pub timeouts: Option<TimeoutsSchema>,
    /// Retries of connect failures and HTTP 429/500/502/503/504, only while no text was sent.
    pub retry: Option<RetrySchema>,
    /// Largest single SSE event or NDJSON line, in bytes. Default 8 MiB.
    #[schemars(range(min = 1))]
    pub max_event_bytes: Option<u64>,
    /// Largest response body, in bytes. Default 64 MiB.
    #[schemars(range(min = 1))]
    pub max_response_bytes: Option<u64>,
    /// Proxy URL for this server; replaces `HTTPS_PROXY` / `HTTP_PROXY` (`NO_PROXY` still
    /// applies). `"none"` connects directly, ignoring the environment.
    pub proxy: Option<String>,
    /// Path of a PEM bundle of extra trusted root certificates (corporate proxies,
    /// self-signed local servers), added to the platform's roots.
    pub ca_certificates: Option<String>,

    /// Code completion (`llm/inlineCompletion`, `textDocument/inlineCompletion`): how the
    /// text around the cursor is sent and the answer cleaned. A `customLlms` entry may carry
    /// it at its top level.
    pub fim: Option<FimSchema>,

    /// `customLlms` entry: the name requests use to pick it (`"llm": name`).
    pub name: Option<String>,
    /// `customLlms` entry: a description (not used).
    pub description: Option<String>,
    /// `customLlms` entry: the endpoint URL (same as `customEngineServer`).
    pub url: Option<String>,
    /// `customLlms` entry: the token (`auth.token`) and how it is sent (`auth.type`: `Bearer` or `Basic`).
    pub auth: Option<AuthSchema>,
    /// `customLlms` entry: the request format as a JSON string (same as `customEngineRequestFormat`).
    pub request_format: Option<RequestFormatInput>,
    /// `customLlms` entry: the JsonPath (same as `customEngineResponseFormat`).
    pub response_format: Option<String>,
    /// Alias of `customEngineResponseType`.
    pub response_type: Option<ResponseTypeName>,
    /// `customLlms` entry: what the entry is for; requests may pick the first entry of a type.
    pub model_type: Option<ModelType>,
    /// AutoDev 2.2: headers, body fields and the stream flag.
    pub custom_request: Option<CustomRequestSchema>,
    /// AutoDev 2.2: sent as `max_tokens` unless the body has it.
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
}

/// The `fim` object of code completion.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FimSchema {
    /// The model family's fill-in-the-middle tokens, or a custom `{prefix, suffix, middle}`.
    /// Each template brings its stop tokens. Needed by `mode: "prompt"`.
    pub template: Option<FimTemplateInput>,
    /// `prompt`: the template renders one prompt (`prompt`, or `$fimPrompt` in `fields`);
    /// `separate`: prefix and suffix in their own fields (`prompt`+`suffix`, llama.cpp
    /// `input_prefix`/`input_suffix`, or `$prefix`/`$suffix`); `chat`: a chat model is asked to
    /// fill the hole. Default: `prompt` with a template, `chat` for a chat endpoint, else `separate`.
    pub mode: Option<FimModeName>,
    /// Most tokens to generate. Default 128. Sent as `max_tokens`, llama.cpp's `n_predict` or
    /// Ollama's `options.num_predict`, unless the body sets it.
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// More stop strings (sent to the server, and cut on our side).
    pub stop: Option<StopInput>,
    /// At most this many whole lines before the cursor's line. Default: no line limit.
    pub prefix_lines: Option<u64>,
    /// At most this many whole lines after the cursor's line. Default: no line limit.
    pub suffix_lines: Option<u64>,
    /// At most this many bytes before the cursor, cut at a line start. Default 8000.
    pub prefix_chars: Option<u64>,
    /// At most this many bytes after the cursor, cut at a line end. Default 2000.
    pub suffix_chars: Option<u64>,
    /// `true`, `false` or `"auto"` (default): one line when the cursor's line has text after it.
    pub multiline: Option<Value>,
}

/// A built-in template's name or a custom one.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FimTemplateInput {
    Named(FimTemplateName),
    Custom(CustomFimTemplate),
}

/// The built-in FIM templates.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FimTemplateName {
    /// `<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>` (StarCoder, StarCoder2).
    Starcoder,
    /// `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>` (Qwen2.5-Coder).
    Qwen,
    /// `<PRE> {prefix} <SUF>{suffix} <MID>` (Code Llama).
    Codellama,
    /// `<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>` (DeepSeek-Coder).
    Deepseek,
    /// `[SUFFIX]{suffix}[PREFIX]{prefix}` (Codestral).
    Codestral,
    /// `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>` (CodeGemma).
    Codegemma,
}

/// A custom template: `{prefix marker}{prefix}{suffix marker}{suffix}{middle marker}`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFimTemplate {
    pub prefix: String,
    pub suffix: String,
    pub middle: Option<String>,
    /// The model's end tokens (the markers are stops too).
    pub stop: Option<StopInput>,
}

/// One stop string or several.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StopInput {
    One(String),
    Many(Vec<String>),
}

/// The FIM modes.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FimModeName {
    Prompt,
    Separate,
    Chat,
}

/// The response types.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub enum ResponseTypeName {
    /// Server-sent events (`text/event-stream`).
    #[serde(rename = "SSE")]
    Sse,
    /// One JSON document.
    #[serde(rename = "JSON")]
    Json,
    /// One JSON object per line (Ollama's native API).
    #[serde(rename = "NDJSON")]
    Ndjson,
}

/// How the token is sent in `Authorization`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub enum AuthTypeName {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic <base64 of user:password>`.
    Basic,
}

/// The request format, as a JSON string or as an object.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RequestFormatInput {
    /// The JSON text of a request format object.
    Text(String),
    Object(RequestFormat),
}

/// How the request body and headers are built.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestFormat {
    /// Added at the top level of the body (any JSON values). `messages` cannot be set here:
    /// it is built from the conversation. `stream` is sent only if given here.
    pub custom_fields: Option<BTreeMap<String, Value>>,
    /// Extra headers; each replaces a header of the same name, `Authorization` included.
    /// Framing and hop-by-hop headers (`Content-Length`, `Transfer-Encoding`, `Host`,
    /// `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`, `Expect`,
    /// `Content-Encoding`, `Accept-Encoding`, `Proxy-Authorization`) are refused.
    /// A value may be a key source instead of a string (`{"env": "AZURE_API_KEY"}`).
    pub custom_headers: Option<BTreeMap<String, HeaderValueInput>>,
    /// Renames the keys inside each message (to two different names).
    pub message_keys: Option<MessageKeys>,
    /// A whole-body template that replaces the default body; every value that is exactly
    /// `"$content"`, at any depth, becomes the last message's text. It must hold one (or, for
    /// code completion, `"$prefix"`, `"$suffix"` or `"$fimPrompt"`; `"$language"` and
    /// `"$path"` are filled in too).
    pub fields: Option<BTreeMap<String, Value>>,
}

/// A header value: the text, or a key source the sidecar reads it from.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderValueInput {
    Text(String),
    Source(KeySourceSchema),
}

/// Where the sidecar reads a secret header value from; the value is masked everywhere.
/// Only ever take it from the user's own settings, never from a workspace or project file.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum KeySourceSchema {
    /// The sidecar's own environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// The trimmed standard output of a program run without a shell and without input,
    /// cached for the process and run again once after a 401 or 403.
    Command {
        /// The program and its arguments.
        #[schemars(length(min = 1))]
        command: Vec<String>,
    },
}

/// The keys of each message.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageKeys {
    /// Default `role`.
    pub role: Option<String>,
    /// Default `content`.
    pub content: Option<String>,
}

/// Time limits in milliseconds.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutsSchema {
    /// TCP and TLS connection. Default 10000. At most 86400000 (24 h).
    #[schemars(range(min = 1, max = 86_400_000))]
    pub connect_ms: Option<u64>,
    /// Until the response's first byte. Default 60000. At most 86400000 (24 h).
    #[schemars(range(min = 1, max = 86_400_000))]
    pub first_byte_ms: Option<u64>,
    /// Longest silence between two reads of the body. Default 60000. At most 86400000 (24 h).
    #[schemars(range(min = 1, max = 86_400_000))]
    pub idle_ms: Option<u64>,
    /// The whole completion. Default: none. At most 86400000 (24 h).
    #[schemars(range(min = 1, max = 86_400_000))]
    pub total_ms: Option<u64>,
}

/// Retry policy.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySchema {
    /// Default 2.
    #[schemars(range(max = 10))]
    pub max_retries: Option<u32>,
    /// First wait, doubled each time, with jitter. Default 500; at most 60000 and at most
    /// `maxBackoffMs`. A `Retry-After` header wins (capped at 60 s).
    #[schemars(range(min = 1, max = 60_000))]
    pub initial_backoff_ms: Option<u64>,
    /// Longest computed wait. Default 8000; at most 60000.
    #[schemars(range(min = 1, max = 60_000))]
    pub max_backoff_ms: Option<u64>,
}

/// A `customLlms` entry's `auth`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSchema {
    /// `Bearer` (default) or `Basic`; use `tokenHeader` to send the token as is in another header.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub token: Option<String>,
    /// As `customEngineTokenEnv`.
    pub token_env: Option<String>,
    /// As `customEngineTokenCommand`.
    pub token_command: Option<Vec<String>>,
}

/// AutoDev's model types.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub enum ModelType {
    Default,
    Plan,
    Act,
    Completion,
    Embedding,
    FastApply,
    Others,
}

/// AutoDev 2.2's custom request.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRequestSchema {
    /// Extra headers (as `customHeaders`).
    pub headers: Option<BTreeMap<String, HeaderValueInput>>,
    /// Body fields (as `customFields`).
    pub body: Option<BTreeMap<String, Value>>,
    /// Sent as the body's `stream` unless the body has it; `false` also means a JSON response.
    pub stream: Option<bool>,
}

/// The schema, as pretty-printed JSON with a trailing newline.
pub fn settings_schema() -> String {
    let schema = schema_for!(SettingsSchema);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the committed schema lives.
    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/settings.schema.json");

    #[test]
    fn committed_schema_is_current() {
        let generated = settings_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(COMMITTED, &generated).expect("write the schema");
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "protocol/settings.schema.json is out of date: run `UPDATE_SCHEMA=1 cargo test --lib committed_schema` (or `cargo run -- schema > protocol/settings.schema.json`) and commit it"
        );
    }

    #[test]
    fn schema_describes_every_accepted_key() {
        let schema: Value = serde_json::from_str(&settings_schema()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for key in super::super::KNOWN_KEYS {
            assert!(
                properties.contains_key(*key),
                "the schema does not describe `{key}`"
            );
        }
        for key in [
            "url",
            "auth",
            "requestFormat",
            "responseFormat",
            "responseType",
            "customRequest",
            "maxTokens",
            "name",
            "modelType",
        ] {
            assert!(
                properties.contains_key(key),
                "the schema does not describe `{key}`"
            );
        }
    }
}
