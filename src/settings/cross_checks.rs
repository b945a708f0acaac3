//! Checks that span several settings: `systemField` against the body it
//! writes into (a problem when the system prompt would be lost or would
//! overwrite a field), and the warnings, for settings that work but probably
//! not as meant (`n` > 1 read with a positional `[0]` path; `systemField`
//! beside a `fields` template, which sends only the last message).

use super::*;

/// The positional selection of the first choice, and its filter form.
const POSITIONAL: &str = "choices[0]";
const BY_INDEX: &str = "choices[?@.index==0]";

/// `systemField` must name a field of its own.
pub(super) fn check_system_field(body: &BodySpec, problems: &mut Vec<Problem>) {
    let Some(field) = body.system_field.as_deref() else {
        return;
    };
    if body.template.is_some() {
        return;
    }
    if field == "messages" {
        problems.push(Problem::new(
            SYSTEM_FIELD,
            "cannot be `messages`: that field holds the conversation, so the system prompt would be lost; name the field your server reads the system prompt from (Anthropic: `system`), or remove systemField to keep system messages in `messages`",
        ));
    } else if body.custom_fields.contains_key(field) {
        problems.push(Problem::new(
            SYSTEM_FIELD,
            format!(
                "`{field}` is also set in customFields: the system messages would replace customFields.{field}; remove one of them"
            ),
        ));
    }
}

/// The warnings of valid settings.
pub(super) fn warnings(
    body: &BodySpec,
    response_type: ResponseType,
    content_path: &Option<CompiledPath>,
    reasoning_path: &Option<CompiledPath>,
) -> Vec<Problem> {
    let mut warnings = Vec::new();
    if let Some(n) = choices_requested(body) {
        let default = match response_type {
            ResponseType::Sse | ResponseType::Ndjson => "$.choices[0].delta.content",
            ResponseType::Json => "$.choices[0].message.content",
        };
        for (field, path) in [
            (
                RESPONSE_FORMAT,
                content_path
                    .as_ref()
                    .map(|p| p.normalized.as_str())
                    .or(Some(default)),
            ),
            (
                REASONING_FORMAT,
                reasoning_path.as_ref().map(|p| p.normalized.as_str()),
            ),
        ] {
            let Some(path) = path.filter(|p| p.contains(POSITIONAL)) else {
                continue;
            };
            let shown = if content_path.is_none() && field == RESPONSE_FORMAT {
                format!("the default path `{path}`")
            } else {
                format!("`{path}`")
            };
            warnings.push(Problem::new(
                field,
                format!(
                    "customFields.n is {n}: the server streams {n} answers whose events are told apart by `index`, not by position, so {shown} reads pieces of every answer as one; select the first answer with a filter: `{}`",
                    path.replace(POSITIONAL, BY_INDEX)
                ),
            ));
        }
    }
    if body.system_field.is_some() && body.template.is_some() {
        warnings.push(Problem::new(
            SYSTEM_FIELD,
            "is not used with a `fields` template: the template sends only the last message's text (`$content`), so system messages are not sent",
        ));
    }
    warnings
}

/// `n` from the body when it asks for more than one answer.
fn choices_requested(body: &BodySpec) -> Option<u64> {
    body.custom_fields
        .get("n")
        .or_else(|| body.template.as_ref().and_then(|t| t.get("n")))
        .and_then(serde_json::Value::as_u64)
        .filter(|n| *n > 1)
}
