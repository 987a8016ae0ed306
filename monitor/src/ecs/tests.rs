//! Tests of the documents: shapes, fields from the process table, text
//! handling, timestamps.

use serde_json::json;

use super::*;
use crate::process::scan::ScannedProcess;
use crate::record::ExecRecord;

const TICK: u64 = 10_000_000;
const DOCKER_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

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

fn no_proc(_: u32, _: usize) -> Option<ScannedProcess> {
    None
}

/// A table holding an interactive root shell, pid 77, in a container.
fn table() -> ProcessTable {
    let mut t = ProcessTable::with_reader(EntityIds::new("b", 100), 64, no_proc);
    let shell = ScannedProcess {
        pid: 77,
        ppid: 1,
        start_ticks: 50,
        comm: b"bash".to_vec(),
        executable: Some(b"/usr/bin/bash".to_vec()),
        args: vec![b"bash".to_vec(), b"-i".to_vec()],
        args_count: 2,
        args_truncated: false,
        working_directory: Some(b"/root".to_vec()),
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
        sid: 77,
        pgid: 77,
        tty: Some((136, 3)),
        vpid: 1,
        cgroup: Some(format!("/system.slice/docker-{DOCKER_ID}.scope")),
        kernel_thread: false,
    };
    t.seed(&[shell], 60 * TICK);
    t
}

fn dmesg() -> ExecRecord {
    ExecRecord {
        boot_ns: 70 * TICK,
        start_ns: 65 * TICK,
        parent_start_ns: 50 * TICK,
        pid: 4242,
        tid: 4243,
        ppid: 77,
        uid: 1000,
        gid: 1000,
        euid: 0,
        egid: 0,
        sid: 77,
        pgid: 4242,
        vpid: 12,
        tty: Some((136, 3)),
        comm: b"dmesg".to_vec(),
        executable: Some(b"/usr/bin/dmesg".to_vec()),
        executable_truncated: false,
        working_directory: Some(b"/root".to_vec()),
        cgroup: format!("/system.slice/docker-{DOCKER_ID}.scope").into_bytes(),
        filename: b"dmesg".to_vec(),
        args: vec![b"dmesg".to_vec(), b"-c".to_vec()],
        argc: 2,
        args_truncated: false,
        args_unreadable: false,
        argv_size: 9,
    }
}

fn exec_event(r: &ExecRecord) -> Value {
    EventBuilder::new(&host()).exec(&mut table(), r)
}

