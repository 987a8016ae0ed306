//! Lucene regular expressions, the dialect of `regex` and `regex~`.
//!
//! Elasticsearch runs EQL's `regex` as a `regexp` query, so the pattern is
//! Lucene's `RegExp` syntax with all optional operators enabled: union `|`,
//! intersection `&`, complement `~`, repetition `? * + {n} {n,} {n,m}`,
//! classes `[a-z]` and `[^...]`, `.`, `#` (empty language), `@` (any string),
//! `"..."` (literal string), `()` (empty string), `<n-m>` (decimal interval)
//! and the shorthands `\d \D \s \S \w \W`. A match must cover the whole value;
//! there are no anchors, lazy quantifiers or back-references. `regex~` folds
//! case as Lucene 9 does: ASCII letters only, and not inside ranges (so
//! `[a-z]` still matches lower case only).
//!
//! Matching is by derivatives (see `derivative`), which handle `&` and `~`
//! without building an automaton and run in time linear in the value.
//!
//! Not done yet: named automata (`<name>`) are rejected, as Elasticsearch
//! has none to offer; Lucene's determinization work limit is not mirrored;
//! a pattern that matches everything (`.*`) still needs a string value,
//! where Elasticsearch turns it into "has a value". Case folding is that of
//! Elasticsearch 8 (Lucene 9); Lucene 10 folds beyond ASCII.

use super::derivative::{
    CharSet, MAX_CHAR, R, alt, and, anything, cat, empty, matches, not, nothing, rep, set, star,
};

/// Longest pattern accepted, Elasticsearch's default `index.max_regex_length`.
const MAX_LENGTH: usize = 1000;
/// Deepest nesting of parentheses accepted.
const MAX_DEPTH: usize = 100;
/// A compiled Lucene regular expression, matched against whole values.
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    root: R,
}

impl Regex {
    /// Compiles `pattern`; `insensitive` folds ASCII letters as `regex~` does.
    /// The error says what is wrong, in Lucene's terms.
    pub(crate) fn new(pattern: &str, insensitive: bool) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > MAX_LENGTH {
            return Err(format!("a pattern of at most {MAX_LENGTH} characters"));
        }
        let mut p = Parser {
            chars,
            pos: 0,
            insensitive,
            depth: 0,
        };
        let root = if p.chars.is_empty() {
            empty()
        } else {
            p.union()?
        };
        if p.pos < p.chars.len() {
            return Err(format!("end of pattern at position {}", p.pos));
        }
        Ok(Self { root })
    }

    /// True when the whole of `text` matches.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        matches(&self.root, text)
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    insensitive: bool,
    depth: usize,
}

impl Parser {
    fn more(&self) -> bool {
        self.pos < self.chars.len()
    }
    fn peek(&self, any_of: &str) -> bool {
        self.chars
            .get(self.pos)
            .is_some_and(|c| any_of.contains(*c))
    }
    fn eat(&mut self, c: char) -> bool {
        let hit = self.chars.get(self.pos) == Some(&c);
        self.pos += usize::from(hit);
        hit
    }
    fn next(&mut self) -> Result<char, String> {
        let c = self.chars.get(self.pos).copied();
        self.pos += 1;
        c.ok_or_else(|| "more pattern (it ends too early)".to_string())
    }

    fn union(&mut self) -> Result<R, String> {
        let mut items = vec![self.inter()?];
        while self.eat('|') {
            items.push(self.inter()?);
        }
        Ok(alt(items))
    }

    fn inter(&mut self) -> Result<R, String> {
        let mut items = vec![self.concat()?];
        while self.eat('&') {
            items.push(self.concat()?);
        }
        Ok(and(items))
    }

    fn concat(&mut self) -> Result<R, String> {
        let mut items = vec![self.repeat()?];
        while self.more() && !self.peek(")|&") {
            items.push(self.repeat()?);
        }
        Ok(items.into_iter().rev().fold(empty(), |acc, r| cat(r, acc)))
    }

