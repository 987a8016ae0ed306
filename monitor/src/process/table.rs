//! The table of live processes, kept from the kernel's fork, exec and exit
//! records and seeded once from `/proc`.
//!
//! Entries are keyed by pid and checked against the start time every
//! record carries, so a pid that was freed and reused never inherits the
//! dead process's entry. A forked child starts as a copy of its creator
//! (image, directory, credentials, terminal, cgroup), as in the kernel; an
//! exec replaces the image and refreshes everything the exec record
//! carries; an exit removes the entry.
//!
//! When a record refers to a process the table lacks (its fork record was
//! lost, or it started between the attach and the scan), the table reads
//! that one process from `/proc`, if it still exists with the same start
//! time. The table holds at most `capacity` entries; when it is full it
//! first sweeps out processes that are gone (exit records can be lost too),
//! and if it is still full, the new process is not kept (and counted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_common::{ExitRecord, ForkRecord, SyslogRecord};

use super::container::{self, Container};
use super::entity::EntityIds;
use super::image::{Image, text};
use super::scan::{self, ScannedProcess};
use crate::record::{ExecRecord, lossy};

/// Earlier images kept per process for `process.previous`...
const PREVIOUS_MAX: usize = 4;

/// ...each with at most this many bytes of arguments. A process no longer
/// holds the arguments of what it ran before, so without a bound the table
/// would hold many times the memory of the processes it follows.
const PREVIOUS_ARGS_BYTES: usize = 1024;

/// One live process.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    /// Start time, boot clock nanoseconds (to the tick for processes first
    /// seen in `/proc`).
    pub start_ns: u64,
    /// `start_ns` came from the kernel, to the nanosecond (not from `/proc`,
    /// to the tick).
    pub start_exact: bool,
    pub entity_id: Arc<str>,
    /// The parent's pid and start time, as of the last record.
    pub ppid: u32,
    pub parent_start_ns: u64,
    /// What it runs now.
    pub image: Arc<Image>,
    /// What it ran before, oldest first: the image it was forked with, then
    /// each earlier exec (the last four, their arguments cut at 1 KiB).
    /// ECS's `process.previous` shows them once the process has exec'd more
    /// than once.
    pub previous: Vec<Arc<Image>>,
    /// Execs seen in this process (a process found in `/proc` counts one).
    pub execs: u32,
    /// Thread name (`comm`).
    pub thread_name: Arc<str>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sid: u32,
    pub pgid: u32,
    /// Pid in its own pid namespace; 0 when unknown.
    pub vpid: u32,
    /// Controlling terminal (major, minor).
    pub tty: Option<(u32, u32)>,
    pub working_directory: Option<Arc<str>>,
    pub cgroup: Arc<str>,
    pub container: Option<Arc<Container>>,
    /// Boot clock time of the record or read that last set this entry.
    pub observed_ns: u64,
}

/// Counts of what the table could not do, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Processes read from `/proc` because a record named one the table
    /// lacked.
    pub read_from_proc: u64,
    /// Records about a process the table lacked and `/proc` no longer had.
    pub unknown: u64,
    /// Entries removed by a sweep: their exit record was lost.
    pub swept: u64,
    /// Processes not kept because the table was full.
    pub dropped_full: u64,
}

/// The process, its parent and its leaders, as an event describes them.
pub struct Context<'a> {
    pub process: &'a Process,
    pub parent: Option<&'a Process>,
    pub session_leader: Option<&'a Process>,
    pub group_leader: Option<&'a Process>,
}

/// How often a full table may sweep itself: a sweep reads `/proc` for every
/// entry, and a table full of live processes would otherwise sweep on every
/// insert.
const FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Reads one process from `/proc`; replaced in tests.
pub type ProcReader = fn(u32, usize) -> Option<ScannedProcess>;

/// The live processes, by pid.
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
    ids: EntityIds,
    capacity: usize,
    read_proc: ProcReader,
    /// Bytes of arguments kept for a process read from `/proc`.
    args_limit: usize,
    stats: TableStats,
    /// When a full table last swept itself.
    last_full_sweep: Option<Instant>,
}

impl ProcessTable {
    /// An empty table of at most `capacity` processes, keeping at most
    /// `args_limit` bytes of arguments of a process read from `/proc` (as
    /// the kernel side does for an exec).
    pub fn new(ids: EntityIds, capacity: usize, args_limit: usize) -> Self {
        Self {
            args_limit,
            ..Self::with_reader(ids, capacity, scan::read_process)
        }
    }

