//! The monitors compared: ours, libbpf-tools' execsnoop, a bpftrace
//! one-liner on `sched_process_exec`, auditd with an execve rule, and
//! auditd with laurel. Each is started fresh for every measured run, its
//! output followed by a [`Collector`], and stopped afterwards.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::collect::Collector;
use super::proc;
use super::workload::{self, Workload};

/// One monitor, as configured for the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// No monitor: the baseline.
    None,
    /// Ours, with the built-in rules or with the rule files given. With
    /// `events`, every event goes to stdout (`--print-events`), where the
    /// benchmark counts them; without, it runs as deployed: alerts only,
    /// to the journal and to stdout.
    Ours {
        rules: Option<PathBuf>,
        events: bool,
    },
    Execsnoop,
    Bpftrace,
    Auditd,
    AuditdLaurel,
}

impl Kind {
    pub fn label(&self) -> String {
        match self {
            Kind::None => "none".into(),
            Kind::Ours { rules, events } => format!(
                "monitor, {}, {}",
                if *events {
                    "every event out"
                } else {
                    "alerts only"
                },
                if rules.is_some() {
                    "Elastic's Linux rules"
                } else {
                    "built-in rules"
                }
            ),
            Kind::Execsnoop => "libbpf-tools execsnoop".into(),
            Kind::Bpftrace => "bpftrace one-liner".into(),
            Kind::Auditd => "auditd, execve rule".into(),
            Kind::AuditdLaurel => "auditd + laurel".into(),
        }
    }

    /// Where the monitor stands in the report's tables.
    pub fn rank(&self) -> u8 {
        match self {
            Kind::None => 0,
            Kind::Ours {
                rules: None,
                events: false,
            } => 1,
            Kind::Ours {
                rules: Some(_),
                events: false,
            } => 2,
            Kind::Ours { events: true, .. } => 3,
            Kind::Execsnoop => 4,
            Kind::Bpftrace => 5,
            Kind::Auditd => 6,
            Kind::AuditdLaurel => 7,
        }
    }

    /// Whether its output shows every exec, so that loss can be counted
    /// end to end.
    pub fn shows_every_exec(&self) -> bool {
        !matches!(self, Kind::None | Kind::Ours { events: false, .. })
    }

    /// Whether the kernel side is an eBPF program of the monitor's own.
    pub fn is_ebpf(&self) -> bool {
        matches!(self, Kind::Ours { .. } | Kind::Execsnoop | Kind::Bpftrace)
    }
}

/// The bpftrace program: the pid and the first two arguments of each exec,
/// read from the new program's argument area (argv[0] is `/bin/true` in
/// every workload that bpftrace is given, so argv[1] starts 10 bytes in).
pub const BPFTRACE_PROGRAM: &str = "tracepoint:sched:sched_process_exec { \
     printf(\"%d %s %s\\n\", pid, str(uptr(curtask->mm->arg_start)), \
     str(uptr(curtask->mm->arg_start + 10))); }";

/// A started monitor.
pub struct Running {
    pub kind: Kind,
    children: Vec<Child>,
    /// Processes whose CPU time and memory count for the monitor.
    pub pids: Vec<u32>,
    /// The private journald that takes our alerts, when it writes to one.
    journald: Option<u32>,
    /// Its event output.
    pub output: Collector,
    /// Its own log (ours: stderr, where loss totals go).
    log: Collector,
    stop_following: Arc<AtomicBool>,
    scratch: PathBuf,
}

/// Where things are.
pub struct Paths {
    pub binary: PathBuf,
    pub scratch: PathBuf,
}

