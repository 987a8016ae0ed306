//! The eBPF program on the running kernel: real commands, the events and
//! alerts the daemon writes for them, read back from stdout and journald.
//!
//! Needs root; see `support` for how a run without it behaves.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Daemon, ensure_journald, entity_of, journal_entries, privileged, run, run_in};

const WAIT: Duration = Duration::from_secs(10);
const SEED_RULE_ID: &str = "2724808c-ba5d-48b2-86d2-0002103df753";

fn args_of(doc: &Value) -> Vec<String> {
    doc["process"]["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no process.args in {doc}"))
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

#[test]
fn dmesg_clear_raises_an_alert_in_journald_and_on_stdout() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let daemon = Daemon::start(&["--output", "journald"]);
    for flag in ["-c", "--clear"] {
        let started = Instant::now();
        let (pid, _) = run(&["dmesg", flag]);
        let alert = daemon
            .wait_alert(pid, WAIT)
            .unwrap_or_else(|| panic!("no alert for dmesg {flag}:\n{}", daemon.stderr()));
        support::report(&format!(
            "dmesg {flag}: alert on stdout after {:?}",
            started.elapsed()
        ));

        assert_eq!(alert["event"]["kind"], "alert");
        assert_eq!(alert["rule"]["id"], SEED_RULE_ID);
        assert_eq!(alert["rule"]["name"], "Attempt to Clear Kernel Ring Buffer");
        assert_eq!(alert["process"]["name"], "dmesg");
        assert_eq!(alert["process"]["executable"], "/usr/bin/dmesg");
        assert_eq!(args_of(&alert), ["dmesg", flag]);
        assert_eq!(alert["process"]["parent"]["pid"], std::process::id());
        assert_eq!(alert["user"]["id"], "0");
        assert_eq!(alert["host"]["os"]["type"], "linux");
        assert_eq!(alert["threat"]["tactic"]["id"], json!(["TA0005"]));

        // The entity id, not the pid: the journal may hold alerts of
        // earlier runs for a pid handed out again since.
        let process_match = format!("PROCESS_ENTITY_ID={}", entity_of(&alert));
        let rule_match = format!("RULE_ID={SEED_RULE_ID}");
        let entries = journal_entries(
            &["SYSLOG_IDENTIFIER=monitor", &process_match, &rule_match],
            WAIT,
        );
        assert_eq!(
            entries.len(),
            1,
            "one journal entry for dmesg {flag}: {entries:?}"
        );
        let e = &entries[0];
        support::report(&format!(
            "dmesg {flag}: alert in the journal after {:?}",
            started.elapsed()
        ));
        let message = e["MESSAGE"].as_str().expect("MESSAGE");
        assert!(
            message.starts_with("Attempt to Clear Kernel Ring Buffer"),
            "{message}"
        );
        assert!(message.contains(&format!("pid={pid}")), "{message}");
        assert!(!message.contains('\n'));
        assert_eq!(e["PRIORITY"], "5", "low severity is notice");
        assert_eq!(e["MESSAGE_ID"], SEED_RULE_ID.replace('-', ""));
        assert_eq!(e["RULE_ID"], SEED_RULE_ID);
        assert_eq!(e["RULE_NAME"], "Attempt to Clear Kernel Ring Buffer");
        assert_eq!(e["RULE_SEVERITY"], "low");
        assert_eq!(e["RULE_RISK_SCORE"], "21");
        assert_eq!(e["PROCESS_NAME"], "dmesg");
        assert_eq!(e["PROCESS_EXECUTABLE"], "/usr/bin/dmesg");
        assert_eq!(e["PROCESS_PARENT_PID"], std::process::id().to_string());
        assert_eq!(e["USER_ID"], "0");
        let args: Value = serde_json::from_str(e["PROCESS_ARGS"].as_str().expect("args"))
            .expect("PROCESS_ARGS is JSON");
        assert_eq!(args, json!(["dmesg", flag]));
        let doc: Value = serde_json::from_str(e["ALERT_JSON"].as_str().expect("ALERT_JSON"))
            .expect("ALERT_JSON is JSON");
        assert_eq!(doc["rule"]["id"], SEED_RULE_ID);
        assert_eq!(doc["process"]["pid"], pid);
    }
}

