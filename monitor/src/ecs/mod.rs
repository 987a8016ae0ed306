//! Building Elastic Common Schema documents from the process table.
//!
//! Process events have the shape Elastic's own agent writes for Linux
//! (`event.category: ["process"]`), so Elastic's rules and dashboards read
//! them as they read the agent's:
//!
//! | `event.action` | `event.type` | when |
//! |---|---|---|
//! | `exec` | `["start"]` | a process execs a new program |
//! | `fork` | `["start"]` | a process is created (a copy of its creator) |
//! | `end` | `["end"]` | a process ends; with `process.end` and `process.exit_code` |
//! | `already_running` | `["info"]` | at start, once per process already running |
//!
//! A `syslog(2)` call that clears the kernel ring buffer, or tries to, is an
//! event of category `api` (ECS's category for system calls), with the
//! calling process's fields:
//!
//! | `event.action` | `event.type` | when |
//! |---|---|---|
//! | `syslog_clear` | `["deletion"]` | action 5, `SYSLOG_ACTION_CLEAR` |
//! | `syslog_read_clear` | `["access", "deletion"]` | action 4, `SYSLOG_ACTION_READ_CLEAR` |
//!
//! `event.outcome` is `success` or `failure`; a failure adds `denied` to
//! `event.type` when the kernel refused the privilege (`EPERM`), and gives
//! the error in `error.code` (`EPERM`) and `error.message`. The call itself
//! is in `process.Ext.api`: `name: "syslog"`, `parameters.action`, and
//! `return_value`.
//!
//! Where the agent has a field for something we capture, we use the agent's
//! name for it (`process.rs` lists them). Events say `event.module:
//! "monitor"` and `event.dataset: "monitor.process"`: they come from this
//! tool, not from Elastic's agent.

mod process;

use monitor_common::syslog_action;
use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset};

use crate::host::HostInfo;
use crate::process::{Context, EntityIds, NameCache, ProcessTable};
use crate::record::ExecRecord;

/// ECS version the documents follow.
pub const ECS_VERSION: &str = "8.17.0";

/// What happened to the process an event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An exec, by the thread `thread_id` (the pid unless a secondary thread
    /// exec'd), at boot clock `boot_ns`.
    Exec { thread_id: u32, boot_ns: u64 },
    /// A fork at boot clock `boot_ns`.
    Fork { boot_ns: u64 },
    /// The end of the process, with its wait status.
    End { boot_ns: u64, wait_status: u32 },
    /// Found running when the daemon started.
    AlreadyRunning,
    /// A `syslog(2)` call that clears the kernel ring buffer, by the thread
    /// `thread_id`, with its action and result.
    Syslog {
        thread_id: u32,
        boot_ns: u64,
        action: i32,
        result: i32,
    },
}

impl Action {
    /// The `event.action` value.
    pub fn name(self) -> &'static str {
        match self {
            Action::Exec { .. } => "exec",
            Action::Fork { .. } => "fork",
            Action::End { .. } => "end",
            Action::AlreadyRunning => "already_running",
            Action::Syslog { action, .. } if action == syslog_action::READ_CLEAR => {
                "syslog_read_clear"
            }
            Action::Syslog { .. } => "syslog_clear",
        }
    }

    fn category(self) -> &'static str {
        match self {
            Action::Syslog { .. } => "api",
            _ => "process",
        }
    }

    fn event_types(self) -> Vec<&'static str> {
        match self {
            Action::Exec { .. } | Action::Fork { .. } => vec!["start"],
            Action::End { .. } => vec!["end"],
            Action::AlreadyRunning => vec!["info"],
            Action::Syslog { action, result, .. } => {
                let mut types = vec![];
                if action == syslog_action::READ_CLEAR {
                    types.push("access");
                }
                types.push("deletion");
                if result == -nix::libc::EPERM {
                    types.push("denied");
                }
                types
            }
        }
    }

    /// When it happened, in boot clock nanoseconds; `None` for "now".
    fn boot_ns(self) -> Option<u64> {
        match self {
            Action::Exec { boot_ns, .. }
            | Action::Fork { boot_ns }
            | Action::End { boot_ns, .. }
            | Action::Syslog { boot_ns, .. } => Some(boot_ns),
            Action::AlreadyRunning => None,
        }
    }
}

