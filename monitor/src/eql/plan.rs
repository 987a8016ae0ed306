//! The planner: turns the parsed condition into what Elasticsearch would
//! run, a tree of field queries and scripts ([`Cond`]).
//!
//! This is where Elasticsearch's semantics live. A comparison, `in`, `:`,
//! `like`, `regex`, `cidrMatch`, `startsWith`, `stringContains` or `endsWith`
//! whose subject is a plain field and whose operands are constants becomes a
//! field query: true when any value of the field satisfies it, false when the
//! field is missing. `and`, `or` and `not` over those are plain two-valued
//! logic, as in Elasticsearch's `bool` query: `not`/`!=`/`not in` match an
//! event that lacks the field. Anything else (a function of a field, a
//! field in arithmetic) becomes a script, evaluated in three-valued logic
//! where null is not a match, and `not` of a script stays inside the script
//! (`not null` is null). `x == null` and `x != null` are null checks.
//! Comparing a field with another field is an error, as in Elasticsearch.
//!
//! Not done yet: Elasticsearch's verifier (type checks such as a number
//! compared with a keyword field) is not run; such a comparison just fails.
//! Constant conditions are folded once but kept, not pruned from the plan.

use super::ParseError;
use super::ast::{CmpOp, Expr, FieldPath, Matcher, Pos};
use super::cidr::Cidr;
use super::eval::eval;
use super::functions::Func;
use super::value::{Literal, Val, to_text};
use super::wildcard::Wildcard;

/// A condition in the form Elasticsearch runs it.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// A query on one field.
    Field(FieldPath, FieldPred),
    /// A computed condition.
    Script(Script),
}

/// What a field query asks of a field's values.
#[derive(Debug, Clone)]
pub(crate) enum FieldPred {
    /// The field has no value (`== null`).
    Missing,
    /// Some value passes some matcher.
    Any(Vec<Matcher>),
    /// Some value compares so with the literal.
    Range(CmpOp, Literal),
}

/// A computed condition; field `i` of `fields` is slot `i` in `expr`.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub expr: Expr,
    pub fields: Vec<FieldPath>,
}

fn script(e: Expr) -> Cond {
    let mut expr = e;
    let mut fields = Vec::new();
    expr.visit_fields(&mut |path, slot| {
        *slot = fields.len();
        fields.push(path.clone());
    });
    Cond::Script(Script { expr, fields })
}

/// The value of a constant expression.
pub(crate) fn fold(e: &Expr) -> Literal {
    eval(e, &[]).to_lit()
}

fn field_error(pos: &Pos) -> ParseError {
    ParseError {
        line: pos.line,
        column: pos.column,
        found: pos.text.clone(),
        expected: "a literal value (comparing a field with a field is not supported)".into(),
    }
}

/// Plans a condition.
pub(crate) fn plan(e: &Expr) -> Result<Cond, ParseError> {
    let mut e = e.clone();
    null_checks(&mut e);
    lower(&e)
}

/// Elasticsearch's first rewrite: `x == null` becomes a null check on `x`,
/// and `x != null` its negation, wherever the null is a constant.
fn null_checks(e: &mut Expr) {
    match e {
        Expr::Lit(_) | Expr::Field { .. } => {}
        Expr::Not(x) | Expr::IsNull(x) | Expr::Neg(x) | Expr::Match { value: x, .. } => {
            null_checks(x)
        }
        Expr::And(xs) | Expr::Or(xs) | Expr::Call { args: xs, .. } => {
            xs.iter_mut().for_each(null_checks)
        }
        Expr::Cmp { left, right, .. } | Expr::Arith { left, right, .. } => {
            null_checks(left);
            null_checks(right);
        }
        Expr::In { value, list, .. } => {
            null_checks(value);
            list.iter_mut().for_each(|(x, _)| null_checks(x));
        }
    }
    let Expr::Cmp {
        op: op @ (CmpOp::Eq | CmpOp::Neq),
        left,
        right,
        ..
    } = e
    else {
        return;
    };
    let is_null = |x: &Expr| x.is_constant() && fold(x) == Literal::Null;
    let subject = if is_null(right) {
        std::mem::replace(left, Box::new(Expr::Lit(Literal::Null)))
    } else if is_null(left) {
        std::mem::replace(right, Box::new(Expr::Lit(Literal::Null)))
    } else {
        return;
    };
    let check = Expr::IsNull(subject);
    *e = if *op == CmpOp::Neq {
        Expr::Not(Box::new(check))
    } else {
        check
    };
}

