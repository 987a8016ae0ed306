//! The honest count of what was lost, and where.
//!
//! Two places can lose an exec: the kernel, when the ring buffer has no room
//! for a record or the record cannot be assembled (counted per CPU by the
//! program), and the daemon, when a record cannot be decoded or an output
//! cannot take an event or an alert. All are reported as totals at warn, on
//! a period while they grow and once at exit; never one line per event.
//! Events delivered with a part missing are reported the same way, as
//! degraded: an exec whose argv or path was unreadable, a lost fork or exit
//! record (the process table misses a process or keeps a dead one until its
//! next sweep), a process the table could not find or had no room for.

use tracing::{info, warn};

use crate::probe::KernelCounters;

/// The daemon's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaemonCounters {
    /// Records taken from the ring buffer.
    pub records: u64,
    /// Records that could not be decoded (lost).
    pub decode_errors: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Alert copies an output did not write (lost).
    pub alerts_lost: u64,
    /// Events `--print-events` did not write (lost).
    pub events_lost: u64,
    /// Records left unprocessed when the stop's time ran out (lost).
    pub abandoned: u64,
    /// Processes the table had no room for (degraded).
    pub table_full: u64,
    /// Records about processes neither the table nor `/proc` had
    /// (degraded).
    pub processes_unknown: u64,
}

impl DaemonCounters {
    /// Everything the daemon lost.
    pub fn lost(&self) -> u64 {
        self.decode_errors + self.alerts_lost + self.events_lost + self.abandoned
    }

    /// Events the daemon delivered with less context than it should have.
    pub fn degraded(&self) -> u64 {
        self.table_full + self.processes_unknown
    }
}

/// Remembers the last totals reported, to report only when they grow.
#[derive(Debug, Default)]
pub struct LossReporter {
    last_kernel: u64,
    last_daemon: u64,
    last_degraded: u64,
}

impl LossReporter {
    /// Logs the totals at warn if either grew since the last call; returns
    /// whether it logged.
    pub fn periodic(&mut self, kernel: &KernelCounters, daemon: &DaemonCounters) -> bool {
        let degraded = kernel.degraded() + daemon.degraded();
        let grew = kernel.lost() > self.last_kernel
            || daemon.lost() > self.last_daemon
            || degraded > self.last_degraded;
        if grew {
            report(kernel, daemon);
        }
        self.last_kernel = kernel.lost();
        self.last_daemon = daemon.lost();
        self.last_degraded = degraded;
        grew
    }

    /// Logs the final totals: at warn when anything was lost, at info
    /// otherwise.
    pub fn at_exit(&self, kernel: &KernelCounters, daemon: &DaemonCounters) {
        if kernel.lost() > 0 || daemon.lost() > 0 || kernel.degraded() + daemon.degraded() > 0 {
            report(kernel, daemon);
        }
        info!(
            execs_seen = kernel.execs_seen,
            records = daemon.records,
            alerts = daemon.alerts,
            "final totals"
        );
    }
}

fn report(kernel: &KernelCounters, daemon: &DaemonCounters) {
    warn!(
        lost_in_kernel = kernel.lost(),
        lost_in_daemon = daemon.lost(),
        ring_buffer_full = kernel.ringbuf_full,
        capture_failed = kernel.capture_failed,
        undecodable_records = daemon.decode_errors,
        events_not_written = daemon.events_lost,
        abandoned_at_exit = daemon.abandoned,
        alerts_not_written = daemon.alerts_lost,
        argv_unreadable = kernel.argv_unreadable,
        path_unreadable = kernel.path_unreadable,
        fork_records_lost = kernel.forks_lost,
        exit_records_lost = kernel.exits_lost,
        process_table_full = daemon.table_full,
        processes_unknown = daemon.processes_unknown,
        execs_seen = kernel.execs_seen,
        "events lost or degraded (totals since start)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_only_when_totals_grow() {
        let mut r = LossReporter::default();
        let mut k = KernelCounters::default();
        let mut d = DaemonCounters::default();
        assert!(!r.periodic(&k, &d), "nothing lost, nothing said");
        k.ringbuf_full = 3;
        assert!(r.periodic(&k, &d));
        assert!(!r.periodic(&k, &d), "same totals are not repeated");
        d.alerts_lost = 1;
        assert!(r.periodic(&k, &d));
        assert_eq!(d.lost(), 1);
        k.capture_failed = 2;
        assert!(r.periodic(&k, &d));
        assert_eq!(k.lost(), 5);
        k.path_unreadable = 1;
        assert!(r.periodic(&k, &d), "degraded execs are reported too");
        k.exits_lost = 1;
        assert!(r.periodic(&k, &d), "lost exit records degrade the table");
        d.table_full = 1;
        assert!(r.periodic(&k, &d), "so does a full table");
        assert!(!r.periodic(&k, &d));
    }
}
