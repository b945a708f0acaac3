//! The text around a cursor, as a completion's prefix and suffix, bounded by
//! lines and characters so that a keystroke in a 10 000-line file copies a
//! few kilobytes, not the file.
//!
//! The prefix runs from the start of the line `lines_before` lines above the
//! cursor to the cursor; the suffix from the cursor to the end of the line
//! `lines_after` lines below (its line ending included). When a side is
//! longer than its character budget it is cut at a line start within the
//! budget (the nearest to the cursor keeps the most), or mid-line only when a
//! single line is longer than the budget.

use super::text::Text;

/// How much text around the cursor a completion gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Whole lines above the cursor's line.
    pub lines_before: usize,
    /// Whole lines below the cursor's line.
    pub lines_after: usize,
    /// The most characters (code points) of prefix.
    pub chars_before: usize,
    /// The most characters of suffix.
    pub chars_after: usize,
}

impl Default for Bounds {
    /// 100 lines / 12 000 characters before, 30 lines / 4 000 after: more
    /// than a small FIM model's context uses, little to copy.
    fn default() -> Self {
        Bounds {
            lines_before: 100,
            lines_after: 30,
            chars_before: 12_000,
            chars_after: 4_000,
        }
    }
}

/// A completion's view of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Around {
    pub prefix: String,
    pub suffix: String,
}

impl Around {
    /// The text around char index `cursor` of `text`, within `bounds`.
    pub fn at(text: &Text, cursor: usize, bounds: Bounds) -> Around {
        let rope = text.rope();
        let line = rope.char_to_line(cursor);

        let first = line.saturating_sub(bounds.lines_before);
        let mut start = rope.line_to_char(first);
        if cursor - start > bounds.chars_before {
            let earliest = cursor - bounds.chars_before;
            let next_line = rope.line_to_char(rope.char_to_line(earliest));
            // The first line start inside the budget, when there is one
            // before the cursor.
            let after = rope.line_to_char(rope.char_to_line(earliest) + 1);
            start = if next_line == earliest || after > cursor {
                earliest
            } else {
                after
            };
        }

        let last = line
            .saturating_add(bounds.lines_after)
            .saturating_add(1)
            .min(rope.len_lines());
        let mut end = rope.line_to_char(last);
        if end - cursor > bounds.chars_after {
            let latest = cursor.saturating_add(bounds.chars_after);
            let line_start = rope.line_to_char(rope.char_to_line(latest));
            end = if line_start > cursor {
                line_start
            } else {
                latest
            };
        }

        Around {
            prefix: text.slice_string(start..cursor),
            suffix: text.slice_string(cursor..end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(lines: usize) -> String {
        (0..lines).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn bounded_by_lines() {
        let text = Text::new(&numbered(10));
        // Cursor after "line 5" (line 5, character 6).
        let cursor = text.rope().line_to_char(5) + 6;
        let bounds = Bounds {
            lines_before: 2,
            lines_after: 1,
            ..Bounds::default()
        };
        let around = Around::at(&text, cursor, bounds);
        assert_eq!(around.prefix, "line 3\nline 4\nline 5");
        assert_eq!(around.suffix, "\nline 6\n");
    }

    #[test]
    fn bounded_by_characters_at_line_starts() {
        let text = Text::new(&numbered(10));
        let cursor = text.rope().line_to_char(5) + 6;
        let bounds = Bounds {
            chars_before: 16,
            chars_after: 10,
            ..Bounds::default()
        };
        let around = Around::at(&text, cursor, bounds);
        assert_eq!(around.prefix, "line 4\nline 5");
        assert_eq!(around.suffix, "\nline 6\n");
        // One line longer than the budget is cut mid-line.
        let long = Text::new(&"é".repeat(50));
        let around = Around::at(
            &long,
            40,
            Bounds {
                chars_before: 5,
                chars_after: 3,
                ..Bounds::default()
            },
        );
        assert_eq!(around.prefix, "ééééé");
        assert_eq!(around.suffix, "ééé");
    }

    #[test]
    fn whole_small_documents() {
        let text = Text::new("a\r\nb😀c");
        let around = Around::at(&text, 4, Bounds::default());
        assert_eq!(around.prefix, "a\r\nb");
        assert_eq!(around.suffix, "😀c");
        let empty = Text::new("");
        assert_eq!(
            Around::at(&empty, 0, Bounds::default()),
            Around {
                prefix: String::new(),
                suffix: String::new()
            }
        );
    }
}
