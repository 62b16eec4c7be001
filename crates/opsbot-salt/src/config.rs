//! The salt-api connection settings that `[cmdb.salt]` and `[deploy.salt]` both embed.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How to reach and log in to salt-api. The password never appears in `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SaltApiConfig {
    /// `https://salt-master:8000`; plain http is allowed (warned unless loopback).
    pub url: String,
    /// The eauth backend: `file`, `pam`, `ldap`, `sharedsecret`, …
    #[serde(default = "default_eauth")]
    pub eauth: String,
    pub username: String,
    /// Never written back out (a configuration dump shows no secret).
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// A file holding the password (trailing newline ignored), instead of `password`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// A salt-api token issued beforehand (`POST /login` with a long `token_expire`),
    /// instead of a password: sent as is, never renewed; once salt-api refuses it,
    /// every call fails with an authentication error until it is replaced.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// A file holding such a token, re-read at every call that needs one (rotation).
    #[serde(default)]
    pub token_file: Option<String>,
    /// PEM CA(s) that signed salt-api's certificate.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accept any certificate: refused unless set, and warned when set.
    #[serde(default)]
    pub insecure: bool,
    /// Per HTTP call (a `local` call adds its own salt timeout on top).
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_eauth() -> String {
    "file".into()
}

fn default_timeout() -> String {
    "30s".into()
}

impl std::fmt::Debug for SaltApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltApiConfig")
            .field("url", &self.url)
            .field("eauth", &self.eauth)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_file", &self.password_file)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("token_file", &self.token_file)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SaltApiConfig {
    /// Checks what can be checked without the network: `Err((key, problem))`, the key
    /// relative to this section (`url`, `password`, …).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, p: String| Err((k.to_string(), p));
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(u) => {
                return bad(
                    "url",
                    format!("must be http(s)://host:port, not scheme {}", u.scheme()),
                )
            }
            Err(e) => return bad("url", format!("{:?} is not a URL: {e}", self.url)),
        }
        if self.eauth.trim().is_empty() {
            return bad(
                "eauth",
                "must name an eauth backend (file, pam, ldap, …)".into(),
            );
        }
        if self.username.trim().is_empty() {
            return bad("username", "must not be empty".into());
        }
        let given = [
            self.password.is_some(),
            self.password_file.is_some(),
            self.token.is_some(),
            self.token_file.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        match given {
            1 => {}
            0 => {
                return bad(
                    "password",
                    "give one of password, password_file, token, token_file".into(),
                )
            }
            _ => {
                return bad(
                    "password",
                    "give only one of password, password_file, token, token_file".into(),
                )
            }
        }
        match self.timeout_duration() {
            Some(d) if !d.is_zero() => {}
            _ => {
                return bad(
                    "timeout",
                    format!("{:?} is not a duration like 30s", self.timeout),
                )
            }
        }
        Ok(())
    }

    /// The per-call timeout, `None` when it does not parse.
    pub fn timeout_duration(&self) -> Option<Duration> {
        opsbot_core::duration::parse_duration(&self.timeout)
    }

    /// True when the URL is plain http to somewhere other than loopback (worth a warning).
    pub fn cleartext_off_host(&self) -> bool {
        reqwest::Url::parse(&self.url).is_ok_and(|u| {
            u.scheme() == "http"
                && !matches!(
                    u.host_str(),
                    Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_src: &str) -> SaltApiConfig {
        serde_json::from_value(serde_json::from_str(toml_src).unwrap()).unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        let c = cfg(r#"{"url":"http://127.0.0.1:8000","username":"ops","password":"pw"}"#);
        assert_eq!(c.eauth, "file");
        assert_eq!(c.timeout_duration(), Some(Duration::from_secs(30)));
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.cleartext_off_host());
        let mut remote = c.clone();
        remote.url = "http://salt:8000".into();
        assert!(remote.cleartext_off_host());
        let mut none = c.clone();
        none.password = None;
        assert_eq!(none.validate().unwrap_err().0, "password");
        let mut url = c.clone();
        url.url = "ftp://x".into();
        assert_eq!(url.validate().unwrap_err().0, "url");
        let mut t = c.clone();
        t.timeout = "soon".into();
        assert_eq!(t.validate().unwrap_err().0, "timeout");
        // A token instead of the password; never both.
        let mut token = c.clone();
        token.password = None;
        token.token = Some("t0k3n".into());
        assert_eq!(token.validate(), Ok(()));
        assert!(!format!("{token:?}").contains("t0k3n"));
        assert!(!serde_json::to_string(&token).unwrap().contains("t0k3n"));
        let mut both = c;
        both.token_file = Some("/etc/opsbot/salt.token".into());
        let (key, problem) = both.validate().unwrap_err();
        assert_eq!(key, "password");
        assert!(problem.contains("only one"), "{problem}");
    }

    #[test]
    fn unknown_keys_are_refused_and_the_password_is_hidden() {
        let r: Result<SaltApiConfig, _> = serde_json::from_str(
            r#"{"url":"http://h:1","username":"u","password":"pw","pasword":"x"}"#,
        );
        assert!(r.is_err());
        let c = cfg(r#"{"url":"http://h:1","username":"u","password":"hunter2"}"#);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && dbg.contains("***"), "{dbg}");
    }
}
