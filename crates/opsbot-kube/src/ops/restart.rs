//! Rollout restart, as `kubectl rollout restart` does it: a new value of the pod
//! template's `kubectl.kubernetes.io/restartedAt` annotation makes a new revision,
//! which rolls out like any other; then the rollout is followed to its end.

use super::{claim, fetch, wait_rollout, OpError, Progress, Refusal};
use crate::kube::Target;
use crate::pool::{Workload, WorkloadKind};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Patch, PatchParams};
use kube::Api;

pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Checks a restart against the workload as the pool has it: a paused Deployment
/// cannot roll (kubectl refuses it too).
pub fn check(w: &Workload) -> Result<(), Refusal> {
    if w.paused {
        return Err(Refusal::Paused);
    }
    Ok(())
}

pub async fn restart(
    t: &Target,
    source: &str,
    progress: Progress<'_>,
) -> Result<Workload, OpError> {
    let w = fetch(t).await?;
    check(&w).map_err(OpError::Refused)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}
    });
    claim(t, source);
    let client = t.cluster.client.clone();
    let pp = PatchParams::default();
    match t.kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client, &t.namespace)
                .patch(&t.name, &pp, &Patch::Strategic(&patch))
                .await?;
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client, &t.namespace)
                .patch(&t.name, &pp, &Patch::Strategic(&patch))
                .await?;
        }
    }
    wait_rollout(t, t.cluster.settings.rollout_timeout, progress).await
}