fn lower(e: &Expr) -> Result<Cond, ParseError> {
    if e.is_constant() {
        return Ok(script(Expr::Lit(fold(e))));
    }
    Ok(match e {
        Expr::And(xs) => Cond::And(xs.iter().map(lower).collect::<Result<_, _>>()?),
        Expr::Or(xs) => Cond::Or(xs.iter().map(lower).collect::<Result<_, _>>()?),
        Expr::IsNull(x) => match &**x {
            Expr::Field { path, .. } => Cond::Field(path.clone(), FieldPred::Missing),
            _ => script(e.clone()),
        },
        Expr::Not(x) => match lower(x)? {
            Cond::Script(s) => Cond::Script(Script {
                expr: Expr::Not(Box::new(s.expr)),
                ..s
            }),
            c => Cond::Not(Box::new(c)),
        },
        Expr::Cmp {
            op,
            left,
            right,
            pos,
        } => compare(e, *op, left, right, pos)?,
        Expr::In {
            value,
            list,
            insensitive,
        } => match &**value {
            Expr::Field { path, .. } => {
                if let Some((_, pos)) = list.iter().find(|(x, _)| !x.is_constant()) {
                    return Err(field_error(pos));
                }
                let matchers = list
                    .iter()
                    .map(|(x, _)| fold(x))
                    .filter(|lit| *lit != Literal::Null)
                    .map(|lit| match lit {
                        Literal::Str(s) if *insensitive => Matcher::EqualIgnoreCase(s),
                        lit => Matcher::Equal(lit),
                    })
                    .collect();
                Cond::Field(path.clone(), FieldPred::Any(matchers))
            }
            _ => script(e.clone()),
        },
        Expr::Match {
            value,
            matchers: ms,
        } => match &**value {
            Expr::Field { path, .. } => Cond::Field(path.clone(), FieldPred::Any(ms.clone())),
            _ => script(e.clone()),
        },
        Expr::Call {
            func,
            insensitive,
            args,
            pos,
        } => call(*func, *insensitive, args, pos)?.unwrap_or_else(|| script(e.clone())),
        _ => script(e.clone()),
    })
}

fn compare(e: &Expr, op: CmpOp, left: &Expr, right: &Expr, pos: &Pos) -> Result<Cond, ParseError> {
    let (subject, op, constant) = if right.is_constant() {
        (left, op, right)
    } else if left.is_constant() {
        (right, op.flip(), left)
    } else {
        return Err(field_error(pos));
    };
    let lit = fold(constant);
    let Expr::Field { path, .. } = subject else {
        return Ok(script(e.clone()));
    };
    let field = |pred| Cond::Field(path.clone(), pred);
    Ok(match (op, lit) {
        // An order against null is null: never true, not even negated.
        (_, Literal::Null) => script(e.clone()),
        (CmpOp::Eq, lit) => field(FieldPred::Any(vec![Matcher::Equal(lit)])),
        (CmpOp::Neq, lit) => Cond::Not(Box::new(field(FieldPred::Any(vec![Matcher::Equal(lit)])))),
        (op, lit) => field(FieldPred::Range(op, lit)),
    })
}

/// The functions Elasticsearch turns into field queries when their first
/// argument is a field and the rest are constants.
fn call(
    func: Func,
    insensitive: bool,
    args: &[Expr],
    pos: &Pos,
) -> Result<Option<Cond>, ParseError> {
    let (Some(Expr::Field { path, .. }), rest) = (args.first(), args.get(1..).unwrap_or(&[]))
    else {
        return Ok(None);
    };
    if !rest.iter().all(Expr::is_constant) {
        return Ok(None);
    }
    let lits: Vec<Literal> = rest.iter().map(fold).collect();
    let text = match lits.first() {
        Some(Literal::Str(s)) => Some(s.as_str()),
        _ => None,
    };
    let matcher = match (func, text) {
        (Func::CidrMatch, _) => {
            let mut blocks = Vec::new();
            for lit in lits.iter().filter(|l| **l != Literal::Null) {
                let parsed = match lit {
                    Literal::Str(s) => Cidr::parse(s),
                    _ => None,
                };
                let Some(block) = parsed else {
                    let text = to_text(&Val::from_lit(lit)).unwrap_or_default();
                    return Err(ParseError {
                        line: pos.line,
                        column: pos.column,
                        found: text,
                        expected: "a cidr block such as 10.0.0.0/8".into(),
                    });
                };
                blocks.push(block);
            }
            Matcher::Cidr(blocks)
        }
        (Func::StartsWith, Some(s)) => Matcher::Prefix(s.to_string(), insensitive),
        // Pushed down as raw Lucene wildcards, so `*` and `?` in the text act as such.
        (Func::StringContains, Some(s)) => {
            Matcher::Wildcard(Wildcard::lucene(&format!("*{s}*"), insensitive))
        }
        (Func::EndsWith, Some(s)) => {
            Matcher::Wildcard(Wildcard::lucene(&format!("*{s}"), insensitive))
        }
        _ => return Ok(None),
    };
    Ok(Some(Cond::Field(
        path.clone(),
        FieldPred::Any(vec![matcher]),
    )))
}

impl Cond {
    /// The conditions that must all hold (the top-level conjunction).
    fn conjuncts(&self) -> Vec<&Cond> {
        match self {
            Cond::And(xs) => xs.iter().flat_map(Cond::conjuncts).collect(),
            c => vec![c],
        }
    }

