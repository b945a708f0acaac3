//! The server's own words: an error reported inside a 200 body, and the
//! message of an error document, quoted to the user as `providerMessage`.

use serde_json::Value;

/// The top-level `error` member when it is set (not null, false or empty).
pub(crate) fn top_level_error(value: &Value) -> Option<&Value> {
    let error = match value {
        Value::Array(items) => items.first()?.get("error")?,
        other => other.get("error")?,
    };
    match error {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        set => Some(set),
    }
}

/// The server's own words in an error document: `$.error.message`,
/// `$.error` (a string), `$.message` or `$.detail` (a string or a list of
/// messages, as FastAPI servers send).
pub fn provider_message(value: &Value) -> Option<String> {
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    text(value.pointer("/error/message"))
        .or_else(|| text(value.get("error")))
        .or_else(|| text(value.get("message")))
        .or_else(|| text(value.get("detail")))
        .or_else(|| text(value.pointer("/detail/0/msg")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages() {
        use serde_json::json;
        assert_eq!(
            provider_message(&json!({"error":{"message":"a"}})).as_deref(),
            Some("a")
        );
        assert_eq!(
            provider_message(&json!({"error":"b"})).as_deref(),
            Some("b")
        );
        assert_eq!(
            provider_message(&json!({"message":"c"})).as_deref(),
            Some("c")
        );
        assert_eq!(
            provider_message(&json!({"detail":"d"})).as_deref(),
            Some("d")
        );
        assert_eq!(
            provider_message(&json!([{"error":{"message":"e"}}])).as_deref(),
            Some("e")
        );
        assert_eq!(provider_message(&json!({"x":1})), None);
    }
}