#[test]
fn commands_that_do_not_clear_raise_nothing() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let pids: Vec<u32> = [&["dmesg"][..], &["dmesg", "-T"], &["/bin/echo", "-c"]]
        .iter()
        .map(|argv| run(argv).0)
        .collect();
    for pid in &pids {
        let event = daemon.wait_event(*pid, WAIT);
        assert!(event.is_some(), "the exec of pid {pid} was not seen");
    }
    // The event for the last command is out, so any alert for the earlier
    // ones would be too (one reader, in order); give it a moment anyway.
    std::thread::sleep(Duration::from_millis(300));
    for pid in pids {
        assert!(
            daemon.alerts(pid).is_empty(),
            "unexpected alert for pid {pid}"
        );
    }
}

#[test]
fn empty_arguments_are_kept_exactly() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let (pid, _) = run(&["/bin/echo", "a", "", "b"]);
    let event = daemon.wait_event(pid, WAIT).expect("event");
    assert_eq!(args_of(&event), ["/bin/echo", "a", "", "b"]);
    assert_eq!(event["process"]["args_count"], 4);
    assert_eq!(event["process"]["command_line"], "/bin/echo a  b");
    assert_eq!(event["process"]["Ext"]["command_line_truncated"], false);
}

#[test]
fn three_hundred_arguments_come_through_exactly() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let mut argv: Vec<String> = vec!["/bin/true".into()];
    argv.extend((1..300).map(|i| format!("arg-{i} with space")));
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (pid, _) = run(&refs);
    let event = daemon.wait_event(pid, WAIT).expect("event");
    assert_eq!(args_of(&event), argv);
    assert_eq!(event["process"]["args_count"], 300);
}

#[test]
fn a_long_argument_is_exact_or_flagged_by_the_limit() {
    if !privileged() {
        return;
    }
    let long = "x".repeat(20_000);
    // Default limit (32 KiB): the whole block fits.
    let daemon = Daemon::start(&[]);
    let (pid, _) = run(&["/bin/true", &long]);
    let event = daemon.wait_event(pid, WAIT).expect("event");
    assert_eq!(args_of(&event), ["/bin/true", long.as_str()]);
    assert_eq!(event["process"]["Ext"]["command_line_truncated"], false);
    drop(daemon);

    // A 16 KiB limit: cut, flagged, the count still true, no marker text.
    let daemon = Daemon::start(&["--argv-limit", "16384"]);
    let (pid, _) = run(&["/bin/true", &long, "after"]);
    let event = daemon.wait_event(pid, WAIT).expect("event");
    let args = args_of(&event);
    assert_eq!(event["process"]["Ext"]["command_line_truncated"], true);
    assert_eq!(event["process"]["args_count"], 3);
    assert_eq!(args.len(), 2, "the third argument is past the limit");
    assert_eq!(args[0], "/bin/true");
    assert_eq!(args[1].len(), 16384 - "/bin/true\0".len());
    assert!(args[1].bytes().all(|b| b == b'x'), "no marker appended");
}

#[test]
fn a_newline_in_an_argument_cannot_forge_a_log_line() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let daemon = Daemon::start(&["--output", "journald"]);
    let forged = "x\nmonitor: forged line\r\x1b[31m";
    let (pid, _) = run(&["dmesg", "-c", forged]);
    let alert = daemon.wait_alert(pid, WAIT).expect("alert");
    assert_eq!(
        args_of(&alert),
        ["dmesg", "-c", forged],
        "the document keeps argv exactly"
    );
    let process_match = format!("PROCESS_ENTITY_ID={}", entity_of(&alert));
    let rule_match = format!("RULE_ID={SEED_RULE_ID}");
    let entries = journal_entries(
        &["SYSLOG_IDENTIFIER=monitor", &process_match, &rule_match],
        WAIT,
    );
    assert_eq!(entries.len(), 1, "{entries:?}");
    let message = entries[0]["MESSAGE"].as_str().expect("MESSAGE is text");
    assert!(!message.contains(['\n', '\r', '\x1b']), "{message:?}");
    assert!(message.contains("\\n"), "{message}");
}

