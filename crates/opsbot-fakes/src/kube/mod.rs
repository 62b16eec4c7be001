//! A stand-in Kubernetes API server for opsbot's tests (FAKEKUBE-API.md): axum,
//! in-process, started by a test. It serves what opsbot's Kubernetes subsystem, kubectl
//! 1.32 and python3-kubernetes call, and enforces what a real API server does there:
//! bearer tokens and per-namespace authorisation, resourceVersion and optimistic
//! concurrency, the scale subresource, list pagination, watches with bookmarks and 410,
//! and Deployment → ReplicaSet → Pod controllers with revisions and pods that become
//! ready over time. The tests in `tests/kube_faithful.rs` run the real clients against
//! it.
//!
//! # What it serves
//!
//! Discovery (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`; legacy JSON only),
//! core/v1 namespaces, nodes, pods (with `pods/{name}/log`) and events, apps/v1
//! deployments, statefulsets (both with `/scale`), replicasets and controllerrevisions:
//! list (`limit`/`continue`, label and field selectors), get, watch; PUT, PATCH, POST and
//! DELETE of deployments and statefulsets. JSON, and `meta.k8s.io/v1` Tables when asked
//! (kubectl's default printing). HTTP/1.1, plain or TLS from a generated CA.
//!
//! # Gaps: what a real API server does that this one does not
//!
//! - **Protocols**: no HTTP/2 (TLS offers `http/1.1` only; clients fall back), no
//!   protobuf, no aggregated discovery (the `apidiscovery.k8s.io` Accept gets legacy JSON,
//!   which kubectl and client-go accept), no OpenAPI (`/openapi/v2`, `/openapi/v3`: 404,
//!   so `kubectl apply`/`explain` and client-side validation do not work), no
//!   server-side apply, no `dryRun`, no `fieldManager`/`managedFields`, no watch-list
//!   streaming (`sendInitialEvents`), no `resourceVersionMatch` (lists are always
//!   current), no `/healthz`, `/livez`, `/readyz`, no exec/attach/port-forward, no
//!   `follow` on logs (a log read returns the whole text and ends).
//! - **Resources**: only the ones above. Services, ConfigMaps, Secrets, Jobs,
//!   DaemonSets, HPAs, PVCs, RBAC objects, `events.k8s.io/v1` and everything else: 404.
//!   Pods, ReplicaSets, nodes, namespaces and events are read-only through the API
//!   (405 for writes; the fake's own functions change them). Namespaces are not
//!   terminated or garbage-collected; deleting a workload deletes its ReplicaSets,
//!   revisions and pods at once (foreground-style, no `deletionTimestamp`, no
//!   finalizers, no grace period: pods never show `Terminating`).
//! - **Validation and defaulting**: only what opsbot can get wrong — negative replicas
//!   (422), a body whose name differs from the URL (400), an unknown patch media type
//!   (415), a failing JSON-patch `test` (422). Other invalid specs are stored as sent;
//!   seeded objects carry the usual defaults but written ones are not defaulted.
//!   `metadata.resourceVersion` is checked on PUT when given (an empty one is an
//!   unconditional update, as for Deployments on a real server) and on PATCH when the
//!   patch sets it.
//! - **Strategic merge patch** is merge patch plus the `$patch: replace|delete`
//!   directives: lists are replaced whole, never merged by their merge keys (a patch of
//!   one container in `containers` replaces the list). `$setElementOrder` and
//!   `$retainKeys` are ignored.
//! - **Consistency**: one global resourceVersion counter; continue tokens do not pin a
//!   snapshot (later pages show the current state after the last key, not the state at
//!   the first page); `remainingItemCount` is counted with selectors too. History is
//!   kept for the last 20,000 changes (then 410), and `compact()` forgets it at once.
//!   A watcher more than 32,768 changes behind is cut off (its connection closes), as a
//!   real server drops slow watchers. Bookmarks carry the last resourceVersion the
//!   watch has seen. `timeoutSeconds` ends a watch cleanly; there is no default timeout.
//! - **Authorisation**: tokens are bearer only (no client certificates, no
//!   impersonation, no `SelfSubjectAccessReview`); a restricted token may do every verb
//!   on namespaced resources of its namespaces and, with `cluster_read`, read nodes and
//!   namespaces; listing a namespaced resource across all namespaces needs the admin
//!   token. The Forbidden user is always `system:serviceaccount:opsbot:opsbot`
//!   (`kubernetes-admin` for the admin token, which is never refused). Discovery and
//!   `/version` need a valid token (no anonymous access).
//! - **Controllers**: they run inside each write, so a read right after a write already
//!   sees the controllers' reaction (a real controller manager lags a little):
//!   `observedGeneration` catches up at once, new pods exist at once and only their
//!   readiness waits for the ready delay. RollingUpdate uses the default 25% maxSurge /
//!   maxUnavailable whatever the spec says; `Recreate`, `minReadySeconds`,
//!   `progressDeadlineSeconds` (no `ProgressDeadlineExceeded`) and
//!   `revisionHistoryLimit` (old ReplicaSets are never pruned) are not honoured; a
//!   paused deployment scales its newest ReplicaSet only (no proportional scaling).
//!   StatefulSets create and delete pods in parallel (not one ordinal at a time), roll
//!   updates from the highest ordinal one pod at a time once all are ready, and ignore
//!   `partition`. No PersistentVolumeClaims, no scheduler beyond round-robin over Ready
//!   nodes (no resources, taints, affinity; with no node at all pods run unassigned),
//!   no kubelet: pods are `Running` at once and become Ready after the delay, never
//!   crash, restart or get evicted; a node going NotReady does not affect its pods.
//! - **Events** are recorded once each (no aggregation into `count`, no `series`), with
//!   the real reasons and wording for ScalingReplicaSet, SuccessfulCreate,
//!   SuccessfulDelete, Scheduled, Pulled, Created and Started; none for other
//!   happenings. `bulk()` records none.
//! - **Logs**: 500 deterministic lines per container, stamped from the pod's start; no
//!   `sinceSeconds`/`sinceTime`, `previous`, `follow`.

