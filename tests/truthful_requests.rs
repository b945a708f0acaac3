//! Requests that are safe and results that are true: keys never follow a redirect to another
//! origin, a prompt cut mid-emoji is still answered, a keep-alive connection the server closed
//! is replaced (a prompt it read is re-sent only under `maxRetries`), a cut-off answer is never
//! a success, mixed choices are reported, and the messages name what the user must change.

mod common;

use common::raw_server::{RawServer, http_response};
use common::tls::{TestPki, https_server, https_url};
use common::*;
use serde_json::{Value, json};

fn quick_retries(settings: Settings) -> Settings {
    settings.set(
        "retry",
        json!({"maxRetries": 2, "initialBackoffMs": 10, "maxBackoffMs": 20}),
    )
}

#[test]
fn redirects_to_another_origin_are_not_followed_and_no_key_goes_there() {
    let target = MockLlm::always(MockResponse::sse(openai_sse(&["stolen"])));
    let target_url = target.url("/v1/chat/completions");
    let redirector = MockLlm::start(move |request| {
        let status: u16 = request.path.trim_start_matches('/').parse().unwrap();
        MockResponse::new(status)
            .header("Location", &target_url)
            .content_type("text/plain")
            .piece("moved")
    });
    let mut sidecar = Sidecar::spawn();
    for status in [307u16, 308] {
        let settings = quick_retries(Settings::sse(
            redirector.url(&format!("/{status}")),
            DELTA_PATH,
        ))
        .token("sk-secret-token-1234")
        .request_format(json!({"customHeaders": {
            "x-api-key": "anthropic-key-5678",
            "api-key": "azure-key-9012",
            "x-goog-api-key": "gemini-key-3456",
        }}));
        let id = sidecar.request("llm/complete", settings.params().build());
        let reply = sidecar.wait_response(&id, WAIT);
        let data = reply.expect_error(REQUEST_FAILED, "http_status");
        assert_eq!(data["status"], status, "{data}");
        assert_eq!(
            data["location"],
            target.url("/v1/chat/completions"),
            "{data}"
        );
        assert_eq!(data["attempts"], 1, "{data}");
        let message = reply.error()["message"].as_str().unwrap();
        assert!(message.contains("not followed"), "{message}");
    }
    assert!(
        target.requests().is_empty(),
        "nothing, and no key, reached the other origin"
    );
}

#[test]
fn a_prompt_cut_mid_emoji_is_answered() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["fine"])));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .params()
        .build()["settings"]
        .to_string();
    // A lone high surrogate, as JavaScript leaves it when a string is cut inside an emoji.
    let frame = format!(
        r#"{{"jsonrpc":"2.0","id":"cut","method":"llm/complete","params":{{"settings":{settings},"messages":[{{"role":"user","content":"smile \ud83d"}}]}}}}"#
    );
    sidecar.write_frame(frame.as_bytes());
    let reply = sidecar.wait_response(&json!("cut"), WAIT);
    assert_eq!(reply.result()["text"], "fine", "{}", reply.response);
    let sent = mock.single_request();
    assert_eq!(sent.json()["messages"][0]["content"], "smile \u{FFFD}");
}

#[test]
fn a_keep_alive_connection_the_server_closed_while_idle_is_replaced() {
    // Every connection answers one request and then closes, as a server does with an idle
    // keep-alive connection. A pooled connection seen closed is replaced before anything is
    // written on it; one whose close crossed the next request on the wire cannot be told from a
    // server that read the request and died, so its re-send uses the retry budget. Either way no
    // prompt is read twice.
    let server = RawServer::start(|mut conn| async move {
        let body = openai_sse(&["fresh"]);
        let answer = http_response(
            200,
            &[("Content-Type", "text/event-stream")],
            body.as_bytes(),
        );
        if conn.read_request().await.is_some() {
            conn.write(&answer).await;
        }
        conn.close().await;
    });
    let mut sidecar = Sidecar::spawn();
    let settings = quick_retries(Settings::sse(
        server.url("/v1/chat/completions"),
        DELTA_PATH,
    ));
    for attempt in ["first", "second", "third"] {
        let reply = sidecar.complete(settings.clone().params().build());
        assert_eq!(
            reply.result()["text"],
            "fresh",
            "{attempt}: {}",
            reply.response
        );
    }
    assert_eq!(server.requests().len(), 3, "each prompt read once");
}

