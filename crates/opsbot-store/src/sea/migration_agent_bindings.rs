//! Which host each agent token speaks for: an unpinned token is bound to the first
//! host that reports with it, one row per token (the unique key decides races between
//! instances).

use super::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

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
