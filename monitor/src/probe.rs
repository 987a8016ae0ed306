//! Loading the eBPF programs, attaching them, and handing out their maps.
//!
//! The object file is compiled by the build script and embedded in the
//! binary. Before load, the daemon writes the kernel's field offsets, the
//! argv capture limit and the wake-up threshold into the programs' read-only
//! `CONFIG`, sizes the ring buffer, and sizes the scratch array to the
//! number of possible CPUs.
//!
//! The programs attach as BTF tracepoints (`tp_btf`), which need neither
//! tracefs nor debugfs mounted: `sched_process_fork` and
//! `sched_process_exit` first, then `sched_process_exec`, so that no exec
//! is seen from a process whose birth was missed after start.
//!
//! Not done yet: pinning, so that a restart does not lose events.

use std::io;

use anyhow::Context as _;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, PerCpuValues, RingBuf},
    programs::BtfTracePoint,
};
use monitor_common::{
    ARGV_CAPTURE_MAX, KernelOffsets, NO_SUBSYS, NO_SYSCALL, ProbeConfig, counter,
};

static PROBE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor-probe"));

/// The tracepoints the programs attach to, which are also the programs'
/// names, in attach order.
pub const TRACEPOINTS: [&str; 3] = [
    "sched_process_fork",
    "sched_process_exit",
    "sched_process_exec",
];

/// The program that watches `syslog(2)`, on the `sys_exit` tracepoint
/// (also its name).
pub const SYSLOG_PROGRAM: &str = "sys_exit";

/// What the kernel side needs to know of the running kernel.
#[derive(Debug, Clone, Copy)]
pub struct KernelLayout {
    /// Field offsets, from BTF.
    pub offsets: KernelOffsets,
    /// The cgroup v1 controller to fall back to, if any.
    pub cgroup_v1_subsys: Option<u32>,
    /// The number of `syslog(2)`, when the syslog program can read system
    /// call registers on this architecture.
    pub syslog_nr: Option<u32>,
}

/// Load-time settings.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// Bytes of argv captured per exec.
    pub argv_limit: u32,
    /// Ring buffer size in bytes: a power of two, a multiple of the page size.
    pub ring_buffer_bytes: u32,
}

/// The least time between two wake-ups of the reader by exec and syslog
/// records; records in between wait for the reader's follow-up look, one
/// gap after each wake-up (see `pipeline`). It bounds how late an alert can
/// be made by the pacing, and the number of wake-ups per second.
pub const WAKEUP_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// Largest ring buffer accepted.
pub const RING_BUFFER_MAX: u32 = 1 << 30;

impl ProbeOptions {
    /// Largest record the program can write with these options.
    pub fn max_record(&self) -> u32 {
        monitor_common::max_exec_record(self.argv_limit) as u32
    }

    /// Pending bytes above which fork and exit records wake the reader: an
    /// eighth of the ring buffer.
    pub fn wakeup_bytes(&self) -> u64 {
        u64::from(self.ring_buffer_bytes / 8)
    }

    /// Checks the options against the build's limits and each other: the
    /// ring buffer must be a power of two, a multiple of the page size, at
    /// most 1 GiB, and able to hold the largest record.
    pub fn validate(&self) -> Result<(), ProbeError> {
        if self.argv_limit as usize > ARGV_CAPTURE_MAX {
            return Err(ProbeError::ArgvLimit(self.argv_limit));
        }
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as u32;
        let size = self.ring_buffer_bytes;
        // The ring buffer adds an 8-byte header to every record.
        let least = (self.max_record() + 8).next_power_of_two().max(page);
        if !size.is_power_of_two() || !size.is_multiple_of(page) || size > RING_BUFFER_MAX {
            return Err(ProbeError::RingBufferSize(size));
        }
        if size < least {
            return Err(ProbeError::RingBufferTooSmall {
                size,
                least,
                argv_limit: self.argv_limit,
            });
        }
        Ok(())
    }
}

/// Why the program could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The capabilities are checked before loading (`privilege.rs`), so
    /// this is most often something else that forbids bpf(2).
    #[error(
        "the kernel refused the eBPF program (EPERM) although this process has CAP_BPF and \
         CAP_PERFMON: a system-call filter, a security module (SELinux, AppArmor, lockdown) or \
         a container runtime's policy may forbid bpf(2)"
    )]
    Permission(#[source] anyhow::Error),
    #[error("argv limit {0} is above the build's ceiling of {ARGV_CAPTURE_MAX} bytes")]
    ArgvLimit(u32),
    #[error(
        "ring buffer size {0} must be a power of two, a multiple of the page size, and at most \
         1 GiB"
    )]
    RingBufferSize(u32),
    #[error(
        "a ring buffer of {size} bytes cannot hold one record with an argv limit of \
         {argv_limit} bytes; use at least {least}"
    )]
    RingBufferTooSmall {
        size: u32,
        least: u32,
        argv_limit: u32,
    },
    #[error(
        "this kernel ({0}) is too old: the monitor needs Linux 5.8 or newer (BPF ring buffer, \
         BTF tracepoints)"
    )]
    OldKernel(String),
    #[error("loading the eBPF program failed")]
    Load(#[source] anyhow::Error),
}

