//! The parser: tokens to a [`Statement`] (category and condition), by
//! recursive descent over Elasticsearch's EQL grammar. This file has the
//! statement and the operator layers; `primary` has what they apply to.
//!
//! Precedence, loosest first: `or`, `and`, `not`, one comparison (`==` `!=`
//! `<` `<=` `>` `>=`; comparisons do not chain), `+ -`, `* / %`, unary
//! `- +`, then a primary expression (literal, field, function call or
//! parenthesized expression) with an optional predicate bound to it.
//! Nesting is limited to [`MAX_DEPTH`] levels so that no query can exhaust
//! the stack.
//!
//! Pipes (`| head 5`) are read by `pipes` when the caller allows them
//! ([`parse_piped`]); [`parse`], for single-event rules, rejects them.
//!
//! Not done yet: `sequence`, `sample` and `join` queries and the
//! Endgame-only `descendant of` family are rejected with an error.

use std::collections::VecDeque;

use super::ParseError;
use super::ast::{ArithOp, CmpOp, Expr, Pos};
use super::lexer::Lexer;
use super::pipes::Pipe;
use super::token::{Kw, Sym, Tok, Token};

/// Deepest nesting of parentheses, function calls, `not`s and operators
/// accepted (Elastic's rules nest at most 6 deep).
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed single-event query.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    /// `None` for `any`.
    pub category: Option<String>,
    pub condition: Expr,
    /// Empty unless parsed by [`parse_piped`].
    pub pipes: Vec<Pipe>,
}

/// Parses a whole query without pipes.
pub(crate) fn parse(src: &str) -> Result<Statement, ParseError> {
    Parser::new(src, false).statement()
}

/// Parses a whole query, pipes included.
pub(crate) fn parse_piped(src: &str) -> Result<Statement, ParseError> {
    Parser::new(src, true).statement()
}

pub(super) fn error_at(t: &Token, expected: &str) -> ParseError {
    ParseError {
        line: t.line,
        column: t.column,
        found: t.describe(),
        expected: expected.into(),
    }
}

pub(super) fn error_at_pos(pos: &Pos, expected: &str) -> ParseError {
    ParseError {
        line: pos.line,
        column: pos.column,
        found: pos.text.clone(),
        expected: expected.into(),
    }
}

pub(super) struct Parser<'a> {
    lexer: Lexer<'a>,
    ahead: VecDeque<Token>,
    depth: usize,
    /// Whether pipes may follow the condition.
    pipes: bool,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, pipes: bool) -> Self {
        Parser {
            lexer: Lexer::new(src),
            ahead: VecDeque::new(),
            depth: 0,
            pipes,
        }
    }
}

