//! What the three programs share: the configuration, the maps, and the
//! helpers to read kernel memory, count, and submit records.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_boot_ns,
    helpers::generated::bpf_probe_read_kernel,
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use monitor_common::{
    ARGV_LIMIT_DEFAULT, KernelOffsets, NO_SUBSYS, NO_SYSCALL, ProbeConfig, counter,
};

/// Written by the daemon before load (see the crate docs).
#[unsafe(no_mangle)]
pub static CONFIG: ProbeConfig = ProbeConfig {
    argv_limit: ARGV_LIMIT_DEFAULT,
    cgroup_v1_subsys: NO_SUBSYS,
    wakeup_bytes: 0,
    wakeup_gap_ns: 0,
    // SAFETY: KernelOffsets is plain integers; all-zero is a valid value.
    offsets: unsafe { core::mem::zeroed::<KernelOffsets>() },
    syslog_nr: NO_SYSCALL,
};

/// Records for the daemon. The size is replaced at load time.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// When an exec or syslog record last woke the reader (boot clock
/// nanoseconds). Shared by all CPUs; two CPUs racing both wake it, which is
/// harmless.
#[map]
static LAST_WAKEUP: Array<u64> = Array::with_max_entries(1, 0);

/// Per-CPU counters, indexed by `monitor_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// The configuration the daemon wrote.
#[inline(always)]
pub fn config() -> ProbeConfig {
    // SAFETY: reading a global of plain integers; volatile so that the
    // compiler does not fold in the build-time default.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

/// Reads a `T` at `base + offset` from kernel memory.
///
/// # Safety
/// Only the helper touches `base`; a bad address yields an error, not a fault.
#[inline(always)]
pub unsafe fn read<T: Copy>(base: *const u8, offset: u32) -> Result<T, i64> {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper writes exactly size_of::<T>() bytes into `value` or
    // fails; on failure `value` is never read.
    unsafe {
        let ret = bpf_probe_read_kernel(
            value.as_mut_ptr() as *mut c_void,
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(offset as usize) as *const c_void,
        );
        if ret != 0 {
            return Err(ret);
        }
        Ok(value.assume_init())
    }
}

/// Reads a pointer at `base + offset` and fails on a null one.
///
/// # Safety
/// As for [`read`].
#[inline(always)]
pub unsafe fn follow(base: *const u8, offset: u32) -> Result<*const u8, i64> {
    // SAFETY: as for `read`.
    let ptr: *const u8 = unsafe { read(base, offset)? };
    if ptr.is_null() { Err(-1) } else { Ok(ptr) }
}

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU,
        // which do not nest.
        unsafe { *slot += 1 };
    }
}

/// Bytes waiting in the ring buffer for the reader, kept as this CPU's peak
/// in the `RING_PEAK` slot for the daemon's fill figure.
#[inline(always)]
fn pending_bytes() -> u64 {
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    if let Some(slot) = COUNTERS.get_ptr_mut(counter::RING_PEAK) {
        // SAFETY: as in `count`.
        unsafe {
            if pending > *slot {
                *slot = pending;
            }
        }
    }
    pending
}

/// The process's pid in its own (innermost) pid namespace: the number at
/// `thread_pid->numbers[level]`; 0 when it cannot be read.
///
/// # Safety
/// Reads go through the probe-read helpers only.
#[inline(always)]
pub unsafe fn namespace_pid(task: *const u8, off: &KernelOffsets) -> u32 {
    // SAFETY: as documented above.
    unsafe {
        let Ok(pid) = follow(task, off.task_thread_pid) else {
            return 0;
        };
        let Ok(level) = read::<u32>(pid, off.pid_level) else {
            return 0;
        };
        // Pid namespaces nest at most 32 deep.
        let at = off.pid_numbers + (level & 31) * off.upid_size + off.upid_nr;
        read::<i32>(pid, at).map_or(0, |nr| nr as u32)
    }
}

/// The global pid of the leader of the process's session or process group
/// (`signal->pids[kind]`), or 0 when it cannot be read.
///
/// # Safety
/// Reads go through the probe-read helpers only.
#[inline(always)]
pub unsafe fn leader_pid(signal: *const u8, kind: u32, off: &KernelOffsets) -> u32 {
    // `& 3` restates the array's bound (four pid types).
    let slot = off.signal_pids + (kind & 3) * 8;
    // SAFETY: as documented above.
    unsafe {
        follow(signal, slot)
            .and_then(|pid| read::<i32>(pid, off.pid_numbers + off.upid_nr))
            .map_or(0, |nr| nr as u32)
    }
}

/// The controlling terminal's device numbers, if the process has one.
///
/// # Safety
/// Reads go through the probe-read helpers only.
#[inline(always)]
pub unsafe fn tty(signal: *const u8, off: &KernelOffsets) -> Option<(u32, u32)> {
    // SAFETY: as documented above.
    unsafe {
        let tty = follow(signal, off.signal_tty).ok()?;
        let index: i32 = read(tty, off.tty_index).ok()?;
        let driver = follow(tty, off.tty_driver).ok()?;
        let major: i32 = read(driver, off.driver_major).ok()?;
        let minor_start: i32 = read(driver, off.driver_minor_start).ok()?;
        Some((major as u32, (minor_start + index) as u32))
    }
}

/// `value`, unchanged, but unknown to the optimiser from here on: a bounds
/// check after it applies to the very register that is then used, which is
/// what the verifier needs to see.
#[inline(always)]
pub fn opaque(mut value: u64) -> u64 {
    // SAFETY: an empty asm statement; it only claims to change `value`.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Submit flags for an exec or syslog record. Waking the reader costs far
/// more than writing the record (an inter-processor interrupt, and in a
/// virtual machine an exit to the hypervisor), so records are woken for at
/// most once per `wakeup_gap_ns`: the first record after a quiet spell
/// wakes the reader at once, and those that follow within the gap wait for
/// the reader's follow-up look, which it takes one gap after each wake-up
/// for as long as it finds records. A ring buffer filling up wakes it
/// regardless.
#[inline(always)]
pub fn exec_wakeup() -> u64 {
    // SAFETY: reading two plain integers of the configuration; volatile for
    // the reason given in `config`.
    let (wakeup_bytes, gap) = unsafe {
        (
            core::ptr::read_volatile(&raw const CONFIG.wakeup_bytes),
            core::ptr::read_volatile(&raw const CONFIG.wakeup_gap_ns),
        )
    };
    if pending_bytes() > wakeup_bytes {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    let Some(last) = LAST_WAKEUP.get_ptr_mut(0) else {
        return BPF_RB_FORCE_WAKEUP as u64;
    };
    // SAFETY: bpf_ktime_get_boot_ns has no preconditions; `last` points at
    // the map's only element, valid for the program's run.
    unsafe {
        let now = bpf_ktime_get_boot_ns();
        if now.wrapping_sub(*last) < gap {
            return BPF_RB_NO_WAKEUP as u64;
        }
        *last = now;
    }
    BPF_RB_FORCE_WAKEUP as u64
}

/// Submit flags for a fork or exit record: no wake-up (the next exec record
/// or the reader's timer brings it) unless the ring buffer is filling up.
/// Waking the reader is most of a record's cost in the kernel, and forks
/// and exits are twice as many as execs.
#[inline(always)]
pub fn lifecycle_wakeup(config: &ProbeConfig) -> u64 {
    if pending_bytes() > config.wakeup_bytes {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}
