//! Tests of rule loading: the built-in rule, Elastic's Linux rules, and errors.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

/// A minimal valid rule whose `[rule]` table ends with `tail`.
fn rule_text(tail: &str) -> String {
    format!(
        "[metadata]\nmaturity = \"production\"\n\n[rule]\nname = \"Test\"\n\
         rule_id = \"0000\"\ndescription = \"d\"\nrisk_score = 47\nseverity = \"Medium\"\n{tail}"
    )
}

fn expect_rule(loaded: Result<Loaded, RuleError>) -> Rule {
    match loaded {
        Ok(Loaded::Rule(rule)) => *rule,
        other => panic!("expected a rule, got {other:?}"),
    }
}

fn expect_skip(loaded: Result<Loaded, RuleError>) -> SkipReason {
    match loaded {
        Ok(Loaded::Skipped(skipped)) => skipped.reason,
        other => panic!("expected a skipped rule, got {other:?}"),
    }
}

#[test]
fn builtin_rule_keeps_elastic_identifiers() {
    let report = builtin_report();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(builtin().len(), report.loaded.len());

    let rule = &report.loaded[0];
    assert_eq!(rule.name, "Attempt to Clear Kernel Ring Buffer");
    assert_eq!(rule.rule_id, "2724808c-ba5d-48b2-86d2-0002103df753");
    assert_eq!(rule.version, Some(106));
    assert_eq!(rule.severity, Severity::Low);
    assert_eq!(rule.risk_score, 21);
    assert_eq!(
        (rule.rule_type.as_str(), rule.language.as_str()),
        ("eql", "eql")
    );
    assert_eq!(rule.from.as_deref(), Some("now-9m"));
    assert_eq!(rule.index.len(), 6);
    assert!(
        rule.index
            .contains(&"logs-endpoint.events.process*".to_string())
    );
    assert_eq!(
        rule.tags,
        [
            "Domain: Endpoint",
            "OS: Linux",
            "Use Case: Threat Detection",
            "Tactic: Defense Evasion"
        ]
    );
    assert_eq!(
        rule.source,
        "built-in:defense_evasion_clear_kernel_ring_buffer.toml"
    );
    assert!(rule.is_builtin());
    assert_eq!(rule.author, ["Elastic"]);
    assert!(rule.extra.contains_key("note"));
    assert!(rule.extra.contains_key("timestamp_override"));

    assert_eq!(rule.metadata.creation_date.as_deref(), Some("2023/10/24"));
    assert_eq!(rule.metadata.updated_date.as_deref(), Some("2025/03/20"));
    assert_eq!(rule.metadata.maturity.as_deref(), Some("production"));

    let query = "process where host.os.type == \"linux\" and event.type == \"start\" and \
                 event.action in (\"exec\", \"exec_event\", \"start\", \"ProcessRollup2\", \
                 \"executed\", \"process_started\")\n and process.name == \"dmesg\" and \
                 process.args in (\"-c\", \"--clear\")\n";
    assert_eq!(rule.query_text, query);
    assert_eq!(rule.query.category(), Some("process"));

    let [threat] = rule.threat.as_slice() else {
        panic!("one threat entry expected: {:?}", rule.threat);
    };
    assert_eq!(threat.framework, "MITRE ATT&CK");
    assert_eq!(
        threat.tactic,
        Tactic {
            id: "TA0005".into(),
            name: "Defense Evasion".into(),
            reference: "https://attack.mitre.org/tactics/TA0005/".into(),
        }
    );
    let techniques: Vec<_> = threat
        .technique
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str(), t.reference.as_str()))
        .collect();
    assert_eq!(
        techniques,
        [
            (
                "T1070",
                "Indicator Removal",
                "https://attack.mitre.org/techniques/T1070/"
            ),
            (
                "T1562",
                "Impair Defenses",
                "https://attack.mitre.org/techniques/T1562/"
            ),
        ]
    );
    let subtechniques: Vec<_> = threat
        .technique
        .iter()
        .flat_map(|t| &t.subtechnique)
        .map(|s| (s.id.as_str(), s.name.as_str(), s.reference.as_str()))
        .collect();
    assert_eq!(
        subtechniques,
        [
            (
                "T1070.002",
                "Clear Linux or Mac System Logs",
                "https://attack.mitre.org/techniques/T1070/002/"
            ),
            (
                "T1562.001",
                "Disable or Modify Tools",
                "https://attack.mitre.org/techniques/T1562/001/"
            ),
        ]
    );
}

