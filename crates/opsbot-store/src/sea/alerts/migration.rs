//! The alert gateway's tables: raw payloads, alerts (one row per fingerprint), pending
//! notices (grouping state that survives a restart), silences, and each alert's status
//! changes (how flapping is told).

use crate::sea::migration::{index, table, Cols, KEY, SHORT};
use sea_orm_migration::prelude::*;

pub(crate) struct Alerts;

impl MigrationName for Alerts {
    fn name(&self) -> &str {
        "m20261201_000005_alerts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Alerts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "alert_payload",
                vec![
                    c.pk(),
                    c.string("source", SHORT),
                    c.text("peer"),
                    c.text("content_type"),
                    // The request body exactly as received, whatever its size.
                    c.long_text("body"),
                    c.time("received_at"),
                ],
            ))
            .await?;
        manager
            .create_table(table(
                backend,
                "alert",
                vec![
                    c.pk(),
                    c.string("fingerprint", KEY),
                    c.string("source", SHORT),
                    c.string("status", SHORT),
                    c.text("severity"),
                    c.text("name"),
                    c.long_text("summary"),
                    c.text("endpoint"),
                    c.text("metric"),
                    // JSON objects / arrays.
                    c.long_text("labels"),
                    c.long_text("annotations"),
                    c.text("recipients"),
                    c.long_text_null("parse_error"),
                    c.big("payload_id"),
                    c.time("starts_at"),
                    c.time_null("ends_at"),
                    c.time("first_seen"),
                    c.time("last_seen"),
                    c.big("occurrences"),
                    c.text_null("ack_by"),
                    c.time_null("ack_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index("alert", "fingerprint", &["fingerprint"], true))
            .await?;
        manager
            .create_index(index("alert", "status", &["status", "id"], false))
            .await?;
        manager
            .create_table(table(
                backend,
                "alert_notice",
                vec![
                    c.pk(),
                    c.big("alert_id"),
                    c.string("route", SHORT),
                    c.string("group_key", KEY),
                    c.string("status", SHORT),
                    c.time("created_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "alert_notice",
                "group",
                &["route", "group_key"],
                false,
            ))
            .await?;
        manager
            .create_table(table(
                backend,
                "alert_silence",
                vec![
                    c.pk(),
                    c.text("matcher"),
                    c.text("created_by"),
                    c.time("created_at"),
                    c.time("ends_at"),
                ],
            ))
            .await
    }
}

/// Each alert's status changes, the history flapping is judged on.
pub(crate) struct AlertTransitions;

impl MigrationName for AlertTransitions {
    fn name(&self) -> &str {
        "m20261222_000013_alert_transitions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AlertTransitions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Cols(backend);
        manager
            .create_table(table(
                backend,
                "alert_transition",
                vec![
                    c.pk(),
                    c.big("alert_id"),
                    c.string("status", SHORT),
                    c.time("at"),
                ],
            ))
            .await?;
        // An alert's recent changes, and pruning by age.
        manager
            .create_index(index(
                "alert_transition",
                "alert",
                &["alert_id", "at"],
                false,
            ))
            .await?;
        manager
            .create_index(index("alert_transition", "at", &["at"], false))
            .await
    }
}

/// Group schedules, so every instance can send any group once. A table of its own: the
/// previous version neither reads nor writes it, so instances of both can run together.
pub(crate) struct AlertGroups;

impl MigrationName for AlertGroups {
    fn name(&self) -> &str {
        "m20261207_000020_alert_groups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AlertGroups {
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
                "alert_group",
                vec![
                    c.pk(),
                    c.string("route", SHORT),
                    c.string("group_key", KEY),
                    nullable_big("due_at_ms"),
                    nullable_big("last_flush_ms"),
                    ColumnDef::new(Alias::new("claimed_by"))
                        .string_len(KEY)
                        .null()
                        .to_owned(),
                    nullable_big("claim_until_ms"),
                    nullable_big("claim_token"),
                ],
            ))
            .await?;
        manager
            .create_index(index("alert_group", "group", &["route", "group_key"], true))
            .await?;
        // Claiming reads the earliest due groups.
        manager
            .create_index(index("alert_group", "due", &["due_at_ms"], false))
            .await
    }
}
