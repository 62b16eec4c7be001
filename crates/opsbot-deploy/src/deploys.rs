//! The deploy subsystem as one object: the configured and stored projects, the stores it
//! writes, the artefact store, and what runs in this process (builds, orders). Chat, the
//! REST API and the web UI all go through it.

use crate::artefacts::ArtefactStore;
use crate::config::{DeployConfig, Project};
use crate::hosts::{self, Sources, Target};
use crate::model::OrderState;
use crate::notify;
use crate::salt::SaltTransport;
use opsbot_core::chat::Requester;
use opsbot_core::Zone;
use opsbot_store::alerts::AlertStore;
use opsbot_store::deploy::{DeployStore, OrderQuery, OrderRecord};
use opsbot_store::{AssetStore, AuditStore, LeaseStore, OutboxStore, PoolStore, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The scope path of a project, which roles' globs match (`deploy/shop`).
pub fn scope(project: &str) -> String {
    format!("deploy/{project}")
}

/// Why a request was refused: what the caller must change (or may not see), or what
/// failed that they cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Invalid(String),
    Failed(String),
}

impl Refused {
    pub fn text(&self) -> &str {
        match self {
            Refused::Invalid(t) | Refused::Failed(t) => t,
        }
    }
}

pub(crate) fn store_err(e: opsbot_store::StoreError) -> Refused {
    Refused::Failed(format!("存储不可用,请稍后再试({e})"))
}

pub struct Deploys {
    pub(crate) cfg: DeployConfig,
    pub(crate) store: Arc<dyn DeployStore>,
    pub(crate) outbox: Arc<dyn OutboxStore>,
    pub(crate) leases: Arc<dyn LeaseStore>,
    pub(crate) pool: Arc<dyn PoolStore>,
    pub(crate) assets: Arc<dyn AssetStore>,
    /// Where a canary watch looks for alerts.
    pub(crate) alerts: Arc<dyn AlertStore>,
    /// What opsbot does on its own (a canary's rollback) is audited here.
    pub(crate) audit: Arc<dyn AuditStore>,
    pub(crate) artefacts: ArtefactStore,
    /// This process, as the owner of the orders and builds it runs.
    pub(crate) owner: String,
    pub(crate) zone: Zone,
    pub(crate) http: reqwest::Client,
    /// Short folder for SSH control sockets (their path is limited to 108 bytes).
    pub(crate) control_dir: PathBuf,
    /// The engine, to run built-in commands as the asker (扩容 clones with 克隆); set
    /// once the engine exists.
    operator: std::sync::OnceLock<Arc<dyn opsbot_core::chat::Operator>>,
    /// The Salt transport of `[deploy.salt]`, made at first use (its login is cached).
    salt: std::sync::OnceLock<Result<Arc<SaltTransport>, String>>,
    /// Signs the buttons of order messages; without it every message is text.
    card_keys: std::sync::OnceLock<opsbot_core::card::CardKeys>,
}

impl Deploys {
    /// `owner` identifies this process (as for jobs); `zone` is the one chat shows
    /// times and reads release windows in.
    pub fn new(
        cfg: DeployConfig,
        store: Arc<dyn Store>,
        owner: String,
        zone: Zone,
    ) -> Arc<Deploys> {
        let data = PathBuf::from(&cfg.data_dir);
        let control_dir = std::env::temp_dir().join(format!("opsbot-ssh-{}", std::process::id()));
        Arc::new(Deploys {
            artefacts: ArtefactStore::new(data.join("artefacts")),
            store: store.clone(),
            outbox: store.clone(),
            leases: store.clone(),
            pool: store.clone(),
            assets: store.clone(),
            alerts: store.clone(),
            audit: store,
            owner,
            zone,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .expect("an HTTP client"),
            control_dir,
            cfg,
            operator: std::sync::OnceLock::new(),
            salt: std::sync::OnceLock::new(),
            card_keys: std::sync::OnceLock::new(),
        })
    }

    /// Order messages to people in a WeCom app carry buttons signed with `keys` (the
    /// cards sub-key of the secret key, the same on every instance, so any instance
    /// checks a tap); set once.
    pub fn set_card_keys(&self, keys: opsbot_core::card::CardKeys) {
        let _ = self.card_keys.set(keys);
    }

    /// Hands the deploys the engine they run built-in commands through (once).
    pub fn set_operator(&self, operator: Arc<dyn opsbot_core::chat::Operator>) {
        let _ = self.operator.set(operator);
    }

    pub(crate) fn operator(&self) -> Option<Arc<dyn opsbot_core::chat::Operator>> {
        self.operator.get().cloned()
    }

    /// The Salt transport, or why there is none (no `[deploy.salt]`, a bad CA file).
    pub(crate) fn salt(&self) -> Result<Arc<SaltTransport>, String> {
        self.salt
            .get_or_init(|| {
                let cfg = self.cfg.salt.as_ref().ok_or_else(|| {
                    "transport = \"salt\" 需要配置 [deploy.salt](salt-api 与 file_root)".to_string()
                })?;
                SaltTransport::new(cfg, self.cfg.connect_timeout())
                    .map(Arc::new)
                    .map_err(|e| format!("[deploy.salt]: {e}"))
            })
            .clone()
    }

