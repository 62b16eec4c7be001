//! The stand-in Kubernetes API server is faithful for every call opsbot makes: the real
//! clients, kubectl 1.32 and Debian's python3-kubernetes, run against it unchanged over
//! HTTPS (the CA in their kubeconfig), and their output is checked. A missing client is a
//! skip naming its install command (a failure in CI).

mod kube_common;

use std::time::Duration;

use kube_common::{deployment_ready, names, read_until, wait_for, Kubectl, Python};
use opsbot_fakes::kube::FakeKube;
use serde_json::Value;

const FORBIDDEN_USER: &str = "system:serviceaccount:opsbot:opsbot";

/// Two nodes (one not ready), namespace payments with deployment web (3 × nginx:1.25)
/// and statefulset db (2 × postgres:16), and an empty namespace staging; all ready.
async fn estate() -> FakeKube {
    let fake = FakeKube::start_tls().await;
    fake.add_node("node-a", true, "4", "8Gi");
    fake.add_node("node-b", false, "8", "16Gi");
    fake.add_deployment("payments", "web", 3, "nginx:1.25");
    fake.add_statefulset("payments", "db", 2, "postgres:16");
    fake.add_namespace("staging");
    wait_for(&fake, "web ready", |f| {
        deployment_ready(f, "payments", "web", 3)
    })
    .await;
    fake
}

