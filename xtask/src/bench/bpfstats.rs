//! The kernel side's own cost: BPF run statistics (`kernel.bpf_stats_enabled`),
//! turned on for one measurement only, read per program with bpftool.

use std::collections::HashMap;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// Run time and run count of one program.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub name: String,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// Turns the statistics on until dropped, then back to what they were.
pub struct Enabled {
    before: String,
}

const STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl Enabled {
    pub fn new() -> Result<Enabled> {
        let before = std::fs::read_to_string(STATS).unwrap_or_else(|_| "0".into());
        sysctl("1")?;
        Ok(Enabled {
            before: before.trim().to_owned(),
        })
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let _ = sysctl(&self.before);
    }
}

fn sysctl(value: &str) -> Result<()> {
    let status = Command::new("sysctl")
        .args(["-q", "-w", &format!("kernel.bpf_stats_enabled={value}")])
        .status()
        .context("running sysctl")?;
    if !status.success() {
        bail!("sysctl kernel.bpf_stats_enabled={value} failed");
    }
    Ok(())
}

/// The programs that `pid` holds open, by id, read from its file
/// descriptors' `fdinfo` (which carries the run statistics), and named by
/// bpftool.
pub fn programs_of(pid: u32) -> Result<HashMap<u64, Program>> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .with_context(|| format!("reading /proc/{pid}/fdinfo"))?;
    let mut found = HashMap::new();
    for fd in fds.flatten() {
        let Ok(info) = std::fs::read_to_string(fd.path()) else {
            continue;
        };
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        // Link descriptors name their program too, without statistics.
        let (Some(id), None) = (field("prog_id:"), field("link_id:")) else {
            continue;
        };
        found.insert(
            id,
            Program {
                name: String::new(),
                run_time_ns: field("run_time_ns:").unwrap_or(0),
                run_count: field("run_cnt:").unwrap_or(0),
            },
        );
    }
    for (id, program) in &mut found {
        program.name = name_of(*id).unwrap_or_else(|| format!("id {id}"));
    }
    Ok(found)
}

fn name_of(id: u64) -> Option<String> {
    let out = Command::new("bpftool")
        .args(["--json", "prog", "show", "id", &id.to_string()])
        .output()
        .ok()?;
    let prog: Value = serde_json::from_slice(&out.stdout).ok()?;
    prog["name"].as_str().map(str::to_owned)
}

/// What each program spent between two readings.
pub fn difference(before: &HashMap<u64, Program>, after: &HashMap<u64, Program>) -> Vec<Program> {
    let mut spent: Vec<Program> = after
        .iter()
        .map(|(id, a)| {
            let b = before.get(id).cloned().unwrap_or_default();
            Program {
                name: a.name.clone(),
                run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns),
                run_count: a.run_count.saturating_sub(b.run_count),
            }
        })
        .collect();
    spent.sort_by_key(|p| std::cmp::Reverse(p.run_time_ns));
    spent
}
