//! sea-orm entities of the deploy tables (shapes as in `migration.rs` here).

use crate::sea::entity::table;

table!(deploy_project, "deploy_project", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub definition: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
});

table!(deploy_build, "deploy_build", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project: String,
    pub reference: String,
    pub revision: String,
    pub state: String,
    pub artefact: Option<String>,
    pub artefact_size: Option<i64>,
    pub changelog: String,
    pub error: Option<String>,
    pub user: String,
    pub owner: Option<String>,
    pub created_at: DateTimeUtc,
    pub created_ms: i64,
    pub finished_at: Option<DateTimeUtc>,
});

table!(deploy_order, "deploy_order", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project: String,
    pub kind: String,
    pub build: Option<i64>,
    pub version: Option<i64>,
    pub state: String,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub approver: Option<String>,
    pub reason: Option<String>,
    pub batch: i32,
    pub batches: i32,
    pub plan: String,
    pub owner: Option<String>,
    pub heartbeat_ms: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
});

table!(deploy_host_run, "deploy_host_run", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub host: String,
    pub address: String,
    pub batch: i32,
    pub state: String,
    pub step: String,
    pub exit_code: Option<i32>,
    pub previous_version: Option<i64>,
    pub error: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
});

table!(deploy_log, "deploy_log", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub build_id: i64,
    pub host: String,
    pub text: String,
    pub at: DateTimeUtc,
});

table!(deploy_project_host, "deploy_project_host", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project: String,
    pub host: String,
    pub address: String,
    pub order_id: i64,
    pub added_at: DateTimeUtc,
});

table!(deploy_deployed, "deploy_deployed", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project: String,
    pub host: String,
    pub version: i64,
    pub build: i64,
    pub at: DateTimeUtc,
});
