//! Which characters the text fields of a record may hold: the display rule
//! of `docs/records.md`, section 5.1.
//!
//! Pages, clients and terminals show titles, summaries, descriptions, yank
//! reasons, licenses, URLs and file names as the author wrote them. Some
//! code points change how the text around them is shown, or are not shown
//! at all: `Safe\u{202e}kpa.exe` is shown as `Safeexe.apk`, and
//! `app.apk\u{200b}` looks like `app.apk`. Records may not carry them:
//!
//! * **Never** ([`NEVER`]), in any text field: the bidirectional controls,
//!   the line and paragraph separators (a line ends with `\n` only, and only
//!   where a field may have lines), and the characters that show as nothing
//!   and play no part in writing any language (zero width space, word
//!   joiner, soft hyphen, byte order mark, Hangul fillers, tag characters,
//!   ...). Control characters (Unicode category Cc) are refused as well, but
//!   for `\n` and `\t` in the fields that may have lines.
//! * **Joiners and selectors** ([`JOINERS`]): ZWNJ and ZWJ, the combining
//!   grapheme joiner, the Mongolian variation selectors and vowel separator,
//!   and the variation selectors. Persian, the Indic scripts and Mongolian
//!   need them, and so do emoji sequences (`❤️`, `👩‍💻`). Prose fields may hold
//!   them after a visible character ([`Text::Prose`]); names, whose bytes a
//!   program or file system takes as they are, may not ([`Text::Name`]).
//!
//! The lists are fixed code points, not Unicode properties, so that every
//! implementation refuses the same records whatever Unicode version it knows.

use crate::InvalidRecord;

/// How a text field is used, which decides what it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// One line of prose (title, summary): joiners and selectors after a
    /// visible character.
    Line,
    /// Prose with lines (description, yank reason): as [`Text::Line`], and
    /// `\n` and `\t`.
    Lines,
    /// A name taken as it is (file name, license, URLs): one line, no
    /// joiners or selectors.
    Name,
}

/// Code points no text field may hold (inclusive ranges).
pub(crate) const NEVER: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark (bidi)
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels (invisible, deprecated)
    ('\u{200B}', '\u{200B}'),   // zero width space
    ('\u{200E}', '\u{200F}'),   // left-to-right and right-to-left marks (bidi)
    ('\u{2028}', '\u{2029}'),   // line and paragraph separators
    ('\u{202A}', '\u{202E}'),   // bidi embeddings and overrides, pop
    ('\u{2060}', '\u{2065}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{2069}'),   // bidi isolates, pop
    ('\u{206A}', '\u{206F}'),   // deprecated format characters
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FEFF}', '\u{FEFF}'),   // zero width no-break space, byte order mark
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFFB}'),   // reserved; interlinear annotation
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0000}', '\u{E00FF}'), // tag characters (and reserved)
    ('\u{E01F0}', '\u{E0FFF}'), // reserved, default ignorable
];

/// Joiners and selectors: allowed in prose after a visible character,
/// never in names (inclusive ranges).
pub(crate) const JOINERS: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{180B}', '\u{180F}'),   // Mongolian variation selectors, vowel separator
    ('\u{200C}', '\u{200D}'),   // zero width non-joiner, zero width joiner
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors 1-16 (emoji presentation)
    ('\u{E0100}', '\u{E01EF}'), // variation selectors 17-256 (ideographic variants)
];

const ZWJ: char = '\u{200D}';

/// Whether `c` is refused in every text field: a bidirectional control, a
/// line or paragraph separator or an invisible character (`docs/records.md`,
/// section 5.1, list 1).
/// Clients that show text they did not verify (a search answer) can escape
/// these, as they escape control characters.
pub fn is_hidden(c: char) -> bool {
    within(NEVER, c)
}

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Checks `s`, the value of `field`, against the display rule for `kind`.
pub(crate) fn check(field: &'static str, s: &str, kind: Text) -> Result<(), InvalidRecord> {
    // Most text is ASCII, where only the control characters are refused:
    // every listed code point is above U+007F.
    if s.is_ascii() {
        let allowed =
            |b: u8| !b.is_ascii_control() || (kind == Text::Lines && matches!(b, b'\n' | b'\t'));
        return match s.bytes().all(allowed) {
            true => Ok(()),
            false => Err(InvalidRecord::ControlChar { field }),
        };
    }
    check_chars(field, s, kind)
}

