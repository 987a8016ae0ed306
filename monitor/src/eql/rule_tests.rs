//! Tests against Elastic's own rules: the "Attempt to Clear Kernel Ring
//! Buffer" rule in detail, every Linux rule in the detection-rules checkout
//! (parse, refuse sequences, stay quiet on benign execs, fire on crafted
//! attacks), and a few hundred random and mutated queries that must never
//! panic.
//!
//! The rules come from the shared reference data (see `reference_data`);
//! without it these tests fail saying where they looked.

use serde_json::{Value, json};

use super::Query;
use super::lexer::Lexer;
use super::tests::q;
use super::token::{Kw, Tok};

/// Elastic's "Attempt to Clear Kernel Ring Buffer" rule, verbatim.
const RING_BUFFER: &str = concat!(
    r#"process where host.os.type == "linux" and event.type == "start" and "#,
    r#"event.action in ("exec", "exec_event", "start", "ProcessRollup2", "executed", "#,
    r#""process_started")"#,
    "\n",
    r#" and process.name == "dmesg" and process.args in ("-c", "--clear")"#,
);

fn dmesg(args: Value) -> Value {
    json!({
        "host": {"os": {"type": "linux"}},
        "event": {"type": ["start"], "action": "exec", "category": ["process"]},
        "process": {"name": "dmesg", "args": args}
    })
}

#[test]
fn kernel_ring_buffer_rule() {
    assert_eq!(RING_BUFFER.lines().count(), 2);
    let rule = q(RING_BUFFER);
    assert_eq!(rule.category(), Some("process"));
    assert!(rule.matches(&dmesg(json!(["dmesg", "-c"]))));
    assert!(rule.matches(&dmesg(json!(["dmesg", "--clear"]))));
    assert!(!rule.matches(&dmesg(json!(["dmesg", "-T"]))));
    assert!(
        !rule.matches(&dmesg(json!(["dmesg", "-C"]))),
        "in is case-sensitive"
    );
    let mut upper = dmesg(json!(["dmesg", "-c"]));
    upper["process"]["name"] = json!("DMESG");
    assert!(!rule.matches(&upper), "== is case-sensitive");
    let mut file = dmesg(json!(["dmesg", "-c"]));
    file["event"]["category"] = json!(["file"]);
    assert!(!rule.matches(&file));
    let mut no_args = dmesg(json!(["dmesg", "-c"]));
    no_args["process"].as_object_mut().map(|p| p.remove("args"));
    assert!(!rule.matches(&no_args));
    let mut scalar_category = dmesg(json!(["dmesg", "-c"]));
    scalar_category["event"]["category"] = json!("process");
    assert!(rule.matches(&scalar_category));
    assert_eq!(
        rule.pinned_values("process.name"),
        Some(vec!["dmesg".to_string()])
    );
    assert_eq!(
        rule.pinned_values("process.args"),
        Some(vec!["--clear".into(), "-c".into()])
    );
    assert_eq!(
        rule.pinned_values("event.category"),
        Some(vec!["process".to_string()])
    );
    assert_eq!(rule.pinned_values("user.id"), None);
    assert!(rule.fields().contains(&"event.action".to_string()));
}

#[test]
fn query_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_send_sync::<Query>();
    let query = q(RING_BUFFER);
    assert_eq!(query.source(), RING_BUFFER);
}

fn rules_dir() -> std::path::PathBuf {
    crate::reference_data::dir(crate::reference_data::LINUX_RULES)
}

/// The EQL query of every rule file, with the file name.
fn eql_rules() -> Vec<(String, String)> {
    let dir = std::fs::read_dir(rules_dir()).expect("read the rules directory");
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let Some(rule) = doc.get("rule").and_then(|r| r.as_table()) else {
            continue;
        };
        let language = rule.get("language").and_then(|l| l.as_str());
        let query = rule.get("query").and_then(|q| q.as_str());
        if let (Some("eql"), Some(query)) = (language, query) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            out.push((name, query.to_string()));
        }
    }
    out.sort();
    out
}

fn first_keyword(query: &str) -> Option<Kw> {
    match Lexer::new(query).next_token() {
        Ok(t) => match t.tok {
            Tok::Kw(kw) => Some(kw),
            _ => None,
        },
        Err(_) => None,
    }
}