#[test]
fn builtin_rule_matches_dmesg_clear() {
    let rules = builtin();
    let event = |args: &[&str]| {
        json!({
            "event": {"category": ["process"], "type": ["start"], "action": "exec"},
            "host": {"os": {"type": "linux"}},
            "process": {"name": "dmesg", "args": args},
        })
    };
    let seed = |args: &[&str]| {
        rules
            .matching(&event(args))
            .filter(|r| r.rule_id == "2724808c-ba5d-48b2-86d2-0002103df753")
            .count()
    };
    assert_eq!(seed(&["dmesg", "-c"]), 1);
    assert_eq!(seed(&["dmesg", "--clear"]), 1);
    // Elastic's version 106 exactly: not -C, not --read-clear.
    assert_eq!(seed(&["dmesg", "-C"]), 0);
    assert_eq!(seed(&["dmesg", "--read-clear"]), 0);
    assert_eq!(seed(&["dmesg", "-T"]), 0);
}

#[test]
fn elastic_linux_rules_all_load_or_explain() {
    let report = load_dir(&crate::reference_data::dir(
        crate::reference_data::LINUX_RULES,
    ));
    println!(
        "elastic linux rules: {} loaded, {} skipped, {} failed",
        report.loaded.len(),
        report.skipped.len(),
        report.failed.len()
    );
    for err in &report.failed {
        println!("  failed: {err}");
    }
    assert_eq!(report.total(), 363);

    let mut reasons = BTreeMap::<String, usize>::new();
    for skipped in &report.skipped {
        *reasons.entry(skipped.reason.to_string()).or_default() += 1;
    }
    println!("skip reasons: {reasons:#?}");
    // Counts from the snapshot's README: 49 new_terms, 16 query, 8 esql,
    // 3 threshold, 62 sequence and 3 sample rules.
    for (reason, count) in [
        ("new_terms rules (kuery) are not supported", 49),
        ("query rules (kuery) are not supported", 16),
        ("esql rules (esql) are not supported", 8),
        ("threshold rules (kuery) are not supported", 3),
        ("sequence queries are not supported", 62),
        ("sample queries are not supported", 3),
    ] {
        assert_eq!(reasons.get(reason), Some(&count), "{reason}");
    }
    assert_eq!(report.skipped.len(), 141);
    assert!(report.loaded.iter().all(|rule| rule.rule_type == "eql"));
    for err in &report.failed {
        assert!(err.position().is_some(), "{err}");
        assert!(err.path().contains("detection-rules/linux"), "{err}");
    }
}

#[test]
fn unknown_keys_are_kept() {
    let text = rule_text(
        "type = \"eql\"\nquery = \"any where true\"\nnote = \"n\"\nmax_signals = 5\n\
         [transform]\nosquery = []\n",
    );
    let rule = expect_rule(load_str(&text, "t.toml"));
    assert_eq!(rule.severity, Severity::Medium);
    assert_eq!(rule.language, "eql", "language defaults to eql");
    assert_eq!(
        rule.extra.get("max_signals").and_then(|v| v.as_integer()),
        Some(5)
    );
    assert!(rule.extra.contains_key("note"));
    assert!(rule.other.contains_key("transform"));
    assert_eq!(rule.metadata.maturity.as_deref(), Some("production"));
    assert!(rule.version.is_none());
}

