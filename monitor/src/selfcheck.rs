//! The start-up self-check: proof that the program reads this kernel right.
//!
//! The eBPF program reads kernel structures at offsets the daemon took from
//! BTF (see [`crate::btf`]); a kernel whose layout those offsets do not fit
//! would yield events full of plausible garbage. So before it says it is
//! ready, the daemon starts a known process of its own (its own binary,
//! with arguments it chose, which waits on its standard input), waits for
//! that exec's record, and compares what the kernel side read with what
//! `/proc` says of the same process: pids, parent, start time, ids,
//! session, process group, terminal, name, arguments, executable and
//! working directory. On any difference, or when no record arrives, the
//! daemon names the fields and refuses to run.
//!
//! The cgroup path is not compared: inside a cgroup namespace `/proc` shows
//! it relative to the namespace's root, the record from the host's. Paths
//! under a chroot compare by their ends, for the same reason.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::process::scan::{self, ScannedProcess};
use crate::record::ExecRecord;

/// The first argument that makes the binary the self-check's child.
const CHILD_MARK: &str = "--self-check-child";

/// The name the child runs under (its argv[0]).
const CHILD_NAME: &str = "monitor-self-check";

/// How long the daemon waits for the child's exec record while the ring
/// buffer has nothing else for it...
pub const IDLE_WAIT: Duration = Duration::from_secs(10);

/// ...and at most, however busy the host (a storm of execs at start can
/// put many records ahead of the child's).
pub const MOST_WAIT: Duration = Duration::from_secs(120);

/// Why the daemon refuses to run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The record differs from /proc: the offsets do not fit.
    Differs(String),
    /// /proc does not show the process the record names: it belongs to
    /// another pid namespace than the host's.
    ForeignProc(String),
}

/// Whether this process was started as the self-check's child.
pub fn is_child() -> bool {
    std::env::args_os().nth(1).as_deref() == Some(OsStr::new(CHILD_MARK))
}

/// The child's whole life: wait until the daemon closes standard input.
pub fn child_main() -> std::process::ExitCode {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::ExitCode::SUCCESS
}

/// A self-check under way: the child runs, its record is awaited.
pub struct SelfCheck {
    child: Child,
    /// The child's argv, exactly.
    args: Vec<Vec<u8>>,
    outcome: Option<Result<(), Refusal>>,
}

impl SelfCheck {
    /// Starts the child. Its exec reaches the ring buffer as any other.
    pub fn start() -> Result<Self> {
        // A marker no other exec carries, and arguments that test the
        // capture's edges: a space, an empty one, bytes outside ASCII.
        let nonce = format!("{:032x}", uuid::Uuid::now_v7().as_u128());
        let rest = [CHILD_MARK, &nonce, "two words", "", "caf\u{e9}"];
        // /proc/self/exe runs this very binary, even if the file was
        // replaced on disk since the daemon started.
        let child = Command::new("/proc/self/exe")
            .arg0(CHILD_NAME)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the self-check's child process")?;
        let args = std::iter::once(CHILD_NAME)
            .chain(rest)
            .map(|a| a.as_bytes().to_vec())
            .collect();
        Ok(Self {
            child,
            args,
            outcome: None,
        })
    }

    /// Looks at one exec record; compares it if it is the child's.
    pub fn observe(&mut self, record: &ExecRecord) {
        if self.outcome.is_some() || !self.is_childs(record) {
            return;
        }
        self.outcome = Some(compare(record, &self.args));
    }

    /// Whether the child's record is still awaited.
    pub fn pending(&self) -> bool {
        self.outcome.is_none()
    }

    /// Ends the check: stops the child and says whether the kernel side
    /// read it right.
    pub fn finish(mut self, records_seen: u64, waited: Duration) -> Result<()> {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        match self.outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(Refusal::Differs(differences))) => bail!(
                "start-up self-check failed: the eBPF program read a known exec differently \
                 from /proc ({differences}); the structure offsets taken from BTF do not fit \
                 this kernel, so no event could be trusted; refusing to run"
            ),
            Some(Err(Refusal::ForeignProc(what))) => bail!(
                "start-up self-check failed: {what}; this /proc belongs to another pid \
                 namespace than the host's, whose pids the kernel side reports: run the daemon \
                 in the host's pid namespace (in a container, with --pid=host); refusing to run"
            ),
            None if records_seen == 0 => bail!(
                "start-up self-check failed: no exec record arrived within {} s, not even for \
                 a known process of the daemon's own; the exec tracepoint or the ring buffer \
                 does not work on this kernel; refusing to run",
                waited.as_secs()
            ),
            None => bail!(
                "start-up self-check failed: the exec record of a known process of the \
                 daemon's own was not among the {records_seen} records handled in {} s (their \
                 arguments or file name read wrong, or the record lost to a full ring buffer); \
                 refusing to run",
                waited.as_secs()
            ),
        }
    }

    /// The child's record: the one with its arguments, which hold a nonce
    /// no other exec carries; or, should the arguments be read wrong, an
    /// exec of `/proc/self/exe` with the child's pid in its namespace (a pid
    /// alone could be another namespace's process).
    fn is_childs(&self, record: &ExecRecord) -> bool {
        record.args == self.args
            || (record.filename == b"/proc/self/exe" && record.vpid == self.child.id())
    }
}

