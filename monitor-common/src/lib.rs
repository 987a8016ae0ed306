//! Types shared by the eBPF program and the daemon.
//!
//! Everything here crosses the kernel/user boundary as raw bytes, so every
//! type is `#[repr(C)]`, `Copy`, padded by hand and free of `bool`, enums and
//! `Option`. The sizes are pinned by compile-time checks that both sides
//! compile, so a field added on one side only cannot go unnoticed.
//!
//! An exec record is an [`ExecHeader`] followed by three variable-length
//! blocks, in this order and without padding between them:
//!
//! 1. the executable's path as a list of NUL-terminated components, leaf
//!    first (`dmesg\0bin\0usr\0` for `/usr/bin/dmesg`), `path_len` bytes;
//! 2. the file name given to exec (`bprm->filename`), `filename_len` bytes,
//!    no NUL;
//! 3. the argv block copied from the new process's memory, `argv_len` bytes:
//!    the arguments, each followed by a NUL, exactly as the kernel laid them
//!    out between `mm->arg_start` and `mm->arg_end`.
//!
//! TODO(#4): fork and exit records, for the process table. TODO(#5): syslog
//! records.
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

/// Ceiling, fixed at build time, for the argv capture limit. The limit in
/// force is chosen at load time ([`ProbeConfig::argv_limit`]) and may be any
/// value up to this one.
pub const ARGV_CAPTURE_MAX: usize = 128 * 1024;

/// Default argv capture limit.
pub const ARGV_LIMIT_DEFAULT: u32 = 32 * 1024;

/// Size of the per-CPU scratch buffer one record is assembled in: the header,
/// a path block and a file name of at most `PATH_MAX` bytes each, the argv
/// block, and one component's worth of slack so that a masked offset plus a
/// bounded copy can never leave the buffer.
pub const SCRATCH_SIZE: usize =
    core::mem::size_of::<ExecHeader>() + 2 * PATH_MAX + NAME_MAX + ARGV_CAPTURE_MAX;

/// The kinds of record that travel through the ring buffer.
pub mod kind {
    /// A successful exec, from `sched_process_exec`.
    pub const EXEC: u32 = 1;
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
}

/// Indexes of the per-CPU counter array the program keeps.
pub mod counter {
    /// Records lost because the ring buffer had no room.
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
    /// Number of counters.
    pub const COUNT: u32 = 5;
}

/// Fixed part of an exec record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecHeader {
    /// Always [`kind::EXEC`].
    pub kind: u32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` when the exec completed.
    pub boot_ns: u64,
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
    /// True size in bytes of the argv block (`arg_end - arg_start`).
    pub argv_size: u32,
    /// Bytes of argv captured after the header blocks.
    pub argv_len: u32,
    /// Bytes of the file name block.
    pub filename_len: u32,
    /// Bytes of the path block.
    pub path_len: u32,
    /// `task_struct.comm` after the exec, NUL padded.
    pub comm: [u8; COMM_LEN],
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
}

/// Read-only configuration the daemon writes into the program before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Bytes of argv to capture per exec, at most [`ARGV_CAPTURE_MAX`].
    pub argv_limit: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Field offsets of the running kernel.
    pub offsets: KernelOffsets,
}

const _: () = assert!(core::mem::size_of::<ExecHeader>() == 80);
const _: () = assert!(core::mem::size_of::<ExecHeader>().is_multiple_of(8));
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 23 * 4);
const _: () = assert!(core::mem::size_of::<ProbeConfig>() == 8 + 23 * 4);
const _: () = assert!(PATH_MAX.is_power_of_two() && ARGV_CAPTURE_MAX.is_power_of_two());
const _: () = assert!(ARGV_LIMIT_DEFAULT as usize <= ARGV_CAPTURE_MAX);

// SAFETY: all three are plain `repr(C)` structs of integers with no implicit
// padding (checked by the size assertions above), so any bit pattern is a
// valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExecHeader {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for KernelOffsets {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ProbeConfig {}
