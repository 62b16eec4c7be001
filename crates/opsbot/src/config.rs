//! Configuration: embedded defaults → TOML file → `OPSBOT_*` environment variables
//! (`__` separates levels: `OPSBOT_STORE__URL`). Every problem is reported with the
//! file, the key and what is wrong, and opsbot refuses to start.

use anyhow::{bail, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use opsbot_core::{Policy, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub sessions: SessionsConfig,
    pub wecom: WecomConfig,
    pub wechat: opsbot_channels::mp::WechatConfig,
    pub providers: Vec<ProviderConfig>,
    pub roles: Vec<RoleConfig>,
    pub users: Vec<Binding>,
    pub chats: Vec<Binding>,
    pub chat: ChatConfig,
    /// The alert gateway; absent = not served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<opsbot_alerts::AlertsConfig>,
    pub web: opsbot_http::WebConfig,
    pub cmdb: opsbot_cmdb::config::CmdbConfig,
    /// Deploy projects (`[[deploy.projects]]`) and where builds and artefacts live.
    pub deploy: opsbot_deploy::DeployConfig,
    pub security: SecurityConfig,
    pub jobs: JobsConfig,
    pub pool: PoolConfig,
    /// The numeric menu tree (`[[menu]]`, nested `[[menu.children]]`); empty: the
    /// built-in menu.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub menu: Vec<opsbot_engine::menu::MenuItem>,
}

/// `[security]`: where the secret key that signs tokens and web logins is kept (never
/// in the store). `$OPSBOT_SECRET_KEY`, when set, holds the key itself and wins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The key file (mode 0600), made on first use; relative paths are from the
    /// working directory, like the default SQLite store's `data/`.
    pub key_file: String,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            key_file: "data/opsbot.key".into(),
        }
    }
}

/// `[pool]`: how the resource pool is read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// The tag key whose values name the business systems (services) VMs serve:
    /// `app` groups `app:erp` and `app:crm` into the services erp and crm (`服务`).
    pub service_tag: String,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            service_tag: "app".into(),
        }
    }
}

impl PoolConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        let key = self.service_tag.trim();
        if key.is_empty() || key.contains([':', ',']) {
            return Err((
                "pool.service_tag".into(),
                format!(
                    "{:?} is not a tag key: give the part before ':' of tags like app:erp",
                    self.service_tag
                ),
            ));
        }
        Ok(())
    }
}

/// `[jobs]`: how the jobs of a process that died are noticed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// A running job whose process has not refreshed its heartbeat for this long is
    /// marked interrupted by any running instance (and its asker told).
    pub stale_after: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            stale_after: "2m".into(),
        }
    }
}

impl SecurityConfig {
    pub fn key_source(&self) -> opsbot_auth::KeySource {
        opsbot_auth::KeySource::from_env_or(&self.key_file)
    }
}

impl JobsConfig {
    /// The shortest and longest `stale_after` taken: heartbeats come every eighth of it.
    const STALE_RANGE: (std::time::Duration, std::time::Duration) = (
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(86_400),
    );

