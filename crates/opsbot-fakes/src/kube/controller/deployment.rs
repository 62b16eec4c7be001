//! The deployment controller: one ReplicaSet per pod template (named by its hash and
//! numbered by revision), the RollingUpdate strategy between them, and the status
//! `kubectl rollout status` reads; and the ReplicaSet controller under it.

use serde_json::{json, Value};

use super::pods::{create_pod, delete_pod};
use super::{
    int, involved, is_ready, name, owned, owner_ref, put_count, revision, uid, PASSES, REVISION,
};
use crate::kube::events;
use crate::kube::objects::{name_suffix, template_hash};
use crate::kube::resources::Kind;
use crate::kube::store::{now_rfc3339, Store};

/// Sets a ReplicaSet's replicas, with the deployment controller's event.
fn scale_rs(st: &mut Store, ns: &str, deploy: &Value, rs_name: &str, to: i64) -> bool {
    let Some(mut rs) = st.get(Kind::ReplicaSet, ns, rs_name).cloned() else {
        return false;
    };
    let from = int(&rs["spec"]["replicas"]);
    if from == to {
        return false;
    }
    rs["spec"]["replicas"] = json!(to);
    rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
        json!(deploy["spec"]["replicas"].as_i64().unwrap_or(1).to_string());
    st.update(Kind::ReplicaSet, rs);
    let direction = if to > from { "up" } else { "down" };
    events::record(
        st,
        involved(Kind::Deployment, ns, deploy),
        "deployment-controller",
        "ScalingReplicaSet",
        format!("Scaled {direction} replica set {rs_name} to {to} from {from}"),
    );
    true
}

fn create_rs(st: &mut Store, ns: &str, d: &Value, hash: &str, revision: i64) -> String {
    let rs_name = format!("{}-{hash}", name(d));
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let mut annotations = d["spec"]["template"]["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations[REVISION] = json!(revision.to_string());
    annotations["deployment.kubernetes.io/desired-replicas"] =
        json!(d["spec"]["replicas"].as_i64().unwrap_or(1).to_string());
    annotations["deployment.kubernetes.io/max-replicas"] =
        json!((d["spec"]["replicas"].as_i64().unwrap_or(1) * 5 / 4 + 1).to_string());
    if let Some(cause) = d["metadata"]["annotations"].get("kubernetes.io/change-cause") {
        annotations["kubernetes.io/change-cause"] = cause.clone();
    }
    let rs = json!({
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": owner_ref(Kind::Deployment, d),
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0},
    });
    st.create(Kind::ReplicaSet, rs);
    rs_name
}

