//! `$/cancelRequest` and concurrency: the partial text of a cancelled completion, the HTTP
//! connection closed at once, 256 completions in flight together, and streams that do not wait
//! for each other.
//!
//! The tests of this file run one at a time (see [`serial`]) so that the 100 ms bound of the cancel
//! test is not measured while 256 other completions share the machine.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const IN_FLIGHT: usize = 256;

/// How soon after `$/cancelRequest` the LLM connection must be closed ("at once" in the protocol).
const CLOSE_BOUND: Duration = Duration::from_millis(100);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A mock that answers `/c/<n>` with the chunk `A<n>|` at once, then holds the response open until
/// `gate` opens, then sends `B<n>` and ends.
fn held_open_mock(gate: &Gate) -> MockLlm {
    let gate = gate.clone();
    MockLlm::start(move |request| {
        let n = request.path.trim_start_matches("/c/");
        MockResponse::sse(sse_event(&openai_delta(&format!("A{n}|"))))
            .chunked()
            .piece_after(Before::Gate(gate.clone()), openai_sse(&[&format!("B{n}")]))
    })
}

/// Starts `IN_FLIGHT` completions against `held_open_mock`; the i-th has streamId `s<i>`.
fn start_held_completions(sidecar: &mut Sidecar, mock: &MockLlm) -> Vec<Value> {
    (0..IN_FLIGHT)
        .map(|i| {
            let params = Settings::sse(mock.url(&format!("/c/{i}")), DELTA_PATH)
                .params()
                .stream_id(format!("s{i}"))
                .build();
            sidecar.request("llm/complete", params)
        })
        .collect()
}

/// Checks the completions of `ids` (except `skip`) finished with `A<i>|B<i>`; reports all mismatches.
fn assert_held_completions_finished(sidecar: &mut Sidecar, ids: &[Value], skip: Option<usize>) {
    let mut failures = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let reply = sidecar.wait_response(id, WAIT);
        let texts: Vec<String> = reply
            .checked_chunks(&json!(format!("s{i}")))
            .into_iter()
            .map(|c| c.text)
            .collect();
        let expected = [format!("A{i}|"), format!("B{i}")];
        if reply.response["result"]["text"] != json!(expected.concat()) || texts != expected {
            failures.push(format!(
                "completion {i}: chunks {texts:?}, response {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn has_response(sidecar: &Sidecar, id: &Value) -> bool {
    sidecar
        .transcript()
        .iter()
        .any(|m| m.get("method").is_none() && m.get("id") == Some(id))
}

#[test]
fn cancel_answers_with_the_partial_text_and_closes_the_connection_at_once() {
    let _serial = serial();
    let mock = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("Hel")))
            .chunked()
            .piece(sse_event(&openai_delta("lo")))
            .then_hang(),
    );
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id("c")
        .build();
    let id = sidecar.request("llm/complete", params);
    sidecar.wait_chunk(&json!("c"), 1, WAIT);

    sidecar.cancel(&id);
    let cancel_written = Instant::now();
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(CANCELLED, "cancelled");
    assert_eq!(
        partial_text(data),
        "Hello",
        "partialText is the text streamed so far"
    );

    let closed_at = mock.wait_client_closed(0, WAIT);
    let delay = closed_at.saturating_duration_since(cancel_written);
    assert!(
        delay <= CLOSE_BOUND,
        "the LLM connection was closed {delay:?} after $/cancelRequest (bound {CLOSE_BOUND:?})"
    );

    let texts: Vec<String> = reply
        .checked_chunks(&json!("c"))
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(texts, ["Hel", "lo"]);
    assert_still_serving(&mut sidecar);
    assert_eq!(
        sidecar.collect_chunks(&json!("c")).len(),
        2,
        "no chunk after the cancelled response"
    );
}

#[test]
fn cancel_matches_a_string_request_id() {
    let _serial = serial();
    let mock = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("part")))
            .chunked()
            .then_hang(),
    );
    let mut sidecar = Sidecar::spawn();
    let id = json!("req-1");
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id("c")
        .build();
    sidecar.request_with_id(id.clone(), "llm/complete", params);
    sidecar.wait_chunk(&json!("c"), 0, WAIT);
    sidecar.cancel(&id);
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(
        partial_text(reply.expect_error(CANCELLED, "cancelled")),
        "part"
    );
    mock.wait_client_closed(0, WAIT);
}

