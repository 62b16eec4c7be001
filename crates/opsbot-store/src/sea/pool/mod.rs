//! The resource pool tables: diffing a provider's inventory against them, writing the
//! differences with their history, and reading the live pool back.

mod children;
mod diff;
mod load;
mod object;
mod sync;

pub(crate) use children::insert_chunked;
pub(crate) use load::{changes, load_pool, version};
pub(crate) use sync::{apply_inventory, apply_vm_delta, upsert_vm};

/// Now, at the microsecond precision every backend stores, so what is written reads
/// back equal.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
