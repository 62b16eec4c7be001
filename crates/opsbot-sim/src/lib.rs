//! The built-in simulated cluster (`kind = "sim"`): a few datacenters, clusters and
//! hosts, ~50 VMs, numbered templates, datastores and port groups, behaving like a
//! small vCenter (power changes take a moment, clones take seconds and report
//! progress, impossible requests fail). Its state lives in the store, so a VM cloned
//! by one `opsbot chat -c` is there for the next.
//!
//! Several opsbot instances may share that state: every change is a compare-and-set
//! on the blob's version (re-read and re-applied when another instance wrote first),
//! and a change made by a job commits only while the job's claim holds, so an instance
//! that was paused past its lease cannot change a VM whose job was taken from it.

mod config;
mod ops;
mod seed;
pub mod synthetic;

pub use config::Config;

use async_trait::async_trait;
use opsbot_core::{
    check_cancel, Inventory, OpOutcome, Progress, Provider, ProviderError, VmOperation,
};
use opsbot_store::{StateStore, StateWrite};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The persisted state: the inventory plus a counter for new object ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SimState {
    pub inventory: Inventory,
    pub next_id: u64,
}

/// How often a change is re-applied after another instance wrote first.
const MUTATE_ATTEMPTS: u32 = 16;

pub struct SimProvider {
    name: String,
    store: Arc<dyn StateStore>,
    /// Multiplies every simulated delay; tests use a small value.
    time_scale: f64,
    /// Serialises read-modify-write of the state within this process, so its own
    /// changes do not conflict with each other; across processes the conditional
    /// write is what keeps every change.
    lock: Mutex<()>,
}

impl std::fmt::Debug for SimProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimProvider")
            .field("name", &self.name)
            .field("time_scale", &self.time_scale)
            .finish()
    }
}

impl SimProvider {
    pub fn new(name: impl Into<String>, store: Arc<dyn StateStore>, time_scale: f64) -> Self {
        SimProvider {
            name: name.into(),
            store,
            time_scale: time_scale.max(0.0),
            lock: Mutex::new(()),
        }
    }

    fn state_key(&self) -> String {
        format!("sim:{}", self.name)
    }

    fn unavailable(&self, message: impl std::fmt::Display) -> ProviderError {
        ProviderError::unavailable(&self.name, message)
    }

    async fn load(&self) -> Result<SimState, ProviderError> {
        Ok(self.load_versioned().await?.0)
    }

    /// The state and the version it was read at (`None`: never stored, the seed).
    async fn load_versioned(&self) -> Result<(SimState, Option<i64>), ProviderError> {
        let stored = self
            .store
            .get_state_versioned(&self.state_key())
            .await
            .map_err(|e| self.unavailable(e))?;
        match stored {
            Some(v) => serde_json::from_str(&v.value)
                .map(|state| (state, Some(v.version)))
                .map_err(|e| self.unavailable(format!("stored sim state is corrupt: {e}"))),
            None => Ok((seed::initial_state(&self.name), None)),
        }
    }

    /// Saves `state` if the stored one is still at `version` and, for a job, the job's
    /// claim holds.
    async fn save_if(
        &self,
        state: &SimState,
        version: Option<i64>,
        progress: &dyn Progress,
    ) -> Result<StateWrite, ProviderError> {
        let json = serde_json::to_string(state).map_err(|e| self.unavailable(e))?;
        self.store
            .put_state_if(&self.state_key(), version, &json, progress.fence())
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Applies `change` to the freshly loaded state and saves it if nobody wrote in
    /// between, otherwise loads and applies it again (it then sees the other writer's
    /// change, and may refuse because of it). A job fenced out of its claim changes
    /// nothing: [`ProviderError::FencedOut`].
    async fn mutate<T>(
        &self,
        progress: &dyn Progress,
        mut change: impl FnMut(&mut SimState) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let _guard = self.lock.lock().await;
        for attempt in 0..MUTATE_ATTEMPTS {
            let (mut state, version) = self.load_versioned().await?;
            let out = change(&mut state)?;
            match self.save_if(&state, version, progress).await? {
                StateWrite::Written { .. } => return Ok(out),
                StateWrite::FencedOut => return Err(ProviderError::FencedOut),
                StateWrite::Conflict => {
                    // Another instance wrote first (and so made progress): a short,
                    // growing pause lets a burst of writers drain.
                    tokio::time::sleep(Duration::from_millis(1 << attempt.min(5))).await;
                }
            }
        }
        Err(self.unavailable(format!(
            "the sim state kept being changed by other opsbot instances: \
             {MUTATE_ATTEMPTS} attempts to apply this change conflicted; try again"
        )))
    }

    /// Waits out a simulated delay, stopping early when the job is cancelled (the sim
    /// models a vCenter task that is cancellable until it commits its change).
    async fn pause(&self, base_ms: u64, progress: &dyn Progress) -> Result<(), ProviderError> {
        // Short slices: a cancellation is seen within one, however long the delay.
        const SLICE: Duration = Duration::from_millis(20);
        let total = Duration::from_millis((base_ms as f64 * self.time_scale) as u64);
        let deadline = tokio::time::Instant::now() + total;
        loop {
            check_cancel(progress)?;
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(());
            }
            tokio::time::sleep((deadline - now).min(SLICE)).await;
        }
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn inventory(&self) -> Result<Inventory, ProviderError> {
        let _guard = self.lock.lock().await;
        let (state, version) = self.load_versioned().await?;
        if version.is_some() {
            return Ok(state.inventory);
        }
        // First contact persists the generated estate so later runs see the same one;
        // when another instance stored it first, theirs is the estate.
        match self.save_if(&state, None, &opsbot_core::NoProgress).await? {
            StateWrite::Written { .. } => Ok(state.inventory),
            _ => Ok(self.load().await?.inventory),
        }
    }

    /// Every simulated operation is cancellable until it changes the estate.
    fn can_cancel(&self, _op: &VmOperation) -> bool {
        true
    }

    async fn execute(
        &self,
        op: &VmOperation,
        progress: &dyn Progress,
    ) -> Result<OpOutcome, ProviderError> {
        ops::execute(self, op, progress).await
    }
}
