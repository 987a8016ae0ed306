//! The `monitor rules` commands, and loading rule paths for the daemon.
//!
//! - `monitor rules check PATH...` loads rule files and directories and
//!   prints what loaded, what was skipped (with the reason), what failed
//!   (with file:line:column) and which rules the daemon would leave out as
//!   duplicates of a rule id loaded before; it exits non-zero only when
//!   something failed.
//! - `monitor rules test --events FILE PATH...` evaluates the rules over ECS
//!   events read from an NDJSON file, offline, and prints the alerts exactly
//!   as the daemon's `--output stdout` writes them.
//!
//! Not done yet: checking a rule's query against a field schema.

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use time::OffsetDateTime;

use crate::alert::Alert;
use crate::output::{AlertSink as _, NdjsonSink};
use crate::rules::{self, LoadReport, Rule, RuleSet};

/// Loads each path (a rule file, or a directory read recursively). A path
/// that does not exist is an error; a file that does not load is reported
/// in its path's [`LoadReport`] and does not stop the others.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<(PathBuf, LoadReport)>> {
    let mut reports = Vec::with_capacity(paths.len());
    for path in paths {
        if !path.exists() {
            bail!("rule path {} does not exist", path.display());
        }
        reports.push((path.clone(), rules::load_path(path)));
    }
    Ok(reports)
}

/// A rule set assembled from paths, with what did not make it in.
pub struct Assembled {
    /// The rules to run, each rule id once.
    pub set: RuleSet,
    /// What each path gave: the path, how many rules loaded from it (before
    /// de-duplication), and its report.
    pub reports: Vec<(PathBuf, usize, LoadReport)>,
    /// Rules left out because a rule with the same id was loaded first.
    pub duplicates: Vec<Rule>,
}

/// Loads the paths into one rule set, keeping the first rule of each id.
/// The reports keep their skipped and failed entries; their loaded rules
/// have moved into the set (or into `duplicates`).
pub fn assemble(paths: &[PathBuf]) -> Result<Assembled> {
    let mut set = RuleSet::new(Vec::new());
    let mut ids = HashSet::new();
    let mut duplicates = Vec::new();
    let mut reports = Vec::with_capacity(paths.len());
    for (path, mut report) in load_paths(paths)? {
        let loaded = report.loaded.len();
        let (first, again): (Vec<Rule>, Vec<Rule>) = std::mem::take(&mut report.loaded)
            .into_iter()
            .partition(|rule| ids.insert(rule.rule_id.clone()));
        set.extend(first);
        duplicates.extend(again);
        reports.push((path, loaded, report));
    }
    Ok(Assembled {
        set,
        reports,
        duplicates,
    })
}

/// What the daemon does with a rule file that does not load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failures {
    /// Log it and run the others (at start: some rules beat none).
    Skip,
    /// Refuse the whole set (on reload: the running set stays).
    Refuse,
}

/// The daemon's rule set: the files and directories in `paths`, then the
/// built-in rules when `builtin`. A rule id is kept once, the first time it
/// is seen, so a file can replace a built-in rule. What was read, skipped
/// and left out is logged. An empty set is an error, and so is any file
/// that does not load when `failures` is [`Failures::Refuse`].
pub fn daemon_rules(paths: &[PathBuf], builtin: bool, failures: Failures) -> Result<RuleSet> {
    let mut assembled = assemble(paths)?;
    let mut problems = Vec::new();
    for (path, loaded, report) in &assembled.reports {
        for skipped in &report.skipped {
            tracing::debug!(rule = %skipped.name, reason = %skipped.reason, "rule skipped");
        }
        for failed in &report.failed {
            problems.push(chain(failed));
        }
        tracing::info!(
            path = %path.display(),
            loaded,
            skipped = report.skipped.len(),
            failed = report.failed.len(),
            "rule files read"
        );
    }
    if failures == Failures::Refuse && !problems.is_empty() {
        bail!(
            "{} rule file(s) do not load: {}",
            problems.len(),
            problems.join("; ")
        );
    }
    for problem in &problems {
        tracing::warn!("rule not loaded: {problem}");
    }
    if builtin {
        let ids: HashSet<String> = assembled
            .set
            .rules()
            .iter()
            .map(|r| r.rule_id.clone())
            .collect();
        let (kept, replaced): (Vec<Rule>, Vec<Rule>) = rules::builtin()
            .rules()
            .iter()
            .cloned()
            .partition(|r| !ids.contains(&r.rule_id));
        for rule in replaced {
            tracing::info!(rule_id = %rule.rule_id, name = %rule.name, "built-in rule replaced by a rule file");
        }
        assembled.set.extend(kept);
    }
    for rule in &assembled.duplicates {
        tracing::warn!(rule_id = %rule.rule_id, dropped = %rule.source, "duplicate rule id; this copy is left out, the one loaded first runs");
    }
    if assembled.set.is_empty() {
        let mut names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        if builtin {
            names.push("the built-in rules".into());
        }
        if names.is_empty() {
            bail!("no rules to run: the built-in rules are off and no rule path is given");
        }
        bail!("no runnable rule in {}", names.join(", "));
    }
    Ok(assembled.set)
}

