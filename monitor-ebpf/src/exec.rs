//! `sched_process_exec`: capture one exec into the ring buffer.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel_str, bpf_probe_read_user,
    },
    macros::{btf_tracepoint, map},
    maps::Array,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::warn;
use monitor_common::{
    ARGV_CAPTURE_MAX, COMM_LEN, ExecHeader, PATH_MAX, SCRATCH_SIZE, counter, flags, kind,
};

use crate::path::{CGROUP_MASK, Marks, PATH_MASK, write_cgroup, write_path};
use crate::shared::{
    EVENTS, config, count, exec_wakeup, follow, leader_pid, namespace_pid, opaque, read, tty,
};

/// One scratch record per CPU. A per-CPU array cannot hold values over
/// 32 KiB, so this is a plain array the daemon sizes to the CPU count and the
/// program indexes by CPU id. Tracepoint programs do not nest on one CPU (the
/// kernel skips a re-entrant run), so a slot has one writer at a time.
#[map]
static SCRATCH: Array<[u8; SCRATCH_SIZE]> = Array::with_max_entries(1, 0);

const HEADER: usize = core::mem::size_of::<ExecHeader>();

const EXECUTABLE: Marks = Marks {
    truncated: flags::PATH_TRUNCATED,
    unreadable: flags::PATH_UNREADABLE,
};
const WORKING_DIRECTORY: Marks = Marks {
    truncated: flags::CWD_TRUNCATED,
    unreadable: flags::CWD_UNREADABLE,
};

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
    let config = config();
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
    // below stays inside it (offsets are masked, sizes bounded). Kernel
    // memory is only read through the probe-read helpers.
    unsafe {
        let parent = follow(task, off.task_real_parent)?;
        // `real_parent` is the thread that forked; the parent process's
        // start time is its group leader's.
        let parent_leader = follow(parent, off.task_group_leader)?;
        let cred = follow(task, off.task_cred)?;
        let mm = follow(task, off.task_mm)?;
        let signal = follow(task, off.task_signal)?;

        let mut header = ExecHeader {
            kind: kind::EXEC,
            boot_ns: bpf_ktime_get_boot_ns(),
            start_ns: read(task, off.task_start_boottime)?,
            parent_start_ns: read(parent_leader, off.task_start_boottime)?,
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            tid: old_pid as u32,
            ppid: read(parent, off.task_tgid)?,
            uid: read(cred, off.cred_uid)?,
            gid: read(cred, off.cred_gid)?,
            euid: read(cred, off.cred_euid)?,
            egid: read(cred, off.cred_egid)?,
            argc: read::<i32>(bprm, off.bprm_argc)? as u32,
            sid: leader_pid(signal, off.pidtype_sid, off),
            pgid: leader_pid(signal, off.pidtype_pgid, off),
            vpid: namespace_pid(task, off),
            ..ExecHeader::default()
        };
        if let Some((major, minor)) = tty(signal, off) {
            header.tty_major = major;
            header.tty_minor = minor;
            record_flags |= flags::HAS_TTY;
        }
        let h = buf as *mut ExecHeader;
        h.write_unaligned(header);
        bpf_get_current_comm((*h).comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32);

        let mut cursor = buf.add(HEADER);
        let path_len = match follow(bprm, off.bprm_file) {
            Ok(file) => {
                let path = file.wrapping_add(off.file_f_path as usize);
                let len = &raw mut (*h).path_len;
                write_path(cursor, len, path, off, &mut record_flags, &EXECUTABLE) & PATH_MASK
            }
            Err(_) => {
                record_flags |= flags::PATH_UNREADABLE;
                0
            }
        };
        if record_flags & flags::PATH_UNREADABLE != 0 {
            count(counter::PATH_UNREADABLE);
        }
        cursor = cursor.add(path_len as usize);

        let cwd_len = match follow(task, off.task_fs) {
            Ok(fs) => {
                let pwd = fs.wrapping_add(off.fs_pwd as usize);
                let len = &raw mut (*h).cwd_len;
                write_path(cursor, len, pwd, off, &mut record_flags, &WORKING_DIRECTORY) & PATH_MASK
            }
            Err(_) => {
                record_flags |= flags::CWD_UNREADABLE;
                0
            }
        };
        cursor = cursor.add(cwd_len as usize);

        let len = &raw mut (*h).cgroup_len;
        let cgroup_len = write_cgroup(cursor, len, task, &config, &mut record_flags) & CGROUP_MASK;
        cursor = cursor.add(cgroup_len as usize);

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
        // Restated for the verifier, which does not know the configured
        // limit, on a value the optimiser cannot trace back to an earlier
        // copy: otherwise it may pass the helper a copy the check never
        // touched, whose bounds older verifiers (6.1) do not know.
        let mut want = opaque(want);
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
        (*h).path_len = path_len;
        (*h).cwd_len = cwd_len;
        (*h).cgroup_len = cgroup_len;

        let total = HEADER
            + path_len as usize
            + cwd_len as usize
            + cgroup_len as usize
            + filename_len as usize
            + argv_len as usize;
        let record = core::slice::from_raw_parts(buf as *const u8, total);
        if EVENTS.output::<[u8]>(record, exec_wakeup()).is_err() {
            count(counter::RINGBUF_FULL);
        }
    }
    Ok(())
}
