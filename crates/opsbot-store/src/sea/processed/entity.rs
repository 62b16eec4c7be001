//! The sea-orm entity of processed message ids (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(processed_message, "processed_message", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub msg_id: String,
    pub at: DateTimeUtc,
});
