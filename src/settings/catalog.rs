//! What the IDE configures once and requests refer to by name: the
//! `customLlms` list and named `profiles`, and the resolution of one request's
//! settings from them.
//!
//! A request's settings are layered, later layers winning key by key:
//! the preset named by any layer < the `customLlms` entry picked by `llm` or
//! `modelType` < the `profile` < the inline `settings`. Each layer may use any
//! accepted form ([`super::forms`]); the result is validated once.

use serde_json::{Map, Value, json};

use super::forms::{Origins, canonical, merge};
use super::{Problem, SERVER, Settings};
use crate::presets;

/// The configured `customLlms` entries and profiles.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    custom_llms: Vec<Map<String, Value>>,
    profiles: Map<String, Value>,
    /// The configured `completion`: settings, `{"llm": name}` or `{"profile": name}`.
    completion: Option<Value>,
}

/// What one request names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub settings: Option<&'a Value>,
    pub llm: Option<&'a str>,
    pub model_type: Option<&'a str>,
    pub profile: Option<&'a str>,
}

/// The key that names a preset.
pub const PRESET: &str = "preset";
/// The `modelType` of the entry code completion uses.
pub const COMPLETION_TYPE: &str = "Completion";
/// The `modelType` of the entry a chat request without a selection uses.
pub const DEFAULT_TYPE: &str = "Default";

