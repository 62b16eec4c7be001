//! The alert desk chat talks to (`opsbot_core::AlertDesk`): the firing list,
//! acknowledgement of one alert or a group's (the routes are told who acked, once per
//! route), silences, dead letters.
//! It needs only the store and the settings, so `opsbot chat` has it too.

use crate::config::Settings;
use crate::notify::{deliveries, outbox_items};
use crate::routing::Facts;
use crate::silence::{Matcher, Silences};
use async_trait::async_trait;
use opsbot_core::notice::Target;
use opsbot_core::{
    Acked, AlertDesk, AlertRef, DeadLetter, DeskError, DeskPage, FiringAlert, Recipient, Silence,
    Silenced,
};
use opsbot_store::alerts::{AckOutcome, AlertQuery, AlertRecord, NewSilence, FIRING};
use opsbot_store::{AlertStore, OutboxItem, OutboxQuery, OutboxState, OutboxStore, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

/// Firing alerts examined when counting what a new silence covers.
const SILENCE_PREVIEW: u64 = 10_000;

#[derive(Clone)]
pub struct Desk {
    alerts: Arc<dyn AlertStore>,
    /// Acknowledgement notices queue here; 告警:死信 reads what it gave up on.
    outbox: Arc<dyn OutboxStore>,
    settings: Arc<Settings>,
    silences: Arc<Silences>,
    wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").finish_non_exhaustive()
    }
}

fn down(e: StoreError) -> DeskError {
    DeskError::Unavailable(e.to_string())
}

impl Desk {
    pub fn new(
        alerts: Arc<dyn AlertStore>,
        outbox: Arc<dyn OutboxStore>,
        settings: Arc<Settings>,
        silences: Arc<Silences>,
        wake: Option<Arc<Notify>>,
    ) -> Self {
        Desk {
            alerts,
            outbox,
            settings,
            silences,
            wake,
        }
    }

    fn row(&self, a: &AlertRecord) -> FiringAlert {
        FiringAlert {
            id: a.id,
            name: a.name.clone(),
            severity: a.severity.clone(),
            endpoint: a.endpoint.clone(),
            since: a.starts_at.with_timezone(&self.settings.timezone),
            acked_by: a.ack_by.clone(),
            unparsed: a.parse_error.is_some(),
        }
    }

    /// Tells every route of `acked` that `user` acknowledged them, one message per
    /// route naming its alerts; returns the routes told of each alert, in order. The
    /// text is the gateway's own notification (queued for the outbox, not a chat
    /// reply), so it is worded here.
    async fn announce_acks(
        &self,
        acked: &[AlertRecord],
        user: &str,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let now = chrono::Utc::now();
        let mut told: Vec<Vec<String>> = Vec::with_capacity(acked.len());
        // Routes in the order first met, with the alerts each is told of.
        let mut routes: Vec<(&crate::routing::Route, Vec<&AlertRecord>)> = Vec::new();
        for a in acked {
            let mut names = Vec::new();
            for route in self.settings.router.routes_for(&Facts::from(a), now) {
                match routes.iter_mut().find(|(r, _)| r.name == route.name) {
                    Some((_, alerts)) => alerts.push(a),
                    None => routes.push((route, vec![a])),
                }
                names.push(route.name.clone());
            }
            told.push(names);
        }
        for (route, alerts) in routes {
            let named: Vec<String> = alerts
                .iter()
                .map(|a| {
                    let mut s = format!("#{} {}", a.id, a.name);
                    if !a.endpoint.is_empty() {
                        s.push_str(&format!(" @{}", a.endpoint));
                    }
                    s
                })
                .collect();
            let text = format!("✅ 告警 {} 已由 {user} 确认", named.join("、"));
            let mut recipients: Vec<String> = Vec::new();
            for r in alerts.iter().flat_map(|a| a.recipients.iter()) {
                if !recipients.contains(r) {
                    recipients.push(r.clone());
                }
            }
            for d in deliveries(route, &recipients) {
                for item in outbox_items(&d, &text) {
                    self.outbox.outbox_push(&item).await?;
                }
            }
        }
        if let Some(w) = &self.wake {
            w.notify_one();
        }
        Ok(told)
    }

    /// Records `user`'s acknowledgement of alert `id` (as typed); `Ok(Err(a))`: it was
    /// acknowledged now (to be announced), `Ok(Ok(..))`: earlier.
    async fn ack_one(&self, id: &str, user: &str) -> Result<Result<Acked, AlertRecord>, DeskError> {
        let id = alert_id(id)?;
        match self.alerts.alert_ack(id, user).await.map_err(down)? {
            AckOutcome::Missing => Err(DeskError::NoSuchAlert(id)),
            AckOutcome::AlreadyAcked(a) => Ok(Ok(Acked::Already {
                alert: alert_ref(&a),
                by: a.ack_by.clone(),
                at: a.ack_at.map(|t| t.with_timezone(&self.settings.timezone)),
            })),
            AckOutcome::Acked(a) => Ok(Err(a)),
        }
    }
}

fn acked_now(a: &AlertRecord, told: Vec<String>) -> Acked {
    Acked::Now {
        alert: alert_ref(a),
        recovered: a.status != FIRING,
        told,
    }
}

fn alert_id(text: &str) -> Result<i64, DeskError> {
    let t = text.trim().trim_start_matches('#');
    t.parse::<i64>()
        .map_err(|_| DeskError::BadAlertId(text.to_string()))
}

fn alert_ref(a: &AlertRecord) -> AlertRef {
    AlertRef {
        id: a.id,
        name: a.name.clone(),
        endpoint: a.endpoint.clone(),
    }
}

