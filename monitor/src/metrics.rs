//! How the daemon is doing, for operators: a line of totals in the log every
//! stats interval, and the same figures in Prometheus text format on an
//! optional HTTP listener (`metrics_listen`, `/metrics`), served by
//! `metrics-exporter-prometheus` on the daemon's own runtime.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `monitor_execs_seen_total` | counter | execs the eBPF program saw |
//! | `monitor_records_total` | counter | records the daemon read from the ring buffer |
//! | `monitor_lost_total{where,reason}` | counter | events lost, in the `kernel` or the `daemon`, by reason |
//! | `monitor_degraded_total{reason}` | counter | events delivered with part of their context missing |
//! | `monitor_alerts_total{rule_id,rule}` | counter | alerts raised, per rule |
//! | `monitor_rule_evaluation_seconds` | histogram | time to evaluate all rules on one event |
//! | `monitor_ring_buffer_fill_ratio` | gauge | peak share of the ring buffer waiting for the daemon, over the last second |
//! | `monitor_ring_buffer_bytes` | gauge | ring buffer size |
//! | `monitor_rules_loaded` | gauge | rules running |
//! | `monitor_processes` | gauge | processes in the process table |
//! | `monitor_reloads_total{result}` | counter | SIGHUP reloads, `ok` or `failed` |
//!
//! Counters are totals since start, copied from the kernel's and the
//! daemon's own counts once a second, so a scrape is at most a second old.
//! Figures that change only on rare events (the reload counters, the rules
//! gauge) are shown at zero from the start, so that a query or an alert on
//! them works before the first such event.
//! Without a listener no recorder is installed and the `metrics` calls do
//! nothing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tracing::{info, warn};

use crate::loss::DaemonCounters;
use crate::probe::KernelCounters;

/// Bucket bounds of the rule evaluation histogram, in seconds: 1 µs to
/// 10 ms.
const EVALUATION_BUCKETS: [f64; 9] = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 1e-3, 1e-2];

/// How often the Prometheus figures are refreshed.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Starts the Prometheus listener on the current runtime. Fails at once if
/// the address cannot be bound.
pub fn serve(address: SocketAddr) -> Result<()> {
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(
            Matcher::Full("monitor_rule_evaluation_seconds".into()),
            &EVALUATION_BUCKETS,
        )
        .context("configuring the metrics histogram")?
        .build()
        .with_context(|| format!("starting the metrics listener on {address}"))?;
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            warn!(error = ?e, "the metrics listener stopped");
        }
    });
    if !address.ip().is_loopback() {
        warn!(%address, "metrics are served beyond this host");
    }
    info!(%address, "metrics served at http://{address}/metrics");
    register_at_zero();
    Ok(())
}

/// Shows at zero the figures that would otherwise appear only when they
/// first change.
fn register_at_zero() {
    gauge!("monitor_rules_loaded").set(0.0);
    for result in ["ok", "failed"] {
        counter!("monitor_reloads_total", "result" => result).increment(0);
    }
}

/// What the daemon measures itself, between log lines.
#[derive(Debug)]
pub struct Metrics {
    ring_bytes: u64,
    evaluation: metrics::Histogram,
    /// Since the last log line: rule evaluations and their total time,
    /// and the ring buffer's peak.
    evaluations: u64,
    evaluation_ns: u64,
    ring_peak: u64,
}

/// Figures that are not counts, for [`Metrics::publish`].
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub rules: usize,
    pub processes: usize,
    /// Peak bytes waiting in the ring buffer since the last refresh.
    pub ring_peak: u64,
}

impl Metrics {
    /// Metrics for a ring buffer of `ring_bytes`.
    pub fn new(ring_bytes: u64) -> Self {
        gauge!("monitor_ring_buffer_bytes").set(ring_bytes as f64);
        Metrics {
            ring_bytes,
            evaluation: histogram!("monitor_rule_evaluation_seconds"),
            evaluations: 0,
            evaluation_ns: 0,
            ring_peak: 0,
        }
    }

