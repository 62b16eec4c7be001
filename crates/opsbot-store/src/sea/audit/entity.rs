//! The sea-orm entity of the audit log (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(audit_log, "audit_log", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub text: String,
    pub command: Option<String>,
    pub result: String,
    pub message: String,
    pub duration_ms: i64,
    pub job_id: Option<i64>,
});
