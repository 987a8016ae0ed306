//! The process model on the running kernel: parents, ancestry, pid reuse,
//! threads, namespaces, containers, and the processes that were running
//! before the daemon.
//!
//! Needs root; see `support` for how a run without it behaves.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Daemon, ensure_journald, journal_entries, privileged, rand_suffix, run};

const WAIT: Duration = Duration::from_secs(10);

fn args_of(doc: &Value) -> Vec<String> {
    serde_json::from_value(doc["process"]["args"].clone())
        .unwrap_or_else(|e| panic!("process.args of {doc}: {e}"))
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {doc}"))
}

/// The host pid of a process from `/proc/<pid>/stat`: (ppid, start ticks).
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields[1].parse().ok()?, fields[19].parse().ok()?))
}

#[test]
fn processes_running_before_the_daemon_are_reported_and_become_parents() {
    if !privileged() {
        return;
    }
    // A shell that is already running when the daemon starts, and later
    // starts a child.
    let marker = format!("late-child-{}", rand_suffix());
    let script = format!("read _; exec /bin/true {marker}");
    let mut shell = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let shell_pid = shell.id();
    let daemon = Daemon::start(&[]);

    let running = daemon
        .wait_action(shell_pid, "already_running", WAIT)
        .expect("an already_running event for the shell");
    assert_eq!(running["event"]["type"], serde_json::json!(["info"]));
    assert_eq!(running["process"]["name"], "dash");
    assert_eq!(args_of(&running), ["/bin/sh", "-c", script.as_str()]);
    assert_eq!(running["process"]["parent"]["pid"], std::process::id());
    let init = daemon
        .wait_action(1, "already_running", WAIT)
        .expect("pid 1 is reported too");
    assert_eq!(init["process"]["pid"], 1);

    drop(shell.stdin.take());
    shell.wait().expect("wait sh");
    let exec = daemon.wait_exec_with(&marker, WAIT).expect("the exec");
    // The shell exec'd itself: same process, same entity, now running true.
    assert_eq!(exec["process"]["pid"], shell_pid);
    assert_eq!(
        exec["process"]["entity_id"],
        running["process"]["entity_id"]
    );
    assert_eq!(
        exec["process"]["parent"]["entity_id"],
        running["process"]["parent"]["entity_id"]
    );
    assert_eq!(
        exec["process"]["parent"]["executable"],
        std::env::current_exe().unwrap().to_str().unwrap()
    );
}

#[test]
fn a_parent_that_exits_before_its_child_execs() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    // sh starts a background subshell and exits at once; the subshell
    // execs a while later, as an orphan adopted by a reaper.
    let seconds = format!("2.{}", 100_000 + std::process::id() % 800_000);
    let script = format!("(sleep 0.5; exec /bin/sleep {seconds}) & echo $!");
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .expect("run sh");
    let orphan: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("pid");
    let exec = daemon
        .wait_exec_with(&seconds, WAIT)
        .unwrap_or_else(|| panic!("no exec of sleep {seconds}:\n{}", daemon.stderr()));
    assert_eq!(exec["process"]["pid"], orphan);
    // Its parent now is whoever adopted it, as the kernel says.
    let (reaper, _) = stat_of(orphan).expect("the orphan still sleeps");
    let parent = &exec["process"]["parent"];
    assert_eq!(parent["pid"], reaper, "{exec}");
    let (_, reaper_start) = stat_of(reaper).expect("the reaper lives");
    let reaper_event = daemon
        .documents()
        .into_iter()
        .find(|d| d["process"]["pid"] == reaper && d["event"]["kind"] == "event")
        .expect("some event of the reaper (already_running at least)");
    assert_eq!(parent["entity_id"], reaper_event["process"]["entity_id"]);
    assert!(reaper_start > 0);
    assert!(parent["name"].is_string(), "the reaper is known: {parent}");
}

#[test]
fn a_reused_pid_is_a_new_process() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let first_marker = format!("first-{}", rand_suffix());
    let (pid, _) = run(&["/bin/true", &first_marker]);
    let first = daemon.wait_event(pid, WAIT).expect("first exec");
    daemon.wait_action(pid, "end", WAIT).expect("first end");

    // Ask the kernel to hand out the same pid next; other processes may
    // take it first, so try a few times.
    let second_marker = format!("second-{}", rand_suffix());
    let mut second = None;
    for _ in 0..20 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1))
            .expect("write ns_last_pid");
        let (again, _) = run(&["/bin/true", &second_marker]);
        if again == pid {
            second = daemon.wait_exec_with(&second_marker, WAIT);
            break;
        }
    }
    let second = second.expect("pid reused within 20 tries, and its exec seen");
    assert_eq!(second["process"]["pid"], pid);
    assert_ne!(
        second["process"]["entity_id"],
        first["process"]["entity_id"]
    );
    assert_ne!(second["process"]["start"], first["process"]["start"]);
    assert!(
        second["process"].get("previous").is_none(),
        "nothing inherited from the dead process: {second}"
    );
    assert_eq!(args_of(&second), ["/bin/true", second_marker.as_str()]);
}

