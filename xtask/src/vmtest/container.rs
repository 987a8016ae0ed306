//! The privileged container: the image built from the `Containerfile`
//! without a registry, run with the README's own run line, watching this
//! host and alerting into this host's journal.
//!
//! No registry is reachable from the test machines, so the image's base is
//! the guest's Debian root file system imported into podman, and the binary
//! is the release build from the build context (the `Containerfile`'s
//! `BASE` and `BINARY_FROM=prebuilt` build arguments). Two settings come
//! from the machine, not the README: Debian 12's crun refuses this kernel's
//! hybrid cgroup layout, so runc runs the container, and the test shell may
//! lack `CAP_SYS_RESOURCE`, so the container's limits are set below its
//! own instead of podman's higher defaults.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::{Check, capture};

const BASE_IMAGE: &str = "localhost/monitor-vm-test-base:bookworm";
const IMAGE: &str = "localhost/monitor:vm-test";
const NAME: &str = "monitor-vm-test";
const SEED_RULE: &str = "2724808c-ba5d-48b2-86d2-0002103df753";
const MACHINE_FLAGS: [&str; 4] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];

/// Builds the image and runs the scenario; the checks it made.
pub fn run(root: &Path, binary: &Path, rootfs: &Path, out: &Path) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    import_base(rootfs)?;
    let context = build_context(root, binary, out)?;
    // The last run's image would be left dangling by the new one.
    let _ = Command::new("podman").args(["rmi", "-f", IMAGE]).output();
    let build = Command::new("podman")
        .args(["--runtime", "runc", "build"])
        .args(MACHINE_FLAGS)
        .args(["--build-arg", &format!("BASE={BASE_IMAGE}")])
        .args(["--build-arg", "BINARY_FROM=prebuilt", "-t", IMAGE])
        .args(["-f", "Containerfile", "."])
        .current_dir(&context)
        .output()
        .context("running podman build")?;
    let built = build.status.success();
    checks.push(Check::new(
        "the image builds from the Containerfile, no registry",
        built,
        tail(&build.stderr),
    ));
    if !built {
        return Ok(checks);
    }

    let line = run_line(&std::fs::read_to_string(root.join("README.md"))?)?;
    // A privileged container watching the host must not outlive the test,
    // whatever happens from here on.
    let _container = Removed;
    let _ = Command::new("podman").args(["rm", "-f", NAME]).output();
    let mut args: Vec<String> = vec!["--runtime".into(), "runc".into(), "run".into(), "-d".into()];
    args.extend(MACHINE_FLAGS.iter().map(|s| (*s).to_owned()));
    // Without --rm, so that the exit code can be read after the stop.
    args.extend(
        line.iter()
            .skip(2)
            .filter(|a| *a != "--rm")
            .map(|a| match a.as_str() {
                "monitor" => IMAGE.to_owned(),
                other => other.to_owned(),
            }),
    );
    if let Some(i) = args.iter().position(|a| a == "--name") {
        args[i + 1] = NAME.to_owned();
    }
    let started = Command::new("podman").args(&args).output()?;
    checks.push(Check::new(
        "it runs with the README's run line",
        started.status.success(),
        format!("podman {}\n{}", args.join(" "), tail(&started.stderr)),
    ));
    if !started.status.success() {
        return Ok(checks);
    }
    let ready = wait_log("INFO ready", Duration::from_secs(60));
    checks.push(Check::new(
        "  and gets ready (attached, self-checked)",
        ready,
        tail(
            capture(Command::new("podman").args(["logs", NAME]))
                .unwrap_or_default()
                .as_bytes(),
        ),
    ));

    let dmesg = Command::new("dmesg")
        .arg("-c")
        .stdout(Stdio::null())
        .spawn()
        .context("running dmesg -c")?;
    let pid = dmesg.id();
    let _ = dmesg.wait_with_output();
    let alert = wait_alert(pid, Duration::from_secs(20));
    checks.push(Check::new(
        "a host dmesg -c raises the alert in the host's journal",
        alert.is_some(),
        format!("pid {pid}"),
    ));
    if let Some(alert) = alert {
        let host = capture(&mut Command::new("hostname")).unwrap_or_default();
        checks.push(Check::new(
            "  naming the host and the user as the host does",
            alert["host"]["hostname"].as_str() == Some(host.trim())
                && alert["user"]["name"] == "root",
            format!("{} {}", alert["host"]["hostname"], alert["user"]),
        ));
    }
    let stop = Command::new("podman")
        .args(["stop", "-t", "10", NAME])
        .output()?;
    let code = capture(Command::new("podman").args(["inspect", "-f", "{{.State.ExitCode}}", NAME]))
        .unwrap_or_default();
    checks.push(Check::new(
        "podman stop ends it cleanly",
        stop.status.success() && code.trim() == "0",
        format!("exit code {}", code.trim()),
    ));
    Ok(checks)
}

