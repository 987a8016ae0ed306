//! The `host.*` fields every event carries, read once at start.
//!
//! Names follow what Elastic's agent writes on Linux: `host.os.type` is
//! always `linux` (rules test it), `family` and `platform` come from
//! os-release's `ID_LIKE`/`ID`, `kernel` is the release and build string.
//!
//! Not tracked yet: host name or address changes while the daemon runs.

use serde_json::{Value, json};

/// Facts about the machine the daemon runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub hostname: String,
    pub id: Option<String>,
    pub architecture: String,
    pub os_name: String,
    pub os_family: String,
    pub os_platform: String,
    pub os_version: String,
    pub os_full: String,
    /// Release, e.g. `6.18.0-1-amd64`.
    pub kernel_release: String,
    /// Release and build, as in `uname -rv`.
    pub kernel: String,
}

impl HostInfo {
    /// Reads the running machine's facts.
    pub fn detect() -> Self {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let release = field(|u| u.release());
        let version = field(|u| u.version());
        let platform = sysinfo::System::distribution_id();
        let os_name = sysinfo::System::name().unwrap_or_else(|| "Linux".to_owned());
        let os_version = sysinfo::System::os_version().unwrap_or_default();
        let family = sysinfo::System::distribution_id_like()
            .into_iter()
            .next()
            .unwrap_or_else(|| platform.clone());
        Self {
            hostname: field(|u| u.nodename()),
            id: std::fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            architecture: field(|u| u.machine()),
            os_full: format!("{os_name} {os_version}").trim().to_owned(),
            os_name,
            os_family: family,
            os_platform: platform,
            os_version,
            kernel: format!("{release} {version}").trim().to_owned(),
            kernel_release: release,
        }
    }

    /// The ECS `host` object.
    pub fn to_ecs(&self) -> Value {
        let mut host = json!({
            "name": self.hostname,
            "hostname": self.hostname,
            "architecture": self.architecture,
            "os": {
                "type": "linux",
                "family": self.os_family,
                "platform": self.os_platform,
                "name": self.os_name,
                "version": self.os_version,
                "full": self.os_full,
                "kernel": self.kernel,
            },
        });
        if let Some(id) = &self.id {
            host["id"] = json!(id);
        }
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let host = HostInfo::detect();
        assert!(!host.hostname.is_empty());
        assert!(!host.kernel_release.is_empty());
        assert!(host.kernel.starts_with(&host.kernel_release));
        assert_eq!(host.architecture, std::env::consts::ARCH);
    }

    #[test]
    fn ecs_object_has_the_fields_rules_use() {
        let host = HostInfo::detect().to_ecs();
        assert_eq!(host["os"]["type"], "linux");
        for key in ["name", "hostname", "architecture"] {
            assert!(host[key].is_string(), "{key}");
        }
        for key in ["family", "name", "kernel", "version"] {
            assert!(host["os"][key].is_string(), "os.{key}");
        }
    }
}
