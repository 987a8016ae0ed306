//! The systemd unit in `systemd/` and what it takes away from the daemon:
//! its exposure rating and capability set (both also stated in the
//! README), `systemd-analyze verify`, and the daemon raising alerts under
//! the unit's user, capabilities, file-system view and system-call filter.
//! PID 1 is not systemd on the test machines, so the last test puts those
//! restrictions in place itself (unshare, setpriv, a seccomp filter built
//! from the unit's `SystemCallFilter=` lines) and checks in `/proc` that
//! they are in force.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use support::{BINARY, Daemon, ensure_journald, journal_entries, privileged, report, run};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/monitor.service");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
const SYSCALL_FILTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/syscall_filter.py"
);
/// The exposure the unit may have at most (lower is safer).
const EXPOSURE_CEILING: f64 = 2.0;
/// A user id from systemd's range for dynamic users, in no user database.
const DYNAMIC_UID: u32 = 61_999;

/// The unit file, as `cargo xtask install` renders it.
struct Unit {
    text: String,
}

impl Unit {
    fn load() -> Unit {
        let text = std::fs::read_to_string(UNIT).unwrap_or_else(|e| panic!("{UNIT}: {e}"));
        Unit { text }
    }

    /// Every value assigned to `key`, in order.
    fn values(&self, key: &str) -> Vec<&str> {
        let prefix = format!("{key}=");
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// The capability names of `key`, which must be assigned once.
    fn capabilities(&self, key: &str) -> BTreeSet<String> {
        let values = self.values(key);
        assert_eq!(values.len(), 1, "{key}= should be set once: {values:?}");
        values[0].split_whitespace().map(str::to_owned).collect()
    }

    /// Writes the unit with its `ExecStart=` naming the test's binary into
    /// `dir`; returns its path.
    fn render_into(&self, dir: &Path) -> PathBuf {
        let bindir = Path::new(BINARY).parent().expect("binary's directory");
        let text: String = self
            .text
            .split_inclusive('\n')
            .map(|line| {
                if line.starts_with('#') {
                    line.to_owned()
                } else {
                    line.replace("/@BINDIR@", &bindir.display().to_string())
                }
            })
            .collect();
        let path = dir.join("monitor.service");
        std::fs::write(&path, text).expect("write the unit");
        path
    }
}

/// The text between `start` and the next `end` in the README.
fn readme_says(start: &str, end: &str) -> String {
    let readme = std::fs::read_to_string(README).expect("read the README");
    let at = readme
        .find(start)
        .unwrap_or_else(|| panic!("the README does not say {start:?}"));
    let rest = &readme[at + start.len()..];
    rest[..rest.find(end).expect("end of the statement")].to_owned()
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("run systemd-analyze (Debian package systemd)")
}

#[test]
fn the_units_exposure_is_at_most_two_and_the_readme_states_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = Unit::load().render_into(dir.path());
    let out = systemd_analyze(&[
        "security",
        "--offline=yes",
        "--no-pager",
        unit.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for monitor.service"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}\n{out:?}"));
    let figure = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a figure");
    report(&format!(
        "systemd-analyze security --offline=yes: exposure {figure} (at most {EXPOSURE_CEILING})"
    ));
    let exposure: f64 = figure.parse().expect("a number");
    assert!(
        exposure <= EXPOSURE_CEILING,
        "exposure {exposure} is over {EXPOSURE_CEILING}:\n{text}"
    );
    assert_eq!(
        readme_says("systemd-analyze security` rates the unit **", "**"),
        figure,
        "the README's exposure figure is not the measured one"
    );
}

#[test]
fn the_units_capability_set_is_the_one_the_readme_states() {
    let unit = Unit::load();
    let bounding = unit.capabilities("CapabilityBoundingSet");
    assert_eq!(bounding, unit.capabilities("AmbientCapabilities"));
    let stated: BTreeSet<String> = readme_says("The unit's capability set: `", "`")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(bounding, stated, "the README names another capability set");
    for needed in ["CAP_BPF", "CAP_PERFMON"] {
        assert!(bounding.contains(needed), "{needed} missing: {bounding:?}");
    }
}

#[test]
fn the_unit_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = Unit::load().render_into(dir.path());
    let out = systemd_analyze(&["verify", unit.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("monitor.service"))
        .collect();
    assert!(about_ours.is_empty(), "complaints: {about_ours:#?}");
}

