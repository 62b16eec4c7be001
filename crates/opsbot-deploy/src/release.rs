//! Running an order: claim it in the store, hold the project's lease, go through its
//! batches (hosts of a batch in parallel up to the strategy's parallelism), and on each
//! host upload (or find) the release, run the hooks, switch `current` atomically, check
//! health (switching back when it fails), prune, record what runs, through the
//! project's [`Transport`] (SSH or Salt: the order does not care). The order's state in
//! the store is the signal: 暂停 or 已终止 written by anyone (another instance, the web
//! UI) stops it before its next host; a restart finds it 发布中 with a stale heartbeat
//! and marks it 已中断 with the hosts' real state. The run is fenced ([`Fence`]): it
//! checks before each batch, host and host step that it still holds the project's
//! lease (same token) and the order, and what it writes is conditional on holding the
//! order, so an instance that wakes after others took its work over stops at once,
//! touches no further host, and writes and says nothing over its successor.

use crate::canary::AfterWatch;
use crate::config::Project;
use crate::deploys::Deploys;
use crate::fence::Fence;
use crate::log::LogSink;
use crate::model::{HostState, OrderKind, OrderState};
use crate::remote::{self, Layout, StepError};
use crate::ssh::SshOptions;
use crate::storelog::StoreLog;
use crate::transport::{Artefact, HostLink, LinkError, Transport};
use futures::StreamExt;
use opsbot_core::chat::JobReport;
use opsbot_store::deploy::{HostPatch, HostRunRecord, LogOf, OrderPatch, OrderRecord};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn lease_name(project: &str) -> String {
    format!("deploy:{project}")
}

/// How an order run ended, for the job.
pub(crate) type Ended = Result<String, String>;

/// Runs order `id` to its end (or its pause) in this process.
pub async fn run(d: Arc<Deploys>, id: i64, report: Arc<dyn JobReport>) -> Ended {
    let order = match d.store.order_get(id).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(format!("没有发布单 #{id}")),
        Err(e) => return Err(format!("存储不可用: {e}")),
    };
    let project = match d.project(&order.project).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(format!("项目「{}」已不存在", order.project)),
        Err(e) => return Err(e.text().to_string()),
    };
    let lease = lease_name(&project.name);
    let held = match d.leases.lease_take(&lease, &d.owner, d.stale_after()).await {
        Ok(Some(held)) => held,
        Ok(None) => {
            let busy = d
                .store
                .order_active(&project.name, &[OrderState::Running.as_str()])
                .await
                .ok()
                .flatten()
                .map(|o| format!(" #{}", o.id))
                .unwrap_or_default();
            return Err(format!(
                "项目「{}」正在发布{busy},请等它结束后再试",
                project.name
            ));
        }
        Err(e) => return Err(format!("存储不可用: {e}")),
    };
    let fence = Arc::new(Fence::new(held, id));
    let claimed = d
        .store
        .order_transition(
            id,
            &[
                OrderState::Ready.as_str(),
                OrderState::Paused.as_str(),
                OrderState::Interrupted.as_str(),
            ],
            OrderState::Running.as_str(),
            &OrderPatch {
                owner: Some(Some(d.owner.clone())),
                ..OrderPatch::default()
            },
        )
        .await;
    if !matches!(claimed, Ok(true)) {
        let _ = d.leases.lease_release(&lease, &d.owner).await;
        let now = d.store.order_get(id).await.ok().flatten();
        return Err(match now {
            Some(o) => format!("发布单 #{id} 当前为「{}」,不能开始", o.state),
            None => format!("没有发布单 #{id}"),
        });
    }
    // The project's lease lives as long as this run, unless it is lost: then the
    // renewal stops and the run stops at its next check.
    let keep = {
        let d = d.clone();
        let fence = fence.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(d.heartbeat());
            loop {
                tick.tick().await;
                if !fence.renew(&d).await {
                    break;
                }
                let _ = d.store.order_heartbeat(&d.owner).await;
            }
        })
    };
    let ended = Run {
        d: d.clone(),
        project,
        order,
        report,
        fence,
    }
    .go()
    .await;
    keep.abort();
    let _ = d.leases.lease_release(&lease, &d.owner).await;
    ended
}

pub(crate) struct Run {
    pub(crate) d: Arc<Deploys>,
    pub(crate) project: Project,
    pub(crate) order: OrderRecord,
    pub(crate) report: Arc<dyn JobReport>,
    pub(crate) fence: Arc<Fence>,
}

/// What a host run came to.
enum HostEnd {
    Done,
    Failed,
    /// Not started: the order was paused or aborted first.
    NotStarted,
    /// Stopped (or not started) because the run lost its fence; nothing recorded.
    Fenced,
}

