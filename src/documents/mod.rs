//! The documents an LSP client has opened (`textDocument/didOpen`,
//! `didChange`, `didClose`), kept so that a completion can read the text
//! around the cursor.
//!
//! - Text lives in a rope ([`text`]): an incremental edit costs O(log n)
//!   whatever the document's size, and a snapshot for a completion is a
//!   cheap clone that later edits do not touch.
//! - Every change is checked before it is applied and a notification's
//!   changes are applied all or nothing: a bad position, a range splitting a
//!   character, a version going backwards, an unknown URI or a document over
//!   the limits is an error naming the problem, and the stored text stays as
//!   it was.
//! - Limits: [`MAX_DOCUMENT_BYTES`] per document, [`MAX_TOTAL_BYTES`] for all
//!   of them. `didClose` frees the document.
//! - The text around a position, bounded by lines and characters, is
//!   [`around`].

pub mod around;
pub mod text;

#[cfg(test)]
mod sync_tests;

use std::collections::HashMap;
use std::fmt;

pub use around::{Around, Bounds};
pub use text::{Encoding, Position, PositionError, Range, Text};

/// The largest document kept: 8 MiB of UTF-8.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// The most text kept for all open documents together: 256 MiB.
pub const MAX_TOTAL_BYTES: usize = 256 * 1024 * 1024;
/// How many refused documents are remembered, to say why a later request
/// for one finds nothing.
const REMEMBERED_REFUSALS: usize = 64;

/// One open document.
#[derive(Debug, Clone)]
pub struct Document {
    pub text: Text,
    /// The client's version after the last change applied.
    pub version: i64,
    pub language: String,
}

/// One content change of `didChange`: a range replaced, or (no range) the
/// whole text.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Change {
    pub range: Option<Range>,
    pub text: String,
}

/// Why a document operation was refused. The stored text is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// The URI is not open (never opened, closed, or refused).
    NotOpen { uri: String, why: Option<String> },
    /// A change's position or range does not address the text.
    Position { index: usize, error: PositionError },
    /// A `didChange` version older than the stored one.
    VersionBackwards { uri: String, got: i64, have: i64 },
    /// The document would be larger than [`MAX_DOCUMENT_BYTES`].
    TooLarge { uri: String, bytes: usize },
    /// All documents together would be larger than [`MAX_TOTAL_BYTES`].
    TotalTooLarge { uri: String, total: usize },
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::NotOpen { uri, why: None } => write!(
                f,
                "document {uri} is not open (send textDocument/didOpen first; didClose forgets it)"
            ),
            DocumentError::NotOpen {
                uri,
                why: Some(why),
            } => write!(f, "document {uri} is not open: it was refused ({why})"),
            DocumentError::Position { index, error } => {
                write!(f, "content change {index}: {error}")
            }
            DocumentError::VersionBackwards { uri, got, have } => write!(
                f,
                "version {got} of {uri} is older than the version already applied ({have}); the change is ignored"
            ),
            DocumentError::TooLarge { uri, bytes } => write!(
                f,
                "document {uri} would be {bytes} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes (8 MiB) per document"
            ),
            DocumentError::TotalTooLarge { uri, total } => write!(
                f,
                "document {uri} would bring the open documents to {total} bytes; the limit is {MAX_TOTAL_BYTES} bytes (256 MiB) in all: close some"
            ),
        }
    }
}

/// The open documents by URI.
#[derive(Debug, Default)]
pub struct Documents {
    open: HashMap<String, Document>,
    /// Bytes of text in `open`.
    total: usize,
    /// Documents refused at `didOpen` (or whose change was refused for its
    /// size), with the reason, until they are opened or closed again.
    refused: HashMap<String, String>,
}

impl Documents {
    pub fn new() -> Documents {
        Documents::default()
    }

