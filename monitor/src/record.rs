//! Decoding the raw records the eBPF program writes into the ring buffer.
//!
//! The layout is described in `monitor_common`; this module checks every
//! length against the bytes actually received, so a short or corrupt record
//! is an error, never a panic or a read past the end.
//!

use std::borrow::Cow;

use monitor_common::{COMM_LEN, ExecHeader, ExitRecord, ForkRecord, SyslogRecord, flags, kind};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("record declares {declared} bytes of data but carries {actual}")]
    Length { declared: usize, actual: usize },
}

/// Any record from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Fork(ForkRecord),
    Exec(ExecRecord),
    Exit(ExitRecord),
    Syslog(SyslogRecord),
}

impl Record {
    /// Decodes one ring buffer record of any kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(kind) = bytes.get(..4) else {
            return Err(DecodeError::Short(bytes.len()));
        };
        match u32::from_ne_bytes(kind.try_into().expect("four bytes")) {
            kind::EXEC => ExecRecord::decode(bytes).map(Record::Exec),
            kind::FORK => fixed(bytes).map(Record::Fork),
            kind::EXIT => fixed(bytes).map(Record::Exit),
            kind::SYSLOG => fixed(bytes).map(Record::Syslog),
            other => Err(DecodeError::UnknownKind(other)),
        }
    }
}

/// Reads a fixed-size record.
fn fixed<T: aya::Pod>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < std::mem::size_of::<T>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: the slice holds at least size_of::<T>() bytes, and T is Pod:
    // a plain repr(C) struct of integers, valid for any bit pattern;
    // read_unaligned copes with the ring buffer's alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) })
}

/// One successful exec, as captured in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRecord {
    /// `CLOCK_BOOTTIME` nanoseconds when the exec completed.
    pub boot_ns: u64,
    /// When the process started, in boot clock nanoseconds.
    pub start_ns: u64,
    /// When its parent started.
    pub parent_start_ns: u64,
    pub pid: u32,
    /// The thread that called exec (equal to `pid` unless a secondary
    /// thread did).
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Session id.
    pub sid: u32,
    /// Process group id.
    pub pgid: u32,
    /// The pid inside the process's own pid namespace.
    pub vpid: u32,
    /// Controlling terminal (major, minor), if any.
    pub tty: Option<(u32, u32)>,
    /// Thread name after the exec (at most 15 bytes).
    pub comm: Vec<u8>,
    /// Absolute path of the file that ran, rebuilt from the kernel's
    /// dentries; `None` when the kernel side could not read it.
    pub executable: Option<Vec<u8>>,
    /// The path walk stopped before the root (very deep path).
    pub executable_truncated: bool,
    /// The working directory; `None` when it could not be read. Starts with
    /// `...` when it was too deep to walk to the root.
    pub working_directory: Option<Vec<u8>>,
    /// The cgroup path (`/system.slice/x.scope`), `/` at the root.
    pub cgroup: Vec<u8>,
    /// The file name exactly as passed to exec (may be relative).
    pub filename: Vec<u8>,
    /// The arguments, each exactly as in memory, empty ones included.
    pub args: Vec<Vec<u8>>,
    /// Argument count as counted by the kernel; larger than `args.len()`
    /// when the block was truncated.
    pub argc: u32,
    /// The argv block was longer than the capture limit.
    pub args_truncated: bool,
    /// The argv block could not be read at all.
    pub args_unreadable: bool,
    /// True size of the argv block in bytes.
    pub argv_size: u32,
}

