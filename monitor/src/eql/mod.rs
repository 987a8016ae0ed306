//! Elastic's Event Query Language (EQL) for single-event queries, with
//! Elasticsearch's semantics.
//!
//! [`Query::parse`] reads `<category> where <condition>` (or `any where
//! <condition>`); [`Query::matches`] tells whether an ECS event, a JSON
//! object as Elastic's agent writes it, satisfies the query. For a recorded
//! stream of events, [`Query::parse_with_pipes`] also reads pipes (`| head
//! 5`, `| tail 5`, `| filter`, `| unique`, `| sort`), and [`Query::run`]
//! returns the events a search would, in Elasticsearch's order.
//!
//! The work is split by stage:
//!
//! - `lexer` turns the text into tokens (`token`) with line and column,
//!   reading string literals with `strings`;
//! - `parser` and `primary` build the syntax tree (`ast`) by Elasticsearch's
//!   grammar, compiling `like` patterns (`wildcard`) and `regex` patterns
//!   (`regex`, matched by `derivative`); `pipes` reads the pipes;
//! - `plan` decides, as Elasticsearch's query translator does, which parts
//!   run as field queries and which as scripts;
//! - `eval` runs the plan on an event, with `value` for comparisons and
//!   `functions` for EQL's functions (and `cidr` for `cidrMatch`);
//! - `stream` runs a query over many events: it orders them by time
//!   (`timestamp` reads the dates) and applies the pipes (`pipes`).
//!
//! ## Semantics
//!
//! A predicate on a field (`==`, `!=`, `<`.., `in`, `in~`, `:`, `like`,
//! `like~`, `regex`, `regex~`, and `cidrMatch`/`startsWith`/`stringContains`/
//! `endsWith` on a field) holds when any value of the field satisfies it, so
//! array fields match when one element does. `==`, `in`, `like` and `regex`
//! are case-sensitive; `:`, `in~`, `like~`, `regex~` and the `~` functions
//! are not. `and`, `or` and `not` combine field predicates as Elasticsearch's
//! `bool` query does: `not` (and so `!=` and `not in`) holds for an event
//! without the field. `field == null` holds when the field is missing or
//! null, `field != null` when it has a value. Computed conditions (a function
//! or arithmetic over a field) use three-valued logic: `null` is no match,
//! and `not null` is `null`. Literals are converted to the field's type as
//! Lucene converts them (`user.id == 0` matches `"0"`).
//!
//! Pipes belong to searches over many events, not to rules that match one
//! event at a time: [`Query::parse`], which the daemon uses, rejects them
//! with a parse error at the `|`.
//!
//! Not done yet:
//!
//! - `sequence`, `sample` and `join` queries are rejected with a parse
//!   error, and so are the `count` and `unique_count` pipes;
//! - there is no index mapping: a field is simply missing when the event
//!   lacks it (Elasticsearch rejects a non-optional field its mapping lacks,
//!   and treats an optional one it lacks as the literal `null`), and field
//!   types are taken from the JSON values;
//! - `regex` in a script (on a computed value) uses Lucene's syntax, where
//!   Elasticsearch would use Java's;
//! - nesting is limited to 64 levels of parentheses, calls, `not`s and
//!   operators (Elastic's rules use 6);
//! - `process.args[0]` is accepted, although Elasticsearch rejects array
//!   indexes.

mod ast;
mod cidr;
mod derivative;
mod eval;
mod functions;
mod lexer;
mod parser;
mod pipes;
mod plan;
mod primary;
mod regex;
mod stream;
mod strings;
mod timestamp;
mod token;
mod value;
mod wildcard;

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;

use ast::{FieldPath, Matcher, Seg};
use parser::Statement;
use pipes::Pipe;
use plan::{Cond, FieldPred};
use value::Literal;

pub use stream::RunOptions;

/// A parsed single-event EQL query, ready to match events.
#[derive(Debug, Clone)]
pub struct Query {
    source: String,
    category: Option<String>,
    /// The category check and the condition together.
    cond: Cond,
    /// Empty unless parsed by [`Query::parse_with_pipes`].
    pipes: Vec<Pipe>,
}

/// Why a query did not parse: where, what was there, and what should have been.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Line of the offending token, from 1.
    pub line: usize,
    /// Column of the offending token, from 1, in characters.
    pub column: usize,
    /// The offending token's text, or `end of input`.
    pub found: String,
    /// What the parser wanted there.
    pub expected: String,
}

impl Query {
    /// Parses a single-event query such as
    /// `process where process.name == "dmesg" and process.args in ("-c", "--clear")`.
    /// A query with pipes (`| head 5`) is an error here: see
    /// [`Query::parse_with_pipes`].
    pub fn parse(source: &str) -> Result<Query, ParseError> {
        Self::build(source, parser::parse(source)?)
    }

    /// Parses a query that may end with pipes, for [`Query::run`] over a
    /// stream of events: `process where true | tail 3`.
    pub fn parse_with_pipes(source: &str) -> Result<Query, ParseError> {
        Self::build(source, parser::parse_piped(source)?)
    }

    fn build(source: &str, statement: Statement) -> Result<Query, ParseError> {
        let condition = plan::plan(&statement.condition)?;
        let cond = match &statement.category {
            Some(category) => {
                let path = FieldPath {
                    segs: vec![Seg::Name("event".into()), Seg::Name("category".into())],
                    optional: false,
                };
                let check = Matcher::Equal(Literal::Str(category.clone()));
                let check = Cond::Field(path, FieldPred::Any(vec![check]));
                match condition {
                    Cond::And(mut rest) => {
                        rest.insert(0, check);
                        Cond::And(rest)
                    }
                    other => Cond::And(vec![check, other]),
                }
            }
            None => condition,
        };
        Ok(Query {
            source: source.to_string(),
            category: statement.category,
            cond,
            pipes: statement.pipes,
        })
    }

    /// Whether the query ends with pipes (only [`Query::parse_with_pipes`]
    /// accepts them).
    pub fn has_pipes(&self) -> bool {
        !self.pipes.is_empty()
    }

    /// Event category the query is restricted to; `None` for `any where`.
    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }

    /// True when the ECS event (a JSON object with nested objects, e.g.
    /// `{"process":{"name":"dmesg","args":["dmesg","-c"]}}`) matches: its
    /// `event.category` (a string or an array of strings) contains the query's
    /// category (`any` matches everything), and the condition holds. Pipes,
    /// which act on a whole stream, are not applied: use [`Query::run`].
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        self.cond.matches(event)
    }

    /// The exact values the top-level conjunction requires of `field`,
    /// case-sensitively: `["dmesg"]` for `process.name == "dmesg"`, both
    /// values for `process.name in ("a", "b")`. `None` when the query does not
    /// pin the field so. An event whose field has none of these values cannot
    /// match, which lets a rule index skip the query. `event.category` is
    /// pinned by the query's category.
    pub fn pinned_values(&self, field: &str) -> Option<Vec<String>> {
        self.cond.pinned_values(field)
    }

    /// The fields the query reads (its pipes included), sorted, each once.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.cond.fields(&mut out);
        self.pipes.iter().for_each(|p| p.fields(&mut out));
        out.sort();
        out.dedup();
        out
    }

    /// The query text as given to [`Query::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }
}
