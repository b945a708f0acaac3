//! Secrets never leave the sidecar: the token and the values of `Authorization`, `x-api-key`,
//! `api-key`, any custom header whose name contains `key`, `token`, `secret` or `auth`, and
//! key-like URL query values (plain or percent-encoded) must not appear on stderr at any log level
//! (trace included, library targets included), in error data, in panic messages, or anywhere else
//! on stdout, even when the LLM server echoes them back in error bodies, provider messages, stream
//! errors, samples and redirect locations.
//!
//! The test runs a whole suite of requests (every failure kind, the other methods, settings
//! problems, cancel, a panic) against a server that echoes every header it received, then searches
//! everything the process wrote.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-TOKEN-secret-4f1d9a7c2b8e";
const X_API_KEY: &str = "xak-HEADER-secret-93b1c0d7e6";
const API_KEY: &str = "ak-AZURE-secret-5a2f8e1c4d";
const GOOG_API_KEY: &str = "AIza-GOOGLE-secret-7c3b9d2e";
const SESSION_TOKEN: &str = "st-SESSION-secret-1e8f4a6b";
const CLIENT_SECRET: &str = "cs-CLIENT-secret-6d0a3f9b";
const CUSTOM_AUTH: &str = "ca-CUSTOM-secret-2b7e5c8a";
/// Sent as `Authorization: Bearer <this>` through `customHeaders` (no token).
const AUTHORIZATION_CREDENTIAL: &str = "ah-AUTHZ-secret-8c4d1f7e";
/// A key-like URL query parameter.
const QUERY_KEY: &str = "qk-QUERY-secret-3f6a9e2d";
/// Another, percent-encoded as written in the URL (`/` and `+` inside); the server echoes the
/// encoded form.
const ENCODED_QUERY_KEY: &str = "qe-ENC%2FQUERY%2Bsecret-8d1c4b7a";
/// A header value that is not a secret: it must still be echoed, proving bodies are reported.
const VISIBLE: &str = "visible-trace-0001";

const SECRETS: [&str; 10] = [
    TOKEN,
    X_API_KEY,
    API_KEY,
    GOOG_API_KEY,
    SESSION_TOKEN,
    CLIENT_SECRET,
    CUSTOM_AUTH,
    AUTHORIZATION_CREDENTIAL,
    QUERY_KEY,
    ENCODED_QUERY_KEY,
];

/// Every header the server received and the request target, as one line of text.
fn echo(request: &RecordedRequest) -> String {
    let headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{} {}", request.path, headers.join(" "))
}

/// The echoing LLM server: the first path segment picks the behaviour.
fn echo_server() -> MockLlm {
    MockLlm::start(|request| {
        let echo = echo(request);
        let route = request
            .path
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let error_json = json!({"error": {"message": format!("Incorrect API key provided: {echo}"), "type": "invalid_request_error"}}).to_string();
        match route.as_str() {
            "ok" => MockResponse::sse(openai_sse(&["fine"])),
            "echo-content" => MockResponse::sse(openai_sse(&[&echo])),
            "401-json" => MockResponse::json(401, &error_json),
            "403-text" => MockResponse::new(403)
                .content_type("text/plain")
                .piece(format!("forbidden: {echo}")),
            "429" => MockResponse::json(429, &error_json).header("Retry-After", "0"),
            "500-html" => MockResponse::new(500)
                .content_type("text/html")
                .piece(format!("<html><body>{echo}</body></html>")),
            "stream-error" => MockResponse::sse(format!(
                "{}event: error\ndata: {}\n\n",
                sse_event(&openai_delta("partial ")),
                json!({"type": "error", "error": {"message": echo}})
            )),
            "top-level-error" => MockResponse::sse(format!(
                "{}{}",
                sse_event(&openai_delta("partial ")),
                sse_event(&json!({"error": {"message": echo, "code": 401}}).to_string())
            )),
            "vertex" => MockResponse::sse(format!(
                "{}{}\n",
                sse_event(&openai_delta("partial ")),
                json!({"error": {"code": 401, "message": echo, "status": "UNAUTHENTICATED"}})
            )),
            "ndjson-error" => MockResponse::new(200)
                .content_type("application/x-ndjson")
                .piece(format!("{}\n", json!({"error": echo}))),
            "no-match" => MockResponse::sse(format!(
                "{}{}",
                sse_event(&json!({"echo": echo}).to_string()),
                sse_event("[DONE]")
            )),
            "decode" => MockResponse::sse(format!("data: not json {echo}\n\n")),
            "redirect" => {
                // The credentials the request carried, in the query of the new location.
                let credential = request
                    .header_values("authorization")
                    .first()
                    .map(|v| v.trim_start_matches("Bearer ").to_owned())
                    .unwrap_or_default();
                let key = request
                    .header_values("x-api-key")
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_owned();
                MockResponse::new(302)
                    .header(
                        "Location",
                        &format!("http://127.0.0.1:9/login?token={credential}&key={key}"),
                    )
                    .piece(format!("moved {echo}"))
            }
            "too-large" => MockResponse::sse(sse_event(&openai_delta("partial ")))
                .chunked()
                .piece(sse_event(&openai_delta(&echo.repeat(20)))),
            "interrupted" => MockResponse::sse(sse_event(&openai_delta("partial ")))
                .chunked()
                .then_close(),
            "stall" => MockResponse::sse(sse_event(&openai_delta("partial ")))
                .chunked()
                .then_hang(),
            _ => MockResponse::json(404, &error_json),
        }
    })
}

