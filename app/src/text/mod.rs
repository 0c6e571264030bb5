//! Which characters in an agent's text are suspicious. One rule set for everything that shows or
//! accepts such text: the server's validation at `/bc-authorize`, the notifications and the pages
//! (`components::statement`) all call these functions, and [`segments`] is the one place that decides
//! what is flagged.

/// Characters that change how text looks without being visible themselves: zero-width characters,
/// bidirectional controls, variation selectors, tags and other default-ignorable code points.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E0FFF}')
        || c.is_control()
}

mod compatibility;

/// The alphabets whose letters pass for one another ("раypal" with Cyrillic р and а).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Cherokee,
}

/// The confusable alphabet a letter belongs to, if any.
pub fn script(c: char) -> Option<Script> {
    Some(match c {
        'A'..='Z' | 'a'..='z' => Script::Latin,
        '\u{00C0}'..='\u{024F}' if c.is_alphabetic() => Script::Latin,
        '\u{1E00}'..='\u{1EFF}' | '\u{2C60}'..='\u{2C7F}' | '\u{A720}'..='\u{A7FF}' => {
            Script::Latin
        }
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Script::Greek,
        '\u{0400}'..='\u{052F}'
        | '\u{1C80}'..='\u{1C8F}'
        | '\u{2DE0}'..='\u{2DFF}'
        | '\u{A640}'..='\u{A69F}' => Script::Cyrillic,
        '\u{0531}'..='\u{058F}' => Script::Armenian,
        '\u{13A0}'..='\u{13FF}' | '\u{AB70}'..='\u{ABBF}' => Script::Cherokee,
        _ => return None,
    })
}

/// Cyrillic, Greek, Armenian and Cherokee letters, which can pass for Latin ones.
pub fn is_lookalike_script(c: char) -> bool {
    script(c).is_some_and(|s| s != Script::Latin)
}

/// Characters that Unicode compatibility normalisation (NFKC) turns into a plainer letter or digit:
/// fullwidth and halfwidth forms, mathematical and enclosed alphanumerics, superscripts, ligatures,
/// letterlike symbols, Roman numerals ("ｐａｙ" or "𝐩𝐚𝐲" for "pay"). The table is generated from
/// Unicode's data; a test checks it against the `unicode-normalization` crate.
pub fn is_compatibility_form(c: char) -> bool {
    let c = c as u32;
    compatibility::RANGES
        .binary_search_by(|&(start, end)| {
            if end < c {
                std::cmp::Ordering::Less
            } else if start > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Combining marks of the general-purpose blocks: drawn over the character before them, they change
/// how it looks ("o\u{0338}" looks like "ø", "=\u{0338}" like "≠").
pub fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// Letters and digits of right-to-left scripts (bidi classes R and AL, and the Arabic-Indic digits):
/// Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic, their presentation forms, and the
/// right-to-left blocks of the supplementary planes.
pub fn is_right_to_left(c: char) -> bool {
    matches!(c,
        '\u{0590}'..='\u{08FF}' | '\u{FB1D}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFE}'
        | '\u{10800}'..='\u{10FFF}' | '\u{1E800}'..='\u{1EFFF}')
}

/// Why a character is flagged as a possible look-alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookalike {
    /// A letter of another alphabet among Latin letters, or in a word that mixes alphabets.
    OtherAlphabet,
    /// A form NFKC turns into a plainer letter or digit.
    Compatibility,
    /// A combining mark, drawn over the character before it.
    CombiningMark,
}

/// A piece of agent text as it is shown.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    Plain(String),
    Invisible(char),
    Lookalike(char, Lookalike),
    RightToLeft(char),
    /// A run of two or more whitespace characters, which a browser would collapse into one.
    Spaces(usize),
}

/// Splits `text` into what is shown as is and what is flagged. Letters of a confusable alphabet are
/// flagged when the text also has Latin letters, or when their own word mixes alphabets.
pub fn segments(text: &str) -> Vec<Segment> {
    let has_latin = text.chars().any(|c| script(c) == Some(Script::Latin));
    let mixed_words = mixed_word_letters(text);
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let other_alphabet = is_lookalike_script(c) && (has_latin || mixed_words.contains(&at));
        let flagged = if is_invisible(c) {
            Some(Segment::Invisible(c))
        } else if c.is_whitespace() && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            let mut run = 1;
            while chars.next_if(|(_, next)| next.is_whitespace()).is_some() {
                run += 1;
            }
            Some(Segment::Spaces(run))
        } else if other_alphabet {
            Some(Segment::Lookalike(c, Lookalike::OtherAlphabet))
        } else if is_compatibility_form(c) {
            Some(Segment::Lookalike(c, Lookalike::Compatibility))
        } else if is_combining_mark(c) {
            Some(Segment::Lookalike(c, Lookalike::CombiningMark))
        } else if is_right_to_left(c) {
            Some(Segment::RightToLeft(c))
        } else {
            None
        };
        match flagged {
            Some(segment) => {
                if !plain.is_empty() {
                    out.push(Segment::Plain(std::mem::take(&mut plain)));
                }
                out.push(segment);
            }
            None => plain.push(c),
        }
    }
    if !plain.is_empty() {
        out.push(Segment::Plain(plain));
    }
    out
}

