//! The common event without a `serde_json::Value`.
//!
//! Most events of a stream are alike (`{"choices":[{"delta":{"content":"…"}}]}`)
//! and the extractor reads a handful of fixed places in each: the content path
//! (and the reasoning path), `error`, `finish_reason`, `usage`,
//! `choices[0].index`. When every one of those is a *simple* path (names and
//! non-negative indices only), [`Plan::scan`] walks the event's JSON once,
//! with serde_json's own parser, without building a tree: object keys are
//! compared in place, and only the values found at those places are kept
//! (strings borrowed from the event unless they hold escapes).
//!
//! The walk accepts exactly the documents `serde_json::from_str::<Value>`
//! accepts (it asks the parser for every value the way `Value` does, so
//! numbers, escapes, surrogates and the nesting limit are checked the same)
//! and a duplicated key counts the way it does in a `Value`: the last one
//! wins. Anything it does not settle (a document it refuses, a set `error`, a
//! `usage` object, a default chain that needs a filter path) returns `None`
//! and the event takes the general path; see `Extractor::fast_event`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json_path::JsonPath;

/// One step of a simple path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A name selector: an object member.
    Name(String),
    /// An index selector: an array element.
    Index(usize),
    /// A JSON Pointer token (`Value::pointer`): an object member by that
    /// name, or, when the token is an array index, that element.
    Pointer(String, Option<usize>),
}

impl Step {
    fn key(&self, key: &str) -> bool {
        match self {
            Step::Name(name) | Step::Pointer(name, _) => name == key,
            Step::Index(_) => false,
        }
    }

    fn index(&self, at: usize) -> bool {
        match self {
            Step::Index(i) | Step::Pointer(_, Some(i)) => *i == at,
            _ => false,
        }
    }
}

/// What was found at one place.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum Found<'d> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Str(Cow<'d, str>),
    /// A non-negative integer (`Value::as_u64` is `Some`).
    U64(u64),
    /// Any other number.
    Number,
    Object {
        empty: bool,
    },
    Array,
}

/// The most places one walk looks at (a bit each in a `u32`).
const MAX_TARGETS: usize = 16;

/// The places to read, decided once per completion.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    targets: Vec<Vec<Step>>,
    /// The content paths, in the order they are tried.
    content: Vec<usize>,
    /// Whether a chain that selects nothing at all is the answer (a
    /// configured path) or needs the paths that are not simple (the default
    /// chain's filter paths).
    content_is_complete: bool,
    reasoning: Option<usize>,
    error: usize,
    usage: usize,
    usage_metadata: usize,
    finish: [usize; 4],
    choice_index: usize,
}

/// The plan for these configured paths (`None`: the defaults), made once per
/// distinct pair of paths: settings arrive, and are compiled, with every
/// request, and checking a path against the parser costs as much again.
pub(crate) fn plan_for(
    content: Option<&super::CompiledPath>,
    reasoning: Option<&super::CompiledPath>,
) -> Option<Arc<Plan>> {
    /// Distinct pairs of paths remembered (an IDE uses a handful).
    const REMEMBERED: usize = 64;
    /// The normalized content and reasoning paths.
    type Key = (Option<String>, Option<String>);
    static PLANS: LazyLock<Mutex<HashMap<Key, Option<Arc<Plan>>>>> = LazyLock::new(Mutex::default);
    let key = (
        content.map(|p| p.normalized.clone()),
        reasoning.map(|p| p.normalized.clone()),
    );
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(plan) = plans.get(&key) {
        return plan.clone();
    }
    let plan = Plan::new(
        content.map(|p| &p.path),
        content.map(|p| p.normalized.as_str()),
        reasoning.map(|p| (&p.path, p.normalized.as_str())),
        super::paths::DEFAULT_SIMPLE_PATHS,
    )
    .map(Arc::new);
    if plans.len() >= REMEMBERED {
        plans.clear();
    }
    plans.insert(key, plan.clone());
    plan
}

/// What one walk found.
#[derive(Debug)]
pub(crate) struct Scanned<'d> {
    /// What the content path selected: the first of the chain that selected
    /// something.
    pub content: Found<'d>,
    pub reasoning: Found<'d>,
    /// The finish reason, as the general path reads it.
    pub finish_reason: Option<Cow<'d, str>>,
    /// `choices[0].index`.
    pub choice_index: Option<u64>,
}

