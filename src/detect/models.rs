//! `llm/models`: the server's model list for settings, through the same
//! client and time limits as completions.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::shapes::{Bases, ModelList, Shape};
use super::{LIST_BYTES, QUOTE_BYTES, Tried};
use crate::engine::{Engine, FailureKind};
use crate::request;
use crate::settings::Settings;

/// Why there is no model list.
#[derive(Debug, Clone)]
pub enum NoModels {
    Cancelled,
    /// Each request and what came of it.
    NotListed(Vec<Tried>),
}

/// The probes' own limits, for `llm/models`.
const MODELS_TIME_LIMIT: Duration = Duration::from_secs(30);

/// The server's model list for `settings` (`llm/models`): `…/v1/models`,
/// then `…/models`, then Ollama's `…/api/tags` (Ollama's first when the URL
/// is Ollama's native API). `Err` holds each request and what came of it.
pub async fn models(
    engine: &Engine,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Result<Vec<String>, NoModels> {
    let bases = Bases::new(&settings.url);
    let mut urls = vec![bases.versioned_models()];
    urls.extend(bases.root_models());
    if bases.named == Some(Shape::Ollama) {
        urls.insert(0, bases.tags());
    } else {
        urls.push(bases.tags());
    }
    let mut bounded = settings.clone();
    bounded.timeouts.total = Some(
        settings
            .timeouts
            .total
            .map_or(MODELS_TIME_LIMIT, |t| t.min(MODELS_TIME_LIMIT)),
    );
    let headers = request::headers(settings);
    let mut tried = Vec::new();
    for url in urls {
        let request = format!("GET {}", crate::settings::display_url(&url));
        match engine
            .get(&bounded, url, headers.clone(), LIST_BYTES, cancel)
            .await
        {
            Ok(got) if (200..300).contains(&got.status) => {
                if let Some(list) = ModelList::parse(&got.body) {
                    return Ok(list.ids);
                }
                tried.push(Tried {
                    request,
                    status: Some(got.status),
                    outcome: "not a model list".into(),
                    accepted: false,
                });
            }
            Ok(got) => {
                let body = String::from_utf8_lossy(&got.body);
                let outcome = format!(
                    "HTTP {}: {}",
                    got.status,
                    settings.secrets.excerpt(body.trim(), QUOTE_BYTES, got.cut)
                );
                tried.push(Tried {
                    request,
                    status: Some(got.status),
                    outcome,
                    accepted: false,
                });
            }
            Err(failure) if matches!(failure.kind, FailureKind::Cancelled) => {
                return Err(NoModels::Cancelled);
            }
            Err(failure) => tried.push(Tried {
                request,
                status: None,
                outcome: failure.message(),
                accepted: false,
            }),
        }
    }
    Err(NoModels::NotListed(tried))
}