/// The rules a command runs: the files given, or the built-in set; also
/// how many files failed.
fn rule_set(paths: &[PathBuf]) -> Result<(RuleSet, usize)> {
    if paths.is_empty() {
        return Ok((rules::builtin(), 0));
    }
    let assembled = assemble(paths)?;
    let mut failed = 0;
    for (_, _, report) in &assembled.reports {
        for error in &report.failed {
            eprintln!("failed  {}", chain(error));
        }
        failed += report.failed.len();
    }
    Ok((assembled.set, failed))
}

/// `monitor rules check`. A rule whose id was loaded before is listed as
/// dropped, as [`assemble`] would leave it out, and does not count as
/// loaded; it does not make the check fail, as it does not stop the daemon.
pub fn check(paths: &[PathBuf], out: &mut impl Write) -> Result<ExitCode> {
    let (mut loaded, mut skipped, mut failed, mut dropped) = (0, 0, 0, 0);
    // Each rule id, with the file it was first loaded from.
    let mut first: HashMap<String, String> = HashMap::new();
    for (_, report) in load_paths(paths)? {
        for rule in &report.loaded {
            if let Some(kept) = first.get(&rule.rule_id) {
                writeln!(
                    out,
                    "dropped {}: {} ({}): duplicate rule id; this copy is left out, \
                     the one loaded first runs ({kept})",
                    rule.source, rule.name, rule.rule_id
                )?;
                dropped += 1;
                continue;
            }
            first.insert(rule.rule_id.clone(), rule.source.clone());
            writeln!(
                out,
                "loaded  {}: {} ({})",
                rule.source, rule.name, rule.rule_id
            )?;
            loaded += 1;
        }
        for rule in &report.skipped {
            writeln!(
                out,
                "skipped {}: {}: {}",
                rule.source, rule.name, rule.reason
            )?;
        }
        for error in &report.failed {
            writeln!(out, "failed  {}", chain(error))?;
        }
        skipped += report.skipped.len();
        failed += report.failed.len();
    }
    write!(out, "{loaded} loaded, {skipped} skipped, {failed} failed")?;
    if dropped > 0 {
        write!(out, ", {dropped} duplicate(s) dropped")?;
    }
    writeln!(out)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `monitor rules test`: one alert document per line on `out`; events that
/// are not JSON objects are reported on stderr with their line number, the
/// others still run, and the exit code says something was wrong.
pub fn test(events: &Path, paths: &[PathBuf], out: impl Write) -> Result<ExitCode> {
    let (set, failed_rules) = rule_set(paths)?;
    let input: Box<dyn BufRead> = if events == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(events).with_context(|| format!("opening {}", events.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut sink = NdjsonSink::new(out);
    let mut bad_lines = 0;
    for (index, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", events.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = match serde_json::from_str(&line) {
            Ok(event @ Value::Object(_)) => event,
            Ok(_) => {
                eprintln!("{}:{}: not a JSON object", events.display(), index + 1);
                bad_lines += 1;
                continue;
            }
            Err(e) => {
                eprintln!("{}:{}: invalid JSON: {e}", events.display(), index + 1);
                bad_lines += 1;
                continue;
            }
        };
        let now = OffsetDateTime::now_utc();
        for rule in set.matching(&event) {
            sink.write_alert(&Alert::new(rule, &event, now))?;
        }
    }
    Ok(if bad_lines == 0 && failed_rules == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An error with its causes, on one line.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_rules() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = include_str!("../rules/defense_evasion_clear_kernel_ring_buffer.toml");
        std::fs::write(dir.path().join("good.toml"), good).expect("write");
        let bad = good.replace("process.name == \"dmesg\"", "process.name == )");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/bad.toml"), bad).expect("write");
        std::fs::write(
            dir.path().join("sub/kql.toml"),
            good.replace("type = \"eql\"", "type = \"query\""),
        )
        .expect("write");
        dir
    }

    #[test]
    fn check_lists_every_outcome_and_fails_only_on_failures() {
        let dir = temp_rules();
        let mut out = Vec::new();
        let code = check(&[dir.path().to_owned()], &mut out).expect("check");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(code, ExitCode::FAILURE, "{text}");
        assert!(
            text.contains("loaded  ") && text.contains("good.toml"),
            "{text}"
        );
        assert!(
            text.contains("skipped ") && text.contains("not supported"),
            "{text}"
        );
        let failed = text
            .lines()
            .find(|l| l.starts_with("failed"))
            .expect("failed line");
        assert!(
            failed.contains("bad.toml:") && failed.contains("expected"),
            "{failed}"
        );
        assert!(text.ends_with("1 loaded, 1 skipped, 1 failed\n"), "{text}");

        let mut out = Vec::new();
        let good = dir.path().join("good.toml");
        assert_eq!(check(&[good], &mut out).expect("check"), ExitCode::SUCCESS);
    }

    #[test]
    fn a_rule_id_given_twice_is_kept_once() {
        let dir = temp_rules();
        let good = dir.path().join("good.toml");
        let assembled = assemble(&[good.clone(), good]).expect("assemble");
        assert_eq!(assembled.set.len(), 1);
        assert_eq!(assembled.duplicates.len(), 1);
        assert_eq!(assembled.reports.iter().map(|r| r.1).sum::<usize>(), 2);
    }

    #[test]
    fn check_lists_a_rule_id_loaded_twice_as_dropped() {
        let dir = temp_rules();
        let good = dir.path().join("good.toml");
        let copy = dir.path().join("copy.toml");
        std::fs::copy(&good, &copy).expect("copy");
        let mut out = Vec::new();
        let code = check(&[good.clone(), copy.clone()], &mut out).expect("check");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        let dropped = text
            .lines()
            .find(|l| l.starts_with("dropped "))
            .unwrap_or_else(|| panic!("no dropped line: {text}"));
        assert!(
            dropped.starts_with(&format!("dropped {}: ", copy.display())),
            "{dropped}"
        );
        assert!(
            dropped.contains("duplicate rule id; this copy is left out")
                && dropped.ends_with(&format!("({})", good.display())),
            "{dropped}"
        );
        assert!(
            text.ends_with("1 loaded, 0 skipped, 0 failed, 1 duplicate(s) dropped\n"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let err = check(&[PathBuf::from("/nonexistent/rules")], &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule path /nonexistent/rules does not exist"
        );
    }

    #[test]
    fn test_prints_alerts_as_the_daemon_writes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = dir.path().join("events.ndjson");
        let dmesg = r#"{"event":{"category":["process"],"type":["start"],"action":"exec"},"host":{"os":{"type":"linux"}},"process":{"pid":7,"name":"dmesg","args":["dmesg","-c"]}}"#;
        let other = dmesg.replace("\"-c\"", "\"-T\"");
        std::fs::write(&events, format!("{dmesg}\nnot json\n\n{other}\n")).expect("write");
        let mut out = Vec::new();
        let code = test(&events, &[], &mut out).expect("test");
        assert_eq!(
            code,
            ExitCode::FAILURE,
            "the bad line is reported in the exit code"
        );
        let lines: Vec<Value> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        // Elastic's rule and the option rule, for dmesg -c only.
        let rules: Vec<&str> = lines
            .iter()
            .map(|l| l["rule"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            [
                "2724808c-ba5d-48b2-86d2-0002103df753",
                "ec82d3dc-4d7f-4962-94a0-28c04856931b"
            ]
        );
        for line in &lines {
            assert_eq!(line["event"]["kind"], "alert");
            assert_eq!(line["process"]["pid"], 7);
        }
    }
}
