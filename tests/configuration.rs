//! Configuration: every AutoDev generation of settings, accepted as is, through the real binary.
//!
//! - `customLlms` (AutoDev 2.x) given at `initialize` (an array, or the JSON string AutoDev
//!   stores) or by `workspace/didChangeConfiguration`, then picked with `"llm"` (by name) or
//!   `"modelType"` (the first entry of that type);
//! - named `profiles` and `"profile"`, with inline `settings` winning key by key;
//! - the 2.2 `customRequest: {headers, body, stream}` form and `maxTokens`;
//! - the whole-body `fields` template with `"$content"`;
//! - `reasoningFormat`, `model`, `tokenHeader`, `systemField`;
//! - problems: unknown names, malformed entries, entry problems under the entry's own keys.
//!
//! Every test checks the HTTP request the mock recorded (URL path, headers, body), not only the
//! result: a setting that is accepted but not used must fail a test.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN_R1: &str = "sk-entry-r1-0123456789abcdef";
const TOKEN_FAST: &str = "sk-entry-fast-0123456789abcd";
const TOKEN_PLAN_B: &str = "sk-entry-planb-0123456789abc";
const TOKEN_PROFILE: &str = "sk-profile-work-0123456789ab";

/// Where the echo mock puts the text for the default path.
const DEFAULT_TEXT: &str = "$.choices[0].delta.content";
/// Where the echo mock puts the text for a custom `responseFormat`.
const CUSTOM_TEXT: &str = "$.output.text";

/// A mock whose SSE answer tells which URL path it got, in two places: `default:<path>` at the
/// OpenAI delta path (two events) and `custom:<path>` at `$.output.text` (two events).
fn echo_mock() -> MockLlm {
    MockLlm::start(|request| {
        let path = request.path.clone();
        let events = [
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "default:"}}],
                   "output": {"text": "custom:"}}),
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": path}}],
                   "output": {"text": path}}),
        ];
        let mut body: String = events.iter().map(|e| sse_event(&e.to_string())).collect();
        body.push_str(&sse_event("[DONE]"));
        MockResponse::sse(body)
    })
}

/// AutoDev 2.x `customLlms` entries pointing at `mock`, exactly in AutoDev's shape
/// (`requestFormat` as the JSON string the dialog stores).
fn custom_llms(mock: &MockLlm) -> Value {
    json!([
        {
            "name": "DeepSeek R1",
            "description": "the reasoner",
            "url": mock.url("/r1/chat/completions"),
            "auth": {"type": "Bearer", "token": TOKEN_R1},
            "requestFormat": "{ \"customFields\": {\"model\": \"deepseek-reasoner\", \"stream\": true}}",
            "responseFormat": CUSTOM_TEXT,
            "modelType": "Plan"
        },
        {
            "name": "Fast Apply",
            "description": "",
            "url": mock.url("/fast/v1/chat/completions"),
            "auth": {"type": "Bearer", "token": TOKEN_FAST},
            "requestFormat": "{\"customFields\": {\"model\": \"fast-1\", \"stream\": true, \"temperature\": 0}}",
            "responseFormat": DEFAULT_TEXT,
            "modelType": "FastApply"
        },
        {
            "name": "Plan B",
            "description": "second entry of type Plan",
            "url": mock.url("/planb"),
            "auth": {"type": "Bearer", "token": TOKEN_PLAN_B},
            "requestFormat": "{\"customFields\": {\"model\": \"plan-b\", \"stream\": true}}",
            "responseFormat": DEFAULT_TEXT,
            "modelType": "Plan"
        }
    ])
}

/// Spawns a sidecar and sends `initialize` with `options` as `initializationOptions`; returns
/// the sidecar and the `initialize` result.
fn initialized(options: Value) -> (Sidecar, Value) {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"processId": null, "capabilities": {}, "initializationOptions": options}),
    );
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    sidecar.notify("initialized", json!({}));
    (sidecar, result)
}

/// `llm/complete` with streamId "s" and `params` (plus one user message "hi" unless `params` has
/// messages). Checks the stream invariants and, on success, that the content chunks add up to
/// `result.text`.
fn complete(sidecar: &mut Sidecar, params: Value) -> Reply {
    let mut params = params;
    if params.get("messages").is_none() {
        params["messages"] = user("hi");
    }
    complete_checked(sidecar, params)
}

/// The request number `index` (0-based) the mock received.
fn request_at(mock: &MockLlm, index: usize) -> RecordedRequest {
    mock.wait_for_requests(index + 1, WAIT).remove(index)
}

/// The fields of the problems.
fn fields(problems: &[(String, String)]) -> Vec<&str> {
    problems.iter().map(|(f, _)| f.as_str()).collect()
}

/// The `-32602` problems of a failed request.
fn invalid(reply: &Reply) -> Vec<(String, String)> {
    let error = reply.expect_code(INVALID_PARAMS);
    let kind = &error["data"]["kind"];
    assert!(
        kind == "invalid_settings" || kind == "invalid_params",
        "data.kind: {}",
        reply.response
    );
    problems(&error["data"])
}

