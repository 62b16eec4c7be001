//! The engine proper: conversation state, permissions, command execution and audit.

mod api;
pub use api::{Acted, Caller, CloneSpec, Mode, Refusal, Request, VmAction};

use crate::command::{self, normalize, Command, ListKind, COMMANDS};
use crate::format::{self, page};
use crate::jobs::{JobContext, JobFuture, JobProgress, JobRunner};
use crate::menu::{is_path, MenuNode, MenuStep};
use crate::pool::{PoolCache, PoolView, VmLookup};
use crate::render;
use crate::reply::{ReplySink, Response, Status};
use crate::session::{self, Paging, Pending, Session, Settled, Settlement};
use crate::sync::Syncer;
use crate::view::{Lens, Viewer, VmMasks};
use opsbot_core::{
    AlertDesk, AssetDesk, AuditEntry, AuditResult, DeskError, JobId, Policy, PowerState, Provider,
    ProviderError, Vm, VmOperation,
};
use opsbot_store::{InterruptFilter, JobQuery, SessionStore, Store, StoreError, SyncReport};
use std::collections::HashSet;
use std::fmt::Write;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One message from a channel.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `console`, `wecom:<app>`, `api`, ...
    pub channel: String,
    pub user: String,
    pub chat: Option<String>,
    pub text: String,
    /// Answer confirmation prompts with yes (`opsbot chat --yes`).
    pub assume_yes: bool,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub session_ttl: Duration,
    /// Canonical names of the commands that ask for confirmation.
    pub confirm: HashSet<String>,
    /// Identifies this process as the owner of the jobs it runs.
    pub owner: String,
    /// A running job whose heartbeat is older than this belongs to a dead process. Its
    /// jobs refresh theirs every eighth of it, and every instance looks for stale jobs
    /// every quarter of it ([`Engine::sweep_stale_jobs`]).
    pub stale_after: Duration,
    /// Where `ping:<address>` may reach from this host besides the asker's VMs
    /// (`[chat] ping_allow`); empty: VMs only.
    pub ping_allow: Vec<ipnet::IpNet>,
    /// The zone chat shows times in (`[chat] timezone`), named beside them.
    pub zone: opsbot_core::Zone,
}

impl EngineSettings {
    /// The destructive commands of the command table.
    pub fn default_confirm() -> HashSet<String> {
        COMMANDS
            .iter()
            .filter(|c| c.destructive)
            .map(|c| c.name.to_string())
            .collect()
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            session_ttl: Duration::from_secs(600),
            confirm: Self::default_confirm(),
            owner: format!("opsbot-{}", std::process::id()),
            stale_after: Duration::from_secs(120),
            ping_allow: Vec::new(),
            zone: opsbot_core::Zone::Local,
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    sessions: Arc<dyn SessionStore>,
    providers: Vec<Arc<dyn Provider>>,
    policy: RwLock<Arc<Policy>>,
    pool: PoolCache,
    jobs: Arc<JobRunner>,
    syncer: Arc<Syncer>,
    settings: EngineSettings,
    /// The alert gateway's desk, when `[alerts]` is configured.
    alerts: Option<Arc<dyn AlertDesk>>,
    /// The CMDB for 资产 / 变更 (`None`: they answer "尚未配置").
    assets: Option<Arc<dyn AssetDesk>>,
    /// What scoped callers see of the VM list, per role set and pool version.
    masks: Arc<VmMasks>,
}

/// The result of dispatching one message, before audit.
struct Outcome {
    response: Response,
    command: Option<&'static str>,
    cancelled: bool,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            command: None,
            cancelled: false,
        }
    }
}

/// Who is asking, for permission checks and job ownership.
struct Asker<'a> {
    msg: &'a Incoming,
    /// What the asker may see and do: every visibility decision goes through it.
    view: Viewer,
    /// The REST API and web UI name a VM by `(provider, id)`: the VM operation acts on
    /// exactly that VM instead of resolving a name.
    pinned: Option<(String, String)>,
    /// Validate and describe, but neither start nor ask (the web UI's confirm dialog).
    dry_run: bool,
}

impl Asker<'_> {
    fn user(&self) -> &str {
        &self.msg.user
    }

    fn can_run(&self, command: &str) -> bool {
        self.view.may(command)
    }

    fn allows(&self, command: &str, path: &str) -> bool {
        self.view.may_at(command, path)
    }

    fn source(&self) -> String {
        format!("{}:{}", self.msg.channel, self.msg.user)
    }
}

fn invalid(text: impl Into<String>) -> Response {
    Response::new(Status::Invalid, text)
}

fn failed(text: impl Into<String>) -> Response {
    Response::new(Status::Failed, text)
}

fn ok(text: impl Into<String>) -> Response {
    Response::new(Status::Ok, text)
}

/// How a reply about an unreachable store starts.
const STORE_DOWN: &str = "⚠ 存储暂不可用";

fn store_down(e: &StoreError) -> Response {
    failed(format!("{STORE_DOWN},命令未执行: {e}。请稍后重试"))
}

fn sessions_down(e: &StoreError) -> Response {
    failed(format!(
        "⚠ 会话存储不可用({e}):菜单和确认暂时无法使用,其他命令照常。请稍后重试"
    ))
}

impl Engine {
    /// Builds the engine and marks jobs of dead processes as interrupted.
    pub async fn new(
        store: Arc<dyn Store>,
        sessions: Arc<dyn SessionStore>,
        providers: Vec<Arc<dyn Provider>>,
        policy: Policy,
        settings: EngineSettings,
    ) -> Result<Self, StoreError> {
        sweep_stale(store.as_ref(), settings.stale_after).await?;
        Ok(Engine {
            pool: PoolCache::new(store.clone()),
            jobs: JobRunner::new(
                store.clone(),
                settings.owner.clone(),
                settings.stale_after / 8,
            ),
            syncer: Arc::new(Syncer::new(store.clone(), crate::sync::FULL_SYNC_EVERY)),
            store,
            sessions,
            providers,
            policy: RwLock::new(Arc::new(policy)),
            settings,
            alerts: None,
            assets: None,
            masks: Arc::default(),
        })
    }

    /// What `caller` may see: the one visibility decision that chat, the REST API and
    /// the web UI share.
    pub fn viewer(&self, caller: &Caller) -> Viewer {
        self.viewer_in(&caller.user, None)
    }

    /// [`Engine::viewer`] for a message from `user` in group chat `chat`.
    pub fn viewer_in(&self, user: &str, chat: Option<&str>) -> Viewer {
        Viewer::new(self.policy(), user, chat, self.masks.clone())
    }

