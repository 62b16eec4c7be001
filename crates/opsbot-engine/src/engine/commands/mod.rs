//! The commands, one module per area. Each module declares its commands once, as
//! [`CommandSpec`]s (names and aliases, usage and summary, argument parser, whether it
//! asks for confirmation, the subsystem it needs, its handler), and [`COMMANDS`] lists
//! them in the order 帮助 shows them. The parser, 帮助, the API's validation and the
//! engine's dispatch all read this table; the canonical name is also the permission
//! roles grant.

pub mod alerts;
pub mod conversation;
pub mod jobs;
mod plan;
pub mod planned;
pub mod pool;
pub mod vm;

use super::{Asker, Engine};
use crate::command::{Command, CommandSpec};
use crate::pool::PoolView;
use crate::reply::{ReplySink, Response};
use crate::session::Session;
use opsbot_store::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The canonical command names: what roles grant and the audit log records. Other
/// crates (the REST API, the web UI) name commands through these, never by literal.
pub mod names {
    pub const HELP: &str = "帮助";
    pub const OVERVIEW: &str = "概况";
    pub const FIND: &str = "查";
    pub const VMS: &str = "虚拟机";
    pub const HOSTS: &str = "主机";
    pub const DATASTORES: &str = "存储";
    pub const NETWORKS: &str = "网络";
    pub const CLUSTERS: &str = "集群";
    pub const DATACENTERS: &str = "数据中心";
    pub const TEMPLATES: &str = "模板";
    pub const SERVICES: &str = "服务";
    pub const POWER_ON: &str = "开机";
    pub const POWER_OFF: &str = "关机";
    pub const SHUTDOWN: &str = "关闭系统";
    pub const REBOOT: &str = "重启";
    pub const CPU: &str = "CPU";
    pub const MEMORY: &str = "内存";
    pub const ADD_DISK: &str = "加盘";
    pub const SET_NET: &str = "换网";
    pub const PING: &str = "ping";
    pub const RENAME: &str = "改名";
    pub const CLONE: &str = "克隆";
    pub const DELETE: &str = "删除";
    pub const SYNC: &str = "同步";
    pub const SCALE: &str = "扩容";
    pub const ALERTS: &str = "告警";
    pub const CONFIRM: &str = "确认";
    pub const SILENCE: &str = "静默";
    pub const DEPLOY: &str = "发布";
    pub const ROLLBACK: &str = "回滚";
    pub const APPROVE: &str = "批准";
    pub const MENU: &str = "菜单";
    pub const JOBS: &str = "任务";
    pub const CANCEL: &str = "取消";
    pub const NEXT_PAGE: &str = "下一页";
    pub const BACK: &str = "返回";
    pub const EXIT: &str = "退出";
}

/// Every command, in the order 帮助 lists them.
pub const COMMANDS: &[CommandSpec] = &[
    conversation::HELP,
    pool::OVERVIEW,
    pool::FIND,
    pool::VMS,
    pool::HOSTS,
    pool::DATASTORES,
    pool::NETWORKS,
    pool::CLUSTERS,
    pool::DATACENTERS,
    pool::TEMPLATES,
    pool::SERVICES,
    vm::POWER_ON,
    vm::POWER_OFF,
    vm::SHUTDOWN,
    vm::REBOOT,
    vm::CPU,
    vm::MEMORY,
    vm::ADD_DISK,
    vm::SET_NET,
    vm::PING,
    vm::RENAME,
    vm::CLONE,
    vm::DELETE,
    pool::SYNC,
    planned::SCALE,
    alerts::ALERTS,
    alerts::CONFIRM,
    alerts::SILENCE,
    planned::DEPLOY,
    planned::ROLLBACK,
    planned::APPROVE,
    conversation::MENU,
    jobs::JOBS,
    conversation::CANCEL,
    conversation::NEXT_PAGE,
    conversation::BACK,
    conversation::EXIT,
];

/// What a handler works with: the engine, who asks, their conversation, where job
/// output goes, and the pool as of this message.
pub(crate) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub asker: &'a Asker<'a>,
    pub sess: &'a mut Session,
    pub sink: &'a Arc<dyn ReplySink>,
    /// The asker already confirmed (确认), or the surface needs no confirmation.
    pub confirmed: bool,
    pub pool: Arc<PoolView>,
}

/// A handler's answer; a store failure is answered by the engine.
pub(crate) type Handled<'a> =
    Pin<Box<dyn Future<Output = Result<Response, StoreError>> + Send + 'a>>;

/// Runs a parsed, permitted command of its module.
pub(crate) type Handler = for<'a> fn(Ctx<'a>, Command) -> Handled<'a>;

/// A handler given a command its table entry does not parse into: a bug in the table.
fn foreign(cmd: &Command) -> ! {
    unreachable!("{} is not handled by this module", cmd.name())
}
