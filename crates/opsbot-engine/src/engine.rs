//! The engine proper: conversation state, permissions, command execution and audit.

mod api;
mod cards;
pub mod commands;
mod menu;
mod operator;
mod subsystem;
pub use api::{Acted, Caller, CloneSpec, Mode, Ran, Refusal, Request, VmAction};
pub use cards::{Click, Clicked};
pub use operator::EngineOperator;

use crate::command::{self, normalize, Command, ParseError, COMMANDS};
use crate::format::{self, page};
use crate::jobs::{JobAbout, JobContext, JobFuture, JobProgress, JobRunner};
use crate::menu::{is_named_path, is_path, root_stack, MenuTree};
use crate::pool::{PoolCache, PoolView};
use crate::reply::{ReplySink, Response, Status};
use crate::session::{self, Paging, Session, Settled, Settlement};
use crate::sync::Syncer;
use crate::view::{Viewer, VmMasks};
use commands::Ctx;
use opsbot_core::{
    AuditEntry, AuditResult, JobId, JobRecord, Policy, Provider, Registry, Subsystem,
};
use opsbot_store::{InterruptFilter, SessionStore, Store, StoreError, SyncReport};
use std::collections::HashSet;
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
    /// The tag key whose values name the services VMs serve (`[pool] service_tag`,
    /// `app`: a VM tagged `app:erp` serves erp).
    pub service_tag: String,
    /// The numeric menu tree (`[[menu]]`; default: the built-in menu).
    pub menu: Arc<MenuTree>,
    /// Signs and checks card buttons; `None`: no buttons (confirmations are typed).
    pub cards: Option<opsbot_core::CardKeys>,
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
            service_tag: "app".into(),
            menu: MenuTree::builtin(),
            cards: None,
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
    /// What the registered subsystems answer through (alerts, CMDB); a command whose
    /// subsystem is missing answers "尚未配置".
    subsystems: Registry,
    /// What scoped callers see of the VM list, per role set and pool version.
    masks: Arc<VmMasks>,
}

/// The result of dispatching one message, before audit.
struct Outcome {
    response: Response,
    command: Option<&'static str>,
    /// The canonical text of the command that ran when the message was not it (a
    /// confirming `y`, a menu digit, 下一页): the audit records it instead of the name,
    /// beside the raw text.
    ran: Option<String>,
    cancelled: bool,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            command: None,
            ran: None,
            cancelled: false,
        }
    }
}

