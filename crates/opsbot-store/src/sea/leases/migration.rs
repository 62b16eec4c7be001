//! Leases of scheduled jobs shared by several instances.

use crate::sea::migration::{add_column_if_missing, table, Cols, KEY};
use sea_orm_migration::prelude::*;

pub(crate) struct Leases;

impl MigrationName for Leases {
    fn name(&self) -> &str {
        "m20261201_000005_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Leases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let mut name = c.string("name", KEY);
        name.primary_key();
        manager
            .create_table(table(
                backend,
                "lease",
                vec![name, c.string("owner", KEY), c.time("expires_at")],
            ))
            .await
    }
}

/// The fencing token of each lease. A default of 0 keeps the previous binary's inserts
/// working while instances are upgraded one at a time (it neither reads nor moves it).
pub(crate) struct LeaseTokens;

impl MigrationName for LeaseTokens {
    fn name(&self) -> &str {
        "m20261223_000014_lease_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LeaseTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column_if_missing(
            manager,
            "lease",
            "token",
            ColumnDef::new(Alias::new("token"))
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        )
        .await
    }
}
