//! Reading one rule file, with the checks a path from the command line or
//! the configuration needs: it must be a regular file (once symbolic links
//! are followed) and no larger than [`MAX_FILE_BYTES`].
//!
//! Without them, `/dev/zero` would be read until memory runs out, and a
//! FIFO with no writer would block the daemon for good.

use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use super::error::RuleError;

/// The largest rule file read, in bytes. Elastic's largest rule files hold
/// a few tens of KiB; 4 MiB leaves room for any real rule.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The text of the rule file at `path`, named `source` in errors.
///
/// The file type is checked before the file is opened, since opening some
/// devices has effects of its own, and again on the open file, in case the
/// path changed in between. The file is opened without blocking so that a
/// FIFO put there in that moment cannot hang the caller.
pub fn read_text(path: &Path, source: &str, limit: u64) -> Result<String, RuleError> {
    let read_error = |err| RuleError::Read {
        path: source.to_owned(),
        source: err,
    };
    check_type(source, fs::metadata(path).map_err(read_error)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    check_type(source, metadata.file_type())?;
    check_size(source, metadata.len(), limit)?;
    let bytes = read_at_most(file, limit).map_err(read_error)?;
    // The file may have grown since it was measured.
    check_size(source, bytes.len() as u64, limit)?;
    String::from_utf8(bytes)
        .map_err(|err| read_error(io::Error::new(io::ErrorKind::InvalidData, err)))
}

/// What kind of file `file_type` describes, with its article, as error
/// messages and skip reasons name it.
pub fn kind(file_type: FileType) -> &'static str {
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a file of unknown type"
    }
}

fn check_type(source: &str, file_type: FileType) -> Result<(), RuleError> {
    if file_type.is_file() {
        return Ok(());
    }
    Err(RuleError::NotRegular {
        path: source.to_owned(),
        kind: kind(file_type),
    })
}

fn check_size(source: &str, size: u64, limit: u64) -> Result<(), RuleError> {
    if size <= limit {
        return Ok(());
    }
    Err(RuleError::TooLarge {
        path: source.to_owned(),
        size,
        limit,
    })
}

/// Reads up to one byte past `limit`, enough to tell that a file is over it.
fn read_at_most(file: File, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}
