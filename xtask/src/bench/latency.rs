//! Exec-to-output latency: from the moment the workload started an exec to
//! the moment the monitor's output for it was read, and its percentiles.

use std::collections::HashMap;
use std::time::SystemTime;

use hdrhistogram::Histogram;

use super::workload::Outcome;

/// The latency of every exec of `outcome` that was recorded and seen, in
/// microseconds.
pub fn of(outcome: &Outcome, seen: &HashMap<u64, SystemTime>) -> Vec<u64> {
    outcome
        .starts
        .iter()
        .filter_map(|(seq, started)| {
            let read = seen.get(seq)?;
            Some(read.duration_since(*started).ok()?.as_micros() as u64)
        })
        .collect()
}

/// p50, p99 and p99.9 of `samples`, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

pub fn percentiles(samples: &[u64]) -> Percentiles {
    // One microsecond to one minute, three significant digits.
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    for &sample in samples {
        histogram.saturating_record(sample.max(1));
    }
    Percentiles {
        p50: histogram.value_at_quantile(0.50),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let samples: Vec<u64> = (1..=1000).collect();
        let p = percentiles(&samples);
        assert_eq!(p.max, 1000);
        assert!((499..=501).contains(&p.p50), "{p:?}");
        assert!((989..=991).contains(&p.p99), "{p:?}");
        assert!((998..=1000).contains(&p.p999), "{p:?}");
    }
}