    /// `didOpen`: keeps `text` as `uri`'s document (replacing an open one).
    pub fn open(
        &mut self,
        uri: &str,
        language: &str,
        version: i64,
        text: &str,
    ) -> Result<(), DocumentError> {
        let replaced = self.open.get(uri).map_or(0, |d| d.text.len_bytes());
        let refusal = if text.len() > MAX_DOCUMENT_BYTES {
            Some(DocumentError::TooLarge {
                uri: uri.to_owned(),
                bytes: text.len(),
            })
        } else if self.total - replaced + text.len() > MAX_TOTAL_BYTES {
            Some(DocumentError::TotalTooLarge {
                uri: uri.to_owned(),
                total: self.total - replaced + text.len(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // An open document of that URI would now be stale: forget it.
            self.forget(uri);
            self.remember_refusal(uri, &refusal);
            return Err(refusal);
        }
        self.refused.remove(uri);
        self.total = self.total - replaced + text.len();
        self.open.insert(
            uri.to_owned(),
            Document {
                text: Text::new(text),
                version,
                language: language.to_owned(),
            },
        );
        Ok(())
    }

    /// `didChange`: applies `changes` in order, all or none.
    pub fn change(
        &mut self,
        uri: &str,
        version: Option<i64>,
        changes: &[Change],
        encoding: Encoding,
    ) -> Result<(), DocumentError> {
        let document = self.open.get(uri).ok_or_else(|| self.not_open(uri))?;
        if let Some(version) = version
            && version < document.version
        {
            return Err(DocumentError::VersionBackwards {
                uri: uri.to_owned(),
                got: version,
                have: document.version,
            });
        }
        let before = document.text.len_bytes();
        // The rope's nodes are shared until written: a failed change leaves
        // the stored text as it was, at no copying cost.
        let mut text = document.text.clone();
        for (index, change) in changes.iter().enumerate() {
            let chars = match change.range {
                None => 0..text.len_chars(),
                Some(range) => text
                    .char_range(range, encoding)
                    .map_err(|error| DocumentError::Position { index, error })?,
            };
            let bytes = text.len_after(&chars, &change.text);
            if bytes > MAX_DOCUMENT_BYTES {
                return Err(DocumentError::TooLarge {
                    uri: uri.to_owned(),
                    bytes,
                });
            }
            if chars.start == 0 && chars.end == text.len_chars() {
                text = Text::new(&change.text);
            } else {
                text.replace(chars, &change.text);
            }
        }
        let total = self.total - before + text.len_bytes();
        if total > MAX_TOTAL_BYTES {
            return Err(DocumentError::TotalTooLarge {
                uri: uri.to_owned(),
                total,
            });
        }
        let document = self.open.get_mut(uri).expect("checked above");
        document.text = text;
        if let Some(version) = version {
            document.version = version;
        }
        self.total = total;
        Ok(())
    }

    /// `didClose`: frees `uri`'s document.
    pub fn close(&mut self, uri: &str) -> Result<(), DocumentError> {
        let refused = self.refused.remove(uri).is_some();
        if self.forget(uri) || refused {
            Ok(())
        } else {
            Err(self.not_open(uri))
        }
    }

    /// The open document `uri`.
    pub fn get(&self, uri: &str) -> Result<&Document, DocumentError> {
        self.open.get(uri).ok_or_else(|| self.not_open(uri))
    }

    /// How many documents are open, and their bytes in all.
    pub fn usage(&self) -> (usize, usize) {
        (self.open.len(), self.total)
    }

    fn forget(&mut self, uri: &str) -> bool {
        match self.open.remove(uri) {
            Some(document) => {
                self.total -= document.text.len_bytes();
                true
            }
            None => false,
        }
    }

    fn not_open(&self, uri: &str) -> DocumentError {
        DocumentError::NotOpen {
            uri: uri.to_owned(),
            why: self.refused.get(uri).cloned(),
        }
    }

    fn remember_refusal(&mut self, uri: &str, refusal: &DocumentError) {
        if self.refused.len() >= REMEMBERED_REFUSALS && !self.refused.contains_key(uri) {
            self.refused.clear();
        }
        let why = match refusal {
            DocumentError::TooLarge { bytes, .. } => {
                format!("{bytes} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit per document")
            }
            DocumentError::TotalTooLarge { total, .. } => format!(
                "the open documents would total {total} bytes, over the {MAX_TOTAL_BYTES}-byte limit"
            ),
            other => other.to_string(),
        };
        self.refused.insert(uri.to_owned(), why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(range: Option<((u32, u32), (u32, u32))>, text: &str) -> Change {
        Change {
            range: range.map(|((l0, c0), (l1, c1))| Range {
                start: Position {
                    line: l0,
                    character: c0,
                },
                end: Position {
                    line: l1,
                    character: c1,
                },
            }),
            text: text.to_owned(),
        }
    }

    #[test]
    fn changes_apply_all_or_nothing() {
        let mut docs = Documents::new();
        docs.open("file:///a", "rust", 1, "fn main() {\n}\n")
            .unwrap();
        let good = change(Some(((0, 11), (0, 11))), " x");
        let bad = change(Some(((5, 0), (5, 0))), "y");
        let e = docs
            .change("file:///a", Some(2), &[good.clone(), bad], Encoding::Utf16)
            .unwrap_err();
        assert!(e.to_string().starts_with("content change 1: line 5"), "{e}");
        assert_eq!(
            docs.get("file:///a").unwrap().text.to_string(),
            "fn main() {\n}\n"
        );
        assert_eq!(docs.get("file:///a").unwrap().version, 1);
        docs.change("file:///a", Some(2), &[good], Encoding::Utf16)
            .unwrap();
        assert_eq!(
            docs.get("file:///a").unwrap().text.to_string(),
            "fn main() { x\n}\n"
        );
        let e = docs
            .change("file:///a", Some(1), &[change(None, "")], Encoding::Utf16)
            .unwrap_err();
        assert!(matches!(
            e,
            DocumentError::VersionBackwards {
                got: 1,
                have: 2,
                ..
            }
        ));
        assert_eq!(docs.usage(), (1, 16));
    }

    #[test]
    fn close_frees_and_limits_refuse() {
        let mut docs = Documents::new();
        docs.open("file:///a", "", 0, "abc").unwrap();
        docs.close("file:///a").unwrap();
        assert_eq!(docs.usage(), (0, 0));
        assert!(matches!(
            docs.close("file:///a"),
            Err(DocumentError::NotOpen { .. })
        ));
        let big = "x".repeat(MAX_DOCUMENT_BYTES + 1);
        let e = docs.open("file:///big", "", 0, &big).unwrap_err();
        assert!(
            e.to_string().contains("the limit is 8388608 bytes (8 MiB)"),
            "{e}"
        );
        let e = docs.get("file:///big").unwrap_err();
        assert!(e.to_string().contains("it was refused"), "{e}");
        docs.open("file:///b", "", 0, "abc").unwrap();
        let grow = change(Some(((0, 3), (0, 3))), &big[3..]);
        let e = docs
            .change("file:///b", Some(1), &[grow], Encoding::Utf8)
            .unwrap_err();
        assert!(
            matches!(e, DocumentError::TooLarge { bytes, .. } if bytes == MAX_DOCUMENT_BYTES + 1)
        );
        assert_eq!(docs.get("file:///b").unwrap().text.to_string(), "abc");
    }
}
