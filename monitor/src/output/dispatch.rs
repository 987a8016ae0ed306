//! Routing alerts and events to their outputs without ever blocking the
//! event loop.
//!
//! Each output has a thread of its own behind a bounded queue. The event
//! loop only queues: a reader that stops reading standard output, or a
//! journald that stalls, fills that output's queue, and what does not fit
//! is counted as lost (never waited for, never dropped without a count).
//! Shutdown gives the threads a short grace period to drain their queues.
//!
//! journald's thread falls back to standard error, as NDJSON, while journald
//! refuses alerts; it says so once per outage at warn and again at info when
//! journald is back.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{info, warn};

use super::{AlertSink as _, JournalSink, NdjsonSink};
use crate::alert::Alert;

/// Queued items per output before new ones count as lost.
const QUEUE: usize = 16 * 1024;

/// How long shutdown waits for an output to drain.
const GRACE: Duration = Duration::from_secs(2);

/// Where alerts and events go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routes {
    pub journald: bool,
    pub alerts_to_stdout: bool,
    pub events_to_stdout: bool,
}

/// Counts of what the outputs could not deliver.
#[derive(Debug, Default)]
pub struct OutputLoss {
    /// Alert copies an output did not write (full queue or write error).
    pub alerts: AtomicU64,
    /// Events `--print-events` did not write.
    pub events: AtomicU64,
    /// Alert copies queued and not yet written.
    pending_alerts: AtomicU64,
    /// Events queued and not yet written.
    pending_events: AtomicU64,
}

impl OutputLoss {
    fn counters(&self, is_alert: bool) -> (&AtomicU64, &AtomicU64) {
        if is_alert {
            (&self.alerts, &self.pending_alerts)
        } else {
            (&self.events, &self.pending_events)
        }
    }

    /// One more item waits in a queue.
    fn queued(&self, is_alert: bool) {
        self.counters(is_alert).1.fetch_add(1, Ordering::Relaxed);
    }

