//! Sentences the engine writes for what other crates report as data.

pub mod desk;
pub mod provider;