/// Checks that `request` went to the DeepSeek R1 entry: its URL path, its Bearer token from
/// `auth.token`, its body from `requestFormat`.
fn assert_went_to_r1(request: &RecordedRequest, what: &str) {
    assert_eq!(request.method, "POST", "{what}");
    assert_eq!(
        request.path, "/r1/chat/completions",
        "{what}: the entry's url"
    );
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_R1}").as_str()),
        "{what}: Bearer token from auth.token"
    );
    assert_eq!(
        request.json(),
        &json!({"model": "deepseek-reasoner", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
        "{what}: body from requestFormat"
    );
}

// ---------------------------------------------------------------------------------------------
// customLlms at initialize, picked by name or modelType.

#[test]
fn custom_llms_from_initialize_are_picked_by_name_as_an_array_or_a_json_string() {
    let mock = echo_mock();
    let list = custom_llms(&mock);
    let as_string = Value::String(list.to_string());
    for (form, customs) in [("array", list), ("JSON string", as_string)] {
        let before = mock.requests().len();
        let (mut sidecar, init) = initialized(json!({"customLlms": customs}));
        assert_eq!(
            init["configuration"]["problems"],
            json!([]),
            "{form}: no problems"
        );

        // Exact name, then the same name in another case; no `settings` at all.
        for (i, name) in ["DeepSeek R1", "deepseek r1", "DEEPSEEK R1"]
            .iter()
            .enumerate()
        {
            let what = format!("{form}, llm {name:?}");
            let reply = complete(&mut sidecar, json!({"llm": name}));
            assert_eq!(
                reply.result()["text"],
                json!("custom:/r1/chat/completions"),
                "{what}: text read with the entry's responseFormat"
            );
            assert_went_to_r1(&request_at(&mock, before + i), &what);
        }

        // Another entry: its own URL, token, body and path.
        let reply = complete(&mut sidecar, json!({"llm": "Fast Apply"}));
        assert_eq!(
            reply.result()["text"],
            json!("default:/fast/v1/chat/completions"),
            "{form}"
        );
        let request = request_at(&mock, before + 3);
        assert_eq!(request.path, "/fast/v1/chat/completions", "{form}");
        assert_eq!(
            request.header("Authorization"),
            Some(format!("Bearer {TOKEN_FAST}").as_str()),
            "{form}"
        );
        assert_eq!(
            request.json(),
            &json!({"model": "fast-1", "stream": true, "temperature": 0,
                    "messages": [{"role": "user", "content": "hi"}]}),
            "{form}"
        );
    }
}

#[test]
fn an_exact_name_wins_over_a_case_insensitive_one() {
    let mock = echo_mock();
    let entry = |name: &str, path: &str| {
        json!({"name": name, "url": mock.url(path), "auth": {"type": "Bearer", "token": ""},
               "requestFormat": "", "responseFormat": DEFAULT_TEXT, "modelType": "Others"})
    };
    let (mut sidecar, _) = initialized(json!({"customLlms": [
        entry("Local", "/upper"),
        entry("local", "/lower"),
    ]}));
    for (name, path) in [
        ("local", "/lower"),
        ("Local", "/upper"),
        ("LOCAL", "/upper"),
    ] {
        let reply = complete(&mut sidecar, json!({"llm": name}));
        assert_eq!(
            reply.result()["text"],
            json!(format!("default:{path}")),
            "llm {name:?}"
        );
    }
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/lower", "/upper", "/upper"]);
}

#[test]
fn model_type_picks_the_first_entry_of_that_type() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"customLlms": custom_llms(&mock)}));

    // Two entries have modelType "Plan": the first one (DeepSeek R1) is used.
    let reply = complete(&mut sidecar, json!({"modelType": "Plan"}));
    assert_eq!(reply.result()["text"], json!("custom:/r1/chat/completions"));
    assert_went_to_r1(&request_at(&mock, 0), "modelType Plan");

    let reply = complete(&mut sidecar, json!({"modelType": "FastApply"}));
    assert_eq!(
        reply.result()["text"],
        json!("default:/fast/v1/chat/completions")
    );
    assert_eq!(request_at(&mock, 1).path, "/fast/v1/chat/completions");

    // `llm` names the entry even when `modelType` is also given.
    let reply = complete(&mut sidecar, json!({"llm": "Plan B", "modelType": "Plan"}));
    assert_eq!(reply.result()["text"], json!("default:/planb"));
    let request = request_at(&mock, 2);
    assert_eq!(request.path, "/planb");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_PLAN_B}").as_str())
    );
}

#[test]
fn unknown_llm_model_type_or_profile_is_invalid_params_listing_what_is_configured() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({
        "customLlms": custom_llms(&mock),
        "profiles": {
            "work": {"customEngineServer": mock.url("/work")},
            "home": {"customEngineServer": mock.url("/home")}
        }
    }));

    let reply = complete(&mut sidecar, json!({"llm": "GPT-7"}));
    let found = invalid(&reply);
    let message = message_for(&found, "llm");
    for name in ["GPT-7", "DeepSeek R1", "Fast Apply", "Plan B"] {
        assert!(
            message.contains(name),
            "the llm problem names {name:?}: {message}"
        );
    }

    let reply = complete(&mut sidecar, json!({"modelType": "Act"}));
    let found = invalid(&reply);
    let message = message_for(&found, "modelType");
    for name in ["Act", "Plan", "FastApply"] {
        assert!(
            message.contains(name),
            "the modelType problem names {name:?}: {message}"
        );
    }

    let reply = complete(&mut sidecar, json!({"profile": "weekend"}));
    let found = invalid(&reply);
    let message = message_for(&found, "profile");
    for name in ["weekend", "work", "home"] {
        assert!(
            message.contains(name),
            "the profile problem names {name:?}: {message}"
        );
    }

    // All at once: every unknown name is its own problem.
    let reply = complete(
        &mut sidecar,
        json!({"llm": "GPT-7", "profile": "weekend", "settings": {"customEngineResponseFormat": "$.x"}}),
    );
    let found = invalid(&reply);
    for field in ["llm", "profile"] {
        message_for(&found, field);
    }

    assert!(mock.requests().is_empty(), "nothing is sent");
    assert_still_serving(&mut sidecar);
}

