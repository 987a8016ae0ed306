//! Benchmarks of rule loading and matching with Elastic's Linux rules.
//!
//! - `load_dir`: reading and parsing the whole rule directory;
//! - `matching/indexed`: [`RuleSet::matching`] over a mix of exec events
//!   built as the daemon builds them;
//! - `matching/brute_force`: the same mix, testing every rule's query.
//!
//! Times of the `matching` group are for the whole mix; criterion also
//! prints the throughput in events per second. The number of rules an event
//! is tested against, with and without the index, is printed once before.
//! Kept short (a few seconds per benchmark) so that the whole run takes
//! well under a minute.

use std::hint::black_box;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use monitor::ecs::EventBuilder;
use monitor::host::HostInfo;
use monitor::process::{EntityIds, ProcessTable};
use monitor::record::ExecRecord;
use monitor::reference_data;
use monitor::rules::{RuleSet, load_dir};
use serde_json::Value;

fn host() -> HostInfo {
    HostInfo {
        hostname: "bench".into(),
        id: None,
        architecture: "x86_64".into(),
        os_name: "Debian GNU/Linux".into(),
        os_family: "debian".into(),
        os_platform: "debian".into(),
        os_version: "13".into(),
        os_full: "Debian GNU/Linux 13".into(),
        kernel_release: "6.12.0".into(),
        kernel: "6.12.0 #1 SMP".into(),
    }
}

/// An exec of `executable` with `args` by user `uid`, child of `ppid`.
fn exec(executable: &str, args: &[&str], uid: u32, ppid: u32) -> ExecRecord {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let name = executable.rsplit('/').next().unwrap_or(executable);
    // One process per record.
    static NEXT_PID: AtomicU32 = AtomicU32::new(4242);
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    ExecRecord {
        boot_ns: 1_000_000_000,
        start_ns: 900_000_000,
        parent_start_ns: 100_000_000,
        pid,
        tid: pid,
        ppid,
        sid: ppid,
        pgid: pid,
        vpid: pid,
        tty: None,
        working_directory: Some(b"/home/alice".to_vec()),
        cgroup: b"/user.slice".to_vec(),
        uid,
        gid: uid,
        euid: uid,
        egid: uid,
        comm: name.bytes().take(15).collect(),
        executable: Some(executable.as_bytes().to_vec()),
        executable_truncated: false,
        filename: executable.as_bytes().to_vec(),
        argc: args.len() as u32,
        argv_size: args.iter().map(|a| a.len() as u32 + 1).sum(),
        args,
        args_truncated: false,
        args_unreadable: false,
    }
}

/// A day on a server, roughly: mostly routine commands, a few that rules
/// look for.
fn event_mix() -> Vec<Value> {
    let records = [
        exec("/usr/bin/ls", &["ls", "-la", "/home/alice"], 1000, 900),
        exec(
            "/usr/bin/bash",
            &["bash", "-c", "ls /tmp | wc -l"],
            1000,
            900,
        ),
        exec("/usr/sbin/sshd", &["sshd", "-D", "-R"], 0, 1),
        exec(
            "/usr/bin/python3",
            &["python3", "-c", "print(1)"],
            1000,
            900,
        ),
        exec(
            "/usr/bin/python3",
            &["python3", "-c", "import pty; pty.spawn('/bin/bash')"],
            1000,
            900,
        ),
        exec(
            "/usr/bin/curl",
            &["curl", "-fsSL", "https://example.org/"],
            1000,
            900,
        ),
        exec("/usr/bin/dmesg", &["dmesg", "-c"], 0, 900),
        exec("/usr/bin/dmesg", &["dmesg", "-T"], 1000, 900),
        exec(
            "/usr/bin/systemctl",
            &["systemctl", "status", "nginx"],
            0,
            900,
        ),
        exec("/usr/bin/grep", &["grep", "-r", "unwrap", "src"], 1000, 900),
        exec("/usr/bin/cat", &["cat", "/etc/os-release"], 1000, 900),
        exec("/usr/bin/sudo", &["sudo", "-l"], 1000, 900),
        exec("/usr/bin/git", &["git", "status", "--short"], 1000, 900),
        exec("/usr/bin/ps", &["ps", "aux"], 1000, 900),
        exec("/usr/bin/crontab", &["crontab", "-l"], 1000, 900),
        exec("/usr/bin/chmod", &["chmod", "+x", "/tmp/run.sh"], 1000, 900),
        exec("/usr/bin/apt-get", &["apt-get", "update"], 0, 900),
        exec("/usr/bin/base64", &["base64", "-d"], 1000, 900),
        exec("/usr/bin/id", &["id"], 1000, 900),
        exec("/usr/sbin/iptables", &["iptables", "-F"], 0, 900),
    ];
    let mut builder = EventBuilder::new(&host());
    let mut table = ProcessTable::new(EntityIds::new("bench", 100), 1024, 32 * 1024);
    records
        .iter()
        .map(|record| builder.exec(&mut table, record))
        .collect()
}

fn bench_load(c: &mut Criterion) {
    let dir = &reference_data::dir(reference_data::LINUX_RULES);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("load_dir", |b| b.iter(|| load_dir(black_box(dir))));
    group.finish();
}

fn bench_matching(c: &mut Criterion) {
    let report = load_dir(&reference_data::dir(reference_data::LINUX_RULES));
    let set = RuleSet::new(report.loaded);
    let events = event_mix();

    let tested: usize = events.iter().map(|e| set.candidates(e).count()).sum();
    let matched: usize = events.iter().map(|e| set.matching(e).count()).sum();
    println!(
        "{} rules, {} events: {:.1} rules tested per event with the index \
         ({} without), {matched} matches in all",
        set.len(),
        events.len(),
        tested as f64 / events.len() as f64,
        set.len(),
    );

    let mut group = c.benchmark_group("matching");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("indexed", |b| {
        b.iter(|| {
            let hits: usize = events.iter().map(|e| set.matching(e).count()).sum();
            black_box(hits)
        })
    });
    group.bench_function("brute_force", |b| {
        b.iter(|| {
            let rules = set.rules();
            let hits: usize = events
                .iter()
                .map(|e| rules.iter().filter(|r| r.query.matches(e)).count())
                .sum();
            black_box(hits)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_load, bench_matching);
criterion_main!(benches);