/// [`check`], a character at a time.
fn check_chars(field: &'static str, s: &str, kind: Text) -> Result<(), InvalidRecord> {
    let mut previous: Option<char> = None;
    for c in s.chars() {
        if c.is_control() && !(kind == Text::Lines && matches!(c, '\n' | '\t')) {
            return Err(InvalidRecord::ControlChar { field });
        }
        let refused =
            is_hidden(c) || (within(JOINERS, c) && (kind == Text::Name || !joins(previous, c)));
        if refused {
            return Err(InvalidRecord::FormatChar { field, ch: c });
        }
        previous = Some(c);
    }
    Ok(())
}

/// Whether the joiner or selector `c` may follow `previous` in prose: not
/// first, not after a control character, and not after another joiner or
/// selector, except ZWJ right after a variation selector (`❤️‍🔥`).
fn joins(previous: Option<char>, c: char) -> bool {
    match previous {
        None => false,
        Some(p) if p.is_control() => false,
        Some(p) if within(JOINERS, p) => c == ZWJ && is_variation_selector(p),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str, kind: Text) -> Option<char> {
        match check("f", s, kind) {
            Ok(()) => None,
            Err(InvalidRecord::FormatChar { ch, .. }) => Some(ch),
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    /// Every code point of a list, first, in the middle and last of the text.
    fn each(ranges: &[(char, char)]) -> impl Iterator<Item = char> + '_ {
        ranges.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_full_check() {
        for b in 0..=0x7fu8 {
            for kind in [Text::Line, Text::Lines, Text::Name] {
                for s in [format!("{}", b as char), format!("a{}b", b as char)] {
                    assert_eq!(
                        check("f", &s, kind),
                        check_chars("f", &s, kind),
                        "{b:#x} in {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_never_code_point_is_refused_in_every_field() {
        for c in each(NEVER) {
            for kind in [Text::Line, Text::Lines, Text::Name] {
                for s in [format!("{c}x"), format!("a{c}b"), format!("ab{c}")] {
                    assert_eq!(refused(&s, kind), Some(c), "{s:?} in {kind:?}");
                }
            }
        }
    }

    #[test]
    fn the_named_ones() {
        // The bidi controls of the issue, by name.
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(refused(&format!("Safe{c}kpa.exe"), Text::Line), Some(c));
        }
        // Invisible ones.
        for c in [
            '\u{200B}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{3164}',
            '\u{2028}',
            '\u{2029}',
        ] {
            assert_eq!(refused(&format!("app{c}name"), Text::Lines), Some(c));
        }
        let e = check("metadata.title", "Safe\u{202E}kpa.exe", Text::Line).unwrap_err();
        assert_eq!(
            e.to_string(),
            "metadata.title contains U+202E, an invisible or bidirectional formatting character"
        );
        assert_eq!(e.field(), "metadata.title");
    }

    #[test]
    fn joiners_and_selectors_are_prose_only() {
        for c in each(JOINERS) {
            assert_eq!(refused(&format!("a{c}b"), Text::Name), Some(c));
            assert_eq!(refused(&format!("a{c}b"), Text::Line), None);
            assert_eq!(refused(&format!("a{c}b"), Text::Lines), None);
            // Not first, nor after a line break, nor two in a row.
            assert_eq!(refused(&format!("{c}b"), Text::Line), Some(c));
            assert_eq!(refused(&format!("a\n{c}b"), Text::Lines), Some(c));
            assert_eq!(refused(&format!("a\u{200C}{c}"), Text::Lines), Some(c));
        }
        // Variation selectors smuggle a byte each: one per visible character.
        assert_eq!(refused("a\u{FE0F}\u{FE0E}", Text::Line), Some('\u{FE0E}'));
        assert_eq!(
            refused("a\u{E0100}\u{E0101}", Text::Line),
            Some('\u{E0101}')
        );
        assert_eq!(refused("a\u{200D}\u{200D}b", Text::Line), Some('\u{200D}'));
    }

    #[test]
    fn text_in_many_scripts_is_allowed() {
        for s in [
            "Hello, world! <script>&amp;",
            "Grüße aus Köln — ça va? ¿Qué tal? Ærøskøbing",
            "Ελληνικά, Русский, Українська, Қазақша",
            // Arabic, with Arabic-Indic digits; Hebrew.
            "\u{645}\u{631}\u{62D}\u{628}\u{627} (\u{62A}\u{637}\u{628}\u{64A}\u{642}) \u{661}\u{662}",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD} \u{5E2}\u{5D5}\u{5DC}\u{5DD}, 2.0",
            // Persian "mi-khaham": a ZWNJ inside the word.
            "\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}",
            // Hindi: क्‍ष and the eyelash र्‍य with ZWJ; Bengali ক্‌ষ with ZWNJ.
            "\u{939}\u{93F}\u{928}\u{94D}\u{926}\u{940} \u{915}\u{94D}\u{200D}\u{937} \u{930}\u{94D}\u{200D}\u{92F}",
            "\u{995}\u{9CD}\u{200C}\u{9B7}",
            // Malayalam chillu n; Sinhala sri, both with ZWJ.
            "\u{D28}\u{D4D}\u{200D} \u{DC1}\u{DCA}\u{200D}\u{DBB}\u{DD3}",
            "日本語のメモ、한국어 메모, 中文笔记",
            // An ideographic variation sequence (葛 with VS17).
            "\u{845B}\u{E0100}城市",
            // Mongolian with a free variation selector and the vowel separator.
            "\u{182E}\u{1823}\u{1829}\u{182D}\u{1823}\u{182F} \u{1828}\u{1822}\u{180B} \u{1832}\u{180E}\u{1820}",
            "ไทย ລາວ ქართული Հայերեն አማርኛ",
            // Emoji: presentation selector, skin tone, ZWJ sequences (also
            // after a selector), keycap, flag.
            "\u{2764}\u{FE0F} \u{1F44D}\u{1F3FD} \u{1F469}\u{200D}\u{1F4BB} \
             \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466} \
             \u{1F3F3}\u{FE0F}\u{200D}\u{1F308} \u{2764}\u{FE0F}\u{200D}\u{1F525} \
             1\u{FE0F}\u{20E3} \u{1F1EB}\u{1F1F7}",
            // Combining marks, and a grapheme joiner between two of them.
            "e\u{301} A\u{308}\u{34F}\u{301}",
        ] {
            for kind in [Text::Line, Text::Lines] {
                assert_eq!(check("f", s, kind), Ok(()), "{s:?}");
            }
        }
        // Names: any script, without joiners.
        for s in [
            "notes-1.0.apk",
            "\u{437}\u{430}\u{43C}\u{435}\u{442}\u{43A}\u{438}.apk",
            "\u{645}\u{644}\u{627}\u{62D}\u{638}\u{627}\u{62A}.apk",
            "\u{928}\u{94B}\u{91F}\u{94D}\u{938}.apk",
            "メモ.apk",
        ] {
            assert_eq!(check("f", s, Text::Name), Ok(()), "{s:?}");
        }
        assert_eq!(check("f", "line\n\ttab", Text::Lines), Ok(()));
    }

    #[test]
    fn control_characters_keep_their_error() {
        for (s, kind) in [
            ("a\nb", Text::Line),
            ("a\tb", Text::Name),
            ("a\rb", Text::Lines),
            ("a\u{85}b", Text::Lines),
            ("a\u{7}b", Text::Line),
        ] {
            assert_eq!(
                check("f", s, kind),
                Err(InvalidRecord::ControlChar { field: "f" }),
                "{s:?}"
            );
        }
    }
}
