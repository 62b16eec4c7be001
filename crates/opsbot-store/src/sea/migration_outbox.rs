//! Outbox claims that marking must present (a token per claim), and items held back for
//! a job until it is interrupted.

use sea_orm_migration::prelude::*;

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
            if manager.has_column("outbox", column).await? {
                continue;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("outbox"))
                        .add_column(
                            ColumnDef::new(Alias::new(column))
                                .big_integer()
                                .null()
                                .to_owned(),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
