//! `sched_process_fork` and `sched_process_exit`: the births and deaths the
//! daemon's process table follows.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{bpf_get_current_comm, bpf_ktime_get_boot_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use monitor_common::{COMM_LEN, ExitRecord, ForkRecord, counter, flags, kind};

use crate::shared::{
    EVENTS, config, count, follow, leader_pid, lifecycle_wakeup, namespace_pid, read, tty,
};

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if fork(&ctx).is_err() {
        count(counter::FORKS_LOST);
    }
    0
}

fn fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let config = config();
    let off = &config.offsets;
    // Prototype: (struct task_struct *parent, struct task_struct *child);
    // `parent` is the task calling fork.
    let creator: *const u8 = ctx.arg(0);
    let child: *const u8 = ctx.arg(1);
    // SAFETY: every read goes through bpf_probe_read_kernel.
    unsafe {
        let pid: i32 = read(child, off.task_pid)?;
        let tgid: i32 = read(child, off.task_tgid)?;
        if pid != tgid {
            // A new thread of an existing process: nothing for the table.
            return Ok(());
        }
        // Both are threads, perhaps not their process's leader; start times
        // of processes are their leaders'.
        let real_parent = follow(child, off.task_real_parent)?;
        let parent_leader = follow(real_parent, off.task_group_leader)?;
        let leader = follow(creator, off.task_group_leader)?;
        let mut record = ForkRecord {
            kind: kind::FORK,
            flags: 0,
            boot_ns: bpf_ktime_get_boot_ns(),
            child_start_ns: read(child, off.task_start_boottime)?,
            parent_start_ns: read(parent_leader, off.task_start_boottime)?,
            creator_start_ns: read(leader, off.task_start_boottime)?,
            child_tgid: tgid as u32,
            parent_tgid: read(real_parent, off.task_tgid)?,
            creator_tgid: read(creator, off.task_tgid)?,
            child_vpid: namespace_pid(child, off),
            ..ForkRecord::default()
        };
        let cred = follow(child, off.task_cred)?;
        record.uid = read(cred, off.cred_uid)?;
        record.euid = read(cred, off.cred_euid)?;
        record.gid = read(cred, off.cred_gid)?;
        record.egid = read(cred, off.cred_egid)?;
        if let Ok(signal) = follow(child, off.task_signal) {
            record.sid = leader_pid(signal, off.pidtype_sid, off);
            record.pgid = leader_pid(signal, off.pidtype_pgid, off);
            if let Some((major, minor)) = tty(signal, off) {
                (record.tty_major, record.tty_minor) = (major, minor);
                record.flags |= flags::HAS_TTY;
            }
        }
        // The child's comm is the creator's, which is the current task's.
        bpf_get_current_comm(record.comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32);
        EVENTS
            .output::<ForkRecord>(&record, lifecycle_wakeup(&config))
            .map_err(i64::from)
    }
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    if exit(&ctx).is_err() {
        count(counter::EXITS_LOST);
    }
    0
}

fn exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let config = config();
    let off = &config.offsets;
    // Prototype: (struct task_struct *p) on older kernels, with a second
    // argument (group_dead) on newer ones; only the first is used, so one
    // program serves both.
    let task: *const u8 = ctx.arg(0);
    // SAFETY: every read goes through bpf_probe_read_kernel.
    unsafe {
        // The tracepoint fires for every thread. do_exit decrements the
        // group's live count before it, so zero means this is the last
        // thread and the process is gone.
        let signal = follow(task, off.task_signal)?;
        let live: i32 = read(signal, off.signal_live)?;
        if live != 0 {
            return Ok(());
        }
        // The last thread need not be the leader; the process's start time
        // is the leader's.
        let leader = follow(task, off.task_group_leader)?;
        let record = ExitRecord {
            kind: kind::EXIT,
            flags: 0,
            boot_ns: bpf_ktime_get_boot_ns(),
            start_ns: read(leader, off.task_start_boottime)?,
            tgid: read(task, off.task_tgid)?,
            exit_code: read::<i32>(task, off.task_exit_code)? as u32,
        };
        EVENTS
            .output::<ExitRecord>(&record, lifecycle_wakeup(&config))
            .map_err(i64::from)
    }
}
