//! Types shared by the eBPF program and the daemon.
//!
//! Everything here crosses the kernel/user boundary as raw bytes, so every
//! type is `#[repr(C)]`, `Copy`, padded by hand and free of `bool`, enums and
//! `Option`. The sizes are pinned by compile-time checks that both sides
//! compile, so a field added on one side only cannot go unnoticed.
//!
//! Three kinds of record travel through the ring buffer, told apart by their
//! first field ([`kind`]):
//!
//! - a [`ForkRecord`] when a new process (not a thread) is created;
//! - an [`ExecHeader`] and its blocks when a process execs;
//! - an [`ExitRecord`] when the last thread of a process exits;
//! - a [`SyslogRecord`] when a `syslog(2)` call that clears the kernel ring
//!   buffer returns, whether it succeeded or not.
//!
//! Together they let the daemon keep a table of the live processes from the
//! kernel's own view. Every record names its process by thread group id
//! *and* start time (`task_struct.start_boottime`), so that a reused pid can
//! never be mistaken for the process that had it before.
//!
//! An exec record is an [`ExecHeader`] followed by five variable-length
//! blocks, in this order and without padding between them:
//!
//! 1. the executable's path as a list of NUL-terminated components, leaf
//!    first (`dmesg\0bin\0usr\0` for `/usr/bin/dmesg`), `path_len` bytes;
//! 2. the working directory, in the same form, `cwd_len` bytes;
//! 3. the process's cgroup path, in the same form, `cgroup_len` bytes;
//! 4. the file name given to exec (`bprm->filename`), `filename_len` bytes,
//!    no NUL;
//! 5. the argv block copied from the new process's memory, `argv_len` bytes:
//!    the arguments, each followed by a NUL, exactly as the kernel laid them
//!    out between `mm->arg_start` and `mm->arg_end`.
//!
//! The blocks of bounded size come first so that the program can place each
//! one at an offset the verifier can bound.
#![no_std]

/// Length of `task_struct.comm`, terminator included.
pub const COMM_LEN: usize = 16;

/// Longest path the kernel accepts, terminator included.
pub const PATH_MAX: usize = 4096;

/// Longest single path component the program copies, terminator included.
pub const NAME_MAX: usize = 256;

/// Deepest directory nesting the program walks when it rebuilds the path of
/// the executable; deeper paths are flagged with [`flags::PATH_TRUNCATED`].
pub const PATH_DEPTH_MAX: u32 = 40;

/// Deepest cgroup nesting the program walks; container ids sit within a few
/// levels of the leaf, which is walked first.
pub const CGROUP_DEPTH_MAX: u32 = 12;

/// Bytes of cgroup path the program copies, at most.
pub const CGROUP_MAX: usize = 2048;

/// Value of [`ProbeConfig::syslog_nr`] that matches no system call.
pub const NO_SYSCALL: u32 = u32::MAX;

/// Value of [`ProbeConfig::cgroup_v1_subsys`] when the kernel has no usable
/// cgroup v1 controller to fall back to.
pub const NO_SUBSYS: u32 = u32::MAX;

/// Ceiling, fixed at build time, for the argv capture limit. The limit in
/// force is chosen at load time ([`ProbeConfig::argv_limit`]) and may be any
/// value up to this one.
pub const ARGV_CAPTURE_MAX: usize = 128 * 1024;

/// Default argv capture limit.
pub const ARGV_LIMIT_DEFAULT: u32 = 32 * 1024;

/// Size of the per-CPU scratch buffer one record is assembled in: the header,
/// two path blocks and a file name of at most `PATH_MAX` bytes each, the
/// cgroup block, the argv block, and one component's worth of slack so that
/// a masked offset plus a bounded copy can never leave the buffer.
pub const SCRATCH_SIZE: usize =
    core::mem::size_of::<ExecHeader>() + 3 * PATH_MAX + CGROUP_MAX + NAME_MAX + ARGV_CAPTURE_MAX;

