//! Where tests and benchmarks find the reference data kept beside the
//! repository: Elastic's Linux detection rules and Elasticsearch's EQL
//! conformance suite, in a `shared/` folder next to the clone
//! (`<clone>/../shared`), or wherever `MONITOR_SHARED_DIR` points.
//!
//! The daemon itself never reads it.

use std::path::{Path, PathBuf};

/// Elastic's Linux detection rules.
pub const LINUX_RULES: &str = "detection-rules/linux";

/// Elasticsearch's EQL test queries and data.
pub const EQL_CONFORMANCE: &str = "eql-conformance";

/// The folder `relative` inside the shared reference data; panics with a
/// message that says where it was looked for, so that a test run without the
/// data fails clearly instead of passing on nothing.
pub fn dir(relative: &str) -> PathBuf {
    let base = std::env::var_os("MONITOR_SHARED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        PathBuf::from,
    );
    let path = base.join(relative);
    assert!(
        path.is_dir(),
        "reference data {} not found: the tests expect the shared/ folder next to the \
         repository clone, or MONITOR_SHARED_DIR pointing at it",
        path.display()
    );
    path
}
