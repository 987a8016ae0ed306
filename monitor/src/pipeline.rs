//! The daemon's event loop: records in, events and alerts out.
//!
//! One task reads the ring buffer when the kernel signals data, and for each
//! record decodes it, updates the process table, builds the ECS event,
//! evaluates the rules and queues the alerts for the outputs, in order,
//! before taking the next record. Fork and end events are only built when
//! something reads them: the events output, or a rule that may match their
//! `event.action`; the table follows every record either way. The
//! outputs write on threads of their own (see `output`), so a stalled reader
//! of standard output or a stalled journald never stops the capture; what
//! they cannot take is counted. A record is delivered or counted: never
//! dropped without a count.
//!
//! The same loop answers SIGHUP (reload, see `reload`), pings systemd's
//! watchdog (see `notify`), refreshes the metrics and logs the totals (see
//! `metrics`), so that each of those stops if the loop stops.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use time::OffsetDateTime;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{debug, error, info, warn};

use crate::alert::Alert;
use crate::ecs::{Action, EventBuilder};
use crate::host::HostInfo;
use crate::loss::{DaemonCounters, LossReporter};
use crate::metrics::{self, Gauges, Metrics};
use crate::notify::Notifier;
use crate::output::{OutputLoss, Outputs};
use crate::probe::{Probe, WAKEUP_GAP};
use crate::process::{ProcessTable, scan::ScannedProcess};
use crate::record::Record;
use crate::reload::Reloader;
use crate::rules::RuleSet;
use crate::selfcheck::{self, SelfCheck};

/// Turns records into events and alerts.
pub struct Pipeline {
    builder: EventBuilder,
    table: ProcessTable,
    rules: RuleSet,
    outputs: Outputs,
    counters: DaemonCounters,
    metrics: Metrics,
    all_events: bool,
    fork_events: bool,
    end_events: bool,
    /// The start-up self-check, until it is over.
    self_check: Option<SelfCheck>,
}

impl Pipeline {
    /// A pipeline that follows processes in `table`, evaluates `rules` and
    /// writes to `outputs`, measuring itself into `metrics`; `all_events`
    /// when every event is printed.
    pub fn new(
        host: &HostInfo,
        table: ProcessTable,
        rules: RuleSet,
        outputs: Outputs,
        metrics: Metrics,
        all_events: bool,
    ) -> Self {
        let mut pipeline = Self {
            builder: EventBuilder::new(host),
            fork_events: false,
            end_events: false,
            self_check: None,
            all_events,
            table,
            rules: RuleSet::default(),
            outputs,
            counters: DaemonCounters::default(),
            metrics,
        };
        pipeline.replace_rules(rules);
        pipeline
    }

    /// Runs `rules` from the next event on.
    pub fn replace_rules(&mut self, rules: RuleSet) {
        let fork = Action::Fork { boot_ns: 0 }.name();
        let end = Action::End {
            boot_ns: 0,
            wait_status: 0,
        }
        .name();
        self.fork_events = self.all_events || rules.may_match_action(fork);
        self.end_events = self.all_events || rules.may_match_action(end);
        self.rules = rules;
    }

    /// How many rules run.
    pub fn rules_loaded(&self) -> usize {
        self.rules.len()
    }

    /// Figures for the metrics, the ring buffer's `ring_peak` given.
    fn gauges(&self, ring_peak: u64) -> Gauges {
        Gauges {
            rules: self.rules.len(),
            processes: self.table.len(),
            ring_peak,
        }
    }

    /// Whether fork and end events are built (for the events output, or
    /// for a rule that may match them).
    pub fn builds(&self) -> (bool, bool) {
        (self.fork_events, self.end_events)
    }

    /// Fills the process table with the processes found running at start
    /// (read at boot clock `observed_ns`), and emits one `already_running`
    /// event for each, parents first.
    pub fn seed(&mut self, scanned: &[ScannedProcess], observed_ns: u64) {
        for pid in self.table.seed(scanned, observed_ns) {
            if let Some(ctx) = self.table.context(pid) {
                let event =
                    self.builder
                        .process_event(Action::AlreadyRunning, &ctx, self.table.ids());
                self.emit(&event);
            }
        }
    }

