//! The deploy tables: projects created through the API, builds, release orders with a
//! row per host, their logs, the hosts projects gained by scaling out, and what each
//! host runs.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Deploy;

impl MigrationName for Deploy {
    fn name(&self) -> &str {
        "m20261215_000011_deploy"
    }
}

/// A nullable bounded string (an indexed key part that may be absent).
fn string_null(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(len)
        .null()
        .to_owned()
}

fn int_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().null().to_owned()
}

fn big_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Deploy {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let mut name = c.string("name", KEY);
        name.primary_key();
        let tables = [
            table(
                backend,
                "deploy_project",
                vec![
                    name,
                    // The project's configuration as JSON: any size.
                    c.long_text("definition"),
                    c.text("created_by"),
                    c.time("created_at"),
                    c.time("updated_at"),
                ],
            ),
            table(
                backend,
                "deploy_build",
                vec![
                    c.pk(),
                    c.string("project", KEY),
                    c.text("reference"),
                    c.text("revision"),
                    c.string("state", SHORT),
                    c.text_null("artefact"),
                    big_null("artefact_size"),
                    c.long_text("changelog"),
                    c.long_text_null("error"),
                    c.text("user"),
                    c.text_null("owner"),
                    c.time("created_at"),
                    // Milliseconds since the epoch, for comparisons that must agree
                    // on every backend (a SQLite text timestamp does not compare as a
                    // time).
                    c.big("created_ms"),
                    c.time_null("finished_at"),
                ],
            ),
            table(
                backend,
                "deploy_order",
                vec![
                    c.pk(),
                    c.string("project", KEY),
                    c.string("kind", SHORT),
                    big_null("build"),
                    big_null("version"),
                    c.string("state", SHORT),
                    c.text("user"),
                    c.text("channel"),
                    c.text_null("chat"),
                    c.text_null("approver"),
                    c.long_text_null("reason"),
                    c.int("batch"),
                    c.int("batches"),
                    c.long_text("plan"),
                    string_null("owner", KEY),
                    // Milliseconds since the epoch, as `job.heartbeat_ms`.
                    big_null("heartbeat_ms"),
                    c.time("created_at"),
                    c.time("updated_at"),
                    c.time_null("expires_at"),
                    c.time_null("finished_at"),
                ],
            ),
            table(
                backend,
                "deploy_host_run",
                vec![
                    c.pk(),
                    c.big("order_id"),
                    c.string("host", KEY),
                    c.text("address"),
                    c.int("batch"),
                    c.string("state", SHORT),
                    c.text("step"),
                    int_null("exit_code"),
                    big_null("previous_version"),
                    c.long_text_null("error"),
                    c.time_null("started_at"),
                    c.time_null("finished_at"),
                ],
            ),
            table(
                backend,
                "deploy_log",
                vec![
                    // The chunk's seq.
                    c.pk(),
                    // 0 for a build's log; `build_id` 0 for an order's.
                    c.big("order_id"),
                    c.big("build_id"),
                    // "" for the order's own lines and for builds.
                    c.string("host", KEY),
                    c.long_text("text"),
                    c.time("at"),
                ],
            ),
            table(
                backend,
                "deploy_project_host",
                vec![
                    c.pk(),
                    c.string("project", KEY),
                    c.string("host", KEY),
                    c.text("address"),
                    c.big("order_id"),
                    c.time("added_at"),
                ],
            ),
            table(
                backend,
                "deploy_deployed",
                vec![
                    c.pk(),
                    c.string("project", KEY),
                    c.string("host", KEY),
                    c.big("version"),
                    c.big("build"),
                    c.time("at"),
                ],
            ),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        let indexes = [
            // build_list by project, newest first.
            index("deploy_build", "project", &["project", "id"], false),
            // build_latest (project, succeeded) and builds_interrupt (running).
            index("deploy_build", "state", &["state", "project", "id"], false),
            // order_list / order_active by project and state.
            index(
                "deploy_order",
                "project",
                &["project", "state", "id"],
                false,
            ),
            // order_heartbeat, orders_orphaned and the state filter of order_list.
            index("deploy_order", "state", &["state", "owner"], false),
            index("deploy_order", "owner", &["owner"], false),
            // One row per host of an order.
            index("deploy_host_run", "host", &["order_id", "host"], true),
            // An order's log (all, or one host's) and a build's, in seq order.
            index("deploy_log", "order", &["order_id", "host", "id"], false),
            index("deploy_log", "build", &["build_id", "id"], false),
            index("deploy_project_host", "host", &["project", "host"], true),
            index("deploy_deployed", "host", &["project", "host"], true),
        ];
        for i in indexes {
            manager.create_index(i).await?;
        }
        Ok(())
    }
}
