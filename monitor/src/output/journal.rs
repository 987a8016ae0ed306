//! Alerts as journald entries, sent over journald's native protocol.
//!
//! One entry per alert. `MESSAGE` is the alert's one-line summary and
//! `MESSAGE_ID` is fixed per rule, so `journalctl MESSAGE_ID=...` lists every
//! alert of a rule; the structured fields below carry the details, and
//! `ALERT_JSON` the whole alert document.
//!
//! `journal_send` blocks while journald's socket buffer is full; the sink
//! runs on its own output thread behind a bounded queue (see `dispatch`), so
//! that never holds up the capture.

use std::io;
use std::os::unix::fs::FileTypeExt;

use libsystemd::logging::{self, Priority};
use serde_json::Value;

use super::AlertSink;
use crate::alert::{Alert, text_of};

/// `SYSLOG_IDENTIFIER` of every entry, for `journalctl -t monitor`.
pub const SYSLOG_IDENTIFIER: &str = "monitor";

/// Fields copied from the alert document when present: (journal field, path).
const COPIED: [(&str, &str); 13] = [
    ("PROCESS_PID", "process.pid"),
    ("PROCESS_ENTITY_ID", "process.entity_id"),
    ("PROCESS_NAME", "process.name"),
    ("PROCESS_EXECUTABLE", "process.executable"),
    ("PROCESS_ARGS", "process.args"),
    ("PROCESS_WORKING_DIRECTORY", "process.working_directory"),
    ("PROCESS_PARENT_PID", "process.parent.pid"),
    ("PROCESS_PARENT_NAME", "process.parent.name"),
    ("PROCESS_PARENT_ENTITY_ID", "process.parent.entity_id"),
    ("USER_ID", "user.id"),
    ("USER_NAME", "user.name"),
    ("CONTAINER_ID", "container.id"),
    ("HOST_NAME", "host.name"),
];

/// Writes each alert as one journald entry.
#[derive(Debug)]
pub struct JournalSink {
    _private: (),
}

impl JournalSink {
    /// A sink for the local journald.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] when journald's socket
    /// (`/run/systemd/journal/socket`) does not exist, so the caller can pick
    /// another sink before the first alert is lost.
    pub fn new() -> io::Result<Self> {
        let path = logging::SD_JOURNAL_SOCK_PATH;
        let metadata = std::fs::metadata(path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("journald socket {path} is not available"),
            )
        })?;
        if !metadata.file_type().is_socket() {
            let message = format!("journald socket {path} is not a socket");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        Ok(JournalSink { _private: () })
    }
}

impl AlertSink for JournalSink {
    fn write_alert(&mut self, alert: &Alert) -> io::Result<()> {
        let fields = journal_fields(alert);
        // libsystemd sets MESSAGE and PRIORITY from its arguments; passing
        // them again as fields would at best be ignored.
        let rest = fields
            .iter()
            .filter(|(name, _)| name != "MESSAGE" && name != "PRIORITY")
            .map(|(name, value)| (name, value));
        logging::journal_send(priority(alert.priority()), &alert.message(), rest)
            .map_err(io::Error::other)
    }
}

fn priority(level: u8) -> Priority {
    match level {
        0 => Priority::Emergency,
        1 => Priority::Alert,
        2 => Priority::Critical,
        3 => Priority::Error,
        4 => Priority::Warning,
        5 => Priority::Notice,
        6 => Priority::Info,
        _ => Priority::Debug,
    }
}

