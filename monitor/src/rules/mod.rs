//! Detection rules in Elastic's detection-rules TOML format.
//!
//! A rule file has a `[metadata]` table and a `[rule]` table; the files of
//! `github.com/elastic/detection-rules` load as they are. Only single-event
//! EQL rules run here. Other rule types (`new_terms`, KQL `query`,
//! `threshold`, `esql`, `machine_learning`, ...) and EQL `sequence` and
//! `sample` queries are reported as [`Skipped`], not as errors. Files that are
//! broken (bad TOML, a missing key, an EQL syntax error) become [`RuleError`]s
//! that point at a line and column in the file. A path that is not a
//! regular file, or a file over [`MAX_FILE_BYTES`], is an error too; inside
//! a directory, FIFOs, devices and sockets are skipped, with the reason.
//!
//! A [`RuleSet`] indexes its rules by category and pinned `process.name`
//! (`index`), so an event is only tested against rules that could match it.
//!
//! Not done yet: rule exceptions, and `rule.from`/`interval` scheduling
//! (events are matched as they arrive).

mod error;
mod index;
mod model;
mod parse;
mod read;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use index::RuleIndex;

pub use error::RuleError;
pub use model::{
    Loaded, Metadata, Rule, Severity, SkipReason, Skipped, Subtechnique, Tactic, Technique, Threat,
};
pub use parse::load_str;
pub use read::MAX_FILE_BYTES;

/// Prefix of [`Rule::source`] for rules compiled into the binary.
pub const BUILTIN_PREFIX: &str = "built-in:";

/// Rule files compiled into the binary, by file name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "defense_evasion_clear_kernel_ring_buffer.toml",
        include_str!("../../rules/defense_evasion_clear_kernel_ring_buffer.toml"),
    ),
    (
        "defense_evasion_dmesg_clear_options.toml",
        include_str!("../../rules/defense_evasion_dmesg_clear_options.toml"),
    ),
    (
        "defense_evasion_kernel_ring_buffer_cleared_syslog.toml",
        include_str!("../../rules/defense_evasion_kernel_ring_buffer_cleared_syslog.toml"),
    ),
    (
        "defense_evasion_kernel_ring_buffer_clear_denied.toml",
        include_str!("../../rules/defense_evasion_kernel_ring_buffer_clear_denied.toml"),
    ),
];

/// Loads one rule file: a regular file (symbolic links followed) of at
/// most [`MAX_FILE_BYTES`].
pub fn load_file(path: &Path) -> Result<Loaded, RuleError> {
    let source = path.display().to_string();
    let text = read::read_text(path, &source, MAX_FILE_BYTES)?;
    load_str(&text, &source)
}

/// What loading a set of rule files produced.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Rules ready to run.
    pub loaded: Vec<Rule>,
    /// Well-formed rules that the monitor cannot run, and entries of a
    /// directory that are not files to read (FIFOs, devices, sockets).
    pub skipped: Vec<Skipped>,
    /// Files (or directories) that could not be loaded.
    pub failed: Vec<RuleError>,
}

impl LoadReport {
    /// Files the report accounts for, in whatever state.
    pub fn total(&self) -> usize {
        self.loaded.len() + self.skipped.len() + self.failed.len()
    }

    fn add(&mut self, result: Result<Loaded, RuleError>) {
        match result {
            Ok(Loaded::Rule(rule)) => self.loaded.push(*rule),
            Ok(Loaded::Skipped(skipped)) => self.skipped.push(skipped),
            Err(err) => self.failed.push(err),
        }
    }
}

/// Loads a rule file, or every `*.toml` file under a directory.
pub fn load_path(path: &Path) -> LoadReport {
    if path.is_dir() {
        return load_dir(path);
    }
    let mut report = LoadReport::default();
    report.add(load_file(path));
    report
}

/// Loads every `*.toml` file under `dir`, recursively, in sorted path order.
///
/// One bad file never stops the others; an unreadable directory is reported
/// in [`LoadReport::failed`] too, and so is a `*.toml` link that leads
/// nowhere. Symbolic links to files and directories are followed; a
/// directory reached twice (a link cycle) is read once. Entries that are
/// neither directories nor regular files, whatever their name, are
/// reported in [`LoadReport::skipped`] and not opened.
pub fn load_dir(dir: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    collect_toml(dir, &mut files, &mut report, &mut visited);
    report.skipped.sort_by(|a, b| a.source.cmp(&b.source));
    files.sort();
    for file in files {
        report.add(load_file(&file));
    }
    report
}

