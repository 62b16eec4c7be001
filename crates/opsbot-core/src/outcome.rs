//! What a provider tells the engine, as data: what an operation did ([`Done`]), why it
//! was refused ([`Rejection`]), why the provider could not be used ([`Outage`]) and where
//! a long operation is ([`Step`]), each with the values that matter. Providers write no
//! sentences: the engine's `render::provider` turns these into the text a user reads, so
//! wording and language live in one place.

use std::net::Ipv4Addr;

/// A network (port group) as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkName {
    pub name: String,
    pub vlan: Option<u16>,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    PoweredOn {
        vm: String,
    },
    /// Hard power off.
    PoweredOff {
        vm: String,
    },
    /// The guest shut its operating system down.
    GuestShutDown {
        vm: String,
    },
    /// The guest rebooted; with a reason, the VM was reset instead because the guest
    /// could not reboot itself.
    Rebooted {
        vm: String,
        reset: Option<ResetReason>,
    },
    CpuChanged {
        vm: String,
        from: u32,
        to: u32,
    },
    MemoryChanged {
        vm: String,
        from_mb: u64,
        to_gb: u32,
    },
    /// A new disk, the VM's `number`th (its label `Hard disk N`), at `bus:unit` of the
    /// SCSI controller.
    DiskAdded {
        vm: String,
        number: usize,
        gb: u64,
        datastore: String,
        bus: u32,
        unit: u32,
    },
    /// The first NIC moved; `from` is `None` when it was on no network.
    NicMoved {
        vm: String,
        from: Option<String>,
        to: NetworkName,
    },
    Renamed {
        from: String,
        to: String,
    },
    /// A clone, powered on.
    Cloned(Cloned),
    Pinged(Pinged),
    /// The VM and its disks are gone from the cluster; the pool drops it.
    Deleted {
        vm: String,
    },
}

