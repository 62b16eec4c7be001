//! WeChat Official Accounts (公众号: 服务号, 订阅号, 测试号; CHANNELS.md §2): the plain
//! callback signature, and an API client with the account's access-token cache and
//! customer-service messages (客服消息), the way to answer after the 5 s passive reply.
//!
//! Safe mode (安全模式) reuses [`crate::WecomCrypto`] with the AppID as receive id, and
//! messages and passive replies are the XML of [`crate::message`].
//!
//! Invariants, as for the WeCom client: one token fetch per lifetime (single flight), a
//! rejected token (40001/40014/42001) is refreshed and the call retried exactly once, and
//! no secret (AppSecret, access token) appears in an error or a log line.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::crypto::{sha1_sorted, signatures_match};
use crate::error::{Error, Result};
use crate::http::{self, Reply, WECHAT};
use crate::token_cache::{CachedToken, TokenCache};

/// Where WeChat's API lives.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// Customer-service text content limit (WeChat answers 45002 above it).
pub const TEXT_MAX_BYTES: usize = 2048;

/// `lowercase_hex(sha1(concat(sort([token, timestamp, nonce]))))`: the `signature` of
/// every Official Account callback, in every encryption mode.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sha1_sorted(&mut [token.as_bytes(), timestamp.as_bytes(), nonce.as_bytes()])
}

/// Check a callback's `signature` in constant time.
pub fn verify_signature(
    token: &str,
    signature_hex: &str,
    timestamp: &str,
    nonce: &str,
) -> Result<()> {
    if signatures_match(&signature(token, timestamp, nonce), signature_hex) {
        Ok(())
    } else {
        Err(Error::MpSignature)
    }
}

/// Tuning of an [`MpClient`].
#[derive(Debug, Clone)]
pub struct MpClientConfig {
    /// Scheme and host, without `/cgi-bin`; default [`DEFAULT_API_BASE`].
    pub api_base: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
}

impl Default for MpClientConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// An account's AppID and AppSecret.
#[derive(Clone, PartialEq, Eq)]
pub struct MpCredentials {
    /// AppID (`wx…`).
    pub app_id: String,
    secret: String,
}

