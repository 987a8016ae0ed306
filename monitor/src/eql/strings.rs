//! String literals for the lexer: double-quoted with the escapes `\b \t \n
//! \f \r \" \' \\` and `\u{XX..XXXXXXXX}` (2 to 8 hex digits naming a
//! Unicode scalar value), and raw `"""..."""` strings without escapes, which
//! end at the first `"""` and keep up to two more quotes (`"""a"""""` is
//! `a""`). Neither may span lines. Single-quoted and `?"` strings, which
//! Elasticsearch also rejects, are read to their end for a clear message.
//!
//! Not done yet: nothing known.

use super::ParseError;
use super::lexer::Lexer;
use super::token::Tok;

impl Lexer<'_> {
    pub(super) fn string(
        &mut self,
        start: usize,
        line: usize,
        column: usize,
    ) -> Result<Tok, ParseError> {
        if self.peek() == Some('"') && self.peek_at(1) == Some('"') {
            self.bump();
            self.bump();
            return self.raw_string(start, line, column);
        }
        let mut out = String::new();
        loop {
            let (esc_line, esc_column) = (self.line, self.column);
            match self.bump() {
                Some('"') => return Ok(Tok::Str(out)),
                Some('\\') => out.push(self.escape(esc_line, esc_column)?),
                Some('\r' | '\n') | None => {
                    let found = &self.src[start..self.pos].trim_end_matches(['\r', '\n']);
                    let expected = "a closing double quote on the same line";
                    return Err(self.error(line, column, found, expected));
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self, line: usize, column: usize) -> Result<char, ParseError> {
        let expected = "an escape sequence: \\\" \\\\ \\' \\b \\f \\n \\r \\t or \\u{hex}";
        let c = match self.bump() {
            Some('b') => '\u{8}',
            Some('t') => '\t',
            Some('n') => '\n',
            Some('f') => '\u{c}',
            Some('r') => '\r',
            Some('"') => '"',
            Some('\'') => '\'',
            Some('\\') => '\\',
            Some('u') if self.peek() == Some('{') => {
                self.bump();
                let digits_start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                    self.bump();
                }
                let hex = &self.src[digits_start..self.pos];
                let closed = self.peek() == Some('}');
                if closed {
                    self.bump();
                }
                let found = format!("\\u{{{hex}{}", if closed { "}" } else { "" });
                let code = u32::from_str_radix(hex, 16).ok();
                return match code.and_then(char::from_u32) {
                    Some(c) if closed && (2..=8).contains(&hex.len()) => Ok(c),
                    _ => Err(self.error(
                        line,
                        column,
                        &found,
                        "\\u{...} with 2 to 8 hex digits naming a unicode scalar value",
                    )),
                };
            }
            Some(c) if c != '\r' && c != '\n' => {
                return Err(self.error(line, column, &format!("\\{c}"), expected));
            }
            _ => return Err(self.error(line, column, "\\", expected)),
        };
        Ok(c)
    }

    /// After the opening `"""`: up to the first `"""` on the same line, plus
    /// up to two more quotes that belong to the value.
    fn raw_string(&mut self, start: usize, line: usize, column: usize) -> Result<Tok, ParseError> {
        let body_start = self.pos;
        loop {
            if self.src[self.pos..].starts_with("\"\"\"") {
                let body_end = self.pos;
                for _ in 0..3 {
                    self.bump();
                }
                let mut extra = 0;
                while extra < 2 && self.peek() == Some('"') {
                    self.bump();
                    extra += 1;
                }
                let body = &self.src[body_start..body_end + extra];
                return Ok(Tok::Str(body.to_string()));
            }
            match self.peek() {
                Some('\r' | '\n') | None => {
                    let found = &self.src[start..self.pos];
                    let expected = "a closing \"\"\" on the same line";
                    return Err(self.error(line, column, found, expected));
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// A single-quoted or `?`-quoted string: lexed to the end for the message.
    pub(super) fn bad_string(
        &mut self,
        start: usize,
        line: usize,
        column: usize,
        quote: char,
    ) -> ParseError {
        while let Some(c) = self.peek() {
            if c == '\r' || c == '\n' {
                break;
            }
            self.bump();
            if c == '\\' && self.peek() == Some(quote) {
                self.bump();
            } else if c == quote {
                break;
            }
        }
        let found = &self.src[start..self.pos];
        let expected = if found.starts_with('?') {
            "a raw string in triple double quotes (\"\"\"...\"\"\"), not ?\"...\" or ?'...'"
        } else {
            "a string in double quotes (single quotes are not supported)"
        };
        self.error(line, column, found, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tests::{err, toks};
    use super::super::token::Sym;
    use super::*;

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            toks(r#""a\"b\\c\n\t\r\u{41}\u{1F600}""#),
            [Tok::Str("a\"b\\c\n\t\rA\u{1F600}".into())]
        );
        assert_eq!(toks(r#""""C:\x\"y""""#), [Tok::Str(r#"C:\x\"y"#.into())]);
        assert_eq!(toks(r#""""a"""""#), [Tok::Str("a\"".into())]);
        assert_eq!(toks(r#""""a""""""#), [Tok::Str("a\"\"".into())]);
        assert_eq!(toks(r#""""""""#), [Tok::Str(String::new())]);
        assert_eq!(
            toks(r#""" "x""#),
            [Tok::Str(String::new()), Tok::Str("x".into())]
        );
        assert_eq!(
            toks("`my field`.`a``b`"),
            [
                Tok::Quoted("my field".into()),
                Tok::Sym(Sym::Dot),
                Tok::Quoted("a`b".into())
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("x == 'abc'"),
            "line 1, column 6: expected a string in double quotes (single quotes are not \
             supported), found 'abc'"
        );
        assert!(err("x == ?\"abc\"").contains("triple double quotes"));
        assert!(err("x == ?'abc'").contains("not ?\"...\" or ?'...'"));
        assert_eq!(
            err("a == \"abc\nd\""),
            "line 1, column 6: expected a closing double quote on the same line, found \"abc"
        );
        assert!(err(r#""\w""#).starts_with("line 1, column 2: expected an escape sequence"));
        assert!(err(r#""\u{1}""#).contains("found \\u{1}"));
        assert!(err(r#""\u{123456789}""#).contains("2 to 8 hex digits"));
        assert!(err(r#""\u{D800}""#).contains("2 to 8 hex digits"));
        assert!(err(r#""\u{41""#).contains("found \\u{41"));
        assert!(err("\"\"\"abc\n\"\"\"").contains("closing \"\"\" on the same line"));
        assert!(err("\"abc").contains("closing double quote"));
    }
}
