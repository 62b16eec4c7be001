//! The schema of provider state blobs: their table in the initial schema.

use crate::sea::migration::{add_column_if_missing, table, Cols, KEY};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
    vec![table(
        backend,
        "provider_state",
        vec![
            ColumnDef::new(Alias::new("key"))
                .string_len(KEY)
                .not_null()
                .primary_key()
                .to_owned(),
            c.long_text("value"),
            c.time("updated_at"),
        ],
    )]
}

/// A version per state blob, for conditional writes.
pub(crate) struct StateVersions;

impl MigrationName for StateVersions {
    fn name(&self) -> &str {
        "m20261207_000002_state_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for StateVersions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // With a default, the previous binary's inserts still work (its overwrites leave
        // the version as it was: a conditional write cannot see them, so a rolling
        // upgrade should not run the sim on old and new instances at once).
        add_column_if_missing(
            manager,
            "provider_state",
            "version",
            ColumnDef::new(Alias::new("version"))
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        )
        .await
    }
}