mod api;
mod auth;
mod controller;
mod discovery;
mod events;
mod logs;
mod objects;
mod paging;
mod patch;
mod path;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod table;
mod tls;
mod watch;
mod write;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use auth::{Grant, Tokens};
use resources::Kind;
use store::Store;

/// Changes a slow watcher may fall behind by before it is cut off.
const WATCH_BUFFER: usize = 32_768;

/// A request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// The bearer token's first 4 characters ("" when none): enough to tell tokens apart
    /// without recording secrets.
    pub token_prefix: String,
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    tokens: Mutex<Tokens>,
    requests: Mutex<Vec<Recorded>>,
    drop_watches: tokio::sync::watch::Sender<u64>,
    bookmark_interval: Mutex<Duration>,
    /// Wakes the controller task after a write scheduled pods.
    wake: Notify,
    addr: SocketAddr,
}

impl Shared {
    fn address(&self) -> String {
        self.addr.to_string()
    }
}

struct Listening {
    stop: tokio::sync::watch::Sender<()>,
    task: JoinHandle<()>,
}

/// The running server; dropping it stops it.
pub struct FakeKube {
    shared: Arc<Shared>,
    router: Router,
    tls: Option<TlsAcceptor>,
    ca_pem: Option<String>,
    admin_token: String,
    listening: Mutex<Option<Listening>>,
    controller: JoinHandle<()>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeKube {
    /// Plain HTTP on 127.0.0.1 and a random port.
    pub async fn start() -> FakeKube {
        Self::start_with(None).await
    }

    /// HTTPS with a certificate for 127.0.0.1 and localhost from a generated CA.
    pub async fn start_tls() -> FakeKube {
        let (acceptor, ca) = tls::acceptor();
        Self::start_with(Some((acceptor, ca))).await
    }

    async fn start_with(tls: Option<(TlsAcceptor, String)>) -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        let admin_token = format!("admin-{:016x}", rand_u64());
        let mut tokens = Tokens::default();
        tokens.set(&admin_token, Grant::Admin);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(changes)),
            tokens: Mutex::new(tokens),
            requests: Mutex::new(Vec::new()),
            drop_watches: tokio::sync::watch::Sender::new(0),
            bookmark_interval: Mutex::new(Duration::from_secs(1)),
            wake: Notify::new(),
            addr,
        });
        let router = Router::new()
            .fallback(api::handle)
            .with_state(shared.clone());
        let (acceptor, ca_pem) = match tls {
            Some((a, ca)) => (Some(a), Some(ca)),
            None => (None, None),
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(());
        let task = server::spawn_accept_loop(listener, router.clone(), acceptor.clone(), stop_rx);
        let controller = tokio::spawn(run_controller(shared.clone()));
        FakeKube {
            shared,
            router,
            tls: acceptor,
            ca_pem,
            admin_token,
            listening: Mutex::new(Some(Listening { stop, task })),
            controller,
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.shared.addr)
    }

    /// The CA that signed the server certificate (start_tls only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// A token with full access, like cluster-admin.
    pub fn admin_token(&self) -> String {
        self.admin_token.clone()
    }

    /// A token allowed every verb on namespaced resources of these namespaces only;
    /// cluster-scoped reads (namespaces, nodes) too when `cluster_read`. Anything else
    /// answers 403 with a Status body worded as a real API server words it.
    pub fn add_token(&self, token: &str, namespaces: &[&str], cluster_read: bool) {
        let grant = Grant::Namespaces {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            cluster_read,
        };
        self.shared
            .tokens
            .lock()
            .expect("tokens lock")
            .set(token, grant);
    }

    /// Later requests with `token` answer 401 (an expired token).
    pub fn revoke_token(&self, token: &str) {
        self.shared
            .tokens
            .lock()
            .expect("tokens lock")
            .revoke(token);
    }

    /// A kubeconfig (YAML) with one cluster, one user with `token` and one context
    /// named `context` (the current one); certificate-authority-data when TLS.
    pub fn write_kubeconfig(&self, path: &Path, context: &str, token: &str) {
        let ca = match &self.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\n{ca}\
             users:\n- name: {context}-user\n  user:\n    token: {token}\n\
             contexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}-user\n\
             current-context: {context}\npreferences: {{}}\n",
            url = self.url(),
        );
        std::fs::write(path, yaml).expect("write kubeconfig");
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }

    /// Runs the controllers after a change from outside and wakes the background task.
    fn settle(&self, mut st: MutexGuard<'_, Store>) {
        controller::reconcile(&mut st, Instant::now());
        drop(st);
        self.shared.wake.notify_one();
    }

    pub fn add_namespace(&self, name: &str) {
        let mut st = self.store();
        if st.get(Kind::Namespace, "", name).is_none() {
            st.create(Kind::Namespace, objects::namespace(name));
        }
    }

    /// A Deployment with matchLabels `app=<name>` and one container `<name>` running
    /// `image`: ReplicaSet revision 1 and its pods follow, ready after the pod ready
    /// delay. The namespace is created when missing.
    pub fn add_deployment(&self, ns: &str, name: &str, replicas: i32, image: &str) {
        self.add_workload(
            Kind::Deployment,
            objects::deployment(ns, name, replicas, image),
        );
    }

    /// A StatefulSet like [`add_deployment`](Self::add_deployment): pods `<name>-0..n-1`.
    pub fn add_statefulset(&self, ns: &str, name: &str, replicas: i32, image: &str) {
        self.add_workload(
            Kind::StatefulSet,
            objects::statefulset(ns, name, replicas, image),
        );
    }

    fn add_workload(&self, kind: Kind, obj: Value) {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.add_namespace(&ns);
        let mut st = self.store();
        st.create(kind, obj);
        st.dirty.insert((kind, ns, name));
        self.settle(st);
    }

    pub fn add_node(&self, name: &str, ready: bool, cpu: &str, memory: &str) {
        let mut st = self.store();
        let index = st.names(Kind::Node, None).len();
        st.create(Kind::Node, objects::node(name, ready, cpu, memory, index));
    }

    pub fn set_node_ready(&self, name: &str, ready: bool) {
        let mut st = self.store();
        if let Some(mut node) = st.get(Kind::Node, "", name).cloned() {
            node["status"]["conditions"] = json!([objects::node_ready_condition(ready)]);
            st.update(Kind::Node, node);
        }
    }

    fn change_deployment(&self, ns: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut st = self.store();
        if let Some(mut d) = st.get(Kind::Deployment, ns, name).cloned() {
            change(&mut d);
            st.update(Kind::Deployment, d);
            st.dirty
                .insert((Kind::Deployment, ns.to_string(), name.to_string()));
            self.settle(st);
        }
    }

    /// A new image for the first container: a new revision, rolled out.
    pub fn set_image(&self, ns: &str, deployment: &str, image: &str) {
        self.change_deployment(ns, deployment, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        });
    }

    pub fn set_paused(&self, ns: &str, deployment: &str, paused: bool) {
        self.change_deployment(ns, deployment, |d| {
            if paused {
                d["spec"]["paused"] = json!(true);
            } else if let Some(spec) = d["spec"].as_object_mut() {
                spec.remove("paused");
            }
        });
    }

    /// Deletes a deployment with its ReplicaSets and pods.
    pub fn delete_deployment(&self, ns: &str, name: &str) {
        let mut st = self.store();
        if let Some(d) = st.delete(Kind::Deployment, ns, name) {
            let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
            controller::collect_garbage(&mut st, ns, &uid);
        }
    }

    /// How long new pods take to become ready (default 200 ms); `Duration::MAX` never.
    pub fn set_pod_ready_delay(&self, d: Duration) {
        self.store().pod_ready_delay = d;
    }

    /// Forgets the event history: a watch or continue token older than now gets 410.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Ends every open watch stream now: the connection closes mid-stream.
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// BOOKMARK events every `d` on watches that asked for them (default 1 s).
    pub fn set_bookmark_interval(&self, d: Duration) {
        *self.shared.bookmark_interval.lock().expect("bookmark lock") = d;
    }

    /// The next `n` writes of deployments, statefulsets or their scale answer 409
    /// Conflict, the object's resourceVersion moving as if another writer had won.
    pub fn inject_conflicts(&self, n: usize) {
        self.store().conflicts = n;
    }

    /// Refuses connections (and cuts the open ones) until called with false; the same
    /// port after.
    pub async fn set_unreachable(&self, down: bool) {
        if down {
            let listening = self.listening.lock().expect("listening lock").take();
            if let Some(l) = listening {
                let _ = l.stop.send(());
                let _ = l.task.await;
            }
            return;
        }
        if self.listening.lock().expect("listening lock").is_some() {
            return;
        }
        let listener = TcpListener::bind(self.shared.addr)
            .await
            .expect("bind the same port again");
        let (stop, stop_rx) = tokio::sync::watch::channel(());
        let task =
            server::spawn_accept_loop(listener, self.router.clone(), self.tls.clone(), stop_rx);
        *self.listening.lock().expect("listening lock") = Some(Listening { stop, task });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// A large estate at once (benchmarks): namespaces `bulk-0..` each with
    /// `deployments` deployments `app-0..` of `pods` ready pods; no events, no watch
    /// history (watches started before see none of it; later ones start after it).
    pub fn bulk(&self, namespaces: usize, deployments: usize, pods: usize) {
        let mut st = self.store();
        let delay = st.pod_ready_delay;
        st.quiet = true;
        st.pod_ready_delay = Duration::ZERO;
        for n in 0..namespaces {
            let ns = format!("bulk-{n}");
            if st.get(Kind::Namespace, "", &ns).is_none() {
                st.create(Kind::Namespace, objects::namespace(&ns));
            }
            for d in 0..deployments {
                let name = format!("app-{d}");
                let obj = objects::deployment(
                    &ns,
                    &name,
                    pods as i32,
                    &format!("registry.local/{name}:1.0"),
                );
                st.create(Kind::Deployment, obj);
                st.dirty.insert((Kind::Deployment, ns.clone(), name));
                controller::reconcile(&mut st, Instant::now());
            }
        }
        st.quiet = false;
        st.pod_ready_delay = delay;
        st.compact();
    }

    /// The deployment as the server holds it (for assertions).
    pub fn deployment(&self, ns: &str, name: &str) -> Option<Value> {
        self.store()
            .get(Kind::Deployment, ns, name)
            .cloned()
            .map(|mut d| {
                d["kind"] = json!("Deployment");
                d["apiVersion"] = json!("apps/v1");
                d
            })
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Ok(mut l) = self.listening.lock() {
            if let Some(l) = l.take() {
                let _ = l.stop.send(());
                l.task.abort();
            }
        }
        self.controller.abort();
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }
}

/// Makes pods ready when their time comes, and settles what that changes.
async fn run_controller(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut st = shared.store.lock().expect("store lock");
            controller::reconcile(&mut st, Instant::now());
            controller::next_due(&st)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Randomness for tokens without a dependency: the std hasher's per-process keys.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