/// Compares the record with /proc; the differences, named, on mismatch.
fn compare(record: &ExecRecord, args: &[Vec<u8>]) -> Result<(), Refusal> {
    // /proc is read by the pid the kernel side read. A record whose
    // arguments are right names the child for sure: if /proc then shows
    // nothing or another process there, it is the wrong /proc.
    let seen = scan::read_process(record.pid, usize::MAX);
    let foreign = |what: String| {
        if record.args == args {
            Refusal::ForeignProc(what)
        } else {
            Refusal::Differs(what)
        }
    };
    let Some(seen) = seen else {
        return Err(foreign(format!(
            "process id read as {}, which /proc does not show",
            record.pid
        )));
    };
    if seen.args != args {
        return Err(foreign(format!(
            "process id read as {}, which /proc shows running {:?}",
            record.pid,
            lossy_all(&seen.args)
        )));
    }
    let differences = differences(record, &seen, args);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Differs(differences.join("; ")))
    }
}

fn differences(record: &ExecRecord, seen: &ScannedProcess, args: &[Vec<u8>]) -> Vec<String> {
    let ticks = 1_000_000_000 / scan::ticks_per_second().max(1);
    let mut out = Vec::new();
    let mut check = |field: &str, read: &dyn Debug, expected: &dyn Debug, same: bool| {
        if !same {
            out.push(format!("{field} read as {read:?}, /proc says {expected:?}"));
        }
    };
    // /proc shifts start times by the reader's time namespace's offset.
    let start = record.start_ns.saturating_add_signed(boottime_offset_ns()) / ticks;
    let numbers: [(&str, u64, u64); 9] = [
        ("namespace pid", record.vpid.into(), seen.vpid.into()),
        ("parent pid", record.ppid.into(), seen.ppid.into()),
        ("start (clock ticks)", start, seen.start_ticks),
        ("user id", record.uid.into(), seen.uid.into()),
        ("effective user id", record.euid.into(), seen.euid.into()),
        ("group id", record.gid.into(), seen.gid.into()),
        ("effective group id", record.egid.into(), seen.egid.into()),
        ("session", record.sid.into(), seen.sid.into()),
        ("process group", record.pgid.into(), seen.pgid.into()),
    ];
    for (field, read, expected) in numbers {
        check(field, &read, &expected, read == expected);
    }
    check("terminal", &record.tty, &seen.tty, record.tty == seen.tty);
    check(
        "name",
        &String::from_utf8_lossy(&record.comm),
        &String::from_utf8_lossy(&seen.comm),
        record.comm == seen.comm,
    );
    check(
        "arguments",
        &lossy_all(&record.args),
        &lossy_all(&seen.args),
        record.args == args,
    );
    // A file or folder removed since shows in /proc as "... (deleted)"; the
    // kernel side names it without that mark, so there is nothing to compare.
    let live = |path: &Option<Vec<u8>>| path.clone().filter(|p| !p.ends_with(b" (deleted)"));
    if let Some(exe) = live(&seen.executable) {
        check(
            "executable",
            &record.executable.as_deref().map(String::from_utf8_lossy),
            &String::from_utf8_lossy(&exe),
            record
                .executable
                .as_deref()
                .is_some_and(|r| same_path(r, &exe)),
        );
    }
    if let Some(cwd) = live(&seen.working_directory) {
        check(
            "working directory",
            &record
                .working_directory
                .as_deref()
                .map(String::from_utf8_lossy),
            &String::from_utf8_lossy(&cwd),
            record
                .working_directory
                .as_deref()
                .is_some_and(|r| same_path(r, &cwd)),
        );
    }
    out
}

/// The boot clock offset of this process's time namespace, in
/// nanoseconds; 0 outside one, or on a kernel without time namespaces.
fn boottime_offset_ns() -> i64 {
    let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
    parse_boottime_offset(&text)
}

