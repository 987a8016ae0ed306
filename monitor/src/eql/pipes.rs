//! Pipes: what follows a query's condition after `|`, and what each does
//! to the ordered list of matching events.
//!
//! - `head N` keeps the first `N` events, `tail N` the last `N` (still in
//!   order). `N` is a constant integer expression, at least 0. These two
//!   are what Elasticsearch runs for event queries.
//! - `filter <condition>` keeps the events the condition holds for, with the
//!   same semantics as the query's own condition.
//! - `unique <field>[, <field>...]` keeps the first event of each distinct
//!   combination of the fields' values; a missing field is a value of its
//!   own, and an array field is keyed by its whole list of values.
//! - `sort <field> [asc|desc][, ...]` orders the events by the fields, stably
//!   (events with equal keys keep their order). A missing field sorts first
//!   in ascending order and last in descending order; an array field sorts by
//!   its smallest value ascending and its largest descending, as
//!   Elasticsearch sorts multi-valued fields. Values of different types sort
//!   booleans, then numbers, then strings.
//!
//! `filter`, `unique` and `sort` are Endgame EQL's pipes: Elasticsearch
//! parses them but refuses to run them. Like Endgame EQL, `unique` and `sort`
//! also take their fields separated by spaces (`unique a b`); `asc` and
//! `desc` after a field are read as its direction (quote a field named so:
//! `` `desc` ``).
//!
//! Not done yet: `unique` and `sort` take fields, not expressions (Endgame
//! EQL also takes `unique length(process_name)`); Endgame's sort puts a
//! missing value with the empty string or zero, where this puts it first;
//! `count` and `unique_count`, which return counts rather than events, are
//! rejected.

use std::collections::HashSet;

use serde_json::Value;

use super::ParseError;
use super::ast::{Expr, FieldPath, Pos};
use super::eval::resolve;
use super::parser::{Parser, error_at, error_at_pos, named};
use super::plan::{Cond, fold, plan};
use super::stream::compare_by_field;
use super::token::{Sym, Tok};
use super::value::{Literal, Val, to_text};

/// One pipe of a query.
#[derive(Debug, Clone)]
pub(crate) enum Pipe {
    Head(usize),
    Tail(usize),
    Filter(Cond),
    Unique(Vec<FieldPath>),
    /// Fields, each with whether it sorts descending.
    Sort(Vec<(FieldPath, bool)>),
}

const PIPES: &str = "a pipe (head, tail, filter, unique or sort)";

impl Parser<'_> {
    /// One pipe, after its `|`.
    pub(super) fn pipe(&mut self) -> Result<Pipe, ParseError> {
        let t = self.next()?;
        let Tok::Ident(name) = &t.tok else {
            return Err(error_at(&t, PIPES));
        };
        match name.as_str() {
            "head" => Ok(Pipe::Head(self.count("head")?)),
            "tail" => Ok(Pipe::Tail(self.count("tail")?)),
            "filter" => Ok(Pipe::Filter(plan(&self.expression()?)?)),
            "unique" => {
                let fields = self.pipe_fields("unique", false)?;
                Ok(Pipe::Unique(fields.into_iter().map(|(f, _)| f).collect()))
            }
            "sort" => Ok(Pipe::Sort(self.pipe_fields("sort", true)?)),
            "count" | "unique_count" => {
                let expected = "a pipe that returns events (head, tail, filter, unique or sort)";
                Err(error_at(&t, expected))
            }
            _ => Err(error_at(&t, PIPES)),
        }
    }

    fn at_pipe_end(&mut self) -> Result<bool, ParseError> {
        Ok(matches!(self.peek(0)?, Tok::Sym(Sym::Pipe) | Tok::Eof))
    }

    /// The event count of `head` or `tail`.
    fn count(&mut self, pipe: &str) -> Result<usize, ParseError> {
        if self.at_pipe_end()? {
            return Err(self.fail(&format!("the number of events {pipe} keeps")));
        }
        let pos = self.pos()?;
        let e = self.expression()?;
        let value = e.is_constant().then(|| fold(&e));
        if let Some(Literal::Int(n)) = value {
            if let Ok(n) = usize::try_from(n) {
                return Ok(n);
            }
        }
        // Name the value the argument has, or the field it reads.
        let found = match &value {
            Some(Literal::Str(s)) => Pos {
                text: format!("{s:?}"),
                ..pos
            },
            Some(lit) => Pos {
                text: to_text(&Val::from_lit(lit)).unwrap_or_else(|| "null".into()),
                ..pos
            },
            None => named(pos, &e),
        };
        let expected =
            format!("a constant integer of at least 0 (the number of events {pipe} keeps)");
        Err(error_at_pos(&found, &expected))
    }

    /// The fields of `unique` or `sort`, separated by commas or spaces, each
    /// with `desc` (true) or `asc` after it where `directions` allows.
    fn pipe_fields(
        &mut self,
        pipe: &str,
        directions: bool,
    ) -> Result<Vec<(FieldPath, bool)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let expected = if out.is_empty() {
                format!("a field to {pipe} by")
            } else {
                "a field, | or end of input".to_string()
            };
            let pos = self.pos()?;
            if !matches!(
                self.peek(0)?,
                Tok::Ident(_) | Tok::Quoted(_) | Tok::Sym(Sym::Question)
            ) {
                return Err(self.fail(&expected));
            }
            let Expr::Field { path, .. } = self.primary()? else {
                let expected = format!("a field ({pipe} takes fields, not expressions)");
                return Err(error_at_pos(&pos, &expected));
            };
            let mut descending = false;
            if let (true, Tok::Ident(word)) = (directions, self.peek(0)?) {
                if word == "asc" || word == "desc" {
                    descending = word == "desc";
                    self.next()?;
                }
            }
            out.push((path, descending));
            let comma = self.eat(&Tok::Sym(Sym::Comma))?;
            if !comma && self.at_pipe_end()? {
                return Ok(out);
            }
        }
    }
}

