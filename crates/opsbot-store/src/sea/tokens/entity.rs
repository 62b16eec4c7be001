//! The sea-orm entity of issued tokens (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(auth_token, "auth_token", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token_id: String,
    pub kind: String,
    pub subject: String,
    pub secret_hash: String,
    pub allow_ips: String,
    pub label: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
});