/// Largest exec record the program writes with an argv limit of `argv_limit`.
pub const fn max_exec_record(argv_limit: u32) -> usize {
    core::mem::size_of::<ExecHeader>() + 3 * PATH_MAX + CGROUP_MAX + argv_limit as usize
}

/// The kinds of record that travel through the ring buffer.
pub mod kind {
    /// A successful exec, from `sched_process_exec`.
    pub const EXEC: u32 = 1;
    /// A new process, from `sched_process_fork`.
    pub const FORK: u32 = 2;
    /// The end of a process, from `sched_process_exit`.
    pub const EXIT: u32 = 3;
    /// A call that clears the kernel ring buffer, from `do_syslog`'s exit.
    pub const SYSLOG: u32 = 4;
}

/// `syslog(2)` actions (`SYSLOG_ACTION_*` in the kernel) that clear the
/// kernel ring buffer: the only ones the syslog program records.
pub mod syslog_action {
    /// Read all messages, then clear the buffer.
    pub const READ_CLEAR: i32 = 4;
    /// Clear the buffer.
    pub const CLEAR: i32 = 5;
}

/// Bits of [`ExecHeader::flags`].
pub mod flags {
    /// The argv block was longer than the capture limit and was cut.
    pub const ARGV_TRUNCATED: u32 = 1 << 0;
    /// The argv block could not be read from the new process's memory.
    pub const ARGV_UNREADABLE: u32 = 1 << 1;
    /// The executable's path was deeper or longer than the program walks.
    pub const PATH_TRUNCATED: u32 = 1 << 2;
    /// The executable's path could not be read.
    pub const PATH_UNREADABLE: u32 = 1 << 3;
    /// The process has a controlling terminal (`tty_major`/`tty_minor`).
    pub const HAS_TTY: u32 = 1 << 4;
    /// The working directory was deeper or longer than the program walks.
    pub const CWD_TRUNCATED: u32 = 1 << 5;
    /// The working directory could not be read.
    pub const CWD_UNREADABLE: u32 = 1 << 6;
    /// The cgroup path was deeper or longer than the program walks.
    pub const CGROUP_TRUNCATED: u32 = 1 << 7;
    /// The cgroup path is the cgroup v1 one (the process sits at the root
    /// of the unified hierarchy).
    pub const CGROUP_V1: u32 = 1 << 8;
}

/// Indexes of the per-CPU counter array the program keeps.
pub mod counter {
    /// Exec records lost because the ring buffer had no room.
    pub const RINGBUF_FULL: u32 = 0;
    /// Execs whose argv block could not be read.
    pub const ARGV_UNREADABLE: u32 = 1;
    /// Execs whose executable path could not be read.
    pub const PATH_UNREADABLE: u32 = 2;
    /// Execs the program saw (records written or lost).
    pub const EXECS_SEEN: u32 = 3;
    /// Execs for which no record could be assembled (a kernel structure
    /// could not be read): lost, like a full ring buffer.
    pub const CAPTURE_FAILED: u32 = 4;
    /// Fork records lost (ring buffer full, or a structure unreadable).
    pub const FORKS_LOST: u32 = 5;
    /// Exit records lost (ring buffer full, or a structure unreadable).
    pub const EXITS_LOST: u32 = 6;
    /// Syslog records lost (ring buffer full, or a structure unreadable).
    pub const SYSLOG_LOST: u32 = 7;
    /// Not a count: the most bytes seen waiting in the ring buffer when a
    /// record was submitted, since the daemon last read and reset it.
    pub const RING_PEAK: u32 = 8;
    /// Number of counters.
    pub const COUNT: u32 = 9;
}

