//! The alert gateway (SPEC §5, seed 002): monitoring systems post alerts, opsbot keeps
//! them, decides who must hear about them and tells them on WeCom, without losing any.
//!
//! - [`sources`]: the four ingest formats (Open-Falcon form and falcon content,
//!   Alertmanager webhook v4, Zabbix webhook JSON, generic JSON) into [`Alert`]s.
//! - [`config`]: the `[alerts]` section, validated with the key that is wrong.
//! - [`routing`]: ordered route rules (source, severity, status, labels, endpoint,
//!   metric, name, time windows, `continue`, a default route) and their targets.
//! - [`template`]: per-route minijinja templates for text and markdown, with Chinese
//!   defaults, compiled at configuration load.
//! - [`silence`]: `静默` matchers.
//! - [`ingest`]: group commit: one writer task stores many requests in one
//!   transaction and answers each only after its batch committed; a full queue is
//!   "overloaded" (HTTP 503, so Alertmanager retries).
//! - [`notify`]: grouping of bursts per route into few messages, resolved notices,
//!   per-target rate limits, into the durable outbox as platform-neutral notices
//!   (`opsbot_core::notice`) that the channel's delivery worker splits and sends.
//! - [`card`]: firing alerts to app members as cards whose buttons acknowledge,
//!   silence and remediate (`opsbot_core::card`).
//! - [`remediation`]: `[[alerts.remediations]]`, command templates over an alert,
//!   offered as buttons or run at once; [`auto`] runs them (hourly limit, cool-down,
//!   flapping) as the service identity.
//! - [`desk`]: what chat asks (`告警`, `确认:id`, `静默`, dead letters).
//! - [`query`]: listings for the REST API.
//! - [`gateway`]: the whole, as `opsbot serve` and the HTTP handlers use it.

pub mod alert;
pub mod auto;
pub mod card;
pub mod config;
pub mod desk;
mod error;
pub mod gateway;
pub mod ingest;
pub mod notify;
pub mod query;
pub mod remediation;
pub mod routing;
pub mod silence;
pub mod sources;
pub mod template;

pub use alert::{Alert, Source, Status};
pub use auto::Remedy;
pub use config::AlertsConfig;
pub use desk::Desk;
pub use error::{Error, Result};
pub use gateway::{Gateway, Ingested};
