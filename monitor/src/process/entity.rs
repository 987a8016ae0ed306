//! Process entity ids: one opaque string per process, unique on the host
//! and stable for the process's life.
//!
//! The id is derived, not allocated: it is the hex of a digest of the boot
//! id, the pid, and the start time in clock ticks since boot. Anything that
//! knows a process's pid and start time (the kernel's records, a line of
//! `/proc/<pid>/stat`, an earlier run of the daemon in the same boot) gets
//! the same id, so a child's `process.parent.entity_id` always equals its
//! parent's `process.entity_id`, even when the parent was seen through a
//! different source. The start time is taken in clock ticks because that is
//! all `/proc` gives; two processes with one pid cannot start within the
//! same tick, as the pid would have to be freed and reused in between.

/// Builds entity ids for one boot.
#[derive(Debug, Clone)]
pub struct EntityIds {
    boot: u64,
    ns_per_tick: u64,
}

impl EntityIds {
    /// Ids for the running boot, from `/proc/sys/kernel/random/boot_id` and
    /// the clock tick rate.
    pub fn for_this_boot(ticks_per_second: u64) -> Self {
        let boot_id =
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        Self::new(boot_id.trim(), ticks_per_second)
    }

    /// Ids for the boot named `boot_id`.
    pub fn new(boot_id: &str, ticks_per_second: u64) -> Self {
        Self {
            boot: fnv1a(boot_id.as_bytes()),
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
        }
    }

    /// Clock ticks since boot for a boot clock time in nanoseconds, as
    /// `/proc/<pid>/stat` shows a start time.
    pub fn ticks(&self, boot_ns: u64) -> u64 {
        boot_ns / self.ns_per_tick
    }

    /// Boot clock nanoseconds of a tick count.
    pub fn ns(&self, ticks: u64) -> u64 {
        ticks.saturating_mul(self.ns_per_tick)
    }

    /// Whether two start times, in nanoseconds, name the same tick.
    pub fn same_start(&self, a_ns: u64, b_ns: u64) -> bool {
        self.ticks(a_ns) == self.ticks(b_ns)
    }

    /// The entity id of the process `pid` started at `start_ns`.
    pub fn id(&self, pid: u32, start_ns: u64) -> String {
        let ticks = self.ticks(start_ns);
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&self.boot.to_be_bytes());
        bytes[8..12].copy_from_slice(&pid.to_be_bytes());
        bytes[12..].copy_from_slice(&ticks.to_be_bytes());
        // Mix the boot into the pid and start time, so that ids of one boot
        // do not share a visible prefix with the next boot's; the layout
        // stays reversible for whoever knows the boot id.
        let mix = fnv1a(&bytes);
        let mut out = String::with_capacity(40);
        for b in mix.to_be_bytes().iter().chain(&bytes[8..]) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// 64-bit FNV-1a: small, stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_same_id_whatever_the_precision() {
        let ids = EntityIds::new("8e2c7d1c-0f7b-4f5e-9b5c-3f1d2a4b6c7d", 100);
        // The kernel knows the start to the nanosecond, /proc to the tick.
        let exact = 12_345_678_901;
        let from_proc = ids.ns(ids.ticks(exact));
        assert_eq!(ids.id(42, exact), ids.id(42, from_proc));
        assert_eq!(ids.id(42, exact).len(), 40);
    }

    #[test]
    fn pid_start_and_boot_all_matter() {
        let a = EntityIds::new("boot-a", 100);
        let b = EntityIds::new("boot-b", 100);
        let start = 5_000_000_000;
        assert_ne!(a.id(42, start), a.id(43, start));
        assert_ne!(a.id(42, start), a.id(42, start + 10_000_000));
        assert_ne!(a.id(42, start), b.id(42, start));
        assert!(a.same_start(start, start + 9_999_999));
        assert!(!a.same_start(start, start + 10_000_000));
    }
}
