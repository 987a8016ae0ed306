//! Turns the text of one rule file into a [`Loaded`] rule or a [`RuleError`].
//!
//! The file is deserialized once into typed structs that keep unknown keys.
//! Positions are recovered only when something goes wrong: toml's errors carry
//! byte spans, and a second, span-aware pass finds where the query string
//! starts so that EQL errors can point into the file.

use std::ops::Range;

use serde::Deserialize;

use super::error::{RuleError, line_column};
use super::model::{Loaded, Metadata, Rule, Severity, SkipReason, Skipped, Threat};
use crate::eql::{ParseError, Query};

/// The whole file.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    metadata: Metadata,
    rule: RawRule,
    #[serde(flatten)]
    other: toml::Table,
}

/// The `[rule]` table: required keys first, then optional ones, then the rest.
#[derive(Deserialize)]
struct RawRule {
    name: String,
    rule_id: String,
    description: String,
    #[serde(deserialize_with = "risk_score")]
    risk_score: u8,
    severity: Severity,
    #[serde(rename = "type")]
    rule_type: String,
    language: Option<String>,
    query: Option<String>,
    version: Option<u32>,
    from: Option<String>,
    license: Option<String>,
    #[serde(default)]
    author: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    index: Vec<String>,
    #[serde(default)]
    threat: Vec<Threat>,
    #[serde(flatten)]
    extra: toml::Table,
}

/// `rule.risk_score`, which Elastic defines from 0 to 100. The error names
/// the range; toml places it at the value.
fn risk_score<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let score = i64::deserialize(deserializer)?;
    match u8::try_from(score) {
        Ok(score) if score <= MAX_RISK_SCORE => Ok(score),
        _ => Err(serde::de::Error::custom(format!(
            "risk_score {score} is out of range, expected 0 to {MAX_RISK_SCORE}"
        ))),
    }
}

/// The highest `rule.risk_score` Elastic allows.
const MAX_RISK_SCORE: u8 = 100;

/// Only the spans needed to place errors: the `[rule]` table and its query.
#[derive(Deserialize)]
struct SpanFile {
    rule: toml::Spanned<SpanRule>,
}

#[derive(Deserialize)]
struct SpanRule {
    query: Option<toml::Spanned<String>>,
}

/// Loads one rule from `text`; `source` names it in errors and in the rule.
pub fn load_str(text: &str, source: &str) -> Result<Loaded, RuleError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        format_error(text, source, offset, err.message().to_string())
    })?;
    let RawFile {
        metadata,
        rule,
        other,
    } = raw;

    let skip = |reason| {
        Ok(Loaded::Skipped(Skipped {
            name: rule.name.clone(),
            rule_id: rule.rule_id.clone(),
            source: source.to_string(),
            reason,
        }))
    };
    if rule.rule_type != "eql" {
        return skip(SkipReason::RuleType {
            rule_type: rule.rule_type.clone(),
            language: rule.language.clone(),
        });
    }
    let language = rule.language.clone().unwrap_or_else(|| "eql".to_string());
    if language != "eql" {
        return skip(SkipReason::Language(language));
    }
    let Some(query_text) = rule.query.clone() else {
        let offset = spans(text).map_or(0, |(table, _)| table.start);
        return Err(format_error(
            text,
            source,
            offset,
            "missing field `query`".into(),
        ));
    };
    match first_word(&query_text) {
        "sequence" => return skip(SkipReason::Sequence),
        "sample" => return skip(SkipReason::Sample),
        _ => {}
    }
    let query = Query::parse(&query_text).map_err(|err| query_error(text, source, err))?;

    Ok(Loaded::Rule(Box::new(Rule {
        name: rule.name,
        rule_id: rule.rule_id,
        description: rule.description,
        risk_score: rule.risk_score,
        severity: rule.severity,
        version: rule.version,
        author: rule.author,
        license: rule.license,
        references: rule.references,
        tags: rule.tags,
        threat: rule.threat,
        rule_type: rule.rule_type,
        language,
        index: rule.index,
        from: rule.from,
        query_text,
        query,
        metadata,
        source: source.to_string(),
        extra: rule.extra,
        other,
    })))
}

fn format_error(text: &str, source: &str, offset: usize, message: String) -> RuleError {
    let (line, column) = line_column(text, offset);
    RuleError::Format {
        path: source.to_string(),
        line,
        column,
        message,
    }
}

/// Places an EQL error, reported relative to the query string, in the file.
///
/// Exact for literal strings (`'''...'''`, `'...'`), which is what Elastic's
/// rules use; in basic strings an escape sequence before the error shifts the
/// column by the escape's length.
fn query_error(text: &str, source: &str, err: ParseError) -> RuleError {
    let (start_line, start_column) = spans(text)
        .and_then(|(_, query)| query)
        .map_or((1, 1), |query| {
            line_column(text, content_start(text, query))
        });
    let (line, column) = if err.line <= 1 {
        (start_line, start_column + err.column.saturating_sub(1))
    } else {
        (start_line + err.line - 1, err.column)
    };
    RuleError::Query {
        path: source.to_string(),
        line,
        column,
        found: err.found,
        expected: err.expected,
    }
}

/// Spans of the `[rule]` table and of its `query` value, if the file parses.
fn spans(text: &str) -> Option<(Range<usize>, Option<Range<usize>>)> {
    let file: SpanFile = toml::from_str(text).ok()?;
    let table = file.rule.span();
    let query = file.rule.into_inner().query.map(|query| query.span());
    Some((table, query))
}

/// Byte offset of the first character of a string value whose token spans `span`.
///
/// Skips the opening delimiter and, for multi-line strings, the newline that
/// TOML trims right after it.
fn content_start(text: &str, span: Range<usize>) -> usize {
    let token = text.get(span.start..).unwrap_or_default();
    if token.starts_with("'''") || token.starts_with("\"\"\"") {
        let rest = &token[3..];
        let newline = if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        };
        span.start + 3 + newline
    } else {
        span.start + 1
    }
}

/// The first keyword of an EQL query, past whitespace and comments.
fn first_word(query: &str) -> &str {
    let mut rest = query;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("//") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_word_skips_comments() {
        assert_eq!(first_word("  sequence by host.id"), "sequence");
        assert_eq!(first_word("// lead\n/* block */ sample by x"), "sample");
        assert_eq!(first_word("process where true"), "process");
        assert_eq!(first_word(""), "");
    }

    #[test]
    fn content_start_skips_delimiters() {
        let text = "q = '''\nabc'''\nr = \"x\"\ns = '''abc'''";
        assert_eq!(content_start(text, 4..14), 8);
        assert_eq!(content_start(text, 19..22), 20);
        assert_eq!(content_start(text, 27..36), 30);
    }
}
