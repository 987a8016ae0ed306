//! `sched_process_exec`: capture one exec into the ring buffer.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_str,
        bpf_probe_read_user,
    },
    macros::{btf_tracepoint, map},
    maps::{Array, PerCpuArray, RingBuf},
    programs::BtfTracePointContext,
};
use aya_log_ebpf::warn;
use monitor_common::{
    ARGV_CAPTURE_MAX, ARGV_LIMIT_DEFAULT, COMM_LEN, ExecHeader, KernelOffsets, NAME_MAX,
    PATH_DEPTH_MAX, PATH_MAX, ProbeConfig, SCRATCH_SIZE, counter, flags, kind,
};

/// Written by the daemon before load (see the crate docs).
#[unsafe(no_mangle)]
static CONFIG: ProbeConfig = ProbeConfig {
    argv_limit: ARGV_LIMIT_DEFAULT,
    _pad: 0,
    // SAFETY: KernelOffsets is plain integers; all-zero is a valid value.
    offsets: unsafe { core::mem::zeroed::<KernelOffsets>() },
};

/// Records for the daemon. The size is replaced at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Per-CPU counters, indexed by `monitor_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// One scratch record per CPU. A per-CPU array cannot hold values over
/// 32 KiB, so this is a plain array the daemon sizes to the CPU count and the
/// program indexes by CPU id. Tracepoint programs do not nest on one CPU (the
/// kernel skips a re-entrant run), so a slot has one writer at a time.
#[map]
static SCRATCH: Array<[u8; SCRATCH_SIZE]> = Array::with_max_entries(1, 0);

const HEADER: usize = core::mem::size_of::<ExecHeader>();
const PATH_MASK: u32 = PATH_MAX as u32 - 1;

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    count(counter::EXECS_SEEN);
    if capture(&ctx).is_err() {
        // No record was written for this exec: it is lost, and counted.
        count(counter::CAPTURE_FAILED);
    }
    0
}

fn capture(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // SAFETY: reading a global of plain integers; volatile so that the
    // compiler does not fold in the build-time default.
    let config = unsafe { core::ptr::read_volatile(&CONFIG) };
    let off = &config.offsets;

    // Tracepoint prototype: (struct task_struct *p, pid_t old_pid,
    // struct linux_binprm *bprm).
    let task: *const u8 = ctx.arg(0);
    let old_pid: u64 = ctx.arg(1);
    let bprm: *const u8 = ctx.arg(2);

    // SAFETY: the helper takes no arguments and returns the current CPU id.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let buf = SCRATCH.get_ptr_mut(cpu).ok_or(0)? as *mut u8;

    let mut record_flags = 0;
    // SAFETY: `buf` points at a map value of SCRATCH_SIZE bytes; every write
    // below stays inside it (offsets are masked, sizes bounded).
    unsafe {
        let parent: *const u8 = read(task, off.task_real_parent)?;
        let cred: *const u8 = read(task, off.task_cred)?;
        let mm: *const u8 = read(task, off.task_mm)?;

        let header = ExecHeader {
            kind: kind::EXEC,
            flags: 0,
            boot_ns: bpf_ktime_get_boot_ns(),
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            tid: old_pid as u32,
            ppid: read(parent, off.task_tgid)?,
            uid: read(cred, off.cred_uid)?,
            gid: read(cred, off.cred_gid)?,
            euid: read(cred, off.cred_euid)?,
            egid: read(cred, off.cred_egid)?,
            argc: read::<i32>(bprm, off.bprm_argc)? as u32,
            argv_size: 0,
            argv_len: 0,
            filename_len: 0,
            path_len: 0,
            comm: [0; COMM_LEN],
        };
        let h = buf as *mut ExecHeader;
        h.write_unaligned(header);
        bpf_get_current_comm((*h).comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32);

        let path_len = write_path(buf.add(HEADER), h, bprm, off, &mut record_flags);
        let mut cursor = buf.add(HEADER + (path_len & PATH_MASK) as usize);

        let filename: *const u8 = read(bprm, off.bprm_filename)?;
        let n = bpf_probe_read_kernel_str(cursor as *mut c_void, PATH_MAX as u32, filename.cast());
        // The helper counts the terminating NUL; the record does not.
        let filename_len = if n > 0 { (n - 1) as u32 & PATH_MASK } else { 0 };
        cursor = cursor.add(filename_len as usize);

        let arg_start: u64 = read(mm, off.mm_arg_start)?;
        let arg_end: u64 = read(mm, off.mm_arg_end)?;
        let argv_size = arg_end.saturating_sub(arg_start);
        let mut want = argv_size;
        if want > config.argv_limit as u64 {
            want = config.argv_limit as u64;
            record_flags |= flags::ARGV_TRUNCATED;
        }
        // Restated for the verifier, which does not know the configured limit.
        if want > ARGV_CAPTURE_MAX as u64 {
            want = ARGV_CAPTURE_MAX as u64;
        }
        let mut argv_len = want as u32;
        if bpf_probe_read_user(cursor as *mut c_void, argv_len, arg_start as *const c_void) != 0 {
            argv_len = 0;
            record_flags |= flags::ARGV_UNREADABLE;
            count(counter::ARGV_UNREADABLE);
            warn!(ctx, "argv of pid {} unreadable", header.tgid);
        }

        (*h).flags = record_flags;
        (*h).argv_size = argv_size.min(u32::MAX as u64) as u32;
        (*h).argv_len = argv_len;
        (*h).filename_len = filename_len;
        (*h).path_len = path_len & PATH_MASK;

        let total =
            HEADER + (path_len & PATH_MASK) as usize + filename_len as usize + argv_len as usize;
        let record = core::slice::from_raw_parts(buf as *const u8, total);
        if EVENTS.output::<[u8]>(record, 0).is_err() {
            count(counter::RINGBUF_FULL);
        }
    }
    Ok(())
}