/// The secret-carrying headers of the first settings variant.
fn secret_headers() -> Value {
    json!({
        "x-api-key": X_API_KEY,
        "api-key": API_KEY,
        "x-goog-api-key": GOOG_API_KEY,
        "X-Session-Token": SESSION_TOKEN,
        "X-Client-Secret": CLIENT_SECRET,
        "X-Custom-Auth": CUSTOM_AUTH,
        "X-Trace-Id": VISIBLE,
    })
}

/// Two ways of carrying the secrets: the token plus secret-named custom headers; and an
/// `Authorization` custom header. Both with a key in the URL query.
/// Settings for a route of the echo server.
type Variant = Box<dyn Fn(&str) -> Settings>;

fn variants(server: &MockLlm) -> Vec<Variant> {
    let base = server.url("");
    let with_token = {
        let base = base.clone();
        move |route: &str| {
            Settings::sse(format!("{base}/{route}?key={QUERY_KEY}&api_key={ENCODED_QUERY_KEY}"), DELTA_PATH)
                .token(TOKEN)
                .request_format(json!({"customHeaders": secret_headers(), "customFields": {"model": "m", "stream": true}}))
                .set("retry", json!({"maxRetries": 1, "initialBackoffMs": 5}))
                .set("timeouts", json!({"idleMs": 300}))
                .set("maxEventBytes", 2000)
        }
    };
    let with_authorization = move |route: &str| {
        Settings::sse(format!("{base}/{route}?key={QUERY_KEY}&api_key={ENCODED_QUERY_KEY}"), DELTA_PATH)
            .request_format(json!({"customHeaders": {"Authorization": format!("Bearer {AUTHORIZATION_CREDENTIAL}")}}))
            .set("retry", json!({"maxRetries": 1, "initialBackoffMs": 5}))
            .set("timeouts", json!({"idleMs": 300}))
            .set("maxEventBytes", 2000)
    };
    vec![Box::new(with_token), Box::new(with_authorization)]
}

/// What one suite run saw.
struct Run {
    /// Everything on stdout, except the completion whose content legitimately echoes the secrets.
    stdout: String,
    stderr: String,
    /// The content of the echo completion (it must hold the secrets: proof that they were echoed).
    echoed_content: Vec<String>,
    /// Error bodies and messages, to check that non-secret echoed text is still reported.
    error_data: String,
}

