//! What the API returns: the pool model as JSON, borrowed from the pool view so a page
//! of 10,000 VMs costs no copies.

use opsbot_core::{Cluster, Datacenter, Datastore, Host, JobRecord, Network, Template, Vm};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct DatacenterDto<'a> {
    pub provider: &'a str,
    pub id: &'a str,
    pub name: &'a str,
}

impl<'a> From<&'a Datacenter> for DatacenterDto<'a> {
    fn from(d: &'a Datacenter) -> Self {
        DatacenterDto {
            provider: &d.provider,
            id: &d.id,
            name: &d.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterDto<'a> {
    pub provider: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub datacenter: &'a str,
    pub hosts: usize,
    pub vms: usize,
}

impl<'a> ClusterDto<'a> {
    pub fn new(c: &'a Cluster, hosts: usize, vms: usize) -> Self {
        ClusterDto {
            provider: &c.provider,
            id: &c.id,
            name: &c.name,
            datacenter: &c.datacenter,
            hosts,
            vms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostDto<'a> {
    pub provider: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub datacenter: &'a str,
    /// Empty for a standalone host.
    pub cluster: &'a str,
    pub cpu_cores: u32,
    pub cpu_mhz: u32,
    pub memory_mb: u64,
    /// connected, disconnected, notResponding
    pub connection_state: &'a str,
    /// poweredOn, poweredOff, suspended
    pub power: &'static str,
    /// VMs placed on the host, and what they are given.
    pub vms: usize,
    pub allocated_vcpu: u64,
    pub allocated_memory_mb: u64,
}

impl<'a> HostDto<'a> {
    pub fn new(h: &'a Host, vms: usize, vcpu: u64, memory_mb: u64) -> Self {
        HostDto {
            provider: &h.provider,
            id: &h.id,
            name: &h.name,
            datacenter: &h.datacenter,
            cluster: &h.cluster,
            cpu_cores: h.cpu_cores,
            cpu_mhz: h.cpu_mhz,
            memory_mb: h.memory_mb,
            connection_state: &h.connection_state,
            power: h.power.as_str(),
            vms,
            allocated_vcpu: vcpu,
            allocated_memory_mb: memory_mb,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NicDto {
    pub label: String,
    pub mac: String,
    pub network: String,
    pub connected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiskDto {
    pub label: String,
    pub capacity_gb: u64,
    pub datastore: String,
    pub unit: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VmDto<'a> {
    pub provider: &'a str,
    /// The provider's id (a vSphere MoRef such as `vm-42`); `/vms/{provider}/{id}`.
    pub id: &'a str,
    pub name: &'a str,
    pub uuid: &'a str,
    pub instance_uuid: &'a str,
    pub datacenter: &'a str,
    pub cluster: &'a str,
    pub host: &'a str,
    pub folder: &'a str,
    /// poweredOn, poweredOff, suspended
    #[schema(example = "poweredOn")]
    pub power: &'static str,
    pub cpu: u32,
    pub memory_mb: u64,
    pub guest_os: &'a str,
    pub guest_hostname: &'a str,
    pub guest_ip: Option<&'a str>,
    pub ips: &'a [String],
    pub tools_status: &'a str,
    pub template: bool,
    pub disk_gb: u64,
    /// `provider/datacenter/cluster/name`, what role scopes match.
    pub scope: String,
    #[schema(value_type = Vec<NicDto>)]
    pub nics: &'a [opsbot_core::Nic],
    #[schema(value_type = Vec<DiskDto>)]
    pub disks: &'a [opsbot_core::Disk],
    /// Tags (`env:prod`: vSphere custom attributes as `name:value`).
    pub tags: &'a [String],
}

impl<'a> From<&'a Vm> for VmDto<'a> {
    fn from(v: &'a Vm) -> Self {
        VmDto {
            provider: &v.provider,
            id: &v.id,
            name: &v.name,
            uuid: &v.uuid,
            instance_uuid: &v.instance_uuid,
            datacenter: &v.datacenter,
            cluster: &v.cluster,
            host: &v.host,
            folder: &v.folder,
            power: v.power.as_str(),
            cpu: v.cpu,
            memory_mb: v.memory_mb,
            guest_os: &v.guest_os,
            guest_hostname: &v.guest_hostname,
            guest_ip: v.guest_ip.as_deref(),
            ips: &v.ips,
            tools_status: &v.tools_status,
            template: v.template,
            disk_gb: v.disk_total_gb(),
            scope: v.scope_path(),
            nics: &v.nics,
            disks: &v.disks,
            tags: &v.tags,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatastoreDto<'a> {
    pub provider: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub datacenter: &'a str,
    /// VMFS, NFS, vsan, ...
    pub kind: &'a str,
    pub capacity_gb: u64,
    pub free_gb: u64,
    pub used_percent: u64,
}

impl<'a> From<&'a Datastore> for DatastoreDto<'a> {
    fn from(d: &'a Datastore) -> Self {
        DatastoreDto {
            provider: &d.provider,
            id: &d.id,
            name: &d.name,
            datacenter: &d.datacenter,
            kind: &d.kind,
            capacity_gb: d.capacity_gb,
            free_gb: d.free_gb,
            used_percent: opsbot_engine::format::used_percent(d.free_gb, d.capacity_gb),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkDto<'a> {
    pub provider: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub datacenter: &'a str,
    /// standard or distributed
    pub kind: &'static str,
    pub vlan: Option<u16>,
}

impl<'a> From<&'a Network> for NetworkDto<'a> {
    fn from(n: &'a Network) -> Self {
        NetworkDto {
            provider: &n.provider,
            id: &n.id,
            name: &n.name,
            datacenter: &n.datacenter,
            kind: n.kind.as_str(),
            vlan: n.vlan,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDto<'a> {
    /// The stable number `克隆` and `POST /vms` use.
    pub number: u32,
    pub provider: &'a str,
    pub vm_id: &'a str,
    pub name: &'a str,
    pub guest_os: &'a str,
}

impl<'a> From<&'a Template> for TemplateDto<'a> {
    fn from(t: &'a Template) -> Self {
        TemplateDto {
            number: t.number,
            provider: &t.provider,
            vm_id: &t.vm_id,
            name: &t.name,
            guest_os: &t.guest_os,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    pub id: i64,
    pub user: String,
    pub channel: String,
    /// The canonical command (克隆, 关机, ...).
    pub command: String,
    /// What started it, as a typed command.
    pub text: String,
    /// running, succeeded, failed, interrupted, cancelled
    #[schema(example = "running")]
    pub state: &'static str,
    pub progress: u8,
    /// Latest progress note, or the result.
    pub message: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<JobRecord> for JobDto {
    fn from(j: JobRecord) -> Self {
        JobDto {
            id: j.id.0,
            user: j.user,
            channel: j.channel,
            command: j.command,
            text: j.text,
            state: j.state.as_str(),
            progress: j.progress,
            message: j.message,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditDto {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub text: String,
    pub command: Option<String>,
    /// ok, denied, invalid, failed, pending, accepted, cancelled
    pub result: &'static str,
    pub message: String,
    pub duration_ms: i64,
    pub job_id: Option<i64>,
}

impl From<opsbot_core::AuditEntry> for AuditDto {
    fn from(e: opsbot_core::AuditEntry) -> Self {
        AuditDto {
            id: e.id,
            at: e.at,
            user: e.user,
            channel: e.channel,
            chat: e.chat,
            text: e.text,
            command: e.command,
            result: e.result.as_str(),
            message: e.message,
            duration_ms: e.duration_ms,
            job_id: e.job_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub provider: String,
    /// datacenter, cluster, host, vm, datastore, network
    pub object_kind: String,
    pub object_id: String,
    pub object_name: String,
    /// `created`, `removed`, or the field that changed.
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// `sync:…`, `api:<user>`, `wecom:ops:<user>`, ...
    pub source: String,
}

impl From<opsbot_core::Change> for ChangeDto {
    fn from(c: opsbot_core::Change) -> Self {
        ChangeDto {
            id: c.id,
            at: c.at,
            provider: c.provider,
            object_kind: c.object_kind,
            object_id: c.object_id,
            object_name: c.object_name,
            field: c.field,
            old_value: c.old_value,
            new_value: c.new_value,
            source: c.source,
        }
    }
}

/// A job the call started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub job: i64,
    pub command: &'static str,
    /// `已受理 #42: …`
    pub message: String,
    /// Where its state and progress are.
    pub status_url: String,
}

/// A cancellation asked of a running job: the job ends `cancelled` once its provider
/// has stopped it (poll the job).
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelRequested {
    pub job: i64,
    /// `已请求取消任务 #42(克隆):…`
    pub message: String,
    /// Where its state is.
    pub status_url: String,
}

/// What a call would do (`?dry_run=true`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Planned {
    pub command: &'static str,
    pub summary: String,
    /// Chat asks to confirm it.
    pub destructive: bool,
}
