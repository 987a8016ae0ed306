//! The daemon's clear one-line errors for what stops it from starting.

mod support;

use std::process::{Command, Output};

use support::{BINARY, privileged};

/// Asserts the run failed with exit code 1 and a last line `error: ...`
/// holding every needle, and no panic or backtrace; returns that line.
fn assert_clear_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(line.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} missing from: {line}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    line
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
    assert_clear_error(&out, &["lacks CAP_BPF and CAP_PERFMON", "run as root"]);
}

#[test]
fn a_missing_btf_file_is_named() {
    let out = Command::new(BINARY)
        .args(["--btf", "/nonexistent/vmlinux", "--output", "stdout"])
        .output()
        .expect("run the daemon");
    assert_clear_error(&out, &["no BTF file at /nonexistent/vmlinux"]);
}

#[test]
fn a_missing_rule_path_is_named() {
    let out = Command::new(BINARY)
        .args(["--rules", "/nonexistent/rules", "--output", "stdout"])
        .output()
        .expect("run the daemon");
    assert_clear_error(&out, &["/nonexistent/rules", "does not exist"]);
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

#[test]
fn rules_that_all_fail_to_load_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("broken.toml"), "[rule\nname = ").expect("write");
    let out = Command::new(BINARY)
        .args(["--output", "stdout", "--rules"])
        .arg(dir.path())
        .output()
        .expect("run the daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.toml:1:"),
        "the failure names file:line: {stderr}"
    );
    assert_clear_error(&out, &["no runnable rule"]);
}

#[test]
fn a_ring_buffer_too_small_for_one_record_is_refused() {
    let out = Command::new(BINARY)
        .args(["--output", "stdout", "--ring-buffer-size", "4096"])
        .output()
        .expect("run the daemon");
    assert_clear_error(&out, &["cannot hold one record", "65536"]);
}

#[test]
fn offsets_that_do_not_fit_the_kernel_stop_the_start() {
    if !privileged() {
        return;
    }
    // A debug build's hook moves the argument offset, as a kernel whose
    // layout the offsets do not fit would; the self-check must see the
    // known exec's arguments read wrong and refuse to run.
    let out = Command::new(BINARY)
        .args(["--config", "/dev/null", "--output", "stdout"])
        .env("MONITOR_TEST_SKEW_ARG_START", "1")
        .output()
        .expect("run the daemon");
    let line = assert_clear_error(
        &out,
        &[
            "start-up self-check failed",
            "arguments read as []",
            "\"monitor-self-check\", \"--self-check-child\"",
            "refusing to run",
        ],
    );
    assert!(
        !line.contains("parent pid"),
        "only the arguments differ: {line}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(" ready "),
        "declared ready before failing"
    );
}
