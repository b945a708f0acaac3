//! One document's text as a rope, addressed the LSP way: `(line, character)`
//! positions in the negotiated encoding, checked before any edit touches the
//! text.
//!
//! Lines end at `\n`, `\r\n` or a lone `\r` (LSP's three line endings, and
//! ropey's `cr_lines`); a `character` counts UTF-16 code units, UTF-8 bytes
//! or code points after the line's start. A position past the end of its
//! line, a line past the last one, or an offset inside a character (half of a
//! surrogate pair, the middle of a UTF-8 sequence) is an error, never clamped:
//! a client that sends one has lost track of the text, and guessing would
//! corrupt it.

use std::fmt;

use ropey::Rope;

/// How a position's `character` counts (LSP `PositionEncodingKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 code units (bytes).
    Utf8,
    /// UTF-16 code units: the LSP default.
    #[default]
    Utf16,
    /// Unicode code points.
    Utf32,
}

impl Encoding {
    /// The LSP name: `utf-8`, `utf-16`, `utf-32`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }

    /// The encoding for the client's `general.positionEncodings` offer: UTF-8
    /// when offered (no conversion at all), else UTF-32, else UTF-16, which
    /// every client supports whatever it lists.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Encoding {
        let offered: Vec<&str> = offered.into_iter().collect();
        if offered.contains(&"utf-8") {
            Encoding::Utf8
        } else if offered.contains(&"utf-32") {
            Encoding::Utf32
        } else {
            Encoding::Utf16
        }
    }

    /// The units of this encoding in `c`.
    fn units(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }
}

/// An LSP position: zero-based line, and `character` units after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// An LSP range, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// Why a position or range does not address the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionError {
    /// `line` is past the last line (`lines` lines, numbered from 0).
    LinePastEnd { line: u32, lines: usize },
    /// `character` is past the end of its line (`length` units long).
    PastEndOfLine {
        position: Position,
        length: usize,
        encoding: Encoding,
    },
    /// `character` falls inside one character (`what` names it).
    InsideCharacter {
        position: Position,
        what: char,
        encoding: Encoding,
    },
    /// A range whose end comes before its start.
    Reversed { start: Position, end: Position },
}

impl fmt::Display for PositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PositionError::LinePastEnd { line, lines } => write!(
                f,
                "line {line} is past the end of the document, which has {lines} line(s) (0 to {})",
                lines.saturating_sub(1)
            ),
            PositionError::PastEndOfLine {
                position,
                length,
                encoding,
            } => write!(
                f,
                "character {} is past the end of line {}, which is {length} {} unit(s) long",
                position.character,
                position.line,
                encoding.as_str()
            ),
            PositionError::InsideCharacter {
                position,
                what,
                encoding,
            } => {
                let split = match encoding {
                    Encoding::Utf16 => "splits the surrogate pair of",
                    _ => "falls inside the UTF-8 sequence of",
                };
                write!(
                    f,
                    "line {} character {} {split} U+{:04X} ({} counts {} units for it)",
                    position.line,
                    position.character,
                    *what as u32,
                    encoding.as_str(),
                    encoding.units(*what)
                )
            }
            PositionError::Reversed { start, end } => write!(
                f,
                "the range ends (line {} character {}) before it starts (line {} character {})",
                end.line, end.character, start.line, start.character
            ),
        }
    }
}

/// A document's text. Cloning is cheap (the rope's nodes are shared), which
/// is how a completion takes a snapshot without copying the text.
#[derive(Debug, Clone, Default)]
pub struct Text {
    rope: Rope,
}