    fn repeat(&mut self) -> Result<R, String> {
        let mut e = self.complement()?;
        while self.peek("?*+{") {
            e = match self.next()? {
                '?' => alt(vec![e, empty()]),
                '*' => star(e),
                '+' => rep(e, 1, None),
                _ => {
                    let n = self.number()?;
                    let m = if self.eat(',') {
                        if self.peek("0123456789") {
                            Some(self.number()?)
                        } else {
                            None
                        }
                    } else {
                        Some(n)
                    };
                    if !self.eat('}') {
                        return Err(format!("'}}' at position {}", self.pos));
                    }
                    rep(e, n, m)
                }
            };
        }
        Ok(e)
    }

    fn number(&mut self) -> Result<u32, String> {
        let start = self.pos;
        while self.peek("0123456789") {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        digits
            .parse()
            .map_err(|_| format!("an integer at position {start}"))
    }

    fn complement(&mut self) -> Result<R, String> {
        let mut count = 0;
        while self.eat('~') {
            count += 1;
        }
        let e = self.class()?;
        Ok(if count % 2 == 1 { not(e) } else { e })
    }

    fn class(&mut self) -> Result<R, String> {
        if !self.eat('[') {
            return self.simple();
        }
        let negate = self.eat('^');
        let mut ranges = self.class_item()?;
        while self.more() && !self.peek("]") {
            ranges.extend(self.class_item()?);
        }
        if !self.eat(']') {
            return Err(format!("']' at position {}", self.pos));
        }
        let s = CharSet::of(ranges);
        Ok(set(if negate { s.complement().0 } else { s.0 }))
    }

    fn class_item(&mut self) -> Result<Vec<(u32, u32)>, String> {
        if let Some(ranges) = self.predefined()? {
            return Ok(ranges);
        }
        let from = self.char_exp()?;
        if self.eat('-') {
            let to = self.char_exp()?;
            if from > to {
                return Err(format!(
                    "a range whose start is not after its end ({from}-{to})"
                ));
            }
            return Ok(vec![(u32::from(from), u32::from(to))]);
        }
        Ok(self.char_ranges(from))
    }

    fn simple(&mut self) -> Result<R, String> {
        if self.eat('.') {
            return Ok(set(vec![(0, MAX_CHAR)]));
        }
        if self.eat('#') {
            return Ok(nothing());
        }
        if self.eat('@') {
            return Ok(anything());
        }
        if self.eat('"') {
            let mut items = Vec::new();
            while self.more() && !self.peek("\"") {
                let c = self.next()?;
                items.push(set(self.char_ranges(c)));
            }
            if !self.eat('"') {
                return Err(format!("'\"' at position {}", self.pos));
            }
            return Ok(items.into_iter().rev().fold(empty(), |acc, r| cat(r, acc)));
        }
        if self.eat('(') {
            if self.eat(')') {
                return Ok(empty());
            }
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("at most {MAX_DEPTH} nested groups"));
            }
            let e = self.union()?;
            self.depth -= 1;
            if !self.eat(')') {
                return Err(format!("')' at position {}", self.pos));
            }
            return Ok(e);
        }
        if self.eat('<') {
            return self.interval();
        }
        if let Some(ranges) = self.predefined()? {
            return Ok(set(ranges));
        }
        let c = self.char_exp()?;
        Ok(set(self.char_ranges(c)))
    }

    /// `\d \D \s \S \w \W`; consumes a `\` that starts an ordinary escape.
    fn predefined(&mut self) -> Result<Option<Vec<(u32, u32)>>, String> {
        if !self.eat('\\') {
            return Ok(None);
        }
        let Some(&c) = self.chars.get(self.pos) else {
            return Ok(None);
        };
        let positive = |c: char| -> Vec<(u32, u32)> {
            match c.to_ascii_lowercase() {
                'd' => vec![(48, 57)],
                's' => vec![(9, 10), (13, 13), (32, 32)],
                _ => vec![(48, 57), (65, 90), (95, 95), (97, 122)],
            }
        };
        match c {
            'd' | 's' | 'w' => {
                self.pos += 1;
                Ok(Some(positive(c)))
            }
            'D' | 'S' | 'W' => {
                self.pos += 1;
                Ok(Some(CharSet::of(positive(c)).complement().0))
            }
            '\\' => {
                self.pos += 1;
                Ok(Some(vec![(92, 92)]))
            }
            c if c.is_ascii_alphabetic() => Err(format!("a known escape instead of \\{c}")),
            _ => Ok(None),
        }
    }

    fn char_exp(&mut self) -> Result<char, String> {
        self.eat('\\');
        self.next()
    }

    /// The character `c`, with its other ASCII case under `regex~`.
    fn char_ranges(&self, c: char) -> Vec<(u32, u32)> {
        let mut out = vec![(u32::from(c), u32::from(c))];
        if self.insensitive && c.is_ascii_alphabetic() {
            let other = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            out.push((u32::from(other), u32::from(other)));
        }
        out
    }

    /// `<n-m>`: decimal numbers from n to m; with as many digits as both
    /// when they are written with the same number of digits, else with any
    /// number of leading zeros.
    fn interval(&mut self) -> Result<R, String> {
        let start = self.pos;
        while self.more() && !self.peek(">") {
            self.pos += 1;
        }
        if !self.eat('>') {
            return Err(format!("'>' at position {}", self.pos));
        }
        let body: String = self.chars[start..self.pos - 1].iter().collect();
        let Some((lo, hi)) = body.split_once('-') else {
            return Err(format!(
                "a numeric interval instead of the named automaton <{body}>"
            ));
        };
        let parse = |s: &str| -> Option<u32> {
            let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| s.parse::<i32>().ok().and_then(|v| u32::try_from(v).ok()))
                .flatten()
        };
        let (Some(a), Some(b)) = (parse(lo), parse(hi)) else {
            return Err(format!(
                "a numeric interval such as <1-10> instead of <{body}>"
            ));
        };
        let (min, max) = (a.min(b), a.max(b));
        if lo.len() == hi.len() {
            let w = lo.len();
            return Ok(fixed_range(&pad(min, w), &pad(max, w)));
        }
        let mut lengths = Vec::new();
        for len in pad(min, 0).len()..=pad(max, 0).len() {
            let floor = if len == 1 {
                0
            } else {
                10u32.pow(len as u32 - 1)
            };
            let ceil = 10u64.pow(len as u32) - 1;
            let (from, to) = (min.max(floor), u64::from(max).min(ceil));
            if u64::from(from) <= to {
                lengths.push(fixed_range(&pad(from, len), &to.to_string().into_bytes()));
            }
        }
        Ok(cat(star(set(vec![(48, 48)])), alt(lengths)))
    }
}

