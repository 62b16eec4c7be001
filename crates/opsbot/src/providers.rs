//! `[[providers]]`: the keys every entry has (`name`, `kind`, `sync_interval`) and the
//! section of its kind, which the kind's crate defines, documents and checks
//! ([`ProviderSection`]). The kinds this build has are registered here, once each: a
//! variant of [`Section`] with its arms in `KINDS`, [`Section::checked`] and
//! [`Section::build`].

use figment::value::{Dict, Tag, Value};
use opsbot_core::{Provider, ProviderSection, SectionError};
use opsbot_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// One `[[providers]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Entry", into = "Entry")]
pub struct ProviderConfig {
    /// The first segment of scope paths.
    pub name: String,
    /// How often `opsbot serve` re-syncs (`30s`, `10m`, `1h`; `0` = never); the kind
    /// has a default.
    pub sync_interval: Option<String>,
    pub section: Section,
}

/// A kind's own keys, by `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    Sim(opsbot_sim::Config),
    Vsphere(opsbot_vsphere::Config),
    /// Kubernetes clusters: no VM provider; their workloads come in as the Kubernetes
    /// subsystem, which the binary builds from every such section ([`kubernetes`]).
    Kubernetes(opsbot_kube::Config),
    /// A kind this build does not have, kept so that validation refuses it at its key.
    Unknown(String),
}

type Read = fn(&Value) -> Result<Section, String>;

/// The kinds this build has, with how their sections are read.
const KINDS: &[(&str, Read)] = &[
    (opsbot_sim::Config::KIND, |v| read(v).map(Section::Sim)),
    (opsbot_vsphere::Config::KIND, |v| {
        read(v).map(Section::Vsphere)
    }),
    (opsbot_kube::Config::KIND, |v| {
        read(v).map(Section::Kubernetes)
    }),
];

/// Kinds announced but not built yet, refused with a message of their own.
const COMING: &[&str] = &[];

/// What the binary does with every kind's section.
trait Kind {
    fn kind(&self) -> &'static str;
    fn validate(&self) -> Result<(), SectionError>;
    fn default_sync_period(&self) -> Option<Duration>;
    /// The section's keys (a plain table: serialising it cannot fail).
    fn keys(&self) -> Dict;
}

impl<T: ProviderSection> Kind for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }
    fn validate(&self) -> Result<(), SectionError> {
        ProviderSection::validate(self)
    }
    fn default_sync_period(&self) -> Option<Duration> {
        ProviderSection::default_sync_period(self)
    }
    fn keys(&self) -> Dict {
        match Value::serialize(self) {
            Ok(Value::Dict(_, keys)) => keys,
            _ => Dict::new(),
        }
    }
}

impl Section {
    /// The section as the kind's crate sees it; the name of a kind this build lacks.
    fn checked(&self) -> Result<&dyn Kind, &str> {
        match self {
            Section::Sim(c) => Ok(c),
            Section::Vsphere(c) => Ok(c),
            Section::Kubernetes(c) => Ok(c),
            Section::Unknown(kind) => Err(kind),
        }
    }

    /// The provider (no I/O: providers connect on first use, so opsbot starts while a
    /// cluster is down).
    fn build(&self, name: &str, store: &Arc<dyn Store>) -> Option<Arc<dyn Provider>> {
        Some(match self {
            Section::Sim(c) => Arc::new(c.provider(name, store.clone())),
            Section::Vsphere(c) => Arc::new(c.provider(name)),
            Section::Kubernetes(_) | Section::Unknown(_) => return None,
        })
    }
}

impl ProviderConfig {
    /// The `kind` value.
    pub fn kind(&self) -> &str {
        match self.section.checked() {
            Ok(k) => k.kind(),
            Err(kind) => kind,
        }
    }

