//! The `[[providers]]` section of a vCenter (`kind = "vsphere"`):
//!
//! ```toml
//! [[providers]]
//! name = "vc1"
//! kind = "vsphere"
//! url = "https://vc1.example.com/sdk"
//! username = "opsbot@vsphere.local"
//! password = "…"
//! ca_file = "/etc/opsbot/vc1-ca.pem"   # the vCenter's CA
//! # insecure_tls = true                # lab only
//! task_timeout = "3h"                  # how long one vCenter task is followed
//!
//! [[providers.guest_networks]]         # what clones get besides their IP (guest.rs)
//! cidr = "192.168.2.0/24"
//! gateway = "192.168.2.1"
//!
//! [providers.windows]
//! admin_password = "…"
//! ```

use crate::client::ClientConfig;
use crate::guest::{GuestNetwork, GuestSettings, WindowsGuest};
use crate::provider::VsphereProvider;
use opsbot_core::{parse_duration, ProviderSection, SectionError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SDK URL, `https://vc1.example.com/sdk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Accept any certificate (lab only).
    #[serde(default)]
    pub insecure_tls: bool,
    /// A PEM file with the CA that signed the vCenter's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// How long to wait for one vCenter task (`30m`, `3h`; default 3h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_timeout: Option<String>,
    /// The subnets clones go into (mask, gateway, DNS by the clone's IP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guest_networks: Vec<GuestNetwork>,
    /// The Sysprep identity of Windows clones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsGuest>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("insecure_tls", &self.insecure_tls)
            .field("ca_file", &self.ca_file)
            .field("task_timeout", &self.task_timeout)
            .field("guest_networks", &self.guest_networks)
            .field("windows", &self.windows)
            .finish()
    }
}

impl Config {
    /// The guest customisation settings.
    pub fn guest_settings(&self) -> GuestSettings {
        GuestSettings {
            networks: self.guest_networks.clone(),
            windows: self.windows.clone(),
        }
    }

    /// How to reach the vCenter (checked by [`ProviderSection::validate`]).
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(
            self.url.clone().unwrap_or_default(),
            self.username.clone().unwrap_or_default(),
            self.password.clone().unwrap_or_default(),
        );
        cfg.insecure_tls = self.insecure_tls;
        cfg.ca_file = self.ca_file.as_ref().map(PathBuf::from);
        if let Some(t) = self.task_timeout.as_deref().and_then(parse_duration) {
            cfg.task_timeout = t;
        }
        cfg
    }

    /// The provider named `name`; it connects on first use, so opsbot starts while the
    /// vCenter is down.
    pub fn provider(&self, name: &str) -> VsphereProvider {
        VsphereProvider::new(name, self.client_config()).with_guest(self.guest_settings())
    }
}

impl ProviderSection for Config {
    const KIND: &'static str = "vsphere";

    fn validate(&self) -> Result<(), SectionError> {
        if let Some(t) = &self.task_timeout {
            if parse_duration(t).filter(|d| !d.is_zero()).is_none() {
                return Err(SectionError::new(
                    "task_timeout",
                    format!("{t:?} is not a duration like 30m, 3h"),
                ));
            }
        }
        let url = self.url.as_deref().unwrap_or("");
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(SectionError::new(
                "url",
                format!("{url:?} must be the vCenter SDK URL, like https://vc1.example.com/sdk"),
            ));
        }
        if self.username.as_deref().unwrap_or("").is_empty() {
            return Err(SectionError::new(
                "username",
                "is required for a vsphere provider",
            ));
        }
        if self.password.as_deref().unwrap_or("").is_empty() {
            return Err(SectionError::new(
                "password",
                "is required for a vsphere provider",
            ));
        }
        if let Some(ca) = &self.ca_file {
            if !Path::new(ca).is_file() {
                return Err(SectionError::new(
                    "ca_file",
                    format!("{ca:?} is not a readable file"),
                ));
            }
        }
        self.guest_settings()
            .validate()
            .map_err(|(key, problem)| SectionError { key, problem })
    }

    /// A vCenter changes behind opsbot's back: every 10 minutes.
    fn default_sync_period(&self) -> Option<Duration> {
        Some(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vc() -> Config {
        Config {
            url: Some("https://vc1/sdk".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            ..Config::default()
        }
    }

    #[test]
    fn problems_name_the_key() {
        assert_eq!(vc().validate(), Ok(()));
        let key = |c: Config| c.validate().unwrap_err().key;
        assert_eq!(
            key(Config {
                url: Some("vc1".into()),
                ..vc()
            }),
            "url"
        );
        assert_eq!(
            key(Config {
                password: None,
                ..vc()
            }),
            "password"
        );
        assert_eq!(
            key(Config {
                task_timeout: Some("0".into()),
                ..vc()
            }),
            "task_timeout"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", vc()).contains("\"p\""));
    }
}
