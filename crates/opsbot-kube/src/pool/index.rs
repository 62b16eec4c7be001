//! One cluster's read model, indexed by namespace so a read walks only what it shows
//! (a namespace's workloads, a workload's pods) and never copies the pool.

use super::model::{NodeInfo, PodInfo, Workload, WorkloadKind};
use std::collections::BTreeMap;

/// What one namespace holds.
#[derive(Debug, Default, Clone)]
pub struct Namespace {
    /// By name, then kind (a Deployment and a StatefulSet may share a name).
    pub workloads: BTreeMap<(String, WorkloadKind), Workload>,
    pub pods: BTreeMap<String, PodInfo>,
    /// Seen by the namespace watch (or configured); a namespace known only through its
    /// objects is `false` until then.
    pub listed: bool,
}

/// Everything the pool knows of one cluster.
#[derive(Debug, Default, Clone)]
pub struct ClusterIndex {
    pub namespaces: BTreeMap<String, Namespace>,
    pub nodes: BTreeMap<String, NodeInfo>,
}

impl ClusterIndex {
    fn ns(&mut self, name: &str) -> &mut Namespace {
        self.namespaces.entry(name.to_string()).or_default()
    }

    pub fn workload(&self, ns: &str, name: &str, kind: Option<WorkloadKind>) -> Option<&Workload> {
        let n = self.namespaces.get(ns)?;
        match kind {
            Some(k) => n.workloads.get(&(name.to_string(), k)),
            None => n
                .workloads
                .range((name.to_string(), WorkloadKind::Deployment)..)
                .take_while(|((n, _), _)| n == name)
                .map(|(_, w)| w)
                .next(),
        }
    }

    /// The pods of a workload, by the owner each pod names.
    pub fn pods_of<'a>(&'a self, w: &'a Workload) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.namespaces
            .get(&w.namespace)
            .into_iter()
            .flat_map(|n| n.pods.values())
            .filter(move |p| {
                p.owner
                    .as_ref()
                    .is_some_and(|(k, name)| *k == w.kind && *name == w.name)
            })
    }

    pub fn upsert_workload(&mut self, w: Workload) {
        let key = (w.name.clone(), w.kind);
        self.ns(&w.namespace.clone()).workloads.insert(key, w);
    }

    pub fn remove_workload(&mut self, kind: WorkloadKind, ns: &str, name: &str) {
        if let Some(n) = self.namespaces.get_mut(ns) {
            n.workloads.remove(&(name.to_string(), kind));
        }
    }

    /// Replaces the workloads of `kind` (in namespace `only`, or everywhere) by a
    /// fresh list.
    pub fn replace_workloads(
        &mut self,
        kind: WorkloadKind,
        only: Option<&str>,
        list: Vec<Workload>,
    ) {
        for (name, n) in self.namespaces.iter_mut() {
            if only.is_none_or(|o| o == name) {
                n.workloads.retain(|(_, k), _| *k != kind);
            }
        }
        for w in list {
            self.upsert_workload(w);
        }
    }

    pub fn upsert_pod(&mut self, p: PodInfo) {
        self.ns(&p.namespace.clone()).pods.insert(p.name.clone(), p);
    }

    pub fn remove_pod(&mut self, ns: &str, name: &str) {
        if let Some(n) = self.namespaces.get_mut(ns) {
            n.pods.remove(name);
        }
    }

    pub fn replace_pods(&mut self, only: Option<&str>, list: Vec<PodInfo>) {
        for (name, n) in self.namespaces.iter_mut() {
            if only.is_none_or(|o| o == name) {
                n.pods.clear();
            }
        }
        for p in list {
            self.upsert_pod(p);
        }
    }

    pub fn set_namespace(&mut self, name: &str, listed: bool) {
        if listed {
            self.ns(name).listed = true;
        } else if let Some(n) = self.namespaces.get_mut(name) {
            // A deleted namespace takes its objects with it; their own watches say so
            // too, but the namespace line must not linger.
            n.listed = false;
            if n.workloads.is_empty() && n.pods.is_empty() {
                self.namespaces.remove(name);
            }
        }
    }

    pub fn replace_namespaces(&mut self, names: &[String]) {
        for n in self.namespaces.values_mut() {
            n.listed = false;
        }
        for name in names {
            self.ns(name).listed = true;
        }
        self.namespaces
            .retain(|_, n| n.listed || !n.workloads.is_empty() || !n.pods.is_empty());
    }

    pub fn replace_nodes(&mut self, list: Vec<NodeInfo>) {
        self.nodes = list.into_iter().map(|n| (n.name.clone(), n)).collect();
    }

    /// Counts for the state line: namespaces, workloads, pods, nodes.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let (w, p) = self.namespaces.values().fold((0, 0), |(w, p), n| {
            (w + n.workloads.len(), p + n.pods.len())
        });
        (self.namespaces.len(), w, p, self.nodes.len())
    }
}
