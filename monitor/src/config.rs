//! The daemon's settings: built-in defaults, overridden by the configuration
//! file, overridden by command-line flags.
//!
//! The file is TOML, at [`DEFAULT_PATH`] unless `--config` names another.
//! Every key is optional and has a flag of the same name (`argv_limit` is
//! `--argv-limit`); a missing file at the default path means "defaults",
//! a missing file named with `--config` is an error. Unknown keys, wrong
//! types and values out of range are rejected with the file, line and
//! column, so a typo never silently leaves an option at its default.
//! Relative rule paths in the file are read from the file's directory.
//!
//! `monitor/monitor.toml` in the source tree is the file `cargo xtask
//! install` puts in place, with every key, its default and what it does.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, de};

use crate::cli::{Cli, Output};
use monitor_common::{ARGV_CAPTURE_MAX, ARGV_LIMIT_DEFAULT};

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/monitor/monitor.toml";

/// Smallest argv capture limit.
pub const ARGV_LIMIT_MIN: u32 = 256;

/// Range of the process table's size.
pub const MAX_PROCESSES_RANGE: (u32, u32) = (1024, 4_194_304);

/// Everything the daemon runs with, once defaults, file and flags are merged;
/// serialized, it is a configuration file that says exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Where alerts go, each once, in order.
    #[serde(rename = "output")]
    pub outputs: Vec<Output>,
    /// Every event to standard output as NDJSON, too.
    pub print_events: bool,
    /// Run the rules compiled into the binary.
    pub builtin_rules: bool,
    /// Rule files and directories to load (besides the built-in rules when
    /// `builtin_rules`).
    pub rules: Vec<PathBuf>,
    /// Bytes of each exec's argument block to capture.
    pub argv_limit: u32,
    /// Size of the kernel-to-daemon ring buffer in bytes.
    pub ring_buffer_size: u32,
    /// BTF to resolve kernel structure offsets from.
    pub btf: PathBuf,
    /// Watch `syslog(2)` for calls that clear the kernel ring buffer.
    pub syslog_watch: bool,
    /// Most processes the process table holds.
    pub max_processes: u32,
    /// Seconds between the periodic totals in the log.
    pub stats_interval: u64,
    /// Address of the Prometheus listener; none when metrics are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// The file these settings were read from, if one was.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            outputs: vec![Output::Journald],
            print_events: false,
            builtin_rules: true,
            rules: Vec::new(),
            argv_limit: ARGV_LIMIT_DEFAULT,
            ring_buffer_size: 8 << 20,
            btf: PathBuf::from(crate::btf::VMLINUX_BTF),
            syslog_watch: true,
            max_processes: 65536,
            stats_interval: 60,
            metrics_listen: None,
            source: None,
        }
    }
}

/// The configuration file as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, deserialize_with = "outputs")]
    output: Option<Vec<Output>>,
    print_events: Option<bool>,
    builtin_rules: Option<bool>,
    rules: Option<Vec<PathBuf>>,
    #[serde(default, deserialize_with = "argv_limit")]
    argv_limit: Option<u32>,
    #[serde(default, deserialize_with = "ring_buffer_size")]
    ring_buffer_size: Option<u32>,
    btf: Option<PathBuf>,
    syslog_watch: Option<bool>,
    #[serde(default, deserialize_with = "max_processes")]
    max_processes: Option<u32>,
    #[serde(default, deserialize_with = "stats_interval")]
    stats_interval: Option<u64>,
    #[serde(default, deserialize_with = "listen_address")]
    metrics_listen: Option<SocketAddr>,
}

/// A configuration that cannot be used, and where.
#[derive(Debug)]
pub struct ConfigError {
    path: PathBuf,
    /// 1-based line and column, when the error is at a place in the file.
    place: Option<(usize, usize)>,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the configuration file the command line points at (or the
/// default one, if it exists) and merges the flags over it.
pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
    let (path, explicit) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let mut settings = Settings::default();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse(&text, &path)?.apply(&mut settings, &path);
            settings.source = Some(path);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
        Err(e) => {
            return Err(ConfigError {
                path,
                place: None,
                message: format!("cannot read the configuration file: {e}"),
            });
        }
    }
    apply_flags(cli, &mut settings);
    Ok(settings)
}

