//! A real opsbot HTTP server with the deploy subsystem, for the deploy API and browser
//! tests: SQLite store in a temporary directory, the engine with `DeployCommands`
//! registered as `opsbot serve` does, two projects in the configuration, and the router
//! on a free loopback port. No hosts: orders are created in the store directly.

#![allow(dead_code)]

use opsbot_auth::{TokenKind, TokenRequest};
use opsbot_core::{Policy, Role};
use opsbot_deploy::{DeployConfig, Deploys, Project};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_http::{ApiContext, AppState, WebConfig};
use opsbot_store::deploy::{NewHostRun, NewOrder};
use opsbot_store::Store;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct World {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub deploys: Arc<Deploys>,
    pub ctx: Arc<ApiContext>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn role(name: &str, commands: &[&str], scopes: &[&str]) -> Role {
    Role {
        name: name.into(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// admin: everything. zhangsan (dev): builds and releases shop. lisi (lead): approves,
/// rejects and steers shop's orders. zhaoliu (watcher): sees shop's orders only.
/// wangwu (other-team): everything, on project `other` only.
pub fn policy() -> Policy {
    Policy::new(
        vec![
            role("admin", &["*"], &["*"]),
            role(
                "dev",
                &["项目", "构建", "发布", "发布单", "日志", "回滚"],
                &["deploy/shop"],
            ),
            role(
                "lead",
                &[
                    "项目",
                    "批准",
                    "驳回",
                    "发布单",
                    "日志",
                    "暂停",
                    "继续",
                    "终止",
                    "重试",
                ],
                &["deploy/shop"],
            ),
            role("watcher", &["发布单", "日志"], &["deploy/shop"]),
            role("other-team", &["*"], &["deploy/other"]),
        ],
        BTreeMap::from([
            ("admin".to_string(), vec!["admin".to_string()]),
            ("zhangsan".to_string(), vec!["dev".to_string()]),
            ("lisi".to_string(), vec!["lead".to_string()]),
            ("zhaoliu".to_string(), vec!["watcher".to_string()]),
            ("wangwu".to_string(), vec!["other-team".to_string()]),
        ]),
        BTreeMap::new(),
    )
    .unwrap()
}

/// A project whose hosts refuse SSH at once (port 1 on loopback): an order that runs
/// fails quickly instead of waiting on a network.
pub fn project(name: &str, approval: bool) -> Project {
    serde_json::from_value(json!({
        "name": name,
        "repo": {"kind": "git", "url": format!("https://ci:hunter2@git.example.com/{name}.git"), "branch": "main"},
        "hosts": ["127.0.0.1"],
        "ssh_port": 1,
        "deploy_root": format!("/srv/{name}"),
        "approval": {"required": approval},
    }))
    .unwrap()
}

impl World {
    pub async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
            .await
            .unwrap();
        let sessions = opsbot_store::connect_sessions("memory", None)
            .await
            .unwrap();
        let settings = EngineSettings::default();
        let zone = settings.zone;
        let cfg = DeployConfig {
            data_dir: dir.path().join("deploy").display().to_string(),
            connect_timeout: "2s".into(),
            projects: vec![project("shop", true), project("other", true)],
            ..DeployConfig::default()
        };
        let deploys = Deploys::new(cfg, store.clone(), "test-instance".into(), zone);
        let engine = Engine::new(store.clone(), sessions.clone(), vec![], policy(), settings)
            .await
            .unwrap()
            .register(Arc::new(opsbot_deploy::DeployCommands(deploys.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let web = WebConfig {
            admin_user: Some("admin".into()),
            admin_password_hash: Some(opsbot_http::config::hash_password(ADMIN_PASSWORD).unwrap()),
            rate_limit_per_minute: 6000,
            rate_limit_burst: 1000,
            ..WebConfig::default()
        };
        let key = opsbot_auth::SecretKey::generate();
        let mut ctx = ApiContext::new(
            Arc::new(engine),
            store.clone(),
            sessions,
            web,
            Some(base.clone()),
            None,
            &key,
        )
        .await
        .unwrap();
        ctx.deploys = Some(deploys.clone());
        let ctx = Arc::new(ctx);
        let router = opsbot_http::router(AppState {
            store: store.clone(),
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
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        World {
            base,
            store,
            deploys,
            ctx,
            http,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn token(&self, user: &str) -> String {
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

    /// An order of `project` by zhangsan in `state`, on two hosts in two batches.
    pub async fn order(&self, project: &str, state: &str) -> i64 {
        self.store
            .order_create(&NewOrder {
                project: project.into(),
                kind: "release".into(),
                build: None,
                version: None,
                state: state.into(),
                user: "zhangsan".into(),
                channel: "api".into(),
                chat: None,
                batches: 2,
                plan: String::new(),
                expires_at: None,
                hosts: vec![
                    NewHostRun {
                        host: "web-01".into(),
                        address: "127.0.0.1".into(),
                        batch: 0,
                    },
                    NewHostRun {
                        host: "web-02".into(),
                        address: "127.0.0.1".into(),
                        batch: 1,
                    },
                ],
            })
            .await
            .unwrap()
    }
}
