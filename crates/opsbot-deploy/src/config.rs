//! The `[deploy]` section and its `[[deploy.projects]]`: where builds and artefacts
//! live, the SSH client, the Salt master (`[deploy.salt]`), and each project's
//! repository, build, transport, hosts, hooks, health check, strategy, approval,
//! notifications and scaling. Projects created through the API are stored as the JSON
//! of the same [`Project`]. Validation names the key.

use opsbot_core::parse_duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Build work directories and the artefact store (`artefacts/<sha256>.tar.gz`).
    pub data_dir: String,
    /// A build (fetch + commands + packing) that runs longer is stopped.
    pub build_timeout: String,
    /// The OpenSSH client releases run.
    pub ssh_command: String,
    /// More `-o` options for every ssh a release runs (the master connection to each
    /// host and every step over it), as `Key=Value`: `["KexAlgorithms=^curve25519-sha256"]`
    /// prefers the classic key exchange, a cheaper login than OpenSSH's post-quantum
    /// default (figures in `benches/release_hosts.rs`). Empty (the default) keeps
    /// OpenSSH's choices. Keys that would run local commands, loosen the host key
    /// check or break the transport (`ProxyCommand`, `LocalCommand`,
    /// `StrictHostKeyChecking`, `UserKnownHostsFile`, `ControlPath`, `ControlMaster`, …)
    /// are refused; `Ciphers` replaces opsbot's AES-GCM preference.
    pub ssh_options: Vec<String>,
    /// Defaults for projects that do not set their own.
    pub ssh_key: Option<String>,
    pub known_hosts: Option<String>,
    /// Connecting to a host (TCP + SSH handshake + auth) takes at most this.
    pub connect_timeout: String,
    /// One remote step (upload, unpack, a hook) takes at most this unless its hook says.
    pub step_timeout: String,
    /// An order waiting for approval expires after this.
    pub approval_expiry: String,
    /// Releases kept per project and host unless the project says.
    pub keep_versions: u32,
    /// A running order whose instance has not refreshed it for this long is marked
    /// 已中断 (its instance died); it refreshes every sixth of it.
    pub stale_after: String,
    /// Who opsbot is when it acts on its own (a canary's automatic rollback): the audit
    /// log names this user.
    pub service_user: String,
    /// The buttons of an order's progress message (暂停, 继续, 回滚, …) work this long;
    /// an approval request's work until the order expires.
    pub card_ttl: String,
    /// The salt-api that projects with `transport = "salt"` release through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt: Option<SaltDeployConfig>,
    pub projects: Vec<Project>,
}

/// `[deploy.salt]`: salt-api (`api = { url = …, eauth = …, username = …, password_file =
/// … }`, as `[cmdb.salt]` has it) and `file_root`, a folder the salt-master serves as
/// `salt://` (one of its `file_roots`): opsbot copies each artefact to
/// `<file_root>/opsbot/<sha256>.tar.gz` there and the minions fetch it with
/// `cp.get_file`, so opsbot runs on the master or shares that folder with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaltDeployConfig {
    pub api: opsbot_salt::SaltApiConfig,
    pub file_root: String,
}

/// How a project's release reaches its hosts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// OpenSSH to each host's address, as `ssh_user` with the project's key.
    #[default]
    Ssh,
    /// Salt's execution modules through `[deploy.salt]`: hosts are minion ids.
    Salt,
}

impl TransportKind {
    fn is_ssh(&self) -> bool {
        *self == TransportKind::Ssh
    }
}

/// Minions a Salt project releases to, besides its `hosts`, as salt targets them:
/// `{ glob = "web*" }`, `{ grain = "role:web" }`, `{ nodegroup = "web" }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SaltTarget {
    Glob(String),
    Grain(String),
    Nodegroup(String),
}