    /// As [`ProcessTable::new`], reading single processes with `read_proc`.
    pub fn with_reader(ids: EntityIds, capacity: usize, read_proc: ProcReader) -> Self {
        Self {
            processes: HashMap::new(),
            ids,
            capacity,
            read_proc,
            args_limit: monitor_common::ARGV_LIMIT_DEFAULT as usize,
            stats: TableStats::default(),
            last_full_sweep: None,
        }
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// The entity ids this table gives out.
    pub fn ids(&self) -> &EntityIds {
        &self.ids
    }

    /// The process `pid` started at `start_ns`, if the table has it.
    pub fn get(&self, pid: u32, start_ns: u64) -> Option<&Process> {
        self.processes
            .get(&pid)
            .filter(|p| self.same_process(p, start_ns))
    }

    /// Whether `p` is the process that started at `start_ns`: to the
    /// nanosecond when both times came from the kernel, so that a pid
    /// reused within one clock tick is still another process; to the tick
    /// otherwise. A time from `/proc` is a whole number of ticks, which a
    /// kernel time is only once in ten million.
    fn same_process(&self, p: &Process, start_ns: u64) -> bool {
        if p.start_exact && self.ids.ns(self.ids.ticks(start_ns)) != start_ns {
            p.start_ns == start_ns
        } else {
            self.ids.same_start(p.start_ns, start_ns)
        }
    }

    /// Fills the table from a scan of `/proc` made at `observed_ns`, and
    /// returns the pids it added, parents before children.
    pub fn seed(&mut self, scanned: &[ScannedProcess], observed_ns: u64) -> Vec<u32> {
        let mut added: Vec<(u64, u32)> = Vec::with_capacity(scanned.len());
        for s in scanned {
            let process = self.entry_from_scan(s, observed_ns);
            added.push((process.start_ns, process.pid));
            self.insert(process);
        }
        // Parents are linked once all are in: /proc lists by pid, and after
        // the pids wrap a parent's pid can be higher than its child's.
        for &(_, pid) in &added {
            let parent_start = self
                .processes
                .get(&pid)
                .and_then(|p| self.processes.get(&p.ppid))
                .map(|parent| parent.start_ns);
            if let (Some(start), Some(p)) = (parent_start, self.processes.get_mut(&pid)) {
                p.parent_start_ns = start;
            }
        }
        added.sort_unstable();
        added.into_iter().map(|(_, pid)| pid).collect()
    }

    /// A new process: a copy of its creator. Returns the new entry.
    pub fn fork(&mut self, r: &ForkRecord) -> Option<&Process> {
        if self.get(r.child_tgid, r.child_start_ns).is_some() {
            // Seen already, by the scan that raced with this record.
            let child = self.processes.get_mut(&r.child_tgid)?;
            child.ppid = r.parent_tgid;
            child.parent_start_ns = r.parent_start_ns;
            (child.start_ns, child.start_exact) = (r.child_start_ns, true);
            return self.processes.get(&r.child_tgid);
        }
        let entity_id: Arc<str> = self.ids.id(r.child_tgid, r.child_start_ns).into();
        // The creator's credentials, session, terminal and name may have
        // changed since its exec; the record says what they are now.
        if self.lookup(r.creator_tgid, r.creator_start_ns).is_some()
            && let Some(creator) = self.processes.get_mut(&r.creator_tgid)
        {
            inherit(creator, r);
        }
        let mut child = match self.lookup(r.creator_tgid, r.creator_start_ns) {
            Some(creator) => Process {
                pid: r.child_tgid,
                start_ns: r.child_start_ns,
                start_exact: true,
                entity_id,
                ppid: r.parent_tgid,
                parent_start_ns: r.parent_start_ns,
                previous: Vec::new(),
                execs: 0,
                vpid: r.child_vpid,
                observed_ns: r.boot_ns,
                ..creator.clone()
            },
            None => {
                // The creator is gone from the table and from /proc; the
                // child may still be readable itself.
                let s = (self.read_proc)(r.child_tgid, self.args_limit)
                    .filter(|s| self.ids.ticks(r.child_start_ns) == s.start_ticks)?;
                let mut child = self.entry_from_scan(&s, r.boot_ns);
                child.start_ns = r.child_start_ns;
                child.start_exact = true;
                child.execs = 0;
                child
            }
        };
        inherit(&mut child, r);
        self.insert(child);
        self.processes.get(&r.child_tgid)
    }

    /// An exec: the process's new image, and everything else the record
    /// carries. Returns the updated entry, or `None` when the process is new
    /// to the table and the table is full (see [`ProcessTable::untracked`]).
    pub fn exec(&mut self, r: &ExecRecord) -> Option<&Process> {
        let image = Arc::new(Image::from_exec(r));
        let known = self.get(r.pid, r.start_ns).is_some();
        if !known {
            let fresh = self.fresh(r, Arc::clone(&image));
            self.insert(fresh);
        }
        if let Some(p) = self.processes.get_mut(&r.pid) {
            // A scan that read the process after this exec already shows its
            // new image: there is no earlier image to keep.
            let already_seen = p.observed_ns >= r.boot_ns;
            if known && !already_seen {
                p.previous
                    .push(Image::trimmed(&p.image, PREVIOUS_ARGS_BYTES));
                if p.previous.len() > PREVIOUS_MAX {
                    p.previous.remove(0);
                }
                p.execs += 1;
            }
            update_from_exec(p, r, image);
        }
        self.get(r.pid, r.start_ns)
    }

    /// The entry an exec record describes, for a process the table could
    /// not keep: its event still goes out, without earlier images.
    pub fn untracked(&self, r: &ExecRecord) -> Process {
        let image = Arc::new(Image::from_exec(r));
        let mut p = self.fresh(r, Arc::clone(&image));
        update_from_exec(&mut p, r, image);
        p
    }

    /// An exit: removes the process and returns its last state.
    pub fn exit(&mut self, r: &ExitRecord) -> Option<Process> {
        self.get(r.tgid, r.start_ns)?;
        self.processes.remove(&r.tgid)
    }

    /// The process with this identity, read from `/proc` into the table if
    /// it is missing.
    pub fn lookup(&mut self, pid: u32, start_ns: u64) -> Option<&Process> {
        if self.get(pid, start_ns).is_none() {
            let ticks = self.ids.ticks(start_ns);
            match (self.read_proc)(pid, self.args_limit).filter(|s| s.start_ticks == ticks) {
                Some(s) => {
                    self.stats.read_from_proc += 1;
                    let process = self.entry_from_scan(&s, 0);
                    self.insert(process);
                }
                None => {
                    self.stats.unknown += 1;
                    return None;
                }
            }
        }
        self.get(pid, start_ns)
    }

    /// Makes sure the parent of `pid` is in the table, reading it from
    /// `/proc` if needed.
    pub fn resolve_parent(&mut self, pid: u32) {
        let Some((ppid, start)) = self
            .processes
            .get(&pid)
            .map(|p| (p.ppid, p.parent_start_ns))
        else {
            return;
        };
        if ppid != 0 {
            self.lookup(ppid, start);
        }
    }

    /// The process `pid` with its parent and leaders.
    pub fn context(&self, pid: u32) -> Option<Context<'_>> {
        Some(self.context_of(self.processes.get(&pid)?))
    }

