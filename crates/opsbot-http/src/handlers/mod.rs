//! Request handlers, one module per resource.

pub mod api;
pub mod health;
pub mod wecom;