impl SaltTarget {
    pub fn to_salt(&self) -> opsbot_salt::Target {
        match self {
            SaltTarget::Glob(g) => opsbot_salt::Target::Glob(g.clone()),
            SaltTarget::Grain(g) => opsbot_salt::Target::Grain(g.clone()),
            SaltTarget::Nodegroup(n) => opsbot_salt::Target::Nodegroup(n.clone()),
        }
    }
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            data_dir: "data/deploy".into(),
            build_timeout: "30m".into(),
            ssh_command: "ssh".into(),
            ssh_options: Vec::new(),
            ssh_key: None,
            known_hosts: None,
            connect_timeout: "10s".into(),
            step_timeout: "10m".into(),
            approval_expiry: "24h".into(),
            keep_versions: 5,
            stale_after: "60s".into(),
            service_user: "opsbot".into(),
            card_ttl: "24h".into(),
            salt: None,
            projects: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub repo: Repo,
    /// Shell commands run one after another in a fresh checkout (`mvn -q package`,
    /// `npm ci && npm run build`, `make`); the first failing one fails the build.
    #[serde(default)]
    pub build: Vec<String>,
    #[serde(default)]
    pub artefact: Artefact,
    /// Releases kept on each host (the current one included); default `[deploy]
    /// keep_versions`.
    #[serde(default)]
    pub keep_versions: Option<u32>,
    /// How releases reach the hosts: `"ssh"` (the default) or `"salt"` (through
    /// `[deploy.salt]`; then every host's name is its minion id).
    #[serde(default, skip_serializing_if = "TransportKind::is_ssh")]
    pub transport: TransportKind,
    /// Hosts by pool VM name, CMDB asset name or address; for a Salt project, minion ids.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// A Salt project's minions by target, added to `hosts` when an order is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt_target: Option<SaltTarget>,
    /// Hosts picked from the resource pool or the CMDB; added to `hosts`.
    #[serde(default)]
    pub select: Vec<Selector>,
    #[serde(default = "default_user")]
    pub ssh_user: String,
    #[serde(default)]
    pub ssh_key: Option<String>,
    #[serde(default = "default_port")]
    pub ssh_port: u16,
    #[serde(default)]
    pub known_hosts: Option<String>,
    /// The project's folder on each host: `releases/<id>/`, `current`. `{host}` in it
    /// is the host's name (hosts sharing one disk, as minions on one machine do).
    pub deploy_root: String,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub approval: Approval,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub scale: Option<Scale>,
    /// Watch the alerts after the first batch (`[projects.canary]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

fn default_user() -> String {
    "deploy".into()
}

fn default_port() -> u16 {
    22
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    pub kind: RepoKind,
    /// `https://…`, `git://…`, `file://…`, `ssh://…`, `svn://…`.
    pub url: String,
    /// The default branch (git) or path below the URL (svn, empty = the URL itself).
    #[serde(default)]
    pub branch: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    Git,
    Svn,
}

/// What of the work directory becomes the artefact, after the build.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Artefact {
    /// The folder (relative to the checkout) packed; `.` = the checkout.
    pub path: String,
    /// Globs (relative to `path`) packed; empty = everything.
    pub include: Vec<String>,
    /// Globs left out (VCS folders are always left out).
    pub exclude: Vec<String>,
}

impl Default for Artefact {
    fn default() -> Self {
        Artefact {
            path: ".".into(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// Hosts from the resource pool (all given keys must match) or the CMDB.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Selector {
    /// A pool tag (`app:shop`).
    pub tag: Option<String>,
    pub cluster: Option<String>,
    pub folder: Option<String>,
    /// A CMDB fact filter (`os=Debian`, `hostname~web`): assets whose facts match.
    pub cmdb: Option<String>,
}

/// Commands run at each stage. `before_release` / `after_release` run on the opsbot
/// host, in the build's unpacked artefact folder; `before_host` / `after_host` on each
/// host in the new release's folder (`after_host` after `current` switched); the scale
/// hooks on the opsbot host. Every command sees `OPSBOT_PROJECT`, `OPSBOT_RELEASE`,
/// `OPSBOT_HOST`, `OPSBOT_HOSTS` (space-separated addresses) and, for scaling,
/// `OPSBOT_ADDED` / `OPSBOT_REMOVED`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    pub before_release: Vec<String>,
    pub after_release: Vec<String>,
    pub before_host: Vec<String>,
    pub after_host: Vec<String>,
    /// After new hosts answer SSH, before the release reaches them (render and
    /// reload an upstream, add monitoring).
    pub on_scale_out: Vec<String>,
    /// Before hosts leave (drain, upstream update).
    pub on_scale_in: Vec<String>,
    /// A hook running longer fails its step.
    pub timeout: Option<String>,
    /// Files rendered on the opsbot host before the scale hooks run (minijinja, with
    /// `project`, `hosts`: [{name, address}], `added`, `removed`).
    pub templates: Vec<Template>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub src: String,
    pub dest: String,
}

/// A host is healthy when the URL answers 2xx (from the opsbot host) or the command
/// exits 0 (on the host, in `current`), within `timeout`, in at most `retries + 1`
/// tries `interval` apart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `http://{host}:8080/health`: `{host}` is the host's address.
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default = "default_health_timeout")]
    pub timeout: String,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_interval")]
    pub interval: String,
}

