//! Every way of clearing the kernel ring buffer that the built-in rules
//! know, on the running kernel: dmesg's options, busybox, a renamed copy,
//! and the system call made directly, privileged or not.
//!
//! Needs root; see `support` for how a run without it behaves. These tests
//! really clear the kernel ring buffer.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{Daemon, ensure_journald, journal_entries, privileged, run};

const WAIT: Duration = Duration::from_secs(10);
const SEED: &str = "2724808c-ba5d-48b2-86d2-0002103df753";
const OPTIONS: &str = "ec82d3dc-4d7f-4962-94a0-28c04856931b";
const CLEARED: &str = "7ae7ffda-a5f7-4f89-8765-aa21b7c51992";
const DENIED: &str = "845da0d5-8f99-49bf-82a1-07a2dbcf1d2f";

/// Runs `argv`, waits until the daemon has seen the process end (so every
/// event it caused is in), and returns its pid and its alerts' rule ids.
fn alerts_for(daemon: &Daemon, argv: &[&str]) -> (u32, Vec<Value>) {
    let (pid, _) = run(argv);
    daemon
        .wait_action(pid, "end", WAIT)
        .unwrap_or_else(|| panic!("{argv:?} (pid {pid}) never ended:\n{}", daemon.stderr()));
    // Alerts are queued before the next record is read, and the end record
    // comes after the process's other records: they are all out.
    std::thread::sleep(Duration::from_millis(200));
    (pid, daemon.alerts(pid))
}

fn rule_ids(alerts: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule"]["id"].as_str().expect("rule.id"))
        .collect();
    ids.sort_unstable();
    ids
}

/// All alerts name the same process, by pid and entity id.
fn one_process(pid: u32, alerts: &[Value]) {
    let entity = &alerts[0]["process"]["entity_id"];
    assert!(entity.is_string(), "{}", alerts[0]);
    for a in alerts {
        assert_eq!(a["process"]["pid"], pid);
        assert_eq!(
            &a["process"]["entity_id"], entity,
            "one incident, one process"
        );
    }
}

fn sorted(mut ids: Vec<&'static str>) -> Vec<&'static str> {
    ids.sort_unstable();
    ids
}

#[test]
fn dmesg_options_that_clear_raise_the_option_and_syslog_rules() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    for option in ["-C", "--read-clear", "--clea", "-Tc", "--rea", "-kC"] {
        let (pid, alerts) = alerts_for(&daemon, &["dmesg", option]);
        assert_eq!(
            rule_ids(&alerts),
            sorted(vec![OPTIONS, CLEARED]),
            "dmesg {option}"
        );
        one_process(pid, &alerts);
        let syslog = alerts.iter().find(|a| a["rule"]["id"] == CLEARED).unwrap();
        assert_eq!(syslog["event"]["category"], serde_json::json!(["api"]));
        assert_eq!(
            syslog["event"]["severity"], 47,
            "medium: the buffer is gone"
        );
        assert_eq!(syslog["process"]["name"], "dmesg");
        assert_eq!(syslog["process"]["parent"]["pid"], std::process::id());
    }
}

#[test]
fn one_dmesg_clear_is_one_incident_in_the_journal() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let daemon = Daemon::start(&["--output", "journald"]);
    let (pid, alerts) = alerts_for(&daemon, &["dmesg", "-c"]);
    // Elastic's rule, the option rule and the syslog rule: three alerts,
    // one process.
    assert_eq!(rule_ids(&alerts), sorted(vec![SEED, OPTIONS, CLEARED]));
    one_process(pid, &alerts);
    let entity = alerts[0]["process"]["entity_id"].as_str().unwrap();
    let matches = [format!("PROCESS_ENTITY_ID={entity}")];
    let mut entries = journal_entries(&[&matches[0]], WAIT);
    for _ in 0..50 {
        if entries.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        entries = journal_entries(&[&matches[0]], WAIT);
    }
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| e["RULE_ID"].as_str().expect("RULE_ID"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, sorted(vec![SEED, OPTIONS, CLEARED]));
}

