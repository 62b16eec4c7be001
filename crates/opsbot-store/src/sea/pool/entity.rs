//! sea-orm entities of the resource pool (shapes as in `migration.rs` here). Every
//! object table is keyed by (provider, object_id).

use crate::sea::entity::table;

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
