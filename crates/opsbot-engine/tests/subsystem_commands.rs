//! A subsystem that declares and answers its own chat commands (`opsbot_core::chat`),
//! as deploys and Kubernetes will: the engine parses them (aliases, full-width
//! separators, argument counts), lists them in 帮助, checks the permission, asks for
//! confirmation when they are destructive, hands the subsystem who asks (for scope
//! checks) and audits every call. The subsystem's command replaces the planned one of
//! the same name; it may not shadow a built-in command.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use common::{harness, policy, role};
use opsbot_core::chat::{check_name, Answer, Call, ChatCommand, ChatCommands};
use opsbot_core::{AuditResult, Registry, Subsystem};
use opsbot_engine::Status;
use opsbot_store::AuditQuery;
use std::sync::{Arc, Mutex};

static COMMANDS: [ChatCommand; 2] = [
    ChatCommand {
        name: "发布",
        aliases: &["deploy"],
        usage: "发布:项目[,构建]",
        summary: "发布项目",
        destructive: true,
        args: (1, 2),
    },
    ChatCommand {
        name: "项目",
        aliases: &["projects"],
        usage: "项目",
        summary: "可发布的项目",
        destructive: false,
        args: (0, 0),
    },
];

const PROJECTS: [&str; 2] = ["shop", "billing"];

/// Records every call it answers; a project's scope is `deploy/<project>`.
#[derive(Default)]
struct Deploys {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl ChatCommands for Deploys {
    fn commands(&self) -> &'static [ChatCommand] {
        &COMMANDS
    }

    fn check(&self, command: &ChatCommand, args: &[String]) -> Result<(), String> {
        match command.name {
            "发布" => check_name(&args[0], "项目"),
            _ => Ok(()),
        }
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let who = call.caller.user().to_string();
        self.calls
            .lock()
            .unwrap()
            .push(format!("{} {:?} {who}", call.command.name, call.args));
        let visible = |p: &str| {
            call.caller
                .may_at(call.command.name, &format!("deploy/{p}"))
        };
        match call.command.name {
            "发布" => {
                let project = call.args[0].as_str();
                if !PROJECTS.contains(&project) || !visible(project) {
                    return Answer::Invalid(format!("没有项目「{project}」"));
                }
                Answer::Done(format!("已发布 {project} by {who}"))
            }
            _ => Answer::Done(
                PROJECTS
                    .into_iter()
                    .filter(|p| visible(p))
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
        }
    }
}

struct DeploySubsystem(Arc<Deploys>);

impl Subsystem for DeploySubsystem {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(self.0.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subsystem_declares_and_answers_its_own_commands() {
    let p = policy(
        vec![
            role("shop-release", &["发布", "项目"], &["deploy/shop"]),
            role("viewer", &["项目"], &["*"]),
        ],
        &[("zhangsan", &["shop-release"]), ("lisi", &["viewer"])],
        &[],
    );
    let mut h = harness(p).await;

    // Not registered: the planned command says so, and 帮助 lists it as not configured.
    let r = h.say("zhangsan", "发布:shop").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.text.contains("尚未配置"), "{}", r.text);
    assert_eq!(h.say("zhangsan", "项目").await.status, Status::Invalid);

    let deploys = Arc::new(Deploys::default());
    h.engine = h
        .engine
        .register(Arc::new(DeploySubsystem(deploys.clone())));

    // zhangsan's list fits one page.
    let help = h.say("zhangsan", "帮助").await.text;
    assert!(help.contains("发布:项目[,构建] — 发布项目"), "{help}");
    assert!(help.contains("项目 — 可发布的项目"), "{help}");
    // Registered, 发布 is no longer "not configured"; 回滚 still is, but zhangsan may
    // not run it, so 帮助 does not offer it to him even as that (issue 15).
    let missing = help.lines().find(|l| l.contains("未配置")).unwrap_or("");
    assert!(
        !missing.contains("发布") && !missing.contains("回滚"),
        "{help}"
    );

    // An alias, full-width separators: confirmed first, then run as the asker.
    let r = h.say("zhangsan", "Deploy：shop，42").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(r.text.starts_with("即将执行: 发布:shop,42\n"), "{}", r.text);
    assert!(deploys.calls.lock().unwrap().is_empty());
    let r = h.say("zhangsan", "确认").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (Status::Ok, "已发布 shop by zhangsan")
    );

    // Arguments are checked before the subsystem hears of them, with the usage.
    let r = h.say("zhangsan", "发布:shop,1,2").await;
    assert_eq!(r.status, Status::Invalid);
    assert_eq!(
        r.text,
        "发布: 需要 1–2 个参数,收到 3 个\n用法: 发布:项目[,构建]"
    );
    let r = h.say("zhangsan", "发布:a/b").await;
    assert_eq!(r.text, "发布: 项目不能包含字符 '/'\n用法: 发布:项目[,构建]");

    // Out of the asker's scope reads as unknown; without the command, denied.
    h.say("zhangsan", "发布:billing").await;
    let r = h.say("zhangsan", "y").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (Status::Invalid, "没有项目「billing」")
    );
    let r = h.say("lisi", "发布:shop").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
    assert_eq!(h.say("zhangsan", "项目").await.text, "shop");
    assert_eq!(h.say("lisi", "projects").await.text, "shop、billing");

    // A misspelt subsystem command is suggested like a built-in one.
    let r = h.say("zhangsan", "项木").await;
    assert!(r.text.contains("您是不是要用「项目」"), "{}", r.text);

    let calls = deploys.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "发布 [\"shop\", \"42\"] zhangsan",
            "发布 [\"billing\"] zhangsan",
            "项目 [] zhangsan",
            "项目 [] lisi",
        ]
    );

    let audit = h
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let result = |user: &str, text: &str| {
        audit
            .iter()
            .find(|e| e.user == user && e.text == text)
            .map(|e| (e.command.clone(), e.result))
    };
    assert_eq!(
        result("zhangsan", "Deploy：shop，42"),
        Some((Some("发布".into()), AuditResult::Pending))
    );
    assert_eq!(
        result("lisi", "发布:shop"),
        Some((Some("发布".into()), AuditResult::Denied))
    );
    // A text that does not parse names no command, as for built-in ones.
    assert_eq!(
        result("zhangsan", "发布:a/b"),
        Some((None, AuditResult::Invalid))
    );
    assert_eq!(
        result("lisi", "projects"),
        Some((Some("项目".into()), AuditResult::Ok))
    );
}

static SHADOWING: [ChatCommand; 1] = [ChatCommand {
    name: "查找",
    aliases: &["查"],
    usage: "查找:关键字",
    summary: "",
    destructive: false,
    args: (1, 1),
}];

struct Shadowing;

#[async_trait]
impl ChatCommands for Shadowing {
    fn commands(&self) -> &'static [ChatCommand] {
        &SHADOWING
    }

    async fn run(&self, _: Call<'_>) -> Answer {
        Answer::Done(String::new())
    }
}

impl Subsystem for Shadowing {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(self);
    }
}

#[tokio::test]
#[should_panic(expected = "subsystem command \"查\" is already the built-in command \"查\"")]
async fn a_subsystem_may_not_shadow_a_built_in_command() {
    let h = harness(common::admin_policy()).await;
    let _ = h.engine.register(Arc::new(Shadowing));
}
