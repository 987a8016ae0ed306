//! The syntax tree the parser builds: field paths, expressions, and the
//! compiled string matchers of `==`/`in`/`:`/`like`/`regex`.
//!
//! The tree mirrors Elasticsearch's own: `!=` is kept as a comparison (the
//! planner negates it), `not in` is `not` around `in`, and each pattern of a
//! `:`/`like`/`regex` list is already compiled, so a bad pattern is a parse
//! error at its own position.
//!
//! Not done yet: nodes carry the position of only the tokens an error may
//! point at, not full source spans.

use super::cidr::Cidr;
use super::functions::Func;
use super::regex::Regex;
use super::value::{Literal, Val, field_eq, script_eq};
use super::wildcard::{Wildcard, eq_ignore_case, starts_with_ignore_case};

/// Where a token starts, with its text, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
    pub text: String,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Name(String),
    Index(usize),
}

/// A field reference such as `process.parent.name`, `` `my field`.x ``,
/// `process.args[0]` or `?process.foo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    pub segs: Vec<Seg>,
    pub optional: bool,
}

impl FieldPath {
    /// The field's name as Elasticsearch writes it (`process.args[0]`).
    pub(crate) fn dotted(&self) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Lte => CmpOp::Gte,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Gte => CmpOp::Lte,
            other => other,
        }
    }

    /// Whether `left op right` holds given how left compares to right.
    pub(crate) fn holds(self, ord: std::cmp::Ordering) -> bool {
        match self {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Neq => ord.is_ne(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Lte => ord.is_le(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Gte => ord.is_ge(),
        }
    }
}

/// An arithmetic operator: `+ - * / %`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    pub(crate) fn symbol(self) -> char {
        match self {
            ArithOp::Add => '+',
            ArithOp::Sub => '-',
            ArithOp::Mul => '*',
            ArithOp::Div => '/',
            ArithOp::Mod => '%',
        }
    }
}

/// A test of one string (or other) value.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Equality with a literal (`==`, `in`, `like` without wildcards).
    Equal(Literal),
    /// Case-insensitive equality (`:`, `like~` without wildcards, `in~`).
    EqualIgnoreCase(String),
    /// A `*`/`?` pattern (`like`, `like~`, `:` with wildcards).
    Wildcard(Wildcard),
    /// A Lucene regular expression (`regex`, `regex~`).
    Regex(Regex),
    /// A prefix (`startsWith` on a field), case-insensitive or not.
    Prefix(String, bool),
    /// Any value at all (`like "*"`, which Elasticsearch turns into `!= null`).
    Present,
    /// An address inside one of the blocks (`cidrMatch` on a field).
    Cidr(Vec<Cidr>),
}

impl Matcher {
    /// Tests a value. `field` selects field-query semantics (literals convert
    /// to the value's type; never null) over script semantics (types must
    /// agree; a null value or a type mismatch gives null).
    pub(crate) fn test(&self, v: &Val, field: bool) -> Option<bool> {
        if *v == Val::Null {
            // `like "*"` is Elasticsearch's `!= null`, which is never null.
            let present = matches!(self, Matcher::Present);
            return if field || present { Some(false) } else { None };
        }
        let text = v.as_str();
        let on_text = |f: &dyn Fn(&str) -> bool| match text {
            Some(s) => Some(f(s)),
            None if field => Some(false),
            None => None,
        };
        match self {
            Matcher::Equal(lit) if field => Some(field_eq(v, lit)),
            Matcher::Equal(lit) => script_eq(v, &Val::from_lit(lit)),
            Matcher::EqualIgnoreCase(s) => on_text(&|t| eq_ignore_case(t, s)),
            Matcher::Wildcard(w) => on_text(&|t| w.is_match(t)),
            Matcher::Regex(r) => on_text(&|t| r.is_match(t)),
            Matcher::Prefix(p, true) => on_text(&|t| starts_with_ignore_case(t, p)),
            Matcher::Prefix(p, false) => on_text(&|t| t.starts_with(p.as_str())),
            Matcher::Present => Some(true),
            Matcher::Cidr(blocks) => on_text(&|t| {
                t.parse()
                    .is_ok_and(|ip| blocks.iter().any(|b| b.contains(ip)))
            }),
        }
    }

