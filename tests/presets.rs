//! Built-in server presets (`settings.preset`) through the real binary: each preset replays a
//! recorded response of its provider from `tests/fixtures` (where one exists) and must produce the
//! recorded text and reasoning, after sending the request that provider expects (auth header,
//! extra headers, body fields, where the system prompt goes). Also: `llm/presets`, and user
//! settings overriding a preset's values.
//!
//! The expected values here are written out by hand from the providers' documentation, not read
//! from `src/presets.rs`, so a wrong value in the preset table fails a test.

mod common;

use common::fixtures::{self, Fixture};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-test-1234567890";
const SYSTEM: &str = "Be brief.";

/// A system prompt and a user message, so that every replay also checks where the system prompt
/// goes.
fn conversation() -> Value {
    json!([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "hi"}
    ])
}

/// How a preset sends `customEngineToken`.
#[derive(Clone, Copy, Debug)]
enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The named header carries the token as is; no `Authorization`.
    Header(&'static str),
}

/// What a preset must send, and the fixture it replays.
struct Case {
    preset: &'static str,
    fixture: &'static str,
    /// Path and query of the mock URL given as `customEngineServer` (the provider's own path).
    path: &'static str,
    auth: Auth,
    /// Top-level body fields the preset sets.
    fields: Value,
    /// Headers (besides auth) the preset sets.
    headers: &'static [(&'static str, &'static str)],
    /// The preset's `reasoningFormat`; selects the fixture's reasoning alternative.
    reasoning: Option<&'static str>,
    /// The body field that receives the system prompt instead of `messages`.
    system_field: Option<&'static str>,
}

impl Case {
    /// An OpenAI-compatible preset with Bearer auth and no extra headers.
    fn openai_compatible(
        preset: &'static str,
        fixture: &'static str,
        path: &'static str,
        fields: Value,
        reasoning: Option<&'static str>,
    ) -> Case {
        Case {
            preset,
            fixture,
            path,
            auth: Auth::Bearer,
            fields,
            headers: &[],
            reasoning,
            system_field: None,
        }
    }
}

const REASONING_CONTENT: &str = "$.choices[0].delta.reasoning_content";

fn fixture(name: &str) -> Fixture {
    fixtures::load_all()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name} in tests/fixtures"))
}

