//! Rebuilding paths inside the kernel: a file's path from its dentries and
//! mounts, and a cgroup's path from its kernfs nodes. Both write the names
//! leaf first, each NUL-terminated, and keep their running length in map
//! memory (see [`write_path`] for why).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use monitor_common::{
    CGROUP_DEPTH_MAX, CGROUP_MAX, KernelOffsets, NAME_MAX, NO_SUBSYS, PATH_DEPTH_MAX, PATH_MAX,
    ProbeConfig, flags,
};

use crate::shared::{follow, read};

pub const PATH_MASK: u32 = PATH_MAX as u32 - 1;
pub const CGROUP_MASK: u32 = CGROUP_MAX as u32 - 1;

/// What to flag, and count, when a walk cannot finish.
pub struct Marks {
    pub truncated: u32,
    pub unreadable: u32,
}

/// Walks the dentries of the `struct path` at `path` up to the root of the
/// mount namespace, crossing mount points on the way, and writes the names
/// at `dst`. Returns the bytes written (0 with the unreadable mark set when
/// a structure could not be read).
///
/// The running length lives at `len`, in map memory, not in a register: the
/// verifier does not track values in map memory, so every iteration starts
/// from the same state and it can prune. Kept in a register, each mix of
/// "crossed a mount" and "copied a name" over the iterations is a different
/// state, and verification exceeds its budget.
///
/// # Safety
/// `dst` must have room for `PATH_MAX + NAME_MAX` bytes; `len` must point
/// into map memory.
#[inline(always)]
pub unsafe fn write_path(
    dst: *mut u8,
    len: *mut u32,
    path: *const u8,
    off: &KernelOffsets,
    fl: &mut u32,
    marks: &Marks,
) -> u32 {
    // SAFETY: `len` points into map memory (caller's contract); every kernel
    // pointer is read through bpf_probe_read_kernel, which fails cleanly on a
    // bad address; writes go to `dst` at masked offsets.
    unsafe {
        len.write_volatile(0);
        let (Ok(mut mnt), Ok(mut dentry)) =
            (follow(path, off.path_mnt), follow(path, off.path_dentry))
        else {
            *fl |= marks.unreadable;
            return 0;
        };
        for _ in 0..PATH_DEPTH_MAX {
            let (Ok(mnt_root), Ok(parent)) = (
                read::<*const u8>(mnt, off.vfsmount_mnt_root),
                read::<*const u8>(dentry, off.dentry_d_parent),
            ) else {
                *fl |= marks.unreadable;
                return 0;
            };
            if dentry == mnt_root || dentry == parent {
                // Top of this mount: continue from where it is mounted, or
                // stop at the namespace's root mount (its own parent).
                let mount = mnt.wrapping_sub(off.mount_mnt as usize);
                let Ok(mount_parent) = read::<*const u8>(mount, off.mount_mnt_parent) else {
                    *fl |= marks.unreadable;
                    return 0;
                };
                if mount_parent == mount {
                    // The namespace's root mount, or an internal one (memfd
                    // and other anonymous files live on detached dentries
                    // that are their own parent): a file with no path above
                    // it is named by its own dentry; `/` itself is not.
                    if len.read_volatile() == 0 && dentry != mnt_root {
                        let name = dentry.wrapping_add(off.dentry_d_name as usize);
                        let Ok(name) = read::<*const u8>(name, off.qstr_name) else {
                            *fl |= marks.unreadable;
                            return 0;
                        };
                        copy_name(dst, len, PATH_MASK, name);
                    }
                    return len.read_volatile();
                }
                let Ok(mountpoint) = read::<*const u8>(mount, off.mount_mnt_mountpoint) else {
                    *fl |= marks.unreadable;
                    return 0;
                };
                dentry = mountpoint;
                mnt = mount_parent.wrapping_add(off.mount_mnt as usize);
                continue;
            }
            // Stop while a whole name still fits below PATH_MAX, so that the
            // length never wraps under the mask.
            if len.read_volatile() as usize > PATH_MAX - 1 - NAME_MAX {
                break;
            }
            let name = dentry.wrapping_add(off.dentry_d_name as usize);
            let copied = match read::<*const u8>(name, off.qstr_name) {
                Ok(name) => copy_name(dst, len, PATH_MASK, name),
                Err(_) => false,
            };
            if !copied {
                *fl |= marks.unreadable;
                return 0;
            }
            dentry = parent;
        }
        *fl |= marks.truncated;
        len.read_volatile()
    }
}

