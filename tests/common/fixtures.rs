//! The recorded LLM responses in `tests/fixtures` (see `tests/fixtures/SOURCE.md`) and their metadata.

use std::path::PathBuf;

use serde_json::Value;

/// What a fixture is expected to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// HTTP 200 without an error: `result.text == expected_text`.
    Success,
    /// A non-2xx status: `-32803` with kind `http_status`.
    HttpError,
    /// HTTP 200 with an error inside the body: `-32803` with kind `stream_error`.
    StreamError,
}

#[derive(Clone, Debug)]
pub struct Fixture {
    /// File name without its extension.
    pub name: String,
    pub body: Vec<u8>,
    /// `sse`, `json` or `ndjson`.
    pub format: String,
    pub http_status: u16,
    pub content_type: String,
    pub jsonpath: String,
    pub expected_text: String,
    /// `expected_error.message`, when the meta gives one.
    pub expected_error_message: Option<String>,
    pub has_expected_error: bool,
}

impl Fixture {
    pub fn category(&self) -> Category {
        match (self.http_status, self.has_expected_error) {
            (200..=299, false) => Category::Success,
            (200..=299, true) => Category::StreamError,
            _ => Category::HttpError,
        }
    }

    /// The `customEngineResponseType` matching the fixture's format.
    pub fn response_type(&self) -> &'static str {
        match self.format.as_str() {
            "sse" => "SSE",
            "json" => "JSON",
            "ndjson" => "NDJSON",
            other => panic!("fixture {}: unknown format {other}", self.name),
        }
    }
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture listed in `INDEX.json`, which must list every body in the folder.
pub fn load_all() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let index: Value = read_json(&dir.join("INDEX.json"));
    let entries = index.as_array().expect("INDEX.json is an array");
    let fixtures: Vec<Fixture> = entries
        .iter()
        .map(|entry| {
            let file = entry["file"].as_str().expect("INDEX file");
            let meta: Value = read_json(&dir.join(entry["meta"].as_str().expect("INDEX meta")));
            let body = std::fs::read(dir.join(file)).expect("fixture body");
            let text = |key: &str| {
                meta[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: meta.{key} is not a string"))
                    .to_owned()
            };
            Fixture {
                name: file.rsplit_once('.').unwrap().0.to_owned(),
                body,
                format: text("format"),
                http_status: meta["http_status"].as_u64().expect("http_status") as u16,
                content_type: text("content_type"),
                jsonpath: text("jsonpath"),
                expected_text: text("expected_text"),
                expected_error_message: meta["expected_error"]["message"]
                    .as_str()
                    .map(str::to_owned),
                has_expected_error: !meta["expected_error"].is_null(),
            }
        })
        .collect();

    let bodies_on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            [".sse", ".json", ".ndjson"]
                .iter()
                .any(|ext| n.ends_with(ext))
        })
        .filter(|n| !n.ends_with(".meta.json") && n != "INDEX.json")
        .count();
    assert_eq!(
        fixtures.len(),
        bodies_on_disk,
        "INDEX.json must list every fixture body"
    );
    fixtures
}

pub fn load(category: Category) -> Vec<Fixture> {
    load_all()
        .into_iter()
        .filter(|f| f.category() == category)
        .collect()
}

fn read_json(path: &std::path::Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Splits `bytes` into pieces of 1..=`max_len` bytes, chosen by a PRNG seeded with `seed`
/// (the same seed always gives the same split).
pub fn split_randomly(bytes: &[u8], seed: &str, max_len: usize) -> Vec<Vec<u8>> {
    // FNV-1a of the seed, then xorshift64.
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (1 + (state % max_len as u64) as usize).min(rest.len());
        pieces.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    pieces
}
