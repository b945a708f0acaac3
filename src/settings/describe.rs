//! The settings as they will be used, shown back to the user: what
//! `llm/validateSettings` returns as `normalized`, in the canonical keys,
//! with every secret masked.

use std::time::Duration;

use serde_json::{Map, Value};

use super::*;
use crate::secrets::is_secret_name;

impl Settings {
    /// The settings as they will be used, in the canonical keys, with secrets
    /// masked: what `llm/validateSettings` returns as `normalized`.
    pub fn describe(&self) -> Value {
        let ms = |d: Duration| Value::from(d.as_millis() as u64);
        let headers: Map<String, Value> = self
            .custom_headers
            .iter()
            .map(|(name, value)| {
                let shown = match value.to_str() {
                    Ok(v) if is_secret_name(name.as_str()) => crate::secrets::mask(v),
                    Ok(v) => v.to_owned(),
                    Err(_) => "(not text)".to_owned(),
                };
                (name.as_str().to_owned(), Value::from(shown))
            })
            .collect();
        let mut format = Map::new();
        format.insert(
            "customFields".into(),
            Value::Object(self.body.custom_fields.clone()),
        );
        format.insert("customHeaders".into(), Value::Object(headers));
        format.insert(
            "messageKeys".into(),
            serde_json::json!({"role": self.body.role_key, "content": self.body.content_key}),
        );
        if let Some(template) = &self.body.template {
            format.insert("fields".into(), Value::Object(template.clone()));
        }
        let path = |p: &Option<CompiledPath>| {
            p.as_ref()
                .map_or(Value::Null, |p| Value::from(p.normalized.as_str()))
        };
        let mut shown = serde_json::json!({
            SERVER: self.secrets.scrub(self.url.as_str()),
            TOKEN: self.token.as_deref().map(crate::secrets::mask),
            RESPONSE_TYPE: self.response_type.as_str().to_uppercase(),
            RESPONSE_FORMAT: path(&self.content_path),
            REASONING_FORMAT: path(&self.reasoning_path),
            REQUEST_FORMAT: format,
            AUTH_TYPE: self.auth_scheme.as_str(),
            TOKEN_HEADER: self.token_header.as_ref().map_or("Authorization", |h| h.as_str()),
            SYSTEM_FIELD: self.body.system_field,
            TIMEOUTS: {
                "connectMs": ms(self.timeouts.connect),
                "firstByteMs": ms(self.timeouts.first_byte),
                "idleMs": ms(self.timeouts.idle),
                "totalMs": self.timeouts.total.map_or(Value::Null, ms),
            },
            RETRY: {
                "maxRetries": self.retry.max_retries,
                "initialBackoffMs": ms(self.retry.initial_backoff),
                "maxBackoffMs": ms(self.retry.max_backoff),
            },
            MAX_EVENT_BYTES: self.limits.max_event_bytes,
            MAX_RESPONSE_BYTES: self.limits.max_response_bytes,
            PROXY: match &self.network.proxy {
                Proxy::FromEnvironment => Value::Null,
                Proxy::Direct => Value::from(Proxy::DIRECT),
                Proxy::Url(url) => Value::from(self.secrets.scrub(url)),
            },
            CA_CERTIFICATES: self.network.ca_certificates.as_ref().map(|p| p.display().to_string()),
            fim::FIM: self.fim.describe(),
        });
        self.key_sources.describe_into(&mut shown);
        shown
    }
}
