//! The alert raised when a rule matches an event.
//!
//! [`Alert::document`] follows the shape of Elastic Endpoint's Linux
//! "malicious behavior" alert (`event.code: behavior`), with these choices:
//!
//! - `event.module` is `"monitor"` and `event.dataset` is `"monitor.alerts"`:
//!   the alerts do not come from Elastic's agent and should not pass for it.
//! - `event.risk_score` is the rule's `risk_score`; `event.severity` is the
//!   number Kibana pairs with the rule's severity word (low 21, medium 47,
//!   high 73, critical 99), so that alerts sort by level even when rule
//!   authors pick unusual risk scores.
//! - `@timestamp` and `event.created` are both the alert time.
//! - `event.id` is a fresh time-ordered UUID (version 7 layout).
//! - `threat` is flattened the way ECS stores it: one object whose `tactic`,
//!   `technique` and `technique.subtechnique` fields hold arrays of ids,
//!   names and references, in rule order, without duplicates.
//! - `rule.version` is a string (ECS keyword); `rule.reference` is the array
//!   of the rule's `references` when it has any; `rule.ruleset` is
//!   `"built-in"` or the path of the rule file.
//!
//! Not done yet: `Responses` (the monitor only detects, it does not act),
//! alert de-duplication, and `Endpoint.policy`-style metadata.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use time::{OffsetDateTime, UtcOffset};

use crate::ecs::ECS_VERSION;
use crate::rules::{Rule, Severity, Threat};

/// Objects of the matched event that the alert copies as they are.
const COPIED: [&str; 5] = ["process", "user", "group", "host", "container"];

/// An alert: which rule fired, and the document describing it.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The fields of the rule that outputs need without the document.
    pub rule: RuleSummary,
    /// The alert document, ready to serialize.
    pub document: Value,
}

/// The parts of a [`Rule`] an alert keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    /// `rule.rule_id`.
    pub id: String,
    /// `rule.name`.
    pub name: String,
    /// `rule.severity`.
    pub severity: Severity,
    /// `rule.risk_score`.
    pub risk_score: u8,
    /// `rule.version`, when the rule file has one.
    pub version: Option<u32>,
    /// Where the rule came from ([`Rule::source`]).
    pub source: String,
}

impl Alert {
    /// Builds the alert for `rule` matching `event`, raised at `now`.
    pub fn new(rule: &Rule, event: &Value, now: OffsetDateTime) -> Alert {
        let timestamp = rfc3339_nanos(now);
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), timestamp.clone().into());
        doc.insert("message".into(), format_message(&rule.name, event).into());
        // The event's own version, which is the daemon's unless the event
        // came from elsewhere (a replayed file, a test).
        let ecs_version = lookup(event, "ecs.version")
            .cloned()
            .unwrap_or_else(|| ECS_VERSION.into());
        doc.insert("ecs".into(), json!({ "version": ecs_version }));
        doc.insert("event".into(), event_fields(rule, event, &timestamp, now));
        doc.insert("rule".into(), rule_fields(rule));
        if !rule.threat.is_empty() {
            doc.insert("threat".into(), flatten_threat(&rule.threat));
        }
        for name in COPIED {
            if let Some(value) = event.get(name) {
                doc.insert(name.into(), value.clone());
            }
        }
        doc.insert("Events".into(), Value::Array(vec![event.clone()]));

        Alert {
            rule: RuleSummary {
                id: rule.rule_id.clone(),
                name: rule.name.clone(),
                severity: rule.severity,
                risk_score: rule.risk_score,
                version: rule.version,
                source: rule.source.clone(),
            },
            document: Value::Object(doc),
        }
    }

    /// A field of the document by dotted path, e.g. `"process.pid"`.
    pub fn field(&self, path: &str) -> Option<&Value> {
        lookup(&self.document, path)
    }

    /// One line for humans:
    /// `<rule name>: pid=<pid> user=<user.name or user.id> cmd=<arguments>`.
    ///
    /// Every part is escaped with [`escape_arg`] rules, so the line holds no
    /// control character whatever the process put in its arguments.
    pub fn message(&self) -> String {
        format_message(&self.rule.name, &self.document)
    }

    /// Syslog priority for the rule's severity: critical 2 (crit), high 3
    /// (err), medium 4 (warning), low 5 (notice).
    pub fn priority(&self) -> u8 {
        match self.rule.severity {
            Severity::Critical => 2,
            Severity::High => 3,
            Severity::Medium => 4,
            Severity::Low => 5,
        }
    }

    /// The journald `MESSAGE_ID` of this rule's alerts; see [`message_id`].
    pub fn message_id(&self) -> String {
        message_id(&self.rule.id)
    }
}

