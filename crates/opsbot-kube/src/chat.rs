//! The Kubernetes chat commands, declared and answered here (`opsbot_core::chat`):
//! 工作负载, 扩容/缩容, 重启, 发布状态, 回滚, 日志, 事件, 节点. An object out of the
//! asker's scope (`provider/cluster/ns/name`) reads as one that does not exist.
//! 扩容, 缩容, 回滚 and 日志 are also the deploy subsystem's: [`ChatCommands::claim`]
//! says when the argument names a workload; 重启 is shared with the VM reboot and taken
//! only when its argument has a '/'.

use crate::cluster::Cluster;
use crate::kube::{Kube, Target};
use crate::ops::{self, OpError, ReplicaChange};
use crate::pool::Workload;
use crate::render;
use crate::resolve::Found;
use async_trait::async_trait;
use opsbot_core::chat::{Answer, Call, ChatCommand, ChatCommands, Claim, JobReport, Requester};
use std::sync::Arc;

/// The canonical names: the permissions roles grant.
pub mod names {
    pub const WORKLOADS: &str = "工作负载";
    pub const SCALE_OUT: &str = "扩容";
    pub const SCALE_IN: &str = "缩容";
    pub const RESTART: &str = "重启";
    pub const ROLLOUT_STATUS: &str = "发布状态";
    pub const ROLLBACK: &str = "回滚";
    pub const LOGS: &str = "日志";
    pub const EVENTS: &str = "事件";
    pub const NODES: &str = "节点";
}

pub static COMMANDS: [ChatCommand; 9] = [
    ChatCommand {
        name: names::WORKLOADS,
        aliases: &["workloads"],
        usage: "工作负载[:命名空间]",
        summary: "Kubernetes 的 Deployment / StatefulSet:就绪数、镜像、状态",
        destructive: false,
        args: (0, 1),
    },
    ChatCommand {
        name: names::SCALE_OUT,
        aliases: &["scale"],
        usage: "扩容:命名空间/工作负载,副本数(5 或 +2)",
        summary: "调整 Kubernetes 工作负载的副本数",
        destructive: true,
        args: (2, 2),
    },
    ChatCommand {
        name: names::SCALE_IN,
        aliases: &["scale-in"],
        usage: "缩容:命名空间/工作负载,副本数(2 或 -1)",
        summary: "减少 Kubernetes 工作负载的副本数",
        destructive: true,
        args: (2, 2),
    },
    ChatCommand {
        name: names::RESTART,
        aliases: &["restart"],
        usage: "重启:命名空间/工作负载",
        summary: "滚动重启 Kubernetes 工作负载(rollout restart)",
        destructive: true,
        args: (1, 1),
    },
    ChatCommand {
        name: names::ROLLOUT_STATUS,
        aliases: &["rollout-status"],
        usage: "发布状态:命名空间/工作负载",
        summary: "等待并报告工作负载的发布进度",
        destructive: false,
        args: (1, 1),
    },
    ChatCommand {
        name: names::ROLLBACK,
        aliases: &["rollback"],
        usage: "回滚:命名空间/Deployment[,版本]",
        summary: "Deployment 回滚到上一个或指定版本(rollout undo)",
        destructive: true,
        args: (1, 2),
    },
    ChatCommand {
        name: names::LOGS,
        aliases: &["logs"],
        usage: "日志:命名空间/Pod或工作负载[,行数]",
        summary: "Pod 日志末尾(工作负载取最新的 Pod)",
        destructive: false,
        args: (1, 2),
    },
    ChatCommand {
        name: names::EVENTS,
        aliases: &["events"],
        usage: "事件:命名空间[/对象]",
        summary: "Kubernetes 最近的事件,新的在前",
        destructive: false,
        args: (1, 1),
    },
    ChatCommand {
        name: names::NODES,
        aliases: &["nodes"],
        usage: "节点",
        summary: "Kubernetes 节点:就绪、CPU、内存",
        destructive: false,
        args: (0, 0),
    },
];

