//! Rollout undo, kubectl's way: the Deployment's ReplicaSets carry the revision
//! annotation; the template of the wanted revision's ReplicaSet (without its
//! `pod-template-hash` label) replaces the Deployment's through a JSON patch, which the
//! controller turns into a new revision. A paused Deployment is refused, as kubectl
//! refuses it; StatefulSets have no ReplicaSet history here.

use super::{claim, wait_rollout, OpError, Progress, Refusal};
use crate::kube::Target;
use crate::pool::model::REVISION_ANNOTATION;
use crate::pool::{Workload, WorkloadKind};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;

/// The revision a rollback goes to, and the one it leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    pub from: Option<i64>,
    pub to: i64,
    pub images: Vec<String>,
}

struct History {
    deployment: Deployment,
    /// (revision, ReplicaSet), oldest first.
    sets: Vec<(i64, ReplicaSet)>,
}

fn revision_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

async fn history(t: &Target) -> Result<History, OpError> {
    if t.kind != WorkloadKind::Deployment {
        return Err(OpError::Refused(Refusal::NotDeployment));
    }
    let client = t.cluster.client.clone();
    let deployment = Api::<Deployment>::namespaced(client.clone(), &t.namespace)
        .get(&t.name)
        .await?;
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let uid = deployment.metadata.uid.clone();
    let list = Api::<ReplicaSet>::namespaced(client, &t.namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let mut sets: Vec<(i64, ReplicaSet)> = list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| {
                    o.kind == "Deployment" && (Some(&o.uid) == uid.as_ref() || o.name == t.name)
                })
        })
        .filter_map(|rs| Some((revision_of(&rs.metadata)?, rs)))
        .collect();
    sets.sort_by_key(|(r, _)| *r);
    Ok(History { deployment, sets })
}

fn choose(h: &History, wanted: Option<i64>) -> Result<(Option<i64>, i64, &ReplicaSet), Refusal> {
    if h.deployment
        .spec
        .as_ref()
        .and_then(|s| s.paused)
        .unwrap_or(false)
    {
        return Err(Refusal::Paused);
    }
    let current = revision_of(&h.deployment.metadata).or(h.sets.last().map(|(r, _)| *r));
    let known: Vec<i64> = h.sets.iter().map(|(r, _)| *r).collect();
    let (to, rs) = match wanted {
        Some(w) => h
            .sets
            .iter()
            .find(|(r, _)| *r == w)
            .map(|(r, rs)| (*r, rs))
            .ok_or(Refusal::NoRevision { wanted: w, known })?,
        None => h
            .sets
            .iter()
            .rev()
            .find(|(r, _)| Some(*r) != current && current.is_none_or(|c| *r < c))
            .map(|(r, rs)| (*r, rs))
            .ok_or(Refusal::NoHistory)?,
    };
    if Some(to) == current {
        return Err(Refusal::AlreadyAt(to));
    }
    Ok((current, to, rs))
}

/// What the rollback will do (read from the API: the pool keeps no ReplicaSets).
pub async fn plan(t: &Target, wanted: Option<i64>) -> Result<RollbackPlan, OpError> {
    let h = history(t).await?;
    let (from, to, rs) = choose(&h, wanted).map_err(OpError::Refused)?;
    Ok(RollbackPlan {
        from,
        to,
        images: images(rs),
    })
}

fn images(rs: &ReplicaSet) -> Vec<String> {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn rollback(
    t: &Target,
    wanted: Option<i64>,
    source: &str,
    progress: Progress<'_>,
) -> Result<(RollbackPlan, Workload), OpError> {
    let h = history(t).await?;
    let (from, to, rs) = choose(&h, wanted).map_err(OpError::Refused)?;
    let mut template =
        rs.spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .ok_or(OpError::Refused(Refusal::NoRevision {
                wanted: to,
                known: Vec::new(),
            }))?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    let value = serde_json::to_value(&template)
        .map_err(|e| OpError::Api(crate::Error::Other(e.to_string())))?;
    let ops = serde_json::json!([{"op": "replace", "path": "/spec/template", "value": value}]);
    let patch = serde_json::from_value(ops)
        .map_err(|e| OpError::Api(crate::Error::Other(e.to_string())))?;
    claim(t, source);
    Api::<Deployment>::namespaced(t.cluster.client.clone(), &t.namespace)
        .patch(&t.name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    let plan = RollbackPlan {
        from,
        to,
        images: images(rs),
    };
    let w = wait_rollout(t, t.cluster.settings.rollout_timeout, progress).await?;
    Ok((plan, w))
}