/// A fixed 32-hex-digit id per rule, for journald's `MESSAGE_ID`.
///
/// A rule id that is a UUID (`8-4-4-4-12` hex digits, as in Elastic's rules)
/// is used as is, lowercased, without dashes. Any other rule id is hashed
/// with 128-bit FNV-1a, which is stable across builds and platforms.
pub fn message_id(rule_id: &str) -> String {
    if is_uuid(rule_id) {
        return rule_id.replace('-', "").to_ascii_lowercase();
    }
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let hash = rule_id.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:032x}")
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Escapes one argument so that it prints on one line, quoting it if needed.
///
/// `\n`, `\r`, `\t` and `\\` get their usual escapes; other control
/// characters (C0, DEL and C1) become `\xNN`; Unicode line separators and
/// bidirectional-text controls, which can reorder or break what a terminal
/// shows, become `\u{NNNN}`. Other non-ASCII text is kept. The result is
/// wrapped in double quotes, with `"` escaped, when the argument is empty or
/// has whitespace, quotes or anything escaped.
pub fn escape_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    let escaped = escape_into(&mut out, arg);
    let bare =
        !arg.is_empty() && !escaped && !arg.contains(|c: char| c.is_whitespace() || c == '\'');
    if bare { out } else { format!("\"{out}\"") }
}

/// Appends `text` to `out` with the escapes of [`escape_arg`], without
/// quoting; returns whether anything was escaped.
fn escape_into(out: &mut String, text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            '\u{2028}'
            | '\u{2029}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => {
                out.push(c);
                continue;
            }
        }
        escaped = true;
    }
    escaped
}

/// The arguments of `process.args`, escaped with [`escape_arg`] and joined by spaces.
///
/// Falls back to `process.executable`, then `process.name`, when the event
/// has no argument array; `?` when it has none of them.
pub fn command_line(event: &Value) -> String {
    let args = match lookup(event, "process.args") {
        Some(Value::Array(args)) => args.iter().collect(),
        _ => ["process.executable", "process.name"]
            .iter()
            .find_map(|path| lookup(event, path))
            .into_iter()
            .collect::<Vec<_>>(),
    };
    if args.is_empty() {
        return "?".into();
    }
    let words: Vec<String> = args
        .into_iter()
        .map(|arg| escape_arg(&text_of(arg)))
        .collect();
    words.join(" ")
}

fn format_message(rule_name: &str, event: &Value) -> String {
    let pid = lookup(event, "process.pid").map_or_else(|| "?".into(), text_of);
    let user = lookup(event, "user.name")
        .or_else(|| lookup(event, "user.id"))
        .map_or_else(|| "?".into(), text_of);
    format!(
        "{}: pid={} user={} cmd={}",
        escape_line(rule_name),
        escape_arg(&pid),
        escape_arg(&user),
        command_line(event)
    )
}

/// Escapes like [`escape_arg`] but never quotes, for text that is not an argument.
fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// A value as plain text: strings without JSON quotes, anything else as JSON.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A nested field by dotted path; ECS documents nest every dotted name.
pub(crate) fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

fn event_fields(rule: &Rule, event: &Value, timestamp: &str, now: OffsetDateTime) -> Value {
    let mut fields = Map::new();
    fields.insert("kind".into(), "alert".into());
    fields.insert("code".into(), "behavior".into());
    for name in ["category", "type", "action"] {
        if let Some(value) = lookup(event, &format!("event.{name}")) {
            fields.insert(name.into(), value.clone());
        }
    }
    fields.insert("id".into(), new_event_id(now).into());
    fields.insert("created".into(), timestamp.into());
    fields.insert("module".into(), "monitor".into());
    fields.insert("dataset".into(), "monitor.alerts".into());
    fields.insert("risk_score".into(), rule.risk_score.into());
    fields.insert("severity".into(), severity_number(rule.severity).into());
    Value::Object(fields)
}

