//! Which characters in an agent's text are suspicious. One rule set for everything that shows or
//! accepts such text: the server's validation at `/bc-authorize`, the notifications and the pages
//! (`components::statement`) all call these functions.

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

/// Cyrillic and Greek letters, which can pass for Latin ones ("раypal" with Cyrillic р and а).
pub fn is_lookalike_script(c: char) -> bool {
    matches!(c, '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}')
}

/// Letters and digits of right-to-left scripts (bidi classes R and AL, and the Arabic-Indic digits):
/// Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic, their presentation forms, and the
/// right-to-left blocks of the supplementary planes.
pub fn is_right_to_left(c: char) -> bool {
    matches!(c,
        '\u{0590}'..='\u{08FF}' | '\u{FB1D}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFE}'
        | '\u{10800}'..='\u{10FFF}' | '\u{1E800}'..='\u{1EFFF}')
}
