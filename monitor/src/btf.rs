//! Kernel structure offsets from the running kernel's BTF.
//!
//! Rust eBPF programs get no CO-RE relocations: an offset compiled into the
//! program would be the build machine's and silently wrong elsewhere. So the
//! program reads every field through an offset from `ProbeConfig`, and this
//! module fills those offsets from `/sys/kernel/btf/vmlinux` at start. Each
//! member is also checked for the width the program reads, so a kernel whose
//! layout changed in a way the program cannot follow is refused with a clear
//! error instead of read wrongly.
//!
//! Where a member was renamed across the kernels the probe supports
//! (`kernfs_node.parent` became `__parent` in 6.15), each known name is
//! tried in turn. Enum values the probe needs as indexes (`PIDTYPE_SID`, the
//! memory controller's cgroup subsystem id) are read from the BTF as well.
//!
//! Not handled yet: split BTF of kernel modules (nothing needed lives there).

use std::path::{Path, PathBuf};

use btf_rs::{Btf, BtfType, Type};
use monitor_common::KernelOffsets;

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why the offsets could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The kernel's own BTF is missing: the kernel lacks the option.
    #[error("kernel BTF not found at {0}: the kernel must be built with CONFIG_DEBUG_INFO_BTF=y")]
    Missing(PathBuf),
    /// A BTF file named in the configuration or with `--btf` is missing.
    #[error("no BTF file at {0} (named by btf or --btf)")]
    MissingFile(PathBuf),
    #[error("cannot read kernel BTF at {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: btf_rs::Error,
    },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(&'static str),
    #[error("kernel BTF has no member {member} in struct {strukt}")]
    NoMember {
        strukt: &'static str,
        member: &'static str,
    },
    #[error("{strukt}.{member} is a bit field; the probe cannot read it")]
    Bitfield {
        strukt: &'static str,
        member: &'static str,
    },
    #[error("{strukt}.{member} is {found} bytes wide, the probe reads {expected}")]
    Width {
        strukt: &'static str,
        member: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{strukt}.{member} is not a pointer; the probe follows it as one")]
    NotPointer {
        strukt: &'static str,
        member: &'static str,
    },
    #[error("{strukt}.{member} is not an embedded struct")]
    NotStruct {
        strukt: &'static str,
        member: &'static str,
    },
    #[error("{strukt}.{member} is not an array")]
    NotArray {
        strukt: &'static str,
        member: &'static str,
    },
    #[error("kernel BTF has no value {value} in enum {enumeration}")]
    NoEnumValue {
        enumeration: &'static str,
        value: &'static str,
    },
    #[error("malformed kernel BTF")]
    Malformed(#[source] btf_rs::Error),
}

/// What the probe reads from a member, to be checked against its BTF type.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// A pointer.
    Pointer,
    /// An integer, or a struct wrapping one (`kuid_t`), of this many bytes.
    Bytes(usize),
    /// An embedded struct the probe only takes the address of.
    Embedded,
    /// An array the probe indexes.
    Array,
}

/// The parsed BTF of the running kernel.
pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// Opens the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::open(Path::new(VMLINUX_BTF))
    }

    /// Opens a BTF file, such as a copy of another kernel's vmlinux BTF.
    pub fn open(path: &Path) -> Result<Self, BtfError> {
        if !path.exists() {
            return Err(if path == Path::new(VMLINUX_BTF) {
                BtfError::Missing(path.to_owned())
            } else {
                BtfError::MissingFile(path.to_owned())
            });
        }
        let btf = Btf::from_file(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { btf })
    }

    /// Resolves every offset the programs read.
    pub fn probe_offsets(&self) -> Result<KernelOffsets, BtfError> {
        use Read::{Array, Bytes, Embedded, Pointer};
        Ok(KernelOffsets {
            task_real_parent: self.member("task_struct", "real_parent", Pointer)?,
            task_tgid: self.member("task_struct", "tgid", Bytes(4))?,
            task_mm: self.member("task_struct", "mm", Pointer)?,
            task_cred: self.member("task_struct", "cred", Pointer)?,
            cred_uid: self.member("cred", "uid", Bytes(4))?,
            cred_gid: self.member("cred", "gid", Bytes(4))?,
            cred_euid: self.member("cred", "euid", Bytes(4))?,
            cred_egid: self.member("cred", "egid", Bytes(4))?,
            mm_arg_start: self.member("mm_struct", "arg_start", Bytes(8))?,
            mm_arg_end: self.member("mm_struct", "arg_end", Bytes(8))?,
            bprm_file: self.member("linux_binprm", "file", Pointer)?,
            bprm_filename: self.member("linux_binprm", "filename", Pointer)?,
            bprm_argc: self.member("linux_binprm", "argc", Bytes(4))?,
            file_f_path: self.member("file", "f_path", Embedded)?,
            path_mnt: self.member("path", "mnt", Pointer)?,
            path_dentry: self.member("path", "dentry", Pointer)?,
            dentry_d_parent: self.member("dentry", "d_parent", Pointer)?,
            dentry_d_name: self.member("dentry", "d_name", Embedded)?,
            qstr_name: self.member("qstr", "name", Pointer)?,
            vfsmount_mnt_root: self.member("vfsmount", "mnt_root", Pointer)?,
            mount_mnt: self.member("mount", "mnt", Embedded)?,
            mount_mnt_parent: self.member("mount", "mnt_parent", Pointer)?,
            mount_mnt_mountpoint: self.member("mount", "mnt_mountpoint", Pointer)?,
            task_pid: self.member("task_struct", "pid", Bytes(4))?,
            task_start_boottime: self.member("task_struct", "start_boottime", Bytes(8))?,
            task_group_leader: self.member("task_struct", "group_leader", Pointer)?,
            task_exit_code: self.member("task_struct", "exit_code", Bytes(4))?,
            task_signal: self.member("task_struct", "signal", Pointer)?,
            task_thread_pid: self.member("task_struct", "thread_pid", Pointer)?,
            task_fs: self.member("task_struct", "fs", Pointer)?,
            task_cgroups: self.member("task_struct", "cgroups", Pointer)?,
            signal_live: self.member("signal_struct", "live", Bytes(4))?,
            signal_pids: self.member("signal_struct", "pids", Array)?,
            signal_tty: self.member("signal_struct", "tty", Pointer)?,
            pid_level: self.member("pid", "level", Bytes(4))?,
            pid_numbers: self.member("pid", "numbers", Array)?,
            upid_size: self.struct_size("upid")?,
            upid_nr: self.member("upid", "nr", Bytes(4))?,
            pidtype_pgid: self.enum_value("pid_type", "PIDTYPE_PGID")?,
            pidtype_sid: self.enum_value("pid_type", "PIDTYPE_SID")?,
            tty_index: self.member("tty_struct", "index", Bytes(4))?,
            tty_driver: self.member("tty_struct", "driver", Pointer)?,
            driver_major: self.member("tty_driver", "major", Bytes(4))?,
            driver_minor_start: self.member("tty_driver", "minor_start", Bytes(4))?,
            fs_pwd: self.member("fs_struct", "pwd", Embedded)?,
            css_set_dfl_cgrp: self.member("css_set", "dfl_cgrp", Pointer)?,
            css_set_subsys: self.member("css_set", "subsys", Array)?,
            css_cgroup: self.member("cgroup_subsys_state", "cgroup", Pointer)?,
            cgroup_kn: self.member("cgroup", "kn", Pointer)?,
            kernfs_parent: self.first_member("kernfs_node", &["__parent", "parent"], Pointer)?,
            kernfs_name: self.first_member("kernfs_node", &["__name", "name"], Pointer)?,
            pt_regs_syscall_nr: self.syscall_registers().map_or(0, |(nr, _)| nr),
            pt_regs_arg0: self.syscall_registers().map_or(0, |(_, arg0)| arg0),
        })
    }

    /// Where `struct pt_regs` keeps a system call's number and first
    /// argument, on architectures the syslog program knows (x86-64:
    /// `orig_ax` and `di`); `None` elsewhere, arm64 included: its registers
    /// are not known yet, and no arm64 machine is at hand to prove them.
    pub fn syscall_registers(&self) -> Option<(u32, u32)> {
        let nr = self.member("pt_regs", "orig_ax", Read::Bytes(8)).ok()?;
        let arg0 = self.member("pt_regs", "di", Read::Bytes(8)).ok()?;
        Some((nr, arg0))
    }

    /// Index in `css_set.subsys` of the cgroup v1 controller whose path
    /// stands in for the unified one when a process sits at its root: the
    /// memory controller (container runtimes place every container in it),
    /// else the pids controller; `None` without either.
    pub fn cgroup_v1_subsys(&self) -> Option<u32> {
        ["memory_cgrp_id", "pids_cgrp_id"]
            .into_iter()
            .find_map(|name| self.enum_value("cgroup_subsys_id", name).ok())
    }

    /// The first of `names` that `struct strukt` has, for members renamed
    /// between kernel versions.
    fn first_member(
        &self,
        strukt: &'static str,
        names: &[&'static str],
        read: Read,
    ) -> Result<u32, BtfError> {
        let mut last = BtfError::NoStruct(strukt);
        for name in names {
            match self.member(strukt, name, read) {
                Err(e @ BtfError::NoMember { .. }) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// Size in bytes of `struct name`.
    fn struct_size(&self, name: &'static str) -> Result<u32, BtfError> {
        Ok(self.find_struct(name)?.size() as u32)
    }

    /// The value of `value` in `enum enumeration`.
    fn enum_value(&self, enumeration: &'static str, value: &'static str) -> Result<u32, BtfError> {
        let missing = BtfError::NoEnumValue { enumeration, value };
        let types = self
            .btf
            .resolve_types_by_name(enumeration)
            .map_err(|_| BtfError::NoEnumValue { enumeration, value })?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Enum(e) => e
                    .members
                    .iter()
                    .find(|m| self.btf.resolve_name(*m).is_ok_and(|n| n == value))
                    .map(|m| m.val()),
                _ => None,
            })
            .ok_or(missing)
    }

    /// Byte offset of `member` in `struct strukt`, looking through anonymous
    /// structs and unions (many fields of `mm_struct` and `task_struct` sit in
    /// one), after checking the member's width against `read`.
    fn member(
        &self,
        strukt: &'static str,
        member: &'static str,
        read: Read,
    ) -> Result<u32, BtfError> {
        let def = self.find_struct(strukt)?;
        let (bits, type_id, bitfield) = self
            .find_member(&def, member, 0)?
            .ok_or(BtfError::NoMember { strukt, member })?;
        if bitfield || bits % 8 != 0 {
            return Err(BtfError::Bitfield { strukt, member });
        }
        let ty = self.resolve_qualifiers(type_id)?;
        let found = self.size_of(&ty);
        match read {
            Read::Pointer if !matches!(ty, Type::Ptr(_)) => {
                return Err(BtfError::NotPointer { strukt, member });
            }
            Read::Bytes(expected) if found != expected => {
                return Err(BtfError::Width {
                    strukt,
                    member,
                    expected,
                    found,
                });
            }
            Read::Embedded if !matches!(ty, Type::Struct(_) | Type::Union(_)) => {
                return Err(BtfError::NotStruct { strukt, member });
            }
            Read::Array if !matches!(ty, Type::Array(_)) => {
                return Err(BtfError::NotArray { strukt, member });
            }
            _ => {}
        }
        Ok(bits / 8)
    }

    fn find_struct(&self, name: &'static str) -> Result<btf_rs::Struct, BtfError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_| BtfError::NoStruct(name))?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) if !s.members.is_empty() => Some(s),
                _ => None,
            })
            .ok_or(BtfError::NoStruct(name))
    }

    /// Depth-first search for a named member; returns its bit offset from
    /// the outer struct, its type id and whether it is a bit field.
    fn find_member(
        &self,
        def: &btf_rs::Struct,
        name: &str,
        base_bits: u32,
    ) -> Result<Option<(u32, u32, bool)>, BtfError> {
        for m in &def.members {
            let bits = base_bits + m.bit_offset();
            let type_id = m.get_type_id().unwrap_or(0);
            let member_name = self.btf.resolve_name(m).unwrap_or_default();
            if member_name == name {
                return Ok(Some((bits, type_id, m.bitfield_size().unwrap_or(0) != 0)));
            }
            if member_name.is_empty() {
                match self.resolve_qualifiers(type_id)? {
                    Type::Struct(inner) | Type::Union(inner) => {
                        if let Some(found) = self.find_member(&inner, name, bits)? {
                            return Ok(Some(found));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// Follows typedefs and qualifiers to the type underneath.
    fn resolve_qualifiers(&self, type_id: u32) -> Result<Type, BtfError> {
        let mut ty = self
            .btf
            .resolve_type_by_id(type_id)
            .map_err(BtfError::Malformed)?;
        // A chain longer than this would be a loop in malformed BTF.
        for _ in 0..32 {
            match &ty {
                Type::Typedef(t) => ty = self.chained(t)?,
                Type::Volatile(t) | Type::Const(t) | Type::Restrict(t) => ty = self.chained(t)?,
                Type::TypeTag(t) => ty = self.chained(t)?,
                _ => return Ok(ty),
            }
        }
        Ok(ty)
    }

    fn chained(&self, t: &dyn BtfType) -> Result<Type, BtfError> {
        self.btf
            .resolve_chained_type(t)
            .map_err(BtfError::Malformed)
    }

    fn size_of(&self, ty: &Type) -> usize {
        match ty {
            Type::Int(i) => i.size(),
            Type::Ptr(_) => std::mem::size_of::<u64>(),
            Type::Struct(s) | Type::Union(s) => s.size(),
            Type::Enum(e) => e.size(),
            Type::Enum64(e) => e.size(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running_kernel() -> Option<KernelBtf> {
        match KernelBtf::from_sys_fs() {
            Ok(btf) => Some(btf),
            Err(BtfError::Missing(_))
                if std::env::var_os("MONITOR_SKIP_KERNEL_TESTS").is_some() =>
            {
                None
            }
            Err(e) => panic!("{e} (set MONITOR_SKIP_KERNEL_TESTS=1 to skip)"),
        }
    }

    #[test]
    fn resolves_every_exec_offset_on_the_running_kernel() {
        let Some(btf) = running_kernel() else { return };
        let o = btf.probe_offsets().expect("offsets");
        // Facts about the layout that hold on every kernel the probe
        // supports, without fixing any offset in the test.
        assert_eq!(
            o.mm_arg_end,
            o.mm_arg_start + 8,
            "arg_end follows arg_start"
        );
        assert!(o.cred_euid > o.cred_uid && o.cred_egid > o.cred_gid);
        assert_ne!(o.task_real_parent, o.task_mm);
        assert!(o.task_tgid > 0 && o.bprm_filename > 0 && o.dentry_d_parent > 0);
        assert!(o.mount_mnt_parent != o.mount_mnt_mountpoint);
        assert_ne!(o.pidtype_pgid, o.pidtype_sid);
        assert!(o.upid_size >= 8 && o.upid_nr < o.upid_size);
        assert_ne!(o.kernfs_parent, o.kernfs_name);
        assert!(btf.cgroup_v1_subsys().is_some_and(|i| i < 16));
    }

    #[test]
    fn member_inside_an_anonymous_struct_is_found() {
        let Some(btf) = running_kernel() else { return };
        // On current kernels mm_struct keeps its fields in an anonymous
        // struct; the search must look through it.
        let def = btf.find_struct("mm_struct").expect("mm_struct");
        let direct = def
            .members
            .iter()
            .any(|m| btf.btf.resolve_name(m).unwrap_or_default() == "arg_start");
        let found = btf
            .member("mm_struct", "arg_start", Read::Bytes(8))
            .expect("arg_start");
        assert!(found > 0, "direct member: {direct}");
    }

    #[test]
    fn wrong_width_is_refused() {
        let Some(btf) = running_kernel() else { return };
        let err = btf
            .member("task_struct", "tgid", Read::Bytes(8))
            .unwrap_err();
        assert!(
            matches!(
                err,
                BtfError::Width {
                    expected: 8,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err = btf
            .member("task_struct", "tgid", Read::Pointer)
            .unwrap_err();
        assert!(matches!(err, BtfError::NotPointer { .. }), "{err}");
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let Some(btf) = running_kernel() else { return };
        let err = btf
            .member("task_struct", "no_such_field", Read::Pointer)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kernel BTF has no member no_such_field in struct task_struct"
        );
        let err = btf.find_struct("no_such_struct").unwrap_err();
        assert_eq!(err.to_string(), "kernel BTF has no struct no_such_struct");
    }

    #[test]
    fn a_missing_file_is_named_as_given() {
        let err = KernelBtf::open(Path::new("/nonexistent/vmlinux"))
            .err()
            .expect("error");
        assert_eq!(
            err.to_string(),
            "no BTF file at /nonexistent/vmlinux (named by btf or --btf)"
        );
    }
}
