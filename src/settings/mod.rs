//! Settings: every accepted form of the user's server configuration,
//! validated once into one plain [`Settings`] value.
//!
//! The input is the `settings` object of `llm/complete` in any of AutoDev's
//! generations ([`forms`] rewrites them into the v1 dialog keys), layered over
//! a preset, a `customLlms` entry or a profile ([`catalog`]).
//! [`Settings::from_canonical`] then checks every field ([`validate`], and
//! [`request_format`] for `customEngineRequestFormat`) and returns **every**
//! problem at once, each naming the field as the user typed it, so one round
//! trip shows everything to fix. Nothing downstream re-validates: a
//! `Settings` value is always usable. [`describe`] shows it back to the user.
//! [`key_source`] reads a token or header value from an environment variable
//! or names the command the engine runs for it.

pub mod catalog;
mod cross_checks;
pub mod describe;
pub mod fim;
pub mod forms;
pub mod key_source;
pub mod request_format;
pub mod schema;
mod secret_values;
pub mod token;
mod typo;
pub mod validate;

pub use catalog::{Catalog, Selection};
pub use key_source::{KeySource, KeySources, SourcedKey};
pub use token::AuthScheme;

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::decode::ResponseType;
use crate::extract::CompiledPath;
use crate::request::BodySpec;
use crate::secrets::Secrets;
use validate::{
    optional_string, parse_path, parse_proxy, parse_response_type, parse_retry, parse_timeouts,
    parse_token_header, parse_url, positive_integer,
};

/// A validated, normalised server configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The endpoint; the request is POSTed to it as written.
    pub url: Url,
    /// The token, when non-empty: trimmed, a pasted scheme removed, Basic
    /// credentials encoded ([`token`]).
    pub token: Option<String>,
    /// How the token goes in `Authorization` (`authType`, `auth.type`).
    pub auth_scheme: AuthScheme,
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
    /// Where the token or header values come from when they are not typed
    /// in ([`key_source`]); a command's output is put in place by the engine.
    pub key_sources: KeySources,
    /// Values to keep out of logs and errors.
    pub secrets: Secrets,
    /// Code completion: the `fim` object, with its mode settled.
    pub fim: fim::FimSettings,
    /// Settings that work but probably not as meant (`llm/validateSettings`
    /// lists them beside the problems).
    pub warnings: Vec<Problem>,
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
    pub proxy: Proxy,
    /// `caCertificates`: a PEM bundle added to the platform's roots.
    pub ca_certificates: Option<std::path::PathBuf>,
}

/// The `proxy` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Proxy {
    /// Not set: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment apply.
    #[default]
    FromEnvironment,
    /// `"none"`: connect directly, whatever the environment says.
    Direct,
    /// A proxy URL (`NO_PROXY` still applies).
    Url(String),
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

impl Proxy {
    /// The `proxy` value that means: connect directly, ignoring the environment.
    pub const DIRECT: &'static str = "none";

    /// The proxy URL, when one is configured.
    pub fn url(&self) -> Option<&str> {
        match self {
            Proxy::Url(url) => Some(url),
            _ => None,
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
/// How the token is sent: `Bearer` or `Basic` (a `customLlms` entry's `auth.type`).
pub const AUTH_TYPE: &str = "authType";

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
    AUTH_TYPE,
    key_source::TOKEN_ENV,
    key_source::TOKEN_COMMAND,
    catalog::PRESET,
    fim::FIM,
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
        validate::check_unknown_keys(map, &mut problems);

        let url = parse_url(map.get(SERVER), &mut problems);
        let auth_scheme = token::parse_auth_type(map, &mut problems);
        let mut token = token::parse_token(map, auth_scheme, &mut problems);
        let token_source = key_source::parse_token_source(map, &mut problems);
        let mut source_values = Vec::new();
        if let Some((key, Some(value))) = &token_source {
            token = token::clean(value, auth_scheme, &key.field).unwrap_or_else(|problem| {
                problems.push(problem);
                None
            });
            source_values.push(value.clone());
        }
        let response_type = parse_response_type(map.get(RESPONSE_TYPE), &mut problems);
        let content_path = parse_path(map, RESPONSE_FORMAT, &mut problems);
        let reasoning_path = parse_path(map, REASONING_FORMAT, &mut problems);
        let (mut body, custom_headers, sourced_headers) =
            request_format::parse_request_format(map.get(REQUEST_FORMAT), &mut problems);
        for (name, _) in &sourced_headers {
            let read = custom_headers.iter().filter(|(n, _)| n == name);
            source_values.extend(read.filter_map(|(_, v)| v.to_str().ok().map(str::to_owned)));
        }
        let key_sources = KeySources {
            token: token_source.map(|(key, _)| key),
            headers: sourced_headers,
        };
        body.system_field =
            optional_string(map, SYSTEM_FIELD, &mut problems).filter(|f| !f.trim().is_empty());
        cross_checks::check_system_field(&body, &mut problems);
        let fim = fim::parse_fim(map.get(fim::FIM), url.as_ref(), &body, &mut problems);
        let fim_warnings = url.as_ref().map(|u| fim::warnings(&fim, u));
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
                let mut secrets = secret_values::collect_secrets(
                    &url,
                    token.as_deref(),
                    &custom_headers,
                    network.proxy.url(),
                );
                if let Some(raw) = optional_string(map, TOKEN, &mut Vec::new()) {
                    // What the user typed, before it was trimmed or encoded.
                    secrets.add(raw.trim());
                }
                for value in &source_values {
                    secrets.add(value);
                }
                let warnings =
                    cross_checks::warnings(&body, response_type, &content_path, &reasoning_path);
                if let Some(name) = &token_header
                    && custom_headers.iter().any(|(h, _)| h == name)
                {
                    tracing::debug!(header = %name, "customHeaders replaces the token header");
                }
                Ok(Settings {
                    url,
                    token,
                    auth_scheme,
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
                    key_sources,
                    secrets,
                    fim,
                    warnings: [warnings, fim_warnings.unwrap_or_default()].concat(),
                })
            }
            _ => Err(problems),
        }
    }

    /// The URL without its query string and credentials, safe to show.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
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
