//! The deploy commands in chat (and the numeric menu, and the API through the engine):
//! declared once here, parsed, permitted, confirmed and audited by the engine, answered
//! by [`Deploys`].

use crate::deploys::{Deploys, Refused};
use crate::orders::{names, order_id, Next};
use async_trait::async_trait;
use opsbot_core::chat::{Answer, Call, ChatCommand, ChatCommands, Claim};
use opsbot_core::{Registry, Subsystem};
use std::sync::Arc;

pub static COMMANDS: [ChatCommand; 14] = [
    ChatCommand {
        name: names::PROJECTS,
        aliases: &["projects"],
        usage: "项目",
        summary: "发布项目及其当前版本",
        destructive: false,
        args: (0, 0),
    },
    ChatCommand {
        name: names::BUILD,
        aliases: &["build"],
        usage: "构建:项目[,分支|tag|commit]",
        summary: "从 git/svn 拉取代码并构建制品",
        destructive: false,
        args: (1, 2),
    },
    ChatCommand {
        name: names::DEPLOY,
        aliases: &["deploy"],
        usage: "发布:项目[,构建号][,主机…]",
        summary: "创建发布单(需要时等待审批)并发布",
        destructive: true,
        args: (1, 32),
    },
    ChatCommand {
        name: names::APPROVE,
        aliases: &["approve"],
        usage: "批准:发布单号",
        summary: "批准发布单并开始发布",
        destructive: false,
        args: (1, 1),
    },
    ChatCommand {
        name: names::REJECT,
        aliases: &["reject"],
        usage: "驳回:发布单号[,原因]",
        summary: "驳回发布单",
        destructive: false,
        // Without a reason from a card's 驳回 button.
        args: (1, 2),
    },
    ChatCommand {
        name: names::ORDERS,
        aliases: &["releases"],
        usage: "发布单[:单号]",
        summary: "发布单列表,或一个发布单的各主机进度",
        destructive: false,
        args: (0, 1),
    },
    ChatCommand {
        name: names::PAUSE,
        aliases: &["pause"],
        usage: "暂停:发布单号",
        summary: "进行中的主机完成后暂停发布",
        destructive: false,
        args: (1, 1),
    },
    ChatCommand {
        name: names::RESUME,
        aliases: &["resume"],
        usage: "继续:发布单号",
        summary: "继续暂停、中断或等待窗口的发布单",
        destructive: false,
        args: (1, 1),
    },
    ChatCommand {
        name: names::ABORT,
        aliases: &["abort"],
        usage: "终止:发布单号",
        summary: "终止发布单(其余主机不再发布)",
        destructive: true,
        args: (1, 1),
    },
    ChatCommand {
        name: names::RETRY,
        aliases: &["retry"],
        usage: "重试:发布单号",
        summary: "对发布单中失败的主机重新发布",
        destructive: true,
        args: (1, 1),
    },
    ChatCommand {
        name: names::ROLLBACK,
        aliases: &["rollback"],
        usage: "回滚:项目[,版本]",
        summary: "回滚到上一个版本或指定版本(发布单号)",
        destructive: true,
        args: (1, 2),
    },
    ChatCommand {
        name: names::SCALE_OUT,
        aliases: &["scale", "scale-out"],
        usage: "扩容:项目,台数",
        summary: "从项目模板克隆主机,加入项目并发布当前版本",
        destructive: true,
        args: (2, 2),
    },
    ChatCommand {
        name: names::SCALE_IN,
        aliases: &["scale-in"],
        usage: "缩容:项目,台数",
        summary: "把扩容加入的主机移出项目并关机",
        destructive: true,
        args: (2, 2),
    },
    ChatCommand {
        name: names::LOGS,
        aliases: &["logs"],
        usage: "日志:发布单号[,主机]",
        summary: "发布日志末尾",
        destructive: false,
        args: (1, 2),
    },
];

/// The deploy subsystem as the engine sees it.
pub struct DeployCommands(pub Arc<Deploys>);

impl Subsystem for DeployCommands {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(self);
    }
}

/// 发布:项目[,构建号][,主机…]: a number second is a build.
fn deploy_args(a: &[String]) -> (Option<&str>, &[String]) {
    match a.get(1) {
        Some(b)
            if b.trim_start_matches(['#', '#'])
                .chars()
                .all(|c| c.is_ascii_digit()) =>
        {
            (Some(b.as_str()), &a[2..])
        }
        _ => (None, &a[1..]),
    }
}

/// A host count for 扩容 / 缩容.
fn count(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=50).contains(n))
        .ok_or_else(|| format!("台数「{text}」应为 1–50 的整数"))
}

fn refused(r: Refused) -> Answer {
    match r {
        Refused::Invalid(t) => Answer::Invalid(t),
        Refused::Failed(t) => Answer::Failed(t),
    }
}

impl DeployCommands {
    /// An accepted order request: said, or run as a job.
    fn next(&self, next: Result<Next, Refused>) -> Answer {
        match next {
            Ok(Next::Said(t)) => Answer::Done(t),
            Ok(Next::Run { order, summary }) => {
                let d = self.0.clone();
                Answer::job(summary, move |report| crate::release::run(d, order, report))
            }
            Err(r) => refused(r),
        }
    }
}

