//! The controllers: Deployment → ReplicaSet → Pod, StatefulSet → Pod, and pods becoming
//! ready over time. They run synchronously after every write (so a client reading back
//! sees `observedGeneration` caught up, as a fast real controller manager gives) and from
//! a background task when a pod's ready time comes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::events::{self, Involved};
use super::objects::{name_suffix, template_hash};
use super::resources::Kind;
use super::store::{now_rfc3339, Store};

const REVISION: &str = "deployment.kubernetes.io/revision";
/// Passes over the dirty set per reconcile; each pass settles one level of ownership.
const PASSES: usize = 8;

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Objects of `kind` in `ns` whose controller is the object with uid `owner`.
fn owned(st: &Store, kind: Kind, ns: &str, owner: &str) -> Vec<Value> {
    st.list(kind, Some(ns))
        .filter(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner))
        })
        .map(|(_, o)| o.clone())
        .collect()
}

fn owner_ref(kind: Kind, owner: &Value) -> Value {
    json!([{
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn involved<'a>(kind: Kind, ns: &'a str, obj: &'a Value) -> Involved<'a> {
    Involved {
        kind,
        namespace: ns,
        name: name(obj),
        uid: uid(obj),
    }
}

/// Sets a count the API omits when zero (`omitempty`).
fn put_count(status: &mut Value, key: &str, n: i64) {
    if let Some(m) = status.as_object_mut() {
        if n == 0 {
            m.remove(key);
        } else {
            m.insert(key.to_string(), json!(n));
        }
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Marks the workload owning `obj` (a pod or ReplicaSet) for reconciling.
pub(crate) fn mark_owner_dirty(st: &mut Store, ns: &str, obj: &Value) {
    let Some(r) = obj["metadata"]["ownerReferences"].get(0) else {
        return;
    };
    let owner = r["name"].as_str().unwrap_or("").to_string();
    match r["kind"].as_str() {
        Some("ReplicaSet") => {
            if let Some(rs) = st.get(Kind::ReplicaSet, ns, &owner).cloned() {
                mark_owner_dirty(st, ns, &rs);
            }
        }
        Some("Deployment") => {
            st.dirty.insert((Kind::Deployment, ns.to_string(), owner));
        }
        Some("StatefulSet") => {
            st.dirty.insert((Kind::StatefulSet, ns.to_string(), owner));
        }
        _ => {}
    }
}

/// Brings every due pod to ready and every dirty workload to its desired state.
pub(crate) fn reconcile(st: &mut Store, now: Instant) {
    let due: Vec<(String, String)> = st
        .ready_at
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for (ns, pod) in due {
        st.ready_at.remove(&(ns.clone(), pod.clone()));
        set_pod_ready(st, &ns, &pod);
    }
    for _ in 0..PASSES {
        let dirty = std::mem::take(&mut st.dirty);
        if dirty.is_empty() {
            break;
        }
        for (kind, ns, name) in dirty {
            match kind {
                Kind::Deployment => deployment(st, &ns, &name),
                Kind::StatefulSet => statefulset(st, &ns, &name),
                _ => {}
            }
        }
    }
}

/// When the background task must next run.
pub(crate) fn next_due(st: &Store) -> Option<Instant> {
    st.ready_at.values().min().copied()
}

fn set_pod_ready(st: &mut Store, ns: &str, pod: &str) {
    let Some(mut p) = st.get(Kind::Pod, ns, pod).cloned() else {
        return;
    };
    let now = now_rfc3339();
    if let Some(conds) = p["status"]["conditions"].as_array_mut() {
        for c in conds {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                *c = json!({"type": c["type"], "status": "True", "lastProbeTime": null,
                            "lastTransitionTime": now});
            }
        }
    }
    if let Some(cs) = p["status"]["containerStatuses"].as_array_mut() {
        for c in cs {
            c["ready"] = json!(true);
        }
    }
    st.update(Kind::Pod, p.clone());
    mark_owner_dirty(st, ns, &p);
}

fn pick_node(st: &mut Store) -> Option<String> {
    let nodes: Vec<(String, bool)> = st
        .list(Kind::Node, None)
        .map(|(k, n)| {
            let ready = n["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (k.2.clone(), ready)
        })
        .collect();
    let ready: Vec<&String> = nodes.iter().filter(|(_, r)| *r).map(|(n, _)| n).collect();
    let pool: Vec<&String> = if ready.is_empty() {
        nodes.iter().map(|(n, _)| n).collect()
    } else {
        ready
    };
    if pool.is_empty() {
        return None;
    }
    st.node_cursor = st.node_cursor.wrapping_add(1);
    Some(pool[st.node_cursor % pool.len()].clone())
}

/// Creates one pod from `template` for `owner`; it becomes ready after the ready delay.
fn create_pod(
    st: &mut Store,
    ns: &str,
    owner_kind: Kind,
    owner: &Value,
    pod_name: &str,
    template: &Value,
    extra_labels: &[(&str, &str)],
) {
    let node = pick_node(st);
    st.name_counter += 1;
    let ip = st.name_counter;
    let now = now_rfc3339();
    let mut labels = template["metadata"]["labels"].clone();
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    let mut spec = template["spec"].clone();
    if let Some(node) = &node {
        spec["nodeName"] = json!(node);
    }
    let containers: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"],
                "imageID": format!("{}@sha256:{:064x}", c["image"].as_str().unwrap_or(""), ip),
                "containerID": format!("containerd://{:064x}", ip),
                "ready": false, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let unready = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let cond = |t: &str, ok: bool| {
        if ok {
            json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now})
        } else {
            json!({"type": t, "status": "False", "lastProbeTime": null, "lastTransitionTime": now,
                   "reason": "ContainersNotReady",
                   "message": format!("containers with unready status: [{unready}]")})
        }
    };
    let mut metadata = json!({
        "name": pod_name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": owner_ref(owner_kind, owner),
    });
    if let Some(a) = template["metadata"].get("annotations") {
        metadata["annotations"] = a.clone();
    }
    let host_ip = node
        .as_deref()
        .and_then(|n| st.get(Kind::Node, "", n))
        .and_then(|n| n["status"]["addresses"][0]["address"].as_str())
        .unwrap_or("192.168.0.10")
        .to_string();
    let pod = json!({
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", false),
                cond("ContainersReady", false),
                cond("PodScheduled", true),
            ],
            "hostIP": host_ip,
            "podIP": format!("10.244.{}.{}", (ip / 250) % 250, ip % 250 + 2),
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        },
    });
    let pod = st.create(Kind::Pod, pod);
    if owner_kind == Kind::ReplicaSet {
        events::record(
            st,
            involved(Kind::ReplicaSet, ns, owner),
            "replicaset-controller",
            "SuccessfulCreate",
            format!("Created pod: {pod_name}"),
        );
    } else {
        events::record(
            st,
            involved(owner_kind, ns, owner),
            "statefulset-controller",
            "SuccessfulCreate",
            format!(
                "create Pod {pod_name} in StatefulSet {} successful",
                name(owner)
            ),
        );
    }
    if let Some(node) = &node {
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "default-scheduler",
            "Scheduled",
            format!("Successfully assigned {ns}/{pod_name} to {node}"),
        );
    }
    for c in &containers {
        let (cname, image) = (
            c["name"].as_str().unwrap_or(""),
            c["image"].as_str().unwrap_or(""),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Created",
            format!("Created container: {cname}"),
        );
        events::record(
            st,
            involved(Kind::Pod, ns, &pod),
            "kubelet",
            "Started",
            format!("Started container {cname}"),
        );
    }
    let delay = st.pod_ready_delay;
    if delay.is_zero() {
        set_pod_ready(st, ns, pod_name);
    } else if let Some(at) = Instant::now().checked_add(delay) {
        if delay != Duration::MAX {
            st.ready_at
                .insert((ns.to_string(), pod_name.to_string()), at);
        }
    }
}

fn delete_pod(st: &mut Store, ns: &str, pod: &str) {
    st.ready_at.remove(&(ns.to_string(), pod.to_string()));
    st.delete(Kind::Pod, ns, pod);
}

/// Deletes a workload's ReplicaSets, ControllerRevisions and pods (garbage collection).
pub(crate) fn collect_garbage(st: &mut Store, ns: &str, owner_uid: &str) {
    for rs in owned(st, Kind::ReplicaSet, ns, owner_uid) {
        collect_garbage(st, ns, uid(&rs));
        st.delete(Kind::ReplicaSet, ns, name(&rs));
    }
    for cr in owned(st, Kind::ControllerRevision, ns, owner_uid) {
        st.delete(Kind::ControllerRevision, ns, name(&cr));
    }
    for pod in owned(st, Kind::Pod, ns, owner_uid) {
        delete_pod(st, ns, name(&pod));
    }
}

/// Sets a ReplicaSet's replicas, with the deployment controller's event.
fn scale_rs(st: &mut Store, ns: &str, deploy: &Value, rs_name: &str, to: i64) {
    let Some(mut rs) = st.get(Kind::ReplicaSet, ns, rs_name).cloned() else {
        return;
    };
    let from = int(&rs["spec"]["replicas"]);
    if from == to {
        return;
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
        format!("Scaled {direction} replica set {rs_name} from {from} to {to}"),
    );
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

fn deployment(st: &mut Store, ns: &str, dname: &str) {
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
    // From the pods, not the ReplicaSet's status, which is settled further down.
    let new_ready = st
        .get(Kind::ReplicaSet, ns, &new_name)
        .map(|rs| {
            owned(st, Kind::Pod, ns, uid(rs))
                .iter()
                .filter(|p| is_ready(p))
                .count() as i64
        })
        .unwrap_or(0);
    scale_rs(st, ns, &d, &new_name, desired);
    // Old pods stay until as many new ones serve (a rolling update with full surge).
    let mut old_allowed = (desired - new_ready).max(0);
    let mut olds: Vec<Value> = owned(st, Kind::ReplicaSet, ns, uid(&d))
        .into_iter()
        .filter(|rs| name(rs) != new_name)
        .collect();
    olds.sort_by_key(|rs| -revision(rs));
    for old in &olds {
        let current = int(&old["spec"]["replicas"]);
        let want = if paused {
            current
        } else {
            current.min(old_allowed)
        };
        old_allowed -= want;
        scale_rs(st, ns, &d, name(old), want);
    }
    let mut all = owned(st, Kind::ReplicaSet, ns, uid(&d));
    for rs in &all {
        replicaset(st, ns, name(rs));
    }
    all = owned(st, Kind::ReplicaSet, ns, uid(&d));
    deployment_status(st, ns, &d, &all, &new_name, desired, paused);
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

fn ordinal(sts: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

/// Keeps one ControllerRevision per template, the current one numbered highest.
fn controller_revision(st: &mut Store, ns: &str, sts: &Value, rev_name: &str) {
    let revisions = owned(st, Kind::ControllerRevision, ns, uid(sts));
    let max = revisions
        .iter()
        .map(|r| int(&r["revision"]))
        .max()
        .unwrap_or(0);
    match revisions.iter().find(|r| name(r) == rev_name) {
        Some(r) if int(&r["revision"]) < max => {
            let mut r = r.clone();
            r["revision"] = json!(max + 1);
            st.update(Kind::ControllerRevision, r);
        }
        Some(_) => {}
        None => {
            let hash = rev_name.rsplit('-').next().unwrap_or("");
            let mut labels = sts["spec"]["template"]["metadata"]["labels"].clone();
            labels["controller.kubernetes.io/hash"] = json!(hash);
            let cr = json!({
                "metadata": {"name": rev_name, "namespace": ns, "labels": labels,
                             "ownerReferences": owner_ref(Kind::StatefulSet, sts)},
                "data": {"spec": {"template": sts["spec"]["template"], "$patch": "replace"}},
                "revision": max + 1,
            });
            st.create(Kind::ControllerRevision, cr);
        }
    }
}

fn statefulset(st: &mut Store, ns: &str, sname: &str) {
    let Some(s) = st.get(Kind::StatefulSet, ns, sname).cloned() else {
        return;
    };
    let desired = s["spec"]["replicas"].as_i64().unwrap_or(1);
    let update_rev = format!("{sname}-{}", template_hash(&s["spec"]["template"]));
    controller_revision(st, ns, &s, &update_rev);
    let rev_of = |p: &Value| {
        p["metadata"]["labels"]["controller-revision-hash"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let pods = owned(st, Kind::Pod, ns, uid(&s));
    // Scale down from the highest ordinal.
    for pod in &pods {
        if ordinal(sname, name(pod)).is_none_or(|i| i >= desired) {
            delete_pod(st, ns, name(pod));
            events::record(
                st,
                involved(Kind::StatefulSet, ns, &s),
                "statefulset-controller",
                "SuccessfulDelete",
                format!("delete Pod {} in StatefulSet {sname} successful", name(pod)),
            );
        }
    }
    let pods = owned(st, Kind::Pod, ns, uid(&s));
    // Rolling update: one outdated pod at a time, highest ordinal first, once all are ready.
    if pods.len() as i64 == desired && pods.iter().all(is_ready) {
        let outdated = pods
            .iter()
            .filter(|p| rev_of(p) != update_rev)
            .max_by_key(|p| ordinal(sname, name(p)));
        if let Some(p) = outdated {
            delete_pod(st, ns, name(p));
        }
    }
    let mut template = s["spec"]["template"].clone();
    template["metadata"]["labels"]["controller-revision-hash"] = json!(update_rev);
    for i in 0..desired {
        let pod_name = format!("{sname}-{i}");
        if st.get(Kind::Pod, ns, &pod_name).is_none() {
            create_pod(
                st,
                ns,
                Kind::StatefulSet,
                &s,
                &pod_name,
                &template,
                &[("statefulset.kubernetes.io/pod-name", &pod_name)],
            );
        }
    }
    let pods = owned(st, Kind::Pod, ns, uid(&s));
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let updated = pods.iter().filter(|p| rev_of(p) == update_rev).count() as i64;
    let Some(mut s) = st.get(Kind::StatefulSet, ns, sname).cloned() else {
        return;
    };
    let current_rev = if updated == pods.len() as i64 {
        update_rev.clone()
    } else {
        s["status"]["currentRevision"]
            .as_str()
            .unwrap_or(&update_rev)
            .to_string()
    };
    let mut status = json!({
        "observedGeneration": s["metadata"]["generation"],
        "replicas": pods.len(),
        "availableReplicas": ready,
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": 0,
    });
    put_count(&mut status, "readyReplicas", ready);
    put_count(
        &mut status,
        "currentReplicas",
        if current_rev == update_rev {
            updated
        } else {
            pods.len() as i64 - updated
        },
    );
    put_count(&mut status, "updatedReplicas", updated);
    s["status"] = status;
    st.update(Kind::StatefulSet, s);
    // A pod deleted for the rolling update above was recreated already; the next one
    // waits for it to become ready, which marks this set dirty again.
}