fn image(fake: &FakeKube) -> String {
    let d = fake.deployment("payments", "web").expect("web");
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The REVISION column of `kubectl rollout history`.
fn revisions(history: &str) -> Vec<String> {
    history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row {first} in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_namespaces_workloads_pods_nodes_and_events() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };

    let ns = k.run(&["get", "ns", "-o", "json"]).await.success().json();
    assert_eq!(names(&ns), ["payments", "staging"]);
    let table = k.run(&["get", "ns"]).await.success().rows();
    assert_eq!(table[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!(row(&table, "payments")[1], "Active");

    let deploys = k
        .run(&["get", "deploy", "-n", "payments", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(names(&deploys), ["web"]);
    assert_eq!(deploys["items"][0]["status"]["readyReplicas"], 3);
    let table = k
        .run(&["get", "deployments", "-n", "payments"])
        .await
        .success()
        .rows();
    assert_eq!(
        table[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&row(&table, "web")[..4], ["web", "3/3", "3", "3"]);
    let one = k
        .run(&["get", "deploy", "web", "-n", "payments", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(one["kind"], "Deployment");
    assert_eq!(
        one["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );

    let table = k
        .run(&["get", "sts", "-n", "payments"])
        .await
        .success()
        .rows();
    assert_eq!(table[0], ["NAME", "READY", "AGE"]);
    let sts = k
        .run(&["get", "statefulsets", "-n", "payments", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(names(&sts), ["db"]);
    assert_eq!(sts["items"][0]["spec"]["replicas"], 2);

    let pods = k
        .run(&["get", "pods", "-n", "payments", "-o", "json"])
        .await
        .success()
        .json();
    let pod_names = names(&pods);
    assert_eq!(pod_names.len(), 5, "{pod_names:?}");
    assert!(pod_names.contains(&"db-0".to_string()) && pod_names.contains(&"db-1".to_string()));
    let web_rs = format!(
        "web-{}",
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metadata"]["labels"]["app"] == "web")
            .unwrap()["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap()
    );
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(
            p["spec"]["nodeName"], "node-a",
            "pods go to the ready node only"
        );
    }
    let table = k
        .run(&["get", "pods", "-n", "payments", "-l", "app=web"])
        .await
        .success()
        .rows();
    assert_eq!(table[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(table.len(), 4, "{table:?}");
    for r in &table[1..] {
        assert!(r[0].starts_with(&format!("{web_rs}-")), "{r:?}");
        assert_eq!(&r[1..4], ["1/1", "Running", "0"]);
    }
    let wide = k
        .run(&[
            "get",
            "pods",
            "-n",
            "payments",
            "--field-selector",
            "spec.nodeName=node-b",
        ])
        .await;
    assert!(wide
        .success()
        .stderr
        .contains("No resources found in payments namespace."));

    let nodes = k.run(&["get", "nodes"]).await.success().rows();
    assert_eq!(nodes[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(row(&nodes, "node-a")[1], "Ready");
    assert_eq!(row(&nodes, "node-b")[1], "NotReady");
    let node = k
        .run(&["get", "node", "node-b", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(node["status"]["capacity"]["cpu"], "8");

    let events = k
        .run(&["get", "events", "-n", "payments", "-o", "json"])
        .await
        .success()
        .json();
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.contains(&format!("Scaled up replica set {web_rs} to 3 from 0").as_str()),
        "{messages:?}"
    );
    assert!(messages
        .iter()
        .any(|m| m.starts_with("Successfully assigned payments/db-0 to node-a")));
    let table = k
        .run(&[
            "get",
            "events",
            "-n",
            "payments",
            "--field-selector",
            "involvedObject.name=web",
        ])
        .await
        .success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].contains("Normal")
            && lines[1].contains("ScalingReplicaSet")
            && lines[1].contains("deployment/web")
    );

    let missing = k
        .run(&["get", "deploy", "nope", "-n", "payments"])
        .await
        .failure();
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): deployments.apps \"nope\" not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_pages_a_list_with_chunk_size() {
    let fake = FakeKube::start_tls().await;
    fake.add_deployment("payments", "web", 7, "nginx:1.25");
    wait_for(&fake, "web ready", |f| {
        deployment_ready(f, "payments", "web", 7)
    })
    .await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let before = fake.requests().len();
    let pods = k
        .run(&[
            "get",
            "pods",
            "-n",
            "payments",
            "--chunk-size=2",
            "-o",
            "json",
        ])
        .await
        .success()
        .json();
    assert_eq!(names(&pods).len(), 7);
    let pages: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/payments/pods")
        .cloned()
        .collect();
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages.iter().all(|r| r.query.contains("limit=2")));
    assert!(pages[1..].iter().all(|r| r.query.contains("continue=")));
    let table = k
        .run(&["get", "pods", "-n", "payments", "--chunk-size=3"])
        .await
        .success()
        .rows();
    assert_eq!(
        table.iter().filter(|r| r[0] == "NAME").count(),
        1,
        "one header over pages"
    );
    assert_eq!(table.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watch_prints_the_change_it_sees() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let watches = |f: &FakeKube| {
        f.requests()
            .iter()
            .filter(|r| r.query.contains("watch=true"))
            .count()
    };

    let mut json_watch = k.spawn(&[
        "get",
        "deploy",
        "web",
        "-n",
        "payments",
        "--watch-only",
        "-o",
        "json",
        "--request-timeout=60s",
    ]);
    wait_for(&fake, "kubectl's watch request", |f| watches(f) == 1).await;
    k.run(&["scale", "deploy/web", "-n", "payments", "--replicas=4"])
        .await
        .success();
    let text = read_until(&mut json_watch, "the scaled deployment", |t| {
        serde_json::Deserializer::from_str(t)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .any(|d| d["spec"]["replicas"] == 4)
    })
    .await;
    let first: Value = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first["kind"], "Deployment");
    assert_eq!(first["metadata"]["name"], "web");
    json_watch.kill().await.unwrap();

    let mut table_watch = k.spawn(&["get", "deploy", "-n", "payments", "-w", "--watch-only"]);
    wait_for(&fake, "kubectl's second watch", |f| watches(f) == 2).await;
    fake.set_image("payments", "web", "nginx:1.26");
    let text = read_until(&mut table_watch, "a row for web", |t| {
        t.lines().any(|l| l.starts_with("web "))
    })
    .await;
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    table_watch.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_retries_a_conflict_and_refuses_a_stale_resource_version() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let out = k
        .run(&["scale", "deploy/web", "-n", "payments", "--replicas=5"])
        .await
        .success();
    assert_eq!(out.stdout.trim(), "deployment.apps/web scaled");
    let status = k
        .run(&[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "payments",
            "--timeout=60s",
        ])
        .await
        .success();
    assert!(
        status
            .stdout
            .trim_end()
            .ends_with("deployment \"web\" successfully rolled out"),
        "{}",
        status.stdout
    );
    assert!(deployment_ready(&fake, "payments", "web", 5));

    // A precondition on an old resourceVersion: kubectl reads the Scale and refuses.
    let rv: u64 = fake.deployment("payments", "web").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stale = (rv - 1).to_string();
    let out = k
        .run(&[
            "scale",
            "deploy/web",
            "-n",
            "payments",
            "--replicas=2",
            "--resource-version",
            &stale,
        ])
        .await
        .failure();
    assert_eq!(
        out.stderr.trim(),
        format!("error: Expected resource version to be {stale}, was {rv}")
    );
    assert_eq!(
        fake.deployment("payments", "web").unwrap()["spec"]["replicas"],
        5
    );

    // Another writer wins once: the server answers 409 and kubectl tries again.
    let before = fake.requests().len();
    fake.inject_conflicts(1);
    k.run(&["scale", "deploy/web", "-n", "payments", "--replicas=2"])
        .await
        .success();
    let patches = fake.requests()[before..]
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/web/scale"))
        .count();
    assert_eq!(patches, 2, "one refused with 409, one applied");
    wait_for(&fake, "web at 2", |f| {
        deployment_ready(f, "payments", "web", 2)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_status_history_and_undo_follow_replicaset_revisions() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let rollout = |args: &'static [&'static str]| {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["deploy/web", "-n", "payments"]);
        all
    };
    fake.set_image("payments", "web", "nginx:1.26");
    let status = k
        .run(&rollout(&["status", "--timeout=60s"]))
        .await
        .success();
    assert!(
        status
            .stdout
            .contains("deployment \"web\" successfully rolled out"),
        "{}",
        status.stdout
    );
    let history = k.run(&rollout(&["history"])).await.success();
    assert_eq!(revisions(&history.stdout), ["1", "2"], "{}", history.stdout);

    let out = k.run(&rollout(&["restart"])).await.success();
    assert_eq!(out.stdout.trim(), "deployment.apps/web restarted");
    k.run(&rollout(&["status", "--timeout=60s"]))
        .await
        .success();
    assert_eq!(
        revisions(&k.run(&rollout(&["history"])).await.stdout),
        ["1", "2", "3"]
    );
    let d = fake.deployment("payments", "web").unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    let out = k.run(&rollout(&["undo"])).await.success();
    assert_eq!(out.stdout.trim(), "deployment.apps/web rolled back");
    k.run(&rollout(&["status", "--timeout=60s"]))
        .await
        .success();
    assert_eq!(
        revisions(&k.run(&rollout(&["history"])).await.stdout),
        ["1", "3", "4"]
    );
    assert_eq!(image(&fake), "nginx:1.26");

    k.run(&rollout(&["undo", "--to-revision=1"]))
        .await
        .success();
    k.run(&rollout(&["status", "--timeout=60s"]))
        .await
        .success();
    assert_eq!(
        revisions(&k.run(&rollout(&["history"])).await.stdout),
        ["3", "4", "5"]
    );
    assert_eq!(image(&fake), "nginx:1.25");
    let detail = k
        .run(&rollout(&["history", "--revision=5"]))
        .await
        .success();
    assert!(
        detail.stdout.contains("Image:\tnginx:1.25"),
        "{}",
        detail.stdout
    );
    let d = fake.deployment("payments", "web").unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "5"
    );
    wait_for(&fake, "web settled", |f| {
        deployment_ready(f, "payments", "web", 3)
    })
    .await;

    let out = k
        .run(&rollout(&["undo", "--to-revision=9"]))
        .await
        .failure();
    assert_eq!(
        out.stderr.trim(),
        "error: unable to find specified revision 9 in history"
    );

    // Pods that never become ready: the status wait ends at its deadline.
    fake.set_pod_ready_delay(Duration::MAX);
    fake.set_image("payments", "web", "nginx:1.27");
    let out = k.run(&rollout(&["status", "--timeout=1s"])).await.failure();
    // maxSurge 25% of 3 rounds up to one new pod; maxUnavailable rounds down to none.
    assert!(
        out.stdout.contains("Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."),
        "{}",
        out.stdout
    );
    let d = fake.deployment("payments", "web").unwrap();
    assert_eq!(d["status"]["replicas"], 4);
    assert_eq!(d["status"]["updatedReplicas"], 1);
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(
        out.stderr.trim(),
        "error: timed out waiting for the condition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_statefulset_rollout_follows_controller_revisions() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let sts = |args: &[&'static str]| {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["sts/db", "-n", "payments"]);
        all
    };
    k.run(&sts(&["status", "--timeout=60s"])).await.success();
    k.run(&sts(&["restart"])).await.success();
    let status = k.run(&sts(&["status", "--timeout=60s"])).await.success();
    assert!(
        status
            .stdout
            .contains("roll out complete: 2 new pods have been updated"),
        "{}",
        status.stdout
    );
    assert_eq!(
        revisions(&k.run(&sts(&["history"])).await.stdout),
        ["1", "2"]
    );
    k.run(&sts(&["undo"])).await.success();
    k.run(&sts(&["status", "--timeout=60s"])).await.success();
    assert_eq!(
        revisions(&k.run(&sts(&["history"])).await.stdout),
        ["2", "3"]
    );
    let pods = k
        .run(&[
            "get", "pods", "-n", "payments", "-l", "app=db", "-o", "json",
        ])
        .await
        .success()
        .json();
    assert_eq!(names(&pods), ["db-0", "db-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_tails_a_pod() {
    let fake = estate().await;
    let Some(k) = Kubectl::new(&fake, &fake.admin_token()) else {
        return;
    };
    let out = k
        .run(&["logs", "db-0", "-n", "payments", "--tail=3"])
        .await
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains(" db-0 line ")));
    assert!(lines[2].contains(" db-0 line 500 "), "{lines:?}");
    let out = k
        .run(&["logs", "db-0", "-n", "payments", "--tail=1", "--timestamps"])
        .await
        .success();
    let stamp = out.stdout.split_whitespace().next().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{}",
        out.stdout
    );
    let out = k
        .run(&["logs", "db-0", "-n", "payments", "--limit-bytes=10"])
        .await
        .success();
    assert_eq!(out.stdout.len(), 10);
    let out = k.run(&["logs", "nope", "-n", "payments"]).await.failure();
    // kubectl's own wording around the server's `pods "nope" not found`.
    assert_eq!(
        out.stderr.trim(),
        "error: error from server (NotFound): pods \"nope\" not found in namespace \"payments\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_a_namespace_token_is_forbidden_elsewhere_and_an_expired_token_unauthorized() {
    let fake = estate().await;
    fake.add_deployment("billing", "api", 1, "api:1.0");
    fake.add_token("team-token", &["payments"], false);
    let Some(k) = Kubectl::new(&fake, "team-token") else {
        return;
    };
    k.run(&["get", "deploy", "-n", "payments"]).await.success();
    k.run(&["scale", "deploy/web", "-n", "payments", "--replicas=1"])
        .await
        .success();

    let out = k.run(&["get", "deploy", "-n", "billing"]).await.failure();
    assert_eq!(
        out.stderr.trim(),
        format!("Error from server (Forbidden): deployments.apps is forbidden: User \"{FORBIDDEN_USER}\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"billing\"")
    );
    let out = k
        .run(&["get", "deploy", "api", "-n", "billing"])
        .await
        .failure();
    assert_eq!(
        out.stderr.trim(),
        format!("Error from server (Forbidden): deployments.apps \"api\" is forbidden: User \"{FORBIDDEN_USER}\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"billing\"")
    );
    let out = k.run(&["get", "nodes"]).await.failure();
    assert_eq!(
        out.stderr.trim(),
        format!("Error from server (Forbidden): nodes is forbidden: User \"{FORBIDDEN_USER}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope")
    );

    fake.add_token("reader-token", &["payments"], true);
    let reader = k.with_token(&fake, "reader-token");
    reader.run(&["get", "nodes"]).await.success();

    fake.revoke_token("team-token");
    let out = k.run(&["get", "deploy", "-n", "payments"]).await.failure();
    assert_eq!(
        out.stderr.lines().last(),
        Some("error: You must be logged in to the server (Unauthorized)"),
        "{}",
        out.stderr
    );
}

/// Reads and scales the way opsbot does, through python's client: list, read, scale
/// patch, pods, a log tail, events by field selector, a 409 and a 422; then watches from
/// the list's resourceVersion and prints the first event.
const PY_CALLS: &str = r#"
import json, sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
apps, core = client.AppsV1Api(), client.CoreV1Api()
out = {}
lst = apps.list_namespaced_deployment("payments")
out["deployments"] = [d.metadata.name for d in lst.items]
out["list_rv"] = lst.metadata.resource_version
d = apps.read_namespaced_deployment("web", "payments")
out["ready"] = d.status.ready_replicas
scale = apps.read_namespaced_deployment_scale("web", "payments")
out["selector"] = scale.status.selector
out["patched"] = apps.patch_namespaced_deployment_scale("web", "payments", {"spec": {"replicas": 4}}).spec.replicas
pods = core.list_namespaced_pod("payments", label_selector="app=web")
out["pods"] = sorted(p.metadata.name for p in pods.items)
log = core.read_namespaced_pod_log(out["pods"][0], "payments", tail_lines=2)
out["log_lines"] = log.splitlines()
events = core.list_namespaced_event("payments", field_selector="involvedObject.name=web,involvedObject.kind=Deployment")
out["events"] = [e.message for e in events.items]
try:
    scale.spec.replicas = 9
    apps.replace_namespaced_deployment_scale("web", "payments", scale)
except client.ApiException as e:
    out["stale"] = [e.status, json.loads(e.body)["reason"], json.loads(e.body)["message"]]
try:
    apps.patch_namespaced_deployment_scale("web", "payments", {"spec": {"replicas": -1}})
except client.ApiException as e:
    out["negative"] = [e.status, json.loads(e.body)["message"]]
w = watch.Watch()
for event in w.stream(apps.list_namespaced_deployment, "payments", resource_version=out["list_rv"], timeout_seconds=30):
    out["watched"] = [event["type"], event["object"].metadata.name, event["object"].spec.replicas]
    w.stop()
print(json.dumps(out))
"#;

/// Watches from a resourceVersion the server no longer keeps: ApiException 410.
const PY_GONE: &str = r#"
import json, sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
apps = client.AppsV1Api()
out = {}
try:
    for event in watch.Watch().stream(apps.list_namespaced_deployment, "payments", resource_version=sys.argv[2], timeout_seconds=30):
        out.setdefault("events", []).append(event["type"])
except client.ApiException as e:
    out["gone"] = [e.status, e.reason]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kubernetes_reads_scales_watches_and_gets_410() {
    let fake = estate().await;
    let Some(py) = Python::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&config, "fake", &fake.admin_token());
    let config = config.to_str().unwrap();

    let out = py.run(PY_CALLS, &[config]).await;
    assert_eq!(out["deployments"], serde_json::json!(["web"]));
    assert_eq!(out["ready"], 3);
    assert_eq!(out["selector"], "app=web");
    assert_eq!(out["patched"], 4);
    assert_eq!(out["pods"].as_array().unwrap().len(), 4);
    let log = out["log_lines"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[1].as_str().unwrap().contains(" line 500 "));
    let events: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.starts_with("Scaled up replica set web-") && m.ends_with(" to 4 from 3")),
        "{events:?}"
    );
    assert_eq!(out["stale"][0], 409);
    assert_eq!(out["stale"][1], "Conflict");
    assert_eq!(
        out["stale"][2],
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(out["negative"][0], 422);
    assert_eq!(
        out["negative"][1],
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(out["watched"], serde_json::json!(["MODIFIED", "web", 4]));
    assert_eq!(
        fake.deployment("payments", "web").unwrap()["spec"]["replicas"],
        4
    );

    let old_rv = out["list_rv"].as_str().unwrap().to_string();
    fake.compact();
    let out = py.run(PY_GONE, &[config, &old_rv]).await;
    assert_eq!(out["gone"][0], 410, "{out}");
    assert!(
        out["gone"][1]
            .as_str()
            .unwrap()
            .starts_with("Expired: too old resource version: "),
        "{out}"
    );
    assert!(out.get("events").is_none(), "{out}");
}
