//! Running a query over a recorded stream of events, as an Elasticsearch
//! EQL search runs over an index: keep the events the condition matches,
//! order them by time, then apply the pipes in turn.
//!
//! The order is Elasticsearch's: ascending by the timestamp field (read as
//! a date, see `timestamp`), then by the tiebreaker field if one is named,
//! then by position in the stream; an event without a timestamp (or
//! tiebreaker) comes first, as with Elasticsearch's `NULLS FIRST`. A request
//! `size` is applied as Elasticsearch applies it: before the first `head` or
//! `tail` pipe (as a `head` or `tail` of that many events), or at the end
//! when there is none.
//!
//! Not done yet: only the `head` result position is modelled; a multi-valued
//! timestamp orders by its earliest value.

use std::cmp::Ordering;

use serde_json::Value;

use super::Query;
use super::ast::{FieldPath, Seg};
use super::eval::resolve;
use super::pipes::Pipe;
use super::timestamp::epoch_nanos;

/// How [`Query::run_with`] orders and limits a stream, after the settings
/// of an Elasticsearch EQL search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The field with each event's time (`timestamp_field`).
    pub timestamp_field: String,
    /// A field that orders events with equal times (`tiebreaker_field`);
    /// without one, such events keep their order in the stream.
    pub tiebreaker_field: Option<String>,
    /// Most events returned (`size`); `None` for no limit. Elasticsearch's
    /// default is 10.
    pub size: Option<usize>,
}

impl Default for RunOptions {
    /// `@timestamp`, no tiebreaker, no limit.
    fn default() -> Self {
        RunOptions {
            timestamp_field: "@timestamp".into(),
            tiebreaker_field: None,
            size: None,
        }
    }
}

impl Query {
    /// The events of `events` the query returns, in order: those that match,
    /// ordered by `@timestamp` (then by their order in `events`), with the
    /// pipes applied. See [`Query::run_with`].
    pub fn run<'a>(&self, events: &'a [Value]) -> Vec<&'a Value> {
        self.run_with(events, &RunOptions::default())
    }

    /// The events of `events` the query returns under `options`: those that
    /// match, ordered by time then tiebreaker (then by their order in
    /// `events`), with the size limit and the pipes applied in order.
    pub fn run_with<'a>(&self, events: &'a [Value], options: &RunOptions) -> Vec<&'a Value> {
        let time = path(&options.timestamp_field);
        let tiebreaker = options.tiebreaker_field.as_deref().map(path);
        let mut hits: Vec<(Option<i128>, &Value)> = events
            .iter()
            .filter(|e| self.cond.matches(e))
            .map(|e| (earliest(e, &time), e))
            .collect();
        // A stable sort: equal keys keep the stream's order.
        hits.sort_by(|(ta, a), (tb, b)| {
            ta.cmp(tb).then_with(|| match &tiebreaker {
                Some(field) => compare_by_field(a, b, field, false),
                None => Ordering::Equal,
            })
        });
        let mut out: Vec<&Value> = hits.into_iter().map(|(_, e)| e).collect();
        let mut size = options.size;
        for pipe in &self.pipes {
            if let Some(n) = size {
                out = match pipe {
                    Pipe::Head(_) => Pipe::Head(n).apply(out),
                    Pipe::Tail(_) => Pipe::Tail(n).apply(out),
                    _ => out,
                };
                if matches!(pipe, Pipe::Head(_) | Pipe::Tail(_)) {
                    size = None;
                }
            }
            out = pipe.apply(out);
        }
        if let Some(n) = size {
            out.truncate(n);
        }
        out
    }
}

/// A field path from a dotted name such as `event.created`.
fn path(name: &str) -> FieldPath {
    FieldPath {
        segs: name.split('.').map(|s| Seg::Name(s.into())).collect(),
        optional: false,
    }
}

/// The earliest time among the values of the timestamp field.
fn earliest(event: &Value, time: &FieldPath) -> Option<i128> {
    let mut values = Vec::new();
    resolve(event, &time.segs, &mut values);
    values.into_iter().filter_map(epoch_nanos).min()
}

/// Orders two events by one field: by its smallest value ascending, or by
/// its largest descending; an event without the field sorts first
/// ascending, last descending.
pub(crate) fn compare_by_field(
    a: &Value,
    b: &Value,
    field: &FieldPath,
    descending: bool,
) -> Ordering {
    let order = match (extreme(a, field, descending), extreme(b, field, descending)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_values(x, y),
    };
    if descending { order.reverse() } else { order }
}

