//! The statefulset controller: pods `<name>-<ordinal>`, one ControllerRevision per
//! template, rolling updates from the highest ordinal.

use serde_json::{json, Value};

use super::pods::{create_pod, delete_pod};
use super::{int, involved, is_ready, name, owned, owner_ref, put_count, uid};
use crate::kube::events;
use crate::kube::objects::template_hash;
use crate::kube::resources::Kind;
use crate::kube::store::Store;

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
            // What kubectl's rollout undo patches back in, as the real controller stores it.
            let mut data_template = sts["spec"]["template"].clone();
            data_template["$patch"] = json!("replace");
            let cr = json!({
                "metadata": {"name": rev_name, "namespace": ns, "labels": labels,
                             "ownerReferences": owner_ref(Kind::StatefulSet, sts)},
                "data": {"spec": {"template": data_template}},
                "revision": max + 1,
            });
            st.create(Kind::ControllerRevision, cr);
        }
    }
}

pub(super) fn reconcile(st: &mut Store, ns: &str, sname: &str) {
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
