//! Command-line interface.
//!
//! Without a subcommand, `monitor` runs the daemon; `monitor rules ...`
//! works with rule files offline (see `rules_cli`).
//!
//! TODO(#6): a configuration file (every option will also be a key in it).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use monitor_common::{ARGV_CAPTURE_MAX, ARGV_LIMIT_DEFAULT};

/// Watches every program start on this host through eBPF and raises an alert
/// when an Elastic EQL detection rule matches.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where alerts go; repeat for several. journald uses the native journal
    /// protocol; stdout writes one JSON document per line.
    #[arg(long, value_enum, default_value = "journald")]
    pub output: Vec<Output>,

    /// Also write every process event to standard output as NDJSON.
    #[arg(long)]
    pub print_events: bool,

    /// Rule file or directory (recursive) to load instead of the built-in
    /// rule set; repeat for several.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Bytes of each exec's argument block to capture (256 to 131072);
    /// longer blocks are cut and the event says so.
    #[arg(long, value_name = "BYTES", default_value_t = ARGV_LIMIT_DEFAULT,
          value_parser = clap::value_parser!(u32).range(256..=ARGV_CAPTURE_MAX as i64))]
    pub argv_limit: u32,

    /// Size of the kernel-to-daemon ring buffer in bytes: a power of two, a
    /// multiple of the page size, at most 1 GiB, and room for the largest
    /// record (64 KiB with the default argv limit).
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pub ring_buffer_size: u32,

    /// BTF to resolve kernel structure offsets from; the running kernel's
    /// by default.
    #[arg(long, value_name = "PATH", default_value = crate::btf::VMLINUX_BTF)]
    pub btf: PathBuf,

    /// Do not watch `syslog(2)` for calls that clear the kernel ring
    /// buffer. Watching costs every system call on the host a little (about
    /// 0.1 µs on the test machine); the rules on dmesg's exec still run.
    #[arg(long)]
    pub no_syslog_watch: bool,

    /// Most processes the process table holds (1,024 to 4,194,304); a host
    /// with more live processes gets events without parent details for
    /// the ones left out, and a warning.
    #[arg(long, value_name = "COUNT", default_value_t = 65536,
          value_parser = clap::value_parser!(u32).range(1024..=4_194_304))]
    pub max_processes: u32,

    /// Seconds between loss reports (reported only when something was lost).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_interval: u64,
}

/// Commands other than running the daemon.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check rule files, or run them over recorded events, without the kernel.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `monitor rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rule files and directories; print what loaded, what was skipped
    /// and why, and what failed and where. Exits 1 only on failures.
    Check {
        /// Rule files or directories (read recursively).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Evaluate rules over ECS events (one JSON document per line) and print
    /// the alerts as the daemon writes them with `--output stdout`.
    Test {
        /// NDJSON file of events, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        events: PathBuf,
        /// Rule files or directories; the built-in rules when none is given.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// An alert destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Journald,
    Stdout,
}

impl Cli {
    /// The outputs asked for, each once, in the order given.
    pub fn outputs(&self) -> Vec<Output> {
        let mut seen = Vec::new();
        for o in &self.output {
            if !seen.contains(o) {
                seen.push(*o);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("monitor").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&[]).expect("parse");
        assert_eq!(cli.outputs(), vec![Output::Journald]);
        assert_eq!(cli.argv_limit, ARGV_LIMIT_DEFAULT);
        assert!(cli.argv_limit >= 16 * 1024);
        assert!(cli.rules.is_empty() && !cli.print_events);
    }

    #[test]
    fn repeated_outputs_are_kept_once() {
        let cli = parse(&[
            "--output", "stdout", "--output", "journald", "--output", "stdout",
        ])
        .expect("parse");
        assert_eq!(cli.outputs(), vec![Output::Stdout, Output::Journald]);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let err = parse(&["--argv-limit", "999999999"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--argv-limit"), "{err}");
        let err = parse(&["--output", "syslog"]).unwrap_err().to_string();
        assert!(err.contains("journald") && err.contains("stdout"), "{err}");
        assert!(parse(&["--stats-interval", "0"]).is_err());
    }

    #[test]
    fn rules_subcommands() {
        let cli = parse(&["rules", "check", "a", "b"]).expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Rules(RulesCommand::Check { ref paths }))
            if paths.len() == 2)
        );
        let cli = parse(&["rules", "test", "--events", "e.ndjson"]).expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Rules(RulesCommand::Test { ref paths, .. }))
            if paths.is_empty())
        );
        assert!(parse(&["rules", "check"]).is_err(), "check needs a path");
        assert!(
            parse(&["rules", "test", "x.toml"]).is_err(),
            "test needs --events"
        );
    }
}