/// Builds ECS documents, numbering them as it goes.
pub struct EventBuilder {
    host: Value,
    id_prefix: String,
    sequence: u64,
    names: NameCache,
    clock: BootClock,
}

impl EventBuilder {
    pub fn new(host: &HostInfo) -> Self {
        let started = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self {
            host: host.to_ecs(),
            id_prefix: format!("{started:x}"),
            sequence: 0,
            names: NameCache::new(),
            clock: BootClock::new(),
        }
    }

    /// Follows an exec in `table` and returns its event.
    pub fn exec(&mut self, table: &mut ProcessTable, r: &ExecRecord) -> Value {
        let kept = table.exec(r).is_some();
        table.resolve_parent(r.pid);
        let action = Action::Exec {
            thread_id: r.tid,
            boot_ns: r.boot_ns,
        };
        // A full table keeps no entry for a new process; its event goes out
        // all the same (and the table counts it).
        let untracked = (!kept).then(|| table.untracked(r));
        let ctx = match &untracked {
            Some(p) => table.context_of(p),
            None => table.context(r.pid).expect("kept above"),
        };
        self.process_event(action, &ctx, table.ids())
    }

    /// The ECS document for `action` on the process of `ctx`.
    pub fn process_event(&mut self, action: Action, ctx: &Context<'_>, ids: &EntityIds) -> Value {
        self.sequence += 1;
        self.clock.refresh();
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let at = action.boot_ns().map_or(now, |ns| self.clock.wall_ns(ns));
        let fields = process::Fields::new(ctx, ids, &mut self.names, &self.clock, action);
        let mut doc = json!({
            "@timestamp": rfc3339(at),
            "ecs": { "version": ECS_VERSION },
            "agent": { "type": "monitor", "version": env!("CARGO_PKG_VERSION") },
            "event": {
                "kind": "event",
                "category": [action.category()],
                "type": action.event_types(),
                "action": action.name(),
                "id": format!("{}-{:x}", self.id_prefix, self.sequence),
                "sequence": self.sequence,
                "created": rfc3339(now),
                "module": "monitor",
                "dataset": format!("monitor.{}", action.category()),
            },
            "host": self.host,
        });
        fields.into_document(&mut doc);
        if let Action::Syslog { result, .. } = action {
            outcome(&mut doc, result);
        }
        doc
    }
}

/// `event.outcome`, and `error.*` for a failed call.
fn outcome(doc: &mut Value, result: i32) {
    if result >= 0 {
        doc["event"]["outcome"] = "success".into();
        return;
    }
    doc["event"]["outcome"] = "failure".into();
    let errno = nix::errno::Errno::from_raw(-result);
    doc["error"] = json!({
        "code": format!("{errno:?}"),
        "message": errno.desc(),
    });
}

/// The boot clock now, in nanoseconds: the clock of the kernel's records.
pub fn boot_clock_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or_default()
}

/// Converts `CLOCK_BOOTTIME` readings to wall-clock time.
///
/// The difference between the two clocks is read once and kept while it
/// stays within a millisecond of the current one: reading it anew for every
/// conversion would give the same instant (a process's start, say) a few
/// nanoseconds' jitter from one event to the next, so the same process
/// would show different `process.start` values. A real clock step (NTP,
/// suspend) moves it past the millisecond and applies from then on.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    offset: i128,
}

impl BootClock {
    /// Largest drift kept before the offset is read anew.
    const TOLERANCE_NS: i128 = 1_000_000;

    pub fn new() -> Self {
        Self {
            offset: current_offset(),
        }
    }

    /// Rereads the clocks' difference; keeps the old one unless it moved
    /// by more than a millisecond.
    pub fn refresh(&mut self) {
        let now = current_offset();
        if (now - self.offset).abs() > Self::TOLERANCE_NS {
            self.offset = now;
        }
    }

    /// Nanoseconds since the Unix epoch of a boot clock time.
    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        self.offset + boot_ns as i128
    }

    /// RFC 3339 text of a boot clock time.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        rfc3339(self.wall_ns(boot_ns))
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `CLOCK_REALTIME` minus `CLOCK_BOOTTIME`, now.
fn current_offset() -> i128 {
    use nix::time::{ClockId, clock_gettime};
    let ns = |id| {
        clock_gettime(id)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or_default()
    };
    ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_BOOTTIME)
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
mod tests;
