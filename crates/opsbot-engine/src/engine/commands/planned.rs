//! Commands of subsystems this build does not have yet (Kubernetes, deploys). Their
//! grammar is fixed so roles can grant them today; running one says it is not
//! configured, and 帮助 lists them as such. Each moves to its subsystem's module when
//! that subsystem arrives.

use super::{names, Ctx, Handled};
use crate::command::{Command, CommandSpec};
use crate::engine::failed;
use opsbot_core::Feature;

pub const SCALE: CommandSpec = CommandSpec::new(
    names::SCALE,
    &["scale"],
    "扩容:deployment,副本数",
    "调整 Kubernetes deployment 副本数",
    |a| {
        a.count(2, 2)?;
        Ok(Command::Scale {
            deployment: a.text(0),
            replicas: a.number(1, "副本数", 0, 1000)?,
        })
    },
)
.destructive()
.requires(Feature::Kubernetes)
.runs(kubernetes_missing);

pub const DEPLOY: CommandSpec = CommandSpec::new(
    names::DEPLOY,
    &["deploy"],
    "发布:项目[,构建]",
    "发布项目",
    |a| {
        a.count(1, 2)?;
        Ok(Command::Deploy {
            project: a.text(0),
            build: a.opt(1),
        })
    },
)
.destructive()
.requires(Feature::Deploys)
.runs(deploys_missing);

pub const ROLLBACK: CommandSpec = CommandSpec::new(
    names::ROLLBACK,
    &["rollback"],
    "回滚:项目",
    "回滚到上一个成功的构建",
    |a| {
        a.count(1, 1)?;
        Ok(Command::Rollback { project: a.text(0) })
    },
)
.destructive()
.requires(Feature::Deploys)
.runs(deploys_missing);

pub const APPROVE: CommandSpec = CommandSpec::new(
    names::APPROVE,
    &["approve"],
    "批准:发布单",
    "批准发布单",
    |a| {
        a.count(1, 1)?;
        Ok(Command::Approve { order: a.text(0) })
    },
)
.requires(Feature::Deploys)
.runs(deploys_missing);

fn kubernetes_missing(_: Ctx<'_>, _: Command) -> Handled<'_> {
    Box::pin(async {
        Ok(failed(
            "扩容: 尚未配置 Kubernetes provider(kind = \"kubernetes\"),此功能暂不可用",
        ))
    })
}

fn deploys_missing(_: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        Ok(failed(format!(
            "{}: 发布功能尚未配置,此功能暂不可用",
            cmd.name()
        )))
    })
}