/// Collects `*.toml` files below `dir`, and reports in `report` what cannot
/// be read. Links are followed; `visited` (canonical paths) keeps a link
/// cycle from recursing forever.
fn collect_toml(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    report: &mut LoadReport,
    visited: &mut HashSet<PathBuf>,
) {
    let read_error = |err| RuleError::Read {
        path: dir.display().to_string(),
        source: err,
    };
    match fs::canonicalize(dir) {
        Ok(canonical) => {
            if !visited.insert(canonical) {
                return;
            }
        }
        Err(err) => return report.failed.push(read_error(err)),
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return report.failed.push(read_error(err)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                report.failed.push(read_error(err));
                continue;
            }
        };
        let path = entry.path();
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        match fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => collect_toml(&path, files, report, visited),
            Ok(metadata) if metadata.is_file() => {
                if is_toml {
                    files.push(path);
                }
            }
            Ok(metadata) => report.skipped.push(not_a_file(&path, &metadata)),
            Err(err) if is_toml => report.failed.push(RuleError::Read {
                path: path.display().to_string(),
                source: err,
            }),
            Err(_) => {}
        }
    }
}

/// The skip entry for a directory entry that is neither a directory nor a
/// regular file; its file name stands in for the rule name.
fn not_a_file(path: &Path, metadata: &fs::Metadata) -> Skipped {
    let name = path.file_name().unwrap_or(path.as_os_str());
    Skipped {
        name: name.to_string_lossy().into_owned(),
        rule_id: String::new(),
        source: path.display().to_string(),
        reason: SkipReason::NotRegular(read::kind(metadata.file_type())),
    }
}

/// Loads the rules compiled into the binary, reporting each like a file.
pub fn builtin_report() -> LoadReport {
    let mut report = LoadReport::default();
    for (name, text) in BUILTIN {
        report.add(load_str(text, &format!("{BUILTIN_PREFIX}{name}")));
    }
    report
}

/// The rules compiled into the binary.
///
/// A built-in file that fails to load (which the unit tests rule out) is
/// logged at error level and left out rather than stopping the monitor.
pub fn builtin() -> RuleSet {
    let report = builtin_report();
    for err in &report.failed {
        tracing::error!(error = %err, "built-in rule does not load");
    }
    for skipped in &report.skipped {
        tracing::warn!(rule = %skipped.name, reason = %skipped.reason, "built-in rule skipped");
    }
    RuleSet::new(report.loaded)
}

/// The rules the monitor runs against every event, indexed so that an event
/// is only tested against the rules that could match it.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: RuleIndex,
    /// The `event.action` values some process rule may match, lowercased;
    /// `None` when some rule may match any action.
    actions: Option<Vec<String>>,
}

impl RuleSet {
    /// A set holding `rules`, in that order.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut set = RuleSet {
            actions: Some(Vec::new()),
            ..RuleSet::default()
        };
        set.extend(rules);
        set
    }

    /// Whether some rule could match a process event whose `event.action`
    /// is `action`; false lets the daemon skip building events nobody
    /// reads. Errs on the side of true: a rule that does not pin
    /// `event.action` may match anything.
    pub fn may_match_action(&self, action: &str) -> bool {
        match &self.actions {
            None => true,
            Some(actions) => actions.iter().any(|a| a.eq_ignore_ascii_case(action)),
        }
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set holds no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds rules at the end, keeping load order.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Rule>) {
        for rule in rules {
            self.index.add(self.rules.len(), &rule);
            if matches!(rule.query.category(), None | Some("process")) {
                match (rule.query.pinned_values("event.action"), &mut self.actions) {
                    (Some(values), Some(actions)) => {
                        actions.extend(values.into_iter().map(|v| v.to_ascii_lowercase()));
                    }
                    (None, actions) => *actions = None,
                    (Some(_), None) => {}
                }
            }
            self.rules.push(rule);
        }
    }

    /// The rules whose query matches `event`, in load order.
    ///
    /// The same rules as testing every rule's query, but only the
    /// [candidates](RuleSet::candidates) are tested.
    pub fn matching<'a>(&'a self, event: &Value) -> impl Iterator<Item = &'a Rule> {
        self.candidates(event)
            .filter(move |rule| rule.query.matches(event))
    }

    /// The rules that the index cannot rule out for `event`, in load order:
    /// those of the event's categories (and `any where` rules) that pin the
    /// event's `process.name` or do not pin it at all. Every rule that
    /// matches is among them.
    pub fn candidates<'a>(&'a self, event: &Value) -> impl Iterator<Item = &'a Rule> + use<'a> {
        self.index
            .candidates(event)
            .into_iter()
            .map(|i| &self.rules[i])
    }
}

impl FromIterator<Rule> for RuleSet {
    fn from_iter<I: IntoIterator<Item = Rule>>(iter: I) -> Self {
        RuleSet::new(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod builtin_tests;