#[test]
fn executable_is_the_file_that_ran() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let long_name = "a-program-name-longer-than-comm";
    std::fs::copy("/bin/true", dir.path().join(long_name)).expect("copy");
    std::os::unix::fs::symlink(dir.path().join(long_name), dir.path().join("link"))
        .expect("symlink");
    let real = std::fs::canonicalize(dir.path().join(long_name)).expect("canonical");
    let real = real.to_str().expect("utf-8 path");
    let daemon = Daemon::start(&[]);

    // Relative path.
    let (pid, _) = run_in(&[&format!("./{long_name}")], Some(dir.path()));
    let event = daemon.wait_event(pid, WAIT).expect("event");
    assert_eq!(event["process"]["executable"], real);
    assert_eq!(
        event["process"]["name"], long_name,
        "not cut to 15 bytes like comm"
    );
    assert_eq!(event["process"]["thread"]["name"], &long_name[..15]);

    // Through a symlink: the target ran.
    let (pid, _) = run(&[dir.path().join("link").to_str().expect("path")]);
    let event = daemon.wait_event(pid, WAIT).expect("event");
    assert_eq!(event["process"]["executable"], real);

    // Through a file descriptor (execveat with an fd, via Python's os.execve).
    let script =
        format!("import os; fd = os.open({real:?}, os.O_RDONLY); os.execve(fd, ['fd-exec'], {{}})");
    let (pid, _) = run(&["python3", "-c", &script]);
    let event = daemon
        .wait_document(WAIT, |d| {
            d["process"]["pid"] == pid && d["process"]["args"][0] == "fd-exec"
        })
        .expect("event for the exec through a descriptor");
    assert_eq!(event["process"]["executable"], real);
    assert_eq!(event["process"]["name"], long_name);
}

#[test]
fn sigint_and_sigterm_stop_cleanly_and_the_life_is_logged() {
    if !privileged() {
        return;
    }
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let daemon = Daemon::start(&[]);
        let (code, log) = daemon.stop_with(signal);
        assert_eq!(code, Some(0), "{signal}: exit code; log:\n{log}");
        for needle in [
            "kernel=",
            "offsets resolved",
            "attached",
            "ring buffer",
            "rules loaded",
        ] {
            assert!(
                log.contains(needle),
                "{signal}: log lacks {needle:?}:\n{log}"
            );
        }
        assert!(log.contains("detached"), "{log}");
    }
}

