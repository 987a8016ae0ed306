//! `cargo xtask bench`: the monitor against the exec monitors people use
//! today, on the same workloads in one run, written up as a Markdown
//! report with SVG plots.
//!
//! The steps, in order (each monitor is started fresh for every measured
//! run and stopped after it; runs of different monitors are interleaved so
//! that drift in the machine's speed spreads over all of them):
//!
//! 1. an unthrottled exec storm, several runs, for every monitor;
//! 2. the same storm with 1 KiB and 16 KiB argument blocks;
//! 3. fixed-rate steps for our monitor, to find the highest rate it keeps
//!    up with, no event lost, for the whole step;
//! 4. alert latency at half and nine tenths of that rate, with a harmless
//!    copy of `/bin/true` named `dmesg` run with `-c`;
//! 5. the kernel side's own cost per exec from BPF run statistics, turned
//!    on for that step only.
//!
//! Needs root, and installs what it compares with from Debian's packages
//! (libbpf-tools, bpftrace, bpftool, auditd, laurel). tracefs is mounted
//! for execsnoop and bpftrace if it is not, and unmounted again after.
//! `--short` runs every step briefly and writes the report under the target
//! directory, to prove the benchmark works, not to measure.
//!
//! Not done: comparing with the previous report to call out regressions.
// TODO(#9): compare every figure with the previous report and call out a
// regression of more than 10%.

mod audit;
mod bpfstats;
mod collect;
mod latency;
mod monitors;
mod proc;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use monitors::{Kind, Measured, Paths, Running};
use workload::Workload;

/// Debian packages of the monitors compared, and of bpftool.
const PACKAGES: [&str; 5] = ["libbpf-tools", "bpftrace", "bpftool", "auditd", "laurel"];

/// How long and how often.
#[derive(Debug, Clone)]
pub struct Plan {
    pub short: bool,
    pub runs: usize,
    pub workers: usize,
    pub storm: Duration,
    pub step: Duration,
    pub step_rates: Vec<f64>,
    pub latency: Duration,
    /// The 64-byte storm's argument block, and the larger ones.
    pub argv_sizes: [usize; 3],
}

impl Plan {
    pub fn new(short: bool) -> Plan {
        let seconds = |full: u64, brief: u64| Duration::from_secs(if short { brief } else { full });
        Plan {
            short,
            runs: if short { 1 } else { 3 },
            workers: 2,
            storm: seconds(8, 2),
            step: seconds(60, 2),
            step_rates: vec![500.0, 1000.0, 2000.0, 3000.0],
            latency: seconds(20, 2),
            argv_sizes: [64, 1024, 16 * 1024],
        }
    }

    fn storm(&self, argv_bytes: usize) -> Workload {
        Workload {
            program: "/bin/true".into(),
            leading: Vec::new(),
            workers: self.workers,
            duration: self.storm,
            rate: None,
            argv_bytes,
            record_starts: false,
        }
    }
}

/// One measured run of one monitor.
pub struct Sample {
    pub kind: Kind,
    pub argv_bytes: usize,
    pub measured: Measured,
    /// The monitor's own count of what it lost, where it has one.
    pub own_loss: Option<u64>,
}

/// Everything the report is made of.
pub struct Results {
    pub plan: Plan,
    pub storms: Vec<Sample>,
    /// Monitors that could not be measured, and why.
    pub failed: Vec<(String, String)>,
    pub steps: Vec<Sample>,
    /// (share of the sustained rate, rate asked for, the run).
    pub latency: Vec<(f64, f64, Sample)>,
    pub bpf: Vec<(Kind, u64, Vec<bpfstats::Program>)>,
    pub sustained: Option<f64>,
}

