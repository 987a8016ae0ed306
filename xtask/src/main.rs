//! Project tasks: `cargo xtask <command>`.
//!
//! - `setup` installs what the eBPF build needs and the machine may lack: the
//!   `rust-src` component (the BPF target builds `core` from source) and
//!   `bpf-linker`, built against the LLVM of the active Rust toolchain.
//! - `run` builds the daemon in release mode and runs it (as root) with the
//!   built-in rules; arguments after `--` go to the daemon.
//! - `test` runs every test, the privileged ones on the running kernel too.
//!
//! Each command runs `setup` first; it does nothing when all is in place.

mod setup;

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

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
    setup::ensure()?;
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