    /// The exact strings this condition requires of `field`, if it is a
    /// case-sensitive equality or a disjunction of them.
    fn pins(&self, field: &str) -> Option<Vec<String>> {
        match self {
            Cond::Field(path, FieldPred::Any(ms)) if path.dotted() == field => ms
                .iter()
                .map(|m| m.exact_string().map(str::to_string))
                .collect(),
            Cond::Or(xs) => {
                let mut all = Vec::new();
                for x in xs {
                    all.extend(x.pins(field)?);
                }
                Some(all)
            }
            _ => None,
        }
    }

    /// See [`super::Query::pinned_values`].
    pub(crate) fn pinned_values(&self, field: &str) -> Option<Vec<String>> {
        let mut result: Option<Vec<String>> = None;
        for c in self.conjuncts() {
            if let Some(mut values) = c.pins(field) {
                values.sort();
                values.dedup();
                result = Some(match result {
                    None => values,
                    Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
                });
            }
        }
        result
    }

    /// Every field the condition reads.
    pub(crate) fn fields(&self, out: &mut Vec<String>) {
        match self {
            Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| x.fields(out)),
            Cond::Not(x) => x.fields(out),
            Cond::Field(path, _) => out.push(path.dotted()),
            Cond::Script(s) => out.extend(s.fields.iter().map(FieldPath::dotted)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn planned(src: &str) -> Result<Cond, ParseError> {
        plan(&parse(&format!("any where {src}")).unwrap().condition)
    }

    fn shape(c: &Cond) -> String {
        let list = |xs: &[Cond], sep: &str| {
            let parts: Vec<String> = xs.iter().map(shape).collect();
            format!("({})", parts.join(sep))
        };
        match c {
            Cond::And(xs) => list(xs, " and "),
            Cond::Or(xs) => list(xs, " or "),
            Cond::Not(x) => format!("not {}", shape(x)),
            Cond::Field(p, FieldPred::Missing) => format!("missing({})", p.dotted()),
            Cond::Field(p, FieldPred::Any(ms)) => format!("any({}, {})", p.dotted(), ms.len()),
            Cond::Field(p, FieldPred::Range(op, _)) => format!("range({}, {op:?})", p.dotted()),
            Cond::Script(s) => format!(
                "script{:?}",
                s.fields.iter().map(FieldPath::dotted).collect::<Vec<_>>()
            ),
        }
    }

    fn p(src: &str) -> String {
        shape(&planned(src).unwrap())
    }

    #[test]
    fn field_queries_and_scripts() {
        assert_eq!(p("a == 1 and b != \"x\""), "(any(a, 1) and not any(b, 1))");
        assert_eq!(
            p("a == null or b != null"),
            "(missing(a) or not missing(b))"
        );
        assert_eq!(p("1 < a"), "range(a, Gt)");
        assert_eq!(p("a not in (\"x\", null, \"y\")"), "not any(a, 2)");
        assert_eq!(p("not length(a) > 3"), "script[\"a\"]");
        assert_eq!(p("startsWith~(a, \"x\")"), "any(a, 1)");
        assert_eq!(p("startsWith(a, b)"), "script[\"a\", \"b\"]");
        assert_eq!(
            p("cidrMatch(ip, \"10.0.0.0/8\", \"192.168.0.0/16\")"),
            "any(ip, 1)"
        );
        assert_eq!(p("a + 1 == 2"), "script[\"a\"]");
        assert_eq!(p("1 == 1"), "script[]");
        assert_eq!(p("a < null"), "script[\"a\"]");
        assert_eq!(
            p("not (a == 1 and length(b) == 2)"),
            "not (any(a, 1) and script[\"b\"])"
        );
    }

    #[test]
    fn field_against_field_is_an_error() {
        let e = planned("process.name == process.parent.name").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1, column 27: expected a literal value (comparing a field with a field is not \
             supported), found process.parent.name"
        );
        assert!(planned("a in (\"x\", b)").is_err());
        assert!(planned("length(a) == length(b)").is_err());
        assert!(planned("cidrMatch(ip, \"nope\")").is_err());
    }

    #[test]
    fn pinned_values() {
        let c =
            planned("a == \"x\" and b in (\"p\", \"q\") and (c == \"1\" or c == \"2\")").unwrap();
        assert_eq!(c.pinned_values("a"), Some(vec!["x".to_string()]));
        assert_eq!(
            c.pinned_values("b"),
            Some(vec!["p".to_string(), "q".to_string()])
        );
        assert_eq!(
            c.pinned_values("c"),
            Some(vec!["1".to_string(), "2".to_string()])
        );
        assert_eq!(c.pinned_values("d"), None);
        let c =
            planned("a in~ (\"x\") and b like \"y*\" and e == 1 and (f == \"1\" or g == \"2\")");
        let c = c.unwrap();
        for field in ["a", "b", "e", "f"] {
            assert_eq!(c.pinned_values(field), None, "{field}");
        }
        let c = planned("a in (\"x\", \"y\") and a == \"y\" and a like \"y\"").unwrap();
        assert_eq!(c.pinned_values("a"), Some(vec!["y".to_string()]));
        let mut fields = Vec::new();
        c.fields(&mut fields);
        assert_eq!(fields, ["a", "a", "a"]);
    }
}
