//! The sea-orm entity of provider state blobs (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(provider_state, "provider_state", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: String,
    pub updated_at: DateTimeUtc,
    /// Moves on every write: what a conditional write compares.
    pub version: i64,
});
