//! Telling systemd how the daemon is doing, when it runs as a `Type=notify`
//! service (the `sd_notify` protocol, through `libsystemd`).
//!
//! - `READY=1` once the programs are attached, the rules loaded and the
//!   running processes read: `systemctl start` returns then.
//! - `WATCHDOG=1` at half the unit's `WatchdogSec=`, sent from the event
//!   loop itself, so that a loop that stops turning stops the pings and
//!   systemd restarts the service.
//! - `RELOADING=1` ... `READY=1` around a SIGHUP reload, `STOPPING=1` when
//!   stopping, and a one-line `STATUS=` with the totals.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use std::time::Duration;

use libsystemd::daemon::{self, NotifyState};
use tracing::{debug, warn};

/// Sends state changes to the service manager, if there is one.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
    failed: bool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: daemon::watchdog_enabled(false).filter(|t| !t.is_zero()),
            failed: false,
        }
    }

    /// How often to ping the watchdog: half its timeout; `None` when the
    /// unit has no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|t| t / 2)
    }

    /// The daemon is ready (again, after a reload).
    pub fn ready(&mut self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status.into())]);
    }

    /// A reload begins.
    pub fn reloading(&mut self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.send(&[
            NotifyState::Reloading,
            NotifyState::Other(format!("MONOTONIC_USEC={now}")),
        ]);
    }

    /// The daemon is stopping.
    pub fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// The event loop is alive.
    pub fn watchdog(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// A status line for `systemctl status`.
    pub fn status(&mut self, status: &str) {
        self.send(&[NotifyState::Status(status.into())]);
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        match daemon::notify(false, states) {
            Ok(_) => debug!(?states, "notified the service manager"),
            // Said once: a manager that stopped listening will not start
            // again, and the daemon runs on without it.
            Err(e) if !self.failed => {
                self.failed = true;
                warn!(error = %e, "cannot notify the service manager");
            }
            Err(_) => {}
        }
    }
}
