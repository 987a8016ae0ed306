//! EQL's functions: the catalogue (names, argument counts, which take `~`)
//! and what each returns, with Elasticsearch's null handling (a `null`
//! argument gives `null`, as the EQL function reference says).
//!
//! Not done yet: positions and lengths count Unicode scalar values where
//! Java counts UTF-16 units (except `length`, which counts as Java does);
//! Elasticsearch's errors for wrong argument types at run time become `null`.

use std::borrow::Cow;

use super::cidr::Cidr;
use super::value::{Num, Val, to_text};
use super::wildcard::simple_lower;

/// A function EQL knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Add,
    Between,
    CidrMatch,
    Concat,
    Divide,
    EndsWith,
    IndexOf,
    Length,
    Modulo,
    Multiply,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    Subtract,
}

/// Name, fewest and most arguments (`None`: any number), and whether `~` applies.
const CATALOGUE: [(Func, &str, usize, Option<usize>, bool); 16] = [
    (Func::Add, "add", 2, Some(2), false),
    (Func::Between, "between", 3, Some(4), true),
    (Func::CidrMatch, "cidrMatch", 2, None, false),
    (Func::Concat, "concat", 1, None, false),
    (Func::Divide, "divide", 2, Some(2), false),
    (Func::EndsWith, "endsWith", 2, Some(2), true),
    (Func::IndexOf, "indexOf", 2, Some(3), true),
    (Func::Length, "length", 1, Some(1), false),
    (Func::Modulo, "modulo", 2, Some(2), false),
    (Func::Multiply, "multiply", 2, Some(2), false),
    (Func::Number, "number", 1, Some(2), false),
    (Func::StartsWith, "startsWith", 2, Some(2), true),
    (Func::String, "string", 1, Some(1), false),
    (Func::StringContains, "stringContains", 2, Some(2), true),
    (Func::Substring, "substring", 2, Some(3), false),
    (Func::Subtract, "subtract", 2, Some(2), false),
];

impl Func {
    /// The function with this name; like Elasticsearch, ignoring case.
    pub(crate) fn by_name(name: &str) -> Option<Func> {
        CATALOGUE
            .iter()
            .find(|entry| entry.1.eq_ignore_ascii_case(name))
            .map(|entry| entry.0)
    }

    fn entry(self) -> (Func, &'static str, usize, Option<usize>, bool) {
        CATALOGUE
            .iter()
            .copied()
            .find(|entry| entry.0 == self)
            .unwrap_or((self, "?", 0, None, false))
    }

    pub(crate) fn name(self) -> &'static str {
        self.entry().1
    }

    /// Fewest and most arguments.
    pub(crate) fn arity(self) -> (usize, Option<usize>) {
        let e = self.entry();
        (e.2, e.3)
    }

    /// Whether a `~` (case-insensitive) variant exists.
    pub(crate) fn takes_tilde(self) -> bool {
        self.entry().4
    }

    /// The names of all functions, for error messages.
    pub(crate) fn all_names() -> String {
        let names: Vec<&str> = CATALOGUE.iter().map(|e| e.1).collect();
        names.join(", ")
    }

    /// The names of the functions that take `~`.
    pub(crate) fn tilde_names() -> String {
        let names: Vec<&str> = CATALOGUE.iter().filter(|e| e.4).map(|e| e.1).collect();
        names.join(", ")
    }
}

