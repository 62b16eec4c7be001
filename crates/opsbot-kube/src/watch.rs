//! Keeps a cluster's pool current: one `kube::runtime::watcher` per resource (and per
//! configured namespace), each a list then a watch from its resourceVersion, with
//! bookmarks asked for. A dropped watch resumes from its last resourceVersion; a 410
//! Gone makes the watcher list again (kube-rs does both). Any other failure marks the
//! cluster stale, keeps its last data, and after a backoff starts the stream over with
//! a fresh list, whose end marks the stream live again.

use crate::changes::{ObjectKey, Observed, Print};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::pool::{NodeInfo, PodInfo, Workload, WorkloadKind};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::Api;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The first pause after a failure, doubled each time up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The node stream's name: a refusal there does not make the cluster stale.
const NODES: &str = "nodes";

/// What a watch saw, for the resource's handler.
enum Seen<K> {
    Listed(Vec<K>),
    Applied(K),
    Deleted(K),
}

type Handler<K> = fn(&Cluster, Option<&str>, Seen<K>);

/// Starts every watch of `cluster`; the handles end them when aborted.
pub fn start(cluster: &Arc<Cluster>) -> Vec<JoinHandle<()>> {
    let client = cluster.client.clone();
    let namespaces = cluster.settings.namespaces.clone();
    let mut tasks = Vec::new();
    if namespaces.is_empty() {
        tasks.push(spawn(
            cluster,
            Api::<Namespace>::all(client.clone()),
            "namespaces",
            None,
            on_namespaces,
        ));
        tasks.push(spawn(
            cluster,
            Api::<Deployment>::all(client.clone()),
            "deployments",
            None,
            on_deployments,
        ));
        tasks.push(spawn(
            cluster,
            Api::<StatefulSet>::all(client.clone()),
            "statefulsets",
            None,
            on_statefulsets,
        ));
        tasks.push(spawn(
            cluster,
            Api::<Pod>::all(client.clone()),
            "pods",
            None,
            on_pods,
        ));
    } else {
        for ns in &namespaces {
            let only = Some(ns.clone());
            tasks.push(spawn(
                cluster,
                Api::<Deployment>::namespaced(client.clone(), ns),
                "deployments",
                only.clone(),
                on_deployments,
            ));
            tasks.push(spawn(
                cluster,
                Api::<StatefulSet>::namespaced(client.clone(), ns),
                "statefulsets",
                only.clone(),
                on_statefulsets,
            ));
            tasks.push(spawn(
                cluster,
                Api::<Pod>::namespaced(client.clone(), ns),
                "pods",
                only,
                on_pods,
            ));
        }
    }
    tasks.push(spawn(
        cluster,
        Api::<Node>::all(client),
        "nodes",
        None,
        on_nodes,
    ));
    tasks
}

fn spawn<K>(
    cluster: &Arc<Cluster>,
    api: Api<K>,
    resource: &'static str,
    only: Option<String>,
    handler: Handler<K>,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = match &only {
        Some(ns) => format!("{resource} in {ns}"),
        None => resource.to_string(),
    };
    cluster.streams().expect(&stream);
    let cluster = cluster.clone();
    tokio::spawn(async move { follow(cluster, api, stream, only, handler).await })
}