#[test]
fn exec_from_a_secondary_thread() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let marker = format!("from-thread-{}", rand_suffix());
    let program = format!(
        "import os, threading\n\
         t = threading.Thread(target=lambda: os.execv('/bin/true', ['/bin/true', '{marker}']))\n\
         t.start()\n\
         t.join()\n"
    );
    let (pid, status) = run(&["/usr/bin/python3", "-c", &program]);
    assert!(status.success());
    let exec = daemon.wait_exec_with(&marker, WAIT).expect("the exec");
    // The process id, not the thread's.
    assert_eq!(exec["process"]["pid"], pid);
    let thread = exec["process"]["thread"]["id"].as_u64().expect("thread.id") as u32;
    assert_ne!(thread, pid, "the exec came from the second thread");
    let python = daemon.wait_event(pid, WAIT).expect("python's own exec");
    assert_eq!(python["process"]["name"], "python3.11");
    assert_eq!(exec["process"]["entity_id"], python["process"]["entity_id"]);
    let previous = exec["process"]["previous"].as_array().expect("previous");
    assert_eq!(
        previous.last().expect("python")["executable"],
        "/usr/bin/python3.11"
    );
    // The thread was no process: no fork event of its own, and the process
    // ends once.
    daemon.wait_action(pid, "end", WAIT).expect("end");
    assert!(daemon.events(thread, "fork").is_empty());
    assert_eq!(daemon.events(pid, "end").len(), 1);
    assert_eq!(daemon.events(pid, "fork").len(), 1);
}

#[test]
fn a_process_that_execs_several_times() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let (pid, _) = run(&["bash", "-c", "exec env dmesg"]);
    daemon.wait_action(pid, "end", WAIT).expect("end");
    let execs = daemon.events(pid, "exec");
    let names: Vec<&str> = execs.iter().map(|e| str_at(e, "/process/name")).collect();
    assert_eq!(names, ["bash", "env", "dmesg"]);
    let ids: Vec<&Value> = execs.iter().map(|e| &e["process"]["entity_id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one process: {ids:?}");
    assert!(execs[0]["process"].get("previous").is_none());
    let last = &execs[2]["process"];
    let previous: Vec<&str> = last["previous"]
        .as_array()
        .expect("previous")
        .iter()
        .map(|p| p["executable"].as_str().expect("executable"))
        .collect();
    let me = std::env::current_exe().unwrap();
    assert_eq!(
        previous,
        [me.to_str().unwrap(), "/usr/bin/bash", "/usr/bin/env"],
        "the fork image, then each exec"
    );
    assert_eq!(
        last["previous"][1]["args"],
        serde_json::json!(["bash", "-c", "exec env dmesg"])
    );
    for e in &execs {
        let parent = &e["process"]["parent"];
        assert_eq!(parent["pid"], std::process::id());
        assert_eq!(parent["executable"], me.to_str().unwrap(), "{parent}");
    }
}

#[test]
fn exec_inside_a_new_pid_namespace() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let marker = format!("in-ns-{}", rand_suffix());
    let (unshare, status) = run(&[
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "/bin/true",
        &marker,
    ]);
    assert!(status.success());
    let exec = daemon
        .wait_document(WAIT, |d| {
            d["event"]["action"] == "exec" && d["process"]["args"][1] == marker.as_str()
        })
        .expect("the exec");
    let p = &exec["process"];
    assert_eq!(p["vpid"], 1, "pid 1 of its namespace: {p}");
    assert_ne!(p["pid"], 1);
    assert_eq!(p["parent"]["pid"], unshare);
    assert_eq!(p["parent"]["name"], "unshare");
    let host_pid = p["pid"].as_u64().expect("pid") as u32;
    let fork = daemon
        .wait_action(host_pid, "fork", WAIT)
        .expect("fork of the namespace's init");
    assert_eq!(fork["process"]["vpid"], 1);
}

#[test]
fn names_come_from_the_file_that_ran() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("innocent-name");
    std::os::unix::fs::symlink("/usr/bin/sleep", &link).expect("symlink");
    let link_text = link.to_str().unwrap();
    let (pid, _) = run(&[link_text, "0"]);
    let exec = daemon.wait_event(pid, WAIT).expect("exec through the link");
    assert_eq!(exec["process"]["executable"], "/usr/bin/sleep");
    assert_eq!(exec["process"]["name"], "sleep");
    assert_eq!(args_of(&exec), [link_text, "0"]);

    // argv[0] chosen by the caller.
    let (pid, _) = run(&["bash", "-c", "exec -a othername /usr/bin/sleep 0"]);
    daemon.wait_action(pid, "end", WAIT).expect("end");
    let last = daemon.events(pid, "exec").pop().expect("exec");
    assert_eq!(args_of(&last), ["othername", "0"]);
    assert_eq!(last["process"]["name"], "sleep");
    assert_eq!(last["process"]["executable"], "/usr/bin/sleep");
}