#[test]
fn a_full_ring_buffer_is_counted_and_reported() {
    if !privileged() {
        return;
    }
    // The smallest ring buffer a 2 KiB argv limit allows (32 KiB: one record holds three paths and a cgroup path besides argv) and about
    // 2 KiB per record: a few execs between reads overflow it.
    let daemon = Daemon::start(&["--ring-buffer-size", "32768", "--argv-limit", "2048"]);
    let marker = format!("storm-{}", support::rand_suffix());
    let padding = "p".repeat(3000);
    let total = 400;
    let script =
        format!("for i in $(seq {total}); do /bin/true {marker} $i {padding} & done; wait");
    run(&["sh", "-c", &script]);
    std::thread::sleep(Duration::from_secs(1));
    let seen = daemon
        .documents()
        .iter()
        .filter(|d| d["event"]["action"] == "exec" && d["process"]["args"][1] == marker.as_str())
        .count();
    let (code, log) = daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0));
    let lost: u64 = log
        .lines()
        .filter(|l| l.contains("events lost"))
        .filter_map(|l| l.split("lost_in_kernel=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("no loss report in the log:\n{log}"));
    eprintln!("{seen} of {total} storm execs delivered, {lost} records lost in the kernel");
    assert!(lost > 0, "a 32 KiB ring buffer under a storm lost nothing?");
    assert!(
        seen as u64 + lost >= total,
        "loss not accounted: {seen} seen, {lost} lost"
    );
}

#[test]
fn elastic_rules_run_unchanged_from_their_directory() {
    if !privileged() {
        return;
    }
    let rules = monitor::reference_data::dir(monitor::reference_data::LINUX_RULES);
    let daemon = Daemon::start(&["--rules", rules.to_str().expect("utf-8 path")]);
    assert!(
        daemon.stderr().contains("loaded=222"),
        "{}",
        daemon.stderr()
    );
    // Elastic's current version of the rule also catches -C.
    for flag in ["-c", "-C"] {
        let (pid, _) = run(&["dmesg", flag]);
        let alert = daemon
            .wait_alert(pid, WAIT)
            .unwrap_or_else(|| panic!("no alert for {flag}"));
        assert_eq!(alert["rule"]["id"], SEED_RULE_ID);
        let ruleset = alert["rule"]["ruleset"].as_str().expect("ruleset");
        assert!(
            ruleset.ends_with("defense_evasion_clear_kernel_ring_buffer.toml"),
            "{ruleset}"
        );
    }
    let (pid, _) = run(&["ls", "/tmp"]);
    daemon.wait_event(pid, WAIT).expect("event");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        daemon.alerts(pid).is_empty(),
        "ls raised {:?}",
        daemon.alerts(pid)
    );
}

#[test]
fn a_path_deeper_than_the_walk_keeps_its_name_and_is_flagged() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&[]);
    // 17 directories of 250 bytes: more than PATH_MAX in all, so the path
    // can only be reached step by step, and the kernel's walk must stop.
    let marker = format!("deep-{}", support::rand_suffix());
    let step = "d".repeat(250);
    let script = format!(
        "import os, shutil\n\
         for _ in range(17):\n    os.mkdir({step:?}); os.chdir({step:?})\n\
         shutil.copy('/bin/true', 'true'); os.execv('./true', ['true', {marker:?}])"
    );
    let (_, status) = run_in(&["python3", "-c", &script], Some(dir.path()));
    assert!(status.success(), "the deep exec itself failed");
    let event = daemon
        .wait_document(WAIT, |d| d["process"]["args"][1] == marker.as_str())
        .expect("event for the deep exec");
    assert_eq!(event["process"]["name"], "true");
    assert_eq!(event["process"]["Ext"]["executable_truncated"], true);
    let executable = event["process"]["executable"].as_str().expect("executable");
    assert!(
        executable.starts_with(".../") && executable.ends_with("/true"),
        "{executable}"
    );
}

#[test]
fn a_program_run_from_memory_is_named_by_its_memfd() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let marker = format!("memfd-{}", support::rand_suffix());
    let script = format!(
        "import os; fd = os.memfd_create('memtrue'); \
         os.write(fd, open('/bin/true', 'rb').read()); \
         os.execve(fd, ['memtrue', {marker:?}], {{}})"
    );
    run(&["python3", "-c", &script]);
    let event = daemon
        .wait_document(WAIT, |d| d["process"]["args"][1] == marker.as_str())
        .expect("event for the memfd exec");
    assert_eq!(event["process"]["name"], "memfd:memtrue");
    assert_eq!(event["process"]["executable"], "/memfd:memtrue");
}

