//! The honest count of what was lost, and where.
//!
//! Two places can lose an exec: the kernel, when the ring buffer has no room
//! for a record (counted per CPU by the program), and the daemon, when a
//! record cannot be decoded or an alert cannot be written anywhere. Both are
//! reported as totals at warn, on a period while they grow and once at exit;
//! never one line per event.

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
    /// Alerts no output accepted (lost).
    pub alerts_lost: u64,
}

impl DaemonCounters {
    /// Everything the daemon lost.
    pub fn lost(&self) -> u64 {
        self.decode_errors + self.alerts_lost
    }
}

/// Remembers the last totals reported, to report only when they grow.
#[derive(Debug, Default)]
pub struct LossReporter {
    last_kernel: u64,
    last_daemon: u64,
}

impl LossReporter {
    /// Logs the totals at warn if either grew since the last call; returns
    /// whether it logged.
    pub fn periodic(&mut self, kernel: &KernelCounters, daemon: &DaemonCounters) -> bool {
        let grew = kernel.ringbuf_full > self.last_kernel || daemon.lost() > self.last_daemon;
        if grew {
            report(kernel, daemon);
        }
        self.last_kernel = kernel.ringbuf_full;
        self.last_daemon = daemon.lost();
        grew
    }

    /// Logs the final totals: at warn when anything was lost, at info
    /// otherwise.
    pub fn at_exit(&self, kernel: &KernelCounters, daemon: &DaemonCounters) {
        if kernel.ringbuf_full > 0 || daemon.lost() > 0 {
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
        lost_in_kernel = kernel.ringbuf_full,
        lost_in_daemon = daemon.lost(),
        undecodable_records = daemon.decode_errors,
        alerts_lost = daemon.alerts_lost,
        execs_seen = kernel.execs_seen,
        "events lost (totals since start)"
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
    }
}