fn pad(n: u32, width: usize) -> Vec<u8> {
    format!("{n:0width$}").into_bytes()
}

/// Strings of `lo.len()` digits from `lo` to `hi` (both of that length).
fn fixed_range(lo: &[u8], hi: &[u8]) -> R {
    let (Some((&l, lo_rest)), Some((&h, hi_rest))) = (lo.split_first(), hi.split_first()) else {
        return empty();
    };
    let digit = |a: u8, b: u8| set(vec![(u32::from(a), u32::from(b))]);
    if l == h {
        return cat(digit(l, l), fixed_range(lo_rest, hi_rest));
    }
    let nines = vec![b'9'; lo_rest.len()];
    let zeros = vec![b'0'; hi_rest.len()];
    let mut parts = vec![cat(digit(l, l), fixed_range(lo_rest, &nines))];
    if h - l > 1 {
        parts.push(cat(digit(l + 1, h - 1), fixed_range(&zeros, &nines)));
    }
    parts.push(cat(digit(h, h), fixed_range(&zeros, hi_rest)));
    alt(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Regex::new(pattern, false).unwrap().is_match(text)
    }

    #[test]
    fn basics_are_anchored() {
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abcd"));
        assert!(!m("bc", "abc"));
        assert!(m("a.c", "abc"));
        assert!(m("a.*", "a\nb"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("ab|cd", "cd"));
        assert!(m("(ab)+", "ababab"));
        assert!(!m("(ab)+", ""));
        assert!(m("a?b", "b"));
        assert!(m("a{2,3}", "aaa"));
        assert!(!m("a{2,3}", "aaaa"));
        assert!(m("a{2,}", "aaaaa"));
        assert!(m("a{2}", "aa"));
        assert!(m("()", ""));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("[a-c]+", "abcabc"));
        assert!(!m("[a-c]", "d"));
        assert!(m("[^-]*", "abc"));
        assert!(!m("[^-]*", "a-c"));
        assert!(m(r"[a-z0-9_\-]", "-"));
        assert!(m(r"\d\d", "42"));
        assert!(m(r"\w+\.\w+", "a_1.pid"));
        assert!(m(r"\S+\s\S+", "a b"));
        assert!(m(r"\\", "\\"));
        assert!(m(r"a\.b", "a.b"));
        assert!(!m(r"a\.b", "axb"));
        assert!(m(r"\@", "@"));
        assert!(m(r#""a.b""#, "a.b"));
        assert!(!m(r#""a.b""#, "axb"));
    }

    #[test]
    fn lucene_operators() {
        assert!(m("@", "anything at all"));
        assert!(!m("#", ""));
        assert!(m("a~b", "ax"));
        assert!(!m("a~b", "ab"));
        assert!(m("~(.*foo.*)", "bar"));
        assert!(!m("~(.*foo.*)", "xfoox"));
        assert!(m("[a-z]+&.*q.*", "aqb"));
        assert!(!m("[a-z]+&.*q.*", "ab"));
        assert!(m("<1-100>", "42"));
        assert!(m("<1-100>", "042"));
        assert!(!m("<1-100>", "101"));
        assert!(m("<01-10>", "05"));
        assert!(!m("<01-10>", "5"));
        assert!(m("<0-5>", "3"));
        assert!(!m("<0-5>", "03"));
        assert!(m("<0-10>", "000"));
        assert!(m("<0-10>", "007"));
        assert!(m("<10-1>", "7"));
    }

    #[test]
    fn rule_patterns() {
        let ip = r".*[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:[0-9]{1,5}:.*";
        assert!(m(ip, "ssh -L 8080:10.0.0.1:22:host"));
        assert!(!m(ip, "ssh -L 8080:host:22"));
        let tunnel = "-[A-NP-Za-np-z][A-Za-z]*[RLDwW][A-Za-z]*";
        assert!(m(tunnel, "-fNL"));
        assert!(!m(tunnel, "-o"));
        let hidden = r"\.[a-z0-9_\-][a-z0-9_\-\.]{1,254}";
        assert!(Regex::new(hidden, true).unwrap().is_match(".hidden"));
        assert!(!Regex::new(hidden, true).unwrap().is_match(".x"));
        assert!(m(r"/var/run/\w+\.(pid|lock|reboot)", "/var/run/x1.pid"));
        assert!(m(r"php?[0-9]?\.?[0-9]{0,2}", "php7.4"));
    }

    #[test]
    fn insensitive_folds_ascii_letters_but_not_ranges() {
        let r = Regex::new("abc[a-z]", true).unwrap();
        assert!(r.is_match("ABCd"));
        assert!(!r.is_match("ABCD"));
        assert!(Regex::new("[abc]", true).unwrap().is_match("B"));
        assert!(!Regex::new("é", true).unwrap().is_match("É"));
    }

    #[test]
    fn errors() {
        for bad in [
            "(", "a)", "[a", "a{", "a{x}", "\"a", "<a>", "<1->", r"\q", "a|", "[z-a]",
        ] {
            assert!(Regex::new(bad, false).is_err(), "{bad} should not compile");
        }
        assert!(Regex::new(&"a".repeat(1001), false).is_err());
        assert!(Regex::new(&"(".repeat(200), false).is_err());
    }

    #[test]
    fn long_values_are_fine() {
        let r = Regex::new(".*(a|b)*c.*", false).unwrap();
        assert!(r.is_match(&format!("{}c", "ab".repeat(5000))));
    }
}