#[test]
fn the_system_call_is_caught_whatever_makes_it() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("kmsg-tool");
    std::fs::copy("/usr/bin/dmesg", &copy).expect("copy dmesg");
    let (pid, alerts) = alerts_for(&daemon, &[copy.to_str().unwrap(), "-c"]);
    assert_eq!(rule_ids(&alerts), [CLEARED], "a renamed dmesg");
    one_process(pid, &alerts);
    assert_eq!(alerts[0]["process"]["name"], "kmsg-tool");

    let python = "import ctypes; ctypes.CDLL(None).klogctl(5, None, 0)";
    let (pid, alerts) = alerts_for(&daemon, &["/usr/bin/python3", "-c", python]);
    assert_eq!(rule_ids(&alerts), [CLEARED], "klogctl(5) from Python");
    let alert = &alerts[0];
    assert_eq!(alert["process"]["pid"], pid);
    assert_eq!(alert["event"]["action"], "syslog_clear");
    assert_eq!(alert["event"]["outcome"], "success");
    assert_eq!(alert["process"]["Ext"]["api"]["parameters"]["action"], 5);
    assert_eq!(alert["process"]["args"][2], python);
}

#[test]
fn an_unprivileged_attempt_is_caught_as_a_failure() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let python = "import ctypes; ctypes.CDLL(None).klogctl(5, None, 0)";
    let (pid, alerts) = alerts_for(
        &daemon,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            python,
        ],
    );
    assert_eq!(rule_ids(&alerts), [DENIED]);
    let alert = &alerts[0];
    assert_eq!(alert["process"]["pid"], pid);
    assert_eq!(alert["event"]["severity"], 21, "low: nothing was cleared");
    assert_eq!(alert["event"]["outcome"], "failure");
    assert_eq!(alert["error"]["code"], "EPERM");
    assert!(
        alert["event"]["type"]
            .as_array()
            .unwrap()
            .contains(&"denied".into())
    );
    assert_eq!(alert["user"]["id"], "65534");
    assert_eq!(alert["user"]["name"], "nobody");
}

/// Installs busybox if needed; `false`, with the reason printed, when it
/// cannot be installed.
fn busybox() -> bool {
    let present = || {
        Command::new("busybox")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return true;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "busybox"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut installed = install();
    if !installed.as_ref().is_ok_and(|out| out.status.success()) {
        // A fresh machine's package lists may be stale.
        let _ = Command::new("apt-get").args(["update", "-q"]).output();
        installed = install();
    }
    match installed {
        Ok(out) if out.status.success() && present() => true,
        Ok(out) => {
            eprintln!(
                "skipped busybox cases: `apt-get install busybox` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("skipped busybox cases: cannot run apt-get: {e}");
            false
        }
    }
}

#[test]
fn dmesg_as_a_busybox_applet() {
    if !privileged() || !busybox() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let (pid, alerts) = alerts_for(&daemon, &["busybox", "dmesg", "-c"]);
    assert_eq!(rule_ids(&alerts), sorted(vec![OPTIONS, CLEARED]));
    one_process(pid, &alerts);

    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("dmesg");
    let busybox = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .expect("which busybox")
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(busybox.trim(), &link).expect("link");
    let (pid, alerts) = alerts_for(&daemon, &[link.to_str().unwrap(), "-c"]);
    assert_eq!(rule_ids(&alerts), sorted(vec![OPTIONS, CLEARED]));
    assert_eq!(alerts[0]["process"]["name"], "busybox");
    one_process(pid, &alerts);
}

#[test]
fn reading_the_buffer_raises_none_of_the_new_rules() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&[]);
    for argv in [
        &["dmesg"][..],
        &["dmesg", "-T"],
        &["dmesg", "--level=err"],
        &["dmesg", "-Lc"],
        &["/bin/echo", "-c"],
    ] {
        let (_, alerts) = alerts_for(&daemon, argv);
        assert!(alerts.is_empty(), "{argv:?} raised {:?}", rule_ids(&alerts));
    }
}

#[test]
fn without_the_syslog_watch_only_the_exec_rules_remain() {
    if !privileged() {
        return;
    }
    let daemon = Daemon::start(&["--no-syslog-watch"]);
    let (_, alerts) = alerts_for(&daemon, &["dmesg", "-C"]);
    assert_eq!(rule_ids(&alerts), [OPTIONS]);
    assert!(daemon.stderr().contains("syslog(2) not watched"));
}
