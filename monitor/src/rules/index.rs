//! An index of rules by event category and pinned `process.name`, so that an
//! event is only tested against the rules that could match it.
//!
//! Every rule lands in one bucket: the bucket of its query's category
//! (`process where ...`), or the `any` bucket. Inside a bucket, a rule whose
//! query pins `process.name` (see [`Query::pinned_values`]) is listed under
//! each pinned value; the others are always tested. For an event, the index
//! reads `event.category` and `process.name` as the query engine does
//! (nested objects, dotted keys, arrays flattened, nulls dropped) and
//! returns the indexes of the candidate rules, in rule order.
//!
//! The index only ever leaves out rules that cannot match, so filtering its
//! candidates gives exactly what testing every rule gives. Where that is not
//! certain it falls back to testing more:
//!
//! - a `process.name` with several values: pinned values are intersected
//!   across the query's conjuncts, which is only sound for one value, so
//!   the whole bucket is tested;
//! - a `process.name` or `event.category` value that is not a string
//!   (literals convert to a number's type, so `5` may equal `"5"`): the
//!   whole bucket, or every bucket, is tested.
//!
//! Not done yet: a query that names its process in every branch of an `or`
//! (`(process.name == "a" and ..) or (process.name == "b" and ..)`) counts as
//! unpinned, since [`Query::pinned_values`] does not look inside such
//! branches; 68 of Elastic's 161 Linux process rules are unpinned, so an
//! exec event is still tested against about 70 of the 222 rules. Other
//! pinned fields (`event.action`, `process.args`) are not indexed.
//! TODO(#9): index those branches, to bring the per-event cost down.
//!
//! [`Query::pinned_values`]: crate::eql::Query::pinned_values

use std::collections::HashMap;

use serde_json::Value;

use super::model::Rule;

/// The field whose pinned values key the index, as a path.
const NAME_PATH: [&str; 2] = ["process", "name"];
/// The same field, as queries name it.
const NAME_FIELD: &str = "process.name";
/// The field a query's category is checked against.
const CATEGORY_PATH: [&str; 2] = ["event", "category"];

/// The rules of one category (or of `any where` queries).
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Rules by pinned `process.name` value, each list in rule order.
    by_name: HashMap<String, Vec<usize>>,
    /// Rules that do not pin `process.name`, in rule order.
    unpinned: Vec<usize>,
    /// Every rule of the bucket, in rule order.
    all: Vec<usize>,
}

impl Bucket {
    fn add(&mut self, index: usize, rule: &Rule) {
        self.all.push(index);
        match rule.query.pinned_values(NAME_FIELD) {
            // Values are sorted and deduplicated; an empty list (conjuncts
            // that disagree) means no event with one name can match.
            Some(names) => {
                for name in names {
                    self.by_name.entry(name).or_default().push(index);
                }
            }
            None => self.unpinned.push(index),
        }
    }

    /// Adds the candidates for an event with these `process.name` values.
    fn candidates(&self, names: &Values, out: &mut Vec<usize>) {
        match names {
            Values::Strings(names) if names.len() <= 1 => {
                out.extend_from_slice(&self.unpinned);
                if let Some(list) = names.first().and_then(|name| self.by_name.get(*name)) {
                    out.extend_from_slice(list);
                }
            }
            _ => out.extend_from_slice(&self.all),
        }
    }
}

/// Rule indexes by category and pinned `process.name`.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleIndex {
    /// Rules with a category, by category.
    by_category: HashMap<String, Bucket>,
    /// `any where` rules.
    any: Bucket,
}

impl RuleIndex {
    /// Adds `rule`, which is number `index` in the set; indexes must grow.
    pub(super) fn add(&mut self, index: usize, rule: &Rule) {
        let bucket = match rule.query.category() {
            Some(category) => self.by_category.entry(category.to_string()).or_default(),
            None => &mut self.any,
        };
        bucket.add(index, rule);
    }

    /// The indexes of the rules that could match `event`, ascending.
    pub(super) fn candidates(&self, event: &Value) -> Vec<usize> {
        let names = Values::at(event, &NAME_PATH);
        let mut out = Vec::new();
        self.any.candidates(&names, &mut out);
        match Values::at(event, &CATEGORY_PATH) {
            Values::Strings(categories) => {
                for category in categories {
                    if let Some(bucket) = self.by_category.get(category) {
                        bucket.candidates(&names, &mut out);
                    }
                }
            }
            Values::Other => {
                for bucket in self.by_category.values() {
                    bucket.candidates(&names, &mut out);
                }
            }
        }
        // The lists are each in rule order and pairwise disjoint (a rule is
        // in one bucket, under each of its distinct names or among the
        // unpinned), so sorting their concatenation restores rule order.
        out.sort_unstable();
        out
    }
}

/// The values of a field in an event.
enum Values<'a> {
    /// All values are strings (possibly none at all).
    Strings(Vec<&'a str>),
    /// Some value is not a string (a number, a boolean, an object).
    Other,
}

impl<'a> Values<'a> {
    /// The values at `path` in `event`, deduplicated, read as the query
    /// engine reads them.
    fn at(event: &'a Value, path: &[&str]) -> Values<'a> {
        let mut leaves = Vec::new();
        resolve(event, path, &mut leaves);
        let mut strings = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            match leaf {
                Value::String(s) => strings.push(s.as_str()),
                _ => return Values::Other,
            }
        }
        Values::Strings(dedup(strings))
    }
}

fn dedup(mut values: Vec<&str>) -> Vec<&str> {
    if values.len() > 1 {
        values.sort_unstable();
        values.dedup();
    }
    values
}

/// The non-null leaves at `path` under `v`, arrays flattened at every level
/// and dotted keys (`{"process.name": ..}`) followed, as the EQL evaluator
/// resolves a field of plain names.
fn resolve<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        push_leaves(v, out);
        return;
    };
    match v {
        Value::Array(items) => items.iter().for_each(|x| resolve(x, path, out)),
        Value::Object(map) => {
            if let Some(x) = map.get(*first) {
                resolve(x, rest, out);
            }
            for (key, x) in map.iter().filter(|(k, _)| k.contains('.')) {
                if let Some(n) = dotted_prefix(key, path) {
                    resolve(x, &path[n..], out);
                }
            }
        }
        _ => {}
    }
}

fn push_leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| push_leaves(x, out)),
        Value::Null => {}
        leaf => out.push(leaf),
    }
}

/// How many steps of `path` a dotted key such as `"process.name"` covers.
fn dotted_prefix(key: &str, path: &[&str]) -> Option<usize> {
    let mut n = 0;
    for part in key.split('.') {
        match path.get(n) {
            Some(name) if *name == part => n += 1,
            _ => return None,
        }
    }
    Some(n)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