    /// A process (perhaps one just removed) with its parent and leaders as
    /// the table knows them.
    pub fn context_of<'a>(&'a self, process: &'a Process) -> Context<'a> {
        // A leader started no later than its members; an entry with the
        // leader's pid that started later is a reuse of that pid.
        let leader = |id: u32| {
            if id == process.pid {
                // Itself, also when it was just removed (its end event).
                return Some(process);
            }
            self.processes
                .get(&id)
                .filter(|l| l.start_ns <= process.start_ns)
        };
        Context {
            process,
            parent: self.get(process.ppid, process.parent_start_ns),
            session_leader: leader(process.sid),
            group_leader: leader(process.pgid),
        }
    }

    /// Removes entries whose process no longer exists (their exit record
    /// was lost); returns how many.
    pub fn sweep(&mut self) -> usize {
        let ids = &self.ids;
        let before = self.processes.len();
        self.processes.retain(|&pid, p| {
            scan::start_ticks(pid).is_some_and(|ticks| ticks == ids.ticks(p.start_ns))
        });
        let removed = before - self.processes.len();
        self.stats.swept += removed as u64;
        removed
    }

    fn insert(&mut self, process: Process) {
        if self.processes.len() >= self.capacity && !self.processes.contains_key(&process.pid) {
            let due = self
                .last_full_sweep
                .is_none_or(|at| at.elapsed() >= FULL_SWEEP_INTERVAL);
            if due {
                self.last_full_sweep = Some(Instant::now());
                self.sweep();
            }
            if self.processes.len() >= self.capacity {
                self.stats.dropped_full += 1;
                return;
            }
        }
        self.processes.insert(process.pid, process);
    }