/// The smallest value of the field, or the largest with `largest`.
fn extreme<'a>(event: &'a Value, field: &FieldPath, largest: bool) -> Option<&'a Value> {
    let mut values = Vec::new();
    resolve(event, &field.segs, &mut values);
    let values = values.into_iter();
    if largest {
        values.max_by(|x, y| compare_values(x, y))
    } else {
        values.min_by(|x, y| compare_values(x, y))
    }
}

/// A total order of JSON leaves: booleans, then numbers (numerically), then
/// strings (by code point).
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let float = |n: &serde_json::Number| n.as_f64().unwrap_or(f64::NAN);
                float(x).total_cmp(&float(y))
            }
        },
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Query;
    use super::*;
    use serde_json::json;

    fn ids(events: Vec<&Value>) -> Vec<i64> {
        events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
    }

    fn q(src: &str) -> Query {
        Query::parse_with_pipes(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn events_are_ordered_by_time_then_stream_position() {
        let events = [
            json!({"id": 1, "@timestamp": "2024-05-01T12:00:02Z", "event.category": "process"}),
            json!({"id": 2, "@timestamp": "2024-05-01T12:00:01.5Z", "event.category": "file"}),
            json!({"id": 3, "@timestamp": "2024-05-01T14:00:01+02:00"}),
            json!({"id": 4, "@timestamp": 1_714_564_801_000_i64}),
            json!({"id": 5}),
        ];
        assert_eq!(ids(q("any where true").run(&events)), [5, 3, 4, 2, 1]);
        assert_eq!(ids(q("process where true").run(&events)), [1]);
        assert_eq!(ids(q("any where true | tail 2").run(&events)), [2, 1]);
        assert_eq!(ids(q("any where id > 2 | head 1").run(&events)), [5]);
        assert_eq!(
            ids(q("any where true | sort id").run(&events)),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn tiebreaker_and_size_follow_the_request() {
        let events = [
            json!({"id": 3, "t": "1", "seq": 30}),
            json!({"id": 1, "t": "1", "seq": 10}),
            json!({"id": 2, "t": "1", "seq": 20}),
            json!({"id": 0, "t": "0", "seq": 99}),
        ];
        let options = RunOptions {
            timestamp_field: "t".into(),
            tiebreaker_field: Some("seq".into()),
            size: Some(2),
        };
        let run = |src: &str| ids(q(src).run_with(&events, &options));
        assert_eq!(run("any where true"), [0, 1]);
        assert_eq!(
            run("any where true | tail 3"),
            [2, 3],
            "tail of size, then tail 3"
        );
        assert_eq!(run("any where true | head 3"), [0, 1]);
        assert_eq!(run("any where true | filter id > 0 | head 5"), [1, 2]);
        assert_eq!(run("any where true | sort id desc"), [3, 2]);
    }

    #[test]
    fn only_parse_with_pipes_accepts_pipes() {
        let src = "process where pid > 1 | filter user.id == 0 | sort host.name | head 5";
        let err = Query::parse(src).unwrap_err();
        assert_eq!((err.line, err.column, err.found.as_str()), (1, 23, "|"));
        let query = q(src);
        assert!(query.has_pipes());
        assert!(!q("process where true").has_pipes());
        assert_eq!(
            query.fields(),
            ["event.category", "host.name", "pid", "user.id"]
        );
        assert_eq!(
            query.pinned_values("event.category"),
            Some(vec!["process".into()])
        );
        // `matches` tests the condition alone; `run` applies the pipes too.
        let event = json!({"event": {"category": "process"}, "pid": 7, "user": {"id": 1}});
        assert!(query.matches(&event));
        assert!(query.run(std::slice::from_ref(&event)).is_empty());
    }

    #[test]
    fn values_order_within_and_across_types() {
        let order = |a: Value, b: Value| compare_values(&a, &b);
        assert_eq!(order(json!(2), json!(10)), Ordering::Less);
        assert_eq!(order(json!(2.5), json!(2)), Ordering::Greater);
        assert_eq!(order(json!("10"), json!("9")), Ordering::Less);
        assert_eq!(order(json!(false), json!(0)), Ordering::Less);
        assert_eq!(order(json!(99), json!("")), Ordering::Less);
        assert_eq!(order(json!(u64::MAX), json!(1)), Ordering::Greater);
    }
}
