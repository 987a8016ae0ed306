//! The process fields of an event: the process itself, its parent, its
//! session and group leaders, its user and group, and its container.
//!
//! Names follow Elastic's agent for Linux process events:
//!
//! - `process.name` is the file name of the executable that ran (not the
//!   15-byte `comm`, which goes to `process.thread.name`);
//! - `process.args` is argv exactly; `process.args_count` is the kernel's
//!   count, also when the captured block was cut;
//! - `process.entity_id` identifies the process for the host and boot (see
//!   `process::entity`); `process.parent.entity_id`,
//!   `process.session_leader.entity_id` and `process.group_leader.entity_id`
//!   hold the same value as those processes' own events;
//! - `process.vpid` is the pid inside the process's own pid namespace (an
//!   ECS field); `process.pid` is always the host's;
//! - `process.interactive` is true when the process has a controlling
//!   terminal, whose numbers are `process.tty.char_device.{major,minor}`;
//! - `process.previous` lists what the process ran before, oldest first,
//!   starting with the image it was forked with, once it has exec'd twice;
//! - `user.id`/`group.id` are the effective ids, `process.real_user.id` and
//!   `process.real_group.id` the real ones, also as Elastic's agent writes
//!   them in `user.Ext.real.id`/`group.Ext.real.id`; ids are strings, as in
//!   ECS, and each has its `name` from the host's user database when it has
//!   one;
//! - `container.id` (and `container.runtime` when the cgroup path tells)
//!   when the process runs in a container;
//! - `process.Ext.command_line_truncated` is set when argv was cut at the
//!   capture limit; `process.Ext.args_invalid_utf8` when some argument was
//!   not UTF-8 and shows U+FFFD in place of its invalid bytes.

use serde_json::{Map, Value, json};

use super::{Action, BootClock};
use crate::process::{Context, EntityIds, NameCache, Process};

/// The process fields of one event, ready to be put into a document.
pub struct Fields {
    process: Map<String, Value>,
    user: Value,
    group: Value,
    container: Option<Value>,
}

impl Fields {
    pub fn new(
        ctx: &Context<'_>,
        ids: &EntityIds,
        names: &mut NameCache,
        clock: &BootClock,
        action: Action,
    ) -> Self {
        let p = ctx.process;
        let mut process = summary(p, clock);
        if p.vpid != 0 {
            process.insert("vpid".into(), p.vpid.into());
        }
        let thread_id = match action {
            Action::Exec { thread_id, .. } | Action::Syslog { thread_id, .. } => thread_id,
            _ => p.pid,
        };
        process.insert(
            "thread".into(),
            json!({ "id": thread_id, "name": &*p.thread_name }),
        );
        // Pid 0 is no process: the parent of init and of kthreadd.
        if p.ppid != 0 {
            process.insert("parent".into(), parent(ctx, ids, clock));
        }
        for (key, leader, pid) in [
            ("session_leader", ctx.session_leader, p.sid),
            ("group_leader", ctx.group_leader, p.pgid),
        ] {
            if pid != 0 {
                process.insert(key.into(), leader_fields(p, leader, pid, clock));
            }
        }
        let user = id_and_name(p.euid, names.user(p.euid));
        let group = id_and_name(p.egid, names.group(p.egid));
        let real_user = id_and_name(p.uid, names.user(p.uid));
        let real_group = id_and_name(p.gid, names.group(p.gid));
        process.insert("user".into(), user.clone());
        process.insert("group".into(), group.clone());
        process.insert("real_user".into(), real_user.clone());
        process.insert("real_group".into(), real_group.clone());
        if p.execs > 1 && !p.previous.is_empty() {
            let previous: Vec<Value> = p
                .previous
                .iter()
                .map(|image| {
                    let mut fields = Map::new();
                    if let Some(executable) = &image.executable {
                        fields.insert("executable".into(), executable.as_str().into());
                    }
                    fields.insert("args".into(), json!(image.args));
                    fields.insert("args_count".into(), image.args_count.into());
                    Value::Object(fields)
                })
                .collect();
            process.insert("previous".into(), previous.into());
        }
        if let Action::End {
            boot_ns,
            wait_status,
        } = action
        {
            process.insert("end".into(), clock.rfc3339(boot_ns).into());
            process.insert("exit_code".into(), exit_code(wait_status).into());
        }
        let mut ext = ext(p);
        if let Action::Syslog { action, result, .. } = action {
            ext["api"] = json!({
                "name": "syslog",
                "parameters": { "action": action },
                "return_value": result,
            });
        }
        process.insert("Ext".into(), ext);

        Self {
            process,
            user: with_real(user, real_user),
            group: with_real(group, real_group),
            container: p.container.as_ref().map(|c| {
                let mut fields = json!({ "id": c.id });
                if let Some(runtime) = c.runtime {
                    fields["runtime"] = runtime.into();
                }
                fields
            }),
        }
    }