pub(super) fn reconcile(st: &mut Store, ns: &str, dname: &str) {
    let Some(d) = st.get(Kind::Deployment, ns, dname).cloned() else {
        return;
    };
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let hash = template_hash(&d["spec"]["template"]);
    let rss = owned(st, Kind::ReplicaSet, ns, uid(&d));
    let max_rev = rss.iter().map(revision).max().unwrap_or(0);
    let matching = rss
        .iter()
        .find(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    let new_name = match matching {
        Some(rs) => {
            if !paused && revision(rs) < max_rev {
                // A rollback: the old ReplicaSet becomes the newest revision.
                let mut rs = rs.clone();
                rs["metadata"]["annotations"][REVISION] = json!((max_rev + 1).to_string());
                st.update(Kind::ReplicaSet, rs);
            }
            name(rs).to_string()
        }
        None if !paused => create_rs(st, ns, &d, &hash, max_rev + 1),
        None => match rss.iter().max_by_key(|rs| revision(rs)) {
            Some(rs) => name(rs).to_string(),
            None => return,
        },
    };
    // Each step may let the next one go further (old pods down, new ones up) before
    // any pod's readiness changes; a bounded number of steps settles it.
    for _ in 0..PASSES * 2 {
        let changed = if paused {
            scale_rs(st, ns, &d, &new_name, desired)
        } else {
            rolling_step(st, ns, &d, &new_name, desired)
        };
        for rs in owned(st, Kind::ReplicaSet, ns, uid(&d)) {
            replicaset(st, ns, name(&rs));
        }
        if !changed {
            break;
        }
    }
    let all = owned(st, Kind::ReplicaSet, ns, uid(&d));
    deployment_status(st, ns, &d, &all, &new_name, desired, paused);
}

fn ready_pods(st: &Store, ns: &str, rs: &Value) -> i64 {
    owned(st, Kind::Pod, ns, uid(rs))
        .iter()
        .filter(|p| is_ready(p))
        .count() as i64
}

/// One step of the RollingUpdate strategy with the default 25% maxSurge (rounded up)
/// and maxUnavailable (rounded down): scale the new ReplicaSet up within the surge,
/// then the old ones down, unready pods first, keeping the minimum available.
/// Returns whether any ReplicaSet's replicas changed.
fn rolling_step(st: &mut Store, ns: &str, d: &Value, new_name: &str, desired: i64) -> bool {
    let (surge, mut unavailable) = ((desired + 3) / 4, desired / 4);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let Some(new_rs) = st.get(Kind::ReplicaSet, ns, new_name).cloned() else {
        return false;
    };
    let mut olds: Vec<Value> = owned(st, Kind::ReplicaSet, ns, uid(d))
        .into_iter()
        .filter(|rs| name(rs) != new_name && int(&rs["spec"]["replicas"]) > 0)
        .collect();
    // Oldest first, as the real controller scales them down.
    olds.sort_by_key(revision);
    let old_total: i64 = olds.iter().map(|rs| int(&rs["spec"]["replicas"])).sum();
    let new_current = int(&new_rs["spec"]["replicas"]);
    let new_target = if new_current > desired {
        desired
    } else {
        new_current.max(desired.min(desired + surge - old_total))
    };
    let mut changed = scale_rs(st, ns, d, new_name, new_target);
    if olds.is_empty() {
        return changed;
    }
    let new_ready = ready_pods(st, ns, &new_rs);
    let min_available = desired - unavailable;
    let mut max_down = old_total + new_target - min_available - (new_target - new_ready);
    // Unready old pods go first: they serve nobody.
    let mut old_ready_total = 0;
    for old in &mut olds {
        let ready = ready_pods(st, ns, old);
        old_ready_total += ready;
        let current = int(&old["spec"]["replicas"]);
        let cut = (current - ready).min(max_down).max(0);
        if cut > 0 {
            changed |= scale_rs(st, ns, d, name(old), current - cut);
            old["spec"]["replicas"] = json!(current - cut);
            max_down -= cut;
        }
    }
    let mut down = old_ready_total + new_ready - min_available;
    for old in &olds {
        if down <= 0 {
            break;
        }
        let current = int(&old["spec"]["replicas"]);
        let cut = current.min(down);
        changed |= scale_rs(st, ns, d, name(old), current - cut);
        down -= cut;
    }
    changed
}

fn replicaset(st: &mut Store, ns: &str, rs_name: &str) {
    let Some(rs) = st.get(Kind::ReplicaSet, ns, rs_name).cloned() else {
        return;
    };
    let want = int(&rs["spec"]["replicas"]);
    let mut pods = owned(st, Kind::Pod, ns, uid(&rs));
    let have = pods.len() as i64;
    for _ in have..want {
        let pod_name = loop {
            st.name_counter += 1;
            let candidate = format!("{rs_name}-{}", name_suffix(st.name_counter));
            if st.get(Kind::Pod, ns, &candidate).is_none() {
                break candidate;
            }
        };
        create_pod(
            st,
            ns,
            Kind::ReplicaSet,
            &rs,
            &pod_name,
            &rs["spec"]["template"],
            &[],
        );
    }
    if have > want {
        // Unready pods go first, then the newest.
        pods.sort_by(|a, b| {
            is_ready(a).cmp(&is_ready(b)).then_with(|| {
                b["metadata"]["creationTimestamp"]
                    .as_str()
                    .cmp(&a["metadata"]["creationTimestamp"].as_str())
            })
        });
        for pod in pods.iter().take((have - want) as usize) {
            delete_pod(st, ns, name(pod));
            events::record(
                st,
                involved(Kind::ReplicaSet, ns, &rs),
                "replicaset-controller",
                "SuccessfulDelete",
                format!("Deleted pod: {}", name(pod)),
            );
        }
    }
    let pods = owned(st, Kind::Pod, ns, uid(&rs));
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let Some(mut rs) = st.get(Kind::ReplicaSet, ns, rs_name).cloned() else {
        return;
    };
    let mut status = json!({"replicas": pods.len()});
    put_count(&mut status, "fullyLabeledReplicas", pods.len() as i64);
    put_count(&mut status, "readyReplicas", ready);
    put_count(&mut status, "availableReplicas", ready);
    status["observedGeneration"] = rs["metadata"]["generation"].clone();
    rs["status"] = status;
    st.update(Kind::ReplicaSet, rs);
}

/// A condition, keeping its transition time while its status stays.
fn condition(old: &Value, kind: &str, status: &str, reason: &str, message: String) -> Value {
    let now = now_rfc3339();
    let previous = old["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let same = previous.is_some_and(|p| p["status"] == status && p["reason"] == reason);
    let transition = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let update = match previous {
        Some(p) if same => p["lastUpdateTime"].clone(),
        _ => json!(now),
    };
    json!({"type": kind, "status": status, "lastUpdateTime": update,
           "lastTransitionTime": transition, "reason": reason, "message": message})
}

fn deployment_status(
    st: &mut Store,
    ns: &str,
    d: &Value,
    rss: &[Value],
    new_name: &str,
    desired: i64,
    paused: bool,
) {
    let sum = |key: &str| rss.iter().map(|rs| int(&rs["status"][key])).sum::<i64>();
    let replicas = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let new_rs = rss.iter().find(|rs| name(rs) == new_name);
    let updated = new_rs.map(|rs| int(&rs["status"]["replicas"])).unwrap_or(0);
    let new_revision = new_rs.map(revision).unwrap_or(0);
    let Some(mut d) = st.get(Kind::Deployment, ns, name(d)).cloned() else {
        return;
    };
    let max_unavailable = desired / 4;
    let available_cond = if available >= desired - max_unavailable {
        condition(
            &d,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            &d,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let complete = updated == desired && replicas == desired && available == desired;
    let progressing = if paused {
        condition(
            &d,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
        )
    } else if complete {
        condition(
            &d,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else {
        condition(
            &d,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    };
    let mut status = json!({"observedGeneration": d["metadata"]["generation"]});
    put_count(&mut status, "replicas", replicas);
    put_count(&mut status, "updatedReplicas", updated);
    put_count(&mut status, "readyReplicas", ready);
    put_count(&mut status, "availableReplicas", available);
    put_count(
        &mut status,
        "unavailableReplicas",
        (desired - available).max(0),
    );
    status["conditions"] = json!([available_cond, progressing]);
    d["status"] = status;
    if new_revision > 0 {
        d["metadata"]["annotations"][REVISION] = json!(new_revision.to_string());
    }
    st.update(Kind::Deployment, d);
}