fn default_health_timeout() -> String {
    "5s".into()
}

fn default_retries() -> u32 {
    3
}

fn default_interval() -> String {
    "1s".into()
}

/// A batch size: a host count or a share of the hosts (`"25%"`), cumulative: `[1,
/// "25%", "100%"]` releases one host, then up to a quarter, then the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum BatchSize {
    Count(u32),
    Share(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Strategy {
    /// Empty: one batch of every host.
    pub batches: Vec<BatchSize>,
    /// Between batches: a duration, or `"manual"` (the order pauses until 继续).
    pub pause: String,
    /// Stop at the end of the batch in which a host failed (default), rather than go
    /// on while at most `max_failed` hosts failed.
    pub stop_on_failure: bool,
    pub max_failed: u32,
    /// Hosts released at once within a batch.
    pub parallelism: u32,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            batches: Vec::new(),
            pause: "0s".into(),
            stop_on_failure: true,
            max_failed: 0,
            parallelism: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Approval {
    pub required: bool,
    /// Roles (of `[[roles]]`) whose members may approve; empty = whoever holds 批准 on
    /// `deploy/<project>`.
    pub approvers: Vec<String>,
    /// May the asker approve their own order?
    pub self_approve: bool,
    /// When releases may start: `Mon-Fri 10:00-17:00`, `Sat 09:00-12:00` (in `[chat]
    /// timezone`); empty = any time.
    pub windows: Vec<String>,
}

/// Who hears of the project's orders (approval requests, start, batches, the end).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// A WeCom app (`[[wecom.apps]]` name) and its users / parties / tags / app chat.
    pub app: Option<String>,
    pub users: Vec<String>,
    pub parties: Vec<String>,
    pub tags: Vec<String>,
    pub appchat: Option<String>,
    /// Group robots (`[[wecom.robots]]` names).
    pub robots: Vec<String>,
}

/// `[projects.canary]`: after the first batch of a release (the canary) the order holds
/// for `watch` and watches the alert store. A firing alert that matches `alerts` and
/// started after the canary batch finished rolls the canary hosts back to the build
/// they ran before (`rollback = true`; the other hosts are never touched) or pauses the
/// order for a person to decide (`rollback = false`, the default). A quiet window lets
/// the order go on (then the strategy's `pause`, if any, applies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// How long the order holds after the canary batch (`"10m"`).
    pub watch: String,
    /// Which alerts count, in the syntax of `静默`'s matcher (`key=glob` joined by `&`,
    /// or a bare glob), with `{{project}}` and `{{order}}` replaced by the project's
    /// name and the order's number: `service={{project}}&severity=critical`.
    pub alerts: String,
    #[serde(default)]
    pub rollback: bool,
}

/// The longest canary watch: an order holds its project meanwhile.
const MAX_WATCH: Duration = Duration::from_secs(24 * 3600);

impl Canary {
    pub fn watch(&self) -> Duration {
        parse_duration(&self.watch).unwrap_or(Duration::from_secs(600))
    }

    /// The matcher for order `order` of project `project`.
    pub fn matcher(&self, project: &str, order: i64) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = self.alerts.as_str();
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("{:?}: \"{{{{\" without \"}}}}\"", self.alerts))?;
            match after[..close].trim() {
                "project" => out.push_str(project),
                "order" => out.push_str(&order.to_string()),
                other => {
                    return Err(format!(
                        "{:?}: unknown placeholder {{{{{other}}}}} (only {{{{project}}}} and {{{{order}}}})",
                        self.alerts
                    ))
                }
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// How the project grows and shrinks (扩容 / 缩容).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// The template's number, as 模板 lists it.
    pub template: u32,
    /// New VMs are named `<prefix><n>` with the next free `n` (`shop-` → `shop-3`).
    pub name_prefix: String,
    /// Addresses new hosts take, as single IPs or ranges (`10.0.5.10-10.0.5.40`).
    pub addresses: Vec<String>,
    #[serde(default)]
    pub cpu: Option<u32>,
    #[serde(default)]
    pub memory_gb: Option<u32>,
    /// How long to wait for a new VM's SSH.
    #[serde(default = "default_ssh_wait")]
    pub ssh_wait: String,
}

