//! The capabilities the daemon needs, checked before anything is loaded so
//! that a missing one is named rather than left to an `EPERM` from deep in
//! the loader.
//!
//! - `CAP_BPF` and `CAP_PERFMON` (or `CAP_SYS_ADMIN`, which covers both):
//!   creating the maps, loading the tracing programs, attaching them.
//! - `CAP_SYS_PTRACE`, wanted, not needed: reading the executable and the
//!   working directory of other users' processes in `/proc` once at start;
//!   without it those two fields are left out of their `already_running`
//!   events.
//!
//! Nothing else: the journal's socket is writable by anyone, and the BTF,
//! the rules and `/proc`'s other files are readable by anyone.

use anyhow::{Result, bail};
use caps::{CapSet, Capability};
use tracing::{debug, warn};

/// Capabilities the daemon cannot start without.
pub const NEEDED: [Capability; 2] = [Capability::CAP_BPF, Capability::CAP_PERFMON];

/// Fails, naming them, if the process lacks capabilities it needs; warns
/// if it lacks the one it only wants. If the capabilities cannot be read,
/// the loader will tell.
pub fn check() -> Result<()> {
    let effective = match caps::read(None, CapSet::Effective) {
        Ok(set) => set,
        Err(e) => {
            debug!(error = %e, "cannot read this process's capabilities");
            return Ok(());
        }
    };
    if let Some(text) = shortfall(&effective) {
        bail!("{text}");
    }
    if !effective.contains(&Capability::CAP_SYS_PTRACE) {
        warn!(
            "no CAP_SYS_PTRACE: the executable and working directory of other users' \
             processes already running are left out of their events"
        );
    }
    Ok(())
}

/// What is missing from `effective` to load the programs, said plainly.
fn shortfall(effective: &caps::CapsHashSet) -> Option<String> {
    if effective.contains(&Capability::CAP_SYS_ADMIN) {
        return None;
    }
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|c| !effective.contains(c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "the eBPF programs need CAP_BPF and CAP_PERFMON, and this process lacks {}: run as \
         root, or grant them (the systemd unit in systemd/ does)",
        missing.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(caps: &[Capability]) -> caps::CapsHashSet {
        caps.iter().copied().collect()
    }

    #[test]
    fn names_what_is_missing() {
        assert_eq!(
            shortfall(&set(&[Capability::CAP_BPF])).as_deref(),
            Some(
                "the eBPF programs need CAP_BPF and CAP_PERFMON, and this process lacks \
                 CAP_PERFMON: run as root, or grant them (the systemd unit in systemd/ does)"
            )
        );
        let none = shortfall(&set(&[])).expect("both missing");
        assert!(none.contains("lacks CAP_BPF and CAP_PERFMON"), "{none}");
    }

    #[test]
    fn enough_is_enough() {
        assert_eq!(
            shortfall(&set(&[Capability::CAP_BPF, Capability::CAP_PERFMON])),
            None
        );
        assert_eq!(shortfall(&set(&[Capability::CAP_SYS_ADMIN])), None);
    }
}