#[test]
fn an_unknown_llm_without_any_configuration_says_none_is_configured() {
    let mut sidecar = Sidecar::spawn();
    let reply = complete(&mut sidecar, json!({"llm": "DeepSeek R1"}));
    let found = invalid(&reply);
    let message = message_for(&found, "llm");
    assert!(
        message.contains("DeepSeek R1") && message.contains("customLlms"),
        "the problem says no customLlms are configured: {message}"
    );
}

#[test]
fn without_settings_llm_model_type_or_profile_settings_is_required() {
    let mut sidecar = Sidecar::spawn();
    let reply = complete(&mut sidecar, json!({}));
    let found = invalid(&reply);
    let message = message_for(&found, "settings");
    for word in ["llm", "modelType", "profile"] {
        assert!(
            message.contains(word),
            "the problem mentions `{word}`: {message}"
        );
    }
}

#[test]
fn initialize_result_describes_the_configuration() {
    let mock = echo_mock();
    let (mut sidecar, init) = initialized(json!({
        "customLlms": custom_llms(&mock),
        "profiles": {"work": {"customEngineServer": mock.url("/work")}, "home": {"preset": "ollama"}}
    }));
    let configuration = &init["configuration"];
    let llms = configuration["customLlms"]
        .as_array()
        .unwrap_or_else(|| panic!("configuration.customLlms is an array: {init}"));
    let names: Vec<&Value> = llms.iter().map(|e| &e["name"]).collect();
    assert_eq!(
        names,
        [
            &json!("DeepSeek R1"),
            &json!("Fast Apply"),
            &json!("Plan B")
        ],
        "{configuration}"
    );
    let types: Vec<&Value> = llms.iter().map(|e| &e["modelType"]).collect();
    assert_eq!(
        types,
        [&json!("Plan"), &json!("FastApply"), &json!("Plan")],
        "{configuration}"
    );
    let mut profiles: Vec<String> = configuration["profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("configuration.profiles is an array: {init}"))
        .iter()
        .map(|p| p.as_str().expect("a profile name").to_owned())
        .collect();
    profiles.sort();
    assert_eq!(profiles, ["home", "work"]);
    assert_eq!(configuration["problems"], json!([]));
    let text = init.to_string();
    for token in [TOKEN_R1, TOKEN_FAST, TOKEN_PLAN_B] {
        assert!(
            !text.contains(token),
            "the initialize result never shows a token: {text}"
        );
    }
    assert_still_serving(&mut sidecar);
}

#[test]
fn initialize_without_configuration_reports_an_empty_one() {
    let (_sidecar, init) = initialized(json!({}));
    assert_eq!(
        init["configuration"],
        json!({"customLlms": [], "profiles": [], "completion": false, "problems": []})
    );
}

#[test]
fn malformed_entries_are_reported_in_configuration_problems_and_the_others_are_usable() {
    let mock = echo_mock();
    let mut list = custom_llms(&mock);
    let entries = list.as_array_mut().unwrap();
    // [3]: no name; [4]: not an object.
    entries.push(json!({"url": mock.url("/nameless"), "responseFormat": DEFAULT_TEXT}));
    entries.push(json!("DeepSeek V3"));
    let (mut sidecar, init) = initialized(json!({"customLlms": list}));
    let found = problems(&init["configuration"]);
    assert!(
        found.iter().any(|(f, _)| f == "customLlms[3].name"),
        "the entry without a name is reported under its index: {found:?}"
    );
    assert!(
        found.iter().any(|(f, _)| f.starts_with("customLlms[4]")),
        "the entry that is not an object is reported under its index: {found:?}"
    );
    let names: Vec<&Value> = init["configuration"]["customLlms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(
        names.len(),
        3,
        "the good entries are kept: {}",
        init["configuration"]
    );

    let reply = complete(&mut sidecar, json!({"llm": "DeepSeek R1"}));
    assert_eq!(reply.result()["text"], json!("custom:/r1/chat/completions"));
    assert_went_to_r1(&request_at(&mock, 0), "the good entry");
}

/// An entry with invalid fields (not only a missing name) is a malformed entry too: it is reported
/// when it is configured, at `initialize` and with `window/showMessage`, naming the entry and its
/// own keys, not first when a chat picks it.
#[test]
fn an_entry_with_invalid_fields_is_reported_when_it_is_configured() {
    let entry = json!({"name": "bad", "description": "", "url": "ftp://models.example.com/chat",
                       "auth": {"type": "Bearer", "token": ""}, "requestFormat": "",
                       "responseFormat": "$.choices[0.delta", "modelType": "Plan"});
    let names_entry_key = |found: &[(String, String)], key: &str| {
        found.iter().any(|(f, m)| {
            let names_entry = f.starts_with("customLlms[0]") || m.contains("bad");
            names_entry && (f.ends_with(key) || m.contains(key))
        })
    };

    let (mut sidecar, init) = initialized(json!({"customLlms": [entry.clone()]}));
    let found = problems(&init["configuration"]);
    for key in ["url", "responseFormat"] {
        assert!(
            names_entry_key(&found, key),
            "initialize: configuration.problems names the entry's `{key}`: {}",
            init["configuration"]
        );
    }

    let from = sidecar.transcript().len();
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": [entry]}}),
    );
    assert_still_serving(&mut sidecar);
    let shown: Vec<&Value> = sidecar.transcript()[from..]
        .iter()
        .filter(|m| m["method"] == "window/showMessage")
        .collect();
    assert!(
        shown.iter().any(|m| m["params"]["message"]
            .as_str()
            .is_some_and(|t| t.contains("url") && t.contains("responseFormat"))),
        "didChangeConfiguration: a showMessage warning names the entry's bad keys: {shown:?}"
    );
}