/// The fixture's `*.meta.json` (for `alternatives`, which [`Fixture`] does not carry).
fn meta(name: &str) -> Value {
    let path = fixtures::fixtures_dir().join(format!("{name}.meta.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The recorded text at `path`: `expected_text` if it is the meta's own path, else the
/// alternative with that path, else `None`.
fn recorded_text(meta: &Value, path: &str) -> Option<String> {
    if meta["jsonpath"] == json!(path) {
        return meta["expected_text"].as_str().map(str::to_owned);
    }
    meta["alternatives"]
        .as_array()?
        .iter()
        .find(|alt| alt["jsonpath"] == json!(path))
        .and_then(|alt| alt["expected_text"].as_str().map(str::to_owned))
}

/// A mock that serves the fixture's body with its recorded status and Content-Type.
fn replaying(fixture: &Fixture) -> MockLlm {
    MockLlm::always(
        MockResponse::new(fixture.http_status)
            .content_type(&fixture.content_type)
            .piece(&fixture.body),
    )
}

/// Runs `llm/complete` with streamId "s" and `messages`; checks the stream invariants and that
/// the content chunks add up to `result.text`.
fn complete(sidecar: &mut Sidecar, settings: Settings, messages: Value) -> Reply {
    let reply = complete_checked(sidecar, settings.params().messages(messages).build());
    reply.result(); // panics with the error when the replay failed
    reply
}

/// Replays `case.fixture` through `settings: {preset, customEngineServer: <mock>, token}` and
/// checks the answer, the reasoning and the request. Returns both for extra checks.
fn replay(case: &Case) -> (Reply, RecordedRequest) {
    let fixture = fixture(case.fixture);
    let meta = meta(case.fixture);
    let mock = replaying(&fixture);
    let settings = Settings::new(mock.url(case.path))
        .set("preset", case.preset)
        .token(TOKEN);
    let mut sidecar = Sidecar::spawn();
    let reply = complete(&mut sidecar, settings, conversation());
    let result = reply.result();
    let what = format!("preset {} replaying {}", case.preset, case.fixture);

    assert_eq!(
        result["text"],
        json!(fixture.expected_text),
        "{what}: result.text"
    );

    let reasoning = joined(&reply.chunks(&json!("s")), "reasoning");
    let expected_reasoning = case
        .reasoning
        .and_then(|path| recorded_text(&meta, path))
        .unwrap_or_default();
    assert_eq!(reasoning, expected_reasoning, "{what}: reasoning chunks");
    if expected_reasoning.is_empty() {
        assert!(
            result.get("reasoning").is_none_or(Value::is_null),
            "{what}: no reasoning expected, got {}",
            result["reasoning"]
        );
    } else {
        assert_eq!(
            result["reasoning"],
            json!(expected_reasoning),
            "{what}: result.reasoning"
        );
    }

    let request = mock.single_request();
    check_request(case, &request);
    (reply, request)
}

/// The request carries the preset's auth, headers, fields and system-prompt placement.
fn check_request(case: &Case, request: &RecordedRequest) {
    let what = format!("preset {}", case.preset);
    assert_eq!(request.method, "POST", "{what}");
    assert_eq!(
        request.path, case.path,
        "{what}: the user's customEngineServer wins"
    );
    assert_eq!(
        request.header("Content-Type"),
        Some("application/json"),
        "{what}"
    );
    match case.auth {
        Auth::Bearer => {
            assert_eq!(
                request.header("Authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{what}: Authorization"
            );
            for other in ["api-key", "x-api-key"] {
                assert_eq!(request.header(other), None, "{what}: {other}");
            }
        }
        Auth::Header(name) => {
            assert_eq!(request.header(name), Some(TOKEN), "{what}: {name}");
            assert_eq!(
                request.header("Authorization"),
                None,
                "{what}: the token goes in {name}, not Authorization"
            );
        }
    }
    for (name, value) in case.headers {
        assert_eq!(request.header(name), Some(*value), "{what}: header {name}");
    }

    let body = request.json();
    for (key, value) in case.fields.as_object().expect("fields is an object") {
        assert_eq!(&body[key], value, "{what}: body field {key} in {body}");
    }
    match case.system_field {
        Some(field) => {
            assert_eq!(body[field], json!(SYSTEM), "{what}: body.{field} in {body}");
            assert_eq!(
                body["messages"],
                json!([{"role": "user", "content": "hi"}]),
                "{what}: system messages leave `messages`"
            );
        }
        None => {
            assert_eq!(
                body["messages"],
                conversation(),
                "{what}: messages as given"
            );
            assert!(
                body.get("system").is_none(),
                "{what}: no top-level system: {body}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replays, one per preset and capture.

#[test]
fn deepseek_replays_its_reasoning_stream() {
    replay(&Case::openai_compatible(
        "deepseek",
        "deepseek-chat-stream-reasoning",
        "/v1/chat/completions",
        json!({"model": "deepseek-chat", "stream": true}),
        Some(REASONING_CONTENT),
    ));
}

#[test]
fn glm_replays_its_reasoning_stream() {
    replay(&Case::openai_compatible(
        "glm",
        "zai-glm-chat-stream-reasoning",
        "/api/paas/v4/chat/completions",
        json!({"model": "glm-4", "stream": true}),
        Some(REASONING_CONTENT),
    ));
}

#[test]
fn openai_replays_a_stream_with_a_usage_chunk() {
    let (reply, _) = replay(&Case::openai_compatible(
        "openai",
        "openai-chat-stream-basic-usage",
        "/v1/chat/completions",
        json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}}),
        None,
    ));
    let result = reply.result();
    assert!(
        result["usage"].is_object(),
        "include_usage: the usage chunk is read: {result}"
    );
    assert_eq!(result["finishReason"], json!("stop"));
}

const AZURE_PATH: &str = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";

fn azure(fixture: &'static str) -> Case {
    Case {
        preset: "azure-openai",
        fixture,
        path: AZURE_PATH,
        auth: Auth::Header("api-key"),
        fields: json!({"stream": true}),
        headers: &[],
        reasoning: None,
        system_field: None,
    }
}

#[test]
fn azure_openai_replays_a_stream_that_starts_with_prompt_filter_results() {
    replay(&azure("azure-openai-chat-stream-prompt-filter"));
}

#[test]
fn azure_openai_replays_a_stream_ending_without_a_blank_line() {
    replay(&azure("azure-openai-chat-stream-hallo-welt"));
}

fn ollama(fixture: &'static str) -> Case {
    Case::openai_compatible(
        "ollama",
        fixture,
        "/api/chat",
        json!({"model": "llama3.2", "stream": true}),
        Some("$.message.thinking"),
    )
}

#[test]
fn ollama_replays_native_ndjson_with_thinking() {
    let (reply, _) = replay(&ollama("ollama-chat-stream-thinking"));
    assert_eq!(reply.result()["responseType"], json!("ndjson"));
}

#[test]
fn ollama_replays_native_ndjson() {
    replay(&ollama("ollama-chat-stream"));
}

fn groq(fixture: &'static str) -> Case {
    Case::openai_compatible(
        "groq",
        fixture,
        "/openai/v1/chat/completions",
        json!({"model": "llama-3.3-70b-versatile", "stream": true}),
        None,
    )
}

#[test]
fn groq_replays_a_stream_with_x_groq() {
    replay(&groq("groq-chat-stream-x-groq"));
}

#[test]
fn groq_replays_a_stream_with_a_usage_only_chunk() {
    replay(&groq("groq-chat-stream-usage-only-chunk"));
}

/// The only Mistral capture was made with `n: 2`, which the preset never sends: with the preset's
/// positional path the two choices interleave, exactly as the meta records ("WhAisperardvark").
/// `a_user_path_overrides_the_preset_path` shows the fix for `n > 1`.
#[test]
fn mistral_replays_its_stream() {
    replay(&Case::openai_compatible(
        "mistral",
        "mistral-chat-stream-n2-interleaved",
        "/v1/chat/completions",
        json!({"model": "mistral-small-latest", "stream": true}),
        None,
    ));
}

#[test]
fn openrouter_replays_a_stream_with_a_processing_comment() {
    replay(&Case::openai_compatible(
        "openrouter",
        "openrouter-chat-stream-processing-comment",
        "/api/v1/chat/completions",
        json!({"model": "openai/gpt-4o-mini", "stream": true}),
        Some("$.choices[0].delta.reasoning"),
    ));
}

#[test]
fn llama_cpp_replays_its_reasoning_stream() {
    replay(&Case::openai_compatible(
        "llama.cpp",
        "llamacpp-server-stream-reasoning-timings",
        "/v1/chat/completions",
        json!({"model": "local-model", "stream": true}),
        Some(REASONING_CONTENT),
    ));
}

fn anthropic(fixture: &'static str) -> Case {
    Case {
        preset: "anthropic",
        fixture,
        path: "/v1/messages",
        auth: Auth::Header("x-api-key"),
        fields: json!({"model": "claude-sonnet-4-20250514", "max_tokens": 4096, "stream": true}),
        headers: &[("anthropic-version", "2023-06-01")],
        reasoning: Some("$.delta.thinking"),
        system_field: Some("system"),
    }
}

#[test]
fn anthropic_replays_a_messages_stream() {
    let (reply, _) = replay(&anthropic("anthropic-messages-stream-basic"));
    assert_eq!(
        reply.result()["finishReason"],
        json!("end_turn"),
        "from message_delta's delta.stop_reason"
    );
}

#[test]
fn anthropic_replays_a_stream_without_a_final_newline() {
    replay(&anthropic("anthropic-messages-stream-no-final-newline"));
}

// ---------------------------------------------------------------------------------------------
// Names, errors and overrides.

#[test]
fn preset_names_are_case_insensitive_and_aliases_work() {
    for name in ["LLAMA.CPP", "llamacpp", "LlamaCpp"] {
        let fixture = fixture("llamacpp-server-stream-reasoning-timings");
        let mock = replaying(&fixture);
        let settings = Settings::new(mock.url("/v1/chat/completions")).set("preset", name);
        let mut sidecar = Sidecar::spawn();
        let reply = complete(&mut sidecar, settings, user("hi"));
        assert_eq!(
            reply.result()["text"],
            json!(fixture.expected_text),
            "preset {name}"
        );
        assert!(
            reply.result()["reasoning"].is_string(),
            "preset {name} sets reasoningFormat"
        );
    }
}

#[test]
fn an_unknown_preset_is_an_invalid_setting() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["never"])));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1/chat/completions")).set("preset", "no-such-server");
    let reply = sidecar.complete(settings.params().build());
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let problems = data["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["field"] == json!("preset")
            && p["message"]
                .as_str()
                .is_some_and(|m| m.contains("no-such-server"))),
        "a problem names the field `preset` and the unknown name: {data}"
    );
    assert!(mock.requests().is_empty(), "nothing is sent");
}

