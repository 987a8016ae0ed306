//! The kernel half of the monitor: one BTF tracepoint on `sched_process_exec`.
//!
//! For every successful exec the program assembles one record (see
//! `monitor_common` for its layout) in a per-CPU scratch buffer and copies
//! exactly the bytes used into the `EVENTS` ring buffer. When the ring buffer
//! is full the record is dropped and counted in `COUNTERS`; the daemon reads
//! and reports that count.
//!
//! Rust eBPF gets no CO-RE relocations, so the program knows no kernel
//! structure layout of its own: every field offset comes from `CONFIG`, which
//! the daemon fills from the running kernel's BTF before load. Because
//! `CONFIG` lives in a frozen read-only map, the verifier sees the offsets as
//! constants.
//!
//! TODO(#4): fork and exit tracking. TODO(#9): batching the reader's
//! wake-ups instead of one per record.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod exec;

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
