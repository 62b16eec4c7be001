//! Request handlers, one module per resource.

pub mod health;
pub mod wecom;
pub mod api;
