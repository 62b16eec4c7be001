//! sea-orm entities of the alert tables (shapes as in `migration.rs` here).

use crate::sea::entity::table;

table!(alert_payload, "alert_payload", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub source: String,
    pub peer: String,
    pub content_type: String,
    pub body: String,
    pub received_at: DateTimeUtc,
});

table!(alert, "alert", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub fingerprint: String,
    pub source: String,
    pub status: String,
    pub severity: String,
    pub name: String,
    pub summary: String,
    pub endpoint: String,
    pub metric: String,
    pub labels: String,
    pub annotations: String,
    pub recipients: String,
    pub parse_error: Option<String>,
    pub payload_id: i64,
    pub starts_at: DateTimeUtc,
    pub ends_at: Option<DateTimeUtc>,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    pub occurrences: i64,
    pub ack_by: Option<String>,
    pub ack_at: Option<DateTimeUtc>,
});

table!(alert_notice, "alert_notice", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub alert_id: i64,
    pub route: String,
    pub group_key: String,
    pub status: String,
    pub created_at: DateTimeUtc,
});

table!(alert_silence, "alert_silence", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub matcher: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
});

table!(alert_transition, "alert_transition", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub alert_id: i64,
    pub status: String,
    pub at: DateTimeUtc,
});

table!(
    /// Each group's schedule: when it is due (`None`: closed), when a message of it was
    /// last queued, and the claim of the instance sending it. Times are integer
    /// milliseconds, which compare the same on every backend.
    alert_group, "alert_group", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub route: String,
    pub group_key: String,
    pub due_at_ms: Option<i64>,
    pub last_flush_ms: Option<i64>,
    pub claimed_by: Option<String>,
    pub claim_until_ms: Option<i64>,
    pub claim_token: Option<i64>,
});