/// Calls `func` on evaluated arguments.
pub(crate) fn call<'a>(func: Func, insensitive: bool, args: &[Val<'a>]) -> Val<'a> {
    let arg = |i: usize| args.get(i).unwrap_or(&Val::Null);
    match func {
        Func::Add => arith('+', arg(0), arg(1)),
        Func::Subtract => arith('-', arg(0), arg(1)),
        Func::Multiply => arith('*', arg(0), arg(1)),
        Func::Divide => arith('/', arg(0), arg(1)),
        Func::Modulo => arith('%', arg(0), arg(1)),
        Func::Between => between(args, insensitive).map_or(Val::Null, |s| Val::Str(s.into())),
        Func::CidrMatch => cidr_match(args),
        Func::Concat => {
            let parts: Option<Vec<String>> = args.iter().map(to_text).collect();
            parts.map_or(Val::Null, |p| Val::Str(Cow::Owned(p.concat())))
        }
        Func::EndsWith | Func::StartsWith | Func::StringContains => {
            let (Some(s), Some(sub)) = (arg(0).as_str(), arg(1).as_str()) else {
                return Val::Null;
            };
            let (s, sub) = (chars(s, insensitive), chars(sub, insensitive));
            Val::Bool(match func {
                Func::EndsWith => s.ends_with(&sub),
                Func::StartsWith => s.starts_with(&sub),
                _ => find(&s, &sub, 0).is_some(),
            })
        }
        Func::IndexOf => index_of(args, insensitive),
        Func::Length => match arg(0) {
            Val::Str(s) => Val::Int(s.encode_utf16().count() as i64),
            _ => Val::Null,
        },
        Func::Number => number(arg(0), arg(1)),
        Func::String => to_text(arg(0)).map_or(Val::Null, |s| Val::Str(Cow::Owned(s))),
        Func::Substring => substring(args),
    }
}

/// The arithmetic operators and functions: integers stay integers (division
/// truncates, as in Java); overflow and division by integer zero give null.
pub(crate) fn arith<'a>(op: char, a: &Val, b: &Val) -> Val<'a> {
    let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) else {
        return Val::Null;
    };
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => {
            let r = match op {
                '+' => x.checked_add(y),
                '-' => x.checked_sub(y),
                '*' => x.checked_mul(y),
                '/' => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            r.map_or(Val::Null, Val::Int)
        }
        _ => {
            let (x, y) = (x.as_f64(), y.as_f64());
            Num::Float(match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => x % y,
            })
            .val()
        }
    }
}

/// The characters of `s`, lower-cased for the `~` variants.
fn chars(s: &str, insensitive: bool) -> Vec<char> {
    s.chars()
        .map(|c| if insensitive { simple_lower(c) } else { c })
        .collect()
}

fn find(hay: &[char], needle: &[char], from: usize) -> Option<usize> {
    (from..=hay.len().checked_sub(needle.len())?).find(|&i| hay[i..].starts_with(needle))
}

fn between(args: &[Val], insensitive: bool) -> Option<String> {
    let source = args.first()?.as_str()?;
    let left = chars(args.get(1)?.as_str()?, insensitive);
    let right = chars(args.get(2)?.as_str()?, insensitive);
    let greedy = match args.get(3) {
        None | Some(Val::Null) => false,
        Some(v) => v.as_bool()?,
    };
    let original: Vec<char> = source.chars().collect();
    let hay = chars(source, insensitive);
    let Some(at) = find(&hay, &left, 0) else {
        return Some(String::new());
    };
    let start = at + left.len();
    let end = if greedy {
        let last = hay.len().checked_sub(right.len());
        last.and_then(|last| (start..=last).rev().find(|&i| hay[i..].starts_with(&right)))
    } else {
        find(&hay, &right, start)
    };
    Some(end.map_or_else(String::new, |end| original[start..end].iter().collect()))
}

fn index_of<'a>(args: &[Val], insensitive: bool) -> Val<'a> {
    let (Some(Val::Str(s)), Some(Val::Str(sub))) = (args.first(), args.get(1)) else {
        return Val::Null;
    };
    let start = match args.get(2) {
        None => 0,
        Some(Val::Int(i)) => *i,
        Some(_) => return Val::Null,
    };
    let (hay, needle) = (chars(s, insensitive), chars(sub, insensitive));
    let Ok(from) = usize::try_from(start.max(0)) else {
        return Val::Null;
    };
    if from > hay.len() {
        return Val::Null;
    }
    find(&hay, &needle, from).map_or(Val::Null, |i| Val::Int(i as i64))
}

