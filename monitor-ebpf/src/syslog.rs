//! `syslog(2)` on return: every call that clears the kernel ring buffer, or
//! tries to, with its result.
//!
//! The program runs on the `sys_exit` tracepoint, which fires on the return
//! of every system call, so its first job is to leave at once when the call
//! is not `syslog`: one read of the saved syscall number and a compare. It
//! needs no entry program: the arguments are still in the registers saved
//! at entry, and the return value comes with the tracepoint, so one program
//! sees the attempt and its outcome together. The permission check happens
//! inside the call, so an unprivileged attempt returns `-EPERM` here and is
//! recorded like any other.
//!
//! A `fexit` program on `do_syslog` would cost the other system calls
//! nothing; it needs BPF trampolines, which some kernels refuse (the test
//! machines answer EPERM). TODO(#9): use it where the kernel allows it.

use aya_ebpf::{
    helpers::generated::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns,
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use monitor_common::{SyslogRecord, counter, kind, syslog_action};

use crate::shared::{CONFIG, EVENTS, count, exec_wakeup, follow, read};

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    // Prototype: (struct pt_regs *regs, long ret).
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: reading single fields of a global of plain integers, volatile
    // so that the compiler does not fold in the build-time defaults; the
    // registers are read through bpf_probe_read_kernel.
    let action = unsafe {
        let nr_at = core::ptr::read_volatile(&raw const CONFIG.offsets.pt_regs_syscall_nr);
        let wanted = core::ptr::read_volatile(&raw const CONFIG.syslog_nr);
        match read::<u64>(regs, nr_at) {
            Ok(nr) if nr == u64::from(wanted) => {}
            _ => return 0,
        }
        let arg_at = core::ptr::read_volatile(&raw const CONFIG.offsets.pt_regs_arg0);
        match read::<u64>(regs, arg_at) {
            Ok(action) => action as i32,
            Err(_) => return 0,
        }
    };
    if action != syslog_action::CLEAR && action != syslog_action::READ_CLEAR {
        return 0;
    }
    let result: i64 = ctx.arg(1);
    if record(action, result as i32).is_err() {
        count(counter::SYSLOG_LOST);
    }
    0
}

fn record(action: i32, result: i32) -> Result<(), i64> {
    // SAFETY: reading the configuration's offsets (plain integers); kernel
    // memory is only read through bpf_probe_read_kernel.
    unsafe {
        let off = core::ptr::read_volatile(&raw const CONFIG.offsets);
        let task = aya_ebpf::helpers::bpf_get_current_task() as *const u8;
        let leader = follow(task, off.task_group_leader)?;
        let cred = follow(task, off.task_cred)?;
        let pid_tgid = bpf_get_current_pid_tgid();
        let uid_gid = bpf_get_current_uid_gid();
        let record = SyslogRecord {
            kind: kind::SYSLOG,
            flags: 0,
            boot_ns: bpf_ktime_get_boot_ns(),
            start_ns: read(leader, off.task_start_boottime)?,
            tgid: (pid_tgid >> 32) as u32,
            tid: pid_tgid as u32,
            action,
            result,
            uid: uid_gid as u32,
            euid: read(cred, off.cred_euid)?,
            gid: (uid_gid >> 32) as u32,
            egid: read(cred, off.cred_egid)?,
        };
        // Rules run on it: wake the reader as for an exec.
        EVENTS
            .output::<SyslogRecord>(&record, exec_wakeup())
            .map_err(i64::from)
    }
}