impl Parser<'_> {
    pub(super) fn token(&mut self, n: usize) -> Result<&Token, ParseError> {
        while self.ahead.len() <= n {
            let t = self.lexer.next_token()?;
            self.ahead.push_back(t);
        }
        let last = self.ahead.len() - 1;
        Ok(&self.ahead[n.min(last)])
    }

    pub(super) fn peek(&mut self, n: usize) -> Result<Tok, ParseError> {
        Ok(self.token(n)?.tok.clone())
    }

    pub(super) fn pos(&mut self) -> Result<Pos, ParseError> {
        let t = self.token(0)?;
        Ok(Pos {
            line: t.line,
            column: t.column,
            text: t.describe(),
        })
    }

    pub(super) fn next(&mut self) -> Result<Token, ParseError> {
        self.token(0)?;
        match self.ahead.pop_front() {
            Some(t) => Ok(t),
            None => Err(self.fail("more input")),
        }
    }

    pub(super) fn eat(&mut self, tok: &Tok) -> Result<bool, ParseError> {
        let hit = self.token(0)?.tok == *tok;
        if hit {
            self.next()?;
        }
        Ok(hit)
    }

    pub(super) fn expect(&mut self, tok: &Tok, expected: &str) -> Result<Token, ParseError> {
        let t = self.next()?;
        if t.tok == *tok {
            Ok(t)
        } else {
            Err(error_at(&t, expected))
        }
    }

    /// An error at the next token.
    pub(super) fn fail(&mut self, expected: &str) -> ParseError {
        match self.token(0) {
            Ok(t) => error_at(&t.clone(), expected),
            Err(e) => e,
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let expected = format!("a less deeply nested expression (at most {MAX_DEPTH} levels)");
            return Err(self.fail(&expected));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let t = self.next()?;
        let category = match t.tok {
            Tok::Kw(Kw::Any) => None,
            Tok::Ident(ref s) | Tok::Str(ref s) => Some(s.clone()),
            Tok::Kw(Kw::Sequence | Kw::Sample | Kw::Join) => {
                let expected = "a single-event query (sequence, sample and join queries are \
                                not supported)";
                return Err(error_at(&t, expected));
            }
            _ => return Err(error_at(&t, "an event category or any")),
        };
        self.expect(&Tok::Kw(Kw::Where), "where")?;
        let condition = self.expression()?;
        let mut pipes = Vec::new();
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::Eof => {
                    return Ok(Statement {
                        category,
                        condition,
                        pipes,
                    });
                }
                Tok::Sym(Sym::Pipe) if self.pipes => pipes.push(self.pipe()?),
                Tok::Sym(Sym::Pipe) => {
                    let expected = "end of input (a rule matches one event at a time, so pipes \
                                    such as | head do not apply)";
                    return Err(error_at(&t, expected));
                }
                _ if self.pipes => return Err(error_at(&t, "| or end of input")),
                _ => return Err(error_at(&t, "end of input")),
            }
        }
    }

    pub(super) fn expression(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = self.logic()?;
        self.depth -= 1;
        Ok(e)
    }

    /// `or` of `and`s of negated comparisons, in one loop: the recursion
    /// through parentheses then costs few stack frames.
    fn logic(&mut self) -> Result<Expr, ParseError> {
        fn collapse(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
            if items.len() == 1 {
                items.remove(0)
            } else {
                make(items)
            }
        }
        let mut ors = Vec::new();
        let mut ands = Vec::new();
        loop {
            let depth = self.depth;
            while self.eat(&Tok::Kw(Kw::Not))? {
                self.enter()?;
            }
            let mut e = self.comparison()?;
            for _ in depth..self.depth {
                e = Expr::Not(Box::new(e));
            }
            self.depth = depth;
            ands.push(e);
            if self.eat(&Tok::Kw(Kw::Or))? {
                ors.push(collapse(std::mem::take(&mut ands), Expr::And));
            } else if !self.eat(&Tok::Kw(Kw::And))? {
                ors.push(collapse(ands, Expr::And));
                return Ok(collapse(ors, Expr::Or));
            }
        }
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.arithmetic()?;
        let op = match self.peek(0)? {
            Tok::Sym(Sym::Eq) => CmpOp::Eq,
            Tok::Sym(Sym::Neq) => CmpOp::Neq,
            Tok::Sym(Sym::Lt) => CmpOp::Lt,
            Tok::Sym(Sym::Lte) => CmpOp::Lte,
            Tok::Sym(Sym::Gt) => CmpOp::Gt,
            Tok::Sym(Sym::Gte) => CmpOp::Gte,
            Tok::Sym(Sym::Assign) => return Err(self.fail("== or : (= is not an operator)")),
            _ => return Ok(left),
        };
        self.next()?;
        let pos = self.pos()?;
        let right = self.arithmetic()?;
        let pos = named(pos, &right);
        Ok(Expr::Cmp {
            op,
            left: Box::new(left),
            right: Box::new(right),
            pos,
        })
    }

    /// `+ - * / %` by precedence climbing; each operator counts towards the
    /// nesting limit, as it deepens the tree.
    fn arithmetic(&mut self) -> Result<Expr, ParseError> {
        fn reduce(operands: &mut Vec<Expr>, op: ArithOp) {
            if let (Some(right), Some(left)) = (operands.pop(), operands.pop()) {
                operands.push(Expr::Arith {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                });
            }
        }
        let rank = |op| u8::from(matches!(op, ArithOp::Mul | ArithOp::Div | ArithOp::Mod));
        let depth = self.depth;
        let mut operands = vec![self.operand()?];
        let mut ops: Vec<ArithOp> = Vec::new();
        loop {
            let op = match self.peek(0)? {
                Tok::Sym(Sym::Plus) => ArithOp::Add,
                Tok::Sym(Sym::Minus) => ArithOp::Sub,
                Tok::Sym(Sym::Star) => ArithOp::Mul,
                Tok::Sym(Sym::Slash) => ArithOp::Div,
                Tok::Sym(Sym::Percent) => ArithOp::Mod,
                _ => break,
            };
            self.next()?;
            self.enter()?;
            while let Some(&top) = ops.last() {
                if rank(top) < rank(op) {
                    break;
                }
                ops.pop();
                reduce(&mut operands, top);
            }
            ops.push(op);
            operands.push(self.operand()?);
        }
        while let Some(op) = ops.pop() {
            reduce(&mut operands, op);
        }
        self.depth = depth;
        match operands.pop() {
            Some(e) => Ok(e),
            None => Err(self.fail("an operand")),
        }
    }

    /// A primary expression with its predicate, after any unary `-` and `+`.
    fn operand(&mut self) -> Result<Expr, ParseError> {
        let depth = self.depth;
        let mut negations = Vec::new();
        loop {
            let negate = match self.token(0)?.tok {
                Tok::Sym(Sym::Minus) => true,
                Tok::Sym(Sym::Plus) => false,
                _ => break,
            };
            negations.push(negate);
            self.next()?;
            self.enter()?;
        }
        let mut e = if self.token(0)?.tok == Tok::Sym(Sym::LParen) {
            self.next()?;
            let e = self.expression()?;
            self.expect(&Tok::Sym(Sym::RParen), ") to close the parenthesis")?;
            e
        } else {
            self.primary()?
        };
        if self.has_predicate()? {
            e = self.predicate(e)?;
        }
        for negate in negations.into_iter().rev() {
            if negate {
                e = Expr::Neg(Box::new(e));
            }
        }
        self.depth = depth;
        Ok(e)
    }
}

