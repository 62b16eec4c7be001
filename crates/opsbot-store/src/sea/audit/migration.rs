//! The audit log's schema: its table in the initial schema.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
    vec![table(
        backend,
        "audit_log",
        vec![
            c.pk(),
            c.time("at"),
            c.string("user", KEY),
            c.text("channel"),
            c.text_null("chat"),
            c.long_text("text"),
            c.text_null("command"),
            c.string("result", SHORT),
            c.long_text("message"),
            c.big("duration_ms"),
            ColumnDef::new(Alias::new("job_id"))
                .big_integer()
                .null()
                .to_owned(),
        ],
    )]
}

/// The indexes of the initial schema on those tables, in the order it creates them.
pub(crate) fn initial_indexes() -> Vec<IndexCreateStatement> {
    vec![index("audit_log", "user", &["user"], false)]
}