#[test]
fn a_custom_llms_string_that_is_not_json_is_a_configuration_problem() {
    let (mut sidecar, init) = initialized(json!({"customLlms": "[{\"name\": \"x\", "}));
    let found = problems(&init["configuration"]);
    assert_eq!(fields(&found), ["customLlms"], "{found:?}");
    assert!(
        found[0].1.to_lowercase().contains("json"),
        "the problem says it is not JSON: {found:?}"
    );
    assert_still_serving(&mut sidecar);
}

// ---------------------------------------------------------------------------------------------
// workspace/didChangeConfiguration.

#[test]
fn did_change_configuration_replaces_custom_llms_and_keeps_profiles() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({
        "customLlms": custom_llms(&mock),
        "profiles": {"work": {"customEngineServer": mock.url("/work"), "customEngineResponseFormat": DEFAULT_TEXT}}
    }));
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": [
            {"name": "Qwen", "url": mock.url("/qwen"), "auth": {"type": "Bearer", "token": "sk-qwen-0123456789abcd"},
             "requestFormat": "{\"customFields\": {\"model\": \"qwen-max\"}}", "responseFormat": CUSTOM_TEXT,
             "modelType": "Plan"}
        ]}}),
    );

    let reply = complete(&mut sidecar, json!({"llm": "Qwen"}));
    assert_eq!(reply.result()["text"], json!("custom:/qwen"));
    let request = request_at(&mock, 0);
    assert_eq!(request.path, "/qwen");
    assert_eq!(
        request.header("Authorization"),
        Some("Bearer sk-qwen-0123456789abcd")
    );
    assert_eq!(request.json()["model"], json!("qwen-max"));

    // modelType now finds the new entry; the old ones are gone.
    let reply = complete(&mut sidecar, json!({"modelType": "Plan"}));
    assert_eq!(reply.result()["text"], json!("custom:/qwen"));
    let reply = complete(&mut sidecar, json!({"llm": "DeepSeek R1"}));
    let found = invalid(&reply);
    let message = message_for(&found, "llm");
    assert!(
        message.contains("Qwen"),
        "lists the new configuration: {message}"
    );

    // The profile was not named by the notification: it stays.
    let reply = complete(&mut sidecar, json!({"profile": "work"}));
    assert_eq!(reply.result()["text"], json!("default:/work"));
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/qwen", "/qwen", "/work"]);
}

#[test]
fn did_change_configuration_replaces_profiles_and_keeps_custom_llms() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({
        "customLlms": custom_llms(&mock),
        "profiles": {"work": {"customEngineServer": mock.url("/work")}}
    }));
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"profiles": {
            "night": {"customEngineServer": mock.url("/night"), "customEngineResponseFormat": CUSTOM_TEXT}
        }}}),
    );
    let reply = complete(&mut sidecar, json!({"profile": "night"}));
    assert_eq!(reply.result()["text"], json!("custom:/night"));

    let reply = complete(&mut sidecar, json!({"profile": "work"}));
    let found = invalid(&reply);
    assert!(
        message_for(&found, "profile").contains("night"),
        "{found:?}"
    );

    let reply = complete(&mut sidecar, json!({"llm": "DeepSeek R1"}));
    assert_eq!(reply.result()["text"], json!("custom:/r1/chat/completions"));
    assert_went_to_r1(&request_at(&mock, 1), "customLlms kept");
    assert_eq!(mock.requests().len(), 2);
}

#[test]
fn did_change_configuration_before_initialize_configures_too() {
    let mock = echo_mock();
    let mut sidecar = Sidecar::spawn();
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": custom_llms(&mock).to_string()}}),
    );
    let reply = complete(&mut sidecar, json!({"llm": "deepseek r1"}));
    assert_eq!(reply.result()["text"], json!("custom:/r1/chat/completions"));
    assert_went_to_r1(&request_at(&mock, 0), "customLlms as a JSON string");
}

/// Waits for the next `window/showMessage` after transcript index `from`; returns its params.
fn show_message_after(sidecar: &mut Sidecar, from: usize) -> Value {
    let index = sidecar.wait_for_from(from, WAIT, "a window/showMessage notification", |m| {
        m["method"] == "window/showMessage"
    });
    sidecar.transcript()[index]["params"].clone()
}