async fn follow<K>(
    cluster: Arc<Cluster>,
    api: Api<K>,
    stream: String,
    only: Option<String>,
    handler: Handler<K>,
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut backoff = MIN_BACKOFF;
    let config = watcher::Config::default();
    loop {
        let mut events = std::pin::pin!(watcher::watcher(api.clone(), config.clone()));
        let mut listing: Vec<K> = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(o)) => listing.push(o),
                Ok(Event::InitDone) => {
                    if stream == NODES {
                        cluster.set_nodes_forbidden(false);
                    }
                    handler(
                        &cluster,
                        only.as_deref(),
                        Seen::Listed(std::mem::take(&mut listing)),
                    );
                    cluster.streams().ok(&stream);
                    cluster.touched();
                    backoff = MIN_BACKOFF;
                }
                Ok(Event::Apply(o)) => {
                    handler(&cluster, only.as_deref(), Seen::Applied(o));
                    cluster.touched();
                }
                Ok(Event::Delete(o)) => {
                    handler(&cluster, only.as_deref(), Seen::Deleted(o));
                    cluster.touched();
                }
                Err(e) => {
                    let error = Error::from(e);
                    // Too old a resourceVersion: the watcher lists again by itself.
                    if matches!(error, Error::Rejected { code: 410, .. }) {
                        tracing::debug!(cluster = %cluster.path(), stream, "watch expired (410), listing again");
                        continue;
                    }
                    // A Role bound in namespaces cannot read nodes (cluster-scoped): the
                    // rest of the pool is still live, 节点 says why it is empty.
                    if stream == NODES && matches!(error, Error::Forbidden(_)) {
                        tracing::info!(cluster = %cluster.path(), %error, "nodes are not readable");
                        cluster.set_nodes_forbidden(true);
                        cluster.streams().ok(&stream);
                        cluster.touched();
                        backoff = MAX_BACKOFF;
                        break;
                    }
                    tracing::warn!(cluster = %cluster.path(), stream, %error, "watch failed");
                    cluster.streams().failed(&stream, error);
                    cluster.touched();
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn workload_key(cluster: &Cluster, w: &Workload) -> ObjectKey {
    ObjectKey {
        kind: w.kind.change_kind().into(),
        id: format!("{}/{}/{}", cluster.name, w.namespace, w.name),
    }
}

/// What the change history follows of a workload.
fn workload_print(w: &Workload) -> Print {
    let mut p = Print::new();
    p.insert("replicas".into(), w.desired.to_string());
    p.insert("image".into(), w.images.join(","));
    if let Some(r) = &w.revision {
        p.insert("revision".into(), r.clone());
    }
    p.insert("paused".into(), w.paused.to_string());
    p
}

fn prefix(cluster: &Cluster, only: Option<&str>) -> String {
    match only {
        Some(ns) => format!("{}/{ns}/", cluster.name),
        None => format!("{}/", cluster.name),
    }
}

fn on_workloads(cluster: &Cluster, kind: WorkloadKind, only: Option<&str>, seen: Seen<Workload>) {
    let observed = match seen {
        Seen::Listed(list) => {
            let objects = list
                .iter()
                .map(|w| (workload_key(cluster, w), w.name.clone(), workload_print(w)))
                .collect();
            cluster.write().replace_workloads(kind, only, list);
            Observed::Listed {
                kind: kind.change_kind().into(),
                prefix: prefix(cluster, only),
                objects,
            }
        }
        Seen::Applied(w) => {
            let observed = Observed::Upsert {
                key: workload_key(cluster, &w),
                name: w.name.clone(),
                print: workload_print(&w),
            };
            cluster.write().upsert_workload(w);
            observed
        }
        Seen::Deleted(w) => {
            cluster.write().remove_workload(kind, &w.namespace, &w.name);
            Observed::Remove {
                key: workload_key(cluster, &w),
                name: w.name,
            }
        }
    };
    cluster
        .recorder
        .observe(&cluster.provider, &cluster.name, observed);
}

fn convert<K, T>(seen: Seen<K>, f: fn(&K) -> Option<T>) -> Option<Seen<T>> {
    Some(match seen {
        Seen::Listed(l) => Seen::Listed(l.iter().filter_map(f).collect()),
        Seen::Applied(o) => Seen::Applied(f(&o)?),
        Seen::Deleted(o) => Seen::Deleted(f(&o)?),
    })
}

fn on_deployments(cluster: &Cluster, only: Option<&str>, seen: Seen<Deployment>) {
    if let Some(seen) = convert(seen, Workload::from_deployment) {
        on_workloads(cluster, WorkloadKind::Deployment, only, seen);
    }
}

fn on_statefulsets(cluster: &Cluster, only: Option<&str>, seen: Seen<StatefulSet>) {
    if let Some(seen) = convert(seen, Workload::from_statefulset) {
        on_workloads(cluster, WorkloadKind::StatefulSet, only, seen);
    }
}

fn on_pods(cluster: &Cluster, only: Option<&str>, seen: Seen<Pod>) {
    match convert(seen, PodInfo::from_pod) {
        Some(Seen::Listed(list)) => cluster.write().replace_pods(only, list),
        Some(Seen::Applied(p)) => cluster.write().upsert_pod(p),
        Some(Seen::Deleted(p)) => cluster.write().remove_pod(&p.namespace, &p.name),
        None => {}
    }
}

fn named_key(cluster: &Cluster, kind: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind: kind.into(),
        id: format!("{}/{name}", cluster.name),
    }
}

fn node_print(n: &NodeInfo) -> Print {
    Print::from([("ready".to_string(), n.ready.to_string())])
}

fn on_nodes(cluster: &Cluster, _: Option<&str>, seen: Seen<Node>) {
    const KIND: &str = "k8s-node";
    let observed = match convert(seen, NodeInfo::from_node) {
        Some(Seen::Listed(list)) => {
            let objects = list
                .iter()
                .map(|n| {
                    (
                        named_key(cluster, KIND, &n.name),
                        n.name.clone(),
                        node_print(n),
                    )
                })
                .collect();
            cluster.write().replace_nodes(list);
            Observed::Listed {
                kind: KIND.into(),
                prefix: prefix(cluster, None),
                objects,
            }
        }
        Some(Seen::Applied(n)) => {
            let observed = Observed::Upsert {
                key: named_key(cluster, KIND, &n.name),
                name: n.name.clone(),
                print: node_print(&n),
            };
            cluster.write().nodes.insert(n.name.clone(), n);
            observed
        }
        Some(Seen::Deleted(n)) => {
            cluster.write().nodes.remove(&n.name);
            Observed::Remove {
                key: named_key(cluster, KIND, &n.name),
                name: n.name,
            }
        }
        None => return,
    };
    cluster
        .recorder
        .observe(&cluster.provider, &cluster.name, observed);
}

fn on_namespaces(cluster: &Cluster, _: Option<&str>, seen: Seen<Namespace>) {
    const KIND: &str = "k8s-namespace";
    let name_of = |n: &Namespace| n.metadata.name.clone();
    let observed = match convert(seen, name_of) {
        Some(Seen::Listed(names)) => {
            cluster.write().replace_namespaces(&names);
            Observed::Listed {
                kind: KIND.into(),
                prefix: prefix(cluster, None),
                objects: names
                    .into_iter()
                    .map(|n| (named_key(cluster, KIND, &n), n, Print::new()))
                    .collect(),
            }
        }
        Some(Seen::Applied(n)) => {
            cluster.write().set_namespace(&n, true);
            Observed::Upsert {
                key: named_key(cluster, KIND, &n),
                name: n,
                print: Print::new(),
            }
        }
        Some(Seen::Deleted(n)) => {
            cluster.write().set_namespace(&n, false);
            Observed::Remove {
                key: named_key(cluster, KIND, &n),
                name: n,
            }
        }
        None => return,
    };
    cluster
        .recorder
        .observe(&cluster.provider, &cluster.name, observed);
}