impl ExecRecord {
    /// Decodes one ring buffer record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header_len = std::mem::size_of::<ExecHeader>();
        if bytes.len() < header_len {
            return Err(DecodeError::Short(bytes.len()));
        }
        // SAFETY: the slice holds at least size_of::<ExecHeader>() bytes and
        // ExecHeader is a plain repr(C) struct of integers, valid for any bit
        // pattern; read_unaligned copes with the ring buffer's alignment.
        let h: ExecHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        if h.kind != kind::EXEC {
            return Err(DecodeError::UnknownKind(h.kind));
        }
        let data = &bytes[header_len..];
        let lengths = [
            h.path_len,
            h.cwd_len,
            h.cgroup_len,
            h.filename_len,
            h.argv_len,
        ];
        let declared = lengths.iter().map(|&n| n as usize).sum();
        if declared > data.len() {
            return Err(DecodeError::Length {
                declared,
                actual: data.len(),
            });
        }
        let mut rest = data;
        let [path, cwd, cgroup, filename, argv] = lengths.map(|n| {
            let (block, tail) = rest.split_at(n as usize);
            rest = tail;
            block
        });

        let path_unreadable = h.flags & flags::PATH_UNREADABLE != 0 || path.is_empty();
        let path_truncated = h.flags & flags::PATH_TRUNCATED != 0;
        let cwd_unreadable = h.flags & flags::CWD_UNREADABLE != 0;
        let cwd_truncated = h.flags & flags::CWD_TRUNCATED != 0;
        let cgroup_truncated = h.flags & flags::CGROUP_TRUNCATED != 0;
        Ok(Self {
            boot_ns: h.boot_ns,
            start_ns: h.start_ns,
            parent_start_ns: h.parent_start_ns,
            pid: h.tgid,
            tid: h.tid,
            ppid: h.ppid,
            uid: h.uid,
            gid: h.gid,
            euid: h.euid,
            egid: h.egid,
            sid: h.sid,
            pgid: h.pgid,
            vpid: h.vpid,
            tty: (h.flags & flags::HAS_TTY != 0).then_some((h.tty_major, h.tty_minor)),
            comm: until_nul(&h.comm[..COMM_LEN]).to_vec(),
            executable: (!path_unreadable).then(|| join_components(path, path_truncated)),
            executable_truncated: path_truncated,
            working_directory: (!cwd_unreadable).then(|| join_components(cwd, cwd_truncated)),
            cgroup: join_components(cgroup, cgroup_truncated),
            filename: filename.to_vec(),
            args: split_argv(argv),
            argc: h.argc,
            args_truncated: h.flags & flags::ARGV_TRUNCATED != 0,
            args_unreadable: h.flags & flags::ARGV_UNREADABLE != 0,
            argv_size: h.argv_size,
        })
    }

    /// File name of the executable that ran: the last component of its
    /// path, falling back to the name given to exec.
    pub fn name(&self) -> &[u8] {
        let path = self.executable.as_deref().unwrap_or(&self.filename);
        path.rsplit(|&b| b == b'/').next().unwrap_or(path)
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Joins leaf-first NUL-terminated components into an absolute path:
/// `dmesg\0bin\0usr\0` becomes `/usr/bin/dmesg`; no components is `/`. When
/// the kernel stopped before the root (`truncated`), the path starts with
/// `...` instead, so that it cannot pass for a shorter absolute path.
pub fn join_components(block: &[u8], truncated: bool) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = block.split(|&b| b == 0).collect();
    // The block ends with a NUL, which leaves one empty piece at the end.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut path = Vec::with_capacity(block.len() + 4);
    if truncated {
        path.extend_from_slice(b"...");
    }
    for part in parts.iter().rev() {
        path.push(b'/');
        path.extend_from_slice(part);
    }
    path
}

