//! Key sources: a token or a header value that the sidecar reads itself, so
//! the key never travels over the JSON-RPC pipe (where editors log it).
//!
//! `customEngineTokenEnv: "NAME"` (a `customLlms` entry's `auth.tokenEnv`)
//! reads the sidecar's own environment variable; `customEngineTokenCommand:
//! ["pass", "show", "deepseek"]` (`auth.tokenCommand`) runs a program, no
//! shell, and takes its trimmed output. A `customHeaders` value may be a
//! source object instead of a string: `{"env": "NAME"}` or
//! `{"command": [...]}`. An environment variable is read here, when the
//! settings are validated; a command is I/O and is run by the engine before
//! the request is sent (`crate::engine`), whose output these settings then
//! take through [`Settings::with_command_output`]. Every value from a source
//! is a secret, whatever the header's name.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::validate::kind_of;
use super::*;

/// Where a key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The sidecar's environment variable of this name.
    Env(String),
    /// The trimmed standard output of this program and its arguments.
    Command(Vec<String>),
}

/// One key read from a source, and the field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedKey {
    /// The setting as the user wrote it, e.g. `customEngineTokenCommand`,
    /// `auth.tokenEnv`, `customEngineRequestFormat.customHeaders.api-key`.
    pub field: String,
    pub source: KeySource,
}

/// The key sources of one settings object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySources {
    /// The token's source, when it is not typed in.
    pub token: Option<SourcedKey>,
    /// Headers whose value comes from a source, in the order given.
    pub headers: Vec<(HeaderName, SourcedKey)>,
}

/// The setting that reads the token from an environment variable.
pub const TOKEN_ENV: &str = "customEngineTokenEnv";
/// The setting that reads the token from a command's output.
pub const TOKEN_COMMAND: &str = "customEngineTokenCommand";

impl KeySource {
    /// What names the source in a message: the variable, or the program
    /// (never its arguments, which may be anything).
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env(name) => format!("environment variable `{name}`"),
            KeySource::Command(argv) => format!("command `{}`", argv[0]),
        }
    }

    /// The source as the user writes it in a header value.
    fn to_json(&self) -> Value {
        match self {
            KeySource::Env(name) => serde_json::json!({"env": name}),
            KeySource::Command(argv) => serde_json::json!({"command": argv}),
        }
    }
}

impl KeySources {
    /// The commands to run before a request, each once.
    pub fn commands(&self) -> Vec<&SourcedKey> {
        let mut found: Vec<&SourcedKey> = Vec::new();
        let all = self.token.iter().chain(self.headers.iter().map(|(_, k)| k));
        for key in all {
            if matches!(key.source, KeySource::Command(_))
                && !found.iter().any(|k| k.source == key.source)
            {
                found.push(key);
            }
        }
        found
    }

    /// Every field that names a source, to put in the user's terms.
    pub fn fields_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.token
            .iter_mut()
            .map(|k| &mut k.field)
            .chain(self.headers.iter_mut().map(|(_, k)| &mut k.field))
    }

    /// The sources as `llm/validateSettings` shows them (names, never values).
    pub(super) fn describe_into(&self, out: &mut Value) {
        match self.token.as_ref().map(|k| &k.source) {
            Some(KeySource::Env(name)) => out[TOKEN_ENV] = Value::from(name.as_str()),
            Some(KeySource::Command(argv)) => out[TOKEN_COMMAND] = Value::from(argv.clone()),
            None => {}
        }
        for (name, key) in &self.headers {
            out[REQUEST_FORMAT]["customHeaders"][name.as_str()] = key.source.to_json();
        }
    }
}