    /// Checks the entry's kind and section; the key is below `providers[i].`.
    pub fn validate(&self) -> Result<(), SectionError> {
        match self.section.checked() {
            Ok(k) => k.validate(),
            Err(kind) if COMING.contains(&kind) => Err(SectionError::new(
                "kind",
                format!("{kind:?} providers are not available in this build yet"),
            )),
            Err(kind) => {
                let known: Vec<String> = KINDS
                    .iter()
                    .map(|(k, _)| *k)
                    .chain(COMING.iter().copied())
                    .map(|k| format!("{k:?}"))
                    .collect();
                Err(SectionError::new(
                    "kind",
                    format!("{kind:?} is not one of {}", known.join(", ")),
                ))
            }
        }
    }

    /// The scheduled-sync period: the configured one, else the kind's default.
    pub fn sync_period(&self) -> Option<Duration> {
        match &self.sync_interval {
            Some(s) => opsbot_core::parse_duration(s).filter(|d| !d.is_zero()),
            None => self.section.checked().ok()?.default_sync_period(),
        }
    }

    /// The provider this entry configures (validated: its kind is one this build has).
    pub fn build(&self, store: &Arc<dyn Store>) -> Option<Arc<dyn Provider>> {
        self.section.build(&self.name, store)
    }
}

/// The kubernetes sections, by provider name: what the Kubernetes subsystem is built
/// from.
pub fn kubernetes(providers: &[ProviderConfig]) -> Vec<(String, opsbot_kube::Config)> {
    providers
        .iter()
        .filter_map(|p| match &p.section {
            Section::Kubernetes(c) => Some((p.name.clone(), c.clone())),
            _ => None,
        })
        .collect()
}

/// An entry as written: the common keys, and the rest for the kind to read.
#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync_interval: Option<String>,
    #[serde(flatten)]
    keys: Dict,
}

/// Reads a kind's section. The error names the key within it: the path figment gives
/// ends at the entry.
fn read<T: ProviderSection>(keys: &Value) -> Result<T, String> {
    keys.deserialize().map_err(|e: figment::Error| {
        let kind = e.kind.to_string();
        match e.path.join(".") {
            key if key.is_empty() => kind,
            key => format!("{key}: {kind}"),
        }
    })
}

impl TryFrom<Entry> for ProviderConfig {
    type Error = String;

    fn try_from(e: Entry) -> Result<Self, String> {
        let section = match KINDS.iter().find(|(k, _)| *k == e.kind) {
            Some((_, read)) => read(&Value::Dict(Tag::Default, e.keys))?,
            None => Section::Unknown(e.kind),
        };
        Ok(ProviderConfig {
            name: e.name,
            sync_interval: e.sync_interval,
            section,
        })
    }
}

impl From<ProviderConfig> for Entry {
    fn from(p: ProviderConfig) -> Self {
        let kind = p.kind().to_string();
        let keys = p.section.checked().map(Kind::keys).unwrap_or_default();
        Entry {
            name: p.name,
            kind,
            sync_interval: p.sync_interval,
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str) -> ProviderConfig {
        ProviderConfig {
            name: "p".into(),
            sync_interval: None,
            section: match kind {
                "sim" => Section::Sim(opsbot_sim::Config::default()),
                other => Section::Unknown(other.into()),
            },
        }
    }

    #[test]
    fn kinds_this_build_lacks_are_refused_at_kind() {
        let e = entry("openstack").validate().unwrap_err();
        assert_eq!(e.key, "kind");
        assert_eq!(
            e.problem,
            "\"openstack\" is not one of \"sim\", \"vsphere\", \"kubernetes\""
        );
        assert_eq!(entry("sim").validate(), Ok(()));
    }

    #[test]
    fn entries_round_trip_through_the_table() {
        let mut p = entry("sim");
        p.section = Section::Sim(opsbot_sim::Config {
            time_scale: Some(0.5),
        });
        p.sync_interval = Some("1m".into());
        let back: ProviderConfig = Value::serialize(&p).unwrap().deserialize().unwrap();
        assert_eq!(back, p);
        assert_eq!(back.sync_period(), Some(Duration::from_secs(60)));
    }
}