/// The `boottime <seconds> <nanoseconds>` line of `timens_offsets`.
fn parse_boottime_offset(text: &str) -> i64 {
    text.lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "boottime" {
                return None;
            }
            let secs: i64 = words.next()?.parse().ok()?;
            let nanos: i64 = words.next()?.parse().ok()?;
            Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
        })
        .unwrap_or(0)
}

/// Whether the path the kernel side read names the file /proc names. Under
/// a chroot, /proc gives paths from the process's root, the kernel side
/// from its mount namespace's: the second then ends with the first.
/// A path too deep for the kernel side's walk starts with `...` and holds
/// the end of the path: it must end /proc's.
fn same_path(read: &[u8], proc: &[u8]) -> bool {
    if let Some(end) = read.strip_prefix(b"...") {
        return proc.ends_with(end);
    }
    read == proc || (read.starts_with(b"/") && (proc == b"/" || read.ends_with(proc)))
}

fn lossy_all(args: &[Vec<u8>]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of(seen: &ScannedProcess) -> ExecRecord {
        let ticks = 1_000_000_000 / scan::ticks_per_second();
        ExecRecord {
            start_ns: seen.start_ticks * ticks + 1,
            pid: seen.pid,
            tid: seen.pid,
            ppid: seen.ppid,
            uid: seen.uid,
            gid: seen.gid,
            euid: seen.euid,
            egid: seen.egid,
            sid: seen.sid,
            pgid: seen.pgid,
            vpid: seen.vpid,
            tty: seen.tty,
            comm: seen.comm.clone(),
            executable: seen.executable.clone(),
            working_directory: seen.working_directory.clone(),
            args: seen.args.clone(),
            ..ExecRecord::default()
        }
    }

    #[test]
    fn a_faithful_record_passes_and_each_wrong_field_is_named() {
        let me = scan::read_process(std::process::id(), usize::MAX).expect("read myself");
        let good = record_of(&me);
        assert_eq!(differences(&good, &me, &me.args), Vec::<String>::new());

        let mut bad = good.clone();
        bad.ppid += 1;
        bad.uid += 7;
        bad.args = vec![b"garbage".to_vec()];
        let found = differences(&bad, &me, &me.args);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("parent pid read as"), "{found:?}");
        assert!(found[1].starts_with("user id read as"), "{found:?}");
        assert!(
            found[2].starts_with("arguments read as [\"garbage\"]"),
            "{found:?}"
        );
    }

    #[test]
    fn a_time_namespace_offset_is_read() {
        assert_eq!(
            parse_boottime_offset("monotonic 0 0\nboottime 5 250\n"),
            5_000_000_250
        );
        assert_eq!(parse_boottime_offset("boottime -2 0\n"), -2_000_000_000);
        assert_eq!(parse_boottime_offset(""), 0);
    }

    #[test]
    fn paths_under_a_chroot_are_the_same_file() {
        assert!(same_path(b"/usr/bin/x", b"/usr/bin/x"));
        assert!(same_path(b"/srv/root/usr/bin/x", b"/usr/bin/x"));
        assert!(same_path(b"/srv/root", b"/"));
        assert!(!same_path(b"/usr/bin/y", b"/usr/bin/x"));
        assert!(!same_path(b"", b"/"));
        // Cut by the kernel side's walk: the end must match.
        assert!(same_path(b".../a/a/x", b"/tmp/d/a/a/a/x"));
        assert!(!same_path(b".../a/b/x", b"/tmp/d/a/a/a/x"));
    }

    #[test]
    fn a_pid_proc_does_not_show_is_the_offsets_or_the_namespace() {
        let me = scan::read_process(std::process::id(), usize::MAX).expect("read myself");
        let mut record = record_of(&me);
        record.pid = u32::MAX - 1;
        // The arguments are right, so the record is the child's for sure:
        // /proc is another namespace's.
        let Err(Refusal::ForeignProc(what)) = compare(&record, &me.args) else {
            panic!("not a foreign /proc");
        };
        assert!(what.contains("which /proc does not show"), "{what}");
        // With arguments read wrong too, the offsets are to blame.
        record.args = vec![b"garbage".to_vec()];
        assert!(matches!(
            compare(&record, &me.args),
            Err(Refusal::Differs(_))
        ));
        // Another process at that pid, which /proc shows running other
        // arguments.
        record.pid = 1;
        record.args = me.args.clone();
        let Err(Refusal::ForeignProc(what)) = compare(&record, &me.args) else {
            panic!("not a foreign /proc");
        };
        assert!(what.contains("which /proc shows running"), "{what}");
    }
}
