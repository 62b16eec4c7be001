//! sea-orm entities, one module per table. Column shapes here must match the
//! migration in `migration.rs`; the entities are only used to read and write rows.

/// Declares one table's entity module with the boilerplate sea-orm wants.
macro_rules! table {
    ($(#[$doc:meta])* $module:ident, $table:literal, { $($body:tt)* }) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($body)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}
// Other entity files declare their tables with the same macro.
pub(crate) use table;

// ---- resource pool: every object table is keyed by (provider, object_id) ----------

table!(datacenter, "datacenter", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub removed_at: Option<DateTimeUtc>,
});

table!(cluster, "cluster", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub datacenter: String,
    pub removed_at: Option<DateTimeUtc>,
});

table!(host, "host", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub datacenter: String,
    pub cluster: String,
    pub cpu_cores: i64,
    pub cpu_mhz: i64,
    pub memory_mb: i64,
    pub connection_state: String,
    pub power: String,
    pub removed_at: Option<DateTimeUtc>,
});

table!(datastore, "datastore", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub datacenter: String,
    pub kind: String,
    pub capacity_gb: i64,
    pub free_gb: i64,
    pub removed_at: Option<DateTimeUtc>,
});

table!(network, "network", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub datacenter: String,
    pub kind: String,
    pub vlan: Option<i32>,
    pub removed_at: Option<DateTimeUtc>,
});

table!(vm, "vm", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub object_id: String,
    pub name: String,
    pub uuid: String,
    pub instance_uuid: String,
    pub datacenter: String,
    pub cluster: String,
    pub host: String,
    pub folder: String,
    pub power: String,
    pub cpu: i64,
    pub memory_mb: i64,
    pub guest_os: String,
    pub guest_hostname: String,
    pub guest_ip: Option<String>,
    pub tools_status: String,
    pub template: bool,
    pub removed_at: Option<DateTimeUtc>,
});

table!(
    /// A VM's NICs in order; rewritten as a whole when any of them changes.
    vm_nic, "vm_nic", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub vm_id: String,
    pub position: i32,
    pub label: String,
    pub mac: String,
    pub network: String,
    pub connected: bool,
});

table!(
    /// A VM's disks in order; rewritten as a whole when any of them changes.
    vm_disk, "vm_disk", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub vm_id: String,
    pub position: i32,
    pub label: String,
    pub capacity_gb: i64,
    pub datastore: String,
    pub unit: i64,
});

table!(
    /// A VM's tags (`env:prod`), sorted.
    vm_tag, "vm_tag", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub vm_id: String,
    pub position: i32,
    pub tag: String,
});

table!(
    /// Every guest IP of a VM, primary first; indexed by ip for "which VM has 10.1.2.3".
    vm_ip, "vm_ip", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub vm_id: String,
    pub position: i32,
    pub ip: String,
});

table!(
    /// Template numbers. Rows are never deleted so a number is never handed out twice.
    template, "template", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub number: i32,
    pub provider: String,
    pub vm_id: String,
    pub created_at: DateTimeUtc,
});

table!(
    /// One row (id 1) holding the pool version; also the row pool writers lock.
    pool_meta, "pool_meta", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub version: i64,
});

table!(change_log, "change_log", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub provider: String,
    pub object_kind: String,
    pub object_id: String,
    pub object_name: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: String,
});

// ---- operations ---------------------------------------------------------------------

table!(audit_log, "audit_log", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub text: String,
    pub command: Option<String>,
    pub result: String,
    pub message: String,
    pub duration_ms: i64,
    pub job_id: Option<i64>,
});

table!(processed_message, "processed_message", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel: String,
    pub msg_id: String,
    pub at: DateTimeUtc,
});

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
});

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

table!(role, "role", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub position: i32,
    /// JSON array of command names.
    pub commands: String,
    /// JSON array of scope patterns.
    pub scopes: String,
});

table!(role_binding, "role_binding", {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `user` or `chat`.
    pub subject_kind: String,
    pub subject_id: String,
    pub role: String,
    pub position: i32,
});

table!(provider_state, "provider_state", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: String,
    pub updated_at: DateTimeUtc,
});

// ---- API and agent tokens -------------------------------------------------------------

table!(auth_token, "auth_token", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token_id: String,
    pub kind: String,
    pub subject: String,
    pub secret_hash: String,
    pub allow_ips: String,
    pub label: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
});

// ---- chat channels (in their own file; it uses the `table!` macro above) ----------------

#[path = "entity_channels.rs"]
mod channels;
pub use channels::{bot_stream, reply_window};
