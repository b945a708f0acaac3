//! Key sources keep the key off the JSON-RPC pipe: `customEngineTokenEnv` and
//! `customEngineTokenCommand` (also as a `customLlms` entry's `auth.tokenEnv` / `auth.tokenCommand`),
//! and `customHeaders` values `{"env": NAME}` / `{"command": [...]}`. Each test runs the real
//! binary against a mock LLM server on 127.0.0.1; commands are small shell scripts written to a
//! temporary directory that count their runs in a file.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

const ENV_TOKEN: &str = "sk-ENV-token-7d2c9e4b1a";
const HEADER_KEY: &str = "ak-HEADER-key-3e8b1f6d2c";

/// A script that appends a line to `runs` each time it is run, then runs `body` (which may read
/// that file as `$RUNS`).
struct Script {
    _dir: tempfile::TempDir,
    path: PathBuf,
    runs: PathBuf,
}

impl Script {
    fn new(body: &str) -> Script {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("key-command.sh");
        let runs = dir.path().join("runs");
        let text = format!(
            "#!/bin/sh\nRUNS='{}'\necho run >> \"$RUNS\"\n{body}\n",
            runs.display()
        );
        std::fs::write(&path, text).expect("write the script");
        make_executable(&path);
        Script {
            _dir: dir,
            path,
            runs,
        }
    }

    /// The argv that runs it (the script itself, no shell in between).
    fn argv(&self) -> Value {
        json!([self.path.to_str().unwrap()])
    }

    /// How many times it ran.
    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A server that answers "ok" to requests carrying `Authorization: Bearer <accepted>` and 401
/// (quoting the refused header, as some servers do) to any other.
fn server_accepting(accepted: &'static str) -> MockLlm {
    MockLlm::start(move |request| {
        let authorization = request.header("authorization").unwrap_or("").to_owned();
        if authorization == format!("Bearer {accepted}") {
            MockResponse::sse(openai_sse(&["ok"]))
        } else {
            let message = format!("Incorrect API key provided: {authorization}");
            MockResponse::json(401, json!({"error": {"message": message}}).to_string())
        }
    })
}

fn settings_for(server: &MockLlm) -> Settings {
    Settings::sse(server.url("/v1/chat/completions"), DELTA_PATH).no_retries()
}

#[test]
fn env_token_reaches_the_authorization_header() {
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let mut sidecar = Sidecar::builder()
        .env("KS_TEST_TOKEN", &format!("  {ENV_TOKEN}\n"))
        .spawn();
    let settings = settings_for(&server).set("customEngineTokenEnv", "KS_TEST_TOKEN");
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(reply.result()["text"], "fine");
    let request = server.single_request();
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {ENV_TOKEN}").as_str())
    );
}

#[test]
fn custom_llms_entry_auth_token_env_and_command() {
    let server = server_accepting(ENV_TOKEN);
    let script = Script::new(&format!("echo {ENV_TOKEN}"));
    let mut sidecar = Sidecar::builder().env("KS_TEST_TOKEN", ENV_TOKEN).spawn();
    let url = server.url("/v1/chat/completions");
    let entry = |name: &str, auth: Value| {
        json!({"name": name, "url": url, "auth": auth, "responseFormat": DELTA_PATH,
            "requestFormat": "{\"customFields\": {\"model\": \"m\", \"stream\": true}}"})
    };
    let init = sidecar.request(
        "initialize",
        json!({"initializationOptions": {"customLlms": [
            entry("from-env", json!({"type": "Bearer", "tokenEnv": "KS_TEST_TOKEN"})),
            entry("from-command", json!({"type": "Bearer", "token": "", "tokenCommand": script.argv()})),
        ]}}),
    );
    let init = sidecar.wait_response(&init, WAIT);
    assert_eq!(
        init.result()["configuration"]["problems"],
        json!([]),
        "{}",
        init.response
    );
    for name in ["from-env", "from-command"] {
        let reply = sidecar.complete(json!({"llm": name, "messages": user("hi")}));
        assert_eq!(reply.result()["text"], "ok", "{name}");
    }
    assert_eq!(server.requests().len(), 2);
    assert_eq!(script.runs(), 1);
}