fn parse(text: &str, path: &Path) -> Result<File, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        place: e.span().map(|span| line_and_column(text, span.start)),
        message: e.message().trim_end().to_owned(),
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl File {
    fn apply(self, s: &mut Settings, path: &Path) {
        let base = path.parent().unwrap_or(Path::new("/"));
        if let Some(v) = self.output {
            s.outputs = dedup(v);
        }
        if let Some(v) = self.rules {
            s.rules = v.into_iter().map(|p| base.join(p)).collect();
            // Naming rule files means "these", unless the built-in ones are
            // asked for as well.
            s.builtin_rules = false;
        }
        set(&mut s.builtin_rules, self.builtin_rules);
        set(&mut s.print_events, self.print_events);
        set(&mut s.argv_limit, self.argv_limit);
        set(&mut s.ring_buffer_size, self.ring_buffer_size);
        set(&mut s.btf, self.btf.map(|p| base.join(p)));
        set(&mut s.syslog_watch, self.syslog_watch);
        set(&mut s.max_processes, self.max_processes);
        set(&mut s.stats_interval, self.stats_interval);
        if self.metrics_listen.is_some() {
            s.metrics_listen = self.metrics_listen;
        }
    }
}

fn apply_flags(cli: &Cli, s: &mut Settings) {
    if !cli.output.is_empty() {
        s.outputs = dedup(cli.output.clone());
    }
    if !cli.rules.is_empty() {
        s.rules = cli.rules.clone();
        s.builtin_rules = false;
    }
    if cli.builtin_rules {
        s.builtin_rules = true;
    }
    if cli.no_builtin_rules {
        s.builtin_rules = false;
    }
    s.print_events |= cli.print_events;
    s.syslog_watch &= !cli.no_syslog_watch;
    set(&mut s.argv_limit, cli.argv_limit);
    set(&mut s.ring_buffer_size, cli.ring_buffer_size);
    set(&mut s.btf, cli.btf.clone());
    set(&mut s.max_processes, cli.max_processes);
    set(&mut s.stats_interval, cli.stats_interval);
    if cli.metrics_listen.is_some() {
        s.metrics_listen = cli.metrics_listen;
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Each output once, in the order first given.
fn dedup(outputs: Vec<Output>) -> Vec<Output> {
    let mut seen = Vec::with_capacity(outputs.len());
    for o in outputs {
        if !seen.contains(&o) {
            seen.push(o);
        }
    }
    seen
}

impl Settings {
    /// The settings that only take effect at start, by name, whose values
    /// differ between `self` and `other`: a reload reports them rather than
    /// applying them.
    pub fn restart_only_changes(&self, other: &Settings) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check("output", self.outputs != other.outputs);
        check("print_events", self.print_events != other.print_events);
        check("argv_limit", self.argv_limit != other.argv_limit);
        check(
            "ring_buffer_size",
            self.ring_buffer_size != other.ring_buffer_size,
        );
        check("btf", self.btf != other.btf);
        check("syslog_watch", self.syslog_watch != other.syslog_watch);
        check("max_processes", self.max_processes != other.max_processes);
        check(
            "stats_interval",
            self.stats_interval != other.stats_interval,
        );
        check(
            "metrics_listen",
            self.metrics_listen != other.metrics_listen,
        );
        changed
    }
}

/// A number in `min..=max`, or an error naming the range.
fn ranged<'de, D, T>(d: D, min: T, max: T, unit: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + fmt::Display + Copy,
{
    let value = T::deserialize(d)?;
    if value < min || value > max {
        return Err(de::Error::custom(format!(
            "{value} is out of range: {min} to {max}{unit}"
        )));
    }
    Ok(Some(value))
}

fn argv_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    ranged(d, ARGV_LIMIT_MIN, ARGV_CAPTURE_MAX as u32, " bytes")
}

fn max_processes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    ranged(d, MAX_PROCESSES_RANGE.0, MAX_PROCESSES_RANGE.1, "")
}

fn stats_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    ranged(d, 1, 86_400, " seconds")
}

fn ring_buffer_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let size = u32::deserialize(d)?;
    if !size.is_power_of_two() || !(4096..=crate::probe::RING_BUFFER_MAX).contains(&size) {
        return Err(de::Error::custom(format!(
            "{size} is not a power of two from 4096 bytes to 1 GiB"
        )));
    }
    Ok(Some(size))
}

/// At least one output: with none, alerts would be counted and go nowhere.
fn outputs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Output>>, D::Error> {
    let outputs = Vec::<Output>::deserialize(d)?;
    if outputs.is_empty() {
        return Err(de::Error::custom(
            "no output: alerts would go nowhere; name \"journald\", \"stdout\" or both",
        ));
    }
    Ok(Some(outputs))
}

fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not an address and port, such as \"127.0.0.1:9464\""
        ))
    })
}

#[cfg(test)]
mod tests;