#[test]
fn azure_without_a_server_asks_for_the_url_to_fill_in() {
    let mut sidecar = Sidecar::spawn();
    let settings = json!({"preset": "azure-openai", "customEngineToken": TOKEN});
    let reply = sidecar.complete(Complete::new(settings).build());
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let problems = data["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|p| p["field"] == json!("customEngineServer")
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("openai.azure.com"))),
        "the problem shows the URL's shape: {data}"
    );
}

/// A preset without `customEngineServer` from the user posts to the preset's own URL. The local
/// presets use plain http, so the mock can stand in as the HTTP proxy and see the absolute URL.
#[test]
fn a_preset_posts_to_its_own_url_when_the_user_gives_none() {
    let cases = [
        (
            "ollama",
            "http://localhost:11434/api/chat",
            "{\"message\": {\"content\": \"ok\"}, \"done\": true}\n",
            "application/x-ndjson",
        ),
        (
            "ollama-openai",
            "http://localhost:11434/v1/chat/completions",
            "",
            "text/event-stream",
        ),
        (
            "lm-studio",
            "http://localhost:1234/v1/chat/completions",
            "",
            "text/event-stream",
        ),
        (
            "vllm",
            "http://localhost:8000/v1/chat/completions",
            "",
            "text/event-stream",
        ),
        (
            "llama.cpp",
            "http://localhost:8080/v1/chat/completions",
            "",
            "text/event-stream",
        ),
    ];
    for (preset, url, body, content_type) in cases {
        let body = if body.is_empty() {
            openai_sse(&["ok"])
        } else {
            body.to_owned()
        };
        let proxy = MockLlm::always(
            MockResponse::new(200)
                .content_type(content_type)
                .piece(body),
        );
        let mut sidecar = Sidecar::spawn();
        let settings = json!({"preset": preset, "proxy": proxy.url("")});
        let reply = sidecar.complete(Complete::new(settings).build());
        assert_eq!(reply.result()["text"], json!("ok"), "preset {preset}");
        let request = proxy.single_request();
        assert_eq!(request.path, url, "preset {preset} posts to its URL");
        assert_eq!(
            request.header("Authorization"),
            None,
            "preset {preset}: no token, no Authorization"
        );
    }
}

