//! One read of `/proc` at start, for the processes that were already
//! running before the eBPF program was attached.
//!
//! Each process costs six reads: `stat`, `status`, `cmdline` and `cgroup`,
//! and the `exe` and `cwd` links (kernel threads skip `exe` and `cmdline`,
//! which they do not have). Every read goes through a handle on the
//! process's own `/proc/<pid>` directory, so a pid reused mid-read fails
//! the read instead of mixing two processes.
//!
//! Processes come and go while this runs. One that is gone, or whose
//! `stat` or `status` cannot be read, is counted in [`Scan::unreadable`]
//! and left out; one whose other files cannot be read (a zombie has no
//! `exe`, `cwd` or `cmdline`) is kept with those fields empty.
//!
//! Not done yet: threads other than each thread group's leader, and
//! translating paths of processes in other mount namespaces (they are as
//! the kernel shows them to the daemon).

use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;

use procfs::FromRead;
use procfs::process::{Process, Stat, StatFlags, Status};

/// A process found running, as `/proc` described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedProcess {
    /// Process id (thread group id), as the daemon's pid namespace sees it.
    pub pid: u32,
    /// Parent's pid; 0 for the first process and for `kthreadd`.
    pub ppid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub start_ticks: u64,
    /// The kernel's short name for the task, bytes exactly.
    pub comm: Vec<u8>,
    /// Target of /proc/<pid>/exe, bytes exactly (None for kernel threads
    /// or when unreadable).
    pub executable: Option<Vec<u8>>,
    /// The true number of arguments, also when `args` was cut.
    pub args_count: u32,
    /// The arguments were longer than the limit and were cut.
    pub args_truncated: bool,
    /// /proc/<pid>/cmdline split at NULs, each argument's bytes exactly,
    /// empty arguments kept (a trailing NUL does not make an extra empty
    /// argument).
    pub args: Vec<Vec<u8>>,
    /// Target of /proc/<pid>/cwd.
    pub working_directory: Option<Vec<u8>>,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Session id.
    pub sid: u32,
    /// Process group id.
    pub pgid: u32,
    /// Controlling terminal as (major, minor), from stat's tty_nr; None
    /// when 0.
    pub tty: Option<(u32, u32)>,
    /// The pid in the process's own (innermost) pid namespace: the last
    /// number of NSpid in /proc/<pid>/status.
    pub vpid: u32,
    /// The process's cgroup path: the "0::" (cgroup v2) line of
    /// /proc/<pid>/cgroup when it is not "/", else the path of the memory
    /// controller's line (v1), else the v2 path ("/"), else None. Bytes
    /// that are not UTF-8 become U+FFFD.
    pub cgroup: Option<String>,
    /// True for kernel threads (PF_KTHREAD in stat flags).
    pub kernel_thread: bool,
}

/// What one pass over `/proc` found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The processes read, in `/proc`'s order.
    pub processes: Vec<ScannedProcess>,
    /// Processes that vanished or could not be read mid-scan.
    pub unreadable: usize,
}

/// Reads every process (thread group) under /proc.
///
/// Fails only when `/proc` itself cannot be listed.
pub fn scan(args_limit: usize) -> io::Result<Scan> {
    let mut found = Scan::default();
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        // Only the numbered entries are processes.
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        match read_process(pid, args_limit) {
            Some(process) => found.processes.push(process),
            None => found.unreadable += 1,
        }
    }
    Ok(found)
}