/// Byte offsets of the letters in words (runs of letters and marks) that mix confusable alphabets.
fn mixed_word_letters(text: &str) -> Vec<usize> {
    let mut flagged = Vec::new();
    let mut word: Vec<(usize, Option<Script>)> = Vec::new();
    let mut close = |word: &mut Vec<(usize, Option<Script>)>| {
        let mut scripts = word.iter().filter_map(|(_, s)| *s);
        if let Some(first) = scripts.next() {
            if scripts.any(|s| s != first) {
                flagged.extend(word.iter().filter(|(_, s)| s.is_some()).map(|(at, _)| *at));
            }
        }
        word.clear();
    };
    for (at, c) in text.char_indices() {
        if c.is_alphabetic() || is_combining_mark(c) {
            word.push((at, script(c)));
        } else {
            close(&mut word);
        }
    }
    close(&mut word);
    flagged
}

/// What a text holds that its reader should be warned of, for places that cannot mark characters
/// (notification titles and bodies, e-mail).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Suspicion {
    /// Invisible characters, look-alikes or runs of spaces.
    pub disguised: bool,
    pub right_to_left: bool,
}

pub fn suspicion(text: &str) -> Suspicion {
    let mut found = Suspicion::default();
    for segment in segments(text) {
        match segment {
            Segment::Plain(_) => {}
            Segment::RightToLeft(_) => found.right_to_left = true,
            Segment::Invisible(_) | Segment::Lookalike(..) | Segment::Spaces(_) => {
                found.disguised = true;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text: every character is accounted for, once, and nothing the renderer flags is left
        /// inside plain text (where a browser would draw it unmarked).
        #[test]
        fn every_character_is_shown_or_flagged(text in "\\PC{0,200}", tricky in "[a-z0-9 \\u{200b}-\\u{200f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{0430}-\\u{044f}\\u{05d0}-\\u{05ea}\\u{0300}-\\u{036f}\\u{ff10}-\\u{ff19}]{0,60}") {
            for text in [text, tricky] {
                let shown = segments(&text);
                let counted: usize = shown
                    .iter()
                    .map(|s| match s {
                        Segment::Plain(p) => p.chars().count(),
                        Segment::Spaces(n) => *n,
                        _ => 1,
                    })
                    .sum();
                prop_assert_eq!(counted, text.chars().count());
                for segment in &shown {
                    if let Segment::Plain(plain) = segment {
                        prop_assert!(plain.chars().all(|c| !is_invisible(c) && !is_right_to_left(c) && !is_combining_mark(c)), "{plain:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn invisible_and_lookalike_characters_are_flagged() {
        assert_eq!(segments("plain"), vec![Segment::Plain("plain".into())]);
        assert_eq!(
            segments("a\u{200B}b\u{202E}"),
            vec![
                Segment::Plain("a".into()),
                Segment::Invisible('\u{200B}'),
                Segment::Plain("b".into()),
                Segment::Invisible('\u{202E}')
            ]
        );
        // Cyrillic "а" inside a Latin word.
        assert_eq!(
            segments("p\u{0430}y"),
            vec![
                Segment::Plain("p".into()),
                Segment::Lookalike('\u{0430}', Lookalike::OtherAlphabet),
                Segment::Plain("y".into())
            ]
        );
        // A right-to-left letter is marked where it stands; the digits around it stay plain.
        assert_eq!(
            segments("DE89 \u{05E9} 3704"),
            vec![
                Segment::Plain("DE89 ".into()),
                Segment::RightToLeft('\u{05E9}'),
                Segment::Plain(" 3704".into())
            ]
        );
        // Runs of whitespace are counted, not collapsed; single spaces stay plain.
        assert_eq!(
            segments("order 1  \t and"),
            vec![
                Segment::Plain("order 1".into()),
                Segment::Spaces(4),
                Segment::Plain("and".into())
            ]
        );
        // All-Cyrillic text is not mixed, so not flagged.
        assert_eq!(
            segments("\u{0434}\u{0430}"),
            vec![Segment::Plain("\u{0434}\u{0430}".into())]
        );
    }

    #[test]
    fn words_mixing_alphabets_are_flagged_even_without_latin() {
        // Greek omicron in a Cyrillic word: both alphabets' letters are marked.
        let flagged: Vec<_> = segments("\u{0434}\u{03BF}\u{043C} \u{0434}\u{0430}")
            .into_iter()
            .filter(|s| matches!(s, Segment::Lookalike(_, Lookalike::OtherAlphabet)))
            .collect();
        assert_eq!(flagged.len(), 3, "{flagged:?}");
        // Armenian and Cherokee pass for Latin too.
        assert!(matches!(
            segments("\u{0585}k")[0],
            Segment::Lookalike('\u{0585}', Lookalike::OtherAlphabet)
        ));
        assert!(is_lookalike_script('\u{13AA}'));
    }

    #[test]
    fn compatibility_forms_and_combining_marks_are_flagged() {
        for (text, c) in [
            ("\u{FF50}ay", '\u{FF50}'),   // fullwidth p
            ("\u{1D429}ay", '\u{1D429}'), // mathematical bold p
            ("\u{FB01}le", '\u{FB01}'),   // the fi ligature
            ("x\u{00B2}", '\u{00B2}'),    // superscript two
            ("\u{2160}V", '\u{2160}'),    // Roman numeral one
            ("\u{2460}", '\u{2460}'),     // circled one
        ] {
            assert!(
                segments(text).contains(&Segment::Lookalike(c, Lookalike::Compatibility)),
                "{text:?}"
            );
        }
        assert!(segments("o\u{0338}")
            .contains(&Segment::Lookalike('\u{0338}', Lookalike::CombiningMark)));
        // What NFKC leaves alone, or only turns into punctuation, is not a look-alike.
        for plain in [
            "caf\u{00E9}",
            "\u{2026}",
            "\u{00B0}C",
            "\u{20AC}12",
            "\u{00E6}",
        ] {
            assert_eq!(
                segments(plain),
                vec![Segment::Plain(plain.into())],
                "{plain:?}"
            );
        }
    }

    #[test]
    fn warnings_for_places_that_cannot_mark() {
        assert_eq!(suspicion("Refund order 1234"), Suspicion::default());
        assert!(suspicion("p\u{0430}y").disguised);
        assert!(suspicion("a  b").disguised);
        let rtl = suspicion("DE89 \u{05E9} 3704");
        assert!(rtl.right_to_left && !rtl.disguised);
    }

    /// The compatibility table is exactly the characters NFKC turns into something holding a letter
    /// or digit; on a mismatch this prints the table to paste into `text/compatibility.rs`.
    #[test]
    fn the_compatibility_table_is_what_nfkc_folds() {
        use unicode_normalization::UnicodeNormalization;
        let folds = |c: char| {
            let folded: String = std::iter::once(c).nfkc().collect();
            folded != c.to_string() && folded.chars().any(char::is_alphanumeric)
        };
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for c in (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| folds(c))
        {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == c as u32 => *end = c as u32,
                _ => ranges.push((c as u32, c as u32)),
            }
        }
        if ranges != compatibility::RANGES {
            let table: String = ranges
                .iter()
                .map(|(a, b)| format!("    (0x{a:04X}, 0x{b:04X}),\n"))
                .collect();
            panic!("the table is out of date; it should be:\n{table}");
        }
    }
}
