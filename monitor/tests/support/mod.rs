//! Shared pieces of the integration tests: running the daemon as a child
//! process, collecting what it writes, starting journald, and reading alerts
//! back from the journal.
//!
//! Tests that load the eBPF program need root (or CAP_BPF and CAP_PERFMON).
//! Without it they fail with a message saying so, unless
//! `MONITOR_SKIP_KERNEL_TESTS=1` asks to skip them.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_monitor");
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// True when the test may run; panics with the reason when it may not and
/// skipping was not asked for.
pub fn privileged() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("MONITOR_SKIP_KERNEL_TESTS").is_some() {
        eprintln!("skipped: needs root (MONITOR_SKIP_KERNEL_TESTS is set)");
        return false;
    }
    panic!(
        "this test loads the eBPF program and needs root; run the tests as root, \
         or set MONITOR_SKIP_KERNEL_TESTS=1 to skip it"
    );
}

/// A running daemon and everything it has written so far.
pub struct Daemon {
    child: Child,
    stdout: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon with `args` plus `--output stdout --print-events`,
    /// and returns once it provably captures execs.
    pub fn start(args: &[&str]) -> Daemon {
        Self::start_with_env(args, &[])
    }

    /// [`Daemon::start`] with extra environment variables. Unless `args`
    /// name a configuration file, none is read (`--config /dev/null`), so
    /// that one installed on the machine does not change the tests.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::start_wrapped(&[BINARY], args, env)
    }

    /// [`Daemon::start_with_env`] through a wrapper: `command` is the
    /// wrapper's argv ending with the daemon's path (the wrapper must exec
    /// the daemon, or pass signals on to it).
    pub fn start_wrapped(command: &[&str], args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let config: &[&str] = if args.contains(&"--config") {
            &[]
        } else {
            &["--config", "/dev/null"]
        };
        let mut child = Command::new(command[0])
            .args(&command[1..])
            .args(config)
            .args(args)
            .args(["--output", "stdout", "--print-events"])
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the daemon");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let doc: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                sink.lock().expect("lock").push(doc);
            }
        });
        let err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut daemon = Daemon {
            child,
            stdout,
            stderr,
        };
        daemon.wait_until_capturing();
        daemon
    }

    /// Runs `/bin/true` with a unique marker until the daemon reports it.
    fn wait_until_capturing(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let marker = format!("ready-{}", rand_suffix());
            let pid = run(&["/bin/true", &marker]).0;
            if self.wait_event(pid, Duration::from_millis(500)).is_some() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "daemon exited ({status}) before capturing:\n{}",
                    self.stderr()
                );
            }
        }
        panic!(
            "daemon did not capture an exec within 60 s:\n{}",
            self.stderr()
        );
    }

    /// Everything the daemon logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Documents written to stdout so far.
    pub fn documents(&self) -> Vec<Value> {
        self.stdout.lock().expect("lock").clone()
    }

    /// The (first) exec event for `pid`, waiting up to `timeout`.
    pub fn wait_event(&self, pid: u32, timeout: Duration) -> Option<Value> {
        self.wait_action(pid, "exec", timeout)
    }

    /// The first event for `pid` with this `event.action`, waiting up to
    /// `timeout`.
    pub fn wait_action(&self, pid: u32, action: &str, timeout: Duration) -> Option<Value> {
        self.wait_document(timeout, |d| {
            is_kind(d, "event") && d["event"]["action"] == action && pid_of(d) == Some(pid)
        })
    }

    /// Every event for `pid` with this `event.action` seen so far.
    pub fn events(&self, pid: u32, action: &str) -> Vec<Value> {
        self.documents()
            .into_iter()
            .filter(|d| is_kind(d, "event") && d["event"]["action"] == action)
            .filter(|d| pid_of(d) == Some(pid))
            .collect()
    }

    /// The first exec event whose arguments include `marker`, waiting up to
    /// `timeout`.
    pub fn wait_exec_with(&self, marker: &str, timeout: Duration) -> Option<Value> {
        self.wait_document(timeout, |d| {
            is_kind(d, "event")
                && d["event"]["action"] == "exec"
                && d["process"]["args"]
                    .as_array()
                    .is_some_and(|args| args.iter().any(|a| a == marker))
        })
    }

    /// The first alert for `pid`, waiting up to `timeout`.
    pub fn wait_alert(&self, pid: u32, timeout: Duration) -> Option<Value> {
        self.wait_document(timeout, |d| is_kind(d, "alert") && pid_of(d) == Some(pid))
    }

    /// All alerts for `pid` seen so far.
    pub fn alerts(&self, pid: u32) -> Vec<Value> {
        self.documents()
            .into_iter()
            .filter(|d| is_kind(d, "alert") && pid_of(d) == Some(pid))
            .collect()
    }

    pub fn wait_document(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.stdout.lock().expect("lock").iter().find(|d| pred(d)) {
                return Some(d.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `timeout` for a log line containing `text` after the
    /// first `skip` bytes of the log; returns the log's length after it.
    pub fn wait_log(&self, text: &str, skip: usize, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.stderr();
            if let Some(at) = log.get(skip..).and_then(|rest| rest.find(text)) {
                let end = log[skip + at..]
                    .find('\n')
                    .map_or(log.len(), |n| skip + at + n);
                return Some(end);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits for the exit; returns the exit code and the
    /// complete log.
    pub fn stop_with(self, signal: nix::sys::signal::Signal) -> (Option<i32>, String) {
        let pid = self.pid();
        self.stop_through(pid, signal)
    }

    /// Sends `signal` to `pid` (the daemon inside a wrapper that does not
    /// pass signals on) and waits for the wrapper's exit; returns its exit
    /// code and the complete log.
    pub fn stop_through(
        mut self,
        pid: nix::unistd::Pid,
        signal: nix::sys::signal::Signal,
    ) -> (Option<i32>, String) {
        nix::sys::signal::kill(pid, signal).expect("signal the daemon");
        let status = self.child.wait().expect("wait for the daemon");
        // Give the reader threads a moment to drain the pipes.
        std::thread::sleep(Duration::from_millis(200));
        (status.code(), self.stderr())
    }
}

impl Drop for Daemon {
    /// SIGTERM, then SIGKILL after ten seconds: a wrapper that ignores
    /// SIGTERM must not hang a failed test.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_kind(doc: &Value, kind: &str) -> bool {
    doc["event"]["kind"] == kind
}

fn pid_of(doc: &Value) -> Option<u32> {
    doc["process"]["pid"].as_u64().map(|p| p as u32)
}

/// Runs a command to completion; returns its pid and exit status.
pub fn run(argv: &[&str]) -> (u32, std::process::ExitStatus) {
    run_in(argv, None)
}

/// Runs a command in `dir` to completion.
pub fn run_in(argv: &[&str], dir: Option<&Path>) -> (u32, std::process::ExitStatus) {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let pid = child.id();
    let status = child.wait().expect("wait");
    (pid, status)
}

/// A short random suffix for markers.
pub fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Makes sure a journald is listening, starting one if needed (PID 1 is not
/// systemd on the test machines).
pub fn ensure_journald() {
    drop(start_journald());
}

/// Starts journald unless one is listening; returns its process, or `None`
/// when one was already running.
pub fn start_journald() -> Option<Child> {
    if journal_accepts() {
        return None;
    }
    let journald = [
        "/lib/systemd/systemd-journald",
        "/usr/lib/systemd/systemd-journald",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("systemd-journald is not installed (Debian package systemd)");
    let _ = std::fs::remove_file(JOURNAL_SOCKET);
    // Left running on purpose: later tests, and journalctl after them, use it.
    let child = Command::new(journald)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start systemd-journald");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journal_accepts() {
        assert!(
            Instant::now() < deadline,
            "journald did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child)
}

/// Whether journald takes messages on its socket now.
pub fn journal_accepts() -> bool {
    UnixDatagram::unbound()
        .and_then(|s| s.connect(JOURNAL_SOCKET))
        .is_ok()
}

/// The `process.entity_id` of an event or alert: unlike the pid, unique
/// on the host, so it finds this run's journal entries and no older ones.
pub fn entity_of(doc: &Value) -> String {
    doc["process"]["entity_id"]
        .as_str()
        .expect("process.entity_id")
        .to_owned()
}

/// Journal entries with `FIELD=value`, read with `journalctl -o json`.
pub fn journal_entries(matches: &[&str], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("journalctl")
            .args(["-o", "json", "--all", "--no-pager"])
            .args(matches)
            .output()
            .expect("run journalctl");
        let entries: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if !entries.is_empty() || Instant::now() >= deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints a measurement past the test harness's output capture, so that it
/// shows in every run's log.
pub fn report(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