/// Reads one process, or None if it is gone or unreadable; at most
/// `args_limit` bytes of its arguments are kept, as for an exec.
///
/// Also None for a pid that names a thread other than its group's leader:
/// `/proc` answers for those too, though it does not list them.
pub fn read_process(pid: u32, args_limit: usize) -> Option<ScannedProcess> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;

    // procfs turns stat into a String, replacing bytes that are not UTF-8;
    // the raw bytes give the exact comm, and the same bytes are parsed.
    let stat_bytes = read_file(&process, "stat")?;
    let comm = comm_of(&stat_bytes)?.to_vec();
    let stat = Stat::from_read(stat_bytes.as_slice()).ok()?;

    // status holds the comm unescaped too, and procfs reads it line by
    // line as UTF-8: a process could hide from a strict parse by naming
    // itself with a stray byte, so the text is made valid first.
    let status_bytes = read_file(&process, "status")?;
    let status_text = String::from_utf8_lossy(&status_bytes);
    let status = Status::from_read(status_text.as_bytes()).ok()?;
    if u32::try_from(status.tgid).ok()? != pid {
        return None;
    }

    let kernel_thread = stat.flags & StatFlags::PF_KTHREAD.bits() != 0;
    let (executable, args) = if kernel_thread {
        (None, Arguments::default())
    } else {
        let args = read_args(&process, args_limit).unwrap_or_default();
        (link_target(&process, "exe"), args)
    };
    let vpid = status
        .nspid
        .as_ref()
        .and_then(|ids| ids.last())
        .map_or(Some(pid), |&id| u32::try_from(id).ok())?;

    Some(ScannedProcess {
        pid,
        ppid: u32::try_from(stat.ppid).ok()?,
        start_ticks: stat.starttime,
        comm,
        executable,
        args: args.args,
        args_count: args.count,
        args_truncated: args.truncated,
        working_directory: link_target(&process, "cwd"),
        uid: status.ruid,
        euid: status.euid,
        gid: status.rgid,
        egid: status.egid,
        sid: u32::try_from(stat.session).ok()?,
        pgid: u32::try_from(stat.pgrp).ok()?,
        // tty_nr is a dev_t squeezed into an int; the bits are what count.
        tty: decode_tty(stat.tty_nr as u32),
        vpid,
        cgroup: read_file(&process, "cgroup").and_then(|bytes| cgroup_path(&bytes)),
        kernel_thread,
    })
}

/// Clock ticks per second (USER_HZ) for converting start_ticks.
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

/// Reads a whole file from the process's `/proc` directory.
fn read_file(process: &Process, name: &str) -> Option<Vec<u8>> {
    let mut file = process.open_relative(name).ok()?;
    let mut bytes = Vec::with_capacity(512);
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The comm in a stat line: between the first `(` and the last `)`, since
/// the name itself may hold parentheses and spaces.
fn comm_of(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(open + 1..close)
}

/// The target of a link in the process's directory (`exe`, `cwd`), bytes
/// exactly. The kernel appends ` (deleted)` to the path of a file that was
/// removed; that suffix is dropped when the file really has no name left,
/// so that the path reads as the exec record gave it.
fn link_target(process: &Process, name: &str) -> Option<Vec<u8>> {
    let target = match name {
        "exe" => process.exe(),
        _ => process.cwd(),
    };
    let mut bytes = target.ok()?.into_os_string().into_vec();
    const DELETED: &[u8] = b" (deleted)";
    if bytes.ends_with(DELETED) {
        let link = format!("/proc/{}/{name}", process.pid());
        let unlinked = std::fs::metadata(link).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt as _;
            m.nlink() == 0
        });
        if unlinked {
            bytes.truncate(bytes.len() - DELETED.len());
        }
    }
    Some(bytes)
}

/// A process's arguments as read from `/proc/<pid>/cmdline`.
#[derive(Debug, Default)]
struct Arguments {
    args: Vec<Vec<u8>>,
    /// The true count, also when the arguments were cut.
    count: u32,
    truncated: bool,
}

/// Reads the arguments, keeping at most `limit` bytes but counting them
/// all, so that a process with megabytes of arguments costs the daemon no
/// more than its exec would have.
fn read_args(process: &Process, limit: usize) -> Option<Arguments> {
    let mut file = process.open_relative("cmdline").ok()?;
    let mut kept = Vec::with_capacity(limit.min(4096));
    (&mut file).take(limit as u64).read_to_end(&mut kept).ok()?;
    let mut nuls = kept.iter().filter(|&&b| b == 0).count();
    let mut last = kept.last().copied();
    let mut truncated = false;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = file.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        truncated = true;
        nuls += chunk[..n].iter().filter(|&&b| b == 0).count();
        last = Some(chunk[n - 1]);
    }
    let args = split_args(&kept);
    // Each argument ends with a NUL; a process that rewrote its arguments
    // may have left the last one without.
    let count = match last {
        None => 0,
        Some(0) => nuls,
        Some(_) => nuls + 1,
    };
    Some(Arguments {
        args,
        count: count as u32,
        truncated,
    })
}