impl Running {
    /// Starts `kind` and returns once an exec is provably seen.
    pub fn start(kind: &Kind, paths: &Paths) -> Result<Running> {
        let scratch = paths.scratch.join(format!("run-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let output = Collector::default();
        let log = Collector::keeping_lines();
        let stop_following = Arc::new(AtomicBool::new(false));
        let mut children = Vec::new();
        let mut pids = Vec::new();
        let mut journald = None;
        match kind {
            Kind::None => {}
            Kind::Ours { rules, events } => {
                let journal_pid = scratch.join("journald.pid");
                let mut cmd = if *events {
                    Command::new(&paths.binary)
                } else {
                    private_journal(&journal_pid, &paths.binary)
                };
                cmd.args(["--config", "/dev/null", "--output", "stdout"]);
                if *events {
                    cmd.arg("--print-events");
                } else {
                    cmd.args(["--output", "journald"]);
                }
                if let Some(rules) = rules {
                    cmd.arg("--rules").arg(rules).arg("--builtin-rules");
                }
                let child = spawn_piped(&mut cmd, &output, Some(&log))?;
                pids.push(child.id());
                children.push(child);
                if !*events {
                    journald = Some(read_pid(&journal_pid)?);
                }
            }
            Kind::Execsnoop => {
                // Line-buffered: into a pipe, its output would otherwise
                // come in blocks, the last one only at exit.
                let mut cmd = Command::new("stdbuf");
                cmd.args(["-oL", "execsnoop"]);
                let child = spawn_piped(&mut cmd, &output, Some(&log))?;
                pids.push(child.id());
                children.push(child);
            }
            Kind::Bpftrace => {
                let mut cmd = Command::new("bpftrace");
                cmd.args(["-B", "line", "-e", BPFTRACE_PROGRAM]);
                let child = spawn_piped(&mut cmd, &output, Some(&log))?;
                pids.push(child.id());
                children.push(child);
            }
            Kind::Auditd | Kind::AuditdLaurel => {
                let laurel = *kind == Kind::AuditdLaurel;
                let (child, followed) = super::audit::start(&scratch, laurel)?;
                pids.push(child.id());
                children.push(child);
                output.follow(&followed, Arc::clone(&stop_following));
            }
        }
        let mut running = Running {
            kind: kind.clone(),
            children,
            pids,
            journald,
            output,
            log,
            stop_following,
            scratch,
        };
        if let Kind::Ours { events: false, .. } = kind {
            running.wait_until_logged(" ready rules=")?;
        } else if *kind != Kind::None {
            running.wait_until_seeing()?;
            running.add_helpers();
        }
        Ok(running)
    }

    /// Runs a marked `/bin/true` until the output shows it.
    fn wait_until_seeing(&mut self) -> Result<()> {
        let marker = workload::new_marker("ready");
        self.output.count(&marker);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seq = 0u64;
        while Instant::now() < deadline {
            let _ = Command::new("/bin/true")
                .arg(format!("{marker}{seq}"))
                .status();
            seq += 1;
            std::thread::sleep(Duration::from_millis(100));
            if self.output.seen_count() > 0 {
                return Ok(());
            }
            if let Some(child) = self.children.first_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited ({status}) before seeing an exec:\n{}",
                    self.kind.label(),
                    self.log.text()
                );
            }
        }
        bail!(
            "{} saw no exec within 60 s:\n{}",
            self.kind.label(),
            self.log.text()
        )
    }

