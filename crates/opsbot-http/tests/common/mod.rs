//! A real opsbot HTTP server for the REST API and web UI tests: SQLite store in a
//! temporary directory, the sim cluster, the engine, a fake WeCom (for OAuth) and the
//! router on a free loopback port, reached over real HTTP.

#![allow(dead_code)]

use opsbot_auth::{TokenKind, TokenRequest};
use opsbot_channels::wecom::{AppConfig, Settings, WecomChannel};
use opsbot_core::{Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::FakeWecom;
use opsbot_http::{ApiContext, AppState, WebConfig};
use opsbot_store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CORP: &str = "ww1436e0e65a779aee";
pub const AGENT: i64 = 1000002;
pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct World {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub ctx: Arc<ApiContext>,
    pub fake: FakeWecom,
    pub http: reqwest::Client,
    /// The instance's secret key: a second instance on the same store needs the same.
    pub key: opsbot_auth::SecretKey,
    /// The deploy subsystem, with project `shop` (approval required) configured.
    pub deploys: Arc<opsbot_deploy::Deploys>,
    /// The Kubernetes cluster `k8s/prod` behind the Kubernetes subsystem.
    pub kube_fake: opsbot_fakes::kube::FakeKube,
    _kube_watches: opsbot_kube::Watches,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<String>,
    /// The sim's delay multiplier (0.01: operations take milliseconds).
    pub sim_time_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limit_per_minute: 6000,
            rate_limit_burst: 1000,
            public_url: None,
            trusted_proxies: Vec::new(),
            sim_time_scale: 0.01,
        }
    }
}