#[test]
fn unsupported_rules_are_skipped_not_failed() {
    let skip = |tail: &str| expect_skip(load_str(&rule_text(tail), "t.toml"));
    assert_eq!(
        skip("type = \"machine_learning\"\nanomaly_threshold = 50\n").to_string(),
        "machine_learning rules are not supported"
    );
    assert_eq!(
        skip("type = \"eql\"\nlanguage = \"lucene\"\nquery = \"x\"\n").to_string(),
        "eql rules in language lucene are not supported"
    );
    let sequence =
        "type = \"eql\"\nquery = '''\n  // leading comment\n  sequence by x [any where true]'''\n";
    assert_eq!(skip(sequence), SkipReason::Sequence);
}

#[test]
fn toml_syntax_error_has_file_position() {
    let text = rule_text("type = \"eql\"\nquery = \"any where true\"\nnote = unquoted words\n");
    let err = load_str(&text, "bad.toml").unwrap_err();
    assert!(matches!(err, RuleError::Format { .. }), "{err:?}");
    assert_eq!(err.position(), Some((12, 8)), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with("bad.toml:12:8: "), "{shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
}

#[test]
fn missing_key_points_at_rule_table() {
    let text = "[metadata]\nmaturity = \"production\"\n\n[rule]\nname = \"x\"\n";
    let err = load_str(text, "m.toml").unwrap_err();
    assert_eq!(err.to_string(), "m.toml:4:1: missing field `rule_id`");

    let text = rule_text("type = \"eql\"\n");
    let err = load_str(&text, "q.toml").unwrap_err();
    assert_eq!(err.to_string(), "q.toml:4:1: missing field `query`");

    let err = load_str("[metadata]\n", "r.toml").unwrap_err();
    assert_eq!(err.to_string(), "r.toml:1:1: missing field `rule`");
}

#[test]
fn bad_values_point_at_the_value() {
    let text = rule_text("type = \"eql\"\nquery = \"any where true\"\n")
        .replace("\"Medium\"", "\"severe\"");
    let err = load_str(&text, "s.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.toml:9:12: unknown severity `severe`, expected low, medium, high or critical"
    );

    let text = rule_text("type = \"eql\"\nquery = \"any where true\"\n")
        .replace("risk_score = 47", "risk_score = 470");
    let err = load_str(&text, "r.toml").unwrap_err();
    assert_eq!(err.position(), Some((8, 14)), "{err}");
}

#[test]
fn risk_scores_outside_elastic_range_are_refused() {
    let with_score = |score: &str| {
        let text = rule_text("type = \"eql\"\nquery = \"any where true\"\n")
            .replace("risk_score = 47", &format!("risk_score = {score}"));
        load_str(&text, "r.toml")
    };
    for score in ["0", "100"] {
        assert_eq!(expect_rule(with_score(score)).risk_score.to_string(), score);
    }
    for score in ["101", "200", "-1"] {
        let err = with_score(score).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("r.toml:8:14: risk_score {score} is out of range, expected 0 to 100"),
        );
    }
}

#[test]
fn eql_error_position_is_inside_the_file() {
    // Multi-line literal string: the query starts on the line after `'''`.
    let query = "'''\nprocess where true\n and process.name == )\n'''";
    let text = rule_text(&format!("type = \"eql\"\nquery = {query}\n"));
    let offset = text.find("== )").map(|i| i + 3);
    let expected = error::line_column(&text, offset.unwrap_or_default());
    assert_eq!(expected, (13, 22));
    let err = load_str(&text, "e.toml").unwrap_err();
    let RuleError::Query {
        line,
        column,
        ref found,
        ref expected,
        ..
    } = err
    else {
        panic!("expected an eql error, got {err:?}");
    };
    assert_eq!((line, column), (13, 22), "{err}");
    assert!(!found.is_empty() && !expected.is_empty(), "{err}");
    assert!(
        err.to_string()
            .starts_with("e.toml:13:22: invalid eql query: "),
        "{err}"
    );

    // One-line basic string: the column is shifted by `query = "`.
    let text = rule_text("type = \"eql\"\nquery = \"process where process.name == )\"\n");
    let err = load_str(&text, "o.toml").unwrap_err();
    assert_eq!(err.position(), Some((11, 40)), "{err}");
}

