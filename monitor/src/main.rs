//! The monitor daemon: watches every exec on this host through eBPF and
//! writes an alert when a detection rule matches. See the crate docs of the
//! `monitor` library for the pieces; this file only puts them in order.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Parser as _;
use monitor::{
    btf::KernelBtf,
    cli::{Cli, Command, Output, RulesCommand},
    ecs::boot_clock_ns,
    host::HostInfo,
    output::{Outputs, Routes},
    pipeline::{self, Pipeline},
    probe::{KernelLayout, Probe, ProbeOptions, SYSLOG_PROGRAM, TRACEPOINTS},
    process::{EntityIds, ProcessTable, scan},
    rules::{self, Rule, RuleSet},
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

    let options = ProbeOptions {
        argv_limit: cli.argv_limit,
        ring_buffer_bytes: cli.ring_buffer_size,
    };
    options.validate()?;

    let rules = load_rules(&cli.rules)?;
    let on_process = rules.rules().iter().filter(|r| applies_to_exec(r)).count();
    info!(
        rules = rules.len(),
        on_process_events = on_process,
        "rules loaded"
    );

    let btf = KernelBtf::open(&cli.btf)?;
    let layout = KernelLayout {
        offsets: btf
            .probe_offsets()
            .context("resolving kernel structure offsets from BTF")?,
        cgroup_v1_subsys: btf.cgroup_v1_subsys(),
        syslog_nr: btf
            .syscall_registers()
            .filter(|_| !cli.no_syslog_watch)
            .map(|_| nix::libc::SYS_syslog as u32),
    };
    drop(btf);
    info!(btf = %cli.btf.display(), "kernel structure offsets resolved");
    debug!(?layout, "kernel layout");

    let mut probe = Probe::load(layout, options)?;
    info!(
        ring_buffer_bytes = options.ring_buffer_bytes,
        argv_limit = options.argv_limit,
        "program loaded; ring buffer of {} KiB",
        options.ring_buffer_bytes / 1024
    );

    let events = probe.take_events()?;
    match probe.attach()? {
        Ok(()) => info!(tracepoints = ?TRACEPOINTS, syslog = SYSLOG_PROGRAM, "programs attached"),
        Err(_) if cli.no_syslog_watch => {
            info!(tracepoints = ?TRACEPOINTS, "programs attached; syslog(2) not watched (--no-syslog-watch)");
        }
        Err(e) => {
            info!(tracepoints = ?TRACEPOINTS, "programs attached");
            warn!("syslog(2) calls that clear the kernel ring buffer will not be seen: {e:#}");
        }
    }

    let wanted = cli.outputs();
    let outputs = Outputs::start(Routes {
        journald: wanted.contains(&Output::Journald),
        alerts_to_stdout: wanted.contains(&Output::Stdout),
        events_to_stdout: cli.print_events,
    })
    .context("starting the output threads")?;
    let ids = EntityIds::for_this_boot(scan::ticks_per_second());
    let table = ProcessTable::new(ids, cli.max_processes as usize, cli.argv_limit as usize);
    let mut pipeline = Pipeline::new(&host, table, rules, outputs, cli.print_events);
    let (fork_events, end_events) = pipeline.builds();
    debug!(fork_events, end_events, "events built besides exec");

    // After the attach, so that a process started during the read is seen
    // by one or the other (or both, which the table reconciles).
    let observed_ns = boot_clock_ns();
    let running =
        scan::scan(cli.argv_limit as usize).context("reading the running processes from /proc")?;
    pipeline.seed(&running.processes, observed_ns);
    info!(
        processes = running.processes.len(),
        vanished = running.unreadable,
        "processes already running read from /proc"
    );
    drop(running);
    release_startup_memory();

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
    let assembled = rules_cli::assemble(paths)?;
    for (path, loaded, report) in &assembled.reports {
        for skipped in &report.skipped {
            debug!(rule = %skipped.name, reason = %skipped.reason, "rule skipped");
        }
        for failed in &report.failed {
            warn!("rule not loaded: {}", rules_cli::chain(failed));
        }
        info!(
            path = %path.display(),
            loaded,
            skipped = report.skipped.len(),
            failed = report.failed.len(),
            "rule files read"
        );
    }
    for rule in &assembled.duplicates {
        warn!(rule_id = %rule.rule_id, source = %rule.source, "duplicate rule id; the first one loaded is kept");
    }
    let set = assembled.set;
    if set.is_empty() {
        bail!("no runnable rule in {}", display_paths(paths));
    }
    Ok(set)
}

/// Whether a rule can match the exec events the daemon produces today.
fn applies_to_exec(rule: &Rule) -> bool {
    matches!(rule.query.category(), None | Some("process"))
}

fn display_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// Hands the heap that parsing two copies of the kernel's BTF needed at
/// start (about 25 MB, freed by then but kept by the allocator) back to the
/// system, so that the resident size reflects the steady state.
fn release_startup_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no memory the program uses.
    unsafe {
        nix::libc::malloc_trim(0);
    }
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