/// Runs every kind of request with both settings variants in a sidecar with `env`.
fn run_suite(env: &[(&str, &str)]) -> Run {
    let server = echo_server();
    let mut builder = Sidecar::builder().env("LLM_SIDECAR_TEST_HOOKS", "1");
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    let mut sidecar = builder.spawn();
    let mut echoed_content = Vec::new();
    let mut error_data = String::new();
    let mut excluded_ids = Vec::new();

    // A customLlms entry carrying the token, selected by name.
    let init = sidecar.request(
        "initialize",
        json!({"initializationOptions": {"customLlms": [{
            "name": "echo-llm",
            "customEngineServer": server.url(&format!("/401-json?key={QUERY_KEY}")),
            "customEngineToken": TOKEN,
            "customEngineRequestFormat": json!({"customHeaders": secret_headers()}).to_string(),
            "customEngineResponseFormat": DELTA_PATH,
        }]}}),
    );
    sidecar.wait_response(&init, WAIT).result();
    sidecar.notify("initialized", json!({}));

    let failing_routes = [
        ("401-json", "http_status"),
        ("403-text", "http_status"),
        ("429", "http_status"),
        ("500-html", "http_status"),
        ("redirect", "http_status"),
        ("stream-error", "stream_error"),
        ("top-level-error", "stream_error"),
        ("vertex", "stream_error"),
        ("ndjson-error", "stream_error"),
        ("no-match", "no_match"),
        ("decode", "decode"),
        ("too-large", "too_large"),
        ("interrupted", "interrupted"),
        ("stall", "timeout"),
    ];
    for (v, settings) in variants(&server).iter().enumerate() {
        let reply = complete_streamed(&mut sidecar, settings("ok"));
        assert_eq!(reply.result()["text"], "fine");

        // The server's answer is the echo itself: legitimate content, kept out of the stdout check.
        let stream = format!("echo-content-{v}");
        let params = settings("echo-content")
            .params()
            .stream_id(stream.as_str())
            .build();
        let id = sidecar.request("llm/complete", params);
        let reply = sidecar.wait_response(&id, WAIT);
        echoed_content.push(reply.result()["text"].as_str().unwrap().to_owned());
        excluded_ids.push((id, json!(stream)));

        for (route, kind) in failing_routes {
            let settings = if route == "ndjson-error" {
                settings(route)
                    .response_type("NDJSON")
                    .path("$.message.content")
            } else {
                settings(route)
            };
            let reply = complete_streamed(&mut sidecar, settings);
            let data = reply.expect_error(REQUEST_FAILED, kind);
            error_data.push_str(&reply.response["error"].to_string());
            if route == "redirect" {
                assert!(data["location"].is_string(), "{data}");
            }
        }

        // Connection failures, with the key in the URL: refused, and TLS to a plain port.
        let refused = unused_port();
        let refused_settings = settings("ok").set(
            "customEngineServer",
            format!("http://127.0.0.1:{refused}/v1?key={QUERY_KEY}"),
        );
        complete_streamed(&mut sidecar, refused_settings).expect_error(REQUEST_FAILED, "connect");
        let tls_settings = settings("ok").set(
            "customEngineServer",
            server
                .url(&format!("/ok?key={QUERY_KEY}"))
                .replacen("http://", "https://", 1),
        );
        complete_streamed(&mut sidecar, tls_settings).expect_error(REQUEST_FAILED, "connect");

        // Cancel mid-stream.
        let params = settings("stall")
            .set("timeouts", json!({"idleMs": 60000}))
            .params()
            .stream_id(format!("cancel-{v}"))
            .build();
        let id = sidecar.request("llm/complete", params);
        sidecar.wait_chunk(&json!(format!("cancel-{v}")), 0, WAIT);
        sidecar.cancel(&id);
        sidecar
            .wait_response(&id, WAIT)
            .expect_error(CANCELLED, "cancelled");

        // The other methods.
        let settings_value: Value = settings("401-json").into();
        let id = sidecar.request(
            "llm/validateSettings",
            json!({"settings": settings_value.clone()}),
        );
        assert_eq!(sidecar.wait_response(&id, WAIT).result()["ok"], true);
        let id = sidecar.request(
            "llm/testConnection",
            json!({"settings": settings_value.clone()}),
        );
        sidecar.wait_response(&id, WAIT).result();
        let ok_value: Value = settings("ok").into();
        let id = sidecar.request("llm/testConnection", json!({"settings": ok_value}));
        sidecar.wait_response(&id, WAIT).result();
    }

    // The customLlms entry, by name.
    let id = sidecar.request(
        "llm/complete",
        json!({"llm": "echo-llm", "messages": user("hi")}),
    );
    sidecar
        .wait_response(&id, WAIT)
        .expect_error(REQUEST_FAILED, "http_status");

    // Settings problems next to secrets: a header value and a token that cannot be sent.
    let bad_header: Value = Settings::new(server.url("/ok"))
        .request_format(json!({"customHeaders": {"X-Api-Key": format!("{X_API_KEY}\n"), "Bad Name": CLIENT_SECRET}}))
        .into();
    let bad_token: Value = Settings::new(server.url("/ok"))
        .token(&format!("{TOKEN}\r\nX-Injected: 1"))
        .set("customEngineResponseType", "XML")
        .into();
    for settings in [bad_header, bad_token] {
        let id = sidecar.request(
            "llm/complete",
            json!({"settings": settings.clone(), "messages": user("hi")}),
        );
        let reply = sidecar.wait_response(&id, WAIT);
        reply.expect_code(INVALID_PARAMS);
        error_data.push_str(&reply.response["error"].to_string());
        let id = sidecar.request("llm/validateSettings", json!({"settings": settings}));
        assert_eq!(sidecar.wait_response(&id, WAIT).result()["ok"], false);
    }
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": [{"name": "broken", "customEngineServer": "ftp://x/", "customEngineToken": format!("{TOKEN}\n"),
            "customEngineRequestFormat": {"customHeaders": {"x-api-key": format!("{X_API_KEY}\n")}}}]}}),
    );
    let id = sidecar.request(
        "llm/complete",
        json!({"llm": "broken", "messages": user("hi")}),
    );
    sidecar.wait_response(&id, WAIT).expect_code(INVALID_PARAMS);

    // A handler panic.
    let id = sidecar.request("llm-sidecar/test/panic", json!({}));
    sidecar.wait_response(&id, WAIT).expect_code(-32603);

    assert_eq!(sidecar.finish().code(), Some(0));
    let stderr = sidecar.full_stderr();

    // The server really received every secret.
    let received: String = server.requests().iter().map(echo).collect();
    for secret in SECRETS {
        assert!(
            received.contains(secret),
            "the server never received {secret}"
        );
    }

    let stdout: Vec<String> = sidecar
        .transcript()
        .iter()
        .filter(|msg| {
            !excluded_ids.iter().any(|(id, stream)| {
                (msg.get("method").is_none() && msg.get("id") == Some(id))
                    || msg["params"]["streamId"] == *stream
            })
        })
        .map(Value::to_string)
        .collect();
    Run {
        stdout: stdout.join("\n"),
        stderr,
        echoed_content,
        error_data,
    }
}

