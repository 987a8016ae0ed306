//! auditd for the benchmark: started in the foreground with a
//! configuration of its own (log in a scratch folder, no rotation, laurel
//! as its only plugin when asked), one execve rule, and a backlog large
//! enough for an exec storm.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// The audit rule's key, to find and delete it again.
const KEY: &str = "monitor-bench";

/// Starts auditd (and laurel under it); returns auditd and the log file
/// whose lines carry the events: auditd's own, or laurel's.
pub fn start(scratch: &Path, laurel: bool) -> Result<(Child, PathBuf)> {
    if !super::proc::pids_named("auditd").is_empty() {
        bail!("an auditd is running on this machine; stop it to compare with auditd");
    }
    let config = scratch.join("audit");
    let plugins = config.join("plugins.d");
    std::fs::create_dir_all(&plugins)?;
    let log = scratch.join("audit.log");
    std::fs::write(config.join("auditd.conf"), auditd_conf(&log, &plugins))?;
    let laurel_log = scratch.join("laurel/audit.log");
    if laurel {
        let laurel_config = config.join("laurel.toml");
        std::fs::write(&laurel_config, laurel_toml(&scratch.join("laurel")))?;
        std::fs::write(
            plugins.join("laurel.conf"),
            format!(
                "active = yes\ndirection = out\ntype = always\nformat = string\n\
                 path = /usr/sbin/laurel\nargs = --config {}\n",
                laurel_config.display()
            ),
        )?;
    }
    let child = Command::new("auditd")
        .arg("-n")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting auditd (Debian package auditd)")?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    auditctl(&["-b", "65536"])?;
    auditctl(&[
        "-a",
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "execve",
        "-k",
        KEY,
    ])?;
    Ok((child, if laurel { laurel_log } else { log }))
}

/// Deletes the benchmark's rule, and only it (auditd itself is stopped by
/// the caller).
pub fn stop() {
    let _ = auditctl(&["-D", "-k", KEY]);
}

/// The kernel's audit settings the benchmark changes, to put back.
pub struct Saved {
    enabled: Option<String>,
    backlog_limit: Option<String>,
}

impl Saved {
    pub fn read() -> Saved {
        let status = Command::new("auditctl")
            .arg("-s")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let value = |key: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
        };
        Saved {
            enabled: value("enabled "),
            backlog_limit: value("backlog_limit "),
        }
    }

    pub fn restore(&self) {
        if let Some(limit) = &self.backlog_limit {
            let _ = auditctl(&["-b", limit]);
        }
        if let Some(enabled) = &self.enabled {
            let _ = auditctl(&["-e", enabled]);
        }
    }
}

/// The kernel's count of audit records it could not queue.
pub fn kernel_lost() -> u64 {
    let Ok(out) = Command::new("auditctl").arg("-s").output() else {
        return 0;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("lost ")?.trim().parse().ok())
        .unwrap_or(0)
}

fn auditctl(args: &[&str]) -> Result<()> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("running auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn auditd_conf(log: &Path, plugins: &Path) -> String {
    format!(
        "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_group = root\n\
         log_format = RAW\nflush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 0\n\
         max_log_file_action = IGNORE\nnum_logs = 0\npriority_boost = 4\n\
         name_format = NONE\nspace_left = 2\nspace_left_action = IGNORE\n\
         admin_space_left = 1\nadmin_space_left_action = IGNORE\n\
         disk_full_action = IGNORE\ndisk_error_action = IGNORE\n\
         plugin_dir = {}\nq_depth = 65536\nuse_libwrap = no\n",
        log.display(),
        plugins.display()
    )
}

fn laurel_toml(directory: &Path) -> String {
    format!(
        "directory = \"{}\"\nuser = \"_laurel\"\nstatusreport-period = 0\n\n\
         [auditlog]\nfile = \"audit.log\"\nsize = 4000000000\ngenerations = 1\n\n\
         [transform]\nexecve-argv = [ \"array\" ]\n",
        directory.display()
    )
}
