//! Building Elastic Common Schema documents from decoded records.
//!
//! The exec event has the shape Elastic's own agent writes for a Linux exec
//! (`event.category: ["process"]`, `event.type: ["start"]`,
//! `event.action: "exec"`), so Elastic's rules and dashboards read it as
//! they read the agent's. Where the agent has a field for something we
//! capture, we use the agent's name for it:
//!
//! - `process.name` is the file name of the executable that ran (not the
//!   15-byte `comm`, which goes to `process.thread.name`);
//! - `process.args` is argv exactly; `process.args_count` is the kernel's
//!   count, also when the captured block was cut;
//! - `process.Ext.command_line_truncated` is set when argv was cut at the
//!   capture limit; `process.Ext.args_invalid_utf8` when some argument was
//!   not UTF-8 and shows U+FFFD in place of its invalid bytes;
//! - `user.id`/`group.id` are the effective ids, `process.real_user.id` and
//!   `process.real_group.id` the real ones, also as Elastic's agent writes
//!   them in `user.Ext.real.id`/`group.Ext.real.id`; ids are strings, as in
//!   ECS.
//!
//! Events say `event.module: "monitor"` and `event.dataset:
//! "monitor.process"`: they come from this tool, not from Elastic's agent.
//!
//! TODO(#4): entity ids, parent details, users' names, containers (they need
//! the process table).

use serde_json::{Map, Value, json};
use time::{OffsetDateTime, UtcOffset};

use crate::host::HostInfo;
use crate::record::{ExecRecord, lossy};

/// ECS version the documents follow.
pub const ECS_VERSION: &str = "8.17.0";

/// Builds ECS documents, numbering them as it goes.
pub struct EventBuilder {
    host: Value,
    id_prefix: String,
    sequence: u64,
}

impl EventBuilder {
    pub fn new(host: &HostInfo) -> Self {
        let started = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self {
            host: host.to_ecs(),
            id_prefix: format!("{started:x}"),
            sequence: 0,
        }
    }

    /// The ECS document for one exec.
    pub fn exec(&mut self, r: &ExecRecord) -> Value {
        self.sequence += 1;
        let mut invalid_utf8 = false;
        let args: Vec<String> = r
            .args
            .iter()
            .map(|a| {
                let (s, replaced) = lossy(a);
                invalid_utf8 |= replaced;
                s.into_owned()
            })
            .collect();
        let text = |bytes: &[u8]| lossy(bytes).0.into_owned();
        let name = text(r.name());
        let executable = r.executable.as_deref().map(text);
        let thread_name = text(&r.comm);

        let mut process = json!({
            "pid": r.pid,
            "name": name,
            "args": args,
            "args_count": r.argc,
            "command_line": args.join(" "),
            "parent": { "pid": r.ppid },
            "thread": { "id": r.tid, "name": thread_name },
            "user": { "id": r.euid.to_string() },
            "group": { "id": r.egid.to_string() },
            "real_user": { "id": r.uid.to_string() },
            "real_group": { "id": r.gid.to_string() },
        });
        if let Some(executable) = executable {
            process["executable"] = json!(executable);
        }
        let mut ext = Map::new();
        ext.insert("command_line_truncated".into(), json!(r.args_truncated));
        if invalid_utf8 {
            ext.insert("args_invalid_utf8".into(), json!(true));
        }
        if r.args_unreadable {
            ext.insert("args_unreadable".into(), json!(true));
        }
        if r.executable_truncated {
            ext.insert("executable_truncated".into(), json!(true));
        }
        process["Ext"] = Value::Object(ext);

        json!({
            "@timestamp": rfc3339(boot_to_wall_ns(r.boot_ns)),
            "ecs": { "version": ECS_VERSION },
            "agent": { "type": "monitor", "version": env!("CARGO_PKG_VERSION") },
            "event": {
                "kind": "event",
                "category": ["process"],
                "type": ["start"],
                "action": "exec",
                "id": format!("{}-{:x}", self.id_prefix, self.sequence),
                "sequence": self.sequence,
                "created": rfc3339(OffsetDateTime::now_utc().unix_timestamp_nanos()),
                "module": "monitor",
                "dataset": "monitor.process",
            },
            "host": self.host,
            "process": process,
            "user": { "id": r.euid.to_string(), "Ext": { "real": { "id": r.uid.to_string() } } },
            "group": { "id": r.egid.to_string(), "Ext": { "real": { "id": r.gid.to_string() } } },
        })
    }
}

/// Converts a `CLOCK_BOOTTIME` reading to nanoseconds since the Unix epoch,
/// using the two clocks' current difference (so a clock step applies from
/// the next event on).
pub fn boot_to_wall_ns(boot_ns: u64) -> i128 {
    use nix::time::{ClockId, clock_gettime};
    let ns = |id| {
        clock_gettime(id)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or_default()
    };
    let offset = ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_BOOTTIME);
    offset + boot_ns as i128
}