/// The lines of `text` that contain `secret`, for the failure message.
fn lines_with<'a>(text: &'a str, secret: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.contains(secret))
        .take(5)
        .collect()
}

fn check(run: &Run, env: &str) -> Vec<String> {
    let mut failures = Vec::new();
    // The echo completion shows that the server did echo the secrets it was sent.
    let echoed = run.echoed_content.concat();
    for secret in SECRETS {
        if !echoed.contains(secret) {
            failures.push(format!(
                "{env}: {secret} was not echoed back; the test proves nothing"
            ));
        }
    }
    // Error bodies are reported (with the non-secret text), only the secrets are removed.
    if !run.error_data.contains(VISIBLE) {
        failures.push(format!(
            "{env}: the echoed, non-secret header value {VISIBLE} is in no error data"
        ));
    }
    for secret in SECRETS {
        let on_stdout = lines_with(&run.stdout, secret);
        if !on_stdout.is_empty() {
            failures.push(format!(
                "{env}: {secret} on stdout:\n    {}",
                on_stdout.join("\n    ")
            ));
        }
        let on_stderr = lines_with(&run.stderr, secret);
        if !on_stderr.is_empty() {
            failures.push(format!(
                "{env}: {secret} on stderr:\n    {}",
                on_stderr.join("\n    ")
            ));
        }
    }
    failures
}