/// How long a command right after start waits for the pool's first sync.
pub(crate) const FIRST_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The commands, answered from a [`Kube`].
pub struct KubeCommands {
    kube: Arc<Kube>,
}

impl KubeCommands {
    pub fn new(kube: Arc<Kube>) -> KubeCommands {
        KubeCommands { kube }
    }

    /// The workload `text` names among what `caller` may `command`.
    fn target(&self, command: &str, text: &str, caller: &dyn Requester) -> Result<Target, Answer> {
        let visible = |scope: &str| caller.may_at(command, scope);
        match self.kube.find_workload(text, &visible) {
            Found::One(t) => Ok(t),
            Found::Many(m) => Err(Answer::Invalid(render::ambiguous(text, &m))),
            Found::None { similar } => {
                Err(Answer::Invalid(render::unknown("工作负载", text, &similar)))
            }
        }
    }

    fn clusters(&self) -> Vec<&Cluster> {
        self.kube
            .cluster_list()
            .iter()
            .map(|c| c.as_ref())
            .collect()
    }
}

fn source(caller: &dyn Requester) -> String {
    format!("chat:{}", caller.user())
}

/// Rollback's optional revision.
fn revision(args: &[String]) -> Result<Option<i64>, String> {
    match args.get(1) {
        None => Ok(None),
        Some(r) => {
            let digits = r.trim().trim_start_matches(['v', 'V', '#']);
            digits
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("版本「{r}」应是正整数(Deployment 的 revision)"))
        }
    }
}

fn line_count(args: &[String]) -> Result<Option<usize>, String> {
    match args.get(1) {
        None => Ok(None),
        Some(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("行数「{n}」应是正整数")),
    }
}

/// The first argument names an object of this subsystem's shape (`ns/name`).
fn shaped(arg: &str) -> bool {
    arg.contains('/')
}

fn fail(t: &Target, e: &OpError) -> String {
    render::op_error(t, e)
}

fn report(r: &Arc<dyn JobReport>, w: &Workload) {
    let percent = if w.desired > 0 {
        (w.ready.min(w.desired) * 100 / w.desired).clamp(0, 99) as u8
    } else {
        50
    };
    r.note(percent, render::progress(w));
}