#[test]
fn code_completion_takes_its_key_from_a_source_too() {
    let server = MockLlm::always(MockResponse::json(
        200,
        json!({"choices": [{"index": 0, "text": "a + b", "finish_reason": "stop"}]}).to_string(),
    ));
    let script = Script::new("echo sk-fim-command-4c2d");
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "return ", "suffix": "\n", "settings": {
            "customEngineServer": server.url("/v1/completions"), "model": "m",
            "customEngineTokenCommand": script.argv(), "fim": {"mode": "separate"}}}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(
        reply.result()["items"][0]["insertText"],
        "a + b",
        "{}",
        reply.response
    );
    assert_eq!(
        server.single_request().header("authorization"),
        Some("Bearer sk-fim-command-4c2d")
    );
}

#[test]
fn command_token_is_run_once_and_cached_for_the_process() {
    let server = server_accepting("sk-from-command-5a1e");
    let script = Script::new("echo '  sk-from-command-5a1e  '");
    let mut sidecar = Sidecar::spawn();
    let settings = settings_for(&server).set("customEngineTokenCommand", script.argv());
    for _ in 0..2 {
        let reply = complete_streamed(&mut sidecar, settings.clone());
        assert_eq!(reply.result()["text"], "ok");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer sk-from-command-5a1e")
        );
    }
    assert_eq!(script.runs(), 1, "the command runs once for two requests");
}

#[test]
fn command_runs_again_after_a_401_and_the_request_is_sent_once_more() {
    // The first run gives a key the server has revoked; the second the current one.
    let server = server_accepting("sk-rotated-2");
    let script = Script::new("echo sk-rotated-$(wc -l < \"$RUNS\" | tr -d ' ')");
    let mut sidecar = Sidecar::spawn();
    let settings = settings_for(&server).set("customEngineTokenCommand", script.argv());
    let reply = complete_streamed(&mut sidecar, settings.clone());
    assert_eq!(reply.result()["text"], "ok", "{}", reply.response);
    let sent: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert_eq!(sent, ["Bearer sk-rotated-1", "Bearer sk-rotated-2"]);
    assert_eq!(script.runs(), 2);

    // The new key is cached: the next request neither runs the command nor is refused.
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(reply.result()["text"], "ok");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(script.runs(), 2);
}

#[test]
fn two_requests_refused_at_once_run_the_command_again_once() {
    let server = server_accepting("sk-rotated-2");
    let script = Script::new("echo sk-rotated-$(wc -l < \"$RUNS\" | tr -d ' ')");
    let mut sidecar = Sidecar::spawn();
    let params = settings_for(&server)
        .set("customEngineTokenCommand", script.argv())
        .params()
        .build();
    let first = sidecar.request("llm/complete", params.clone());
    let second = sidecar.request("llm/complete", params);
    for id in [first, second] {
        let reply = sidecar.wait_response(&id, WAIT);
        assert_eq!(reply.result()["text"], "ok", "{}", reply.response);
    }
    assert_eq!(script.runs(), 2, "one run, then one run after the refusals");
    let refused = server
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer sk-rotated-1"))
        .count();
    assert!(
        refused <= 2 && server.requests().len() == refused + 2,
        "{refused}"
    );
}

#[test]
fn a_refused_key_that_does_not_change_is_not_sent_again() {
    let server = server_accepting("sk-never-this");
    let script = Script::new("echo sk-revoked-key-0000");
    let mut sidecar = Sidecar::spawn();
    let settings = settings_for(&server)
        .set("customEngineTokenCommand", script.argv())
        .set("retry", json!({"maxRetries": 2, "initialBackoffMs": 1}));
    let reply = complete_streamed(&mut sidecar, settings);
    let data = reply.expect_error(REQUEST_FAILED, "http_status");
    assert_eq!(data["status"], 401);
    assert_eq!(
        server.requests().len(),
        1,
        "the same refused key is not sent twice"
    );
    assert_eq!(
        script.runs(),
        2,
        "the command is run again once after the 401"
    );
    assert!(
        !reply.response.to_string().contains("sk-revoked-key-0000"),
        "{}",
        reply.response
    );
}