fn default_ssh_wait() -> String {
    "5m".into()
}

impl DeployConfig {
    pub fn build_timeout(&self) -> Duration {
        parse_duration(&self.build_timeout).unwrap_or(Duration::from_secs(1800))
    }

    pub fn connect_timeout(&self) -> Duration {
        parse_duration(&self.connect_timeout).unwrap_or(Duration::from_secs(10))
    }

    pub fn step_timeout(&self) -> Duration {
        parse_duration(&self.step_timeout).unwrap_or(Duration::from_secs(600))
    }

    pub fn stale_after(&self) -> Duration {
        parse_duration(&self.stale_after)
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(1))
    }

    pub fn approval_expiry(&self) -> Duration {
        parse_duration(&self.approval_expiry).unwrap_or(Duration::from_secs(86_400))
    }

    pub fn card_ttl(&self) -> Duration {
        parse_duration(&self.card_ttl).unwrap_or(Duration::from_secs(86_400))
    }

    /// Checks the section; the error names the key (`deploy.projects[1].strategy.batches`).
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("build_timeout", &self.build_timeout),
            ("connect_timeout", &self.connect_timeout),
            ("step_timeout", &self.step_timeout),
            ("approval_expiry", &self.approval_expiry),
            ("stale_after", &self.stale_after),
            ("card_ttl", &self.card_ttl),
        ] {
            duration(&format!("deploy.{key}"), v)?;
        }
        if self.card_ttl().is_zero() {
            return Err("deploy.card_ttl: must be longer than 0s".into());
        }
        if self.service_user.trim().is_empty() || self.service_user.contains(char::is_whitespace) {
            return Err(format!(
                "deploy.service_user: {:?} is not a user id",
                self.service_user
            ));
        }
        for (i, o) in self.ssh_options.iter().enumerate() {
            crate::ssh::check_option(o).map_err(|e| format!("deploy.ssh_options[{i}]: {e}"))?;
        }
        if self.keep_versions == 0 {
            return Err("deploy.keep_versions: must be at least 1 (the current release)".into());
        }
        if let Some(salt) = &self.salt {
            salt.api
                .validate()
                .map_err(|(key, problem)| format!("deploy.salt.api.{key}: {problem}"))?;
            if !salt.file_root.starts_with('/') || salt.file_root.len() < 2 {
                return Err(format!(
                    "deploy.salt.file_root: {:?} must be an absolute folder other than / (one of the salt-master's file_roots)",
                    salt.file_root
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.projects.iter().enumerate() {
            let at = format!("deploy.projects[{i}]");
            p.validate(&at)?;
            p.check_transport(self, &at)?;
            if !seen.insert(p.name.as_str()) {
                return Err(format!("{at}.name: project {:?} is defined twice", p.name));
            }
        }
        Ok(())
    }
}

fn duration(key: &str, v: &str) -> Result<Duration, String> {
    parse_duration(v).ok_or_else(|| format!("{key}: {v:?} is not a duration (30s, 10m, 1h)"))
}

impl Project {
    /// Checks one project; `at` is its key (`deploy.projects[0]`, or `project` for one
    /// sent to the API).
    pub fn validate(&self, at: &str) -> Result<(), String> {
        opsbot_core::chat::check_name(&self.name, "项目名")
            .map_err(|e| format!("{at}.name: {e}"))?;
        if self.name.is_empty() || self.name.contains([',', ',', ' ']) {
            return Err(format!(
                "{at}.name: {:?} must be non-empty, without commas or blanks",
                self.name
            ));
        }
        if self.repo.url.trim().is_empty() {
            return Err(format!("{at}.repo.url: is empty"));
        }
        if self.repo.url.starts_with('-') || self.repo.branch.starts_with('-') {
            return Err(format!("{at}.repo: a URL or branch cannot start with '-'"));
        }
        if !self.deploy_root.starts_with('/') || self.deploy_root.len() < 2 {
            return Err(format!(
                "{at}.deploy_root: {:?} must be an absolute folder other than /",
                self.deploy_root
            ));
        }
        if self
            .deploy_root
            .contains(|c: char| c.is_whitespace() || "'\"`$\\;&|<>*?".contains(c))
        {
            return Err(format!(
                "{at}.deploy_root: {:?} may not contain blanks or shell characters",
                self.deploy_root
            ));
        }
        if self.ssh_user.is_empty()
            || self.ssh_user.starts_with('-')
            || !self
                .ssh_user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(format!(
                "{at}.ssh_user: {:?} is not a user name",
                self.ssh_user
            ));
        }
        if self.keep_versions == Some(0) {
            return Err(format!(
                "{at}.keep_versions: must be at least 1 (the current release)"
            ));
        }
        if self.artefact.path.starts_with('/') || self.artefact.path.split('/').any(|c| c == "..") {
            return Err(format!(
                "{at}.artefact.path: {:?} must stay inside the checkout",
                self.artefact.path
            ));
        }
        for h in &self.hosts {
            if h.trim().is_empty() || h.starts_with('-') || h.contains(char::is_whitespace) {
                return Err(format!("{at}.hosts: {h:?} is not a host name or address"));
            }
        }
        match (&self.transport, &self.salt_target) {
            (TransportKind::Ssh, Some(_)) => {
                return Err(format!(
                    "{at}.salt_target: only a project with transport = \"salt\" has minions"
                ))
            }
            (_, Some(SaltTarget::Glob(t) | SaltTarget::Grain(t) | SaltTarget::Nodegroup(t)))
                if t.trim().is_empty() =>
            {
                return Err(format!("{at}.salt_target: the target is empty"))
            }
            _ => {}
        }
        if self.transport == TransportKind::Salt && self.scale.is_some() {
            return Err(format!(
                "{at}.scale: scaling out waits for new VMs' SSH; a project with transport = \"salt\" cannot scale"
            ));
        }
        for (j, s) in self.select.iter().enumerate() {
            if s.tag.is_none() && s.cluster.is_none() && s.folder.is_none() && s.cmdb.is_none() {
                return Err(format!(
                    "{at}.select[{j}]: give tag, cluster, folder or cmdb"
                ));
            }
        }
        if let Some(t) = &self.hooks.timeout {
            duration(&format!("{at}.hooks.timeout"), t)?;
        }
        if let Some(h) = &self.health {
            if h.http.is_some() == h.command.is_some() {
                return Err(format!("{at}.health: give exactly one of http and command"));
            }
            if let Some(u) = &h.http {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(format!("{at}.health.http: {u:?} is not an http(s) URL"));
                }
            }
            duration(&format!("{at}.health.timeout"), &h.timeout)?;
            duration(&format!("{at}.health.interval"), &h.interval)?;
        }
        let s = &self.strategy;
        for (j, b) in s.batches.iter().enumerate() {
            match b {
                BatchSize::Count(0) => {
                    return Err(format!(
                        "{at}.strategy.batches[{j}]: a batch holds at least one host"
                    ))
                }
                BatchSize::Count(_) => {}
                BatchSize::Share(p) => {
                    parse_share(p).ok_or_else(|| {
                        format!("{at}.strategy.batches[{j}]: {p:?} is neither a count nor a share like \"25%\"")
                    })?;
                }
            }
        }
        if s.pause != "manual" {
            duration(&format!("{at}.strategy.pause"), &s.pause)?;
        }
        if s.parallelism == 0 {
            return Err(format!("{at}.strategy.parallelism: must be at least 1"));
        }
        for (j, w) in self.approval.windows.iter().enumerate() {
            crate::window::Window::parse(w)
                .map_err(|e| format!("{at}.approval.windows[{j}]: {e}"))?;
        }
        if let Some(sc) = &self.scale {
            if sc.name_prefix.is_empty() {
                return Err(format!("{at}.scale.name_prefix: is empty"));
            }
            if sc.cpu.is_some() != sc.memory_gb.is_some() {
                return Err(format!(
                    "{at}.scale: give cpu and memory_gb together (克隆 takes both or neither)"
                ));
            }
            if sc.addresses.is_empty() {
                return Err(format!(
                    "{at}.scale.addresses: give the addresses new hosts may take"
                ));
            }
            crate::addresses::expand(&sc.addresses)
                .map_err(|e| format!("{at}.scale.addresses: {e}"))?;
            duration(&format!("{at}.scale.ssh_wait"), &sc.ssh_wait)?;
        }
        if let Some(c) = &self.canary {
            let watch = duration(&format!("{at}.canary.watch"), &c.watch)?;
            if watch.is_zero() || watch > MAX_WATCH {
                return Err(format!(
                    "{at}.canary.watch: {:?} must be longer than 0s and at most 24h",
                    c.watch
                ));
            }
            let matcher = c
                .matcher(&self.name, 1)
                .map_err(|e| format!("{at}.canary.alerts: {e}"))?;
            opsbot_alerts::silence::Matcher::parse(&matcher)
                .map_err(|e| format!("{at}.canary.alerts: {:?}: {e}", c.alerts))?;
            if self.strategy.batches.is_empty() {
                return Err(format!(
                    "{at}.canary: the first batch is the canary; give strategy.batches (e.g. [1, \"100%\"])"
                ));
            }
        }
        Ok(())
    }

    /// A Salt project needs `[deploy.salt]`.
    pub fn check_transport(&self, cfg: &DeployConfig, at: &str) -> Result<(), String> {
        if self.transport == TransportKind::Salt && cfg.salt.is_none() {
            return Err(format!(
                "{at}.transport: \"salt\" needs a [deploy.salt] section (salt-api and file_root)"
            ));
        }
        Ok(())
    }

    /// The project's folder on host `host`: `deploy_root` with `{host}` replaced by the
    /// host's name, which must then be a plain file name (it becomes part of a path).
    pub fn deploy_root_for(&self, host: &str) -> Result<String, String> {
        if !self.deploy_root.contains(HOST_PLACEHOLDER) {
            return Ok(self.deploy_root.clone());
        }
        let plain = !host.is_empty()
            && host != "."
            && host != ".."
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !plain {
            return Err(format!(
                "主机名 {host:?} 不能用在 deploy_root 的 {HOST_PLACEHOLDER} 中(只允许字母、数字和 ._-)"
            ));
        }
        Ok(self.deploy_root.replace(HOST_PLACEHOLDER, host))
    }

    pub fn keep_versions(&self, cfg: &DeployConfig) -> u32 {
        self.keep_versions.unwrap_or(cfg.keep_versions).max(1)
    }

    pub fn hook_timeout(&self, cfg: &DeployConfig) -> Duration {
        self.hooks
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or_else(|| cfg.step_timeout())
    }
}

