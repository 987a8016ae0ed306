//! Where alerts and events go: journald, or newline-delimited JSON.
//!
//! An [`AlertSink`] takes each [`Alert`]; an [`EventSink`] takes every
//! process event when the operator asks for the raw stream. Sinks report
//! write failures to the caller, which decides whether to fall back (say,
//! from journald to standard output) and how to count what was lost.
//!
//! Not done yet: rate limiting or batching of alerts, and sinks other than
//! journald and a byte stream (syslog, files with rotation, HTTP).

mod dispatch;
mod journal;
mod stdout;

use std::io;

use crate::alert::Alert;

pub use dispatch::{OutputLoss, Outputs, Routes};
pub use journal::{JournalSink, SYSLOG_IDENTIFIER, journal_fields};
pub use stdout::NdjsonSink;

/// A destination for alerts.
pub trait AlertSink {
    /// Writes one alert; an error means this alert was not delivered.
    fn write_alert(&mut self, alert: &Alert) -> io::Result<()>;
}