/// Rebuilds the path of the file being executed by walking its dentries up to
/// the root of the mount namespace, crossing mount points on the way. Writes
/// the names leaf first, each NUL-terminated, at `dst`; returns the bytes
/// written. Walking the dentries (rather than using `bprm->filename`) gives
/// the file that really ran for relative paths, symlinks and `fexecve`.
///
/// The running length lives in the record header (`h.path_len`), in map
/// memory, not in a register: the verifier does not track values in map
/// memory, so every iteration starts from the same state and it can prune.
/// Kept in a register, each mix of "crossed a mount" and "copied a name" over
/// the iterations is a different state, and verification exceeds its budget.
///
/// # Safety
/// `dst` must have room for `PATH_MAX + NAME_MAX` bytes; `h` must point at
/// the record header in map memory.
unsafe fn write_path(
    dst: *mut u8,
    h: *mut ExecHeader,
    bprm: *const u8,
    off: &KernelOffsets,
    fl: &mut u32,
) -> u32 {
    // SAFETY: `h` points into the scratch map value (caller's contract).
    let len = unsafe { &raw mut (*h).path_len };
    // SAFETY: as above.
    unsafe { len.write_volatile(0) };
    // SAFETY: every pointer is read through bpf_probe_read_kernel, which
    // fails cleanly on a bad address; writes go to `dst` at masked offsets.
    unsafe {
        let Ok(file) = read::<*const u8>(bprm, off.bprm_file) else {
            return unreadable_path(fl);
        };
        let path = file.add(off.file_f_path as usize);
        let (Ok(mut mnt), Ok(mut dentry)) = (
            read::<*const u8>(path, off.path_mnt),
            read::<*const u8>(path, off.path_dentry),
        ) else {
            return unreadable_path(fl);
        };
        for _ in 0..PATH_DEPTH_MAX {
            let (Ok(mnt_root), Ok(parent)) = (
                read::<*const u8>(mnt, off.vfsmount_mnt_root),
                read::<*const u8>(dentry, off.dentry_d_parent),
            ) else {
                return unreadable_path(fl);
            };
            if dentry == mnt_root || dentry == parent {
                // Top of this mount: continue from where it is mounted, or
                // stop at the namespace's root mount (its own parent).
                let mount = mnt.sub(off.mount_mnt as usize);
                let Ok(mount_parent) = read::<*const u8>(mount, off.mount_mnt_parent) else {
                    return unreadable_path(fl);
                };
                if mount_parent == mount {
                    // The namespace's root mount, or an internal one (memfd
                    // and other anonymous files live on detached dentries
                    // that are their own parent): a file with no path above
                    // it is named by its own dentry; `/` itself is not.
                    if len.read_volatile() == 0 && dentry != mnt_root {
                        copy_name(dst, len, dentry, off, fl);
                    }
                    return len.read_volatile();
                }
                let Ok(mountpoint) = read::<*const u8>(mount, off.mount_mnt_mountpoint) else {
                    return unreadable_path(fl);
                };
                dentry = mountpoint;
                mnt = mount_parent.add(off.mount_mnt as usize);
                continue;
            }
            // Stop while a whole name still fits below PATH_MAX, so that the
            // length never wraps under the mask.
            if len.read_volatile() as usize > PATH_MAX - 1 - NAME_MAX {
                break;
            }
            if !copy_name(dst, len, dentry, off, fl) {
                return 0;
            }
            dentry = parent;
        }
        *fl |= flags::PATH_TRUNCATED;
        len.read_volatile()
    }
}

/// Appends the dentry's name, NUL-terminated, at `dst + *len`; false when it
/// could not be read (the path is then flagged unreadable).
///
/// # Safety
/// As for `write_path`; `*len` must be at most `PATH_MAX - 1 - NAME_MAX`.
#[inline(always)]
unsafe fn copy_name(
    dst: *mut u8,
    len: *mut u32,
    dentry: *const u8,
    off: &KernelOffsets,
    fl: &mut u32,
) -> bool {
    // SAFETY: reads go through the probe-read helpers; the write offset is
    // masked into the buffer and the copy is at most NAME_MAX bytes.
    unsafe {
        let written = len.read_volatile();
        let Ok(name) = read::<*const u8>(dentry.add(off.dentry_d_name as usize), off.qstr_name)
        else {
            unreadable_path(fl);
            return false;
        };
        let n = bpf_probe_read_kernel_str(
            dst.add((written & PATH_MASK) as usize) as *mut c_void,
            NAME_MAX as u32,
            name.cast(),
        );
        if n <= 0 {
            unreadable_path(fl);
            return false;
        }
        len.write_volatile(written + n as u32);
        true
    }
}

fn unreadable_path(fl: &mut u32) -> u32 {
    *fl |= flags::PATH_UNREADABLE;
    count(counter::PATH_UNREADABLE);
    0
}

/// Reads a `T` at `base + offset` from kernel memory.
///
/// # Safety
/// Only the helper touches `base`; a bad address yields an error, not a fault.
#[inline(always)]
unsafe fn read<T: Copy>(base: *const u8, offset: u32) -> Result<T, i64> {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper writes exactly size_of::<T>() bytes into `value` or
    // fails; on failure `value` is never read.
    unsafe {
        let ret = bpf_probe_read_kernel(
            value.as_mut_ptr() as *mut c_void,
            core::mem::size_of::<T>() as u32,
            base.add(offset as usize) as *const c_void,
        );
        if ret != 0 {
            return Err(ret);
        }
        Ok(value.assume_init())
    }
}

fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU,
        // which do not nest.
        unsafe { *slot += 1 };
    }
}
