//! The canary watch (`[projects.canary]`): after a release's first batch the order holds
//! for the watch window and reads the alert store. A firing alert matching the project's
//! matcher that started after the canary batch finished either rolls the canary hosts
//! back to the release they ran before (the other hosts never touched; the order reads
//! 已回滚, audited as `[deploy] service_user`) or pauses the order for a person; a quiet
//! window lets it go on.
//!
//! The watch is remembered in the order's `plan` (`canary`: since, until, outcome),
//! written in the same update that records the canary batch done. A restart marks the
//! order 已中断 as any other; 继续 resumes the watch for what is left of the window
//! (alerts that started meanwhile still count), so a restart never skips it.

use crate::model::{HostState, OrderKind, OrderState};
use crate::release::{Ended, Run};
use crate::remote::{self, Layout};
use crate::storelog::StoreLog;
use crate::transport::{HostLink, Transport};
use chrono::{DateTime, Utc};
use opsbot_alerts::routing::Facts;
use opsbot_alerts::silence::Matcher;
use opsbot_core::{AuditEntry, AuditResult};
use opsbot_store::alerts::{AlertQuery, AlertRecord, FIRING};
use opsbot_store::deploy::{HostPatch, HostRunRecord, OrderPatch};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What an order remembers of its canary watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// When the canary batch finished: alerts that started before do not count.
    pub since: DateTime<Utc>,
    /// The end of the window.
    pub until: DateTime<Utc>,
    pub outcome: Outcome,
    /// The alert that ended the watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Watching,
    /// The window passed without a matching alert.
    Quiet,
    /// A matching alert fired: rolled back or paused.
    Alerted,
}

/// The watch in an order's `plan`, if it has one.
pub fn read(plan: &str) -> Option<Watch> {
    let v: serde_json::Value = serde_json::from_str(plan).ok()?;
    serde_json::from_value(v.get("canary")?.clone()).ok()
}

/// `plan` with its watch set to `w` (the plan's other keys kept).
pub fn write(plan: &str, w: &Watch) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(plan).unwrap_or_else(|_| serde_json::json!({}));
    if !v.is_object() {
        v = serde_json::json!({});
    }
    v["canary"] = serde_json::to_value(w).unwrap_or_default();
    v.to_string()
}

/// The first (oldest) of `alerts` that ends watch `w`: firing, started within the
/// window, matching.
pub fn first_match<'a>(
    alerts: &'a [AlertRecord],
    matcher: &Matcher,
    w: &Watch,
) -> Option<&'a AlertRecord> {
    alerts
        .iter()
        .filter(|a| a.status == FIRING && a.starts_at >= w.since && a.starts_at <= w.until)
        .filter(|a| matcher.matches(&Facts::from(*a)))
        .min_by_key(|a| (a.starts_at, a.id))
}

/// How a watch ended for the run.
pub(crate) enum AfterWatch {
    /// Nothing to watch, or a quiet window: go on.
    GoOn,
    /// Paused or aborted by someone meanwhile.
    Stopped(OrderState),
    /// The watch ended the run (rolled back, or paused on an alert).
    Ended(Ended),
}

impl Run {
    /// Whether the batch `b` just done starts a watch: the first batch of a release
    /// with more to come, in a project with `[projects.canary]`, not watched before.
    pub(crate) fn starts_watch(&self, b: i32, batches: i32) -> Option<Watch> {
        let c = self.project.canary.as_ref()?;
        let kind = OrderKind::parse(&self.order.kind);
        if b != 0
            || batches < 2
            || !matches!(kind, Some(OrderKind::Release | OrderKind::Retry))
            || read(&self.order.plan).is_some()
        {
            return None;
        }
        let since = Utc::now();
        Some(Watch {
            since,
            until: since + chrono::Duration::from_std(c.watch()).unwrap_or_default(),
            outcome: Outcome::Watching,
            alert: None,
        })
    }

