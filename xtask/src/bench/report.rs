//! The benchmark's report: the machine and plan it ran with, a table per
//! step, and SVG plots of the headline figures.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use plotters::prelude::*;

use super::latency::percentiles;
use super::monitors::Kind;
use super::{Results, Sample};

/// Median, minimum and maximum.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    fn show(self, decimals: usize) -> String {
        if self.min == self.max {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} ({:.*}–{:.*})",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

fn show(spread: Option<Spread>, decimals: usize) -> String {
    spread.map_or_else(|| "—".to_owned(), |s| s.show(decimals))
}

/// CPU microseconds per exec of the workload.
fn cpu_per_event(sample: &Sample) -> f64 {
    sample.measured.cpu_seconds * 1e6 / sample.measured.outcome.execs.max(1) as f64
}

/// One row of the storm tables.
struct Row {
    label: String,
    counted: bool,
    ratio: Option<Spread>,
    rate: Option<Spread>,
    missing: u64,
    execs: u64,
    own_loss: Option<u64>,
    cpu: Option<Spread>,
    rss_mb: Option<Spread>,
}

fn rows(results: &Results, argv_bytes: usize) -> Vec<Row> {
    let samples: Vec<&Sample> = results
        .storms
        .iter()
        .filter(|s| s.argv_bytes == argv_bytes)
        .collect();
    let baselines: Vec<f64> = samples
        .iter()
        .filter(|s| s.kind == Kind::None)
        .map(|s| s.measured.outcome.rate())
        .collect();
    let mut ranked = samples.clone();
    ranked.sort_by_key(|s| s.kind.rank());
    let mut labels: Vec<String> = Vec::new();
    for s in &ranked {
        if !labels.contains(&s.kind.label()) {
            labels.push(s.kind.label());
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let mine: Vec<&&Sample> = samples.iter().filter(|s| s.kind.label() == label).collect();
            // Each run against the baseline of the same round.
            let ratios: Vec<f64> = mine
                .iter()
                .zip(&baselines)
                .map(|(s, base)| s.measured.outcome.rate() / base)
                .collect();
            let is_baseline = mine[0].kind == Kind::None;
            let values = |f: &dyn Fn(&Sample) -> f64| {
                Spread::of(&mine.iter().map(|s| f(s)).collect::<Vec<_>>())
            };
            Row {
                label,
                counted: mine[0].kind.shows_every_exec(),
                ratio: Spread::of(&ratios),
                rate: values(&|s| s.measured.outcome.rate()),
                missing: mine.iter().map(|s| s.measured.missing).sum(),
                execs: mine.iter().map(|s| s.measured.outcome.execs).sum(),
                own_loss: mine.iter().map(|s| s.own_loss).sum(),
                cpu: (!is_baseline).then(|| values(&cpu_per_event)).flatten(),
                rss_mb: (!is_baseline)
                    .then(|| values(&|s| s.measured.rss_kb as f64 / 1024.0))
                    .flatten(),
            }
        })
        .collect()
}

/// Writes `report.md` and the plots into `out`.
pub fn write(results: &Results, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut md = String::new();
    let plan = &results.plan;
    writeln!(md, "# Benchmark: exec monitors side by side\n")?;
    writeln!(
        md,
        "Written by `cargo xtask bench{}`; every figure below comes from this one run.\n",
        if plan.short { " --short" } else { "" }
    )?;
    if plan.short {
        writeln!(
            md,
            "**Short mode**: every step ran for a second or two, to prove the benchmark \
             works. These figures are not measurements.\n"
        )?;
    }
    environment(&mut md, results)?;

    let storm = plan.argv_sizes[0];
    writeln!(md, "## Exec storm, {storm}-byte argument blocks\n")?;
    writeln!(
        md,
        "{} workers fork and exec `/bin/true` as fast as they can for {} s, each exec \
         carrying its sequence number; {} run(s) per monitor, interleaved, each round \
         starting with another monitor. Figures are medians with (min–max); read \
         differences smaller than the spread of the \"none\" row as ties. \"Not shown\" \
         is counted end to end: sequence numbers the monitor's output had not shown 20 s \
         after the storm ended (lost, or still queued by a monitor that fell behind, \
         whose CPU figure is then cut there too); \"own count\" is what the monitor itself \
         says it lost (ours: its loss totals; auditd: the kernel's audit `lost` counter; \
         execsnoop and bpftrace: the losses they print). CPU is user plus system time of \
         the monitor's processes (auditd's with the kernel's `kauditd` thread, and \
         laurel) per exec, from the storm's start until its output caught up. Our \
         monitor runs twice: as deployed (alerts only; its output shows no exec, so only \
         its own count tells loss) and with every event written out as ECS JSON \
         (`--print-events`: fork, exec and end for each exec), which the benchmark \
         reads and counts.\n",
        plan.workers,
        plan.storm.as_secs(),
        plan.runs
    )?;
    storm_table(&mut md, &rows(results, storm))?;
    for &size in &plan.argv_sizes[1..] {
        writeln!(md, "## Exec storm, {} KiB argument blocks\n", size / 1024)?;
        writeln!(md, "As above, one run per monitor.\n")?;
        storm_table(&mut md, &rows(results, size))?;
    }
    if !results.failed.is_empty() {
        writeln!(md, "Left out:\n")?;
        for (label, why) in &results.failed {
            writeln!(md, "- {label}: {}", why.lines().next().unwrap_or(""))?;
        }
        writeln!(md)?;
    }
    steps(&mut md, results)?;
    latency(&mut md, results)?;
    bpf(&mut md, results)?;
    plots(results, out)?;
    writeln!(
        md,
        "## Plots\n\n![throughput](throughput.svg)\n\n![CPU per event](cpu.svg)\n\n\
         ![alert latency](latency.svg)\n"
    )?;
    std::fs::write(out.join("report.md"), md)?;
    Ok(())
}

