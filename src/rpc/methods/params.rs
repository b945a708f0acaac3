//! The params of the methods, read field by field so that every problem is
//! reported at once: the settings a request names, `trace`, and the messages.

use serde_json::{Map, Value};

use crate::request::{Message, Role};
use crate::settings::{Problem, Selection};

/// What a request names to find its settings.
#[derive(Debug, Default)]
pub(super) struct Named {
    settings: Option<Value>,
    llm: Option<String>,
    model_type: Option<String>,
    profile: Option<String>,
}

impl Named {
    /// Takes `settings`, `llm`, `modelType` and `profile` out of `params`.
    pub(super) fn take(params: &mut Map<String, Value>, problems: &mut Vec<Problem>) -> Named {
        let mut text = |key: &str| match params.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                problems.push(Problem::new(key, "must be a string"));
                None
            }
        };
        let llm = text("llm");
        let model_type = text("modelType");
        let profile = text("profile");
        Named {
            settings: params.remove("settings"),
            llm,
            model_type,
            profile,
        }
    }

    pub(super) fn selection(&self) -> Selection<'_> {
        Selection {
            settings: self.settings.as_ref(),
            llm: self.llm.as_deref(),
            model_type: self.model_type.as_deref(),
            profile: self.profile.as_deref(),
        }
    }
}

/// The `trace` param: `true` sends `llm/trace` notifications.
pub(super) fn take_trace(params: &mut Map<String, Value>, problems: &mut Vec<Problem>) -> bool {
    match params.remove("trace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => on,
        Some(_) => {
            problems.push(Problem::new("trace", "must be true or false"));
            false
        }
    }
}

pub(super) fn params_object(
    params: Value,
    problems: &mut Vec<Problem>,
) -> Option<Map<String, Value>> {
    match params {
        Value::Object(map) => Some(map),
        Value::Null => Some(Map::new()),
        _ => {
            problems.push(Problem::new("params", "must be an object"));
            None
        }
    }
}

/// Checks the messages; every problem is reported.
pub(super) fn parse_messages(
    value: Option<Value>,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Vec<Message> {
    let list = match value {
        Some(Value::Array(list)) if !list.is_empty() => list,
        None | Some(Value::Null) if !required => return Vec::new(),
        Some(Value::Array(_)) => {
            problems.push(Problem::new("messages", "must hold at least one message"));
            return Vec::new();
        }
        None | Some(Value::Null) => {
            problems.push(Problem::new(
                "messages",
                "is required: [{\"role\": \"user\", \"content\": \"...\"}]",
            ));
            return Vec::new();
        }
        Some(_) => {
            problems.push(Problem::new(
                "messages",
                "must be an array of {role, content}",
            ));
            return Vec::new();
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let field = format!("messages[{i}]");
        let Value::Object(mut item) = item else {
            problems.push(Problem::new(
                field,
                "must be an object with `role` and `content`",
            ));
            continue;
        };
        let role_value = item.remove("role").unwrap_or(Value::Null);
        let role = serde_json::from_value::<Role>(role_value.clone());
        let content = item.remove("content");
        if role.is_err() {
            problems.push(Problem::new(
                format!("{field}.role"),
                format!("must be \"system\", \"user\" or \"assistant\", got {role_value}"),
            ));
        }
        let content = match content {
            Some(Value::String(text)) => Some(text),
            _ => {
                problems.push(Problem::new(format!("{field}.content"), "must be a string"));
                None
            }
        };
        if let (Ok(role), Some(content)) = (role, content) {
            messages.push(Message { role, content });
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_problems_are_all_reported() {
        let mut problems = Vec::new();
        let messages = parse_messages(
            Some(json!([{"role": "robot", "content": 1}, "x", {"role": "user", "content": "ok"}])),
            true,
            &mut problems,
        );
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["messages[0].role", "messages[0].content", "messages[1]"]
        );
        assert_eq!(messages.len(), 1);
    }
}