#[test]
fn a_keep_alive_connection_dropped_after_the_request_was_read_uses_the_retry_budget() {
    // The first connection answers one request, then reads the next one and closes without an
    // answer (the server may have started on it): sent again only under `maxRetries`.
    let server = RawServer::start(|mut conn| async move {
        let body = openai_sse(&["fresh"]);
        let answer = http_response(
            200,
            &[("Content-Type", "text/event-stream")],
            body.as_bytes(),
        );
        let mut served = 0;
        while conn.read_request().await.is_some() {
            if conn.index == 0 && served == 1 {
                return;
            }
            if !conn.write(&answer).await {
                return;
            }
            served += 1;
        }
    });
    let mut sidecar = Sidecar::spawn();
    let url = server.url("/v1/chat/completions");
    let first = sidecar.complete(
        Settings::sse(&url, DELTA_PATH)
            .no_retries()
            .params()
            .build(),
    );
    assert_eq!(first.result()["text"], "fresh", "{}", first.response);
    let dropped = sidecar.complete(
        quick_retries(Settings::sse(&url, DELTA_PATH))
            .params()
            .build(),
    );
    assert_eq!(dropped.result()["text"], "fresh", "{}", dropped.response);
    assert_eq!(
        dropped.result()["timings"]["attempts"],
        2,
        "one retry of the budget"
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_final_event_cut_inside_its_json_is_interrupted_not_a_success() {
    let body = format!(
        "{}data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"lost ta",
        sse_event(&openai_delta("Kept"))
    );
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    for path in [Some(DELTA_PATH), None] {
        let mut settings = Settings::new(mock.url("/v1/chat/completions")).no_retries();
        if let Some(path) = path {
            settings = settings.path(path);
        }
        let id = sidecar.request("llm/complete", settings.params().stream_id("c").build());
        let reply = sidecar.wait_response(&id, WAIT);
        let data = reply.expect_error(REQUEST_FAILED, "interrupted");
        assert_eq!(partial_text(data), "Kept", "path {path:?}: {data}");
    }
}

#[test]
fn several_choices_under_a_positional_path_are_reported() {
    let event = |index: u32, text: &str| {
        sse_event(&json!({"choices": [{"index": index, "delta": {"content": text}}]}).to_string())
    };
    let body = [
        event(0, "A1 "),
        event(1, "B1 "),
        event(0, "A2"),
        event(1, "B2"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body + "data: [DONE]\n\n"));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(
        &mut sidecar,
        Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH),
    );
    let warnings = reply.result()["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{}", reply.response);
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("$.choices[?@.index==0].delta.content"),
        "{warning}"
    );
    // One choice: no warning.
    let single = MockLlm::always(MockResponse::sse(openai_sse(&["a", "b"])));
    let reply = complete_streamed(
        &mut sidecar,
        Settings::sse(single.url("/v1/chat/completions"), DELTA_PATH),
    );
    assert!(
        reply.result().get("warnings").is_none(),
        "{}",
        reply.response
    );
}

/// The failure's data and message for `settings`.
fn failure(sidecar: &mut Sidecar, settings: Settings, kind: &str) -> (Value, String) {
    let id = sidecar.request("llm/complete", settings.params().build());
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, kind).clone();
    (data, reply.error()["message"].as_str().unwrap().to_owned())
}

#[test]
fn messages_name_what_the_user_must_change() {
    let mut sidecar = Sidecar::spawn();

    // https:// to a server that speaks plain HTTP: not retried, says use http://.
    let plain = MockLlm::always(MockResponse::sse(openai_sse(&["x"])));
    let https_to_plain = plain
        .url("/v1/chat/completions")
        .replace("http://", "https://");
    let (data, message) = failure(
        &mut sidecar,
        quick_retries(Settings::sse(https_to_plain, DELTA_PATH)),
        "connect",
    );
    assert!(message.contains("use http://"), "{message}");
    assert_eq!(data["attempts"], 1, "{data}");

    // An untrusted certificate: not retried, names caCertificates.
    let pki = TestPki::self_signed();
    let tls = https_server("127.0.0.1", &pki, |_| {
        http_response(
            200,
            &[("Content-Type", "text/event-stream")],
            openai_sse(&["x"]).as_bytes(),
        )
    });
    let (data, message) = failure(
        &mut sidecar,
        quick_retries(Settings::sse(
            https_url(&tls, "/v1/chat/completions"),
            DELTA_PATH,
        )),
        "connect",
    );
    assert!(message.contains("caCertificates"), "{message}");
    assert_eq!(data["attempts"], 1, "{data}");

    // A proxy that is not there: the proxy is named, not the LLM server.
    let proxy = format!("http://127.0.0.1:{}", unused_port());
    let (data, message) = failure(
        &mut sidecar,
        Settings::sse(plain.url("/v1/chat/completions"), DELTA_PATH)
            .no_retries()
            .set("proxy", proxy.as_str()),
        "connect",
    );
    assert!(message.contains("proxy"), "{message}");
    assert_eq!(data["proxy"], format!("{proxy}/"), "{data}");

    // A base URL without the endpoint path gets 404: the usual path is suggested.
    let not_found = MockLlm::always(MockResponse::json(404, r#"{"detail":"Not Found"}"#));
    let base = not_found.url("");
    let (data, message) = failure(
        &mut sidecar,
        Settings::sse(base.clone(), DELTA_PATH).no_retries(),
        "http_status",
    );
    let suggested = format!("{}/v1/chat/completions", base.trim_end_matches('/'));
    assert!(message.contains(&suggested), "{message}");
    assert!(
        data["hint"].as_str().unwrap().contains(&suggested),
        "{data}"
    );

    // An HTTP error whose body is SSE: the provider's message comes from its error event.
    let overloaded = MockLlm::always(
        MockResponse::new(429)
            .content_type("text/event-stream")
            .piece(
                "event: error\ndata: {\"error\":{\"message\":\"model overloaded, slow down\"}}\n\n",
            ),
    );
    let (data, message) = failure(
        &mut sidecar,
        Settings::sse(overloaded.url("/v1/chat/completions"), DELTA_PATH).no_retries(),
        "http_status",
    );
    assert_eq!(
        data["providerMessage"], "model overloaded, slow down",
        "{data}"
    );
    assert!(message.contains("model overloaded, slow down"), "{message}");
}
