//! Document sync against a naive model: random incremental edits (CJK,
//! emoji, CRLF, lone CR) applied to the store and to a plain `String` whose
//! lines and positions are computed from scratch each time, in every
//! encoding; bad positions mixed in must be refused and change nothing.
//! Seeded, so a failure repeats; `SYNC_SEED=N` runs another seed.

use super::*;

/// The naive model: a string, lines recomputed by a scan.
struct Model {
    text: String,
}

impl Model {
    /// Byte ranges of each line's content (without its line ending).
    fn lines(&self) -> Vec<(usize, usize)> {
        let bytes = self.text.as_bytes();
        let mut lines = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    lines.push((start, i));
                    start = i + 1;
                }
                b'\r' => {
                    lines.push((start, i));
                    if bytes.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        lines.push((start, bytes.len()));
        lines
    }

    fn units(c: char, encoding: Encoding) -> usize {
        match encoding {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }

    /// The byte offset of `chars` characters into `line`, and its position.
    fn position(&self, line: usize, chars: usize, encoding: Encoding) -> (usize, Position) {
        let (start, end) = self.lines()[line];
        let content = &self.text[start..end];
        let mut character = 0;
        let mut byte = start;
        for c in content.chars().take(chars) {
            character += Model::units(c, encoding);
            byte += c.len_utf8();
        }
        let position = Position {
            line: line as u32,
            character: character as u32,
        };
        (byte, position)
    }
}

const PIECES: &[&str] = &[
    "a", "é", "中", "文", "😀", "👋🏽", "\n", "\r\n", "\r", " ", "{", "}",
];

fn random_text(rng: &mut fastrand::Rng, max: usize) -> String {
    (0..rng.usize(0..=max))
        .map(|_| PIECES[rng.usize(..PIECES.len())])
        .collect()
}

/// A valid random position in the model, with its byte offset.
fn random_position(
    model: &Model,
    rng: &mut fastrand::Rng,
    encoding: Encoding,
) -> (usize, Position) {
    let lines = model.lines();
    let line = rng.usize(..lines.len());
    let (start, end) = lines[line];
    let chars = model.text[start..end].chars().count();
    model.position(line, rng.usize(0..=chars), encoding)
}

/// A position that must be refused, when the model has one of that kind.
fn bad_position(model: &Model, rng: &mut fastrand::Rng, encoding: Encoding) -> Option<Position> {
    let lines = model.lines();
    match rng.u8(0..3) {
        0 => Some(Position {
            line: lines.len() as u32 + rng.u32(0..3),
            character: 0,
        }),
        1 => {
            let line = rng.usize(..lines.len());
            let (start, end) = lines[line];
            let length: usize = model.text[start..end]
                .chars()
                .map(|c| Model::units(c, encoding))
                .sum();
            Some(Position {
                line: line as u32,
                character: (length + 1 + rng.usize(0..3)) as u32,
            })
        }
        _ => {
            // Inside a character wider than one unit.
            let line = rng.usize(..lines.len());
            let (start, end) = lines[line];
            let mut character = 0;
            for c in model.text[start..end].chars() {
                let units = Model::units(c, encoding);
                if units > 1 {
                    return Some(Position {
                        line: line as u32,
                        character: (character + rng.usize(1..units)) as u32,
                    });
                }
                character += units;
            }
            None
        }
    }
}

fn check_same(docs: &Documents, model: &Model, encoding: Encoding, step: usize) {
    let document = docs.get("file:///p").unwrap();
    let text = &document.text;
    assert_eq!(text.to_string(), model.text, "text after step {step}");
    let lines = model.lines();
    assert_eq!(text.len_lines(), lines.len(), "lines after step {step}");
    // Every line's end, converted both ways.
    for (line, &(start, end)) in lines.iter().enumerate() {
        let chars = model.text[start..end].chars().count();
        let (byte, position) = model.position(line, chars, encoding);
        let index = text.char_index(position, encoding).unwrap();
        assert_eq!(
            text.rope().char_to_byte(index),
            byte,
            "line {line} end, step {step}"
        );
        assert_eq!(text.position(index, encoding), position);
    }
}

fn run(seed: u64, encoding: Encoding, steps: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut model = Model {
        text: random_text(&mut rng, 40),
    };
    let mut docs = Documents::new();
    docs.open("file:///p", "text", 0, &model.text).unwrap();
    let mut version = 0;
    for step in 0..steps {
        version += 1;
        if rng.u8(0..10) == 0 {
            // A bad change in the middle of good ones: nothing applies.
            let (byte, good) = random_position(&model, &mut rng, encoding);
            let mut after_good = Model {
                text: model.text.clone(),
            };
            after_good.text.insert(byte, 'x');
            let Some(bad) = bad_position(&after_good, &mut rng, encoding) else {
                continue;
            };
            let changes = [
                Change {
                    range: Some(Range {
                        start: good,
                        end: good,
                    }),
                    text: "x".into(),
                },
                Change {
                    range: Some(Range {
                        start: bad,
                        end: bad,
                    }),
                    text: "y".into(),
                },
            ];
            let e = docs.change("file:///p", Some(version), &changes, encoding);
            assert!(
                matches!(e, Err(DocumentError::Position { index: 1, .. })),
                "step {step}: {bad:?} must be refused, got {e:?}"
            );
        } else if rng.u8(0..50) == 0 {
            model.text = random_text(&mut rng, 30);
            let change = Change {
                range: None,
                text: model.text.clone(),
            };
            docs.change("file:///p", Some(version), &[change], encoding)
                .unwrap();
        } else {
            // One to three edits, each against the text the previous left.
            let mut changes = Vec::new();
            for _ in 0..rng.usize(1..=3) {
                let (mut a, mut pa) = random_position(&model, &mut rng, encoding);
                let (mut b, mut pb) = random_position(&model, &mut rng, encoding);
                if pb < pa {
                    std::mem::swap(&mut a, &mut b);
                    std::mem::swap(&mut pa, &mut pb);
                }
                let insert = random_text(&mut rng, 6);
                model.text.replace_range(a..b, &insert);
                changes.push(Change {
                    range: Some(Range { start: pa, end: pb }),
                    text: insert,
                });
            }
            docs.change("file:///p", Some(version), &changes, encoding)
                .unwrap_or_else(|e| panic!("step {step}: {changes:?} refused: {e}"));
        }
        check_same(&docs, &model, encoding, step);
    }
}

fn seed() -> u64 {
    std::env::var("SYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed18)
}

#[test]
fn random_edits_utf16() {
    run(seed(), Encoding::Utf16, 3000);
}

#[test]
fn random_edits_utf8() {
    run(seed() + 1, Encoding::Utf8, 3000);
}

#[test]
fn random_edits_utf32() {
    run(seed() + 2, Encoding::Utf32, 1000);
}

#[test]
fn around_matches_the_model() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for _ in 0..300 {
        let model = Model {
            text: random_text(&mut rng, 200),
        };
        let text = Text::new(&model.text);
        let (byte, position) = random_position(&model, &mut rng, Encoding::Utf16);
        let cursor = text.char_index(position, Encoding::Utf16).unwrap();
        let bounds = Bounds {
            lines_before: usize::MAX,
            lines_after: usize::MAX,
            chars_before: usize::MAX,
            chars_after: usize::MAX,
        };
        let around = Around::at(&text, cursor, bounds);
        assert_eq!(around.prefix, model.text[..byte]);
        assert_eq!(around.suffix, model.text[byte..]);
    }
}
