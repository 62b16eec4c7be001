//! The pool: per cluster, an in-memory read model of namespaces, workloads, pods and
//! nodes (kept current by `watch.rs`), and whether it is live or stale.

pub mod index;
pub mod model;
pub mod state;

pub use index::{ClusterIndex, Namespace};
pub use model::{Condition, NodeInfo, PodInfo, Rollout, Workload, WorkloadKind};
pub use state::{Health, StreamStates};
