//! The schema of processed message ids: their table in the initial schema, and an
//! index on when an id was processed, so old ids are pruned without a scan.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
    vec![table(
        backend,
        "processed_message",
        vec![
            c.pk(),
            c.string("channel", SHORT),
            c.string("msg_id", KEY),
            c.time("at"),
        ],
    )]
}

/// The indexes of the initial schema on those tables, in the order it creates them.
pub(crate) fn initial_indexes() -> Vec<IndexCreateStatement> {
    vec![index(
        "processed_message",
        "key",
        &["channel", "msg_id"],
        true,
    )]
}

/// An index on when a message id was processed.
pub(crate) struct ProcessedAt;

impl MigrationName for ProcessedAt {
    fn name(&self) -> &str {
        "m20261201_000010_processed_message_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ProcessedAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("processed_message", "at", &["at"], false))
            .await
    }
}