#[test]
fn secrets_never_appear_in_output_at_trace_level() {
    let runs: [(&str, Vec<(&str, &str)>); 2] = [
        ("RUST_LOG=trace", vec![("RUST_LOG", "trace")]),
        (
            "LLM_SIDECAR_LOG=trace with every library at trace",
            vec![(
                "LLM_SIDECAR_LOG",
                "trace,hyper=trace,hyper_util=trace,reqwest=trace,rustls=trace,h2=trace,tokio=trace",
            )],
        ),
    ];
    let mut failures = Vec::new();
    for (name, env) in &runs {
        let run = run_suite(env);
        assert!(
            run.stderr.lines().count() > 50,
            "{name}: expected a detailed log, got:\n{}",
            run.stderr
        );
        failures.extend(check(&run, name));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every 8-character piece of `secret` found in `text`: a secret cut by a length limit must not
/// leak its first part (the masked form, `sk-…2b8e`, has no such piece).
fn partial_leaks(text: &str, secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .map(|w| w.iter().collect::<String>())
        .filter(|piece| text.contains(piece.as_str()))
        .collect()
}

#[test]
fn a_secret_cut_by_a_length_limit_does_not_leak_in_part() {
    // The token repeated with a period of 29 characters: whatever the limit, one of the two phases
    // puts the cut inside a token.
    let dense = |phase: usize| format!("{}{}", "p".repeat(phase), format!("{TOKEN} ").repeat(300));
    let server = MockLlm::start(move |request| {
        let (route, phase) = request
            .path
            .trim_start_matches('/')
            .split_once('/')
            .expect("/<route>/<phase>");
        let text = dense(phase.parse().unwrap());
        match route {
            "body-text" => MockResponse::new(401)
                .content_type("text/plain")
                .piece(format!("Incorrect API key provided: {text}")),
            "body-json" => MockResponse::json(
                401,
                json!({"error": {"message": format!("Incorrect API key provided: {text}")}})
                    .to_string(),
            ),
            "event" => MockResponse::sse(format!(
                "event: error\ndata: {}\n\n",
                json!({"error": {"message": text}})
            )),
            "sample" => MockResponse::sse(format!(
                "{}{}",
                sse_event(&json!({"echo": text}).to_string()),
                sse_event("[DONE]")
            )),
            "decode" => MockResponse::sse(format!("data: not json {text}\n\n")),
            _ => MockResponse::new(404),
        }
    });
    let cases = [
        ("body-text", "http_status"),
        ("body-json", "http_status"),
        ("event", "stream_error"),
        ("sample", "no_match"),
        ("decode", "decode"),
    ];
    let mut sidecar = Sidecar::spawn();
    let mut failures = Vec::new();
    for (route, kind) in cases {
        for phase in [0, 14] {
            let settings = Settings::sse(server.url(&format!("/{route}/{phase}")), DELTA_PATH)
                .token(TOKEN)
                .no_retries();
            let reply = complete_streamed(&mut sidecar, settings);
            let error = reply.expect_error(REQUEST_FAILED, kind);
            let text = reply.response["error"].to_string();
            if !text.contains("sk-…2b8e") {
                failures.push(format!("{route}/{phase}: no masked token at all: {error}"));
            }
            let leaks = partial_leaks(&text, TOKEN);
            if !leaks.is_empty() {
                let fields: Vec<String> = error
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !partial_leaks(&v.to_string(), TOKEN).is_empty())
                    .map(|(k, v)| {
                        let v = v.to_string();
                        let tail: String = v
                            .chars()
                            .rev()
                            .take(60)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        format!("data.{k} ends …{tail}")
                    })
                    .collect();
                failures.push(format!(
                    "{route} (phase {phase}): a cut piece of the token is in the error: {:?}; {}",
                    leaks.first(),
                    fields.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