#[test]
fn bad_configuration_sends_a_show_message_warning() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"customLlms": custom_llms(&mock)}));

    let cases = [
        (json!({"customLlms": "[not json"}), "customLlms"),
        (
            json!({"customLlms": [{"description": "no name", "url": mock.url("/x")}]}),
            "customLlms[0].name",
        ),
        (json!({"profiles": ["not", "an", "object"]}), "profiles"),
    ];
    for (settings, field) in cases {
        let from = sidecar.transcript().len();
        sidecar.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": settings.clone()}),
        );
        let params = show_message_after(&mut sidecar, from);
        assert_eq!(params["type"], json!(2), "a warning: {params}");
        let message = params["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "the message names `{field}` for {settings}: {params}"
        );
    }

    // A good configuration sends no message.
    let from = sidecar.transcript().len();
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": custom_llms(&mock)}}),
    );
    assert_still_serving(&mut sidecar);
    assert!(
        sidecar.transcript()[from..]
            .iter()
            .all(|m| m["method"] != "window/showMessage"),
        "no showMessage for a good configuration: {:?}",
        &sidecar.transcript()[from..]
    );
    let reply = complete(&mut sidecar, json!({"llm": "DeepSeek R1"}));
    assert_eq!(reply.result()["text"], json!("custom:/r1/chat/completions"));
}

/// One notification that names both: a broken `customLlms` must not stop the good `profiles`
/// from being replaced ("replaces what it names").
#[test]
fn a_bad_custom_llms_does_not_stop_the_profiles_of_the_same_notification() {
    let mock = echo_mock();
    let mut failures = Vec::new();
    for bad in [json!("[not json"), json!(42)] {
        let (mut sidecar, _) = initialized(json!({
            "profiles": {"old": {"customEngineServer": mock.url("/old")}}
        }));
        let from = sidecar.transcript().len();
        sidecar.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {
                "customLlms": bad,
                "profiles": {"new": {"customEngineServer": mock.url("/new"), "customEngineResponseFormat": CUSTOM_TEXT}}
            }}),
        );
        let params = show_message_after(&mut sidecar, from);
        assert!(
            params["message"]
                .as_str()
                .is_some_and(|m| m.contains("customLlms")),
            "{params}"
        );
        let reply = complete(&mut sidecar, json!({"profile": "new"}));
        if reply.response.get("result").map(|r| &r["text"]) != Some(&json!("custom:/new")) {
            failures.push(format!(
                "with customLlms {bad}, `profile: \"new\"` got {}",
                reply.response
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the good profiles of a notification whose customLlms is bad must be applied:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Profiles and layers.

#[test]
fn a_profile_with_inline_overrides_key_by_key_and_custom_fields_entry_by_entry() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"profiles": {"work": {
        "customEngineServer": mock.url("/work/chat"),
        "customEngineToken": TOKEN_PROFILE,
        "customEngineResponseFormat": CUSTOM_TEXT,
        "customEngineRequestFormat": "{\"customFields\": {\"model\": \"m1\", \"temperature\": 0.1, \"stream\": true}, \"customHeaders\": {\"X-Team\": \"a\", \"X-Keep\": \"k\"}}"
    }}}));

    // The profile alone.
    let reply = complete(&mut sidecar, json!({"profile": "work"}));
    assert_eq!(reply.result()["text"], json!("custom:/work/chat"));
    let request = request_at(&mock, 0);
    assert_eq!(request.path, "/work/chat");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_PROFILE}").as_str())
    );
    assert_eq!(request.header("X-Team"), Some("a"));
    assert_eq!(
        request.json(),
        &json!({"model": "m1", "temperature": 0.1, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]})
    );

    // Inline settings win key by key; customFields and customHeaders merge entry by entry.
    let reply = complete(
        &mut sidecar,
        json!({"profile": "work", "settings": {
            "customEngineResponseFormat": DEFAULT_TEXT,
            "customEngineRequestFormat": {
                "customFields": {"temperature": 0.9, "top_p": 0.5},
                "customHeaders": {"x-team": "b"}
            }
        }}),
    );
    assert_eq!(
        reply.result()["text"],
        json!("default:/work/chat"),
        "the inline responseFormat wins"
    );
    let request = request_at(&mock, 1);
    assert_eq!(request.path, "/work/chat", "the profile's server stays");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_PROFILE}").as_str()),
        "the profile's token stays"
    );
    assert_eq!(
        request.header_values("x-team"),
        ["b"],
        "the inline header replaces the profile's of the same name"
    );
    assert_eq!(
        request.header("X-Keep"),
        Some("k"),
        "the profile's other header stays"
    );
    assert_eq!(
        request.json(),
        &json!({"model": "m1", "temperature": 0.9, "stream": true, "top_p": 0.5,
                "messages": [{"role": "user", "content": "hi"}]}),
        "customFields merge entry by entry, the inline value winning"
    );
}

