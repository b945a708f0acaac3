//! Code completion over standard LSP, through the real binary: document sync
//! (`didOpen`/`didChange`/`didClose`), position encodings (UTF-16 and UTF-8,
//! with CJK, emoji and CRLF), the error cases (a clear `-32602`, the stored
//! text unchanged: checked through the prefix of the next completion, as the
//! mock server receives it), the snapshot taken at arrival, superseding (the
//! mock sees the connection close) and `didClose`.

mod common;

use common::schema::assert_matches_methods_schema;
use common::*;
use serde_json::{Value, json};

const URI: &str = "file:///work/src/main.rs";

/// A `/v1/completions` server that answers every request with `text`, except
/// those whose prompt contains `hold`, which never finish.
fn fim_server(text: &'static str) -> MockLlm {
    MockLlm::start(move |request| {
        let prompt = request.json()["prompt"].as_str().unwrap_or_default();
        if prompt.contains("hold") {
            return MockResponse::new(200)
                .content_type("application/json")
                .chunked()
                .piece("{\"choices\":[")
                .then_hang();
        }
        let body = json!({"choices": [{"index": 0, "text": text, "finish_reason": "stop"}]});
        MockResponse::json(200, body.to_string())
    })
}

/// The `completion` settings for `mock`: prefix and suffix in their own
/// fields (`prompt`, `suffix`), as OpenAI-style FIM servers take them.
fn completion_settings(mock: &MockLlm) -> Value {
    json!({
        "customEngineServer": mock.url("/v1/completions"),
        "customEngineResponseType": "JSON",
        "customEngineRequestFormat": {"customFields": {"model": "coder"}},
        "fim": {"mode": "separate", "multiline": true},
        "retry": {"maxRetries": 0},
    })
}

/// A sidecar initialised with `encodings` offered and completion settings for `mock`.
fn start(mock: &MockLlm, encodings: Option<&[&str]>) -> (Sidecar, Value) {
    let mut sidecar = Sidecar::spawn();
    let mut capabilities = json!({"textDocument": {"inlineCompletion": {}}});
    if let Some(encodings) = encodings {
        capabilities["general"] = json!({"positionEncodings": encodings});
    }
    let id = sidecar.request(
        "initialize",
        json!({
            "processId": null,
            "capabilities": capabilities,
            "initializationOptions": {"completion": completion_settings(mock)},
        }),
    );
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    assert_matches_methods_schema("lspCapabilities", &result["capabilities"]);
    sidecar.notify("initialized", json!({}));
    (sidecar, result)
}

fn open(sidecar: &mut Sidecar, uri: &str, version: i64, text: &str) {
    let params = json!({"textDocument": {"uri": uri, "languageId": "rust", "version": version, "text": text}});
    assert_matches_methods_schema("lspDidOpenParams", &params);
    sidecar.notify("textDocument/didOpen", params);
}

fn range(l0: u32, c0: u32, l1: u32, c1: u32) -> Value {
    json!({"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}})
}

fn change(sidecar: &mut Sidecar, uri: &str, version: i64, changes: Value) {
    let params =
        json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes});
    assert_matches_methods_schema("lspDidChangeParams", &params);
    sidecar.notify("textDocument/didChange", params);
}

fn edit(range: Value, text: &str) -> Value {
    json!({"range": range, "text": text})
}

fn inline_params(uri: &str, line: u32, character: u32) -> Value {
    json!({
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    })
}

fn inline(sidecar: &mut Sidecar, uri: &str, line: u32, character: u32) -> Reply {
    let params = inline_params(uri, line, character);
    assert_matches_methods_schema("lspInlineCompletionParams", &params);
    let id = sidecar.request("textDocument/inlineCompletion", params);
    let reply = sidecar.wait_response(&id, WAIT);
    if let Some(result) = reply.response.get("result") {
        assert_matches_methods_schema("lspInlineCompletionResult", result);
    }
    reply
}

