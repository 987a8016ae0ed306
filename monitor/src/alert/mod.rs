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
//! - `event.id` is a fresh time-ordered UUID (version 7).
//! - `threat` is flattened the way ECS stores it: one object whose `tactic`,
//!   `technique` and `technique.subtechnique` fields hold arrays of ids,
//!   names and references, in rule order, without duplicates.
//! - `rule.version` is a string (ECS keyword); `rule.reference` is the array
//!   of the rule's `references` when it has any; `rule.ruleset` is
//!   `"built-in"` or the path of the rule file.
//!
//! Not done yet: `Responses` (the monitor only detects, it does not act),
//! alert de-duplication, and `Endpoint.policy`-style metadata.

mod message;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use message::{command_line, escape_arg, text_of};
use message::{format_message, lookup};

use crate::ecs::{ECS_VERSION, rfc3339_nanos};
use crate::rules::{Rule, Severity, Threat};

/// Objects of the matched event that the alert copies as they are.
const COPIED: [&str; 6] = ["process", "user", "group", "host", "container", "error"];

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
    /// `<rule name>: pid=<pid> user=<user.name or user.id>
    /// parent=<name>[<pid>] container=<short id> cmd=<arguments>`, the
    /// parent and container parts when the event has them.
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

fn event_fields(rule: &Rule, event: &Value, timestamp: &str, now: OffsetDateTime) -> Value {
    let mut fields = Map::new();
    fields.insert("kind".into(), "alert".into());
    fields.insert("code".into(), "behavior".into());
    for name in ["category", "type", "action", "outcome"] {
        if let Some(value) = lookup(event, &format!("event.{name}")) {
            fields.insert(name.into(), value.clone());
        }
    }
    let stamp = uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(now.unix_timestamp()).unwrap_or_default(),
        now.nanosecond(),
    );
    fields.insert("id".into(), uuid::Uuid::new_v7(stamp).to_string().into());
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

#[cfg(test)]
mod tests;