#[test]
fn header_values_from_env_and_command() {
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let script = Script::new("printf 'sig-from-command-77e1\\n'");
    let mut sidecar = Sidecar::builder().env("KS_HEADER_KEY", HEADER_KEY).spawn();
    let settings = settings_for(&server).request_format(json!({"customHeaders": {
        "api-key": {"env": "KS_HEADER_KEY"},
        "X-Signature": {"command": script.argv()},
        "X-Plain": "visible"
    }}));
    let reply = complete_streamed(&mut sidecar, settings.clone());
    assert_eq!(reply.result()["text"], "fine");
    let request = server.single_request();
    assert_eq!(request.header("api-key"), Some(HEADER_KEY));
    assert_eq!(request.header("x-signature"), Some("sig-from-command-77e1"));
    assert_eq!(request.header("x-plain"), Some("visible"));

    // llm/validateSettings shows where the values come from, never the values.
    let id = sidecar.request(
        "llm/validateSettings",
        json!({"settings": Value::from(settings)}),
    );
    let report = sidecar.wait_response(&id, WAIT);
    let result = report.result();
    assert_eq!(result["ok"], true, "{result}");
    let headers = &result["normalized"]["customEngineRequestFormat"]["customHeaders"];
    assert_eq!(headers["api-key"], json!({"env": "KS_HEADER_KEY"}));
    assert_eq!(headers["x-signature"], json!({"command": script.argv()}));
    assert!(
        !report.response.to_string().contains(HEADER_KEY),
        "{result}"
    );
}

#[test]
fn validate_settings_names_the_token_source_not_the_token() {
    let mut sidecar = Sidecar::builder().env("KS_TEST_TOKEN", ENV_TOKEN).spawn();
    let id = sidecar.request(
        "llm/validateSettings",
        json!({"settings": {"customEngineServer": "http://127.0.0.1:9/v1/chat/completions",
            "customEngineTokenEnv": "KS_TEST_TOKEN"}}),
    );
    let report = sidecar.wait_response(&id, WAIT);
    assert_eq!(report.result()["ok"], true, "{}", report.response);
    assert_eq!(
        report.result()["normalized"]["customEngineTokenEnv"],
        "KS_TEST_TOKEN"
    );
    assert!(
        !report.response.to_string().contains(ENV_TOKEN),
        "{}",
        report.response
    );
}

#[test]
fn unset_env_var_is_a_settings_error_naming_the_variable() {
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let mut sidecar = Sidecar::builder()
        .env_remove("KS_UNSET_TOKEN")
        .env("KS_EMPTY_TOKEN", "  ")
        .env("KS_HEADER_KEY", HEADER_KEY)
        .spawn();
    let header = json!({"customHeaders": {"api-key": {"env": "KS_HEADER_KEY"}}});
    for (name, why) in [("KS_UNSET_TOKEN", "not set"), ("KS_EMPTY_TOKEN", "empty")] {
        let settings = settings_for(&server)
            .set("customEngineTokenEnv", name)
            .request_format(header.clone());
        let reply = complete_streamed(&mut sidecar, settings);
        let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
        let problems = problems(data);
        let message = message_for(&problems, "customEngineTokenEnv");
        assert!(message.contains(name) && message.contains(why), "{message}");
        assert!(
            !reply.response.to_string().contains(HEADER_KEY),
            "{}",
            reply.response
        );
    }
    assert!(
        server.requests().is_empty(),
        "nothing is sent without the key"
    );
    assert_still_serving(&mut sidecar);
}