fn environment(md: &mut String, results: &Results) -> Result<()> {
    let command = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or_else(String::new, |kb| {
            format!("{:.1} GiB", kb as f64 / 1048576.0)
        });
    let versions: Vec<String> = ["libbpf-tools", "bpftrace", "auditd", "laurel"]
        .iter()
        .map(|p| format!("{p} {}", command("dpkg-query", &["-W", "-f=${Version}", p])))
        .collect();
    let plan = &results.plan;
    writeln!(md, "## Machine and configuration\n")?;
    writeln!(md, "| | |\n|---|---|")?;
    writeln!(
        md,
        "| date | {} |",
        command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    )?;
    writeln!(md, "| kernel | {} |", command("uname", &["-srv"]))?;
    writeln!(md, "| CPU | {cpu}, {} cores |", command("nproc", &[]))?;
    writeln!(md, "| memory | {memory} |")?;
    writeln!(
        md,
        "| commit | {} |",
        command("git", &["describe", "--always", "--dirty"])
    )?;
    writeln!(md, "| others | {} |", versions.join(", "))?;
    writeln!(
        md,
        "| our monitor | release build, default settings (`--config /dev/null`); alerts \
         to stdout and the journal, and every event to stdout with `--print-events` |"
    )?;
    writeln!(
        md,
        "| plan | {} workers; storms {} s × {} runs; steps {} s at {:?} execs/s; latency {} s |\n",
        plan.workers,
        plan.storm.as_secs(),
        plan.runs,
        plan.step.as_secs(),
        plan.step_rates,
        plan.latency.as_secs()
    )?;
    Ok(())
}