fn severity_number(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

fn rule_fields(rule: &Rule) -> Value {
    let mut fields = Map::new();
    fields.insert("id".into(), rule.rule_id.clone().into());
    fields.insert("name".into(), rule.name.clone().into());
    fields.insert("description".into(), rule.description.trim_end().into());
    if let Some(version) = rule.version {
        fields.insert("version".into(), version.to_string().into());
    }
    let ruleset = if rule.is_builtin() {
        "built-in"
    } else {
        &rule.source
    };
    fields.insert("ruleset".into(), ruleset.into());
    if !rule.references.is_empty() {
        fields.insert("reference".into(), rule.references.clone().into());
    }
    if !rule.author.is_empty() {
        fields.insert("author".into(), rule.author.clone().into());
    }
    if let Some(license) = &rule.license {
        fields.insert("license".into(), license.clone().into());
    }
    Value::Object(fields)
}

/// Parallel arrays of id, name and reference, as ECS flattens `threat`.
#[derive(Default)]
struct Column {
    id: Vec<String>,
    name: Vec<String>,
    reference: Vec<String>,
}

impl Column {
    fn push(&mut self, id: &str, name: &str, reference: &str) {
        if !self.id.iter().any(|seen| seen == id) {
            self.id.push(id.into());
            self.name.push(name.into());
            self.reference.push(reference.into());
        }
    }

    fn into_map(self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("id".into(), self.id.into());
        map.insert("name".into(), self.name.into());
        map.insert("reference".into(), self.reference.into());
        map
    }
}

fn flatten_threat(threats: &[Threat]) -> Value {
    let mut tactic = Column::default();
    let mut technique = Column::default();
    let mut subtechnique = Column::default();
    let mut frameworks: Vec<&str> = Vec::new();
    for threat in threats {
        if !frameworks.contains(&threat.framework.as_str()) {
            frameworks.push(&threat.framework);
        }
        let t = &threat.tactic;
        tactic.push(&t.id, &t.name, &t.reference);
        for t in &threat.technique {
            technique.push(&t.id, &t.name, &t.reference);
            for s in &t.subtechnique {
                subtechnique.push(&s.id, &s.name, &s.reference);
            }
        }
    }
    let framework: Value = match frameworks.as_slice() {
        [one] => (*one).into(),
        many => many.to_vec().into(),
    };
    let mut threat = Map::new();
    threat.insert("framework".into(), framework);
    threat.insert("tactic".into(), Value::Object(tactic.into_map()));
    if !technique.id.is_empty() {
        let mut technique = technique.into_map();
        if !subtechnique.id.is_empty() {
            technique.insert(
                "subtechnique".into(),
                Value::Object(subtechnique.into_map()),
            );
        }
        threat.insert("technique".into(), Value::Object(technique));
    }
    Value::Object(threat)
}

/// RFC 3339 in UTC with nanoseconds: `2025-03-20T12:34:56.123456789Z`.
pub fn rfc3339_nanos(time: OffsetDateTime) -> String {
    let utc = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond()
    )
}

/// A new UUID with the version 7 layout: 48 bits of Unix milliseconds, then
/// 74 bits that are SipHash of a process-wide counter under a key std draws
/// from the OS at start-up (no extra dependency needed for randomness).
fn new_event_id(now: OffsetDateTime) -> String {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(RandomState::new);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let draw = |salt: u64| {
        let mut hasher = key.build_hasher();
        hasher.write_u64(count);
        hasher.write_u64(salt);
        hasher.finish()
    };
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(0)
        .min((1 << 48) - 1);
    let (high, low) = (draw(0), draw(1));
    let rand_a = high & 0x0fff;
    let rand_b = low & 0x3fff_ffff_ffff_ffff;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        millis >> 16,
        millis & 0xffff,
        0x7000 | rand_a,
        0x8000 | (rand_b >> 48),
        rand_b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Loaded, builtin, load_str};

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
            "Attempt to Clear Kernel Ring Buffer: pid=4242 user=root ",
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
            "Attempt to Clear Kernel Ring Buffer: pid=4242 user=1000 cmd=/usr/bin/dmesg"
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
}
