//! A group robot (群机器人) as configured: its name, the webhook key and the API base.
//! Whoever names robots in its configuration (the alert gateway's `[[alerts.robots]]`)
//! reads this; the channel that delivers to them builds their clients from it.

use serde::{Deserialize, Serialize};

/// A group robot messages can be sent to by its webhook key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    pub name: String,
    /// The `key=` of the robot's webhook URL (a secret: never logged or stored).
    pub key: String,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    crate::api::DEFAULT_API_BASE.to_string()
}

/// Never prints the key.
impl std::fmt::Debug for RobotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotConfig")
            .field("name", &self.name)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}