    /// Job `id` if `caller` may read it: their own, or anyone's for an administrator.
    /// Someone else's job reads exactly as one that does not exist.
    pub async fn job_for(
        &self,
        caller: &Caller,
        id: JobId,
    ) -> Result<Option<opsbot_core::JobRecord>, StoreError> {
        let viewer = self.viewer(caller);
        Ok(self.store.job(id).await?.filter(|j| viewer.sees_job(j)))
    }

    /// Answers 告警, 确认:id and 静默 through `desk` (and counts firing alerts in 概况).
    pub fn with_alert_desk(mut self, desk: Arc<dyn AlertDesk>) -> Self {
        self.alerts = Some(desk);
        self
    }

    /// Answers 资产 / 变更 through `desk`.
    pub fn with_assets(mut self, desk: Arc<dyn AssetDesk>) -> Self {
        self.assets = Some(desk);
        self
    }

    pub fn jobs(&self) -> &Arc<JobRunner> {
        &self.jobs
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// Replaces the permission policy (after a configuration reload).
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().expect("policy lock") = Arc::new(policy);
    }

    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name).cloned()
    }

    /// Syncs every provider into the pool.
    pub async fn sync_all(&self, source: &str) -> Result<Vec<SyncReport>, String> {
        self.syncer.run(&self.providers, source, None).await
    }

    /// Syncs one provider into the pool (the scheduled sync, `opsbot sync --provider`).
    pub async fn sync_provider(&self, name: &str, source: &str) -> Result<SyncReport, String> {
        let provider = self
            .provider(name)
            .ok_or_else(|| format!("没有名为 {name} 的 provider"))?;
        let mut reports = self.syncer.run(&[provider], source, None).await?;
        Ok(reports.remove(0))
    }

    /// Syncs the providers that have nothing in the pool yet (first start).
    pub async fn ensure_synced(&self) -> Result<Vec<SyncReport>, String> {
        let pool = self.pool.get().await.map_err(|e| e.to_string())?;
        let missing: Vec<Arc<dyn Provider>> = self
            .providers
            .iter()
            .filter(|p| {
                !pool
                    .inventory
                    .datacenters
                    .iter()
                    .any(|d| d.provider == p.name())
            })
            .cloned()
            .collect();
        self.syncer.run(&missing, "sync:startup", None).await
    }

    /// Marks the jobs of dead processes interrupted: running, with a heartbeat older than
    /// `stale_after` (a process killed and restarted at once is noticed here, not only
    /// at the next start). Their askers' held notices go out with that. Call it every
    /// [`Engine::job_sweep_period`] on every running instance; concurrent sweeps mark
    /// each job once.
    pub async fn sweep_stale_jobs(&self) -> Result<Vec<JobId>, StoreError> {
        if self.jobs.running_count() > 0 {
            // Our own jobs are alive whatever their stored heartbeat says (the store may
            // have been unreachable for a while): refresh it before judging others'.
            self.store.heartbeat_jobs(&self.settings.owner).await?;
        }
        sweep_stale(self.store.as_ref(), self.settings.stale_after).await
    }

    /// How often [`Engine::sweep_stale_jobs`] should run.
    pub fn job_sweep_period(&self) -> Duration {
        (self.settings.stale_after / 4).max(Duration::from_millis(10))
    }

    /// Lets running jobs finish for up to `grace`, then interrupts the rest.
    /// Returns how many were interrupted.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        if self.jobs.wait_idle(grace).await {
            return 0;
        }
        self.jobs.interrupt_all("opsbot 正在停止").await
    }

    /// Handles one message: the immediate response; job output goes to `sink`.
    #[tracing::instrument(skip_all, fields(channel = %msg.channel, user = %msg.user))]
    pub async fn handle(&self, msg: Incoming, sink: Arc<dyn ReplySink>) -> Response {
        let started = Instant::now();
        let key = session::key(&msg.channel, msg.chat.as_deref(), &msg.user);
        let (mut sess, sess_err) = match session::load(self.sessions.as_ref(), &key).await {
            Ok(s) => (s, None),
            Err(e) => (Session::default(), Some(e)),
        };
        let before = sess.clone();
        let asker = Asker {
            msg: &msg,
            view: self.viewer_in(&msg.user, msg.chat.as_deref()),
            pinned: None,
            dry_run: false,
        };
        let text = normalize(&msg.text);
        let mut outcome = self
            .dispatch(&asker, &text, &mut sess, sess_err.as_ref(), &sink)
            .await;

        // A prompt for 确认 is a lie if the pending command cannot be kept.
        let needs_session = outcome.response.status == Status::NeedsConfirmation;
        if let (Some(e), true) = (&sess_err, needs_session) {
            outcome.response = sessions_down(e);
        } else if sess_err.is_none() && sess != before {
            if let Err(e) = session::save(
                self.sessions.as_ref(),
                &key,
                &sess,
                self.settings.session_ttl,
            )
            .await
            {
                if needs_session {
                    outcome.response = sessions_down(&e);
                } else {
                    outcome
                        .response
                        .text
                        .push_str(&format!("\n⚠ 会话未能保存: {e}"));
                }
            }
        } else if sess_err.is_none() && !sess.is_empty() {
            // Any message restarts the idle timer of an open conversation.
            let _ = session::save(
                self.sessions.as_ref(),
                &key,
                &sess,
                self.settings.session_ttl,
            )
            .await;
        }
        self.audit(&msg, &outcome, started).await;
        outcome.response
    }

    async fn audit(&self, msg: &Incoming, outcome: &Outcome, started: Instant) {
        let result = match outcome.response.status {
            _ if outcome.cancelled => AuditResult::Cancelled,
            Status::Ok => AuditResult::Ok,
            Status::Accepted(_) => AuditResult::Accepted,
            Status::NeedsConfirmation => AuditResult::Pending,
            Status::Denied => AuditResult::Denied,
            Status::Invalid => AuditResult::Invalid,
            Status::Failed => AuditResult::Failed,
        };
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: msg.user.clone(),
            channel: msg.channel.clone(),
            chat: msg.chat.clone(),
            text: msg.text.clone(),
            command: outcome.command.map(str::to_string),
            result,
            message: format::truncate(&outcome.response.text, 500),
            duration_ms: started.elapsed().as_millis() as i64,
            job_id: outcome.response.job().map(|j| j.0),
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, user = %msg.user, text = %msg.text, "audit entry lost");
        }
    }

    async fn dispatch(
        &self,
        asker: &Asker<'_>,
        text: &str,
        sess: &mut Session,
        sess_err: Option<&StoreError>,
        sink: &Arc<dyn ReplySink>,
    ) -> Outcome {
        // A session that is still there has timed nothing out: what it lacks was
        // consumed, dropped or never there.
        let alive = !sess.is_empty();
        let ttl = format::duration(self.settings.session_ttl);
        // An open menu takes digits, paths and (at input nodes) free text first.
        if let Some(stack) = sess.menu.clone() {
            let top = stack.last().cloned().unwrap_or(MenuNode::Root);
            let control = command::parse(text)
                .ok()
                .filter(|c| matches!(c, Command::Back | Command::Exit | Command::Menu));
            if control.is_none() && (top.wants_input() || is_path(text)) {
                return self.menu_answer(asker, text, sess, sink).await;
            }
        } else if is_path(text) {
            if let Some(e) = sess_err {
                return sessions_down(e).into();
            }
            if !text.contains('-') {
                return invalid(if sess.menu_exited {
                    "菜单已退出(您发送了 退出)。发送 菜单 重新打开".to_string()
                } else if alive {
                    "没有打开的菜单。发送 菜单 打开数字菜单".to_string()
                } else {
                    format!(
                        "没有打开的菜单:菜单会话已结束或已超时({ttl}无操作)。发送 菜单 重新开始"
                    )
                })
                .into();
            }
            sess.menu = Some(vec![MenuNode::Root]);
            sess.menu_exited = false;
            return self.menu_answer(asker, text, sess, sink).await;
        }

        let cmd = match command::parse(text) {
            Ok(c) => c,
            Err(e) => return invalid(e.to_string()).into(),
        };
        let name = cmd.name();
        // A new command supersedes a pending confirmation: a late 'y' must not fire an
        // operation the user has moved on from.
        let mut dropped = None;
        if !matches!(cmd, Command::Confirm | Command::Cancel) {
            if let Some(p) = sess.pending.take() {
                dropped = Some(p.summary.clone());
                sess.settled = Some(Settled {
                    summary: p.summary,
                    how: Settlement::Dropped {
                        by: name.to_string(),
                    },
                });
            }
        }
        let mut outcome: Outcome = match cmd {
            Command::Menu
            | Command::Back
            | Command::Exit
            | Command::Confirm
            | Command::Cancel
            | Command::NextPage
                if sess_err.is_some() =>
            {
                sessions_down(sess_err.expect("checked")).into()
            }
            Command::Menu => {
                sess.menu = Some(vec![MenuNode::Root]);
                sess.menu_exited = false;
                self.render_menu(asker, sess).await.into()
            }
            Command::Back => match sess.menu.as_mut() {
                Some(stack) if stack.len() > 1 => {
                    stack.pop();
                    self.render_menu(asker, sess).await.into()
                }
                Some(_) => {
                    sess.menu = None;
                    sess.menu_exited = true;
                    ok("已退出菜单").into()
                }
                None => invalid("当前没有打开的菜单,发送 菜单 打开").into(),
            },
            Command::Exit => {
                let gave_up = dropped
                    .as_ref()
                    .map(|s| format!("已放弃待确认的操作: {s}(未执行)"));
                if sess.menu.take().is_some() {
                    sess.menu_exited = true;
                    match gave_up {
                        Some(g) => ok(format!("已退出菜单\n{g}")).into(),
                        None => ok("已退出菜单").into(),
                    }
                } else if let Some(g) = gave_up {
                    ok(g).into()
                } else {
                    invalid("当前没有打开的菜单").into()
                }
            }
            Command::Confirm => match sess.pending.take() {
                Some(p) => {
                    sess.settled = Some(Settled {
                        summary: p.summary.clone(),
                        how: Settlement::Confirmed,
                    });
                    let cmd = match command::parse(&p.text) {
                        Ok(c) => c,
                        Err(e) => return invalid(e.to_string()).into(),
                    };
                    let mut out = self.run(asker, cmd, true, sess, sink).await;
                    out.command = Some(name);
                    out
                }
                None => invalid(nothing_to_confirm(sess.settled.as_ref(), alive, &ttl)).into(),
            },
            Command::Cancel => match sess.pending.take() {
                Some(p) => {
                    let response = ok(format!("已取消: {}", p.summary));
                    sess.settled = Some(Settled {
                        summary: p.summary,
                        how: Settlement::Cancelled,
                    });
                    Outcome {
                        response,
                        command: None,
                        cancelled: true,
                    }
                }
                None => invalid(nothing_to_confirm(sess.settled.as_ref(), alive, &ttl)).into(),
            },
            Command::NextPage => match sess.paging.clone() {
                Some(p) if p.last => {
                    invalid(format!("「{}」已经是最后一页(第 {} 页)", p.command, p.page)).into()
                }
                Some(p) => match command::parse(&format!("{}:{}", p.command, p.page + 1)) {
                    Ok(cmd) => self.run(asker, cmd, false, sess, sink).await,
                    Err(e) => invalid(e.to_string()).into(),
                },
                None if alive => invalid("没有可以翻页的列表:请先发送列表命令(如 虚拟机)").into(),
                None => invalid(format!(
                    "没有可以翻页的列表:请先发送列表命令(如 虚拟机);列表在 {ttl}无操作后失效"
                ))
                .into(),
            },
            cmd => self.run(asker, cmd, false, sess, sink).await,
        };
        outcome.command.get_or_insert(name);
        outcome
    }

    /// 资产 / 变更: finds the asset, checks its scope (the linked VM's path, else
    /// `cmdb/<identity>`), and answers with its card or its recent changes.
    async fn asset_command(
        &self,
        asker: &Asker<'_>,
        name: &str,
        host: &str,
        changes: bool,
    ) -> Response {
        let Some(desk) = &self.assets else {
            return failed(format!("{name}: CMDB 尚未配置,此功能暂不可用"));
        };
        let visible = |a: &opsbot_core::Asset| asker.allows(name, &a.scope_path());
        let asset = match desk.find(host, &visible).await {
            Ok(opsbot_core::AssetLookup::Found(a)) => a,
            Ok(opsbot_core::AssetLookup::NotFound { similar }) => {
                let mut text = format!("没有找到资产「{host}」");
                if !similar.is_empty() {
                    let _ = write!(text, ";相近的有: {}", similar.join("、"));
                }
                return invalid(text);
            }
            Err(e) => return failed(e),
        };
        let answer = if changes {
            desk.changes(&asset, 10).await
        } else {
            desk.card(&asset).await
        };
        match answer {
            Ok(text) => ok(text),
            Err(e) => failed(e),
        }
    }

    async fn render_menu(&self, asker: &Asker<'_>, sess: &Session) -> Response {
        let pool = match self.pool.get().await {
            Ok(p) => p,
            Err(e) => return store_down(&e),
        };
        let top = sess
            .menu
            .as_ref()
            .and_then(|s| s.last())
            .cloned()
            .unwrap_or(MenuNode::Root);
        let visible = asker.view.vm_sight(Lens::VMS);
        ok(top.render(&pool, &visible))
    }

    /// Answers the open menu with digits, a `0-1-2` path, or free input.
    async fn menu_answer(
        &self,
        asker: &Asker<'_>,
        text: &str,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Outcome {
        let pool = match self.pool.get().await {
            Ok(p) => p,
            Err(e) => return store_down(&e).into(),
        };
        let visible = asker.view.vm_sight(Lens::VMS);
        let stack = sess.menu.get_or_insert_with(|| vec![MenuNode::Root]);
        let top = stack.last().cloned().unwrap_or(MenuNode::Root);
        let parts: Vec<&str> = if top.wants_input() {
            vec![text]
        } else {
            if text.contains('-') {
                // A whole path starts from the top of the tree.
                stack.truncate(1);
            }
            text.split('-').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let node = stack.last().cloned().unwrap_or(MenuNode::Root);
            match node.answer(part, &pool, &visible) {
                MenuStep::Enter(next) => stack.push(next),
                MenuStep::Invalid(why) => {
                    return invalid(format!("{why}\n\n{}", node.render(&pool, &visible))).into();
                }
                MenuStep::Run(cmd_text) => {
                    if i + 1 != parts.len() {
                        return invalid(format!(
                            "路径在第 {} 段已到达操作「{cmd_text}」,后面的部分多余",
                            i + 1
                        ))
                        .into();
                    }
                    // An input node, once answered, returns to the level that asked.
                    if node.wants_input() {
                        stack.pop();
                    }
                    let cmd = match command::parse(&cmd_text) {
                        Ok(c) => c,
                        Err(e) => {
                            return invalid(format!("{e}\n\n{}", node.render(&pool, &visible)))
                                .into();
                        }
                    };
                    return self.run(asker, cmd, false, sess, sink).await;
                }
            }
        }
        let top = stack.last().cloned().unwrap_or(MenuNode::Root);
        ok(top.render(&pool, &visible)).into()
    }

    /// Authorises and runs one parsed command.
    async fn run(
        &self,
        asker: &Asker<'_>,
        cmd: Command,
        confirmed: bool,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Outcome {
        let name = cmd.name();
        let mut outcome: Outcome = if !cmd.is_conversational() && !asker.can_run(name) {
            Response::new(
                Status::Denied,
                format!(
                    "⛔ 您({})没有权限执行「{name}」。如需开通,请联系管理员",
                    asker.user()
                ),
            )
            .into()
        } else {
            match self.execute(asker, cmd, confirmed, sess, sink).await {
                Ok(r) => r.into(),
                Err(e) => store_down(&e).into(),
            }
        };
        outcome.command = Some(name);
        outcome
    }

    async fn execute(
        &self,
        asker: &Asker<'_>,
        cmd: Command,
        confirmed: bool,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Result<Response, StoreError> {
        let name = cmd.name();
        let canonical = cmd.to_string();
        let pool = self.pool.get().await?;
        Ok(match cmd {
            Command::Help { page } => {
                let lines = help_lines(asker, self.alerts.is_some());
                self.list_reply(sess, "帮助", page, lines)
            }
            Command::Overview { datacenter } => {
                if let Some(dc) = &datacenter {
                    // Only the datacenters the asker sees exist for them.
                    let seen = asker.view.datacenters(&pool, Lens::OVERVIEW);
                    if !seen.iter().any(|d| d.name.eq_ignore_ascii_case(dc)) {
                        let names: Vec<_> = seen.iter().map(|d| d.name.as_str()).collect();
                        return Ok(invalid(format!(
                            "没有数据中心「{dc}」;现有: {}",
                            if names.is_empty() {
                                "(无)".to_string()
                            } else {
                                names.join("、")
                            }
                        )));
                    }
                }
                if pool.inventory.datacenters.is_empty() {
                    return Ok(ok(
                        "资源池是空的:没有配置集群,或尚未同步。发送 同步 立即同步",
                    ));
                }
                let alerts = match &self.alerts {
                    None => "告警网关未配置".to_string(),
                    Some(desk) => match desk.firing_count().await {
                        Ok(0) => "无正在发生的告警".to_string(),
                        Ok(n) => format!("🔥 {n} 条正在发生(发送 告警 查看)"),
                        Err(e) => format!("⚠ 暂不可用({e})"),
                    },
                };
                let overview = asker.view.overview(&pool, datacenter.as_deref());
                ok(format::overview(&overview, datacenter.as_deref(), &alerts))
            }
            Command::Find { keyword } => {
                let mut vms: Vec<&Vm> = asker.view.search(&pool, &keyword);
                vms.sort_by(|a, b| a.name.cmp(&b.name));
                let see = asker.view.sight(Lens::FIND);
                let hosts: Vec<_> = pool
                    .search_hosts(&keyword)
                    .into_iter()
                    .filter(|h| see(&h.scope_path()))
                    .collect();
                match (vms.as_slice(), hosts.as_slice()) {
                    ([], []) => invalid(format!("没有找到与「{keyword}」匹配的虚拟机或主机")),
                    ([vm], []) => ok(format::vm_detail(vm)),
                    _ => {
                        let mut lines: Vec<String> =
                            vms.iter().map(|v| format::vm_line(v)).collect();
                        lines.extend(hosts.iter().map(|h| format!("🖥 {}", format::host_line(h))));
                        let title = format!("查找「{keyword}」");
                        ok(format::first_screen(&title, &lines, |l| l.clone()))
                    }
                }
            }
            Command::List { kind, page: n } => self.list(asker, &pool, sess, kind, n).await?,
            Command::Job { id } => match self.store.job(JobId(id)).await? {
                Some(j) if asker.view.sees_job(&j) => ok(format!(
                    "任务 #{}: {}\n命令: {}\n状态: {} {}%\n开始: {}\n结果: {}",
                    j.id.0,
                    j.command,
                    j.text,
                    j.state.label(),
                    j.progress,
                    self.settings.zone.stamp(j.created_at),
                    j.message
                )),
                _ => invalid(format!("任务 #{id} 不存在或不属于您")),
            },
            Command::Sync => {
                let syncer = self.syncer.clone();
                let providers = self.providers.clone();
                let source = format!("sync:{}", asker.source());
                self.start_job(
                    asker,
                    sink,
                    name,
                    "同步资源池".into(),
                    move |progress| {
                        Box::pin(async move {
                            let reports = syncer.run(&providers, &source, Some(&progress)).await?;
                            Ok(sync_summary(&reports))
                        })
                    },
                )
                .await?
            }
            Command::Scale { .. } => {
                failed("扩容: 尚未配置 Kubernetes provider(kind = \"kubernetes\"),此功能暂不可用")
            }
            Command::Ack { id } => match &self.alerts {
                Some(desk) => desk_reply(desk.ack(&id, asker.user()).await),
                None => failed(format!("{name}: 告警网关尚未配置,此功能暂不可用")),
            },
            Command::Silence { matcher, minutes } => match &self.alerts {
                Some(desk) => desk_reply(desk.silence(&matcher, minutes, asker.user()).await),
                None => failed(format!("{name}: 告警网关尚未配置,此功能暂不可用")),
            },
            Command::Deploy { .. } | Command::Rollback { .. } | Command::Approve { .. } => {
                failed(format!("{name}: 发布功能尚未配置,此功能暂不可用"))
            }
            Command::Asset { host } => self.asset_command(asker, name, &host, false).await,
            Command::AssetChanges { host } => self.asset_command(asker, name, &host, true).await,
            Command::Ping { target } => {
                if asker.pinned.is_some()
                    || matches!(
                        asker.view.resolve_vm(&pool, &target, name),
                        VmLookup::Found(_)
                    )
                {
                    self.vm_op(
                        asker,
                        &pool,
                        sess,
                        sink,
                        name,
                        &canonical,
                        &target,
                        confirmed,
                        |vm| VmOperation::Ping { vm },
                    )
                    .await?
                } else if let Ok(ip) = target.parse::<std::net::Ipv4Addr>() {
                    // Not a VM the asker sees: this host pings it only inside the
                    // configured subnets (an out-of-scope VM's address included, with
                    // the same answer as any other address).
                    let addr = std::net::IpAddr::V4(ip);
                    if !self.settings.ping_allow.iter().any(|n| n.contains(&addr)) {
                        return Ok(Response::new(Status::Denied, self.ping_refused(ip)));
                    }
                    if !asker.allows(name, &format!("ip/{ip}")) {
                        return Ok(Response::new(
                            Status::Denied,
                            format!("⛔ 您没有权限 ping 资源池以外的地址 {ip}"),
                        ));
                    }
                    self.start_job(asker, sink, name, format!("ping {ip}"), move |_| {
                        Box::pin(host_ping(ip))
                    })
                    .await?
                } else {
                    self.vm_op(
                        asker,
                        &pool,
                        sess,
                        sink,
                        name,
                        &canonical,
                        &target,
                        confirmed,
                        |vm| VmOperation::Ping { vm },
                    )
                    .await?
                }
            }
            Command::PowerOn { vm } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::PowerOn { vm },
                )
                .await?
            }
            Command::PowerOff { vm } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::PowerOff { vm },
                )
                .await?
            }
            Command::Shutdown { vm } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::Shutdown { vm },
                )
                .await?
            }
            Command::Reboot { vm } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::Reboot { vm },
                )
                .await?
            }
            Command::Cpu { vm, count } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::SetCpu { vm, count },
                )
                .await?
            }
            Command::Memory { vm, gb } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::SetMemory { vm, gb },
                )
                .await?
            }
            Command::AddDisk { vm, gb, datastore } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::AddDisk { vm, gb, datastore },
                )
                .await?
            }
            Command::SetNet { vm, network } => {
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::SetNetwork { vm, network },
                )
                .await?
            }
            Command::Rename { vm, new_name } => {
                if let Some(other) = pool.inventory.vms.iter().find(|v| v.name == new_name) {
                    return Ok(name_taken(asker, &new_name, other));
                }
                self.vm_op(
                    asker,
                    &pool,
                    sess,
                    sink,
                    name,
                    &canonical,
                    &vm,
                    confirmed,
                    |vm| VmOperation::Rename { vm, new_name },
                )
                .await?
            }
            Command::Clone {
                template,
                name: vm_name,
                ip,
                cpu,
                memory_gb,
            } => {
                // A template the asker may neither list nor clone from does not exist
                // for them.
                let may_clone = |vm: &Vm| {
                    asker.view.vm_sight(Lens::TEMPLATES)(vm)
                        || asker.allows(name, &vm.scope_path())
                        || asker.allows(
                            name,
                            &format!("{}/{}/{}/{vm_name}", vm.provider, vm.datacenter, vm.cluster),
                        )
                };
                let found = pool
                    .template(template)
                    .filter(|(_, vm)| vm.is_some_and(may_clone));
                let Some((tpl, Some(tpl_vm))) = found else {
                    let list: Vec<String> = pool
                        .templates
                        .iter()
                        .filter(|t| pool.vm(&t.provider, &t.vm_id).is_some_and(may_clone))
                        .map(|t| format!("{} {}", t.number, t.name))
                        .collect();
                    return Ok(invalid(format!(
                        "没有编号为 {template} 的模板。现有模板: {}",
                        if list.is_empty() {
                            "(无)".into()
                        } else {
                            list.join("、")
                        }
                    )));
                };
                if let Some(other) = pool.inventory.vms.iter().find(|v| v.name == vm_name) {
                    return Ok(name_taken(asker, &vm_name, other));
                }
                if let Some(other) = pool.vm_with_ip(&ip.to_string()) {
                    return Ok(invalid(if asker.view.sees_vm(other) {
                        format!("IP {ip} 已被虚拟机 {} 使用", other.name)
                    } else {
                        format!("IP {ip} 已被占用")
                    }));
                }
                let path = format!(
                    "{}/{}/{}/{}",
                    tpl_vm.provider, tpl_vm.datacenter, tpl_vm.cluster, vm_name
                );
                if !asker.allows(name, &path) {
                    return Ok(Response::new(
                        Status::Denied,
                        format!(
                            "⛔ 您没有权限在 {}/{} 克隆虚拟机",
                            tpl_vm.datacenter, tpl_vm.cluster
                        ),
                    ));
                }
                let mut summary = format!(
                    "克隆 {vm_name}: 模板 {template}({}),IP {ip},位置 {}/{}",
                    tpl.name, tpl_vm.datacenter, tpl_vm.cluster
                );
                if let Some(c) = cpu {
                    let _ = write!(summary, ",{c} CPU");
                }
                if let Some(m) = memory_gb {
                    let _ = write!(summary, ",{m} GiB 内存");
                }
                let op = VmOperation::Clone {
                    template: tpl.vm_id.clone(),
                    name: vm_name,
                    ip,
                    cpu,
                    memory_gb,
                };
                let provider = tpl_vm.provider.clone();
                self.confirm_or_start(
                    asker, sess, sink, name, &canonical, summary, confirmed, provider, op,
                )
                .await?
            }
            Command::Menu
            | Command::Back
            | Command::Exit
            | Command::Confirm
            | Command::Cancel
            | Command::NextPage => {
                unreachable!("conversation commands are handled in dispatch")
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn vm_op(
        &self,
        asker: &Asker<'_>,
        pool: &PoolView,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
        name: &'static str,
        canonical: &str,
        wanted: &str,
        confirmed: bool,
        make: impl FnOnce(String) -> VmOperation,
    ) -> Result<Response, StoreError> {
        // What the asker neither sees nor may act on is absent: the answer is the one
        // for a name that does not exist.
        let lookup = match &asker.pinned {
            Some((provider, id)) => match asker.view.vm_for(pool, name, provider, id) {
                Some(vm) => VmLookup::Found(vm),
                None => VmLookup::Missing {
                    suggestions: Vec::new(),
                },
            },
            None => asker.view.resolve_vm(pool, wanted, name),
        };
        let vm = match lookup {
            VmLookup::Found(vm) => vm,
            VmLookup::Ambiguous(vms) => {
                let list: Vec<String> = vms
                    .iter()
                    .map(|v| format!("{}/{}", v.provider, v.name))
                    .collect();
                return Ok(invalid(format!(
                    "「{wanted}」对应多台虚拟机: {};请用 provider/名称 指定",
                    list.join("、")
                )));
            }
            VmLookup::Missing { suggestions } => {
                let mut text = format!("找不到虚拟机「{wanted}」");
                let names: Vec<&str> = suggestions.iter().map(|v| v.name.as_str()).collect();
                if !names.is_empty() {
                    let _ = write!(text, ",您是不是要找: {}", names.join("、"));
                }
                text.push_str("。可发送 查:关键字 搜索");
                return Ok(invalid(text));
            }
        };
        if !asker.allows(name, &vm.scope_path()) {
            // Seen (listed) but not granted here: saying so reveals nothing.
            return Ok(Response::new(
                Status::Denied,
                format!(
                    "⛔ 您没有权限对 {}({}/{}/{})执行「{name}」",
                    vm.name, vm.provider, vm.datacenter, vm.cluster
                ),
            ));
        }
        if vm.template && name != "ping" {
            return Ok(invalid(format!(
                "{} 是模板,不能{name};克隆请用 克隆:模板号,名称,IP",
                vm.name
            )));
        }
        match (name, vm.power) {
            ("开机", PowerState::PoweredOn) => {
                return Ok(failed(format!("{} 已经是开机状态", vm.name)))
            }
            ("关机" | "关闭系统" | "重启", PowerState::PoweredOff) => {
                return Ok(failed(format!("{} 已经是关机状态", vm.name)))
            }
            _ => {}
        }
        let op = make(vm.id.clone());
        let summary = describe(&op, vm);
        self.confirm_or_start(
            asker,
            sess,
            sink,
            name,
            canonical,
            summary,
            confirmed,
            vm.provider.clone(),
            op,
        )
        .await
    }

    /// Asks for confirmation where the command needs it, otherwise starts the job.
    #[allow(clippy::too_many_arguments)]
    async fn confirm_or_start(
        &self,
        asker: &Asker<'_>,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
        name: &'static str,
        canonical: &str,
        summary: String,
        confirmed: bool,
        provider: String,
        op: VmOperation,
    ) -> Result<Response, StoreError> {
        if asker.dry_run {
            return Ok(Response::new(Status::NeedsConfirmation, summary));
        }
        if self.settings.confirm.contains(name) && !confirmed && !asker.msg.assume_yes {
            // The canonical text, so a menu leaf pends the command it produced rather
            // than the digit that chose it.
            sess.pending = Some(Pending {
                text: canonical.to_string(),
                summary: summary.clone(),
            });
            sess.settled = None;
            return Ok(Response::new(
                Status::NeedsConfirmation,
                format!(
                    "即将执行: {summary}\n回复 确认 或 y 执行,取消 或 n 放弃({}内有效)",
                    format::duration(self.settings.session_ttl)
                ),
            ));
        }
        let Some(p) = self.provider(&provider) else {
            return Ok(failed(format!(
                "provider {provider} 未配置(资源池中的对象来自已移除的配置?)"
            )));
        };
        let store = self.store.clone();
        let source = asker.source();
        self.start_job(asker, sink, name, summary, move |progress| {
            Box::pin(async move {
                let outcome = match p.execute(&op, &progress).await {
                    Ok(outcome) => outcome,
                    // Keep the pool true to what the failed operation left behind.
                    Err(ProviderError::Partial { rejection, vm }) => {
                        let message = render::provider::rejection(&rejection);
                        return Err(match store.upsert_vm(&vm, &source).await {
                            Ok(_) => message,
                            Err(e) => format!("{message};且资源池更新失败: {e}(发送 同步 修复)"),
                        });
                    }
                    Err(e) => return Err(render::provider::error(&e)),
                };
                let message = render::provider::done(&outcome.done);
                if let Some(vm) = &outcome.vm {
                    store
                        .upsert_vm(vm, &source)
                        .await
                        .map_err(|e| format!("{message};但资源池更新失败: {e}(发送 同步 修复)"))?;
                }
                Ok(message)
            })
        })
        .await
    }

    fn ping_refused(&self, ip: std::net::Ipv4Addr) -> String {
        let allowed: Vec<String> = self
            .settings
            .ping_allow
            .iter()
            .map(ToString::to_string)
            .collect();
        format!(
            "⛔ 不能 ping {ip}:它不是您可见的虚拟机的地址,也不在允许从本机 ping 的网段内([chat] ping_allow,当前{})",
            if allowed.is_empty() {
                "未配置".to_string()
            } else {
                format!(": {}", allowed.join("、"))
            }
        )
    }

    async fn start_job(
        &self,
        asker: &Asker<'_>,
        sink: &Arc<dyn ReplySink>,
        name: &'static str,
        summary: String,
        work: impl FnOnce(JobProgress) -> JobFuture,
    ) -> Result<Response, StoreError> {
        let ctx = JobContext {
            user: asker.msg.user.clone(),
            channel: asker.msg.channel.clone(),
            chat: asker.msg.chat.clone(),
            command: name,
            text: asker.msg.text.clone(),
        };
        let id = self.jobs.start(ctx, sink.clone(), work).await?;
        Ok(Response::new(
            Status::Accepted(id),
            format!("已受理 {id}: {summary}"),
        ))
    }

    async fn list(
        &self,
        asker: &Asker<'_>,
        pool: &PoolView,
        sess: &mut Session,
        kind: ListKind,
        n: u32,
    ) -> Result<Response, StoreError> {
        let name = match kind {
            ListKind::Vms => "虚拟机",
            ListKind::Hosts => "主机",
            ListKind::Datastores => "存储",
            ListKind::Networks => "网络",
            ListKind::Clusters => "集群",
            ListKind::Datacenters => "数据中心",
            ListKind::Templates => "模板",
            ListKind::Alerts | ListKind::DeadLetters => {
                return Ok(self.alert_list(sess, kind, n).await)
            }
            ListKind::Jobs => "任务",
        };
        let view = &asker.view;
        if kind == ListKind::Vms {
            // Only the shown page is formatted: the pool may hold tens of thousands.
            let vms = view.vms(pool, Lens::VMS);
            let (text, more) = page("虚拟机列表", &vms, n, |v| format::vm_line(v));
            sess.paging = Some(Paging {
                command: name.to_string(),
                page: n.max(1),
                last: !more,
            });
            return Ok(ok(text));
        }
        let lines: Vec<String> = match kind {
            ListKind::Vms => unreachable!("answered above"),
            ListKind::Hosts => view
                .hosts(pool, Lens::HOSTS)
                .into_iter()
                .map(format::host_line)
                .collect(),
            ListKind::Datastores => view
                .datastores(pool, Lens::DATASTORES)
                .into_iter()
                .map(format::datastore_line)
                .collect(),
            ListKind::Networks => view
                .networks(pool, Lens::NETWORKS)
                .into_iter()
                .map(|n| {
                    let vlan = n
                        .vlan
                        .map(|v| format!("VLAN {v}"))
                        .unwrap_or_else(|| "-".into());
                    let kind = if n.kind == opsbot_core::NetworkKind::Distributed {
                        "分布式"
                    } else {
                        "标准"
                    };
                    format!("{} [{}] {vlan} {kind}", n.name, n.datacenter)
                })
                .collect(),
            ListKind::Clusters => {
                // A cluster's counts are of what the asker sees in it.
                let hosts = view.hosts(pool, Lens::CLUSTERS);
                let see = view.vm_sight(Lens::CLUSTERS);
                let vms: Vec<&Vm> = pool.vms().filter(|v| see(v)).collect();
                view.clusters(pool, Lens::CLUSTERS)
                    .into_iter()
                    .map(|c| {
                        let here = |p: &str, cl: &str| p == c.provider && cl == c.name;
                        let h = hosts
                            .iter()
                            .filter(|h| here(&h.provider, &h.cluster))
                            .count();
                        let v = vms.iter().filter(|v| here(&v.provider, &v.cluster)).count();
                        format!("{} [{}] 主机 {h} · 虚拟机 {v}", c.name, c.datacenter)
                    })
                    .collect()
            }
            ListKind::Datacenters => view
                .datacenters(pool, Lens::DATACENTERS)
                .into_iter()
                .map(|d| format!("{} ({})", d.name, d.provider))
                .collect(),
            ListKind::Templates => view
                .templates(pool, Lens::TEMPLATES)
                .into_iter()
                .map(|t| format!("[{}] {} {}", t.number, t.name, t.guest_os))
                .collect(),
            ListKind::Jobs => self
                .store
                .jobs(&JobQuery {
                    user: Some(asker.user().to_string()),
                    state: None,
                    // The latest screenful; older ones by number (任务:N).
                    limit: format::PAGE_SIZE as u64,
                })
                .await?
                .iter()
                .map(|j| format::job_line(j, &self.settings.zone))
                .collect(),
            ListKind::Alerts | ListKind::DeadLetters => unreachable!("answered above"),
        };
        Ok(self.list_reply(sess, name, n, lines))
    }

    /// 告警 (firing alerts, paged from the store) and 告警:死信 (undeliverable messages).
    async fn alert_list(&self, sess: &mut Session, kind: ListKind, n: u32) -> Response {
        let Some(desk) = &self.alerts else {
            return failed("告警: 告警网关尚未配置,此功能暂不可用");
        };
        let size = format::PAGE_SIZE as u64;
        if kind == ListKind::DeadLetters {
            return match desk.dead_letters(size).await {
                Ok(p) => {
                    let (mut text, _) = format::paged("投递失败的消息(死信)", p.total, 1, &p.lines);
                    if p.total > size {
                        text.push_str(&format!("\n只显示最新 {size} 条"));
                    }
                    ok(text)
                }
                Err(e) => desk_reply(Err(e)),
            };
        }
        let mut n = u64::from(n.max(1));
        let mut page = desk.firing((n - 1) * size, size).await;
        // Past the last page: show the last one, as the other lists do.
        if let Ok(p) = &page {
            let last = p.total.div_ceil(size).max(1);
            if n > last {
                n = last;
                page = desk.firing((n - 1) * size, size).await;
            }
        }
        match page {
            Ok(p) => {
                let (text, more) = format::paged("正在发生的告警", p.total, n as u32, &p.lines);
                sess.paging = Some(Paging {
                    command: "告警".to_string(),
                    page: n as u32,
                    last: !more,
                });
                ok(text)
            }
            Err(e) => desk_reply(Err(e)),
        }
    }

    fn list_reply(&self, sess: &mut Session, name: &str, n: u32, lines: Vec<String>) -> Response {
        let title = match name {
            "帮助" => "可用命令".to_string(),
            // Times are read in the configured zone, which the title names.
            "任务" => format!(
                "任务列表 · 时间 {}",
                self.settings.zone.label(chrono::Utc::now())
            ),
            _ => format!("{name}列表"),
        };
        let (text, more) = page(&title, &lines, n, |l| l.clone());
        sess.paging = Some(Paging {
            command: name.to_string(),
            page: n.max(1),
            last: !more,
        });
        ok(text)
    }
}