/// The system calls the unit's `SystemCallFilter=` lines allow, expanded
/// the way systemd reads them: the first line is an allow list, a `~` line
/// takes calls out of it, a later plain line puts calls back.
fn allowed_system_calls(unit: &Unit) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    for value in unit.values("SystemCallFilter") {
        let (deny, names) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        for name in names.split_whitespace() {
            for call in expand(name) {
                if deny {
                    allowed.remove(&call);
                } else {
                    allowed.insert(call);
                }
            }
        }
    }
    assert!(allowed.contains("bpf"), "the filter must allow bpf(2)");
    allowed
}

/// A system call group (`@name`) as systemd-analyze lists it, nested groups
/// included; a plain name stands for itself.
fn expand(name: &str) -> BTreeSet<String> {
    if !name.starts_with('@') {
        return BTreeSet::from([name.to_owned()]);
    }
    let out = systemd_analyze(&["syscall-filter", "--no-pager", name]);
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {name}"
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut calls = BTreeSet::new();
    for entry in text.lines().skip(1).map(str::trim) {
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        calls.extend(expand(entry));
    }
    assert!(!calls.is_empty(), "{name} expands to nothing:\n{text}");
    calls
}

/// `CAP_BPF CAP_PERFMON` as setpriv's `-all,+bpf,+perfmon`.
fn setpriv_caps(caps: &BTreeSet<String>) -> String {
    let mut list = String::from("-all");
    for cap in caps {
        let name = cap.strip_prefix("CAP_").expect("a CAP_ name");
        list.push_str(",+");
        list.push_str(&name.to_lowercase());
    }
    list
}

