//! The kernel half of the monitor: three BTF tracepoints and one `fexit`
//! program.
//!
//! - `sched_process_exec` (`exec.rs`) assembles one record per successful
//!   exec (see `monitor_common` for its layout) in a per-CPU scratch buffer
//!   and copies exactly the bytes used into the `EVENTS` ring buffer;
//! - `sched_process_fork` and `sched_process_exit` (`lifecycle.rs`) write a
//!   small fixed record for each new process and each process that ends, so
//!   that the daemon can keep its table of live processes;
//! - `do_syslog`'s exit (`syslog.rs`) writes a record for each call that
//!   clears the kernel ring buffer, or tries to, with the call's result.
//!
//! When the ring buffer is full a record is dropped and counted in
//! `COUNTERS`; the daemon reads and reports those counts.
//!
//! Rust eBPF gets no CO-RE relocations, so the programs know no kernel
//! structure layout of their own: every field offset comes from `CONFIG`,
//! which the daemon fills from the running kernel's BTF before load. Because
//! `CONFIG` lives in a frozen read-only map, the verifier sees the offsets as
//! constants.
//!
//! Waking the reader is most of a record's cost in the kernel: fork and exit
//! records never wake it unless the ring buffer fills up, and exec and
//! syslog records wake it at most once per configured gap (see
//! `shared::exec_wakeup`). TODO(#9): the gap trades alert latency for
//! kernel time; choose it from the benchmark's figures.
#![cfg_attr(target_arch = "bpf", no_std)]
// An empty asm statement hides a value from the optimiser (see
// `shared::opaque`); the BPF build is a nightly build anyway (build-std).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod exec;
#[cfg(target_arch = "bpf")]
mod lifecycle;
#[cfg(target_arch = "bpf")]
mod path;
#[cfg(target_arch = "bpf")]
mod shared;
#[cfg(target_arch = "bpf")]
mod syslog;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    // The program only means something for the BPF target; this stub keeps
    // host-side tools (clippy, cargo check on the workspace) working.
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any path that could reach a panic, so this
    // is never executed; it only satisfies the no_std linker requirement.
    unsafe { core::hint::unreachable_unchecked() }
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
