//! Request handlers, one module per resource.

pub mod agent;
pub mod alerts;
pub mod api;
pub mod health;
pub mod wechat;
pub mod wecom;
pub mod wecom_bot;
