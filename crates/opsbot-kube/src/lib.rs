//! Kubernetes for opsbot (issue 17): clusters configured as `kind = "kubernetes"`
//! providers, an in-memory pool of their namespaces, workloads, pods and nodes kept
//! current by watches (`watch.rs`, `pool/`), the change history of workloads and nodes
//! (`changes.rs`), the operations on workloads (`ops/`), and the chat commands
//! (`chat.rs`, worded in `render.rs`) and menu sources (`menu.rs`) of a registered
//! subsystem.
//!
//! Scope paths are `provider/cluster/namespace/name`, so role globs such as
//! `prod-k8s/*/payments/*` apply; nodes are at `provider/cluster`.

pub mod changes;
pub mod chat;
mod client;
pub mod cluster;
pub mod config;
mod error;
mod kube;
pub mod menu;
pub mod ops;
pub mod pool;
pub mod probe;
pub mod render;
pub mod resolve;
mod watch;

pub use crate::kube::{Kube, NodeRow, PodRow, Target, Watches, WorkloadRow};
pub use chat::{KubeCommands, COMMANDS};
pub use cluster::{Cluster, ClusterState};
pub use config::{Config, Settings};
pub use error::{Error, Result};
pub use menu::KubeMenu;
pub use probe::RolloutProbe;

use std::sync::Arc;

/// The subsystem the engine registers: the chat commands and the menu sources.
pub struct KubeSubsystem(pub Arc<Kube>);

impl opsbot_core::Subsystem for KubeSubsystem {
    fn register(self: Arc<Self>, registry: &mut opsbot_core::Registry) {
        registry.commands(Arc::new(KubeCommands::new(self.0.clone())));
        registry.menu_source(Arc::new(KubeMenu::new(self.0.clone())));
        registry.job_probe(Arc::new(RolloutProbe::new(self.0.clone())));
    }
}