/// The (prompt, suffix) of the mock's request `index`.
fn sent(mock: &MockLlm, index: usize) -> (String, String) {
    let requests = mock.wait_for_requests(index + 1, WAIT);
    let body = requests[index].json();
    let text = |key: &str| {
        body[key]
            .as_str()
            .unwrap_or_else(|| panic!("`{key}` must be a string in {body}"))
            .to_owned()
    };
    (text("prompt"), text("suffix"))
}

/// Completes at (line, character) and checks what the server received and
/// the item's range.
fn expect_completion(
    sidecar: &mut Sidecar,
    mock: &MockLlm,
    at: (u32, u32),
    prefix: &str,
    suffix: &str,
) {
    let before = mock.requests().len();
    let reply = inline(sidecar, URI, at.0, at.1);
    let items = reply.result()["items"].as_array().expect("items").clone();
    assert_eq!(sent(mock, before), (prefix.to_owned(), suffix.to_owned()));
    assert_eq!(items.len(), 1, "{}", reply.response);
    let position = json!({"line": at.0, "character": at.1});
    assert_eq!(
        items[0]["range"],
        json!({"start": position, "end": position})
    );
}

#[test]
fn initialize_advertises_inline_completion_and_negotiates_the_encoding() {
    let mock = fim_server("x");
    for (offered, expected) in [
        (None, "utf-16"),
        (Some(&["utf-16"][..]), "utf-16"),
        (Some(&["utf-16", "utf-8"][..]), "utf-8"),
        (Some(&["utf-32", "utf-16"][..]), "utf-32"),
    ] {
        let (_sidecar, result) = start(&mock, offered);
        let caps = &result["capabilities"];
        assert_eq!(caps["positionEncoding"], json!(expected), "{offered:?}");
        assert_eq!(caps["inlineCompletionProvider"], json!(true));
        assert_eq!(
            caps["textDocumentSync"],
            json!({"openClose": true, "change": 2})
        );
    }
}

/// The same edits and completions in UTF-16 and UTF-8: only the `character`
/// numbers differ. 中 is 1 UTF-16 unit and 3 bytes; 😀 is 2 units and 4 bytes.
#[test]
fn incremental_and_full_sync_in_utf16_and_utf8_with_cjk_emoji_and_crlf() {
    // (encoding, column after `let 😀`, column after `中文`)
    for (encoding, after_emoji, after_cjk) in [("utf-16", 10, 5), ("utf-8", 12, 9)] {
        let mock = fim_server("42;");
        let (mut sidecar, result) = start(&mock, Some(&[encoding]));
        assert_eq!(result["capabilities"]["positionEncoding"], json!(encoding));
        open(
            &mut sidecar,
            URI,
            1,
            "fn 中文() {\r\n    let 😀 = 1;\r\n}\r\n",
        );
        // Replace ` = 1;` after the emoji with ` = ` and complete there.
        change(
            &mut sidecar,
            URI,
            2,
            json!([edit(range(1, after_emoji, 1, after_emoji + 5), " = ")]),
        );
        let cursor = (1, after_emoji + 3);
        expect_completion(
            &mut sidecar,
            &mock,
            cursor,
            "fn 中文() {\r\n    let 😀 = ",
            "\r\n}\r\n",
        );
        // Two edits in one notification (the second sees the first), one
        // joining lines across a CRLF, one inserting after the CJK name.
        change(
            &mut sidecar,
            URI,
            3,
            json!([
                edit(range(1, after_emoji + 3, 2, 0), "x\r\n"),
                edit(range(0, after_cjk, 0, after_cjk), "_中"),
            ]),
        );
        let cjk_units = if encoding == "utf-8" { 4 } else { 2 };
        expect_completion(
            &mut sidecar,
            &mock,
            (0, after_cjk + cjk_units),
            "fn 中文_中",
            "() {\r\n    let 😀 = x\r\n}\r\n",
        );
        // A full replacement, then an edit against it.
        change(&mut sidecar, URI, 4, json!([{"text": "a😀\nb"}]));
        let end_of_emoji = if encoding == "utf-8" { 5 } else { 3 };
        change(
            &mut sidecar,
            URI,
            5,
            json!([edit(range(0, end_of_emoji, 1, 0), "\r")]),
        );
        expect_completion(&mut sidecar, &mock, (1, 0), "a😀\r", "b");
        assert_still_serving(&mut sidecar);
    }
}

