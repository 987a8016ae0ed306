//! Elasticsearch's own EQL test suite, run against `monitor::eql`.
//!
//! The fixtures in `shared/eql-conformance` are Elasticsearch's query specs
//! and test data (see their README). This test loads the three current spec
//! files, indexes their data as Elasticsearch's `DataLoader` does (the
//! `@timestamp` it derives, the mapping's field aliases and `null_value`s),
//! runs every query the engine is meant to handle with the request settings
//! the Java harness sends, and compares the returned ids, in order, with
//! the expected ones.
//!
//! It fails on a regression (a query failing that is not listed in
//! `eql_known_failures.toml`) and on a stale entry (a listed query that now
//! passes, or a name no spec has), so the list stays honest.
//!
//! Not done yet: `sequence`, `sample` and `join` queries are out of scope
//! (the engine rejects them), and only the `head` result position of the
//! harness is run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use monitor::eql::{Query, RunOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

const KNOWN_FAILURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/eql_known_failures.toml");

/// A spec file, the data it runs on, and the field that identifies events.
struct Suite {
    spec: &'static str,
    data: &'static str,
    mapping: &'static str,
    id_field: &'static str,
}

const SUITES: [Suite; 3] = [
    Suite {
        spec: "test_queries.toml",
        data: "test_data.json",
        mapping: "data/endgame-140.mapping",
        id_field: "serial_event_id",
    },
    Suite {
        spec: "additional_test_queries.toml",
        data: "test_data.json",
        mapping: "data/endgame-140.mapping",
        id_field: "serial_event_id",
    },
    Suite {
        spec: "test_extra.toml",
        data: "data/extra.data",
        mapping: "data/extra.mapping",
        id_field: "sequence",
    },
];

#[derive(Deserialize)]
struct SpecFile {
    queries: Vec<Spec>,
}

#[derive(Deserialize)]
struct Spec {
    name: String,
    query: String,
    expected_event_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct KnownFailures {
    #[serde(default)]
    failure: Vec<KnownFailure>,
}

#[derive(Deserialize)]
struct KnownFailure {
    name: String,
    reason: String,
}

fn read(relative: &str) -> String {
    let path =
        monitor::reference_data::dir(monitor::reference_data::EQL_CONFORMANCE).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `timestamp` is a Windows FILETIME (100 ns ticks since 1601); the loader
/// adds `@timestamp` in epoch milliseconds.
fn filetime_to_epoch_millis(ticks: i64) -> i64 {
    ticks / 10_000 - 11_644_473_600_000
}

/// What the index mapping changes in a document: alias fields, and
/// `null_value` standing in for an explicit `null`.
#[derive(Default)]
struct Mapping {
    /// Alias path to the path it points at.
    aliases: Vec<(String, String)>,
    null_values: Vec<(String, Value)>,
}

fn load_mapping(relative: &str) -> Mapping {
    // The loader drops `#` lines and picks a random keyword-like type.
    let text: String = read(relative)
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("[runtime_random_keyword_type]", "keyword");
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative}: {e}"));
    let mut mapping = Mapping::default();
    walk_properties(&json, "", &mut mapping);
    mapping
}

fn walk_properties(node: &Value, prefix: &str, mapping: &mut Mapping) {
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, field) in properties {
        let path = format!("{prefix}{name}");
        if field.get("type").and_then(Value::as_str) == Some("alias") {
            let target = field["path"].as_str().unwrap_or_default().to_string();
            mapping.aliases.push((path.clone(), target));
        }
        if let Some(null_value) = field.get("null_value") {
            mapping.null_values.push((path.clone(), null_value.clone()));
        }
        walk_properties(field, &format!("{path}."), mapping);
    }
}

/// The documents of a data file as the index holds them.
fn load_events(suite: &Suite) -> Vec<Value> {
    let text = read(suite.data);
    let events: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mapping = load_mapping(suite.mapping);
    events
        .into_iter()
        .map(|mut event| {
            let doc = event.as_object_mut().expect("events are objects");
            if let (None, Some(ticks)) = (
                doc.get("@timestamp"),
                doc.get("timestamp").and_then(Value::as_i64),
            ) {
                let millis = filetime_to_epoch_millis(ticks);
                doc.insert("@timestamp".into(), millis.into());
            }
            for (field, value) in &mapping.null_values {
                if doc.get(field) == Some(&Value::Null) {
                    doc.insert(field.clone(), value.clone());
                }
            }
            for (alias, target) in &mapping.aliases {
                if let Some(value) = doc.get(target).cloned() {
                    set_path(doc, alias, value);
                }
            }
            event
        })
        .collect()
}

/// Sets `a.b.c` in nested objects, creating them.
fn set_path(doc: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            doc.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = doc
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                set_path(child, rest, value);
            }
        }
    }
}

/// `test_extra.toml` has bare `null`s in arrays, which the Java parser
/// accepts and TOML does not: quote them, outside strings and comments.
fn quote_bare_nulls(text: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut string: Option<&str> = None;
    while let Some(c) = rest.chars().next() {
        let delimiter = ["'''", "\"\"\"", "'", "\""]
            .into_iter()
            .find(|d| rest.starts_with(d));
        let bare_null =
            rest.starts_with("null") && !rest[4..].starts_with(word) && !out.ends_with(word);
        let step = match (string, delimiter) {
            (Some(open), _) if rest.starts_with(open) => {
                string = None;
                open.len()
            }
            // Only basic strings have escapes.
            (Some(open), _) if open.starts_with('"') && c == '\\' => {
                1 + rest[1..].chars().next().map_or(0, char::len_utf8)
            }
            (Some(_), _) => c.len_utf8(),
            (None, Some(d)) => {
                string = Some(d);
                d.len()
            }
            (None, None) if c == '#' => rest.find('\n').unwrap_or(rest.len()),
            (None, None) if bare_null => {
                out.push_str("\"null\"");
                rest = &rest[4..];
                continue;
            }
            (None, None) => c.len_utf8(),
        };
        out.push_str(&rest[..step]);
        rest = &rest[step..];
    }
    out
}