/// Every field of the journald entry for `alert`, `MESSAGE` and `PRIORITY`
/// included, in a fixed order.
///
/// Process and user fields are left out when the document lacks them.
/// `PROCESS_ARGS` is the JSON array exactly as in the document; numbers are
/// written in decimal. Only `MESSAGE` is guaranteed to be one line; other
/// values may hold newlines, which the native protocol carries intact.
pub fn journal_fields(alert: &Alert) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = vec![
        ("MESSAGE".into(), alert.message()),
        ("PRIORITY".into(), alert.priority().to_string()),
        ("SYSLOG_IDENTIFIER".into(), SYSLOG_IDENTIFIER.into()),
        ("MESSAGE_ID".into(), alert.message_id()),
        ("RULE_ID".into(), alert.rule.id.clone()),
        ("RULE_NAME".into(), alert.rule.name.clone()),
        ("RULE_SEVERITY".into(), alert.rule.severity.as_str().into()),
        ("RULE_RISK_SCORE".into(), alert.rule.risk_score.to_string()),
    ];
    for (name, path) in COPIED {
        let value = match alert.field(path) {
            None | Some(Value::Null) => continue,
            Some(array @ Value::Array(_)) => array.to_string(),
            Some(value) => text_of(value),
        };
        fields.push((name.into(), value));
    }
    fields.push(("ALERT_JSON".into(), alert.document.to_string()));
    fields
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::rules::builtin;

    fn alert(event: &Value) -> Alert {
        let rules = builtin();
        Alert::new(&rules.rules()[0], event, OffsetDateTime::UNIX_EPOCH)
    }

    fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// journald's rule for field names (see `journal_field_valid` in systemd).
    fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(|c: char| c == '_' || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn fields_describe_the_alert() {
        let args = json!(["dmesg", "-c", "tricky \"arg\"\nnext", "é"]);
        let event = json!({
            "process": {
                "pid": 4242,
                "name": "dmesg",
                "executable": "/usr/bin/dmesg",
                "args": args,
                "parent": {"pid": 77},
            },
            "user": {"id": "0", "name": "root"},
        });
        let alert = alert(&event);
        let fields = journal_fields(&alert);
        let expected = [
            ("PRIORITY", "5"),
            ("SYSLOG_IDENTIFIER", "monitor"),
            ("MESSAGE_ID", "2724808cba5d48b286d20002103df753"),
            ("RULE_ID", "2724808c-ba5d-48b2-86d2-0002103df753"),
            ("RULE_NAME", "Attempt to Clear Kernel Ring Buffer"),
            ("RULE_SEVERITY", "low"),
            ("RULE_RISK_SCORE", "21"),
            ("PROCESS_PID", "4242"),
            ("PROCESS_NAME", "dmesg"),
            ("PROCESS_EXECUTABLE", "/usr/bin/dmesg"),
            ("PROCESS_PARENT_PID", "77"),
            ("USER_ID", "0"),
            ("USER_NAME", "root"),
        ];
        for (name, value) in expected {
            assert_eq!(get(&fields, name), Some(value), "{name}");
        }
        assert_eq!(get(&fields, "MESSAGE"), Some(alert.message().as_str()));
        let sent_args = get(&fields, "PROCESS_ARGS").unwrap();
        assert_eq!(sent_args, r#"["dmesg","-c","tricky \"arg\"\nnext","é"]"#);
        assert_eq!(serde_json::from_str::<Value>(sent_args).unwrap(), args);
        let document: Value = serde_json::from_str(get(&fields, "ALERT_JSON").unwrap()).unwrap();
        assert_eq!(document, alert.document);
    }

    #[test]
    fn names_are_valid_and_message_is_one_line() {
        let event = json!({
            "process": {"pid": 1, "name": "x\ny", "args": ["a\nb", "\r", "\u{2028}"]},
            "user": {"id": "1000"},
        });
        let fields = journal_fields(&alert(&event));
        for (name, _) in &fields {
            assert!(valid_name(name), "{name}");
        }
        let message = get(&fields, "MESSAGE").unwrap();
        assert!(!message.contains(['\n', '\r']), "{message:?}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(!get(&fields, "ALERT_JSON").unwrap().contains('\n'));
        assert_eq!(get(&fields, "USER_NAME"), None);
        assert_eq!(get(&fields, "USER_ID"), Some("1000"));
        assert_eq!(get(&fields, "PROCESS_EXECUTABLE"), None);
    }

    #[test]
    fn names_are_unique() {
        let fields = journal_fields(&alert(&json!({})));
        let mut names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), fields.len());
        assert_eq!(fields.last().map(|(n, _)| n.as_str()), Some("ALERT_JSON"));
    }

    #[test]
    fn priorities_map_to_syslog_levels() {
        assert!(matches!(priority(2), Priority::Critical));
        assert!(matches!(priority(3), Priority::Error));
        assert!(matches!(priority(4), Priority::Warning));
        assert!(matches!(priority(5), Priority::Notice));
    }
}
