//! Command-line interface.
//!
//! Without a subcommand, `monitor` runs the daemon; `monitor rules ...`
//! works with rule files offline (see `rules_cli`). The daemon's options
//! are merged with its configuration file in `config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use monitor_common::ARGV_CAPTURE_MAX;
use serde::{Deserialize, Serialize};

use crate::config::{ARGV_LIMIT_MIN, MAX_PROCESSES_RANGE};

/// Watches every program start on this host through eBPF and raises an alert
/// when an Elastic EQL detection rule matches.
///
/// Every option can also be set in the configuration file, under the same
/// name with underscores (`--argv-limit` is `argv_limit`); a flag wins over
/// the file.
#[derive(Debug, Default, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Configuration file [default: /etc/monitor/monitor.toml, if it
    /// exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Check the configuration and the rules it names, print what would
    /// run, and exit: 0 when all of it loads, 1 otherwise.
    #[arg(long)]
    pub check_config: bool,

    /// Where alerts go; repeat for several [default: journald]. journald
    /// uses the native journal protocol; stdout writes one JSON document per
    /// line.
    #[arg(long, value_enum)]
    pub output: Vec<Output>,

    /// Also write every process event to standard output as NDJSON.
    #[arg(long)]
    pub print_events: bool,

    /// Rule file or directory (recursive) to load instead of the built-in
    /// rule set; repeat for several.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Run the built-in rules too, besides the `--rules` files.
    #[arg(long, conflicts_with = "no_builtin_rules")]
    pub builtin_rules: bool,

    /// Do not run the built-in rules.
    #[arg(long)]
    pub no_builtin_rules: bool,

    /// Bytes of each exec's argument block to capture (256 to 131072)
    /// [default: 32768]; longer blocks are cut and the event says so.
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(ARGV_LIMIT_MIN as i64..=ARGV_CAPTURE_MAX as i64))]
    pub argv_limit: Option<u32>,

    /// Size of the kernel-to-daemon ring buffer in bytes [default: 8388608]:
    /// a power of two, a multiple of the page size, at most 1 GiB, and room
    /// for the largest record (64 KiB with the default argv limit).
    #[arg(long, value_name = "BYTES")]
    pub ring_buffer_size: Option<u32>,

    /// BTF to resolve kernel structure offsets from [default: the running
    /// kernel's, /sys/kernel/btf/vmlinux].
    #[arg(long, value_name = "PATH")]
    pub btf: Option<PathBuf>,

    /// Do not watch `syslog(2)` for calls that clear the kernel ring
    /// buffer. Watching costs every system call on the host a little (about
    /// 0.1 µs on the test machine); the rules on dmesg's exec still run.
    #[arg(long)]
    pub no_syslog_watch: bool,

    /// Most processes the process table holds (1,024 to 4,194,304)
    /// [default: 65536]; a host with more live processes gets events without
    /// parent details for the ones left out, and a warning.
    #[arg(long, value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(MAX_PROCESSES_RANGE.0 as i64..=MAX_PROCESSES_RANGE.1 as i64))]
    pub max_processes: Option<u32>,

    /// Seconds between the totals logged (events, alerts, losses, ring
    /// buffer fill, rule evaluation time) [default: 60].
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub stats_interval: Option<u64>,

    /// Serve metrics in Prometheus text format at http://ADDRESS/metrics
    /// (for example 127.0.0.1:9464); off by default.
    #[arg(long, value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    Journald,
    Stdout,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("monitor").chain(args.iter().copied()))
    }

    #[test]
    fn no_flag_means_no_override() {
        let cli = parse(&[]).expect("parse");
        assert!(cli.output.is_empty() && cli.rules.is_empty());
        assert!(cli.argv_limit.is_none() && cli.metrics_listen.is_none());
        assert!(!cli.print_events && !cli.check_config);
    }

    #[test]
    fn builtin_rule_flags_exclude_each_other() {
        assert!(parse(&["--builtin-rules", "--no-builtin-rules"]).is_err());
        let cli = parse(&["--metrics-listen", "127.0.0.1:9464"]).expect("parse");
        assert_eq!(cli.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(parse(&["--metrics-listen", "localhost"]).is_err());
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
