//! Built-in server presets: named starting points for `settings`.
//!
//! `settings.preset` names one of these; every other settings key the user gives overrides the
//! preset's value. A preset is pure data, written with exactly the keys of a user's `settings`
//! (see `protocol/README.md`):
//!
//! - `customEngineServer`: the endpoint. Absent only when the URL must be completed by the user
//!   (Azure: resource and deployment), in which case [`Preset::url_hint`] shows its shape.
//! - `customEngineResponseType`: `SSE`, `JSON` or `NDJSON`.
//! - `customEngineResponseFormat` / `reasoningFormat`: JsonPaths for the answer and, where the
//!   server streams it separately, the reasoning text.
//! - `customEngineRequestFormat`: an object `{customFields, customHeaders}`. Every preset streams
//!   (`"stream": true`) and names a default `model`.
//! - `tokenHeader`: the header that carries `customEngineToken` as is (`api-key` for Azure,
//!   `x-api-key` for Anthropic). Absent means `Authorization: Bearer <token>`.
//! - `systemField`: the top-level body field that receives the text of the system messages,
//!   which are then left out of `messages` (Anthropic's `system`).
//!
//! The table is listed to clients by `llm/presets`. Provider facts come from the providers' API
//! documentation (the `docs` of each preset) and, where one exists, a recorded response in
//! `tests/fixtures` that `tests/presets.rs` replays through each preset.

use std::sync::LazyLock;

use serde_json::{Value, json};

/// One built-in preset.
#[derive(Debug)]
pub struct Preset {
    /// The name `settings.preset` takes, e.g. `deepseek`.
    pub name: &'static str,
    /// Other accepted spellings, e.g. `llamacpp` for `llama.cpp`.
    pub aliases: &'static [&'static str],
    /// One line for a settings UI.
    pub description: &'static str,
    /// For presets whose URL the user must complete: the URL's shape, with `{placeholders}`.
    /// Such presets have no `customEngineServer` in [`Preset::settings`].
    pub url_hint: Option<&'static str>,
    /// The provider's API documentation (shown to users, never fetched).
    pub docs: &'static str,
    /// The preset's values, under the same keys as a user's `settings`.
    pub settings: Value,
}

impl Preset {
    /// True for a code completion preset (its settings carry `fim`).
    pub fn is_completion(&self) -> bool {
        self.settings.get("fim").is_some()
    }

    /// The preset as `llm/presets` lists it:
    /// `{name, aliases, description, use: "chat"|"completion", urlHint?, docs, settings}`.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "name": self.name,
            "use": if self.is_completion() { "completion" } else { "chat" },
            "aliases": self.aliases,
            "description": self.description,
            "docs": self.docs,
            "settings": self.settings,
        });
        if let Some(hint) = self.url_hint {
            entry["urlHint"] = json!(hint);
        }
        entry
    }
}

/// Every built-in preset, in the order a settings UI should list them.
pub fn all() -> &'static [Preset] {
    &PRESETS
}