/// RFC 3339 in UTC with nanoseconds: `2025-03-20T12:34:56.123456789Z`.
pub fn rfc3339(unix_ns: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(unix_ns)
        .map(rfc3339_nanos)
        .unwrap_or_default()
}

/// [`rfc3339`] for a date-time value.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostInfo {
        HostInfo {
            hostname: "h1".into(),
            id: None,
            architecture: "x86_64".into(),
            os_name: "Debian GNU/Linux".into(),
            os_family: "debian".into(),
            os_platform: "debian".into(),
            os_version: "12".into(),
            os_full: "Debian GNU/Linux 12".into(),
            kernel_release: "6.18.0".into(),
            kernel: "6.18.0 #1 SMP".into(),
        }
    }

    fn dmesg() -> ExecRecord {
        ExecRecord {
            boot_ns: 1_000_000_000,
            pid: 4242,
            tid: 4243,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            comm: b"dmesg".to_vec(),
            executable: Some(b"/usr/bin/dmesg".to_vec()),
            executable_truncated: false,
            filename: b"dmesg".to_vec(),
            args: vec![b"dmesg".to_vec(), b"-c".to_vec()],
            argc: 2,
            args_truncated: false,
            args_unreadable: false,
            argv_size: 9,
        }
    }

    #[test]
    fn exec_event_has_the_agent_shape() {
        let doc = EventBuilder::new(&host()).exec(&dmesg());
        assert_eq!(doc["event"]["kind"], "event");
        assert_eq!(doc["event"]["category"], json!(["process"]));
        assert_eq!(doc["event"]["type"], json!(["start"]));
        assert_eq!(doc["event"]["action"], "exec");
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        assert_eq!(doc["host"]["os"]["type"], "linux");
        let p = &doc["process"];
        assert_eq!(p["pid"], 4242);
        assert_eq!(p["thread"]["id"], 4243);
        assert_eq!(p["parent"]["pid"], 1);
        assert_eq!(p["name"], "dmesg");
        assert_eq!(p["executable"], "/usr/bin/dmesg");
        assert_eq!(p["args"], json!(["dmesg", "-c"]));
        assert_eq!(p["args_count"], 2);
        assert_eq!(p["command_line"], "dmesg -c");
        assert_eq!(p["real_user"]["id"], "1000");
        assert_eq!(doc["user"]["id"], "0");
        assert_eq!(doc["user"]["Ext"]["real"]["id"], "1000");
        assert_eq!(doc["group"]["Ext"]["real"]["id"], "1000");
        assert_eq!(p["Ext"]["command_line_truncated"], false);
        assert!(doc["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn event_ids_are_unique_and_sequenced() {
        let mut b = EventBuilder::new(&host());
        let (a, c) = (b.exec(&dmesg()), b.exec(&dmesg()));
        assert_ne!(a["event"]["id"], c["event"]["id"]);
        assert_eq!(c["event"]["sequence"], 2);
    }

    #[test]
    fn truncation_and_bad_utf8_are_fields_not_text() {
        let mut r = dmesg();
        r.args = vec![b"x".to_vec(), b"a\xffb".to_vec()];
        r.argc = 5;
        r.args_truncated = true;
        let doc = EventBuilder::new(&host()).exec(&r);
        assert_eq!(doc["process"]["args"], json!(["x", "a\u{fffd}b"]));
        assert_eq!(doc["process"]["args_count"], 5);
        assert_eq!(doc["process"]["Ext"]["command_line_truncated"], true);
        assert_eq!(doc["process"]["Ext"]["args_invalid_utf8"], true);
    }

    #[test]
    fn only_arguments_set_the_invalid_utf8_flag() {
        let mut r = dmesg();
        r.comm = b"\xc3".to_vec();
        r.executable = Some(b"/tmp/\xff".to_vec());
        let doc = EventBuilder::new(&host()).exec(&r);
        assert_eq!(doc["process"]["executable"], "/tmp/\u{fffd}");
        assert!(doc["process"]["Ext"].get("args_invalid_utf8").is_none());
    }

    #[test]
    fn boot_time_maps_to_now() {
        use nix::time::{ClockId, clock_gettime};
        let boot = clock_gettime(ClockId::CLOCK_BOOTTIME).expect("boottime");
        let boot_ns = boot.tv_sec() as u64 * 1_000_000_000 + boot.tv_nsec() as u64;
        let wall = boot_to_wall_ns(boot_ns);
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        assert!((now - wall).abs() < 5_000_000_000, "{now} vs {wall}");
    }
}