/// Runs the benchmark and writes the report into `out`.
pub fn run(plan: Plan, binary: &Path, elastic_rules: Option<PathBuf>, out: &Path) -> Result<()> {
    if !is_root() {
        bail!("the benchmark loads eBPF programs and starts auditd: run it as root");
    }
    crate::setup::ensure_debian_packages(&PACKAGES, "the monitors the benchmark compares")?;
    let audit_settings = audit::Saved::read();
    let tracefs = Tracefs::mount()?;
    let scratch = std::env::temp_dir().join(format!("monitor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let paths = Paths {
        binary: binary.to_owned(),
        scratch: scratch.clone(),
    };
    let mut kinds = vec![
        Kind::None,
        Kind::Ours {
            rules: None,
            events: false,
        },
    ];
    if let Some(rules) = elastic_rules {
        kinds.push(Kind::Ours {
            rules: Some(rules),
            events: false,
        });
    }
    kinds.push(Kind::Ours {
        rules: None,
        events: true,
    });
    kinds.extend([
        Kind::Execsnoop,
        Kind::Bpftrace,
        Kind::Auditd,
        Kind::AuditdLaurel,
    ]);

    let mut results = Results {
        plan: plan.clone(),
        storms: Vec::new(),
        failed: Vec::new(),
        steps: Vec::new(),
        latency: Vec::new(),
        bpf: Vec::new(),
        sustained: None,
    };
    storms(&plan, &kinds, &paths, &mut results)?;
    steps(&plan, &paths, &mut results)?;
    alert_latency(&plan, &paths, &scratch, &mut results)?;
    kernel_cost(&plan, &kinds, &paths, &mut results)?;
    drop(tracefs);
    audit_settings.restore();
    let _ = std::fs::remove_dir_all(&scratch);

    report::write(&results, out)?;
    eprintln!(
        "bench: report written to {}",
        out.join("report.md").display()
    );
    Ok(())
}

/// Step 1 and 2: the storms, every monitor, interleaved.
fn storms(plan: &Plan, kinds: &[Kind], paths: &Paths, results: &mut Results) -> Result<()> {
    let mut rounds = Vec::new();
    for _ in 0..plan.runs {
        rounds.push(plan.argv_sizes[0]);
    }
    rounds.extend(&plan.argv_sizes[1..]);
    for (round, argv_bytes) in rounds.into_iter().enumerate() {
        // Each round starts with another monitor, so that none is always
        // measured right after the same one.
        let mut order: Vec<&Kind> = kinds.iter().collect();
        order.rotate_left(round % kinds.len());
        for kind in order {
            if results
                .failed
                .iter()
                .any(|(label, _)| *label == kind.label())
            {
                continue;
            }
            // The larger arguments with the built-in rules only.
            if argv_bytes != plan.argv_sizes[0] && matches!(kind, Kind::Ours { rules: Some(_), .. })
            {
                continue;
            }
            eprintln!(
                "bench: storm {round}: {} with {argv_bytes}-byte arguments",
                kind.label()
            );
            match measure(kind, paths, &plan.storm(argv_bytes), "storm") {
                Ok(sample) => results.storms.push(sample),
                Err(e) if !matches!(kind, Kind::None | Kind::Ours { .. }) => {
                    eprintln!("bench: {} left out: {e:#}", kind.label());
                    results.failed.push((kind.label(), format!("{e:#}")));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Starts `kind`, runs `workload`, stops it.
fn measure(kind: &Kind, paths: &Paths, workload: &Workload, label: &str) -> Result<Sample> {
    let audit_lost = audit::kernel_lost();
    let running = Running::start(kind, paths)?;
    let measured = running.measure(workload, label);
    let log = running.stop()?;
    let own_loss = match kind {
        Kind::None => None,
        Kind::Ours { .. } => {
            let (kernel, daemon) = monitors::own_loss(&log);
            Some(kernel + daemon)
        }
        Kind::Auditd | Kind::AuditdLaurel => Some(audit::kernel_lost().saturating_sub(audit_lost)),
        Kind::Execsnoop | Kind::Bpftrace => Some(monitors::reported_lost(&log)),
    };
    Ok(Sample {
        kind: kind.clone(),
        argv_bytes: workload.argv_bytes,
        measured,
        own_loss,
    })
}

/// Step 3: fixed rates, ours with the built-in rules.
fn steps(plan: &Plan, paths: &Paths, results: &mut Results) -> Result<()> {
    let ours = Kind::Ours {
        rules: None,
        events: true,
    };
    for &rate in &plan.step_rates {
        eprintln!("bench: step at {rate} execs/s for {:?}", plan.step);
        let workload = Workload {
            rate: Some(rate),
            duration: plan.step,
            ..plan.storm(plan.argv_sizes[0])
        };
        let sample = measure(&ours, paths, &workload, "step")?;
        let kept_up = sample.measured.missing == 0 && sample.measured.outcome.rate() >= 0.95 * rate;
        if kept_up {
            results.sustained = Some(rate);
        }
        results.steps.push(sample);
        if !kept_up {
            break;
        }
    }
    Ok(())
}

/// Step 4: alert latency with a stand-in `dmesg`.
fn alert_latency(plan: &Plan, paths: &Paths, scratch: &Path, results: &mut Results) -> Result<()> {
    let bin = scratch.join("path");
    std::fs::create_dir_all(&bin)?;
    let dmesg = bin.join("dmesg");
    std::fs::copy("/bin/true", &dmesg).context("copying /bin/true as a stand-in dmesg")?;
    let sustained = results
        .sustained
        .or_else(|| results.steps.first().map(|s| s.measured.outcome.rate()))
        .unwrap_or(500.0);
    for share in [0.5, 0.9] {
        let rate = sustained * share;
        eprintln!("bench: alert latency at {rate:.0} execs/s");
        let workload = Workload {
            program: dmesg.clone(),
            leading: vec!["-c".into()],
            workers: plan.workers,
            duration: plan.latency,
            rate: Some(rate),
            argv_bytes: 0,
            record_starts: true,
        };
        let alerting = Kind::Ours {
            rules: None,
            events: false,
        };
        let sample = measure(&alerting, paths, &workload, "latency")?;
        results.latency.push((share, rate, sample));
    }
    Ok(())
}

/// Step 5: BPF run statistics for each eBPF monitor.
fn kernel_cost(plan: &Plan, kinds: &[Kind], paths: &Paths, results: &mut Results) -> Result<()> {
    for kind in kinds.iter().filter(|k| k.is_ebpf()) {
        if matches!(kind, Kind::Ours { rules: Some(_), .. })
            || results
                .failed
                .iter()
                .any(|(label, _)| *label == kind.label())
        {
            continue;
        }
        eprintln!("bench: BPF run statistics for {}", kind.label());
        let running = Running::start(kind, paths)?;
        let owner = running.pids[0];
        let stats = bpfstats::Enabled::new()?;
        let before = bpfstats::programs_of(owner)?;
        let measured = running.measure(&plan.storm(plan.argv_sizes[0]), "bpf");
        let after = bpfstats::programs_of(owner)?;
        drop(stats);
        running.stop()?;
        let spent = bpfstats::difference(&before, &after);
        results
            .bpf
            .push((kind.clone(), measured.outcome.execs, spent));
    }
    Ok(())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// tracefs, mounted for the benchmark if it was not.
struct Tracefs {
    mounted_here: bool,
}

const TRACEFS: &str = "/sys/kernel/tracing";

impl Tracefs {
    fn mount() -> Result<Tracefs> {
        if Path::new(TRACEFS).join("events").exists() {
            return Ok(Tracefs {
                mounted_here: false,
            });
        }
        let status = std::process::Command::new("mount")
            .args(["-t", "tracefs", "tracefs", TRACEFS])
            .status()
            .context("mounting tracefs")?;
        if !status.success() {
            bail!("mounting tracefs at {TRACEFS} failed (execsnoop and bpftrace need it)");
        }
        Ok(Tracefs { mounted_here: true })
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = std::process::Command::new("umount").arg(TRACEFS).status();
        }
    }
}