/// The mounts of ProtectSystem=strict, ProtectHome=yes, PrivateTmp=yes,
/// PrivateDevices=yes, ProtectProc=ptraceable and ProtectKernelTunables=yes,
/// made in a private
/// mount namespace (with a network namespace of its own for
/// PrivateNetwork=yes), then the unit's
/// user and capabilities, then the system-call filter. `-n`: the mount
/// table in /run is read-only by then.
const SANDBOX: &str = r#"
set -eu
mount -n --make-rprivate /
for target in $(findmnt -rn -o TARGET | sort -u); do
    case "$target" in
        /proc|/proc/*|/dev|/dev/*) ;;
        *) mount -n -o remount,bind,ro "$target" 2>/dev/null || true ;;
    esac
done
mount -n -t proc -o nosuid,nodev,noexec,hidepid=ptraceable proc /proc
mount -n --bind /proc/sys /proc/sys
mount -n -o remount,bind,ro /proc/sys
mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
for home in /home /root /run/user; do
    if [ -d "$home" ]; then mount -n -t tmpfs -o ro,mode=000 tmpfs "$home"; fi
done
devices=$(mktemp -d /tmp/dev.XXXXXX)
mount -n -t tmpfs -o mode=755,nosuid,noexec tmpfs "$devices"
for node in null zero full random urandom; do
    touch "$devices/$node"
    mount -n --bind "/dev/$node" "$devices/$node"
done
mount -n --move "$devices" /dev
exec setpriv --reuid="$UNIT_UID" --regid="$UNIT_UID" --clear-groups \
    --bounding-set="$UNIT_CAPS" --inh-caps="$UNIT_CAPS" --ambient-caps="$UNIT_CAPS" \
    --no-new-privs -- "$@"
"#;

/// A line of `/proc/<pid>/status`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// The capability mask of these names.
fn mask(caps: &BTreeSet<String>) -> u64 {
    caps.iter()
        .map(|name| {
            let cap: caps::Capability = name.parse().expect("a capability name");
            1u64 << cap.index()
        })
        .fold(0, |all, bit| all | bit)
}

#[test]
fn the_daemon_alerts_under_the_units_restrictions() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let python_seccomp = Command::new("/usr/bin/python3")
        .args(["-c", "import seccomp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python_seccomp,
        "this test builds its seccomp filter with Debian's python3-seccomp, which is \
         missing: `cargo xtask test` installs it, or apt-get install python3-seccomp"
    );
    let unit = Unit::load();
    let caps = unit.capabilities("AmbientCapabilities");
    // Outside /tmp, which the sandbox replaces.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let allowed = work.path().join("allowed-system-calls");
    let list: Vec<String> = allowed_system_calls(&unit).into_iter().collect();
    std::fs::write(&allowed, list.join("\n")).expect("write the allow list");
    let uid = DYNAMIC_UID.to_string();
    let setpriv = setpriv_caps(&caps);
    let sandboxed = |allowed: &Path| {
        [
            "unshare",
            "--mount",
            "--net",
            "--",
            "/bin/sh",
            "-c",
            SANDBOX,
            "sandbox",
            "/usr/bin/python3",
            SYSCALL_FILTER,
            allowed.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    // RestrictAddressFamilies=AF_UNIX.
    let families = unit.values("RestrictAddressFamilies").join(" ");
    assert_eq!(families, "AF_UNIX", "the filter below knows only AF_UNIX");
    let env = [
        ("UNIT_UID", uid.as_str()),
        ("UNIT_CAPS", setpriv.as_str()),
        ("SOCKET_FAMILIES", "1"),
    ];

    // The filter bites: without bpf(2) in it the daemon cannot load its
    // programs, and says so.
    let without_bpf = work.path().join("without-bpf");
    let fewer: Vec<&str> = list
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "bpf")
        .collect();
    std::fs::write(&without_bpf, fewer.join("\n")).expect("write the allow list");
    let out = Command::new("unshare")
        .args(&sandboxed(&without_bpf)[1..])
        .args([BINARY, "--config", "/dev/null", "--output", "stdout"])
        .envs(env)
        .output()
        .expect("run the sandbox");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a system-call filter"), "{stderr}");

    let command = sandboxed(&allowed);
    let mut command: Vec<&str> = command.iter().map(String::as_str).collect();
    command.push(BINARY);
    let daemon = Daemon::start_wrapped(&command, &["--output", "journald"], &env);

    // The restrictions are in force on the daemon itself.
    let pid = daemon.pid().as_raw() as u32;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "monitor", "the wrappers exec the daemon");
    let uids = status_field(pid, "Uid");
    assert!(uids.split_whitespace().all(|id| id == uid), "uids: {uids}");
    let want = format!("{:016x}", mask(&caps));
    assert_eq!(status_field(pid, "CapEff"), want);
    assert_eq!(status_field(pid, "CapBnd"), want);
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2", "a seccomp filter");
    let proc_options = Command::new("findmnt")
        .args(["-N", &pid.to_string(), "-rno", "OPTIONS", "/proc"])
        .output()
        .expect("findmnt");
    let proc_options = String::from_utf8_lossy(&proc_options.stdout);
    assert!(
        proc_options.contains("hidepid=ptraceable"),
        "{proc_options}"
    );
    for path in ["/", "/proc/sys"] {
        let mount = Command::new("findmnt")
            .args(["-N", &pid.to_string(), "-rno", "OPTIONS", path])
            .output()
            .expect("findmnt");
        let options = String::from_utf8_lossy(&mount.stdout);
        assert!(
            options.starts_with("ro"),
            "{path} is not read-only: {options}"
        );
    }
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "a network namespace of its own"
    );

    // With CAP_SYS_PTRACE it read this root process's executable at start.
    let log = daemon.stderr();
    assert!(!log.contains("no CAP_SYS_PTRACE"), "{log}");
    let me = std::process::id();
    let running = daemon
        .wait_action(me, "already_running", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no already_running event for the test:\n{log}"));
    let own = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(running["process"]["executable"], own.to_str().unwrap());

    let (dmesg, _) = run(&["dmesg", "-c"]);
    let alert = daemon
        .wait_alert(dmesg, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no alert for dmesg -c:\n{}", daemon.stderr()));
    assert_eq!(alert["user"]["name"], "root");
    assert_eq!(alert["process"]["parent"]["pid"], me);
    let matches = [format!("PROCESS_ENTITY_ID={}", support::entity_of(&alert))];
    let entries = journal_entries(&[matches[0].as_str()], Duration::from_secs(10));
    assert!(
        entries.iter().any(|e| e["RULE_NAME"].is_string()),
        "no alert in the journal: {entries:#?}"
    );

    kill(daemon.pid(), Signal::SIGHUP).expect("SIGHUP");
    assert!(
        daemon
            .wait_log("reloaded", 0, Duration::from_secs(10))
            .is_some(),
        "no reload:\n{}",
        daemon.stderr()
    );
    let (code, log) = daemon.stop_with(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}