/// A cgroup for the test, shaped like one a container runtime makes.
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create(root: &Path, relative: &str) -> TestCgroup {
        let path = root.join(relative);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create cgroup {}: {e}", path.display()));
        TestCgroup { path }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Empty by now: its only members were the test's shell and child.
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Where the unified (v2) hierarchy is mounted, mounting it if needed.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    if let Some(dir) = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    }) {
        return dir;
    }
    let dir = std::env::temp_dir().join("monitor-test-cgroup2");
    std::fs::create_dir_all(&dir).expect("mount point");
    let status = Command::new("mount")
        .args(["-t", "cgroup2", "none"])
        .arg(&dir)
        .status()
        .expect("mount");
    assert!(status.success(), "cannot mount cgroup2");
    dir
}

/// Runs `dmesg -c` from an interactive bash on a terminal (`script`
/// provides one), after the shell moved itself into `cgroup`; returns the
/// shell's pid.
fn dmesg_from_interactive_shell(cgroup: &Path) -> u32 {
    let procs = cgroup.join("cgroup.procs");
    let inner = format!(
        "echo $$ > {}; echo $$ > /dev/fd/3; dmesg -c >/dev/null",
        procs.display()
    );
    let pid_file = tempfile::NamedTempFile::new().expect("temp file");
    let command = format!("bash -i -c '{inner}' 3>{}", pid_file.path().display());
    let status = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run script");
    assert!(status.success(), "script failed: {status}");
    std::fs::read_to_string(pid_file.path())
        .expect("shell pid")
        .trim()
        .parse()
        .expect("a pid")
}

fn container_id() -> String {
    let seed = rand_suffix();
    seed.bytes()
        .cycle()
        .take(64)
        .map(|b| char::from_digit(u32::from(b) % 16, 16).unwrap())
        .collect()
}

#[test]
fn dmesg_clear_from_a_shell_in_a_container_names_shell_user_and_container() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let daemon = Daemon::start(&["--output", "journald"]);
    let id = container_id();
    let cgroup = TestCgroup::create(&cgroup2_root(), &format!("system.slice/docker-{id}.scope"));
    let shell = dmesg_from_interactive_shell(&cgroup.path);

    let alert = daemon
        .wait_document(WAIT, |d| {
            d["event"]["kind"] == "alert" && d["process"]["parent"]["pid"] == shell
        })
        .unwrap_or_else(|| {
            panic!(
                "no alert for dmesg -c under shell {shell}:\n{}",
                daemon.stderr()
            )
        });
    let p = &alert["process"];
    assert_eq!(p["name"], "dmesg");
    assert_eq!(p["parent"]["name"], "bash");
    assert_eq!(p["parent"]["args"][1], "-i");
    assert_eq!(p["interactive"], true);
    assert_eq!(p["tty"]["char_device"]["major"], 136, "a pseudo-terminal");
    assert_eq!(alert["user"]["name"], "root");
    assert_eq!(alert["container"]["id"], id.as_str());
    assert_eq!(alert["container"]["runtime"], "docker");

    let entity = support::entity_of(&alert);
    let entries = journal_entries(&[&format!("PROCESS_ENTITY_ID={entity}")], WAIT);
    let entry = entries.first().expect("journal entry");
    assert_eq!(entry["CONTAINER_ID"], id.as_str());
    assert_eq!(entry["PROCESS_PARENT_NAME"], "bash");
    assert_eq!(entry["USER_NAME"], "root");
    let message = entry["MESSAGE"].as_str().expect("MESSAGE");
    assert!(
        message.contains(&format!("parent=bash[{shell}]")),
        "{message}"
    );
    assert!(
        message.contains(&format!("container={}", &id[..12])),
        "{message}"
    );
}

#[test]
fn a_container_on_cgroup_v1_is_recognised() {
    if !privileged() {
        return;
    }
    let memory = Path::new("/sys/fs/cgroup/memory");
    if !memory.join("cgroup.procs").exists() {
        eprintln!("skipped: no cgroup v1 memory hierarchy on this host");
        return;
    }
    let daemon = Daemon::start(&[]);
    let id = container_id();
    let cgroup = TestCgroup::create(memory, &format!("docker/{id}"));
    let shell = dmesg_from_interactive_shell(&cgroup.path);
    let alert = daemon
        .wait_document(WAIT, |d| {
            d["event"]["kind"] == "alert" && d["process"]["parent"]["pid"] == shell
        })
        .expect("alert");
    assert_eq!(alert["container"]["id"], id.as_str());
    assert_eq!(alert["container"]["runtime"], "docker");
    let parent = cgroup.path.parent().unwrap().to_owned();
    drop(cgroup);
    let _ = std::fs::remove_dir(parent);
}