    /// The words of a watch starting, for the batch's message.
    pub(crate) fn watch_starts_text(&self) -> String {
        let Some(c) = &self.project.canary else {
            return String::new();
        };
        let matcher = c
            .matcher(&self.project.name, self.order.id)
            .unwrap_or_default();
        let then = if c.rollback {
            "自动回滚金丝雀主机"
        } else {
            "暂停发布"
        };
        format!(
            "\n🔍 金丝雀观察 {}:期间出现匹配「{matcher}」的告警将{then}",
            c.watch
        )
    }

    /// Runs the order's watch if it has one under way (read from the store: a resumed
    /// order continues the watch an earlier run began).
    pub(crate) async fn canary(&self, transport: &Transport) -> AfterWatch {
        let Some(c) = self.project.canary.clone() else {
            return AfterWatch::GoOn;
        };
        let plan = match self.d.store.order_get(self.order.id).await {
            Ok(Some(o)) => o.plan,
            _ => self.order.plan.clone(),
        };
        let Some(mut w) = read(&plan).filter(|w| w.outcome == Outcome::Watching) else {
            return AfterWatch::GoOn;
        };
        let text = c
            .matcher(&self.project.name, self.order.id)
            .and_then(|m: String| Matcher::parse(&m).map(|p| (m, p)));
        let (matcher_text, matcher) = match text {
            Ok(m) => m,
            // Checked when the project was loaded; a project changed since cannot
            // silently skip the watch.
            Err(e) => {
                return AfterWatch::Ended(
                    self.pause_for(&plan, &w, &format!("金丝雀告警匹配条件无效: {e}"))
                        .await,
                )
            }
        };
        let left = (w.until - Utc::now()).num_seconds().max(0);
        if self.order.batch > 0 {
            self.log(&format!(
                "恢复金丝雀观察(剩余 {left} 秒,自 {} 起开始的告警都计入)",
                w.since.to_rfc3339()
            ))
            .await;
        }
        self.report.note(0, format!("金丝雀观察 · 剩余 {left} 秒"));
        loop {
            if !self.fence.holds(&self.d).await {
                return AfterWatch::Ended(self.fenced_out().await);
            }
            if let Some(s @ (OrderState::Paused | OrderState::Aborted)) = self.state_now().await {
                return AfterWatch::Stopped(s);
            }
            let now = Utc::now();
            let query = AlertQuery {
                status: Some(FIRING.into()),
                ..AlertQuery::default()
            };
            let failing = match self.d.alerts.alerts_list(&query).await {
                Ok(alerts) => {
                    if let Some(a) = first_match(&alerts, &matcher, &w) {
                        w.outcome = Outcome::Alerted;
                        w.alert = Some(a.id);
                        let a = a.clone();
                        let ended = if c.rollback {
                            self.roll_back(&plan, &w, &a, &matcher_text, transport)
                                .await
                        } else {
                            let why = format!("金丝雀批次后告警 {}(#{})", alert_name(&a), a.id);
                            self.pause_for(&plan, &w, &why).await
                        };
                        return AfterWatch::Ended(ended);
                    }
                    None
                }
                Err(e) => {
                    tracing::warn!(order = self.order.id, error = %e, "canary watch: could not read alerts");
                    Some(e.to_string())
                }
            };
            if now >= w.until {
                if let Some(e) = failing {
                    // Unable to tell whether the canary is healthy: a person decides.
                    let why = format!("金丝雀观察期结束时无法读取告警({e})");
                    return AfterWatch::Ended(self.pause_for(&plan, &w, &why).await);
                }
                w.outcome = Outcome::Quiet;
                self.save(&plan, &w).await;
                let text = format!(
                    "✅ 发布单 #{} 金丝雀观察 {} 内没有匹配「{matcher_text}」的告警,继续发布",
                    self.order.id, c.watch
                );
                self.log(&text).await;
                self.d.tell(&self.project, &self.order, &text).await;
                return AfterWatch::GoOn;
            }
            let left = (w.until - now).to_std().unwrap_or_default();
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }

    async fn save(&self, plan: &str, w: &Watch) {
        let patch = OrderPatch {
            plan: Some(write(plan, w)),
            ..OrderPatch::default()
        };
        let _ = self
            .d
            .store
            .order_update(self.order.id, &self.d.owner, &patch)
            .await;
    }

    /// Pauses the order for a person (an alert with `rollback = false`, or a watch that
    /// could not be kept), says why, and lets go of it.
    async fn pause_for(&self, plan: &str, w: &Watch, why: &str) -> Ended {
        let id = self.order.id;
        let w = Watch {
            outcome: Outcome::Alerted,
            ..w.clone()
        };
        let moved = self
            .transition(
                &[OrderState::Running.as_str()],
                OrderState::Paused,
                &OrderPatch {
                    owner: Some(None),
                    reason: Some(why.to_string()),
                    plan: Some(write(plan, &w)),
                    ..OrderPatch::default()
                },
            )
            .await;
        if !moved {
            // Paused or aborted by someone at the same moment: their word stands (and
            // an order taken over by another instance is theirs: `paused` and `finish`
            // write and say nothing then).
            if self.state_now().await == Some(OrderState::Paused) {
                return self.paused(1, self.order.batches).await;
            }
            let owner = Some(self.d.owner.as_str());
            let _ = crate::release::skip_pending(self.d.store.as_ref(), id, owner).await;
            return self.finish().await;
        }
        let text = format!(
            "⏸ 发布单 #{id}({})已暂停: {why}。金丝雀主机保持新版本,其余主机未发布。发送「继续:{id}」继续发布,「终止:{id}」终止",
            self.project.name
        );
        self.log(&text).await;
        self.audit(&format!("暂停:{id}"), "暂停", AuditResult::Ok, &text)
            .await;
        self.d.tell(&self.project, &self.order, &text).await;
        Ok(text)
    }

    /// Switches the canary hosts back to the release each ran before, leaves the rest
    /// untouched, and ends the order 已回滚 (失败 if a host could not be switched back).
    async fn roll_back(
        &self,
        plan: &str,
        w: &Watch,
        alert: &AlertRecord,
        matcher: &str,
        transport: &Transport,
    ) -> Ended {
        let id = self.order.id;
        let started = std::time::Instant::now();
        self.save(plan, w).await;
        let cause = format!(
            "告警 {}{}(#{})",
            opsbot_core::alerts::severity_icon(&alert.severity),
            alert_name(alert),
            alert.id
        );
        self.log(&format!(
            "金丝雀批次后出现匹配「{matcher}」的{cause},自动回滚金丝雀主机"
        ))
        .await;
        let runs = self.d.store.host_runs(id).await.unwrap_or_default();
        let mut back = Vec::new();
        let mut failed = Vec::new();
        for h in runs
            .iter()
            .filter(|h| h.state == HostState::Succeeded.as_str())
        {
            match self.undo_host(h, transport).await {
                Ok(prev) => back.push(format!("{} → #{prev}", h.host)),
                Err(e) => failed.push(format!("{}: {e}", h.host)),
            }
        }
        let owner = Some(self.d.owner.as_str());
        let _ = crate::release::skip_pending(self.d.store.as_ref(), id, owner).await;
        let untouched = runs
            .iter()
            .filter(|h| {
                matches!(
                    HostState::parse(&h.state),
                    Some(HostState::Pending | HostState::Interrupted | HostState::Skipped)
                )
            })
            .count();
        let (state, mut text) = if failed.is_empty() {
            (
                OrderState::RolledBack,
                format!(
                    "↩ 发布单 #{id}({})已自动回滚: 金丝雀批次后{cause}触发。{} 已切回原版本,其余 {untouched} 台未发布",
                    self.project.name,
                    back.join("、")
                ),
            )
        } else {
            (
                OrderState::Failed,
                format!(
                    "❌ 发布单 #{id}({})自动回滚未完成: 金丝雀批次后{cause}触发。回滚失败: {}",
                    self.project.name,
                    failed.join(";")
                ),
            )
        };
        if !back.is_empty() && !failed.is_empty() {
            text.push_str(&format!("。已切回: {}", back.join("、")));
        }
        let summary = alert.summary.trim();
        if !summary.is_empty() {
            text.push_str(&format!("\n告警: {}", crate::render::clip(summary, 200)));
        }
        let reason = format!("金丝雀批次后{cause},已自动回滚");
        let moved = self
            .transition(
                // Whatever someone did meanwhile, the canary is back: the order says so.
                &[
                    OrderState::Running.as_str(),
                    OrderState::Paused.as_str(),
                    OrderState::Aborted.as_str(),
                ],
                state,
                &OrderPatch {
                    owner: Some(None),
                    reason: Some(reason),
                    finished: true,
                    ..OrderPatch::default()
                },
            )
            .await;
        if !moved {
            return self.gone();
        }
        self.log(&text).await;
        let result = if failed.is_empty() {
            AuditResult::Ok
        } else {
            AuditResult::Failed
        };
        let what = format!(
            "回滚:{},发布单 #{id} 的金丝雀主机(告警 #{})",
            self.project.name, alert.id
        );
        self.audit_took(&what, "回滚", result, &text, started).await;
        self.d.tell(&self.project, &self.order, &text).await;
        Err(text)
    }

    /// Switches one canary host back to the release it ran before this order, runs the
    /// project's `after_host` hooks and health check for it, and records it.
    async fn undo_host(&self, h: &HostRunRecord, transport: &Transport) -> Result<i64, String> {
        let v = self.order.version.unwrap_or(self.order.id);
        let prev = h
            .previous_version
            .filter(|p| *p != v)
            .ok_or("这台主机在本次发布前没有版本,无可回到")?;
        let layout = Layout {
            root: self.project.deploy_root_for(&h.host)?,
        };
        let target = crate::hosts::Target {
            name: h.host.clone(),
            address: h.address.clone(),
        };
        self.step(h, "rollback").await;
        let log = StoreLog::start(self.d.store.clone(), self.order.id, h.host.clone());
        let link = transport
            .connect(&target)
            .await
            .map_err(|e| format!("连接失败: {e}"))?;
        let result = self
            .switch_back(h, link.as_ref(), &layout, prev, &log)
            .await;
        link.close().await;
        log.flush().await;
        let patch = match &result {
            Ok(()) => HostPatch {
                state: Some(HostState::RolledBack.as_str().into()),
                step: Some("rollback".into()),
                ..HostPatch::default()
            },
            Err(e) => HostPatch {
                state: Some(HostState::Failed.as_str().into()),
                step: Some("rollback".into()),
                error: Some(Some(format!("自动回滚失败: {e}"))),
                ..HostPatch::default()
            },
        };
        self.host_write(&h.host, &patch).await;
        result?;
        let build = match self.d.store.order_get(prev).await {
            Ok(Some(o)) => o.build.unwrap_or(0),
            _ => 0,
        };
        let _ = self
            .d
            .store
            .deployed_set(&self.project.name, &h.host, prev, build)
            .await;
        Ok(prev)
    }

    async fn switch_back(
        &self,
        h: &HostRunRecord,
        s: &dyn HostLink,
        layout: &Layout,
        prev: i64,
        log: &StoreLog,
    ) -> Result<(), String> {
        let cfg = &self.d.cfg;
        let (_, present) = remote::state(s, layout).await.map_err(|e| e.to_string())?;
        if !present.contains(&prev) {
            return Err(format!("releases/{prev} 已不在主机上"));
        }
        remote::switch(s, layout, prev, cfg.step_timeout())
            .await
            .map_err(|e| e.to_string())?;
        crate::log::LogSink::line(log, &format!("current → releases/{prev}(金丝雀自动回滚)"));
        let mut env = self.host_env(h);
        for (k, val) in env.iter_mut() {
            if k == "OPSBOT_RELEASE" {
                *val = prev.to_string();
            }
        }
        let timeout = self.project.hook_timeout(cfg);
        for cmd in &self.project.hooks.after_host {
            remote::hook(s, layout, prev, "after_host", cmd, &env, timeout, log)
                .await
                .map_err(|e| format!("after_host 钩子「{cmd}」: {e}"))?;
        }
        self.health(s, layout, h, log)
            .await
            .map_err(|e| e.to_string())
    }

    async fn audit(&self, text: &str, command: &str, result: AuditResult, message: &str) {
        self.audit_took(text, command, result, message, std::time::Instant::now())
            .await;
    }

    /// An audit row for what the watch did, as the service identity.
    async fn audit_took(
        &self,
        text: &str,
        command: &str,
        result: AuditResult,
        message: &str,
        started: std::time::Instant,
    ) {
        let entry = AuditEntry {
            id: 0,
            at: Utc::now(),
            user: self.d.cfg.service_user.clone(),
            channel: AUDIT_CHANNEL.into(),
            chat: None,
            text: text.to_string(),
            command: Some(command.to_string()),
            result,
            message: message.to_string(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            job_id: None,
        };
        if let Err(e) = self.d.audit.append_audit(&entry).await {
            tracing::warn!(order = self.order.id, error = %e, "could not audit the canary watch");
        }
    }
}

/// The channel the audit log names for what deploys do on their own.
pub const AUDIT_CHANNEL: &str = "deploy";

/// An alert as a message names it: its name and endpoint.
fn alert_name(a: &AlertRecord) -> String {
    if a.endpoint.is_empty() {
        a.name.clone()
    } else {
        format!("{} @{}", a.name, a.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alert(
        id: i64,
        name: &str,
        status: &str,
        starts: &str,
        labels: &[(&str, &str)],
    ) -> AlertRecord {
        AlertRecord {
            id,
            fingerprint: format!("fp{id}"),
            source: "alertmanager".into(),
            status: status.into(),
            severity: "critical".into(),
            name: name.into(),
            summary: String::new(),
            endpoint: String::new(),
            metric: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            annotations: BTreeMap::new(),
            recipients: vec![],
            parse_error: None,
            payload_id: 1,
            starts_at: at(starts),
            ends_at: None,
            first_seen: at(starts),
            last_seen: at(starts),
            occurrences: 1,
            ack_by: None,
            ack_at: None,
        }
    }

    #[test]
    fn only_firing_matching_alerts_started_within_the_window_count() {
        let w = Watch {
            since: at("2026-03-02T10:00:00Z"),
            until: at("2026-03-02T10:10:00Z"),
            outcome: Outcome::Watching,
            alert: None,
        };
        let m = Matcher::parse("service=shop&severity=critical").unwrap();
        let shop = [("service", "shop")];
        let alerts = [
            // Already firing before the canary: not the canary's doing.
            alert(1, "Old", FIRING, "2026-03-02T09:59:59Z", &shop),
            alert(
                2,
                "Other",
                FIRING,
                "2026-03-02T10:01:00Z",
                &[("service", "pay")],
            ),
            alert(3, "Gone", "resolved", "2026-03-02T10:01:00Z", &shop),
            alert(4, "Late", FIRING, "2026-03-02T10:10:01Z", &shop),
            alert(6, "Second", FIRING, "2026-03-02T10:03:00Z", &shop),
            alert(5, "First", FIRING, "2026-03-02T10:02:00Z", &shop),
        ];
        assert_eq!(first_match(&alerts, &m, &w).map(|a| a.id), Some(5));
        assert!(first_match(&alerts[..4], &m, &w).is_none());
    }

    #[test]
    fn the_watch_lives_in_the_plan_beside_its_other_keys() {
        let w = Watch {
            since: at("2026-03-02T10:00:00Z"),
            until: at("2026-03-02T10:10:00Z"),
            outcome: Outcome::Watching,
            alert: None,
        };
        let plan = write(r#"{"retries":3}"#, &w);
        assert_eq!(read(&plan), Some(w.clone()));
        let v: serde_json::Value = serde_json::from_str(&plan).unwrap();
        assert_eq!(v["retries"], 3);
        assert_eq!(v["canary"]["outcome"], "watching");
        assert_eq!(read("{}"), None);
        assert_eq!(read("not json"), None);
        assert_eq!(read(&write("not json", &w)), Some(w));
    }
}