    /// An item left its queue: written, or lost when `lost`.
    fn done(&self, is_alert: bool, lost: bool) {
        let (lost_count, pending) = self.counters(is_alert);
        pending.fetch_sub(1, Ordering::Relaxed);
        if lost {
            lost_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Everything still queued is lost (an output was abandoned at exit).
    fn abandon_pending(&self) {
        for is_alert in [true, false] {
            let (lost, pending) = self.counters(is_alert);
            lost.fetch_add(pending.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// The output threads and their queues.
pub struct Outputs {
    routes: Routes,
    stdout: Option<Worker<Line>>,
    journal: Option<Worker<Alert>>,
    loss: Arc<OutputLoss>,
}

/// A line for standard output, and what it carries (for the loss count).
struct Line {
    text: String,
    is_alert: bool,
}

impl Outputs {
    /// Starts a thread for each output the routes need.
    pub fn start(routes: Routes) -> io::Result<Self> {
        let loss = Arc::new(OutputLoss::default());
        let stdout = if routes.alerts_to_stdout || routes.events_to_stdout {
            Some(Worker::spawn("stdout", stdout_writer(Arc::clone(&loss)))?)
        } else {
            None
        };
        let journal = if routes.journald {
            Some(Worker::spawn(
                "journald",
                journal_writer(Arc::clone(&loss)),
            )?)
        } else {
            None
        };
        Ok(Self {
            routes,
            stdout,
            journal,
            loss,
        })
    }

    /// Shared loss counters, for reports.
    pub fn loss(&self) -> Arc<OutputLoss> {
        Arc::clone(&self.loss)
    }

    /// Queues an alert for every output it goes to.
    pub fn alert(&self, alert: &Alert) {
        if let Some(journal) = &self.journal {
            // Counted before the send, so the writer never sees it negative.
            self.loss.queued(true);
            if !journal.send(alert.clone()) {
                self.loss.done(true, true);
            }
        }
        if self.routes.alerts_to_stdout {
            self.line(&alert.document, true);
        }
    }

    /// Queues an event for `--print-events`.
    pub fn event(&self, event: &Value) {
        if self.routes.events_to_stdout {
            self.line(event, false);
        }
    }

    fn line(&self, doc: &Value, is_alert: bool) {
        let Some(stdout) = &self.stdout else { return };
        let text = doc.to_string();
        self.loss.queued(is_alert);
        if !stdout.send(Line { text, is_alert }) {
            self.loss.done(is_alert, true);
        }
    }

    /// Closes the queues and waits up to a grace period per output; what an
    /// output still holds after that is counted as lost.
    pub fn close(self) {
        let loss = Arc::clone(&self.loss);
        for worker in [
            self.stdout.map(Worker::close),
            self.journal.map(Worker::close),
        ]
        .into_iter()
        .flatten()
        {
            let (name, handle) = worker;
            let deadline = Instant::now() + GRACE;
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                warn!(
                    output = name,
                    "output still blocked at exit; its queue is abandoned"
                );
                loss.abandon_pending();
            }
        }
    }
}

/// One output thread behind a bounded queue.
struct Worker<T> {
    name: &'static str,
    queue: SyncSender<T>,
    handle: JoinHandle<()>,
}

impl<T: Send + 'static> Worker<T> {
    fn spawn(name: &'static str, mut write: impl FnMut(T) + Send + 'static) -> io::Result<Self> {
        let (queue, items): (SyncSender<T>, Receiver<T>) = mpsc::sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name(format!("output-{name}"))
            .spawn(move || items.into_iter().for_each(&mut write))?;
        Ok(Self {
            name,
            queue,
            handle,
        })
    }

    /// Queues without waiting; false when the queue is full or closed.
    fn send(&self, item: T) -> bool {
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    fn close(self) -> (&'static str, JoinHandle<()>) {
        drop(self.queue);
        (self.name, self.handle)
    }
}

fn stdout_writer(loss: Arc<OutputLoss>) -> impl FnMut(Line) + Send {
    let mut out = io::stdout();
    move |line: Line| {
        let written = out
            .write_all(line.text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        loss.done(line.is_alert, written.is_err());
    }
}

fn journal_writer(loss: Arc<OutputLoss>) -> impl FnMut(Alert) + Send {
    let mut sink = JournalSink::new()
        .inspect_err(|e| warn!("{e}; alerts go to stderr until journald is back"))
        .ok();
    let mut failing = sink.is_none();
    let mut stderr = NdjsonSink::new(io::stderr());
    move |alert: Alert| {
        if sink.is_none() {
            sink = JournalSink::new().ok();
        }
        let result = match &mut sink {
            Some(journal) => journal.write_alert(&alert),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "journald socket missing",
            )),
        };
        let delivered = match result {
            Ok(()) => {
                if failing {
                    info!("journald accepts alerts again");
                    failing = false;
                }
                true
            }
            Err(e) => {
                if !failing {
                    warn!(error = %e, "journald refused an alert; alerts go to stderr until it is back");
                    failing = true;
                }
                stderr.write_alert(&alert).is_ok()
            }
        };
        loss.done(true, !delivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_instead_of_waiting() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let written = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&written);
        // A writer that blocks until the gate opens, like a stalled reader.
        let worker = Worker::spawn("test", move |_: u32| {
            let _ = gate_rx.recv();
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .expect("spawn");
        let started = Instant::now();
        let accepted = (0..(QUEUE as u32 + 100))
            .filter(|i| worker.send(*i))
            .count();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "send must never wait"
        );
        assert!(accepted <= QUEUE + 1, "accepted {accepted}");
        assert!(accepted >= QUEUE, "accepted {accepted}");
        for _ in 0..accepted {
            gate_tx.send(()).expect("open gate");
        }
        let (_, handle) = worker.close();
        handle.join().expect("join");
        assert_eq!(written.load(Ordering::Relaxed), accepted as u64);
    }
}
