//! The schema of background jobs: their table in the initial schema.

use crate::sea::migration::{add_column_if_missing, index, table, Cols, KEY, SHORT};
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

/// Fencing tokens and targets of jobs.
pub(crate) struct JobFences;

impl MigrationName for JobFences {
    fn name(&self) -> &str {
        "m20261207_000001_job_fences"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for JobFences {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Both columns have a value for rows the previous binary writes without them
        // (token 0, no target), so instances can be upgraded one at a time. One column
        // per statement (SQLite); a column already there (another process migrating at
        // the same moment) is left alone.
        let columns = [
            (
                "fence",
                ColumnDef::new(Alias::new("fence"))
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
            (
                "target",
                Cols(manager.get_database_backend()).text_null("target"),
            ),
        ];
        for (name, column) in columns {
            add_column_if_missing(manager, "job", name, column).await?;
        }
        Ok(())
    }
}