/// The loaded program and the maps the daemon reads.
pub struct Probe {
    ebpf: Ebpf,
    counters: PerCpuArray<MapData, u64>,
    /// Whether the syslog program is attached, or why it could not load.
    syslog: Result<bool, anyhow::Error>,
}

/// Totals of the program's per-CPU counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Execs the program saw.
    pub execs_seen: u64,
    /// Records dropped because the ring buffer was full.
    pub ringbuf_full: u64,
    /// Execs whose argv could not be read.
    pub argv_unreadable: u64,
    /// Execs whose executable path could not be read.
    pub path_unreadable: u64,
    /// Execs for which no record could be assembled.
    pub capture_failed: u64,
    /// Syslog records lost (a clear of the kernel ring buffer not seen).
    pub syslog_lost: u64,
    /// Fork records lost (the process table misses a process).
    pub forks_lost: u64,
    /// Exit records lost (the process table keeps a dead process until its
    /// next sweep).
    pub exits_lost: u64,
}

impl KernelCounters {
    /// Execs and syslog calls lost in the kernel, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.ringbuf_full + self.capture_failed + self.syslog_lost
    }

    /// Fork and exit records lost in the kernel.
    pub fn lifecycle_lost(&self) -> u64 {
        self.forks_lost + self.exits_lost
    }

    /// Execs delivered with a part missing (argv or path unreadable), and
    /// fork and exit records lost (process context degraded).
    pub fn degraded(&self) -> u64 {
        self.argv_unreadable + self.path_unreadable + self.forks_lost + self.exits_lost
    }
}

impl Probe {
    /// Loads the programs into the kernel (the verifier runs here).
    pub fn load(layout: KernelLayout, options: ProbeOptions) -> Result<Self, ProbeError> {
        check_kernel_version()?;
        options.validate()?;
        let size = options.ring_buffer_bytes;
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| classify(anyhow::Error::new(e).context(what)))?;
        let config = ProbeConfig {
            argv_limit: options.argv_limit,
            cgroup_v1_subsys: layout.cgroup_v1_subsys.unwrap_or(NO_SUBSYS),
            wakeup_bytes: options.wakeup_bytes(),
            wakeup_gap_ns: WAKEUP_GAP.as_nanos() as u64,
            offsets: layout.offsets,
            syslog_nr: layout.syslog_nr.unwrap_or(NO_SYSCALL),
        };
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .map_max_entries("EVENTS", size)
            .map_max_entries("SCRATCH", cpus as u32)
            .load(PROBE_OBJECT)
            .map_err(|e| classify(e.into()))?;

        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Load(e.into()))?;
        for name in TRACEPOINTS {
            program(&mut ebpf, name)?
                .load(name, &btf)
                .map_err(|e| classify(anyhow::Error::new(e).context(name)))?;
        }
        // Optional: without it the rest still runs; `attach` says why.
        let syslog_loaded = match layout.syslog_nr {
            None => Err(anyhow::anyhow!(
                "the syslog program does not know this architecture's registers"
            )),
            Some(_) => program(&mut ebpf, SYSLOG_PROGRAM)
                .map_err(anyhow::Error::new)
                .and_then(|p| p.load(SYSLOG_PROGRAM, &btf).map_err(anyhow::Error::new)),
        };

        let counters = ebpf
            .take_map("COUNTERS")
            .ok_or_else(|| ProbeError::Load(anyhow::anyhow!("map COUNTERS missing")))?;
        let counters = PerCpuArray::try_from(counters).map_err(|e| ProbeError::Load(e.into()))?;
        Ok(Self {
            ebpf,
            counters,
            syslog: syslog_loaded.map(|()| false),
        })
    }

    /// Attaches the programs; processes are followed from here on.
    ///
    /// The syslog program is attached last, and may fail without failing
    /// the rest: then `syslog(2)` clears are not seen (the rules on exec
    /// events still catch `dmesg`), and the returned error says why.
    pub fn attach(&mut self) -> Result<Result<(), anyhow::Error>, ProbeError> {
        for name in TRACEPOINTS {
            program(&mut self.ebpf, name)?
                .attach()
                .map_err(|e| classify(anyhow::Error::new(e).context(name)))?;
        }
        let attached = match &self.syslog {
            Err(e) => Err(anyhow::anyhow!("{e:#}")),
            Ok(_) => program(&mut self.ebpf, SYSLOG_PROGRAM)
                .map_err(anyhow::Error::new)
                .and_then(|p| p.attach().map(drop).map_err(anyhow::Error::new)),
        };
        let attached = attached.context(SYSLOG_PROGRAM);
        self.syslog = match &attached {
            Ok(()) => Ok(true),
            Err(e) => Err(anyhow::anyhow!("{e:#}")),
        };
        Ok(attached)
    }

    /// Detaches and unloads the programs, syslog and exec first; the maps
    /// stay readable.
    pub fn detach(&mut self) -> Result<(), ProbeError> {
        if matches!(self.syslog, Ok(true)) {
            program(&mut self.ebpf, SYSLOG_PROGRAM)?
                .unload()
                .map_err(|e| ProbeError::Load(anyhow::Error::new(e).context(SYSLOG_PROGRAM)))?;
            self.syslog = Ok(false);
        }
        for name in TRACEPOINTS.into_iter().rev() {
            program(&mut self.ebpf, name)?
                .unload()
                .map_err(|e| ProbeError::Load(anyhow::Error::new(e).context(name)))?;
        }
        Ok(())
    }

    /// Takes the ring buffer the records arrive in.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| ProbeError::Load(anyhow::anyhow!("map EVENTS missing")))?;
        RingBuf::try_from(map).map_err(|e| ProbeError::Load(e.into()))
    }

    /// Starts forwarding the program's own log lines (aya-log) to `log`.
    pub fn take_logger(&mut self) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
        aya_log::EbpfLogger::init(&mut self.ebpf).ok()
    }

    /// Reads and sums the per-CPU counters.
    pub fn counters(&self) -> io::Result<KernelCounters> {
        let total = |index: u32| -> io::Result<u64> {
            let values = self.counters.get(&index, 0).map_err(io::Error::other)?;
            Ok(values.iter().sum())
        };
        Ok(KernelCounters {
            execs_seen: total(counter::EXECS_SEEN)?,
            ringbuf_full: total(counter::RINGBUF_FULL)?,
            argv_unreadable: total(counter::ARGV_UNREADABLE)?,
            path_unreadable: total(counter::PATH_UNREADABLE)?,
            capture_failed: total(counter::CAPTURE_FAILED)?,
            forks_lost: total(counter::FORKS_LOST)?,
            exits_lost: total(counter::EXITS_LOST)?,
            syslog_lost: total(counter::SYSLOG_LOST)?,
        })
    }
}

