//! Request handlers, one module per resource.

pub mod agent;
pub mod alerts;
pub mod api;
pub mod callback;
pub mod health;
