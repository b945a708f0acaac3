//! `llm/inlineCompletion`: code completion for clients that do not sync
//! documents. Params `{prefix, suffix, language?, path?, invoked?,
//! settings? | llm? | modelType? | profile?, trace?, streamId?}`; result
//! `{items: [{insertText}], timings: {firstByteMs, totalMs}, cached}`.
//! Settings come from [`Catalog::resolve_completion`]; errors are those of
//! `llm/complete`. Requests with the same `path` (or all without one) are
//! one document: a newer one cancels the running one, which answers `-32800`.

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::params::{Named, params_object, take_trace};
use super::{Methods, failure_error, invalid_params, trace};
use crate::completion::InlineInput;
use crate::engine::{FailureKind, TraceSink};
use crate::rpc::message::response;
use crate::rpc::outbox::Outbox;
use crate::settings::Problem;

/// The document key of requests that give no `path`.
const NO_PATH: &str = "";

impl Methods {
    pub(super) async fn inline_completion(
        &self,
        id: &Value,
        params: Value,
        tx: &Outbox,
        cancel: &CancellationToken,
    ) -> Bytes {
        let mut problems = Vec::new();
        let Some(mut params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let input = take_input(&mut params, &mut problems);
        let traced = take_trace(&mut params, &mut problems);
        let stream_id = params
            .remove("streamId")
            .filter(|v| v.is_string() || v.is_number());
        let named = Named::take(&mut params, &mut problems);
        let settings = if problems.is_empty() {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            match catalog.resolve_completion(named.selection()) {
                Ok(settings) => Some(settings),
                Err(mut found) => {
                    problems.append(&mut found);
                    None
                }
            }
        } else {
            None
        };
        let (Some(settings), Some(input)) = (settings.filter(|_| problems.is_empty()), input)
        else {
            return invalid_params(&problems).frame(id);
        };
        let pending = traced.then(trace::Pending::default);
        let mut tracer = pending
            .clone()
            .map(|pending| trace::TraceNotifier::new(stream_id, settings.secrets.clone(), pending));
        let trace_sink = tracer.as_mut().map(|t| t as &mut dyn TraceSink);
        let document = input.path.clone().unwrap_or_else(|| NO_PATH.to_owned());
        let result = self
            .completer
            .complete(
                &self.engine,
                &settings,
                &input,
                &document,
                cancel,
                trace_sink,
            )
            .await;
        if let Some(pending) = &pending {
            pending.flush(tx);
        }
        match result {
            Ok(answer) => {
                tracing::info!(
                    items = answer.items.len(),
                    cached = answer.cached,
                    total_ms = answer.timings.total_ms,
                    "inline completion finished"
                );
                response(id, &answer)
            }
            Err(failure) => {
                let mut error = failure_error(&failure);
                if matches!(failure.kind, FailureKind::Cancelled) && !cancel.is_cancelled() {
                    error.message = format!(
                        "superseded by a newer llm/inlineCompletion for the same document ({})",
                        if document.is_empty() {
                            "no path"
                        } else {
                            &document
                        }
                    );
                    error.data["reason"] = Value::from("superseded");
                }
                error.frame(id)
            }
        }
    }
}

/// Reads `prefix`, `suffix`, `language`, `path` and `invoked`.
fn take_input(params: &mut Map<String, Value>, problems: &mut Vec<Problem>) -> Option<InlineInput> {
    let mut text = |key: &str, required: bool| match params.remove(key) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) if !required => None,
        None | Some(Value::Null) => {
            problems.push(Problem::new(
                key,
                "is required: the document's text before the cursor",
            ));
            None
        }
        Some(_) => {
            problems.push(Problem::new(key, "must be a string"));
            None
        }
    };
    let prefix = text("prefix", true);
    let suffix = text("suffix", false).unwrap_or_default();
    let language = text("language", false);
    let path = text("path", false);
    let invoked = match params.remove("invoked") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            problems.push(Problem::new("invoked", "must be true or false"));
            false
        }
    };
    Some(InlineInput {
        prefix: prefix?,
        suffix,
        language,
        path,
        invoked,
    })
}
