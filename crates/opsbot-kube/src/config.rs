//! The `[[providers]]` section of Kubernetes clusters (`kind = "kubernetes"`):
//!
//! ```toml
//! [[providers]]
//! name = "prod-k8s"
//! kind = "kubernetes"
//! cluster = "prod"                      # the cluster's name in scope paths (default "default")
//! kubeconfig = "~/.kube/config"         # one of: kubeconfig (+ context), in_cluster, url
//! context = "prod-admin"
//! # in_cluster = true                   # the pod's service account (token + CA at the standard paths)
//! # url = "https://10.0.0.1:6443"       # with token or token_file, and ca_file (or insecure = true)
//! namespaces = ["payments", "web"]      # what to watch (default: every namespace)
//! max_replicas = 50                     # the most 扩容 may set, unless a scale limit says otherwise
//! rollout_timeout = "5m"                # how long scale / restart / rollback wait for the pods
//! log_lines = 50                        # 日志's default tail (a request may ask up to 500)
//! log_bytes = 4000                      # 日志's cap in bytes: a phone screen
//!
//! [[providers.scale_limits]]            # first match wins, on cluster/namespace/name
//! scope = "prod/payments/*"
//! max_replicas = 10
//!
//! # several clusters in one provider instead of the inline one:
//! # [[providers.clusters]]
//! # name = "staging"
//! # url = "https://staging.example.com:6443"
//! # token_file = "/etc/opsbot/staging.token"
//! # ca_file = "/etc/opsbot/staging-ca.pem"
//! ```

use globset::{Glob, GlobMatcher};
use opsbot_core::{parse_duration, ProviderSection, SectionError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The most lines 日志 shows, whatever is asked: more does not fit a chat message.
pub const LOG_LINES_CAP: usize = 500;

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The inline cluster's name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    // The inline cluster's connection (see [`Connection`]).
    /// A kubeconfig file (`~` expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Its context (default: the file's current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The service account of the pod opsbot runs in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_cluster: bool,
    /// The API server, `https://10.0.0.1:6443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A bearer token (prefer `token_file`: it is re-read when rotated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// The CA that signed the API server's certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any certificate (lab only; warned at start).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Several clusters instead of the inline one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterConfig>,
    /// The namespaces to watch (default: all). A token limited to some namespaces needs
    /// them listed here: a cluster-wide watch would be refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The most replicas a scale may set where no scale limit matches (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Per-scope maxima, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_limits: Vec<ScaleLimit>,
    /// How long an operation waits for its rollout (`5m` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_timeout: Option<String>,
    /// Lines 日志 shows when none are asked (default 50, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines: Option<usize>,
    /// Bytes 日志 shows at most (default 4000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<usize>,
}

/// How to reach one cluster: exactly one of `kubeconfig`, `in_cluster`, `url` (the
/// keys an inline cluster and each of `clusters` have).
#[derive(Clone, Default, PartialEq)]
pub struct Connection {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub in_cluster: bool,
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
    pub insecure: bool,
}

/// The connection keys of a section or cluster entry, as a [`Connection`].
macro_rules! connection_of {
    ($s:expr) => {
        Connection {
            kubeconfig: $s.kubeconfig.clone(),
            context: $s.context.clone(),
            in_cluster: $s.in_cluster,
            url: $s.url.clone(),
            token: $s.token.clone(),
            token_file: $s.token_file.clone(),
            ca_file: $s.ca_file.clone(),
            insecure: $s.insecure,
        }
    };
}

impl ClusterConfig {
    pub fn connection(&self) -> Connection {
        connection_of!(self)
    }
}

/// One of `clusters`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// A kubeconfig file (`~` expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Its context (default: the file's current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The service account of the pod opsbot runs in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_cluster: bool,
    /// The API server, `https://10.0.0.1:6443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A bearer token (prefer `token_file`: it is re-read when rotated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// The CA that signed the API server's certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any certificate (lab only; warned at start).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A maximum for the workloads whose `cluster/namespace/name` matches `scope`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleLimit {
    pub scope: String,
    pub max_replicas: i32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("kubeconfig", &self.kubeconfig)
            .field("context", &self.context)
            .field("in_cluster", &self.in_cluster)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("token_file", &self.token_file)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("name", &self.name)
            .field("connection", &self.connection())
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cluster", &self.cluster)
            .field("connection", &self.connection())
            .field("clusters", &self.clusters)
            .field("namespaces", &self.namespaces)
            .field("max_replicas", &self.max_replicas)
            .field("scale_limits", &self.scale_limits)
            .field("rollout_timeout", &self.rollout_timeout)
            .field("log_lines", &self.log_lines)
            .field("log_bytes", &self.log_bytes)
            .finish()
    }
}