#[test]
fn every_linux_single_event_rule_parses() {
    let rules = eql_rules();
    if rules.is_empty() {
        eprintln!("no rules found at {}; skipping", rules_dir().display());
        return;
    }
    let single: Vec<_> = rules
        .iter()
        .filter(|(_, query)| !matches!(first_keyword(query), Some(Kw::Sequence | Kw::Sample)))
        .collect();
    let mut failures = Vec::new();
    let event = dmesg(json!(["dmesg", "-c"]));
    for (name, query) in &single {
        match Query::parse(query) {
            Ok(parsed) => {
                parsed.matches(&event);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    let parsed = single.len() - failures.len();
    println!(
        "{parsed} of {} single-event linux eql rules parse",
        single.len()
    );
    for failure in &failures {
        println!("  {failure}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Sequences and samples are refused with the documented message.
    for (_, query) in rules
        .iter()
        .filter(|(_, q)| first_keyword(q) == Some(Kw::Sequence))
    {
        let err = Query::parse(query).unwrap_err();
        assert!(err.expected.starts_with("a single-event query"), "{err}");
    }
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_and_mutated_queries_never_panic() {
    const PIECES: [&str; 48] = [
        "process",
        "where",
        "any",
        "and",
        "or",
        "not",
        "in",
        "in~",
        "like",
        "like~",
        "regex",
        "regex~",
        ":",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "(",
        ")",
        ",",
        "[",
        "]",
        ".",
        "?",
        "\"",
        "\"\"\"",
        "'",
        "`",
        "\\",
        "*",
        "+",
        "-",
        "/",
        "%",
        "null",
        "true",
        "1",
        "1.5e3",
        "x.y",
        "\"a*\"",
        "length(",
        "cidrMatch(",
        "//",
        "/*",
        "*/",
        "\n",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let event = dmesg(json!(["dmesg", "-c"]));
    let mut seeds: Vec<String> = eql_rules().into_iter().map(|(_, q)| q).collect();
    seeds.push(RING_BUFFER.to_string());
    seeds.push(r#"any where a regex~ "(a|b)*[c-e]{2,3}~x&@" and length(b) > 1"#.to_string());
    let mut tried = 0;
    for round in 0..600 {
        let text = if round % 3 == 0 {
            let n = rng.below(30);
            (0..n)
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 => chars.insert(
                        at,
                        PIECES[rng.below(PIECES.len())]
                            .chars()
                            .next()
                            .unwrap_or('x'),
                    ),
                    2 => chars.truncate(at),
                    _ => chars.insert(
                        at,
                        char::from_u32(rng.next() as u32 % 0x3000).unwrap_or('é'),
                    ),
                }
            }
            chars.into_iter().collect()
        };
        if let Ok(query) = Query::parse(&text) {
            query.matches(&event);
            query.pinned_values("process.name");
        }
        tried += 1;
    }
    assert_eq!(tried, 600);
}

/// The query of one rule file, if the rules are there.
fn rule(file: &str) -> Option<Query> {
    let query = eql_rules().into_iter().find(|(name, _)| name == file)?.1;
    Some(q(&query))
}

/// An exec event as the monitor writes it: no parent details yet.
fn exec(name: &str, executable: &str, args: &[&str]) -> Value {
    json!({
        "host": {"os": {"type": "linux"}},
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "process": {
            "name": name, "executable": executable, "args": args, "args_count": args.len(),
            "command_line": args.join(" "), "parent": {"pid": 1}
        },
        "user": {"id": "0"}
    })
}

#[test]
fn benign_execs_match_no_rule() {
    let events = [
        exec("ls", "/usr/bin/ls", &["ls", "-la", "/tmp"]),
        exec("bash", "/usr/bin/bash", &["bash", "-c", "id"]),
        exec("dmesg", "/usr/bin/dmesg", &["dmesg", "-T"]),
    ];
    for (name, query) in eql_rules() {
        let Ok(query) = Query::parse(&query) else {
            continue;
        };
        for event in &events {
            assert!(!query.matches(event), "{name} matches {event}");
        }
    }
}

#[test]
fn crafted_attacks_fire_their_rules() {
    let Some(shred) = rule("defense_evasion_file_deletion_via_shred.toml") else {
        eprintln!("no rules found at {}; skipping", rules_dir().display());
        return;
    };
    // `not process.parent.name == "logrotate"` holds when the parent's name
    // is unknown, as in Elasticsearch.
    assert!(shred.matches(&exec(
        "shred",
        "/usr/bin/shred",
        &["shred", "-vu", "secret"]
    )));
    assert!(shred.matches(&exec(
        "shred",
        "/usr/bin/shred",
        &["shred", "--remove", "x"]
    )));
    assert!(!shred.matches(&exec("shred", "/usr/bin/shred", &["shred", "-n", "3", "x"])));
    let mut logrotate = exec("shred", "/usr/bin/shred", &["shred", "-u", "x"]);
    logrotate["process"]["parent"]["name"] = json!("logrotate");
    assert!(!shred.matches(&logrotate));

    let pid_file = rule("execution_process_started_from_process_id_file.toml").unwrap();
    assert!(pid_file.matches(&exec("x.pid", "/var/run/x.PID", &["/var/run/x.pid"])));
    assert!(!pid_file.matches(&exec("x.pid", "/var/run/a/x.pid", &["/var/run/a/x.pid"])));

    let tunnel = rule("command_and_control_linux_tunneling_and_port_forwarding.toml").unwrap();
    let mut ssh = exec(
        "ssh",
        "/usr/bin/ssh",
        &["ssh", "-fNL", "8080:db:5432", "me@jump"],
    );
    ssh["process"]["parent"]["name"] = json!("bash");
    assert!(tunnel.matches(&ssh));
    ssh["process"]["args"] = json!(["ssh", "-o", "BatchMode=yes", "me@host"]);
    assert!(!tunnel.matches(&ssh));

    let hidden = rule("defense_evasion_hidden_file_dir_tmp.toml").unwrap();
    let mut touch = exec("touch", "/usr/bin/touch", &["touch", ".x11-cache"]);
    touch["process"]["working_directory"] = json!("/tmp");
    assert!(hidden.matches(&touch));
    // regex~ folds letters but not ranges, as Lucene 9 does.
    touch["process"]["args"] = json!(["touch", ".X11-CACHE"]);
    assert!(!hidden.matches(&touch));

    let suid = rule("privilege_escalation_potential_suid_lpe_via_process_args.toml").unwrap();
    let mut lpe = exec("pwn", "/tmp/pwn", &["/tmp/pwn"]);
    lpe["process"]["user"] = json!({"id": "0"});
    lpe["process"]["real_user"] = json!({"id": "1000"});
    lpe["process"]["parent"]["executable"] = json!("/tmp/launcher");
    assert!(suid.matches(&lpe));
    lpe["process"]["real_user"]["id"] = json!("0");
    assert!(!suid.matches(&lpe));
}
