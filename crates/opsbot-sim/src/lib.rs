//! The built-in simulated cluster (`kind = "sim"`): a few datacenters, clusters and
//! hosts, ~50 VMs, numbered templates, datastores and port groups, behaving like a
//! small vCenter (power changes take a moment, clones take seconds and report
//! progress, impossible requests fail). Its state lives in the store, so a VM cloned
//! by one `opsbot chat -c` is there for the next.

mod config;
mod ops;
mod seed;
pub mod synthetic;

pub use config::Config;

use async_trait::async_trait;
use opsbot_core::{
    check_cancel, Inventory, OpOutcome, Progress, Provider, ProviderError, VmOperation,
};
use opsbot_store::StateStore;
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

pub struct SimProvider {
    name: String,
    store: Arc<dyn StateStore>,
    /// Multiplies every simulated delay; tests use a small value.
    time_scale: f64,
    /// Serialises read-modify-write of the state within this process; across
    /// processes each mutation re-reads the stored state first.
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
        let stored = self
            .store
            .get_state(&self.state_key())
            .await
            .map_err(|e| self.unavailable(e))?;
        match stored {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| self.unavailable(format!("stored sim state is corrupt: {e}"))),
            None => Ok(seed::initial_state(&self.name)),
        }
    }

    async fn save(&self, state: &SimState) -> Result<(), ProviderError> {
        let json = serde_json::to_string(state).map_err(|e| self.unavailable(e))?;
        self.store
            .put_state(&self.state_key(), &json)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Applies `change` to the freshly loaded state and saves it, under the lock.
    async fn mutate<T>(
        &self,
        change: impl FnOnce(&mut SimState) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let _guard = self.lock.lock().await;
        let mut state = self.load().await?;
        let out = change(&mut state)?;
        self.save(&state).await?;
        Ok(out)
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
        let state = self.load().await?;
        // First contact persists the generated estate so later runs see the same one.
        if self
            .store
            .get_state(&self.state_key())
            .await
            .map_err(|e| self.unavailable(e))?
            .is_none()
        {
            self.save(&state).await?;
        }
        Ok(state.inventory)
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