/// Splits a cmdline at NULs. The kernel ends each argument with a NUL, so
/// the last one is a terminator, not the start of another argument; a
/// process that rewrote its arguments may have left it out.
fn split_args(cmdline: &[u8]) -> Vec<Vec<u8>> {
    if cmdline.is_empty() {
        return Vec::new();
    }
    let body = cmdline.strip_suffix(&[0]).unwrap_or(cmdline);
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// Turns stat's tty_nr into (major, minor), or None for no terminal.
///
/// The kernel packs a device number as minor bits 0-7, major bits 8-19,
/// and the rest of the minor in bits 20-31.
fn decode_tty(tty_nr: u32) -> Option<(u32, u32)> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some((major, minor))
}

/// Picks the cgroup path from /proc/<pid>/cgroup, whose lines read
/// `hierarchy:controllers:path`. The v2 path is the most precise when the
/// process has one; on hybrid hosts the v2 tree is often unused ("/") while
/// container engines place processes in the v1 memory hierarchy.
fn cgroup_path(file: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(file);
    let mut unified = None;
    let mut memory = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if hierarchy == "0" && controllers.is_empty() {
            unified = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            memory = Some(path);
        }
    }
    match unified {
        Some(path) if path != "/" => Some(path.to_owned()),
        _ => memory.or(unified).map(str::to_owned),
    }
}