/// `customEngineTokenEnv` / `customEngineTokenCommand`, checked against
/// `customEngineToken`: at most one token source. An environment variable is
/// read now and its value returned beside the source.
pub(super) fn parse_token_source(
    map: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Option<(SourcedKey, Option<String>)> {
    let env = match map.get(TOKEN_ENV) {
        None | Some(Value::Null) => None,
        Some(value) => env_name(value, TOKEN_ENV, problems),
    };
    let command = match map.get(TOKEN_COMMAND) {
        None | Some(Value::Null) => None,
        Some(value) => argv(value, TOKEN_COMMAND, problems),
    };
    let typed = map
        .get(TOKEN)
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty());
    let given: Vec<&str> = [(typed, TOKEN), (env.is_some(), TOKEN_ENV)]
        .into_iter()
        .chain([(command.is_some(), TOKEN_COMMAND)])
        .filter_map(|(set, key)| set.then_some(key))
        .collect();
    if given.len() > 1 {
        problems.push(Problem::new(
            given[1],
            format!(
                "conflicts with `{}`, which is also given: the token comes from one source; keep only one of {}",
                given[0],
                given.join(", ")
            ),
        ));
        return None;
    }
    if let Some(name) = env {
        let value = read_env(&name, TOKEN_ENV, problems);
        let key = SourcedKey {
            field: TOKEN_ENV.to_owned(),
            source: KeySource::Env(name),
        };
        return Some((key, value));
    }
    command.map(|argv| {
        let key = SourcedKey {
            field: TOKEN_COMMAND.to_owned(),
            source: KeySource::Command(argv),
        };
        (key, None)
    })
}

/// A `customHeaders` value that is a source object: `{"env": NAME}` or
/// `{"command": [...]}`. An environment variable is read now.
pub(super) fn parse_header_source(
    object: &Map<String, Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<(KeySource, Option<String>)> {
    let shape =
        "must be a string, {\"env\": \"VARIABLE\"} or {\"command\": [\"program\", \"arg\", ...]}";
    let mut entries = object.iter();
    let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
        problems.push(Problem::new(field, shape));
        return None;
    };
    match kind.as_str() {
        "env" => {
            let name = env_name(value, &format!("{field}.env"), problems)?;
            let read = read_env(&name, field, problems);
            Some((KeySource::Env(name), read))
        }
        "command" => {
            let argv = argv(value, &format!("{field}.command"), problems)?;
            Some((KeySource::Command(argv), None))
        }
        _ => {
            problems.push(Problem::new(
                field,
                format!("{shape}; `{kind}` is not a key source"),
            ));
            None
        }
    }
}

fn env_name(value: &Value, field: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match value {
        Value::String(name) if !name.trim().is_empty() && !name.contains(['=', '\0']) => {
            Some(name.trim().to_owned())
        }
        Value::String(_) => {
            problems.push(Problem::new(
                field,
                "must be the name of an environment variable, e.g. \"DEEPSEEK_API_KEY\"",
            ));
            None
        }
        other => {
            problems.push(Problem::new(
                field,
                format!(
                    "must be the name of an environment variable (a string), got {}",
                    kind_of(other)
                ),
            ));
            None
        }
    }
}

fn argv(value: &Value, field: &str, problems: &mut Vec<Problem>) -> Option<Vec<String>> {
    let example = "e.g. [\"pass\", \"show\", \"deepseek\"]; it is run without a shell";
    let Value::Array(items) = value else {
        problems.push(Problem::new(
            field,
            format!(
                "must be a list of strings, the program and its arguments, {example}; got {}",
                kind_of(value)
            ),
        ));
        return None;
    };
    let argv: Option<Vec<String>> = items
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect();
    match argv {
        Some(argv) if argv.first().is_some_and(|p| !p.trim().is_empty()) => Some(argv),
        Some(_) => {
            problems.push(Problem::new(
                field,
                format!("must name a program first, {example}"),
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                field,
                format!("must hold only strings, {example}"),
            ));
            None
        }
    }
}

/// The variable's value, trimmed; a problem naming the variable (never a
/// value) when it is unset or empty.
fn read_env(name: &str, field: &str, problems: &mut Vec<Problem>) -> Option<String> {
    let found = std::env::var_os(name);
    let why = match found.as_ref().map(|v| v.to_str()) {
        None => {
            "is not set in the sidecar's environment (the sidecar inherits the editor's environment: set it where the editor is started)"
        }
        Some(None) => "is not valid UTF-8",
        Some(Some(value)) if value.trim().is_empty() => "is empty",
        Some(Some(value)) => return Some(value.trim().to_owned()),
    };
    problems.push(Problem::new(
        field,
        format!("environment variable `{name}` {why}"),
    ));
    None
}