fn load_specs(suite: &Suite) -> Vec<Spec> {
    let text = quote_bare_nulls(&read(suite.spec));
    let file: SpecFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", suite.spec));
    file.queries
}

/// The first word of a query, after whitespace and comments.
fn first_word(query: &str) -> &str {
    let mut rest = query.trim_start();
    loop {
        if let Some(comment) = rest.strip_prefix("//") {
            rest = comment.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            return &rest[..end];
        }
    }
}

/// Sequences, samples and joins are beyond a single-event engine.
fn in_scope(query: &str) -> bool {
    !matches!(first_word(query), "sequence" | "sample" | "join")
}

/// The ids the engine returns, or why the query did not parse.
fn run(spec: &Spec, events: &[Value], suite: &Suite) -> Result<Vec<i64>, String> {
    let query = Query::parse_with_pipes(spec.query.trim()).map_err(|e| e.to_string())?;
    // The request the Java harness sends (head result position).
    let options = RunOptions {
        timestamp_field: "@timestamp".into(),
        tiebreaker_field: Some(suite.id_field.into()),
        size: Some(50),
    };
    Ok(query
        .run_with(events, &options)
        .iter()
        .map(|e| e[suite.id_field].as_i64().unwrap_or(-1))
        .collect())
}

#[test]
fn elasticsearch_eql_spec_queries() {
    let known: KnownFailures = toml::from_str(
        &fs::read_to_string(KNOWN_FAILURES).unwrap_or_else(|e| panic!("{KNOWN_FAILURES}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{KNOWN_FAILURES}: {e}"));
    let mut known: BTreeMap<String, String> = known
        .failure
        .into_iter()
        .map(|f| {
            assert!(!f.reason.trim().is_empty(), "{}: give a reason", f.name);
            (f.name, f.reason)
        })
        .collect();

    let (mut passed, mut out_of_scope) = (0, 0);
    let mut known_failing = Vec::new();
    let mut new_failing = Vec::new();
    let mut now_passing = Vec::new();
    let mut names = BTreeSet::new();
    for suite in &SUITES {
        let events = load_events(suite);
        for spec in load_specs(suite) {
            assert!(
                names.insert(spec.name.clone()),
                "{}: name repeated",
                spec.name
            );
            if !in_scope(&spec.query) {
                out_of_scope += 1;
                continue;
            }
            let got = run(&spec, &events, suite);
            let listed = known.remove(&spec.name);
            if got.as_ref() == Ok(&spec.expected_event_ids) {
                passed += 1;
                if listed.is_some() {
                    now_passing.push(spec.name);
                }
                continue;
            }
            let got = match got {
                Ok(ids) => format!("got {ids:?}"),
                Err(e) => format!("got a parse error ({e})"),
            };
            let line = format!(
                "{} ({}): {got}, expected {:?}",
                spec.name, suite.spec, spec.expected_event_ids
            );
            match listed {
                Some(reason) => known_failing.push(format!("{line}\n    known: {reason}")),
                None => new_failing.push(line),
            }
        }
    }

    for line in &known_failing {
        println!("known failure: {line}");
    }
    for line in &new_failing {
        println!("NEW FAILURE: {line}");
    }
    let summary = format!(
        "EQL conformance: {passed} of {} in-scope queries pass ({} known failures, {} new \
         failures); {out_of_scope} out of scope\n",
        passed + known_failing.len() + new_failing.len(),
        known_failing.len(),
        new_failing.len(),
    );
    // Straight to the process's stderr, past the test harness's capture, so
    // that every test run (CI's included) shows the figure.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), summary.as_bytes());
    assert!(
        new_failing.is_empty(),
        "queries fail that eql_known_failures.toml does not list: {new_failing:#?}"
    );
    assert!(
        now_passing.is_empty(),
        "these queries now pass: remove them from eql_known_failures.toml: {now_passing:?}"
    );
    let unknown: Vec<&String> = known.keys().collect();
    assert!(
        unknown.is_empty(),
        "eql_known_failures.toml lists queries no in-scope spec has: {unknown:?}"
    );
}

#[test]
fn bare_nulls_are_quoted_outside_strings_only() {
    let text = "a = [null, \"null\"]\nq = '''x == null'''\nnull_x = [\"\\\"\", null] # null\n";
    assert_eq!(
        quote_bare_nulls(text),
        "a = [\"null\", \"null\"]\nq = '''x == null'''\nnull_x = [\"\\\"\", \"null\"] # null\n"
    );
}

#[test]
fn scope_skips_comments() {
    assert_eq!(
        first_word("// sequence\n/* join */ process where true"),
        "process"
    );
    assert!(!in_scope(
        "\n  sequence by a [any where true] [any where true]"
    ));
    assert!(in_scope("any where true | head 1"));
    assert_eq!(filetime_to_epoch_millis(116_444_736_000_000_000), 0);
}
