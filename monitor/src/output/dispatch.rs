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
    /// Alert copies an output did not write (full queue, write error, or
    /// still queued when the output was abandoned at exit).
    pub alerts: AtomicU64,
    /// Events `--print-events` did not write, likewise.
    pub events: AtomicU64,
}

impl OutputLoss {
    fn lost(&self, is_alert: bool, count: u64) {
        let counter = if is_alert { &self.alerts } else { &self.events };
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

/// What an output carries, as far as the loss counts care.
trait Item: Send + 'static {
    fn is_alert(&self) -> bool;
}

/// A line for standard output, and what it carries.
struct Line {
    text: String,
    is_alert: bool,
}

impl Item for Line {
    fn is_alert(&self) -> bool {
        self.is_alert
    }
}

impl Item for Alert {
    fn is_alert(&self) -> bool {
        true
    }
}

/// The output threads and their queues.
pub struct Outputs {
    routes: Routes,
    stdout: Option<Worker<Line>>,
    journal: Option<Worker<Alert>>,
    loss: Arc<OutputLoss>,
}

impl Outputs {
    /// Starts a thread for each output the routes need.
    pub fn start(routes: Routes) -> io::Result<Self> {
        let loss = Arc::new(OutputLoss::default());
        let stdout = if routes.alerts_to_stdout || routes.events_to_stdout {
            Some(Worker::spawn("stdout", &loss, stdout_writer())?)
        } else {
            None
        };
        let journal = if routes.journald {
            Some(Worker::spawn("journald", &loss, journal_writer())?)
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
            journal.send(alert.clone());
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
        if let Some(stdout) = &self.stdout {
            let text = doc.to_string();
            stdout.send(Line { text, is_alert });
        }
    }

    /// Closes the queues and waits up to a grace period per output; what an
    /// output still holds after that is counted as lost.
    pub fn close(self) {
        if let Some(stdout) = self.stdout {
            stdout.close();
        }
        if let Some(journal) = self.journal {
            journal.close();
        }
    }
}

/// Items queued and not yet written, by kind.
#[derive(Debug, Default)]
struct Pending {
    alerts: AtomicU64,
    events: AtomicU64,
}

impl Pending {
    fn of(&self, is_alert: bool) -> &AtomicU64 {
        if is_alert { &self.alerts } else { &self.events }
    }

    fn add(&self, is_alert: bool) {
        self.of(is_alert).fetch_add(1, Ordering::Relaxed);
    }

    fn remove(&self, is_alert: bool) {
        // Saturating: after an abandon has taken the count, a late item
        // must not wrap it.
        let _ = self
            .of(is_alert)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    fn take(&self, is_alert: bool) -> u64 {
        self.of(is_alert).swap(0, Ordering::Relaxed)
    }
}

/// One output thread behind a bounded queue.
struct Worker<T> {
    name: &'static str,
    queue: SyncSender<T>,
    handle: JoinHandle<()>,
    pending: Arc<Pending>,
    loss: Arc<OutputLoss>,
}

impl<T: Item> Worker<T> {
    /// Starts the thread; `write` returns whether it delivered the item.
    fn spawn(
        name: &'static str,
        loss: &Arc<OutputLoss>,
        mut write: impl FnMut(T) -> bool + Send + 'static,
    ) -> io::Result<Self> {
        let (queue, items): (SyncSender<T>, Receiver<T>) = mpsc::sync_channel(QUEUE);
        let pending = Arc::new(Pending::default());
        let (thread_pending, thread_loss) = (Arc::clone(&pending), Arc::clone(loss));
        let handle = std::thread::Builder::new()
            .name(format!("output-{name}"))
            .spawn(move || {
                for item in items {
                    let is_alert = item.is_alert();
                    let delivered = write(item);
                    thread_pending.remove(is_alert);
                    if !delivered {
                        thread_loss.lost(is_alert, 1);
                    }
                }
            })?;
        Ok(Self {
            name,
            queue,
            handle,
            pending,
            loss: Arc::clone(loss),
        })
    }

    /// Queues without waiting; an item that does not fit is counted lost.
    fn send(&self, item: T) {
        let is_alert = item.is_alert();
        self.pending.add(is_alert);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(item)
        {
            self.pending.remove(is_alert);
            self.loss.lost(is_alert, 1);
        }
    }

    /// Closes the queue and waits up to the grace period for the thread;
    /// if it is still blocked, what it holds is counted lost.
    fn close(self) {
        drop(self.queue);
        let deadline = Instant::now() + GRACE;
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.handle.is_finished() {
            let _ = self.handle.join();
            return;
        }
        warn!(
            output = self.name,
            "output still blocked at exit; its queue is abandoned"
        );
        for is_alert in [true, false] {
            self.loss.lost(is_alert, self.pending.take(is_alert));
        }
    }
}

fn stdout_writer() -> impl FnMut(Line) -> bool + Send {
    let mut out = io::stdout();
    move |line: Line| {
        out.write_all(line.text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .is_ok()
    }
}

fn journal_writer() -> impl FnMut(Alert) -> bool + Send {
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
        match result {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that blocks until the gate opens, like a stalled reader.
    fn gated(
        written: Arc<AtomicU64>,
    ) -> (mpsc::Sender<()>, impl FnMut(Line) -> bool + Send + 'static) {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let seen = written;
        let write = move |_: Line| {
            let _ = gate_rx.recv();
            seen.fetch_add(1, Ordering::Relaxed);
            true
        };
        (gate_tx, write)
    }

    fn line() -> Line {
        Line {
            text: "{}".into(),
            is_alert: false,
        }
    }

    #[test]
    fn a_full_queue_counts_instead_of_waiting() {
        let loss = Arc::new(OutputLoss::default());
        let written = Arc::new(AtomicU64::new(0));
        let (gate, write) = gated(Arc::clone(&written));
        let worker = Worker::spawn("test", &loss, write).expect("spawn");
        let started = Instant::now();
        let total = QUEUE as u64 + 100;
        for _ in 0..total {
            worker.send(line());
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "send must never wait"
        );
        let lost = loss.events.load(Ordering::Relaxed);
        assert!((99..=100).contains(&lost), "lost {lost}");
        for _ in 0..total {
            let _ = gate.send(());
        }
        worker.close();
        assert_eq!(
            written.load(Ordering::Relaxed) + lost,
            total,
            "each item written or lost"
        );
    }

    #[test]
    fn an_abandoned_output_counts_what_it_still_holds() {
        let loss = Arc::new(OutputLoss::default());
        let written = Arc::new(AtomicU64::new(0));
        let (_gate, write) = gated(Arc::clone(&written));
        let worker = Worker::spawn("test", &loss, write).expect("spawn");
        for _ in 0..10 {
            worker.send(line());
        }
        worker.close();
        assert_eq!(loss.events.load(Ordering::Relaxed), 10);
        assert_eq!(
            loss.alerts.load(Ordering::Relaxed),
            0,
            "kinds are kept apart"
        );
    }
}