#[test]
fn failing_commands_are_settings_errors_naming_the_program_and_status() {
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let mut sidecar = Sidecar::spawn();
    let failing = Script::new(
        "echo sk-PRINTED-before-failing-91c3\necho 'gpg: decryption failed: No secret key' >&2\necho 'second line of stderr' >&2\nexit 3",
    );
    let settings = settings_for(&server).set("customEngineTokenCommand", failing.argv());
    let reply = complete_streamed(&mut sidecar, settings);
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let found = problems(data);
    let message = message_for(&found, "customEngineTokenCommand");
    assert!(
        message.contains(failing.path.to_str().unwrap())
            && message.contains("exit status 3")
            && message.contains("gpg: decryption failed: No secret key"),
        "{message}"
    );
    let text = reply.response.to_string();
    assert!(!text.contains("second line"), "{text}");
    assert!(!text.contains("sk-PRINTED"), "{text}");

    // A program that does not exist, and one that prints nothing.
    let missing = json!(["/nonexistent/key-helper-3f9a", "show"]);
    let silent = Script::new("exit 0");
    for (argv, expected) in [
        (missing, "cannot run `/nonexistent/key-helper-3f9a`"),
        (silent.argv(), "printed nothing"),
    ] {
        let settings = settings_for(&server)
            .request_format(json!({"customHeaders": {"x-api-key": {"command": argv}}}));
        let reply = complete_streamed(&mut sidecar, settings);
        let problems = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
        let message = message_for(
            &problems,
            "customEngineRequestFormat.customHeaders.x-api-key",
        );
        assert!(message.contains(expected), "{message}");
    }
    assert!(server.requests().is_empty());
    assert_still_serving(&mut sidecar);
}

#[test]
fn a_command_that_hangs_is_stopped_and_reported() {
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let mut sidecar = Sidecar::spawn();
    // It would wait for input forever, as a passphrase prompt does; its input is empty, so it
    // sleeps instead.
    let hanging = Script::new("read line; sleep 60");
    let settings = settings_for(&server).set("customEngineTokenCommand", hanging.argv());
    let reply = complete_streamed(&mut sidecar, settings);
    let problems = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
    let message = message_for(&problems, "customEngineTokenCommand");
    assert!(message.contains("did not finish within 10 s"), "{message}");
    assert!(server.requests().is_empty());
}

#[test]
fn more_than_one_token_source_is_a_problem_naming_both() {
    let mut sidecar = Sidecar::builder().env("KS_TEST_TOKEN", ENV_TOKEN).spawn();
    let url = "http://127.0.0.1:9/v1/chat/completions";
    let cases = [
        (
            json!({"customEngineServer": url, "customEngineToken": "sk-typed-1234",
                "customEngineTokenEnv": "KS_TEST_TOKEN"}),
            "customEngineTokenEnv",
            "customEngineToken",
        ),
        (
            json!({"url": url, "auth": {"type": "Bearer", "tokenEnv": "KS_TEST_TOKEN",
                "tokenCommand": ["pass", "show", "x"]}}),
            "auth.tokenCommand",
            "customEngineTokenEnv",
        ),
    ];
    for (settings, field, other) in cases {
        let id = sidecar.request("llm/validateSettings", json!({"settings": settings}));
        let report = sidecar.wait_response(&id, WAIT);
        assert_eq!(report.result()["ok"], false, "{}", report.response);
        let problems = problems(report.result());
        let message = message_for(&problems, field);
        assert!(message.contains(other), "{message}");
        assert!(!report.response.to_string().contains(ENV_TOKEN));
    }
}