impl Catalog {
    /// Replaces what `config` names (`customLlms`, `profiles`); returns the
    /// problems found in it. `customLlms` may be an array or the JSON string
    /// AutoDev stores.
    pub fn update(&mut self, config: &Value) -> Vec<Problem> {
        let mut problems = Vec::new();
        let Some(config) = config.as_object() else {
            if !config.is_null() {
                problems.push(Problem::new(
                    "configuration",
                    "must be an object {\"customLlms\"?: [...], \"profiles\"?: {...}}",
                ));
            }
            return problems;
        };
        if let Some(list) = config.get("customLlms") {
            let parsed;
            let list = match list {
                Value::String(s) if s.trim().is_empty() => Some(&Value::Array(Vec::new())),
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(v) => {
                        parsed = v;
                        Some(&parsed)
                    }
                    Err(e) => {
                        problems.push(Problem::new(
                            "customLlms",
                            format!("is not valid JSON: {e}"),
                        ));
                        // Unusable: the entries configured before stay.
                        None
                    }
                },
                other => Some(other),
            };
            match list {
                None => {}
                Some(Value::Array(items)) => {
                    let mut entries = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        match item.as_object() {
                            Some(entry)
                                if entry
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|n| !n.trim().is_empty()) =>
                            {
                                entries.push(entry.clone())
                            }
                            Some(_) => problems.push(Problem::new(
                                format!("customLlms[{i}].name"),
                                "is required: the name requests use to pick this entry",
                            )),
                            None => problems.push(Problem::new(
                                format!("customLlms[{i}]"),
                                "must be an object",
                            )),
                        }
                    }
                    self.custom_llms = entries;
                }
                Some(Value::Null) => self.custom_llms.clear(),
                Some(_) => problems.push(Problem::new("customLlms", "must be an array of entries")),
            }
        }
        match config.get("completion") {
            None => {}
            Some(Value::Null) => self.completion = None,
            Some(value @ Value::Object(_)) => self.completion = Some(value.clone()),
            Some(_) => problems.push(Problem::new(
                "completion",
                "must be an object: code completion settings, {\"llm\": \"<customLlms name>\"} or {\"profile\": \"<name>\"}",
            )),
        }
        match config.get("profiles") {
            None => {}
            Some(Value::Object(profiles)) => self.profiles = profiles.clone(),
            Some(Value::Null) => self.profiles.clear(),
            Some(_) => problems.push(Problem::new(
                "profiles",
                "must be an object {name: settings}",
            )),
        }
        if config.contains_key("customLlms") {
            problems.extend(self.check_entries());
        }
        if config.contains_key("completion") && self.completion.is_some() {
            problems.extend(
                self.resolve_configured_completion()
                    .err()
                    .unwrap_or_default(),
            );
        }
        problems
    }

    /// The validated settings of one code completion: the request's own
    /// selection; else the `customLlms` entry whose `modelType` is
    /// `Completion`; else the configured `completion`.
    pub fn resolve_completion(&self, selection: Selection<'_>) -> Result<Settings, Vec<Problem>> {
        let named = selection.settings.is_some_and(|s| !s.is_null())
            || selection.llm.is_some()
            || selection.model_type.is_some()
            || selection.profile.is_some();
        if named {
            return self.resolve(selection);
        }
        if self.entry_of_type(COMPLETION_TYPE).is_some() {
            return self.resolve(Selection {
                model_type: Some(COMPLETION_TYPE),
                ..Selection::default()
            });
        }
        self.resolve_configured_completion()
    }

    /// The configured `completion` resolved; a problem saying how to configure one without it.
    fn resolve_configured_completion(&self) -> Result<Settings, Vec<Problem>> {
        let Some(completion) = &self.completion else {
            return Err(vec![Problem::new(
                "settings",
                "no code completion settings are configured: give `settings` (e.g. {\"preset\": \"ollama-fim\"}) or name one with `llm`, `modelType` or `profile`; or configure them once, as a customLlms entry with \"modelType\": \"Completion\", or as `completion` (settings, {\"llm\": \"<customLlms name>\"} or {\"profile\": \"<name>\"}) in initializationOptions or workspace/didChangeConfiguration",
            )]);
        };
        // `{"llm": name}` / `{"profile": name}`, with any other keys layered over it.
        let mut rest = completion.as_object().cloned().unwrap_or_default();
        let llm = rest.remove("llm");
        let profile = rest.remove("profile");
        let rest = (!rest.is_empty()).then_some(Value::Object(rest));
        // Problems name the configured `completion`, not the request.
        self.resolve(Selection {
            settings: rest.as_ref(),
            llm: llm.as_ref().and_then(Value::as_str),
            profile: profile.as_ref().and_then(Value::as_str),
            model_type: None,
        })
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|mut problem| {
                    problem.field = format!("completion.{}", problem.field);
                    problem
                })
                .collect()
        })
    }

    /// Every problem of every entry, found now rather than when a request
    /// first picks the entry; fields are named `customLlms[<name>].<key>`.
    fn check_entries(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for entry in &self.custom_llms {
            let Some(name) = entry.get("name").and_then(Value::as_str) else {
                continue;
            };
            let selection = Selection {
                llm: Some(name),
                ..Selection::default()
            };
            if let Err(found) = self.resolve(selection) {
                problems.extend(found.into_iter().map(|p| {
                    Problem::new(
                        format!("customLlms[{name}].{}", p.field),
                        format!("entry `{name}`: {}", p.message),
                    )
                }));
            }
        }
        problems
    }

    /// A short description of what is configured, for `initialize`.
    pub fn summary(&self) -> Value {
        let llms: Vec<Value> = self
            .custom_llms
            .iter()
            .map(|e| json!({"name": e.get("name"), "modelType": e.get("modelType").cloned().unwrap_or(Value::from("Others"))}))
            .collect();
        json!({"customLlms": llms, "profiles": self.profiles.keys().collect::<Vec<_>>(), "completion": self.completion.is_some()})
    }

    /// The validated settings for one request.
    pub fn resolve(&self, selection: Selection<'_>) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut merged = Map::new();
        let mut origins = Origins::default();
        let mut any = false;
        let mut layer = |value: &Value, problems: &mut Vec<Problem>| {
            let (map, layer_origins) = canonical(value, problems);
            origins.layer(map.keys().cloned(), layer_origins);
            merge(&mut merged, map);
        };

        let entry = match (selection.llm, selection.model_type) {
            (Some(name), _) => Some(self.entry_named(name).ok_or_else(|| {
                Problem::new(
                    "llm",
                    format!(
                        "no customLlms entry is named `{name}`; {}",
                        self.known_names()
                    ),
                )
            })),
            (None, Some(model_type)) => Some(self.entry_of_type(model_type).ok_or_else(|| {
                Problem::new(
                    "modelType",
                    format!(
                        "no customLlms entry has modelType `{model_type}`; {}",
                        self.known_types()
                    ),
                )
            })),
            // As in AutoDev: with customLlms configured, a request that names
            // nothing uses the entry whose modelType is Default.
            (None, None)
                if selection.settings.is_none_or(Value::is_null) && selection.profile.is_none() =>
            {
                self.entry_of_type(DEFAULT_TYPE).map(Ok)
            }
            (None, None) => None,
        };
        match entry {
            Some(Ok(entry)) => {
                any = true;
                layer(&Value::Object(entry.clone()), &mut problems);
            }
            Some(Err(problem)) => problems.push(problem),
            None => {}
        }
        if let Some(name) = selection.profile {
            match self.profiles.get(name) {
                Some(profile) => {
                    any = true;
                    layer(profile, &mut problems);
                }
                None => {
                    let known: Vec<&String> = self.profiles.keys().collect();
                    problems.push(Problem::new(
                        "profile",
                        format!("no profile is named `{name}`; configured profiles: {known:?}"),
                    ));
                }
            }
        }
        if let Some(settings) = selection.settings.filter(|s| !s.is_null()) {
            any = true;
            layer(settings, &mut problems);
        }
        if !any {
            if problems.is_empty() {
                problems.push(Problem::new(
                    "settings",
                    "is required: give `settings` (at least customEngineServer or a preset), or name a customLlms entry with `llm` or `modelType`, or a `profile`",
                ));
            }
            return Err(problems);
        }
        apply_preset(&mut merged, &mut problems);
        match Settings::from_canonical(&merged) {
            Ok(mut settings) if problems.is_empty() => {
                origins.translate(&mut settings.warnings);
                for field in settings.key_sources.fields_mut() {
                    *field = origins.user_field(field);
                }
                Ok(settings)
            }
            Ok(_) => Err(problems),
            Err(mut found) => {
                origins.translate(&mut found);
                problems.extend(found);
                Err(problems)
            }
        }
    }

    fn entry_named(&self, name: &str) -> Option<&Map<String, Value>> {
        fn named(entry: &Map<String, Value>) -> Option<&str> {
            entry.get("name").and_then(Value::as_str).map(str::trim)
        }
        self.custom_llms
            .iter()
            .find(|e| named(e) == Some(name.trim()))
            .or_else(|| {
                self.custom_llms
                    .iter()
                    .find(|e| named(e).is_some_and(|n| n.eq_ignore_ascii_case(name.trim())))
            })
    }

    fn entry_of_type(&self, model_type: &str) -> Option<&Map<String, Value>> {
        self.custom_llms.iter().find(|e| {
            let kind = e
                .get("modelType")
                .and_then(Value::as_str)
                .unwrap_or("Others");
            kind.eq_ignore_ascii_case(model_type.trim())
        })
    }

    fn known_names(&self) -> String {
        let names: Vec<&str> = self
            .custom_llms
            .iter()
            .filter_map(|e| e.get("name").and_then(Value::as_str))
            .collect();
        if names.is_empty() {
            "no customLlms are configured (send them in initializationOptions.customLlms or workspace/didChangeConfiguration)".to_owned()
        } else {
            format!("configured entries: {names:?}")
        }
    }

    fn known_types(&self) -> String {
        let mut types: Vec<&str> = self
            .custom_llms
            .iter()
            .map(|e| {
                e.get("modelType")
                    .and_then(Value::as_str)
                    .unwrap_or("Others")
            })
            .collect();
        types.dedup();
        if types.is_empty() {
            self.known_names()
        } else {
            format!("configured types: {types:?}")
        }
    }
}

