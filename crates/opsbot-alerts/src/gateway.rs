//! The gateway as a whole: source authentication, parsing, routing and silences at
//! the door, the group-commit writer behind it, and the grouping task. `opsbot serve`
//! starts it; the HTTP handlers call [`Gateway::authorize`] and [`Gateway::ingest`].

use crate::alert::{fingerprint, Alert, Source, Status};
use crate::auto::{Auto, Remedy};
use crate::config::Settings;
use crate::desk::Desk;
use crate::ingest::Ingestor;
use crate::notify::Notifier;
use crate::routing::Facts;
use crate::silence::{silenced, Silences};
use crate::sources::{self, ParseContext};
use crate::{Error, Result};
use opsbot_store::alerts::{AlertUpsert, IngestPayload, NewAlertPayload, NewNotice};
use opsbot_store::{AlertStore, OutboxStore};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch, Notify};

/// Fingerprints longer than this are hashed (a key column in the store).
const MAX_FINGERPRINT: usize = 180;

/// What one request stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub payload_id: i64,
    /// Alert ids, in payload order.
    pub alerts: Vec<i64>,
    /// How many were news (new firing alerts, status changes).
    pub news: usize,
}

pub struct Gateway {
    settings: Arc<Settings>,
    alerts: Arc<dyn AlertStore>,
    outbox: Arc<dyn OutboxStore>,
    ingestor: Ingestor,
    silences: Arc<Silences>,
    wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts the writer and the grouping task (until `stop`). `wake` is the WeCom
    /// delivery worker's, so queued messages leave at once.
    /// `silences` may be shared with a [`Desk`] made earlier, so a silence set from chat
    /// applies at once. `remedy` runs the `auto` remediation rules (without it they
    /// are announced as not run).
    pub fn start(
        settings: Arc<Settings>,
        silences: Arc<Silences>,
        alerts: Arc<dyn AlertStore>,
        outbox: Arc<dyn OutboxStore>,
        wake: Option<Arc<Notify>>,
        remedy: Option<Remedy>,
        stop: watch::Receiver<bool>,
    ) -> (Arc<Gateway>, tokio::task::JoinHandle<()>) {
        let (news_tx, news_rx) = mpsc::unbounded_channel::<NewNotice>();
        let (ingestor, _writer) = Ingestor::start(alerts.clone(), settings.queue, news_tx);
        let auto = Auto::new(
            remedy,
            alerts.clone(),
            settings.remediation_user.clone(),
            settings.flap,
        );
        let notifier = Notifier::new(
            alerts.clone(),
            settings.clone(),
            silences.clone(),
            wake.clone(),
            news_rx,
            auto,
        );
        let task = tokio::spawn(notifier.run(stop));
        let gateway = Arc::new(Gateway {
            settings,
            alerts,
            outbox,
            ingestor,
            silences,
            wake,
        });
        (gateway, task)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The chat desk over the same settings and silences.
    pub fn desk(&self) -> Desk {
        Desk::new(
            self.alerts.clone(),
            self.outbox.clone(),
            self.settings.clone(),
            self.silences.clone(),
            self.wake.clone(),
        )
    }

    /// Which source `/alerts/<name>` is, if this request may post to it: its token
    /// (compared in constant time) and its address allow-list.
    pub fn authorize(&self, name: &str, peer: IpAddr, token: Option<&str>) -> Result<Source> {
        let source = Source::parse(name).ok_or_else(|| Error::UnknownSource(name.to_string()))?;
        let cfg = self
            .settings
            .sources
            .get(source)
            .ok_or_else(|| Error::UnknownSource(name.to_string()))?;
        if let Some(want) = &cfg.token {
            let ok = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(want.as_bytes())));
            if !ok {
                return Err(Error::Unauthorized(format!(
                    "{source}: missing or wrong token; send Authorization: Bearer <token>, X-Opsbot-Token: <token> or ?token=<token>"
                )));
            }
        }
        let nets = self
            .settings
            .allow_ips
            .get(&source)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        };
        if !nets.is_empty() && !nets.iter().any(|n| n.contains(&peer)) {
            return Err(Error::Unauthorized(format!(
                "{source}: {peer} is not in alerts.sources.{source}.allow_ips"
            )));
        }
        Ok(source)
    }

    /// Parses, routes and stores one request; returns once it is durable.
    pub async fn ingest(
        &self,
        source: Source,
        peer: &str,
        content_type: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Ingested> {
        let zabbix_fields = self
            .settings
            .sources
            .get(Source::Zabbix)
            .map(|s| s.fields.clone())
            .unwrap_or_default();
        let ctx = ParseContext {
            timezone: self.settings.timezone,
            zabbix_fields: &zabbix_fields,
            query,
        };
        let alerts = sources::parse(source, body, &ctx)?;
        // Silences are a courtesy: if they cannot be read, alerts are announced.
        let active = match self.silences.active().await {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read silences; announcing alerts");
                None
            }
        };
        let now = chrono::Utc::now();
        let upserts: Vec<AlertUpsert> = alerts
            .into_iter()
            .map(|a| self.upsert(a, active.as_deref().map(Vec::as_slice), now))
            .collect();
        let payload = NewAlertPayload {
            source: source.as_str().into(),
            peer: peer.into(),
            content_type: content_type.into(),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        let out = self
            .ingestor
            .submit(IngestPayload {
                payload,
                alerts: upserts,
            })
            .await?;
        Ok(Ingested {
            payload_id: out.payload_id,
            news: out.alerts.iter().filter(|a| a.news).count(),
            alerts: out.alerts.into_iter().map(|a| a.id).collect(),
        })
    }

    fn upsert(
        &self,
        mut a: Alert,
        active: Option<&[(opsbot_store::alerts::SilenceRecord, crate::silence::Matcher)]>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AlertUpsert {
        if a.fingerprint.len() > MAX_FINGERPRINT {
            a.fingerprint = fingerprint(a.source, &[&a.fingerprint]);
        }
        let facts = Facts::from(&a);
        let quiet = active.is_some_and(|s| silenced(s, &facts));
        let notices = if quiet {
            Vec::new()
        } else {
            self.settings
                .router
                .routes_for(&facts, now)
                .into_iter()
                .filter(|r| a.status == Status::Firing || r.send_resolved)
                .map(|r| NewNotice {
                    route: r.name.clone(),
                    group_key: r.group_key(&facts),
                    group_wait: r.group_wait,
                    group_interval: r.group_interval,
                })
                .collect()
        };
        AlertUpsert {
            fingerprint: a.fingerprint,
            source: a.source.as_str().into(),
            status: a.status.as_str().into(),
            severity: a.severity,
            name: a.name,
            summary: a.summary,
            endpoint: a.endpoint,
            metric: a.metric,
            labels: a.labels,
            annotations: a.annotations,
            recipients: a.recipients,
            parse_error: a.parse_error,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            notices,
        }
    }
}