    /// A process known only by what a syslog record says, for an event
    /// about a process the table could not find; not kept.
    pub fn stranger(&self, r: &SyslogRecord) -> Process {
        let (pid, start_ns) = (r.tgid, r.start_ns);
        Process {
            pid,
            start_ns,
            start_exact: true,
            entity_id: self.ids.id(pid, start_ns).into(),
            ppid: 0,
            parent_start_ns: 0,
            image: Arc::new(Image::default()),
            previous: Vec::new(),
            execs: 0,
            thread_name: Arc::from(""),
            uid: r.uid,
            euid: r.euid,
            gid: r.gid,
            egid: r.egid,
            sid: 0,
            pgid: 0,
            vpid: 0,
            tty: None,
            working_directory: None,
            cgroup: Arc::from(""),
            container: None,
            observed_ns: 0,
        }
    }

    /// An entry for a process the table meets first at its exec.
    fn fresh(&self, r: &ExecRecord, image: Arc<Image>) -> Process {
        Process {
            pid: r.pid,
            start_ns: r.start_ns,
            start_exact: true,
            entity_id: self.ids.id(r.pid, r.start_ns).into(),
            ppid: r.ppid,
            parent_start_ns: r.parent_start_ns,
            image,
            previous: Vec::new(),
            execs: 1,
            thread_name: Arc::from(""),
            uid: r.uid,
            euid: r.euid,
            gid: r.gid,
            egid: r.egid,
            sid: r.sid,
            pgid: r.pgid,
            vpid: r.vpid,
            tty: r.tty,
            working_directory: None,
            cgroup: Arc::from(""),
            container: None,
            observed_ns: r.boot_ns,
        }
    }

    fn entry_from_scan(&self, s: &ScannedProcess, observed_ns: u64) -> Process {
        let start_ns = self.ids.ns(s.start_ticks);
        let parent_start_ns = self
            .processes
            .get(&s.ppid)
            .map_or(0, |parent| parent.start_ns);
        let cgroup: Arc<str> = s.cgroup.as_deref().unwrap_or("").into();
        Process {
            pid: s.pid,
            start_ns,
            start_exact: false,
            entity_id: self.ids.id(s.pid, start_ns).into(),
            ppid: s.ppid,
            parent_start_ns,
            image: Arc::new(Image::from_scan(s)),
            previous: Vec::new(),
            execs: u32::from(!s.kernel_thread),
            thread_name: text(&s.comm).into(),
            uid: s.uid,
            euid: s.euid,
            gid: s.gid,
            egid: s.egid,
            sid: s.sid,
            pgid: s.pgid,
            vpid: s.vpid,
            tty: s.tty,
            working_directory: s.working_directory.as_deref().map(|d| text(d).into()),
            container: container::from_cgroup_path(&cgroup).map(Arc::new),
            cgroup,
            observed_ns,
        }
    }
}

/// Copies what a fork record says the child inherited. The working
/// directory and the cgroup are not in the record (each would take a path
/// walk per fork), so they stay as of the creator's exec.
/// TODO(#9): carry them too, once a fork's cost allows it.
fn inherit(p: &mut Process, r: &ForkRecord) {
    (p.uid, p.euid, p.gid, p.egid) = (r.uid, r.euid, r.gid, r.egid);
    (p.sid, p.pgid) = (r.sid, r.pgid);
    p.tty = (r.flags & monitor_common::flags::HAS_TTY != 0).then_some((r.tty_major, r.tty_minor));
    let comm = r.comm.iter().position(|&b| b == 0).unwrap_or(r.comm.len());
    p.thread_name = text(&r.comm[..comm]).into();
}

/// Copies what an exec record says into the entry.
fn update_from_exec(p: &mut Process, r: &ExecRecord, image: Arc<Image>) {
    (p.start_ns, p.start_exact) = (r.start_ns, true);
    p.image = image;
    p.ppid = r.ppid;
    p.parent_start_ns = r.parent_start_ns;
    p.thread_name = text(&r.comm).into();
    (p.uid, p.euid, p.gid, p.egid) = (r.uid, r.euid, r.gid, r.egid);
    (p.sid, p.pgid, p.vpid, p.tty) = (r.sid, r.pgid, r.vpid, r.tty);
    p.working_directory = r.working_directory.as_deref().map(|d| text(d).into());
    let cgroup = lossy(&r.cgroup).0;
    if *p.cgroup != *cgroup {
        p.container = container::from_cgroup_path(&cgroup).map(Arc::new);
        p.cgroup = cgroup.into();
    }
    p.observed_ns = r.boot_ns;
}