    /// Handles one ring buffer record from start to finish.
    pub fn handle(&mut self, bytes: &[u8]) {
        self.counters.records += 1;
        let record = match Record::decode(bytes) {
            Ok(record) => record,
            Err(e) => {
                self.counters.decode_errors += 1;
                debug!(error = %e, "undecodable record");
                return;
            }
        };
        let event = match record {
            Record::Exec(r) => {
                if let Some(check) = &mut self.self_check {
                    check.observe(&r);
                }
                Some(self.builder.exec(&mut self.table, &r))
            }
            Record::Fork(r) => {
                let known = self.table.fork(&r).is_some();
                if !(known && self.fork_events) {
                    return;
                }
                let action = Action::Fork { boot_ns: r.boot_ns };
                self.table
                    .context(r.child_tgid)
                    .map(|ctx| self.builder.process_event(action, &ctx, self.table.ids()))
            }
            Record::Syslog(r) => {
                let action = Action::Syslog {
                    thread_id: r.tid,
                    boot_ns: r.boot_ns,
                    action: r.action,
                    result: r.result,
                };
                let known = self.table.lookup(r.tgid, r.start_ns).is_some();
                self.table.resolve_parent(r.tgid);
                // A caller neither the table nor /proc knows (it exited at
                // once) is still named by what the record says.
                let stranger = (!known).then(|| self.table.stranger(&r));
                let ctx = match &stranger {
                    Some(p) => self.table.context_of(p),
                    None => self.table.context(r.tgid).expect("looked up above"),
                };
                Some(self.builder.process_event(action, &ctx, self.table.ids()))
            }
            Record::Exit(r) => {
                let Some(gone) = self.table.exit(&r) else {
                    return;
                };
                if !self.end_events {
                    return;
                }
                let action = Action::End {
                    boot_ns: r.boot_ns,
                    wait_status: r.exit_code,
                };
                let ctx = self.table.context_of(&gone);
                Some(self.builder.process_event(action, &ctx, self.table.ids()))
            }
        };
        if let Some(event) = event {
            self.emit(&event);
        }
    }

    /// Writes an event and the alerts of the rules it matches.
    fn emit(&mut self, event: &serde_json::Value) {
        self.outputs.event(event);
        let started = Instant::now();
        // Empty (no allocation) for nearly every event.
        let matched: Vec<_> = self.rules.matching(event).collect();
        self.metrics.evaluated(started.elapsed());
        if matched.is_empty() {
            return;
        }
        let now = OffsetDateTime::now_utc();
        for rule in matched {
            self.counters.alerts += 1;
            Metrics::alert(&rule.rule_id, &rule.name);
            self.outputs.alert(&Alert::new(rule, event, now));
        }
    }

    /// Removes processes whose exit was never seen; see
    /// [`ProcessTable::sweep`].
    pub fn sweep(&mut self) -> usize {
        self.table.sweep()
    }

    /// Counts a record that was taken from the ring buffer but will not be
    /// processed (the daemon is stopping and its time is up).
    pub fn abandon(&mut self, _record: &[u8]) {
        self.counters.records += 1;
        self.counters.abandoned += 1;
    }

    /// The daemon's totals so far, the outputs' losses and the process
    /// table's shortfalls included.
    pub fn counters(&self) -> DaemonCounters {
        with_output_loss(self.own_counters(), &self.outputs.loss())
    }

    fn own_counters(&self) -> DaemonCounters {
        let stats = self.table.stats();
        DaemonCounters {
            table_full: stats.dropped_full,
            processes_unknown: stats.unknown,
            ..self.counters
        }
    }

    /// Lets the outputs drain, briefly, stops them, and returns the final
    /// totals (what the outputs could not write by then included).
    pub fn close(self) -> DaemonCounters {
        let (counters, loss) = (self.own_counters(), self.outputs.loss());
        self.outputs.close();
        with_output_loss(counters, &loss)
    }
}

/// The daemon's own counts with what the outputs lost added in.
fn with_output_loss(counters: DaemonCounters, loss: &OutputLoss) -> DaemonCounters {
    DaemonCounters {
        alerts_lost: loss.alerts.load(Ordering::Relaxed),
        events_lost: loss.events.load(Ordering::Relaxed),
        ..counters
    }
}

/// Records handled per turn of the event loop, at most, before signals and
/// timers get their chance...
const BATCH: usize = 256;

/// ...and the most time one turn takes.
const BATCH_TIME: Duration = Duration::from_millis(20);

/// How long the daemon keeps delivering what is left in the ring buffer
/// after it was asked to stop; what remains then is counted as lost.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// How often the daemon looks into the ring buffer without being woken:
/// fork and exit records do not wake it (see the eBPF crate), so when no
/// exec follows them, this is how late their events can be.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What one batch did.
struct Turn {
    /// Records handled.
    handled: usize,
    /// The ring buffer was emptied.
    emptied: bool,
}