#[test]
fn a_completion_sees_the_text_as_of_its_arrival() {
    let mock = fim_server("done");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "let a = ");
    // The request and a burst of edits after it, in one go: the edits must
    // not reach the completion that arrived before them.
    let id = sidecar.request("textDocument/inlineCompletion", inline_params(URI, 0, 8));
    for version in 2..200 {
        change(
            &mut sidecar,
            URI,
            version,
            json!([edit(range(0, 0, 0, 0), "z")]),
        );
    }
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["items"][0]["insertText"], json!("done"));
    assert_eq!(sent(&mock, 0), ("let a = ".to_owned(), String::new()));
    // And the edits were applied after it.
    expect_completion(
        &mut sidecar,
        &mock,
        (0, 198 + 8),
        &format!("{}let a = ", "z".repeat(198)),
        "",
    );
}

#[test]
fn bad_positions_get_32602_naming_the_problem() {
    let mock = fim_server("x");
    let (mut utf16, _) = start(&mock, None);
    let (mut utf8, _) = start(&mock, Some(&["utf-8"]));
    for sidecar in [&mut utf16, &mut utf8] {
        open(sidecar, URI, 1, "a😀b\n中\n");
    }
    // (UTF-8 sidecar?, uri, line, character, what the error must say)
    let cases = [
        (false, URI, 0, 2, "splits the surrogate pair of U+1F600"),
        (
            true,
            URI,
            0,
            3,
            "falls inside the UTF-8 sequence of U+1F600",
        ),
        (true, URI, 1, 1, "falls inside the UTF-8 sequence of U+4E2D"),
        (
            false,
            URI,
            0,
            5,
            "character 5 is past the end of line 0, which is 4 utf-16 unit(s) long",
        ),
        (
            true,
            URI,
            1,
            4,
            "character 4 is past the end of line 1, which is 3 utf-8 unit(s) long",
        ),
        (
            false,
            URI,
            3,
            0,
            "line 3 is past the end of the document, which has 3 line(s)",
        ),
        (
            false,
            "file:///never-opened.rs",
            0,
            0,
            "document file:///never-opened.rs is not open",
        ),
    ];
    for (in_utf8, uri, line, character, expected) in cases {
        let sidecar = if in_utf8 { &mut utf8 } else { &mut utf16 };
        let reply = inline(sidecar, uri, line, character);
        let data = reply.expect_error(INVALID_PARAMS, "invalid_params");
        let message = reply.error()["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
        assert!(
            data["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains(expected)
        );
    }
    // Malformed params too.
    let id = utf16.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": URI}, "position": {"line": -1, "character": 0}}),
    );
    utf16
        .wait_response(&id, WAIT)
        .expect_error(INVALID_PARAMS, "invalid_params");
    assert!(
        mock.requests().is_empty(),
        "nothing may be sent for a bad request"
    );
    assert_still_serving(&mut utf16);
    // The documents are intact: completions at the end still see all of it.
    expect_completion(&mut utf16, &mock, (2, 0), "a😀b\n中\n", "");
}

/// A bad `didChange` is logged and ignored, and leaves the text as it was;
/// the next good one applies to that text.
#[test]
fn refused_changes_leave_the_document_unchanged() {
    let mock = fim_server("x");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 5, "a😀b\nc\n");
    let refused = [
        // Splitting the emoji's surrogate pair.
        (6, json!([edit(range(0, 2, 0, 2), "X")]), "surrogate pair"),
        // Past the end of a line, and of the document.
        (
            6,
            json!([edit(range(1, 0, 1, 9), "X")]),
            "past the end of line 1",
        ),
        (
            6,
            json!([edit(range(7, 0, 7, 0), "X")]),
            "line 7 is past the end",
        ),
        // End before start.
        (6, json!([edit(range(1, 1, 0, 0), "X")]), "before it starts"),
        // A good edit then a bad one: neither is applied.
        (
            6,
            json!([
                edit(range(1, 0, 1, 0), "GOOD"),
                edit(range(0, 9, 0, 9), "X")
            ]),
            "content change 1",
        ),
        // A version older than the one applied.
        (
            4,
            json!([edit(range(1, 0, 1, 0), "OLD")]),
            "older than the version already applied (5)",
        ),
    ];
    for (version, changes, logged) in refused {
        change(&mut sidecar, URI, version, changes);
        assert!(
            sidecar.wait_stderr(WAIT, |text| text.contains(logged)),
            "the refusal must be logged with {logged:?}:\n{}",
            sidecar.stderr_text()
        );
    }
    // Unknown and closed documents.
    change(&mut sidecar, "file:///other.rs", 9, json!([{"text": "x"}]));
    assert!(sidecar.wait_stderr(WAIT, |t| t.contains("file:///other.rs is not open")));
    expect_completion(&mut sidecar, &mock, (1, 1), "a😀b\nc", "\n");
    // The good change after all of that applies to the unchanged text.
    change(&mut sidecar, URI, 6, json!([edit(range(1, 1, 1, 1), "d")]));
    expect_completion(&mut sidecar, &mock, (1, 2), "a😀b\ncd", "\n");
}

