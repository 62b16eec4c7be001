//! Read-only listings for the REST API (`/api/v1`), which mounts them behind its own
//! token authentication: alerts (with their raw payload) and the dead-letter list.

use opsbot_store::alerts::{AlertPayloadRecord, AlertQuery, AlertRecord, AlertStore};
use opsbot_store::{OutboxItem, OutboxQuery, OutboxState, OutboxStore, Result};
use serde::Serialize;

/// `GET /api/v1/alerts?status=&source=&limit=&offset=`: newest first.
pub async fn alerts(store: &dyn AlertStore, query: &AlertQuery) -> Result<Vec<AlertRecord>> {
    store.alerts_list(query).await
}

/// `GET /api/v1/alerts/{id}`: the alert and the payload it last came in, verbatim.
pub async fn alert(
    store: &dyn AlertStore,
    id: i64,
) -> Result<Option<(AlertRecord, Option<AlertPayloadRecord>)>> {
    let Some(a) = store.alert_get(id).await? else {
        return Ok(None);
    };
    let raw = store.alert_payload(a.payload_id).await?;
    Ok(Some((a, raw)))
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
pub async fn dead_letters(store: &dyn OutboxStore, limit: u64) -> Result<Vec<DeadLetter>> {
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