impl Connection {
    fn is_set(&self) -> bool {
        *self != Connection::default()
    }

    /// The kubeconfig path with `~` expanded.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.kubeconfig.as_deref().map(expand_home)
    }

    /// Exactly one way in, complete. `at` prefixes the key (`clusters[1].`).
    fn validate(&self, at: &str) -> Result<(), SectionError> {
        let ways = [
            self.kubeconfig.is_some(),
            self.in_cluster,
            self.url.is_some(),
        ];
        let key = |k: &str| format!("{at}{k}");
        match ways.iter().filter(|w| **w).count() {
            0 => {
                return Err(SectionError::new(
                    key("kubeconfig"),
                    "one of kubeconfig, in_cluster = true or url is required",
                ))
            }
            1 => {}
            _ => {
                let second = if self.kubeconfig.is_some() && self.in_cluster {
                    "in_cluster"
                } else {
                    "url"
                };
                return Err(SectionError::new(
                    key(second),
                    "give only one of kubeconfig, in_cluster and url",
                ));
            }
        }
        if self.context.is_some() && self.kubeconfig.is_none() {
            return Err(SectionError::new(
                key("context"),
                "names a context of the kubeconfig file, which is not set",
            ));
        }
        if let Some(path) = self.kubeconfig_path() {
            if !path.is_file() {
                return Err(SectionError::new(
                    key("kubeconfig"),
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        let url_only = [
            ("token", self.token.is_some()),
            ("token_file", self.token_file.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("insecure", self.insecure),
        ];
        let Some(url) = &self.url else {
            return match url_only.iter().find(|(_, set)| *set) {
                Some((k, _)) => Err(SectionError::new(
                    key(k),
                    "goes with url (a kubeconfig or the service account brings its own)",
                )),
                None => Ok(()),
            };
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(SectionError::new(
                key("url"),
                format!("{url:?} must be the API server's URL, like https://10.0.0.1:6443"),
            ));
        }
        match (&self.token, &self.token_file) {
            (None, None) => {
                return Err(SectionError::new(
                    key("token"),
                    "url needs token or token_file",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(SectionError::new(
                    key("token_file"),
                    "give token or token_file, not both",
                ))
            }
            (Some(t), None) if t.trim().is_empty() => {
                return Err(SectionError::new(key("token"), "is empty"))
            }
            _ => {}
        }
        for (k, file) in [("token_file", &self.token_file), ("ca_file", &self.ca_file)] {
            if let Some(f) = file {
                if !expand_home(f).is_file() {
                    return Err(SectionError::new(
                        key(k),
                        format!("{f:?} is not a readable file"),
                    ));
                }
            }
        }
        if url.starts_with("https://") && self.ca_file.is_none() && !self.insecure {
            return Err(SectionError::new(
                key("ca_file"),
                "an https url needs the CA that signed the API server's certificate \
                 (or insecure = true, lab only)",
            ));
        }
        if self.insecure && self.ca_file.is_some() {
            return Err(SectionError::new(
                key("insecure"),
                "insecure = true ignores ca_file; remove one",
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The inline cluster's connection keys.
    pub fn connection(&self) -> Connection {
        connection_of!(self)
    }

    /// Every cluster this section configures: the inline one, or `clusters`.
    pub fn cluster_list(&self) -> Vec<ClusterConfig> {
        if self.clusters.is_empty() {
            let c = self.connection();
            vec![ClusterConfig {
                name: self.cluster.clone().unwrap_or_else(|| "default".into()),
                kubeconfig: c.kubeconfig,
                context: c.context,
                in_cluster: c.in_cluster,
                url: c.url,
                token: c.token,
                token_file: c.token_file,
                ca_file: c.ca_file,
                insecure: c.insecure,
            }]
        } else {
            self.clusters.clone()
        }
    }

    /// What operations and reads go by, checked.
    pub fn settings(&self) -> Settings {
        Settings {
            max_replicas: self.max_replicas.unwrap_or(50),
            scale_limits: self
                .scale_limits
                .iter()
                .filter_map(|l| {
                    let glob = Glob::new(&l.scope).ok()?.compile_matcher();
                    Some((glob, l.max_replicas))
                })
                .collect(),
            rollout_timeout: self
                .rollout_timeout
                .as_deref()
                .and_then(parse_duration)
                .unwrap_or(Duration::from_secs(300)),
            log_lines: self.log_lines.unwrap_or(50).min(LOG_LINES_CAP),
            log_bytes: self.log_bytes.unwrap_or(4000),
            namespaces: self.namespaces.clone(),
        }
    }
}

impl ProviderSection for Config {
    const KIND: &'static str = "kubernetes";

    fn validate(&self) -> Result<(), SectionError> {
        if !self.clusters.is_empty() {
            if self.cluster.is_some() || self.connection().is_set() {
                return Err(SectionError::new(
                    "clusters",
                    "give either one inline cluster (cluster, kubeconfig/in_cluster/url) or \
                     clusters = [...], not both",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, c) in self.clusters.iter().enumerate() {
                check_cluster_name(&c.name)
                    .map_err(|p| SectionError::new(format!("clusters[{i}].name"), p))?;
                if !seen.insert(c.name.as_str()) {
                    return Err(SectionError::new(
                        format!("clusters[{i}].name"),
                        format!("{:?} is named twice", c.name),
                    ));
                }
                c.connection().validate(&format!("clusters[{i}]."))?;
            }
        } else {
            if let Some(name) = &self.cluster {
                check_cluster_name(name).map_err(|p| SectionError::new("cluster", p))?;
            }
            self.connection().validate("")?;
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if !is_dns_label(ns) {
                return Err(SectionError::new(
                    format!("namespaces[{i}]"),
                    format!("{ns:?} is not a namespace name (lowercase letters, digits, '-')"),
                ));
            }
        }
        if let Some(m) = self.max_replicas {
            if m < 0 {
                return Err(SectionError::new("max_replicas", "must be 0 or more"));
            }
        }
        for (i, l) in self.scale_limits.iter().enumerate() {
            if let Err(e) = Glob::new(&l.scope) {
                return Err(SectionError::new(
                    format!("scale_limits[{i}].scope"),
                    format!("{:?} is not a glob: {e}", l.scope),
                ));
            }
            if l.max_replicas < 0 {
                return Err(SectionError::new(
                    format!("scale_limits[{i}].max_replicas"),
                    "must be 0 or more",
                ));
            }
        }
        if let Some(t) = &self.rollout_timeout {
            if parse_duration(t).filter(|d| !d.is_zero()).is_none() {
                return Err(SectionError::new(
                    "rollout_timeout",
                    format!("{t:?} is not a duration like 90s, 5m"),
                ));
            }
        }
        if let Some(n) = self.log_lines {
            if n == 0 || n > LOG_LINES_CAP {
                return Err(SectionError::new(
                    "log_lines",
                    format!("must be between 1 and {LOG_LINES_CAP}"),
                ));
            }
        }
        if let Some(n) = self.log_bytes {
            if n < 200 {
                return Err(SectionError::new("log_bytes", "must be at least 200"));
            }
        }
        Ok(())
    }

    /// Watches keep the pool current; there is nothing to re-sync on a schedule.
    fn default_sync_period(&self) -> Option<Duration> {
        None
    }
}

/// What operations and reads of one provider go by (from [`Config::settings`]).
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_replicas: i32,
    scale_limits: Vec<(GlobMatcher, i32)>,
    pub rollout_timeout: Duration,
    pub log_lines: usize,
    pub log_bytes: usize,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Config::default().settings()
    }
}

impl Settings {
    /// The most replicas the workload at `cluster/namespace/name` may have.
    pub fn max_replicas_at(&self, path: &str) -> i32 {
        self.scale_limits
            .iter()
            .find(|(glob, _)| glob.is_match(path))
            .map_or(self.max_replicas, |(_, m)| *m)
    }

    /// A shorter rollout wait (tests, benchmarks).
    pub fn with_rollout_timeout(mut self, d: Duration) -> Self {
        self.rollout_timeout = d;
        self
    }
}

fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(format!(
            "{name:?} must be a non-empty name without '/' or spaces (it is part of scope paths)"
        ));
    }
    Ok(())
}

/// A Kubernetes namespace name (RFC 1123 label).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `~/x` → `$HOME/x`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