#[test]
fn keys_from_sources_never_reach_logs_or_traces() {
    const COMMAND_TOKEN: &str = "sk-COMMAND-token-8f3a1c5e9d";
    // Echoes the credentials it got in a 401 body (first request) and accepts the second.
    let server = MockLlm::start(|request| {
        let echo = format!(
            "authorization={} api-key={}",
            request.header("authorization").unwrap_or(""),
            request.header("api-key").unwrap_or("")
        );
        if request.path.starts_with("/refuse") {
            MockResponse::json(
                401,
                json!({"error": {"message": format!("Incorrect API key provided: {echo}")}})
                    .to_string(),
            )
        } else {
            MockResponse::sse(openai_sse(&["fine"]))
        }
    });
    let script = Script::new(&format!("echo {COMMAND_TOKEN}"));
    let mut sidecar = Sidecar::builder()
        .env("LLM_SIDECAR_LOG", "trace")
        .env("KS_HEADER_KEY", HEADER_KEY)
        .env("KS_TEST_TOKEN", ENV_TOKEN)
        .spawn();
    let header = json!({"customHeaders": {"api-key": {"env": "KS_HEADER_KEY"}}});
    let traced = |path: &str, source: (&str, Value)| {
        let mut params = Settings::sse(server.url(path), DELTA_PATH)
            .no_retries()
            .set(source.0, source.1)
            .request_format(header.clone())
            .params()
            .build();
        params["trace"] = json!(true);
        params
    };
    let ok = complete_checked(
        &mut sidecar,
        traced(
            "/v1/chat/completions",
            ("customEngineTokenCommand", script.argv()),
        ),
    );
    assert_eq!(ok.result()["text"], "fine");
    let refused = complete_checked(
        &mut sidecar,
        traced("/refuse", ("customEngineTokenEnv", json!("KS_TEST_TOKEN"))),
    );
    refused.expect_error(REQUEST_FAILED, "http_status");
    let refused_by_command = complete_checked(
        &mut sidecar,
        traced("/refuse", ("customEngineTokenCommand", script.argv())),
    );
    refused_by_command.expect_error(REQUEST_FAILED, "http_status");
    // The traces were written: a request with its (masked) headers and the echoing body.
    let traces: Vec<&Value> = sidecar
        .transcript()
        .iter()
        .filter(|m| m["method"] == "llm/trace")
        .collect();
    assert!(
        traces
            .iter()
            .any(|t| t["params"]["request"]["headers"]["authorization"].is_string()),
        "{traces:?}"
    );
    assert!(
        traces.iter().any(|t| t["params"]["body"]["text"]
            .as_str()
            .is_some_and(|b| b.contains("Incorrect API key"))),
        "{traces:?}"
    );
    sidecar.finish();
    let stdout: Vec<String> = sidecar.transcript().iter().map(Value::to_string).collect();
    let stdout = stdout.join("\n");
    let stderr = sidecar.full_stderr();
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "{stderr}"
    );
    for secret in [COMMAND_TOKEN, ENV_TOKEN, HEADER_KEY] {
        assert!(!stdout.contains(secret), "{secret} on stdout:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} on stderr:\n{stderr}");
    }
    // The requests did carry them.
    let sent: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert!(
        sent.contains(&format!("Bearer {COMMAND_TOKEN}")),
        "{sent:?}"
    );
    assert!(sent.contains(&format!("Bearer {ENV_TOKEN}")), "{sent:?}");
}

#[test]
fn complete_trace_shows_the_command_keys_in_the_curl_command_masked() {
    const COMMAND_TOKEN: &str = "sk-CLI-command-token-6e2a9f";
    const HEADER_KEY: &str = "xak-CLI-command-header-1b7d";
    let server = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let token = Script::new(&format!("echo {COMMAND_TOKEN}"));
    let header = Script::new(&format!("echo {HEADER_KEY}"));
    let settings = json!({"customEngineServer": server.url("/v1/chat/completions"),
        "customEngineResponseFormat": DELTA_PATH,
        "customEngineTokenCommand": token.argv(),
        "customEngineRequestFormat": {"customHeaders": {"x-api-key": {"command": header.argv()}}}});
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, settings.to_string().as_bytes()).unwrap();
    let output = std::process::Command::new(common::sidecar::binary())
        .args(["complete", "--trace", "--settings"])
        .arg(file.path())
        .arg("hi")
        .env_remove("LLM_SIDECAR_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The curl command, continued over lines ending in `\`.
    let start = stderr
        .find("curl -N")
        .unwrap_or_else(|| panic!("no curl command in {stderr}"));
    let mut curl = String::new();
    for line in stderr[start..].lines() {
        curl.push_str(line);
        curl.push('\n');
        if !line.ends_with('\\') {
            break;
        }
    }
    assert!(curl.contains("Bearer ${LLM_SIDECAR_TOKEN}"), "{curl}");
    assert!(curl.contains("x-api-key: "), "{curl}");
    for secret in [COMMAND_TOKEN, HEADER_KEY] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{secret}: {stderr}"
        );
    }
    let request = server.single_request();
    assert_eq!(request.header("x-api-key"), Some(HEADER_KEY));
    assert_eq!(token.runs() + header.runs(), 2, "each command runs once");
}
