//! Tests of alert documents and their one-line messages.

use super::*;
use crate::rules::{Loaded, builtin, load_str};
use time::UtcOffset;

fn dmesg_rule() -> Rule {
    let rules = builtin();
    rules.rules()[0].clone()
}

fn custom_rule(rule_id: &str, severity: &str) -> Rule {
    let text = format!(
        "[rule]\nname = \"Custom\"\nrule_id = \"{rule_id}\"\ndescription = \"d\"\n\
         risk_score = 90\nseverity = \"{severity}\"\ntype = \"eql\"\n\
         query = \"any where true\"\nreferences = [\"https://example.com/r\"]\n"
    );
    match load_str(&text, "/etc/monitor/rules/custom.toml") {
        Ok(Loaded::Rule(rule)) => *rule,
        other => panic!("test rule does not load: {other:?}"),
    }
}

fn exec_event(args: Value) -> Value {
    json!({
        "@timestamp": "2025-03-20T10:00:00.000000001Z",
        "ecs": {"version": "8.10.0"},
        "event": {
            "kind": "event",
            "category": ["process"],
            "type": ["start"],
            "action": "exec",
            "id": "original-event-id",
        },
        "host": {"name": "box", "os": {"type": "linux"}},
        "process": {
            "pid": 4242,
            "name": "dmesg",
            "executable": "/usr/bin/dmesg",
            "args": args,
            "parent": {"pid": 1, "name": "bash"},
        },
        "user": {"id": "0", "name": "root"},
        "group": {"id": "0", "name": "root"},
    })
}

/// 2025-03-20T12:34:56.000000789Z
const NOW_NANOS: i128 = 1_742_474_096_000_000_789;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(NOW_NANOS).unwrap()
}

#[test]
fn escape_arg_keeps_plain_words_bare() {
    assert_eq!(escape_arg("dmesg"), "dmesg");
    assert_eq!(escape_arg("--clear"), "--clear");
    assert_eq!(escape_arg("/tmp/x=1,y"), "/tmp/x=1,y");
}