/// Who a dead letter was for.
fn recipient(item: &OutboxItem) -> Recipient {
    match serde_json::from_str::<Target>(&item.target) {
        Ok(Target::User { user }) => Recipient::User(user),
        Ok(Target::Chat { chat, .. }) | Ok(Target::AppChat { chat }) => Recipient::Chat(chat),
        Ok(Target::Members {
            users,
            parties,
            tags,
        }) => Recipient::Members {
            users,
            parties,
            tags,
        },
        Ok(Target::Robot) => Recipient::Robot,
        Err(_) => Recipient::Unknown,
    }
}

#[async_trait]
impl AlertDesk for Desk {
    async fn firing(&self, offset: u64, limit: u64) -> Result<DeskPage<FiringAlert>, DeskError> {
        let total = self.alerts.alerts_count(FIRING).await.map_err(down)?;
        let alerts = self
            .alerts
            .alerts_list(&AlertQuery {
                status: Some(FIRING.into()),
                source: None,
                limit,
                offset,
            })
            .await
            .map_err(down)?;
        Ok(DeskPage {
            total,
            rows: alerts.iter().map(|a| self.row(a)).collect(),
        })
    }

    async fn firing_count(&self) -> Result<u64, DeskError> {
        self.alerts.alerts_count(FIRING).await.map_err(down)
    }

    async fn ack(&self, id: &str, user: &str) -> Result<Acked, DeskError> {
        match self.ack_one(id, user).await? {
            Ok(earlier) => Ok(earlier),
            Err(a) => {
                let mut told = self
                    .announce_acks(std::slice::from_ref(&a), user)
                    .await
                    .map_err(down)?;
                Ok(acked_now(&a, told.pop().unwrap_or_default()))
            }
        }
    }

    async fn ack_all(&self, ids: &[String], user: &str) -> Vec<Result<Acked, DeskError>> {
        let mut answers = Vec::with_capacity(ids.len());
        let mut now: Vec<AlertRecord> = Vec::new();
        for id in ids {
            answers.push(match self.ack_one(id, user).await {
                Ok(Ok(earlier)) => Some(Ok(earlier)),
                Ok(Err(a)) => {
                    now.push(a);
                    None
                }
                Err(e) => Some(Err(e)),
            });
        }
        let mut told = match self.announce_acks(&now, user).await {
            Ok(told) => told.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => {
                let why = e.to_string();
                now.iter()
                    .map(|_| Err(DeskError::Unavailable(why.clone())))
                    .collect()
            }
        }
        .into_iter();
        let mut now = now.iter();
        answers
            .into_iter()
            .map(|answer| match answer {
                Some(a) => a,
                None => {
                    let (a, told) = (now.next(), told.next());
                    match (a, told) {
                        (Some(a), Some(Ok(told))) => Ok(acked_now(a, told)),
                        (_, Some(Err(e))) => Err(e),
                        _ => Err(DeskError::Unavailable("acknowledgement lost".into())),
                    }
                }
            })
            .collect()
    }

    async fn silence(&self, matcher: &str, minutes: u32, user: &str) -> Result<Silence, DeskError> {
        let trimmed = matcher.trim();
        let (stored, what) =
            if trimmed.starts_with('#') || trimmed.bytes().all(|b| b.is_ascii_digit()) {
                let id = alert_id(trimmed)?;
                let a = self
                    .alerts
                    .alert_get(id)
                    .await
                    .map_err(down)?
                    .ok_or(DeskError::NoSuchAlert(id))?;
                (
                    format!("fingerprint={}", a.fingerprint),
                    Silenced::Alert { id, name: a.name },
                )
            } else {
                (trimmed.to_string(), Silenced::Matching(trimmed.to_string()))
            };
        let parsed = Matcher::parse(&stored).map_err(DeskError::BadMatcher)?;
        let ends_at = chrono::Utc::now() + chrono::Duration::minutes(i64::from(minutes));
        self.alerts
            .silence_insert(&NewSilence {
                matcher: stored,
                created_by: user.to_string(),
                ends_at,
            })
            .await
            .map_err(down)?;
        self.silences.invalidate().await;
        let firing = self
            .alerts
            .alerts_list(&AlertQuery {
                status: Some(FIRING.into()),
                source: None,
                limit: SILENCE_PREVIEW,
                offset: 0,
            })
            .await
            .map_err(down)?;
        let covered = firing
            .iter()
            .filter(|a| parsed.matches(&Facts::from(*a)))
            .count();
        Ok(Silence {
            what,
            minutes,
            until: ends_at.with_timezone(&self.settings.timezone),
            covered,
        })
    }

    async fn dead_letters(&self, limit: u64) -> Result<DeskPage<DeadLetter>, DeskError> {
        let dead = self
            .outbox
            .outbox_list(&OutboxQuery {
                state: Some(OutboxState::Dead),
                channel_prefix: Some("wecom:".into()),
                limit: 0,
            })
            .await
            .map_err(down)?;
        let rows = dead
            .iter()
            .take(limit as usize)
            .map(|i| DeadLetter {
                id: i.id,
                at: i.updated_at.with_timezone(&self.settings.timezone),
                app: i.channel.trim_start_matches("wecom:").to_string(),
                to: recipient(i),
                error: i.last_error.clone().unwrap_or_default(),
            })
            .collect();
        Ok(DeskPage {
            total: dead.len() as u64,
            rows,
        })
    }
}

/// The alert gateway as a chat subsystem: 告警, 确认:id and 静默 are answered here.
impl opsbot_core::Subsystem for Desk {
    fn register(self: Arc<Self>, registry: &mut opsbot_core::Registry) {
        registry.alert_desk(self);
    }
}
