//! Regular-expression matching by Brzozowski derivatives: the derivative
//! of an expression by a character is the expression the rest of the text
//! must match. The constructors simplify as they build (flattening, sorting
//! and de-duplicating unions and intersections, cancelling double
//! complements), which keeps the number of distinct derivatives finite and
//! small, so matching needs no automaton and takes time linear in the text.
//! Intersection (`&`) and complement (`~`) come for free.
//!
//! Not done yet: derivatives are recomputed for every value (no cache of
//! the states already seen).

use std::sync::Arc;

/// The largest Unicode scalar value.
pub(super) const MAX_CHAR: u32 = 0x10_FFFF;

/// Sorted, disjoint, non-adjacent inclusive ranges of code points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CharSet(pub(super) Vec<(u32, u32)>);

impl CharSet {
    pub(super) fn of(mut ranges: Vec<(u32, u32)>) -> Self {
        ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        CharSet(out)
    }

    pub(super) fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = 0u32;
        for &(lo, hi) in &self.0 {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= MAX_CHAR {
            out.push((next, MAX_CHAR));
        }
        CharSet(out)
    }

    fn contains(&self, c: char) -> bool {
        let c = u32::from(c);
        self.0
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }
}

/// A shared expression node.
pub(super) type R = Arc<Node>;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Node {
    nullable: bool,
    kind: Kind,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Nothing,
    Empty,
    Set(CharSet),
    Cat(R, R),
    Alt(Vec<R>),
    And(Vec<R>),
    Not(R),
    Star(R),
    Rep(R, u32, Option<u32>),
}

fn node(nullable: bool, kind: Kind) -> R {
    Arc::new(Node { nullable, kind })
}
pub(super) fn nothing() -> R {
    node(false, Kind::Nothing)
}
pub(super) fn empty() -> R {
    node(true, Kind::Empty)
}
pub(super) fn anything() -> R {
    not(nothing())
}
pub(super) fn set(ranges: Vec<(u32, u32)>) -> R {
    let s = CharSet::of(ranges);
    if s.0.is_empty() {
        nothing()
    } else {
        node(false, Kind::Set(s))
    }
}
fn is_anything(r: &R) -> bool {
    matches!(&r.kind, Kind::Not(x) if matches!(x.kind, Kind::Nothing))
}

pub(super) fn cat(a: R, b: R) -> R {
    match (&a.kind, &b.kind) {
        (Kind::Nothing, _) | (_, Kind::Nothing) => nothing(),
        (Kind::Empty, _) => b,
        (_, Kind::Empty) => a,
        (Kind::Cat(x, y), _) => cat(x.clone(), cat(y.clone(), b)),
        _ => node(a.nullable && b.nullable, Kind::Cat(a, b)),
    }
}

pub(super) fn alt(items: Vec<R>) -> R {
    let mut flat = Vec::with_capacity(items.len());
    for r in items {
        match &r.kind {
            Kind::Alt(xs) => flat.extend(xs.iter().cloned()),
            Kind::Nothing => {}
            _ if is_anything(&r) => return r,
            _ => flat.push(r),
        }
    }
    flat.sort();
    flat.dedup();
    match flat.len() {
        0 => nothing(),
        1 => flat.swap_remove(0),
        _ => node(flat.iter().any(|r| r.nullable), Kind::Alt(flat)),
    }
}

pub(super) fn and(items: Vec<R>) -> R {
    let mut flat = Vec::with_capacity(items.len());
    for r in items {
        match &r.kind {
            Kind::And(xs) => flat.extend(xs.iter().cloned()),
            Kind::Nothing => return r,
            _ if is_anything(&r) => {}
            _ => flat.push(r),
        }
    }
    flat.sort();
    flat.dedup();
    match flat.len() {
        0 => anything(),
        1 => flat.swap_remove(0),
        _ => node(flat.iter().all(|r| r.nullable), Kind::And(flat)),
    }
}

pub(super) fn not(a: R) -> R {
    match &a.kind {
        Kind::Not(x) => x.clone(),
        _ => node(!a.nullable, Kind::Not(a)),
    }
}

