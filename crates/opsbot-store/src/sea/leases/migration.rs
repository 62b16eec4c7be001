//! Leases of scheduled jobs shared by several instances.

use crate::sea::migration::{table, Cols, KEY};
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