/// Fixed part of an exec record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecHeader {
    /// Always [`kind::EXEC`].
    pub kind: u32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` when the exec completed.
    pub boot_ns: u64,
    /// When the process started (`start_boottime`, boot clock
    /// nanoseconds); with `tgid`, the process's identity.
    pub start_ns: u64,
    /// When the parent process started (the start time of `real_parent`'s
    /// group leader: `real_parent` is the thread that forked).
    pub parent_start_ns: u64,
    /// Process id (thread group id) after the exec.
    pub tgid: u32,
    /// Id of the thread that called exec, before the kernel made it the
    /// group leader; differs from `tgid` when a secondary thread execs.
    pub tid: u32,
    /// Thread group id of `real_parent`.
    pub ppid: u32,
    /// Real user id, in the initial user namespace.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Argument count as the kernel counted it (`bprm->argc`).
    pub argc: u32,
    /// Session id (the session leader's pid).
    pub sid: u32,
    /// Process group id (the group leader's pid).
    pub pgid: u32,
    /// The process id in the process's own pid namespace.
    pub vpid: u32,
    /// Controlling terminal's device numbers, when [`flags::HAS_TTY`].
    pub tty_major: u32,
    pub tty_minor: u32,
    /// True size in bytes of the argv block (`arg_end - arg_start`).
    pub argv_size: u32,
    /// Bytes of argv captured after the header blocks.
    pub argv_len: u32,
    /// Bytes of the file name block.
    pub filename_len: u32,
    /// Bytes of the path block.
    pub path_len: u32,
    /// Bytes of the working directory block.
    pub cwd_len: u32,
    /// Bytes of the cgroup block.
    pub cgroup_len: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// `task_struct.comm` after the exec, NUL padded.
    pub comm: [u8; COMM_LEN],
}

/// A new process: `sched_process_fork` for a child that is not a thread.
///
/// The child starts as a copy of its creator (the forking process), whose
/// image, working directory and credentials it inherits; its parent is the
/// child's `real_parent`, which is the creator except with `CLONE_PARENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkRecord {
    /// Always [`kind::FORK`].
    pub kind: u32,
    /// [`flags::HAS_TTY`] or zero.
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` at the fork.
    pub boot_ns: u64,
    /// The child's start time (`start_boottime`).
    pub child_start_ns: u64,
    /// Start time of the process of the child's `real_parent` (its group
    /// leader's).
    pub parent_start_ns: u64,
    /// Start time of the forking process (its group leader's).
    pub creator_start_ns: u64,
    /// The child's pid.
    pub child_tgid: u32,
    /// Thread group id of the child's `real_parent`.
    pub parent_tgid: u32,
    /// Thread group id of the forking process.
    pub creator_tgid: u32,
    /// The child's pid in its own pid namespace.
    pub child_vpid: u32,
    /// What the child inherited, which is the creator's at this moment:
    /// real and effective user and group ids, session and process group,
    /// terminal (when [`flags::HAS_TTY`] is in `flags`) and `comm`.
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sid: u32,
    pub pgid: u32,
    pub tty_major: u32,
    pub tty_minor: u32,
    pub comm: [u8; COMM_LEN],
}

/// The last thread of a process exited: `sched_process_exit` when the
/// thread group's live count has dropped to zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    /// Always [`kind::EXIT`].
    pub kind: u32,
    /// No flags are defined yet; always zero.
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` at the exit.
    pub boot_ns: u64,
    /// The process's start time (its group leader's `start_boottime`).
    pub start_ns: u64,
    /// The process id.
    pub tgid: u32,
    /// Wait status of the exiting thread (`task_struct.exit_code`): exit
    /// status in bits 8..16, terminating signal in bits 0..7.
    pub exit_code: u32,
}

