//! The resource pool's schema: its part of the initial schema (object tables, VM
//! children, template numbers, the pool version and the change log) and VM tags.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// The tables of the initial schema (`m20250101_000001_initial`) this feature owns, in
/// the order that migration creates them.
pub(crate) fn initial_tables(c: &Cols) -> Vec<TableCreateStatement> {
    let backend = c.0;
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
    vec![
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
    ]
}

/// The indexes of the initial schema on those tables, in the order it creates them.
pub(crate) fn initial_indexes() -> Vec<IndexCreateStatement> {
    let object_key = ["provider", "object_id"];
    vec![
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
    ]
}

/// The single pool version row; `id` is fixed so concurrent first runs agree.
pub(crate) fn initial_seed() -> InsertStatement {
    Query::insert()
        .into_table(Alias::new("pool_meta"))
        .columns([Alias::new("id"), Alias::new("version")])
        .values_panic([1.into(), 0i64.into()])
        .to_owned()
}

/// VM tags (`env:prod`), one row per tag, like the VM's IPs.
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
