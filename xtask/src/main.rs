//! Project tasks: `cargo xtask <command>`.
//!
//! - `setup` installs what the eBPF build needs and the machine may lack: the
//!   `rust-src` component (the BPF target builds `core` from source) and
//!   `bpf-linker`, built against the LLVM of the active Rust toolchain.
//! - `run` builds the daemon in release mode and runs it (as root) with the
//!   built-in rules; arguments after `--` go to the daemon.
//! - `test` runs every test, the privileged ones on the running kernel too,
//!   after installing the Debian packages the tests use if they are missing.
//! - `install` builds the daemon in release mode and installs it with its
//!   systemd unit and default configuration; `uninstall` removes them.
//!
//! Each command that builds runs `setup` first; it does nothing when all is
//! in place.

mod install;
mod setup;

use std::path::PathBuf;
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
        /// Install target/release/monitor as it is, without building.
        #[arg(long)]
        no_build: bool,
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
    #[arg(long, default_value = "")]
    destdir: PathBuf,
}

impl Task {
    /// Whether the task builds the workspace (and so needs `setup`).
    fn builds(&self) -> bool {
        match self {
            Task::Setup | Task::Run { .. } | Task::Test { .. } => true,
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
            let binary = workspace_root().join("target/release/monitor");
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
            let layout = install::Layout::new(&place.prefix, &place.destdir)?;
            let sources = install::Sources::in_workspace(&workspace_root());
            print_lines(install::install(&sources, &layout)?);
            print_lines([install::systemctl(&layout, &["daemon-reload"])?]);
            Ok(())
        }
        Task::Uninstall { place, purge } => {
            let layout = install::Layout::new(&place.prefix, &place.destdir)?;
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

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}
