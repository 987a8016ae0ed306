//! The monitor daemon: watches every exec on this host through eBPF and
//! writes an alert when a detection rule matches. See the crate docs of the
//! `monitor` library for the pieces; this file only puts them in order.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use monitor::{
    btf::KernelBtf,
    cli::{Cli, Command, RulesCommand},
    host::HostInfo,
    pipeline::{self, Outputs, Pipeline},
    probe::{Probe, ProbeOptions, TRACEPOINT},
    rules::{self, RuleSet},
    rules_cli,
};
use tracing::{debug, info, warn};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    init_logging();
    let result = match cli.command.take() {
        None => run(cli).map(|()| ExitCode::SUCCESS),
        Some(Command::Rules(RulesCommand::Check { paths })) => {
            rules_cli::check(&paths, &mut std::io::stdout().lock())
        }
        Some(Command::Rules(RulesCommand::Test { events, paths })) => {
            rules_cli::test(&events, &paths, std::io::stdout().lock())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, the whole cause chain, no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let host = HostInfo::detect();
    info!(kernel = %host.kernel, "starting on {}", host.hostname);

    let rules = load_rules(&cli.rules)?;
    info!(rules = rules.len(), "rules loaded");

    let offsets = KernelBtf::open(&cli.btf)?
        .exec_offsets()
        .context("resolving kernel structure offsets from BTF")?;
    info!(btf = %cli.btf.display(), "kernel structure offsets resolved");
    debug!(?offsets, "offsets");

    let options = ProbeOptions {
        argv_limit: cli.argv_limit,
        ring_buffer_bytes: cli.ring_buffer_size,
    };
    let mut probe = Probe::load(offsets, options)?;
    info!(
        ring_buffer_bytes = options.ring_buffer_bytes,
        argv_limit = options.argv_limit,
        "program loaded; ring buffer of {} KiB",
        options.ring_buffer_bytes / 1024
    );

    let events = probe.take_events()?;
    probe.attach()?;
    info!(tracepoint = TRACEPOINT, "program attached");

    let outputs = Outputs::new(&cli.outputs(), cli.print_events);
    let pipeline = Pipeline::new(&host, rules, outputs);
    let interval = std::time::Duration::from_secs(cli.stats_interval);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(pipeline::run(probe, events, pipeline, interval))?;

    info!("program detached; exiting");
    Ok(())
}

/// The built-in rules, or the files and directories given with `--rules`.
/// A file that fails to load is logged and left out; the others still run.
fn load_rules(paths: &[PathBuf]) -> Result<RuleSet> {
    if paths.is_empty() {
        return Ok(rules::builtin());
    }
    let mut set = RuleSet::new(Vec::new());
    for (path, report) in rules_cli::load_paths(paths)? {
        for skipped in &report.skipped {
            debug!(rule = %skipped.name, reason = %skipped.reason, "rule skipped");
        }
        for failed in &report.failed {
            warn!("rule not loaded: {}", rules_cli::chain(failed));
        }
        info!(
            path = %path.display(),
            loaded = report.loaded.len(),
            skipped = report.skipped.len(),
            failed = report.failed.len(),
            "rule files read"
        );
        set.extend(report.loaded);
    }
    Ok(set)
}

/// Structured logs on stderr (journald picks them up under systemd);
/// `RUST_LOG` overrides the default `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
