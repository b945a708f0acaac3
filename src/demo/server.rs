//! The demo's embedded LLM server on 127.0.0.1. `/v1/completions` answers code
//! completions the way a local Qwen2.5-Coder server on OpenAI's legacy
//! completions route does, and remembers each exchange so the demo can show it;
//! every other path is an OpenAI-style chat route that streams its answer one
//! server-sent event per word.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame as BodyFrame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The path of the code completion route.
pub const FIM_PATH: &str = "/v1/completions";

/// What the embedded model "says", one SSE event per word.
const ANSWER: &str = "Hello from the embedded demo server! Each word you see arrived as its own \
server-sent event, was extracted with the JsonPath $.choices[0].delta.content, and reached this \
terminal as an llm/chunk notification while the server was still sending.";
const WORD_DELAY: Duration = Duration::from_millis(35);

/// What the embedded code model answers to any FIM prompt: the body of the
/// demo's function, then, as small models do, the closing brace that already
/// follows the cursor and the token that starts the next file of a repository
/// (`<|file_sep|>` is not among the four stop strings OpenAI's API accepts).
const FIM_ANSWER: &str =
    "let sum: f64 = xs.iter().sum();\n    sum / xs.len() as f64\n}<|file_sep|>";
/// How long the code model takes to answer, about what a small local model needs.
const FIM_DELAY: Duration = Duration::from_millis(80);

type Body = BoxBody<Bytes, Infallible>;

/// One request to the completion route and the text the model answered.
#[derive(Debug, Clone)]
pub struct FimExchange {
    pub body: Value,
    pub answer: String,
}

/// Every exchange on the completion route, in order.
pub type FimLog = Arc<Mutex<Vec<FimExchange>>>;

/// Accepts connections until the process ends; completion exchanges go to `log`.
pub async fn serve(listener: TcpListener, log: FimLog) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let log = log.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, log.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>, log: FimLog) -> Result<Response<Body>, Infallible> {
    let fim = request.uri().path() == FIM_PATH;
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if fim {
        return Ok(complete_code(parsed, &log).await);
    }
    if parsed["messages"].as_array().is_none_or(|m| m.is_empty()) {
        return Ok(bad_request("`messages` is required"));
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

/// Answers a FIM prompt in one JSON body, as llama.cpp and vLLM do without `stream`.
async fn complete_code(body: Value, log: &FimLog) -> Response<Body> {
    if !body["prompt"]
        .as_str()
        .is_some_and(|p| p.contains("<|fim_middle|>"))
    {
        return bad_request("`prompt` must be a Qwen FIM prompt ending in <|fim_middle|>");
    }
    tokio::time::sleep(FIM_DELAY).await;
    let model = body["model"].as_str().unwrap_or("demo-coder").to_owned();
    log.lock().expect("the log").push(FimExchange {
        body,
        answer: FIM_ANSWER.to_owned(),
    });
    let answer = json!({
        "id": "cmpl-demo", "object": "text_completion", "model": model,
        "choices": [{"index": 0, "text": FIM_ANSWER, "finish_reason": "stop"}]
    });
    json_response(200, &answer)
}

fn bad_request(message: &str) -> Response<Body> {
    json_response(
        400,
        &json!({"error": {"message": message, "type": "invalid_request_error"}}),
    )
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("valid response")
}
