//! The monitor daemon: watches every exec on this host through eBPF and
//! writes an alert when a detection rule matches. See the crate docs of the
//! `monitor` library for the pieces; this file only puts them in order.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use monitor::{
    btf::KernelBtf,
    cli::{Cli, Command, Output, RulesCommand},
    config::{self, Settings},
    ecs::boot_clock_ns,
    host::HostInfo,
    metrics::{self, Metrics},
    notify::Notifier,
    output::{Outputs, Routes},
    pipeline::{self, Control, Pipeline, Signals},
    privilege,
    probe::{KernelLayout, Probe, ProbeOptions, SYSLOG_PROGRAM, TRACEPOINTS},
    process::{EntityIds, ProcessTable, scan},
    reload::{self, Reloader},
    rules::Rule,
    rules_cli::{self, Failures},
    selfcheck,
};
use tracing::{debug, info, warn};

fn main() -> ExitCode {
    if selfcheck::is_child() {
        return selfcheck::child_main();
    }
    let mut cli = Cli::parse();
    init_logging();
    let result = match cli.command.take() {
        None => config::load(&cli)
            .map_err(anyhow::Error::from)
            .and_then(|settings| {
                if cli.check_config {
                    reload::check(&settings, &mut std::io::stdout().lock())
                } else {
                    run(cli, settings).map(|()| ExitCode::SUCCESS)
                }
            }),
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

fn run(cli: Cli, settings: Settings) -> Result<()> {
    let host = HostInfo::detect();
    info!(kernel = %host.kernel, "starting on {}", host.hostname);
    match &settings.source {
        Some(path) => info!(path = %path.display(), "configuration read"),
        None => info!(
            "no configuration file at {}; defaults and flags",
            config::DEFAULT_PATH
        ),
    }

    let options = ProbeOptions {
        argv_limit: settings.argv_limit,
        ring_buffer_bytes: settings.ring_buffer_size,
    };
    options.validate()?;
    privilege::check()?;

    // The runtime first, so that a metrics address already in use stops the
    // start before anything is loaded into the kernel.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let _entered = runtime.enter();
    let signals = Signals::install()?;
    if let Some(address) = settings.metrics_listen {
        metrics::serve(address)?;
    }

    let rules = rules_cli::daemon_rules(&settings.rules, settings.builtin_rules, Failures::Skip)?;
    let on_process = rules.rules().iter().filter(|r| applies_to_exec(r)).count();
    info!(
        rules = rules.len(),
        on_process_events = on_process,
        "rules loaded"
    );

    let btf = KernelBtf::open(&settings.btf)?;
    let layout = KernelLayout {
        offsets: skewed_for_tests(
            btf.probe_offsets()
                .context("resolving kernel structure offsets from BTF")?,
        ),
        cgroup_v1_subsys: btf.cgroup_v1_subsys(),
        syslog_nr: btf
            .syscall_registers()
            .filter(|_| settings.syslog_watch)
            .map(|_| nix::libc::SYS_syslog as u32),
    };
    drop(btf);
    info!(btf = %settings.btf.display(), "kernel structure offsets resolved");
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
        Err(_) if !settings.syslog_watch => {
            info!(tracepoints = ?TRACEPOINTS, "programs attached; syslog(2) not watched (syslog_watch is off)");
        }
        Err(e) => {
            info!(tracepoints = ?TRACEPOINTS, "programs attached");
            warn!("syslog(2) calls that clear the kernel ring buffer will not be seen: {e:#}");
        }
    }

    let outputs = Outputs::start(Routes {
        journald: settings.outputs.contains(&Output::Journald),
        alerts_to_stdout: settings.outputs.contains(&Output::Stdout),
        events_to_stdout: settings.print_events,
    })
    .context("starting the output threads")?;
    let ids = EntityIds::for_this_boot(scan::ticks_per_second());
    let argv_limit = settings.argv_limit as usize;
    let table = ProcessTable::new(ids, settings.max_processes as usize, argv_limit);
    let metrics = Metrics::new(u64::from(settings.ring_buffer_size));
    let mut pipeline = Pipeline::new(&host, table, rules, outputs, metrics, settings.print_events);
    let (fork_events, end_events) = pipeline.builds();
    debug!(fork_events, end_events, "events built besides exec");

    // After the attach, so that a process started during the read is seen
    // by one or the other (or both, which the table reconciles).
    let observed_ns = boot_clock_ns();
    let running = scan::scan(argv_limit).context("reading the running processes from /proc")?;
    pipeline.seed(&running.processes, observed_ns);
    info!(
        processes = running.processes.len(),
        vanished = running.unreadable,
        "processes already running read from /proc"
    );
    drop(running);
    release_startup_memory();

    let control = Control {
        signals,
        stats_interval: std::time::Duration::from_secs(settings.stats_interval),
        notifier: Notifier::from_env(),
        metrics_served: settings.metrics_listen.is_some(),
        reloader: Reloader::new(cli, settings),
    };
    runtime.block_on(pipeline::run(probe, events, pipeline, control))?;

    info!("program detached; exiting");
    Ok(())
}

/// In debug builds only, `MONITOR_TEST_SKEW_ARG_START=1` moves one offset
/// (the argument block's start onto its end), as a kernel the offsets do
/// not fit would: the tests use it to prove the self-check refuses to run.
fn skewed_for_tests(
    #[allow(unused_mut, reason = "changed in debug builds only")]
    mut offsets: monitor_common::KernelOffsets,
) -> monitor_common::KernelOffsets {
    #[cfg(debug_assertions)]
    if std::env::var_os("MONITOR_TEST_SKEW_ARG_START").is_some() {
        warn!("MONITOR_TEST_SKEW_ARG_START: reading the arguments at a wrong offset");
        offsets.mm_arg_start = offsets.mm_arg_end;
    }
    offsets
}

/// Whether a rule can match the exec events the daemon produces today.
fn applies_to_exec(rule: &Rule) -> bool {
    matches!(rule.query.category(), None | Some("process"))
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
