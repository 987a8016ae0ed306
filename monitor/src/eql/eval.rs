//! Evaluation of a planned condition against one ECS event (a JSON object).
//!
//! Field values are looked up as Elasticsearch indexes them: a path walks
//! nested objects and also dotted keys (`{"process.name": ..}`), arrays are
//! flattened at every level (an array of objects yields the values of all
//! of them), and `null` entries are no value. `process.args[0]` indexes the
//! JSON array itself (Elasticsearch does not support indexes; this is an
//! extension).
//!
//! A field query holds when any value satisfies it. A script is evaluated in
//! three-valued logic for every combination of the values of the fields it
//! reads (a missing field contributes one `null`), and holds when some
//! combination gives `true`, as Elasticsearch's multi-value-aware scripts do.
//!
//! Not done yet: the number of combinations a script tries is capped at
//! [`MAX_COMBINATIONS`] (only reached by scripts over several long arrays).

use serde_json::Value;

use super::ast::{Expr, Seg};
use super::functions::{arith, call};
use super::plan::{Cond, FieldPred, Script};
use super::value::{Val, field_cmp, script_eq};
use super::wildcard::eq_ignore_case;

/// Most value combinations one script evaluation tries.
pub(crate) const MAX_COMBINATIONS: usize = 65_536;

/// The values at `segs` under `v`, flattened, without nulls.
pub(crate) fn resolve<'a>(v: &'a Value, segs: &[Seg], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segs.split_first() else {
        push_leaves(v, out);
        return;
    };
    match (first, v) {
        (Seg::Index(i), Value::Array(items)) => {
            if let Some(x) = items.get(*i) {
                resolve(x, rest, out);
            }
        }
        (Seg::Name(_), Value::Array(items)) => {
            for x in items {
                resolve(x, segs, out);
            }
        }
        (Seg::Name(name), Value::Object(map)) => {
            if let Some(x) = map.get(name) {
                resolve(x, rest, out);
            }
            for (key, x) in map.iter().filter(|(k, _)| k.contains('.')) {
                if let Some(n) = dotted_prefix(key, segs) {
                    resolve(x, &segs[n..], out);
                }
            }
        }
        _ => {}
    }
}

/// How many path steps a dotted key such as `"process.name"` stands for.
fn dotted_prefix(key: &str, segs: &[Seg]) -> Option<usize> {
    let mut n = 0;
    for part in key.split('.') {
        match segs.get(n) {
            Some(Seg::Name(name)) if name == part => n += 1,
            _ => return None,
        }
    }
    Some(n)
}

fn push_leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| push_leaves(x, out)),
        Value::Null => {}
        leaf => out.push(leaf),
    }
}

impl Cond {
    /// True when the event satisfies the condition.
    pub(crate) fn matches(&self, event: &Value) -> bool {
        match self {
            Cond::And(xs) => xs.iter().all(|x| x.matches(event)),
            Cond::Or(xs) => xs.iter().any(|x| x.matches(event)),
            Cond::Not(x) => !x.matches(event),
            Cond::Field(path, pred) => {
                let mut values = Vec::new();
                resolve(event, &path.segs, &mut values);
                pred.test(&values)
            }
            Cond::Script(s) => s.matches(event),
        }
    }
}

impl FieldPred {
    fn test(&self, values: &[&Value]) -> bool {
        match self {
            FieldPred::Missing => values.is_empty(),
            FieldPred::Any(matchers) => values.iter().any(|v| {
                let v = Val::from_json(v);
                matchers.iter().any(|m| m.test(&v, true) == Some(true))
            }),
            FieldPred::Range(op, lit) => values
                .iter()
                .any(|v| field_cmp(&Val::from_json(v), lit).is_some_and(|o| op.holds(o))),
        }
    }
}

impl Script {
    fn matches(&self, event: &Value) -> bool {
        let candidates: Vec<Vec<Val>> = self
            .fields
            .iter()
            .map(|path| {
                let mut values = Vec::new();
                resolve(event, &path.segs, &mut values);
                let vals: Vec<Val> = values.into_iter().map(Val::from_json).collect();
                if vals.is_empty() {
                    vec![Val::Null]
                } else {
                    vals
                }
            })
            .collect();
        let mut index = vec![0usize; candidates.len()];
        for _ in 0..MAX_COMBINATIONS {
            let env: Vec<Val> = index
                .iter()
                .zip(&candidates)
                .map(|(&i, c)| c[i].clone())
                .collect();
            if eval(&self.expr, &env) == Val::Bool(true) {
                return true;
            }
            // Next combination, odometer-style; done when every digit wrapped.
            let mut k = 0;
            loop {
                let Some(slot) = index.get_mut(k) else {
                    return false;
                };
                *slot += 1;
                if *slot < candidates[k].len() {
                    break;
                }
                *slot = 0;
                k += 1;
            }
        }
        false
    }
}

