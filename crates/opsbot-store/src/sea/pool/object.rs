//! How each kind of pool object maps to its table and which fields the change
//! history compares. VM NICs, disks and IPs live in their own tables and are compared
//! as one serialized value per VM.

use crate::sea::pool::entity::{cluster, datacenter, datastore, host, network, vm};
use opsbot_core::{
    Cluster, Datacenter, Datastore, Disk, Host, Network, NetworkKind, Nic, PowerState, Vm,
};
use sea_orm::{ActiveModelTrait, ActiveValue::NotSet, EntityTrait, IntoActiveModel, Set};

pub(crate) type Time = chrono::DateTime<chrono::Utc>;

/// A domain object as read from its table.
#[derive(Debug, Clone)]
pub(crate) struct Stored<T> {
    pub pk: i64,
    pub removed: bool,
    pub obj: T,
}

/// One field's value as the change history shows it.
pub(crate) type Field = (&'static str, Option<String>);

/// A kind of pool object stored in one table keyed by (provider, object_id).
pub(crate) trait PoolObject: Clone + PartialEq + Send + Sync + 'static {
    type Entity: EntityTrait<Model = Self::Model, ActiveModel = Self::Active>;
    type Model: IntoActiveModel<Self::Active> + Send + Sync;
    type Active: ActiveModelTrait<Entity = Self::Entity> + Send;
    /// `object_kind` in the change history.
    const KIND: &'static str;

    fn pk_col() -> <Self::Entity as EntityTrait>::Column;
    fn provider_col() -> <Self::Entity as EntityTrait>::Column;
    fn object_id_col() -> <Self::Entity as EntityTrait>::Column;
    fn removed_col() -> <Self::Entity as EntityTrait>::Column;

    fn provider(&self) -> &str;
    fn set_provider(&mut self, provider: &str);
    fn object_id(&self) -> &str;
    fn name(&self) -> &str;
    /// The compared fields, in a fixed order.
    fn fields(&self) -> Vec<Field>;
    /// The row as a model ready to insert or to overwrite every column but the key.
    fn active(&self, removed_at: Option<Time>) -> Self::Active;
    /// The object a row holds; a VM comes back without NICs, disks and IPs.
    fn from_model(m: Self::Model) -> Result<Stored<Self>, String>;
}

fn text<T: ToString>(v: T) -> Option<String> {
    Some(v.to_string())
}

fn int(v: i64, what: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("negative {what} {v}"))
}

fn int32(v: i64, what: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{what} {v} out of range"))
}

fn power(s: &str) -> Result<PowerState, String> {
    PowerState::parse(s).ok_or_else(|| format!("unknown power state {s:?}"))
}

impl PoolObject for Datacenter {
    type Entity = datacenter::Entity;
    type Model = datacenter::Model;
    type Active = datacenter::ActiveModel;
    const KIND: &'static str = "datacenter";

    fn pk_col() -> datacenter::Column {
        datacenter::Column::Id
    }
    fn provider_col() -> datacenter::Column {
        datacenter::Column::Provider
    }
    fn object_id_col() -> datacenter::Column {
        datacenter::Column::ObjectId
    }
    fn removed_col() -> datacenter::Column {
        datacenter::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![("name", text(&self.name))]
    }
    fn active(&self, removed_at: Option<Time>) -> datacenter::ActiveModel {
        datacenter::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: datacenter::Model) -> Result<Stored<Self>, String> {
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Datacenter {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
            },
        })
    }
}

impl PoolObject for Cluster {
    type Entity = cluster::Entity;
    type Model = cluster::Model;
    type Active = cluster::ActiveModel;
    const KIND: &'static str = "cluster";

    fn pk_col() -> cluster::Column {
        cluster::Column::Id
    }
    fn provider_col() -> cluster::Column {
        cluster::Column::Provider
    }
    fn object_id_col() -> cluster::Column {
        cluster::Column::ObjectId
    }
    fn removed_col() -> cluster::Column {
        cluster::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            ("name", text(&self.name)),
            ("datacenter", text(&self.datacenter)),
        ]
    }
    fn active(&self, removed_at: Option<Time>) -> cluster::ActiveModel {
        cluster::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            datacenter: Set(self.datacenter.clone()),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: cluster::Model) -> Result<Stored<Self>, String> {
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Cluster {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
                datacenter: m.datacenter,
            },
        })
    }
}

