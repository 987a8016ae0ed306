//! Project tasks: `cargo xtask <command>`.
//!
//! - `setup` installs what the eBPF build needs and the machine may lack: the
//!   `rust-src` component (the BPF target builds `core` from source) and
//!   `bpf-linker`, built against the LLVM of the active Rust toolchain.
//! - `run` builds the daemon in release mode and runs it (as root) with the
//!   built-in rules; arguments after `--` go to the daemon.
//! - `test` runs every test, the privileged ones on the running kernel too,
//!   after installing the Debian packages the tests use if they are missing.
//! - `bench` measures the monitor against other exec monitors on the same
//!   workloads and writes a report with plots (`bench/mod.rs`).
//! - `vm-test` runs the same scenarios on this kernel, on Debian's other
//!   kernels in qemu guests under systemd, and in a privileged podman
//!   container, and compares the events (`vmtest/mod.rs`).
//! - `install` builds the daemon in release mode and installs it with its
//!   systemd unit and default configuration; `uninstall` removes them.
//!
//! Each command that builds runs `setup` first; it does nothing when all is
//! in place.

mod bench;
mod install;
mod setup;
mod vmtest;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Build, run and test the monitor")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install rust-src and bpf-linker if they are missing.
    Setup,
    /// Build in release mode and run the daemon with the built-in rules.
    Run {
        /// Arguments for the daemon, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run all tests, including the privileged ones on the running kernel.
    Test {
        /// Extra arguments for `cargo test`, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build in release mode; install the binary, the systemd unit and the
    /// default configuration (an existing one is kept).
    Install {
        #[command(flatten)]
        place: Place,
        /// Install the release binary already built (under the target
        /// directory) as it is, without building.
        #[arg(long)]
        no_build: bool,
    },
    /// Measure the monitor against execsnoop, bpftrace, auditd and laurel
    /// on the same exec workloads and write the report (root; about ten
    /// minutes).
    Bench {
        /// Every step for a second or two: proves the benchmark works.
        #[arg(long)]
        short: bool,
        /// Where the report goes (default xtask/report, or bench-short
        /// under the target directory with --short).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the scenarios on this kernel and, under qemu with systemd, on
    /// Debian's other kernels; write the report (root; a few minutes per
    /// kernel, more the first time).
    VmTest {
        /// Kernel series to boot (repeatable): 6.1, 6.12. None: all.
        #[arg(long = "kernel")]
        kernels: Vec<String>,
        /// Only the scenarios on this machine's kernel, no guest.
        #[arg(long, conflicts_with = "kernels")]
        host_only: bool,
        /// Leave out the privileged container.
        #[arg(long)]
        no_container: bool,
        /// Where the report and the consoles go (default target/vm-test).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Remove what install put in place; /etc/monitor stays unless --purge.
    Uninstall {
        #[command(flatten)]
        place: Place,
        /// Also remove /etc/monitor, the configuration and rules included.
        #[arg(long)]
        purge: bool,
    },
}

/// Where `install` and `uninstall` work.
#[derive(Args)]
struct Place {
    /// Installation prefix: the binary goes to PREFIX/bin, the unit to
    /// PREFIX/lib/systemd/system.
    #[arg(long, default_value = "/usr/local")]
    prefix: PathBuf,
    /// Staging directory put in front of every path, for packagers.
    #[arg(long)]
    destdir: Option<PathBuf>,
}

impl Task {
    /// Whether the task builds the workspace (and so needs `setup`).
    fn builds(&self) -> bool {
        match self {
            Task::Setup
            | Task::Run { .. }
            | Task::Test { .. }
            | Task::Bench { .. }
            | Task::VmTest { .. } => true,
            Task::Install { no_build, .. } => !no_build,
            Task::Uninstall { .. } => false,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if cli.command.builds() {
        setup::ensure()?;
    }
    match cli.command {
        Task::Setup => Ok(()),
        Task::Run { args } => {
            cargo(&["build", "--release", "--package", "monitor"])?;
            let binary = release_binary();
            let status = Command::new(&binary)
                .args(&args)
                .status()
                .with_context(|| format!("running {}", binary.display()))?;
            check(status, "monitor")
        }
        Task::Test { args } => {
            setup::ensure_test_packages()?;
            let mut test = vec![
                "test",
                "--workspace",
                "--exclude",
                "monitor-ebpf",
                "--no-fail-fast",
            ];
            test.extend(args.iter().map(String::as_str));
            cargo(&test)
        }
        Task::Install { place, no_build } => {
            if !no_build {
                cargo(&["build", "--release", "--package", "monitor"])?;
            }
            let layout = install::Layout::new(&place.prefix, place.destdir.as_deref())?;
            let sources = install::Sources::in_workspace(&workspace_root(), release_binary());
            print_lines(install::install(&sources, &layout)?);
            print_lines([install::systemctl(&layout, &["daemon-reload"])?]);
            Ok(())
        }
        Task::Bench { short, out } => {
            cargo(&["build", "--release", "--package", "monitor"])?;
            let root = workspace_root();
            let out = out.unwrap_or_else(|| match short {
                true => target_dir().join("bench-short"),
                false => root.join("xtask/report"),
            });
            let shared = std::env::var_os("MONITOR_SHARED_DIR")
                .map_or_else(|| root.join("../shared"), PathBuf::from);
            let rules = shared.join("detection-rules/linux");
            let rules = rules.is_dir().then_some(rules);
            bench::run(bench::Plan::new(short), &release_binary(), rules, &out)
        }
        Task::VmTest {
            kernels,
            host_only,
            no_container,
            out,
        } => {
            cargo(&["build", "--release", "--package", "monitor"])?;
            let root = workspace_root();
            let kernels = match (host_only, kernels.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => vmtest::KERNELS.iter().map(|k| k.0.to_owned()).collect(),
                (false, false) => kernels,
            };
            let out = out.unwrap_or_else(|| target_dir().join("vm-test"));
            let binary = release_binary();
            vmtest::run(&kernels, !(host_only || no_container), &binary, &root, &out)
        }
        Task::Uninstall { place, purge } => {
            let layout = install::Layout::new(&place.prefix, place.destdir.as_deref())?;
            if layout.unit().exists() {
                let disable = ["disable", "--now", "monitor.service"];
                print_lines([install::systemctl(&layout, &disable)?]);
            }
            print_lines(install::uninstall(&layout, purge)?);
            print_lines([install::systemctl(&layout, &["daemon-reload"])?]);
            Ok(())
        }
    }
}

fn print_lines(lines: impl IntoIterator<Item = String>) {
    for line in lines {
        println!("{line}");
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    check(status, &format!("cargo {}", args.join(" ")))
}

fn check(status: std::process::ExitStatus, what: &str) -> Result<()> {
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}

/// The directory cargo builds into, as `target_dir_of` finds it for this
/// workspace and the environment xtask runs in.
fn target_dir() -> PathBuf {
    target_dir_of(&workspace_root(), std::env::var_os("CARGO_TARGET_DIR"))
}

/// The target directory of the workspace at `root`: `CARGO_TARGET_DIR`
/// when it is set and not empty, taken relative to `root` if relative
/// (xtask runs cargo there), else `root/target`.
///
/// Not done: a `build.target-dir` set in a cargo configuration file is
/// not read.
fn target_dir_of(root: &Path, from_env: Option<OsString>) -> PathBuf {
    match from_env.filter(|dir| !dir.is_empty()) {
        // An absolute path replaces `root` when joined.
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The daemon as `cargo build --release --package monitor` leaves it.
fn release_binary() -> PathBuf {
    target_dir().join("release/monitor")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    #[test]
    fn install_and_uninstall_parse_with_and_without_a_stage() {
        for args in [
            &["install"][..],
            &["install", "--no-build"],
            &["install", "--prefix", "/usr", "--destdir", "/tmp/stage"],
            &["uninstall"],
            &["uninstall", "--purge"],
            &["bench", "--short"],
        ] {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            if let Task::Install { place, .. } | Task::Uninstall { place, .. } = cli.command {
                let staged = args.contains(&"--destdir");
                assert_eq!(place.destdir.is_some(), staged, "{args:?}");
            }
        }
        assert!(parse(&["install", "--destdir"]).is_err());
    }

    #[test]
    fn the_target_directory_follows_cargo_target_dir() {
        let root = Path::new("/src/monitor");
        let of = |dir: Option<&str>| target_dir_of(root, dir.map(OsString::from));
        assert_eq!(of(None), root.join("target"));
        assert_eq!(of(Some("")), root.join("target"));
        assert_eq!(of(Some("/var/tmp/build")), Path::new("/var/tmp/build"));
        assert_eq!(of(Some("build/out")), root.join("build/out"));
    }
}