#[test]
fn load_dir_is_recursive_sorted_and_resilient() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = rule_text("type = \"eql\"\nquery = \"process where true\"\n");
    std::fs::create_dir(dir.path().join("sub"))?;
    std::fs::write(dir.path().join("b.toml"), good.replace("\"Test\"", "\"B\""))?;
    std::fs::write(
        dir.path().join("sub/a.toml"),
        good.replace("\"Test\"", "\"A\""),
    )?;
    std::fs::write(dir.path().join("a.toml"), "not = [valid")?;
    std::fs::write(dir.path().join("c.toml"), rule_text("type = \"esql\"\n"))?;
    std::fs::write(dir.path().join("README.md"), "ignored")?;
    std::fs::write(dir.path().join("d.toml.bak"), "ignored")?;

    let report = load_dir(dir.path());
    let names: Vec<_> = report.loaded.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["B", "A"], "b.toml sorts before sub/a.toml");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].path().ends_with("a.toml"));
    assert_eq!(
        report.failed[0].position(),
        Some((1, 13)),
        "{}",
        report.failed[0]
    );

    let missing = load_dir(&dir.path().join("nope"));
    assert!(matches!(
        missing.failed.as_slice(),
        [RuleError::Read { .. }]
    ));
    Ok(())
}

#[test]
fn linked_directories_are_followed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::write(
        real.join("seed.toml"),
        include_str!("../../rules/defense_evasion_clear_kernel_ring_buffer.toml"),
    )
    .expect("write");
    let top = dir.path().join("top");
    std::fs::create_dir(&top).expect("mkdir");
    std::os::unix::fs::symlink(&real, top.join("linked")).expect("link");
    // A cycle: a link back to the top.
    std::os::unix::fs::symlink(&top, real.join("back")).expect("link");
    let report = load_dir(&top);
    assert_eq!(report.loaded.len(), 1, "{:?}", report.failed);
    assert!(report.failed.is_empty());
}

#[test]
fn only_regular_files_within_the_size_limit_are_read() -> std::io::Result<()> {
    let err = load_file(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/dev/zero is a character device, not a regular file"
    );
    let report = load_path(Path::new("/dev/zero"));
    assert!(
        matches!(report.failed.as_slice(), [RuleError::NotRegular { .. }]),
        "{report:?}"
    );

    let dir = tempfile::tempdir()?;
    let link = dir.path().join("null.toml");
    std::os::unix::fs::symlink("/dev/null", &link)?;
    let err = load_file(&link).unwrap_err();
    assert!(
        matches!(
            err,
            RuleError::NotRegular {
                kind: "a character device",
                ..
            }
        ),
        "{err:?}"
    );
    let err = load_file(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("is a directory, not a regular file")
    );

    // Sparse: nothing is written, and nothing should be read.
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big)?.set_len(MAX_FILE_BYTES + 1)?;
    let err = load_file(&big).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} holds 4194305 bytes, more than the 4194304 a rule file may hold",
            big.display()
        )
    );
    Ok(())
}

#[test]
fn odd_directory_entries_are_reported_not_opened() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = rule_text("type = \"eql\"\nquery = \"process where true\"\n");
    std::fs::write(dir.path().join("good.toml"), good)?;
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.toml"))?;
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("control"))?;
    std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("gone.toml"))?;
    std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("gone.txt"))?;

    let report = load_dir(dir.path());
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    let skipped: Vec<(&str, String)> = report
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.to_string()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "control",
                "a socket, not a regular file, is not read".into()
            ),
            (
                "zero.toml",
                "a character device, not a regular file, is not read".into()
            ),
        ]
    );
    // A link to nothing is an error when it looks like a rule file.
    assert!(
        matches!(report.failed.as_slice(), [RuleError::Read { path, .. }] if path.ends_with("gone.toml")),
        "{report:?}"
    );
    Ok(())
}