/// The preset called `name` (case-insensitive), by name or alias.
pub fn find(name: &str) -> Option<&'static Preset> {
    let name = name.trim();
    all().iter().find(|preset| {
        preset.name.eq_ignore_ascii_case(name)
            || preset.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The result of `llm/presets`: `{"presets": [...]}` (see [`Preset::to_json`]).
pub fn listing() -> Value {
    json!({"presets": all().iter().map(Preset::to_json).collect::<Vec<_>>()})
}

/// The answer text of OpenAI-style streams.
const DELTA_CONTENT: &str = "$.choices[0].delta.content";
/// The reasoning text of DeepSeek-style streams (DeepSeek, GLM, Qwen, Kimi, llama.cpp).
const DELTA_REASONING_CONTENT: &str = "$.choices[0].delta.reasoning_content";
/// The reasoning text of OpenRouter's and Ollama's OpenAI-style streams.
const DELTA_REASONING: &str = "$.choices[0].delta.reasoning";

static PRESETS: LazyLock<Vec<Preset>> = LazyLock::new(|| {
    vec![
        Preset {
            name: "openai",
            aliases: &[],
            description: "OpenAI Chat Completions (api.openai.com), with token usage",
            url_hint: None,
            docs: "https://platform.openai.com/docs/api-reference/chat/create",
            settings: json!({
                "customEngineServer": "https://api.openai.com/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {
                    "model": "gpt-4o-mini",
                    "stream": true,
                    "stream_options": {"include_usage": true},
                }},
            }),
        },
        Preset {
            name: "azure-openai",
            aliases: &["azure"],
            description: "Azure OpenAI: fill in your resource and deployment; the key goes in the api-key header",
            url_hint: Some(
                "https://{resource}.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
            ),
            docs: "https://learn.microsoft.com/en-us/azure/ai-services/openai/reference",
            settings: json!({
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "gpt-4o", "stream": true}},
                "tokenHeader": "api-key",
            }),
        },
        Preset {
            name: "anthropic",
            aliases: &["claude"],
            description: "Anthropic Messages API (x-api-key, anthropic-version; system prompt in `system`)",
            url_hint: None,
            docs: "https://docs.anthropic.com/en/api/messages-streaming",
            settings: json!({
                "customEngineServer": "https://api.anthropic.com/v1/messages",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": "$.delta.text",
                "reasoningFormat": "$.delta.thinking",
                "customEngineRequestFormat": {
                    "customFields": {
                        "model": "claude-sonnet-4-20250514",
                        "max_tokens": 4096,
                        "stream": true,
                    },
                    "customHeaders": {"anthropic-version": "2023-06-01"},
                },
                "tokenHeader": "x-api-key",
                "systemField": "system",
            }),
        },
        Preset {
            name: "gemini",
            aliases: &[],
            description: "Google Gemini through its OpenAI-compatible endpoint",
            url_hint: None,
            docs: "https://ai.google.dev/gemini-api/docs/openai",
            settings: json!({
                "customEngineServer": "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "gemini-2.5-flash", "stream": true}},
            }),
        },
        Preset {
            name: "deepseek",
            aliases: &[],
            description: "DeepSeek (api.deepseek.com); model deepseek-reasoner streams its reasoning",
            url_hint: None,
            docs: "https://api-docs.deepseek.com/api/create-chat-completion",
            settings: json!({
                "customEngineServer": "https://api.deepseek.com/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "deepseek-chat", "stream": true}},
            }),
        },
        Preset {
            name: "yi",
            aliases: &["01-ai", "lingyiwanwu"],
            description: "01.AI Yi (零一万物, api.lingyiwanwu.com)",
            url_hint: None,
            docs: "https://platform.lingyiwanwu.com/docs",
            settings: json!({
                // AutoDev's docs spell the host `lingyiwangwu`, which does not exist.
                "customEngineServer": "https://api.lingyiwanwu.com/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "yi-34b-chat", "stream": true}},
            }),
        },
        Preset {
            name: "glm",
            aliases: &["zhipu", "chatglm", "bigmodel"],
            description: "Zhipu GLM (open.bigmodel.cn), with its reasoning stream",
            url_hint: None,
            docs: "https://open.bigmodel.cn/dev/api",
            settings: json!({
                "customEngineServer": "https://open.bigmodel.cn/api/paas/v4/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "glm-4", "stream": true}},
            }),
        },
        Preset {
            name: "moonshot",
            aliases: &["kimi"],
            description: "Moonshot AI Kimi (api.moonshot.cn)",
            url_hint: None,
            docs: "https://platform.moonshot.cn/docs/api/chat",
            settings: json!({
                "customEngineServer": "https://api.moonshot.cn/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "moonshot-v1-8k", "stream": true}},
            }),
        },
        Preset {
            name: "qwen",
            aliases: &["dashscope"],
            description: "Alibaba Qwen, DashScope OpenAI-compatible mode (dashscope.aliyuncs.com)",
            url_hint: None,
            docs: "https://help.aliyun.com/zh/model-studio/compatibility-of-openai-with-dashscope",
            settings: json!({
                "customEngineServer": "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "qwen-plus", "stream": true}},
            }),
        },
        Preset {
            name: "openrouter",
            aliases: &[],
            description: "OpenRouter (openrouter.ai): many providers behind one key",
            url_hint: None,
            docs: "https://openrouter.ai/docs/api-reference/overview",
            settings: json!({
                "customEngineServer": "https://openrouter.ai/api/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING,
                "customEngineRequestFormat": {"customFields": {"model": "openai/gpt-4o-mini", "stream": true}},
            }),
        },
        Preset {
            name: "groq",
            aliases: &[],
            description: "Groq (api.groq.com, OpenAI-compatible)",
            url_hint: None,
            docs: "https://console.groq.com/docs/api-reference",
            settings: json!({
                "customEngineServer": "https://api.groq.com/openai/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "llama-3.3-70b-versatile", "stream": true}},
            }),
        },
        Preset {
            name: "mistral",
            aliases: &[],
            description: "Mistral AI (api.mistral.ai)",
            url_hint: None,
            docs: "https://docs.mistral.ai/api/",
            settings: json!({
                "customEngineServer": "https://api.mistral.ai/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "mistral-small-latest", "stream": true}},
            }),
        },
        Preset {
            name: "ollama",
            aliases: &[],
            description: "Ollama on this machine, native /api/chat (NDJSON), with thinking",
            url_hint: None,
            docs: "https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion",
            settings: json!({
                "customEngineServer": "http://localhost:11434/api/chat",
                "customEngineResponseType": "NDJSON",
                "customEngineResponseFormat": "$.message.content",
                "reasoningFormat": "$.message.thinking",
                "customEngineRequestFormat": {"customFields": {"model": "llama3.2", "stream": true}},
            }),
        },
        Preset {
            name: "ollama-openai",
            aliases: &[],
            description: "Ollama on this machine, OpenAI-compatible /v1 endpoint",
            url_hint: None,
            docs: "https://github.com/ollama/ollama/blob/main/docs/openai.md",
            settings: json!({
                "customEngineServer": "http://localhost:11434/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING,
                "customEngineRequestFormat": {"customFields": {"model": "llama3.2", "stream": true}},
            }),
        },
        Preset {
            name: "lm-studio",
            aliases: &["lmstudio"],
            description: "LM Studio's local server (set model to the loaded model's identifier)",
            url_hint: None,
            docs: "https://lmstudio.ai/docs/app/api/endpoints/openai",
            settings: json!({
                "customEngineServer": "http://localhost:1234/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "local-model", "stream": true}},
            }),
        },
        Preset {
            name: "vllm",
            aliases: &[],
            description: "vLLM's OpenAI-compatible server (set model to the served model name)",
            url_hint: None,
            docs: "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
            settings: json!({
                "customEngineServer": "http://localhost:8000/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "Qwen/Qwen2.5-1.5B-Instruct", "stream": true}},
            }),
        },
        Preset {
            name: "llama.cpp",
            aliases: &["llamacpp", "llama-cpp", "llama-server"],
            description: "llama.cpp's llama-server (serves the model it was started with), with reasoning",
            url_hint: None,
            docs: "https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md",
            settings: json!({
                "customEngineServer": "http://localhost:8080/v1/chat/completions",
                "customEngineResponseType": "SSE",
                "customEngineResponseFormat": DELTA_CONTENT,
                "reasoningFormat": DELTA_REASONING_CONTENT,
                "customEngineRequestFormat": {"customFields": {"model": "local-model", "stream": true}},
            }),
        },
        // Code completion (fill in the middle). Each answers with one JSON body: only the
        // final text is used, so streaming would add nothing.
        Preset {
            name: "ollama-fim",
            aliases: &[],
            description: "Code completion with Ollama /api/generate: prefix and suffix in `prompt`/`suffix` (the model's template must use .Suffix); with fim.template, a raw prompt",
            url_hint: None,
            docs: "https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-completion",
            settings: json!({
                "customEngineServer": "http://localhost:11434/api/generate",
                "customEngineResponseType": "JSON",
                "customEngineResponseFormat": "$.response",
                "customEngineRequestFormat": {"customFields": {"model": "qwen2.5-coder:1.5b-base", "stream": false}},
                "fim": {},
            }),
        },
        Preset {
            name: "llama.cpp-infill",
            aliases: &["llamacpp-infill", "llama-infill"],
            description: "Code completion with llama.cpp's /infill (input_prefix/input_suffix; the server applies the model's FIM tokens)",
            url_hint: None,
            docs: "https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md",
            settings: json!({
                "customEngineServer": "http://localhost:8080/infill",
                "customEngineResponseType": "JSON",
                "customEngineResponseFormat": "$.content",
                "customEngineRequestFormat": {"customFields": {"stream": false, "cache_prompt": true}},
                "fim": {},
            }),
        },
        Preset {
            name: "codestral-fim",
            aliases: &["mistral-fim"],
            description: "Code completion with Mistral's Codestral /v1/fim/completions (prompt and suffix)",
            url_hint: None,
            docs: "https://docs.mistral.ai/api/#tag/fim",
            settings: json!({
                "customEngineServer": "https://codestral.mistral.ai/v1/fim/completions",
                "customEngineResponseType": "JSON",
                "customEngineResponseFormat": "$.choices[0].message.content",
                "customEngineRequestFormat": {"customFields": {"model": "codestral-latest", "stream": false}},
                "fim": {},
            }),
        },
        Preset {
            name: "deepseek-fim",
            aliases: &[],
            description: "Code completion with DeepSeek's beta FIM completions (prompt and suffix)",
            url_hint: None,
            docs: "https://api-docs.deepseek.com/guides/fim_completion",
            settings: json!({
                "customEngineServer": "https://api.deepseek.com/beta/completions",
                "customEngineResponseType": "JSON",
                "customEngineResponseFormat": "$.choices[0].text",
                "customEngineRequestFormat": {"customFields": {"model": "deepseek-chat", "stream": false}},
                "fim": {},
            }),
        },
        Preset {
            name: "openai-completions",
            aliases: &[],
            description: "Code completion with any OpenAI-style /v1/completions server (llama.cpp, vLLM, LM Studio) and a FIM template (qwen unless fim.template says otherwise)",
            url_hint: None,
            docs: "https://platform.openai.com/docs/api-reference/completions/create",
            settings: json!({
                "customEngineServer": "http://localhost:8080/v1/completions",
                "customEngineResponseType": "JSON",
                "customEngineResponseFormat": "$.choices[0].text",
                "customEngineRequestFormat": {"customFields": {"model": "local-model", "stream": false}},
                "fim": {"template": "qwen"},
            }),
        },
    ]
});

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::extract::CompiledPath;

    /// The keys a preset may set.
    const PRESET_KEYS: &[&str] = &[
        "customEngineServer",
        "customEngineResponseType",
        "customEngineResponseFormat",
        "reasoningFormat",
        "customEngineRequestFormat",
        "tokenHeader",
        "systemField",
        "fim",
    ];

    fn settings(preset: &Preset) -> &serde_json::Map<String, Value> {
        preset
            .settings
            .as_object()
            .unwrap_or_else(|| panic!("{}: settings must be an object", preset.name))
    }

    #[test]
    fn settings_use_only_known_keys() {
        for preset in all() {
            for key in settings(preset).keys() {
                assert!(
                    PRESET_KEYS.contains(&key.as_str()),
                    "{}: unknown settings key {key}",
                    preset.name
                );
            }
            let format = preset.settings["customEngineRequestFormat"]
                .as_object()
                .unwrap_or_else(|| {
                    panic!(
                        "{}: customEngineRequestFormat must be an object",
                        preset.name
                    )
                });
            for key in format.keys() {
                assert!(
                    ["customFields", "customHeaders"].contains(&key.as_str()),
                    "{}: unknown customEngineRequestFormat key {key}",
                    preset.name
                );
            }
            if let Some(headers) = format.get("customHeaders") {
                let headers = headers.as_object().expect("customHeaders is an object");
                assert!(
                    headers.values().all(Value::is_string),
                    "{}: header values must be strings",
                    preset.name
                );
            }
            for key in ["tokenHeader", "systemField"] {
                if let Some(value) = preset.settings.get(key) {
                    assert!(
                        value.as_str().is_some_and(|v| !v.is_empty()),
                        "{}: {key} must be a non-empty string",
                        preset.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_completion_preset_answers_in_one_json_body() {
        let completion: Vec<_> = all().iter().filter(|p| p.is_completion()).collect();
        assert_eq!(completion.len(), 5);
        for preset in completion {
            let fields = &preset.settings["customEngineRequestFormat"]["customFields"];
            assert_eq!(fields["stream"], json!(false), "{}: stream", preset.name);
            assert_eq!(preset.settings["customEngineResponseType"], "JSON");
            let settings = crate::settings::Settings::from_json(&json!({"preset": preset.name}))
                .unwrap_or_else(|p| panic!("{}: {p:?}", preset.name));
            assert_ne!(
                settings.fim.mode,
                crate::settings::fim::FimMode::Chat,
                "{}",
                preset.name
            );
        }
    }

    #[test]
    fn every_chat_preset_streams_and_names_a_model() {
        for preset in all().iter().filter(|p| !p.is_completion()) {
            let fields = &preset.settings["customEngineRequestFormat"]["customFields"];
            assert_eq!(fields["stream"], json!(true), "{}: stream", preset.name);
            assert!(
                fields["model"].as_str().is_some_and(|m| !m.is_empty()),
                "{}: model",
                preset.name
            );
            let response_type = preset.settings["customEngineResponseType"].as_str();
            assert!(
                matches!(response_type, Some("SSE" | "NDJSON" | "JSON")),
                "{}: customEngineResponseType {response_type:?}",
                preset.name
            );
        }
    }

    #[test]
    fn every_path_compiles() {
        for preset in all() {
            let content = preset.settings["customEngineResponseFormat"].as_str();
            let content =
                content.unwrap_or_else(|| panic!("{}: customEngineResponseFormat", preset.name));
            CompiledPath::compile(content)
                .unwrap_or_else(|e| panic!("{}: {content}: {e}", preset.name));
            if let Some(reasoning) = preset.settings.get("reasoningFormat") {
                let reasoning = reasoning.as_str().expect("reasoningFormat is a string");
                CompiledPath::compile(reasoning)
                    .unwrap_or_else(|e| panic!("{}: {reasoning}: {e}", preset.name));
            }
        }
    }

    #[test]
    fn names_and_aliases_are_unique_and_lowercase() {
        let mut seen = HashSet::new();
        for preset in all() {
            for name in std::iter::once(&preset.name).chain(preset.aliases) {
                assert_eq!(*name, name.to_ascii_lowercase(), "{name} must be lowercase");
                assert!(!name.trim().is_empty() && name.trim() == *name, "{name:?}");
                assert!(seen.insert(*name), "{name} is used twice");
            }
        }
    }

    #[test]
    fn find_is_case_insensitive_and_knows_aliases() {
        assert_eq!(find("DeepSeek").map(|p| p.name), Some("deepseek"));
        assert_eq!(find("LLAMA.CPP").map(|p| p.name), Some("llama.cpp"));
        assert_eq!(find("llamacpp").map(|p| p.name), Some("llama.cpp"));
        assert_eq!(find("LMStudio").map(|p| p.name), Some("lm-studio"));
        assert_eq!(find(" Azure-OpenAI ").map(|p| p.name), Some("azure-openai"));
        assert!(find("no-such-server").is_none());
        assert!(find("").is_none());
        for preset in all() {
            assert!(std::ptr::eq(find(preset.name).unwrap(), preset));
            for alias in preset.aliases {
                assert!(std::ptr::eq(
                    find(&alias.to_ascii_uppercase()).unwrap(),
                    preset
                ));
            }
        }
    }

    #[test]
    fn exactly_the_presets_with_a_url_hint_lack_a_server() {
        for preset in all() {
            let server = preset.settings.get("customEngineServer");
            match preset.url_hint {
                Some(hint) => {
                    assert!(
                        server.is_none(),
                        "{}: has both urlHint and customEngineServer",
                        preset.name
                    );
                    assert!(
                        hint.contains('{'),
                        "{}: urlHint has no placeholder",
                        preset.name
                    );
                }
                None => {
                    let url = server.and_then(Value::as_str);
                    let url = url.unwrap_or_else(|| panic!("{}: customEngineServer", preset.name));
                    let parsed = url::Url::parse(url)
                        .unwrap_or_else(|e| panic!("{}: {url}: {e}", preset.name));
                    assert!(
                        ["http", "https"].contains(&parsed.scheme()),
                        "{}: {url}",
                        preset.name
                    );
                }
            }
        }
    }

    #[test]
    fn descriptions_and_docs_are_filled_in() {
        for preset in all() {
            assert!(
                !preset.description.is_empty() && !preset.description.contains('\n'),
                "{}",
                preset.name
            );
            assert!(
                preset.docs.starts_with("https://"),
                "{}: docs {}",
                preset.name,
                preset.docs
            );
        }
    }

    /// The preset's values are valid settings, once the URL is completed and the two
    /// preset-only keys (which this check does not know) are left out.
    #[test]
    fn settings_validate() {
        for preset in all() {
            let mut settings = settings(preset).clone();
            settings.remove("tokenHeader");
            settings.remove("systemField");
            if let Some(hint) = preset.url_hint {
                let filled = hint
                    .replace("{resource}", "example")
                    .replace("{deployment}", "gpt-4o");
                settings.insert("customEngineServer".into(), json!(filled));
            }
            if let Err(problems) = crate::settings::Settings::from_json(&Value::Object(settings)) {
                panic!("{}: {problems:?}", preset.name);
            }
        }
    }

    #[test]
    fn listing_names_every_preset() {
        let listing = listing();
        let entries = listing["presets"].as_array().expect("presets is an array");
        assert_eq!(entries.len(), all().len());
        for (entry, preset) in entries.iter().zip(all()) {
            assert_eq!(entry["name"], json!(preset.name));
            assert_eq!(entry["description"], json!(preset.description));
            assert_eq!(entry["settings"], preset.settings);
            assert_eq!(entry.get("urlHint").is_some(), preset.url_hint.is_some());
        }
    }
}
