//! opsbot-kube over real HTTP against the stand-in API server (`opsbot_fakes::kube`):
//! configuration, the pool and its watches, the chat commands, the change history.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "kube/commands.rs"]
mod commands;
#[path = "kube/config.rs"]
mod config;
#[path = "kube/harness.rs"]
mod harness;
#[path = "kube/history.rs"]
mod history;
#[path = "kube/pool.rs"]
mod pool;
