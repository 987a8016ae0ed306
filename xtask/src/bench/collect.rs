//! Reading what a monitor writes, from a pipe or a growing log file, and
//! noting which of a workload's sequence numbers it reported and when.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::workload::sequence_in;

/// What one output stream has shown so far.
#[derive(Default)]
struct State {
    /// The marker being counted; lines without it are ignored.
    marker: String,
    /// First time each sequence number was read.
    seen: HashMap<u64, SystemTime>,
    /// Lines that carried the marker.
    matched: u64,
    /// Every line, for a monitor's own log (kept only when asked).
    lines: Vec<String>,
    keep_lines: bool,
}

/// A handle on an output stream read by a thread of its own.
#[derive(Clone, Default)]
pub struct Collector {
    state: Arc<Mutex<State>>,
}

impl Collector {
    /// A collector that also keeps every line (for logs to search later).
    pub fn keeping_lines() -> Collector {
        let collector = Collector::default();
        collector.lock().keep_lines = true;
        collector
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("collector lock")
    }

    /// Counts `marker` from now on, forgetting what was seen before.
    pub fn count(&self, marker: &str) {
        let mut state = self.lock();
        state.marker = marker.to_owned();
        state.seen.clear();
        state.matched = 0;
    }

    /// Sequence numbers seen for the current marker, with when.
    pub fn seen(&self) -> HashMap<u64, SystemTime> {
        self.lock().seen.clone()
    }

    /// Lines that carried the current marker.
    pub fn matched_lines(&self) -> u64 {
        self.lock().matched
    }

    pub fn seen_count(&self) -> usize {
        self.lock().seen.len()
    }

    /// Every line kept so far.
    pub fn text(&self) -> String {
        self.lock().lines.join("\n")
    }

    fn take(&self, line: &str) {
        let mut state = self.lock();
        if state.keep_lines {
            state.lines.push(line.to_owned());
        }
        if state.marker.is_empty() {
            return;
        }
        if let Some(seq) = sequence_in(line, &state.marker) {
            state.matched += 1;
            state.seen.entry(seq).or_insert_with(SystemTime::now);
        }
    }

    /// Reads lines from `stream` on a thread until it closes.
    pub fn read(&self, stream: impl Read + Send + 'static) {
        let me = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 20, stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                me.take(&String::from_utf8_lossy(&line));
                line.clear();
            }
        });
    }

    /// Follows `path` from its current end, as `tail -f` does, until
    /// `stop` is set.
    pub fn follow(&self, path: &Path, stop: Arc<std::sync::atomic::AtomicBool>) {
        let me = self.clone();
        let path = path.to_owned();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut file = loop {
                match File::open(&path) {
                    Ok(f) => break f,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(_) => return,
                }
            };
            let _ = file.seek(SeekFrom::End(0));
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut line = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match reader.read_until(b'\n', &mut line) {
                    Ok(n) if n > 0 && line.ends_with(b"\n") => {
                        me.take(&String::from_utf8_lossy(&line));
                        line.clear();
                    }
                    // At the end, or a line still being written.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
    }

    /// Waits until `want` sequence numbers were seen, or nothing new came
    /// for `quiet`, or `limit` passed.
    pub fn settle(&self, want: u64, quiet: Duration, limit: Duration) {
        let end = Instant::now() + limit;
        let mut last = self.seen_count();
        let mut changed = Instant::now();
        while Instant::now() < end && (last as u64) < want {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.seen_count();
            if now != last {
                last = now;
                changed = Instant::now();
            } else if changed.elapsed() >= quiet {
                break;
            }
        }
    }
}