/// Commands whose subsystem (Kubernetes, alert gateway, deploy) is not configured in
/// this build; 帮助 leaves them out rather than offering what cannot run.
const NOT_CONFIGURED: &[&str] = &["扩容", "告警", "静默", "发布", "回滚", "批准"];

/// The commands of the alert gateway, offered in 帮助 once it is configured.
const ALERT_COMMANDS: &[&str] = &["告警", "静默"];

fn help_lines(asker: &Asker<'_>, alerts: bool) -> Vec<String> {
    let missing: Vec<&str> = NOT_CONFIGURED
        .iter()
        .copied()
        .filter(|c| !(alerts && ALERT_COMMANDS.contains(c)))
        .collect();
    let mut lines: Vec<String> = COMMANDS
        .iter()
        .filter(|c| c.listed && !missing.contains(&c.name))
        .filter(|c| matches!(c.name, "帮助" | "菜单" | "确认") || asker.can_run(c.name))
        .map(|c| format!("{} — {}", c.usage, c.summary))
        .collect();
    lines.push(format!("(未配置: {})", missing.join("、")));
    lines
}

/// The answer to 确认 / 取消 with nothing pending: what became of the last one, when
/// the session still knows.
fn nothing_to_confirm(settled: Option<&Settled>, alive: bool, ttl: &str) -> String {
    match settled {
        Some(Settled {
            summary,
            how: Settlement::Dropped { by },
        }) => format!(
            "没有待确认的操作:「{summary}」在您发送「{by}」时已放弃,未执行。如需执行,请重新发送该命令"
        ),
        Some(Settled {
            summary,
            how: Settlement::Cancelled,
        }) => format!("没有待确认的操作:「{summary}」已取消,未执行"),
        Some(Settled {
            summary,
            how: Settlement::Confirmed,
        }) => format!("没有待确认的操作:「{summary}」已经确认过了"),
        None if alive => "没有待确认的操作".to_string(),
        None => format!("没有待确认的操作。需要确认的命令在 {ttl}内有效,请重新发送命令"),
    }
}

