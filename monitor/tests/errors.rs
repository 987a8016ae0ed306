//! The daemon's clear one-line errors for what stops it from starting.

mod support;

use std::process::Command;

use support::{BINARY, privileged};

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn without_privilege_it_says_what_is_missing() {
    if !privileged() {
        return;
    }
    // Drop to nobody with no capabilities, as an unprivileged user would run.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args(["--bounding-set=-all", BINARY, "--output", "stdout"])
        .output()
        .expect("run setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = last_line(&out.stderr);
    assert!(line.starts_with("error: "), "{stderr}");
    assert!(
        line.contains("permission denied") && line.contains("CAP_BPF"),
        "{line}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn missing_btf_names_the_kernel_option() {
    let out = Command::new(BINARY)
        .args(["--btf", "/nonexistent/vmlinux", "--output", "stdout"])
        .output()
        .expect("run the daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = last_line(&out.stderr);
    assert!(line.starts_with("error: "), "{stderr}");
    assert!(line.contains("CONFIG_DEBUG_INFO_BTF"), "{line}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(BINARY)
        .args(["--argv-limit", "lots"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--argv-limit"));
}