/// A position that names a field operand by its whole path.
pub(super) fn named(pos: Pos, operand: &Expr) -> Pos {
    match operand {
        Expr::Field { path, .. } => Pos {
            text: path.dotted(),
            ..pos
        },
        _ => pos,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::eql::value::Literal;

    pub(in crate::eql) fn cond(src: &str) -> Expr {
        parse(&format!("any where {src}")).unwrap().condition
    }

    pub(in crate::eql) fn err(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    /// A compact rendering of the tree, to check its shape.
    pub(in crate::eql) fn show(e: &Expr) -> String {
        let list = |xs: &[Expr], sep: &str| {
            let parts: Vec<String> = xs.iter().map(show).collect();
            format!("({})", parts.join(sep))
        };
        match e {
            Expr::Lit(Literal::Str(s)) => format!("{s:?}"),
            Expr::Lit(l) => format!("{l:?}"),
            Expr::Field { path, .. } => path.dotted(),
            Expr::Not(x) => format!("not {}", show(x)),
            Expr::And(xs) => list(xs, " and "),
            Expr::Or(xs) => list(xs, " or "),
            Expr::Cmp {
                op, left, right, ..
            } => format!("({} {op:?} {})", show(left), show(right)),
            Expr::IsNull(x) => format!("isnull {}", show(x)),
            Expr::Arith { op, left, right } => {
                format!("({} {} {})", show(left), op.symbol(), show(right))
            }
            Expr::Neg(x) => format!("-{}", show(x)),
            Expr::In {
                value,
                list,
                insensitive,
            } => {
                let items: Vec<String> = list.iter().map(|(x, _)| show(x)).collect();
                let tilde = if *insensitive { "~" } else { "" };
                format!("({} in{tilde} {})", show(value), items.join(","))
            }
            Expr::Match { value, matchers } => {
                format!("({} match {})", show(value), matchers.len())
            }
            Expr::Call { func, args, .. } => format!("{}{}", func.name(), list(args, ",")),
        }
    }

    #[test]
    fn precedence() {
        let cases = [
            (
                "a == 1 or b == 2 and not c == 3",
                "((a Eq Int(1)) or ((b Eq Int(2)) and not (c Eq Int(3))))",
            ),
            ("not a and b", "(not a and b)"),
            ("not not a", "not not a"),
            ("(a or b) and c", "((a or b) and c)"),
            ("a or b or c and d", "(a or b or (c and d))"),
            (
                "1 + 2 * 3 - -x == 4",
                "(((Int(1) + (Int(2) * Int(3))) - -x) Eq Int(4))",
            ),
            (
                "8 / 4 / 2 % 3 == 1",
                "((((Int(8) / Int(4)) / Int(2)) % Int(3)) Eq Int(1))",
            ),
            ("a not in (\"x\", 1)", "not (a in \"x\",Int(1))"),
            ("not a in~ (\"x\")", "not (a in~ \"x\")"),
            ("a : (\"x*\", \"y\")", "(a match 2)"),
            ("length(a.b) > 5", "(length(a.b) Gt Int(5))"),
            ("-a in (1)", "-(a in Int(1))"),
        ];
        for (src, shape) in cases {
            assert_eq!(show(&cond(src)), shape, "{src}");
        }
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                "sequence [process where true] [file where true]",
                "line 1, column 1: expected a single-event query (sequence, sample and join \
                 queries are not supported), found sequence",
            ),
            (
                "sample by host.id [any where true]",
                "line 1, column 1: expected a single-event query (sequence, sample and join \
                 queries are not supported), found sample",
            ),
            (
                "process where\n  process.name == )",
                "line 2, column 19: expected a field, a literal, a function call or (, found )",
            ),
            (
                "process where (a == 1",
                "line 1, column 22: expected ) to close the parenthesis, found end of input",
            ),
            (
                "process where a == 1)",
                "line 1, column 21: expected end of input, found )",
            ),
            (
                "process where a = 1",
                "line 1, column 17: expected == or : (= is not an operator), found =",
            ),
            (
                "process where a == 1 | head 5",
                "line 1, column 22: expected end of input (a rule matches one event at a time, so \
                 pipes such as | head do not apply), found |",
            ),
            (
                "process a == 1",
                "line 1, column 9: expected where, found a",
            ),
            (
                "",
                "line 1, column 1: expected an event category or any, found end of input",
            ),
            (
                "process where a ~= 1",
                "line 1, column 17: expected a token (a name, a literal, an operator or a \
                 parenthesis), found ~",
            ),
            (
                "process where a == 1 == 2",
                "line 1, column 22: expected end of input, found ==",
            ),
            (
                "process where a in ()",
                "line 1, column 21: expected a field, a literal, a function call or (, found )",
            ),
            (
                "process where true and",
                "line 1, column 23: expected a field, a literal, a \
              function call or (, found end of input",
            ),
        ];
        for (src, message) in cases {
            assert_eq!(err(src), message, "{src}");
        }
    }
}