impl Pipe {
    /// Applies the pipe to the events, in order.
    pub(crate) fn apply<'a>(&self, mut events: Vec<&'a Value>) -> Vec<&'a Value> {
        match self {
            Pipe::Head(n) => events.truncate(*n),
            Pipe::Tail(n) => {
                let skip = events.len().saturating_sub(*n);
                events.drain(..skip);
            }
            Pipe::Filter(cond) => events.retain(|e| cond.matches(e)),
            Pipe::Unique(fields) => {
                let mut seen = HashSet::new();
                events.retain(|e| seen.insert(unique_key(e, fields)));
            }
            Pipe::Sort(keys) => events.sort_by(|a, b| {
                keys.iter()
                    .map(|(path, descending)| compare_by_field(a, b, path, *descending))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            }),
        }
        events
    }

    /// The fields the pipe reads.
    pub(crate) fn fields(&self, out: &mut Vec<String>) {
        match self {
            Pipe::Head(_) | Pipe::Tail(_) => {}
            Pipe::Filter(cond) => cond.fields(out),
            Pipe::Unique(fields) => out.extend(fields.iter().map(FieldPath::dotted)),
            Pipe::Sort(keys) => out.extend(keys.iter().map(|(f, _)| f.dotted())),
        }
    }
}

/// The values of the fields, as text that tells distinct value lists apart.
fn unique_key(event: &Value, fields: &[FieldPath]) -> String {
    let lists: Vec<Vec<&Value>> = fields
        .iter()
        .map(|f| {
            let mut values = Vec::new();
            resolve(event, &f.segs, &mut values);
            values
        })
        .collect();
    serde_json::to_string(&lists).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::parser::{Statement, parse_piped};
    use super::*;
    use serde_json::json;

    fn pipes(src: &str) -> Vec<Pipe> {
        match parse_piped(&format!("any where true {src}")) {
            Ok(Statement { pipes, .. }) => pipes,
            Err(e) => panic!("{src}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        parse_piped(src).unwrap_err().to_string()
    }

    #[test]
    fn pipe_forms() {
        let p =
            pipes("| head 5 | tail 2 * 3 | filter a == 1 | unique a, `b c` ?d | sort x desc, y");
        assert!(matches!(p[0], Pipe::Head(5)));
        assert!(matches!(p[1], Pipe::Tail(6)));
        assert!(matches!(p[2], Pipe::Filter(Cond::Field(..))));
        let Pipe::Unique(fields) = &p[3] else {
            panic!("{:?}", p[3])
        };
        let names: Vec<String> = fields.iter().map(FieldPath::dotted).collect();
        assert_eq!(names, ["a", "b c", "d"]);
        let Pipe::Sort(keys) = &p[4] else {
            panic!("{:?}", p[4])
        };
        let keys: Vec<(String, bool)> = keys.iter().map(|(f, d)| (f.dotted(), *d)).collect();
        assert_eq!(keys, [("x".into(), true), ("y".into(), false)]);
        assert!(matches!(pipes("| sort a asc b")[0], Pipe::Sort(ref k) if k.len() == 2));
        assert!(matches!(pipes("| head 0")[0], Pipe::Head(0)));
        let mut fields = Vec::new();
        for pipe in pipes("| filter length(p) > 1 | unique q | sort r | head 1") {
            pipe.fields(&mut fields);
        }
        assert_eq!(fields, ["p", "q", "r"]);
    }

    #[test]
    fn pipe_errors() {
        let cases = [
            (
                "any where true | head",
                "line 1, column 22: expected the number of events head keeps, found end of input",
            ),
            (
                "any where true | tail -1",
                "line 1, column 23: expected a constant integer of at least 0 (the number of \
                 events tail keeps), found -1",
            ),
            (
                "any where true | head \"5\"",
                "line 1, column 23: expected a constant integer of at least 0 (the number of \
                 events head keeps), found \"5\"",
            ),
            (
                "any where true\n| head pid",
                "line 2, column 8: expected a constant integer of at least 0 (the number of \
                 events head keeps), found pid",
            ),
            (
                "any where true | head 1, 2",
                "line 1, column 24: expected | or end of input, found ,",
            ),
            (
                "any where true | count",
                "line 1, column 18: expected a pipe that returns events (head, tail, filter, \
                 unique or sort), found count",
            ),
            (
                "any where true | heads 1",
                "line 1, column 18: expected a pipe (head, tail, filter, unique or sort), found \
                 heads",
            ),
            (
                "any where true |",
                "line 1, column 17: expected a pipe (head, tail, filter, unique or sort), found \
                 end of input",
            ),
            (
                "any where true | unique",
                "line 1, column 24: expected a field to unique by, found end of input",
            ),
            (
                "any where true | unique length(a)",
                "line 1, column 25: expected a field (unique takes fields, not expressions), \
                 found length",
            ),
            (
                "any where true | sort a == 1",
                "line 1, column 25: expected a field, | or end of input, found ==",
            ),
            (
                "any where true | filter a ==",
                "line 1, column 29: expected a field, a literal, a function call or (, found end \
                 of input",
            ),
            (
                "any where true | filter a == b",
                "line 1, column 30: expected a literal value (comparing a field with a field is \
                 not supported), found b",
            ),
        ];
        for (src, message) in cases {
            assert_eq!(err(src), message, "{src}");
        }
    }

    /// The `id`s of `events` after the pipes of `src`, in order.
    fn ids_after(events: &[Value], src: &str) -> Vec<i64> {
        let mut out: Vec<&Value> = events.iter().collect();
        for pipe in pipes(src) {
            out = pipe.apply(out);
        }
        out.iter().map(|e| e["id"].as_i64().unwrap()).collect()
    }

    #[test]
    fn pipes_apply_in_order() {
        let events: Vec<Value> = (1..=6)
            .map(|i| json!({"id": i, "k": i % 3, "name": if i % 2 == 0 { "b" } else { "a" }}))
            .collect();
        let run = |src: &str| ids_after(&events, src);
        assert_eq!(run("| head 2"), [1, 2]);
        assert_eq!(run("| tail 2"), [5, 6]);
        assert_eq!(run("| tail 10"), [1, 2, 3, 4, 5, 6]);
        assert_eq!(run("| head 0"), Vec::<i64>::new());
        assert_eq!(run("| head 4 | tail 2"), [3, 4]);
        assert_eq!(run("| filter id > 2 | filter k != 0"), [4, 5]);
        assert_eq!(run("| unique name"), [1, 2]);
        assert_eq!(run("| unique k, name"), [1, 2, 3, 4, 5, 6]);
        assert_eq!(run("| unique missing"), [1]);
        assert_eq!(run("| sort k"), [3, 6, 1, 4, 2, 5]);
        assert_eq!(run("| sort k desc, id desc"), [5, 2, 4, 1, 6, 3]);
        assert_eq!(run("| sort name | head 3"), [1, 3, 5]);
    }

    #[test]
    fn unique_and_sort_on_missing_and_array_fields() {
        let events = [
            json!({"id": 1, "tags": ["b", "z"]}),
            json!({"id": 2}),
            json!({"id": 3, "tags": ["z", "b"]}),
            json!({"id": 4, "tags": "a"}),
            json!({"id": 5, "tags": null}),
        ];
        let run = |src: &str| ids_after(&events, src);
        assert_eq!(run("| unique tags"), [1, 2, 3, 4]);
        assert_eq!(run("| sort tags"), [2, 5, 4, 1, 3]);
        assert_eq!(run("| sort tags desc"), [1, 3, 4, 2, 5]);
    }
}
