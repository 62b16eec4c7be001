//! API and agent tokens: one row per issued token, holding only a hash of it.

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Tokens;

impl MigrationName for Tokens {
    fn name(&self) -> &str {
        "m20261122_000004_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Tokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "auth_token",
                vec![
                    c.pk(),
                    // The public part of the token, so a lookup needs no scan.
                    c.string("token_id", SHORT),
                    c.string("kind", SHORT),
                    c.string("subject", KEY),
                    c.string("secret_hash", SHORT),
                    // JSON list of CIDRs; empty list = any address.
                    c.text("allow_ips"),
                    c.text("label"),
                    c.time("created_at"),
                    c.time("expires_at"),
                    c.time_null("revoked_at"),
                    c.time_null("last_used_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index("auth_token", "token_id", &["token_id"], true))
            .await
    }
}