#[test]
fn user_custom_fields_override_the_preset_and_the_others_stay() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    // As an object, and as the JSON string AutoDev's dialog stores.
    let formats = [
        json!({"customFields": {"model": "deepseek-reasoner", "temperature": 0.2}}),
        json!(r#"{"customFields": {"model": "deepseek-reasoner", "temperature": 0.2}}"#),
    ];
    for (i, format) in formats.into_iter().enumerate() {
        let settings = Settings::new(mock.url("/v1/chat/completions"))
            .set("preset", "deepseek")
            .token(TOKEN)
            .request_format(format.clone());
        let reply = complete(&mut sidecar, settings, user("hi"));
        assert_eq!(reply.result()["text"], json!("ok"));
        let request = mock.wait_for_requests(i + 1, WAIT).remove(i);
        let body = request.json();
        assert_eq!(
            body["model"],
            json!("deepseek-reasoner"),
            "{format}: the user's model wins"
        );
        assert_eq!(
            body["stream"],
            json!(true),
            "{format}: the preset's stream stays"
        );
        assert_eq!(
            body["temperature"],
            json!(0.2),
            "{format}: the user's new field is added"
        );
        assert_eq!(
            request.header("Authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[test]
fn user_custom_headers_are_added_to_the_preset_headers() {
    let fixture = fixture("anthropic-messages-stream-basic");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1/messages"))
        .set("preset", "anthropic")
        .token(TOKEN)
        .request_format(json!({
            "customHeaders": {"anthropic-beta": "output-128k-2025-02-19"},
            "customFields": {"max_tokens": 1024}
        }));
    let reply = complete(&mut sidecar, settings, conversation());
    assert_eq!(reply.result()["text"], json!(fixture.expected_text));
    let request = mock.single_request();
    assert_eq!(
        request.header("anthropic-version"),
        Some("2023-06-01"),
        "the preset's header stays"
    );
    assert_eq!(
        request.header("anthropic-beta"),
        Some("output-128k-2025-02-19")
    );
    assert_eq!(request.header("x-api-key"), Some(TOKEN));
    let body = request.json();
    assert_eq!(
        body["max_tokens"],
        json!(1024),
        "the user's max_tokens wins"
    );
    assert_eq!(
        body["model"],
        json!("claude-sonnet-4-20250514"),
        "the preset's model stays"
    );
    assert_eq!(body["system"], json!(SYSTEM));
}

/// With `n: 2`, the user replaces the preset's positional path with an index filter and gets
/// choice 0 alone (the capture's recorded alternative).
#[test]
fn a_user_path_overrides_the_preset_path() {
    let name = "mistral-chat-stream-n2-interleaved";
    let fixture = fixture(name);
    let path = "$.choices[?(@.index==0)].delta.content";
    let expected = recorded_text(&meta(name), path).expect("the meta records choice 0 alone");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1/chat/completions"))
        .set("preset", "mistral")
        .token(TOKEN)
        .path(path)
        .request_format(json!({"customFields": {"n": 2}}));
    let reply = complete(&mut sidecar, settings, user("hi"));
    assert_eq!(reply.result()["text"], json!(expected));
    let body = mock.single_request().json().clone();
    assert_eq!(body["n"], json!(2));
    assert_eq!(body["model"], json!("mistral-small-latest"));
    assert_eq!(body["stream"], json!(true));
}

// ---------------------------------------------------------------------------------------------
// `llm/presets`.

/// Every preset the issue asks for.
const REQUIRED: &[&str] = &[
    "deepseek",
    "yi",
    "glm",
    "moonshot",
    "openai",
    "azure-openai",
    "ollama",
    "ollama-openai",
    "lm-studio",
    "vllm",
    "llama.cpp",
    "openrouter",
    "groq",
    "mistral",
    "qwen",
    "gemini",
    "anthropic",
];

/// Every code completion preset issue 18 asks for.
const REQUIRED_COMPLETION: &[&str] = &[
    "ollama-fim",
    "llama.cpp-infill",
    "codestral-fim",
    "deepseek-fim",
    "openai-completions",
];

/// The settings keys a preset may set.
const PRESET_KEYS: &[&str] = &[
    "customEngineServer",
    "customEngineResponseType",
    "customEngineResponseFormat",
    "reasoningFormat",
    "customEngineRequestFormat",
    "tokenHeader",
    "systemField",
    "fim",
];

fn check_listing(result: &Value) {
    let entries = result["presets"]
        .as_array()
        .unwrap_or_else(|| panic!("result.presets must be an array: {result}"));
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names.len(),
        entries.len(),
        "every entry has a name: {result}"
    );
    for required in REQUIRED.iter().chain(REQUIRED_COMPLETION) {
        assert!(names.contains(required), "{required} is listed: {names:?}");
    }
    for entry in entries {
        let name = &entry["name"];
        assert!(
            entry["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: description"
        );
        let settings = entry["settings"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: settings must be an object"));
        for key in settings.keys() {
            assert!(
                PRESET_KEYS.contains(&key.as_str()),
                "{name}: unexpected key {key}"
            );
        }
        assert!(
            settings["customEngineResponseFormat"].is_string(),
            "{name}: path"
        );
        let fields = &settings["customEngineRequestFormat"]["customFields"];
        let completion = REQUIRED_COMPLETION.contains(&name.as_str().unwrap_or_default());
        assert_eq!(
            entry["use"],
            json!(if completion { "completion" } else { "chat" }),
            "{name}: use"
        );
        if completion {
            // One JSON answer: only the final text is used.
            assert_eq!(fields["stream"], json!(false), "{name}: one answer");
            assert!(settings["fim"].is_object(), "{name}: fim");
        } else {
            assert_eq!(fields["stream"], json!(true), "{name}: streams");
            assert!(fields["model"].is_string(), "{name}: default model");
        }
        let has_hint = entry.get("urlHint").is_some_and(Value::is_string);
        assert_eq!(
            settings.contains_key("customEngineServer"),
            !has_hint,
            "{name}: a server, or a urlHint to fill in"
        );
    }
    let azure = entries
        .iter()
        .find(|e| e["name"] == json!("azure-openai"))
        .unwrap();
    assert_eq!(azure["settings"]["tokenHeader"], json!("api-key"));
    let anthropic = entries
        .iter()
        .find(|e| e["name"] == json!("anthropic"))
        .unwrap();
    assert_eq!(anthropic["settings"]["tokenHeader"], json!("x-api-key"));
    assert_eq!(anthropic["settings"]["systemField"], json!("system"));
}

#[test]
fn llm_presets_lists_every_preset_with_empty_params() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/presets", json!({}));
    let reply = sidecar.wait_response(&id, WAIT);
    check_listing(reply.result());
}

#[test]
fn llm_presets_lists_every_preset_without_params() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/presets", None::<Value>);
    let reply = sidecar.wait_response(&id, WAIT);
    check_listing(reply.result());
}
