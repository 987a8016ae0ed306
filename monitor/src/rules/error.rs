//! Errors from loading a rule file, each pointing at a place in that file.

use std::io;

/// A rule file that could not be loaded.
///
/// Every variant names the file; those about its text carry a 1-based line
/// and column (counted in characters) so that editors can jump to them.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file once symbolic links are followed: a
    /// device, a FIFO, a socket or a directory. It is not opened, since
    /// opening some devices does something, and reading others never ends.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular {
        /// The path as given.
        path: String,
        /// What it is, with its article ("a character device").
        kind: &'static str,
    },
    /// The file is larger than any rule file should be.
    #[error("{path} holds {size} bytes, more than the {limit} a rule file may hold")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size, or as much of it as was read.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not valid TOML, or lacks a required key, or has a value of
    /// the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong, in lowercase.
        message: String,
    },
    /// The EQL query does not parse; the position is inside the file, not
    /// inside the query string.
    #[error("{path}:{line}:{column}: invalid eql query: expected {expected}, found {found}")]
    Query {
        /// The file.
        path: String,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column in the file, in characters.
        column: usize,
        /// The text the parser stopped at.
        found: String,
        /// What the parser wanted there.
        expected: String,
    },
}

impl RuleError {
    /// The file (or directory) the error is about.
    pub fn path(&self) -> &str {
        match self {
            RuleError::Read { path, .. }
            | RuleError::NotRegular { path, .. }
            | RuleError::TooLarge { path, .. }
            | RuleError::Format { path, .. }
            | RuleError::Query { path, .. } => path,
        }
    }

    /// The 1-based line and column in the file, when the error is about its text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            RuleError::Read { .. } | RuleError::NotRegular { .. } | RuleError::TooLarge { .. } => {
                None
            }
            RuleError::Format { line, column, .. } | RuleError::Query { line, column, .. } => {
                Some((*line, *column))
            }
        }
    }
}

/// Converts a byte offset in `text` to a 1-based line and column (in characters).
///
/// Offsets past the end, or inside a multi-byte character, are clamped to the
/// nearest earlier character boundary.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        // 'é' is two bytes; the 'f' line starts after it and the newline.
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 6), (2, 3), "inside 'é' clamps back");
        assert_eq!(line_column(text, 100), (3, 2));
    }

    #[test]
    fn messages_name_the_place() {
        let err = RuleError::Query {
            path: "r.toml".into(),
            line: 20,
            column: 7,
            found: "`)`".into(),
            expected: "a value".into(),
        };
        assert_eq!(
            err.to_string(),
            "r.toml:20:7: invalid eql query: expected a value, found `)`"
        );
        assert_eq!(err.position(), Some((20, 7)));
    }
}