/// A header value read from a source: always sensitive.
pub(super) fn header_value(
    value: &str,
    field: &str,
    source: &KeySource,
) -> Result<HeaderValue, Problem> {
    match HeaderValue::from_str(value.trim()) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Ok(value)
        }
        Err(_) => Err(Problem::new(
            field,
            format!(
                "the value from {} holds a line break or a control character, which an HTTP header cannot carry",
                source.describe()
            ),
        )),
    }
}

impl Settings {
    /// These settings with the output of each command source in place:
    /// `output` gives a command's trimmed output. The values join the
    /// secrets. A value that cannot be sent is a problem naming the source.
    pub fn with_command_output<'a>(
        &self,
        output: impl Fn(&[String]) -> Option<&'a str>,
    ) -> Result<Settings, Problem> {
        let mut settings = self.clone();
        if let Some(key) = &self.key_sources.token
            && let KeySource::Command(argv) = &key.source
            && let Some(raw) = output(argv)
        {
            let token = token::clean(raw, self.auth_scheme, &key.field)?;
            settings.secrets.add(raw);
            if let Some(token) = &token {
                settings.secrets.add(token);
            }
            settings.token = token;
        }
        for (name, key) in &self.key_sources.headers {
            if let KeySource::Command(argv) = &key.source
                && let Some(raw) = output(argv)
            {
                let value = header_value(raw, &key.field, &key.source)?;
                settings.secrets.add(raw);
                settings.custom_headers.retain(|(n, _)| n != name);
                settings.custom_headers.push((name.clone(), value));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value) -> Vec<Problem> {
        Settings::from_json(&v).unwrap_err()
    }

    #[test]
    fn two_token_sources_are_a_problem_naming_both() {
        let p = problems(
            json!({"customEngineServer": "http://h/", "customEngineToken": "sk-1",
            "customEngineTokenCommand": ["pass", "show", "x"]}),
        );
        assert_eq!(p[0].field, TOKEN_COMMAND, "{p:?}");
        assert!(p[0].message.contains(TOKEN), "{p:?}");
        let p = problems(
            json!({"url": "http://h/", "auth": {"tokenEnv": "A_VAR", "tokenCommand": ["x"]}}),
        );
        assert_eq!(p[0].field, "auth.tokenCommand", "{p:?}");
        assert!(p[0].message.contains(TOKEN_ENV), "{p:?}");
    }

    #[test]
    fn bad_sources_are_explained() {
        let p = problems(
            json!({"customEngineServer": "http://h/", "customEngineTokenCommand": "pass show x"}),
        );
        assert!(p[0].message.contains("list of strings"), "{p:?}");
        let p =
            problems(json!({"customEngineServer": "http://h/", "customEngineTokenCommand": []}));
        assert!(p[0].message.contains("program"), "{p:?}");
        let p = problems(json!({"customEngineServer": "http://h/",
            "customEngineRequestFormat": {"customHeaders": {"api-key": {"file": "/x"}}}}));
        assert_eq!(
            p[0].field,
            "customEngineRequestFormat.customHeaders.api-key"
        );
    }

    #[test]
    fn command_output_takes_the_token_and_header_places() {
        let s = Settings::from_json(&json!({"customEngineServer": "http://h/",
            "customEngineTokenCommand": ["tok"],
            "customEngineRequestFormat": {"customHeaders": {"X-Plain": "v", "X-Sig": {"command": ["sig", "1"]}}}}))
        .unwrap();
        assert!(s.token.is_none());
        assert_eq!(s.key_sources.commands().len(), 2);
        let resolved = s
            .with_command_output(|argv| {
                Some(if argv[0] == "tok" {
                    " Bearer sk-from-command\n"
                } else {
                    "signature-value"
                })
            })
            .unwrap();
        assert_eq!(resolved.token.as_deref(), Some("sk-from-command"));
        let sig = resolved
            .custom_headers
            .iter()
            .find(|(n, _)| n == "x-sig")
            .unwrap();
        assert!(sig.1.is_sensitive());
        assert_eq!(resolved.secrets.scrub("signature-value"), "sig…alue");
        let bad = s.with_command_output(|_| Some("two\nlines"));
        assert_eq!(bad.unwrap_err().field, TOKEN_COMMAND);
    }
}
