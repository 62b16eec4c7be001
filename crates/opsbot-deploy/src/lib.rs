//! Deploys (seed 003): projects bound to hosts, builds from git or svn into one
//! artefact stored by sha256, release orders (发布单) released to the hosts in batches
//! over SSH with live logs, approvals, pause / resume / abort / retry, rollback by
//! re-link or re-deploy, and scaling a project out and in through a provider.
//!
//! Data flows one way: chat / API → [`service`] (orders and their state machine in the
//! store) → [`release`] (batches, hosts, steps) → [`remote`] over [`ssh`] → the hosts.

pub mod addresses;
pub mod artefacts;
pub mod build;
pub mod config;
pub mod log;
pub mod model;
pub mod remote;
pub mod ssh;
pub mod vcs;
pub mod window;