    /// Adds the fields to an event document.
    pub fn into_document(self, doc: &mut Value) {
        doc["process"] = Value::Object(self.process);
        doc["user"] = self.user;
        doc["group"] = self.group;
        if let Some(container) = self.container {
            doc["container"] = container;
        }
    }
}

/// The fields every description of a process has: the process's own, its
/// parent's and the leaders' when they are known.
fn summary(p: &Process, clock: &BootClock) -> Map<String, Value> {
    let image = &p.image;
    let mut fields = Map::new();
    fields.insert("pid".into(), p.pid.into());
    fields.insert("entity_id".into(), (*p.entity_id).into());
    if !image.name.is_empty() {
        fields.insert("name".into(), image.name.as_str().into());
    }
    if let Some(executable) = &image.executable {
        fields.insert("executable".into(), executable.as_str().into());
    }
    fields.insert("args".into(), json!(image.args));
    fields.insert("args_count".into(), image.args_count.into());
    fields.insert("command_line".into(), image.command_line().into());
    fields.insert("start".into(), clock.rfc3339(p.start_ns).into());
    if let Some(directory) = &p.working_directory {
        fields.insert("working_directory".into(), (**directory).into());
    }
    fields.insert("interactive".into(), p.tty.is_some().into());
    if let Some((major, minor)) = p.tty {
        fields.insert(
            "tty".into(),
            json!({ "char_device": { "major": major, "minor": minor } }),
        );
    }
    fields
}

/// `process.parent`: the parent's summary when the table has it, else its
/// pid and (derived) entity id.
fn parent(ctx: &Context<'_>, ids: &EntityIds, clock: &BootClock) -> Value {
    let p = ctx.process;
    match ctx.parent {
        Some(parent) => {
            let mut fields = summary(parent, clock);
            fields.insert(
                "Ext".into(),
                json!({ "command_line_truncated": parent.image.args_truncated }),
            );
            Value::Object(fields)
        }
        None if p.parent_start_ns != 0 => json!({
            "pid": p.ppid,
            "entity_id": ids.id(p.ppid, p.parent_start_ns),
        }),
        None => json!({ "pid": p.ppid }),
    }
}

/// `process.session_leader` or `process.group_leader`.
fn leader_fields(p: &Process, leader: Option<&Process>, pid: u32, clock: &BootClock) -> Value {
    match leader {
        Some(leader) => {
            let mut fields = Map::new();
            fields.insert("pid".into(), leader.pid.into());
            fields.insert("entity_id".into(), (*leader.entity_id).into());
            if !leader.image.name.is_empty() {
                fields.insert("name".into(), leader.image.name.as_str().into());
            }
            if let Some(executable) = &leader.image.executable {
                fields.insert("executable".into(), executable.as_str().into());
            }
            fields.insert("start".into(), clock.rfc3339(leader.start_ns).into());
            fields.insert("same_as_process".into(), (leader.pid == p.pid).into());
            Value::Object(fields)
        }
        None => json!({ "pid": pid, "same_as_process": pid == p.pid }),
    }
}

fn ext(p: &Process) -> Value {
    let image = &p.image;
    let mut ext = Map::new();
    ext.insert("command_line_truncated".into(), image.args_truncated.into());
    if image.args_invalid_utf8 {
        ext.insert("args_invalid_utf8".into(), true.into());
    }
    if image.args_unreadable {
        ext.insert("args_unreadable".into(), true.into());
    }
    if image.executable_truncated {
        ext.insert("executable_truncated".into(), true.into());
    }
    Value::Object(ext)
}

fn id_and_name(id: u32, name: Option<std::sync::Arc<str>>) -> Value {
    match name {
        Some(name) => json!({ "id": id.to_string(), "name": &*name }),
        None => json!({ "id": id.to_string() }),
    }
}

/// The top-level `user` or `group`: the effective id and name, with the
/// real ones under `Ext.real` as Elastic's agent writes them.
fn with_real(effective: Value, real: Value) -> Value {
    let mut fields = effective;
    fields["Ext"] = json!({ "real": real });
    fields
}

/// ECS `process.exit_code` from a wait status: the exit status, or 128 plus
/// the signal number for a process killed by a signal, as shells report it.
pub fn exit_code(wait_status: u32) -> i64 {
    let signal = wait_status & 0x7f;
    if signal == 0 {
        i64::from((wait_status >> 8) & 0xff)
    } else {
        128 + i64::from(signal)
    }
}
