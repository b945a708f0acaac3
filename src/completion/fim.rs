//! Fill-in-the-middle prompt templates: the special tokens each model family
//! was trained with, the order it expects the parts in, and the tokens that
//! end its answer (or that leak into it when the template is wrong).
//!
//! Each table row was checked against the model's published tokenizer or
//! reference code; the sources are listed in `protocol/README.md`
//! ("FIM templates"). Spaces are part of a template where the model expects
//! them (Code Llama's `<PRE> {prefix} <SUF>{suffix} <MID>`).

/// Where the suffix goes relative to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Prefix, suffix, middle: `P{prefix}S{suffix}M`.
    PrefixSuffixMiddle,
    /// Suffix first: `S{suffix}P{prefix}M` (Codestral).
    SuffixPrefixMiddle,
}

/// One FIM template: the text around the prefix and the suffix, and its stop tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `starcoder`, `qwen`, … or `custom`.
    pub name: String,
    /// Written before the prefix.
    pub prefix: String,
    /// Written before the suffix.
    pub suffix: String,
    /// Written last: the model answers after it.
    pub middle: String,
    pub order: Order,
    /// Tokens that end the answer: the model's end-of-text tokens and its FIM markers.
    pub stops: Vec<String>,
}

/// A built-in template: name, the three markers, order, stop tokens.
struct Builtin {
    name: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    middle: &'static str,
    order: Order,
    stops: &'static [&'static str],
}

use Order::{PrefixSuffixMiddle as Psm, SuffixPrefixMiddle as Spm};

/// The built-in templates, in the order the documentation lists them.
const BUILTINS: &[Builtin] = &[
    // StarCoder, StarCoder2, StableCode, CodeQwen1.5 (bigcode tokenizer).
    Builtin {
        name: "starcoder",
        prefix: "<fim_prefix>",
        suffix: "<fim_suffix>",
        middle: "<fim_middle>",
        order: Psm,
        stops: &[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            "<fim_pad>",
            "<file_sep>",
            "<repo_name>",
            "<filename>",
        ],
    },
    // Qwen2.5-Coder (and Granite 4, which reuses its tokens).
    Builtin {
        name: "qwen",
        prefix: "<|fim_prefix|>",
        suffix: "<|fim_suffix|>",
        middle: "<|fim_middle|>",
        order: Psm,
        stops: &[
            "<|endoftext|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
            "<|im_start|>",
            "<|im_end|>",
        ],
    },
    // Code Llama: the spaces are part of the format.
    Builtin {
        name: "codellama",
        prefix: "<PRE> ",
        suffix: " <SUF>",
        middle: " <MID>",
        order: Psm,
        stops: &["<EOT>", "<PRE>", "<SUF>", "<MID>", "</s>"],
    },
    // DeepSeek-Coder (v1 and V2): full-width vertical bars and U+2581 "▁".
    Builtin {
        name: "deepseek",
        prefix: "<｜fim▁begin｜>",
        suffix: "<｜fim▁hole｜>",
        middle: "<｜fim▁end｜>",
        order: Psm,
        stops: &[
            "<｜end▁of▁sentence｜>",
            "<｜begin▁of▁sentence｜>",
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            "<|EOT|>",
        ],
    },
    // Codestral raw FIM (mistral-common): suffix first, then prefix; the model answers after the prefix.
    Builtin {
        name: "codestral",
        prefix: "[PREFIX]",
        suffix: "[SUFFIX]",
        middle: "",
        order: Spm,
        stops: &["</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"],
    },
    // CodeGemma.
    Builtin {
        name: "codegemma",
        prefix: "<|fim_prefix|>",
        suffix: "<|fim_suffix|>",
        middle: "<|fim_middle|>",
        order: Psm,
        stops: &[
            "<|file_separator|>",
            "<end_of_turn>",
            "<eos>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
        ],
    },
];

/// The names `fim.template` accepts besides a custom object.
pub const TEMPLATE_NAMES: &[&str] = &[
    "starcoder",
    "qwen",
    "codellama",
    "deepseek",
    "codestral",
    "codegemma",
];

/// The built-in template a model name belongs to (`qwen2.5-coder:1.5b-base`
/// → `qwen`), for the hint when a model's name is given as a template.
/// CodeQwen 1.5 was trained with StarCoder's tokens, not Qwen's.
pub fn template_of_model(model: &str) -> Option<&'static str> {
    let model = model.to_ascii_lowercase();
    if model.contains("codeqwen") {
        return Some("starcoder");
    }
    TEMPLATE_NAMES
        .iter()
        .copied()
        .find(|name| model.contains(name))
}