fn storm_table(md: &mut String, rows: &[Row]) -> Result<()> {
    writeln!(
        md,
        "| monitor | throughput vs none | execs/s | not shown (end to end) | own count | \
         CPU µs per exec | RSS MB |\n|---|---|---|---|---|---|---|"
    )?;
    for row in rows {
        let own = row.own_loss.map_or("—".into(), |n| n.to_string());
        let lost = if row.counted {
            format!("{} of {}", row.missing, row.execs)
        } else {
            "—".to_owned()
        };
        writeln!(
            md,
            "| {} | {} | {} | {lost} | {own} | {} | {} |",
            row.label,
            show(row.ratio, 2),
            show(row.rate, 0),
            show(row.cpu, 1),
            show(row.rss_mb, 1)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn steps(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Fixed rates: the highest rate kept up with\n")?;
    writeln!(
        md,
        "Our monitor (built-in rules, every event to stdout) at fixed rates, {} s a step, \
         stopping at the first step with a loss or a rate the workload could not reach.\n",
        results.plan.step.as_secs()
    )?;
    writeln!(
        md,
        "| asked execs/s | reached | lost (end to end) | own count | CPU µs per exec |\n\
         |---|---|---|---|---|"
    )?;
    for (sample, asked) in results.steps.iter().zip(&results.plan.step_rates) {
        writeln!(
            md,
            "| {asked} | {:.0} | {} of {} | {} | {:.1} |",
            sample.measured.outcome.rate(),
            sample.measured.missing,
            sample.measured.outcome.execs,
            sample.own_loss.unwrap_or(0),
            cpu_per_event(sample)
        )?;
    }
    match results.sustained {
        Some(rate) => writeln!(
            md,
            "\nHighest rate kept up with, nothing lost: **{rate} execs/s**.\n"
        )?,
        None => writeln!(md, "\nNo step was kept up with.\n")?,
    }
    Ok(())
}

fn latency(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Alert latency\n")?;
    writeln!(
        md,
        "A copy of `/bin/true` named `dmesg`, run as `dmesg -c SEQ` from a temporary \
         folder (so the real buffer is not cleared), at half and nine tenths of the rate \
         above; every exec raises the built-in rules' alerts (two rules match it). The \
         daemon runs as deployed, alerts only, to stdout and to a journald of its own in \
         a private mount namespace (so that these alerts never reach the host's journal). \
         Latency runs from the moment the workload starts the exec to the moment the \
         benchmark reads the exec's first alert on the daemon's stdout (HDR histogram). \
         \"Missed\" counts execs with no alert within 20 s. journald's CPU is per alert.\n"
    )?;
    writeln!(
        md,
        "| share | execs/s asked | reached | execs | alerts | missed | p50 ms | p99 ms | \
         p99.9 ms | max ms | daemon CPU µs per exec | journald CPU µs per alert |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for (share, asked, sample) in &results.latency {
        let p = percentiles(&sample.measured.latencies);
        let ms = |us: u64| us as f64 / 1000.0;
        let m = &sample.measured;
        writeln!(
            md,
            "| {:.0}% | {asked:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | \
             {:.1} | {:.1} |",
            share * 100.0,
            m.outcome.rate(),
            m.outcome.execs,
            m.lines,
            m.missing,
            ms(p.p50),
            ms(p.p99),
            ms(p.p999),
            ms(p.max),
            cpu_per_event(sample),
            m.journal_cpu_seconds * 1e6 / m.lines.max(1) as f64
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn bpf(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Kernel side: BPF run statistics\n")?;
    writeln!(
        md,
        "`kernel.bpf_stats_enabled=1` for this step only, one storm per eBPF monitor; the \
         run time of each of the monitor's programs (bpftool) over the execs of the storm. \
         Programs that run on more than execs (fork, exit, every system call's return) are \
         charged to the execs too.\n"
    )?;
    writeln!(
        md,
        "| monitor | ns per exec, all programs | programs: runs, ns per run |\n|---|---|---|"
    )?;
    for (kind, execs, programs) in &results.bpf {
        let total: u64 = programs.iter().map(|p| p.run_time_ns).sum();
        let detail: Vec<String> = programs
            .iter()
            .filter(|p| p.run_count > 0)
            .map(|p| {
                format!(
                    "`{}` {} runs, {:.0} ns",
                    p.name,
                    p.run_count,
                    p.run_time_ns as f64 / p.run_count as f64
                )
            })
            .collect();
        writeln!(
            md,
            "| {} | {:.0} | {} |",
            kind.label(),
            total as f64 / (*execs).max(1) as f64,
            detail.join("; ")
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn plots(results: &Results, out: &Path) -> Result<()> {
    let storm = rows(results, results.plan.argv_sizes[0]);
    let ratios: Vec<(String, f64)> = storm
        .iter()
        .filter_map(|r| Some((r.label.clone(), r.ratio?.median)))
        .collect();
    bars(
        &out.join("throughput.svg"),
        "Exec throughput with the monitor / without",
        &ratios,
    )?;
    let cpu: Vec<(String, f64)> = storm
        .iter()
        .filter_map(|r| Some((r.label.clone(), r.cpu?.median)))
        .collect();
    bars(
        &out.join("cpu.svg"),
        "Userspace CPU per event, µs (user + system)",
        &cpu,
    )?;
    let mut latency = Vec::new();
    for (share, _, sample) in &results.latency {
        let p = percentiles(&sample.measured.latencies);
        for (name, us) in [("p50", p.p50), ("p99", p.p99), ("p99.9", p.p999)] {
            latency.push((
                format!("{:.0}% rate, {name}", share * 100.0),
                us as f64 / 1000.0,
            ));
        }
    }
    bars(&out.join("latency.svg"), "Alert latency, ms", &latency)?;
    Ok(())
}

/// A horizontal bar chart of labelled values.
fn bars(path: &Path, title: &str, values: &[(String, f64)]) -> Result<()> {
    let height = 80 + 40 * values.len().max(1) as u32;
    let root = SVGBackend::new(path, (760, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let top = values.iter().map(|v| v.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let n = values.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(260)
        .build_cartesian_2d(0.0..top, (0..n).into_segmented())
        .map_err(plot_error)?;
    let labels: Vec<String> = values.iter().map(|v| v.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .label_style(("sans-serif", 13))
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(values.iter().enumerate().map(|(i, (_, value))| {
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (*value, SegmentValue::Exact(i + 1)),
                ],
                BLUE.mix(0.6).filled(),
            );
            bar.set_margin(6, 6, 0, 0);
            bar
        }))
        .map_err(plot_error)?;
    chart
        .draw_series(values.iter().enumerate().map(|(i, (_, value))| {
            Text::new(
                format!("{value:.2}"),
                (*value, SegmentValue::CenterOf(i)),
                ("sans-serif", 13),
            )
        }))
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0]).unwrap().median, 1.5);
        assert!(Spread::of(&[]).is_none());
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
    }

    #[test]
    fn a_plot_is_an_svg_file() {
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        bars(&path, "t", &[("a".into(), 1.0), ("b".into(), 0.5)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        for label in ["a", "b", "1.00", "0.50"] {
            assert!(
                text.contains(&format!(">\n{label}\n</text>")),
                "{label} missing: {text}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
