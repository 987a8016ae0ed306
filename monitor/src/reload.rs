//! Reloading the configuration and the rules on SIGHUP, and checking them
//! with `--check-config`.
//!
//! A reload reads the configuration file again (the command-line flags
//! still win over it) and loads the rules it names. It is all or nothing:
//! if the file has an error, or any rule file does not load, or no rule
//! would run, the running rules stay and the error is logged; otherwise the
//! new rules replace the old ones between two events, so none is evaluated
//! against a half-loaded set. Settings other than the rules (argv limit,
//! ring buffer size, outputs...) shape what was set up at start; a reload
//! that changes them says so and leaves them for the next restart.
//!
//! `--check-config` loads exactly what a reload would, with the same
//! strictness, and prints it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use tracing::warn;

use crate::cli::Cli;
use crate::config::{self, Settings};
use crate::probe::ProbeOptions;
use crate::rules::RuleSet;
use crate::rules_cli::{self, Failures};

/// Reloads for the daemon, remembering what it runs with.
#[derive(Debug)]
pub struct Reloader {
    cli: Cli,
    running: Settings,
}

impl Reloader {
    /// A reloader for a daemon started with `cli` and running `running`.
    pub fn new(cli: Cli, running: Settings) -> Self {
        Reloader { cli, running }
    }

    /// Reads the configuration and rules again; returns the new rule set,
    /// or why the running one stays.
    pub fn reload(&mut self) -> Result<RuleSet> {
        let next = config::load(&self.cli)?;
        let rules = rules_cli::daemon_rules(&next.rules, next.builtin_rules, Failures::Refuse)?;
        let pending = self.running.restart_only_changes(&next);
        if !pending.is_empty() {
            warn!(
                settings = pending.join(", "),
                "changed in the configuration; applied at the next restart, not by a reload"
            );
        }
        self.running.rules = next.rules;
        self.running.builtin_rules = next.builtin_rules;
        Ok(rules)
    }
}

/// `--check-config`: prints the settings and the rules they load; exits 1
/// if a reload would refuse them.
pub fn check(settings: &Settings, out: &mut impl Write) -> Result<ExitCode> {
    match &settings.source {
        Some(path) => writeln!(out, "configuration: {}", path.display())?,
        None => writeln!(
            out,
            "configuration: none at {}; defaults and flags",
            config::DEFAULT_PATH
        )?,
    }
    let effective = toml::to_string(settings).context("printing the settings")?;
    writeln!(out, "settings in effect, flags included:\n{effective}")?;
    let options = ProbeOptions {
        argv_limit: settings.argv_limit,
        ring_buffer_bytes: settings.ring_buffer_size,
    };
    if let Err(e) = options.validate() {
        writeln!(out, "error: {e}")?;
        return Ok(ExitCode::FAILURE);
    }
    if let Err(e) = crate::btf::KernelBtf::open(&settings.btf) {
        writeln!(out, "error: {e}")?;
        return Ok(ExitCode::FAILURE);
    }
    if let Some(address) = settings.metrics_listen
        && let Err(e) = std::net::TcpListener::bind(address)
    {
        writeln!(out, "error: metrics_listen {address} cannot be bound: {e}")?;
        return Ok(ExitCode::FAILURE);
    }
    match rules_cli::daemon_rules(&settings.rules, settings.builtin_rules, Failures::Refuse) {
        Ok(rules) => {
            writeln!(out, "rules: {} would run", rules.len())?;
            for rule in rules.rules() {
                writeln!(out, "  {} ({})", rule.name, rule.rule_id)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(out, "error: {e:#}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}