impl Run {
    fn kind(&self) -> OrderKind {
        OrderKind::parse(&self.order.kind).unwrap_or(OrderKind::Release)
    }

    /// The release this order puts on its hosts.
    fn version(&self) -> i64 {
        self.order.version.unwrap_or(self.order.id)
    }

    pub(crate) async fn log(&self, text: &str) {
        let _ = self
            .d
            .store
            .log_append(LogOf::Order(self.order.id, Some("")), text)
            .await;
    }

    pub(crate) async fn state_now(&self) -> Option<OrderState> {
        match self.d.store.order_get(self.order.id).await {
            Ok(Some(o)) => OrderState::parse(&o.state),
            _ => None,
        }
    }

    async fn go(self) -> Ended {
        let id = self.order.id;
        let d = self.d.clone();
        let hosts = match d.store.host_runs(id).await {
            Ok(h) => h,
            Err(e) => return self.finish_error(format!("存储不可用: {e}")).await,
        };
        let artefact = match self.artefact().await {
            Ok(a) => a,
            Err(e) => return self.finish_error(e).await,
        };
        let total = hosts.len().max(1);
        let first_run = hosts.iter().all(|h| h.state == HostState::Pending.as_str());
        if self.kind() == OrderKind::ScaleIn {
            return crate::scale::scale_in(&self, &hosts).await;
        }
        let transport = match Transport::for_project(&d, &self.project) {
            Ok(t) => t,
            Err(e) => return self.finish_error(e).await,
        };
        // Before any host: a transport that cannot work at all (salt-api down, its
        // login refused) fails the order once, its hosts left as they are.
        if let Err(e) = transport.check().await {
            return self.finish_error(e).await;
        }
        match self.kind() {
            OrderKind::ScaleOut if first_run => {
                if let Err(e) = crate::scale::provision(&self, &hosts).await {
                    return self.finish_error(e).await;
                }
                if self.order.build.is_none() {
                    // Nothing released yet: the new hosts are ready and empty.
                    return self.finish().await;
                }
            }
            _ => {}
        }
        if first_run {
            let text = crate::render::order_started(&self.order, &self.project, hosts.len());
            d.tell(&self.project, &self.order, &text).await;
            self.log(&text).await;
            if let Err(e) = self
                .local_hooks("before_release", &self.project.hooks.before_release.clone())
                .await
            {
                return self.finish_error(e).await;
            }
        }
        let batches = self.order.batches.max(1);
        let done = Arc::new(AtomicUsize::new(
            hosts
                .iter()
                .filter(|h| h.state == HostState::Succeeded.as_str())
                .count(),
        ));
        let mut stopped_early = false;
        let start = self.order.batch.max(0);
        for b in start..batches {
            if !self.fence.holds(&d).await {
                return self.fenced_out().await;
            }
            // A watch an earlier run began (interrupted, or paused meanwhile) goes on
            // before the next batch: a restart never skips it.
            if b == start && b > 0 {
                match self.canary(&transport).await {
                    AfterWatch::GoOn => {}
                    AfterWatch::Stopped(OrderState::Paused) => {
                        return self.paused(b, batches).await
                    }
                    AfterWatch::Stopped(_) => {
                        stopped_early = true;
                        break;
                    }
                    AfterWatch::Ended(ended) => return ended,
                }
            }
            let todo: Vec<HostRunRecord> = d
                .store
                .host_runs(id)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|h| {
                    h.batch == b
                        && matches!(
                            HostState::parse(&h.state),
                            Some(HostState::Pending | HostState::Interrupted | HostState::Running)
                        )
                })
                .collect();
            let par = self.project.strategy.parallelism.max(1) as usize;
            let this = &self;
            let ends: Vec<HostEnd> = futures::stream::iter(todo)
                .map(|h| {
                    let artefact = artefact.clone();
                    let done = done.clone();
                    let transport = &transport;
                    async move {
                        let end = this.host(&h, b, batches, transport, &artefact).await;
                        if matches!(end, HostEnd::Done | HostEnd::Failed) {
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            this.report.note(
                                (n * 100 / total).min(99) as u8,
                                format!("批次 {}/{batches} · {} 完成", b + 1, h.host),
                            );
                        }
                        end
                    }
                })
                .buffer_unordered(par)
                .collect()
                .await;
            if self.fence.is_lost() || ends.iter().any(|e| matches!(e, HostEnd::Fenced)) {
                return self.fenced_out().await;
            }
            // The canary's watch is recorded with the batch it follows, so no restart
            // can find the batch done and the watch not begun.
            let watch = self.starts_watch(b, batches);
            let moved_on = d
                .store
                .order_update(
                    id,
                    &d.owner,
                    &OrderPatch {
                        batch: Some(b + 1),
                        plan: watch
                            .as_ref()
                            .map(|w| crate::canary::write(&self.order.plan, w)),
                        ..OrderPatch::default()
                    },
                )
                .await;
            if matches!(moved_on, Ok(false)) {
                return self.fenced_out().await;
            }
            let runs = d.store.host_runs(id).await.unwrap_or_default();
            let failed = runs
                .iter()
                .filter(|h| h.state == HostState::Failed.as_str())
                .count() as u32;
            let s = &self.project.strategy;
            let limit = if s.stop_on_failure { 0 } else { s.max_failed };
            match self.state_now().await {
                Some(OrderState::Paused) => return self.paused(b + 1, batches).await,
                Some(OrderState::Aborted) => {
                    stopped_early = true;
                    break;
                }
                _ => {}
            }
            if failed > limit {
                self.log(&format!(
                    "批次 {}/{batches} 后失败主机 {failed} 台,超过允许的 {limit} 台,停止发布",
                    b + 1
                ))
                .await;
                stopped_early = true;
                break;
            }
            if b + 1 < batches {
                let mut text = format!(
                    "发布单 #{id} 批次 {}/{batches} 完成({} 台成功)",
                    b + 1,
                    runs.iter()
                        .filter(|h| h.state == HostState::Succeeded.as_str())
                        .count()
                );
                if watch.is_some() {
                    text.push_str(&self.watch_starts_text());
                }
                self.log(&text).await;
                d.tell(&self.project, &self.order, &text).await;
                if watch.is_some() {
                    match self.canary(&transport).await {
                        AfterWatch::GoOn => {}
                        AfterWatch::Stopped(OrderState::Paused) => {
                            return self.paused(b + 1, batches).await
                        }
                        AfterWatch::Stopped(_) => {
                            stopped_early = true;
                            break;
                        }
                        AfterWatch::Ended(ended) => return ended,
                    }
                }
                if s.pause == "manual" {
                    // Still held: `paused` lets go of it, as for a pause by a person.
                    let moved = d
                        .store
                        .order_transition_held(
                            id,
                            &d.owner,
                            &[OrderState::Running.as_str()],
                            OrderState::Paused.as_str(),
                            &OrderPatch {
                                reason: Some(format!("批次 {}/{batches} 后等待继续", b + 1)),
                                ..OrderPatch::default()
                            },
                        )
                        .await;
                    if matches!(moved, Ok(true)) {
                        return self.paused(b + 1, batches).await;
                    }
                } else if let Some(wait) =
                    opsbot_core::parse_duration(&s.pause).filter(|d| !d.is_zero())
                {
                    if let Some(st) = self.wait_between(wait).await {
                        match st {
                            OrderState::Paused => return self.paused(b + 1, batches).await,
                            _ => {
                                stopped_early = true;
                                break;
                            }
                        }
                    }
                }
            }
        }
        if stopped_early {
            let _ = self.skip_rest().await;
        } else if !self.fence.holds(&d).await {
            return self.fenced_out().await;
        } else if let Err(e) = self
            .local_hooks("after_release", &self.project.hooks.after_release.clone())
            .await
        {
            self.log(&e).await;
        }
        self.finish().await
    }

    /// Waits `wait` between batches, or less when the order is paused or aborted
    /// meanwhile (returns that state).
    async fn wait_between(&self, wait: Duration) -> Option<OrderState> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            if let Some(s @ (OrderState::Paused | OrderState::Aborted)) = self.state_now().await {
                return Some(s);
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return None;
            }
            tokio::time::sleep((until - now).min(Duration::from_secs(1))).await;
        }
    }

    pub(crate) async fn paused(&self, next: i32, batches: i32) -> Ended {
        // 暂停 was written by whoever paused it (or by the manual strategy); this run
        // lets go of it here, if it still holds it.
        let let_go = self
            .d
            .store
            .order_update(
                self.order.id,
                &self.d.owner,
                &OrderPatch {
                    owner: Some(None),
                    ..OrderPatch::default()
                },
            )
            .await;
        if matches!(let_go, Ok(false)) {
            return self.gone();
        }
        let text = format!(
            "⏸ 发布单 #{} 已暂停(已完成批次 {next}/{batches})。发送「继续:{}」继续,「终止:{}」终止",
            self.order.id, self.order.id, self.order.id
        );
        self.log(&text).await;
        self.d.tell(&self.project, &self.order, &text).await;
        Ok(text)
    }

    async fn skip_rest(&self) -> opsbot_store::Result<()> {
        skip_pending(self.d.store.as_ref(), self.order.id, Some(&self.d.owner)).await
    }

    /// Writes `patch` to host `host` of this order, if this instance still holds it.
    pub(crate) async fn host_write(&self, host: &str, patch: &HostPatch) -> bool {
        let held = self
            .d
            .store
            .host_update_held(self.order.id, &self.d.owner, host, patch)
            .await;
        matches!(held, Ok(true))
    }

    /// Moves this order, if this instance still holds it.
    pub(crate) async fn transition(
        &self,
        from: &[&str],
        to: OrderState,
        patch: &OrderPatch,
    ) -> bool {
        let moved = self
            .d
            .store
            .order_transition_held(self.order.id, &self.d.owner, from, to.as_str(), patch)
            .await;
        matches!(moved, Ok(true))
    }

    /// The run lost its fence (see [`Fence`]). If the order is still this instance's
    /// (only the lease was lost: it ran out while this process stood still, and
    /// nobody took the order yet), it ends here as an order of a dead instance would:
    /// 已中断 with its hosts' state (or its pause or abort completed), told once.
    /// Otherwise whoever took it over has said what happened: nothing is written.
    pub(crate) async fn fenced_out(&self) -> Ended {
        // A store that fails now would leave the order 发布中 under this instance, its
        // heartbeat kept fresh by the upkeep: it is asked a few times before giving up.
        let mut read = self.d.store.order_get(self.order.id).await;
        for _ in 0..4 {
            if read.is_ok() {
                break;
            }
            tokio::time::sleep(crate::fence::STORE_RETRY).await;
            read = self.d.store.order_get(self.order.id).await;
        }
        let now = match read {
            Ok(Some(o)) if o.owner.as_deref() == Some(self.d.owner.as_str()) => o,
            _ => return self.gone(),
        };
        tracing::warn!(
            order = self.order.id,
            "release order fenced out (its project's lease was lost); no further host is touched"
        );
        match OrderState::parse(&now.state) {
            Some(OrderState::Running) => {
                interrupt_with(
                    &self.d,
                    &now,
                    "本实例失去了项目的发布租约(进程曾停顿过久),发布在此停止",
                )
                .await;
                Err(format!(
                    "发布单 #{} 已中断: 本实例失去了项目的发布租约",
                    self.order.id
                ))
            }
            Some(OrderState::Paused) => self.paused(now.batch, now.batches).await,
            Some(OrderState::Aborted) => {
                let _ = self.skip_rest().await;
                self.finish().await
            }
            _ => self.gone(),
        }
    }

    /// This run's order was taken over by another instance (or the other's verdict
    /// reached it first): the run ends here, writing and saying nothing more.
    pub(crate) fn gone(&self) -> Ended {
        tracing::warn!(
            order = self.order.id,
            owner = %self.d.owner,
            "release order taken over by another instance; this run stops without touching further hosts"
        );
        Err(format!(
            "发布单 #{} 已由其他实例接管,本实例停止(未再发布任何主机)",
            self.order.id
        ))
    }

    /// The final state from the hosts, written once; the summary names failed hosts.
    pub(crate) async fn finish(&self) -> Ended {
        let id = self.order.id;
        let runs = self.d.store.host_runs(id).await.unwrap_or_default();
        let count = |s: HostState| runs.iter().filter(|h| h.state == s.as_str()).count();
        let (ok, failed) = (count(HostState::Succeeded), count(HostState::Failed));
        let aborted = self.state_now().await == Some(OrderState::Aborted);
        let state = if aborted {
            OrderState::Aborted
        } else if failed == 0 && ok == runs.len() {
            OrderState::Succeeded
        } else if ok == 0 {
            OrderState::Failed
        } else {
            OrderState::PartlyFailed
        };
        // 终止 of a running order wrote 已终止 already; its end (no owner, the time it
        // finished) is written here, once its last host is done. Any other end is
        // written only over 发布中 / 暂停, never over an abort.
        let end = OrderPatch {
            owner: Some(None),
            finished: true,
            ..OrderPatch::default()
        };
        let aborted_only: &[&str] = &[OrderState::Aborted.as_str()];
        let moved = if aborted {
            self.transition(aborted_only, state, &end).await
        } else {
            let from = [OrderState::Running.as_str(), OrderState::Paused.as_str()];
            // An abort at this very moment: the order ends 已终止 after all.
            self.transition(&from, state, &end).await
                || self
                    .transition(aborted_only, OrderState::Aborted, &end)
                    .await
        };
        if !moved {
            return self.gone();
        }
        if state == OrderState::Succeeded && self.kind() == OrderKind::Rollback {
            self.mark_rolled_back().await;
        }
        let order = self
            .d
            .store
            .order_get(id)
            .await
            .ok()
            .flatten()
            .unwrap_or(self.order.clone());
        let text = crate::render::order_finished(&order, &self.project, &runs);
        self.log(&text).await;
        self.d.tell(&self.project, &order, &text).await;
        match state {
            OrderState::Succeeded => Ok(text),
            _ => Err(text),
        }
    }

    /// The release orders whose version this rollback left read 已回滚.
    async fn mark_rolled_back(&self) {
        let target = self.version();
        let q = opsbot_store::deploy::OrderQuery {
            project: Some(self.project.name.clone()),
            states: vec![
                OrderState::Succeeded.as_str().into(),
                OrderState::PartlyFailed.as_str().into(),
                OrderState::Failed.as_str().into(),
            ],
            before: Some(self.order.id),
            limit: 50,
        };
        for o in self.d.store.order_list(&q).await.unwrap_or_default() {
            let v = o.version.unwrap_or(o.id);
            if v > target
                && matches!(
                    OrderKind::parse(&o.kind),
                    Some(OrderKind::Release | OrderKind::Retry | OrderKind::ScaleOut)
                )
            {
                let _ = self
                    .d
                    .store
                    .order_transition(
                        o.id,
                        &[o.state.as_str()],
                        OrderState::RolledBack.as_str(),
                        &OrderPatch {
                            reason: Some(format!("已由发布单 #{} 回滚到 #{target}", self.order.id)),
                            ..OrderPatch::default()
                        },
                    )
                    .await;
            }
        }
    }

    pub(crate) async fn finish_error(&self, why: String) -> Ended {
        if self.fence.is_lost() {
            return self.fenced_out().await;
        }
        // While the order is still ours: the failed order no longer has an owner, and
        // the hosts' writes are conditional on holding it.
        let _ = self.skip_rest().await;
        let moved = self
            .transition(
                &[OrderState::Running.as_str()],
                OrderState::Failed,
                &OrderPatch {
                    owner: Some(None),
                    reason: Some(why.clone()),
                    finished: true,
                    ..OrderPatch::default()
                },
            )
            .await;
        if !moved && !self.fence.holds(&self.d).await {
            return self.fenced_out().await;
        }
        self.log(&why).await;
        let text = format!("❌ 发布单 #{} 失败: {why}", self.order.id);
        self.d.tell(&self.project, &self.order, &text).await;
        Err(text)
    }

    /// The artefact this order deploys, when it has a build and the file is still kept.
    async fn artefact(&self) -> Result<Option<Artefact>, String> {
        let Some(build) = self.order.build else {
            return Ok(None);
        };
        let b = self
            .d
            .store
            .build_get(build)
            .await
            .map_err(|e| format!("存储不可用: {e}"))?
            .ok_or_else(|| format!("构建 #{build} 不存在"))?;
        let Some(sha) = b.artefact else {
            return Err(format!("构建 #{build} 没有制品(未成功)"));
        };
        let path = self.d.artefacts.path(&sha);
        Ok(path.exists().then_some(Artefact { path, sha256: sha }))
    }

    /// Runs the release-wide hooks on the opsbot host.
    async fn local_hooks(&self, step: &str, hooks: &[String]) -> Result<(), String> {
        self.local_hooks_with(step, hooks, &[]).await
    }

    /// The release-wide (or scale) hooks on the opsbot host, with `extra` variables.
    pub(crate) async fn local_hooks_with(
        &self,
        step: &str,
        hooks: &[String],
        extra: &[(String, String)],
    ) -> Result<(), String> {
        if hooks.is_empty() {
            return Ok(());
        }
        let hosts = self
            .d
            .store
            .host_runs(self.order.id)
            .await
            .unwrap_or_default();
        let addresses: Vec<String> = hosts.iter().map(|h| h.address.clone()).collect();
        let mut env = vec![
            ("OPSBOT_PROJECT".to_string(), self.project.name.clone()),
            ("OPSBOT_RELEASE".to_string(), self.version().to_string()),
            ("OPSBOT_ORDER".to_string(), self.order.id.to_string()),
            ("OPSBOT_HOSTS".to_string(), addresses.join(" ")),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        let log = StoreLog::start(self.d.store.clone(), self.order.id, String::new());
        let timeout = self.project.hook_timeout(&self.d.cfg);
        for cmd in hooks {
            log.line(&format!("$ {cmd}"));
            crate::local::run(cmd, &env, None, timeout, log.as_ref())
                .await
                .map_err(|e| format!("{step} 钩子「{cmd}」失败: {e}"))?;
        }
        log.flush().await;
        Ok(())
    }

    pub(crate) fn ssh_options(&self) -> SshOptions {
        ssh_options(&self.d, &self.project)
    }

    pub(crate) async fn step(&self, h: &HostRunRecord, step: &str) {
        let patch = HostPatch {
            step: Some(step.into()),
            ..HostPatch::default()
        };
        self.host_write(&h.host, &patch).await;
    }

    /// Before a step on a host: `Err` (the step not run) once the fence is lost.
    async fn guard(&self, step: &'static str) -> Result<(), (&'static str, HostError)> {
        if self.fence.holds(&self.d).await {
            Ok(())
        } else {
            Err((step, HostError::Fenced))
        }
    }

    /// One host, start to end; its state and log are in the store whatever happens.
    async fn host(
        &self,
        h: &HostRunRecord,
        b: i32,
        batches: i32,
        transport: &Transport,
        artefact: &Option<Artefact>,
    ) -> HostEnd {
        if !self.fence.holds(&self.d).await {
            return HostEnd::Fenced;
        }
        if matches!(
            self.state_now().await,
            Some(OrderState::Paused | OrderState::Aborted)
        ) {
            return HostEnd::NotStarted;
        }
        let id = self.order.id;
        let started = HostPatch {
            state: Some(HostState::Running.as_str().into()),
            step: Some("connect".into()),
            exit_code: Some(None),
            error: Some(None),
            started: true,
            ..HostPatch::default()
        };
        if !self.host_write(&h.host, &started).await {
            return HostEnd::Fenced;
        }
        self.report
            .note(0, format!("批次 {}/{batches} · {} · 连接", b + 1, h.host));
        let log = StoreLog::start(self.d.store.clone(), id, h.host.clone());
        let result = self.host_steps(h, transport, artefact, log.as_ref()).await;
        log.flush().await;
        if let Err((step, HostError::Fenced)) = &result {
            // Left 进行中 at the step it stopped before: whoever took the order over
            // (or this run's own interruption) says where it stopped.
            tracing::warn!(order = id, host = %h.host, step, "host stopped: the run was fenced out");
            return HostEnd::Fenced;
        }
        let patch = match &result {
            Ok(prev) => HostPatch {
                state: Some(HostState::Succeeded.as_str().into()),
                step: Some("done".into()),
                previous_version: Some(*prev),
                finished: true,
                ..HostPatch::default()
            },
            Err((step, e)) => HostPatch {
                state: Some(HostState::Failed.as_str().into()),
                step: Some((*step).into()),
                exit_code: Some(e.exit_code()),
                error: Some(Some(e.to_string())),
                finished: true,
                ..HostPatch::default()
            },
        };
        if !self.host_write(&h.host, &patch).await {
            return HostEnd::Fenced;
        }
        match result {
            Ok(_) => HostEnd::Done,
            Err((step, e)) => {
                let _ = self
                    .d
                    .store
                    .log_append(LogOf::Order(id, Some(&h.host)), &format!("✗ {step}: {e}"))
                    .await;
                HostEnd::Failed
            }
        }
    }

    /// The steps on one host; `Ok` gives the version `current` pointed at before.
    async fn host_steps(
        &self,
        h: &HostRunRecord,
        transport: &Transport,
        artefact: &Option<Artefact>,
        log: &dyn LogSink,
    ) -> Result<Option<i64>, (&'static str, HostError)> {
        let cfg = &self.d.cfg;
        let step_timeout = cfg.step_timeout();
        let hook_timeout = self.project.hook_timeout(cfg);
        let layout = Layout {
            root: self
                .project
                .deploy_root_for(&h.host)
                .map_err(|e| ("connect", HostError::Step(StepError::Invalid(e))))?,
        };
        let v = self.version();
        let target = crate::hosts::Target {
            name: h.host.clone(),
            address: h.address.clone(),
        };
        self.guard("connect").await?;
        let link = transport
            .connect(&target)
            .await
            .map_err(|e| ("connect", HostError::Step(step_error(e))))?;
        let s: &dyn HostLink = link.as_ref();
        let fail = |step: &'static str| move |e: StepError| (step, HostError::Step(e));
        self.guard("inspect").await?;
        let (prev, present) = remote::state(s, &layout).await.map_err(fail("inspect"))?;
        let seen = HostPatch {
            previous_version: Some(prev),
            ..HostPatch::default()
        };
        if !self.host_write(&h.host, &seen).await {
            return Err(("inspect", HostError::Fenced));
        }
        let upload = match self.kind() {
            OrderKind::Rollback | OrderKind::Retry => !present.contains(&v),
            _ => true,
        };
        if upload {
            let Some(file) = artefact else {
                return Err((
                    "upload",
                    HostError::Missing(format!(
                        "版本 #{v} 不在主机上,它的制品也已不存在,无法重新部署"
                    )),
                ));
            };
            self.guard("upload").await?;
            self.step(h, "upload").await;
            log.line(&format!("上传并解压版本 #{v}"));
            remote::upload(s, &layout, v, file, step_timeout, log)
                .await
                .map_err(fail("upload"))?;
        } else {
            log.line(&format!("版本 #{v} 已在主机上,直接切换"));
        }
        let env = self.host_env(h);
        if !self.project.hooks.before_host.is_empty() {
            self.step(h, "before_host").await;
        }
        for cmd in &self.project.hooks.before_host {
            self.guard("before_host").await?;
            remote::hook(s, &layout, v, "before_host", cmd, &env, hook_timeout, log)
                .await
                .map_err(fail("before_host"))?;
        }
        self.guard("switch").await?;
        self.step(h, "switch").await;
        remote::switch(s, &layout, v, step_timeout)
            .await
            .map_err(fail("switch"))?;
        log.line(&format!("current → releases/{v}"));
        let mut outcome: Result<(), (&'static str, HostError)> = Ok(());
        if !self.project.hooks.after_host.is_empty() {
            self.step(h, "after_host").await;
        }
        for cmd in &self.project.hooks.after_host {
            self.guard("after_host").await?;
            if let Err(e) =
                remote::hook(s, &layout, v, "after_host", cmd, &env, hook_timeout, log).await
            {
                outcome = Err(("after_host", HostError::Step(e)));
                break;
            }
        }
        if outcome.is_ok() {
            self.guard("health").await?;
            self.step(h, "health").await;
            outcome = self
                .health(s, &layout, h, log)
                .await
                .map_err(|e| ("health", e));
        }
        if let Err((step, e)) = outcome {
            // A host left on a version that does not work is worse than the old one.
            if let Some(p) = prev.filter(|p| *p != v && present.contains(p)) {
                log.line(&format!("{step} 失败,切回 releases/{p}"));
                if remote::switch(s, &layout, p, step_timeout).await.is_ok() {
                    for cmd in &self.project.hooks.after_host {
                        let _ =
                            remote::hook(s, &layout, p, "after_host", cmd, &env, hook_timeout, log)
                                .await;
                    }
                    return Err((step, HostError::Reverted(Box::new(e), p)));
                }
            }
            return Err((step, e));
        }
        self.guard("prune").await?;
        self.step(h, "prune").await;
        let keep = self.project.keep_versions(cfg);
        let protect: Vec<i64> = prev.into_iter().chain([v]).collect();
        if let Err(e) = remote::prune(s, &layout, keep, &protect, log).await {
            log.line(&format!("清理旧版本失败(不影响发布): {e}"));
        }
        let build = self.order.build.unwrap_or(0);
        let _ = self
            .d
            .store
            .deployed_set(&self.project.name, &h.host, v, build)
            .await;
        link.close().await;
        Ok(prev)
    }

    pub(crate) fn host_env(&self, h: &HostRunRecord) -> Vec<(String, String)> {
        vec![
            ("OPSBOT_PROJECT".into(), self.project.name.clone()),
            ("OPSBOT_RELEASE".into(), self.version().to_string()),
            ("OPSBOT_ORDER".into(), self.order.id.to_string()),
            ("OPSBOT_HOST".into(), h.host.clone()),
            ("OPSBOT_ADDRESS".into(), h.address.clone()),
        ]
    }

    pub(crate) async fn health(
        &self,
        s: &dyn HostLink,
        layout: &Layout,
        h: &HostRunRecord,
        log: &dyn LogSink,
    ) -> Result<(), HostError> {
        let Some(hc) = &self.project.health else {
            return Ok(());
        };
        let timeout = opsbot_core::parse_duration(&hc.timeout).unwrap_or(Duration::from_secs(5));
        let interval = opsbot_core::parse_duration(&hc.interval).unwrap_or(Duration::from_secs(1));
        if let Some(cmd) = &hc.command {
            return remote::health_command(s, layout, cmd, timeout, hc.retries, interval, log)
                .await
                .map_err(HostError::Step);
        }
        let url = hc
            .http
            .clone()
            .unwrap_or_default()
            .replace("{host}", &h.address);
        let mut last = String::new();
        for attempt in 0..=hc.retries {
            if attempt > 0 {
                tokio::time::sleep(interval).await;
            }
            match self.d.http.get(&url).timeout(timeout).send().await {
                Ok(r) if r.status().is_success() => {
                    log.line(&format!("健康检查 {url}: {}", r.status()));
                    return Ok(());
                }
                Ok(r) => last = format!("{url} 返回 {}", r.status()),
                Err(e) => last = format!("{url}: {}", crate::render::http_error(&e)),
            }
            log.line(&format!("健康检查第 {} 次: {last}", attempt + 1));
        }
        Err(HostError::Unhealthy(last))
    }
}

/// The hosts of `order` not reached (pending or interrupted) read 未执行: the order
/// stopped before them. `held_by`: only while that instance holds the order (a run's
/// own end), else whoever may (an order nobody runs, ended by a person).
pub(crate) async fn skip_pending(
    store: &dyn opsbot_store::deploy::DeployStore,
    order: i64,
    held_by: Option<&str>,
) -> opsbot_store::Result<()> {
    for h in store.host_runs(order).await? {
        if matches!(
            HostState::parse(&h.state),
            Some(HostState::Pending | HostState::Interrupted)
        ) {
            let patch = HostPatch {
                state: Some(HostState::Skipped.as_str().into()),
                ..HostPatch::default()
            };
            match held_by {
                Some(owner) => {
                    if !store
                        .host_update_held(order, owner, &h.host, &patch)
                        .await?
                    {
                        return Ok(());
                    }
                }
                None => store.host_update(order, &h.host, &patch).await?,
            }
        }
    }
    Ok(())
}

/// How SSH reaches the hosts of `p`.
pub(crate) fn ssh_options(d: &Deploys, p: &Project) -> SshOptions {
    let cfg = &d.cfg;
    SshOptions {
        command: cfg.ssh_command.clone(),
        user: p.ssh_user.clone(),
        port: p.ssh_port,
        key: p
            .ssh_key
            .clone()
            .or_else(|| cfg.ssh_key.clone())
            .map(PathBuf::from),
        known_hosts: p
            .known_hosts
            .clone()
            .or_else(|| cfg.known_hosts.clone())
            .map(PathBuf::from),
        connect_timeout: cfg.connect_timeout(),
        control_dir: d.control_dir.clone(),
        extra: cfg.ssh_options.clone(),
    }
}

/// A transport's failure to reach a host, as the step that could not start.
fn step_error(e: LinkError) -> StepError {
    match e {
        LinkError::Ssh(e) => StepError::Ssh(e),
        LinkError::Salt(e) => StepError::Salt(e),
        LinkError::Timeout(_) => StepError::Timeout { step: "connect" },
    }
}

/// Why a host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Step(StepError),
    #[error("健康检查失败: {0}")]
    Unhealthy(String),
    #[error("{0}")]
    Missing(String),
    #[error("{0};已切回 releases/{1}")]
    Reverted(Box<HostError>, i64),
    /// Not run: this instance no longer holds the order (see [`Fence`]).
    #[error("本实例已不再执行这张发布单,未继续")]
    Fenced,
}

