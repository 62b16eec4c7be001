//! The sea-orm entity of leases (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(lease, "lease", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub owner: String,
    pub expires_at: DateTimeUtc,
    /// The fencing token (`m20261223_000014_lease_tokens`; 0 on rows of earlier binaries).
    pub token: i64,
});
