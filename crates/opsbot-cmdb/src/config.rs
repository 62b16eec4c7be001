//! The `[cmdb]` configuration section: staleness, report size, the agent's own
//! settings (`[cmdb.agent]`, read by `opsbot agent --config`) and agentless SSH
//! collection (`[cmdb.ssh]`: key, known_hosts, concurrency, timeout, schedule, hosts
//! listed or picked from the resource pool) and collection through Salt (`[cmdb.salt]`:
//! salt-api, target, interval, timeout). Validation names the key and the problem.

use crate::collect::COLLECTORS;
use opsbot_core::{parse_duration, Scope};
use opsbot_salt::{SaltApiConfig, Target};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CmdbConfig {
    /// An asset not seen for this long is flagged stale (`1d`, `12h`).
    pub stale_after: String,
    /// Reports larger than this are refused with 413.
    pub max_report_bytes: usize,
    pub agent: AgentConfig,
    pub ssh: SshConfig,
    pub salt: SaltConfig,
}

impl Default for CmdbConfig {
    fn default() -> Self {
        CmdbConfig {
            stale_after: "1d".into(),
            max_report_bytes: 1024 * 1024,
            agent: AgentConfig::default(),
            ssh: SshConfig::default(),
            salt: SaltConfig::default(),
        }
    }
}

/// `opsbot agent --config FILE` reads these; command-line flags win.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub server: Option<String>,
    pub interval: String,
    /// Folder of external plug-ins (executables printing JSON).
    pub plugins: Option<String>,
    pub plugin_timeout: String,
    /// Built-in collectors not to run.
    pub disabled_collectors: Vec<String>,
    /// Identity file and spool.
    pub state_dir: String,
    /// Reports kept while the server is away (the oldest goes beyond this).
    pub max_spool: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            server: None,
            interval: "1h".into(),
            plugins: None,
            plugin_timeout: "10s".into(),
            disabled_collectors: Vec::new(),
            state_dir: "/var/lib/opsbot-agent".into(),
            max_spool: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// How often `opsbot serve` collects (`0` = only with `opsbot collect`).
    pub schedule: String,
    pub user: String,
    pub port: u16,
    /// Private key file (key authentication only).
    pub key: Option<String>,
    /// The known_hosts file hosts are checked against; unknown or changed keys are refused.
    pub known_hosts: Option<String>,
    /// Hosts collected at once.
    pub concurrency: usize,
    /// Per host, connection and collection together.
    pub timeout: String,
    /// The OpenSSH client to run.
    pub ssh_command: String,
    pub disabled_collectors: Vec<String>,
    pub targets: Vec<SshTargetConfig>,
    /// Pick hosts from the resource pool: VMs whose scope path matches, by guest IP.
    pub pool: Vec<PoolSelector>,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            schedule: "0".into(),
            user: "root".into(),
            port: 22,
            key: None,
            known_hosts: None,
            concurrency: 10,
            timeout: "30s".into(),
            ssh_command: "ssh".into(),
            disabled_collectors: Vec::new(),
            targets: Vec::new(),
            pool: Vec::new(),
        }
    }
}

/// `[cmdb.salt]`: collection through a team's Salt master (salt-api). Off until `api` is
/// set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SaltConfig {
    /// How to reach and log in to salt-api (`api = { url = …, eauth = …, username = …,
    /// password_file = … }`).
    pub api: Option<SaltApiConfig>,
    /// Which minions: a glob on minion ids (`*`, `web*`), or what `target_type` says.
    pub target: String,
    /// `glob` (default), `grain` (`role:web`), `nodegroup` or `list` (comma-separated ids).
    pub target_type: String,
    /// How often `opsbot serve` collects (`0` = only with `opsbot collect --source salt`).
    pub interval: String,
    /// How long salt waits for the minions; one that has not answered by then is listed
    /// as not answering and left unchanged.
    pub timeout: String,
    pub disabled_collectors: Vec<String>,
    /// Grains recorded as facts (`plugin.salt.<grain>`) beside the built-in ones, so a
    /// grain set on a minion shows in the change history.
    pub grains: Vec<String>,
}

impl Default for SaltConfig {
    fn default() -> Self {
        SaltConfig {
            api: None,
            target: "*".into(),
            target_type: "glob".into(),
            interval: "1h".into(),
            timeout: "30s".into(),
            disabled_collectors: Vec::new(),
            grains: vec!["roles".into(), "saltversion".into(), "os_family".into()],
        }
    }
}

