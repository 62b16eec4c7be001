//! What people do to orders: create one (发布, 回滚, 重试), approve or reject it, pause,
//! resume or abort it. Every move is one conditional write on the order's state, so a
//! double click, two approvers at once or a restart never move it twice; work that
//! takes long comes back as [`Started`], which chat runs as a job.

use crate::config::Project;
use crate::deploys::{scope, store_err, Deploys, Refused};
use crate::hosts::Target;
use crate::model::{HostState, OrderKind, OrderState};
use crate::render;
use chrono::Utc;
use opsbot_core::chat::Requester;
use opsbot_store::deploy::{NewHostRun, NewOrder, OrderPatch, OrderQuery, OrderRecord};
use std::sync::Arc;

/// The canonical command names, as roles grant them.
pub mod names {
    pub const PROJECTS: &str = "项目";
    pub const BUILD: &str = "构建";
    pub const DEPLOY: &str = "发布";
    pub const APPROVE: &str = "批准";
    pub const REJECT: &str = "驳回";
    pub const ORDERS: &str = "发布单";
    pub const PAUSE: &str = "暂停";
    pub const RESUME: &str = "继续";
    pub const ABORT: &str = "终止";
    pub const RETRY: &str = "重试";
    pub const ROLLBACK: &str = "回滚";
    pub const LOGS: &str = "日志";
    pub const SCALE_OUT: &str = "扩容";
    pub const SCALE_IN: &str = "缩容";
}

/// What an accepted request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing runs now; the text says what happened.
    Said(String),
    /// Order `order` is to run now: the caller starts it as a job.
    Run { order: i64, summary: String },
}

/// `#12`, `12` → 12.
pub fn order_id(text: &str) -> Result<i64, Refused> {
    text.trim()
        .trim_start_matches(['#', '#'])
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Refused::Invalid(format!("「{text}」不是发布单号(例如 #12)")))
}

impl Deploys {
    /// 发布:项目[,构建][,主机…]: an order of the given (or latest) build to the given
    /// (or all) hosts.
    pub async fn create_release(
        self: &Arc<Self>,
        caller: &dyn Requester,
        project: &str,
        build: Option<&str>,
        only: &[String],
    ) -> Result<Next, Refused> {
        let (p, build, hosts) = self.release_parts(caller, project, build, only).await?;
        self.create(
            caller,
            &p,
            OrderKind::Release,
            Some(build.id),
            None,
            hosts,
            String::new(),
        )
        .await
    }

    /// What 发布 would do, for its confirmation (refused now when impossible).
    pub async fn plan_release(
        &self,
        caller: &dyn Requester,
        project: &str,
        build: Option<&str>,
        only: &[String],
    ) -> Result<String, Refused> {
        let (p, build, hosts) = self.release_parts(caller, project, build, only).await?;
        Ok(render::release_plan(&p, &build, &hosts))
    }

