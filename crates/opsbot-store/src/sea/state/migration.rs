//! The schema of provider state blobs: their table in the initial schema.

use crate::sea::migration::{table, Cols, KEY};
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