#[async_trait]
impl ChatCommands for DeployCommands {
    fn commands(&self) -> &'static [ChatCommand] {
        &COMMANDS
    }

    fn check(&self, command: &ChatCommand, args: &[String]) -> Result<(), String> {
        let order_arg = matches!(
            command.name,
            names::APPROVE
                | names::REJECT
                | names::PAUSE
                | names::RESUME
                | names::ABORT
                | names::RETRY
                | names::LOGS
        ) || (command.name == names::ORDERS && !args.is_empty());
        if order_arg {
            order_id(&args[0]).map_err(|r| r.text().to_string())?;
        } else if let Some(p) = args.first() {
            opsbot_core::chat::check_name(p, "项目名")?;
        }
        if matches!(command.name, names::SCALE_OUT | names::SCALE_IN) {
            count(&args[1])?;
        }
        Ok(())
    }

    /// Project names never hold `/`: `扩容:ns/web,2` is a Kubernetes workload's.
    fn takes(&self, _command: &ChatCommand, args: &[String]) -> bool {
        args.first().is_none_or(|a| !a.contains('/'))
    }

    /// 扩容, 缩容, 回滚 and 日志 are also Kubernetes commands: the call is the deploy
    /// subsystem's when it names a project (or order) the caller can see.
    async fn claim(&self, call: Call<'_>) -> Claim {
        let a = call.args;
        match call.command.name {
            names::LOGS => match order_id(&a[0]) {
                Ok(id) => Claim::Mine(format!("发布单 #{id} 的日志")),
                Err(_) => Claim::No,
            },
            name => match self.0.project_for(call.caller, name, &a[0]).await {
                Ok(p) => Claim::Mine(format!("发布项目 {}", p.name)),
                Err(_) => Claim::No,
            },
        }
    }

    async fn plan(&self, call: Call<'_>) -> Result<Option<String>, Answer> {
        let d = &self.0;
        let a = call.args;
        let caller = call.caller;
        let plan = match call.command.name {
            names::SCALE_OUT => {
                let n = count(&a[1]).map_err(Answer::Invalid)?;
                d.plan_scale_out(caller, &a[0], n)
                    .await
                    .map(|(p, g)| crate::scale::growth_plan(&p, &g))
            }
            names::SCALE_IN => {
                let n = count(&a[1]).map_err(Answer::Invalid)?;
                d.plan_scale_in(caller, &a[0], n)
                    .await
                    .map(|(p, h)| crate::scale::shrink_plan(&p, &h))
            }
            names::DEPLOY => {
                let (build, hosts) = deploy_args(a);
                d.plan_release(caller, &a[0], build, hosts).await
            }
            names::ROLLBACK => {
                d.plan_rollback(caller, &a[0], a.get(1).map(String::as_str))
                    .await
            }
            _ => return Ok(None),
        };
        plan.map(Some).map_err(refused)
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let d = &self.0;
        let a = call.args;
        let caller = call.caller;
        let arg = |i: usize| a.get(i).map(String::as_str);
        match call.command.name {
            names::PROJECTS => match d.visible_projects(caller, names::PROJECTS).await {
                Ok(ps) => {
                    let mut deployed = Vec::new();
                    for p in &ps {
                        deployed.push(d.store().deployed(&p.name).await.unwrap_or_default());
                    }
                    Answer::Done(crate::render::project_list(&ps, &deployed))
                }
                Err(r) => refused(r),
            },
            names::BUILD => match d.create_build(caller, &a[0], arg(1).unwrap_or("")).await {
                Ok(acc) => {
                    let d = d.clone();
                    let id = acc.build;
                    Answer::job(acc.summary, move |report| d.run_build(id, report))
                }
                Err(r) => refused(r),
            },
            names::DEPLOY => {
                let (build, hosts) = deploy_args(a);
                self.next(d.create_release(caller, &a[0], build, hosts).await)
            }
            names::SCALE_OUT => match count(&a[1]) {
                Ok(n) => self.next(d.create_scale_out(caller, &a[0], n).await),
                Err(e) => Answer::Invalid(e),
            },
            names::SCALE_IN => match count(&a[1]) {
                Ok(n) => self.next(d.create_scale_in(caller, &a[0], n).await),
                Err(e) => Answer::Invalid(e),
            },
            names::APPROVE => self.next(d.approve(caller, &a[0]).await),
            names::REJECT => self.next(d.reject(caller, &a[0], arg(1).unwrap_or("")).await),
            names::ORDERS => match d.orders(caller, arg(0)).await {
                Ok(t) => Answer::Done(t),
                Err(r) => refused(r),
            },
            names::PAUSE => self.next(d.pause(caller, &a[0]).await),
            names::RESUME => self.next(d.resume(caller, &a[0]).await),
            names::ABORT => self.next(d.abort(caller, &a[0]).await),
            names::RETRY => self.next(d.create_retry(caller, &a[0]).await),
            names::ROLLBACK => self.next(d.create_rollback(caller, &a[0], arg(1)).await),
            names::LOGS => match d.logs(caller, &a[0], arg(1)).await {
                Ok(t) => Answer::Done(t),
                Err(r) => refused(r),
            },
            other => Answer::Invalid(format!("未知命令「{other}」")),
        }
    }
}
