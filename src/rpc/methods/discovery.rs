//! `llm/detect` and `llm/models`: finding out what a server speaks and which
//! models it has, over [`crate::detect`].

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::super::message::{code, response};
use super::{Methods, Named, RpcError, failure_error, invalid_params, params_object};
use crate::detect;
use crate::engine::{Failure, FailureKind};

impl Methods {
    /// `llm/detect {url, token?, headers?, timeouts?, maxRequests?}`.
    pub(super) async fn detect(
        &self,
        id: &Value,
        params: Value,
        cancel: &CancellationToken,
    ) -> Bytes {
        let mut problems = Vec::new();
        let Some(params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let options = match detect::parse_options(&params) {
            Ok(options) => options,
            Err(problems) => return invalid_params(&problems).frame(id),
        };
        match detect::detect(&self.engine, &options, cancel).await {
            Ok(detection) => {
                tracing::info!(
                    candidates = detection.candidates.len(),
                    requests = detection.tried.len(),
                    "detection finished"
                );
                response(id, &detection)
            }
            Err(detect::Cancelled) => {
                failure_error(&Failure::new(FailureKind::Cancelled)).frame(id)
            }
        }
    }

    /// `llm/models {settings}` → `{models}`.
    pub(super) async fn models(
        &self,
        id: &Value,
        params: Value,
        cancel: &CancellationToken,
    ) -> Bytes {
        let mut problems = Vec::new();
        let Some(mut params) = params_object(params, &mut problems) else {
            return invalid_params(&problems).frame(id);
        };
        let named = Named::take(&mut params, &mut problems);
        let settings = self.resolve(&named, &mut problems);
        let Some(settings) = settings.filter(|_| problems.is_empty()) else {
            return invalid_params(&problems).frame(id);
        };
        let settings = match self.engine.with_keys(&settings, cancel).await {
            Ok(resolved) => resolved.unwrap_or(settings),
            Err(failure) => return failure_error(&failure).frame(id),
        };
        match detect::models(&self.engine, &settings, cancel).await {
            Ok(models) => response(id, &json!({"models": models})),
            Err(detect::NoModels::Cancelled) => {
                failure_error(&Failure::new(FailureKind::Cancelled)).frame(id)
            }
            Err(detect::NoModels::NotListed(tried)) => {
                let mut data = Map::new();
                data.insert("kind".into(), Value::from("no_model_list"));
                data.insert(
                    "tried".into(),
                    serde_json::to_value(&tried).unwrap_or_default(),
                );
                RpcError {
                    code: code::REQUEST_FAILED,
                    message: "the server lists no models at /v1/models, /models or /api/tags"
                        .into(),
                    data: Value::Object(data),
                }
                .frame(id)
            }
        }
    }
}