#[test]
fn a_profile_may_be_written_in_the_custom_llms_entry_form_or_name_a_preset() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"profiles": {
        "entry-form": {
            "name": "ignored", "description": "",
            "url": mock.url("/entry-form"),
            "auth": {"type": "Bearer", "token": TOKEN_PROFILE},
            "requestFormat": "{\"customFields\": {\"model\": \"e\"}}",
            "responseFormat": CUSTOM_TEXT,
            "modelType": "Others"
        },
        "preset-form": {"preset": "deepseek", "customEngineServer": mock.url("/preset-form"),
                        "customEngineToken": TOKEN_PROFILE}
    }}));

    let reply = complete(&mut sidecar, json!({"profile": "entry-form"}));
    assert_eq!(reply.result()["text"], json!("custom:/entry-form"));
    let request = request_at(&mock, 0);
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_PROFILE}").as_str())
    );
    assert_eq!(
        request.json(),
        &json!({"model": "e", "messages": [{"role": "user", "content": "hi"}]})
    );

    let reply = complete(&mut sidecar, json!({"profile": "preset-form"}));
    assert_eq!(reply.result()["text"], json!("default:/preset-form"));
    let body = request_at(&mock, 1).json().clone();
    assert_eq!(body["model"], json!("deepseek-chat"), "from the preset");
    assert_eq!(body["stream"], json!(true), "from the preset");
}

#[test]
fn layers_entry_then_profile_then_inline() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({
        "customLlms": custom_llms(&mock),
        "profiles": {"careful": {
            "customEngineRequestFormat": {"customFields": {"temperature": 0.0, "model": "from-profile"}},
            "customEngineResponseFormat": DEFAULT_TEXT
        }}
    }));
    let reply = complete(
        &mut sidecar,
        json!({"llm": "DeepSeek R1", "profile": "careful",
               "settings": {"model": "from-inline"}}),
    );
    assert_eq!(
        reply.result()["text"],
        json!("default:/r1/chat/completions"),
        "the profile's responseFormat wins over the entry's"
    );
    let request = request_at(&mock, 0);
    assert_eq!(request.path, "/r1/chat/completions", "the entry's url");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_R1}").as_str()),
        "the entry's token"
    );
    assert_eq!(
        request.json(),
        &json!({"model": "from-inline", "stream": true, "temperature": 0.0,
                "messages": [{"role": "user", "content": "hi"}]}),
        "entry < profile < inline, customFields entry by entry"
    );
}

// ---------------------------------------------------------------------------------------------
// AutoDev 2.2: customRequest and maxTokens.

#[test]
fn custom_request_inline_with_stream_false_expects_a_json_body() {
    // Served as text/plain, so only the settings say it is one JSON body: read as SSE, the
    // pretty-printed JSON would give no event at all.
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("text/plain")
            .piece(pretty(&openai_message("a whole answer"))),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = json!({
        "name": "Kimi", "description": "2.2 form",
        "url": mock.url("/v22/chat"),
        "auth": {"type": "Bearer", "token": TOKEN_FAST},
        "customRequest": {
            "headers": {"X-Custom": "yes", "X-Client": "autodev"},
            "body": {"model": "moonshot-v1-8k", "temperature": 0.3},
            "stream": false
        },
        "maxTokens": 512,
        "responseFormat": "$.choices[0].message.content",
        "modelType": "Others"
    });
    let reply = complete(&mut sidecar, json!({"settings": settings}));
    let result = reply.result();
    assert_eq!(result["text"], json!("a whole answer"));
    assert_eq!(result["responseType"], json!("json"), "{result}");

    let request = mock.single_request();
    assert_eq!(request.path, "/v22/chat");
    assert_eq!(request.header("X-Custom"), Some("yes"));
    assert_eq!(request.header("X-Client"), Some("autodev"));
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_FAST}").as_str())
    );
    let body = request.json();
    assert_eq!(body["model"], json!("moonshot-v1-8k"), "{body}");
    assert_eq!(body["temperature"], json!(0.3), "{body}");
    assert_eq!(body["stream"], json!(false), "customRequest.stream: {body}");
    assert_eq!(body["max_tokens"], json!(512), "maxTokens: {body}");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "hi"}]),
        "{body}"
    );
    for key in ["maxTokens", "customRequest", "name", "modelType"] {
        assert!(body.get(key).is_none(), "{key} is not sent: {body}");
    }
}

