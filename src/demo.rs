//! `llm-sidecar demo`: the whole product on a fresh machine, with no setup.
//!
//! Starts a small OpenAI-style streaming server on 127.0.0.1, spawns this same
//! binary as a sidecar over stdio exactly as an IDE would, and prints what an
//! IDE would see: chunks as they arrive, the final result, then a
//! deliberately wrong setting answered with a structured error.

use std::convert::Infallible;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame as BodyFrame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::cli::preview;
use crate::rpc::frame::{Frame, FrameCodec};

/// What the embedded model "says", one SSE event per word.
const ANSWER: &str = "Hello from the embedded demo server! Each word you see arrived as its own \
server-sent event, was extracted with the JsonPath $.choices[0].delta.content, and reached this \
terminal as an llm/chunk notification while the server was still sending.";
const WORD_DELAY: Duration = Duration::from_millis(35);
/// How much of an event or a suggested text the demo shows.
const PREVIEW_CHARS: usize = 60;

type Body = BoxBody<Bytes, Infallible>;

/// Runs the demo; returns the process exit code.
pub async fn run() -> u8 {
    match demo().await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("demo failed: {message}");
            1
        }
    }
}

async fn demo() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(serve_model(listener));
    println!("demo LLM server listening at {url}");

    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .env("LLM_SIDECAR_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the sidecar: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut ide = Ide::new(stdin, stdout);
    println!(
        "sidecar started (pid {}), speaking JSON-RPC over its stdin/stdout\n",
        child.id().unwrap_or(0)
    );

    let init = ide
        .call("initialize", json!({"processId": null, "capabilities": {}}))
        .await?;
    println!(
        "→ initialize: {} {}",
        init["result"]["serverInfo"]["name"].as_str().unwrap_or("?"),
        init["result"]["serverInfo"]["version"]
            .as_str()
            .unwrap_or("?")
    );
    ide.notify("initialized", json!({})).await?;

    let settings = json!({
        "customEngineServer": url,
        "customEngineToken": "sk-demo-not-a-real-key",
        "customEngineResponseType": "SSE",
        "customEngineRequestFormat": "{\"customFields\": {\"model\": \"demo-model\", \"stream\": true}}",
        "customEngineResponseFormat": "$.choices[0].delta.content",
    });
    println!(
        "→ llm/complete (streamId \"demo\") with the AutoDev dialog settings:\n{}\n",
        pretty(&settings)
    );
    let started = Instant::now();
    let mut first_chunk = None;
    let params = json!({
        "streamId": "demo",
        "settings": settings,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello to the IDE."}
        ]
    });
    let reply = ide
        .call_streaming("llm/complete", params, |text| {
            first_chunk.get_or_insert_with(|| started.elapsed());
            print!("{text}");
            let _ = std::io::stdout().flush();
        })
        .await?;
    println!("\n");
    let result = &reply["result"];
    println!(
        "← result: {} chunks, finishReason {}, usage {}, first byte {} ms, first chunk {} ms, total {} ms",
        result["chunks"],
        result["finishReason"],
        result["usage"],
        result["timings"]["firstByteMs"],
        first_chunk.map_or(0, |d| d.as_millis()),
        result["timings"]["totalMs"],
    );

    let wrong = json!({
        "customEngineServer": url,
        "customEngineRequestFormat": {"customFields": {"model": "demo-model", "stream": true}},
        "customEngineResponseFormat": "$.choices[0].message.delta.content",
    });
    println!(
        "\n→ llm/complete with the JsonPath from AutoDev's own docs, which is wrong for streams:"
    );
    let reply = ide
        .call(
            "llm/complete",
            json!({"settings": wrong, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await?;
    let err = &reply["error"];
    let data = &err["data"];
    let kind = data["kind"].as_str().unwrap_or("?");
    let said = match kind {
        "no_match" => format!(
            "the JsonPath `{}` matched nothing in the {} events the server sent",
            data["path"].as_str().unwrap_or("?"),
            data["events"]
        ),
        _ => err["message"].as_str().unwrap_or("?").to_owned(),
    };
    println!("← error {} ({kind}): {said}", err["code"]);
    if let Some(first) = data["sample"].get(0).and_then(Value::as_str) {
        println!("  the first event was: {}", preview(first, PREVIEW_CHARS));
    }
    if let Some(fix) = data["suggestions"].get(0) {
        println!(
            "  suggested fix: {} (would have given \"{}\")",
            fix["path"].as_str().unwrap_or("?"),
            preview(fix["sampleText"].as_str().unwrap_or(""), PREVIEW_CHARS)
        );
    }

    ide.call("shutdown", Value::Null).await?;
    ide.notify("exit", Value::Null).await?;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .map_err(|_| "the sidecar did not exit")?
        .map_err(|e| e.to_string())?;
    println!("\nsidecar exited with {status}");
    Ok(())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The IDE side of the conversation: a minimal JSON-RPC client.
struct Ide {
    writer: FramedWrite<ChildStdin, FrameCodec>,
    reader: FramedRead<ChildStdout, FrameCodec>,
    next_id: u64,
}

impl Ide {
    fn new(stdin: ChildStdin, stdout: ChildStdout) -> Self {
        Ide {
            writer: FramedWrite::new(stdin, FrameCodec::default()),
            reader: FramedRead::new(stdout, FrameCodec::default()),
            next_id: 1,
        }
    }

    async fn write(&mut self, message: Value) -> Result<(), String> {
        let bytes = Bytes::from(serde_json::to_vec(&message).map_err(|e| e.to_string())?);
        self.writer
            .send(bytes)
            .await
            .map_err(|e| format!("cannot write to the sidecar: {e}"))
    }

    async fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        self.write(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.call_streaming(method, params, |_| {}).await
    }

    /// Sends a request; `on_chunk` sees every `llm/chunk` text until the response.
    async fn call_streaming(
        &mut self,
        method: &str,
        params: Value,
        mut on_chunk: impl FnMut(&str),
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.reader.next())
                .await
                .map_err(|_| "no answer from the sidecar within 30 s")?
                .ok_or("the sidecar closed its stdout")?
                .map_err(|e| e.to_string())?;
            let Frame::Message(body) = frame else {
                return Err("the sidecar wrote a malformed frame".into());
            };
            let message: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if message["method"] == "llm/chunk" {
                on_chunk(message["params"]["text"].as_str().unwrap_or(""));
            } else if message["id"] == json!(id) {
                return Ok(message);
            }
        }
    }
}

/// Accepts connections and answers each POST with a streamed answer.
async fn serve_model(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if parsed["messages"].as_array().is_none_or(|m| m.is_empty()) {
        let error = json!({"error": {"message": "`messages` is required", "type": "invalid_request_error"}});
        return Ok(Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(error.to_string())).boxed())
            .expect("valid response"));
    }
    let model = parsed["model"].as_str().unwrap_or("demo-model").to_owned();
    let words: Vec<String> = ANSWER.split_inclusive(' ').map(str::to_owned).collect();
    let count = words.len();
    let events = futures::stream::iter(words.into_iter().enumerate()).then(move |(i, word)| {
        let model = model.clone();
        async move {
            tokio::time::sleep(WORD_DELAY).await;
            let mut event = json!({
                "id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]
            });
            if i == 0 {
                event["choices"][0]["delta"]["role"] = json!("assistant");
            }
            let mut text = format!("data: {event}\n\n");
            if i + 1 == count {
                let last = json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count}});
                text.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
            }
            Ok::<_, Infallible>(BodyFrame::data(Bytes::from(text)))
        }
    });
    Ok(Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(events)))
        .expect("valid response"))
}