#[test]
fn escape_arg_escapes_and_quotes() {
    let cases = [
        ("", r#""""#),
        ("two words", r#""two words""#),
        ("line\nbreak", r#""line\nbreak""#),
        ("carriage\rreturn", r#""carriage\rreturn""#),
        ("tab\there", r#""tab\there""#),
        ("\x1b[31mred", r#""\x1b[31mred""#),
        ("nul\0", r#""nul\x00""#),
        ("del\x7f", r#""del\x7f""#),
        ("c1\u{85}", r#""c1\x85""#),
        ("back\\slash", r#""back\\slash""#),
        ("say \"hi\"", r#""say \"hi\"""#),
        ("it's", r#""it's""#),
        ("rtl\u{202e}txt", r#""rtl\u{202e}txt""#),
        ("sep\u{2028}", r#""sep\u{2028}""#),
    ];
    for (arg, expected) in cases {
        assert_eq!(escape_arg(arg), expected, "{arg:?}");
    }
}

#[test]
fn escape_arg_keeps_printable_unicode() {
    assert_eq!(escape_arg("héllo→日本"), "héllo→日本");
    assert_eq!(escape_arg("naïve café"), "\"naïve café\"");
}

#[test]
fn no_control_character_survives() {
    let every_char: String = (0..0x3000).filter_map(char::from_u32).collect();
    let event = exec_event(json!(["x", every_char, "\n", ""]));
    let alert = Alert::new(&dmesg_rule(), &event, now());
    let line = alert.message();
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(!line.contains(['\u{2028}', '\u{2029}', '\u{202e}']));
    assert!(line.ends_with(r#" "\n" """#), "{line}");
}

#[test]
fn message_is_one_readable_line() {
    let event = exec_event(json!(["dmesg", "-c", "evil\nline", "\x1b[31m"]));
    let alert = Alert::new(&dmesg_rule(), &event, now());
    let expected = concat!(
        "Attempt to Clear Kernel Ring Buffer: pid=4242 user=root parent=bash[1] ",
        r#"cmd=dmesg -c "evil\nline" "\x1b[31m""#
    );
    assert_eq!(alert.message(), expected);
    assert_eq!(alert.document["message"], alert.message());
}

#[test]
fn message_falls_back_to_uid_and_executable() {
    let mut event = exec_event(json!(null));
    event["user"] = json!({"id": "1000"});
    if let Some(process) = event["process"].as_object_mut() {
        process.remove("args");
    }
    let alert = Alert::new(&dmesg_rule(), &event, now());
    assert_eq!(
        alert.message(),
        "Attempt to Clear Kernel Ring Buffer: pid=4242 user=1000 parent=bash[1] cmd=/usr/bin/dmesg"
    );
    event["process"]["parent"] = json!({"pid": 7});
    event["container"] = json!({"id": "0123456789abcdef0123"});
    let alert = Alert::new(&dmesg_rule(), &event, now());
    assert_eq!(
        alert.message(),
        "Attempt to Clear Kernel Ring Buffer: pid=4242 user=1000 parent=?[7] \
         container=0123456789ab cmd=/usr/bin/dmesg"
    );
    let bare = Alert::new(&dmesg_rule(), &json!({}), now());
    assert_eq!(
        bare.message(),
        "Attempt to Clear Kernel Ring Buffer: pid=? user=? cmd=?"
    );
}

#[test]
fn priority_follows_severity() {
    let event = exec_event(json!(["x"]));
    let priority = |word| Alert::new(&custom_rule("r", word), &event, now()).priority();
    assert_eq!(priority("critical"), 2);
    assert_eq!(priority("high"), 3);
    assert_eq!(priority("medium"), 4);
    assert_eq!(priority("low"), 5);
    assert_eq!(Alert::new(&dmesg_rule(), &event, now()).priority(), 5);
}

#[test]
fn message_id_is_fixed_per_rule() {
    let alert = Alert::new(&dmesg_rule(), &json!({}), now());
    assert_eq!(alert.message_id(), "2724808cba5d48b286d20002103df753");
    assert_eq!(
        message_id("2724808C-BA5D-48B2-86D2-0002103DF753"),
        "2724808cba5d48b286d20002103df753"
    );
    // FNV-1a 128 reference values.
    assert_eq!(message_id(""), "6c62272e07bb014262b821756295c58d");
    assert_eq!(message_id("a"), "d228cb696f1a8caf78912b704e4a8964");
    assert_eq!(message_id("my-rule"), "4c87deef014ff78d76a7f8fc4e27276c");
    let not_uuid = "2724808c-ba5d-48b2-86d2-0002103df75g";
    assert_ne!(message_id(not_uuid), "2724808cba5d48b286d20002103df75g");
    assert_eq!(message_id(not_uuid).len(), 32);
}

#[test]
fn document_follows_the_behavior_alert_shape() {
    let event = exec_event(json!(["dmesg", "-c"]));
    let alert = Alert::new(&dmesg_rule(), &event, now());
    let doc = &alert.document;
    assert_eq!(doc["@timestamp"], "2025-03-20T12:34:56.000000789Z");
    assert_eq!(doc["ecs"]["version"], "8.10.0");

    let e = &doc["event"];
    assert_eq!(e["kind"], "alert");
    assert_eq!(e["code"], "behavior");
    assert_eq!(e["category"], json!(["process"]));
    assert_eq!(e["type"], json!(["start"]));
    assert_eq!(e["action"], "exec");
    assert_eq!(e["created"], doc["@timestamp"]);
    assert_eq!(e["module"], "monitor");
    assert_eq!(e["dataset"], "monitor.alerts");
    assert_eq!(e["risk_score"], 21);
    assert_eq!(e["severity"], 21);
    let id = e["id"].as_str().unwrap_or_default();
    assert_ne!(id, "original-event-id");
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "7", "uuid version 7: {id}");
    assert!(id.starts_with("0195b38c-"), "time-ordered: {id}");
    let other = Alert::new(&dmesg_rule(), &event, now());
    assert_ne!(other.document["event"]["id"], e["id"]);

    let r = &doc["rule"];
    assert_eq!(r["id"], "2724808c-ba5d-48b2-86d2-0002103df753");
    assert_eq!(r["name"], "Attempt to Clear Kernel Ring Buffer");
    assert_eq!(r["version"], "106");
    assert_eq!(r["ruleset"], "built-in");
    assert_eq!(r["author"], json!(["Elastic"]));
    assert_eq!(r["license"], "Elastic License v2");
    assert!(
        r["description"]
            .as_str()
            .is_some_and(|d| d.contains("dmesg"))
    );
    assert!(r.get("reference").is_none());

    let t = &doc["threat"];
    assert_eq!(t["framework"], "MITRE ATT&CK");
    assert_eq!(t["tactic"]["id"], json!(["TA0005"]));
    assert_eq!(t["tactic"]["name"], json!(["Defense Evasion"]));
    assert_eq!(
        t["tactic"]["reference"],
        json!(["https://attack.mitre.org/tactics/TA0005/"])
    );
    assert_eq!(t["technique"]["id"], json!(["T1070", "T1562"]));
    assert_eq!(
        t["technique"]["name"],
        json!(["Indicator Removal", "Impair Defenses"])
    );
    assert_eq!(
        t["technique"]["subtechnique"]["id"],
        json!(["T1070.002", "T1562.001"])
    );
    assert_eq!(
        t["technique"]["subtechnique"]["reference"][1],
        "https://attack.mitre.org/techniques/T1562/001/"
    );

    for name in ["process", "user", "group", "host"] {
        assert_eq!(doc[name], event[name], "{name}");
    }
    assert!(doc.get("container").is_none());
    assert_eq!(doc["Events"], json!([event]));
}

#[test]
fn document_of_a_file_rule() {
    let event = exec_event(json!(["x"]));
    let alert = Alert::new(&custom_rule("my-rule", "High"), &event, now());
    let doc = &alert.document;
    assert_eq!(doc["rule"]["ruleset"], "/etc/monitor/rules/custom.toml");
    assert_eq!(doc["rule"]["reference"], json!(["https://example.com/r"]));
    assert!(doc["rule"].get("version").is_none());
    assert!(doc.get("threat").is_none());
    assert_eq!(doc["event"]["risk_score"], 90);
    assert_eq!(doc["event"]["severity"], 73);
    assert_eq!(alert.rule.source, "/etc/monitor/rules/custom.toml");
    assert_eq!(alert.field("process.parent.pid"), Some(&json!(1)));
}

#[test]
fn timestamps_are_utc_with_nanoseconds() {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(1_735_779_845_500_000_000).unwrap();
    let local = utc.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
    assert_eq!(local.hour(), 3);
    assert_eq!(rfc3339_nanos(local), "2025-01-02T01:04:05.500000000Z");
    assert_eq!(rfc3339_nanos(now()), "2025-03-20T12:34:56.000000789Z");
}

#[test]
fn invisible_format_characters_are_escaped() {
    for c in ['\u{061c}', '\u{200b}', '\u{feff}', '\u{00ad}', '\u{2060}'] {
        let escaped = escape_arg(&format!("a{c}b"));
        assert!(!escaped.contains(c), "{c:?} left raw in {escaped}");
        assert!(
            escaped.contains(&format!("\\u{{{:04x}}}", u32::from(c))),
            "{escaped}"
        );
    }
}