    pub fn store(&self) -> &Arc<dyn DeployStore> {
        &self.store
    }

    /// Every project: the configuration's, then those created through the API.
    pub async fn projects(&self) -> Result<Vec<Project>, Refused> {
        let mut out = self.cfg.projects.clone();
        for r in self.store.project_list().await.map_err(store_err)? {
            if out.iter().any(|p| p.name == r.name) {
                continue;
            }
            match serde_json::from_str::<Project>(&r.definition) {
                Ok(p) => out.push(p),
                Err(e) => {
                    tracing::warn!(project = %r.name, error = %e, "stored project unreadable")
                }
            }
        }
        Ok(out)
    }

    /// The projects `caller` may use `command` on.
    pub async fn visible_projects(
        &self,
        caller: &dyn Requester,
        command: &str,
    ) -> Result<Vec<Project>, Refused> {
        Ok(self
            .projects()
            .await?
            .into_iter()
            .filter(|p| caller.may_at(command, &scope(&p.name)))
            .collect())
    }

    /// Project `name` if `caller` may use `command` on it; otherwise it reads as
    /// unknown (out of scope is not found).
    pub async fn project_for(
        &self,
        caller: &dyn Requester,
        command: &str,
        name: &str,
    ) -> Result<Project, Refused> {
        let found = self.project(name).await?;
        match found {
            Some(p) if caller.may_at(command, &scope(&p.name)) => Ok(p),
            _ => {
                let known: Vec<String> = self
                    .visible_projects(caller, command)
                    .await?
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                Err(Refused::Invalid(crate::render::unknown_project(
                    name, &known,
                )))
            }
        }
    }

    pub async fn project(&self, name: &str) -> Result<Option<Project>, Refused> {
        if let Some(p) = self.cfg.projects.iter().find(|p| p.name == name) {
            return Ok(Some(p.clone()));
        }
        match self.store.project_get(name).await.map_err(store_err)? {
            Some(r) => serde_json::from_str(&r.definition)
                .map(Some)
                .map_err(|e| Refused::Failed(format!("项目「{name}」的定义无法读取: {e}"))),
            None => Ok(None),
        }
    }

    /// Creates or replaces a project through the API. Configured projects cannot be
    /// replaced (the file is their source).
    pub async fn put_project(&self, project: &Project, user: &str) -> Result<(), Refused> {
        project.validate("project").map_err(Refused::Invalid)?;
        project
            .check_transport(&self.cfg, "project")
            .map_err(Refused::Invalid)?;
        if self.cfg.projects.iter().any(|p| p.name == project.name) {
            return Err(Refused::Invalid(format!(
                "项目「{}」在配置文件中定义,请在配置文件中修改",
                project.name
            )));
        }
        let json = serde_json::to_string(project).map_err(|e| Refused::Failed(e.to_string()))?;
        self.store
            .project_put(&project.name, &json, user)
            .await
            .map_err(store_err)
    }

    /// The hosts of `project` now (for a Salt project with a target, salt is asked
    /// which minions it matches).
    pub async fn hosts(&self, project: &Project) -> Result<Vec<Target>, Refused> {
        let minions = match &project.salt_target {
            Some(t) => {
                let salt = self.salt().map_err(Refused::Failed)?;
                salt.minions(t).await.map_err(|e| {
                    Refused::Failed(format!(
                        "无法向 Salt 查询项目「{}」的主机: {e}",
                        project.name
                    ))
                })?
            }
            None => Vec::new(),
        };
        hosts::resolve(
            project,
            &minions,
            &Sources {
                pool: self.pool.as_ref(),
                assets: self.assets.as_ref(),
                deploys: self.store.as_ref(),
            },
        )
        .await
        .map_err(|e| match e {
            hosts::HostsError::Store(s) => Refused::Failed(format!("存储不可用: {s}")),
            e => Refused::Invalid(e.to_string()),
        })
    }

    /// Order `id` if `caller` may use `command` on its project.
    pub async fn order_for(
        &self,
        caller: &dyn Requester,
        command: &str,
        id: i64,
    ) -> Result<OrderRecord, Refused> {
        match self.store.order_get(id).await.map_err(store_err)? {
            Some(o) if caller.may_at(command, &scope(&o.project)) => Ok(o),
            _ => Err(Refused::Invalid(format!(
                "没有发布单 #{id}。发送「发布单」查看"
            ))),
        }
    }

    /// Says `text` to the project's notification targets and to the order's asker,
    /// with the buttons the order's state offers now.
    pub(crate) async fn tell(&self, project: &Project, order: &OrderRecord, text: &str) {
        let (order, offer) = self.offer(order).await;
        let buttons = self.buttons(offer.as_ref());
        let notices = notify::notices(project, &order, text, buttons);
        notify::queue(self.outbox.as_ref(), order.id, notices).await;
    }