/// The key `serde_json` reads a `RawValue` from; a `Value` treats it apart.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl Plan {
    /// A plan for these paths (`None` content: the default chain, of which
    /// `defaults` are the simple leading paths), or `None` when a configured
    /// path is not simple.
    pub(crate) fn new(
        content: Option<&JsonPath>,
        content_source: Option<&str>,
        reasoning: Option<(&JsonPath, &str)>,
        defaults: &[&str],
    ) -> Option<Plan> {
        let mut targets = Vec::new();
        let mut add = |steps: Vec<Step>| {
            targets.push(steps);
            targets.len() - 1
        };
        let (content, content_is_complete) = match (content, content_source) {
            (Some(path), Some(source)) => (vec![add(simple(source, path)?)], true),
            (None, _) => {
                let mut chain = Vec::new();
                for source in defaults {
                    let path = JsonPath::parse(source).ok()?;
                    chain.push(add(simple(source, &path)?));
                }
                (chain, false)
            }
            (Some(_), None) => return None,
        };
        let reasoning = match reasoning {
            Some((path, source)) => Some(add(simple(source, path)?)),
            None => None,
        };
        let pointer = |tokens: &[&str]| {
            tokens
                .iter()
                .map(|t| {
                    let index = (t == &"0").then_some(0);
                    Step::Pointer((*t).to_owned(), index)
                })
                .collect::<Vec<_>>()
        };
        let error = add(pointer(&["error"]));
        let usage = add(pointer(&["usage"]));
        let usage_metadata = add(pointer(&["usageMetadata"]));
        let finish = [
            add(pointer(&["choices", "0", "finish_reason"])),
            add(pointer(&["candidates", "0", "finishReason"])),
            add(pointer(&["delta", "stop_reason"])),
            add(pointer(&["done_reason"])),
        ];
        let choice_index = add(pointer(&["choices", "0", "index"]));
        (targets.len() <= MAX_TARGETS).then_some(Plan {
            targets,
            content,
            content_is_complete,
            reasoning,
            error,
            usage,
            usage_metadata,
            finish,
            choice_index,
        })
    }

    /// Reads one event's data; `None` when the general path must take it.
    pub(crate) fn scan<'d>(&self, data: &'d str) -> Option<Scanned<'d>> {
        let mut walk = Walk {
            targets: &self.targets,
            found: Default::default(),
            root_is_object: false,
        };
        let mut de = serde_json::Deserializer::from_str(data);
        Node {
            walk: &mut walk,
            live: (1u32 << self.targets.len()) - 1,
            depth: 0,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        if !walk.root_is_object {
            return None;
        }
        let mut found = walk.found;
        // A set `error` member is a stream error.
        match &found[self.error] {
            Found::Absent | Found::Null | Found::Bool(false) | Found::Object { empty: true } => {}
            Found::Str(s) if s.is_empty() => {}
            _ => return None,
        }
        // A usage object is kept as a `Value`.
        let usage = match &found[self.usage] {
            Found::Absent => &found[self.usage_metadata],
            usage => usage,
        };
        if matches!(usage, Found::Object { .. }) {
            return None;
        }
        let content = match self.content.iter().find(|&&i| found[i] != Found::Absent) {
            Some(&i) => std::mem::take(&mut found[i]),
            None if self.content_is_complete => Found::Absent,
            None => return None,
        };
        let reasoning = self
            .reasoning
            .map(|i| std::mem::take(&mut found[i]))
            .unwrap_or_default();
        let finish_reason = match self.finish.iter().find(|&&i| found[i] != Found::Absent) {
            Some(&i) => match std::mem::take(&mut found[i]) {
                Found::Str(s) => Some(s),
                _ => None,
            },
            None => None,
        };
        let choice_index = match found[self.choice_index] {
            Found::U64(n) => Some(n),
            _ => None,
        };
        Some(Scanned {
            content,
            reasoning,
            finish_reason,
            choice_index,
        })
    }
}

/// The steps of `path` when it is simple: `$` followed by `.name`,
/// `['name']`/`["name"]` or `[n]` segments only, names of plain characters
/// (no quotes, backslashes or controls) and `n` a non-negative integer. The
/// result is checked against the parser: the same text rebuilt from the
/// steps must parse to the very same path.
fn simple(source: &str, path: &JsonPath) -> Option<Vec<Step>> {
    let bytes = source.as_bytes();
    if bytes.first() != Some(&b'$') {
        return None;
    }
    let mut steps = Vec::new();
    let mut rebuilt = String::from("$");
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                if end == start || bytes[start].is_ascii_digit() {
                    return None;
                }
                let name = &source[start..end];
                rebuilt.push('.');
                rebuilt.push_str(name);
                steps.push(Step::Name(name.to_owned()));
                i = end;
            }
            b'[' => {
                let close = start_of(bytes, i, b']')?;
                let inner = &source[i + 1..close];
                let quoted = inner.len() >= 2
                    && matches!(inner.as_bytes()[0], b'\'' | b'"')
                    && inner.as_bytes()[inner.len() - 1] == inner.as_bytes()[0];
                if quoted {
                    let name = &inner[1..inner.len() - 1];
                    if name
                        .bytes()
                        .any(|b| matches!(b, b'\'' | b'"' | b'\\' | b']' | b'[') || b < 0x20)
                    {
                        return None;
                    }
                    rebuilt.push_str(&format!("['{name}']"));
                    steps.push(Step::Name(name.to_owned()));
                } else {
                    let plain = !inner.is_empty()
                        && inner.len() <= 15
                        && inner.bytes().all(|b| b.is_ascii_digit())
                        && (inner == "0" || !inner.starts_with('0'));
                    if !plain {
                        return None;
                    }
                    rebuilt.push_str(&format!("[{inner}]"));
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    if steps.is_empty() || JsonPath::parse(&rebuilt).ok()? != *path {
        return None;
    }
    Some(steps)
}

fn start_of(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|at| from + at)
}

