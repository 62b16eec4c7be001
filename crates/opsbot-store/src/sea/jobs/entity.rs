//! The sea-orm entity of background jobs (shape as in `migration.rs` here).

use crate::sea::entity::table;

table!(job, "job", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner: String,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub command: String,
    pub text: String,
    pub state: String,
    pub progress: i16,
    pub message: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Milliseconds since the epoch: an integer compares the same on every backend,
    /// which a SQLite text timestamp does not.
    pub heartbeat_ms: i64,
    /// The token of the job's current claim (see `opsbot_core::JobFence`).
    pub fence: i64,
    /// `provider/vm-id` of the VM the job acts on.
    pub target: Option<String>,
});