/// Where a host's name goes in `deploy_root`.
const HOST_PLACEHOLDER: &str = "{host}";

/// `"25%"` → 25.
pub fn parse_share(s: &str) -> Option<u32> {
    let n: u32 = s.trim().strip_suffix('%')?.trim().parse().ok()?;
    (1..=100).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(extra: &str) -> Result<DeployConfig, String> {
        project_with_top("", extra)
    }

    /// With `top` keys of `[deploy]` itself before the project.
    fn project_with(top: &str) -> Result<DeployConfig, String> {
        project_with_top(top, "")
    }

    fn project_with_top(top: &str, extra: &str) -> Result<DeployConfig, String> {
        let text = format!(
            "{top}[[projects]]\nname = \"shop\"\ndeploy_root = \"/srv/shop\"\nrepo = {{ kind = \"git\", url = \"file:///r\" }}\n{extra}"
        );
        let c: DeployConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn a_minimal_project_takes_the_defaults() {
        let c = project("").unwrap();
        let p = &c.projects[0];
        assert_eq!(p.ssh_user, "deploy");
        assert_eq!(p.keep_versions(&c), 5);
        assert!(p.strategy.stop_on_failure);
    }

    #[test]
    fn mixed_batches_read_and_bad_ones_name_the_key() {
        let c = project("[projects.strategy]\nbatches = [1, \"25%\", \"100%\"]\n").unwrap();
        assert_eq!(c.projects[0].strategy.batches.len(), 3);
        let e = project("[projects.strategy]\nbatches = [1, \"lots\"]\n").unwrap_err();
        assert!(e.contains("deploy.projects[0].strategy.batches[1]"), "{e}");
        let e = project("[projects.strategy]\nbatches = [0]\n").unwrap_err();
        assert!(e.contains("batches[0]"), "{e}");
    }

    #[test]
    fn ssh_options_default_empty_and_overrides_are_refused_by_name() {
        assert!(project("").unwrap().ssh_options.is_empty());
        let c = project_with("ssh_options = [\"KexAlgorithms=^curve25519-sha256\"]\n").unwrap();
        assert_eq!(c.ssh_options, ["KexAlgorithms=^curve25519-sha256"]);
        let e =
            project_with("ssh_options = [\"ServerAliveInterval=5\", \"ProxyCommand=nc %h %p\"]\n")
                .unwrap_err();
        assert!(
            e.contains("deploy.ssh_options[1]") && e.contains("ProxyCommand"),
            "{e}"
        );
        let e = project_with("ssh_options = [\"StrictHostKeyChecking no\"]\n").unwrap_err();
        assert!(e.contains("deploy.ssh_options[0]"), "{e}");
    }

    const SALT: &str = "[salt]\nfile_root = \"/srv/salt\"\napi = { url = \"http://127.0.0.1:8000\", username = \"opsbot\", password = \"pw\" }\n";

    #[test]
    fn salt_keys_read_and_typos_or_gaps_are_named() {
        let c = project_with_top(
            SALT,
            "transport = \"salt\"\nsalt_target = { grain = \"role:web\" }\n",
        )
        .unwrap();
        let salt = c.salt.as_ref().unwrap();
        assert_eq!(salt.file_root, "/srv/salt");
        assert_eq!(salt.api.eauth, "file");
        assert_eq!(salt.api.password.as_deref(), Some("pw"));
        assert!(
            !format!("{c:?}").contains("\"pw\""),
            "the password is hidden"
        );
        let p = &c.projects[0];
        assert_eq!(p.transport, TransportKind::Salt);
        assert_eq!(p.salt_target, Some(SaltTarget::Grain("role:web".into())));
        // What the configuration says comes back from its serialized form, but for the
        // password, never written out.
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("\"pw\""), "{text}");
        let mut back: DeployConfig = toml::from_str(&text).unwrap();
        back.salt.as_mut().unwrap().api.password = Some("pw".into());
        assert_eq!(back, c);
        // A project stored through the API without the new keys is an SSH project.
        let json = serde_json::to_value(&project("").unwrap().projects[0]).unwrap();
        assert!(json.get("transport").is_none() && json.get("salt_target").is_none());

        let e = project_with_top(&SALT.replace("password", "pasword"), "").unwrap_err();
        assert!(e.contains("pasword"), "{e}");
        let e = project_with_top(&SALT.replace("file_root = \"/srv/salt\"\n", ""), "").unwrap_err();
        assert!(e.contains("file_root"), "{e}");
        let e = project_with_top(&SALT.replace("/srv/salt", "salt"), "").unwrap_err();
        assert!(e.contains("deploy.salt.file_root"), "{e}");
        let e = project_with_top(&SALT.replace("http://127.0.0.1:8000", "nope"), "").unwrap_err();
        assert!(e.contains("deploy.salt.api.url"), "{e}");
    }

    #[test]
    fn salt_projects_need_the_section_and_do_not_scale() {
        let e = project("transport = \"salt\"\n").unwrap_err();
        assert!(
            e.contains("deploy.projects[0].transport") && e.contains("[deploy.salt]"),
            "{e}"
        );
        let e = project("salt_target = { glob = \"web*\" }\n").unwrap_err();
        assert!(e.contains("deploy.projects[0].salt_target"), "{e}");
        let e = project_with_top(
            SALT,
            "transport = \"salt\"\nsalt_target = { glob = \" \" }\n",
        )
        .unwrap_err();
        assert!(e.contains("salt_target"), "{e}");
        let scale = "transport = \"salt\"\n[projects.scale]\ntemplate = 1\nname_prefix = \"a-\"\naddresses = [\"10.0.0.1\"]\n";
        let e = project_with_top(SALT, scale).unwrap_err();
        assert!(e.contains("deploy.projects[0].scale"), "{e}");
    }

    const CANARY: &str = "[projects.strategy]\nbatches = [1, \"100%\"]\n[projects.canary]\n";

    #[test]
    fn a_canary_watch_reads_and_its_mistakes_name_the_key() {
        let c = project(&format!(
            "{CANARY}watch = \"10m\"\nalerts = \"service={{{{project}}}}&severity=critical\"\nrollback = true\n"
        ))
        .unwrap();
        let canary = c.projects[0].canary.as_ref().unwrap();
        assert_eq!(canary.watch(), Duration::from_secs(600));
        assert!(canary.rollback);
        assert_eq!(
            canary.matcher("shop", 12).unwrap(),
            "service=shop&severity=critical"
        );
        let spaced = Canary {
            alerts: "order={{ order }}&service={{project}}".into(),
            ..canary.clone()
        };
        assert_eq!(spaced.matcher("shop", 12).unwrap(), "order=12&service=shop");
        // Pausing is the default; a project stored without a canary has none.
        let c = project(&format!("{CANARY}watch = \"1m\"\nalerts = \"shop-*\"\n")).unwrap();
        assert!(!c.projects[0].canary.as_ref().unwrap().rollback);
        let json = serde_json::to_value(&project("").unwrap().projects[0]).unwrap();
        assert!(json.get("canary").is_none());

        for (body, key) in [
            (
                "watch = \"soon\"\nalerts = \"x\"\n",
                "deploy.projects[0].canary.watch",
            ),
            (
                "watch = \"0s\"\nalerts = \"x\"\n",
                "deploy.projects[0].canary.watch",
            ),
            (
                "watch = \"2d\"\nalerts = \"x\"\n",
                "deploy.projects[0].canary.watch",
            ),
            (
                "watch = \"1m\"\nalerts = \"\"\n",
                "deploy.projects[0].canary.alerts",
            ),
            (
                "watch = \"1m\"\nalerts = \"service=[\"\n",
                "deploy.projects[0].canary.alerts",
            ),
            (
                "watch = \"1m\"\nalerts = \"service={{host}}\"\n",
                "unknown placeholder {{host}}",
            ),
            (
                "watch = \"1m\"\nalerts = \"service={{project\"\n",
                "deploy.projects[0].canary.alerts",
            ),
        ] {
            let e = project(&format!("{CANARY}{body}")).unwrap_err();
            assert!(e.contains(key), "{body}: {e}");
        }
        let e = project(&format!("{CANARY}watch = \"1m\"\nalert = \"x\"\n")).unwrap_err();
        assert!(e.contains("alert"), "{e}");
        // Without batches every host is one batch: there is no canary to watch.
        let e = project("[projects.canary]\nwatch = \"1m\"\nalerts = \"x\"\n").unwrap_err();
        assert!(
            e.contains("deploy.projects[0].canary") && e.contains("strategy.batches"),
            "{e}"
        );
    }

    #[test]
    fn the_service_user_and_card_ttl_are_checked() {
        let c = project("").unwrap();
        assert_eq!(c.service_user, "opsbot");
        assert_eq!(c.card_ttl(), Duration::from_secs(86_400));
        let e = project_with("service_user = \"two words\"\n").unwrap_err();
        assert!(e.contains("deploy.service_user"), "{e}");
        let e = project_with("card_ttl = \"0s\"\n").unwrap_err();
        assert!(e.contains("deploy.card_ttl"), "{e}");
        let e = project_with("card_ttl = \"a day\"\n").unwrap_err();
        assert!(e.contains("deploy.card_ttl"), "{e}");
    }

    #[test]
    fn a_host_name_in_the_deploy_root_must_be_a_plain_name() {
        let mut p = project("").unwrap().projects.remove(0);
        assert_eq!(p.deploy_root_for("../x").unwrap(), "/srv/shop");
        p.deploy_root = "/srv/{host}/shop".into();
        assert_eq!(p.deploy_root_for("web-1.dc").unwrap(), "/srv/web-1.dc/shop");
        for bad in ["..", ".", "", "a/b", "../etc", "a b", "$(id)"] {
            assert!(p.deploy_root_for(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsafe_roots_and_health_are_refused() {
        assert!(project("").is_ok());
        let e = project("[projects.health]\nhttp = \"x\"\ncommand = \"y\"\n").unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        let c: Result<DeployConfig, _> = toml::from_str(
            "[[projects]]\nname = \"a\"\ndeploy_root = \"/srv/a; rm -rf /\"\nrepo = { kind = \"git\", url = \"u\" }\n",
        );
        assert!(c.unwrap().validate().unwrap_err().contains("deploy_root"));
    }
}