struct Walk<'p, 'd> {
    targets: &'p [Vec<Step>],
    found: [Found<'d>; MAX_TARGETS],
    root_is_object: bool,
}

/// Bit `i` set for each target `i` in `mask`.
fn each(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

/// One value of the document, `depth` steps below the root; `live` are the
/// targets whose first `depth` steps lead here.
struct Node<'w, 'p, 'd> {
    walk: &'w mut Walk<'p, 'd>,
    live: u32,
    depth: usize,
}

impl<'d> Node<'_, '_, 'd> {
    /// The targets that end at this value.
    fn ending(&self) -> u32 {
        each(self.live)
            .filter(|&i| self.walk.targets[i].len() == self.depth)
            .fold(0, |mask, i| mask | 1 << i)
    }

    fn set(&mut self, found: impl Fn() -> Found<'d>) {
        for i in each(self.ending()) {
            self.walk.found[i] = found();
        }
    }

    /// The targets that go on into the member `key`; what they found under an
    /// earlier member of the same name is forgotten (the last one wins).
    fn member(&mut self, key: &str) -> u32 {
        let depth = self.depth;
        let mut mask = 0;
        for i in each(self.live) {
            if self.walk.targets[i].get(depth).is_some_and(|s| s.key(key)) {
                self.walk.found[i] = Found::Absent;
                mask |= 1 << i;
            }
        }
        mask
    }

    fn element(&self, at: usize) -> u32 {
        each(self.live)
            .filter(|&i| {
                self.walk.targets[i]
                    .get(self.depth)
                    .is_some_and(|s| s.index(at))
            })
            .fold(0, |mask, i| mask | 1 << i)
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, b: bool) -> Result<(), E> {
        self.set(|| Found::Bool(b));
        Ok(())
    }

    fn visit_i64<E>(mut self, _: i64) -> Result<(), E> {
        self.set(|| Found::Number);
        Ok(())
    }

    fn visit_u64<E>(mut self, n: u64) -> Result<(), E> {
        self.set(|| Found::U64(n));
        Ok(())
    }

    fn visit_f64<E>(mut self, _: f64) -> Result<(), E> {
        self.set(|| Found::Number);
        Ok(())
    }

    fn visit_borrowed_str<E>(mut self, s: &'de str) -> Result<(), E> {
        self.set(|| Found::Str(Cow::Borrowed(s)));
        Ok(())
    }

    fn visit_str<E>(mut self, s: &str) -> Result<(), E> {
        if self.ending() != 0 {
            self.set(|| Found::Str(Cow::Owned(s.to_owned())));
        }
        Ok(())
    }

    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.set(|| Found::Null);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.depth == 0 {
            self.walk.root_is_object = true;
        }
        let mut empty = true;
        while let Some(child) = map.next_key_seed(Key(&mut self))? {
            empty = false;
            map.next_value_seed(Node {
                walk: self.walk,
                live: child,
                depth: self.depth + 1,
            })?;
        }
        self.set(|| Found::Object { empty });
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut at = 0;
        loop {
            let child = self.element(at);
            let node = Node {
                walk: self.walk,
                live: child,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(node)?.is_none() {
                break;
            }
            at += 1;
        }
        self.set(|| Found::Array);
        Ok(())
    }
}

/// An object key: which targets go on into its value.
struct Key<'n, 'w, 'p, 'd>(&'n mut Node<'w, 'p, 'd>);

impl<'de> DeserializeSeed<'de> for Key<'_, '_, '_, '_> {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_, '_, '_> {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<u32, E> {
        if key == RAW_VALUE_TOKEN {
            // A `Value` reads this member its own way; leave it to one.
            return Err(E::custom("raw value token"));
        }
        Ok(if self.0.live == 0 {
            0
        } else {
            self.0.member(key)
        })
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