/// A name another VM already has. Where that VM is, is said only to whoever sees it:
/// names are one namespace, so the refusal itself cannot be avoided.
fn name_taken(asker: &Asker<'_>, wanted: &str, other: &Vm) -> Response {
    invalid(if asker.view.sees_vm(other) {
        format!(
            "已存在名为 {wanted} 的虚拟机({}/{})",
            other.datacenter, other.cluster
        )
    } else {
        format!("名称 {wanted} 已被占用,请换一个名称")
    })
}

/// The desk's answer as a chat response.
fn desk_reply(result: Result<String, DeskError>) -> Response {
    match result {
        Ok(text) => ok(text),
        Err(DeskError::Invalid(why)) => invalid(why),
        Err(DeskError::Unavailable(why)) => {
            failed(format!("⚠ 告警网关暂不可用: {why}。请稍后重试"))
        }
    }
}

/// Marks running jobs whose heartbeat is older than `stale_after` interrupted, and
/// audits each (the job's end, which its dead process could not write).
async fn sweep_stale(store: &dyn Store, stale_after: Duration) -> Result<Vec<JobId>, StoreError> {
    let stale_before = chrono::Utc::now()
        - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    let message = "已中断: 运行它的 opsbot 进程已退出;请检查目标的实际状态";
    let swept = store
        .interrupt_jobs(&InterruptFilter::StaleBefore(stale_before), message)
        .await?;
    if swept.is_empty() {
        return Ok(swept);
    }
    tracing::warn!(jobs = ?swept, "marked jobs of a dead process as interrupted");
    for id in &swept {
        let job = match store.job(*id).await {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(job = id.0, error = %e, "could not audit an interrupted job");
                continue;
            }
        };
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: job.user,
            channel: job.channel,
            chat: job.chat,
            text: job.text,
            command: Some(job.command),
            result: AuditResult::Cancelled,
            message: format!("任务 {id}: {message}"),
            duration_ms: (chrono::Utc::now() - job.created_at).num_milliseconds(),
            job_id: Some(id.0),
        };
        if let Err(e) = store.append_audit(&entry).await {
            tracing::warn!(job = id.0, error = %e, "could not audit an interrupted job");
        }
    }
    Ok(swept)
}

