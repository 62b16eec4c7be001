//! Chat channels: transport only. A channel turns what arrives from a chat service into
//! engine messages and delivers the engine's replies back; it knows nothing of clusters.
//!
//! - [`wecom`]: WeCom self-built apps (企业微信自建应用), several apps and corps at once.

pub mod query;
pub mod wecom;
