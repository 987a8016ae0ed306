//! Running the daemon as a service: systemd notification and watchdog,
//! SIGHUP reload, configuration errors, metrics, and journald going away
//! and coming back. All on the real kernel, as root.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use support::{BINARY, Daemon, journal_entries, privileged, rand_suffix, run, start_journald};

/// A rule that matches an exec whose arguments include `marker`.
fn marker_rule(rule_id: &str, marker: &str) -> String {
    format!(
        "[metadata]\nmaturity = \"production\"\n\n[rule]\nname = \"Marker {marker}\"\n\
         rule_id = \"{rule_id}\"\ndescription = \"Test rule.\"\nrisk_score = 21\n\
         severity = \"low\"\ntype = \"eql\"\nlanguage = \"eql\"\n\
         query = '''process where event.action == \"exec\" and process.args == \"{marker}\"'''\n"
    )
}

/// Runs `/bin/true marker`; returns its pid.
fn exec_marker(marker: &str) -> u32 {
    run(&["/bin/true", marker]).0
}

/// Reads the notification datagrams that arrive within `timeout`, until
/// one contains `until`.
fn notifications(socket: &UnixDatagram, until: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = text.lines().any(|l| l == until);
            seen.push(text);
            if done {
                break;
            }
        }
    }
    seen
}

