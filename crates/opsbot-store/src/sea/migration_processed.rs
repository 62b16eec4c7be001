//! An index on when a message id was processed, so old ids are pruned without a scan.

use super::migration::index;
use sea_orm_migration::prelude::*;

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