#[async_trait]
impl ChatCommands for KubeCommands {
    fn commands(&self) -> &'static [ChatCommand] {
        &COMMANDS
    }

    fn check(&self, command: &ChatCommand, args: &[String]) -> Result<(), String> {
        match command.name {
            names::SCALE_OUT | names::SCALE_IN => ReplicaChange::parse(&args[1]).map(|_| ()),
            names::ROLLBACK => revision(args).map(|_| ()),
            names::LOGS => line_count(args).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn shares(&self) -> &'static [&'static str] {
        &[names::RESTART]
    }

    fn takes(&self, command: &ChatCommand, args: &[String]) -> bool {
        command.name != names::RESTART || args.first().is_some_and(|a| shaped(a))
    }

    async fn claim(&self, call: Call<'_>) -> Claim {
        self.kube.settled(FIRST_SYNC_WAIT).await;
        let Some(arg) = call.args.first() else {
            return Claim::No;
        };
        let command = call.command.name;
        if !matches!(
            command,
            names::SCALE_OUT | names::SCALE_IN | names::ROLLBACK | names::LOGS | names::RESTART
        ) {
            return Claim::Mine(String::new());
        }
        let visible = |scope: &str| call.caller.may_at(command, scope);
        let found = if command == names::LOGS {
            match self.kube.find_pod(arg, &visible) {
                Found::One((c, p)) => Some(format!(
                    "Kubernetes Pod {}/{}/{}",
                    c.name, p.namespace, p.name
                )),
                _ => None,
            }
        } else {
            match self.kube.find_workload(arg, &visible) {
                Found::One(t) => Some(format!("Kubernetes 工作负载 {}", t.path())),
                _ => None,
            }
        };
        match found {
            Some(what) => Claim::Mine(what),
            None if shaped(arg) => Claim::Shaped,
            None => Claim::No,
        }
    }

    async fn plan(&self, call: Call<'_>) -> Result<Option<String>, Answer> {
        self.kube.settled(FIRST_SYNC_WAIT).await;
        let command = call.command.name;
        let a = call.args;
        match command {
            names::SCALE_OUT | names::SCALE_IN => {
                let t = self.target(command, &a[0], call.caller)?;
                let change = ReplicaChange::parse(&a[1]).map_err(Answer::Invalid)?;
                ops::scale::plan(&t, change)
                    .map(|p| Some(render::scale_plan(&t, &p)))
                    .map_err(|e| Answer::Invalid(fail(&t, &e)))
            }
            names::RESTART => {
                let t = self.target(command, &a[0], call.caller)?;
                if let Some(w) = t.in_pool() {
                    ops::restart::check(&w)
                        .map_err(|r| Answer::Invalid(render::refusal(&t, &r)))?;
                }
                Ok(Some(render::restart_plan(&t)))
            }
            names::ROLLBACK => {
                let t = self.target(command, &a[0], call.caller)?;
                let wanted = revision(a).map_err(Answer::Invalid)?;
                match ops::rollback::plan(&t, wanted).await {
                    Ok(p) => Ok(Some(render::rollback_plan(&t, &p))),
                    Err(OpError::Api(e)) => {
                        Err(Answer::Failed(render::api_error(&t.cluster.path(), &e)))
                    }
                    Err(e) => Err(Answer::Invalid(fail(&t, &e))),
                }
            }
            _ => Ok(None),
        }
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        self.kube.settled(FIRST_SYNC_WAIT).await;
        let command = call.command.name;
        let a = call.args;
        let caller = call.caller;
        match command {
            names::WORKLOADS => {
                let ns = a.first().map(String::as_str);
                let mut list = render::WorkloadList::new();
                self.kube
                    .each_workload(ns, &|s| caller.may_at(command, s), &mut |c, _, w| {
                        list.push(c, w)
                    });
                Answer::Done(list.finish(&self.clusters(), ns, call.zone))
            }
            names::NODES => {
                let rows = self.kube.nodes(&|s| caller.may_at(command, s));
                Answer::Done(render::nodes(&rows, &self.clusters(), call.zone))
            }
            names::SCALE_OUT | names::SCALE_IN => {
                let t = match self.target(command, &a[0], caller) {
                    Ok(t) => t,
                    Err(answer) => return answer,
                };
                let change = match ReplicaChange::parse(&a[1]) {
                    Ok(c) => c,
                    Err(e) => return Answer::Invalid(e),
                };
                let plan = match ops::scale::plan(&t, change) {
                    Ok(p) => p,
                    Err(e) => return Answer::Invalid(fail(&t, &e)),
                };
                let source = source(caller);
                Answer::job(render::scale_summary(&t, plan.to), move |r| async move {
                    ops::scale::scale(&t, change, &source, &|w| report(&r, w))
                        .await
                        .map(|w| render::scale_done(&w))
                        .map_err(|e| fail(&t, &e))
                })
            }
            names::RESTART => {
                let t = match self.target(command, &a[0], caller) {
                    Ok(t) => t,
                    Err(answer) => return answer,
                };
                let source = source(caller);
                Answer::job(render::restart_plan(&t), move |r| async move {
                    ops::restart::restart(&t, &source, &|w| report(&r, w))
                        .await
                        .map(|w| render::restart_done(&w))
                        .map_err(|e| fail(&t, &e))
                })
            }
            names::ROLLOUT_STATUS => {
                let t = match self.target(command, &a[0], caller) {
                    Ok(t) => t,
                    Err(answer) => return answer,
                };
                Answer::job(format!("发布状态 {}", t.path()), move |r| async move {
                    ops::status::rollout_status(&t, None, &|w| report(&r, w))
                        .await
                        .map(|w| render::status_done(&w))
                        .map_err(|e| fail(&t, &e))
                })
            }
            names::ROLLBACK => {
                let t = match self.target(command, &a[0], caller) {
                    Ok(t) => t,
                    Err(answer) => return answer,
                };
                let wanted = match revision(a) {
                    Ok(w) => w,
                    Err(e) => return Answer::Invalid(e),
                };
                let source = source(caller);
                Answer::job(format!("回滚 {}", t.path()), move |r| async move {
                    ops::rollback::rollback(&t, wanted, &source, &|w| report(&r, w))
                        .await
                        .map(|(p, w)| render::rollback_done(&p, &w))
                        .map_err(|e| fail(&t, &e))
                })
            }
            names::LOGS => {
                let lines = match line_count(a) {
                    Ok(n) => n,
                    Err(e) => return Answer::Invalid(e),
                };
                let (cluster, pod) = match self.kube.find_pod(&a[0], &|s| caller.may_at(command, s))
                {
                    Found::One(found) => found,
                    Found::Many(m) => return Answer::Invalid(render::ambiguous(&a[0], &m)),
                    Found::None { similar }
                        if similar.is_empty()
                            && self
                                .kube
                                .find_workload(&a[0], &|s| caller.may_at(command, s))
                                .is_one() =>
                    {
                        return Answer::Invalid(render::no_pods(&a[0]))
                    }
                    Found::None { similar } => {
                        return Answer::Invalid(render::unknown("Pod 或工作负载", &a[0], &similar))
                    }
                };
                match ops::logs::logs(&cluster, &pod, lines).await {
                    Ok(tail) => Answer::Done(render::logs(&tail)),
                    Err(e) => Answer::Failed(render::api_error(&cluster.path(), &e)),
                }
            }
            names::EVENTS => self.events(command, &a[0], caller, call.zone).await,
            _ => Answer::Invalid(format!("未知命令 {command}")),
        }
    }
}

