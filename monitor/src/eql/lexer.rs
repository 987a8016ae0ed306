//! The lexer: EQL source text to tokens (see `token`), each with its 1-based
//! line and column (counted in characters) and its source text.
//!
//! It follows Elasticsearch's grammar (`EqlBase.g4`): keywords are lower
//! case and reserved; identifiers are ASCII letters, digits, `_` and a
//! leading `@`; `` `...` `` quotes a name (`` `` `` is a backquote inside);
//! numbers are integers (too large ones become doubles) and decimals with an
//! optional exponent. Whitespace is space, tab, CR and LF; comments are `//`
//! to the end of the line and `/* */` (which nest). String literals are read
//! by `strings`.
//!
//! Not done yet: nothing known.

use super::ParseError;
use super::token::{Kw, Sym, Tok, Token, keyword, shorten};

/// Produces tokens one at a time.
pub(crate) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) line: usize,
    pub(super) column: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    pub(super) fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    pub(super) fn error(
        &self,
        line: usize,
        column: usize,
        found: &str,
        expected: &str,
    ) -> ParseError {
        ParseError {
            line,
            column,
            found: shorten(found),
            expected: expected.into(),
        }
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(' ' | '\t' | '\r' | '\n'), _) => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    self.bump();
                    let mut depth = 1;
                    while depth > 0 {
                        match (self.bump(), self.peek()) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                depth -= 1;
                            }
                            (Some('/'), Some('*')) => {
                                self.bump();
                                depth += 1;
                            }
                            (Some(_), _) => {}
                            (None, _) => {
                                return Err(self.error(line, column, "/*", "\"*/\" to close it"));
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next token; [`Tok::Eof`] at the end, again and again.
    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let (start, line, column) = (self.pos, self.line, self.column);
        let Some(c) = self.bump() else {
            return Ok(Token {
                tok: Tok::Eof,
                text: String::new(),
                line,
                column,
            });
        };
        let tok = match c {
            '"' => self.string(start, line, column)?,
            '\'' => return Err(self.bad_string(start, line, column, '\'')),
            '`' => self.quoted(line, column)?,
            '0'..='9' => self.number(start, line, column)?,
            '.' if self.peek().is_some_and(|d| d.is_ascii_digit()) => {
                self.number(start, line, column)?
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' => self.word(start, c),
            '?' if matches!(self.peek(), Some('"' | '\'')) => {
                let quote = self.bump().unwrap_or('"');
                return Err(self.bad_string(start, line, column, quote));
            }
            _ => Tok::Sym(self.symbol(c).ok_or_else(|| {
                let expected = "a token (a name, a literal, an operator or a parenthesis)";
                self.error(line, column, &c.to_string(), expected)
            })?),
        };
        let text = self.src[start..self.pos].to_string();
        Ok(Token {
            tok,
            text,
            line,
            column,
        })
    }

    fn symbol(&mut self, c: char) -> Option<Sym> {
        let two = |lexer: &mut Self, next: char, yes: Sym, no: Sym| {
            if lexer.peek() == Some(next) {
                lexer.bump();
                yes
            } else {
                no
            }
        };
        Some(match c {
            '=' => two(self, '=', Sym::Eq, Sym::Assign),
            '!' => two(self, '=', Sym::Neq, Sym::Bang),
            '<' => two(self, '=', Sym::Lte, Sym::Lt),
            '>' => two(self, '=', Sym::Gte, Sym::Gt),
            ':' => Sym::Colon,
            '+' => Sym::Plus,
            '-' => Sym::Minus,
            '*' => Sym::Star,
            '/' => Sym::Slash,
            '%' => Sym::Percent,
            '.' => Sym::Dot,
            ',' => Sym::Comma,
            '[' => Sym::LBracket,
            ']' => Sym::RBracket,
            '(' => Sym::LParen,
            ')' => Sym::RParen,
            '|' => Sym::Pipe,
            '?' => Sym::Question,
            _ => return None,
        })
    }

    fn word(&mut self, start: usize, first: char) -> Tok {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let word = &self.src[start..self.pos];
        if self.peek() == Some('~') {
            let insensitive = match word {
                "in" => Some(Kw::InCi),
                "like" => Some(Kw::LikeCi),
                "regex" => Some(Kw::RegexCi),
                _ => None,
            };
            if let Some(kw) = insensitive {
                self.bump();
                return Tok::Kw(kw);
            }
            if first.is_ascii_alphabetic() {
                self.bump();
                return Tok::TildeIdent(word.to_string());
            }
        }
        match keyword(word) {
            Some(kw) => Tok::Kw(kw),
            None => Tok::Ident(word.to_string()),
        }
    }

    fn number(&mut self, start: usize, line: usize, column: usize) -> Result<Tok, ParseError> {
        let digits = |lexer: &mut Self| {
            while lexer.peek().is_some_and(|c| c.is_ascii_digit()) {
                lexer.bump();
            }
        };
        digits(self);
        let mut float = self.src[start..].starts_with('.');
        if !float && self.peek() == Some('.') {
            self.bump();
            float = true;
        }
        digits(self);
        let sign = matches!(self.peek_at(1), Some('+' | '-'));
        let exp_digit = self.peek_at(if sign { 2 } else { 1 });
        let exponent = exp_digit.is_some_and(|d| d.is_ascii_digit());
        if matches!(self.peek(), Some('e' | 'E')) && exponent {
            self.bump();
            if sign {
                self.bump();
            }
            digits(self);
            float = true;
        }
        let text = &self.src[start..self.pos];
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Tok::Int(i));
            }
        }
        // Integers too large for a long quietly become doubles, as in Elasticsearch.
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
            _ => Err(self.error(line, column, text, "a number that fits in a double")),
        }
    }

    fn quoted(&mut self, line: usize, column: usize) -> Result<Tok, ParseError> {
        let mut name = String::new();
        loop {
            match self.bump() {
                Some('`') if self.peek() == Some('`') => {
                    self.bump();
                    name.push('`');
                }
                Some('`') => return Ok(Tok::Quoted(name)),
                Some(c) => name.push(c),
                None => {
                    let found = format!("`{name}");
                    return Err(self.error(line, column, &found, "a closing backquote"));
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::eql) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?;
            if t.tok == Tok::Eof {
                return Ok(out);
            }
            out.push(t);
        }
    }

    pub(in crate::eql) fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    pub(in crate::eql) fn err(src: &str) -> String {
        lex(src).unwrap_err().to_string()
    }

    #[test]
    fn tokens_and_positions() {
        let t = lex("process where\n  process.name == \"dmesg\"").unwrap();
        let pos: Vec<(usize, usize, &str)> = t
            .iter()
            .map(|t| (t.line, t.column, t.text.as_str()))
            .collect();
        assert_eq!(
            pos,
            [
                (1, 1, "process"),
                (1, 9, "where"),
                (2, 3, "process"),
                (2, 10, "."),
                (2, 11, "name"),
                (2, 16, "=="),
                (2, 19, "\"dmesg\""),
            ]
        );
        assert_eq!(t[1].tok, Tok::Kw(Kw::Where));
        assert_eq!(t[6].tok, Tok::Str("dmesg".into()));
    }

    #[test]
    fn operators_and_keywords() {
        use Sym::*;
        assert_eq!(
            toks("== != < <= > >= : = + - * / % , [ ] ( ) | ? !"),
            [
                Eq, Neq, Lt, Lte, Gt, Gte, Colon, Assign, Plus, Minus, Star, Slash, Percent, Comma
            ]
            .into_iter()
            .chain([LBracket, RBracket, LParen, RParen, Pipe, Question, Bang])
            .map(Tok::Sym)
            .collect::<Vec<_>>()
        );
        assert_eq!(
            toks("in~ like~ regex~ in not sequence startsWith~ AND"),
            [
                Tok::Kw(Kw::InCi),
                Tok::Kw(Kw::LikeCi),
                Tok::Kw(Kw::RegexCi),
                Tok::Kw(Kw::In),
                Tok::Kw(Kw::Not),
                Tok::Kw(Kw::Sequence),
                Tok::TildeIdent("startsWith".into()),
                Tok::Ident("AND".into()),
            ]
        );
        assert_eq!(
            toks("@timestamp _x"),
            [Tok::Ident("@timestamp".into()), Tok::Ident("_x".into())]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("42 1.5 .5 1. 1e3 2E-2"),
            [
                Tok::Int(42),
                Tok::Float(1.5),
                Tok::Float(0.5),
                Tok::Float(1.0),
                Tok::Float(1000.0),
                Tok::Float(0.02)
            ]
        );
        assert_eq!(toks("99999999999999999999"), [Tok::Float(1e20)]);
        assert_eq!(toks("1e"), [Tok::Int(1), Tok::Ident("e".into())]);
        assert_eq!(toks("args[0]")[2], Tok::Int(0));
    }

    #[test]
    fn comments_are_skipped() {
        let t = lex("a // x\n/* y /* nested */ z */ b").unwrap();
        assert_eq!((t[1].line, t[1].column, t[1].text.as_str()), (2, 24, "b"));
    }

    #[test]
    fn errors_name_line_column_found_expected() {
        assert!(err("a\n  /* open").starts_with("line 2, column 3: expected \"*/\""));
        assert!(err("`abc").contains("closing backquote"));
        assert_eq!(
            err("a ~ b"),
            "line 1, column 3: expected a token (a name, a literal, an operator or a \
             parenthesis), found ~"
        );
    }
}
