//! One command name, several subsystems: 扩容 scales a deploy project and a Kubernetes
//! workload, 重启 reboots a VM (built in) and restarts a workload (`ns/name`). The
//! arguments' form (`takes`) and each subsystem's claim on the object decide; a name
//! both claim is asked about, and the asker's pick survives the confirmation.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use common::{harness_with, policy, role};
use opsbot_core::chat::{Answer, Call, ChatCommand, ChatCommands, Claim};
use opsbot_core::{Registry, Subsystem};
use opsbot_engine::{EngineSettings, Status};
use std::sync::{Arc, Mutex};

static PROJECT_COMMANDS: [ChatCommand; 1] = [ChatCommand {
    name: "扩容",
    aliases: &["scale"],
    usage: "扩容:项目,台数",
    summary: "扩容发布项目",
    destructive: true,
    args: (2, 2),
}];

static WORKLOAD_COMMANDS: [ChatCommand; 2] = [
    ChatCommand {
        name: "扩容",
        aliases: &["scale"],
        usage: "扩容:ns/deploy,N",
        summary: "调整工作负载副本数",
        destructive: true,
        args: (2, 2),
    },
    ChatCommand {
        name: "重启",
        aliases: &["restart"],
        usage: "重启:ns/deploy",
        summary: "滚动重启工作负载",
        destructive: true,
        args: (1, 1),
    },
];

/// What a stand-in subsystem was asked to do.
#[derive(Default)]
struct Calls(Mutex<Vec<String>>);

impl Calls {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Deploy projects `shop` and `both`; names never hold `/`.
struct Projects(Arc<Calls>);

#[async_trait]
impl ChatCommands for Projects {
    fn commands(&self) -> &'static [ChatCommand] {
        &PROJECT_COMMANDS
    }

    fn takes(&self, _: &ChatCommand, args: &[String]) -> bool {
        !args[0].contains('/')
    }

    async fn claim(&self, call: Call<'_>) -> Claim {
        match call.args[0].as_str() {
            p @ ("shop" | "both") => Claim::Mine(format!("发布项目 {p}")),
            _ => Claim::No,
        }
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let p = &call.args[0];
        if !["shop", "both"].contains(&p.as_str()) {
            return Answer::Invalid(format!("没有项目「{p}」"));
        }
        self.0
             .0
            .lock()
            .unwrap()
            .push(format!("project {}", call.args.join(",")));
        Answer::Done(format!("项目 {p} 已扩容"))
    }
}

/// Workloads `default/web` and `default/both`, named `ns/name` or by a unique name.
struct Workloads(Arc<Calls>);

impl Workloads {
    fn resolve(arg: &str) -> Option<&'static str> {
        match arg {
            "default/web" | "web" => Some("default/web"),
            "default/both" | "both" => Some("default/both"),
            _ => None,
        }
    }
}

#[async_trait]
impl ChatCommands for Workloads {
    fn commands(&self) -> &'static [ChatCommand] {
        &WORKLOAD_COMMANDS
    }

    fn shares(&self) -> &'static [&'static str] {
        &["重启"]
    }

    fn takes(&self, command: &ChatCommand, args: &[String]) -> bool {
        command.name != "重启" || args[0].contains('/')
    }

    async fn claim(&self, call: Call<'_>) -> Claim {
        match Self::resolve(&call.args[0]) {
            Some(w) => Claim::Mine(format!("Kubernetes 工作负载 {w}")),
            None if call.args[0].contains('/') => Claim::Shaped,
            None => Claim::No,
        }
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let Some(w) = Self::resolve(&call.args[0]) else {
            return Answer::Invalid(format!("没有工作负载「{}」", call.args[0]));
        };
        self.0 .0.lock().unwrap().push(format!(
            "{} {w} {}",
            call.command.name,
            call.args[1..].join(",")
        ));
        Answer::Done(format!("{} {w} 完成", call.command.name))
    }
}

struct Both(Arc<Calls>, Arc<Calls>);

impl Subsystem for Both {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(Arc::new(Projects(self.0.clone())));
        registry.commands(Arc::new(Workloads(self.1.clone())));
    }
}

