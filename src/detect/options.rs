//! The params of `llm/detect` (every problem at once, each named by its
//! param) and the settings each probe runs with: the candidate's v1 fields
//! plus short time limits, the network settings and no retries, each on a
//! connection of its own.

use reqwest::Url;
use reqwest::header::{CONNECTION, HeaderValue};
use serde_json::{Map, Value, json};

use super::shapes::{Access, Shape};
use crate::settings::{Problem, Settings};

/// What `llm/detect` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: Url,
    pub token: Option<String>,
    /// Extra headers sent with every probe and kept in the candidates.
    pub headers: Map<String, Value>,
    /// `timeouts` of each probe, over [`default_timeouts`].
    pub timeouts: Map<String, Value>,
    /// Network settings passed through (`proxy`, `caCertificates`).
    pub network: Map<String, Value>,
    pub max_requests: usize,
}

/// The default request limit of a detection.
pub const MAX_REQUESTS: usize = 10;
/// Each probe's time limits unless the caller sets them.
pub fn default_timeouts() -> Map<String, Value> {
    match json!({"connectMs": 3000, "firstByteMs": 15000, "idleMs": 15000, "totalMs": 30000}) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Reads `llm/detect` params; every problem at once.
pub fn parse_options(params: &Map<String, Value>) -> Result<Options, Vec<Problem>> {
    let mut problems = Vec::new();
    let text = |key: &str, problems: &mut Vec<Problem>| match params.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            problems.push(Problem::new(key, "must be a string"));
            None
        }
    };
    let url_text = text("url", &mut problems);
    let token = text("token", &mut problems).filter(|t| !t.is_empty());
    let object = |key: &str, problems: &mut Vec<Problem>| match params.get(key) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            problems.push(Problem::new(key, "must be an object"));
            Map::new()
        }
    };
    let headers = object("headers", &mut problems);
    let mut timeouts = default_timeouts();
    timeouts.extend(object("timeouts", &mut problems));
    let mut network = Map::new();
    for key in ["proxy", "caCertificates"] {
        if let Some(value) = params.get(key) {
            network.insert(key.to_owned(), value.clone());
        }
    }
    let max_requests = match params.get("maxRequests") {
        None | Some(Value::Null) => MAX_REQUESTS,
        Some(v) => match v.as_u64().filter(|n| (1..=50).contains(n)) {
            Some(n) => n as usize,
            None => {
                problems.push(Problem::new(
                    "maxRequests",
                    "must be an integer from 1 to 50",
                ));
                MAX_REQUESTS
            }
        },
    };
    let url = match url_text.as_deref() {
        None | Some("") => {
            problems.push(Problem::new(
                "url",
                "is required: the server's address, e.g. http://localhost:8080",
            ));
            None
        }
        Some(text) => match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            _ => {
                problems.push(Problem::new(
                    "url",
                    "must be an http:// or https:// URL with a host",
                ));
                None
            }
        },
    };
    let Some(url) = url else {
        return Err(problems);
    };
    let options = Options {
        url,
        token,
        headers,
        timeouts,
        network,
        max_requests,
    };
    // Everything else is checked as the settings the probes will use.
    let check = Shape::OpenAi.settings(&options.url, None, true, "$.x", "SSE", options.access());
    if let Err(found) = options.probe_settings(check) {
        problems.extend(found.into_iter().map(rename_field));
    }
    if problems.is_empty() {
        Ok(options)
    } else {
        Err(problems)
    }
}

/// A settings problem named by the detect param it comes from.
fn rename_field(mut problem: Problem) -> Problem {
    let field = &problem.field;
    problem.field = if field == "customEngineServer" {
        "url".to_owned()
    } else if field == "customEngineToken" {
        "token".to_owned()
    } else if let Some(rest) = field.strip_prefix("customEngineRequestFormat.customHeaders") {
        format!("headers{rest}")
    } else {
        field.clone()
    };
    problem
}

impl Options {
    pub(super) fn access(&self) -> Access<'_> {
        Access {
            token: self.token.as_deref(),
            headers: &self.headers,
        }
    }

    /// The settings a probe runs with: `v1` plus the time limits, the
    /// network settings and no retries. `Connection: close`: a server may
    /// drop a kept-alive connection after a streamed answer without saying
    /// so (llama.cpp does), and the next probe, sent on it at once, would get
    /// no answer; a probe is not sent twice, so each gets a new connection.
    pub(super) fn probe_settings(
        &self,
        mut v1: Map<String, Value>,
    ) -> Result<Settings, Vec<Problem>> {
        v1.insert("timeouts".into(), Value::Object(self.timeouts.clone()));
        v1.insert("retry".into(), json!({"maxRetries": 0}));
        v1.extend(self.network.clone());
        let mut settings = Settings::from_json(&Value::Object(v1))?;
        settings
            .custom_headers
            .push((CONNECTION, HeaderValue::from_static("close")));
        Ok(settings)
    }
}