impl Template {
    /// The built-in template called `name` (case-insensitive).
    pub fn named(name: &str) -> Option<Template> {
        let name = name.trim();
        BUILTINS
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(name))
            .map(|b| Template {
                name: b.name.to_owned(),
                prefix: b.prefix.to_owned(),
                suffix: b.suffix.to_owned(),
                middle: b.middle.to_owned(),
                order: b.order,
                stops: b.stops.iter().map(|s| (*s).to_owned()).collect(),
            })
    }

    /// A user's `{prefix, suffix, middle}`: its markers are its stop tokens.
    pub fn custom(prefix: &str, suffix: &str, middle: &str, stops: Vec<String>) -> Template {
        let mut all = stops;
        for marker in [prefix, suffix, middle] {
            let marker = marker.trim();
            if !marker.is_empty() && !all.iter().any(|s| s == marker) {
                all.push(marker.to_owned());
            }
        }
        Template {
            name: "custom".to_owned(),
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            middle: middle.to_owned(),
            order: Psm,
            stops: all,
        }
    }

    /// The prompt for the text before and after the cursor.
    pub fn render(&self, prefix: &str, suffix: &str) -> String {
        let mut out = String::with_capacity(
            prefix.len() + suffix.len() + self.prefix.len() + self.suffix.len() + self.middle.len(),
        );
        match self.order {
            Psm => {
                out.push_str(&self.prefix);
                out.push_str(prefix);
                out.push_str(&self.suffix);
                out.push_str(suffix);
            }
            Spm => {
                out.push_str(&self.suffix);
                out.push_str(suffix);
                out.push_str(&self.prefix);
                out.push_str(prefix);
            }
        }
        out.push_str(&self.middle);
        out
    }
}

/// Tokens that are also ordinary text (an HTML `<PRE>` or strike-through
/// end tag): they end an answer only under their own template.
const ALSO_TEXT: &[&str] = &["<PRE>", "</s>"];
/// Closing forms models invent for the markers (Qwen2 under StarCoder's tokens
/// answers `print()</fim_middle>`): cut as leaks too.
const INVENTED: &[&str] = &["</fim_prefix>", "</fim_suffix>", "</fim_middle>", "<|end|>"];

/// Every special token of every built-in template: when one shows up in an
/// answer, the rest is the model talking past its end (a wrong template or
/// a server that does not stop), so the answer is cut there.
pub fn leaked_tokens() -> &'static [&'static str] {
    static TOKENS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut all: Vec<&'static str> = Vec::new();
        for b in BUILTINS {
            let markers = [b.prefix, b.suffix, b.middle].map(str::trim);
            for token in b.stops.iter().copied().chain(markers) {
                if !token.is_empty() && !ALSO_TEXT.contains(&token) && !all.contains(&token) {
                    all.push(token);
                }
            }
        }
        all.extend(INVENTED);
        all
    });
    &TOKENS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_template() {
        for name in TEMPLATE_NAMES {
            assert!(Template::named(name).is_some(), "{name}");
        }
        assert_eq!(TEMPLATE_NAMES.len(), BUILTINS.len());
        assert!(Template::named("QWEN").is_some());
        assert!(Template::named("gpt").is_none());
        assert_eq!(template_of_model("Qwen2.5-Coder-7B"), Some("qwen"));
        assert_eq!(template_of_model("codeqwen:1.5"), Some("starcoder"));
        assert_eq!(template_of_model("deepseek-coder-v2"), Some("deepseek"));
        assert_eq!(template_of_model("gpt-4o"), None);
    }

    #[test]
    fn renders_each_family_exactly() {
        let r = |name: &str| Template::named(name).unwrap().render("def f(", "):\n");
        assert_eq!(
            r("starcoder"),
            "<fim_prefix>def f(<fim_suffix>):\n<fim_middle>"
        );
        assert_eq!(
            r("qwen"),
            "<|fim_prefix|>def f(<|fim_suffix|>):\n<|fim_middle|>"
        );
        assert_eq!(r("codellama"), "<PRE> def f( <SUF>):\n <MID>");
        assert_eq!(
            r("deepseek"),
            "<｜fim▁begin｜>def f(<｜fim▁hole｜>):\n<｜fim▁end｜>"
        );
        assert_eq!(r("codestral"), "[SUFFIX]):\n[PREFIX]def f(");
        assert_eq!(
            r("codegemma"),
            "<|fim_prefix|>def f(<|fim_suffix|>):\n<|fim_middle|>"
        );
        let custom = Template::custom("<A>", "<B>", "<C>", vec![]);
        assert_eq!(custom.render("p", "s"), "<A>p<B>s<C>");
        assert_eq!(custom.stops, ["<A>", "<B>", "<C>"]);
    }

    #[test]
    fn deepseek_uses_full_width_bars_and_the_lower_one_eighth_block() {
        let t = Template::named("deepseek").unwrap();
        assert!(t.prefix.contains('\u{ff5c}') && t.prefix.contains('\u{2581}'));
        assert!(!t.prefix.contains('|') && !t.prefix.contains('_'));
    }
}
