//! What the pool keeps of each Kubernetes object: the few fields chat, the REST API
//! and the change history read, taken from the API objects as they arrive.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Serialize;

/// The revision annotation the Deployment controller keeps on a Deployment and its
/// ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// The change history's `object_kind`.
    pub fn change_kind(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "k8s-deployment",
            WorkloadKind::StatefulSet => "k8s-statefulset",
        }
    }
}

/// A Deployment or StatefulSet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// spec.replicas
    pub desired: i32,
    /// status.replicas: pods that exist, old and new.
    pub current: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The containers' images, in order.
    pub images: Vec<String>,
    /// The Deployment's revision annotation, or the StatefulSet's update revision.
    pub revision: Option<String>,
    pub paused: bool,
    pub conditions: Vec<Condition>,
    pub generation: i64,
    pub observed_generation: i64,
    /// StatefulSet only: the revision its pods run and the one they move to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Where a workload's rollout is, as `kubectl rollout status` decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Rollout {
    /// Every replica updated and available.
    Complete,
    /// The controller has not seen the latest spec yet.
    Pending,
    /// Still going: `updated` of `desired` new replicas, `available` available.
    Progressing {
        updated: i32,
        desired: i32,
        available: i32,
        /// Old replicas not yet gone.
        old: i32,
    },
    /// spec.paused: no rollout proceeds.
    Paused,
    /// The controller gave up (ProgressDeadlineExceeded).
    Failed { message: String },
}

impl Workload {
    /// The rollout's state, by kubectl's rules.
    pub fn rollout(&self) -> Rollout {
        if self.paused {
            return Rollout::Paused;
        }
        if self.observed_generation < self.generation {
            return Rollout::Pending;
        }
        if let Some(c) = self.conditions.iter().find(|c| {
            c.kind == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        }) {
            return Rollout::Failed {
                message: c.message.clone().unwrap_or_default(),
            };
        }
        let progressing = Rollout::Progressing {
            updated: self.updated,
            desired: self.desired,
            available: self.available,
            old: (self.current - self.updated).max(0),
        };
        match self.kind {
            WorkloadKind::Deployment => {
                if self.updated < self.desired
                    || self.current > self.updated
                    || self.available < self.updated
                {
                    return progressing;
                }
            }
            WorkloadKind::StatefulSet => {
                let moved =
                    self.current_revision.is_none() || self.current_revision == self.revision;
                if self.ready < self.desired || self.current != self.desired || !moved {
                    return progressing;
                }
            }
        }
        Rollout::Complete
    }

    /// Mid-rollout: a template change is still rolling (a scale alone is not one:
    /// its new pods are of the newest ReplicaSet, so old ones exist only in a rollout).
    pub fn mid_rollout(&self) -> bool {
        if self.observed_generation < self.generation {
            return false;
        }
        match self.kind {
            WorkloadKind::Deployment => {
                self.current > self.updated || self.updated < self.desired.min(self.current)
            }
            WorkloadKind::StatefulSet => {
                self.current_revision.is_some() && self.current_revision != self.revision
            }
        }
    }

    pub fn from_deployment(d: &Deployment) -> Option<Workload> {
        let meta = &d.metadata;
        let spec = d.spec.as_ref()?;
        let status = d.status.clone().unwrap_or_default();
        Some(Workload {
            kind: WorkloadKind::Deployment,
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            desired: spec.replicas.unwrap_or(1),
            current: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            images: images(spec.template.spec.as_ref()),
            revision: annotation(meta, REVISION_ANNOTATION),
            paused: spec.paused.unwrap_or(false),
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| Condition {
                    kind: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            current_revision: None,
        })
    }

    pub fn from_statefulset(s: &StatefulSet) -> Option<Workload> {
        let meta = &s.metadata;
        let spec = s.spec.as_ref()?;
        let status = s.status.clone().unwrap_or_default();
        Some(Workload {
            kind: WorkloadKind::StatefulSet,
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            desired: spec.replicas.unwrap_or(1),
            current: status.replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            images: images(spec.template.spec.as_ref()),
            revision: status.update_revision,
            paused: false,
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| Condition {
                    kind: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            current_revision: status.current_revision,
        })
    }
}

/// A pod, with the workload that owns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub node: Option<String>,
    pub restarts: i32,
    pub ready: bool,
    /// The Deployment (through its ReplicaSet) or StatefulSet the pod belongs to.
    pub owner: Option<(WorkloadKind, String)>,
    pub created: Option<DateTime<Utc>>,
}

impl PodInfo {
    pub fn from_pod(p: &Pod) -> Option<PodInfo> {
        let meta = &p.metadata;
        let status = p.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let restarts = status
            .container_statuses
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| c.restart_count)
            .sum();
        Some(PodInfo {
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            phase: status.phase.unwrap_or_else(|| "Pending".into()),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            restarts,
            ready,
            owner: owner_workload(meta),
            created: meta.creation_timestamp.as_ref().map(to_chrono),
        })
    }
}

/// The workload behind a pod: a StatefulSet directly, a Deployment through its
/// ReplicaSet `<deployment>-<pod-template-hash>`.
fn owner_workload(meta: &ObjectMeta) -> Option<(WorkloadKind, String)> {
    let owner = meta
        .owner_references
        .as_deref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.as_deref()?.first())?;
    match owner.kind.as_str() {
        "StatefulSet" => Some((WorkloadKind::StatefulSet, owner.name.clone())),
        "ReplicaSet" => {
            let hash = meta
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .map(|h| format!("-{h}"));
            let name = match hash {
                Some(h) if owner.name.ends_with(&h) => {
                    owner.name[..owner.name.len() - h.len()].to_string()
                }
                _ => owner.name.rsplit_once('-')?.0.to_string(),
            };
            Some((WorkloadKind::Deployment, name))
        }
        _ => None,
    }
}

/// A node: ready, capacity and roles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub ready: bool,
    pub cpu: String,
    pub memory: String,
    pub roles: Vec<String>,
}

impl NodeInfo {
    pub fn from_node(n: &Node) -> Option<NodeInfo> {
        let status = n.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let capacity = status.capacity.unwrap_or_default();
        let cap = |k: &str| capacity.get(k).map(|q| q.0.clone()).unwrap_or_default();
        let roles = n
            .metadata
            .labels
            .as_ref()
            .map(|l| {
                l.keys()
                    .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Some(NodeInfo {
            name: n.metadata.name.clone()?,
            ready,
            cpu: cap("cpu"),
            memory: cap("memory"),
            roles,
        })
    }
}

fn images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

pub fn to_chrono(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}
