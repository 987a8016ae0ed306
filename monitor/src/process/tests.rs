//! Tests of the process table against hand-made records, without the
//! kernel: lifecycles, pid reuse, lookups in `/proc`, leaders, limits.

use monitor_common::{ExitRecord, ForkRecord, kind};

use super::scan::ScannedProcess;
use super::{EntityIds, ProcessTable};
use crate::record::ExecRecord;

const TICK: u64 = 10_000_000;

fn ids() -> EntityIds {
    EntityIds::new("test-boot", 100)
}

fn nothing_in_proc(_: u32, _: usize) -> Option<ScannedProcess> {
    None
}

fn table() -> ProcessTable {
    ProcessTable::with_reader(ids(), 1024, nothing_in_proc)
}

fn scanned(pid: u32, ppid: u32, start_ticks: u64, exe: &str) -> ScannedProcess {
    ScannedProcess {
        pid,
        ppid,
        start_ticks,
        comm: exe.rsplit('/').next().unwrap().as_bytes().to_vec(),
        executable: Some(exe.as_bytes().to_vec()),
        args: vec![exe.as_bytes().to_vec()],
        args_count: 1,
        args_truncated: false,
        working_directory: Some(b"/".to_vec()),
        uid: 1000,
        euid: 1000,
        gid: 1000,
        egid: 1000,
        sid: pid,
        pgid: pid,
        tty: Some((136, 0)),
        vpid: pid,
        cgroup: Some("/user.slice".into()),
        kernel_thread: false,
    }
}

fn fork(child: u32, child_start: u64, parent: u32, parent_start: u64, at: u64) -> ForkRecord {
    ForkRecord {
        kind: kind::FORK,
        boot_ns: at,
        child_start_ns: child_start,
        parent_start_ns: parent_start,
        creator_start_ns: parent_start,
        child_tgid: child,
        parent_tgid: parent,
        creator_tgid: parent,
        child_vpid: child,
        ..ForkRecord::default()
    }
}

fn exec(pid: u32, start: u64, ppid: u32, parent_start: u64, exe: &str, at: u64) -> ExecRecord {
    let args: Vec<Vec<u8>> = exe.split(' ').map(|a| a.as_bytes().to_vec()).collect();
    ExecRecord {
        boot_ns: at,
        start_ns: start,
        parent_start_ns: parent_start,
        pid,
        tid: pid,
        ppid,
        uid: 0,
        gid: 0,
        euid: 0,
        egid: 0,
        sid: 100,
        pgid: pid,
        vpid: pid,
        tty: Some((136, 0)),
        comm: b"x".to_vec(),
        executable: Some(args[0].clone()),
        executable_truncated: false,
        working_directory: Some(b"/tmp".to_vec()),
        cgroup: b"/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope".to_vec(),
        filename: args[0].clone(),
        argc: args.len() as u32,
        args,
        args_truncated: false,
        args_unreadable: false,
        argv_size: 0,
    }
}

fn exit(pid: u32, start: u64) -> ExitRecord {
    ExitRecord {
        kind: kind::EXIT,
        start_ns: start,
        tgid: pid,
        ..ExitRecord::default()
    }
}

/// A shell (pid 100) found at start, as most tests need a parent.
fn with_shell() -> ProcessTable {
    let mut t = table();
    t.seed(&[scanned(100, 1, 50, "/usr/bin/bash")], 60 * TICK);
    t
}

#[test]
fn a_forked_child_is_a_copy_of_its_creator_with_its_own_identity() {
    let mut t = with_shell();
    let child = t
        .fork(&fork(200, 70 * TICK, 100, 50 * TICK, 70 * TICK))
        .unwrap()
        .clone();
    let shell = t.get(100, 50 * TICK).unwrap();
    assert_eq!(child.image, shell.image);
    assert_eq!(child.ppid, 100);
    assert_ne!(child.entity_id, shell.entity_id);
    assert_eq!(&*child.entity_id, ids().id(200, 70 * TICK));
    assert!(child.previous.is_empty() && child.execs == 0);
    let ctx = t.context(200).unwrap();
    assert_eq!(ctx.parent.unwrap().entity_id, shell.entity_id);
}

#[test]
fn execs_replace_the_image_and_keep_the_earlier_ones() {
    let mut t = with_shell();
    let start = 70 * TICK;
    t.fork(&fork(200, start, 100, 50 * TICK, start));
    let first = t
        .exec(&exec(
            200,
            start,
            100,
            50 * TICK,
            "/usr/bin/bash -c x",
            start + 1,
        ))
        .unwrap();
    assert_eq!(first.execs, 1);
    assert_eq!(first.image.name, "bash");
    t.exec(&exec(
        200,
        start,
        100,
        50 * TICK,
        "/usr/bin/env dmesg",
        start + 2,
    ));
    let third = t
        .exec(&exec(
            200,
            start,
            100,
            50 * TICK,
            "/usr/bin/dmesg -c",
            start + 3,
        ))
        .unwrap();
    assert_eq!(third.execs, 3);
    assert_eq!(third.image.args, ["/usr/bin/dmesg", "-c"]);
    let earlier: Vec<&str> = third
        .previous
        .iter()
        .map(|i| i.executable.as_deref().unwrap())
        .collect();
    // The fork image first, then each exec before this one.
    assert_eq!(earlier, ["/usr/bin/bash", "/usr/bin/bash", "/usr/bin/env"]);
    assert_eq!(third.working_directory.as_deref(), Some("/tmp"));
    assert_eq!(third.container.as_ref().unwrap().runtime, Some("docker"));
}