#[test]
fn cancelling_an_unknown_or_finished_request_does_nothing() {
    let _serial = serial();
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["done"])));
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH).params().build();
    let finished = sidecar.request("llm/complete", params);
    assert_eq!(
        sidecar.wait_response(&finished, WAIT).result()["text"],
        "done"
    );

    let before = sidecar.transcript().len();
    sidecar.cancel(&finished);
    sidecar.cancel(&json!(9999));
    sidecar.cancel(&json!("never-sent"));
    let ping = sidecar.request("test/ping", None);
    sidecar
        .wait_response(&ping, WAIT)
        .expect_code(METHOD_NOT_FOUND);
    assert_eq!(
        sidecar.transcript().len(),
        before + 1,
        "only the ping was answered: {:?}",
        &sidecar.transcript()[before..]
    );
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn two_hundred_fifty_six_completions_are_in_flight_at_once() {
    let _serial = serial();
    let gate = Gate::new();
    let mock = held_open_mock(&gate);
    let mut sidecar = Sidecar::spawn();
    let ids = start_held_completions(&mut sidecar, &mock);

    // No response can finish before the gate opens, so all 256 requests reaching the mock proves
    // that they are in flight together.
    let requests = mock.wait_for_requests(IN_FLIGHT, WAIT);
    let mut paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths.len(),
        IN_FLIGHT,
        "one request per completion, none repeated"
    );
    assert!(mock.connections_accepted() >= IN_FLIGHT);
    assert!(
        ids.iter().all(|id| !has_response(&sidecar, id)),
        "nothing finished early"
    );

    gate.open();
    assert_held_completions_finished(&mut sidecar, &ids, None);
}

#[test]
fn a_stalled_stream_does_not_delay_another() {
    let _serial = serial();
    let mock = MockLlm::start(|request| match request.path.as_str() {
        "/stalled" => MockResponse::sse(sse_event(&openai_delta("stalled")))
            .chunked()
            .then_hang(),
        _ => MockResponse::sse(openai_sse(&["quick ", "answer"])),
    });
    let mut sidecar = Sidecar::spawn();
    let stalled_params = Settings::sse(mock.url("/stalled"), DELTA_PATH)
        .params()
        .stream_id("stalled")
        .build();
    let stalled = sidecar.request("llm/complete", stalled_params);
    sidecar.wait_chunk(&json!("stalled"), 0, WAIT);

    let quick_params = Settings::sse(mock.url("/quick"), DELTA_PATH)
        .params()
        .stream_id("quick")
        .build();
    let quick = sidecar.request("llm/complete", quick_params);
    let reply = sidecar.wait_response(&quick, WAIT);
    assert_eq!(reply.result()["text"], "quick answer");
    assert_eq!(reply.checked_chunks(&json!("quick")).len(), 2);
    assert!(
        !has_response(&sidecar, &stalled),
        "the stalled completion is still running"
    );

    sidecar.cancel(&stalled);
    let cancelled = sidecar.wait_response(&stalled, WAIT);
    assert_eq!(
        partial_text(cancelled.expect_error(CANCELLED, "cancelled")),
        "stalled"
    );
}

#[test]
fn cancel_works_while_256_completions_are_in_flight() {
    let _serial = serial();
    const VICTIM: usize = 17;
    let gate = Gate::new();
    let mock = held_open_mock(&gate);
    let mut sidecar = Sidecar::spawn();
    let ids = start_held_completions(&mut sidecar, &mock);
    let requests = mock.wait_for_requests(IN_FLIGHT, WAIT);

    let victim_stream = json!(format!("s{VICTIM}"));
    sidecar.wait_chunk(&victim_stream, 0, WAIT);
    sidecar.cancel(&ids[VICTIM]);
    let reply = sidecar.wait_response(&ids[VICTIM], WAIT);
    assert_eq!(
        partial_text(reply.expect_error(CANCELLED, "cancelled")),
        format!("A{VICTIM}|")
    );
    let victim_request = requests
        .iter()
        .find(|r| r.path == format!("/c/{VICTIM}"))
        .expect("the victim's request");
    mock.wait_client_closed(victim_request.index, WAIT);
    assert!(
        ids.iter()
            .all(|id| id == &ids[VICTIM] || !has_response(&sidecar, id)),
        "cancelling one completion finished no other"
    );

    gate.open();
    assert_held_completions_finished(&mut sidecar, &ids, Some(VICTIM));
}