/// Puts the named preset under everything else.
fn apply_preset(merged: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let Some(name) = merged.remove(PRESET) else {
        return;
    };
    let Some(name) = name.as_str().map(str::trim).filter(|n| !n.is_empty()) else {
        if !name.is_null() {
            problems.push(Problem::new(
                PRESET,
                "must be the name of a preset, e.g. \"deepseek\"",
            ));
        }
        return;
    };
    let Some(preset) = presets::find(name) else {
        let known: Vec<&str> = presets::all().iter().map(|p| p.name).collect();
        problems.push(Problem::new(
            PRESET,
            format!(
                "unknown preset `{name}`; built-in presets: {}",
                known.join(", ")
            ),
        ));
        return;
    };
    let mut found = Vec::new();
    let (mut base, _) = canonical(&preset.settings, &mut found);
    debug_assert!(
        found.is_empty(),
        "preset {} is malformed: {found:?}",
        preset.name
    );
    merge(&mut base, std::mem::take(merged));
    if let (Some(hint), None) = (preset.url_hint, base.get(SERVER)) {
        problems.push(Problem::new(
            SERVER,
            format!(
                "is required with preset `{}`: fill in your endpoint, {hint}",
                preset.name
            ),
        ));
    }
    *merged = base;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        let problems = c.update(&json!({
            "customLlms": [
                {"name": "Plan", "url": "http://plan/", "auth": {"type": "Bearer", "token": "t1"}, "requestFormat": "", "responseFormat": "", "modelType": "Plan"},
                {"name": "Fast", "url": "http://fast/", "auth": {"type": "Bearer", "token": ""}, "requestFormat": "{\"customFields\":{\"model\":\"f\"}}", "responseFormat": "$.x", "modelType": "FastApply"}
            ],
            "profiles": {"work": {"customEngineServer": "http://work/", "customEngineResponseFormat": "$.w"}}
        }));
        assert!(problems.is_empty(), "{problems:?}");
        c
    }

    #[test]
    fn picks_entries_by_name_and_type() {
        let c = catalog();
        let s = c
            .resolve(Selection {
                llm: Some("Fast"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.url.as_str(), "http://fast/");
        assert_eq!(s.body.custom_fields["model"], "f");
        let s = c
            .resolve(Selection {
                model_type: Some("plan"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.token.as_deref(), Some("t1"));
        let p = c
            .resolve(Selection {
                llm: Some("Nope"),
                ..Default::default()
            })
            .unwrap_err();
        assert!(p[0].message.contains("Plan"), "{p:?}");
    }

    #[test]
    fn inline_overrides_profile() {
        let c = catalog();
        let inline = json!({"customEngineResponseFormat": "$.inline"});
        let s = c
            .resolve(Selection {
                profile: Some("work"),
                settings: Some(&inline),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.url.as_str(), "http://work/");
        assert_eq!(s.content_path.unwrap().source, "$.inline");
    }

    #[test]
    fn entry_problems_name_entry_keys() {
        let mut c = Catalog::default();
        c.update(&json!({"customLlms": "[{\"name\": \"bad\", \"url\": \"ftp://x\", \"auth\": {\"type\": \"Bearer\", \"token\": \"\"}, \"requestFormat\": \"\", \"responseFormat\": \"$.[\"}]"}));
        let p = c
            .resolve(Selection {
                llm: Some("bad"),
                ..Default::default()
            })
            .unwrap_err();
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["url", "responseFormat"], "{p:?}");
    }

    #[test]
    fn entries_are_checked_when_configured() {
        let mut c = Catalog::default();
        let problems = c.update(&json!({"customLlms": [
            {"name": "ok", "url": "http://h/", "auth": {"type": "Bearer", "token": ""}, "requestFormat": "", "responseFormat": ""},
            {"name": "bad", "url": "ftp://h/", "auth": {"type": "Bearer", "token": ""}, "requestFormat": "", "responseFormat": "$.["}
        ]}));
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["customLlms[bad].url", "customLlms[bad].responseFormat"]
        );
    }

    #[test]
    fn a_bad_custom_llms_string_keeps_the_profiles_beside_it() {
        let mut c = catalog();
        let problems = c.update(&json!({"customLlms": "[not json", "profiles": {"new": {"customEngineServer": "http://new/"}}}));
        assert_eq!(problems.len(), 1);
        assert!(
            c.resolve(Selection {
                profile: Some("new"),
                ..Default::default()
            })
            .is_ok()
        );
        assert!(
            c.resolve(Selection {
                llm: Some("Plan"),
                ..Default::default()
            })
            .is_ok(),
            "earlier entries stay"
        );
    }

    #[test]
    fn an_inline_problem_names_the_inline_key() {
        let c = catalog();
        let inline = json!({"customEngineServer": "ftp://x/"});
        let p = c
            .resolve(Selection {
                llm: Some("Plan"),
                settings: Some(&inline),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(p[0].field, "customEngineServer");
    }

    #[test]
    fn completion_uses_the_selection_then_the_completion_entry_then_the_configuration() {
        let mut c = catalog();
        let p = c.resolve_completion(Selection::default()).unwrap_err();
        assert_eq!(p[0].field, "settings");
        assert!(p[0].message.contains("modelType"), "{}", p[0].message);
        let problems =
            c.update(&json!({"completion": {"profile": "work", "fim": {"template": "qwen"}}}));
        assert!(problems.is_empty(), "{problems:?}");
        let s = c.resolve_completion(Selection::default()).unwrap();
        assert_eq!(s.url.as_str(), "http://work/");
        assert!(s.fim.template.is_some());
        let problems = c.update(&json!({"customLlms": [
            {"name": "Chat", "url": "http://chat/v1/chat/completions", "modelType": "Default"},
            {"name": "Coder", "url": "http://coder/v1/completions", "modelType": "Completion", "fim": {"template": "deepseek"}}
        ]}));
        assert!(problems.is_empty(), "{problems:?}");
        let s = c.resolve_completion(Selection::default()).unwrap();
        assert_eq!(s.url.as_str(), "http://coder/v1/completions");
        let s = c
            .resolve_completion(Selection {
                llm: Some("Chat"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.fim.mode, crate::settings::fim::FimMode::Chat);
        // Chat without a selection: the Default entry.
        let s = c.resolve(Selection::default()).unwrap();
        assert_eq!(s.url.as_str(), "http://chat/v1/chat/completions");
        // A broken configured completion is reported when it is configured.
        let problems = c.update(&json!({"completion": {"llm": "Nope"}}));
        assert_eq!(problems[0].field, "completion.llm", "{problems:?}");
    }

    #[test]
    fn nothing_named_is_a_problem() {
        let p = Catalog::default()
            .resolve(Selection::default())
            .unwrap_err();
        assert_eq!(p[0].field, "settings");
    }
}
