//! Deploys (seed 003): projects created through the API, builds, release orders (发布单)
//! with one row per host, the hosts a project gained by scaling out, what each host runs,
//! and the logs of builds and releases. States are kept as their text (the deploy crate
//! owns their meaning); every transition of an order is one conditional write on its
//! current state, so two instances (or a click and a restart) never both move it. What
//! a run writes is also conditional on its instance still holding the order (`*_held`),
//! so a run fenced out (its order taken over) writes nothing over its successor's.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A project created through the API (the TOML's `[[deploy.projects]]` are not stored):
/// its definition as the deploy crate's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub name: String,
    /// The project's configuration, as JSON (the same keys as the TOML section).
    pub definition: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A build being started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBuild {
    pub project: String,
    /// What was asked for: a branch, tag, commit or svn revision (empty: the default
    /// branch).
    pub reference: String,
    pub user: String,
}

/// A build: one commit (or svn revision) and one artefact, stored by its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    pub id: i64,
    pub project: String,
    pub reference: String,
    /// The commit id or svn revision the build fetched (empty until known).
    pub revision: String,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub state: String,
    /// Hex sha256 of the artefact (a `.tar.gz`), once built.
    pub artefact: Option<String>,
    pub artefact_size: Option<i64>,
    /// The change log since the previous successful build (`git log` / `svn log`).
    pub changelog: String,
    /// Why it failed, in a line (the log has the rest).
    pub error: Option<String>,
    pub user: String,
    /// The instance running it, while it runs.
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEnd {
    /// `succeeded`, `failed` or `interrupted`.
    pub state: String,
    pub revision: String,
    pub artefact: Option<String>,
    pub artefact_size: Option<i64>,
    pub changelog: String,
    pub error: Option<String>,
}

/// A release order being created, with its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub project: String,
    /// `release`, `rollback`, `retry`, `scale_out`, `scale_in`.
    pub kind: String,
    /// The build it releases (a rollback: the build of the version it returns to).
    pub build: Option<i64>,
    /// The release (version) it deploys or returns to: for a release, its own id is
    /// used once known (`None` here); a rollback names the earlier order's id.
    pub version: Option<i64>,
    /// The first state: `待审批` or `待发布`.
    pub state: String,
    pub user: String,
    /// Where the asker is reached (`wecom:app/ops`, `console`, `api`, …) and the group
    /// chat, if they asked in one.
    pub channel: String,
    pub chat: Option<String>,
    /// How many batches the hosts are in.
    pub batches: i32,
    /// Free-form JSON the deploy crate keeps with the order (the plan, the order it
    /// retries, the VMs a scale-out creates, …).
    pub plan: String,
    /// An order waiting for approval expires at this time.
    pub expires_at: Option<DateTime<Utc>>,
    pub hosts: Vec<NewHostRun>,
}

/// One host of a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHostRun {
    /// The host's name (a pool VM, a CMDB asset, or the address itself).
    pub host: String,
    /// Where SSH reaches it.
    pub address: String,
    /// 0-based batch number.
    pub batch: i32,
}

/// A release order (发布单).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: i64,
    pub project: String,
    pub kind: String,
    pub build: Option<i64>,
    pub version: Option<i64>,
    /// 待审批, 待发布, 发布中, 暂停, 成功, 部分失败, 失败, 已回滚, 已驳回, 已终止, 已中断, 已过期.
    pub state: String,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    /// Who approved or rejected it.
    pub approver: Option<String>,
    /// A rejection's reason, an abort's or interruption's cause, a failure in a line.
    pub reason: Option<String>,
    /// The batch running or next to run (0-based), and how many there are.
    pub batch: i32,
    pub batches: i32,
    pub plan: String,
    /// The instance running it (while 发布中 or 暂停) and when it last said so.
    pub owner: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a transition also changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderPatch {
    pub approver: Option<String>,
    pub reason: Option<String>,
    pub batch: Option<i32>,
    pub version: Option<i64>,
    /// `Some(Some(owner))` claims the order for an instance (and sets the heartbeat to
    /// now); `Some(None)` clears the owner.
    pub owner: Option<Option<String>>,
    /// Replaces the order's `plan` (JSON): what the runner must remember across a
    /// restart (a canary watch under way).
    pub plan: Option<String>,
    /// Sets `finished_at` to now.
    pub finished: bool,
}

/// Which orders to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    pub project: Option<String>,
    /// Any of these states (empty: all).
    pub states: Vec<String>,
    /// Only orders with an id below this (paging).
    pub before: Option<i64>,
    pub limit: u64,
}

