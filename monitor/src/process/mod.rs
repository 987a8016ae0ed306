//! The process model: which processes are alive, what they run, who their
//! parents and leaders are, under which user and in which container.
//!
//! - `table.rs` keeps the live processes from the kernel's fork, exec and
//!   exit records, keyed by pid and start time;
//! - `entity.rs` derives each process's `entity_id`;
//! - `image.rs` holds what a process runs (executable and arguments);
//! - `scan.rs` reads `/proc` once at start for the processes already
//!   running, and single processes the table finds missing later;
//! - `container.rs` recognises container ids in cgroup paths;
//! - `users.rs` turns user and group ids into names, cached.

pub mod container;
pub mod entity;
mod image;
pub mod scan;
mod table;
pub mod users;

pub use container::Container;
pub use entity::EntityIds;
pub use image::Image;
pub use table::{Context, Process, ProcessTable, TableStats};
pub use users::NameCache;

#[cfg(test)]
mod tests;