impl SaltConfig {
    /// The configured target as the salt-api client takes it.
    pub fn target(&self) -> Target {
        let t = self.target.trim().to_string();
        match self.target_type.as_str() {
            "grain" => Target::Grain(t),
            "nodegroup" => Target::Nodegroup(t),
            "list" => Target::List(
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => Target::Glob(t),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SshTargetConfig {
    /// The asset identity (default: the host).
    #[serde(default)]
    pub name: Option<String>,
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolSelector {
    /// A scope glob over `provider/datacenter/cluster/name` (`vc1/DC0/**`, `*/*/*/db-*`).
    #[serde(rename = "match")]
    pub matches: String,
    /// Only VMs in a folder matching this glob.
    #[serde(default)]
    pub folder: Option<String>,
    /// Only VMs carrying every one of these tags (`env:prod`: the pool's VM tags, vSphere
    /// tags as `category:tag` and custom attributes as `name:value`).
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

type Problem = (String, String);

fn duration(key: &str, v: &str) -> Result<Duration, Problem> {
    parse_duration(v).ok_or_else(|| {
        (
            key.to_string(),
            format!("{v:?} is not a duration like 30s, 10m, 1h, 1d"),
        )
    })
}

fn collectors(key: &str, list: &[String]) -> Result<(), Problem> {
    for (i, c) in list.iter().enumerate() {
        if !COLLECTORS.contains(&c.as_str()) {
            return Err((
                format!("{key}[{i}]"),
                format!(
                    "unknown collector {c:?}; the built-in ones are {}",
                    COLLECTORS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

impl CmdbConfig {
    /// Checks every value; the error is `(key, problem)` with keys under `cmdb.`.
    pub fn validate(&self) -> Result<(), Problem> {
        let err = |k: &str, p: String| Err((format!("cmdb.{k}"), p));
        if duration("cmdb.stale_after", &self.stale_after)?.is_zero() {
            return err("stale_after", "must be more than 0".into());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_report_bytes) {
            return err(
                "max_report_bytes",
                format!(
                    "{} is out of range (1024..=67108864)",
                    self.max_report_bytes
                ),
            );
        }
        let a = &self.agent;
        if let Some(s) = &a.server {
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                return err(
                    "agent.server",
                    format!("{s:?} must start with https:// or http://"),
                );
            }
        }
        if duration("cmdb.agent.interval", &a.interval)?.is_zero() {
            return err("agent.interval", "must be more than 0".into());
        }
        if duration("cmdb.agent.plugin_timeout", &a.plugin_timeout)?.is_zero() {
            return err("agent.plugin_timeout", "must be more than 0".into());
        }
        collectors("cmdb.agent.disabled_collectors", &a.disabled_collectors)?;
        if a.max_spool == 0 {
            return err("agent.max_spool", "must be at least 1".into());
        }
        let s = &self.ssh;
        duration("cmdb.ssh.schedule", &s.schedule)?;
        if duration("cmdb.ssh.timeout", &s.timeout)?.is_zero() {
            return err("ssh.timeout", "must be more than 0".into());
        }
        if !(1..=256).contains(&s.concurrency) {
            return err(
                "ssh.concurrency",
                format!("{} is out of range (1..=256)", s.concurrency),
            );
        }
        collectors("cmdb.ssh.disabled_collectors", &s.disabled_collectors)?;
        let has_hosts = !s.targets.is_empty() || !s.pool.is_empty();
        if has_hosts {
            for (k, v) in [("key", &s.key), ("known_hosts", &s.known_hosts)] {
                match v {
                    None => {
                        return err(
                            &format!("ssh.{k}"),
                            "is required when cmdb.ssh has targets or pool selectors".into(),
                        )
                    }
                    Some(p) if !Path::new(p).is_file() => {
                        return err(&format!("ssh.{k}"), format!("{p:?} is not a readable file"))
                    }
                    Some(_) => {}
                }
            }
        }
        for (i, t) in s.targets.iter().enumerate() {
            if t.host.trim().is_empty()
                || t.host.starts_with('-')
                || t.host.contains(char::is_whitespace)
            {
                return err(
                    &format!("ssh.targets[{i}].host"),
                    format!("{:?} is not a host name or address", t.host),
                );
            }
            if let Some(n) = &t.name {
                if !crate::facts::valid_hostname(n) {
                    return err(
                        &format!("ssh.targets[{i}].name"),
                        format!("{n:?} is not a hostname"),
                    );
                }
            }
            if let Some(u) = &t.user {
                if !valid_user(u) {
                    return err(
                        &format!("ssh.targets[{i}].user"),
                        format!("{u:?} is not a user name"),
                    );
                }
            }
        }
        for (i, p) in s.pool.iter().enumerate() {
            Scope::parse(&p.matches).map_err(|e| (format!("cmdb.ssh.pool[{i}].match"), e))?;
            if let Some(f) = &p.folder {
                Scope::parse(f).map_err(|e| (format!("cmdb.ssh.pool[{i}].folder"), e))?;
            }
            if let Some(u) = &p.user {
                if !valid_user(u) {
                    return err(
                        &format!("ssh.pool[{i}].user"),
                        format!("{u:?} is not a user name"),
                    );
                }
            }
        }
        if !valid_user(&s.user) {
            return err("ssh.user", format!("{:?} is not a user name", s.user));
        }
        let s = &self.salt;
        duration("cmdb.salt.interval", &s.interval)?;
        if duration("cmdb.salt.timeout", &s.timeout)?.is_zero() {
            return err("salt.timeout", "must be more than 0".into());
        }
        if !matches!(
            s.target_type.as_str(),
            "glob" | "grain" | "nodegroup" | "list"
        ) {
            return err(
                "salt.target_type",
                format!(
                    "{:?} is not one of glob, grain, nodegroup, list",
                    s.target_type
                ),
            );
        }
        if s.target.trim().is_empty() {
            return err(
                "salt.target",
                "must not be empty (\"*\" for every minion)".into(),
            );
        }
        collectors("cmdb.salt.disabled_collectors", &s.disabled_collectors)?;
        for (i, g) in s.grains.iter().enumerate() {
            if !crate::facts::valid_name(g) {
                return err(
                    &format!("salt.grains[{i}]"),
                    format!("{g:?} is not a grain name (letters, digits, '-', '_')"),
                );
            }
        }
        if let Some(api) = &s.api {
            api.validate()
                .map_err(|(k, p)| (format!("cmdb.salt.api.{k}"), p))?;
        }
        Ok(())
    }

    pub fn stale_after(&self) -> Duration {
        parse_duration(&self.stale_after).unwrap_or(Duration::from_secs(86_400))
    }
}

fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && !u.starts_with('-')
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        CmdbConfig::default().validate().unwrap();
        assert_eq!(
            CmdbConfig::default().stale_after(),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn problems_name_the_key() {
        let c = CmdbConfig {
            stale_after: "soon".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "cmdb.stale_after");
        let mut c = CmdbConfig::default();
        c.ssh.disabled_collectors = vec!["gpu".into()];
        let (k, p) = c.validate().unwrap_err();
        assert_eq!(k, "cmdb.ssh.disabled_collectors[0]");
        assert!(p.contains("gpu") && p.contains("nics"), "{p}");
        let mut c = CmdbConfig::default();
        c.ssh.targets.push(SshTargetConfig {
            name: None,
            host: "db-01".into(),
            port: None,
            user: None,
        });
        assert_eq!(c.validate().unwrap_err().0, "cmdb.ssh.key");
        let mut c = CmdbConfig::default();
        c.ssh.concurrency = 0;
        assert_eq!(c.validate().unwrap_err().0, "cmdb.ssh.concurrency");
        let mut c = CmdbConfig::default();
        c.ssh.targets.push(SshTargetConfig {
            name: None,
            host: "-oProxyCommand=x".into(),
            port: None,
            user: None,
        });
        c.ssh.key = Some("/etc/hostname".into());
        c.ssh.known_hosts = Some("/etc/hostname".into());
        assert_eq!(c.validate().unwrap_err().0, "cmdb.ssh.targets[0].host");
    }

    #[test]
    fn the_salt_section_reads_nested_api_settings_and_names_bad_keys() {
        let c: CmdbConfig = toml_like(
            r#"{"salt": {"api": {"url": "https://salt:8000", "username": "ops",
                 "password_file": "/etc/opsbot/salt.pw"}, "target": "role:web",
                 "target_type": "grain", "interval": "0"}}"#,
        );
        c.validate().unwrap();
        assert_eq!(c.salt.target(), Target::Grain("role:web".into()));
        assert_eq!(c.salt.api.as_ref().unwrap().eauth, "file");
        let mut bad = c.clone();
        bad.salt.target_type = "regex".into();
        assert_eq!(bad.validate().unwrap_err().0, "cmdb.salt.target_type");
        let mut bad = c.clone();
        bad.salt.api.as_mut().unwrap().url = "salt:8000".into();
        assert_eq!(bad.validate().unwrap_err().0, "cmdb.salt.api.url");
        let mut bad = c;
        bad.salt.grains.push("a.b".into());
        assert_eq!(bad.validate().unwrap_err().0, "cmdb.salt.grains[3]");
        let list = SaltConfig {
            target: "a, b".into(),
            target_type: "list".into(),
            ..SaltConfig::default()
        };
        assert_eq!(list.target(), Target::List(vec!["a".into(), "b".into()]));
    }

    fn toml_like(json: &str) -> CmdbConfig {
        serde_json::from_str(json).unwrap()
    }
}