/// Handles one batch, bounded in count and time, so that a ring buffer that
/// never empties does not starve the signals and the loss reports.
fn batch(ring: &mut RingBuf<MapData>, pipeline: &mut Pipeline) -> Turn {
    let turn_ends = Instant::now() + BATCH_TIME;
    let mut handled = 0;
    while handled < BATCH {
        let Some(item) = ring.next() else {
            return Turn {
                handled,
                emptied: true,
            };
        };
        pipeline.handle(&item);
        handled += 1;
        if Instant::now() >= turn_ends {
            break;
        }
    }
    Turn {
        handled,
        emptied: false,
    }
}

/// When the reader looks into the ring buffer without being woken: the
/// kernel side wakes it at most once per [`WAKEUP_GAP`], and records that
/// come within the gap are fetched by this look, one gap after the last
/// wake-up or look that found records. Once a look finds none, the next
/// record comes more than a gap after the last wake-up, and wakes it.
#[derive(Default)]
struct FollowUp(Option<tokio::time::Instant>);

impl FollowUp {
    /// After a wake-up or a look that handled `handled` records.
    fn after(&mut self, turn: &Turn) {
        self.0 = if !turn.emptied {
            Some(tokio::time::Instant::now())
        } else if turn.handled > 0 {
            Some(tokio::time::Instant::now() + WAKEUP_GAP)
        } else {
            None
        };
    }