#[test]
fn an_oversized_document_is_refused_and_named() {
    let mock = fim_server("x");
    let (mut sidecar, _) = start(&mock, None);
    let big = "x".repeat(8 * 1024 * 1024 + 1);
    open(&mut sidecar, "file:///big.txt", 1, &big);
    let reply = inline(&mut sidecar, "file:///big.txt", 0, 0);
    reply.expect_error(INVALID_PARAMS, "invalid_params");
    let message = reply.error()["message"].as_str().unwrap();
    assert!(
        message
            .contains("it was refused (8388609 bytes, over the 8388608-byte limit per document)"),
        "{message}"
    );
    // A change that would grow a kept document over the limit.
    open(&mut sidecar, URI, 1, "small");
    change(
        &mut sidecar,
        URI,
        2,
        json!([edit(range(0, 5, 0, 5), &big[5..])]),
    );
    assert!(sidecar.wait_stderr(WAIT, |t| {
        t.contains("the limit is 8388608 bytes (8 MiB) per document")
    }));
    expect_completion(&mut sidecar, &mock, (0, 5), "small", "");
}

#[test]
fn did_close_forgets_the_document() {
    let mock = fim_server("x");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "old text");
    sidecar.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    );
    let reply = inline(&mut sidecar, URI, 0, 0);
    reply.expect_error(INVALID_PARAMS, "invalid_params");
    assert!(
        reply.error()["message"]
            .as_str()
            .unwrap()
            .contains("is not open")
    );
    // Closing again is logged, not fatal; reopening starts from the new text.
    sidecar.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    );
    open(&mut sidecar, URI, 1, "new");
    expect_completion(&mut sidecar, &mock, (0, 3), "new", "");
}

#[test]
fn a_newer_request_for_the_document_supersedes_the_running_one() {
    let mock = fim_server("fresh");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "hold ");
    let first = sidecar.request("textDocument/inlineCompletion", inline_params(URI, 0, 5));
    mock.wait_for_requests(1, WAIT);
    // The user typed on; the editor asks again without cancelling.
    change(&mut sidecar, URI, 2, json!([{"text": "go "}]));
    let second = sidecar.request("textDocument/inlineCompletion", inline_params(URI, 0, 3));
    let superseded = sidecar.wait_response(&first, WAIT);
    let data = superseded.expect_error(CANCELLED, "cancelled");
    assert_eq!(data["reason"], json!("superseded"));
    mock.wait_client_closed(0, WAIT);
    let reply = sidecar.wait_response(&second, WAIT);
    assert_eq!(reply.result()["items"][0]["insertText"], json!("fresh"));
    assert_eq!(sent(&mock, 1).0, "go ");
}

