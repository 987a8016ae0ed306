//! Empty library target. The daemon's build script depends on this crate so
//! that cargo rebuilds the daemon when the eBPF program changes; the program
//! itself is the `monitor-probe` binary.
#![no_std]
