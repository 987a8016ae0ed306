//! Compiles `monitor-ebpf` for the BPF target with the toolchain that builds
//! the daemon, and leaves the object in `OUT_DIR` for `include_bytes_aligned!`.
//!
//! The BPF target has no prebuilt `core`, so it is built from source
//! (`-Z build-std=core`, which needs the `rust-src` component). On a stable
//! toolchain aya-build passes that flag only when `RUSTC_BOOTSTRAP=1` is set;
//! setting it here keeps the project on stable. `cargo xtask setup` installs
//! `rust-src` and `bpf-linker` when they are missing.

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".to_owned());
    // SAFETY: the build script is single-threaded; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };

    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../monitor-ebpf");
    aya_build::build_ebpf(
        [Package {
            name: "monitor-ebpf",
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(&toolchain),
    )
    .context("building the eBPF program failed (`cargo xtask setup` installs what it needs)")
}
