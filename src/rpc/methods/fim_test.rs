//! `llm/testConnection` for code-completion settings: a FIM request with a
//! tiny prefix and suffix ([`crate::detect::fim`]) instead of a chat message.
//!
//! Taken when the params say `"completion": true` or `"modelType":
//! "Completion"`, or when the settings name a completion endpoint
//! (`/v1/completions`, `/infill`, `/api/generate`, …) or a FIM template;
//! `"completion": false` keeps the chat test.

use crate::rpc::outbox::Outbox;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::params::{Named, params_object, take_trace};
use super::{Methods, failure_error, invalid_params, trace};
use crate::detect::fim::{is_completion_settings, test_completion};
use crate::engine::{FailureKind, TraceSink};
use crate::rpc::message::response;
use crate::settings::Problem;

impl Methods {
    /// The answer of a completion test, or `None` when `params` ask for the
    /// chat test.
    pub(super) async fn test_completion_if_asked(
        &self,
        id: &Value,
        params: &Value,
        tx: &Outbox,
        cancel: &CancellationToken,
    ) -> Option<Bytes> {
        let mut problems = Vec::new();
        let mut params = params_object(params.clone(), &mut problems)?;
        let asked = match params.remove("completion") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(on)) => Some(on),
            Some(_) => {
                problems.push(Problem::new("completion", "must be true or false"));
                Some(true)
            }
        };
        if asked == Some(false) {
            return None;
        }
        let traced = take_trace(&mut params, &mut problems);
        let stream_id = params
            .remove("streamId")
            .filter(|v| v.is_string() || v.is_number());
        let named = Named::take(&mut params, &mut problems);
        let selection = named.selection();
        let by_type = selection
            .model_type
            .is_some_and(|t| t.eq_ignore_ascii_case("completion"));
        let resolved = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            if asked == Some(true) || by_type {
                catalog.resolve_completion(selection)
            } else {
                match catalog.resolve(selection) {
                    Ok(settings) if is_completion_settings(&settings) => Ok(settings),
                    // The chat test reports these (or tests chat settings).
                    _ => return None,
                }
            }
        };
        let settings = match resolved {
            Ok(settings) if problems.is_empty() => settings,
            Ok(_) => return Some(report_error(id, invalid_params(&problems).to_json())),
            Err(mut found) => {
                problems.append(&mut found);
                return Some(report_error(id, invalid_params(&problems).to_json()));
            }
        };
        let pending = traced.then(trace::Pending::default);
        let mut tracer = pending
            .clone()
            .map(|pending| trace::TraceNotifier::new(stream_id, settings.secrets.clone(), pending));
        let trace_sink = tracer.as_mut().map(|t| t as &mut dyn TraceSink);
        let (report, failure) =
            test_completion(&self.completer, &self.engine, &settings, cancel, trace_sink).await;
        if let Some(pending) = &pending {
            pending.flush(tx);
        }
        let mut report = serde_json::to_value(&report).unwrap_or_default();
        if let Some(failure) = failure {
            if cancel.is_cancelled() && matches!(failure.kind, FailureKind::Cancelled) {
                return Some(failure_error(&failure).frame(id));
            }
            report["error"] = failure_error(&failure).to_json();
        }
        Some(response(id, &report))
    }
}

/// A completion test that could not start.
fn report_error(id: &Value, error: Value) -> Bytes {
    let report = json!({"ok": false, "kind": "completion", "sampleText": "", "empty": false,
        "firstByteMs": null, "totalMs": null, "error": error});
    response(id, &report)
}
