//! CMDB assets, as records: one row per host, its facts as key/value rows, and its
//! field changes in the shared change history (`provider = "cmdb"`, `object_kind =
//! "asset"`, `object_id` = the identity). The fact model and collection live in
//! `opsbot-cmdb`; this is only what is kept.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opsbot_core::{Asset, AssetStatus, Change, Facts, VmLink};

/// One report to write: a host's identity, its stable facts and the report as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetIngest {
    /// Stable identity, lower case (validated by `opsbot-cmdb`).
    pub identity: String,
    pub hostname: String,
    /// `agent` or `ssh`.
    pub source: String,
    /// What the change history names as the source (`agent:<token id>`, `ssh:schedule`).
    pub change_source: String,
    /// The agent token that sent it; empty for agentless collection.
    pub token_id: String,
    /// The token was issued for exactly this identity (`--host`), so it may take over
    /// an asset bound to another token (a reinstalled host).
    pub token_pinned: bool,
    pub vm: Option<VmLink>,
    /// The facts diffed field by field (volatile ones such as usage are left out).
    pub facts: Facts,
    /// The whole report as JSON, kept as the latest.
    pub report: String,
    pub seen_at: DateTime<Utc>,
}

/// What became of one report of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    Stored {
        asset_id: i64,
        created: bool,
        /// The changes recorded (ids are 0: written in bulk).
        changes: Vec<Change>,
    },
    /// Not written; the reason is for the client.
    Refused { reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetQuery {
    /// Part of the identity or hostname (case-insensitive).
    pub search: Option<String>,
    pub status: Option<AssetStatus>,
    /// 0 = all.
    pub limit: u64,
    pub offset: u64,
}

#[async_trait]
pub trait AssetStore: Send + Sync {
    /// Writes a batch of reports in one transaction: creates or updates each asset,
    /// diffs its facts against the stored ones and records every difference in the
    /// change history. A report for an asset bound to another agent token is refused
    /// (unless its token is pinned to that identity), so is a report through an
    /// unpinned token for another host than the first one that reported with it (the
    /// token is bound to that host in the same transaction), and the rest are written.
    async fn assets_ingest(&self, batch: &[AssetIngest]) -> Result<Vec<IngestOutcome>>;

    /// By identity or current hostname (both are stored lower case).
    async fn asset_find(&self, name: &str) -> Result<Option<Asset>>;

    /// Assets by identity.
    async fn asset_list(&self, query: &AssetQuery) -> Result<Vec<Asset>>;

    async fn asset_facts(&self, asset_id: i64) -> Result<Facts>;

    /// The latest report as received (JSON).
    async fn asset_report(&self, asset_id: i64) -> Result<Option<String>>;

    /// Flags active assets last seen before `before` as stale, recording a `status`
    /// change with `source`. Returns their identities.
    async fn assets_mark_stale(&self, before: DateTime<Utc>, source: &str) -> Result<Vec<String>>;

    /// Flags the active assets among `identities` as stale (a collection pass found them
    /// silent), recording a `status` change with `source`. Returns those it flagged.
    async fn assets_mark_stale_named(
        &self,
        identities: &[String],
        source: &str,
    ) -> Result<Vec<String>>;
}