/// Why a reboot became a reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetReason {
    /// The guest tools are not running (with the status the provider reported, if any).
    ToolsNotRunning {
        status: Option<String>,
    },
    ToolsStatusUnknown,
    /// The guest refused the reboot request with this fault.
    GuestCannotReboot {
        fault: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cloned {
    pub name: String,
    pub template: String,
    pub ip: Ipv4Addr,
    /// The guest network the clone was customised with; `None` where the provider
    /// does not customise subnets.
    pub network: Option<CloneNetwork>,
    /// CPUs and memory, when known.
    pub size: Option<VmSize>,
    pub host: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneNetwork {
    pub prefix_len: u32,
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSize {
    pub cpu: u32,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pinged {
    pub vm: String,
    pub ip: String,
    pub result: PingResult,
    pub tools: GuestTools,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PingResult {
    Replies {
        sent: u32,
        received: u32,
        avg_ms: Option<f64>,
    },
    /// Reachability could not be checked from this host.
    Unchecked(PingFailure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingFailure {
    TimedOut,
    /// No `ping` program on this host.
    NoCommand,
    /// `ping` could not be started (the system's error).
    CannotRun(String),
    /// `ping` answered nothing readable (its error output).
    Failed(String),
}

/// The guest tools as the provider reports them; a provider reports what it knows
/// (the sim knows the heartbeat only when the guest answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTools {
    pub status: Option<ToolsStatus>,
    pub heartbeat: Option<Heartbeat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolsStatus {
    Running,
    NotRunning,
    Starting,
    Unknown,
    /// A status the provider names but opsbot does not know.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Green,
    Yellow,
    Red,
    Unknown,
}

/// Where a request was looked for, when what it names is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Datacenter(String),
    /// The host a VM runs on.
    HostOf {
        vm: String,
        host: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardware {
    Cpu,
    Memory,
}

/// What datastore space was wanted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceFor {
    NewDisk,
    Clone,
}

/// What a VM's host was needed for, when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostNeed {
    Network,
    Datastore,
    ResourcePool,
}

/// A clone's steps after its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStep {
    Customize,
    Resize,
    PowerOn,
}

/// A step after a clone's copy failed; the clone is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneStepFailed {
    pub name: String,
    /// The provider's id of the clone.
    pub id: String,
    pub step: CloneStep,
    /// The provider's own account of the failure.
    pub cause: String,
}

/// Why a request cannot be done as asked. The provider has the final word on these
/// (the engine checked what it could before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    IsTemplate {
        vm: String,
    },
    HostNotConnected {
        host: String,
        state: String,
        vm: String,
    },
    AlreadyOn {
        vm: String,
    },
    AlreadyOff {
        vm: String,
    },
    TemplateCannotPowerOn {
        vm: String,
    },
    PowerOnNotAllowed {
        vm: String,
    },
    /// Not powered on, so the guest cannot be shut down.
    NotOn {
        vm: String,
    },
    ShutdownNeedsTools {
        vm: String,
    },
    /// Deleting needs the VM powered off (vCenter refuses it otherwise); `power` is
    /// the provider's power state name (`poweredOn`, `suspended`) when known.
    DeleteNeedsPowerOff {
        vm: String,
        power: Option<String>,
    },
    ShutdownTimedOut {
        vm: String,
        secs: u64,
    },
    RebootNeedsPowerOn {
        vm: String,
    },
    ZeroCpu,
    ZeroMemory,
    ZeroDisk,
    CpuOverHost {
        count: u32,
        host: String,
        cores: u32,
    },
    MemoryOverHost {
        gb: u32,
        host: String,
        host_gb: u64,
    },
    CpuUnchanged {
        vm: String,
        count: u32,
    },
    MemoryUnchanged {
        vm: String,
        gb: u32,
    },
    /// Hot plug only adds.
    ShrinkNeedsPowerOff {
        vm: String,
        what: Hardware,
    },
    NoHotPlug {
        vm: String,
        what: Hardware,
    },
    /// A new disk without a datastore named goes beside the first one; there is none.
    NoDiskToPlaceBeside {
        vm: String,
    },
    NoSuchDatastore {
        wanted: String,
        place: Place,
        available: Vec<String>,
    },
    DatastoreGone {
        vm: String,
        datastore: String,
    },
    DatastoreInaccessible {
        datastore: String,
    },
    NotEnoughSpace {
        datastore: String,
        free_gb: u64,
        need_gb: u64,
        purpose: SpaceFor,
    },
    NoScsiController {
        vm: String,
    },
    ScsiControllerWithoutKey {
        vm: String,
    },
    ScsiControllerFull {
        vm: String,
    },
    DiskSlotRefused {
        vm: String,
        bus: u32,
        unit: u32,
        cause: String,
    },
    DiskFileExists {
        vm: String,
        datastore: String,
    },
    DatastoreFull {
        vm: String,
        datastore: String,
        cause: String,
    },
    NoHost {
        vm: String,
        needed_for: HostNeed,
    },
    NoHostInCluster {
        cluster: String,
    },
    HostWithoutCompute {
        host: String,
    },
    NoResourcePool {
        compute: String,
    },
    NoNic {
        vm: String,
    },
    AlreadyOnNetwork {
        vm: String,
        network: String,
    },
    AmbiguousNetwork {
        wanted: String,
        candidates: Vec<NetworkName>,
    },
    NetworkNotOnHost {
        network: NetworkName,
        vm: String,
        host: String,
        available: Vec<NetworkName>,
    },
    NoSuchNetwork {
        wanted: String,
        place: Place,
        available: Vec<NetworkName>,
    },
    SwitchWithoutUuid {
        switch: String,
    },
    NameTaken {
        name: String,
    },
    EmptyNewName,
    EmptyCloneName,
    SameName {
        vm: String,
    },
    InvalidName {
        name: String,
    },
    NotATemplate {
        vm: String,
    },
    IpTaken {
        ip: String,
        vm: String,
    },
    IpOutsideSubnets {
        ip: Ipv4Addr,
        subnets: Vec<String>,
    },
    WindowsNeedsPassword {
        template: String,
    },
    NoTemplateFolder {
        template: String,
    },
    CloneOutOfSpace {
        name: String,
        cause: String,
    },
    CloneStepFailed(CloneStepFailed),
    TemplateCannotPing {
        vm: String,
    },
    /// Not reachable because it is not running; `power` is the provider's power
    /// state name (`poweredOff`, `suspended`).
    Unreachable {
        vm: String,
        power: String,
    },
    NoGuestIp {
        vm: String,
        tools: GuestTools,
    },
    NoPermission {
        vm: String,
        detail: String,
    },
    /// Another task is running on the VM.
    Busy {
        vm: String,
    },
    PowerStateForbids {
        vm: String,
        detail: String,
    },
    StateForbids {
        vm: String,
    },
    ToolsNotRunning {
        vm: String,
    },
    InsufficientResources {
        vm: String,
        fault: String,
        detail: String,
    },
    /// A fault of the cluster's API no rule above names, on a VM.
    Fault {
        vm: String,
        fault: String,
        detail: String,
    },
    /// A fault of the cluster's API outside any VM operation (a sync); `detail` is
    /// `None` when the API said no more than the fault's name.
    ClusterFault {
        fault: String,
        detail: Option<String>,
    },
    /// An object the request named is gone from the cluster.
    ObjectGone {
        detail: String,
    },
}

/// Why a provider could not be used; retrying later may work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outage {
    /// The provider's client failed (unreachable, timed out, login refused, ...), in
    /// its own words.
    Failed(String),
    /// The session expired and logging in again failed.
    SessionLost(String),
    /// A clone task succeeded without naming the new VM.
    CloneWithoutId { name: String },
    /// The provider went away during a step after a clone's copy.
    CloneStepFailed(CloneStepFailed),
}

/// Where a long operation is, reported with its percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    PoweringOn,
    ShutdownRequested,
    AwaitingShutdown,
    /// The guest cannot reboot itself; resetting.
    Resetting,
    SettingCpu,
    SettingMemory,
    CreatingDisk,
    SwitchingNic {
        to: String,
    },
    CloningDisks,
    RegisteringClone,
    CustomizingGuest {
        ip: Ipv4Addr,
    },
    ResizingClone,
    Pinging {
        ip: String,
    },
    /// Deleting the VM's files and disks.
    Deleting,
    /// A cancellation was asked for, and the provider could not stop the operation
    /// (in its own words): it goes on.
    CancelRefused {
        detail: String,
    },
}
