//! The schema of background jobs: their table in the initial schema.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
    vec![table(
        backend,
        "job",
        vec![
            c.pk(),
            c.string("owner", KEY),
            c.string("user", KEY),
            c.text("channel"),
            c.text_null("chat"),
            c.text("command"),
            c.text("text"),
            c.string("state", SHORT),
            ColumnDef::new(Alias::new("progress"))
                .small_integer()
                .not_null()
                .to_owned(),
            c.long_text("message"),
            c.time("created_at"),
            c.time("updated_at"),
            c.big("heartbeat_ms"),
        ],
    )]
}

/// The indexes of the initial schema on those tables, in the order it creates them.
pub(crate) fn initial_indexes() -> Vec<IndexCreateStatement> {
    vec![
        index("job", "owner", &["state", "owner"], false),
        index("job", "user", &["user"], false),
    ]
}