#[test]
fn exec_event_has_the_agent_shape() {
    let doc = exec_event(&dmesg());
    assert_eq!(doc["event"]["kind"], "event");
    assert_eq!(doc["event"]["category"], json!(["process"]));
    assert_eq!(doc["event"]["type"], json!(["start"]));
    assert_eq!(doc["event"]["action"], "exec");
    assert_eq!(doc["ecs"]["version"], ECS_VERSION);
    assert_eq!(doc["host"]["os"]["type"], "linux");
    let p = &doc["process"];
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["vpid"], 12);
    assert_eq!(p["thread"]["id"], 4243);
    assert_eq!(p["name"], "dmesg");
    assert_eq!(p["executable"], "/usr/bin/dmesg");
    assert_eq!(p["args"], json!(["dmesg", "-c"]));
    assert_eq!(p["args_count"], 2);
    assert_eq!(p["command_line"], "dmesg -c");
    assert_eq!(p["working_directory"], "/root");
    assert_eq!(p["real_user"]["id"], "1000");
    assert_eq!(doc["user"]["id"], "0");
    assert_eq!(doc["user"]["name"], "root");
    assert_eq!(doc["user"]["Ext"]["real"]["id"], "1000");
    assert_eq!(doc["group"]["Ext"]["real"]["id"], "1000");
    assert_eq!(p["Ext"]["command_line_truncated"], false);
    assert!(doc["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(p["start"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn exec_event_names_its_parent_leaders_terminal_and_container() {
    let ids = EntityIds::new("b", 100);
    let doc = exec_event(&dmesg());
    let p = &doc["process"];
    assert_eq!(p["entity_id"], ids.id(4242, 65 * TICK));
    assert_eq!(p["parent"]["pid"], 77);
    assert_eq!(p["parent"]["entity_id"], ids.id(77, 50 * TICK));
    assert_eq!(p["parent"]["name"], "bash");
    assert_eq!(p["parent"]["args"], json!(["bash", "-i"]));
    assert_eq!(p["parent"]["command_line"], "bash -i");
    assert_eq!(p["session_leader"]["pid"], 77);
    assert_eq!(p["session_leader"]["entity_id"], ids.id(77, 50 * TICK));
    assert_eq!(p["session_leader"]["same_as_process"], false);
    assert_eq!(p["group_leader"]["pid"], 4242);
    assert_eq!(p["group_leader"]["same_as_process"], true);
    assert_eq!(p["interactive"], true);
    assert_eq!(p["tty"]["char_device"], json!({ "major": 136, "minor": 3 }));
    assert_eq!(doc["container"]["id"], DOCKER_ID);
    assert_eq!(doc["container"]["runtime"], "docker");
    assert!(p.get("previous").is_none(), "a first exec has no previous");
}

#[test]
fn an_unknown_parent_still_has_its_entity_id() {
    let mut r = dmesg();
    r.ppid = 5;
    r.parent_start_ns = 3 * TICK;
    let doc = exec_event(&r);
    let parent = &doc["process"]["parent"];
    assert_eq!(parent["pid"], 5);
    assert_eq!(
        parent["entity_id"],
        EntityIds::new("b", 100).id(5, 3 * TICK)
    );
    assert!(parent.get("name").is_none());
}

#[test]
fn end_and_already_running_events() {
    let t = table();
    let ctx = t.context(77).expect("shell");
    let mut b = EventBuilder::new(&host());
    let running = b.process_event(Action::AlreadyRunning, &ctx, t.ids());
    assert_eq!(running["event"]["type"], json!(["info"]));
    assert_eq!(running["event"]["action"], "already_running");
    let end = Action::End {
        boot_ns: 80 * TICK,
        wait_status: 2 << 8,
    };
    let doc = b.process_event(end, &ctx, t.ids());
    assert_eq!(doc["event"]["type"], json!(["end"]));
    assert_eq!(doc["process"]["exit_code"], 2);
    assert!(doc["process"]["end"].is_string());
    assert_eq!(process::exit_code(9), 137, "killed by SIGKILL");
}

#[test]
fn event_ids_are_unique_and_sequenced() {
    let mut t = table();
    let mut b = EventBuilder::new(&host());
    let a = b.exec(&mut t, &dmesg());
    let c = b.exec(&mut t, &dmesg());
    assert_ne!(a["event"]["id"], c["event"]["id"]);
    assert_eq!(c["event"]["sequence"], 2);
}

#[test]
fn truncation_and_bad_utf8_are_fields_not_text() {
    let mut r = dmesg();
    r.args = vec![b"x".to_vec(), b"a\xffb".to_vec()];
    r.argc = 5;
    r.args_truncated = true;
    let doc = exec_event(&r);
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
    let doc = exec_event(&r);
    assert_eq!(doc["process"]["executable"], "/tmp/\u{fffd}");
    assert!(doc["process"]["Ext"].get("args_invalid_utf8").is_none());
}

#[test]
fn one_process_has_one_start_time_in_every_event() {
    let mut t = table();
    let mut b = EventBuilder::new(&host());
    let starts: Vec<Value> = (0..50)
        .map(|_| b.exec(&mut t, &dmesg()))
        .flat_map(|doc| {
            [
                doc["process"]["parent"]["start"].clone(),
                doc["process"]["session_leader"]["start"].clone(),
            ]
        })
        .collect();
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}");
}

#[test]
fn boot_time_maps_to_now() {
    let wall = BootClock::new().wall_ns(boot_clock_ns());
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
    assert!((now - wall).abs() < 5_000_000_000, "{now} vs {wall}");
}