fn number<'a>(value: &Val, base: &Val) -> Val<'a> {
    let Some(text) = value.as_str() else {
        return Val::Null;
    };
    let source = text.trim();
    let hex = source.starts_with("0x");
    let base = match base {
        Val::Null => {
            if hex {
                16
            } else {
                10
            }
        }
        Val::Int(b) if (2..=36).contains(b) => *b as u32,
        _ => return Val::Null,
    };
    if base == 10 {
        if let Ok(i) = source.parse::<i64>() {
            return Val::Int(i);
        }
        return source.parse::<f64>().map_or(Val::Null, Val::Float);
    }
    let digits = if hex && base == 16 {
        &source[2..]
    } else {
        source
    };
    i64::from_str_radix(digits, base).map_or(Val::Null, Val::Int)
}

fn substring<'a>(args: &[Val]) -> Val<'a> {
    let (Some(Val::Str(s)), Some(Val::Int(start))) = (args.first(), args.get(1)) else {
        return Val::Null;
    };
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let end = match args.get(2) {
        None | Some(Val::Null) => len,
        Some(Val::Int(e)) => *e,
        Some(_) => return Val::Null,
    };
    let clamp = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
    let (start, end) = (clamp(*start), clamp(end));
    let out: String = if start < end {
        chars[start..end].iter().collect()
    } else {
        String::new()
    };
    Val::Str(Cow::Owned(out))
}