async fn setup() -> (common::Harness, Arc<Calls>, Arc<Calls>) {
    let p = policy(
        vec![role("ops", &["*"], &["*"])],
        &[("zhangsan", &["ops"])],
        &[],
    );
    let mut settings = EngineSettings::default();
    settings.confirm.insert("扩容".into());
    settings.confirm.insert("重启".into());
    let mut h = harness_with(p, settings, None).await;
    let (projects, workloads) = (Arc::new(Calls::default()), Arc::new(Calls::default()));
    h.engine = h
        .engine
        .register(Arc::new(Both(projects.clone(), workloads.clone())));
    (h, projects, workloads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_decides_which_subsystem_runs_a_shared_command() {
    let (h, projects, workloads) = setup().await;

    // Only a project: the deploy side, after confirmation.
    let r = h.say("zhangsan", "扩容:shop,2").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert_eq!(h.say("zhangsan", "确认").await.text, "项目 shop 已扩容");
    assert_eq!(projects.take(), ["project shop,2"]);

    // `ns/name` is never a project, and a bare unique workload name is claimed.
    let r = h.say("zhangsan", "扩容:default/web,+2").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert_eq!(h.say("zhangsan", "y").await.text, "扩容 default/web 完成");
    let r = h.say("zhangsan", "扩容:web,5").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    h.say("zhangsan", "y").await;
    assert_eq!(
        workloads.take(),
        ["扩容 default/web +2", "扩容 default/web 5"]
    );

    // Nobody's object: the workload side answers a name in its form, the first
    // registered set any other, each with its own "unknown".
    h.say("zhangsan", "扩容:x/nothing,2").await;
    let r = h.say("zhangsan", "y").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (Status::Invalid, "没有工作负载「x/nothing」")
    );
    h.say("zhangsan", "扩容:nothing,2").await;
    let r = h.say("zhangsan", "y").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (Status::Invalid, "没有项目「nothing」")
    );
    assert!(projects.take().is_empty() && workloads.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_both_subsystems_claim_is_asked_about_and_the_pick_is_confirmed() {
    let (h, projects, workloads) = setup().await;

    let r = h.say("zhangsan", "扩容:both,3").await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert_eq!(
        r.text,
        "「both」有 2 个同名对象,扩容要操作哪一个?\n1 发布项目 both\n2 Kubernetes 工作负载 default/both\n回复序号选择,发送其他内容放弃"
    );
    let r = h.say("zhangsan", "2").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(projects.take().is_empty() && workloads.take().is_empty());
    assert_eq!(
        h.say("zhangsan", "确认").await.text,
        "扩容 default/both 完成"
    );
    assert_eq!(workloads.take(), ["扩容 default/both 3"]);
    assert!(projects.take().is_empty());

    h.say("zhangsan", "扩容:both,1").await;
    h.say("zhangsan", "1").await;
    assert_eq!(h.say("zhangsan", "确认").await.text, "项目 both 已扩容");
    assert_eq!(projects.take(), ["project both,1"]);

    // Another message drops the question: a later digit picks nothing.
    h.say("zhangsan", "扩容:both,4").await;
    assert_eq!(h.say("zhangsan", "帮助").await.status, Status::Ok);
    let r = h.say("zhangsan", "1").await;
    assert_ne!(r.status, Status::NeedsConfirmation, "{}", r.text);
    // A number out of range drops it too, and runs nothing.
    h.say("zhangsan", "扩容:both,4").await;
    let r = h.say("zhangsan", "3").await;
    assert_ne!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(projects.take().is_empty() && workloads.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_built_in_keeps_the_arguments_no_subsystem_takes() {
    let (h, _, workloads) = setup().await;

    let r = h.say("zhangsan", "重启:default/web").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert_eq!(
        h.say("zhangsan", "确认").await.text,
        "重启 default/web 完成"
    );
    assert_eq!(workloads.take(), ["重启 default/web "]);

    // A VM name goes to the built-in reboot, which knows no VM of that name.
    let r = h.say("zhangsan", "重启:web").await;
    assert!(workloads.take().is_empty(), "{}", r.text);
    assert!(r.text.contains("虚拟机"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_names_every_use_of_a_shared_name() {
    let (h, _, _) = setup().await;
    let r = h.say("zhangsan", "帮助:扩容").await;
    assert!(
        r.text.contains("用法: 扩容:项目,台数")
            && r.text
                .contains("也可用于: 扩容:ns/deploy,N — 调整工作负载副本数"),
        "{}",
        r.text
    );
    let r = h.say("zhangsan", "帮助:重启").await;
    assert!(
        r.text.contains("用法: 重启:")
            && r.text
                .contains("也可用于: 重启:ns/deploy — 滚动重启工作负载"),
        "{}",
        r.text
    );
    assert!(
        !r.text.starts_with("【重启】滚动重启工作负载"),
        "{}",
        r.text
    );
}
