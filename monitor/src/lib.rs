//! A host security monitor: eBPF exec capture, Elastic Common Schema events,
//! Elastic EQL detection rules, alerts to journald.
//!
//! The pieces, in the order an exec flows through them:
//!
//! - [`btf`] resolves the kernel structure offsets the eBPF program needs
//!   from the running kernel's BTF;
//! - [`probe`] loads and attaches the eBPF program and owns its maps;
//! - [`record`] decodes the raw records the program writes;
//! - [`host`] describes the machine once, for every event;
//! - [`ecs`] turns a record into the ECS document Elastic's agent writes;
//! - [`eql`] parses and evaluates Elastic's Event Query Language;
//! - [`rules`] loads detection rules in Elastic's TOML format, and
//!   [`rules_cli`] checks and runs them offline;
//! - [`alert`] builds the alert document for a rule match;
//! - [`output`] writes alerts and events to journald or standard output;
//! - [`pipeline`] ties them together in the daemon's event loop;
//! - [`loss`] keeps the honest count of what was lost, and where;
//! - [`metrics`] logs the totals and serves them to Prometheus.
//!
//! Around them, the service: [`cli`] and [`config`] merge the flags and the
//! configuration file, [`reload`] answers SIGHUP and `--check-config`,
//! [`privilege`] names a missing capability, [`selfcheck`] proves at start
//! that the program reads this kernel right, and [`notify`] tells systemd
//! the daemon is ready and alive.

pub mod alert;
pub mod btf;
pub mod cli;
pub mod config;
pub mod ecs;
pub mod eql;
pub mod host;
pub mod loss;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod pipeline;
pub mod privilege;
pub mod probe;
pub mod process;
pub mod record;
#[doc(hidden)]
pub mod reference_data;
pub mod reload;
pub mod rules;
pub mod rules_cli;
pub mod selfcheck;
