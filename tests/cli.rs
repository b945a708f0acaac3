//! The command line: `check --settings FILE [--connect]`, `complete --settings FILE PROMPT`,
//! `schema`, `--version` and `--help`, run as a person would run them, against mock LLM servers.
//!
//! Exit codes of `check`: 0 ok, 1 the test connection failed, 2 bad settings.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::fixtures::{self, Fixture};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-cli-token-0123456789abcdef";
const FLAG_TOKEN: &str = "sk-from-flag-0123456789abcd";
const ENV_TOKEN: &str = "sk-from-env-0123456789abcde";

/// What a finished run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout and stderr together, for messages meant for a person wherever they go.
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args` and extra `env`; kills it if it runs past [`WAIT`].
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for key in common::sidecar::SCRUBBED_ENV
        .iter()
        .chain(&["LLM_SIDECAR_TOKEN"])
    {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn llm-sidecar");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("llm-sidecar {args:?} did not finish in {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A settings file holding `settings`; deleted when dropped.
fn settings_file(settings: &Value) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("llm-sidecar-settings-")
        .suffix(".json")
        .tempfile()
        .expect("create a settings file");
    file.write_all(serde_json::to_string_pretty(settings).unwrap().as_bytes())
        .unwrap();
    file.flush().unwrap();
    file
}

fn path_of(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().expect("a UTF-8 temp path")
}

fn fixture(name: &str) -> Fixture {
    fixtures::load_all()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name} in tests/fixtures"))
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_valid_settings_exits_0_and_describes_them_without_the_token() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["never"])));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineToken": TOKEN,
        "customEngineResponseType": "sse",
        "customEngineResponseFormat": "choices[0].delta.content",
        "customEngineRequestFormat": "{\"customFields\": {\"model\": \"m\", \"stream\": true}}"
    }));
    let run = run(&["check", "--settings", path_of(&file)], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let out = run.all();
    assert!(
        out.contains(&mock.url("/v1/chat/completions")),
        "names the server: {}",
        run.describe()
    );
    assert!(
        out.contains("$.choices[0].delta.content"),
        "the path as it will be used: {}",
        run.describe()
    );
    assert!(out.contains("SSE"), "the response type: {}", run.describe());
    assert!(
        !out.contains(TOKEN),
        "the token is never printed in clear: {}",
        run.describe()
    );
    assert!(
        mock.requests().is_empty(),
        "without --connect nothing is sent"
    );
}

#[test]
fn check_accepts_a_custom_llms_entry_and_the_2_2_form() {
    let file = settings_file(&json!({
        "name": "Kimi", "description": "", "url": "https://api.moonshot.cn/v1/chat/completions",
        "auth": {"type": "Bearer", "token": TOKEN},
        "customRequest": {"headers": {}, "body": {"model": "moonshot-v1-8k"}, "stream": false},
        "maxTokens": 256, "responseFormat": "$.choices[0].message.content", "modelType": "Others"
    }));
    let run = run(&["check", "--settings", path_of(&file)], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let out = run.all();
    assert!(out.contains("api.moonshot.cn"), "{}", run.describe());
    assert!(
        out.contains("JSON"),
        "stream false: a JSON body: {}",
        run.describe()
    );
    assert!(!out.contains(TOKEN), "{}", run.describe());
}

#[test]
fn check_invalid_settings_exits_2_and_prints_every_problem_with_its_field() {
    let file = settings_file(&json!({
        "customEngineServer": "localhost:8080/v1/chat/completions",
        "customEngineResponseType": "XML",
        "customEngineResponseFormat": "choices[0.delta.content",
        "reasoningFormat": "$.choices.length()",
        "customEngineRequestFormat": {"model": "deepseek-chat"},
        "customEngineTokn": "sk-typo"
    }));
    let run = run(&["check", "--settings", path_of(&file)], &[]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    let out = run.all();
    for field in [
        "customEngineServer",
        "customEngineResponseType",
        "customEngineResponseFormat",
        "reasoningFormat",
        "customEngineRequestFormat.model",
        "customEngineTokn",
    ] {
        assert!(
            out.lines().any(|line| line.contains(field)),
            "a line names {field}: {}",
            run.describe()
        );
    }
    assert!(
        out.contains("column 10"),
        "the JsonPath error's column: {}",
        run.describe()
    );
    assert!(
        out.contains("length(@"),
        "the RFC 9535 form of .length(): {}",
        run.describe()
    );
    assert!(
        out.contains("customEngineToken"),
        "did you mean: {}",
        run.describe()
    );
}

#[test]
fn check_a_file_that_is_missing_or_not_a_settings_object_exits_2() {
    let not_json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_json.path(), "{\"customEngineServer\": ").unwrap();
    let array = settings_file(&json!([{"customEngineServer": "http://127.0.0.1:1/"}]));
    let missing = std::env::temp_dir().join("llm-sidecar-no-such-settings-file.json");
    let _ = std::fs::remove_file(&missing);
    for path in [
        not_json.path(),
        array.path(),
        Path::new(missing.to_str().unwrap()),
    ] {
        let run = run(&["check", "--settings", path.to_str().unwrap()], &[]);
        assert_eq!(run.code, Some(2), "{}: {}", path.display(), run.describe());
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            run.all().contains(file_name),
            "the message names the file: {}",
            run.describe()
        );
    }
}

#[test]
fn check_connect_exits_0_and_prints_the_sample_text() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&[
        "Hello",
        " from",
        " the mock",
    ])));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineToken": TOKEN,
        "customEngineResponseFormat": DELTA_PATH,
        "customEngineRequestFormat": {"customFields": {"model": "m", "stream": true}}
    }));
    let run = run(&["check", "--settings", path_of(&file), "--connect"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let out = run.all();
    assert!(
        out.contains("Hello from the mock"),
        "the sample text: {}",
        run.describe()
    );
    assert!(out.contains("200"), "the HTTP status: {}", run.describe());
    assert!(!out.contains(TOKEN), "{}", run.describe());

    let request = mock.single_request();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body = request.json();
    assert_eq!(body["model"], json!("m"), "{body}");
    assert_eq!(body["stream"], json!(true), "{body}");
    assert!(body["messages"][0]["content"].is_string(), "{body}");
}

/// A server replaying a recorded OpenAI stream, and a settings file whose path (AutoDev's documented
/// one) is wrong for streams.
fn recorded_stream_with_a_wrong_path() -> (Fixture, MockLlm, tempfile::NamedTempFile) {
    let fixture = fixture("openai-chat-stream-basic-usage");
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type(&fixture.content_type)
            .piece(&fixture.body),
    );
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineResponseFormat": "$.choices[0].message.delta.content"
    }));
    (fixture, mock, file)
}

#[test]
fn check_connect_with_a_wrong_path_exits_1_and_prints_the_suggestion() {
    let (fixture, mock, file) = recorded_stream_with_a_wrong_path();
    let run = run(&["check", "--settings", path_of(&file), "--connect"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let out = run.all();
    let suggestion = out
        .lines()
        .find(|line| line.contains("$.choices[0].delta.content"))
        .unwrap_or_else(|| panic!("the suggested path is printed: {}", run.describe()));
    assert!(
        suggestion.contains(&fixture.expected_text[..30]),
        "with the text it would have produced: {}",
        run.describe()
    );
    assert!(
        !out.lines()
            .any(|line| line.contains("$.id") || line.contains("$.model")),
        "ids and model names are not suggested: {}",
        run.describe()
    );
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn check_connect_against_a_401_exits_1_and_prints_the_server_message() {
    let fixture = fixture("openai-http-401-invalid-api-key");
    let mock = MockLlm::always(
        MockResponse::new(fixture.http_status)
            .content_type(&fixture.content_type)
            .piece(&fixture.body),
    );
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineToken": TOKEN
    }));
    let run = run(&["check", "--settings", path_of(&file), "--connect"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let out = run.all();
    assert!(out.contains("401"), "{}", run.describe());
    let body: Value = serde_json::from_slice(&fixture.body).unwrap();
    let provider = body["error"]["message"].as_str().unwrap();
    let start: String = provider.chars().take(20).collect();
    assert!(
        out.contains(&start),
        "the server's own message: {}",
        run.describe()
    );
    assert!(!out.contains(TOKEN), "{}", run.describe());
}

#[test]
fn check_connect_with_bad_settings_exits_2_and_sends_nothing() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["never"])));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineResponseFormat": "$.choices[0.delta"
    }));
    let run = run(&["check", "--settings", path_of(&file), "--connect"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// complete

#[test]
fn complete_prints_the_streamed_text() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["The sky", " is blue", "."])));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineResponseType": "SSE",
        "customEngineResponseFormat": DELTA_PATH,
        "customEngineRequestFormat": {"customFields": {"model": "m", "stream": true}}
    }));
    let run = run(
        &[
            "complete",
            "--settings",
            path_of(&file),
            "--system",
            "Be brief.",
            "Why is the sky blue?",
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(
        run.stdout.trim_end(),
        "The sky is blue.",
        "stdout holds the answer and nothing else: {}",
        run.describe()
    );
    let request = mock.single_request();
    assert_eq!(
        request.json(),
        &json!({"model": "m", "stream": true, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is the sky blue?"}
        ]})
    );
    assert_eq!(
        request.header("Authorization"),
        None,
        "no token anywhere, no Authorization"
    );
}

#[test]
fn complete_prints_reasoning_on_stderr_only() {
    let event = |field: &str, text: &str| {
        sse_event(&json!({"choices": [{"index": 0, "delta": {field: text}}]}).to_string())
    };
    let body = [
        event("reasoning_content", "thinking hard"),
        event("content", "42"),
        sse_event("[DONE]"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineResponseFormat": DELTA_PATH,
        "reasoningFormat": "$.choices[0].delta.reasoning_content"
    }));
    let run = run(&["complete", "--settings", path_of(&file), "q"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(run.stdout.trim_end(), "42", "{}", run.describe());
    assert!(run.stderr.contains("thinking hard"), "{}", run.describe());
}

/// The Authorization header of the single request a `complete` run sent.
fn authorization_of_run(settings: Value, extra_args: &[&str], env: &[(&str, &str)]) -> String {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut settings = settings;
    let server_key = if settings.get("url").is_some() {
        "url"
    } else {
        "customEngineServer"
    };
    settings[server_key] = json!(mock.url("/v1/chat/completions"));
    let file = settings_file(&settings);
    let mut args = vec!["complete", "--settings", path_of(&file)];
    args.extend_from_slice(extra_args);
    args.push("hi");
    let what = format!("settings {settings}, args {extra_args:?}, env {env:?}");
    let run = run(&args, env);
    assert_eq!(run.code, Some(0), "{what}: {}", run.describe());
    assert_eq!(run.stdout.trim_end(), "ok", "{what}: {}", run.describe());
    for token in [TOKEN, FLAG_TOKEN, ENV_TOKEN] {
        assert!(
            !run.all().contains(token),
            "no token is printed: {}",
            run.describe()
        );
    }
    mock.single_request()
        .header("Authorization")
        .unwrap_or("(none)")
        .to_owned()
}

#[test]
fn complete_uses_the_token_flag_or_env_when_the_file_has_none() {
    let bearer = |t: &str| format!("Bearer {t}");
    let v1 = json!({"customEngineServer": "", "customEngineResponseFormat": DELTA_PATH});
    let v1_empty_token = json!({"customEngineServer": "", "customEngineToken": ""});

    assert_eq!(
        authorization_of_run(v1.clone(), &["--token", FLAG_TOKEN], &[]),
        bearer(FLAG_TOKEN),
        "--token"
    );
    assert_eq!(
        authorization_of_run(v1.clone(), &[], &[("LLM_SIDECAR_TOKEN", ENV_TOKEN)]),
        bearer(ENV_TOKEN),
        "LLM_SIDECAR_TOKEN"
    );
    assert_eq!(
        authorization_of_run(
            v1.clone(),
            &["--token", FLAG_TOKEN],
            &[("LLM_SIDECAR_TOKEN", ENV_TOKEN)]
        ),
        bearer(FLAG_TOKEN),
        "the flag wins over the environment"
    );
    assert_eq!(
        authorization_of_run(v1_empty_token, &["--token", FLAG_TOKEN], &[]),
        bearer(FLAG_TOKEN),
        "an empty token in the file counts as none"
    );
    assert_eq!(
        authorization_of_run(v1, &[], &[]),
        "(none)",
        "no token anywhere"
    );
}

/// A 2.x `customLlms` entry saved with its token left empty (`auth.token: ""`) has no token: the
/// one given on the command line or in the environment is used, as for the v1 form.
#[test]
fn complete_uses_the_token_flag_or_env_for_an_entry_with_an_empty_auth_token() {
    let bearer = |t: &str| format!("Bearer {t}");
    let entry_without_token = json!({"name": "x", "url": "", "auth": {"type": "Bearer", "token": ""},
                                     "requestFormat": "", "responseFormat": DELTA_PATH});
    let entry_without_auth = json!({"name": "x", "url": "", "requestFormat": "",
                                    "responseFormat": DELTA_PATH});
    assert_eq!(
        authorization_of_run(entry_without_auth, &["--token", FLAG_TOKEN], &[]),
        bearer(FLAG_TOKEN),
        "a customLlms entry without auth"
    );
    assert_eq!(
        authorization_of_run(
            entry_without_token.clone(),
            &[],
            &[("LLM_SIDECAR_TOKEN", ENV_TOKEN)]
        ),
        bearer(ENV_TOKEN),
        "a customLlms entry with an empty auth.token, LLM_SIDECAR_TOKEN"
    );
    assert_eq!(
        authorization_of_run(entry_without_token, &["--token", FLAG_TOKEN], &[]),
        bearer(FLAG_TOKEN),
        "a customLlms entry with an empty auth.token, --token"
    );
}

#[test]
fn complete_keeps_the_file_token_over_the_flag_and_env() {
    let bearer = format!("Bearer {TOKEN}");
    let v1 = json!({"customEngineServer": "", "customEngineToken": TOKEN});
    let entry = json!({"name": "x", "url": "", "auth": {"type": "Bearer", "token": TOKEN},
                       "requestFormat": "", "responseFormat": DELTA_PATH});
    for settings in [v1, entry] {
        assert_eq!(
            authorization_of_run(
                settings.clone(),
                &["--token", FLAG_TOKEN],
                &[("LLM_SIDECAR_TOKEN", ENV_TOKEN)]
            ),
            bearer,
            "{settings}"
        );
    }
}

#[test]
fn complete_with_bad_settings_exits_2_and_a_failed_completion_exits_1() {
    let mock = MockLlm::always(MockResponse::json(
        401,
        r#"{"error": {"message": "Incorrect API key provided"}}"#,
    ));
    let bad = settings_file(
        &json!({"customEngineServer": mock.url("/v1"), "customEngineResponseType": "XML"}),
    );
    let run_bad = run(&["complete", "--settings", path_of(&bad), "hi"], &[]);
    assert_eq!(run_bad.code, Some(2), "{}", run_bad.describe());
    assert!(
        run_bad.all().contains("customEngineResponseType"),
        "{}",
        run_bad.describe()
    );
    assert!(mock.requests().is_empty());

    let good = settings_file(&json!({"customEngineServer": mock.url("/v1")}));
    let run_failed = run(&["complete", "--settings", path_of(&good), "hi"], &[]);
    assert_eq!(run_failed.code, Some(1), "{}", run_failed.describe());
    assert!(
        run_failed.stderr.contains("Incorrect API key provided"),
        "the server's message: {}",
        run_failed.describe()
    );
    assert_eq!(
        run_failed.stdout.trim(),
        "",
        "no error text as answer: {}",
        run_failed.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// schema, --version, --help

#[test]
fn schema_prints_the_published_settings_schema() {
    let run = run(&["schema"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let printed: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("schema prints JSON ({e}): {}", run.describe()));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/settings.schema.json");
    let published: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).expect("protocol/settings.schema.json"),
    )
    .expect("the published schema is JSON");
    assert_eq!(
        printed, published,
        "`llm-sidecar schema` and protocol/settings.schema.json must agree"
    );
}

#[test]
fn version_and_help() {
    let version = run(&["--version"], &[]);
    assert_eq!(version.code, Some(0), "{}", version.describe());
    assert_eq!(
        version.stdout.trim(),
        format!("llm-sidecar {}", env!("CARGO_PKG_VERSION")),
        "{}",
        version.describe()
    );

    let help = run(&["--help"], &[]);
    assert_eq!(help.code, Some(0), "{}", help.describe());
    for command in ["complete", "check", "schema"] {
        assert!(
            help.stdout.contains(command),
            "--help lists `{command}`: {}",
            help.describe()
        );
    }

    let check_help = run(&["check", "--help"], &[]);
    assert_eq!(check_help.code, Some(0), "{}", check_help.describe());
    for flag in ["--settings", "--connect", "--token"] {
        assert!(
            check_help.stdout.contains(flag),
            "check --help lists {flag}: {}",
            check_help.describe()
        );
    }

    let complete_help = run(&["complete", "--help"], &[]);
    assert_eq!(complete_help.code, Some(0), "{}", complete_help.describe());
    assert!(
        complete_help.stdout.contains("LLM_SIDECAR_TOKEN"),
        "complete --help names the token variable: {}",
        complete_help.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Output meant for a person; a closed output pipe

#[test]
fn complete_exits_quietly_when_its_output_pipe_closes() {
    // A chatty stream that would run for a long time, then never end.
    let mock = MockLlm::always(chatty_stream(3000, Duration::from_millis(2)));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineResponseFormat": DELTA_PATH
    }));
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"))
        .args([
            "complete",
            "--settings",
            path_of(&file),
            "tell me a long story",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .expect("spawn llm-sidecar");
    // `| head -c 10`: read ten bytes, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 10];
    stdout.read_exact(&mut head).expect("the first ten bytes");
    drop(stdout);
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("complete kept running after its output pipe closed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stderr = stderr_text.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.code() == Some(0) || status.code() == Some(141) || status.signal() == Some(13),
        "exit 0 or SIGPIPE, got {status:?}; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked")
            && !stderr.contains("backtrace")
            && !stderr.contains("Broken pipe"),
        "no panic, no stack trace: {stderr}"
    );
    assert_eq!(&head, b"word0 word");
}

#[test]
fn complete_explains_no_match_in_words_with_the_events_and_the_fix() {
    let (fixture, _mock, file) = recorded_stream_with_a_wrong_path();
    let run = run(&["complete", "--settings", path_of(&file), "hi"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let out = run.all();
    assert!(
        !out.contains("data."),
        "no protocol field names: {}",
        run.describe()
    );
    assert!(
        out.contains("$.choices[0].message.delta.content"),
        "the path: {}",
        run.describe()
    );
    assert!(
        out.contains("chat.completion.chunk"),
        "what the events look like: {}",
        run.describe()
    );
    let suggestion = out
        .lines()
        .find(|line| line.contains("$.choices[0].delta.content"))
        .unwrap_or_else(|| panic!("the suggested path is printed: {}", run.describe()));
    assert!(
        suggestion.contains(&fixture.expected_text[..20]),
        "with the text it would have produced: {}",
        run.describe()
    );
}

#[test]
fn check_connect_states_the_cap_the_stop_and_the_time_limit() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["Hello"])));
    let file = settings_file(&json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "preset": "llama.cpp"
    }));
    let run = run(&["check", "--settings", path_of(&file), "--connect"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let out = run.all();
    assert!(
        out.lines()
            .any(|l| l.contains("max_tokens") && l.contains("tokens")),
        "the cap: {}",
        run.describe()
    );
    assert!(out.contains("30 s"), "the time limit: {}", run.describe());
    assert!(mock.single_request().json()["max_tokens"].is_u64());
}

#[test]
fn the_demo_cuts_its_preview_at_a_word_boundary_and_speaks_in_words() {
    const ANSWER_START: &str = "Hello from the embedded demo server! Each word you see arrived as its own \
server-sent event, was extracted with the JsonPath $.choices[0].delta.content, and reached this terminal";
    let run = run(&["demo"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(!run.all().contains("data."), "{}", run.describe());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("suggested fix"))
        .unwrap_or_else(|| panic!("a suggested fix: {}", run.describe()));
    let preview = line
        .split_once("would have given \"")
        .and_then(|(_, rest)| rest.split_once("…\""))
        .map(|(preview, _)| preview)
        .unwrap_or_else(|| panic!("a cut preview in quotes: {line}"));
    assert!(
        ANSWER_START.starts_with(preview) && preview.len() > 10,
        "{preview:?}"
    );
    assert_eq!(
        ANSWER_START[preview.len()..].chars().next(),
        Some(' '),
        "cut between words: {preview:?}"
    );
}

/// The demo's code completion part: the suggestion sits in the code at the cursor without the
/// model's leaked token or its repeat of the closing brace (plain text through a pipe), the
/// clean-up line names what went, and typing along is answered from the cache with no request.
#[test]
fn the_demo_shows_a_cleaned_ghost_text_then_answers_from_the_cache() {
    let run = run(&["demo"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(
        !run.stdout.contains('\x1b'),
        "no escape codes into a pipe: {}",
        run.describe()
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    let find = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("a line with {needle:?}: {}", run.describe()))
    };
    let prompt = lines[find("the server got POST /v1/completions")];
    assert!(
        prompt.contains(r#""<|fim_prefix|>fn mean(xs: &[f64]) -> f64 {\n"#)
            && prompt.contains(r#"<|fim_suffix|>\n}\n<|fim_middle|>""#),
        "the qwen prompt: {prompt}"
    );
    let answered = lines[find("and answered")];
    assert!(answered.ends_with(r#"}<|file_sep|>""#), "{answered}");

    let shown = find("← ghost text, cached: false");
    let cleanup = find("clean-up removed");
    let code = &lines[shown + 1..cleanup];
    assert_eq!(
        code,
        [
            "    fn mean(xs: &[f64]) -> f64 {",
            "        if xs.is_empty() {",
            "            return 0.0;",
            "        }",
            "        │let sum: f64 = xs.iter().sum();",
            "        sum / xs.len() as f64",
            "    }",
        ],
        "{}",
        run.describe()
    );
    let cleanup = lines[cleanup];
    assert!(
        cleanup.contains(r#"removed "\n}<|file_sep|>""#)
            && cleanup.contains("already after the cursor")
            && cleanup.contains("total "),
        "{cleanup}"
    );

    let typed = lines[find("→ the user types")];
    assert!(typed.contains(r#""let sum""#), "{typed}");
    let cached = lines[find("← the rest")];
    assert!(
        cached.contains(r#"": f64 = xs.iter().sum();\n    sum / xs.len() as f64""#)
            && cached.contains("cached: true")
            && cached.contains("first byte 0 ms")
            && cached.contains("got 1 completion request in all"),
        "{cached}"
    );
}

#[test]
fn check_prints_warnings_with_the_fix() {
    let file = settings_file(&json!({
        "customEngineServer": "http://127.0.0.1:9/v1/chat/completions",
        "customEngineResponseFormat": DELTA_PATH,
        "customEngineRequestFormat": {"customFields": {"model": "m", "n": 2, "stream": true}}
    }));
    let run = run(&["check", "--settings", path_of(&file)], &[]);
    assert_eq!(
        run.code,
        Some(0),
        "a warning is not an error: {}",
        run.describe()
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("customEngineResponseFormat") && l.contains("n is 2"))
        .unwrap_or_else(|| panic!("the warning: {}", run.describe()));
    assert!(
        line.contains("$.choices[?@.index==0].delta.content"),
        "{line}"
    );
}
