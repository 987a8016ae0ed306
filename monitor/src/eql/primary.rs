//! The parser's leaves: literals, fields, function calls, and the
//! predicates bound to them (`[not] in`, `[not] in~`, `:`, `like`, `like~`,
//! `regex`, `regex~`, each of the last five with one constant or a
//! parenthesized list of them). Patterns are compiled here, so a bad one is
//! reported at its own position, and Elasticsearch's rewrites are applied
//! (`like "*"` is "has a value"; a pattern without wildcards is equality).
//!
//! Not done yet: the `descendant of`/`child of`/`event of` relationships of
//! Endgame EQL, which Elasticsearch does not support either.

use super::ParseError;
use super::ast::{Expr, FieldPath, Matcher, Pos, Seg};
use super::functions::Func;
use super::parser::{Parser, error_at, error_at_pos, named};
use super::regex::Regex;
use super::token::{Kw, Sym, Tok, Token};
use super::value::{Literal, Val, to_text};
use super::wildcard::Wildcard;

/// Which pattern operator a match predicate uses.
#[derive(Clone, Copy)]
enum Kind {
    Colon,
    Like(bool),
    Regex(bool),
}

impl Parser<'_> {
    pub(super) fn has_predicate(&mut self) -> Result<bool, ParseError> {
        Ok(match self.token(0)?.tok {
            Tok::Kw(Kw::In | Kw::InCi | Kw::Like | Kw::LikeCi | Kw::Regex | Kw::RegexCi) => true,
            Tok::Sym(Sym::Colon) => true,
            Tok::Kw(Kw::Not) => matches!(self.token(1)?.tok, Tok::Kw(Kw::In | Kw::InCi)),
            _ => false,
        })
    }

    /// The predicate after `value`: `[not] in`, `in~`, `:`, `like`, `regex`...
    pub(super) fn predicate(&mut self, value: Expr) -> Result<Expr, ParseError> {
        let value = Box::new(value);
        let negated = self.eat(&Tok::Kw(Kw::Not))?;
        let kind = match self.peek(0)? {
            Tok::Kw(kw @ (Kw::In | Kw::InCi)) => {
                self.next()?;
                let e = self.in_list(value, kw == Kw::InCi)?;
                return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
            }
            Tok::Sym(Sym::Colon) => Kind::Colon,
            Tok::Kw(Kw::Like) => Kind::Like(false),
            Tok::Kw(Kw::LikeCi) => Kind::Like(true),
            Tok::Kw(Kw::Regex) => Kind::Regex(false),
            Tok::Kw(Kw::RegexCi) => Kind::Regex(true),
            _ => return Ok(*value),
        };
        self.next()?;
        let mut matchers = Vec::new();
        if self.eat(&Tok::Sym(Sym::LParen))? {
            loop {
                matchers.push(self.pattern(kind)?);
                if !self.eat(&Tok::Sym(Sym::Comma))? {
                    self.expect(&Tok::Sym(Sym::RParen), ", or )")?;
                    break;
                }
            }
        } else {
            matchers.push(self.pattern(kind)?);
        }
        Ok(Expr::Match { value, matchers })
    }

    fn in_list(&mut self, value: Box<Expr>, insensitive: bool) -> Result<Expr, ParseError> {
        self.expect(&Tok::Sym(Sym::LParen), "( to start the list")?;
        let mut list = Vec::new();
        loop {
            let pos = self.pos()?;
            let item = self.expression()?;
            let pos = named(pos, &item);
            list.push((item, pos));
            if !self.eat(&Tok::Sym(Sym::Comma))? {
                self.expect(&Tok::Sym(Sym::RParen), ", or )")?;
                return Ok(Expr::In {
                    value,
                    list,
                    insensitive,
                });
            }
        }
    }

    /// One constant after `:`, `like` or `regex`, compiled to a matcher.
    fn pattern(&mut self, kind: Kind) -> Result<Matcher, ParseError> {
        let pos = self.pos()?;
        let t = self.next()?;
        let lit = match t.tok {
            Tok::Str(s) => Literal::Str(s),
            Tok::Int(i) => Literal::Int(i),
            Tok::Float(f) => Literal::Float(f),
            Tok::Kw(Kw::True) => Literal::Bool(true),
            Tok::Kw(Kw::False) => Literal::Bool(false),
            Tok::Kw(Kw::Null) => return Err(error_at(&t, "a string pattern (null is not one)")),
            _ => return Err(error_at(&t, "a string pattern")),
        };
        let text = to_text(&Val::from_lit(&lit)).unwrap_or_default();
        match kind {
            Kind::Colon if !matches!(lit, Literal::Str(_)) => Ok(Matcher::Equal(lit)),
            Kind::Colon if !text.contains(['*', '?']) => Ok(Matcher::EqualIgnoreCase(text)),
            Kind::Colon => Ok(like(text, true)),
            Kind::Like(insensitive) => Ok(like(text, insensitive)),
            Kind::Regex(insensitive) => match Regex::new(&text, insensitive) {
                Ok(re) => Ok(Matcher::Regex(re)),
                Err(detail) => {
                    let expected = format!("a valid lucene regular expression: {detail}");
                    Err(error_at_pos(&pos, &expected))
                }
            },
        }
    }

    /// A literal, field or function call (parentheses are handled by the caller).
    pub(super) fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos()?;
        let lit = match self.peek(0)? {
            Tok::Str(s) => Literal::Str(s),
            Tok::Int(i) => Literal::Int(i),
            Tok::Float(f) => Literal::Float(f),
            Tok::Kw(Kw::True) => Literal::Bool(true),
            Tok::Kw(Kw::False) => Literal::Bool(false),
            Tok::Kw(Kw::Null) => Literal::Null,
            Tok::Ident(name) if self.peek(1)? == Tok::Sym(Sym::LParen) => {
                return self.call(&name, false, pos);
            }
            Tok::TildeIdent(name) => return self.call(&name, true, pos),
            Tok::Ident(_) | Tok::Quoted(_) => return self.field(false),
            Tok::Sym(Sym::Question) => {
                self.next()?;
                return self.field(true);
            }
            _ => return Err(self.fail("a field, a literal, a function call or (")),
        };
        self.next()?;
        Ok(Expr::Lit(lit))
    }

    fn call(&mut self, name: &str, insensitive: bool, pos: Pos) -> Result<Expr, ParseError> {
        let Some(func) = Func::by_name(name) else {
            let expected = format!("a known function ({})", Func::all_names());
            return Err(error_at_pos(&pos, &expected));
        };
        if insensitive && !func.takes_tilde() {
            let expected = format!("a function with a ~ form ({})", Func::tilde_names());
            return Err(error_at_pos(&pos, &expected));
        }
        self.next()?;
        self.expect(&Tok::Sym(Sym::LParen), "( after the function name")?;
        let mut args = Vec::new();
        if !self.eat(&Tok::Sym(Sym::RParen))? {
            loop {
                args.push(self.expression()?);
                if !self.eat(&Tok::Sym(Sym::Comma))? {
                    self.expect(&Tok::Sym(Sym::RParen), ", or )")?;
                    break;
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            let wanted = match max {
                Some(max) if max == min => format!("{min}"),
                Some(max) => format!("{min} to {max}"),
                None => format!("at least {min}"),
            };
            let plural = |n: &str| {
                if n.ends_with(" 1") || n == "1" {
                    "argument"
                } else {
                    "arguments"
                }
            };
            let count = args.len().to_string();
            let found = Pos {
                text: format!("{count} {}", plural(&count)),
                ..pos
            };
            let expected = format!("{wanted} {} to {}", plural(&wanted), func.name());
            return Err(error_at_pos(&found, &expected));
        }
        Ok(Expr::Call {
            func,
            insensitive,
            args,
            pos,
        })
    }

    fn field(&mut self, optional: bool) -> Result<Expr, ParseError> {
        let mut segs = Vec::new();
        let first = self.next()?;
        name_into(&first, &mut segs, "a field name")?;
        loop {
            if self.eat(&Tok::Sym(Sym::Dot))? {
                let t = self.next()?;
                name_into(&t, &mut segs, "a field name after .")?;
            } else if self.eat(&Tok::Sym(Sym::LBracket))? {
                let t = self.next()?;
                let Tok::Int(i) = t.tok else {
                    return Err(error_at(&t, "an array index (a non-negative integer)"));
                };
                segs.push(Seg::Index(usize::try_from(i).unwrap_or(usize::MAX)));
                self.expect(&Tok::Sym(Sym::RBracket), "] to close the array index")?;
            } else {
                return Ok(Expr::Field {
                    path: FieldPath { segs, optional },
                    slot: 0,
                });
            }
        }
    }
}

fn name_into(t: &Token, segs: &mut Vec<Seg>, what: &str) -> Result<(), ParseError> {
    match &t.tok {
        Tok::Ident(name) => segs.push(Seg::Name(name.clone())),
        Tok::Quoted(name) if !name.is_empty() => {
            segs.extend(name.split('.').map(|part| Seg::Name(part.to_string())));
        }
        Tok::Kw(_) => {
            let expected = format!("{what} (a keyword must be quoted, as in `{}`)", t.text);
            return Err(error_at(t, &expected));
        }
        _ => return Err(error_at(t, what)),
    }
    Ok(())
}

/// `like` semantics, including Elasticsearch's rewrites: a pattern of stars
/// only means "has a value"; one without wildcards is plain equality.
fn like(text: String, insensitive: bool) -> Matcher {
    let w = Wildcard::eql(&text, insensitive);
    if w.matches_everything() {
        Matcher::Present
    } else if w.has_wildcards() {
        Matcher::Wildcard(w)
    } else if insensitive {
        Matcher::EqualIgnoreCase(text)
    } else {
        Matcher::Equal(Literal::Str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::super::parser::tests::{cond, err, show};
    use super::*;

    #[test]
    fn categories_and_fields() {
        assert_eq!(
            parse("process where true").unwrap().category.as_deref(),
            Some("process")
        );
        assert_eq!(parse("any where true").unwrap().category, None);
        let quoted = parse("\"my-cat\" where true").unwrap();
        assert_eq!(quoted.category.as_deref(), Some("my-cat"));
        assert_eq!(show(&cond("`my field`.x == 1")), "(my field.x Eq Int(1))");
        assert_eq!(show(&cond("`a.b`.c == 1")), "(a.b.c Eq Int(1))");
        assert_eq!(
            show(&cond("process.args[0] == \"x\"")),
            "(process.args[0] Eq \"x\")"
        );
        assert_eq!(
            show(&cond("process . name == \"x\"")),
            "(process.name Eq \"x\")"
        );
        let Expr::Cmp { left, .. } = cond("?process.foo == null") else {
            panic!()
        };
        let Expr::Field { path, .. } = *left else {
            panic!()
        };
        assert!(path.optional);
    }

    #[test]
    fn patterns_compile_with_elasticsearch_rewrites() {
        let matchers = |src: &str| match cond(src) {
            Expr::Match { matchers, .. } => matchers,
            other => panic!("{}", show(&other)),
        };
        let m = matchers("a like (\"*\", \"x\", \"x*\")");
        assert!(matches!(m[0], Matcher::Present));
        assert!(matches!(m[1], Matcher::Equal(Literal::Str(_))));
        assert!(matches!(m[2], Matcher::Wildcard(_)));
        let m = matchers("a : (\"x\", 5, \"*\")");
        assert!(matches!(m[0], Matcher::EqualIgnoreCase(_)));
        assert!(matches!(m[1], Matcher::Equal(Literal::Int(5))));
        assert!(matches!(m[2], Matcher::Present));
        let m = matchers("a like~ (\"X\", 5)");
        assert!(matches!(m[0], Matcher::EqualIgnoreCase(_)));
        assert!(matches!(m[1], Matcher::EqualIgnoreCase(_)));
        assert!(matches!(matchers("a regex~ \"x.*\"")[0], Matcher::Regex(_)));
    }

    #[test]
    fn calls() {
        assert_eq!(show(&cond("startsWith~(a, \"x\")")), "startsWith(a,\"x\")");
        assert_eq!(
            show(&cond("CIDRMATCH(ip, \"10.0.0.0/8\")")),
            "cidrMatch(ip,\"10.0.0.0/8\")"
        );
        assert_eq!(show(&cond("concat(a) == \"\"")), "(concat(a) Eq \"\")");
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                "process where length(a, b) > 1",
                "line 1, column 15: expected 1 argument to length, \
              found 2 arguments",
            ),
            (
                "process where between(a) == \"\"",
                "line 1, column 15: expected 3 to 4 arguments \
              to between, found 1 argument",
            ),
            (
                "process where concat() == \"\"",
                "line 1, column 15: expected at least 1 argument \
              to concat, found 0 arguments",
            ),
            (
                "process where event.sequence == 1",
                "line 1, column 21: expected a field name \
              after . (a keyword must be quoted, as in `sequence`), found sequence",
            ),
            (
                "process where a like null",
                "line 1, column 22: expected a string pattern (null is \
              not one), found null",
            ),
            (
                "process where a like (\"x\" \"y\")",
                "line 1, column 27: expected , or ), found \
              \"y\"",
            ),
            (
                "process where a[x] == 1",
                "line 1, column 17: expected an array index (a \
              non-negative integer), found x",
            ),
            (
                "process where a[1 == 1",
                "line 1, column 19: expected ] to close the array index, \
              found ==",
            ),
            (
                "process where `` == 1",
                "line 1, column 15: expected a field name, found ``",
            ),
            (
                "process where a in \"x\"",
                "line 1, column 20: expected ( to start the list, found \
              \"x\"",
            ),
            (
                "process where f~ == 1",
                "line 1, column 15: expected a known function (add, \
              between, cidrMatch, concat, divide, endsWith, indexOf, length, modulo, multiply, \
              number, startsWith, string, stringContains, substring, subtract), found f~",
            ),
        ];
        for (src, message) in cases {
            assert_eq!(err(src), message, "{src}");
        }
        let tilde = err("process where add~(1, 2) == 3");
        assert!(
            tilde.contains("expected a function with a ~ form"),
            "{tilde}"
        );
        let bad_regex = err("process where a regex \"[a\"");
        assert!(
            bad_regex.starts_with(
                "line 1, column 23: expected a valid lucene regular \
                                       expression: ']'"
            ),
            "{bad_regex}"
        );
    }
}
