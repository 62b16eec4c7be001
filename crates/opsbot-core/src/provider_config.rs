//! A provider kind's section of a `[[providers]]` entry. Every entry has `name`, `kind`
//! and `sync_interval`; the rest belongs to the kind, whose crate defines, documents and
//! checks it by implementing [`ProviderSection`]. The binary registers each kind once.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

pub trait ProviderSection: Serialize + DeserializeOwned {
    /// The `kind` value that selects this section.
    const KIND: &'static str;

    /// Checks what deserialising cannot. The error names the key within the section
    /// (`url`, `guest_networks[0].gateway`).
    fn validate(&self) -> Result<(), SectionError>;

    /// How often `opsbot serve` re-syncs when `sync_interval` is not set (`None`: only
    /// on demand).
    fn default_sync_period(&self) -> Option<Duration>;
}

/// A problem in a provider section: the key within it and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key}: {problem}")]
pub struct SectionError {
    pub key: String,
    pub problem: String,
}

impl SectionError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        SectionError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}