    /// The string a case-sensitive exact matcher requires.
    pub(crate) fn exact_string(&self) -> Option<&str> {
        match self {
            Matcher::Equal(Literal::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// An expression as parsed (and, inside scripts, as evaluated).
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Lit(Literal),
    /// A field; `slot` numbers its occurrence inside a script.
    Field {
        path: FieldPath,
        slot: usize,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `left op right`; `pos` is where the right operand starts.
    Cmp {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
        pos: Pos,
    },
    /// `x == null`, which Elasticsearch rewrites to a null check.
    IsNull(Box<Expr>),
    Arith {
        op: ArithOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `value in (list)` or `value in~ (list)`, with each item's position.
    In {
        value: Box<Expr>,
        list: Vec<(Expr, Pos)>,
        insensitive: bool,
    },
    /// `value : ...`, `like`, `regex` and their lists: true when any matches.
    Match {
        value: Box<Expr>,
        matchers: Vec<Matcher>,
    },
    Call {
        func: Func,
        insensitive: bool,
        args: Vec<Expr>,
        pos: Pos,
    },
}

impl Expr {
    /// True when the expression reads no field (Elasticsearch folds it).
    pub(crate) fn is_constant(&self) -> bool {
        match self {
            Expr::Lit(_) => true,
            Expr::Field { .. } => false,
            Expr::Not(e) | Expr::IsNull(e) | Expr::Neg(e) | Expr::Match { value: e, .. } => {
                e.is_constant()
            }
            Expr::And(xs) | Expr::Or(xs) | Expr::Call { args: xs, .. } => {
                xs.iter().all(Expr::is_constant)
            }
            Expr::Cmp { left, right, .. } | Expr::Arith { left, right, .. } => {
                left.is_constant() && right.is_constant()
            }
            Expr::In { value, list, .. } => {
                value.is_constant() && list.iter().all(|(e, _)| e.is_constant())
            }
        }
    }

    /// Every field read, in order, mutably (to number them for a script).
    pub(crate) fn visit_fields(&mut self, f: &mut dyn FnMut(&mut FieldPath, &mut usize)) {
        match self {
            Expr::Lit(_) => {}
            Expr::Field { path, slot, .. } => f(path, slot),
            Expr::Not(e) | Expr::IsNull(e) | Expr::Neg(e) | Expr::Match { value: e, .. } => {
                e.visit_fields(f)
            }
            Expr::And(xs) | Expr::Or(xs) | Expr::Call { args: xs, .. } => {
                xs.iter_mut().for_each(|x| x.visit_fields(f))
            }
            Expr::Cmp { left, right, .. } | Expr::Arith { left, right, .. } => {
                left.visit_fields(f);
                right.visit_fields(f);
            }
            Expr::In { value, list, .. } => {
                value.visit_fields(f);
                list.iter_mut().for_each(|(x, _)| x.visit_fields(f));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn field(name: &str) -> Expr {
        let segs = name.split('.').map(|s| Seg::Name(s.into())).collect();
        Expr::Field {
            path: FieldPath {
                segs,
                optional: false,
            },
            slot: 0,
        }
    }

    #[test]
    fn dotted_names() {
        let path = FieldPath {
            segs: vec![
                Seg::Name("process".into()),
                Seg::Name("args".into()),
                Seg::Index(0),
            ],
            optional: true,
        };
        assert_eq!(path.dotted(), "process.args[0]");
    }

    #[test]
    fn operators() {
        assert_eq!(CmpOp::Lt.flip(), CmpOp::Gt);
        assert_eq!(CmpOp::Eq.flip(), CmpOp::Eq);
        assert!(CmpOp::Lte.holds(std::cmp::Ordering::Equal));
        assert!(!CmpOp::Neq.holds(std::cmp::Ordering::Equal));
        assert_eq!(ArithOp::Mod.symbol(), '%');
    }

    #[test]
    fn constants_and_fields() {
        assert!(Expr::Lit(Literal::Int(1)).is_constant());
        assert!(!field("a.b").is_constant());
        let mut e = Expr::And(vec![field("a"), Expr::Not(Box::new(field("b")))]);
        assert!(!e.is_constant());
        let mut seen = Vec::new();
        e.visit_fields(&mut |p, slot| {
            *slot = seen.len();
            seen.push(p.dotted());
        });
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn matchers_in_both_regimes() {
        let v = Val::Str(Cow::Borrowed("DMESG"));
        let eq = Matcher::Equal(Literal::Str("dmesg".into()));
        assert_eq!(eq.test(&v, true), Some(false));
        assert_eq!(
            Matcher::EqualIgnoreCase("dmesg".into()).test(&v, true),
            Some(true)
        );
        assert_eq!(Matcher::Present.test(&Val::Int(1), true), Some(true));
        assert_eq!(eq.test(&Val::Null, false), None);
        assert_eq!(eq.test(&Val::Null, true), Some(false));
        assert_eq!(Matcher::Present.test(&Val::Null, false), Some(false));
        let w = Matcher::Wildcard(Wildcard::eql("dm*", false));
        assert_eq!(w.test(&Val::Int(1), true), Some(false));
        assert_eq!(w.test(&Val::Int(1), false), None);
        assert_eq!(
            Matcher::Prefix("dm".into(), true).test(&v, true),
            Some(true)
        );
        let cidr = Matcher::Cidr(vec![Cidr::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(
            cidr.test(&Val::Str(Cow::Borrowed("10.1.1.1")), true),
            Some(true)
        );
        assert_eq!(eq.exact_string(), Some("dmesg"));
    }
}