    /// The project, build and hosts of a release, checked.
    async fn release_parts(
        &self,
        caller: &dyn Requester,
        project: &str,
        build: Option<&str>,
        only: &[String],
    ) -> Result<(Project, opsbot_store::deploy::BuildRecord, Vec<Target>), Refused> {
        let p = self.project_for(caller, names::DEPLOY, project).await?;
        self.refuse_busy(&p).await?;
        let build = match build {
            Some(b) => {
                let id = b
                    .trim()
                    .trim_start_matches(['#', '#'])
                    .parse::<i64>()
                    .map_err(|_| {
                        Refused::Invalid(format!(
                            "「{b}」不是构建号。发送「构建:{}」先构建",
                            p.name
                        ))
                    })?;
                let rec = self.store.build_get(id).await.map_err(store_err)?;
                match rec {
                    Some(r) if r.project == p.name && r.state == "succeeded" => r,
                    Some(r) if r.project == p.name => {
                        return Err(Refused::Invalid(format!(
                            "构建 #{id} 状态为 {},不能发布",
                            render::build_state(&r.state)
                        )))
                    }
                    _ => {
                        return Err(Refused::Invalid(format!(
                            "项目「{}」没有构建 #{id}",
                            p.name
                        )))
                    }
                }
            }
            None => self
                .store
                .build_latest(&p.name)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    Refused::Invalid(format!(
                        "项目「{}」还没有成功的构建。先发送「构建:{}」",
                        p.name, p.name
                    ))
                })?,
        };
        let all = self.hosts(&p).await?;
        let hosts = pick(&all, only, &p.name)?;
        if hosts.is_empty() {
            return Err(Refused::Invalid(format!("项目「{}」没有主机", p.name)));
        }
        Ok((p, build, hosts))
    }

    /// 回滚:项目[,版本]: to the release before the current one, or the named release.
    pub async fn create_rollback(
        self: &Arc<Self>,
        caller: &dyn Requester,
        project: &str,
        version: Option<&str>,
    ) -> Result<Next, Refused> {
        let (p, version, build, hosts) = self.rollback_parts(caller, project, version).await?;
        self.create(
            caller,
            &p,
            OrderKind::Rollback,
            Some(build),
            Some(version),
            hosts,
            String::new(),
        )
        .await
    }

    /// What 回滚 would do, for its confirmation (refused now when impossible).
    pub async fn plan_rollback(
        &self,
        caller: &dyn Requester,
        project: &str,
        version: Option<&str>,
    ) -> Result<String, Refused> {
        let (p, version, build, hosts) = self.rollback_parts(caller, project, version).await?;
        Ok(render::rollback_plan(&p, version, build, &hosts))
    }

    /// The project, the release to return to, its build and the hosts, checked.
    async fn rollback_parts(
        &self,
        caller: &dyn Requester,
        project: &str,
        version: Option<&str>,
    ) -> Result<(Project, i64, i64, Vec<Target>), Refused> {
        let p = self.project_for(caller, names::ROLLBACK, project).await?;
        self.refuse_busy(&p).await?;
        let deployed = self.store.deployed(&p.name).await.map_err(store_err)?;
        let target: OrderRecord = match version {
            Some(v) => {
                let id = order_id(v)?;
                let o = self.store.order_get(id).await.map_err(store_err)?;
                match o {
                    Some(o)
                        if o.project == p.name
                            && o.build.is_some()
                            && o.kind != OrderKind::Rollback.as_str() =>
                    {
                        o
                    }
                    _ => {
                        return Err(Refused::Invalid(format!(
                            "项目「{}」没有版本 #{id}。发送「发布单」查看它的发布",
                            p.name
                        )))
                    }
                }
            }
            None => {
                let current = most_common(deployed.iter().map(|d| d.version));
                let Some(current) = current else {
                    return Err(Refused::Invalid(format!(
                        "项目「{}」还没有发布过,无可回滚",
                        p.name
                    )));
                };
                self.release_before(&p.name, current)
                    .await?
                    .ok_or_else(|| {
                        Refused::Invalid(format!(
                            "项目「{}」在 #{current} 之前没有成功的发布,无可回滚",
                            p.name
                        ))
                    })?
            }
        };
        let version = target.version.unwrap_or(target.id);
        let build = target.build.expect("checked above");
        let artefact_ok = match self.store.build_get(build).await.map_err(store_err)? {
            Some(b) => b.artefact.is_some_and(|sha| self.artefacts.has(&sha)),
            None => false,
        };
        let hosts = self.hosts(&p).await?;
        if !artefact_ok {
            // Re-link needs the release on every host; without the artefact it cannot
            // be re-deployed, so refuse now rather than fail host by host.
            let missing = self.hosts_without(&p, &hosts, version).await;
            if !missing.is_empty() {
                return Err(Refused::Invalid(format!(
                    "无法回滚到 #{version}: 主机 {} 上没有这个版本,构建 #{build} 的制品也已不存在",
                    missing.join("、"),
                )));
            }
        }
        Ok((p, version, build, hosts))
    }

    /// The hosts (of `hosts`) that do not hold release `version`, asked through the
    /// project's transport (a host that cannot be asked does not hold it).
    async fn hosts_without(&self, p: &Project, hosts: &[Target], version: i64) -> Vec<String> {
        let Ok(transport) = crate::transport::Transport::for_project(self, p) else {
            return hosts.iter().map(|h| h.name.clone()).collect();
        };
        let mut missing = Vec::new();
        for h in hosts {
            let Ok(root) = p.deploy_root_for(&h.name) else {
                missing.push(h.name.clone());
                continue;
            };
            let layout = crate::remote::Layout { root };
            let has = match transport.connect(h).await {
                Ok(s) => {
                    let v = crate::remote::versions(s.as_ref(), &layout)
                        .await
                        .unwrap_or_default();
                    s.close().await;
                    v.contains(&version)
                }
                Err(_) => false,
            };
            if !has {
                missing.push(h.name.clone());
            }
        }
        missing
    }

    /// The newest finished release of `project` older than `current`.
    async fn release_before(
        &self,
        project: &str,
        current: i64,
    ) -> Result<Option<OrderRecord>, Refused> {
        let q = OrderQuery {
            project: Some(project.to_string()),
            states: vec![
                OrderState::Succeeded.as_str().into(),
                OrderState::PartlyFailed.as_str().into(),
                OrderState::RolledBack.as_str().into(),
            ],
            before: None,
            limit: 200,
        };
        let list = self.store.order_list(&q).await.map_err(store_err)?;
        Ok(list.into_iter().find(|o| {
            o.build.is_some()
                && o.kind != OrderKind::Rollback.as_str()
                && o.version.unwrap_or(o.id) < current
        }))
    }

    /// 重试:单号: the failed (and interrupted) hosts of a finished order, again.
    pub async fn create_retry(
        self: &Arc<Self>,
        caller: &dyn Requester,
        order: &str,
    ) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::RETRY, id).await?;
        let p = self.project_for(caller, names::RETRY, &o.project).await?;
        let state = OrderState::parse(&o.state);
        if !matches!(
            state,
            Some(
                OrderState::PartlyFailed
                    | OrderState::Failed
                    | OrderState::Interrupted
                    | OrderState::Aborted
            )
        ) {
            return Err(Refused::Invalid(format!(
                "发布单 #{id} 为「{}」,只有失败、部分失败、已中断或已终止的发布单可以重试",
                o.state
            )));
        }
        self.refuse_busy(&p).await?;
        let runs = self.store.host_runs(id).await.map_err(store_err)?;
        let hosts: Vec<Target> = runs
            .iter()
            .filter(|h| h.state != HostState::Succeeded.as_str())
            .map(|h| Target {
                name: h.host.clone(),
                address: h.address.clone(),
            })
            .collect();
        if hosts.is_empty() {
            return Err(Refused::Invalid(format!("发布单 #{id} 没有失败的主机")));
        }
        let kind = if o.kind == OrderKind::Rollback.as_str() {
            OrderKind::Rollback
        } else {
            OrderKind::Retry
        };
        let version = Some(o.version.unwrap_or(o.id));
        self.create(
            caller,
            &p,
            kind,
            o.build,
            version,
            hosts,
            format!("{{\"retries\":{id}}}"),
        )
        .await
    }

    pub(crate) async fn refuse_busy_for(&self, p: &Project) -> Result<(), Refused> {
        self.refuse_busy(p).await
    }

    async fn refuse_busy(&self, p: &Project) -> Result<(), Refused> {
        let busy = self
            .store
            .order_active(&p.name, &OrderState::BUSY)
            .await
            .map_err(store_err)?;
        match busy {
            Some(o) => Err(Refused::Invalid(format!(
                "项目「{}」已有发布单 #{}({}),一个项目同时只能有一个发布。等它结束,或发送「终止:{}」",
                p.name, o.id, o.state, o.id
            ))),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create(
        self: &Arc<Self>,
        caller: &dyn Requester,
        p: &Project,
        kind: OrderKind,
        build: Option<i64>,
        version: Option<i64>,
        hosts: Vec<Target>,
        plan: String,
    ) -> Result<Next, Refused> {
        // A rollback is the way out of a bad release: the 回滚 permission is its control,
        // and waiting for an approver would keep the bad version serving.
        let approval = p.approval.required && kind != OrderKind::Rollback;
        self.create_order(caller, p, kind, build, version, hosts, plan, approval)
            .await
    }

    /// Writes the order; `approval`: it waits for an approver.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_order(
        self: &Arc<Self>,
        caller: &dyn Requester,
        p: &Project,
        kind: OrderKind,
        build: Option<i64>,
        version: Option<i64>,
        hosts: Vec<Target>,
        plan: String,
        approval: bool,
    ) -> Result<Next, Refused> {
        if hosts.is_empty() {
            return Err(Refused::Invalid(format!("项目「{}」没有主机", p.name)));
        }
        let batch_of = crate::hosts::batches(hosts.len(), &p.strategy.batches);
        let batches = batch_of.iter().max().map_or(1, |m| m + 1) as i32;
        let needs_approval = approval;
        let state = if needs_approval {
            OrderState::Pending
        } else {
            OrderState::Ready
        };
        let expires_at = needs_approval.then(|| {
            Utc::now() + chrono::Duration::from_std(self.cfg.approval_expiry()).unwrap_or_default()
        });
        let new = NewOrder {
            project: p.name.clone(),
            kind: kind.as_str().into(),
            build,
            version,
            state: state.as_str().into(),
            user: caller.user().to_string(),
            channel: caller.channel().to_string(),
            chat: caller.chat().map(str::to_string),
            batches,
            plan: if plan.is_empty() { "{}".into() } else { plan },
            expires_at,
            hosts: hosts
                .iter()
                .zip(batch_of)
                .map(|(h, b)| NewHostRun {
                    host: h.name.clone(),
                    address: h.address.clone(),
                    batch: b as i32,
                })
                .collect(),
        };
        let id = self.store.order_create(&new).await.map_err(store_err)?;
        let order = self
            .store
            .order_get(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Refused::Failed(format!("发布单 #{id} 写入后读不到")))?;
        let plan = render::order_plan(&order, p, &hosts);
        if needs_approval {
            let text = format!("{plan}\n⏳ 等待审批:审批人发送「批准:{id}」或「驳回:{id},原因」");
            self.tell(p, &order, &text).await;
            self.ask_approvers(p, &order, &text).await;
            return Ok(Next::Said(text));
        }
        if !crate::window::open(&p.approval.windows, Utc::now(), &self.zone) {
            return Ok(Next::Said(format!(
                "{plan}\n当前不在发布窗口({}),发布单保持「待发布」;窗口内发送「继续:{id}」开始",
                p.approval.windows.join("、")
            )));
        }
        Ok(Next::Run {
            order: id,
            summary: plan,
        })
    }

    /// Sends the approval request to each member of the project's approver roles who
    /// is not already among its notification targets, and never to the asker.
    async fn ask_approvers(&self, p: &Project, order: &OrderRecord, text: &str) {
        let Some(op) = self.operator() else { return };
        let mut users = op.members_of(&p.approval.approvers);
        users.retain(|u| u != &order.user && !p.notify.users.contains(u));
        let (order, offer) = self.offer(order).await;
        let ask = crate::notify::approvers(p, &order, users, text, self.buttons(offer.as_ref()));
        crate::notify::queue(self.outbox.as_ref(), order.id, ask).await;
    }

    /// 批准:单号.
    pub async fn approve(
        self: &Arc<Self>,
        caller: &dyn Requester,
        order: &str,
    ) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::APPROVE, id).await?;
        let p = self.project_for(caller, names::APPROVE, &o.project).await?;
        self.check_pending(&o).await?;
        if o.user == caller.user() && !p.approval.self_approve {
            return Err(Refused::Invalid(format!(
                "⛔ 不能批准自己提交的发布单 #{id}(项目「{}」不允许自批)",
                p.name
            )));
        }
        if !p.approval.approvers.is_empty() {
            let roles = caller.roles();
            if !p.approval.approvers.iter().any(|r| roles.contains(r)) {
                return Err(Refused::Invalid(format!(
                    "⛔ 项目「{}」的发布单只能由 {} 角色批准",
                    p.name,
                    p.approval.approvers.join("、")
                )));
            }
        }
        let moved = self
            .store
            .order_transition(
                id,
                &[OrderState::Pending.as_str()],
                OrderState::Ready.as_str(),
                &OrderPatch {
                    approver: Some(caller.user().to_string()),
                    ..OrderPatch::default()
                },
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(self.moved_meanwhile(id).await);
        }
        let text = format!("✅ 发布单 #{id} 已由 {} 批准", caller.user());
        self.tell(&p, &o, &text).await;
        if !crate::window::open(&p.approval.windows, Utc::now(), &self.zone) {
            return Ok(Next::Said(format!(
                "{text}。当前不在发布窗口({}),窗口内发送「继续:{id}」开始",
                p.approval.windows.join("、")
            )));
        }
        Ok(Next::Run {
            order: id,
            summary: format!("{text},开始{}", render::kind_label(&o.kind)),
        })
    }

    /// An order waiting for approval that is past its expiry becomes 已过期 here.
    async fn check_pending(&self, o: &OrderRecord) -> Result<(), Refused> {
        if o.state != OrderState::Pending.as_str() {
            return Err(Refused::Invalid(render::not_pending(o)));
        }
        if o.expires_at.is_some_and(|t| t < Utc::now()) {
            let _ = self
                .store
                .order_transition(
                    o.id,
                    &[OrderState::Pending.as_str()],
                    OrderState::Expired.as_str(),
                    &OrderPatch {
                        reason: Some("审批超时".into()),
                        finished: true,
                        ..OrderPatch::default()
                    },
                )
                .await;
            return Err(Refused::Invalid(format!(
                "发布单 #{} 已过期(未在期限内审批),请重新发起",
                o.id
            )));
        }
        Ok(())
    }

    async fn moved_meanwhile(&self, id: i64) -> Refused {
        match self.store.order_get(id).await {
            Ok(Some(o)) => Refused::Invalid(render::not_pending(&o)),
            _ => Refused::Invalid(format!("没有发布单 #{id}")),
        }
    }

    /// 驳回:单号[,原因] (a card's 驳回 button gives none).
    pub async fn reject(
        &self,
        caller: &dyn Requester,
        order: &str,
        reason: &str,
    ) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::REJECT, id).await?;
        let p = self.project_for(caller, names::REJECT, &o.project).await?;
        self.check_pending(&o).await?;
        let moved = self
            .store
            .order_transition(
                id,
                &[OrderState::Pending.as_str()],
                OrderState::Rejected.as_str(),
                &OrderPatch {
                    approver: Some(caller.user().to_string()),
                    reason: Some(reason.trim().to_string()).filter(|r| !r.is_empty()),
                    finished: true,
                    ..OrderPatch::default()
                },
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(self.moved_meanwhile(id).await);
        }
        let why = match reason.trim() {
            "" => String::new(),
            r => format!(": {r}"),
        };
        let text = format!("🚫 发布单 #{id} 已被 {} 驳回{why}", caller.user());
        self.tell(&p, &o, &text).await;
        Ok(Next::Said(text))
    }

    /// 暂停:单号: the order stops before its next host (hosts in flight finish).
    pub async fn pause(&self, caller: &dyn Requester, order: &str) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::PAUSE, id).await?;
        let moved = self
            .store
            .order_transition(
                id,
                &[OrderState::Running.as_str()],
                OrderState::Paused.as_str(),
                &OrderPatch {
                    reason: Some(format!("{} 暂停", caller.user())),
                    ..OrderPatch::default()
                },
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(Refused::Invalid(format!(
                "发布单 #{id} 为「{}」,只有发布中的可以暂停",
                o.state
            )));
        }
        Ok(Next::Said(format!(
            "⏸ 发布单 #{id} 将在进行中的主机完成后暂停。发送「继续:{id}」继续"
        )))
    }

    /// 继续:单号: a paused, interrupted or waiting (window) order goes on from its
    /// first host not done.
    pub async fn resume(&self, caller: &dyn Requester, order: &str) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::RESUME, id).await?;
        let p = self.project_for(caller, names::RESUME, &o.project).await?;
        match OrderState::parse(&o.state) {
            Some(OrderState::Paused) if o.owner.is_some() => Err(Refused::Invalid(format!(
                "发布单 #{id} 正在暂停(进行中的主机还没完成),稍后再发送「继续:{id}」"
            ))),
            Some(OrderState::Paused | OrderState::Interrupted | OrderState::Ready) => {
                if !crate::window::open(&p.approval.windows, Utc::now(), &self.zone) {
                    return Err(Refused::Invalid(format!(
                        "当前不在发布窗口({})",
                        p.approval.windows.join("、")
                    )));
                }
                Ok(Next::Run {
                    order: id,
                    summary: format!("继续发布单 #{id}({})", p.name),
                })
            }
            Some(OrderState::Pending) => {
                Err(Refused::Invalid(format!("发布单 #{id} 还在等待审批")))
            }
            _ => Err(Refused::Invalid(format!(
                "发布单 #{id} 为「{}」,不能继续",
                o.state
            ))),
        }
    }

    /// 终止:单号: no more hosts; an order not running ends at once.
    pub async fn abort(&self, caller: &dyn Requester, order: &str) -> Result<Next, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::ABORT, id).await?;
        let running = o.state == OrderState::Running.as_str()
            || (o.state == OrderState::Paused.as_str() && o.owner.is_some());
        let from = [
            OrderState::Pending.as_str(),
            OrderState::Ready.as_str(),
            OrderState::Running.as_str(),
            OrderState::Paused.as_str(),
            OrderState::Interrupted.as_str(),
        ];
        let moved = self
            .store
            .order_transition(
                id,
                &from,
                OrderState::Aborted.as_str(),
                &OrderPatch {
                    reason: Some(format!("{} 终止", caller.user())),
                    finished: !running,
                    ..OrderPatch::default()
                },
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(Refused::Invalid(format!(
                "发布单 #{id} 为「{}」,已经结束",
                o.state
            )));
        }
        if !running {
            crate::release::skip_pending(self.store.as_ref(), id, None)
                .await
                .map_err(store_err)?;
            return Ok(Next::Said(format!("⏹ 发布单 #{id} 已终止")));
        }
        Ok(Next::Said(format!(
            "⏹ 发布单 #{id} 将在进行中的主机完成后终止,其余主机不再发布"
        )))
    }

    /// The order list (newest first) or one order with its hosts.
    pub async fn orders(
        &self,
        caller: &dyn Requester,
        order: Option<&str>,
    ) -> Result<String, Refused> {
        match order {
            Some(o) => {
                let id = order_id(o)?;
                let o = self.order_for(caller, names::ORDERS, id).await?;
                let runs = self.store.host_runs(id).await.map_err(store_err)?;
                Ok(render::order_detail(&o, &runs, &self.zone))
            }
            None => {
                let list = self
                    .store
                    .order_list(&OrderQuery {
                        limit: 200,
                        ..OrderQuery::default()
                    })
                    .await
                    .map_err(store_err)?;
                let mine: Vec<OrderRecord> = list
                    .into_iter()
                    .filter(|o| caller.may_at(names::ORDERS, &scope(&o.project)))
                    .take(15)
                    .collect();
                Ok(render::order_list(&mine, &self.zone))
            }
        }
    }

    /// 日志:单号[,主机]: the tail of an order's (or one host's) log, sized for a phone.
    pub async fn logs(
        &self,
        caller: &dyn Requester,
        order: &str,
        host: Option<&str>,
    ) -> Result<String, Refused> {
        let id = order_id(order)?;
        let o = self.order_for(caller, names::LOGS, id).await?;
        if let Some(h) = host {
            let runs = self.store.host_runs(id).await.map_err(store_err)?;
            if !runs.iter().any(|r| r.host == h) {
                let names: Vec<&str> = runs.iter().map(|r| r.host.as_str()).collect();
                return Err(Refused::Invalid(format!(
                    "发布单 #{id} 没有主机「{h}」。它的主机: {}",
                    names.join("、")
                )));
            }
        }
        let mut chunks = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .log_read(opsbot_store::deploy::LogOf::Order(id, host), after, 500)
                .await
                .map_err(store_err)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let n = page.len();
            chunks.extend(page);
            if n < 500 {
                break;
            }
        }
        Ok(render::log_tail(&o, host, &chunks))
    }
}

/// The named hosts among `all` (all when none is named); an unknown name is refused
/// with the project's host list.
fn pick(all: &[Target], only: &[String], project: &str) -> Result<Vec<Target>, Refused> {
    if only.is_empty() {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for n in only {
        match all.iter().find(|t| &t.name == n || &t.address == n) {
            Some(t) if !out.contains(t) => out.push(t.clone()),
            Some(_) => {}
            None => {
                let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
                return Err(Refused::Invalid(format!(
                    "主机「{n}」不属于项目「{project}」。它的主机: {}",
                    names.join("、")
                )));
            }
        }
    }
    Ok(out)
}

pub(crate) fn most_common(values: impl Iterator<Item = i64>) -> Option<i64> {
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(v, n)| (*n, *v))
        .map(|(v, _)| v)
}
