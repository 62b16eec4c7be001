//! VM tags (`env:prod`), one row per tag, like the VM's IPs.

use super::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Tags;

impl MigrationName for Tags {
    fn name(&self) -> &str {
        "m20261201_000009_vm_tags"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Tags {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "vm_tag",
                vec![
                    c.pk(),
                    c.string("provider", SHORT),
                    c.string("vm_id", KEY),
                    c.int("position"),
                    c.string("tag", KEY),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "vm_tag",
                "vm",
                &["provider", "vm_id", "position"],
                false,
            ))
            .await?;
        manager
            .create_index(index("vm_tag", "tag", &["tag"], false))
            .await
    }
}
