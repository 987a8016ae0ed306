//! The daemon's event loop: records in, events and alerts out.
//!
//! One task reads the ring buffer when the kernel signals data, and for each
//! record decodes it, builds the ECS event, evaluates the rules and writes
//! the alerts, in order, before taking the next record. There is no queue
//! between those steps, so nothing can be dropped between them: a record is
//! either delivered or counted (undecodable, or an alert no output took).
//!
//! Not done yet: reloading rules on SIGHUP, metrics, systemd notification.

use std::io::{self, Stderr, Stdout};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

use crate::alert::Alert;
use crate::cli::Output;
use crate::ecs::EventBuilder;
use crate::host::HostInfo;
use crate::loss::{DaemonCounters, LossReporter};
use crate::output::{AlertSink as _, EventSink as _, JournalSink, NdjsonSink};
use crate::probe::Probe;
use crate::record::ExecRecord;
use crate::rules::RuleSet;

/// Where alerts and events go, with the journald fallback.
pub struct Outputs {
    journal: Option<Journal>,
    stdout: NdjsonSink<Stdout>,
    alerts_to_stdout: bool,
    events_to_stdout: bool,
    stderr: NdjsonSink<Stderr>,
}

/// The journald output and whether it is currently failing.
struct Journal {
    sink: Option<JournalSink>,
    failing: bool,
}

impl Outputs {
    pub fn new(outputs: &[Output], print_events: bool) -> Self {
        let journal = outputs.contains(&Output::Journald).then(|| {
            let sink = JournalSink::new()
                .inspect_err(|e| warn!("{e}; alerts go to stderr until journald is back"))
                .ok();
            Journal {
                failing: sink.is_none(),
                sink,
            }
        });
        Self {
            journal,
            stdout: NdjsonSink::new(io::stdout()),
            alerts_to_stdout: outputs.contains(&Output::Stdout),
            events_to_stdout: print_events,
            stderr: NdjsonSink::new(io::stderr()),
        }
    }

    /// Writes an alert everywhere it should go; false when no output took it.
    fn alert(&mut self, alert: &Alert) -> bool {
        let mut delivered = false;
        if let Some(journal) = &mut self.journal {
            delivered |= journal.write(alert, &mut self.stderr);
        }
        if self.alerts_to_stdout {
            match self.stdout.write_alert(alert) {
                Ok(()) => delivered = true,
                Err(e) => debug!(error = %e, "alert not written to stdout"),
            }
        }
        delivered
    }

    fn event(&mut self, event: &Value) {
        if self.events_to_stdout
            && let Err(e) = self.stdout.write_event(event)
        {
            debug!(error = %e, "event not written to stdout");
        }
    }
}

impl Journal {
    /// Tries journald (reopening it if it was missing); on failure writes
    /// the alert to stderr and says so once per outage.
    fn write(&mut self, alert: &Alert, stderr: &mut NdjsonSink<Stderr>) -> bool {
        if self.sink.is_none() {
            self.sink = JournalSink::new().ok();
        }
        let result = match &mut self.sink {
            Some(sink) => sink.write_alert(alert),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "journald socket missing",
            )),
        };
        match result {
            Ok(()) => {
                if self.failing {
                    info!("journald accepts alerts again");
                    self.failing = false;
                }
                true
            }
            Err(e) => {
                if !self.failing {
                    warn!(error = %e, "journald refused an alert; alerts go to stderr until it is back");
                    self.failing = true;
                }
                stderr.write_alert(alert).is_ok()
            }
        }
    }
}

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
            let alert = Alert::new(rule, &event, now);
            self.counters.alerts += 1;
            if !self.outputs.alert(&alert) {
                self.counters.alerts_lost += 1;
            }
        }
    }

    pub fn counters(&self) -> DaemonCounters {
        self.counters
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
                while let Some(item) = ring.next() {
                    pipeline.handle(&item);
                }
                guard.clear_ready();
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

    // What is already in the ring buffer was captured; deliver it.
    let ring = ring.get_mut();
    while let Some(item) = ring.next() {
        pipeline.handle(&item);
    }
    let kernel = probe.counters().context("reading the kernel's counters")?;
    reporter.at_exit(&kernel, &pipeline.counters());
    drop(probe);
    Ok(())
}