fn role(name: &str, commands: &[&str], scopes: &[&str]) -> Role {
    Role {
        name: name.into(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// admin: everything. zhangsan (operator): reads, 开机/关机 and 任务 in DC0 only.
/// lisi (viewer): the VM list. wangwu: a WeCom member with no role. zhaoliu (dc0-all):
/// every command, but in DC0 only (not an administrator).
pub fn policy() -> Policy {
    Policy::new(
        vec![
            role("admin", &["*"], &["*"]),
            role(
                "operator",
                &[
                    "概况",
                    "查",
                    "虚拟机",
                    "主机",
                    "存储",
                    "网络",
                    "集群",
                    "数据中心",
                    "模板",
                    "任务",
                    "开机",
                    "关机",
                ],
                &["sim/DC0/**"],
            ),
            role("viewer", &["虚拟机"], &["*"]),
            role("dc0-all", &["*"], &["sim/DC0/**"]),
        ],
        BTreeMap::from([
            ("admin".to_string(), vec!["admin".to_string()]),
            ("zhangsan".to_string(), vec!["operator".to_string()]),
            ("lisi".to_string(), vec!["viewer".to_string()]),
            ("zhaoliu".to_string(), vec!["dc0-all".to_string()]),
        ]),
        BTreeMap::new(),
    )
    .unwrap()
}

impl World {
    pub async fn start() -> World {
        Self::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
            .await
            .unwrap();
        let sessions = opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap();
        let sim = Arc::new(opsbot_sim::SimProvider::new(
            "sim",
            store.clone(),
            opts.sim_time_scale,
        ));
        let deploys = opsbot_deploy::Deploys::new(
            opsbot_deploy::DeployConfig {
                data_dir: dir.path().join("deploy").display().to_string(),
                projects: vec![serde_json::from_value(serde_json::json!({
                    "name": "shop",
                    "repo": {"kind": "git", "url": "https://git.example.com/shop.git"},
                    "hosts": ["127.0.0.1"],
                    "deploy_root": "/srv/shop",
                    "approval": {"required": true},
                }))
                .unwrap()],
                ..opsbot_deploy::DeployConfig::default()
            },
            store.clone(),
            "test-instance".into(),
            EngineSettings::default().zone,
        );
        // A Kubernetes cluster (the stand-in API server): namespace payments with a
        // one-pod Deployment api, one node.
        let kube_fake = opsbot_fakes::kube::FakeKube::start().await;
        kube_fake.add_node("node-1", true, "8", "32Gi");
        kube_fake.add_namespace("payments");
        kube_fake.add_deployment("payments", "api", 1, "registry.local/api:1.0");
        let kubeconfig = dir.path().join("kubeconfig");
        kube_fake.write_kubeconfig(&kubeconfig, "ctx", &kube_fake.admin_token());
        let section: opsbot_kube::Config = toml::from_str(&format!(
            "cluster = \"prod\"\nkubeconfig = \"{}\"",
            kubeconfig.display()
        ))
        .unwrap();
        let kube = Arc::new(
            opsbot_kube::Kube::connect(&[("k8s".into(), section)], store.clone(), store.clone())
                .await
                .unwrap(),
        );
        let kube_watches = kube.start();
        kube.settled(Duration::from_secs(20)).await;
        let engine = Arc::new(
            Engine::new(
                store.clone(),
                sessions.clone(),
                vec![sim],
                policy(),
                EngineSettings::default(),
            )
            .await
            .unwrap()
            .register(Arc::new(opsbot_deploy::DeployCommands(deploys.clone())))
            .register(Arc::new(opsbot_kube::KubeSubsystem(kube.clone()))),
        );
        engine.ensure_synced().await.unwrap();
        let fake = FakeWecom::start().await.unwrap();
        fake.add_app(CORP, "app-secret", AGENT);
        fake.add_users(&["zhangsan", "lisi", "wangwu", "admin", "zhaoliu"]);
        let app = AppConfig {
            callback: opsbot_channels::Callback::new("ops", "QDG6eK"),
            corp_id: CORP.into(),
            agent_id: AGENT,
            secret: "app-secret".into(),
            encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
            api_base: fake.base_url(),
        };
        let channel = Arc::new(
            WecomChannel::new(&[app], engine.clone(), store.clone(), Settings::default()).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let public_url = opts.public_url.clone().unwrap_or_else(|| base.clone());
        fake.set_trusted_domain(AGENT, &addr.to_string());
        let web = WebConfig {
            admin_user: Some("admin".into()),
            admin_password_hash: Some(opsbot_http::config::hash_password(ADMIN_PASSWORD).unwrap()),
            wecom_app: Some("ops".into()),
            oauth_authorize_url: fake.authorize_url(),
            rate_limit_per_minute: opts.rate_limit_per_minute,
            rate_limit_burst: opts.rate_limit_burst,
            trusted_proxies: opts.trusted_proxies.clone(),
            ..WebConfig::default()
        };
        let key = opsbot_auth::SecretKey::generate();
        let mut ctx = ApiContext::new(
            engine,
            store.clone(),
            sessions,
            web,
            Some(public_url),
            Some(&channel),
            &key,
        )
        .await
        .unwrap();
        ctx.deploys = Some(deploys.clone());
        ctx.kube = Some(kube);
        let ctx = Arc::new(ctx);
        let router = opsbot_http::router(AppState {
            store: store.clone(),
            version: "test",
            channels: opsbot_channels::ChannelRegistry::default().with(channel.clone()),
            api: Some(ctx.clone()),
            alerts: None,
            cmdb: None,
        });
        tokio::spawn(async move {
            opsbot_http::serve(listener, router, std::future::pending())
                .await
                .unwrap()
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        World {
            base,
            store,
            ctx,
            fake,
            http,
            key,
            deploys,
            kube_fake,
            _kube_watches: kube_watches,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An API token for `user`.
    pub async fn token(&self, user: &str) -> String {
        self.token_with(user, Duration::from_secs(3600), &[]).await
    }

    pub async fn token_with(&self, user: &str, ttl: Duration, allow: &[&str]) -> String {
        self.ctx
            .tokens
            .issue(&TokenRequest {
                kind: TokenKind::Api,
                subject: user.into(),
                ttl,
                allow_ips: allow
                    .iter()
                    .map(|a| opsbot_auth::parse_cidr(a).unwrap())
                    .collect(),
                label: "test".into(),
            })
            .await
            .unwrap()
            .token
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The first VM of the list `query` returns, as admin sees it.
    pub async fn vm(&self, query: &str) -> Value {
        let admin = self.token("admin").await;
        let (status, page) = self.get(&admin, &format!("/api/v1/vms?{query}")).await;
        assert_eq!(status, 200, "{page}");
        page["items"][0].clone()
    }

    /// Polls a job until it leaves `running` (deadline 20 s).
    pub async fn wait_job(&self, token: &str, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, job) = self.get(token, &format!("/api/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["state"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} still running: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The value of `name` in a response's Set-Cookie headers, with its attributes.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// Just `name=value` of a Set-Cookie header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_string()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
