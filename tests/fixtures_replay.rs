//! Replays every recorded provider response in `tests/fixtures` through the mock server, once byte
//! for byte with `Content-Length` and once re-chunked into small random pieces, with the status,
//! Content-Type and JsonPath of its meta. One test per category; each reports every mismatch.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::fixtures::{self, Category, Fixture};
use common::*;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Delivery {
    AsRecorded,
    Rechunked,
}

const DELIVERIES: [Delivery; 2] = [Delivery::AsRecorded, Delivery::Rechunked];

fn path_of(fixture: &Fixture, delivery: Delivery) -> String {
    format!("/{delivery:?}/{}", fixture.name)
}

fn response_for(fixture: &Fixture, delivery: Delivery) -> MockResponse {
    let response = MockResponse::new(fixture.http_status).content_type(&fixture.content_type);
    match delivery {
        Delivery::AsRecorded => response.piece(&fixture.body),
        // The pause makes it likely that each piece reaches the sidecar in its own read, so
        // events, lines and UTF-8 characters really arrive split.
        Delivery::Rechunked => response.chunked().pieces_with_delay(
            fixtures::split_randomly(&fixture.body, &fixture.name, 32),
            Duration::from_millis(1),
        ),
    }
}

/// Replays every fixture of `category` both ways, all completions in flight at once, and
/// collects what `check` finds wrong with each reply (`check` also gets the reply's streamId).
fn replay(category: Category, check: impl Fn(&Fixture, &Reply, &Value) -> Vec<String>) {
    let fixtures = fixtures::load(category);
    assert!(!fixtures.is_empty(), "no {category:?} fixtures");
    let mut served: HashMap<String, MockResponse> = HashMap::new();
    for fixture in &fixtures {
        for delivery in DELIVERIES {
            served.insert(path_of(fixture, delivery), response_for(fixture, delivery));
        }
    }
    let mock = MockLlm::start(move |request| {
        served
            .get(&request.path)
            .cloned()
            .unwrap_or_else(|| MockResponse::new(500).piece("MockLlm: unknown fixture path"))
    });

    let mut sidecar = Sidecar::spawn();
    let mut started = Vec::new();
    for fixture in &fixtures {
        for delivery in DELIVERIES {
            let path = path_of(fixture, delivery);
            let settings = Settings::new(mock.url(&path))
                .response_type(fixture.response_type())
                .path(&fixture.jsonpath)
                .no_retries();
            let stream_id = json!(path);
            let params = settings.params().stream_id(stream_id.clone()).build();
            let id = sidecar.request("llm/complete", params);
            started.push((fixture, delivery, id, stream_id));
        }
    }
    let mut failures = Vec::new();
    for (fixture, delivery, id, stream_id) in &started {
        let reply = sidecar.wait_response(id, WAIT);
        let mut problems = reply.stream_problems(stream_id);
        problems.extend(check(fixture, &reply, stream_id));
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({delivery:?}):\n    {}\n    response: {}",
                fixture.name,
                problems.join("\n    "),
                reply.response
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {category:?} replays failed:\n{}",
        failures.len(),
        started.len(),
        failures.join("\n")
    );
}

/// Compares `got` with `expected` and describes a mismatch.
fn mismatch(what: &str, got: &serde_json::Value, expected: serde_json::Value) -> Option<String> {
    (got != &expected).then(|| format!("{what}: expected {expected}, got {got}"))
}

/// Success fixtures whose JsonPath selects no node in any event. Their meta says `expected_text: ""`
/// (computed mechanically), but the protocol makes "selected no node in any event" a `no_match`
/// error; only a path that selects `null` or `""` is a valid empty answer.
const SELECTS_NO_NODE: &[(&str, &str)] = &[(
    "anthropic-messages-stream-thinking-tool-use",
    "only thinking, signature and input_json deltas: no event has $.delta.text",
)];

