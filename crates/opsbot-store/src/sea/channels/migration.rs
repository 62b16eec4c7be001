//! Chat-channel state: smart-robot streams and reply windows (see `crate::channels`).

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Channels;

impl MigrationName for Channels {
    fn name(&self) -> &str {
        "m20261201_000008_channel_streams_and_windows"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Channels {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "bot_stream",
                vec![
                    c.pk(),
                    c.string("channel", SHORT),
                    c.string("stream_id", SHORT),
                    c.string("msg_id", KEY),
                    c.string("asker", KEY),
                    c.text_null("chat"),
                    c.text_null("response_url"),
                    c.long_text("content"),
                    c.string("state", SHORT),
                    ColumnDef::new(Alias::new("job_id"))
                        .big_integer()
                        .null()
                        .to_owned(),
                    c.time("created_at"),
                    c.time("updated_at"),
                ],
            ))
            .await?;
        // One stream per message (de-duplication) and per id (refresh lookups).
        manager
            .create_index(index("bot_stream", "msg", &["channel", "msg_id"], true))
            .await?;
        manager
            .create_index(index(
                "bot_stream",
                "stream",
                &["channel", "stream_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index("bot_stream", "created", &["created_at"], false))
            .await?;
        manager
            .create_table(table(
                backend,
                "reply_window",
                vec![
                    c.pk(),
                    c.string("channel", SHORT),
                    c.string("target", KEY),
                    c.time("opened_at"),
                    c.int("used"),
                    c.int("missed"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "reply_window",
                "target",
                &["channel", "target"],
                true,
            ))
            .await
    }
}