/// One host of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRunRecord {
    pub order: i64,
    pub host: String,
    pub address: String,
    pub batch: i32,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped`, `interrupted`,
    /// `rolled_back`.
    pub state: String,
    /// The step running or last run (`upload`, `unpack`, `before_host`, `switch`,
    /// `after_host`, `health`, `prune`, `relink`, …).
    pub step: String,
    pub exit_code: Option<i32>,
    /// The version `current` pointed at before this order switched it.
    pub previous_version: Option<i64>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a host update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPatch {
    pub state: Option<String>,
    pub step: Option<String>,
    pub exit_code: Option<Option<i32>>,
    pub previous_version: Option<Option<i64>>,
    pub error: Option<Option<String>>,
    /// Sets `started_at` to now (and clears `finished_at`).
    pub started: bool,
    /// Sets `finished_at` to now.
    pub finished: bool,
}

/// A piece of a log: of an order's host (`host` = its name), of the order as a whole
/// (`host` = ""), or of a build (`order` = 0, `build` set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Increases with every chunk of the store (readers resume after the last seen).
    pub seq: i64,
    pub order: i64,
    pub build: i64,
    pub host: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// Where a log belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOf<'a> {
    Build(i64),
    /// An order; `Some(host)` that host only (`Some("")` the order's own lines).
    Order(i64, Option<&'a str>),
}

/// A host a project has beyond its configuration (added by 扩容).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectHost {
    pub project: String,
    pub host: String,
    pub address: String,
    /// The scale-out order that added it.
    pub order: i64,
    pub added_at: DateTime<Utc>,
}

/// What a host of a project runs now: the version `current` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub project: String,
    pub host: String,
    /// The release (order id) `current` points at.
    pub version: i64,
    pub build: i64,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait DeployStore: Send + Sync {
    // Projects created through the API.
    /// Creates or replaces project `name`'s definition.
    async fn project_put(&self, name: &str, definition: &str, user: &str) -> Result<()>;
    async fn project_get(&self, name: &str) -> Result<Option<ProjectRecord>>;
    async fn project_list(&self) -> Result<Vec<ProjectRecord>>;
    /// `false` when there was none.
    async fn project_delete(&self, name: &str) -> Result<bool>;

    // Builds.
    /// Records a build as `running`, owned by `owner`; returns its id.
    async fn build_create(&self, build: &NewBuild, owner: &str) -> Result<i64>;
    /// Ends a running build (a no-op returning `false` when it is not running).
    async fn build_finish(&self, id: i64, end: &BuildEnd) -> Result<bool>;
    async fn build_get(&self, id: i64) -> Result<Option<BuildRecord>>;
    /// Newest first; `project` `None` = all.
    async fn build_list(&self, project: Option<&str>, limit: u64) -> Result<Vec<BuildRecord>>;
    /// The newest succeeded build of `project`.
    async fn build_latest(&self, project: &str) -> Result<Option<BuildRecord>>;
    /// Marks `running` builds started before `started_before` `interrupted` (no build
    /// runs past its timeout, so those were left by a process that died); returns them.
    async fn builds_interrupt(&self, started_before: DateTime<Utc>) -> Result<Vec<BuildRecord>>;

    // Orders.
    /// Creates the order and its hosts in one transaction; returns its id.
    async fn order_create(&self, order: &NewOrder) -> Result<i64>;
    async fn order_get(&self, id: i64) -> Result<Option<OrderRecord>>;
    async fn order_list(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>>;
    /// Moves order `id` from any of `from` to `to`, applying `patch`, in one
    /// conditional write. `false`: it was in none of `from` (someone else moved it).
    async fn order_transition(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        patch: &OrderPatch,
    ) -> Result<bool>;
    /// [`DeployStore::order_transition`] only while `owner` holds the order: a run
    /// whose order was taken over (interrupted, resumed elsewhere) moves nothing.
    async fn order_transition_held(
        &self,
        id: i64,
        owner: &str,
        from: &[&str],
        to: &str,
        patch: &OrderPatch,
    ) -> Result<bool>;
    /// Applies `patch` without changing the state, if `owner` still holds the order.
    async fn order_update(&self, id: i64, owner: &str, patch: &OrderPatch) -> Result<bool>;
    /// Refreshes the heartbeat of every order `owner` holds.
    async fn order_heartbeat(&self, owner: &str) -> Result<()>;
    /// Orders in any of `states` held by an owner whose heartbeat is older than
    /// `stale_before`, or by `owner` (this instance, starting again).
    async fn orders_orphaned(
        &self,
        states: &[&str],
        owner: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<OrderRecord>>;
    /// The newest order of `project` in any of `states` (the busy check).
    async fn order_active(&self, project: &str, states: &[&str]) -> Result<Option<OrderRecord>>;

    // Hosts of an order.
    async fn host_runs(&self, order: i64) -> Result<Vec<HostRunRecord>>;
    async fn host_update(&self, order: i64, host: &str, patch: &HostPatch) -> Result<()>;
    /// [`DeployStore::host_update`] only while `owner` holds the order (checked with
    /// the order's row locked, so a takeover cannot commit in between); `false` when
    /// it does not, and nothing is written.
    async fn host_update_held(
        &self,
        order: i64,
        owner: &str,
        host: &str,
        patch: &HostPatch,
    ) -> Result<bool>;

    // Logs.
    /// Appends to a log; returns the chunk's seq.
    async fn log_append(&self, of: LogOf<'_>, text: &str) -> Result<i64>;
    /// Chunks after `after` (seq), oldest first, at most `limit`.
    async fn log_read(&self, of: LogOf<'_>, after: i64, limit: u64) -> Result<Vec<LogChunk>>;

    // Hosts added by scaling out.
    async fn project_hosts(&self, project: &str) -> Result<Vec<ProjectHost>>;
    async fn project_host_add(&self, host: &ProjectHost) -> Result<()>;
    async fn project_host_remove(&self, project: &str, host: &str) -> Result<bool>;

    // What each host runs.
    async fn deployed_set(&self, project: &str, host: &str, version: i64, build: i64)
        -> Result<()>;
    async fn deployed(&self, project: &str) -> Result<Vec<Deployed>>;
}