#[test]
fn readiness_watchdog_reload_and_stop_are_notified() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    let daemon = Daemon::start_with_env(
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );

    // Daemon::start returned once an exec was captured; READY=1 came
    // before that, once, with a status line.
    let ready = notifications(&socket, "READY=1", Duration::from_secs(5));
    assert!(
        ready.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1 within the start: {ready:?}"
    );
    assert!(
        ready.iter().any(|m| m.contains("STATUS=watching; 4 rules")),
        "{ready:?}"
    );

    // WatchdogSec=1s: a ping every half second.
    let pings = notifications(&socket, "never", Duration::from_secs(3));
    let count = pings.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(
        (3..=12).contains(&count),
        "{count} watchdog pings in 3 s at a 0.5 s interval: {pings:?}"
    );

    kill(daemon.pid(), Signal::SIGHUP).expect("SIGHUP");
    let reload = notifications(&socket, "READY=1", Duration::from_secs(10));
    let reloading = reload
        .iter()
        .position(|m| m.contains("RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {reload:?}"));
    assert!(reload[reloading].contains("MONOTONIC_USEC="), "{reload:?}");
    assert!(
        reload[reloading..].iter().any(|m| m.contains("READY=1")),
        "READY=1 follows the reload: {reload:?}"
    );

    kill(daemon.pid(), Signal::SIGTERM).expect("SIGTERM");
    let stop = notifications(&socket, "STOPPING=1", Duration::from_secs(10));
    assert!(stop.iter().any(|m| m.contains("STOPPING=1")), "{stop:?}");
    let (code, log) = daemon.stop_with(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{log}");
    support::report(&format!(
        "notify: ready, {count} watchdog pings in 3 s, reload and stop notified ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
}

#[test]
fn sighup_reloads_rules_and_keeps_the_running_set_when_the_new_one_is_broken() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.d");
    std::fs::create_dir(&rules).expect("mkdir");
    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, "rules = [\"rules.d\"]\n").expect("write config");
    let (first, second) = (
        format!("reload-a-{}", rand_suffix()),
        format!("reload-b-{}", rand_suffix()),
    );
    std::fs::write(
        rules.join("a.toml"),
        marker_rule("11111111-0000-4000-8000-000000000001", &first),
    )
    .expect("write rule");
    let daemon = Daemon::start(&["--config", config.to_str().expect("utf-8")]);
    let alerts_for = |pid: u32| {
        daemon
            .wait_alert(pid, Duration::from_secs(5))
            .map(|a| a["rule"]["name"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        alerts_for(exec_marker(&first)),
        Some(format!("Marker {first}"))
    );

    // A good new set replaces the old one.
    std::fs::remove_file(rules.join("a.toml")).expect("rm");
    std::fs::write(
        rules.join("b.toml"),
        marker_rule("11111111-0000-4000-8000-000000000002", &second),
    )
    .expect("write rule");
    kill(daemon.pid(), Signal::SIGHUP).expect("SIGHUP");
    let at = daemon
        .wait_log(
            "reloaded; rules now loaded rules=1",
            0,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no reload logged:\n{}", daemon.stderr()));
    assert_eq!(
        alerts_for(exec_marker(&second)),
        Some(format!("Marker {second}"))
    );
    let old = exec_marker(&first);
    assert!(
        daemon.wait_event(old, Duration::from_secs(5)).is_some(),
        "exec seen"
    );
    assert!(daemon.alerts(old).is_empty(), "the removed rule is gone");

    // A broken rule file: refused, the running set stays.
    std::fs::write(rules.join("broken.toml"), "[rule\nname = ").expect("write");
    kill(daemon.pid(), Signal::SIGHUP).expect("SIGHUP");
    let at = daemon
        .wait_log(
            "reload failed; the running rules stay",
            at,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no failed reload logged:\n{}", daemon.stderr()));
    assert!(
        daemon.stderr().contains("broken.toml:1:"),
        "the error names file and line:\n{}",
        daemon.stderr()
    );
    assert_eq!(
        alerts_for(exec_marker(&second)),
        Some(format!("Marker {second}")),
        "the running rules still alert"
    );

    // A broken configuration file: refused the same way.
    std::fs::remove_file(rules.join("broken.toml")).expect("rm");
    std::fs::write(&config, "rules = [\"rules.d\"]\nargv_limit = 12\n").expect("write");
    kill(daemon.pid(), Signal::SIGHUP).expect("SIGHUP");
    daemon
        .wait_log(
            "reload failed; the running rules stay",
            at,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no failed reload logged:\n{}", daemon.stderr()));
    assert!(
        daemon
            .stderr()
            .contains("monitor.toml:2:14: 12 is out of range"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(
        alerts_for(exec_marker(&second)),
        Some(format!("Marker {second}"))
    );
    let (code, _) = daemon.stop_with(Signal::SIGTERM);
    assert_eq!(code, Some(0));
}

#[test]
fn a_bad_configuration_stops_the_start_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let cases = [
        (
            "argv_limit = 4096\nargv_limt = 1\n",
            ":2:1: unknown field `argv_limt`",
        ),
        ("output = [\"syslog\"]\n", ":1:11: unknown variant `syslog`"),
        ("max_processes = 10\n", ":1:17: 10 is out of range"),
        ("rules = [\"missing\"]\n", "rule path"),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, text).expect("write");
        for check in [false, true] {
            let mut cmd = Command::new(BINARY);
            cmd.arg("--config").arg(&config);
            if check {
                cmd.arg("--check-config");
            }
            let out = cmd.output().expect("run");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(1), "{text:?}: {all}");
            assert!(all.contains(expected), "{text:?} (check {check}): {all}");
            assert!(!all.contains("panicked"), "{all}");
        }
    }
    let out = Command::new(BINARY)
        .args(["--config", "/nonexistent/monitor.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/monitor.toml"));
}

#[test]
fn check_config_prints_what_would_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.d");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("m.toml"),
        marker_rule("11111111-0000-4000-8000-000000000003", "x"),
    )
    .expect("write");
    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, "rules = [\"rules.d\"]\nbuiltin_rules = true\n").expect("write");
    let out = Command::new(BINARY)
        .args(["--check-config", "--argv-limit", "1024", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("rules: 5 would run"), "{stdout}");
    assert!(
        stdout.contains("argv_limit = 1024"),
        "flags count: {stdout}"
    );
    // A broken rule file: the daemon would start without it, but a reload
    // would refuse it, and so does the check.
    std::fs::write(rules.join("broken.toml"), "[rule\nname = ").expect("write");
    let out = Command::new(BINARY)
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("broken.toml:1:"), "{stdout}");
}

/// The body of `GET /metrics` from `address`.
fn scrape(address: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A free port on localhost.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    if !privileged() {
        return;
    }
    let address = format!("127.0.0.1:{}", free_port());
    let daemon = Daemon::start(&["--metrics-listen", &address]);
    let (pid, _) = run(&["dmesg", "-c"]);
    assert!(daemon.wait_alert(pid, Duration::from_secs(5)).is_some());
    // Figures are copied once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let text = scrape(&address);
    let value = |prefix: &str| {
        sample(&text, prefix).unwrap_or_else(|| panic!("no sample {prefix}:\n{text}"))
    };
    assert!(value("monitor_execs_seen_total ") >= 2.0, "{text}");
    assert!(value("monitor_records_total ") >= value("monitor_execs_seen_total "));
    assert_eq!(value("monitor_rules_loaded "), 4.0);
    assert_eq!(value("monitor_ring_buffer_bytes "), 8_388_608.0);
    assert!(value("monitor_processes ") > 10.0);
    assert!(value("monitor_rule_evaluation_seconds_count ") >= 2.0);
    assert!(text.contains("monitor_rule_evaluation_seconds_bucket{le=\"0.00001\"}"));
    let fill = value("monitor_ring_buffer_fill_ratio ");
    assert!((0.0..=1.0).contains(&fill), "{fill}");
    assert_eq!(
        value("monitor_alerts_total{rule_id=\"2724808c-ba5d-48b2-86d2-0002103df753\""),
        1.0,
        "{text}"
    );
    assert_eq!(
        value("monitor_lost_total{where=\"kernel\",reason=\"ring_buffer_full\"}"),
        0.0
    );

    // A second daemon cannot have the same address: it says so and stops
    // before loading anything.
    let out = Command::new(BINARY)
        .args(["--config", "/dev/null", "--metrics-listen", &address])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("starting the metrics listener on {address}")),
        "{stderr}"
    );
    assert!(!stderr.contains("program loaded"), "{stderr}");
}

