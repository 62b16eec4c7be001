//! The `[web]` section of the configuration: local admin login, sessions, which WeCom
//! app signs people in, per-token rate limits, proxies and who may read `/metrics`.
//! The binary reads it with the rest of the file and calls [`WebConfig::validate`].

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The local administrator's login name (for when WeCom is not configured); it must
    /// be bound to roles in `[[users]]` like anyone else.
    pub admin_user: Option<String>,
    /// Argon2 hash of the admin password (`opsbot hash-password` makes one).
    pub admin_password_hash: Option<String>,
    /// How long a web login lasts.
    pub session_ttl_secs: u64,
    /// The `[[wecom.apps]]` entry whose OAuth2 login opens the web UI without a password.
    pub wecom_app: Option<String>,
    /// WeCom's authorize page; only tests point it elsewhere.
    pub oauth_authorize_url: String,
    /// API requests per token (or per web user) per minute, and the burst on top.
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed (CIDRs). Without them the
    /// peer address is the client, for token allow-lists and login limits.
    pub trusted_proxies: Vec<String>,
    /// Who may scrape `/metrics` (CIDRs).
    pub metrics_allow: Vec<String>,
}

pub const DEFAULT_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            admin_user: None,
            admin_password_hash: None,
            session_ttl_secs: 8 * 3600,
            wecom_app: None,
            oauth_authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            rate_limit_per_minute: 600,
            rate_limit_burst: 60,
            trusted_proxies: Vec::new(),
            metrics_allow: vec!["127.0.0.1/32".into(), "::1/128".into()],
        }
    }
}

/// Never prints the password hash.
impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("admin_user", &self.admin_user)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("wecom_app", &self.wecom_app)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .finish_non_exhaustive()
    }
}

/// What the rest of the configuration says, for cross-checks.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub wecom_apps: &'a [String],
    pub users: &'a [String],
    pub public_url: Option<&'a str>,
}

impl WebConfig {
    /// Checks the section against the rest of the configuration. Returns the key and
    /// the problem.
    pub fn validate(&self, ctx: Context<'_>) -> Result<(), (String, String)> {
        let err = |k: &str, p: String| Err((format!("web.{k}"), p));
        match (&self.admin_user, &self.admin_password_hash) {
            (Some(u), Some(h)) => {
                if u.trim().is_empty() {
                    return err("admin_user", "must not be empty".into());
                }
                if argon2::PasswordHash::new(h).is_err() {
                    return err(
                        "admin_password_hash",
                        "is not an argon2 hash like $argon2id$v=19$...; make one with `opsbot hash-password`".into(),
                    );
                }
                if !ctx.users.iter().any(|x| x == u) {
                    return err(
                        "admin_user",
                        format!("{u:?} has no [[users]] entry, so it could do nothing; bind it to a role"),
                    );
                }
            }
            (Some(_), None) => {
                return err(
                    "admin_password_hash",
                    "is required with web.admin_user".into(),
                )
            }
            (None, Some(_)) => {
                return err(
                    "admin_user",
                    "is required with web.admin_password_hash".into(),
                )
            }
            (None, None) => {}
        }
        if !(60..=30 * 86_400).contains(&self.session_ttl_secs) {
            return err(
                "session_ttl_secs",
                format!("{} is out of range (60..=2592000)", self.session_ttl_secs),
            );
        }
        if let Some(app) = &self.wecom_app {
            if !ctx.wecom_apps.iter().any(|a| a == app) {
                return err(
                    "wecom_app",
                    format!("{app:?} is not the name of a [[wecom.apps]] entry"),
                );
            }
            if ctx.public_url.is_none() {
                return err(
                    "wecom_app",
                    "needs server.public_url: WeCom redirects the browser back to it".into(),
                );
            }
        }
        if !(self.oauth_authorize_url.starts_with("https://")
            || self.oauth_authorize_url.starts_with("http://"))
        {
            return err("oauth_authorize_url", "must start with https://".into());
        }
        if self.rate_limit_per_minute == 0 {
            return err("rate_limit_per_minute", "must be at least 1".into());
        }
        for (key, list) in [
            ("trusted_proxies", &self.trusted_proxies),
            ("metrics_allow", &self.metrics_allow),
        ] {
            for (i, c) in list.iter().enumerate() {
                if parse_net(c).is_none() {
                    return err(
                        &format!("{key}[{i}]"),
                        format!("{c:?} is not an address or CIDR like 10.0.0.0/8"),
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) fn nets(list: &[String]) -> Vec<IpNet> {
        list.iter().filter_map(|c| parse_net(c)).collect()
    }
}

/// `10.0.0.0/8` or a single address.
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    opsbot_auth::parse_cidr(s).ok()
}

/// The argon2 hash of `password` (`opsbot hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

/// Whether `password` matches the argon2 `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(apps: &'a [String], users: &'a [String]) -> Context<'a> {
        Context {
            wecom_apps: apps,
            users,
            public_url: Some("https://ops.example.com"),
        }
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("s3cret 密码").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("s3cret 密码", &h));
        assert!(!verify_password("s3cret", &h));
        assert!(!verify_password("s3cret 密码", "not a hash"));
    }

    #[test]
    fn validation_names_key_and_problem() {
        let users = vec!["admin".to_string()];
        let apps = vec!["ops".to_string()];
        let mut c = WebConfig {
            admin_user: Some("admin".into()),
            admin_password_hash: Some("plain".into()),
            ..WebConfig::default()
        };
        let (k, p) = c.validate(ctx(&apps, &users)).unwrap_err();
        assert_eq!(k, "web.admin_password_hash");
        assert!(p.contains("hash-password"), "{p}");
        c.admin_password_hash = Some(hash_password("x").unwrap());
        c.validate(ctx(&apps, &users)).unwrap();
        c.admin_user = Some("root".into());
        let (k, p) = c.validate(ctx(&apps, &users)).unwrap_err();
        assert_eq!(k, "web.admin_user");
        assert!(p.contains("[[users]]"), "{p}");
        let c = WebConfig {
            wecom_app: Some("nope".into()),
            ..WebConfig::default()
        };
        assert_eq!(
            c.validate(ctx(&apps, &users)).unwrap_err().0,
            "web.wecom_app"
        );
        let c = WebConfig {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..WebConfig::default()
        };
        assert_eq!(
            c.validate(ctx(&apps, &users)).unwrap_err().0,
            "web.trusted_proxies[0]"
        );
    }
}
