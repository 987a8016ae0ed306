//! Whole-engine tests of Elasticsearch's semantics, query text to match:
//! array fields, negation, nulls, case sensitivity, wildcards, escapes,
//! numbers, functions, field paths, categories, error positions, and the
//! nesting limit that keeps any query from exhausting the stack.
//!
//! Not done yet: no comparison against a live Elasticsearch; the expected
//! results come from Elasticsearch's documentation and query translator.

use serde_json::{Value, json};

use super::Query;
use super::parser::MAX_DEPTH;

pub(super) fn q(src: &str) -> Query {
    match Query::parse(src) {
        Ok(query) => query,
        Err(e) => panic!("{src}: {e}"),
    }
}

/// Whether `any where <cond>` matches `event`.
pub(super) fn m(cond: &str, event: &Value) -> bool {
    q(&format!("any where {cond}")).matches(event)
}

#[test]
fn arrays_match_when_any_element_does() {
    let e = json!({"process": {"args": ["ls", "-la", "/tmp"]}});
    assert!(m(r#"process.args == "-la""#, &e));
    assert!(m(r#"process.args : "-LA""#, &e));
    assert!(m(r#"process.args like "/t*""#, &e));
    assert!(m(r#"process.args in ("x", "/tmp")"#, &e));
    assert!(m(r#"process.args regex "-[a-z]+""#, &e));
    assert!(!m(r#"process.args == "ls -la""#, &e));
    // != and not in hold only when no element matches.
    assert!(!m(r#"process.args != "-la""#, &e));
    assert!(m(r#"process.args != "-x""#, &e));
    assert!(!m(r#"process.args not in ("-la", "z")"#, &e));
    assert!(!m(r#"not process.args == "-la""#, &e));
    assert!(m(r#"not process.args == "-x""#, &e));
}

#[test]
fn nulls_and_missing_fields() {
    let e = json!({"process": {"name": "bash", "title": null, "args": []}});
    assert!(m("process.missing == null", &e));
    assert!(m("process.title == null", &e));
    assert!(m("process.args == null", &e));
    assert!(m("process.name != null", &e));
    assert!(!m("process.missing != null", &e));
    assert!(!m("process.name == null", &e));
    assert!(m("?process.missing == null", &e));
    // A field predicate on a missing field is false; negated, it is true,
    // as with Elasticsearch's bool must_not.
    assert!(!m(r#"process.missing == "x""#, &e));
    assert!(!m(r#"process.missing : "x*""#, &e));
    assert!(!m("process.missing > 1", &e));
    assert!(m(r#"process.missing != "x""#, &e));
    assert!(m(r#"not process.missing in ("x", "y")"#, &e));
    assert!(m(r#"process.missing not in ("x", "y")"#, &e));
    // A computed condition over a missing field is null, and so is its negation.
    assert!(!m("length(process.missing) > 0", &e));
    assert!(!m("not length(process.missing) > 0", &e));
    assert!(!m("not (process.missing + 1 == 2)", &e));
    assert!(m("length(process.missing) == null", &e));
    // `x == null` is a null check wherever the null is a constant, so
    // `null == 1` is false rather than null (Elasticsearch rewrites it so).
    assert!(!m("null == 1", &e));
    assert!(m("not null == 1", &e));
    assert!(m("null == null", &e));
    assert!(m("add(process.missing, 1) == null", &e));
    assert!(m("not add(process.name, 1) != null", &e));
    // Orders against null are null, and so are their negations.
    assert!(!m("process.name < null", &e));
    assert!(!m("not process.name < null", &e));
    // Three-valued and/or inside a script.
    assert!(m(
        r#"not (length(process.missing) > 1 and process.name == "x") or true"#,
        &e
    ));
}

#[test]
fn case_sensitivity() {
    let e = json!({"process": {"name": "Bash", "executable": "/usr/Bin/Bash"}});
    assert!(!m(r#"process.name == "bash""#, &e));
    assert!(m(r#"process.name : "bash""#, &e));
    assert!(!m(r#"process.name in ("bash")"#, &e));
    assert!(m(r#"process.name in~ ("bash")"#, &e));
    assert!(m(r#"process.name not in~ ("zsh")"#, &e));
    assert!(!m(r#"process.name like "ba*""#, &e));
    assert!(m(r#"process.name like~ "ba*""#, &e));
    assert!(!m(r#"process.name regex "ba.*""#, &e));
    assert!(m(r#"process.name regex~ "ba.*""#, &e));
    assert!(!m(r#"startsWith(process.executable, "/usr/bin")"#, &e));
    assert!(m(r#"startsWith~(process.executable, "/usr/bin")"#, &e));
    assert!(m(r#"stringContains~(process.executable, "BIN")"#, &e));
    assert!(m(r#"endsWith~(process.executable, "bash")"#, &e));
    assert!(!m(r#"endsWith(process.executable, "bash")"#, &e));
    assert!(
        m(r#"process.name > "A" and process.name < "a""#, &e),
        "ordinal string order"
    );
}

#[test]
fn wildcards_and_escapes() {
    let e = json!({"file": {"path": "C:\\Windows\\cmd.exe", "name": "a\"b*c"}});
    assert!(m(r#"file.path like "C:\\Windows\\*.exe""#, &e));
    assert!(m(r#"file.path like """C:\Windows\*.exe""""#, &e));
    assert!(m(r#"file.path : "c:\\windows\\CMD.???""#, &e));
    assert!(!m(r#"file.path : "c:\\windows\\CMD.??""#, &e));
    assert!(m(r#"file.name == "a\"b*c""#, &e));
    assert!(m(r#"file.name like "a\"b*""#, &e));
    assert!(!m(r#"file.name == "a\"b?c""#, &e), "== has no wildcards");
    assert!(m(r#"file.name : ("x", "A\"B*")"#, &e));
    assert!(m(r#"file.name like "*""#, &e));
    assert!(m(r#"file.name like~ ("nope", "*B*C")"#, &e));
    assert!(m(r#"file.name == "\u{61}\"b*c""#, &e));
    let t = json!({"x": "tab\there\nnewline"});
    assert!(m(r#"x == "tab\there\nnewline""#, &t));
}

#[test]
fn numbers_and_types() {
    let e = json!({"process": {"pid": 42, "args_count": 3, "ratio": 0.5}, "user": {"id": "0"}});
    assert!(m("process.pid == 42", &e));
    assert!(m("process.pid == 42.0", &e));
    assert!(m("process.args_count <= 3 and process.args_count > 2", &e));
    assert!(m("process.ratio < 1", &e));
    assert!(
        m(r#"process.pid == "42""#, &e),
        "literals convert to a numeric field's type"
    );
    assert!(m("user.id == 0", &e), "and to a keyword field's type");
    assert!(!m(r#"process.pid == "forty""#, &e));
    assert!(m("process.pid in (1, 42)", &e));
    assert!(m("process.pid + 1 == 43", &e));
    assert!(m("process.pid / 5 == 8", &e), "integer division truncates");
    assert!(m("process.pid / 5.0 == 8.4", &e));
    assert!(m("-process.pid < 0", &e));
    assert!(m("process.pid % 5 == 2", &e));
    assert!(!m("process.pid / 0 == 1", &e));
    assert!(m("-1 < process.pid", &e));
    assert!(m("where_true == null or true", &e));
}

#[test]
fn functions_in_queries() {
    let e = json!({
        "process": {"command_line": "curl http://10.1.2.3/x", "name": "curl",
                    "executable": "/usr/bin/curl", "args": ["curl", "http://10.1.2.3/x"]},
        "source": {"ip": "10.1.2.3"}
    });
    assert!(m("length(process.command_line) > 10", &e));
    assert!(m(r#"cidrMatch(source.ip, "10.0.0.0/8")"#, &e));
    assert!(!m(r#"cidrMatch(source.ip, "192.168.0.0/16")"#, &e));
    assert!(m(r#"not cidrMatch(source.ip, "192.168.0.0/16")"#, &e));
    assert!(m(r#"startsWith(process.executable, "/usr/")"#, &e));
    assert!(m(r#"endsWith(process.executable, process.name)"#, &e));
    assert!(m(r#"stringContains(process.command_line, "10.1")"#, &e));
    assert!(m(r#"concat(process.name, "-", 1) == "curl-1""#, &e));
    assert!(m(r#"substring(process.name, 1, 3) == "ur""#, &e));
    assert!(m(
        r#"between(process.command_line, "//", "/") == "10.1.2.3""#,
        &e
    ));
    assert!(m(r#"indexOf(process.command_line, "http") == 5"#, &e));
    assert!(m(r#"number("0x10") == 16 and string(1.5) == "1.5""#, &e));
    assert!(m(
        "add(1, 2) == 3 and subtract(1, 2) == -1 and multiply(2, 3) == 6",
        &e
    ));
    assert!(m("divide(7, 2) == 3 and modulo(7, 2) == 1", &e));
    // Scripts try every value of an array field.
    assert!(m(r#"startsWith(process.args, "http")"#, &e));
    assert!(m(r#"length(process.args) == 4"#, &e));
    assert!(m(
        r#"process.command_line regex ".*[0-9]{1,3}\\.[0-9]{1,3}.*""#,
        &e
    ));
}

#[test]
fn optional_fields_dotted_keys_and_indexes() {
    let e = json!({"process.name": "sh", "process": {"args": ["sh", "-c", "id"]}});
    assert!(m(r#"process.name == "sh""#, &e));
    assert!(m(r#"?process.name == "sh""#, &e));
    assert!(m(r#"process.args[1] == "-c""#, &e));
    assert!(!m(r#"process.args[0] == "-c""#, &e));
    assert!(m(r#"`process`.`args` == "id""#, &e));
    assert!(m(r#"?process.parent.name == null"#, &e));
}

#[test]
fn categories() {
    let e = json!({"event": {"category": ["process", "host"]}});
    assert!(q("process where true").matches(&e));
    assert!(q("host where true").matches(&e));
    assert!(!q("file where true").matches(&e));
    assert!(!q("Process where true").matches(&e));
    assert!(q("any where true").matches(&json!({})));
    assert!(!q("process where true").matches(&json!({})));
    assert!(!q("any where false").matches(&e));
    assert!(q("\"host\" where true").matches(&e));
}

#[test]
fn parse_errors_have_positions() {
    let err = |src: &str| Query::parse(src).unwrap_err().to_string();
    assert_eq!(
        err("sequence by host.id\n  [process where true]\n  [process where true]"),
        "line 1, column 1: expected a single-event query (sequence, sample and join queries \
         are not supported), found sequence"
    );
    assert_eq!(
        err("process where process.name == 'dmesg'"),
        "line 1, column 31: expected a string in double quotes (single quotes are not \
         supported), found 'dmesg'"
    );
    assert_eq!(
        err("process where\n  (process.name == \"a\"\n   or process.name == \"b\""),
        "line 3, column 26: expected ) to close the parenthesis, found end of input"
    );
    assert_eq!(
        err("process where process.name = \"a\""),
        "line 1, column 28: expected == or : (= is not an operator), found ="
    );
    assert_eq!(
        err("process where process.name === \"a\""),
        "line 1, column 30: expected a field, a literal, a function call or (, found ="
    );
    assert_eq!(
        err("process where process.name == process.parent.name"),
        "line 1, column 31: expected a literal value (comparing a field with a field is not \
         supported), found process.parent.name"
    );
    let e = Query::parse("process where\n\tx ==").unwrap_err();
    assert_eq!((e.line, e.column, e.found.as_str()), (2, 6, "end of input"));
}

#[test]
fn nesting_is_bounded() {
    let too_deep = [
        format!("any where {}true{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("any where {}true", "not ".repeat(10_000)),
        format!("any where 1{} == 1", " + 1".repeat(10_000)),
        format!("any where {}1 == 1", "-".repeat(10_000)),
        format!(
            "any where {}a{} == 1",
            "length(".repeat(10_000),
            ")".repeat(10_000)
        ),
    ];
    for src in &too_deep {
        let e = Query::parse(src).unwrap_err();
        assert!(e.expected.contains("less deeply nested"), "{}", &src[..30]);
    }
    let long = format!("any where a == 1{}", " and a == 1".repeat(10_000));
    assert!(Query::parse(&long).is_ok());
}

/// The deepest accepted queries parse, plan and run on a 2 MiB stack (what
/// tokio's worker threads and test threads get) even in a debug build.
#[test]
fn deepest_queries_fit_a_small_stack() {
    let run = || {
        let n = MAX_DEPTH - 1;
        let queries = [
            format!("any where {}a == 1{}", "(".repeat(n), ")".repeat(n)),
            format!(
                "any where {}a == 1{}",
                "(not ".repeat(n / 2),
                ")".repeat(n / 2)
            ),
            format!(
                "any where {}a){} == 1",
                "length(".repeat(n - 1),
                ")".repeat(n - 2)
            ),
            format!(
                "any where a in ({}1{})",
                "(".repeat(n - 2),
                ")".repeat(n - 2)
            ),
            format!("any where {}a == 1", "not ".repeat(n - 1)),
            format!("any where a == {}1", "-".repeat(n - 1)),
            format!("any where a == 1{}", " + 1".repeat(n - 1)),
            format!(
                "any where {}a + 1 == 2{}",
                "(not ".repeat(n / 2),
                ")".repeat(n / 2)
            ),
        ];
        for src in &queries {
            let query = Query::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            query.matches(&serde_json::json!({"a": "xyz", "b": 1}));
        }
    };
    let thread = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(run)
        .unwrap();
    thread.join().unwrap();
}
