//! The HTTP side: one reqwest client, one cached token, re-login once on 401.

use crate::response::{self, MinionReturn, RunAll};
use crate::{SaltApiConfig, SaltError, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Salt waits this long for a dead minion's job lookup after `timeout` (the master's
/// default `gather_job_timeout`); the HTTP deadline of a `local` call allows for it.
const GATHER_JOB_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `local_batch` call may take over HTTP beyond the configured timeout: a batch
/// is as slow as its slowest wave, salt gives it no overall deadline.
const BATCH_HTTP_TIMEOUT: Duration = Duration::from_secs(3600);

/// A salt-api client; cheap to clone (clones share the HTTP pool and the token).
#[derive(Clone)]
pub struct SaltApi {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: reqwest::Url,
    cfg: SaltApiConfig,
    timeout: Duration,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for SaltApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltApi")
            .field("url", &self.inner.base.as_str())
            .field("user", &self.inner.cfg.username)
            .finish()
    }
}

impl SaltApi {
    /// A client for `cfg` (checked with [`SaltApiConfig::validate`]); no network yet: the
    /// first call logs in.
    pub fn new(cfg: &SaltApiConfig) -> Result<SaltApi, SaltError> {
        cfg.validate()
            .map_err(|(k, p)| SaltError::Config(format!("{k}: {p}")))?;
        let timeout = cfg
            .timeout_duration()
            .ok_or_else(|| SaltError::Config(format!("timeout: {:?}", cfg.timeout)))?;
        let base = reqwest::Url::parse(&cfg.url)
            .map_err(|e| SaltError::Config(format!("url {:?}: {e}", cfg.url)))?;
        if cfg.insecure {
            tracing::warn!(url = %base, "salt-api: certificate checks are off (insecure = true)");
        } else if cfg.cleartext_off_host() {
            tracing::warn!(url = %base, "salt-api over plain http: the password and token cross the network in clear");
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            // salt-api's CherryPy closes a keep-alive connection idle for 10 s
            // (`server.socket_timeout`); a request sent on one it is closing fails with
            // "connection closed before message completed", and a POST is not safely
            // retried, so idle connections are dropped well before that.
            .pool_idle_timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(cfg.insecure);
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| SaltError::Config(format!("ca_file {path}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SaltError::Config(format!("ca_file {path} is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(SaltError::Config(format!(
                    "ca_file {path} holds no certificate"
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(path) = &cfg.password_file {
            read_password_file(path)?;
        }
        if let Some(path) = &cfg.token_file {
            read_secret_file(path, "token_file")?;
        }
        let http = builder
            .build()
            .map_err(|e| SaltError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(SaltApi {
            inner: Arc::new(Inner {
                http,
                base,
                cfg: cfg.clone(),
                timeout,
                token: Mutex::new(None),
            }),
        })
    }

    /// Client `local`: `fun` on `tgt`, minion id → return; a target matching nothing gives
    /// an empty map, a minion that did not answer within `timeout` is `NoAnswer`.
    pub async fn local(
        &self,
        tgt: &Target,
        fun: &str,
        args: &[Value],
        kwargs: Option<Value>,
        timeout: Duration,
    ) -> Result<BTreeMap<String, MinionReturn>, SaltError> {
        let mut low = lowstate("local", tgt, fun, args, kwargs);
        low["timeout"] = json!(timeout.as_secs().max(1));
        // Tells a function returning `false` from a dead minion (`false` without `ret`).
        low["full_return"] = json!(true);
        let http_timeout = self.inner.timeout + timeout + GATHER_JOB_TIMEOUT;
        let body = self.call(&low, http_timeout).await?;
        response::parse_local(&body)
    }

    /// Client `local_batch` with `batch` ("2", "25%"): the minions in waves; a dead minion
    /// is left out of the map (salt leaves it out).
    pub async fn local_batch(
        &self,
        tgt: &Target,
        fun: &str,
        args: &[Value],
        kwargs: Option<Value>,
        batch: &str,
    ) -> Result<BTreeMap<String, MinionReturn>, SaltError> {
        let mut low = lowstate("local_batch", tgt, fun, args, kwargs);
        low["batch"] = json!(batch);
        let body = self
            .call(&low, self.inner.timeout + BATCH_HTTP_TIMEOUT)
            .await?;
        response::parse_local_batch(&body)
    }

    /// `cmd.run_all` of `script` through a shell (`python_shell: true`) on every minion of
    /// `tgt`; a minion whose return is not a run_all object is `Err(text)` alone.
    pub async fn run_all(
        &self,
        tgt: &Target,
        script: &str,
        timeout: Duration,
    ) -> Result<BTreeMap<String, Result<RunAll, String>>, SaltError> {
        let got = self
            .local(
                tgt,
                "cmd.run_all",
                &[json!(script)],
                Some(json!({"python_shell": true, "timeout": timeout.as_secs().max(1)})),
                timeout,
            )
            .await?;
        Ok(got
            .into_iter()
            .map(|(id, r)| (id, response::run_all_of(r)))
            .collect())
    }

    /// Logs in now (the calls log in on their own; this is for checking a configuration).
    pub async fn login(&self) -> Result<(), SaltError> {
        let mut token = self.inner.token.lock().await;
        *token = Some(self.fresh_token().await?);
        Ok(())
    }

    /// POSTs one lowstate chunk to `/` with the token; on 401 logs in again once.
    async fn call(&self, low: &Value, http_timeout: Duration) -> Result<String, SaltError> {
        let body = json!([low]);
        for attempt in 0..2 {
            let token = {
                let mut cached = self.inner.token.lock().await;
                if attempt > 0 {
                    *cached = None;
                }
                match cached.as_ref() {
                    Some(t) => t.clone(),
                    None => {
                        let t = self.fresh_token().await?;
                        *cached = Some(t.clone());
                        t
                    }
                }
            };
            let res = self
                .inner
                .http
                .post(self.inner.base.clone())
                .header("Accept", "application/json")
                .header("X-Auth-Token", token)
                .json(&body)
                .timeout(http_timeout)
                .send()
                .await
                .map_err(|e| self.transport_error(e))?;
            let status = res.status().as_u16();
            let text = res.text().await.map_err(|e| self.transport_error(e))?;
            match status {
                200..=299 => return Ok(text),
                401 if attempt == 0 => continue,
                401 if self.inner.cfg.token.is_some() || self.inner.cfg.token_file.is_some() => {
                    return Err(SaltError::Auth(format!(
                        "{} refused the configured token (expired or revoked: issue a new one and set token / token_file): {}",
                        self.inner.base,
                        response::error_text(&text)
                    )))
                }
                401 => {
                    return Err(SaltError::Auth(format!(
                        "{} refused the token of user {} right after login: {}",
                        self.inner.base,
                        self.inner.cfg.username,
                        response::error_text(&text)
                    )))
                }
                _ => return Err(self.status_error(status, &text)),
            }
        }
        Err(SaltError::Auth(format!(
            "{} kept refusing user {}",
            self.inner.base, self.inner.cfg.username
        )))
    }

    async fn fresh_token(&self) -> Result<String, SaltError> {
        let cfg = &self.inner.cfg;
        // A token issued beforehand is the login: there is nothing to renew it with.
        if let Some(t) = &cfg.token {
            return Ok(t.clone());
        }
        if let Some(path) = &cfg.token_file {
            return read_secret_file(path, "token_file");
        }
        let password = match (&cfg.password, &cfg.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(path)) => read_password_file(path)?,
            (None, None) => return Err(SaltError::Config("no password".into())),
        };
        let url = self
            .inner
            .base
            .join("login")
            .map_err(|e| SaltError::Config(format!("url: {e}")))?;
        let res = self
            .inner
            .http
            .post(url)
            .header("Accept", "application/json")
            .json(&json!({"username": cfg.username, "password": password, "eauth": cfg.eauth}))
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|e| self.transport_error(e))?;
        match status {
            200..=299 => response::parse_login(&text),
            401 | 403 => Err(SaltError::Auth(format!(
                "{} refused user {} with eauth {}: {}",
                self.inner.base,
                cfg.username,
                cfg.eauth,
                response::error_text(&text)
            ))),
            _ => Err(self.status_error(status, &text)),
        }
    }

    fn status_error(&self, status: u16, body: &str) -> SaltError {
        let text = response::error_text(body);
        if status == 504 {
            SaltError::Timeout(format!("{} answered 504: {text}", self.inner.base))
        } else {
            SaltError::Api { status, text }
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> SaltError {
        let base = &self.inner.base;
        // reqwest's Display stops at "error sending request": the cause says why.
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why = format!("{why}: {s}");
            source = s.source();
        }
        if e.is_timeout() {
            SaltError::Timeout(format!("{base}: no answer in time ({why})"))
        } else if e.is_connect() || e.is_request() {
            SaltError::Unreachable(format!("{base}: {why}"))
        } else {
            SaltError::Malformed(format!("{base}: {why}"))
        }
    }
}

fn lowstate(client: &str, tgt: &Target, fun: &str, args: &[Value], kwargs: Option<Value>) -> Value {
    let (tgt, tgt_type) = tgt.to_json();
    let mut low = json!({"client": client, "tgt": tgt, "tgt_type": tgt_type, "fun": fun});
    if !args.is_empty() {
        low["arg"] = Value::Array(args.to_vec());
    }
    if let Some(kw) = kwargs {
        low["kwarg"] = kw;
    }
    low
}

fn read_password_file(path: &str) -> Result<String, SaltError> {
    read_secret_file(path, "password_file")
}

/// A secret kept in a file (`key` names the setting in errors); a trailing newline is
/// not part of it.
fn read_secret_file(path: &str, key: &str) -> Result<String, SaltError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SaltError::Config(format!("{key} {path}: {e}")))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}