impl MpCredentials {
    /// The account's credentials.
    pub fn new(app_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for MpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpCredentials")
            .field("app_id", &self.app_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The API of one Official Account. Cheap to clone; clones share the token.
#[derive(Clone, Debug)]
pub struct MpClient {
    inner: Arc<MpInner>,
}

#[derive(Debug)]
struct MpInner {
    http: reqwest::Client,
    config: MpClientConfig,
    clock: Arc<dyn Clock>,
    credentials: MpCredentials,
    token: TokenCache,
}

impl MpClient {
    /// A client on the system clock.
    pub fn new(config: MpClientConfig, credentials: MpCredentials) -> Result<Self> {
        Self::with_clock(config, credentials, Arc::new(SystemClock::new()))
    }

    /// A client reading token expiry from `clock`.
    pub fn with_clock(
        config: MpClientConfig,
        credentials: MpCredentials,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let http = http::client(config.timeout, config.connect_timeout)?;
        Ok(Self {
            inner: Arc::new(MpInner {
                http,
                config,
                clock,
                credentials,
                token: TokenCache::default(),
            }),
        })
    }

    /// The account's AppID.
    pub fn app_id(&self) -> &str {
        &self.inner.credentials.app_id
    }

    /// Forget the cached token, e.g. after rotating the AppSecret.
    pub async fn invalidate_token(&self) {
        self.inner.token.clear().await;
    }

    /// `message/custom/send` with text (≤ 2048 bytes) to `open_id`. Only allowed while
    /// the user's customer-service window is open (45015 / 45047 otherwise).
    pub async fn send_text(&self, open_id: &str, content: &str) -> Result<()> {
        const API: &str = "message/custom/send";
        if open_id.is_empty() {
            return Err(Error::InvalidArgument("openid is empty".into()));
        }
        if content.is_empty() {
            return Err(Error::InvalidArgument("text content is empty".into()));
        }
        if content.len() > TEXT_MAX_BYTES {
            return Err(Error::ContentTooLong {
                what: "customer-service text",
                len: content.len(),
                limit: TEXT_MAX_BYTES,
            });
        }
        let body = json!({ "touser": open_id, "msgtype": "text", "text": { "content": content } });
        self.call(API, &body).await.map(drop)
    }

    /// POST an API that takes `access_token`, refreshing the token and retrying exactly
    /// once if WeChat rejects it.
    async fn call(&self, api: &'static str, body: &Value) -> Result<Map<String, Value>> {
        let call = |token: String| async move { self.call_once(api, &token, body).await };
        let reply = self
            .inner
            .token
            .call_with(WECHAT, api, || self.token(), call)
            .await?;
        into_result(api, reply)
    }

    async fn call_once(&self, api: &'static str, token: &str, body: &Value) -> Result<Reply> {
        let request = self
            .request(reqwest::Method::POST, api)
            .query(&[("access_token", token)])
            .json(body);
        http::execute(WECHAT, self.inner.config.timeout, api, request, false).await
    }

    fn request(&self, method: reqwest::Method, api: &str) -> reqwest::RequestBuilder {
        let base = self.inner.config.api_base.trim_end_matches('/');
        self.inner
            .http
            .request(method, format!("{base}/cgi-bin/{api}"))
    }

    async fn token(&self) -> Result<String> {
        let now = self.inner.clock.now();
        self.inner.token.get(now, || self.fetch_token(now)).await
    }

    /// `cgi-bin/token` (client_credential), which answers without an errcode on success.
    async fn fetch_token(&self, now: Duration) -> Result<CachedToken> {
        const API: &str = "token";
        let credentials = &self.inner.credentials;
        tracing::info!(app_id = %credentials.app_id, "fetching a WeChat access token");
        let request = self.request(reqwest::Method::GET, API).query(&[
            ("grant_type", "client_credential"),
            ("appid", credentials.app_id.as_str()),
            ("secret", credentials.secret.as_str()),
        ]);
        let reply = http::execute(WECHAT, self.inner.config.timeout, API, request, true).await?;
        if matches!(reply.errcode, 40001 | 40002 | 40013 | 40125 | 41002 | 41004) {
            return Err(Error::WechatCredential {
                app_id: credentials.app_id.clone(),
                errcode: reply.errcode,
                errmsg: reply.errmsg,
            });
        }
        let body = into_result(API, reply)?;
        CachedToken::from_answer(API, WECHAT, &body, now)
    }
}

fn into_result(api: &'static str, reply: Reply) -> Result<Map<String, Value>> {
    if reply.errcode == 0 {
        Ok(reply.body)
    } else {
        Err(wechat_error(api, reply.errcode, reply.errmsg))
    }
}

/// Map a non-zero WeChat errcode to the typed error.
fn wechat_error(api: &'static str, errcode: i64, errmsg: String) -> Error {
    match errcode {
        40001 | 40014 | 42001 => Error::AccessTokenRejected {
            api,
            errcode,
            errmsg,
        },
        40164 => Error::WechatUntrustedIp {
            api,
            from_ip: parse_invalid_ip(&errmsg),
            errmsg,
        },
        45015 => Error::ServiceWindowClosed { errmsg },
        45047 => Error::ServiceQuotaExhausted { errmsg },
        _ => Error::WechatApi {
            api,
            errcode,
            errmsg,
        },
    }
}

/// The address in a 40164 errmsg: `"invalid ip 203.0.113.7 ipv6 ::ffff:…, not in whitelist"`.
fn parse_invalid_ip(errmsg: &str) -> Option<String> {
    let start = errmsg.find("invalid ip")? + "invalid ip".len();
    let ip: String = errmsg[start..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':'))
        .collect();
    (!ip.is_empty()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_signature() {
        // wechatpy's check_signature example values.
        let sig = signature("spamtest", "1409735669", "1320562132");
        assert_eq!(sig, "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a");
        assert!(verify_signature("spamtest", &sig, "1409735669", "1320562132").is_ok());
        let err =
            verify_signature("spamtest", &"0".repeat(40), "1409735669", "1320562132").unwrap_err();
        assert_eq!(err.code(), Some(-40001));
    }

    #[test]
    fn errcodes_are_typed() {
        let closed = wechat_error(
            "message/custom/send",
            45015,
            "response out of time limit".into(),
        );
        assert!(matches!(closed, Error::ServiceWindowClosed { .. }) && !closed.is_retryable());
        assert_eq!(closed.code(), Some(45015));
        let quota = wechat_error(
            "message/custom/send",
            45047,
            "out of response count limit".into(),
        );
        assert!(matches!(quota, Error::ServiceQuotaExhausted { .. }) && !quota.is_retryable());
        let ip = wechat_error(
            "message/custom/send",
            40164,
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: x".into(),
        );
        assert!(ip.to_string().contains("203.0.113.7") && ip.to_string().contains("IP白名单"));
        assert!(ip.is_config_error());
        let busy = wechat_error(
            "message/custom/send",
            45009,
            "reach max api daily quota limit".into(),
        );
        assert!(busy.is_retryable() && busy.retry_after().is_some());
        assert!(!format!("{:?}", MpCredentials::new("wx1", "topsecret")).contains("topsecret"));
    }
}
