//! The normalised alert every source is read into, and its fingerprint.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alert came from (the `/alerts/<source>` of its request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    OpenFalcon,
    Alertmanager,
    Zabbix,
    Generic,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::OpenFalcon,
        Source::Alertmanager,
        Source::Zabbix,
        Source::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::OpenFalcon => "openfalcon",
            Source::Alertmanager => "alertmanager",
            Source::Zabbix => "zabbix",
            Source::Generic => "generic",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => opsbot_store::alerts::FIRING,
            Status::Resolved => opsbot_store::alerts::RESOLVED,
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "firing" | "problem" | "1" | "alert" | "alerting" => Some(Status::Firing),
            "resolved" | "ok" | "0" | "recovery" | "recovered" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// One alert as opsbot understands it, whatever its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub source: Source,
    /// Two reports with the same fingerprint are the same alert (de-duplication).
    pub fingerprint: String,
    pub status: Status,
    /// As the source says it: `P0`, `critical`, `High`…
    pub severity: String,
    /// Alert name (Alertmanager `alertname`, Zabbix subject, Open-Falcon note).
    pub name: String,
    pub summary: String,
    /// The host or instance it is about.
    pub endpoint: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// Everything else worth showing (values, links, descriptions).
    pub annotations: BTreeMap<String, String>,
    /// People the alert itself names (Open-Falcon `tos`, Zabbix `to`, generic `to`).
    pub recipients: Vec<String>,
    /// Set when the payload was only partly understood; the alert is kept and routed
    /// by the default route.
    pub parse_error: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// A stable fingerprint: `source:` and the first 16 bytes of SHA-256 over `parts`
/// (each length-prefixed, so `("ab","c")` and `("a","bc")` differ).
pub fn fingerprint(source: Source, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", source.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_unambiguous() {
        let a = fingerprint(Source::Generic, &["ab", "c"]);
        assert_eq!(a, fingerprint(Source::Generic, &["ab", "c"]));
        assert_ne!(a, fingerprint(Source::Generic, &["a", "bc"]));
        assert_ne!(a, fingerprint(Source::Zabbix, &["ab", "c"]));
        assert!(a.starts_with("generic:") && a.len() == "generic:".len() + 32);
    }

    #[test]
    fn statuses_from_every_source() {
        for s in ["firing", "PROBLEM", "1"] {
            assert_eq!(Status::parse(s), Some(Status::Firing), "{s}");
        }
        for s in ["resolved", "OK", "0"] {
            assert_eq!(Status::parse(s), Some(Status::Resolved), "{s}");
        }
        assert_eq!(Status::parse("maybe"), None);
    }
}