impl Probe {
    /// The most bytes the ring buffer held waiting for the daemon, on any
    /// CPU, since the last call (which this one resets).
    pub fn take_ring_peak(&mut self) -> io::Result<u64> {
        let values = self
            .counters
            .get(&counter::RING_PEAK, 0)
            .map_err(io::Error::other)?;
        let peak = values.iter().copied().max().unwrap_or(0);
        let zeros = PerCpuValues::try_from(vec![0u64; values.len()]).map_err(io::Error::other)?;
        self.counters
            .set(counter::RING_PEAK, zeros, 0)
            .map_err(io::Error::other)?;
        Ok(peak)
    }
}

/// One of the programs inside the loaded object.
fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut BtfTracePoint, ProbeError> {
    ebpf.program_mut(name)
        .ok_or_else(|| ProbeError::Load(anyhow::anyhow!("program {name} missing")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| ProbeError::Load(e.into()))
}

/// Turns a load failure caused by missing privilege into the error that says
/// so; anything else stays a load error with its cause chain.
fn classify(error: anyhow::Error) -> ProbeError {
    let denied = error.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| {
            e.kind() == io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(nix::libc::EPERM)
        })
    });
    if denied {
        ProbeError::Permission(error)
    } else {
        ProbeError::Load(error)
    }
}

fn check_kernel_version() -> Result<(), ProbeError> {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return Ok(());
    };
    let release = uts.release().to_string_lossy().into_owned();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>());
    if let (Some(Ok(major)), Some(Ok(minor))) = (numbers.next(), numbers.next())
        && (major, minor) < (5, 8)
    {
        return Err(ProbeError::OldKernel(release));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(argv_limit: u32, ring_buffer_bytes: u32) -> ProbeOptions {
        ProbeOptions {
            argv_limit,
            ring_buffer_bytes,
        }
    }

    #[test]
    fn ring_buffer_sizes_are_checked() {
        assert!(options(32 * 1024, 8 << 20).validate().is_ok());
        assert!(matches!(
            options(32 * 1024, 3 << 20).validate(),
            Err(ProbeError::RingBufferSize(_))
        ));
        assert!(matches!(
            options(32 * 1024, 2 << 30).validate(),
            Err(ProbeError::RingBufferSize(_))
        ));
        let err = options(32 * 1024, 4096).validate().unwrap_err();
        assert!(
            matches!(err, ProbeError::RingBufferTooSmall { least: 65536, .. }),
            "{err}"
        );
        assert!(options(1024, 16384).validate().is_ok());
        assert!(options(2048, 16384).validate().is_err());
    }

    #[test]
    fn argv_limit_above_the_ceiling_is_refused() {
        let err = options(ARGV_CAPTURE_MAX as u32 + 1, 8 << 20)
            .validate()
            .unwrap_err();
        assert!(matches!(err, ProbeError::ArgvLimit(_)));
    }
}