#[test]
fn custom_request_entry_with_stream_true_streams_sse() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"customLlms": [{
        "name": "Streamer", "description": "", "url": mock.url("/stream22"),
        "auth": {"type": "Bearer", "token": ""},
        "customRequest": {"headers": {"X-A": "1"}, "body": {"model": "s-1"}, "stream": true},
        "maxTokens": 64,
        "responseFormat": DEFAULT_TEXT,
        "modelType": "Others"
    }]}));
    let reply = complete(&mut sidecar, json!({"llm": "Streamer"}));
    let result = reply.result();
    assert_eq!(result["text"], json!("default:/stream22"));
    assert_eq!(result["responseType"], json!("sse"));
    let request = mock.single_request();
    assert_eq!(request.header("X-A"), Some("1"));
    assert_eq!(
        request.header("Authorization"),
        None,
        "an empty auth.token sends no Authorization"
    );
    assert_eq!(
        request.json(),
        &json!({"model": "s-1", "stream": true, "max_tokens": 64,
                "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn an_entry_without_a_response_type_is_sse_and_json_when_custom_request_does_not_stream() {
    let (mut sidecar, _) = initialized(json!({"customLlms": [
        {"name": "plain", "url": "http://127.0.0.1:9/a", "auth": {"type": "Bearer", "token": ""},
         "requestFormat": "", "responseFormat": "", "modelType": "Others"},
        {"name": "no-stream", "url": "http://127.0.0.1:9/b",
         "customRequest": {"headers": {}, "body": {"model": "m"}, "stream": false}},
        {"name": "streaming", "url": "http://127.0.0.1:9/c",
         "customRequest": {"body": {"model": "m"}, "stream": true}}
    ]}));
    for (name, expected) in [
        ("plain", "SSE"),
        ("no-stream", "JSON"),
        ("streaming", "SSE"),
    ] {
        let id = sidecar.request("llm/validateSettings", json!({"llm": name}));
        let reply = sidecar.wait_response(&id, WAIT);
        let result = reply.result();
        assert_eq!(result["ok"], json!(true), "{name}: {result}");
        assert_eq!(
            result["normalized"]["customEngineResponseType"],
            json!(expected),
            "{name}: {result}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The whole-body `fields` template.

#[test]
fn fields_template_replaces_the_body_and_fills_content_at_the_top_level_and_one_level_deep() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"customLlms": [{
        "name": "Dify", "description": "workflow app", "url": mock.url("/v1/chat-messages"),
        "auth": {"type": "Bearer", "token": TOKEN_FAST},
        "requestFormat": "{\"fields\": {\"query\": \"$content\", \"inputs\": {\"feature\": \"$content\", \"lang\": \"en\"}, \"prompt\": \"Q: $content\", \"user\": \"autodev\", \"response_mode\": \"streaming\"}, \"customFields\": {\"conversation_id\": \"\"}}",
        "responseFormat": CUSTOM_TEXT,
        "modelType": "Others"
    }]}));
    let messages = json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "the last question"}
    ]);
    let reply = complete(&mut sidecar, json!({"llm": "Dify", "messages": messages}));
    assert_eq!(reply.result()["text"], json!("custom:/v1/chat-messages"));
    let request = mock.single_request();
    assert_eq!(request.path, "/v1/chat-messages");
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {TOKEN_FAST}").as_str())
    );
    assert_eq!(
        request.json(),
        &json!({
            "query": "the last question",
            "inputs": {"feature": "the last question", "lang": "en"},
            "prompt": "Q: $content",
            "user": "autodev",
            "response_mode": "streaming",
            "conversation_id": ""
        }),
        "the template replaces the body (no `messages`); only values that are exactly \
         \"$content\" are filled; customFields are added on top"
    );
}

// ---------------------------------------------------------------------------------------------
// Entry problems, named as the user typed them.

#[test]
fn entry_problems_name_the_entrys_own_keys() {
    let (mut sidecar, init) = initialized(json!({"customLlms": [{
        "name": "broken", "description": "",
        "url": "ftp://models.example.com/chat",
        "auth": {"type": "Bearer", "token": "sk-abc\ndef-0123456789"},
        "requestFormat": "{\"model\": \"deepseek-chat\"}",
        "responseFormat": "$.choices[0.delta.content",
        "modelType": "Others"
    }]}));
    let _ = init;
    let reply = complete(&mut sidecar, json!({"llm": "broken"}));
    let found = invalid(&reply);
    let got = fields(&found);
    for field in ["url", "responseFormat", "requestFormat.model", "auth.token"] {
        assert!(
            got.contains(&field),
            "a problem under the entry's key `{field}`: {found:?}"
        );
    }
    for (field, _) in &found {
        assert!(
            !field.starts_with("customEngine"),
            "the entry has no key `{field}`: {found:?}"
        );
    }
    assert!(
        message_for(&found, "responseFormat").contains("column 12"),
        "the JsonPath error names its column: {found:?}"
    );
    assert!(
        message_for(&found, "requestFormat.model").contains("customFields"),
        "the misplaced body field is explained: {found:?}"
    );

    // validateSettings names them the same way.
    let id = sidecar.request("llm/validateSettings", json!({"llm": "broken"}));
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    assert_eq!(result["ok"], json!(false));
    assert_eq!(result["normalized"], Value::Null);
    let validated = problems(&result);
    assert_eq!(fields(&validated), got, "same problems as llm/complete");
    assert!(
        !result.to_string().contains("def-0123456789"),
        "the token is not echoed: {result}"
    );
}