/// Three-valued evaluation of an expression; `env` holds the value of each
/// field slot.
pub(crate) fn eval<'a>(e: &'a Expr, env: &[Val<'a>]) -> Val<'a> {
    let boolean = |v: Option<bool>| v.map_or(Val::Null, Val::Bool);
    match e {
        Expr::Lit(lit) => Val::from_lit(lit),
        Expr::Field { slot, .. } => env.get(*slot).cloned().unwrap_or(Val::Null),
        Expr::Not(x) => boolean(eval(x, env).as_bool().map(|b| !b)),
        Expr::And(xs) => kleene(xs.iter().map(|x| eval(x, env).as_bool()), false),
        Expr::Or(xs) => kleene(xs.iter().map(|x| eval(x, env).as_bool()), true),
        Expr::Cmp {
            op, left, right, ..
        } => {
            let (l, r) = (eval(left, env), eval(right, env));
            boolean(super::value::script_cmp(&l, &r).map(|o| op.holds(o)))
        }
        Expr::IsNull(x) => Val::Bool(eval(x, env) == Val::Null),
        Expr::Arith { op, left, right } => arith(op.symbol(), &eval(left, env), &eval(right, env)),
        Expr::Neg(x) => match eval(x, env) {
            Val::Int(i) => i.checked_neg().map_or(Val::Null, Val::Int),
            Val::Float(f) => Val::Float(-f),
            _ => Val::Null,
        },
        Expr::In {
            value,
            list,
            insensitive,
        } => {
            let v = eval(value, env);
            if v == Val::Null {
                return Val::Null;
            }
            kleene(
                list.iter().map(|(x, _)| {
                    let item = eval(x, env);
                    match (&v, &item) {
                        (Val::Str(a), Val::Str(b)) if *insensitive => Some(eq_ignore_case(a, b)),
                        _ => script_eq(&v, &item),
                    }
                }),
                true,
            )
        }
        Expr::Match { value, matchers } => {
            let v = eval(value, env);
            kleene(matchers.iter().map(|m| m.test(&v, false)), true)
        }
        Expr::Call {
            func,
            insensitive,
            args,
            ..
        } => {
            let args: Vec<Val> = args.iter().map(|x| eval(x, env)).collect();
            call(*func, *insensitive, &args)
        }
    }
}

/// Kleene `or` (`short` = true) or `and` (`short` = false): the short-circuit
/// value wins, else null if any operand is null.
fn kleene(values: impl Iterator<Item = Option<bool>>, short: bool) -> Val<'static> {
    let mut unknown = false;
    for v in values {
        match v {
            Some(b) if b == short => return Val::Bool(short),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown {
        Val::Null
    } else {
        Val::Bool(!short)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ast::FieldPath;
    use super::*;
    use serde_json::json;

    fn values(event: &Value, path: &str) -> Vec<Value> {
        let segs = path
            .split('.')
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Name(s.to_string()),
            })
            .collect::<Vec<_>>();
        let path = FieldPath {
            segs,
            optional: false,
        };
        let mut out = Vec::new();
        resolve(event, &path.segs, &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn resolution_flattens_and_follows_dotted_keys() {
        let e = json!({
            "process": {"args": ["a", null, ["b"]], "parent": {"name": "bash"}},
            "process.pid": 7,
            "x": [{"y": 1}, {"y": [2, 3]}, {"z": 4}],
            "n": null,
            "o": {"a.b": {"c": "deep"}}
        });
        assert_eq!(values(&e, "process.args"), [json!("a"), json!("b")]);
        assert_eq!(values(&e, "process.parent.name"), [json!("bash")]);
        assert_eq!(values(&e, "process.pid"), [json!(7)]);
        assert_eq!(values(&e, "x.y"), [json!(1), json!(2), json!(3)]);
        assert_eq!(values(&e, "process.args.0"), [json!("a")]);
        assert_eq!(values(&e, "process.args.2"), [json!("b")]);
        assert_eq!(values(&e, "process.args.9"), Vec::<Value>::new());
        assert!(values(&e, "n").is_empty());
        assert!(values(&e, "missing.field").is_empty());
        assert_eq!(values(&e, "o.a.b.c"), [json!("deep")]);
    }

    #[test]
    fn kleene_logic() {
        assert_eq!(
            kleene([Some(true), None].into_iter(), true),
            Val::Bool(true)
        );
        assert_eq!(kleene([Some(false), None].into_iter(), true), Val::Null);
        assert_eq!(
            kleene([Some(false), None].into_iter(), false),
            Val::Bool(false)
        );
        assert_eq!(kleene([Some(true), None].into_iter(), false), Val::Null);
        assert_eq!(
            kleene([Some(true), Some(true)].into_iter(), false),
            Val::Bool(true)
        );
    }
}