#[test]
fn a_reused_pid_never_inherits_the_dead_process() {
    let mut t = with_shell();
    t.fork(&fork(200, 70 * TICK, 100, 50 * TICK, 70 * TICK));
    t.exec(&exec(
        200,
        70 * TICK,
        100,
        50 * TICK,
        "/usr/bin/sleep 1",
        71 * TICK,
    ));
    // An exit with another start time is not this process's.
    assert!(t.exit(&exit(200, 90 * TICK)).is_none());
    assert!(t.exit(&exit(200, 70 * TICK)).is_some());
    assert!(t.get(200, 70 * TICK).is_none());
    // Pid 200 again, a new process whose fork record was lost.
    let p = t
        .exec(&exec(
            200,
            95 * TICK,
            100,
            50 * TICK,
            "/usr/bin/id",
            95 * TICK,
        ))
        .unwrap();
    assert_eq!(p.execs, 1);
    assert!(p.previous.is_empty());
    assert_eq!(&*p.entity_id, ids().id(200, 95 * TICK));
}

#[test]
fn a_record_for_a_stale_entry_replaces_it() {
    let mut t = with_shell();
    t.fork(&fork(200, 70 * TICK, 100, 50 * TICK, 70 * TICK));
    // Its exit was lost; a new process got pid 200.
    let p = t
        .fork(&fork(200, 80 * TICK, 100, 50 * TICK, 80 * TICK))
        .unwrap();
    assert_eq!(p.start_ns, 80 * TICK);
    assert_eq!(t.len(), 2);
}

#[test]
fn a_missing_process_is_read_from_proc_only_with_the_same_start() {
    fn proc_has_300(pid: u32, _: usize) -> Option<ScannedProcess> {
        (pid == 300).then(|| scanned(300, 1, 40, "/usr/sbin/sshd"))
    }
    let mut t = ProcessTable::with_reader(ids(), 1024, proc_has_300);
    assert!(t.lookup(300, 40 * TICK + 5).is_some());
    assert_eq!(t.stats().read_from_proc, 1);
    let mut t = ProcessTable::with_reader(ids(), 1024, proc_has_300);
    assert!(
        t.lookup(300, 41 * TICK).is_none(),
        "another process had that pid"
    );
    assert_eq!(t.stats().unknown, 1);
}

#[test]
fn seeding_orders_parents_first_and_finds_leaders() {
    let mut t = table();
    let order = t.seed(
        &[
            scanned(300, 200, 90, "/usr/bin/vim"),
            scanned(200, 1, 80, "/usr/bin/bash"),
            scanned(1, 0, 1, "/sbin/init"),
        ],
        100 * TICK,
    );
    assert_eq!(order, [1, 200, 300]);
    let mut vim = scanned(300, 200, 90, "/usr/bin/vim");
    vim.sid = 200;
    t.seed(&[vim], 100 * TICK);
    let ctx = t.context(300).unwrap();
    assert_eq!(ctx.session_leader.unwrap().pid, 200);
    assert_eq!(ctx.group_leader.unwrap().pid, 300);
    assert_eq!(ctx.process.container, None);
}

#[test]
fn an_exec_the_scan_already_saw_adds_no_previous_image() {
    let mut t = table();
    t.seed(&[scanned(200, 1, 80, "/usr/bin/dmesg")], 100 * TICK);
    // The exec happened before the scan read the process.
    let p = t
        .exec(&exec(200, 80 * TICK, 1, 0, "/usr/bin/dmesg", 99 * TICK))
        .unwrap();
    assert!(p.previous.is_empty());
    let p = t
        .exec(&exec(200, 80 * TICK, 1, 0, "/usr/bin/true", 101 * TICK))
        .unwrap();
    assert_eq!(p.previous.len(), 1);
}

#[test]
fn a_full_table_keeps_what_it_has_and_counts_the_rest() {
    // Two live processes (this one and pid 1, with their real start times)
    // fill the table, and the sweep a full table runs cannot free them.
    let mut t = ProcessTable::with_reader(ids(), 2, nothing_in_proc);
    t.seed(&[scanned(std::process::id(), 1, own_start(), "/x")], 0);
    t.seed(&[scanned(1, 0, own_ticks(1), "/init")], 0);
    assert_eq!(t.len(), 2);
    t.fork(&fork(
        4_000_000,
        5,
        std::process::id(),
        own_start() * TICK,
        5,
    ));
    assert_eq!(t.len(), 2);
    assert_eq!(t.stats().dropped_full, 1);
}

