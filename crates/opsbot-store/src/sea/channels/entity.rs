//! Entities of the chat-channel tables (shapes as in `migration.rs` here).

use crate::sea::entity::table;

table!(bot_stream, "bot_stream", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub stream_id: String,
    pub msg_id: String,
    pub asker: String,
    pub chat: Option<String>,
    pub response_url: Option<String>,
    pub content: String,
    pub state: String,
    pub job_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
});

table!(reply_window, "reply_window", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub opened_at: DateTimeUtc,
    pub used: i32,
    pub missed: i32,
});
