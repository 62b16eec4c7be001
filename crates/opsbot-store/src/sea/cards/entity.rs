//! Entities of the card and remediation tables (shapes as in `migration.rs` here).

use crate::sea::entity::table;

table!(
    /// Sent interactive cards, by their WeCom `task_id`.
    card, "cards", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: String,
    pub channel: String,
    pub target: String,
    pub card: String,
    /// 1 when put, one more on every compare-and-set replace.
    pub version: i64,
    pub response_code: Option<String>,
    /// When the code was issued, in milliseconds since the epoch.
    pub code_ms: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Milliseconds since the epoch (integers compare the same on every backend).
    pub expires_ms: i64,
});

table!(
    /// Who won each action slot of a card: the primary key lets one claimer in.
    card_claim, "card_claims", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: String,
    pub user_id: String,
    pub at: DateTimeUtc,
    pub outcome: Option<String>,
    pub job: Option<i64>,
});

table!(
    /// Admitted automatic remediation runs.
    remediation_run, "remediation_runs", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub rule: String,
    pub target: String,
    pub alert: Option<i64>,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub outcome: Option<String>,
    pub job: Option<i64>,
});

table!(
    /// One row per remediation rule, locked while a run of the rule is admitted.
    remediation_lock, "remediation_lock", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rule: String,
});