/// The start time, in clock ticks since boot, of the process `pid`, or
/// `None` when it does not exist: the cheap check behind the table's sweep.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let pid = i32::try_from(pid).ok()?;
    procfs::process::Process::new(pid)
        .ok()?
        .stat()
        .ok()
        .map(|stat| stat.starttime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::{Pid, getegid, geteuid, getgid, getppid, getuid};

    /// Starts `sh -c script args...` in a process group of its own.
    fn shell(script: &str, args: &[&str]) -> Child {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).args(args).process_group(0);
        command.spawn().expect("start sh")
    }

    /// Ends the shell and whatever it started.
    fn stop(mut child: Child) {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
    }

    #[test]
    fn the_scan_finds_this_test_process() {
        let found = scan(1 << 20).expect("list /proc");
        let pid = std::process::id();
        let me = found.processes.iter().find(|p| p.pid == pid);
        let me = me.expect("this process is in the scan");

        assert_eq!(me.ppid, getppid().as_raw() as u32);
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.executable.as_deref(), Some(exe.as_os_str().as_bytes()));
        let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
        assert_eq!(me.args, args);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            me.working_directory.as_deref(),
            Some(cwd.as_os_str().as_bytes())
        );
        let ids = (me.uid, me.euid, me.gid, me.egid);
        let (uid, euid) = (getuid().as_raw(), geteuid().as_raw());
        assert_eq!(ids, (uid, euid, getgid().as_raw(), getegid().as_raw()));
        assert_eq!(me.vpid, pid, "/proc is this pid namespace's");
        assert!(!me.kernel_thread);
        assert!(!me.comm.is_empty());
        assert!(me.cgroup.as_deref().is_some_and(|c| c.starts_with('/')));
        assert_eq!(read_process(pid, 1 << 20).as_ref(), Some(me));

        for thread in found.processes.iter().filter(|p| p.kernel_thread) {
            assert_eq!((&thread.executable, thread.args.len()), (&None, 0));
        }
    }

    /// Reads `pid` until `done` holds or five seconds pass. Right after
    /// spawn the child may still be inside execve, with its new arguments
    /// not yet in place (cmdline then reads empty).
    fn read_until(pid: u32, done: impl Fn(&ScannedProcess) -> bool) -> Option<ScannedProcess> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let read = read_process(pid, 1 << 20);
            if read.as_ref().is_some_and(&done) || Instant::now() > deadline {
                return read;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn arguments_are_kept_exactly() {
        let child = shell("sleep 5; exit 0", &["a b", "", "c", ""]);
        let read = read_until(child.id(), |p| !p.args.is_empty());
        stop(child);
        let read = read.expect("the child is readable");
        let want: &[&[u8]] = &[b"sh", b"-c", b"sleep 5; exit 0", b"a b", b"", b"c", b""];
        assert_eq!(read.args, want);
        assert_eq!(read.ppid, std::process::id());
        assert!(read.executable.is_some());
    }

    #[test]
    fn a_comm_that_is_not_utf8_is_read_exactly() {
        let child = shell("printf 'a\\377b)' > /proc/$$/comm; sleep 5; exit 0", &[]);
        let read = read_until(child.id(), |p| p.comm == b"a\xffb)");
        stop(child);
        assert_eq!(read.map(|p| p.comm), Some(b"a\xffb)".to_vec()));
    }

    #[test]
    fn start_ticks_match_stat() {
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let close = stat.iter().rposition(|&b| b == b')').unwrap();
        // Field 3 (state) follows ") "; field 22 is 19 fields later.
        let fields: Vec<&[u8]> = stat[close + 2..].split(|&b| b == b' ').collect();
        let ticks: u64 = std::str::from_utf8(fields[19]).unwrap().parse().unwrap();
        let me = read_process(std::process::id(), 1 << 20).unwrap();
        assert_eq!(me.start_ticks, ticks);
    }

    #[test]
    fn missing_processes_are_none() {
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
        assert_eq!(read_process(pid_max.trim().parse().unwrap(), 1 << 20), None);
        assert_eq!(read_process(0, 1 << 20), None);
        assert_eq!(read_process(u32::MAX, 1 << 20), None);
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        assert_eq!(read_process(child.id(), 1 << 20), None);
    }

    #[test]
    fn ticks_per_second_is_the_systems() {
        use nix::unistd::{SysconfVar, sysconf};
        let hz = sysconf(SysconfVar::CLK_TCK).unwrap().unwrap();
        assert_eq!(ticks_per_second(), hz as u64);
    }

    #[test]
    fn tty_numbers_decode() {
        assert_eq!(decode_tty(0), None);
        assert_eq!(decode_tty(34816), Some((136, 0)), "pts/0");
        assert_eq!(decode_tty(1025), Some((4, 1)), "tty1");
        // pts/300: the minor's high bits sit above the major.
        assert_eq!(decode_tty(1 << 20 | 136 << 8 | 44), Some((136, 300)));
    }

    #[test]
    fn cmdline_splits_at_nuls() {
        let split = |b: &[u8]| split_args(b);
        assert_eq!(split(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split(b"\0"), [b"".to_vec()]);
        assert_eq!(split(b"a\0b c\0"), [b"a".to_vec(), b"b c".to_vec()]);
        assert_eq!(split(b"a\0\0b\0\0"), [&b"a"[..], b"", b"b", b""]);
        assert_eq!(split(b"rewritten title"), [b"rewritten title".to_vec()]);
    }

    #[test]
    fn comm_is_between_the_outer_parentheses() {
        assert_eq!(comm_of(b"12 (a) (b) S 1 2"), Some(&b"a) (b"[..]));
        assert_eq!(comm_of(b"12 () S"), Some(&b""[..]));
        assert_eq!(comm_of(b"garbage"), None);
    }

    #[test]
    fn cgroup_prefers_v2_then_v1_memory() {
        let pick = |text: &str| cgroup_path(text.as_bytes());
        assert_eq!(
            pick("0::/system.slice/a.service\n").as_deref(),
            Some("/system.slice/a.service")
        );
        let hybrid = "9:name=systemd:/\n4:memory:/docker/x\n1:cpu:/\n0::/\n";
        assert_eq!(pick(hybrid).as_deref(), Some("/docker/x"));
        assert_eq!(pick("4:memory:/docker/x\n").as_deref(), Some("/docker/x"));
        assert_eq!(pick("3:cpu,cpuacct:/a\n0::/\n").as_deref(), Some("/"));
        assert_eq!(pick("0::/a:b\n").as_deref(), Some("/a:b"));
        assert_eq!(pick(""), None);
    }

    #[test]
    fn long_arguments_are_cut_at_the_limit_and_counted_whole() {
        let big = "a".repeat(5000);
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5; exit 0", "x", &big, "y", ""])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let mut read = None;
        for _ in 0..100 {
            read = read_process(pid, 1000).filter(|p| !p.args.is_empty());
            if read.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let p = read.expect("the child's arguments");
        let kept: usize = p.args.iter().map(|a| a.len() + 1).sum();
        assert!(kept <= 1001, "{kept} bytes kept");
        assert!(p.args_truncated);
        assert_eq!(p.args_count, 7, "sh -c script x big y and an empty one");
    }
}
