//! Installing the eBPF build's own tools: `rust-src` and `bpf-linker`.
//!
//! bpf-linker must use the same LLVM as the rustc that compiles the eBPF
//! crate. rustc ships its LLVM as a shared library in its sysroot; we point
//! bpf-linker's build at it through a small prefix folder holding two
//! symlinks to that library (one under its exact name, so that the installed
//! linker finds it at run time outside `rustup run` too).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";

/// Installs whatever is missing.
pub fn ensure() -> Result<()> {
    ensure_rust_src()?;
    ensure_bpf_linker()
}

/// Debian packages the kernel tests use: python3-seccomp, to put the systemd
/// unit's system-call filter on the daemon (`tests/service.rs`), and
/// busybox, for its dmesg applet (`tests/clearing.rs`). Installed with
/// apt-get when missing; without root or apt-get, the tests say what they
/// lack.
const TEST_PACKAGES: [&str; 2] = ["python3-seccomp", "busybox"];

/// Installs the Debian packages the tests use, if any is missing.
pub fn ensure_test_packages() -> Result<()> {
    ensure_debian_packages(&TEST_PACKAGES, "the tests")
}

/// Installs those of `packages` that are missing, with apt-get; `who`
/// says what needs them. Without root or apt-get, says so and goes on.
pub fn ensure_debian_packages(packages: &[&str], who: &str) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !debian_package_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root || Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!(
            "xtask: not installing {} for {who} (needs root and apt-get)",
            missing.join(" ")
        );
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian packages for {who}: {}",
        missing.join(" ")
    );
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd, "apt-get install")
    };
    if install().is_ok() {
        return Ok(());
    }
    // A fresh machine's package lists may be missing or stale.
    run(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )?;
    install()
}

fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| o.stdout.ends_with(b"install ok installed"))
}

fn ensure_rust_src() -> Result<()> {
    let sysroot = rustc_output(&["--print", "sysroot"])?;
    let library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if library.exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the rust-src component (the BPF target builds core from it)");
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add", "rust-src"]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    run(&mut cmd, "rustup component add rust-src")
}

fn ensure_bpf_linker() -> Result<()> {
    if bpf_linker_works() {
        return Ok(());
    }
    let version = rustc_output(&["-vV"])?;
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("rustc -vV does not name its LLVM version")?
        .to_owned();
    let sysroot = PathBuf::from(rustc_output(&["--print", "sysroot"])?.trim());
    let library = find_llvm_library(&sysroot.join("lib"))?;
    let prefix = cargo_home()?.join("bpf-linker-llvm");
    let lib_dir = prefix.join("lib");
    std::fs::create_dir_all(&lib_dir).with_context(|| format!("creating {}", lib_dir.display()))?;
    let file_name = library
        .file_name()
        .context("library path has no file name")?;
    for link in [lib_dir.join("libLLVM.so"), lib_dir.join(file_name)] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&library, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against rustc's LLVM {major} \
         (about two minutes, once)"
    );
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
    ])
    .args([
        "--no-default-features",
        "--features",
        &format!("llvm-{major}"),
        "--force",
    ])
    .env("LLVM_PREFIX", &prefix);
    run(&mut cmd, "cargo install bpf-linker")?;
    if !bpf_linker_works() {
        bail!("bpf-linker was installed but does not run; is ~/.cargo/bin on PATH?");
    }
    Ok(())
}

fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// rustc's LLVM: `libLLVM.so.<version>-rust-<release>` (the `libLLVM-*.so`
/// next to it is a linker script, not the library).
fn find_llvm_library(lib: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(lib).with_context(|| format!("reading {}", lib.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") {
            return Ok(entry.path());
        }
    }
    bail!(
        "no libLLVM.so.* in {}; is this a rustup toolchain?",
        lib.display()
    )
}

fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(home.into());
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

fn rustc_output(args: &[&str]) -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(&rustc)
        .args(args)
        .output()
        .with_context(|| format!("running {rustc}"))?;
    if !out.status.success() {
        bail!("{rustc} {} failed", args.join(" "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` to its end; an error names it as `what`, with its exit status.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
