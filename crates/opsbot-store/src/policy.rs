//! The permission policy as stored: roles and who holds them.

use crate::Result;
use async_trait::async_trait;
use opsbot_core::Role;
use std::collections::BTreeMap;

/// Roles and who holds them, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyData {
    pub roles: Vec<Role>,
    pub users: BTreeMap<String, Vec<String>>,
    pub chats: BTreeMap<String, Vec<String>>,
}

/// Roles and bindings; the configuration is their source.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Replaces all roles and bindings.
    async fn replace_policy(&self, policy: &PolicyData) -> Result<()>;

    async fn load_policy(&self) -> Result<PolicyData>;
}
