//! Request handlers, one module per resource.

pub mod agent;
pub mod health;
pub mod wecom;
