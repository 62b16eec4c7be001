//! [`Kube`]: every configured cluster of every kubernetes provider, the object chat,
//! the menu and the REST API go through. Reads come from the pool (rows for the API,
//! lookups for chat); operations are in `ops/`.

use crate::changes::{Recorder, RecorderTask};
use crate::cluster::{Cluster, ClusterState};
use crate::config::Config;
use crate::error::Result;
use crate::ops;
use crate::pool::{NodeInfo, PodInfo, Workload, WorkloadKind};
use crate::resolve;
use opsbot_store::{ChangeLog, StateStore};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct Kube {
    clusters: Vec<Arc<Cluster>>,
    recorder: Recorder,
    task: Mutex<Option<RecorderTask>>,
}

/// A workload row for the REST API and the web UI.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadRow {
    pub provider: String,
    pub cluster: String,
    #[serde(flatten)]
    pub workload: Workload,
    pub rollout: crate::pool::Rollout,
    /// The cluster's data is stale (its API unreachable or refusing).
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodRow {
    pub provider: String,
    pub cluster: String,
    #[serde(flatten)]
    pub pod: PodInfo,
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub provider: String,
    pub cluster: String,
    #[serde(flatten)]
    pub node: NodeInfo,
    pub stale: bool,
}

/// Watches running; dropping this stops them.
pub struct Watches(Vec<JoinHandle<()>>);

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A workload found by name: its cluster and where it is.
#[derive(Clone)]
pub struct Target {
    pub cluster: Arc<Cluster>,
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl Target {
    /// `provider/cluster/ns/name`.
    pub fn scope(&self) -> String {
        self.cluster.scope(&self.namespace, &self.name)
    }

    /// `cluster/ns/name`, as users read it and scale limits match it.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.cluster.name, self.namespace, self.name)
    }

    /// The workload as the pool has it now.
    pub fn in_pool(&self) -> Option<Workload> {
        self.cluster
            .read()
            .workload(&self.namespace, &self.name, Some(self.kind))
            .cloned()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.kind, self.scope())
    }
}

impl Kube {
    /// Every cluster of the given `(provider name, section)` pairs. Builds clients
    /// only: nothing talks to an API server until [`Kube::start`].
    pub async fn connect(
        sections: &[(String, Config)],
        changes: Arc<dyn ChangeLog>,
        state: Arc<dyn StateStore>,
    ) -> Result<Kube> {
        let (recorder, task) = Recorder::new(changes, state);
        let mut clusters = Vec::new();
        for (provider, config) in sections {
            let settings = Arc::new(config.settings());
            for c in config.cluster_list() {
                let client = crate::client::connect(&c.name, &c.connection()).await?;
                clusters.push(Arc::new(Cluster::new(
                    provider,
                    &c.name,
                    client,
                    settings.clone(),
                    recorder.clone(),
                )));
            }
        }
        Ok(Kube {
            clusters,
            recorder,
            task: Mutex::new(Some(task)),
        })
    }

    /// The same clusters with other settings (tests: a short rollout timeout).
    pub fn with_settings(self, settings: crate::config::Settings) -> Kube {
        let settings = Arc::new(settings);
        let clusters = self
            .clusters
            .iter()
            .map(|c| {
                Arc::new(Cluster::new(
                    &c.provider,
                    &c.name,
                    c.client.clone(),
                    settings.clone(),
                    self.recorder.clone(),
                ))
            })
            .collect();
        Kube { clusters, ..self }
    }