    /// Order `order` as it is now and what its state offers (nothing without card
    /// keys: then no card is made).
    pub(crate) async fn offer(
        &self,
        order: &OrderRecord,
    ) -> (OrderRecord, Option<crate::cards::Offer>) {
        if self.card_keys.get().is_none() {
            return (order.clone(), None);
        }
        let now = match self.store.order_get(order.id).await {
            Ok(Some(o)) => o,
            _ => order.clone(),
        };
        let runs = self.store.host_runs(now.id).await.unwrap_or_default();
        let releases = self.releases_before(&now).await;
        let offer = crate::cards::offer(
            &now,
            &runs,
            &releases,
            chrono::Utc::now(),
            self.cfg.card_ttl(),
        );
        (now, offer)
    }

    /// The newest releases of `o`'s project older than it that finished on hosts, for
    /// 回滚 to pick from; none when its state offers no 回滚 (no queries then) or the
    /// store cannot say (回滚 then offers the release the hosts ran before only).
    async fn releases_before(&self, o: &OrderRecord) -> Vec<crate::cards::Release> {
        use crate::model::OrderKind;
        let rolls_back = matches!(
            OrderState::parse(&o.state),
            Some(
                OrderState::Succeeded
                    | OrderState::PartlyFailed
                    | OrderState::Failed
                    | OrderState::Aborted
            )
        ) && matches!(
            OrderKind::parse(&o.kind),
            Some(OrderKind::Release | OrderKind::Retry)
        );
        if !rolls_back {
            return Vec::new();
        }
        let q = OrderQuery {
            project: Some(o.project.clone()),
            states: [
                OrderState::Succeeded,
                OrderState::PartlyFailed,
                OrderState::RolledBack,
            ]
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
            before: Some(o.id),
            limit: 50,
        };
        let list = match self.store.order_list(&q).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, order = o.id, "could not list releases to roll back to");
                return Vec::new();
            }
        };
        let current = o.version.unwrap_or(o.id);
        let mut out: Vec<crate::cards::Release> = Vec::new();
        for r in &list {
            let version = r.version.unwrap_or(r.id);
            let Some(build) = r.build else { continue };
            if r.kind == OrderKind::Rollback.as_str()
                || version >= current
                || out.iter().any(|x| x.version == version)
            {
                continue;
            }
            let revision = match self.store.build_get(build).await {
                Ok(Some(b)) => b.revision,
                _ => String::new(),
            };
            let at = r.finished_at.unwrap_or(r.created_at);
            out.push(crate::cards::Release::new(
                version, &revision, at, &self.zone,
            ));
            if out.len() == opsbot_core::card::MAX_CHOICES {
                break;
            }
        }
        out
    }

    pub(crate) fn buttons<'a>(
        &'a self,
        offer: Option<&'a crate::cards::Offer>,
    ) -> Option<notify::Buttons<'a>> {
        Some(notify::Buttons {
            keys: self.card_keys.get()?,
            offer: offer?,
        })
    }

    /// At start: builds left running by a process that died are interrupted, and
    /// orders it was running are marked 已中断 with their hosts' state, and their askers
    /// told. Run again periodically: another instance's orders are found once their
    /// heartbeat is stale.
    pub async fn recover(self: &Arc<Self>) {
        let timeout = self.cfg.build_timeout() + Duration::from_secs(60);
        let before = chrono::Utc::now() - chrono::Duration::from_std(timeout).unwrap_or_default();
        if let Err(e) = self.store.builds_interrupt(before).await {
            tracing::warn!(error = %e, "could not mark interrupted builds");
        }
        self.interrupt_stale().await;
    }

    /// Keeps this process's orders alive in the store and finds other instances' dead
    /// ones. Runs until the process ends.
    pub fn spawn_upkeep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(period) = me.upgrade().map(|d| d.heartbeat()) else {
                return;
            };
            let mut tick = tokio::time::interval(period);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(d) = me.upgrade() else { break };
                if let Err(e) = d.store.order_heartbeat(&d.owner).await {
                    tracing::warn!(error = %e, "order heartbeat failed");
                }
                n += 1;
                if n.is_multiple_of(3) {
                    d.interrupt_stale().await;
                }
            }
        })
    }

    /// How long a running order's heartbeat may be silent before another instance (or
    /// this one, restarted) calls it orphaned.
    pub fn stale_after(&self) -> Duration {
        self.cfg.stale_after()
    }

    /// How often a running order's heartbeat and its project's lease are refreshed.
    pub fn heartbeat(&self) -> Duration {
        (self.cfg.stale_after() / 6).max(Duration::from_millis(200))
    }

    /// Marks 已中断 the running orders whose instance stopped refreshing them (this
    /// process's own orders are never stale: its owner id is new at every start).
    async fn interrupt_stale(self: &Arc<Self>) {
        let stale =
            chrono::Utc::now() - chrono::Duration::from_std(self.stale_after()).unwrap_or_default();
        // No instance has the empty owner: only stale heartbeats match.
        let orphans = match self
            .store
            .orders_orphaned(&[OrderState::Running.as_str()], "", stale)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for interrupted orders");
                return;
            }
        };
        for order in orphans {
            crate::release::interrupt(self, &order).await;
        }
    }
}