fn cidr_match<'a>(args: &[Val]) -> Val<'a> {
    let Some(addr) = args.first().and_then(Val::as_str) else {
        return Val::Null;
    };
    let Ok(ip) = addr.parse() else {
        return Val::Null;
    };
    let mut hit = false;
    for block in &args[1..] {
        let Some(cidr) = block.as_str().and_then(Cidr::parse) else {
            return Val::Null;
        };
        hit |= cidr.contains(ip);
    }
    Val::Bool(hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(x))
    }
    fn text(v: Val) -> String {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{v:?}"))
    }

    #[test]
    fn catalogue() {
        assert_eq!(Func::by_name("startswith"), Some(Func::StartsWith));
        assert_eq!(Func::by_name("cidrMatch"), Some(Func::CidrMatch));
        assert_eq!(Func::by_name("wildcard"), None);
        assert_eq!(Func::Between.arity(), (3, Some(4)));
        assert!(Func::StringContains.takes_tilde());
        assert!(!Func::Length.takes_tilde());
        assert!(Func::all_names().contains("substring"));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(arith('/', &Val::Int(4), &Val::Int(3)), Val::Int(1));
        assert_eq!(arith('/', &Val::Int(4), &Val::Float(0.5)), Val::Float(8.0));
        assert_eq!(arith('%', &Val::Int(-10), &Val::Int(-6)), Val::Int(-4));
        assert_eq!(arith('/', &Val::Int(4), &Val::Int(0)), Val::Null);
        assert_eq!(arith('+', &Val::Int(i64::MAX), &Val::Int(1)), Val::Null);
        assert_eq!(arith('+', &Val::Null, &Val::Int(1)), Val::Null);
    }

    #[test]
    fn string_functions() {
        let path = s(r"C:\Windows\System32\cmd.exe");
        let b = |l, r, g: Option<bool>| {
            let mut args = vec![path.clone(), s(l), s(r)];
            args.extend(g.map(Val::Bool));
            text(call(Func::Between, false, &args))
        };
        assert_eq!(b("System32\\", ".exe", None), "cmd");
        assert_eq!(b("workspace\\", ".exe", None), "");
        assert_eq!(b("\\", "\\", Some(false)), "Windows");
        assert_eq!(b("\\", "\\", Some(true)), r"Windows\System32");
        let name = s("regsvr32.exe");
        assert_eq!(
            call(Func::EndsWith, false, &[name.clone(), s(".EXE")]),
            Val::Bool(false)
        );
        assert_eq!(
            call(Func::EndsWith, true, &[name.clone(), s(".EXE")]),
            Val::Bool(true)
        );
        assert_eq!(
            call(Func::StartsWith, false, &[name.clone(), s("regsvr")]),
            Val::Bool(true)
        );
        assert_eq!(
            call(Func::StringContains, false, &[name.clone(), s("svr")]),
            Val::Bool(true)
        );
        assert_eq!(
            call(Func::StringContains, false, &[name.clone(), Val::Null]),
            Val::Null
        );
        assert_eq!(call(Func::Length, false, &[name]), Val::Int(12));
        assert_eq!(call(Func::Length, false, &[Val::Null]), Val::Null);
        let domain = s("subdomain.example.com");
        fn idx<'a>(args: &[Val<'a>]) -> Val<'a> {
            call(Func::IndexOf, false, args)
        }
        assert_eq!(idx(&[domain.clone(), s(".")]), Val::Int(9));
        assert_eq!(idx(&[domain.clone(), s("."), Val::Int(10)]), Val::Int(17));
        assert_eq!(idx(&[domain.clone(), s("."), Val::Int(-6)]), Val::Int(9));
        assert_eq!(idx(&[domain.clone(), s(""), Val::Int(10)]), Val::Int(10));
        assert_eq!(idx(&[domain.clone(), s("z")]), Val::Null);
        assert_eq!(idx(&[domain.clone(), s("."), Val::Int(30)]), Val::Null);
        let sub = |args: &[Val]| text(call(Func::Substring, false, args));
        let cmd = s("start regsvr32.exe");
        assert_eq!(sub(&[cmd.clone(), Val::Int(6)]), "regsvr32.exe");
        assert_eq!(sub(&[cmd.clone(), Val::Int(0), Val::Int(5)]), "start");
        assert_eq!(sub(&[cmd.clone(), Val::Int(-4)]), ".exe");
        assert_eq!(sub(&[cmd.clone(), Val::Int(-4), Val::Int(-1)]), ".ex");
        assert_eq!(sub(&[cmd, Val::Int(20)]), "");
        let concat = call(
            Func::Concat,
            false,
            &[s("a"), Val::Int(42), Val::Float(0.5)],
        );
        assert_eq!(text(concat), "a420.5");
        assert_eq!(call(Func::Concat, false, &[s("a"), Val::Null]), Val::Null);
        assert_eq!(text(call(Func::String, false, &[Val::Bool(true)])), "true");
    }

    #[test]
    fn numbers() {
        fn n<'a>(v: &'a str, b: Val<'a>) -> Val<'a> {
            call(Func::Number, false, &[s(v), b])
        }
        assert_eq!(n("1337", Val::Null), Val::Int(1337));
        assert_eq!(n("  -1337 ", Val::Null), Val::Int(-1337));
        assert_eq!(n("42.5", Val::Null), Val::Float(42.5));
        assert_eq!(n("deadbeef", Val::Int(16)), Val::Int(3_735_928_559));
        assert_eq!(n("0xdeadbeef", Val::Null), Val::Int(3_735_928_559));
        assert_eq!(n("0xdeadbeef", Val::Int(16)), Val::Int(3_735_928_559));
        assert_eq!(n("nope", Val::Null), Val::Null);
    }

    #[test]
    fn cidr_match() {
        let ip = s("192.168.152.12");
        let m = |blocks: &[&'static str]| {
            let mut args = vec![ip.clone()];
            args.extend(blocks.iter().map(|b| s(b)));
            call(Func::CidrMatch, false, &args)
        };
        assert_eq!(m(&["10.0.0.0/8", "192.168.0.0/16"]), Val::Bool(true));
        assert_eq!(m(&["10.0.0.0/8", "10.128.0.0/9"]), Val::Bool(false));
        assert_eq!(
            call(Func::CidrMatch, false, &[s("nope"), s("10.0.0.0/8")]),
            Val::Null
        );
        assert_eq!(
            call(Func::CidrMatch, false, &[ip.clone(), Val::Null]),
            Val::Null
        );
    }
}