/// Stops every journald on the machine and waits until its socket refuses.
fn stop_journald() {
    let _ = Command::new("pkill")
        .args(["-x", "systemd-journal"])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::journal_accepts() {
        assert!(Instant::now() < deadline, "journald did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the daemon's stderr has an alert document for `pid`.
fn alert_on_stderr(log: &str, pid: u32) -> bool {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|d| d["event"]["kind"] == "alert" && d["process"]["pid"] == pid)
}

#[test]
fn alerts_raised_while_journald_is_away_go_to_stderr_and_none_is_lost() {
    if !privileged() {
        return;
    }
    drop(start_journald());
    let marker = format!("outage-{}", rand_suffix());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("m.toml"),
        marker_rule("11111111-0000-4000-8000-000000000004", &marker),
    )
    .expect("write");
    let rules = dir.path().to_str().expect("utf-8").to_owned();
    let daemon = Daemon::start(&["--output", "journald", "--rules", &rules]);
    let in_journal = |pid: u32| {
        !journal_entries(
            &[
                "-t",
                "monitor",
                &format!("PROCESS_PID={pid}"),
                "RULE_ID=11111111-0000-4000-8000-000000000004",
            ],
            Duration::from_secs(5),
        )
        .is_empty()
    };
    let raise = |count: usize| -> Vec<u32> {
        (0..count)
            .map(|_| {
                let pid = exec_marker(&marker);
                assert!(daemon.wait_alert(pid, Duration::from_secs(5)).is_some());
                pid
            })
            .collect()
    };

    let before = raise(3);
    stop_journald();
    let during = raise(3);
    // The journald thread writes each alert to stderr once it fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !during.iter().all(|&p| alert_on_stderr(&daemon.stderr(), p)) {
        assert!(
            Instant::now() < deadline,
            "alerts missing on stderr while journald is away:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let journald = start_journald();
    assert!(journald.is_some(), "journald restarted by the test");
    let after = raise(3);

    for &pid in before.iter().chain(&after) {
        assert!(in_journal(pid), "alert for {pid} not in the journal");
    }
    let log = daemon.stderr();
    assert_eq!(
        log.matches("alerts go to stderr until it is back").count(),
        1,
        "one warning per outage:\n{log}"
    );
    assert!(log.contains("journald accepts alerts again"), "{log}");
    let (code, log) = daemon.stop_with(Signal::SIGTERM);
    assert_eq!(code, Some(0));
    assert!(
        !log.contains("alerts_not_written"),
        "nothing counted lost:\n{log}"
    );
    support::report(&format!(
        "journald outage: {} alerts before, {} on stderr during, {} after; none lost",
        before.len(),
        during.len(),
        after.len()
    ));
}