/// Splits an argv block into arguments. Each argument ends with a NUL; an
/// empty argument is a lone NUL and is kept. A block cut at the capture limit
/// ends without a NUL, and its last, partial argument is kept as it is.
pub fn split_argv(block: &[u8]) -> Vec<Vec<u8>> {
    if block.is_empty() {
        return Vec::new();
    }
    let body = block.strip_suffix(&[0]).unwrap_or(block);
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// Text for a byte string: UTF-8 as is, anything else with U+FFFD in place
/// of the invalid bytes. The flag says whether a replacement happened.
pub fn lossy(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let replaced = matches!(text, Cow::Owned(_));
    (text, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(flags: u32, path: &[u8], filename: &[u8], argv: &[u8]) -> Vec<u8> {
        with_blocks(
            flags,
            [path, b"tmp\0", b"x.scope\0system.slice\0", filename, argv],
        )
    }

    fn with_blocks(flags: u32, blocks: [&[u8]; 5]) -> Vec<u8> {
        let mut comm = [0u8; COMM_LEN];
        comm[..5].copy_from_slice(b"dmesg");
        let [path, cwd, cgroup, filename, argv] = blocks;
        let h = ExecHeader {
            kind: kind::EXEC,
            flags,
            boot_ns: 42,
            start_ns: 40,
            parent_start_ns: 7,
            tgid: 100,
            tid: 101,
            ppid: 1,
            uid: 1000,
            gid: 1001,
            euid: 0,
            egid: 0,
            argc: 2,
            sid: 90,
            pgid: 95,
            vpid: 3,
            tty_major: 136,
            tty_minor: 2,
            argv_size: argv.len() as u32,
            argv_len: argv.len() as u32,
            filename_len: filename.len() as u32,
            path_len: path.len() as u32,
            cwd_len: cwd.len() as u32,
            cgroup_len: cgroup.len() as u32,
            comm,
            ..ExecHeader::default()
        };
        [bytes_of(&h), path, cwd, cgroup, filename, argv].concat()
    }

    fn bytes_of<T: aya::Pod>(value: &T) -> &[u8] {
        // SAFETY: T is Pod: plain integers without padding, all initialised.
        unsafe { std::slice::from_raw_parts((value as *const T).cast(), std::mem::size_of::<T>()) }
    }

    #[test]
    fn decodes_every_field() {
        let bytes = record(0, b"dmesg\0bin\0usr\0", b"/bin/dmesg", b"dmesg\0-c\0");
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert_eq!(
            (r.pid, r.tid, r.ppid, r.uid, r.gid, r.euid),
            (100, 101, 1, 1000, 1001, 0)
        );
        assert_eq!((r.boot_ns, r.start_ns, r.parent_start_ns), (42, 40, 7));
        assert_eq!((r.sid, r.pgid, r.vpid, r.tty), (90, 95, 3, None));
        assert_eq!(r.working_directory.as_deref(), Some(&b"/tmp"[..]));
        assert_eq!(r.cgroup, b"/system.slice/x.scope");
        assert_eq!(r.comm, b"dmesg");
        assert_eq!(r.executable.as_deref(), Some(&b"/usr/bin/dmesg"[..]));
        assert_eq!(r.filename, b"/bin/dmesg");
        assert_eq!(r.args, vec![b"dmesg".to_vec(), b"-c".to_vec()]);
        assert_eq!(r.name(), b"dmesg");
        assert!(!r.args_truncated && !r.args_unreadable && !r.executable_truncated);
    }

    #[test]
    fn terminal_and_unreadable_directory_follow_the_flags() {
        let bytes = with_blocks(
            flags::HAS_TTY | flags::CWD_UNREADABLE,
            [b"sh\0", b"", b"", b"sh", b"sh\0"],
        );
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert_eq!(r.tty, Some((136, 2)));
        assert_eq!(r.working_directory, None);
        assert_eq!(r.cgroup, b"/");
    }

    #[test]
    fn fork_and_exit_records_decode_by_kind() {
        let fork = ForkRecord {
            kind: kind::FORK,
            child_tgid: 5,
            parent_tgid: 4,
            child_start_ns: 9,
            ..ForkRecord::default()
        };
        let exit = ExitRecord {
            kind: kind::EXIT,
            tgid: 5,
            exit_code: 256,
            ..ExitRecord::default()
        };
        assert_eq!(Record::decode(bytes_of(&fork)), Ok(Record::Fork(fork)));
        assert_eq!(Record::decode(bytes_of(&exit)), Ok(Record::Exit(exit)));
        let exec = record(0, b"x\0", b"x", b"x\0");
        assert!(matches!(Record::decode(&exec), Ok(Record::Exec(_))));
        assert_eq!(
            Record::decode(&bytes_of(&fork)[..20]),
            Err(DecodeError::Short(20))
        );
        assert_eq!(Record::decode(&[1, 0]), Err(DecodeError::Short(2)));
        assert_eq!(
            Record::decode(&[7, 0, 0, 0]),
            Err(DecodeError::UnknownKind(7))
        );
    }

    #[test]
    fn empty_arguments_are_kept() {
        assert_eq!(
            split_argv(b"echo\0a\0\0b\0"),
            vec![&b"echo"[..], b"a", b"", b"b"]
        );
        assert_eq!(split_argv(b"\0"), vec![Vec::<u8>::new()]);
        assert_eq!(split_argv(b"x\0\0"), vec![&b"x"[..], b""]);
        assert!(split_argv(b"").is_empty());
    }

    #[test]
    fn spaces_stay_inside_their_argument() {
        assert_eq!(
            split_argv(b"sh\0-c\0echo a  b\0"),
            vec![&b"sh"[..], b"-c", b"echo a  b"]
        );
    }

    #[test]
    fn truncated_block_keeps_the_partial_argument() {
        let bytes = record(flags::ARGV_TRUNCATED, b"x\0", b"./x", b"x\0abc");
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert!(r.args_truncated);
        assert_eq!(r.args, vec![&b"x"[..], b"abc"]);
    }

    #[test]
    fn path_components_join_leaf_last() {
        assert_eq!(
            join_components(b"true\0bin\0usr\0", false),
            b"/usr/bin/true"
        );
        assert_eq!(join_components(b"", false), b"/");
        assert_eq!(join_components(b"init\0", false), b"/init");
        assert_eq!(join_components(b"dmesg\0deep\0", true), b".../deep/dmesg");
    }

    #[test]
    fn a_truncated_path_keeps_the_file_name() {
        let bytes = record(
            flags::PATH_TRUNCATED,
            b"dmesg\0z\0",
            b"./dmesg",
            b"dmesg\0-c\0",
        );
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert!(r.executable_truncated);
        assert_eq!(r.executable.as_deref(), Some(&b".../z/dmesg"[..]));
        assert_eq!(r.name(), b"dmesg");
    }

    #[test]
    fn an_empty_path_falls_back_to_the_exec_name() {
        let bytes = record(0, b"", b"/usr/bin/dmesg", b"dmesg\0");
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert_eq!(r.executable, None);
        assert_eq!(r.name(), b"dmesg");
    }

    #[test]
    fn name_comes_from_the_path_not_comm() {
        let long = b"a-very-long-program-name\0bin\0";
        let bytes = record(0, long, b"./a-very-long-program-name", b"x\0");
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert_eq!(r.name(), b"a-very-long-program-name");
    }

    #[test]
    fn unreadable_path_falls_back_to_the_exec_name() {
        let bytes = record(flags::PATH_UNREADABLE, b"", b"/usr/bin/env", b"env\0");
        let r = ExecRecord::decode(&bytes).expect("decode");
        assert_eq!(r.executable, None);
        assert_eq!(r.name(), b"env");
    }

    #[test]
    fn short_and_inconsistent_records_are_errors() {
        assert_eq!(ExecRecord::decode(&[0; 8]), Err(DecodeError::Short(8)));
        let mut bytes = record(0, b"x\0", b"x", b"x\0");
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            ExecRecord::decode(&bytes),
            Err(DecodeError::Length { .. })
        ));
        let mut bytes = record(0, b"x\0", b"x", b"x\0");
        bytes[0] = 9;
        assert_eq!(ExecRecord::decode(&bytes), Err(DecodeError::UnknownKind(9)));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_reported() {
        let (text, replaced) = lossy(b"a\xffb");
        assert_eq!(text, "a\u{fffd}b");
        assert!(replaced);
        assert_eq!(lossy("é".as_bytes()), (Cow::Borrowed("é"), false));
    }
}
