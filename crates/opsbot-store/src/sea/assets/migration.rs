//! CMDB assets: one row per host (identity, binding, VM link, latest report) and its
//! facts as key/value rows. Their changes go to the existing `change_log`.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Assets;

impl MigrationName for Assets {
    fn name(&self) -> &str {
        "m20261201_000005_assets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Assets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "asset",
                vec![
                    c.pk(),
                    c.string("identity", KEY),
                    c.string("hostname", KEY),
                    c.string("source", SHORT),
                    c.string("status", SHORT),
                    // The agent token the asset is bound to; empty for agentless ones.
                    c.string("token_id", SHORT),
                    c.text_null("vm_provider"),
                    c.text_null("vm_id"),
                    c.text_null("vm_name"),
                    c.text_null("vm_path"),
                    c.time("first_seen"),
                    c.time("last_seen"),
                    c.long_text("report"),
                ],
            ))
            .await?;
        manager
            .create_table(table(
                backend,
                "asset_fact",
                vec![
                    c.pk(),
                    c.big("asset_id"),
                    c.string("fact_key", KEY),
                    c.text("fact_value"),
                ],
            ))
            .await?;
        for i in [
            index("asset", "identity", &["identity"], true),
            index("asset", "hostname", &["hostname"], false),
            index("asset", "seen", &["status", "last_seen"], false),
            index("asset_fact", "key", &["asset_id", "fact_key"], true),
        ] {
            manager.create_index(i).await?;
        }
        Ok(())
    }
}

/// Which host each agent token speaks for: an unpinned token is bound to the first
/// host that reports with it, one row per token (the unique key decides races between
/// instances).
pub(crate) struct AgentBindings;

impl MigrationName for AgentBindings {
    fn name(&self) -> &str {
        "m20261215_000010_agent_token_host"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AgentBindings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "agent_token_host",
                vec![
                    c.pk(),
                    c.string("token_id", SHORT),
                    c.string("identity", KEY),
                    c.time("bound_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index("agent_token_host", "token_id", &["token_id"], true))
            .await
    }
}