fn own_start() -> u64 {
    own_ticks(std::process::id())
}

fn own_ticks(pid: u32) -> u64 {
    super::scan::start_ticks(pid).expect("a live process")
}

#[test]
fn earlier_images_are_bounded_in_number_and_size() {
    let mut t = with_shell();
    let start = 70 * TICK;
    t.fork(&fork(200, start, 100, 50 * TICK, start));
    let long = format!("/usr/bin/env {}", "é".repeat(2000));
    for i in 1..=10 {
        t.exec(&exec(200, start, 100, 50 * TICK, &long, start + i));
    }
    let p = t.get(200, start).unwrap();
    assert_eq!(p.previous.len(), 4);
    for image in &p.previous {
        let bytes: usize = image.args.iter().map(String::len).sum();
        assert!(bytes <= 1024, "{bytes}");
        assert!(image.args_truncated);
        assert_eq!(image.args_count, 2, "the true count stays");
    }
    assert_eq!(p.image.args[1].len(), 4000, "the current image is whole");
}

#[test]
fn a_parent_listed_after_its_child_is_still_its_parent() {
    // After the pids wrap, a shell with pid 25050 starts a child with pid
    // 5003; /proc lists the child first.
    let mut t = table();
    t.seed(
        &[
            scanned(5003, 25050, 900, "/usr/bin/sleep"),
            scanned(25050, 1, 800, "/usr/bin/bash"),
        ],
        1000 * TICK,
    );
    let ctx = t.context(5003).unwrap();
    let parent = ctx.parent.expect("the parent is linked");
    assert_eq!(parent.pid, 25050);
    assert_eq!(ctx.process.parent_start_ns, 800 * TICK);
}

#[test]
fn a_full_table_still_describes_a_new_process() {
    let mut t = ProcessTable::with_reader(ids(), 2, nothing_in_proc);
    t.seed(&[scanned(std::process::id(), 1, own_start(), "/x")], 0);
    t.seed(&[scanned(1, 0, own_ticks(1), "/init")], 0);
    let r = exec(
        4_000_001,
        7 * TICK,
        1,
        own_ticks(1) * TICK,
        "/usr/bin/id",
        8 * TICK,
    );
    assert!(t.exec(&r).is_none(), "no room");
    let p = t.untracked(&r);
    assert_eq!(p.pid, 4_000_001);
    assert_eq!(p.image.name, "id");
    assert_eq!(t.context_of(&p).parent.map(|p| p.pid), Some(1));
    assert_eq!(t.stats().dropped_full, 1);
}

#[test]
fn a_leader_that_ended_still_leads_its_end_event() {
    let mut t = with_shell();
    t.fork(&fork(200, 70 * TICK, 100, 50 * TICK, 70 * TICK));
    let mut r = exec(
        200,
        70 * TICK,
        100,
        50 * TICK,
        "/usr/bin/sleep 1",
        71 * TICK,
    );
    r.sid = 200;
    r.pgid = 200;
    t.exec(&r);
    let gone = t.exit(&exit(200, 70 * TICK)).unwrap();
    let ctx = t.context_of(&gone);
    assert_eq!(ctx.session_leader.map(|l| l.pid), Some(200));
    assert_eq!(ctx.group_leader.map(|l| l.pid), Some(200));
}

#[test]
fn a_fork_brings_the_creators_current_ids_session_and_name() {
    let mut t = with_shell();
    let mut r = fork(200, 70 * TICK, 100, 50 * TICK, 70 * TICK);
    // Since its exec the shell became nobody, led a new session, lost its
    // terminal and renamed itself.
    (r.uid, r.euid, r.gid, r.egid) = (65534, 65534, 65534, 65534);
    (r.sid, r.pgid) = (100, 100);
    r.comm[..4].copy_from_slice(b"evil");
    let child = t.fork(&r).unwrap();
    assert_eq!((child.uid, child.euid, child.sid), (65534, 65534, 100));
    assert_eq!(child.tty, None);
    assert_eq!(&*child.thread_name, "evil");
    let shell = t.get(100, 50 * TICK).unwrap();
    assert_eq!((shell.euid, shell.sid), (65534, 100), "the creator too");
}

#[test]
fn a_pid_reused_within_one_tick_is_still_another_process() {
    let mut t = with_shell();
    let first = 70 * TICK + 1_000;
    let second = 70 * TICK + 2_000_000;
    t.fork(&fork(200, first, 100, 50 * TICK, first));
    t.exec(&exec(
        200,
        first,
        100,
        50 * TICK,
        "/usr/bin/true",
        first + 10,
    ));
    // Its exit was lost; the pid comes back 2 ms later, in the same tick.
    assert!(t.get(200, second).is_none(), "not the same process");
    assert!(t.exit(&exit(200, second)).is_none());
    t.fork(&fork(200, second, 100, 50 * TICK, second));
    assert_eq!(t.get(200, second).unwrap().start_ns, second);
    // A time from /proc (whole ticks) still finds a process by its tick.
    assert!(t.get(200, 70 * TICK).is_some());
}
