//! The built-in rules that close the gaps of Elastic's seed rule: dmesg's
//! full option grammar, and the `syslog(2)` call itself. Pure matching,
//! without the kernel; `tests/clearing.rs` runs the same cases for real.

use serde_json::{Value, json};

use super::builtin;

const SEED: &str = "2724808c-ba5d-48b2-86d2-0002103df753";
const OPTIONS: &str = "ec82d3dc-4d7f-4962-94a0-28c04856931b";
const CLEARED: &str = "7ae7ffda-a5f7-4f89-8765-aa21b7c51992";
const DENIED: &str = "845da0d5-8f99-49bf-82a1-07a2dbcf1d2f";

fn exec(name: &str, args: &[&str]) -> Value {
    json!({
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "host": {"os": {"type": "linux"}},
        "process": {"name": name, "args": args},
    })
}

fn syslog(action: &str, outcome: &str) -> Value {
    json!({
        "event": {"category": ["api"], "type": ["deletion"], "action": action, "outcome": outcome},
        "host": {"os": {"type": "linux"}},
        "process": {"name": "python3", "args": ["python3", "-c", "..."]},
    })
}

fn hits(event: &Value) -> Vec<String> {
    builtin()
        .matching(event)
        .map(|r| r.rule_id.clone())
        .collect()
}

#[test]
fn every_clearing_option_of_dmesg_is_caught() {
    for options in [
        &["-c"][..],
        &["-C"],
        &["--clear"],
        &["--read-clear"],
        &["--cl"],
        &["--cle"],
        &["--clea"],
        &["--rea"],
        &["--read"],
        &["--read-"],
        &["--read-c"],
        &["--read-cle"],
        &["-Tc"],
        &["-cT"],
        &["-kC"],
        &["-xdTC"],
        &["-T", "-c"],
        &["--level=err", "--clear"],
    ] {
        let args: Vec<&str> = std::iter::once("dmesg")
            .chain(options.iter().copied())
            .collect();
        assert!(
            hits(&exec("dmesg", &args)).contains(&OPTIONS.to_string()),
            "dmesg {options:?}"
        );
    }
}

#[test]
fn options_that_do_not_clear_are_left_alone() {
    for options in [
        &[][..],
        &["-T"],
        &["--level=err"],
        &["-l", "err"],
        &["--color=always"],
        &["--c"],
        &["--re"],
        &["--reltime"],
        &["--console-off"],
        &["-Lc"],
        &["-lcrit"],
        &["-scr"],
        &["-F", "/var/log/dmesg"],
    ] {
        let args: Vec<&str> = std::iter::once("dmesg")
            .chain(options.iter().copied())
            .collect();
        assert_eq!(
            hits(&exec("dmesg", &args)),
            Vec::<String>::new(),
            "dmesg {options:?}"
        );
    }
}

#[test]
fn busybox_applets_are_dmesg_too() {
    let applet = hits(&exec("busybox", &["busybox", "dmesg", "-c"]));
    assert_eq!(applet, [OPTIONS]);
    let link = hits(&exec("busybox", &["/usr/local/bin/dmesg", "-rc"]));
    assert_eq!(link, [OPTIONS]);
    assert!(hits(&exec("busybox", &["busybox", "ls", "-c"])).is_empty());
    assert!(hits(&exec("echo", &["/bin/echo", "-c"])).is_empty());
}

#[test]
fn the_seed_rule_is_unchanged() {
    assert_eq!(hits(&exec("dmesg", &["dmesg", "-c"])), [SEED, OPTIONS]);
    assert_eq!(hits(&exec("dmesg", &["dmesg", "-C"])), [OPTIONS]);
}

#[test]
fn the_system_call_rules_split_on_the_outcome() {
    assert_eq!(hits(&syslog("syslog_clear", "success")), [CLEARED]);
    assert_eq!(hits(&syslog("syslog_read_clear", "success")), [CLEARED]);
    assert_eq!(hits(&syslog("syslog_clear", "failure")), [DENIED]);
    assert!(hits(&syslog("syslog_read", "success")).is_empty());
}

#[test]
fn the_new_rules_carry_the_seed_rules_mitre_mapping() {
    let set = builtin();
    let seed = set.rules().iter().find(|r| r.rule_id == SEED).unwrap();
    for id in [OPTIONS, CLEARED, DENIED] {
        let rule = set.rules().iter().find(|r| r.rule_id == id).unwrap();
        assert_eq!(rule.threat, seed.threat, "{}", rule.name);
        assert_ne!(rule.description, seed.description);
    }
}