#[test]
fn closing_the_document_cancels_its_running_completion() {
    let mock = fim_server("x");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "hold ");
    let id = sidecar.request("textDocument/inlineCompletion", inline_params(URI, 0, 5));
    mock.wait_for_requests(1, WAIT);
    sidecar.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    );
    sidecar.wait_response(&id, WAIT).expect_code(CANCELLED);
    mock.wait_client_closed(0, WAIT);
}

#[test]
fn cancel_request_works_for_inline_completion() {
    let mock = fim_server("x");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "hold ");
    let id = sidecar.request("textDocument/inlineCompletion", inline_params(URI, 0, 5));
    mock.wait_for_requests(1, WAIT);
    sidecar.cancel(&id);
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(CANCELLED, "cancelled");
    assert!(data.get("reason").is_none(), "not superseded: {data}");
    mock.wait_client_closed(0, WAIT);
}

/// Copilot's extra params are accepted; a selected completion-menu entry is
/// part of the prefix and of the item, over its range.
#[test]
fn copilot_extras_and_the_selected_completion_are_understood() {
    let mock = fim_server("(args)");
    let (mut sidecar, _) = start(&mock, None);
    open(&mut sidecar, URI, 1, "let v = pri\n");
    let id = sidecar.request(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": {"uri": URI, "version": 1},
            "position": {"line": 0, "character": 11},
            "context": {"triggerKind": 2, "selectedCompletionInfo": {"range": range(0, 8, 0, 11), "text": "println"}},
            "formattingOptions": {"tabSize": 4, "insertSpaces": true},
        }),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_matches_methods_schema("lspInlineCompletionResult", reply.result());
    assert_eq!(
        sent(&mock, 0),
        ("let v = println".to_owned(), "\n".to_owned())
    );
    assert_eq!(
        reply.result()["items"],
        json!([{"insertText": "println(args)", "range": range(0, 8, 0, 11)}])
    );
}

#[test]
fn without_completion_settings_the_error_says_how_to_configure_them() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("initialize", json!({"capabilities": {}}));
    sidecar.wait_response(&id, WAIT);
    open(&mut sidecar, URI, 1, "x");
    let reply = inline(&mut sidecar, URI, 0, 1);
    reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains("completion"), "{message}");
}

#[test]
fn many_documents_and_requests_stay_apart() {
    let mock = fim_server("ok");
    let (mut sidecar, _) = start(&mock, None);
    let uris: Vec<String> = (0..20).map(|i| format!("file:///doc{i}.rs")).collect();
    for (i, uri) in uris.iter().enumerate() {
        open(&mut sidecar, uri, 1, &format!("doc {i} "));
    }
    let ids: Vec<Value> = uris
        .iter()
        .enumerate()
        .map(|(i, uri)| {
            let column = format!("doc {i} ").len() as u32;
            sidecar.request(
                "textDocument/inlineCompletion",
                inline_params(uri, 0, column),
            )
        })
        .collect();
    for id in &ids {
        let reply = sidecar.wait_response(id, WAIT);
        assert_eq!(reply.result()["items"][0]["insertText"], json!("ok"));
    }
    let mut prompts: Vec<String> = mock
        .wait_for_requests(20, WAIT)
        .iter()
        .map(|r| r.json()["prompt"].as_str().unwrap().to_owned())
        .collect();
    prompts.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("doc {i} ")).collect();
    expected.sort();
    assert_eq!(prompts, expected);
}
