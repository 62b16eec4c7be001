//! Request handlers, one module per resource.

pub mod alerts;
pub mod health;
pub mod wecom;