impl PoolObject for Host {
    type Entity = host::Entity;
    type Model = host::Model;
    type Active = host::ActiveModel;
    const KIND: &'static str = "host";

    fn pk_col() -> host::Column {
        host::Column::Id
    }
    fn provider_col() -> host::Column {
        host::Column::Provider
    }
    fn object_id_col() -> host::Column {
        host::Column::ObjectId
    }
    fn removed_col() -> host::Column {
        host::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            ("name", text(&self.name)),
            ("datacenter", text(&self.datacenter)),
            ("cluster", text(&self.cluster)),
            ("cpu_cores", text(self.cpu_cores)),
            ("cpu_mhz", text(self.cpu_mhz)),
            ("memory_mb", text(self.memory_mb)),
            ("connection_state", text(&self.connection_state)),
            ("power", text(self.power.as_str())),
        ]
    }
    fn active(&self, removed_at: Option<Time>) -> host::ActiveModel {
        host::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            datacenter: Set(self.datacenter.clone()),
            cluster: Set(self.cluster.clone()),
            cpu_cores: Set(self.cpu_cores.into()),
            cpu_mhz: Set(self.cpu_mhz.into()),
            memory_mb: Set(self.memory_mb as i64),
            connection_state: Set(self.connection_state.clone()),
            power: Set(self.power.as_str().into()),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: host::Model) -> Result<Stored<Self>, String> {
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Host {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
                datacenter: m.datacenter,
                cluster: m.cluster,
                cpu_cores: int32(m.cpu_cores, "cpu_cores")?,
                cpu_mhz: int32(m.cpu_mhz, "cpu_mhz")?,
                memory_mb: int(m.memory_mb, "memory_mb")?,
                connection_state: m.connection_state,
                power: power(&m.power)?,
            },
        })
    }
}

impl PoolObject for Datastore {
    type Entity = datastore::Entity;
    type Model = datastore::Model;
    type Active = datastore::ActiveModel;
    const KIND: &'static str = "datastore";

    fn pk_col() -> datastore::Column {
        datastore::Column::Id
    }
    fn provider_col() -> datastore::Column {
        datastore::Column::Provider
    }
    fn object_id_col() -> datastore::Column {
        datastore::Column::ObjectId
    }
    fn removed_col() -> datastore::Column {
        datastore::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            ("name", text(&self.name)),
            ("datacenter", text(&self.datacenter)),
            ("kind", text(&self.kind)),
            ("capacity_gb", text(self.capacity_gb)),
            ("free_gb", text(self.free_gb)),
        ]
    }
    fn active(&self, removed_at: Option<Time>) -> datastore::ActiveModel {
        datastore::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            datacenter: Set(self.datacenter.clone()),
            kind: Set(self.kind.clone()),
            capacity_gb: Set(self.capacity_gb as i64),
            free_gb: Set(self.free_gb as i64),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: datastore::Model) -> Result<Stored<Self>, String> {
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Datastore {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
                datacenter: m.datacenter,
                kind: m.kind,
                capacity_gb: int(m.capacity_gb, "capacity_gb")?,
                free_gb: int(m.free_gb, "free_gb")?,
            },
        })
    }
}

impl PoolObject for Network {
    type Entity = network::Entity;
    type Model = network::Model;
    type Active = network::ActiveModel;
    const KIND: &'static str = "network";

    fn pk_col() -> network::Column {
        network::Column::Id
    }
    fn provider_col() -> network::Column {
        network::Column::Provider
    }
    fn object_id_col() -> network::Column {
        network::Column::ObjectId
    }
    fn removed_col() -> network::Column {
        network::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            ("name", text(&self.name)),
            ("datacenter", text(&self.datacenter)),
            ("kind", text(self.kind.as_str())),
            ("vlan", self.vlan.map(|v| v.to_string())),
        ]
    }
    fn active(&self, removed_at: Option<Time>) -> network::ActiveModel {
        network::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            datacenter: Set(self.datacenter.clone()),
            kind: Set(self.kind.as_str().into()),
            vlan: Set(self.vlan.map(i32::from)),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: network::Model) -> Result<Stored<Self>, String> {
        let vlan = m
            .vlan
            .map(|v| u16::try_from(v).map_err(|_| format!("vlan {v} out of range")))
            .transpose()?;
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Network {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
                datacenter: m.datacenter,
                kind: NetworkKind::parse(&m.kind)
                    .ok_or_else(|| format!("unknown network kind {:?}", m.kind))?,
                vlan,
            },
        })
    }
}