/// Removes the test's container when dropped.
struct Removed;

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rm", "-f", NAME]).output();
    }
}

/// A build context with only what the image takes, at the places the
/// `Containerfile` names: wherever cargo put the binary, the context holds
/// it at `target/release/monitor`.
fn build_context(root: &Path, binary: &Path, out: &Path) -> Result<PathBuf> {
    let context = out.join("container-context");
    if context.exists() {
        fs::remove_dir_all(&context)?;
    }
    for (from, to) in [
        (root.join("Containerfile"), "Containerfile"),
        (root.join("monitor/monitor.toml"), "monitor/monitor.toml"),
        (binary.to_owned(), "target/release/monitor"),
    ] {
        let to = context.join(to);
        fs::create_dir_all(to.parent().expect("a file in a folder"))?;
        fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(context)
}

/// The guest's root, without kernels, as podman's base image (once).
fn import_base(rootfs: &Path) -> Result<()> {
    let exists = Command::new("podman")
        .args(["image", "exists", BASE_IMAGE])
        .status()?;
    if exists.success() {
        return Ok(());
    }
    eprintln!("vm-test: importing the guest's root file system as the image's base");
    crate::setup::run(
        Command::new("bash").arg("-c").arg(format!(
            "set -o pipefail; tar -C '{}' --exclude=./boot --exclude=./usr/lib/modules \
         --exclude='./proc/*' -c . | podman import - {BASE_IMAGE}",
            rootfs.display()
        )),
        "podman import",
    )
}

/// The README's `podman run` line, split into words.
fn run_line(readme: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        let line = line.trim();
        if line.starts_with("podman run ") {
            inside = true;
        }
        if inside {
            words.extend(
                line.trim_end_matches('\\')
                    .split_whitespace()
                    .map(str::to_owned),
            );
            if !line.ends_with('\\') {
                return Ok(words);
            }
        }
    }
    bail!("no `podman run` line in the README")
}

fn wait_log(text: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let logs = Command::new("podman").args(["logs", NAME]).output();
        if logs.is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains(text)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

/// The seed rule's alert for `pid`, from the host's journal.
fn wait_alert(pid: u32, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let entries = capture(Command::new("journalctl").args([
            "-t",
            "monitor",
            "-o",
            "json",
            "-a",
            "--no-pager",
        ]))
        .unwrap_or_default();
        let found = entries
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| {
                e["ALERT_JSON"]
                    .as_str()
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
            })
            .find(|a| a["process"]["pid"] == pid && a["rule"]["id"] == SEED_RULE);
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(800);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_line_is_read_whole_from_the_readme() {
        let readme = "text\n```sh\npodman build -t monitor .\npodman run --rm --name monitor --privileged \\\n    -v /a:/a:ro \\\n    monitor\n```\n";
        assert_eq!(
            run_line(readme).unwrap(),
            [
                "podman",
                "run",
                "--rm",
                "--name",
                "monitor",
                "--privileged",
                "-v",
                "/a:/a:ro",
                "monitor"
            ]
        );
        assert!(run_line("no line here").is_err());
    }
}
