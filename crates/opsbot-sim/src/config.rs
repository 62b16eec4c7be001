//! The `[[providers]]` section of the simulated cluster (`kind = "sim"`):
//!
//! ```toml
//! [[providers]]
//! name = "sim"
//! kind = "sim"
//! time_scale = 1.0   # multiplies the simulated delays (0.1 = ten times faster)
//! ```

use crate::SimProvider;
use opsbot_core::{ProviderSection, SectionError};
use opsbot_store::StateStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Multiplies every simulated delay (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
}

impl Config {
    /// The provider named `name`, keeping its estate in `store`.
    pub fn provider(&self, name: &str, store: Arc<dyn StateStore>) -> SimProvider {
        SimProvider::new(name, store, self.time_scale.unwrap_or(1.0))
    }
}

impl ProviderSection for Config {
    const KIND: &'static str = "sim";

    fn validate(&self) -> Result<(), SectionError> {
        match self.time_scale {
            Some(s) if !(0.0..=100.0).contains(&s) => Err(SectionError::new(
                "time_scale",
                format!("{s} is out of range (0..=100)"),
            )),
            _ => Ok(()),
        }
    }

    /// Every operation updates the pool, and nothing changes the sim behind opsbot's
    /// back: no scheduled sync.
    fn default_sync_period(&self) -> Option<Duration> {
        None
    }
}
