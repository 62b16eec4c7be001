//! The schema, as sea-orm migrations portable across SQLite, PostgreSQL and MySQL.
//!
//! Portability rules kept here: key parts are bounded `VARCHAR`s so MySQL's index
//! length limit holds under utf8mb4; everything else free-form is `TEXT` (VM names may
//! be Chinese and of any length); MySQL tables are utf8mb4 with a binary collation so
//! unique keys compare exactly, as on the other backends; MySQL timestamps keep
//! microseconds (`DATETIME(6)`) like PostgreSQL does.
//!
//! Each feature's migrations live in its `sea/<feature>/migration.rs`; this module
//! registers them, in the order databases in the field ran them, and holds the column
//! helpers they share. The initial migration predates the split: it creates the
//! tables of six features, each feature contributing its part.

use super::{
    alerts, assets, audit, cards, channels, deploy, jobs, leases, outbox, policy, pool, processed,
    state, tokens,
};
use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // Append only: databases in the field have run the earlier ones, by name.
        vec![
            Box::new(Initial),
            Box::new(outbox::migration::Outbox),
            Box::new(tokens::migration::Tokens),
            Box::new(leases::migration::Leases),
            Box::new(channels::migration::Channels),
            Box::new(alerts::migration::Alerts),
            Box::new(assets::migration::Assets),
            Box::new(pool::migration::Tags),
            Box::new(processed::migration::ProcessedAt),
            Box::new(assets::migration::AgentBindings),
            Box::new(outbox::migration::OutboxClaims),
            Box::new(deploy::migration::Deploy),
            Box::new(cards::migration::Cards),
            Box::new(alerts::migration::AlertTransitions),
            Box::new(jobs::migration::JobFences),
            Box::new(state::migration::StateVersions),
            Box::new(alerts::migration::AlertGroups),
            Box::new(leases::migration::LeaseTokens),
        ]
    }
}

/// Length of provider names and short enumerations in keys.
pub(crate) const SHORT: u32 = 64;
/// Length of object ids, message ids and other key parts (191 × 4 bytes fits any index).
pub(crate) const KEY: u32 = 191;

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20250101_000001_initial"
    }
}

/// Builds column definitions for one backend.
pub(crate) struct Cols(pub(crate) DbBackend);

impl Cols {
    pub(crate) fn pk(&self) -> ColumnDef {
        ColumnDef::new(Alias::new("id"))
            .big_integer()
            .not_null()
            .auto_increment()
            .primary_key()
            .to_owned()
    }
    pub(crate) fn string(&self, name: &str, len: u32) -> ColumnDef {
        ColumnDef::new(Alias::new(name))
            .string_len(len)
            .not_null()
            .to_owned()
    }
    pub(crate) fn text(&self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name))
            .text()
            .not_null()
            .to_owned()
    }
    /// Free text that may exceed MySQL's 64 KiB `TEXT` (state blobs, messages, JSON).
    pub(crate) fn long_text(&self, name: &str) -> ColumnDef {
        self.long_text_type(name).not_null().to_owned()
    }
    pub(crate) fn long_text_null(&self, name: &str) -> ColumnDef {
        self.long_text_type(name).null().to_owned()
    }
    pub(crate) fn long_text_type(&self, name: &str) -> ColumnDef {
        let mut col = ColumnDef::new(Alias::new(name));
        match self.0 {
            DbBackend::MySql => col.custom(Alias::new("LONGTEXT")),
            _ => col.text(),
        };
        col
    }
    pub(crate) fn text_null(&self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).text().null().to_owned()
    }
    pub(crate) fn int(&self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name))
            .integer()
            .not_null()
            .to_owned()
    }
    pub(crate) fn big(&self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name))
            .big_integer()
            .not_null()
            .to_owned()
    }
    pub(crate) fn boolean(&self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name))
            .boolean()
            .not_null()
            .to_owned()
    }
    pub(crate) fn time(&self, name: &str) -> ColumnDef {
        let mut col = self.time_type(name);
        col.not_null();
        col
    }
    pub(crate) fn time_null(&self, name: &str) -> ColumnDef {
        let mut col = self.time_type(name);
        col.null();
        col
    }
    pub(crate) fn time_type(&self, name: &str) -> ColumnDef {
        let mut col = ColumnDef::new(Alias::new(name));
        match self.0 {
            DbBackend::MySql => col.custom(Alias::new("DATETIME(6)")),
            _ => col.timestamp_with_time_zone(),
        };
        col
    }
}

/// Adds `column` (named `name`) to `table` unless it is there already: another process
/// migrating at the same moment may have added it. One column per statement, since
/// SQLite's ALTER TABLE adds one at a time.
pub(crate) async fn add_column_if_missing(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    mut column: ColumnDef,
) -> Result<(), DbErr> {
    if manager.has_column(table, name).await? {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new(table))
                .add_column(&mut column)
                .to_owned(),
        )
        .await
}

/// A `CREATE TABLE` with the backend's table options.
pub(crate) fn table(
    backend: DbBackend,
    name: &str,
    columns: Vec<ColumnDef>,
) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name)).if_not_exists();
    for mut c in columns {
        t.col(&mut c);
    }
    if backend == DbBackend::MySql {
        t.engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
    t.to_owned()
}

pub(crate) fn index(
    table: &str,
    suffix: &str,
    columns: &[&str],
    unique: bool,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(format!("ix_{table}_{suffix}"))
        .table(Alias::new(table));
    for c in columns {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The first schema, one part per feature, created in the order it always was.
        let c = Cols(manager.get_database_backend());
        let tables = [
            pool::migration::initial_tables(&c),
            audit::migration::initial_tables(&c),
            processed::migration::initial_tables(&c),
            jobs::migration::initial_tables(&c),
            policy::migration::initial_tables(&c),
            state::migration::initial_tables(&c),
        ];
        for t in tables.into_iter().flatten() {
            manager.create_table(t).await?;
        }
        let indexes = [
            pool::migration::initial_indexes(),
            audit::migration::initial_indexes(),
            processed::migration::initial_indexes(),
            jobs::migration::initial_indexes(),
            policy::migration::initial_indexes(),
        ];
        for i in indexes.into_iter().flatten() {
            manager.create_index(i).await?;
        }
        manager.exec_stmt(pool::migration::initial_seed()).await?;
        Ok(())
    }
}
