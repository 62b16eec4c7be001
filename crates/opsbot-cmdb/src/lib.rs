//! The CMDB (seed 004): what a host is made of, collected by an agent on the host or
//! over SSH without one, reported to the server, diffed field by field against what is
//! stored, and kept with its change history.
//!
//! - [`facts`]: the versioned report schema, its validation and flattening.
//! - [`source`] and [`collect`]: built-in collectors over a local root, a fixture tree
//!   or an SSH snapshot; [`plugins`]: external executables that print JSON.
//! - [`identity`], [`spool`], [`client`], [`agent`]: the host agent.
//! - [`ssh`]: agentless collection with the system OpenSSH client; [`salt`]: the same
//!   through a Salt master's salt-api.
//! - [`ingest`], [`link`]: the server side (batched writes, VM links); [`desk`]: the
//!   asset card and changes for chat; [`config`]: the `[cmdb]` section.

pub mod agent;
pub mod chat;
pub mod client;
pub mod collect;
pub mod config;
pub mod desk;
mod error;
pub mod facts;
pub mod identity;
pub mod ingest;
pub mod link;
pub mod plugins;
pub mod render;
pub mod salt;
pub mod source;
pub mod spool;
pub mod ssh;

pub use error::{CmdbError, Result};
pub use facts::Report;
