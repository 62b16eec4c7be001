//! The permission policy's schema: roles and bindings in the initial schema.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
    vec![
        table(
            backend,
            "role",
            vec![
                c.pk(),
                c.string("name", KEY),
                c.int("position"),
                c.text("commands"),
                c.text("scopes"),
            ],
        ),
        table(
            backend,
            "role_binding",
            vec![
                c.pk(),
                c.string("subject_kind", SHORT),
                c.string("subject_id", KEY),
                c.string("role", KEY),
                c.int("position"),
            ],
        ),
    ]
}

/// The indexes of the initial schema on those tables, in the order it creates them.
pub(crate) fn initial_indexes() -> Vec<IndexCreateStatement> {
    vec![index("role", "name", &["name"], true)]
}