#[test]
fn an_inline_problem_over_an_entry_names_the_inline_key() {
    let mock = echo_mock();
    let (mut sidecar, _) = initialized(json!({"customLlms": custom_llms(&mock)}));
    // The entry is valid; the inline override is not, and is written with the v1 keys.
    let reply = complete(
        &mut sidecar,
        json!({"llm": "DeepSeek R1", "settings": {
            "customEngineServer": "ftp://elsewhere.example.com/",
            "customEngineResponseFormat": "$.choices[0.delta"
        }}),
    );
    let found = invalid(&reply);
    let got = fields(&found);
    assert!(
        got.contains(&"customEngineServer") && got.contains(&"customEngineResponseFormat"),
        "the problems are under the keys the inline settings used, not the entry's \
         `url`/`responseFormat` (which are valid): {found:?}"
    );
    assert!(mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// reasoningFormat, model, tokenHeader, systemField.

#[test]
fn reasoning_streams_as_reasoning_chunks_and_is_returned_as_reasoning() {
    let delta = |field: &str, text: &str| {
        sse_event(&json!({"choices": [{"index": 0, "delta": {field: text}}]}).to_string())
    };
    let body = [
        delta("reasoning_content", "Let me "),
        delta("reasoning_content", "think."),
        delta("content", "The answer"),
        delta("content", " is 42."),
        sse_event("[DONE]"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .reasoning("$.choices[0].delta.reasoning_content");
    let reply = complete(&mut sidecar, json!({"settings": Value::from(settings)}));
    let result = reply.result();
    assert_eq!(result["text"], json!("The answer is 42."));
    assert_eq!(result["reasoning"], json!("Let me think."));
    let chunks = reply.checked_chunks(&json!("s"));
    let kinds: Vec<(&str, &str)> = chunks
        .iter()
        .map(|c| (c.kind.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("reasoning", "Let me "),
            ("reasoning", "think."),
            ("content", "The answer"),
            ("content", " is 42.")
        ],
        "one chunk per piece, in order, seq counting across both kinds"
    );
    assert_eq!(result["chunks"], json!(4));

    // Without reasoningFormat the reasoning is not read and `reasoning` is absent.
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH);
    let reply = complete(&mut sidecar, json!({"settings": Value::from(settings)}));
    let result = reply.result();
    assert_eq!(result["text"], json!("The answer is 42."));
    assert!(result.get("reasoning").is_none(), "{result}");
    assert!(
        reply
            .checked_chunks(&json!("s"))
            .iter()
            .all(|c| c.kind == "content")
    );
}

#[test]
fn reasoning_format_in_a_custom_llms_entry() {
    let body = [
        sse_event(r#"{"message": {"thinking": "hmm", "content": ""}}"#),
        sse_event(r#"{"message": {"thinking": "", "content": "ok"}}"#),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let (mut sidecar, _) = initialized(json!({"customLlms": [{
        "name": "thinker", "url": mock.url("/api/chat"), "auth": {"type": "Bearer", "token": ""},
        "requestFormat": "", "responseFormat": "$.message.content",
        "reasoningFormat": "$.message.thinking", "modelType": "Others"
    }]}));
    let reply = complete(&mut sidecar, json!({"llm": "thinker"}));
    let result = reply.result();
    assert_eq!(result["text"], json!("ok"));
    assert_eq!(result["reasoning"], json!("hmm"));
    let chunks = reply.checked_chunks(&json!("s"));
    assert_eq!(chunks[0].kind, "reasoning");
    assert_eq!(chunks[0].text, "hmm");
}

#[test]
fn model_is_a_shortcut_for_custom_fields_model() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .set("model", "deepseek-chat")
        .request_format(json!({"customFields": {"stream": true}}));
    let reply = complete(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(reply.result()["text"], json!("ok"));
    assert_eq!(
        mock.single_request().json(),
        &json!({"stream": true, "model": "deepseek-chat",
                "messages": [{"role": "user", "content": "hi"}]})
    );

    // Over a preset: the shortcut replaces the preset's model, the rest stays.
    let settings = Settings::new(mock.url("/v1/chat/completions"))
        .set("preset", "openai")
        .set("model", "gpt-4.1-nano");
    let reply = complete(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(reply.result()["text"], json!("ok"));
    let body = request_at(&mock, 1).json().clone();
    assert_eq!(body["model"], json!("gpt-4.1-nano"), "{body}");
    assert_eq!(body["stream"], json!(true), "{body}");
}

#[test]
fn token_header_carries_the_bare_token_and_system_field_takes_the_system_prompt() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"}
    ]);
    let settings = Settings::sse(mock.url("/v1/messages"), DELTA_PATH)
        .token(TOKEN_FAST)
        .set("tokenHeader", "x-api-key")
        .set("systemField", "system")
        .request_format(json!({"customFields": {"max_tokens": 100}}));
    let reply = complete(
        &mut sidecar,
        json!({"settings": Value::from(settings), "messages": messages}),
    );
    assert_eq!(reply.result()["text"], json!("ok"));
    let request = mock.single_request();
    assert_eq!(request.header("x-api-key"), Some(TOKEN_FAST));
    assert_eq!(
        request.header("Authorization"),
        None,
        "the token is only in tokenHeader"
    );
    assert_eq!(
        request.json(),
        &json!({"max_tokens": 100, "system": "Be brief.", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"}
        ]})
    );

    // `api-key` (Azure), from a customLlms entry.
    let (mut sidecar, _) = initialized(json!({"customLlms": [{
        "name": "azure", "url": mock.url("/openai/deployments/x/chat/completions?api-version=2024-10-21"),
        "auth": {"type": "Bearer", "token": TOKEN_R1}, "tokenHeader": "api-key",
        "requestFormat": "{\"customFields\": {\"stream\": true}}", "responseFormat": DEFAULT_TEXT
    }]}));
    let reply = complete(&mut sidecar, json!({"llm": "azure"}));
    assert_eq!(reply.result()["text"], json!("ok"));
    let request = request_at(&mock, 1);
    assert_eq!(
        request.path,
        "/openai/deployments/x/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(request.header("api-key"), Some(TOKEN_R1));
    assert_eq!(request.header("Authorization"), None);
}