    /// Completes when the look is due; never when none is.
    async fn due(&self) {
        match self.0 {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// Registers a map's descriptor with the runtime, for readiness only.
fn watch<T: AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `inner` owns its map's file descriptor: it stays open, and
    // as_raw_fd returns that same descriptor, for as long as `inner` lives,
    // and the AsyncFd owns `inner`.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// The signals the daemon answers. Installed at the start of the daemon's
/// run, before anything slow, so that a SIGHUP sent during start-up (which
/// would otherwise end the process) is kept and carried out once the loop
/// runs, and a SIGTERM stops it then.
pub struct Signals {
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
}

impl Signals {
    /// Installs the handlers; needs the runtime entered.
    pub fn install() -> Result<Self> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("installing the {name} handler"))
        };
        Ok(Self {
            sigterm: install(SignalKind::terminate(), "SIGTERM")?,
            sigint: install(SignalKind::interrupt(), "SIGINT")?,
            sighup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// What the event loop answers besides records.
pub struct Control {
    pub signals: Signals,
    /// Between the totals in the log.
    pub stats_interval: Duration,
    pub notifier: Notifier,
    pub reloader: Reloader,
    /// Whether the Prometheus figures need refreshing.
    pub metrics_served: bool,
}

/// Runs the start-up self-check (see `selfcheck`): handles records, as
/// always, until the check's own exec has been compared or its time is up.
async fn self_check(ring: &mut AsyncFd<RingBuf<MapData>>, pipeline: &mut Pipeline) -> Result<()> {
    let started = Instant::now();
    let mut last_record = started;
    let mut seen = 0;
    pipeline.self_check = Some(SelfCheck::start()?);
    while pipeline.self_check.as_ref().is_some_and(SelfCheck::pending)
        && last_record.elapsed() < selfcheck::IDLE_WAIT
        && started.elapsed() < selfcheck::MOST_WAIT
    {
        let done = batch(ring.get_mut(), pipeline);
        if done.handled > 0 {
            seen += done.handled as u64;
            last_record = Instant::now();
        }
        if done.emptied {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let check = pipeline.self_check.take().expect("set above");
    check.finish(seen, started.elapsed())?;
    info!(
        elapsed_ms = started.elapsed().as_millis(),
        "self-check passed: a known exec read in the kernel matches /proc"
    );
    Ok(())
}

/// An interval timer, or a future that never completes.
async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn every(period: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// Tells systemd the daemon is ready, then runs until SIGINT or SIGTERM,
/// then drains the ring buffer, reports the totals and detaches the
/// program (by dropping it).
pub async fn run(
    probe: Probe,
    events: RingBuf<MapData>,
    mut pipeline: Pipeline,
    mut control: Control,
) -> Result<()> {
    let mut probe = probe;
    let mut ring = watch(events).context("watching the ring buffer")?;
    let mut logger = match probe.take_logger() {
        Some(logger) => Some(watch(logger).context("watching the probe's log")?),
        None => None,
    };
    let Signals {
        mut sigterm,
        mut sigint,
        mut sighup,
    } = control.signals;
    let mut stats = every(control.stats_interval);
    stats.tick().await;
    let mut poll = every(POLL_INTERVAL);
    let mut follow_up = FollowUp::default();
    let mut watchdog = control.notifier.watchdog_interval().map(every);
    let mut refresh = control.metrics_served.then(|| every(metrics::REFRESH));
    let mut reporter = LossReporter::default();
    let mut exits_lost_swept = 0;

    self_check(&mut ring, &mut pipeline).await?;

    let status = |p: &Pipeline| format!("watching; {} rules", p.rules_loaded());
    control.notifier.ready(&status(&pipeline));
    info!(rules = pipeline.rules_loaded(), "ready");

    loop {
        tokio::select! {
            ready = ring.readable_mut() => {
                let mut guard = ready.context("waiting for the ring buffer")?;
                let done = batch(guard.get_inner_mut(), &mut pipeline);
                follow_up.after(&done);
                if done.emptied {
                    guard.clear_ready();
                } else {
                    drop(guard);
                    // Let the runtime poll its drivers: signals and timers
                    // are delivered only then.
                    tokio::task::yield_now().await;
                }
            }
            Some(ready) = async {
                match &mut logger {
                    Some(l) => Some(l.readable_mut().await),
                    None => None,
                }
            } => {
                let mut guard = ready.context("waiting for the probe's log")?;
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            () = follow_up.due() => {
                let done = batch(ring.get_mut(), &mut pipeline);
                follow_up.after(&done);
                if !done.emptied {
                    tokio::task::yield_now().await;
                }
            }
            _ = poll.tick() => {
                if !batch(ring.get_mut(), &mut pipeline).emptied {
                    tokio::task::yield_now().await;
                }
            }
            () = tick(&mut watchdog) => control.notifier.watchdog(),
            () = tick(&mut refresh) => {
                let (kernel, peak) = kernel_figures(&mut probe);
                let counters = pipeline.counters();
                let gauges = pipeline.gauges(peak);
                pipeline.metrics.publish(&kernel, &counters, gauges);
            }
            _ = stats.tick() => {
                let (kernel, peak) = kernel_figures(&mut probe);
                if kernel.exits_lost > exits_lost_swept {
                    // Some exits were never seen: their processes would
                    // stay in the table.
                    let removed = pipeline.sweep();
                    debug!(removed, "process table swept");
                    exits_lost_swept = kernel.exits_lost;
                }
                let counters = pipeline.counters();
                reporter.periodic(&kernel, &counters);
                let gauges = pipeline.gauges(peak);
                pipeline.metrics.log(&kernel, &counters, gauges);
                control.notifier.status(&format!(
                    "{}; {} execs, {} alerts, {} lost",
                    status(&pipeline),
                    kernel.execs_seen,
                    counters.alerts,
                    kernel.lost() + counters.lost()
                ));
            }
            _ = sighup.recv() => {
                info!("SIGHUP received; reloading the configuration and rules");
                control.notifier.reloading();
                match control.reloader.reload() {
                    Ok(rules) => {
                        pipeline.replace_rules(rules);
                        Metrics::reloaded(true);
                        info!(rules = pipeline.rules_loaded(), "reloaded; rules now loaded");
                    }
                    Err(e) => {
                        Metrics::reloaded(false);
                        error!(
                            rules = pipeline.rules_loaded(),
                            "reload failed; the running rules stay: {e:#}"
                        );
                    }
                }
                control.notifier.ready(&status(&pipeline));
            }
            _ = sigterm.recv() => { info!("SIGTERM received"); break; }
            _ = sigint.recv() => { info!("SIGINT received"); break; }
        }
    }
    control.notifier.stopping();

    // Detach first, so that what remains in the ring buffer is finite, then
    // deliver it (it was captured) for as long as a stop may take.
    probe.detach().context("detaching the program")?;
    let ring = ring.get_mut();
    let deadline = Instant::now() + DRAIN_TIME;
    while let Some(item) = ring.next() {
        if Instant::now() < deadline {
            pipeline.handle(&item);
        } else {
            pipeline.abandon(&item);
        }
    }
    let kernel = probe.counters().context("reading the kernel's counters")?;
    drop(probe);
    let counters = pipeline.close();
    reporter.at_exit(&kernel, &counters);
    Ok(())
}

/// The kernel's counters and the ring buffer's peak since the last call;
/// zeros, with a warning, if the maps cannot be read.
fn kernel_figures(probe: &mut Probe) -> (crate::probe::KernelCounters, u64) {
    let kernel = probe.counters().unwrap_or_else(|e| {
        warn!(error = %e, "cannot read the kernel's counters");
        Default::default()
    });
    let peak = probe.take_ring_peak().unwrap_or_else(|e| {
        warn!(error = %e, "cannot read the ring buffer's fill");
        0
    });
    (kernel, peak)
}