impl HostError {
    fn exit_code(&self) -> Option<i32> {
        match self {
            HostError::Step(StepError::Exit { code, .. }) => Some(*code),
            HostError::Reverted(e, _) => e.exit_code(),
            _ => None,
        }
    }
}

/// Marks an orphaned order (its instance died) 已中断: its hosts in flight are
/// interrupted, the lease is freed, and the asker is told how to go on.
pub async fn interrupt(d: &Arc<Deploys>, order: &OrderRecord) {
    interrupt_with(d, order, "运行它的 opsbot 在发布结束前停止了").await
}

/// [`interrupt`] with `reason`. The move is conditional on the order's state and on
/// its holder still being the one `order` names, so of an instance finding it
/// orphaned and its own (fenced-out) run exactly one marks it and tells the asker.
async fn interrupt_with(d: &Arc<Deploys>, order: &OrderRecord, reason: &str) {
    let from = [OrderState::Running.as_str()];
    let to = OrderState::Interrupted.as_str();
    let patch = OrderPatch {
        owner: Some(None),
        reason: Some(reason.into()),
        ..OrderPatch::default()
    };
    let moved = match &order.owner {
        Some(owner) => {
            d.store
                .order_transition_held(order.id, owner, &from, to, &patch)
                .await
        }
        None => d.store.order_transition(order.id, &from, to, &patch).await,
    };
    if !matches!(moved, Ok(true)) {
        return;
    }
    if let Some(owner) = &order.owner {
        let _ = d
            .leases
            .lease_release(&lease_name(&order.project), owner)
            .await;
    }
    let runs = d.store.host_runs(order.id).await.unwrap_or_default();
    let mut in_flight = Vec::new();
    for h in runs
        .iter()
        .filter(|h| h.state == HostState::Running.as_str())
    {
        let _ = d
            .store
            .host_update(
                order.id,
                &h.host,
                &HostPatch {
                    state: Some(HostState::Interrupted.as_str().into()),
                    error: Some(Some(format!("在「{}」步骤中断", h.step))),
                    finished: true,
                    ..HostPatch::default()
                },
            )
            .await;
        in_flight.push(h.host.clone());
    }
    let mut text = crate::render::order_interrupted(order, &runs, &in_flight);
    if crate::canary::read(&order.plan)
        .is_some_and(|w| w.outcome == crate::canary::Outcome::Watching)
    {
        text.push_str("\n金丝雀观察尚未结束,继续后将观察完剩余时间");
    }
    let _ = d
        .store
        .log_append(LogOf::Order(order.id, Some("")), &text)
        .await;
    if let Ok(Some(p)) = d.project(&order.project).await {
        d.tell(&p, order, &text).await;
    }
}
