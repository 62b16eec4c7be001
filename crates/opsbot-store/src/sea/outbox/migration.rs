//! The outbox's schema: its table, then the claims that marking must present (a token
//! per claim) and items held back for a job until it is interrupted.

use crate::sea::migration::{add_column_if_missing, index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The outbox: messages for outside services, kept until delivered or dead.
pub(crate) struct Outbox;

impl MigrationName for Outbox {
    fn name(&self) -> &str {
        "m20261122_000001_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Outbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let nullable_big = |name: &str| {
            ColumnDef::new(Alias::new(name))
                .big_integer()
                .null()
                .to_owned()
        };
        manager
            .create_table(table(
                backend,
                "outbox",
                vec![
                    c.pk(),
                    c.string("channel", KEY),
                    c.text("target"),
                    // Payloads (cards, long reports) can exceed MySQL's 64 KiB TEXT.
                    c.long_text("body"),
                    c.string("state", SHORT),
                    c.int("attempts"),
                    // Integer milliseconds, like the job heartbeat: they compare the
                    // same on every backend, which SQLite text timestamps do not.
                    c.big("next_attempt_ms"),
                    ColumnDef::new(Alias::new("claimed_by"))
                        .string_len(KEY)
                        .null()
                        .to_owned(),
                    nullable_big("claim_until_ms"),
                    // An error may quote a whole HTTP response body.
                    c.long_text_null("last_error"),
                    c.time("created_at"),
                    c.time("updated_at"),
                ],
            ))
            .await?;
        // Serves both hot queries: claiming (pending, due, by channel) and the depth.
        manager
            .create_index(index(
                "outbox",
                "due",
                &["state", "next_attempt_ms", "channel"],
                false,
            ))
            .await
    }
}

/// Outbox claims and held items.
pub(crate) struct OutboxClaims;

impl MigrationName for OutboxClaims {
    fn name(&self) -> &str {
        "m20261215_000010_outbox_claims"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxClaims {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time. A column
        // already there (another process migrating at the same moment) is left alone.
        for column in ["claim_token", "hold_job"] {
            add_column_if_missing(
                manager,
                "outbox",
                column,
                ColumnDef::new(Alias::new(column))
                    .big_integer()
                    .null()
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