impl KubeCommands {
    /// 事件:ns or 事件:ns/object (the longer forms name the cluster first).
    async fn events(
        &self,
        command: &str,
        arg: &str,
        caller: &dyn Requester,
        zone: &opsbot_core::Zone,
    ) -> Answer {
        let parts: Vec<&str> = arg.split('/').collect();
        let (provider, cluster, ns, object) = match parts.as_slice() {
            [ns] => (None, None, *ns, None),
            [ns, o] => (None, None, *ns, Some(*o)),
            [c, ns, o] => (None, Some(*c), *ns, Some(*o)),
            [p, c, ns, o] => (Some(*p), Some(*c), *ns, Some(*o)),
            _ => return Answer::Invalid(render::unknown("命名空间", arg, &[])),
        };
        let visible = |s: &str| caller.may_at(command, s);
        let candidates: Vec<Arc<Cluster>> = self
            .kube
            .namespaces(&visible)
            .into_iter()
            .filter(|(c, n)| {
                n == ns
                    && cluster.is_none_or(|x| x == c.name)
                    && provider.is_none_or(|x| x == c.provider)
            })
            .map(|(c, _)| c)
            .filter(|c| {
                object.is_none_or(|o| visible(&c.scope(ns, o)) || visible(&c.scope(ns, "*")))
            })
            .collect();
        let c = match candidates.as_slice() {
            [one] => one.clone(),
            [] => {
                let names = self.kube.namespaces(&visible).into_iter().map(|(_, n)| n);
                let similar = crate::resolve::closest(ns, names);
                return Answer::Invalid(render::unknown("命名空间", ns, &similar));
            }
            many => {
                let paths: Vec<String> = many.iter().map(|c| format!("{}/{ns}", c.name)).collect();
                return Answer::Invalid(render::ambiguous(ns, &paths));
            }
        };
        match ops::events::events(&c, ns, object).await {
            Ok(rows) => Answer::Done(render::events(ns, object, &rows, zone)),
            Err(e) => Answer::Failed(render::api_error(&c.path(), &e)),
        }
    }
}