    /// One event's rule evaluation took `elapsed`.
    #[inline]
    pub fn evaluated(&mut self, elapsed: Duration) {
        self.evaluations += 1;
        self.evaluation_ns += elapsed.as_nanos() as u64;
        self.evaluation.record(elapsed);
    }

    /// A rule raised an alert.
    pub fn alert(rule_id: &str, rule: &str) {
        counter!("monitor_alerts_total", "rule_id" => rule_id.to_owned(), "rule" => rule.to_owned())
            .increment(1);
    }

    /// A reload finished.
    pub fn reloaded(ok: bool) {
        counter!("monitor_reloads_total", "result" => if ok { "ok" } else { "failed" })
            .increment(1);
    }

    /// Copies the totals and gauges to the Prometheus figures.
    pub fn publish(&mut self, kernel: &KernelCounters, daemon: &DaemonCounters, now: Gauges) {
        self.ring_peak = self.ring_peak.max(now.ring_peak);
        counter!("monitor_execs_seen_total").absolute(kernel.execs_seen);
        counter!("monitor_records_total").absolute(daemon.records);
        let lost = [
            ("kernel", "ring_buffer_full", kernel.ringbuf_full),
            ("kernel", "capture_failed", kernel.capture_failed),
            ("kernel", "syslog_record", kernel.syslog_lost),
            ("daemon", "undecodable", daemon.decode_errors),
            ("daemon", "alert_not_written", daemon.alerts_lost),
            ("daemon", "event_not_written", daemon.events_lost),
            ("daemon", "abandoned_at_exit", daemon.abandoned),
        ];
        for (place, reason, value) in lost {
            counter!("monitor_lost_total", "where" => place, "reason" => reason).absolute(value);
        }
        let degraded = [
            ("argv_unreadable", kernel.argv_unreadable),
            ("path_unreadable", kernel.path_unreadable),
            ("fork_record_lost", kernel.forks_lost),
            ("exit_record_lost", kernel.exits_lost),
            ("process_table_full", daemon.table_full),
            ("process_unknown", daemon.processes_unknown),
        ];
        for (reason, value) in degraded {
            counter!("monitor_degraded_total", "reason" => reason).absolute(value);
        }
        gauge!("monitor_ring_buffer_fill_ratio").set(now.ring_peak as f64 / self.ring_bytes as f64);
        gauge!("monitor_rules_loaded").set(now.rules as f64);
        gauge!("monitor_processes").set(now.processes as f64);
    }

    /// Logs the totals and what was measured since the last call, then
    /// starts a new period.
    pub fn log(&mut self, kernel: &KernelCounters, daemon: &DaemonCounters, now: Gauges) {
        self.ring_peak = self.ring_peak.max(now.ring_peak);
        let mean_us = if self.evaluations == 0 {
            0.0
        } else {
            self.evaluation_ns as f64 / self.evaluations as f64 / 1000.0
        };
        info!(
            execs_seen = kernel.execs_seen,
            records = daemon.records,
            alerts = daemon.alerts,
            lost_in_kernel = kernel.lost(),
            lost_in_daemon = daemon.lost(),
            degraded = kernel.degraded() + daemon.degraded(),
            ring_buffer_peak_percent = format_args!(
                "{:.1}",
                100.0 * self.ring_peak as f64 / self.ring_bytes as f64
            ),
            rule_evaluation_mean_us = format_args!("{mean_us:.2}"),
            rules = now.rules,
            processes = now.processes,
            "totals"
        );
        self.evaluations = 0;
        self.evaluation_ns = 0;
        self.ring_peak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_counters_are_shown_before_the_first_reload() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, register_at_zero);
        let text = handle.render();
        for line in [
            "monitor_reloads_total{result=\"ok\"} 0",
            "monitor_reloads_total{result=\"failed\"} 0",
            "monitor_rules_loaded 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }
}