    /// Waits for `text` in the monitor's log (for a monitor whose output
    /// shows alerts only).
    fn wait_until_logged(&mut self, text: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.log.text().contains(text) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not log {text:?}:\n{}",
            self.kind.label(),
            self.log.text()
        )
    }

    /// The processes that work for the monitor besides the one started:
    /// the kernel's audit thread, and laurel under auditd.
    fn add_helpers(&mut self) {
        if matches!(self.kind, Kind::Auditd | Kind::AuditdLaurel) {
            self.pids.extend(proc::pids_named("kauditd"));
        }
        if self.kind == Kind::AuditdLaurel {
            self.pids.extend(proc::pids_named("laurel"));
        }
    }

    /// Runs `workload` while counting its execs in the output.
    pub fn measure(&self, workload: &Workload, label: &str) -> Measured {
        let marker = workload::new_marker(label);
        self.output.count(&marker);
        let journald: Vec<u32> = self.journald.into_iter().collect();
        let journal_before = proc::cpu_ticks(&journald);
        let cpu_before = proc::cpu_ticks(&self.pids);
        let outcome = workload::run(workload, &marker);
        let rss_kb = proc::rss_kb(&self.pids);
        if self.kind != Kind::None {
            self.output.settle(
                outcome.execs,
                Duration::from_secs(2),
                Duration::from_secs(20),
            );
        }
        let cpu_ticks = proc::cpu_ticks(&self.pids) - cpu_before;
        let journal_ticks = proc::cpu_ticks(&journald) - journal_before;
        let seen = self.output.seen();
        Measured {
            lines: self.output.matched_lines(),
            journal_cpu_seconds: journal_ticks as f64 / proc::ticks_per_second(),
            missing: outcome.missing(&seen.keys().copied().collect()),
            cpu_seconds: cpu_ticks as f64 / proc::ticks_per_second(),
            rss_kb,
            latencies: super::latency::of(&outcome, &seen),
            outcome,
        }
    }

    /// Stops the monitor; returns its own log.
    pub fn stop(mut self) -> Result<String> {
        for child in &mut self.children {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        for child in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if matches!(self.kind, Kind::Auditd | Kind::AuditdLaurel) {
            super::audit::stop();
        }
        if let Some(pid) = self.journald {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.stop_following
            .store(true, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.scratch);
        Ok(self.log.text())
    }
}

/// What one measured run gave.
pub struct Measured {
    pub outcome: workload::Outcome,
    /// Output lines that carried one (an exec may give several).
    pub lines: u64,
    /// CPU of the private journald that took the alerts, if any.
    pub journal_cpu_seconds: f64,
    pub missing: u64,
    pub cpu_seconds: f64,
    pub rss_kb: u64,
    /// Exec-to-output times, in microseconds, where recorded.
    pub latencies: Vec<u64>,
}

/// A journald of the monitor's own, in a private mount namespace, so that
/// the benchmark's alerts (for a stand-in dmesg) never reach the host's
/// journal: `$1` gets journald's pid, the rest is the command to run.
const PRIVATE_JOURNAL: &str = r#"
set -eu
pidfile=$1
shift
for dir in /run/systemd/journal /run/log/journal; do
    mkdir -p "$dir"
    mount -n -t tmpfs -o mode=0755 tmpfs "$dir"
done
if [ -d /var/log/journal ]; then mount -n -t tmpfs -o mode=0755 tmpfs /var/log/journal; fi
/lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile"
tries=0
while [ ! -S /run/systemd/journal/socket ] && [ $tries -lt 200 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
exec "$@"
"#;

/// `binary`, started behind [`PRIVATE_JOURNAL`]; arguments go after it.
fn private_journal(pid_file: &std::path::Path, binary: &std::path::Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(PRIVATE_JOURNAL)
        .arg("private-journal")
        .arg(pid_file)
        .arg(binary);
    cmd
}

/// The pid a script wrote to `path`, waiting for it a little.
fn read_pid(path: &std::path::Path) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!("the private journald did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_piped(cmd: &mut Command, output: &Collector, log: Option<&Collector>) -> Result<Child> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    output.read(child.stdout.take().expect("stdout"));
    let stderr = child.stderr.take().expect("stderr");
    match log {
        Some(log) => log.read(stderr),
        None => Collector::default().read(stderr),
    }
    Ok(child)
}

/// Our daemon's own loss counters from its log at exit: (lost in the
/// kernel, lost in the daemon).
pub fn own_loss(log: &str) -> (u64, u64) {
    let last = |key: &str| {
        log.lines()
            .rev()
            .find_map(|l| {
                let at = l.find(key)? + key.len();
                l[at..].split_whitespace().next()?.parse().ok()
            })
            .unwrap_or(0)
    };
    (last("lost_in_kernel="), last("lost_in_daemon="))
}

/// What execsnoop and bpftrace say they lost ("Lost 12 events" and the
/// like), added up.
pub fn reported_lost(log: &str) -> u64 {
    log.lines()
        .filter_map(|line| {
            let lower = line.to_lowercase();
            let at = lower.find("lost ")? + "lost ".len();
            lower.contains("event").then_some(())?;
            lower[at..].split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_are_read_from_logs() {
        let ours = "WARN events lost or degraded lost_in_kernel=3 lost_in_daemon=1 x=2\n\
                    WARN events lost or degraded lost_in_kernel=359 lost_in_daemon=0\n";
        assert_eq!(own_loss(ours), (359, 0));
        assert_eq!(own_loss("INFO final totals execs_seen=3"), (0, 0));
        assert_eq!(
            reported_lost("Lost 12 events\nlost 3 events on CPU #1\nok"),
            15
        );
    }
}