    /// Starts the watches of every cluster and the change recorder. Call once; the
    /// watches run until the returned value is dropped.
    pub fn start(&self) -> Watches {
        let mut tasks: Vec<JoinHandle<()>> =
            self.clusters.iter().flat_map(crate::watch::start).collect();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            tasks.push(tokio::spawn(task.run()));
        }
        Watches(tasks)
    }

    /// Waits (up to `timeout`) until no cluster is still on its first sync, so a
    /// command sent right after start (`opsbot chat -c …`) reads a listed pool; a
    /// cluster that fails meanwhile counts as settled (stale).
    pub async fn settled(&self, timeout: std::time::Duration) {
        let started = matches!(self.task.lock(), Ok(t) if t.is_none());
        if !started {
            // Nothing will list.
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for c in &self.clusters {
            let mut changed = c.subscribe();
            while matches!(c.health(), crate::pool::Health::Syncing) {
                if tokio::time::timeout_at(deadline, changed.changed())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }

    pub fn clusters(&self) -> Vec<ClusterState> {
        self.clusters.iter().map(|c| c.state()).collect()
    }

    pub(crate) fn cluster_list(&self) -> &[Arc<Cluster>] {
        &self.clusters
    }

    /// Deployments and StatefulSets (of namespace `ns`, or all) whose scope path
    /// `visible` admits.
    pub fn workloads(&self, ns: Option<&str>, visible: &dyn Fn(&str) -> bool) -> Vec<WorkloadRow> {
        let mut rows = Vec::new();
        self.each_workload(ns, visible, &mut |c, stale, w| {
            rows.push(WorkloadRow {
                provider: c.provider.clone(),
                cluster: c.name.clone(),
                rollout: w.rollout(),
                workload: w.clone(),
                stale,
            })
        });
        rows
    }

    /// Calls `f` with each visible workload as the pool holds it (borrowed, under the
    /// cluster's read lock): how chat lists them without copying the pool.
    pub fn each_workload(
        &self,
        ns: Option<&str>,
        visible: &dyn Fn(&str) -> bool,
        f: &mut dyn FnMut(&Cluster, bool, &Workload),
    ) {
        for c in &self.clusters {
            let stale = c.is_stale();
            let index = c.read();
            let namespaces: Box<dyn Iterator<Item = (&String, &crate::pool::Namespace)>> = match ns
            {
                Some(want) => Box::new(index.namespaces.get_key_value(want).into_iter()),
                None => Box::new(index.namespaces.iter()),
            };
            for (name, n) in namespaces {
                for w in n.workloads.values() {
                    if visible(&c.scope(name, &w.name)) {
                        f(c, stale, w);
                    }
                }
            }
        }
    }

    /// Pods (of namespace `ns`, or all) whose scope path `visible` admits.
    pub fn pods(&self, ns: Option<&str>, visible: &dyn Fn(&str) -> bool) -> Vec<PodRow> {
        let mut rows = Vec::new();
        for c in &self.clusters {
            let stale = c.is_stale();
            let index = c.read();
            for (name, n) in &index.namespaces {
                if ns.is_some_and(|want| want != name) {
                    continue;
                }
                for p in n.pods.values() {
                    if visible(&c.scope(name, &p.name)) {
                        rows.push(PodRow {
                            provider: c.provider.clone(),
                            cluster: c.name.clone(),
                            pod: p.clone(),
                            stale,
                        });
                    }
                }
            }
        }
        rows
    }

    /// Nodes of every cluster whose `provider/cluster` `visible` admits.
    pub fn nodes(&self, visible: &dyn Fn(&str) -> bool) -> Vec<NodeRow> {
        let mut rows = Vec::new();
        for c in &self.clusters {
            if !visible(&c.path()) {
                continue;
            }
            let stale = c.is_stale();
            rows.extend(c.read().nodes.values().map(|n| NodeRow {
                provider: c.provider.clone(),
                cluster: c.name.clone(),
                node: n.clone(),
                stale,
            }));
        }
        rows
    }

    /// Namespaces with something `visible` admits in them (or the whole namespace
    /// `provider/cluster/ns/*` admitted), as `(cluster, namespace)`.
    pub fn namespaces(&self, visible: &dyn Fn(&str) -> bool) -> Vec<(Arc<Cluster>, String)> {
        let mut out = Vec::new();
        for c in &self.clusters {
            let index = c.read();
            for (name, n) in &index.namespaces {
                let any = visible(&c.scope(name, "*"))
                    || n.workloads
                        .values()
                        .any(|w| visible(&c.scope(name, &w.name)));
                if any {
                    out.push((c.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// The workload `text` names (`name`, `ns/name`, `cluster/ns/name`,
    /// `provider/cluster/ns/name`) among those `visible` admits.
    pub fn find_workload(
        &self,
        text: &str,
        visible: &dyn Fn(&str) -> bool,
    ) -> resolve::Found<Target> {
        resolve::workload(&self.clusters, text, visible)
    }

    /// The pod `text` names (`ns/pod` and the longer forms), or the newest pod of the
    /// workload it names.
    pub fn find_pod(
        &self,
        text: &str,
        visible: &dyn Fn(&str) -> bool,
    ) -> resolve::Found<(Arc<Cluster>, PodInfo)> {
        resolve::pod(&self.clusters, text, visible)
    }
}

/// The operations, for the REST API and the web UI (chat calls the same functions):
/// each takes a [`Target`] found through [`Kube::find_workload`] with the caller's
/// scopes, `source` for the change history (`api:<user>`), and a progress callback.
impl Kube {
    pub fn plan_scale(
        &self,
        t: &Target,
        change: ops::ReplicaChange,
    ) -> Result<ops::ScalePlan, ops::OpError> {
        ops::scale::plan(t, change)
    }

    pub async fn scale(
        &self,
        t: &Target,
        change: ops::ReplicaChange,
        source: &str,
        progress: ops::Progress<'_>,
    ) -> Result<Workload, ops::OpError> {
        ops::scale::scale(t, change, source, progress).await
    }

    pub async fn restart(
        &self,
        t: &Target,
        source: &str,
        progress: ops::Progress<'_>,
    ) -> Result<Workload, ops::OpError> {
        ops::restart::restart(t, source, progress).await
    }

    pub async fn plan_rollback(
        &self,
        t: &Target,
        revision: Option<i64>,
    ) -> Result<ops::rollback::RollbackPlan, ops::OpError> {
        ops::rollback::plan(t, revision).await
    }

    pub async fn rollback(
        &self,
        t: &Target,
        revision: Option<i64>,
        source: &str,
        progress: ops::Progress<'_>,
    ) -> Result<(ops::rollback::RollbackPlan, Workload), ops::OpError> {
        ops::rollback::rollback(t, revision, source, progress).await
    }

    pub async fn rollout_status(
        &self,
        t: &Target,
        timeout: Option<std::time::Duration>,
        progress: ops::Progress<'_>,
    ) -> Result<Workload, ops::OpError> {
        ops::status::rollout_status(t, timeout, progress).await
    }

    /// The log tail of a pod found through [`Kube::find_pod`].
    pub async fn logs(
        &self,
        cluster: &Cluster,
        pod: &PodInfo,
        lines: Option<usize>,
    ) -> Result<ops::LogTail> {
        ops::logs::logs(cluster, pod, lines).await
    }

    pub async fn events(
        &self,
        cluster: &Cluster,
        ns: &str,
        object: Option<&str>,
    ) -> Result<Vec<ops::EventRow>> {
        ops::events::events(cluster, ns, object).await
    }
}
