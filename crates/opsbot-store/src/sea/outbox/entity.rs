//! The sea-orm entity of the outbox (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(
    /// Messages queued for outside services. A claim (`claimed_by` with `claim_token`,
    /// until `claim_until_ms`) hands an item to one sender; an expired claim is free again.
    outbox, "outbox", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub body: String,
    /// `pending`, `sent`, `dead` or `held`.
    pub state: String,
    pub attempts: i32,
    /// Milliseconds since the epoch (integers compare the same on every backend).
    pub next_attempt_ms: i64,
    pub claimed_by: Option<String>,
    pub claim_until_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Unique per claim: marking an item needs the claim it was taken with.
    pub claim_token: Option<i64>,
    /// A `held` item waits for this job: released if it ends interrupted.
    pub hold_job: Option<i64>,
});
