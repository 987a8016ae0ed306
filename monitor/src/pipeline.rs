//! The daemon's event loop: records in, events and alerts out.
//!
//! One task reads the ring buffer when the kernel signals data, and for each
//! record decodes it, builds the ECS event, evaluates the rules and queues
//! the alerts for the outputs, in order, before taking the next record. The
//! outputs write on threads of their own (see `output`), so a stalled reader
//! of standard output or a stalled journald never stops the capture; what
//! they cannot take is counted. A record is delivered or counted: never
//! dropped without a count.
//!
//! TODO(#6): reloading rules on SIGHUP, metrics, systemd notification.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use time::OffsetDateTime;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

use crate::alert::Alert;
use crate::ecs::EventBuilder;
use crate::host::HostInfo;
use crate::loss::{DaemonCounters, LossReporter};
use crate::output::{OutputLoss, Outputs};
use crate::probe::Probe;
use crate::record::ExecRecord;
use crate::rules::RuleSet;

/// Turns records into events and alerts.
pub struct Pipeline {
    builder: EventBuilder,
    rules: RuleSet,
    outputs: Outputs,
    counters: DaemonCounters,
}

impl Pipeline {
    pub fn new(host: &HostInfo, rules: RuleSet, outputs: Outputs) -> Self {
        Self {
            builder: EventBuilder::new(host),
            rules,
            outputs,
            counters: DaemonCounters::default(),
        }
    }

    /// Handles one ring buffer record from start to finish.
    pub fn handle(&mut self, bytes: &[u8]) {
        self.counters.records += 1;
        let record = match ExecRecord::decode(bytes) {
            Ok(record) => record,
            Err(e) => {
                self.counters.decode_errors += 1;
                debug!(error = %e, "undecodable record");
                return;
            }
        };
        let event = self.builder.exec(&record);
        self.outputs.event(&event);
        let now = OffsetDateTime::now_utc();
        for rule in self.rules.matching(&event) {
            self.counters.alerts += 1;
            self.outputs.alert(&Alert::new(rule, &event, now));
        }
    }

    /// Counts a record that was taken from the ring buffer but will not be
    /// processed (the daemon is stopping and its time is up).
    pub fn abandon(&mut self, _record: &[u8]) {
        self.counters.records += 1;
        self.counters.abandoned += 1;
    }

    /// The daemon's totals so far, the outputs' losses included.
    pub fn counters(&self) -> DaemonCounters {
        with_output_loss(self.counters, &self.outputs.loss())
    }

    /// Lets the outputs drain, briefly, stops them, and returns the final
    /// totals (what the outputs could not write by then included).
    pub fn close(self) -> DaemonCounters {
        let loss = self.outputs.loss();
        self.outputs.close();
        with_output_loss(self.counters, &loss)
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

/// Registers a map's descriptor with the runtime, for readiness only.
fn watch<T: AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `inner` owns its map's file descriptor: it stays open, and
    // as_raw_fd returns that same descriptor, for as long as `inner` lives,
    // and the AsyncFd owns `inner`.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Runs until SIGINT or SIGTERM, then drains the ring buffer, reports the
/// totals and detaches the program (by dropping it).
pub async fn run(
    probe: Probe,
    events: RingBuf<MapData>,
    mut pipeline: Pipeline,
    stats_interval: Duration,
) -> Result<()> {
    let mut probe = probe;
    let mut ring = watch(events).context("watching the ring buffer")?;
    let mut logger = match probe.take_logger() {
        Some(logger) => Some(watch(logger).context("watching the probe's log")?),
        None => None,
    };
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut tick = tokio::time::interval(stats_interval);
    tick.tick().await;
    let mut reporter = LossReporter::default();

    loop {
        tokio::select! {
            ready = ring.readable_mut() => {
                let mut guard = ready.context("waiting for the ring buffer")?;
                let ring = guard.get_inner_mut();
                // At most one batch per turn, bounded in count and time: a
                // ring buffer that never empties must not starve the signals
                // and the loss reports.
                let turn_ends = Instant::now() + BATCH_TIME;
                let mut emptied = false;
                for _ in 0..BATCH {
                    let Some(item) = ring.next() else {
                        emptied = true;
                        break;
                    };
                    pipeline.handle(&item);
                    if Instant::now() >= turn_ends {
                        break;
                    }
                }
                if emptied {
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
            _ = tick.tick() => {
                match probe.counters() {
                    Ok(kernel) => { reporter.periodic(&kernel, &pipeline.counters()); }
                    Err(e) => warn!(error = %e, "cannot read the kernel's counters"),
                }
            }
            _ = sigterm.recv() => { info!("SIGTERM received"); break; }
            _ = sigint.recv() => { info!("SIGINT received"); break; }
        }
    }

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