pub(super) fn star(a: R) -> R {
    match &a.kind {
        Kind::Star(_) => a,
        Kind::Empty | Kind::Nothing => empty(),
        _ => node(true, Kind::Star(a)),
    }
}

pub(super) fn rep(a: R, min: u32, max: Option<u32>) -> R {
    // With the empty string in `a`, a minimum count adds nothing.
    let min = if a.nullable { 0 } else { min };
    match max {
        Some(0) => empty(),
        Some(m) if m < min => nothing(),
        Some(1) if min == 1 => a,
        None if min == 0 => star(a),
        _ => node(min == 0, Kind::Rep(a, min, max)),
    }
}

fn deriv(r: &R, c: char) -> R {
    match &r.kind {
        Kind::Nothing | Kind::Empty => nothing(),
        Kind::Set(s) => {
            if s.contains(c) {
                empty()
            } else {
                nothing()
            }
        }
        Kind::Cat(a, b) => {
            let first = cat(deriv(a, c), b.clone());
            if a.nullable {
                alt(vec![first, deriv(b, c)])
            } else {
                first
            }
        }
        Kind::Alt(xs) => alt(xs.iter().map(|x| deriv(x, c)).collect()),
        Kind::And(xs) => and(xs.iter().map(|x| deriv(x, c)).collect()),
        Kind::Not(a) => not(deriv(a, c)),
        Kind::Star(a) => cat(deriv(a, c), r.clone()),
        Kind::Rep(a, min, max) => {
            let rest = rep(a.clone(), min.saturating_sub(1), max.map(|m| m - 1));
            cat(deriv(a, c), rest)
        }
    }
}

/// True when the whole of `text` is in the language of `root`.
pub(super) fn matches(root: &R, text: &str) -> bool {
    let mut r = root.clone();
    for c in text.chars() {
        r = deriv(&r, c);
        if matches!(r.kind, Kind::Nothing) {
            return false;
        }
    }
    r.nullable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(c: char) -> R {
        set(vec![(u32::from(c), u32::from(c))])
    }

    #[test]
    fn char_sets() {
        let s = CharSet::of(vec![(5, 9), (1, 3), (4, 4), (20, 30)]);
        assert_eq!(s.0, [(1, 9), (20, 30)]);
        assert_eq!(s.complement().0, [(0, 0), (10, 19), (31, MAX_CHAR)]);
        assert!(s.contains('\u{5}') && !s.contains('\u{a}'));
        assert_eq!(CharSet::of(vec![(0, MAX_CHAR)]).complement().0, []);
    }

    #[test]
    fn constructors_simplify() {
        assert_eq!(cat(empty(), ch('a')), ch('a'));
        assert_eq!(cat(nothing(), ch('a')), nothing());
        assert_eq!(
            alt(vec![ch('b'), ch('a'), ch('b'), nothing()]),
            alt(vec![ch('a'), ch('b')])
        );
        assert_eq!(alt(vec![ch('a'), anything()]), anything());
        assert_eq!(and(vec![ch('a'), anything()]), ch('a'));
        assert_eq!(not(not(ch('a'))), ch('a'));
        assert_eq!(star(star(ch('a'))), star(ch('a')));
        assert_eq!(rep(ch('a'), 0, Some(0)), empty());
        assert_eq!(rep(ch('a'), 3, Some(2)), nothing());
        assert!(rep(star(ch('a')), 5, Some(9)).nullable);
    }

    #[test]
    fn derivatives_match() {
        let abc = cat(ch('a'), cat(star(ch('b')), ch('c')));
        assert!(matches(&abc, "ac") && matches(&abc, "abbbc"));
        assert!(!matches(&abc, "ab") && !matches(&abc, "abcx"));
        let not_ab = not(cat(ch('a'), ch('b')));
        assert!(matches(&not_ab, "") && matches(&not_ab, "ba") && !matches(&not_ab, "ab"));
        let two_to_three = rep(ch('x'), 2, Some(3));
        assert!(!matches(&two_to_three, "x") && matches(&two_to_three, "xxx"));
        assert!(!matches(&two_to_three, "xxxx"));
    }
}