/// A one-line description of what an operation will do, for confirmations and jobs.
fn describe(op: &VmOperation, vm: &Vm) -> String {
    let at = format!(
        "{}({}/{},当前{})",
        vm.name,
        vm.datacenter,
        vm.cluster,
        vm.power.label()
    );
    match op {
        VmOperation::PowerOn { .. } => format!("开机 {at}"),
        VmOperation::PowerOff { .. } => format!("强制关机(断电){at}"),
        VmOperation::Shutdown { .. } => format!("关闭操作系统 {at}"),
        VmOperation::Reboot { .. } => format!("重启 {at}"),
        VmOperation::SetCpu { count, .. } => format!("{at} CPU {} → {count}", vm.cpu),
        VmOperation::SetMemory { gb, .. } => {
            format!(
                "{at} 内存 {} → {gb} GiB",
                format::fmt_memory(vm.memory_mb, " ")
            )
        }
        VmOperation::AddDisk { gb, datastore, .. } => format!(
            "{at} 添加 {gb} GiB 磁盘,存储 {}",
            datastore
                .clone()
                .or_else(|| vm.disks.first().map(|d| d.datastore.clone()))
                .unwrap_or_else(|| "-".into())
        ),
        VmOperation::SetNetwork { network, .. } => format!(
            "{at} 网卡 1: {} → {network}",
            vm.nics.first().map(|n| n.network.as_str()).unwrap_or("-")
        ),
        VmOperation::Rename { new_name, .. } => format!("改名 {at} → {new_name}"),
        VmOperation::Ping { .. } => format!("ping {}", vm.name),
        VmOperation::Clone { name, ip, .. } => format!("克隆 {name} IP {ip}"),
    }
}