/// Writes the path of the process's cgroup at `dst`: its cgroup in the
/// unified (v2) hierarchy or, when that is the root (a host that runs its
/// containers under cgroup v1), its cgroup in the configured v1 controller.
///
/// # Safety
/// `dst` must have room for `CGROUP_MAX + NAME_MAX` bytes; `len` must point
/// into map memory.
#[inline(always)]
pub unsafe fn write_cgroup(
    dst: *mut u8,
    len: *mut u32,
    task: *const u8,
    config: &ProbeConfig,
    fl: &mut u32,
) -> u32 {
    let off = &config.offsets;
    // SAFETY: as for `write_path`.
    unsafe {
        len.write_volatile(0);
        let Ok(cgroups) = follow(task, off.task_cgroups) else {
            return 0;
        };
        let Ok(mut kn) =
            follow(cgroups, off.css_set_dfl_cgrp).and_then(|c| follow(c, off.cgroup_kn))
        else {
            return 0;
        };
        let at_root = read::<*const u8>(kn, off.kernfs_parent).is_ok_and(|p| p.is_null());
        let subsys = config.cgroup_v1_subsys;
        if at_root && subsys != NO_SUBSYS {
            // `& 15` restates the array's bound (at most 16 controllers).
            let slot = off.css_set_subsys + (subsys & 15) * 8;
            if let Ok(v1) = follow(cgroups, slot)
                .and_then(|css| follow(css, off.css_cgroup))
                .and_then(|cgroup| follow(cgroup, off.cgroup_kn))
            {
                kn = v1;
                *fl |= flags::CGROUP_V1;
            }
        }
        for _ in 0..CGROUP_DEPTH_MAX {
            let Ok(parent) = read::<*const u8>(kn, off.kernfs_parent) else {
                return len.read_volatile();
            };
            if parent.is_null() {
                // The hierarchy's root, whose name is not part of paths.
                return len.read_volatile();
            }
            if len.read_volatile() as usize > CGROUP_MAX - 1 - NAME_MAX {
                break;
            }
            let Ok(name) = read::<*const u8>(kn, off.kernfs_name) else {
                return len.read_volatile();
            };
            if !copy_name(dst, len, CGROUP_MASK, name) {
                return len.read_volatile();
            }
            kn = parent;
        }
        *fl |= flags::CGROUP_TRUNCATED;
        len.read_volatile()
    }
}

/// Appends the NUL-terminated name at `name` to `dst + *len`; false when it
/// could not be read.
///
/// # Safety
/// `*len` must be at most `mask + 1 - NAME_MAX - 1`, and `dst` must have
/// room for `mask + 1 + NAME_MAX` bytes.
#[inline(always)]
unsafe fn copy_name(dst: *mut u8, len: *mut u32, mask: u32, name: *const u8) -> bool {
    // SAFETY: the write offset is masked into the buffer and the copy is at
    // most NAME_MAX bytes; the source is read through the helper.
    unsafe {
        let written = len.read_volatile();
        let n = bpf_probe_read_kernel_str(
            dst.add((written & mask) as usize) as *mut c_void,
            NAME_MAX as u32,
            name.cast(),
        );
        if n <= 0 {
            return false;
        }
        len.write_volatile(written + n as u32);
        true
    }
}
