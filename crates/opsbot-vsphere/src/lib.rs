//! vCenter for opsbot: a thin vim25 SOAP client (reqwest + quick-xml, rustls) and the
//! `vsphere` provider built on it.
//!
//! - `client`, `xml`, `error`: transport, session, faults, property collector, tasks.
//! - `inventory`: ContainerView + RetrievePropertiesEx per type → the resource pool model.
//! - `ops`: the VM operations of seed 000 (power, resize, disk, network, rename, clone).
//! - `tagging`: vSphere tags over the vAPI REST endpoint, as pool tags `category:tag`.
//! - `provider`: [`opsbot_core::Provider`] for one configured vCenter.
//! - `config`: its `[[providers]]` section, checked here.

pub mod client;
pub mod config;
pub mod error;
pub mod fingerprint;
pub mod guest;
pub mod inventory;
pub mod ops;
pub mod provider;
pub mod tagging;
pub mod xml;

pub use client::{ClientConfig, MoRef, ServiceContent, VimClient};
pub use config::Config;
pub use error::{Error, Result};
pub use provider::VsphereProvider;