/// NICs, disks and IPs compared as one JSON value each, as the history records them.
fn json<T: serde::Serialize>(v: &T) -> Option<String> {
    Some(serde_json::to_string(v).unwrap_or_default())
}

impl PoolObject for Vm {
    type Entity = vm::Entity;
    type Model = vm::Model;
    type Active = vm::ActiveModel;
    const KIND: &'static str = "vm";

    fn pk_col() -> vm::Column {
        vm::Column::Id
    }
    fn provider_col() -> vm::Column {
        vm::Column::Provider
    }
    fn object_id_col() -> vm::Column {
        vm::Column::ObjectId
    }
    fn removed_col() -> vm::Column {
        vm::Column::RemovedAt
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn set_provider(&mut self, provider: &str) {
        provider.clone_into(&mut self.provider);
    }
    fn object_id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields(&self) -> Vec<Field> {
        vec![
            ("name", text(&self.name)),
            ("uuid", text(&self.uuid)),
            ("instance_uuid", text(&self.instance_uuid)),
            ("datacenter", text(&self.datacenter)),
            ("cluster", text(&self.cluster)),
            ("host", text(&self.host)),
            ("folder", text(&self.folder)),
            ("power", text(self.power.as_str())),
            ("cpu", text(self.cpu)),
            ("memory_mb", text(self.memory_mb)),
            ("guest_os", text(&self.guest_os)),
            ("guest_hostname", text(&self.guest_hostname)),
            ("guest_ip", self.guest_ip.clone()),
            ("tools_status", text(&self.tools_status)),
            ("template", text(self.template)),
            ("nics", json::<Vec<Nic>>(&self.nics)),
            ("disks", json::<Vec<Disk>>(&self.disks)),
            ("ips", json(&self.ips)),
            ("tags", json(&self.tags)),
        ]
    }
    fn active(&self, removed_at: Option<Time>) -> vm::ActiveModel {
        vm::ActiveModel {
            id: NotSet,
            provider: Set(self.provider.clone()),
            object_id: Set(self.id.clone()),
            name: Set(self.name.clone()),
            uuid: Set(self.uuid.clone()),
            instance_uuid: Set(self.instance_uuid.clone()),
            datacenter: Set(self.datacenter.clone()),
            cluster: Set(self.cluster.clone()),
            host: Set(self.host.clone()),
            folder: Set(self.folder.clone()),
            power: Set(self.power.as_str().into()),
            cpu: Set(self.cpu.into()),
            memory_mb: Set(self.memory_mb as i64),
            guest_os: Set(self.guest_os.clone()),
            guest_hostname: Set(self.guest_hostname.clone()),
            guest_ip: Set(self.guest_ip.clone()),
            tools_status: Set(self.tools_status.clone()),
            template: Set(self.template),
            removed_at: Set(removed_at),
        }
    }
    fn from_model(m: vm::Model) -> Result<Stored<Self>, String> {
        Ok(Stored {
            pk: m.id,
            removed: m.removed_at.is_some(),
            obj: Vm {
                provider: m.provider,
                id: m.object_id,
                name: m.name,
                uuid: m.uuid,
                instance_uuid: m.instance_uuid,
                datacenter: m.datacenter,
                cluster: m.cluster,
                host: m.host,
                folder: m.folder,
                power: power(&m.power)?,
                cpu: int32(m.cpu, "cpu")?,
                memory_mb: int(m.memory_mb, "memory_mb")?,
                guest_os: m.guest_os,
                guest_hostname: m.guest_hostname,
                guest_ip: m.guest_ip,
                ips: Vec::new(),
                tags: Vec::new(),
                tools_status: m.tools_status,
                template: m.template,
                nics: Vec::new(),
                disks: Vec::new(),
            },
        })
    }
}
