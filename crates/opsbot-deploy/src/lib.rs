//! Deploys (seed 003): projects bound to hosts, builds from git or svn into one
//! artefact stored by sha256, release orders (发布单) released to the hosts in batches
//! over SSH or through Salt with live logs, approvals, pause / resume / abort / retry,
//! rollback by re-link or re-deploy.
//!
//! Data flows one way: chat / API → [`chat`] → [`Deploys`] ([`orders`], [`builds`]:
//! the orders and their state machine in the store) → [`release`] (batches, hosts,
//! steps) → [`remote`] over a [`transport`] ([`ssh`] or [`salt`]) → the hosts.

pub mod addresses;
pub mod artefacts;
pub mod build;
pub mod builds;
pub mod canary;
pub mod cards;
pub mod chat;
pub mod config;
pub mod deploys;
mod fence;
pub mod hosts;
mod local;
pub mod log;
pub mod model;
pub mod notify;
pub mod orders;
pub mod release;
pub mod remote;
pub mod render;
pub mod salt;
pub mod scale;
pub mod ssh;
mod storelog;
pub mod transport;
pub mod vcs;
pub mod window;

pub use chat::{DeployCommands, COMMANDS};
pub use config::{DeployConfig, Project};
pub use deploys::{Deploys, Refused};
