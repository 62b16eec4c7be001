//! The schema, as sea-orm migrations portable across SQLite, PostgreSQL and MySQL.
//!
//! Portability rules kept here: key parts are bounded `VARCHAR`s so MySQL's index
//! length limit holds under utf8mb4; everything else free-form is `TEXT` (VM names may
//! be Chinese and of any length); MySQL tables are utf8mb4 with a binary collation so
//! unique keys compare exactly, as on the other backends; MySQL timestamps keep
//! microseconds (`DATETIME(6)`) like PostgreSQL does.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // Append only: databases in the field have run the earlier ones, by name.
        vec![
            Box::new(Initial),
            Box::new(Outbox),
            Box::new(super::migration_tokens::Tokens),
            Box::new(super::migration_leases::Leases),
            Box::new(super::migration_channels::Channels),
            Box::new(super::migration_alerts::Alerts),
            Box::new(super::migration_assets::Assets),
            Box::new(super::migration_tags::Tags),
            Box::new(super::migration_processed::ProcessedAt),
            Box::new(super::migration_agent_bindings::AgentBindings),
            Box::new(super::migration_outbox::OutboxClaims),
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
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let object = |extra: Vec<ColumnDef>| {
            let mut cols = vec![
                c.pk(),
                c.string("provider", SHORT),
                c.string("object_id", KEY),
                c.text("name"),
            ];
            cols.extend(extra);
            cols.push(c.time_null("removed_at"));
            cols
        };
        let tables = vec![
            table(backend, "datacenter", object(vec![])),
            table(backend, "cluster", object(vec![c.text("datacenter")])),
            table(
                backend,
                "host",
                object(vec![
                    c.text("datacenter"),
                    c.text("cluster"),
                    c.big("cpu_cores"),
                    c.big("cpu_mhz"),
                    c.big("memory_mb"),
                    c.text("connection_state"),
                    c.text("power"),
                ]),
            ),
            table(
                backend,
                "datastore",
                object(vec![
                    c.text("datacenter"),
                    c.text("kind"),
                    c.big("capacity_gb"),
                    c.big("free_gb"),
                ]),
            ),
            table(
                backend,
                "network",
                object(vec![
                    c.text("datacenter"),
                    c.text("kind"),
                    ColumnDef::new(Alias::new("vlan"))
                        .integer()
                        .null()
                        .to_owned(),
                ]),
            ),
            table(
                backend,
                "vm",
                object(vec![
                    c.text("uuid"),
                    c.text("instance_uuid"),
                    c.text("datacenter"),
                    c.text("cluster"),
                    c.text("host"),
                    c.text("folder"),
                    c.text("power"),
                    c.big("cpu"),
                    c.big("memory_mb"),
                    c.text("guest_os"),
                    c.text("guest_hostname"),
                    c.text_null("guest_ip"),
                    c.text("tools_status"),
                    c.boolean("template"),
                ]),
            ),
            table(
                backend,
                "vm_nic",
                vec![
                    c.pk(),
                    c.string("provider", SHORT),
                    c.string("vm_id", KEY),
                    c.int("position"),
                    c.text("label"),
                    c.text("mac"),
                    c.text("network"),
                    c.boolean("connected"),
                ],
            ),
            table(
                backend,
                "vm_disk",
                vec![
                    c.pk(),
                    c.string("provider", SHORT),
                    c.string("vm_id", KEY),
                    c.int("position"),
                    c.text("label"),
                    c.big("capacity_gb"),
                    c.text("datastore"),
                    c.big("unit"),
                ],
            ),
            table(
                backend,
                "vm_ip",
                vec![
                    c.pk(),
                    c.string("provider", SHORT),
                    c.string("vm_id", KEY),
                    c.int("position"),
                    c.string("ip", SHORT),
                ],
            ),
            table(
                backend,
                "template",
                vec![
                    c.pk(),
                    c.int("number"),
                    c.string("provider", SHORT),
                    c.string("vm_id", KEY),
                    c.time("created_at"),
                ],
            ),
            table(
                backend,
                "pool_meta",
                vec![
                    ColumnDef::new(Alias::new("id"))
                        .integer()
                        .not_null()
                        .primary_key()
                        .to_owned(),
                    c.big("version"),
                ],
            ),
            table(
                backend,
                "change_log",
                vec![
                    c.pk(),
                    c.time("at"),
                    c.string("provider", SHORT),
                    c.string("object_kind", SHORT),
                    c.string("object_id", KEY),
                    c.text("object_name"),
                    c.text("field"),
                    c.long_text_null("old_value"),
                    c.long_text_null("new_value"),
                    c.text("source"),
                ],
            ),
            table(
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
            ),
            table(
                backend,
                "processed_message",
                vec![
                    c.pk(),
                    c.string("channel", SHORT),
                    c.string("msg_id", KEY),
                    c.time("at"),
                ],
            ),
            table(
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
            ),
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
            table(
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
            ),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }

        let object_key = ["provider", "object_id"];
        let indexes = vec![
            index("datacenter", "key", &object_key, true),
            index("cluster", "key", &object_key, true),
            index("host", "key", &object_key, true),
            index("datastore", "key", &object_key, true),
            index("network", "key", &object_key, true),
            index("vm", "key", &object_key, true),
            index("vm_nic", "vm", &["provider", "vm_id", "position"], false),
            index("vm_disk", "vm", &["provider", "vm_id", "position"], false),
            index("vm_ip", "vm", &["provider", "vm_id", "position"], false),
            index("vm_ip", "ip", &["ip"], false),
            index("template", "number", &["number"], true),
            index("template", "vm", &["provider", "vm_id"], true),
            index(
                "change_log",
                "object",
                &["provider", "object_kind", "object_id"],
                false,
            ),
            index("audit_log", "user", &["user"], false),
            index("processed_message", "key", &["channel", "msg_id"], true),
            index("job", "owner", &["state", "owner"], false),
            index("job", "user", &["user"], false),
            index("role", "name", &["name"], true),
        ];
        for i in indexes {
            manager.create_index(i).await?;
        }

        // The single pool version row; `id` is fixed so concurrent first runs agree.
        let seed = Query::insert()
            .into_table(Alias::new("pool_meta"))
            .columns([Alias::new("id"), Alias::new("version")])
            .values_panic([1.into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(seed).await?;
        Ok(())
    }
}

/// The outbox: messages for outside services, kept until delivered or dead.
struct Outbox;

impl MigrationName for Outbox {
    fn name(&self) -> &str {
        "m20261122_000001_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Outbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let nullable_big = |name: &str| {
            ColumnDef::new(Alias::new(name))
                .big_integer()
                .null()
                .to_owned()
        };
        manager
            .create_table(table(
                backend,
                "outbox",
                vec![
                    c.pk(),
                    c.string("channel", KEY),
                    c.text("target"),
                    // Payloads (cards, long reports) can exceed MySQL's 64 KiB TEXT.
                    c.long_text("body"),
                    c.string("state", SHORT),
                    c.int("attempts"),
                    // Integer milliseconds, like the job heartbeat: they compare the
                    // same on every backend, which SQLite text timestamps do not.
                    c.big("next_attempt_ms"),
                    ColumnDef::new(Alias::new("claimed_by"))
                        .string_len(KEY)
                        .null()
                        .to_owned(),
                    nullable_big("claim_until_ms"),
                    // An error may quote a whole HTTP response body.
                    c.long_text_null("last_error"),
                    c.time("created_at"),
                    c.time("updated_at"),
                ],
            ))
            .await?;
        // Serves both hot queries: claiming (pending, due, by channel) and the depth.
        manager
            .create_index(index(
                "outbox",
                "due",
                &["state", "next_attempt_ms", "channel"],
                false,
            ))
            .await
    }
}
