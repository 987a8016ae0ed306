//! Values and how they compare: query literals, event values, and the two
//! comparison regimes Elasticsearch has.
//!
//! A predicate on a plain field runs as a Lucene query against the indexed
//! terms, and Lucene converts the literal to the field's type first (`"1"`
//! matches the number `1` in a numeric field, `1` matches `"1"` in a keyword
//! field). Without a mapping, the type of the JSON value stands in for the
//! field's type. Anything computed (function results, arithmetic) runs in a
//! script instead, where types must agree and `null` stays `null`.
//!
//! Not done yet: dates, IP and version fields compare as the strings or
//! numbers they are in the JSON; Java's UTF-16 ordering of strings is
//! approximated by code-point order (they differ only above U+FFFF).

use std::borrow::Cow;
use std::cmp::Ordering;

/// A literal written in a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A value during evaluation: from the event, a literal, or computed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl<'a> Val<'a> {
    /// An event leaf; objects have no value of their own.
    pub(crate) fn from_json(v: &'a serde_json::Value) -> Self {
        match v {
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => n.as_f64().map_or(Val::Null, Val::Float),
            },
            serde_json::Value::String(s) => Val::Str(Cow::Borrowed(s)),
            _ => Val::Null,
        }
    }

    pub(crate) fn from_lit(lit: &'a Literal) -> Self {
        match lit {
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::Bool(*b),
            Literal::Int(i) => Val::Int(*i),
            Literal::Float(f) => Val::Float(*f),
            Literal::Str(s) => Val::Str(Cow::Borrowed(s)),
        }
    }

    /// The literal with the same value (for constant folding).
    pub(crate) fn to_lit(&self) -> Literal {
        match self {
            Val::Null => Literal::Null,
            Val::Bool(b) => Literal::Bool(*b),
            Val::Int(i) => Literal::Int(*i),
            Val::Float(f) => Literal::Float(*f),
            Val::Str(s) => Literal::Str(s.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// A number, kept exact while it is an integer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn of(v: &Val) -> Option<Num> {
        match v {
            Val::Int(i) => Some(Num::Int(*i)),
            Val::Float(f) => Some(Num::Float(*f)),
            _ => None,
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub(crate) fn val(self) -> Val<'static> {
        match self {
            Num::Int(i) => Val::Int(i),
            Num::Float(f) => Val::Float(f),
        }
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}

/// Java's `Double.toString`, which Elasticsearch uses to turn a float into
/// text (`1.0`, `0.25`, `1.0E10`).
pub(crate) fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{f}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

/// The text Elasticsearch makes of a value (`string()`, `concat()`, and
/// literals searched in keyword fields).
pub(crate) fn to_text(v: &Val) -> Option<String> {
    match v {
        Val::Null => None,
        Val::Bool(b) => Some(b.to_string()),
        Val::Int(i) => Some(i.to_string()),
        Val::Float(f) => Some(java_double(*f)),
        Val::Str(s) => Some(s.to_string()),
    }
}

/// Field-query order of an event value against a literal, converting the
/// literal to the value's type as Lucene converts it to the field's type.
/// `None` when the literal does not convert (Elasticsearch would reject it).
pub(crate) fn field_cmp(v: &Val, lit: &Literal) -> Option<Ordering> {
    match v {
        Val::Str(s) => match lit {
            Literal::Str(l) => Some(s.as_ref().cmp(l.as_str())),
            _ => Some(s.as_ref().cmp(to_text(&Val::from_lit(lit))?.as_str())),
        },
        Val::Int(_) | Val::Float(_) => {
            let n = Num::of(v)?;
            let l = match lit {
                Literal::Int(i) => Num::Int(*i),
                Literal::Float(f) => Num::Float(*f),
                Literal::Str(s) => match s.trim().parse::<i64>() {
                    Ok(i) => Num::Int(i),
                    Err(_) => Num::Float(s.trim().parse::<f64>().ok()?),
                },
                _ => return None,
            };
            num_cmp(n, l)
        }
        Val::Bool(b) => {
            let l = match lit {
                Literal::Bool(l) => *l,
                Literal::Str(s) if s == "true" => true,
                Literal::Str(s) if s == "false" => false,
                _ => return None,
            };
            Some(b.cmp(&l))
        }
        Val::Null => None,
    }
}

/// Field-query equality (a `term` query).
pub(crate) fn field_eq(v: &Val, lit: &Literal) -> bool {
    match (v, lit) {
        (Val::Str(s), Literal::Str(l)) => s == l,
        _ => field_cmp(v, lit) == Some(Ordering::Equal),
    }
}

/// Script order: `None` when either side is null or the types differ.
pub(crate) fn script_cmp(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => num_cmp(Num::of(a)?, Num::of(b)?),
    }
}

/// Script equality, three-valued.
pub(crate) fn script_eq(a: &Val, b: &Val) -> Option<bool> {
    script_cmp(a, b).map(Ordering::is_eq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(x))
    }

    #[test]
    fn keyword_fields_compare_literals_as_text() {
        assert!(field_eq(&s("dmesg"), &Literal::Str("dmesg".into())));
        assert!(!field_eq(&s("dmesg"), &Literal::Str("DMESG".into())));
        assert!(field_eq(&s("0"), &Literal::Int(0)));
        assert!(field_eq(&s("true"), &Literal::Bool(true)));
        assert_eq!(field_cmp(&s("10"), &Literal::Int(5)), Some(Ordering::Less));
        assert!(!field_eq(&s("x"), &Literal::Null));
    }

    #[test]
    fn numeric_fields_compare_numerically() {
        assert!(field_eq(&Val::Int(3), &Literal::Int(3)));
        assert!(field_eq(&Val::Int(3), &Literal::Float(3.0)));
        assert!(field_eq(&Val::Int(3), &Literal::Str("3".into())));
        assert!(!field_eq(&Val::Int(3), &Literal::Str("three".into())));
        assert_eq!(
            field_cmp(&Val::Float(2.5), &Literal::Int(3)),
            Some(Ordering::Less)
        );
        assert!(!field_eq(&Val::Bool(true), &Literal::Int(1)));
    }

    #[test]
    fn scripts_need_matching_types() {
        assert_eq!(script_eq(&Val::Int(1), &Val::Float(1.0)), Some(true));
        assert_eq!(script_eq(&s("1"), &Val::Int(1)), None);
        assert_eq!(script_eq(&Val::Null, &Val::Int(1)), None);
        assert_eq!(script_cmp(&s("a"), &s("b")), Some(Ordering::Less));
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(42.5), "42.5");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(to_text(&Val::Int(42)).as_deref(), Some("42"));
        assert_eq!(to_text(&Val::Null), None);
    }
}
