//! The schema of interactive cards and remediation runs (see `crate::cards`).

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

/// Cards with their codes, action claims, remediation runs and the rules' lock rows.
pub(crate) struct Cards;

impl MigrationName for Cards {
    fn name(&self) -> &str {
        "m20261220_000012_cards"
    }
}

/// `crate::cards::TASK_ID_MAX` as a column length.
const TASK_ID: u32 = 128;

fn big_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Cards {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        let mut task_id = c.string("task_id", TASK_ID);
        task_id.primary_key();
        let mut claims = table(
            backend,
            "card_claims",
            vec![
                c.string("task_id", TASK_ID),
                c.string("slot", SHORT),
                c.text("user_id"),
                c.time("at"),
                c.text_null("outcome"),
                big_null("job"),
            ],
        );
        // The key that lets exactly one claimer of a slot in.
        claims.primary_key(
            Index::create()
                .col(Alias::new("task_id"))
                .col(Alias::new("slot")),
        );
        let mut rule = c.string("rule", KEY);
        rule.primary_key();
        let tables = [
            table(
                backend,
                "cards",
                vec![
                    task_id,
                    c.text("channel"),
                    c.text("target"),
                    // A card with many buttons and long texts may exceed 64 KiB.
                    c.long_text("card"),
                    c.big("version"),
                    c.text_null("response_code"),
                    // Milliseconds since the epoch, as `outbox.next_attempt_ms`: they
                    // compare the same on every backend.
                    big_null("code_ms"),
                    c.time("created_at"),
                    c.time("updated_at"),
                    c.big("expires_ms"),
                ],
            ),
            claims,
            table(
                backend,
                "remediation_runs",
                vec![
                    c.pk(),
                    c.string("rule", KEY),
                    c.text("target"),
                    big_null("alert"),
                    c.big("at_ms"),
                    c.long_text_null("outcome"),
                    big_null("job"),
                ],
            ),
            table(backend, "remediation_lock", vec![rule]),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        let indexes = [
            // Pruning by expiry.
            index("cards", "expires", &["expires_ms"], false),
            // Admission (a rule's last hour) and the runs of a rule.
            index("remediation_runs", "rule", &["rule", "at_ms"], false),
            // Pruning by age, across rules.
            index("remediation_runs", "at", &["at_ms"], false),
        ];
        for i in indexes {
            manager.create_index(i).await?;
        }
        Ok(())
    }
}
