//! What a process runs: its executable and arguments, as text ready for
//! events, from an exec record or from `/proc`.

use std::sync::Arc;

use super::scan::ScannedProcess;
use crate::record::{ExecRecord, lossy};

/// What a process runs: its executable and arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// Absolute path of the executable, when known.
    pub executable: Option<String>,
    /// File name of the executable.
    pub name: String,
    /// The arguments, as text (invalid UTF-8 replaced).
    pub args: Vec<String>,
    /// Argument count as the kernel counted it.
    pub args_count: u32,
    /// The arguments were cut at the capture limit.
    pub args_truncated: bool,
    /// Some argument was not valid UTF-8.
    pub args_invalid_utf8: bool,
    /// The arguments could not be read.
    pub args_unreadable: bool,
    /// The executable's path was too deep to walk to the root.
    pub executable_truncated: bool,
}

impl Image {
    /// The image an exec record describes.
    pub fn from_exec(r: &ExecRecord) -> Self {
        let (args, invalid) = texts(&r.args);
        Self {
            executable: r.executable.as_deref().map(text),
            name: text(r.name()),
            args,
            args_count: r.argc,
            args_truncated: r.args_truncated,
            args_invalid_utf8: invalid,
            args_unreadable: r.args_unreadable,
            executable_truncated: r.executable_truncated,
        }
    }

    /// The image a `/proc` read shows.
    pub fn from_scan(s: &ScannedProcess) -> Self {
        let (args, invalid) = texts(&s.args);
        let executable = s.executable.as_deref().map(text);
        let name = match &executable {
            Some(path) => path.rsplit('/').next().unwrap_or(path).to_owned(),
            None => text(&s.comm),
        };
        Self {
            executable,
            name,
            args_count: s.args_count.max(args.len() as u32),
            args,
            args_truncated: s.args_truncated,
            args_invalid_utf8: invalid,
            ..Self::default()
        }
    }

    /// The image itself when its arguments fit in `bytes`, else a copy with
    /// the arguments cut to fit (whole arguments first, then part of the
    /// next) and marked truncated; `args_count` stays the true count.
    pub fn trimmed(image: &Arc<Image>, bytes: usize) -> Arc<Image> {
        let total: usize = image.args.iter().map(String::len).sum();
        if total <= bytes {
            return Arc::clone(image);
        }
        let mut left = bytes;
        let mut args = Vec::new();
        for arg in &image.args {
            if left == 0 {
                break;
            }
            let mut end = arg.len().min(left);
            while !arg.is_char_boundary(end) {
                end -= 1;
            }
            args.push(arg[..end].to_owned());
            left -= end;
        }
        Arc::new(Image {
            args,
            args_truncated: true,
            ..(**image).clone()
        })
    }

    /// The arguments joined with spaces, as ECS's `command_line`.
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }
}

/// Text for bytes, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    lossy(bytes).0.into_owned()
}

fn texts(args: &[Vec<u8>]) -> (Vec<String>, bool) {
    let mut invalid = false;
    let texts = args
        .iter()
        .map(|a| {
            let (s, replaced) = lossy(a);
            invalid |= replaced;
            s.into_owned()
        })
        .collect();
    (texts, invalid)
}
