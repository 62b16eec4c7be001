//! The Kubernetes REST API and its web page on a real server (SQLite store, the engine
//! with the Kubernetes subsystem registered as `opsbot serve` does, watching the
//! stand-in API server over HTTP): lists scoped like chat (`provider/cluster/ns/name`),
//! scale / restart / rollback as jobs through the engine (permission-checked and
//! audited, the result read back from the API server), logs and events, bad input.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_auth::{TokenKind, TokenRequest};
use opsbot_core::{Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::kube::FakeKube;
use opsbot_http::{ApiContext, AppState, WebConfig};
use opsbot_kube::{Kube, KubeSubsystem, Watches};
use opsbot_store::Store;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

struct World {
    base: String,
    ctx: Arc<ApiContext>,
    fake: FakeKube,
    http: reqwest::Client,
    kube: Arc<Kube>,
    _watches: Watches,
    _dir: tempfile::TempDir,
}

fn role(name: &str, commands: &[&str], scopes: &[&str]) -> Role {
    Role {
        name: name.into(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// admin: everything. zhangsan: the payments team, every Kubernetes command there.
/// lisi: reads workloads everywhere and the nodes, changes nothing.
fn policy() -> Policy {
    let k8s = [
        "工作负载",
        "扩容",
        "缩容",
        "重启",
        "回滚",
        "日志",
        "事件",
        "发布状态",
    ];
    Policy::new(
        vec![
            role("admin", &["*"], &["*"]),
            role("payments", &k8s, &["k8s/*/payments/*"]),
            role("reader", &["工作负载", "节点"], &["k8s/*", "k8s/*/*/*"]),
        ],
        BTreeMap::from([
            ("admin".to_string(), vec!["admin".to_string()]),
            ("zhangsan".to_string(), vec!["payments".to_string()]),
            ("lisi".to_string(), vec!["reader".to_string()]),
        ]),
        BTreeMap::new(),
    )
    .unwrap()
}

impl World {
    async fn start() -> World {
        let fake = FakeKube::start().await;
        fake.set_pod_ready_delay(Duration::from_millis(50));
        fake.add_node("node-1", true, "8", "32Gi");
        fake.add_namespace("payments");
        fake.add_namespace("web");
        fake.add_deployment("payments", "api", 2, "registry.local/api:1.0");
        fake.add_deployment("web", "web", 1, "registry.local/web:1.0");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig, "ctx", &fake.admin_token());
        let section: opsbot_kube::Config = toml::from_str(&format!(
            "cluster = \"prod\"\nkubeconfig = \"{}\"\nrollout_timeout = \"20s\"",
            kubeconfig.display()
        ))
        .unwrap();
        let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
            .await
            .unwrap();
        let sessions = opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap();
        let kube = Arc::new(
            Kube::connect(&[("k8s".into(), section)], store.clone(), store.clone())
                .await
                .unwrap(),
        );
        let watches = kube.start();
        let engine = Engine::new(
            store.clone(),
            sessions.clone(),
            vec![],
            policy(),
            EngineSettings::default(),
        )
        .await
        .unwrap()
        .register(Arc::new(KubeSubsystem(kube.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let web = WebConfig {
            admin_user: Some("admin".into()),
            admin_password_hash: Some(opsbot_http::config::hash_password(PASSWORD).unwrap()),
            rate_limit_per_minute: 6000,
            rate_limit_burst: 1000,
            ..WebConfig::default()
        };
        let key = opsbot_auth::SecretKey::generate();
        let mut ctx = ApiContext::new(
            Arc::new(engine),
            store.clone() as Arc<dyn Store>,
            sessions,
            web,
            Some(base.clone()),
            None,
            &key,
        )
        .await
        .unwrap();
        ctx.kube = Some(kube.clone());
        let ctx = Arc::new(ctx);
        let router = opsbot_http::router(AppState {
            store,
            version: "test",
            channels: opsbot_channels::ChannelRegistry::default(),
            api: Some(ctx.clone()),
            alerts: None,
            cmdb: None,
        });
        tokio::spawn(async move {
            opsbot_http::serve(listener, router, std::future::pending())
                .await
                .unwrap()
        });
        let w = World {
            base,
            ctx,
            fake,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            kube,
            _watches: watches,
            _dir: dir,
        };
        w.until("the cluster is listed", || {
            w.kube.workloads(None, &|_| true).len() == 2
        })
        .await;
        w
    }

    async fn until(&self, what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn token(&self, user: &str) -> String {
        self.ctx
            .tokens
            .issue(&TokenRequest {
                kind: TokenKind::Api,
                subject: user.into(),
                ttl: Duration::from_secs(3600),
                allow_ips: vec![],
                label: "test".into(),
            })
            .await
            .unwrap()
            .token
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Waits for job `id` to end and returns it.
    async fn job(&self, token: &str, id: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, j) = self.get(token, &format!("/api/v1/jobs/{id}")).await;
            assert_eq!(s, 200, "{j}");
            if j["state"] != "running" && j["state"] != "queued" {
                return j;
            }
            assert!(Instant::now() < deadline, "job {id} still running: {j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["namespace"].as_str().unwrap_or(""),
                w["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_scoped_like_chat() {
    let w = World::start().await;
    let (team, reader) = (w.token("zhangsan").await, w.token("lisi").await);

    let (s, list) = w.get(&team, "/api/v1/k8s/workloads").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(names(&list), ["payments/api"]);
    assert_eq!(list[0]["desired"], 2);
    assert_eq!(list[0]["kind"], "Deployment");
    assert_eq!(list[0]["images"], json!(["registry.local/api:1.0"]));
    let (_, list) = w.get(&reader, "/api/v1/k8s/workloads").await;
    assert_eq!(names(&list), ["payments/api", "web/web"]);
    let (_, list) = w.get(&reader, "/api/v1/k8s/workloads?namespace=web").await;
    assert_eq!(names(&list), ["web/web"]);

    // Pods: the team sees its namespace's only.
    let (s, pods) = w.get(&team, "/api/v1/k8s/pods").await;
    assert_eq!(s, 200, "{pods}");
    let pods = pods.as_array().unwrap();
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter().all(|p| p["namespace"] == "payments"),
        "{pods:?}"
    );

    // Nodes need 节点 at the cluster.
    let (_, nodes) = w.get(&team, "/api/v1/k8s/nodes").await;
    assert_eq!(nodes, json!([]));
    let (_, nodes) = w.get(&reader, "/api/v1/k8s/nodes").await;
    assert_eq!(nodes[0]["name"], "node-1");
    assert_eq!(nodes[0]["ready"], true);

    let (s, clusters) = w.get(&reader, "/api/v1/k8s/clusters").await;
    assert_eq!(s, 200);
    assert_eq!(clusters[0]["state"], "live", "{clusters}");
    assert_eq!(clusters[0]["workloads"], 2);

    // Bad input is answered, never guessed.
    let (s, _) = w.get(&team, "/api/v1/k8s/workloads?bogus=1").await;
    assert_eq!(s, 400);
    let (s, _) = w.get(&team, "/api/v1/k8s/workloads?namespace=%00").await;
    assert_eq!(s, 422);
    let (s, _) = w.get("not-a-token", "/api/v1/k8s/workloads").await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_run_as_audited_jobs_within_scope() {
    let w = World::start().await;
    let team = w.token("zhangsan").await;
    let reader = w.token("lisi").await;
    let api = "/api/v1/k8s/workloads/k8s/prod/payments/api";

    let (s, r) = w
        .post(&team, &format!("{api}/scale"), json!({"replicas": "+2"}))
        .await;
    assert_eq!(s, 202, "{r}");
    let job = w.job(&team, &r["job"]).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        w.fake.deployment("payments", "api").unwrap()["spec"]["replicas"],
        4
    );
    w.until("the pool has the new size", || {
        w.kube
            .workloads(Some("payments"), &|_| true)
            .iter()
            .any(|r| r.workload.name == "api" && r.workload.desired == 4)
    })
    .await;

    let (s, r) = w.post(&team, &format!("{api}/restart"), json!({})).await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(w.job(&team, &r["job"]).await["state"], "succeeded");
    let (s, r) = w.post(&team, &format!("{api}/rollback"), json!({})).await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(w.job(&team, &r["job"]).await["state"], "succeeded");

    // Logs and events are read through the engine too.
    let (s, r) = w
        .get(&team, "/api/v1/k8s/pods/k8s/prod/payments/api/log?lines=3")
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["command"], "日志");
    let (s, r) = w
        .get(&team, "/api/v1/k8s/events/k8s/prod/payments/api")
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["message"].as_str().unwrap().contains("Scaled"), "{r}");

    // Out of scope, or without the command: refused, nothing changes.
    let (s, r) = w
        .post(
            &team,
            "/api/v1/k8s/workloads/k8s/prod/web/web/scale",
            json!({"replicas": "5"}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    let (s, r) = w
        .post(&reader, &format!("{api}/scale"), json!({"replicas": "5"}))
        .await;
    assert_eq!(s, 403, "{r}");
    assert_eq!(
        w.fake.deployment("web", "web").unwrap()["spec"]["replicas"],
        1
    );
    assert_eq!(
        w.fake.deployment("payments", "api").unwrap()["spec"]["replicas"],
        4
    );

    // Bad input.
    let (s, _) = w.post(&team, &format!("{api}/explode"), json!({})).await;
    assert_eq!(s, 404);
    let (s, r) = w.post(&team, &format!("{api}/scale"), json!({})).await;
    assert_eq!(s, 422, "{r}");
    let (s, r) = w
        .post(&team, &format!("{api}/scale"), json!({"replicas": "-9"}))
        .await;
    assert_eq!(s, 422, "{r}");
    let (s, _) = w
        .post(&team, &format!("{api}/scale"), json!({"replicas": 5}))
        .await;
    assert_eq!(s, 422);
    let (s, _) = w
        .post(
            &team,
            &format!("{api}/scale"),
            json!({"replicas": "5", "force": true}),
        )
        .await;
    assert_eq!(s, 422);

    // Every action is in the audit log under the asker.
    let admin = w.token("admin").await;
    let (_, page) = w.get(&admin, "/api/v1/audit?per_page=100").await;
    let rows = page["items"].as_array().unwrap();
    for command in ["扩容", "重启", "回滚", "日志", "事件"] {
        assert!(
            rows.iter()
                .any(|r| r["user"] == "zhangsan" && r["command"] == command),
            "{command} not audited: {page}"
        );
    }
}

/// The `name="csrf"` value of a page.
fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_lists_workloads_and_scales_behind_csrf() {
    let w = World::start().await;
    let url = |p: &str| format!("{}{p}", w.base);
    let r = w.http.get(url("/ui/login")).send().await.unwrap();
    let login = cookie(&r, "ob_login");
    let csrf = csrf_in(&r.text().await.unwrap());
    let r = w
        .http
        .post(url("/ui/login"))
        .header("cookie", &login)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", "admin"),
            ("password", PASSWORD),
            ("next", "/ui/workloads"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = cookie(&r, "ob_session");

    let page = w
        .http
        .get(url("/ui/workloads"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(">容器<"),
        "the tab shows when Kubernetes is configured"
    );
    assert!(
        html.contains("prod/payments") && html.contains("prod/web"),
        "{html}"
    );
    assert!(html.contains("2/2") && html.contains("api:1.0"), "{html}");
    let action = "/ui/workloads/k8s/prod/payments/api/scale";
    assert!(html.contains(action), "{html}");
    let csrf = csrf_in(&html);

    // Without the page's CSRF token nothing happens.
    let r = w
        .http
        .post(url(action))
        .header("cookie", &session)
        .form(&[("replicas", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        w.fake.deployment("payments", "api").unwrap()["spec"]["replicas"],
        2
    );
    // With it: a job, and the page it redirects to follows it.
    let r = w
        .http
        .post(url(action))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("replicas", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/ui/jobs/"), "{to}");
    let id: Value = to["/ui/jobs/".len()..]
        .split('?')
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        .into();
    let admin = w.token("admin").await;
    assert_eq!(w.job(&admin, &id).await["state"], "succeeded");
    assert_eq!(
        w.fake.deployment("payments", "api").unwrap()["spec"]["replicas"],
        3
    );
}
