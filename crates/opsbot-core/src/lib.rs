//! Domain types shared by every opsbot crate: the resource-pool model, the provider
//! trait, jobs, audit entries and the permission policy. Nothing here does I/O.

pub mod alerts;
pub mod asset;
pub mod audit;
pub mod card;
pub mod chat;
pub mod duration;
pub mod form;
pub mod inventory;
pub mod job;
pub mod network;
pub mod notice;
pub mod outcome;
pub mod ping;
pub mod policy;
pub mod probe;
pub mod provider;
pub mod provider_config;
pub mod rate;
pub mod subsystem;
pub mod zone;

pub use alerts::{
    Acked, AlertDesk, AlertRef, DeadLetter, DeskError, DeskPage, FiringAlert, Recipient, Silence,
    Silenced,
};
pub use asset::{
    diff_facts, Asset, AssetCard, AssetDesk, AssetLookup, AssetStatus, FactChange, Facts, VmLink,
};
pub use audit::{AuditEntry, AuditResult};
pub use card::{
    Action, Button, Buttons, Card, CardKeys, Choice, Field, KeyError, Selection, Style,
};
pub use chat::{Answer, Call, ChatCommand, ChatCommands, Claim, MenuEntry, MenuSource, Requester};
pub use duration::parse_duration;
pub use inventory::{
    Change, Cluster, Datacenter, Datastore, Disk, Host, Inventory, Network, NetworkKind, Nic,
    PowerState, Template, Vm,
};
pub use job::{JobFence, JobId, JobRecord, JobState};
pub use notice::Notice;
pub use outcome::{
    CloneNetwork, CloneStep, CloneStepFailed, Cloned, Done, GuestTools, Hardware, Heartbeat,
    HostNeed, NetworkName, Outage, PingFailure, PingResult, Pinged, Place, Rejection, ResetReason,
    SpaceFor, Step, ToolsStatus, VmSize,
};
pub use policy::{Policy, Role, Scope};
pub use probe::JobStateProbe;
pub use provider::{
    check_cancel, claim_held, commit_cancel, Cancel, CancelRequest, ClaimCheck, InventoryRead,
    NoProgress, OpOutcome, Progress, Provider, ProviderError, VmOperation,
};
pub use provider_config::{ProviderSection, SectionError};
pub use rate::{RateError, RateWindows};
pub use subsystem::{Feature, Registry, Subsystem};
pub use zone::Zone;
