//! The daemon's memory with many live processes, and over a long run of
//! short-lived ones.
//!
//! Runs the release daemon (root needed), then:
//!
//! 1. starts 10,000 processes that stay alive (`sleep` with a distinct
//!    argument each) and reads the daemon's resident memory with all of
//!    them in its process table, then after they all exited;
//! 2. runs one million short-lived execs (fork and exec of `/bin/true`, two
//!    workers) and samples the daemon's resident memory every 100,000, to
//!    show whether it grows with the number of processes it has seen rather
//!    than with the number alive.
//!
//! `MONITOR_BENCH_LIVE` and `MONITOR_BENCH_EXECS` change the two counts.
//! Prints a report; asserts nothing about the figures (they are
//! measurements, not pass/fail criteria).
//!
//! Run with `cargo bench --bench process_memory`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of `/proc/<pid>/status` in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in status"))
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect(")")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn start() -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_monitor"))
            .args(["--output", "stdout", "--stats-interval", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while !log
            .lock()
            .unwrap()
            .contains("already running read from /proc")
        {
            assert!(
                Instant::now() < deadline,
                "daemon did not start:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Daemon { child, log }
    }

    fn rss(&self) -> u64 {
        status_kb(self.child.id(), "VmRSS:")
    }

    /// Resident memory once it has stopped changing (the daemon caught up).
    fn settled_rss(&self) -> u64 {
        let mut last = self.rss();
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let now = self.rss();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.child.wait().expect("wait");
        std::thread::sleep(Duration::from_millis(300));
        self.log.lock().unwrap().clone()
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("process_memory: needs root to load the eBPF programs; nothing measured");
        return;
    }
    let live = count("MONITOR_BENCH_LIVE", 10_000);
    let execs = count("MONITOR_BENCH_EXECS", 1_000_000);
    let daemon = Daemon::start();
    let pid = daemon.child.id();
    let idle = daemon.settled_rss();
    println!("daemon idle: {}", mb(idle));

    let mut sleepers: Vec<Child> = (0..live)
        .map(|i| {
            Command::new("/bin/sleep")
                .args(["600", &format!("0.{i:06}")])
                .spawn()
                .expect("spawn sleep")
        })
        .collect();
    let with_live = daemon.settled_rss();
    println!(
        "with {live} more live processes: {} (+{} , {:.0} bytes per process)",
        mb(with_live),
        mb(with_live.saturating_sub(idle)),
        with_live.saturating_sub(idle) as f64 * 1024.0 / live as f64
    );
    for s in &mut sleepers {
        let _ = s.kill();
    }
    for s in &mut sleepers {
        let _ = s.wait();
    }
    drop(sleepers);
    let after_exit = daemon.settled_rss();
    println!("after they exited: {}", mb(after_exit));

    let done = Arc::new(AtomicU64::new(0));
    let start_cpu = cpu_ticks(pid);
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while done.fetch_add(1, Ordering::Relaxed) < execs {
                    Command::new("/bin/true")
                        .arg("short-lived")
                        .status()
                        .expect("run true");
                }
            })
        })
        .collect();
    let mut next = 100_000.min(execs);
    let mut samples = Vec::new();
    while samples.len() < 10 && next <= execs {
        if done.load(Ordering::Relaxed) >= next {
            samples.push((next, daemon.rss()));
            println!("after {next:>9} execs: {}", mb(daemon.rss()));
            next += execs / 10;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in workers {
        w.join().expect("worker");
    }
    let elapsed = started.elapsed();
    let final_rss = daemon.settled_rss();
    let cpu = cpu_ticks(pid) - start_cpu;
    let ticks = 100.0; // USER_HZ
    println!(
        "{execs} execs in {:.0} s ({:.0}/s); daemon CPU {:.1} s, {:.0} us per exec \
         (fork, exec and exit records)",
        elapsed.as_secs_f64(),
        execs as f64 / elapsed.as_secs_f64(),
        cpu as f64 / ticks,
        cpu as f64 / ticks * 1e6 / execs as f64
    );
    let first = samples.first().map_or(after_exit, |s| s.1);
    println!(
        "resident memory after the run: {} (growth from the first sample: {})",
        mb(final_rss),
        mb(final_rss.saturating_sub(first))
    );
    let log = daemon.stop();
    for line in log
        .lines()
        .filter(|l| l.contains("lost") || l.contains("final totals"))
    {
        println!("daemon: {line}");
    }
}
