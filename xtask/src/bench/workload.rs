//! The exec workloads: workers that fork and exec a program as fast as
//! they can or at a fixed rate, each exec carrying a sequence number in its
//! arguments so that a monitor's output can be checked for every one.
//!
//! An exec's arguments are `PROGRAM MARKER-SEQ [PADDING]`: the marker is
//! unique to one workload run, so lines from earlier runs or from other
//! programs never count; the padding brings the argument block to the size
//! asked for.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What to run and how hard.
#[derive(Debug, Clone)]
pub struct Workload {
    pub program: PathBuf,
    /// Arguments before the sequence argument (`-c` for the stand-in dmesg).
    pub leading: Vec<String>,
    pub workers: usize,
    pub duration: Duration,
    /// Execs per second over all workers; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// Size of the whole argument block, in bytes (at least what program
    /// and marker take).
    pub argv_bytes: usize,
    /// Record when each exec was started, for latency.
    pub record_starts: bool,
}

/// What a workload run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Execs started (sequence numbers `0..execs`).
    pub execs: u64,
    pub elapsed: Duration,
    /// Wall-clock start of each exec by sequence number, when recorded.
    pub starts: Vec<(u64, SystemTime)>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64()
    }

    /// How many of this run's sequence numbers `seen` lacks.
    pub fn missing(&self, seen: &HashSet<u64>) -> u64 {
        (0..self.execs).filter(|s| !seen.contains(s)).count() as u64
    }
}

/// A marker no other run shares.
pub fn new_marker(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("bench{label}{:x}x", nanos & 0xffff_ffff_ffff)
}

/// The sequence number in a line that holds `marker` followed by digits.
pub fn sequence_in(line: &str, marker: &str) -> Option<u64> {
    let at = line.find(marker)? + marker.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Runs the workload to its end.
pub fn run(workload: &Workload, marker: &str) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let begin = Instant::now();
    let deadline = begin + workload.duration;
    let per_worker = workload.rate.map(|r| r / workload.workers as f64);
    let threads: Vec<_> = (0..workload.workers)
        .map(|worker| {
            let (next, starts) = (Arc::clone(&next), Arc::clone(&starts));
            let workload = workload.clone();
            let marker = marker.to_owned();
            std::thread::spawn(move || {
                worker_loop(
                    &workload, &marker, worker, per_worker, deadline, &next, &starts,
                )
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = begin.elapsed();
    let mut starts = std::mem::take(&mut *starts.lock().expect("lock"));
    starts.sort_unstable_by_key(|s| s.0);
    Outcome {
        execs: next.load(Ordering::Relaxed),
        elapsed,
        starts,
    }
}

fn worker_loop(
    workload: &Workload,
    marker: &str,
    worker: usize,
    per_worker: Option<f64>,
    deadline: Instant,
    next: &AtomicU64,
    starts: &Mutex<Vec<(u64, SystemTime)>>,
) {
    let interval = per_worker.map(|r| Duration::from_secs_f64(1.0 / r));
    // Workers start spread over one interval, so that a fixed rate is even.
    let mut due = Instant::now()
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(worker as f64 / workload.workers as f64)
        });
    let padding = padding(workload, marker);
    let mut local = Vec::new();
    loop {
        if let Some(interval) = interval {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            due += interval;
        }
        if Instant::now() >= deadline {
            break;
        }
        let seq = next.fetch_add(1, Ordering::Relaxed);
        let mut cmd = Command::new(&workload.program);
        cmd.args(&workload.leading)
            .arg(format!("{marker}{seq}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(padding) = &padding {
            cmd.arg(padding);
        }
        if workload.record_starts {
            local.push((seq, SystemTime::now()));
        }
        if let Ok(mut child) = cmd.spawn() {
            let _ = child.wait();
        }
    }
    starts.lock().expect("lock").extend(local);
}

/// The padding argument that brings the argument block to the size asked
/// for, if it is bigger than program, leading arguments and marker.
fn padding(workload: &Workload, marker: &str) -> Option<String> {
    let used = workload.program.as_os_str().len()
        + 1
        + workload.leading.iter().map(|a| a.len() + 1).sum::<usize>()
        + marker.len()
        + 8;
    let rest = workload.argv_bytes.checked_sub(used + 1)?;
    (rest > 0).then(|| "p".repeat(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_found_after_their_marker_only() {
        assert_eq!(sequence_in("x benchAx12 y", "benchAx"), Some(12));
        assert_eq!(sequence_in("\"benchAx7\",", "benchAx"), Some(7));
        assert_eq!(sequence_in("benchBx12", "benchAx"), None);
        assert_eq!(sequence_in("benchAx", "benchAx"), None);
    }

    #[test]
    fn a_short_fixed_rate_run_counts_every_exec() {
        let workload = Workload {
            program: "/bin/true".into(),
            leading: Vec::new(),
            workers: 2,
            duration: Duration::from_millis(500),
            rate: Some(40.0),
            argv_bytes: 1024,
            record_starts: true,
        };
        let outcome = run(&workload, "benchTx");
        // At most one exec per worker per interval, plus the first.
        assert!((2..=22).contains(&outcome.execs), "{}", outcome.execs);
        assert_eq!(outcome.starts.len() as u64, outcome.execs);
        let seen: HashSet<u64> = (1..outcome.execs).collect();
        assert_eq!(outcome.missing(&seen), 1);
        assert_eq!(
            padding(&workload, "benchTx").unwrap().len(),
            1024 - 10 - 7 - 8 - 1
        );
    }
}
