//! The fact model: the versioned report an agent (or an SSH collection) sends, its
//! validation at the server, and its flattening into the `key → value` facts that are
//! diffed field by field. Volatile values (usage, uptime) stay in the report and are
//! not diffed, so the change history shows changes, not noise.

use crate::{CmdbError, Result};
use chrono::{DateTime, Utc};
use opsbot_core::Facts;
// The report pieces the asset card shows live in core, where the engine renders them.
pub use opsbot_core::asset::{Disk, Filesystem, Nic, Problem, ProblemKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report schema this build writes and accepts.
pub const SCHEMA_VERSION: u32 = 1;

/// Limits a report must keep; far above any real host, low enough that a hostile or
/// broken client cannot make the server store megabytes of facts.
pub const MAX_ITEMS: usize = 512;
pub const MAX_TEXT: usize = 4096;
pub const MAX_PLUGIN_FACTS: usize = 1000;
pub const MAX_PROBLEMS: usize = 200;

/// One collection of one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: u32,
    /// Stable identity (the agent's identity file; an SSH target's name).
    pub identity: String,
    /// The hostname now (differs from `identity` after a rename).
    pub hostname: String,
    pub agent_version: String,
    pub collected_at: DateTime<Utc>,
    /// How long the collection took.
    #[serde(default)]
    pub collection_ms: u64,
    #[serde(default)]
    pub os: Option<Os>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub filesystems: Vec<Filesystem>,
    #[serde(default)]
    pub nics: Vec<Nic>,
    #[serde(default)]
    pub board: Option<Board>,
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    /// External plug-ins' output, each under its own name (a JSON object).
    #[serde(default)]
    pub plugins: BTreeMap<String, serde_json::Value>,
    /// What could not be collected, and why.
    #[serde(default)]
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Os {
    /// `NAME` of os-release (`Debian GNU/Linux`).
    pub name: String,
    /// `ID` (`debian`).
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
    /// Kernel release (`6.1.0-18-amd64`).
    pub kernel: String,
    pub arch: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cpu {
    pub model: String,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Memory {
    pub total_bytes: u64,
    pub swap_bytes: u64,
    /// Volatile: not diffed.
    pub available_bytes: Option<u64>,
}

/// `/sys/class/dmi/id`: what the firmware says the machine is. `product_uuid` is a
/// VMware VM's BIOS UUID, which links the asset to its VM.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Board {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub product_serial: Option<String>,
    pub product_uuid: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
    pub board_serial: Option<String>,
    pub bios_version: Option<String>,
}

/// True for a valid identity / hostname: 1–253 characters of letters, digits, `-`, `_`
/// and `.`, not starting with `-` or `.`.
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// True for a plug-in namespace or a key inside one: 1–64 of `[A-Za-z0-9_-]`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl Report {
    /// Parses and validates a report as received (the body of `POST
    /// /api/v1/agent/report`), lower-casing its identity and hostname.
    pub fn parse(body: &[u8]) -> Result<Report> {
        let mut r: Report = serde_json::from_slice(body).map_err(|e| {
            CmdbError::InvalidReport(format!("not a report of schema {SCHEMA_VERSION}: {e}"))
        })?;
        r.validate()?;
        Ok(r)
    }

    /// Checks the schema version, names and limits; lower-cases identity and hostname.
    pub fn validate(&mut self) -> Result<()> {
        let bad = |m: String| Err(CmdbError::InvalidReport(m));
        if self.schema != SCHEMA_VERSION {
            return bad(format!(
                "schema {} is not supported (this server reads schema {SCHEMA_VERSION}); \
                 upgrade the agent or the server so they match",
                self.schema
            ));
        }
        self.identity = self.identity.trim().to_lowercase();
        self.hostname = self.hostname.trim().to_lowercase();
        for (field, v) in [("identity", &self.identity), ("hostname", &self.hostname)] {
            if !valid_hostname(v) {
                return bad(format!(
                    "{field} {v:?} is not a hostname (1–253 letters, digits, '-', '_', '.')"
                ));
            }
        }
        for (what, n) in [
            ("disks", self.disks.len()),
            ("filesystems", self.filesystems.len()),
            ("nics", self.nics.len()),
            ("plugins", self.plugins.len()),
        ] {
            if n > MAX_ITEMS {
                return bad(format!("{n} {what} (at most {MAX_ITEMS})"));
            }
        }
        if self.problems.len() > MAX_PROBLEMS {
            return bad(format!(
                "{} problems (at most {MAX_PROBLEMS})",
                self.problems.len()
            ));
        }
        for (name, value) in &self.plugins {
            if !valid_name(name) {
                return bad(format!(
                    "plug-in name {name:?} must be 1–64 letters, digits, '-' or '_'"
                ));
            }
            if !value.is_object() {
                return bad(format!("plug-in {name}: its facts must be a JSON object"));
            }
        }
        let facts = self.facts();
        let plugin_facts = facts.keys().filter(|k| k.starts_with("plugin.")).count();
        if plugin_facts > MAX_PLUGIN_FACTS {
            return bad(format!(
                "{plugin_facts} plug-in facts (at most {MAX_PLUGIN_FACTS})"
            ));
        }
        if let Some((k, v)) = facts
            .iter()
            .find(|(k, v)| k.len() > 191 || v.len() > MAX_TEXT)
        {
            return bad(format!(
                "fact {:?} is too long ({} characters of key, {} of value; at most 191 and {MAX_TEXT})",
                k.chars().take(60).collect::<String>(),
                k.len(),
                v.len()
            ));
        }
        Ok(())
    }

    /// The stable facts, flattened to dotted keys, for diffing and storage.
    pub fn facts(&self) -> Facts {
        let mut f = Facts::new();
        let mut put = |k: String, v: String| {
            if !v.is_empty() {
                f.insert(k, v);
            }
        };
        put("agent.version".into(), self.agent_version.clone());
        if let Some(os) = &self.os {
            put("os.name".into(), os.name.clone());
            put("os.id".into(), os.id.clone());
            put("os.version_id".into(), os.version_id.clone());
            put("os.pretty_name".into(), os.pretty_name.clone());
            put("os.kernel".into(), os.kernel.clone());
            put("os.arch".into(), os.arch.clone());
        }
        if let Some(c) = &self.cpu {
            put("cpu.model".into(), c.model.clone());
            put("cpu.sockets".into(), c.sockets.to_string());
            put("cpu.cores".into(), c.cores.to_string());
            put("cpu.threads".into(), c.threads.to_string());
        }
        if let Some(m) = &self.memory {
            put("memory.total_bytes".into(), m.total_bytes.to_string());
            put("memory.swap_bytes".into(), m.swap_bytes.to_string());
        }
        for d in &self.disks {
            let k = |s: &str| format!("disk.{}.{s}", d.name);
            put(k("size_bytes"), d.size_bytes.to_string());
            put(k("model"), d.model.clone().unwrap_or_default());
            put(k("serial"), d.serial.clone().unwrap_or_default());
            if let Some(r) = d.rotational {
                put(k("rotational"), r.to_string());
            }
            put(k("removable"), d.removable.to_string());
        }
        for fs in &self.filesystems {
            let k = |s: &str| format!("fs.{}.{s}", fs.mount);
            put(k("device"), fs.device.clone());
            put(k("fstype"), fs.fstype.clone());
            if let Some(s) = fs.size_bytes {
                put(k("size_bytes"), s.to_string());
            }
        }
        for n in &self.nics {
            let k = |s: &str| format!("nic.{}.{s}", n.name);
            put(k("mac"), n.mac.clone());
            put(k("ipv4"), n.ipv4.join(","));
            put(k("ipv6"), n.ipv6.join(","));
            if let Some(s) = n.speed_mbps {
                put(k("speed_mbps"), s.to_string());
            }
            put(k("state"), n.state.clone());
            if let Some(m) = n.mtu {
                put(k("mtu"), m.to_string());
            }
        }
        if let Some(b) = &self.board {
            for (k, v) in [
                ("sys_vendor", &b.sys_vendor),
                ("product_name", &b.product_name),
                ("product_serial", &b.product_serial),
                ("product_uuid", &b.product_uuid),
                ("board_vendor", &b.board_vendor),
                ("board_name", &b.board_name),
                ("board_serial", &b.board_serial),
                ("bios_version", &b.bios_version),
            ] {
                put(format!("board.{k}"), v.clone().unwrap_or_default());
            }
        }
        for (name, value) in &self.plugins {
            flatten_json(&format!("plugin.{name}"), value, 0, &mut put);
        }
        f
    }
}

/// Nested objects become dotted keys (at most 4 levels); arrays of scalars are joined
/// with `,`; anything deeper is kept as its JSON text.
fn flatten_json(
    prefix: &str,
    v: &serde_json::Value,
    depth: usize,
    put: &mut impl FnMut(String, String),
) {
    use serde_json::Value;
    match v {
        Value::Object(map) if depth < 4 => {
            for (k, v) in map {
                flatten_json(&format!("{prefix}.{k}"), v, depth + 1, put);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            put(prefix.to_string(), parts.join(","));
        }
        Value::Null => {}
        other => put(prefix.to_string(), scalar(other)),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Report {
        Report {
            schema: SCHEMA_VERSION,
            identity: "DB-01".into(),
            hostname: "db-01".into(),
            agent_version: "0.1.0".into(),
            collected_at: Utc::now(),
            collection_ms: 3,
            os: Some(Os {
                name: "Debian GNU/Linux".into(),
                id: "debian".into(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                kernel: "6.1.0-18-amd64".into(),
                arch: "x86_64".into(),
            }),
            cpu: Some(Cpu {
                model: "Xeon".into(),
                sockets: 2,
                cores: 40,
                threads: 80,
            }),
            memory: Some(Memory {
                total_bytes: 1 << 34,
                swap_bytes: 0,
                available_bytes: Some(1 << 33),
            }),
            disks: vec![],
            filesystems: vec![Filesystem {
                mount: "/".into(),
                device: "/dev/sda1".into(),
                fstype: "ext4".into(),
                size_bytes: Some(100),
                used_bytes: Some(40),
                avail_bytes: Some(60),
            }],
            nics: vec![],
            board: None,
            uptime_secs: Some(10),
            plugins: BTreeMap::from([(
                "raid".to_string(),
                serde_json::json!({"level": 5, "disks": ["a", "b"], "ctl": {"fw": "1.2"}}),
            )]),
            problems: vec![],
        }
    }

    #[test]
    fn round_trips_and_lowercases_identity() {
        let body = serde_json::to_vec(&sample()).unwrap();
        let r = Report::parse(&body).unwrap();
        assert_eq!(r.identity, "db-01");
    }

    #[test]
    fn volatile_values_are_not_facts() {
        let mut a = sample();
        let f1 = a.facts();
        a.uptime_secs = Some(99_999);
        a.filesystems[0].used_bytes = Some(99);
        a.memory.as_mut().unwrap().available_bytes = Some(1);
        a.collected_at = Utc::now() + chrono::Duration::hours(1);
        assert_eq!(f1, a.facts());
        assert_eq!(f1["fs./.size_bytes"], "100");
        assert_eq!(f1["plugin.raid.level"], "5");
        assert_eq!(f1["plugin.raid.disks"], "a,b");
        assert_eq!(f1["plugin.raid.ctl.fw"], "1.2");
    }

    #[test]
    fn bad_reports_say_what_is_wrong() {
        let err = |r: &Report| {
            let body = serde_json::to_vec(r).unwrap();
            Report::parse(&body).unwrap_err().to_string()
        };
        let mut r = sample();
        r.schema = 9;
        assert!(err(&r).contains("schema 9"), "{}", err(&r));
        let mut r = sample();
        r.identity = "a b".into();
        assert!(err(&r).contains("identity"));
        let mut r = sample();
        r.plugins.insert("x".into(), serde_json::json!([1]));
        assert!(err(&r).contains("JSON object"));
        let mut r = sample();
        r.plugins.insert("bad name".into(), serde_json::json!({}));
        assert!(err(&r).contains("plug-in name"));
        let mut r = sample();
        r.plugins.insert(
            "big".into(),
            serde_json::json!({"v": "x".repeat(MAX_TEXT + 1)}),
        );
        assert!(err(&r).contains("too long"));
        let e = Report::parse(b"{not json").unwrap_err().to_string();
        assert!(e.contains("not a report"), "{e}");
        let e = Report::parse(br#"{"schema":1,"identity":"a","hostname":"a","agent_version":"1","collected_at":"2026-01-01T00:00:00Z","surprise":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("surprise"), "{e}");
    }
}
