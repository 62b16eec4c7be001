//! A thin client of salt-api's `rest_cherrypy` netapi, for opsbot's Salt CMDB source and
//! Salt deploy transport: log in with an eauth backend, call the `local` and `local_batch`
//! clients, run shell scripts with `cmd.run_all`.
//!
//! What salt-api answers (and what it does not: errors are HTML, a dead minion is `false`)
//! is in `shared/protocols/SALT.md`; [`response`] turns those bodies into typed results.

mod client;
mod config;
mod error;
pub mod response;

pub use client::SaltApi;
pub use config::SaltApiConfig;
pub use error::SaltError;
pub use response::{MinionReturn, RunAll};

/// Which minions a call addresses (salt's `tgt` + `tgt_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A shell glob on minion ids (`web*`, `*`).
    Glob(String),
    /// `key:value` on a grain (`role:web`, globs allowed in the value).
    Grain(String),
    /// A nodegroup defined in the master's configuration.
    Nodegroup(String),
    /// These minion ids exactly.
    List(Vec<String>),
}

impl Target {
    /// `tgt` and `tgt_type` as salt-api takes them.
    pub fn to_json(&self) -> (serde_json::Value, &'static str) {
        match self {
            Target::Glob(g) => (g.as_str().into(), "glob"),
            Target::Grain(g) => (g.as_str().into(), "grain"),
            Target::Nodegroup(n) => (n.as_str().into(), "nodegroup"),
            Target::List(ids) => (ids.clone().into(), "list"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Glob(g) => write!(f, "{g}"),
            Target::Grain(g) => write!(f, "grain {g}"),
            Target::Nodegroup(n) => write!(f, "nodegroup {n}"),
            Target::List(ids) => write!(f, "{}", ids.join(",")),
        }
    }
}