    pub fn stale_after(&self) -> std::time::Duration {
        parse_duration(&self.stale_after).unwrap_or(std::time::Duration::from_secs(120))
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let (min, max) = Self::STALE_RANGE;
        match parse_duration(&self.stale_after) {
            Some(d) if (min..=max).contains(&d) => Ok(()),
            _ => Err((
                "jobs.stale_after".into(),
                format!(
                    "{:?} is not a duration from 2s to 24h, like 2m",
                    self.stale_after
                ),
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: Option<String>,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's head (and a kept-alive connection
    /// may sit idle).
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body, counted from its head.
    pub body_timeout_secs: u64,
}

impl ServerConfig {
    /// The HTTP server's limits as configured.
    pub fn limits(&self) -> opsbot_http::ServeLimits {
        opsbot_http::ServeLimits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_secs),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    pub backend: String,
    pub url: Option<String>,
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WecomConfig {
    pub apps: Vec<opsbot_channels::wecom::AppConfig>,
    pub bots: Vec<opsbot_channels::wecom_bot::BotConfig>,
    /// How long a WeCom API call may take before its outcome counts as unknown.
    pub api_timeout: String,
    /// How long an instance's claim on an outbox item lasts: when an instance dies or
    /// freezes while holding items, another sends them after this. Raised to at least
    /// four `api_timeout`s (a token fetch, the send, a refetch and one more send).
    pub delivery_lease: String,
}

impl Default for WecomConfig {
    fn default() -> Self {
        WecomConfig {
            apps: Vec::new(),
            bots: Vec::new(),
            api_timeout: "10s".into(),
            delivery_lease: "2m".into(),
        }
    }
}

impl WecomConfig {
    /// The app channel's settings: the defaults with this section's timings.
    pub fn app_settings(&self) -> opsbot_channels::wecom::Settings {
        let mut s = opsbot_channels::wecom::Settings::default();
        if let Some(d) = parse_duration(&self.api_timeout) {
            s.api_timeout = d;
        }
        if let Some(d) = parse_duration(&self.delivery_lease) {
            s.retry.lease = d;
        }
        s
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let secs = std::time::Duration::from_secs;
        for (key, value, min, max, example) in [
            (
                "wecom.api_timeout",
                &self.api_timeout,
                secs(1),
                secs(60),
                "10s",
            ),
            (
                "wecom.delivery_lease",
                &self.delivery_lease,
                secs(1),
                secs(3600),
                "2m",
            ),
        ] {
            match parse_duration(value) {
                Some(d) if (min..=max).contains(&d) => {}
                _ => {
                    return Err((
                        key.into(),
                        format!(
                            "{value:?} is not a duration from {}s to {}s, like {example}",
                            min.as_secs(),
                            max.as_secs()
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

pub use crate::providers::ProviderConfig;
pub use opsbot_core::parse_duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub name: String,
    pub commands: Vec<String>,
    #[serde(default = "all_scopes")]
    pub scopes: Vec<String>,
}

fn all_scopes() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub id: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Commands that ask for confirmation; absent = the destructive ones.
    pub confirm: Option<Vec<String>>,
    /// Subnets (or addresses) `ping:<address>` may reach from this host besides the
    /// asker's VMs; empty = VMs only.
    pub ping_allow: Vec<String>,
    /// The zone chat shows times in: an IANA name (`Asia/Shanghai`), an offset
    /// (`+08:00`), or `local` (the default: the machine's zone).
    pub timezone: Option<String>,
    /// Messages carry buttons where the channel shows cards (WeCom apps and smart
    /// robots): confirmations get 确认 / 取消, and clicks on any card's buttons run.
    /// Off: every confirmation is typed and every button refuses.
    pub buttons: bool,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            confirm: None,
            ping_allow: Vec::new(),
            timezone: None,
            buttons: true,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = opsbot_http::ServeLimits::default();
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_connections: limits.max_connections,
            header_timeout_secs: limits.header_timeout.as_secs(),
            body_timeout_secs: limits.body_timeout.as_secs(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://data/opsbot.db".into(),
        }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            backend: "memory".into(),
            url: None,
            ttl_secs: 600,
        }
    }
}

impl Default for Config {
    /// Sections only; the embedded cluster and administrator are added by
    /// [`Config::embedded`] when no file is given.
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            sessions: SessionsConfig::default(),
            wecom: WecomConfig::default(),
            wechat: opsbot_channels::mp::WechatConfig::default(),
            providers: Vec::new(),
            roles: Vec::new(),
            users: Vec::new(),
            chats: Vec::new(),
            chat: ChatConfig::default(),
            alerts: None,
            web: opsbot_http::WebConfig::default(),
            cmdb: opsbot_cmdb::config::CmdbConfig::default(),
            deploy: opsbot_deploy::DeployConfig::default(),
            security: SecurityConfig::default(),
            jobs: JobsConfig::default(),
            pool: PoolConfig::default(),
            menu: Vec::new(),
        }
    }
}

/// The user `opsbot chat` acts as without a configuration file.
pub const LOCAL_ADMIN: &str = "local";

/// Top-level keys the environment may override; other `OPSBOT_*` variables (such as
/// the test suite's) are not configuration.
const ENV_SECTIONS: &[&str] = &[
    "server", "store", "sessions", "chat", "alerts", "web", "cmdb", "deploy", "security", "jobs",
    "pool",
];

/// The built-in menu's 容器管理 entry, added when a Kubernetes cluster is configured.
const KUBE_MENU: &str = include_str!("kube_menu.toml");

impl Config {
    /// The embedded defaults: SQLite under ./data, in-memory sessions, the simulated
    /// cluster, and a local administrator.
    pub fn embedded() -> Self {
        Config {
            providers: vec![ProviderConfig {
                name: "sim".into(),
                sync_interval: None,
                section: crate::providers::Section::Sim(opsbot_sim::Config::default()),
            }],
            roles: vec![RoleConfig {
                name: "admin".into(),
                commands: vec!["*".into()],
                scopes: all_scopes(),
            }],
            users: vec![Binding {
                id: LOCAL_ADMIN.into(),
                roles: vec!["admin".into()],
            }],
            ..Config::default()
        }
    }

    /// Loads `file` (or the embedded defaults), applies the environment, validates.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let base = match file {
            Some(_) => Config::default(),
            None => Config::embedded(),
        };
        let mut fig = Figment::from(Serialized::defaults(base));
        let origin = match file {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {}: not found or not a file", path.display());
                }
                fig = fig.merge(Toml::file_exact(path));
                path.display().to_string()
            }
            None => "embedded defaults".to_string(),
        };
        let env = Env::prefixed("OPSBOT_")
            .filter(|k| {
                ENV_SECTIONS
                    .iter()
                    .any(|s| k.as_str().to_lowercase().starts_with(&format!("{s}__")))
            })
            .split("__");
        fig = fig.merge(env);
        let config: Config = fig.extract().map_err(|e| {
            let problems: Vec<String> = e.into_iter().map(|e| describe_figment(&e)).collect();
            anyhow::anyhow!("config {origin}: {}", problems.join("; "))
        })?;
        config
            .validate()
            .map_err(|(key, problem)| anyhow::anyhow!("config {origin}: key {key}: {problem}"))?;
        Ok(config)
    }

    /// Semantic checks serde cannot do. Returns the key and the problem.
    fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, p: String| Err((k.to_string(), p));
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return err(
                "server.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    self.server.listen
                ),
            );
        }
        if let Some(u) = &self.server.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return err(
                    "server.public_url",
                    format!("{u:?} must start with http:// or https://"),
                );
            }
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return err(
                "server.max_connections",
                format!(
                    "{} is out of range (1..=1000000)",
                    self.server.max_connections
                ),
            );
        }
        for (key, secs, max) in [
            (
                "server.header_timeout_secs",
                self.server.header_timeout_secs,
                600,
            ),
            (
                "server.body_timeout_secs",
                self.server.body_timeout_secs,
                3600,
            ),
        ] {
            if !(1..=max).contains(&secs) {
                return err(key, format!("{secs} is out of range (1..={max})"));
            }
        }
        let scheme = self.store.url.split(':').next().unwrap_or("");
        if !["sqlite", "postgres", "postgresql", "mysql", "mariadb"].contains(&scheme) {
            return err(
                "store.url",
                "must start with sqlite://, postgres:// or mysql://".into(),
            );
        }
        match self.sessions.backend.as_str() {
            "memory" => {}
            "redis" => match &self.sessions.url {
                Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {}
                Some(_) => {
                    return err(
                        "sessions.url",
                        "must start with redis:// or rediss://".into(),
                    )
                }
                None => {
                    return err(
                        "sessions.url",
                        "is required when sessions.backend = \"redis\"".into(),
                    )
                }
            },
            other => {
                return err(
                    "sessions.backend",
                    format!("{other:?} is not one of \"memory\", \"redis\""),
                )
            }
        }
        if !(1..=7 * 86_400).contains(&self.sessions.ttl_secs) {
            return err(
                "sessions.ttl_secs",
                format!("{} is out of range (1..=604800)", self.sessions.ttl_secs),
            );
        }
        opsbot_channels::wecom::validate(&self.wecom.apps)?;
        opsbot_channels::wecom_bot::validate(&self.wecom.bots)?;
        opsbot_channels::mp::validate(&self.wechat.mp, |u| self.users.iter().any(|b| b.id == u))?;
        self.alert_settings()?;
        self.check_remediation_people()?;
        let mut names = HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let k = |f: &str| format!("providers[{i}].{f}");
            if !is_ident(&p.name) {
                return err(
                    &k("name"),
                    format!(
                        "{:?} must be letters, digits, - or _ (it starts scope paths)",
                        p.name
                    ),
                );
            }
            if !names.insert(p.name.clone()) {
                return err(&k("name"), format!("duplicate provider name {:?}", p.name));
            }
            if let Some(iv) = &p.sync_interval {
                if parse_duration(iv).is_none() {
                    return err(
                        &k("sync_interval"),
                        format!("{iv:?} is not a duration like 30s, 10m, 1h"),
                    );
                }
            }
            p.validate().map_err(|e| (k(&e.key), e.problem))?;
        }
        self.policy()?;
        let app_names: Vec<String> = self
            .wecom
            .apps
            .iter()
            .map(|a| a.callback.name.clone())
            .collect();
        let user_ids: Vec<String> = self.users.iter().map(|u| u.id.clone()).collect();
        self.web.validate(opsbot_http::config::Context {
            wecom_apps: &app_names,
            users: &user_ids,
            public_url: self.server.public_url.as_deref(),
        })?;
        self.cmdb.validate()?;
        if let Err(e) = self.deploy.validate() {
            // The message names its key (`deploy.projects[0].deploy_root: …`).
            let (key, problem) = e.split_once(": ").unwrap_or(("deploy", e.as_str()));
            return err(key, problem.to_string());
        }
        for (i, net) in self.chat.ping_allow.iter().enumerate() {
            if let Err(e) = opsbot_auth::parse_cidr(net) {
                return err(&format!("chat.ping_allow[{i}]"), e.to_string());
            }
        }
        if let Some(tz) = &self.chat.timezone {
            if let Err(e) = opsbot_core::Zone::parse(tz) {
                return err("chat.timezone", e);
            }
        }
        if self.security.key_file.trim().is_empty() {
            return err(
                "security.key_file",
                "must not be empty (default data/opsbot.key)".into(),
            );
        }
        self.jobs.validate()?;
        self.pool.validate()?;
        self.wecom.validate()?;
        self.menu_tree().map_err(|e| (e.key, e.problem))?;
        if let Some(list) = &self.chat.confirm {
            for (i, c) in list.iter().enumerate() {
                if crate::app::canonical_name(c).is_none() {
                    return err(
                        &format!("chat.confirm[{i}]"),
                        format!("unknown command {c:?}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The permission policy, with command aliases resolved to canonical names.
    pub fn policy(&self) -> Result<Policy, (String, String)> {
        let mut roles = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in self.roles.iter().enumerate() {
            if !seen.insert(r.name.clone()) {
                return Err((
                    format!("roles[{i}].name"),
                    format!("duplicate role {:?}", r.name),
                ));
            }
            let mut commands = Vec::new();
            for (j, c) in r.commands.iter().enumerate() {
                match crate::app::canonical_name(c) {
                    Some(n) => commands.push(n.to_string()),
                    None => {
                        return Err((
                            format!("roles[{i}].commands[{j}]"),
                            format!(
                                "unknown command {c:?}; see `opsbot chat -c 帮助` for the names"
                            ),
                        ))
                    }
                }
            }
            for (j, s) in r.scopes.iter().enumerate() {
                opsbot_core::Scope::parse(s).map_err(|e| (format!("roles[{i}].scopes[{j}]"), e))?;
            }
            roles.push(Role {
                name: r.name.clone(),
                commands,
                scopes: r.scopes.clone(),
            });
        }
        let bindings = |list: &[Binding],
                        what: &str|
         -> Result<BTreeMap<String, Vec<String>>, (String, String)> {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (i, b) in list.iter().enumerate() {
                if b.id.trim().is_empty() {
                    return Err((format!("{what}[{i}].id"), "must not be empty".into()));
                }
                for (j, role) in b.roles.iter().enumerate() {
                    if !seen.contains(role) {
                        return Err((
                            format!("{what}[{i}].roles[{j}]"),
                            format!("unknown role {role:?}"),
                        ));
                    }
                }
                map.entry(b.id.clone())
                    .or_default()
                    .extend(b.roles.iter().cloned());
            }
            Ok(map)
        };
        let users = bindings(&self.users, "users")?;
        let chats = bindings(&self.chats, "chats")?;
        Policy::new(roles, users, chats).map_err(|e| ("roles".to_string(), e))
    }

    /// The alert gateway's checked settings, when `[alerts]` is configured.
    pub fn alert_settings(
        &self,
    ) -> Result<Option<opsbot_alerts::config::Settings>, (String, String)> {
        let Some(alerts) = &self.alerts else {
            return Ok(None);
        };
        let apps: Vec<&str> = self
            .wecom
            .apps
            .iter()
            .map(|a| a.callback.name.as_str())
            .collect();
        alerts
            .compile(&apps)
            .map(Some)
            .map_err(|e| (e.key, e.problem))
    }

    /// The alert remediation rules name roles and a service identity the policy must
    /// know: a typo would otherwise leave a button nobody may use, or an automatic
    /// remediation that is always refused.
    fn check_remediation_people(&self) -> Result<(), (String, String)> {
        let Some(alerts) = &self.alerts else {
            return Ok(());
        };
        for (i, r) in alerts.remediations.iter().enumerate() {
            for (j, role) in r.roles.iter().enumerate() {
                if !self.roles.iter().any(|known| known.name == role.trim()) {
                    return Err((
                        format!("alerts.remediations[{i}].roles[{j}]"),
                        format!("no [[roles]] entry is named {role:?}"),
                    ));
                }
            }
        }
        if let Some(user) = &alerts.remediation_user {
            if !self.users.iter().any(|u| u.id == user.trim()) {
                return Err((
                    "alerts.remediation_user".into(),
                    format!(
                        "{user:?} is not a [[users]] id: add it with a role allowed to run the automatic remediations' commands"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `[chat] ping_allow`, parsed (checked by [`Config::validate`]).
    pub fn ping_allow(&self) -> Vec<ipnet::IpNet> {
        self.chat
            .ping_allow
            .iter()
            .filter_map(|n| opsbot_auth::parse_cidr(n).ok())
            .collect()
    }

    /// `[chat] timezone` (checked by [`Config::validate`]); the machine's by default.
    pub fn zone(&self) -> opsbot_core::Zone {
        self.chat
            .timezone
            .as_deref()
            .and_then(|z| opsbot_core::Zone::parse(z).ok())
            .unwrap_or_default()
    }

    /// The menu tree, checked: its command names against the engine's and the
    /// subsystems' commands, its templates against the variables bound above them.
    /// (Its sources are checked once the subsystems are registered: `Engine::check_menu`.)
    pub fn menu_tree(
        &self,
    ) -> Result<std::sync::Arc<opsbot_engine::menu::MenuTree>, opsbot_engine::menu::MenuError> {
        use opsbot_engine::menu::MenuTree;
        let known = |word: &str| crate::app::canonical_name(word).is_some();
        if !self.menu.is_empty() {
            return MenuTree::compile(&self.menu, &known).map(std::sync::Arc::new);
        }
        if crate::providers::kubernetes(&self.providers).is_empty() {
            return Ok(MenuTree::builtin());
        }
        // With a cluster configured, the built-in menu gains 容器管理.
        let mut items = MenuTree::builtin_items();
        items.extend(
            opsbot_engine::menu::items_of(KUBE_MENU).expect("the embedded 容器管理 menu parses"),
        );
        MenuTree::compile(&items, &known).map(std::sync::Arc::new)
    }

    /// Canonical names of the commands that ask for confirmation.
    pub fn confirm_commands(&self) -> HashSet<String> {
        match &self.chat.confirm {
            None => crate::app::default_confirm(),
            Some(list) => list
                .iter()
                .filter_map(|c| crate::app::canonical_name(c))
                .map(str::to_string)
                .collect(),
        }
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One figment error as "key X: problem (in FILE)".
fn describe_figment(e: &figment::Error) -> String {
    let key = if e.path.is_empty() {
        "(top level)".to_string()
    } else {
        e.path.join(".")
    };
    let source = e
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            // The file is already named at the front of the message.
            Some(figment::Source::File(_)) => String::new(),
            _ => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    format!("key {key}: {}{source}", e.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(toml: &str) -> Result<Config> {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        Config::load(Some(f.path()))
    }

    #[test]
    fn server_limits_have_defaults_and_are_checked() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.server.limits(), opsbot_http::ServeLimits::default());
        let c = load_str("[server]\nmax_connections = 100\nheader_timeout_secs = 5\n").unwrap();
        assert_eq!(c.server.limits().max_connections, 100);
        assert_eq!(c.server.limits().header_timeout.as_secs(), 5);
        for key in [
            "max_connections",
            "header_timeout_secs",
            "body_timeout_secs",
        ] {
            let e = load_str(&format!("[server]\n{key} = 0\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("key server.{key}: 0 is out of range")),
                "{e}"
            );
        }
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.store.url, "sqlite://data/opsbot.db");
        assert_eq!(c.sessions.backend, "memory");
        assert_eq!(c.sessions.ttl_secs, 600);
        assert_eq!(c.providers[0].kind(), "sim");
        assert!(c.policy().unwrap().can_run(LOCAL_ADMIN, None, "克隆"));
    }

    #[test]
    fn buttons_are_on_unless_turned_off() {
        assert!(Config::load(None).unwrap().chat.buttons);
        assert!(
            load_str("[chat]\ntimezone = \"UTC\"\n")
                .unwrap()
                .chat
                .buttons
        );
        assert!(!load_str("[chat]\nbuttons = false\n").unwrap().chat.buttons);
        let e = load_str("[chat]\nbuttons = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("buttons"), "{e}");
    }

    #[test]
    fn spec_example_parses() {
        let c = load_str(
            r#"
[server]
listen = "127.0.0.1:8080"
public_url = "https://ops.example.com"
[store]
url = "sqlite://data/opsbot.db"
[sessions]
backend = "redis"
url = "redis://127.0.0.1:6379/0"
ttl_secs = 600
[[wecom.apps]]
name = "ops"
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "s"
token = "t"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "operator"
commands = ["概况", "查", "开机", "poweroff"]
scopes = ["vc1/DC0/**"]
[[users]]
id = "zhangsan"
roles = ["operator"]
[[chats]]
id = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
roles = ["operator"]
"#,
        )
        .unwrap();
        let p = c.policy().unwrap();
        assert!(
            p.allows("zhangsan", None, "关机", "vc1/DC0/C/vm"),
            "alias poweroff maps to 关机"
        );
        assert!(!p.can_run("lisi", None, "概况"));
    }

    #[test]
    fn web_section_is_read_and_checked() {
        let c = load_str("[web]\nsession_ttl_secs = 3600\nrate_limit_per_minute = 100\n").unwrap();
        assert_eq!(c.web.session_ttl_secs, 3600);
        assert_eq!(c.web.rate_limit_per_minute, 100);
        let e = load_str("[web]\nsession_ttl_secs = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key web.session_ttl_secs"), "{e}");
        let e = load_str("[web]\nadmin_pasword_hash = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin_pasword_hash"), "{e}");
    }

    #[test]
    fn cmdb_section_is_read_and_checked() {
        let c =
            load_str("[cmdb]\nstale_after = \"12h\"\n[cmdb.agent]\ninterval = \"5m\"\n").unwrap();
        assert_eq!(
            c.cmdb.stale_after(),
            std::time::Duration::from_secs(12 * 3600)
        );
        assert_eq!(c.cmdb.agent.interval, "5m");
        let e = load_str("[cmdb.ssh]\nconcurrency = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cmdb.ssh.concurrency") && e.contains(".toml"),
            "{e}"
        );
        let e = load_str("[cmdb.ssh]\nfoo = 1\n").unwrap_err().to_string();
        assert!(e.contains("foo"), "{e}");
    }

    #[test]
    fn pool_section_names_the_service_tag() {
        assert_eq!(load_str("").unwrap().pool.service_tag, "app");
        let c = load_str("[pool]\nservice_tag = \"system\"\n").unwrap();
        assert_eq!(c.pool.service_tag, "system");
        let e = load_str("[pool]\nservice_tag = \"app:\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key pool.service_tag"), "{e}");
    }

    #[test]
    fn jobs_section_is_read_and_checked() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(load_str("").unwrap().jobs.stale_after(), secs(120));
        let c = load_str("[jobs]\nstale_after = \"30s\"\n").unwrap();
        assert_eq!(c.jobs.stale_after(), secs(30));
        for bad in ["1s", "2d", "soon"] {
            let e = load_str(&format!("[jobs]\nstale_after = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("key jobs.stale_after"), "{e}");
        }
    }

    #[test]
    fn wecom_delivery_timings_are_read_and_checked() {
        let secs = std::time::Duration::from_secs;
        let d = load_str("").unwrap().wecom.app_settings();
        assert_eq!((d.api_timeout, d.retry.lease), (secs(10), secs(120)));
        let c = load_str("[wecom]\napi_timeout = \"2s\"\ndelivery_lease = \"5s\"\n").unwrap();
        let s = c.wecom.app_settings();
        assert_eq!((s.api_timeout, s.retry.lease), (secs(2), secs(5)));
        for (key, bad) in [
            ("api_timeout", "0s"),
            ("delivery_lease", "2d"),
            ("api_timeout", "soon"),
        ] {
            let e = load_str(&format!("[wecom]\n{key} = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("key wecom.{key}")), "{e}");
        }
    }

    #[test]
    fn provider_kinds_and_sections_are_checked_by_their_crates() {
        let e = load_str("[[providers]]\nname = \"k8s\"\nkind = \"kubernetes\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                ".toml: key providers[0].kubeconfig: one of kubeconfig, in_cluster = true or url is required"
            ),
            "{e}"
        );
        let sim = "[[providers]]\nname = \"sim\"\nkind = \"sim\"\n";
        let e = load_str(&format!("{sim}time_scale = 500\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key providers[0].time_scale: 500 is out of range"),
            "{e}"
        );
        let e = load_str(&format!("{sim}url = \"https://vc1/sdk\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key providers.0: url: unknown field"), "{e}");
        let vc = "[[providers]]\nname = \"vc1\"\nkind = \"vsphere\"\nusername = \"u\"\npassword = \"p\"\n";
        let e = load_str(&format!("{vc}url = 5\n")).unwrap_err().to_string();
        assert!(e.contains("url: invalid type"), "{e}");
        let e = load_str(vc).unwrap_err().to_string();
        assert!(
            e.contains("key providers[0].url: \"\" must be the vCenter SDK URL"),
            "{e}"
        );
        let ok = load_str(&format!(
            "{vc}url = \"https://vc1/sdk\"\nsync_interval = \"0\"\n"
        ))
        .unwrap();
        assert_eq!(ok.providers[0].kind(), "vsphere");
        assert_eq!(ok.providers[0].sync_period(), None);
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = load_str("[sessions]\nttl_secs = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sessions.ttl_secs") && e.contains(".toml"),
            "{e}"
        );
        let e = load_str("[sessions]\nbackend = \"memcached\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sessions.backend") && e.contains("memcached"),
            "{e}"
        );
        let e = load_str("[strore]\nurl = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("strore"), "{e}");
        let e = load_str("[[roles]]\nname = \"r\"\ncommands = [\"开机\", \"fly\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("roles[0].commands[1]") && e.contains("fly"),
            "{e}"
        );
        let e = load_str("[[users]]\nid = \"u\"\nroles = [\"ghost\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("users[0].roles[0]") && e.contains("ghost"),
            "{e}"
        );
        let e = load_str("[[wecom.apps]]\nname=\"a\"\ncorp_id=\"c\"\nagent_id=1\nsecret=\"s\"\ntoken=\"t\"\nencoding_aes_key=\"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wecom.apps[0].encoding_aes_key"), "{e}");
        let vc = "[[providers]]\nname = \"vc1\"\nkind = \"vsphere\"\nurl = \"https://vc1/sdk\"\nusername = \"u\"\npassword = \"p\"\n";
        let e = load_str(&format!("{vc}task_timeout = \"forever\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers[0].task_timeout"), "{e}");
        let e = load_str(&format!(
            "{vc}[[providers.guest_networks]]\ncidr = \"192.168.2.0/24\"\ngateway = \"192.168.3.1\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("providers[0].guest_networks[0].gateway")
                && e.contains("not in 192.168.2.0/24"),
            "{e}"
        );
        let e = load_str(&format!("{vc}[providers.windows]\nadmin_password = \"\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers[0].windows.admin_password"), "{e}");
        let ok = load_str(&format!(
            "{vc}task_timeout = \"2h\"\n[[providers.guest_networks]]\ncidr = \"192.168.2.0/24\"\ngateway = \"192.168.2.1\"\ndns = [\"192.168.1.53\"]\n[providers.windows]\nadmin_password = \"x\"\n"
        ))
        .unwrap();
        let crate::providers::Section::Vsphere(vc) = &ok.providers[0].section else {
            panic!("{:?}", ok.providers[0]);
        };
        let g = vc.guest_settings();
        assert_eq!(g.networks[0].gateway.as_deref(), Some("192.168.2.1"));
        assert_eq!(g.windows.unwrap().timezone, 210);
        let e = load_str("[alerts.sources.generic]\ntoken = \"12345678\"\n[alerts.default]\napp = \"nope\"\nusers = [\"u\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(".toml: key alerts.default.app") && e.contains("nope"),
            "{e}"
        );
        let e = load_str("[alerts.sources.generic]\ntoken = \"12345678\"\n[[alerts.robots]]\nname = \"r\"\nkey = \"k\"\n[alerts.default]\nrobots = [\"r\"]\nmarkdown_template = \"{% if %}\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key alerts.default.markdown_template: line 1: syntax error"),
            "{e}"
        );
        // Remediation rules name roles and a service identity the policy must have.
        let alerts = "[alerts]\nremediation_user = \"svc\"\n[alerts.sources.generic]\ntoken = \"12345678\"\n[[alerts.robots]]\nname = \"r\"\nkey = \"k\"\n[alerts.default]\nrobots = [\"r\"]\n[[alerts.remediations]]\nname = \"on\"\nalertname = [\"Down\"]\ncommand = \"开机:{{endpoint}}\"\nmode = \"auto\"\n[[alerts.remediations]]\nname = \"reboot\"\nalertname = [\"Down\"]\ncommand = \"重启:{{endpoint}}\"\nroles = [\"oncall\"]\n";
        let people = "[[roles]]\nname = \"oncall\"\ncommands = [\"开机\"]\n[[users]]\nid = \"svc\"\nroles = [\"oncall\"]\n";
        load_str(&format!("{alerts}{people}")).unwrap();
        let e = load_str(&format!(
            "{alerts}{}",
            people.replace("id = \"svc\"", "id = \"other\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("key alerts.remediation_user") && e.contains("[[users]]"),
            "{e}"
        );
        let e = load_str(&format!(
            "{alerts}{}",
            people.replace("\"oncall\"", "\"ops\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("key alerts.remediations[1].roles[0]"), "{e}");
        let e = Config::load(Some(Path::new("/nonexistent/opsbot.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/opsbot.toml") && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn robots_and_official_accounts_parse_and_errors_name_the_key() {
        let base = r#"
[[roles]]
name = "operator"
commands = ["概况"]
[[users]]
id = "zhangsan"
roles = ["operator"]
[[wecom.bots]]
name = "ops-group"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[[wechat.mp]]
name = "ops"
app_id = "wx49f0ab532d5d035a"
app_secret = "s"
token = "spamtest"
original_id = "gh_1234567890ab"
[[wechat.mp.users]]
openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
user = "zhangsan"
"#;
        let c = load_str(base).unwrap();
        assert_eq!(c.wecom.bots[0].callback.name, "ops-group");
        assert_eq!(c.wecom.bots[0].api_base, "https://qyapi.weixin.qq.com");
        let mp = &c.wechat.mp[0];
        assert_eq!(mp.users[0].user, "zhangsan");
        assert!(mp.encoding_aes_key.is_none(), "plain mode");
        assert_eq!(mp.api_base, "https://api.weixin.qq.com");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("QDG6eK") && !shown.contains("spamtest"),
            "{shown}"
        );

        let e = load_str(&base.replace("user = \"zhangsan\"", "user = \"ghost\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wechat.mp[0].users[0].user") && e.contains("ghost"),
            "{e}"
        );
        let e = load_str(&base.replace("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "short"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wecom.bots[0].encoding_aes_key"), "{e}");
        let e = load_str(&base.replace("app_secret = \"s\"", "app_secret = \"\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wechat.mp[0].app_secret"), "{e}");
        let e = load_str(&format!(
            "{base}\n[[wechat.mp.users]]\nopenid = \"x\"\nuser = \"zhangsan\"\nextra = 1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn channel_tables_still_refuse_unknown_and_missing_keys() {
        // `name` and `token` are one flattened part of every endpoint table; the tables
        // still take exactly their documented keys.
        let app = "[[wecom.apps]]\nname=\"a\"\ncorp_id=\"c\"\nagent_id=1\nsecret=\"s\"\ntoken=\"t\"\nencoding_aes_key=\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\n";
        let c = load_str(app).unwrap();
        assert_eq!(c.wecom.apps[0].callback.name, "a");
        assert_eq!(c.wecom.apps[0].callback.token, "t");
        let e = load_str(&format!("{app}tokn=\"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokn"), "{e}");
        let e = load_str(&app.replace("token=\"t\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("token"), "{e}");
        let bot = "[[wecom.bots]]\nname=\"b\"\ntoken=\"t\"\nencoding_aes_key=\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\nnmae=\"x\"\n";
        let e = load_str(bot).unwrap_err().to_string();
        assert!(e.contains("nmae"), "{e}");
        let mp =
            "[[wechat.mp]]\nname=\"m\"\napp_id=\"wx1\"\napp_secret=\"s\"\ntoken=\"t\"\nextra=1\n";
        let e = load_str(mp).unwrap_err().to_string();
        assert!(e.contains("extra"), "{e}");
        let e = load_str("[[wecom.apps]]\nname=\"a b\"\ncorp_id=\"c\"\nagent_id=1\nsecret=\"s\"\ntoken=\"t\"\nencoding_aes_key=\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\n").unwrap_err().to_string();
        assert!(e.contains("wecom.apps[0].name"), "{e}");
    }
}
