//! The typed form of one detection rule, as read from Elastic's TOML layout.
//!
//! Only what the monitor uses is typed; every other key of the file is kept
//! verbatim in an `extra` table so nothing is lost on the way through.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::eql::Query;

/// A rule the monitor can run: a single-event EQL query with its metadata.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Human-readable title, `rule.name`.
    pub name: String,
    /// Stable identifier, `rule.rule_id` (a UUID in Elastic's rules).
    pub rule_id: String,
    /// What the rule detects, `rule.description`.
    pub description: String,
    /// Risk score from 0 to 100, `rule.risk_score`.
    pub risk_score: u8,
    /// Severity level, `rule.severity`.
    pub severity: Severity,
    /// Revision number, `rule.version`; Elastic's repository trims it from
    /// most files, so it is often absent.
    pub version: Option<u32>,
    /// Authors, `rule.author`.
    pub author: Vec<String>,
    /// Licence of the rule text, `rule.license`.
    pub license: Option<String>,
    /// Reference URLs, `rule.references`.
    pub references: Vec<String>,
    /// Free-form tags such as `"Tactic: Defense Evasion"`, `rule.tags`.
    pub tags: Vec<String>,
    /// MITRE ATT&CK mapping, `[[rule.threat]]`.
    pub threat: Vec<Threat>,
    /// Rule type, `rule.type`; always `"eql"` for a runnable rule.
    pub rule_type: String,
    /// Query language, `rule.language`; always `"eql"` for a runnable rule.
    pub language: String,
    /// Elasticsearch index patterns the rule was written for, `rule.index`.
    pub index: Vec<String>,
    /// Look-back window in Elastic's date math, `rule.from`.
    pub from: Option<String>,
    /// The EQL query as written in the file.
    pub query_text: String,
    /// The parsed query.
    pub query: Query,
    /// The `[metadata]` table.
    pub metadata: Metadata,
    /// Where the rule came from: a file path, or `built-in:<file name>`.
    pub source: String,
    /// Keys of `[rule]` that are not typed above (`note`, `setup`, ...).
    pub extra: toml::Table,
    /// Top-level tables other than `[metadata]` and `[rule]` (`[transform]`, ...).
    pub other: toml::Table,
}

impl Rule {
    /// Whether the rule was compiled into the binary rather than read from disk.
    pub fn is_builtin(&self) -> bool {
        self.source.starts_with(super::BUILTIN_PREFIX)
    }
}

/// Severity of a rule, parsed case-insensitively from `rule.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Severity {
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Severity {
    /// The lowercase word used in rule files and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Severity {
    type Error = String;

    fn try_from(word: String) -> Result<Self, Self::Error> {
        match word.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity `{word}`, expected low, medium, high or critical"
            )),
        }
    }
}

impl From<Severity> for &'static str {
    fn from(severity: Severity) -> Self {
        severity.as_str()
    }
}

/// One `[[rule.threat]]` entry: a tactic and the techniques under it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Threat {
    /// Always `"MITRE ATT&CK"` in Elastic's rules.
    pub framework: String,
    /// The tactic, `[rule.threat.tactic]`.
    pub tactic: Tactic,
    /// The techniques, `[[rule.threat.technique]]`; may be empty.
    #[serde(default)]
    pub technique: Vec<Technique>,
}

/// An ATT&CK tactic such as `TA0005` "Defense Evasion".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Tactic {
    /// Tactic id, e.g. `TA0005`.
    pub id: String,
    /// Tactic name.
    pub name: String,
    /// URL of the tactic on attack.mitre.org.
    pub reference: String,
}

/// An ATT&CK technique and its sub-techniques.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Technique {
    /// Technique id, e.g. `T1070`.
    pub id: String,
    /// Technique name.
    pub name: String,
    /// URL of the technique on attack.mitre.org.
    pub reference: String,
    /// Sub-techniques, `[[rule.threat.technique.subtechnique]]`; may be empty.
    #[serde(default)]
    pub subtechnique: Vec<Subtechnique>,
}

/// An ATT&CK sub-technique such as `T1070.002`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Subtechnique {
    /// Sub-technique id, e.g. `T1070.002`.
    pub id: String,
    /// Sub-technique name.
    pub name: String,
    /// URL of the sub-technique on attack.mitre.org.
    pub reference: String,
}

/// The `[metadata]` table; Elastic uses it for bookkeeping, not detection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Metadata {
    /// `YYYY/MM/DD` the rule was first written.
    pub creation_date: Option<String>,
    /// `YYYY/MM/DD` of the last change.
    pub updated_date: Option<String>,
    /// `production`, `development` or `deprecated`.
    pub maturity: Option<String>,
    /// Elastic integrations whose data the rule reads.
    #[serde(default)]
    pub integration: Vec<String>,
    /// Every other key, kept as written.
    #[serde(flatten)]
    pub extra: toml::Table,
}

/// What loading one rule file produced.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// A rule the monitor can run.
    Rule(Box<Rule>),
    /// A well-formed rule the monitor cannot run.
    Skipped(Skipped),
}

/// A well-formed rule that the monitor does not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `rule.name`.
    pub name: String,
    /// `rule.rule_id`.
    pub rule_id: String,
    /// File path or `built-in:<file name>`.
    pub source: String,
    /// Why it cannot run.
    pub reason: SkipReason,
}

/// Why a rule is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `rule.type` is not `eql` (`new_terms`, `query`, `threshold`, `esql`,
    /// `machine_learning`, ...); the language is kept for the message.
    RuleType {
        /// `rule.type`.
        rule_type: String,
        /// `rule.language`, when given.
        language: Option<String>,
    },
    /// `rule.type` is `eql` but `rule.language` is something else.
    Language(String),
    /// An EQL `sequence` query, which needs state across events.
    Sequence,
    /// An EQL `sample` query, which needs state across events.
    Sample,
    /// An entry of a rules directory that is neither a directory nor a
    /// regular file (a FIFO, a device, a socket), so it is not opened; the
    /// kind is kept for the message.
    NotRegular(&'static str),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::RuleType {
                rule_type,
                language: Some(language),
            } => write!(f, "{rule_type} rules ({language}) are not supported"),
            SkipReason::RuleType {
                rule_type,
                language: None,
            } => write!(f, "{rule_type} rules are not supported"),
            SkipReason::Language(language) => {
                write!(f, "eql rules in language {language} are not supported")
            }
            SkipReason::Sequence => f.write_str("sequence queries are not supported"),
            SkipReason::Sample => f.write_str("sample queries are not supported"),
            SkipReason::NotRegular(kind) => write!(f, "{kind}, not a regular file, is not read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_case_insensitive() {
        for (word, severity) in [
            ("low", Severity::Low),
            ("Medium", Severity::Medium),
            ("HIGH", Severity::High),
            ("cRiTiCaL", Severity::Critical),
        ] {
            assert_eq!(Severity::try_from(word.to_string()), Ok(severity));
        }
        let err = Severity::try_from("severe".to_string()).unwrap_err();
        assert!(err.starts_with("unknown severity `severe`"), "{err}");
    }

    #[test]
    fn skip_reasons_read_well() {
        let kuery = SkipReason::RuleType {
            rule_type: "query".into(),
            language: Some("kuery".into()),
        };
        assert_eq!(kuery.to_string(), "query rules (kuery) are not supported");
        assert_eq!(
            SkipReason::Sequence.to_string(),
            "sequence queries are not supported"
        );
    }
}