#[test]
fn success_fixtures_give_their_expected_text() {
    let success = fixtures::load(Category::Success);
    for (name, _) in SELECTS_NO_NODE {
        assert!(
            success
                .iter()
                .any(|f| f.name == *name && f.expected_text.is_empty()),
            "{name} is not a success fixture with an empty expected_text"
        );
    }
    replay(Category::Success, |fixture, reply, stream_id| {
        if SELECTS_NO_NODE
            .iter()
            .any(|(name, _)| *name == fixture.name)
        {
            let data = &reply.response["error"]["data"];
            return [
                mismatch(
                    "code",
                    &reply.response["error"]["code"],
                    json!(REQUEST_FAILED),
                ),
                mismatch("data.kind", &data["kind"], json!("no_match")),
                mismatch("data.path", &data["path"], json!(fixture.jsonpath)),
                mismatch("data.partialText", &data["partialText"], json!("")),
            ]
            .into_iter()
            .flatten()
            .collect();
        }
        let Some(result) = reply.response.get("result") else {
            return vec!["expected a result".into()];
        };
        let streamed = joined(&reply.chunks(stream_id), "content");
        [
            mismatch("text", &result["text"], json!(fixture.expected_text)),
            mismatch(
                "joined chunks",
                &json!(streamed),
                json!(fixture.expected_text),
            ),
            mismatch(
                "responseType",
                &result["responseType"],
                json!(fixture.format),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    });
}

#[test]
fn http_error_fixtures_give_http_status_with_the_provider_message() {
    replay(Category::HttpError, |fixture, reply, stream_id| {
        let error = &reply.response["error"];
        let data = &error["data"];
        let mut problems: Vec<String> = [
            mismatch("code", &error["code"], json!(REQUEST_FAILED)),
            mismatch("data.kind", &data["kind"], json!("http_status")),
            mismatch("data.status", &data["status"], json!(fixture.http_status)),
            mismatch("data.partialText", &data["partialText"], json!("")),
            mismatch(
                "data.contentType",
                &data["contentType"],
                json!(fixture.content_type),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(message) = &fixture.expected_error_message {
            problems.extend(mismatch(
                "data.providerMessage",
                &data["providerMessage"],
                json!(message),
            ));
        }
        if let Ok(body) = std::str::from_utf8(&fixture.body)
            && body.len() <= 4096
        {
            problems.extend(mismatch("data.body", &data["body"], json!(body)));
        }
        if !reply.chunks(stream_id).is_empty() {
            problems.push("chunks were sent for an HTTP error".into());
        }
        problems
    });
}

#[test]
fn in_stream_error_fixtures_give_stream_error_after_their_partial_text() {
    replay(Category::StreamError, |fixture, reply, stream_id| {
        let error = &reply.response["error"];
        let data = &error["data"];
        let streamed = joined(&reply.chunks(stream_id), "content");
        let mut problems: Vec<String> = [
            mismatch("code", &error["code"], json!(REQUEST_FAILED)),
            mismatch("data.kind", &data["kind"], json!("stream_error")),
            mismatch(
                "data.partialText",
                &data["partialText"],
                json!(fixture.expected_text),
            ),
            mismatch(
                "joined chunks",
                &json!(streamed),
                json!(fixture.expected_text),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(message) = &fixture.expected_error_message {
            problems.extend(mismatch(
                "data.providerMessage",
                &data["providerMessage"],
                json!(message),
            ));
            if streamed.contains(message.as_str()) {
                problems.push("the error text was sent as a chunk".into());
            }
        }
        problems
    });
}

/// Guards the replay tests against a fixture set that lost files or changed meaning.
#[test]
fn the_fixture_set_is_complete() {
    let all = fixtures::load_all();
    let count = |category| all.iter().filter(|f| f.category() == category).count();
    assert_eq!(
        (
            all.len(),
            count(Category::Success),
            count(Category::HttpError),
            count(Category::StreamError)
        ),
        (59, 35, 20, 4),
        "fixtures: (all, success, HTTP error, in-stream error)"
    );
}