impl Text {
    pub fn new(text: &str) -> Text {
        Text {
            rope: Rope::from_str(text),
        }
    }

    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }

    pub fn len_chars(&self) -> usize {
        self.rope.len_chars()
    }

    pub fn len_lines(&self) -> usize {
        self.rope.len_lines()
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// The char index where `line`'s content starts and ends (before its
    /// line ending).
    pub fn line_bounds(&self, line: usize) -> (usize, usize) {
        let start = self.rope.line_to_char(line);
        let next = self.rope.line_to_char(line + 1);
        let mut end = next;
        if end > start && self.rope.char(end - 1) == '\n' {
            end -= 1;
        }
        if end > start && self.rope.char(end - 1) == '\r' {
            end -= 1;
        }
        (start, end)
    }

    /// The char index that `position` addresses.
    pub fn char_index(
        &self,
        position: Position,
        encoding: Encoding,
    ) -> Result<usize, PositionError> {
        let line = position.line as usize;
        if line >= self.len_lines() {
            return Err(PositionError::LinePastEnd {
                line: position.line,
                lines: self.len_lines(),
            });
        }
        let (start, end) = self.line_bounds(line);
        let wanted = position.character as usize;
        let (base, length) = match encoding {
            Encoding::Utf32 => (start, end - start),
            Encoding::Utf16 => {
                let base = self.rope.char_to_utf16_cu(start);
                (base, self.rope.char_to_utf16_cu(end) - base)
            }
            Encoding::Utf8 => {
                let base = self.rope.char_to_byte(start);
                (base, self.rope.char_to_byte(end) - base)
            }
        };
        if wanted > length {
            return Err(PositionError::PastEndOfLine {
                position,
                length,
                encoding,
            });
        }
        let (index, back) = match encoding {
            Encoding::Utf32 => return Ok(start + wanted),
            Encoding::Utf16 => {
                let index = self.rope.utf16_cu_to_char(base + wanted);
                (index, self.rope.char_to_utf16_cu(index))
            }
            Encoding::Utf8 => {
                let index = self.rope.byte_to_char(base + wanted);
                (index, self.rope.char_to_byte(index))
            }
        };
        if back != base + wanted {
            return Err(PositionError::InsideCharacter {
                position,
                what: self.rope.char(index),
                encoding,
            });
        }
        Ok(index)
    }

    /// The position of char index `index` (at most `len_chars`).
    pub fn position(&self, index: usize, encoding: Encoding) -> Position {
        let line = self.rope.char_to_line(index);
        let start = self.rope.line_to_char(line);
        let character = match encoding {
            Encoding::Utf32 => index - start,
            Encoding::Utf16 => {
                self.rope.char_to_utf16_cu(index) - self.rope.char_to_utf16_cu(start)
            }
            Encoding::Utf8 => self.rope.char_to_byte(index) - self.rope.char_to_byte(start),
        };
        Position {
            line: clamp_u32(line),
            character: clamp_u32(character),
        }
    }

    /// The char range `range` addresses.
    pub fn char_range(
        &self,
        range: Range,
        encoding: Encoding,
    ) -> Result<std::ops::Range<usize>, PositionError> {
        let start = self.char_index(range.start, encoding)?;
        let end = self.char_index(range.end, encoding)?;
        if end < start {
            return Err(PositionError::Reversed {
                start: range.start,
                end: range.end,
            });
        }
        Ok(start..end)
    }

    /// The size in bytes after replacing `chars` with `with` (for limits
    /// checked before an edit).
    pub fn len_after(&self, chars: &std::ops::Range<usize>, with: &str) -> usize {
        let removed = self.rope.char_to_byte(chars.end) - self.rope.char_to_byte(chars.start);
        self.len_bytes() - removed + with.len()
    }

    /// Replaces the chars in `chars` (already checked) with `with`.
    pub fn replace(&mut self, chars: std::ops::Range<usize>, with: &str) {
        if !chars.is_empty() {
            self.rope.remove(chars.clone());
        }
        if !with.is_empty() {
            self.rope.insert(chars.start, with);
        }
    }

    /// The text of `chars` as a string.
    pub fn slice_string(&self, chars: std::ops::Range<usize>) -> String {
        let slice = self.rope.slice(chars);
        let mut out = String::with_capacity(slice.len_bytes());
        for chunk in slice.chunks() {
            out.push_str(chunk);
        }
        out
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.rope.chunks() {
            f.write_str(chunk)?;
        }
        Ok(())
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn positions_in_each_encoding() {
        // "a😀b" : 😀 is 2 UTF-16 units, 4 UTF-8 bytes, 1 code point.
        let text = Text::new("x\r\na😀b\n中\rz");
        assert_eq!(text.len_lines(), 4);
        assert_eq!(text.char_index(at(1, 3), Encoding::Utf16), Ok(5));
        assert_eq!(text.char_index(at(1, 5), Encoding::Utf8), Ok(5));
        assert_eq!(text.char_index(at(1, 2), Encoding::Utf32), Ok(5));
        assert_eq!(text.position(5, Encoding::Utf16), at(1, 3));
        assert_eq!(text.position(5, Encoding::Utf8), at(1, 5));
        // 中 is 3 UTF-8 bytes; the lone \r ends line 2.
        assert_eq!(text.char_index(at(2, 3), Encoding::Utf8), Ok(8));
        assert_eq!(text.char_index(at(3, 0), Encoding::Utf8), Ok(9));
        assert_eq!(text.line_bounds(0), (0, 1));
    }

    #[test]
    fn bad_positions_are_named() {
        let text = Text::new("a😀b\n中");
        let e = text.char_index(at(0, 2), Encoding::Utf16).unwrap_err();
        assert!(matches!(
            e,
            PositionError::InsideCharacter { what: '😀', .. }
        ));
        assert!(e.to_string().contains("surrogate pair of U+1F600"), "{e}");
        let e = text.char_index(at(1, 1), Encoding::Utf8).unwrap_err();
        assert!(e.to_string().contains("UTF-8 sequence of U+4E2D"), "{e}");
        let e = text.char_index(at(0, 5), Encoding::Utf16).unwrap_err();
        assert_eq!(
            e.to_string(),
            "character 5 is past the end of line 0, which is 4 utf-16 unit(s) long"
        );
        // The line ending is not part of the line.
        assert!(text.char_index(at(0, 5), Encoding::Utf32).is_err());
        let e = text.char_index(at(2, 0), Encoding::Utf16).unwrap_err();
        assert!(e.to_string().starts_with("line 2 is past the end"), "{e}");
        let e = text
            .char_range(
                Range {
                    start: at(1, 1),
                    end: at(0, 0),
                },
                Encoding::Utf16,
            )
            .unwrap_err();
        assert!(matches!(e, PositionError::Reversed { .. }));
    }

    #[test]
    fn negotiation_prefers_utf8() {
        assert_eq!(Encoding::negotiate(["utf-16", "utf-8"]), Encoding::Utf8);
        assert_eq!(Encoding::negotiate(["utf-32", "utf-16"]), Encoding::Utf32);
        assert_eq!(Encoding::negotiate(["latin-1"]), Encoding::Utf16);
        assert_eq!(Encoding::negotiate([]), Encoding::Utf16);
    }
}