#[test]
fn a_stalled_stdout_reader_costs_events_not_the_daemon() {
    if !privileged() {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // stdout is a pipe nobody reads: it fills after a few dozen events.
    let mut child = Command::new(support::BINARY)
        .args(["--output", "stdout", "--print-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.contains("programs attached") {
        assert!(Instant::now() < deadline, "not attached:\n{log}");
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    let long = "x".repeat(4000);
    run(&[
        "sh",
        "-c",
        &format!("for i in $(seq 300); do /bin/true {long}; done"),
    ]);

    let stopped = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "SIGTERM ignored while stdout is stalled"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        log.push_str(&line);
        log.push('\n');
    }
    eprintln!("stopped in {:?}", stopped.elapsed());
    assert_eq!(status.code(), Some(0), "{log}");
    let not_written: u64 = log
        .lines()
        .filter_map(|l| l.split("events_not_written=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("events not written are not reported:\n{log}"));
    assert!(not_written > 0, "{log}");
}

#[test]
fn sigterm_is_served_while_the_ring_buffer_never_empties() {
    if !privileged() {
        return;
    }
    // Elastic's rules over execs with 10,000 arguments each: the daemon
    // cannot keep up, so the ring buffer stays non-empty for the whole storm.
    let rules = monitor::reference_data::dir(monitor::reference_data::LINUX_RULES);
    let daemon = Daemon::start(&["--rules", rules.to_str().expect("utf-8 path")]);
    let storm = "import os, time\n\
                 end = time.time() + 60\n\
                 while time.time() < end:\n    \
                     pid = os.fork()\n    \
                     if pid == 0:\n        \
                         os.execv('/bin/true', ['true'] + ['-c'] * 10000)\n    \
                     os.waitpid(pid, 0)\n";
    let mut storms: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("python3")
                .args(["-c", storm])
                .spawn()
                .expect("start the storm")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let stopped = Instant::now();
    let (code, log) = daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    let waited = stopped.elapsed();
    for storm in &mut storms {
        let _ = storm.kill();
        let _ = storm.wait();
    }
    support::report(&format!(
        "SIGTERM served {waited:?} after it was sent, under a storm"
    ));
    assert_eq!(code, Some(0), "{log}");
    // A liveness bound, not a performance figure: the storm lasts a minute.
    assert!(
        waited < Duration::from_secs(20),
        "SIGTERM waited for the storm: {waited:?}\n{log}"
    );
}

#[test]
fn the_start_up_self_check_is_an_exec_of_the_daemon_read_right() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let stderr = daemon.stderr();
    let passed = stderr
        .find("self-check passed")
        .unwrap_or_else(|| panic!("no self-check in:\n{stderr}"));
    assert!(passed < stderr.find(" ready ").expect("ready"), "{stderr}");
    // Its exec went through the pipeline as any other, as the daemon's
    // child, with the arguments it chose.
    let event = daemon
        .wait_document(WAIT, |d| {
            d["process"]["args"][0] == "monitor-self-check" && d["event"]["action"] == "exec"
        })
        .expect("the self-check's exec event");
    let args = args_of(&event);
    assert_eq!(args[1], "--self-check-child");
    assert_eq!(args[3..], ["two words", "", "caf\u{e9}"]);
    assert_eq!(event["process"]["parent"]["pid"], daemon.pid().as_raw());
}

#[test]
fn the_self_check_passes_in_a_time_namespace_and_a_removed_folder() {
    if !privileged() {
        return;
    }
    // /proc shifts start times by the reader's boot clock offset, and
    // marks a removed working directory: neither is a wrong offset.
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).expect("mkdir");
    let script = format!(
        "cd {} && rmdir {} && exec \"$@\"",
        gone.display(),
        gone.display()
    );
    let command = [
        "unshare",
        "--time",
        "--fork",
        "--boottime",
        "100000",
        "--",
        "/bin/sh",
        "-c",
        &script,
        "sh",
        support::BINARY,
    ];
    let daemon = Daemon::start_wrapped(&command, &[], &[]);
    assert!(
        daemon.stderr().contains("self-check passed"),
        "{}",
        daemon.stderr()
    );
}
