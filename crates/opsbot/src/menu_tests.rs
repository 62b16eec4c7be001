//! Seed 001's menu from configuration only: `examples/menu-seed-001.toml` loaded by this
//! binary's configuration loader (figment, with its checks), then driven against a
//! stand-in workload source and a stand-in 扩容 registered as a subsystem, step by step
//! and as one path; the leaf's command is exactly `扩容:oa/<deploy>,<n>`, confirmed and
//! audited. Also: the built-in menu names only commands this binary knows, and a bad
//! `[[menu]]` stops the loader with its key path.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use crate::config::Config;
use async_trait::async_trait;
use opsbot_core::chat::{
    Answer, Call, ChatCommand, ChatCommands, MenuEntry, MenuSource, Requester,
};
use opsbot_core::{AuditResult, Policy, Registry, Role, Subsystem};
use opsbot_engine::menu::{command_word, MenuTree, Node};
use opsbot_engine::{Discard, Engine, EngineSettings, Incoming, Response, Status};
use opsbot_store::AuditQuery;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/menu-seed-001.toml"
);

struct Workloads;

#[async_trait]
impl MenuSource for Workloads {
    fn sources(&self) -> &'static [&'static str] {
        &["workloads"]
    }

    async fn entries(
        &self,
        _source: &str,
        params: &BTreeMap<String, String>,
        _caller: &dyn Requester,
    ) -> Result<Vec<MenuEntry>, String> {
        let names: &[&str] = match params.get("ns").map(String::as_str) {
            Some("oa") => &["web-api", "worker"],
            Some("shop") => &["cart"],
            _ => &[],
        };
        Ok(names
            .iter()
            .map(|n| MenuEntry {
                label: format!("{n} (2/2)"),
                value: n.to_string(),
            })
            .collect())
    }
}

static SCALE: [ChatCommand; 1] = [ChatCommand {
    name: "扩容",
    aliases: &["scale"],
    usage: "扩容:ns/deploy,N",
    summary: "调整副本数",
    destructive: true,
    args: (2, 2),
}];

#[derive(Default)]
struct Scaler {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl ChatCommands for Scaler {
    fn commands(&self) -> &'static [ChatCommand] {
        &SCALE
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}:{}", call.command.name, call.args.join(",")));
        Answer::Done(format!("{} → {}", call.args[0], call.args[1]))
    }
}

struct Kube(Arc<Scaler>);

impl Subsystem for Kube {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(self.0.clone());
        registry.menu_source(Arc::new(Workloads));
    }
}

async fn engine(config: &Config, dir: &Path, scaler: Arc<Scaler>) -> Engine {
    let url = format!("sqlite://{}/opsbot.db", dir.display());
    let store = opsbot_store::connect(&url).await.unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let policy = Policy::new(
        vec![Role {
            name: "ops".into(),
            commands: vec!["*".into()],
            scopes: vec!["*".into()],
        }],
        [("ops".to_string(), vec!["ops".to_string()])].into(),
        BTreeMap::new(),
    )
    .unwrap();
    let settings = EngineSettings {
        confirm: config.confirm_commands(),
        menu: config.menu_tree().unwrap(),
        ..EngineSettings::default()
    };
    let engine = Engine::new(store, sessions, Vec::new(), policy, settings)
        .await
        .unwrap()
        .register(Arc::new(Kube(scaler)));
    engine.check_menu().unwrap();
    engine
}

async fn say(engine: &Engine, text: &str) -> Response {
    let msg = Incoming {
        channel: "wecom:ops".into(),
        user: "ops".into(),
        chat: None,
        text: text.into(),
        assume_yes: false,
    };
    engine.handle(msg, Arc::new(Discard)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_from_the_example_configuration() {
    let config = Config::load(Some(Path::new(EXAMPLE))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scaler = Arc::new(Scaler::default());
    let engine = engine(&config, dir.path(), scaler.clone()).await;

    // Step by step: 事业部 → 功能 → 工作负载 → 增加 POD 数 → the number.
    let r = say(&engine, "菜单").await;
    assert!(r.text.contains("\n1 选择事业部\n"), "{}", r.text);
    let r = say(&engine, "1").await;
    assert!(r.text.contains("\n0 OA系统\n1 电商\n"), "{}", r.text);
    let r = say(&engine, "0").await;
    assert!(r.text.contains("\n0 K8s操作\n1 MySQL操作\n"), "{}", r.text);
    let r = say(&engine, "K8s操作").await;
    assert!(
        r.text.contains("\n0 web-api (2/2)\n1 worker (2/2)\n"),
        "{}",
        r.text
    );
    let r = say(&engine, "1").await;
    assert!(
        r.text.starts_with("【worker】请选择操作\n0 增加 POD 数\n"),
        "{}",
        r.text
    );
    let r = say(&engine, "0").await;
    assert!(r.text.contains("请输入 POD 数"), "{}", r.text);
    let r = say(&engine, "4").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let r = say(&engine, "确认").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);

    // As one path, in the seed's style, the workload by its name (with a `-`).
    let r = say(&engine, "1-OA系统-0-web-api-0-6").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let r = say(&engine, "y").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);

    assert_eq!(
        *scaler.calls.lock().unwrap(),
        ["扩容:oa/worker,4", "扩容:oa/web-api,6"]
    );
    let log = engine
        .store()
        .audit_log(&AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for (asked, confirmed, command) in [
        ("4", "确认", "扩容:oa/worker,4"),
        ("1-OA系统-0-web-api-0-6", "y", "扩容:oa/web-api,6"),
    ] {
        let find = |text: &str| {
            log.iter()
                .find(|e| e.text == text && e.command.as_deref() == Some(command))
                .map(|e| e.result)
        };
        assert_eq!(find(asked), Some(AuditResult::Pending), "{log:?}");
        assert_eq!(find(confirmed), Some(AuditResult::Ok), "{log:?}");
    }
}

#[test]
fn the_built_in_menu_names_only_known_commands() {
    fn walk(node: &Node, out: &mut Vec<String>) {
        if let Some(c) = node.command() {
            out.push(command_word(c).to_string());
        }
        for c in node.children() {
            walk(c, out);
        }
    }
    let mut words = Vec::new();
    walk(&MenuTree::builtin().root, &mut words);
    assert!(words.len() > 20, "{words:?}");
    for w in words {
        assert!(crate::app::canonical_name(&w).is_some(), "{w}");
    }
}

#[test]
fn a_bad_menu_stops_the_loader_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("opsbot.toml");
    let text = std::fs::read_to_string(EXAMPLE).unwrap().replacen(
        r#"command = "扩容:{ns}/{deploy},{input}""#,
        r#"command = "扩容:{ns}/{deployment},{input}""#,
        1,
    );
    std::fs::write(&file, text).unwrap();
    let e = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(
        e.contains("key menu[1].children[0].children[0].children[0].command: unknown variable {deployment}"),
        "{e}"
    );
    std::fs::write(&file, "[[menu]]\nlabel = \"x\"\ncommand = \"nosuch\"\n").unwrap();
    let e = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(
        e.contains("key menu[0].command: unknown command \"nosuch\""),
        "{e}"
    );
    std::fs::write(
        &file,
        "[[menu]]\nlabel = \"x\"\ncommand = \"概况\"\nafter = \"top\"\nbogus = 1\n",
    )
    .unwrap();
    let e = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(e.contains("bogus"), "{e}");
}