/// Pulls each provider's inventory into the pool.
/// One line per provider: counts and what changed.
pub fn sync_summary(reports: &[SyncReport]) -> String {
    if reports.is_empty() {
        return "没有配置任何集群(providers)".into();
    }
    reports
        .iter()
        .map(|r| {
            let delta = if r.unchanged {
                "无变化".to_string()
            } else {
                format!("新增 {} 变更 {} 移除 {}", r.added, r.updated, r.removed)
            };
            format!(
                "{}: 数据中心 {} 集群 {} 主机 {} 虚拟机 {} 模板 {} 存储 {} 网络 {};{delta}",
                r.provider,
                r.datacenters,
                r.clusters,
                r.hosts,
                r.vms,
                r.templates,
                r.datastores,
                r.networks
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pings an address that is not a VM in the pool, from this host, with the system ping.
async fn host_ping(ip: std::net::Ipv4Addr) -> Result<String, String> {
    let out = tokio::process::Command::new("ping")
        .args(["-c", "3", "-W", "1", "-i", "0.2", &ip.to_string()])
        .output()
        .await
        .map_err(|e| format!("本机无法执行 ping: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.contains("packets transmitted") || l.contains("rtt") || l.contains("round-trip")
        })
        .collect();
    if out.status.success() {
        Ok(format!("{ip} 可达: {}", summary.join(";")))
    } else {
        Err(format!(
            "{ip} 不可达: {}",
            if summary.is_empty() {
                "无回复".to_string()
            } else {
                summary.join(";")
            }
        ))
    }
}