/// Who is asking, for permission checks and job ownership.
pub(crate) struct Asker<'a> {
    msg: &'a Incoming,
    /// What the asker may see and do: every visibility decision goes through it.
    view: Viewer,
    /// The REST API and web UI name a VM by `(provider, id)`: the VM operation acts on
    /// exactly that VM instead of resolving a name.
    pinned: Option<(String, String)>,
    /// Validate and describe, but neither start nor ask (the web UI's confirm dialog).
    dry_run: bool,
    /// The canonical text of the command being run (`CPU:web-01,4`), which its job
    /// records: the message may only be the `y` or menu digit that chose it.
    command: Option<String>,
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
        let pool = PoolCache::new(store.clone());
        // No subsystem is registered yet: the first sweep words jobs without probes.
        sweep_stale(store.as_ref(), &pool, &[], settings.stale_after).await?;
        Ok(Engine {
            pool,
            jobs: JobRunner::new(
                store.clone(),
                store.clone(),
                store.clone(),
                settings.owner.clone(),
                settings.stale_after / 8,
            ),
            syncer: Arc::new(Syncer::new(
                store.clone(),
                store.clone(),
                crate::sync::FULL_SYNC_EVERY,
            )),
            store,
            sessions,
            providers,
            policy: RwLock::new(Arc::new(policy)),
            settings,
            subsystems: Registry::default(),
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

    /// Plugs a subsystem in: its own chat commands, or the desk the table's commands
    /// that `requires` it read.
    ///
    /// # Panics
    /// When a subsystem declares a command name or alias the built-in table already
    /// answers (only the planned commands, which say "尚未配置", may be replaced): a
    /// wiring bug that must not reach a user as a silently shadowed command.
    pub fn register(mut self, subsystem: Arc<dyn Subsystem>) -> Self {
        subsystem.register(&mut self.subsystems);
        for set in self.subsystems.command_sets() {
            for decl in set.commands() {
                for word in std::iter::once(decl.name).chain(decl.aliases.iter().copied()) {
                    if let Some(builtin) = command::spec(word) {
                        assert!(
                            builtin.requires.is_some() || set.shares().contains(&builtin.name),
                            "subsystem command {word:?} is already the built-in command {:?}",
                            builtin.name
                        );
                    }
                }
            }
        }
        self
    }

    /// Parses one message: the built-in table and the registered subsystems' commands.
    pub fn parse(&self, text: &str) -> Result<Command, ParseError> {
        command::parse_in(text, self.subsystems.command_sets())
    }

    /// Whether the command named `name` (canonical) asks for confirmation by default.
    pub fn is_destructive(&self, name: &str) -> bool {
        match command::spec(name) {
            Some(spec) => spec.destructive,
            None => command::subsystem_spec(self.subsystems.command_sets(), name)
                .is_some_and(|(_, d)| d.destructive),
        }
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
        sweep_stale(
            self.store.as_ref(),
            &self.pool,
            self.subsystems.job_probes(),
            self.settings.stale_after,
        )
        .await
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
            command: None,
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
            command: outcome
                .ran
                .clone()
                .or_else(|| outcome.command.map(str::to_string)),
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
        // The answer to "which one did you mean" comes before the menu's digits; any
        // other message drops the question.
        if let Some(choice) = sess.choice.take() {
            if let Some(route) = text
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| choice.options.get(i))
                .map(|(route, _)| *route)
            {
                return match self.parse(&choice.text) {
                    Ok(cmd) => {
                        let cmd = routed(cmd, Some(route));
                        let ran = cmd.to_string();
                        let mut out = self.run(asker, cmd, false, sess, sink).await;
                        out.ran = Some(ran);
                        out
                    }
                    Err(e) => invalid(e.to_string()).into(),
                };
            }
        }
        // An open menu takes digits, paths, names it lists and (at input nodes) free
        // text first.
        if sess.menu.is_some() {
            let control = self
                .parse(text)
                .ok()
                .filter(|c| matches!(c, Command::Back | Command::Exit | Command::Menu));
            if control.is_none() {
                if let Some(out) = self.open_menu_answer(asker, text, sess, sink).await {
                    return out;
                }
            }
        } else if is_path(text) || (is_named_path(text) && self.parse(text).is_err()) {
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
            sess.menu = Some(root_stack());
            sess.menu_exited = false;
            return self
                .menu_answer(asker, text, sess, sink, false)
                .await
                .unwrap_or_else(|| invalid("菜单路径无效").into());
        }

        let cmd = match self.parse(text) {
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
                sess.menu = Some(root_stack());
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
                    let cmd = match self.parse(&p.text) {
                        Ok(c) => routed(c, p.route),
                        Err(e) => return invalid(e.to_string()).into(),
                    };
                    let ran = cmd.to_string();
                    let mut out = self.run(asker, cmd, true, sess, sink).await;
                    out.command = Some(name);
                    out.ran = Some(ran);
                    // Confirmed from the menu: say where the menu stands now.
                    if let Some(note) = self.menu_note(sess) {
                        out.response.text.push_str(&format!("\n\n{note}"));
                    }
                    out
                }
                None => invalid(nothing_to_confirm(sess.settled.as_ref(), alive, &ttl)).into(),
            },
            Command::Cancel => match sess.pending.take() {
                Some(p) => {
                    let mut response = ok(format!("已取消: {}", p.summary));
                    if let Some(note) = self.menu_note(sess) {
                        response.text.push_str(&format!("\n\n{note}"));
                    }
                    sess.settled = Some(Settled {
                        summary: p.summary,
                        how: Settlement::Cancelled,
                    });
                    Outcome {
                        response,
                        command: None,
                        ran: None,
                        cancelled: true,
                    }
                }
                None => invalid(nothing_to_confirm(sess.settled.as_ref(), alive, &ttl)).into(),
            },
            Command::NextPage => match sess.paging.clone() {
                Some(p) if p.last => {
                    invalid(format!("「{}」已经是最后一页(第 {} 页)", p.command, p.page)).into()
                }
                Some(p) => match self.parse(&p.text(p.page + 1)) {
                    Ok(cmd) => {
                        let ran = cmd.to_string();
                        let mut out = self.run(asker, cmd, false, sess, sink).await;
                        out.ran = Some(ran);
                        out
                    }
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
        // The job (if one starts) records the command, not the message that chose it.
        let asker = &Asker {
            msg: asker.msg,
            view: asker.view.clone(),
            pinned: asker.pinned.clone(),
            dry_run: asker.dry_run,
            command: Some(cmd.to_string()),
        };
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

    /// Runs a permitted command through its table entry's handler.
    async fn execute(
        &self,
        asker: &Asker<'_>,
        cmd: Command,
        confirmed: bool,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Result<Response, StoreError> {
        if let Command::Subsystem {
            spec,
            ref args,
            route,
        } = cmd
        {
            let canonical = cmd.to_string();
            return Ok(self
                .run_subsystem(asker, spec, args, route, &canonical, confirmed, sess, sink)
                .await);
        }
        let pool = self.pool.get().await?;
        let Some(run) = command::spec(cmd.name()).and_then(|s| s.run) else {
            unreachable!("conversation commands are handled in dispatch")
        };
        let cx = Ctx {
            engine: self,
            asker,
            sess,
            sink,
            confirmed,
            pool,
        };
        run(cx, cmd).await
    }

    /// What a destructive command does before it acts: on a dry run (the web UI's
    /// dialog) it only describes itself; when the command is to be confirmed and was
    /// not, its canonical text waits in the session for 确认 (so a menu leaf pends the
    /// command it produced rather than the digit that chose it) and the asker is asked.
    /// `None`: act now.
    fn confirm_first(
        &self,
        asker: &Asker<'_>,
        sess: &mut Session,
        name: &str,
        confirmed: bool,
        canonical: &str,
        summary: &str,
    ) -> Option<Response> {
        if asker.dry_run {
            return Some(Response::new(Status::NeedsConfirmation, summary));
        }
        if !self.confirms(name) || confirmed || asker.msg.assume_yes {
            return None;
        }
        sess.pending = Some(session::Pending {
            text: canonical.to_string(),
            summary: summary.to_string(),
            route: None,
        });
        sess.settled = None;
        let mut asked = Response::new(
            Status::NeedsConfirmation,
            format!(
                "即将执行: {summary}\n回复 确认 或 y 执行,取消 或 n 放弃({}内有效)",
                format::duration(self.settings.session_ttl)
            ),
        );
        asked.card = self.confirmation_card(canonical, summary, &asked.text);
        Some(asked)
    }

    async fn start_job(
        &self,
        asker: &Asker<'_>,
        sink: &Arc<dyn ReplySink>,
        name: &'static str,
        about: impl Into<JobAbout>,
        cancellable: bool,
        work: impl FnOnce(JobProgress) -> JobFuture,
    ) -> Result<Response, StoreError> {
        let JobAbout { summary, target } = about.into();
        let ctx = JobContext {
            user: asker.msg.user.clone(),
            channel: asker.msg.channel.clone(),
            chat: asker.msg.chat.clone(),
            command: name,
            text: asker
                .command
                .clone()
                .unwrap_or_else(|| asker.msg.text.clone()),
            cancellable,
            target,
        };
        let id = self.jobs.start(ctx, sink.clone(), work).await?;
        Ok(Response::new(
            Status::Accepted(id),
            format!("已受理 {id}: {summary}"),
        ))
    }

    /// The tag key services are read from (`[pool] service_tag`).
    pub fn service_tag(&self) -> &str {
        &self.settings.service_tag
    }

    fn list_reply(&self, sess: &mut Session, name: &str, n: u32, lines: Vec<String>) -> Response {
        let title = match name {
            commands::names::HELP => "可用命令".to_string(),
            // Times are read in the configured zone, which the title names.
            commands::names::JOBS => format!(
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

/// `cmd` bound to the subsystem set `route` when it is a subsystem's command.
fn routed(cmd: Command, route: Option<usize>) -> Command {
    match cmd {
        Command::Subsystem { spec, args, .. } if route.is_some() => {
            Command::Subsystem { spec, args, route }
        }
        cmd => cmd,
    }
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

/// Marks running jobs whose heartbeat is older than `stale_after` interrupted, each
/// with what its VM looks like now as far as the pool knows, and audits each (the
/// job's end, which its dead process could not write).
async fn sweep_stale(
    store: &dyn Store,
    pool: &PoolCache,
    probes: &[Arc<dyn opsbot_core::JobStateProbe>],
    stale_after: Duration,
) -> Result<Vec<JobId>, StoreError> {
    let stale_before = chrono::Utc::now()
        - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    // Loaded before the jobs are locked: the interruption then holds no lock while
    // the pool loads. Without a pool the message says less, and the sweep still runs.
    let view = match pool.get().await {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::warn!(error = %e, "no pool for the states of interrupted jobs' targets");
            None
        }
    };
    let probed = probe_running(store, probes).await;
    let say = |job: &JobRecord| match probed.get(&job.id) {
        Some(line) => format!("{STOPPED};{line}"),
        None => interrupted_saying(view.as_deref(), job.target.as_deref()),
    };
    let swept = store
        .interrupt_jobs_saying(&InterruptFilter::StaleBefore(stale_before), &say)
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
            message: format!("任务 {id}: {}", job.message),
            duration_ms: (chrono::Utc::now() - job.created_at).num_milliseconds(),
            job_id: Some(id.0),
        };
        if let Err(e) = store.append_audit(&entry).await {
            tracing::warn!(job = id.0, error = %e, "could not audit an interrupted job");
        }
    }
    Ok(swept)
}

/// What a job interrupted by the sweep says: its VM's power state in the pool, when
/// it acts on one VM the pool has (the pool holds what the last sync or operation
/// saw, so the asker is still asked to check).
/// How every job the sweep interrupts starts its message.
const STOPPED: &str = "已中断: 运行它的 opsbot 实例已停止(或失联超时)";

/// What the subsystems' probes tell of the running jobs without a VM target (a
/// Kubernetes rollout: pods ready, revision), asked before the jobs are locked since a
/// probe is async. Running jobs are few; a job that turns out not stale is left alone.
async fn probe_running(
    store: &dyn Store,
    probes: &[Arc<dyn opsbot_core::JobStateProbe>],
) -> std::collections::HashMap<JobId, String> {
    let mut lines = std::collections::HashMap::new();
    if probes.is_empty() {
        return lines;
    }
    let query = opsbot_store::JobQuery {
        state: Some(opsbot_core::JobState::Running),
        limit: 1000,
        ..Default::default()
    };
    let running = match store.jobs(&query).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list running jobs for their targets' states");
            return lines;
        }
    };
    for job in running.iter().filter(|j| j.target.is_none()) {
        for probe in probes {
            if let Some(line) = probe.describe(&job.command, &job.text).await {
                lines.insert(job.id, line);
                break;
            }
        }
    }
    lines
}

fn interrupted_saying(view: Option<&PoolView>, target: Option<&str>) -> String {
    let vm = target
        .and_then(|t| t.split_once('/'))
        .and_then(|(provider, id)| view?.vm(provider, id));
    match vm {
        Some(vm) => format!(
            "{STOPPED};{} 当前状态: {}(据资源池,请以实际为准)",
            vm.name,
            vm.power.label()
        ),
        None => format!("{STOPPED};请检查目标的实际状态"),
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
