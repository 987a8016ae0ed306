//! Tokens: what the lexer produces and the parser consumes (keywords,
//! symbols, names, literals), each with its position and source text, and
//! how an error message names a token.
//!
//! Not done yet: nothing known.

/// A reserved word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Any,
    By,
    False,
    In,
    InCi,
    Join,
    Like,
    LikeCi,
    Maxspan,
    Not,
    Null,
    Of,
    Or,
    Regex,
    RegexCi,
    Sample,
    Sequence,
    True,
    Until,
    Where,
    With,
}

const KEYWORDS: [(&str, Kw); 19] = [
    ("and", Kw::And),
    ("any", Kw::Any),
    ("by", Kw::By),
    ("false", Kw::False),
    ("in", Kw::In),
    ("join", Kw::Join),
    ("like", Kw::Like),
    ("maxspan", Kw::Maxspan),
    ("not", Kw::Not),
    ("null", Kw::Null),
    ("of", Kw::Of),
    ("or", Kw::Or),
    ("regex", Kw::Regex),
    ("sample", Kw::Sample),
    ("sequence", Kw::Sequence),
    ("true", Kw::True),
    ("until", Kw::Until),
    ("where", Kw::Where),
    ("with", Kw::With),
];

/// Punctuation and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sym {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Colon,
    Assign,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Dot,
    Comma,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Pipe,
    Question,
    Bang,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// A backquoted name, unquoted.
    Quoted(String),
    /// A name directly followed by `~` (a case-insensitive function), without it.
    TildeIdent(String),
    /// A string literal, unescaped.
    Str(String),
    Int(i64),
    Float(f64),
    Kw(Kw),
    Sym(Sym),
    Eof,
}

/// A token with where it starts and its source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub text: String,
    pub line: usize,
    pub column: usize,
}

impl Token {
    /// The token as an error message names it.
    pub(crate) fn describe(&self) -> String {
        if self.tok == Tok::Eof {
            return "end of input".into();
        }
        shorten(&self.text)
    }
}

/// Long token texts are cut in error messages.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX - 3).collect();
        format!("{head}...")
    }
}

/// The keyword spelled `word`, if it is one (keywords are lower case).
pub(crate) fn keyword(word: &str) -> Option<Kw> {
    KEYWORDS.iter().find(|(k, _)| *k == word).map(|(_, kw)| *kw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_lower_case_words() {
        assert_eq!(keyword("sequence"), Some(Kw::Sequence));
        assert_eq!(keyword("where"), Some(Kw::Where));
        assert_eq!(keyword("AND"), None);
        assert_eq!(keyword("process"), None);
    }

    #[test]
    fn tokens_describe_themselves() {
        let t = |tok, text: &str| Token {
            tok,
            text: text.into(),
            line: 1,
            column: 1,
        };
        assert_eq!(t(Tok::Eof, "").describe(), "end of input");
        assert_eq!(t(Tok::Str("a".into()), "\"a\"").describe(), "\"a\"");
        let long = "x".repeat(100);
        let described = t(Tok::Ident(long.clone()), &long).describe();
        assert_eq!(described.chars().count(), 60);
        assert!(described.ends_with("..."));
    }
}
