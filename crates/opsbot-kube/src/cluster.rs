//! One configured cluster: its client, its part of the pool, its health, and the
//! signal operations wait on while pods come and go.

use crate::changes::Recorder;
use crate::config::Settings;
use crate::pool::{ClusterIndex, Health, StreamStates};
use serde::Serialize;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;

pub struct Cluster {
    /// The `[[providers]]` name: the first segment of scope paths.
    pub provider: String,
    pub name: String,
    pub(crate) client: kube::Client,
    pub settings: Arc<Settings>,
    index: RwLock<ClusterIndex>,
    streams: Mutex<StreamStates>,
    /// Bumped on every change the watches apply.
    changed: watch::Sender<u64>,
    pub(crate) recorder: Recorder,
    /// The API refuses to list nodes to this cluster's credentials (403).
    nodes_forbidden: std::sync::atomic::AtomicBool,
}

/// A cluster's state, as the REST API and 工作负载 show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterState {
    pub provider: String,
    pub cluster: String,
    #[serde(flatten)]
    pub health: Health,
    pub namespaces: usize,
    pub workloads: usize,
    pub pods: usize,
    pub nodes: usize,
}

impl Cluster {
    pub(crate) fn new(
        provider: &str,
        name: &str,
        client: kube::Client,
        settings: Arc<Settings>,
        recorder: Recorder,
    ) -> Cluster {
        let index = ClusterIndex {
            // Configured namespaces are known before they are listed.
            namespaces: settings
                .namespaces
                .iter()
                .map(|n| (n.clone(), crate::pool::Namespace::default()))
                .collect(),
            ..ClusterIndex::default()
        };
        Cluster {
            provider: provider.to_string(),
            name: name.to_string(),
            client,
            settings,
            index: RwLock::new(index),
            streams: Mutex::new(StreamStates::default()),
            changed: watch::channel(0).0,
            recorder,
            nodes_forbidden: Default::default(),
        }
    }

    /// `provider/cluster`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.provider, self.name)
    }

    /// The scope path of an object in `ns`: `provider/cluster/ns/name`.
    pub fn scope(&self, ns: &str, name: &str) -> String {
        format!("{}/{}/{ns}/{name}", self.provider, self.name)
    }

    /// The pool of this cluster, read-locked for the caller's read: reads borrow it,
    /// they never copy it. Poisoning cannot lose data here (every writer leaves the
    /// index whole), so a poisoned lock is taken as is.
    pub fn read(&self) -> RwLockReadGuard<'_, ClusterIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, ClusterIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn touched(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// A receiver woken by every change the watches apply.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn health(&self) -> Health {
        self.streams().health()
    }

    pub(crate) fn streams(&self) -> std::sync::MutexGuard<'_, StreamStates> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> ClusterState {
        let (namespaces, workloads, pods, nodes) = self.read().counts();
        ClusterState {
            provider: self.provider.clone(),
            cluster: self.name.clone(),
            health: self.health(),
            namespaces,
            workloads,
            pods,
            nodes,
        }
    }

    pub(crate) fn set_nodes_forbidden(&self, forbidden: bool) {
        self.nodes_forbidden
            .store(forbidden, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the credentials may not list nodes (a namespaced Role): 节点 says so.
    pub fn nodes_forbidden(&self) -> bool {
        self.nodes_forbidden
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the pool's data for this cluster is stale (shown, but marked).
    pub fn is_stale(&self) -> bool {
        matches!(self.health(), Health::Stale { .. })
    }
}