/// A `syslog(2)` call that clears, or tried to clear, the kernel ring
/// buffer: `do_syslog` returned, with one of the [`syslog_action`]s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyslogRecord {
    /// Always [`kind::SYSLOG`].
    pub kind: u32,
    /// No flags are defined yet; always zero.
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` at the return.
    pub boot_ns: u64,
    /// Start time of the calling process (its group leader's).
    pub start_ns: u64,
    /// The calling process.
    pub tgid: u32,
    /// The calling thread.
    pub tid: u32,
    /// The `syslog(2)` action.
    pub action: i32,
    /// What the call returned: 0 or a byte count on success, a negative
    /// errno on failure.
    pub result: i32,
    /// Real and effective user and group ids of the caller.
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// Byte offsets of the kernel structure fields the program reads. The daemon
/// fills them from the running kernel's BTF before load; none is known at
/// build time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_mm: u32,
    pub task_cred: u32,
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub bprm_file: u32,
    pub bprm_filename: u32,
    pub bprm_argc: u32,
    pub file_f_path: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_name: u32,
    pub qstr_name: u32,
    pub vfsmount_mnt_root: u32,
    pub mount_mnt: u32,
    pub mount_mnt_parent: u32,
    pub mount_mnt_mountpoint: u32,
    pub task_pid: u32,
    pub task_start_boottime: u32,
    pub task_group_leader: u32,
    pub task_exit_code: u32,
    pub task_signal: u32,
    pub task_thread_pid: u32,
    pub task_fs: u32,
    pub task_cgroups: u32,
    pub signal_live: u32,
    pub signal_pids: u32,
    pub signal_tty: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_nr: u32,
    /// Index of `PIDTYPE_PGID` in `signal_struct.pids`.
    pub pidtype_pgid: u32,
    /// Index of `PIDTYPE_SID` in `signal_struct.pids`.
    pub pidtype_sid: u32,
    pub tty_index: u32,
    pub tty_driver: u32,
    pub driver_major: u32,
    pub driver_minor_start: u32,
    pub fs_pwd: u32,
    pub css_set_dfl_cgrp: u32,
    pub css_set_subsys: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_parent: u32,
    pub kernfs_name: u32,
    /// Where the saved registers (`struct pt_regs`) keep the system call
    /// number and its first argument (`orig_ax` and `di` on x86-64).
    pub pt_regs_syscall_nr: u32,
    pub pt_regs_arg0: u32,
}

/// Read-only configuration the daemon writes into the program before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Bytes of argv to capture per exec, at most [`ARGV_CAPTURE_MAX`].
    pub argv_limit: u32,
    /// Index in `css_set.subsys` of the cgroup v1 controller whose path is
    /// used when a process sits at the root of the unified hierarchy, or
    /// [`NO_SUBSYS`].
    pub cgroup_v1_subsys: u32,
    /// Pending bytes in the ring buffer above which fork and exit records
    /// wake the reader; below it they wait for the next exec record or the
    /// reader's own timer.
    pub wakeup_bytes: u64,
    /// The least time between two wake-ups by exec and syslog records, in
    /// nanoseconds: a record that comes sooner after the last wake-up is
    /// submitted without one, and the reader, which looks again this long
    /// after each wake-up while records keep coming, fetches it then.
    pub wakeup_gap_ns: u64,
    /// Field offsets of the running kernel.
    pub offsets: KernelOffsets,
    /// The number of `syslog(2)` on this architecture, or [`NO_SYSCALL`]
    /// to watch none.
    pub syslog_nr: u32,
}

/// Number of `u32` offsets in [`KernelOffsets`].
pub const OFFSET_COUNT: usize = 53;

const _: () = assert!(core::mem::size_of::<ExecHeader>() == 128);
const _: () = assert!(core::mem::size_of::<ExecHeader>().is_multiple_of(8));
const _: () = assert!(core::mem::size_of::<ForkRecord>() == 104);
const _: () = assert!(core::mem::size_of::<ExitRecord>() == 32);
const _: () = assert!(core::mem::size_of::<SyslogRecord>() == 56);
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == OFFSET_COUNT * 4);
const _: () = assert!(core::mem::size_of::<ProbeConfig>() == 24 + OFFSET_COUNT * 4 + 4);
const _: () = assert!(CGROUP_MAX.is_power_of_two() && CGROUP_MAX > NAME_MAX);
const _: () = assert!(PATH_MAX.is_power_of_two() && ARGV_CAPTURE_MAX.is_power_of_two());
const _: () = assert!(ARGV_LIMIT_DEFAULT as usize <= ARGV_CAPTURE_MAX);

// SAFETY: all of these are plain `repr(C)` structs of integers with no
// implicit padding (checked by the size assertions above), so any bit pattern
// is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExecHeader {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ForkRecord {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExitRecord {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyslogRecord {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for KernelOffsets {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ProbeConfig {}
