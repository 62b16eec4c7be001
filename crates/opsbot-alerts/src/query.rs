//! Read-only listings for the REST API (`/api/v1`), which mounts them behind its own
//! token authentication: alerts (with their raw payload) and the dead-letter list.

use opsbot_store::alerts::{AlertPayloadRecord, AlertQuery, AlertRecord};
use opsbot_store::{OutboxItem, OutboxQuery, OutboxState, Result, Store};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertItem {
    pub id: i64,
    pub fingerprint: String,
    pub source: String,
    pub status: String,
    pub severity: String,
    pub name: String,
    pub summary: String,
    pub endpoint: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub recipients: Vec<String>,
    pub parse_error: Option<String>,
    pub payload_id: i64,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub first_seen: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
    pub occurrences: i64,
    pub ack_by: Option<String>,
    pub ack_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<AlertRecord> for AlertItem {
    fn from(a: AlertRecord) -> Self {
        AlertItem {
            id: a.id,
            fingerprint: a.fingerprint,
            source: a.source,
            status: a.status,
            severity: a.severity,
            name: a.name,
            summary: a.summary,
            endpoint: a.endpoint,
            metric: a.metric,
            labels: a.labels,
            annotations: a.annotations,
            recipients: a.recipients,
            parse_error: a.parse_error,
            payload_id: a.payload_id,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            occurrences: a.occurrences,
            ack_by: a.ack_by,
            ack_at: a.ack_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawPayload {
    pub id: i64,
    pub source: String,
    pub peer: String,
    pub content_type: String,
    pub body: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

impl From<AlertPayloadRecord> for RawPayload {
    fn from(p: AlertPayloadRecord) -> Self {
        RawPayload {
            id: p.id,
            source: p.source,
            peer: p.peer,
            content_type: p.content_type,
            body: p.body,
            received_at: p.received_at,
        }
    }
}

/// `GET /api/v1/alerts?status=&source=&limit=&offset=`: newest first.
pub async fn alerts(store: &dyn Store, query: &AlertQuery) -> Result<Vec<AlertItem>> {
    Ok(store
        .alerts_list(query)
        .await?
        .into_iter()
        .map(AlertItem::from)
        .collect())
}

/// `GET /api/v1/alerts/{id}`: the alert and the payload it last came in.
pub async fn alert(store: &dyn Store, id: i64) -> Result<Option<(AlertItem, Option<RawPayload>)>> {
    let Some(a) = store.alert_get(id).await? else {
        return Ok(None);
    };
    let raw = store
        .alert_payload(a.payload_id)
        .await?
        .map(RawPayload::from);
    Ok(Some((a.into(), raw)))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub channel: String,
    /// As the outbox stores it (JSON): whom it was for.
    pub target: serde_json::Value,
    pub body: serde_json::Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<OutboxItem> for DeadLetter {
    fn from(i: OutboxItem) -> Self {
        let json = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.into()));
        DeadLetter {
            id: i.id,
            target: json(&i.target),
            body: json(&i.body),
            channel: i.channel,
            attempts: i.attempts,
            last_error: i.last_error,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// `GET /api/v1/dead-letters?limit=`: WeCom messages given up on, newest first.
pub async fn dead_letters(store: &dyn Store, limit: u64) -> Result<Vec<DeadLetter>> {
    Ok(store
        .outbox_list(&OutboxQuery {
            state: Some(OutboxState::Dead),
            channel_prefix: Some("wecom:".into()),
            limit,
        })
        .await?
        .into_iter()
        .map(DeadLetter::from)
        .collect())
}
