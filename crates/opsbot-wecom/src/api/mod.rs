//! WeCom API client (PROTOCOLS.md §2): access-token cache, app messages, app chats,
//! group robots and OAuth user lookup, over reqwest with rustls (aws-lc-rs).
//!
//! Invariants:
//! - One gettoken per app per token lifetime: tokens are cached per app and refreshed
//!   by a single caller while the others wait (single flight).
//! - A rejected token (40001/40014/42001) is refreshed and the call retried exactly once.
//! - Sends wait for the client-side rate limits (30/min per app and member, 20/min per
//!   robot), because WeCom drops the excess silently or blocks for a minute. With
//!   `limit_windows` set, the limits are counted in windows every instance shares.
//! - No secret (app secret, access token, robot key) appears in an error or a log line.

mod types;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value};

use crate::card::CardUpdate;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result, RATE_LIMIT_BACKOFF};
use crate::http::{self, Reply, WECOM};
use crate::ratelimit::SlidingWindowLimiter;
use crate::token_cache::{CachedToken, TokenCache};
use opsbot_core::RateWindows;
use sha1::{Digest, Sha1};

pub use crate::http::redact_secrets;

pub use types::{
    AppMessage, NewAppChat, Recipients, RobotMessage, SendReceipt, TextCard, UserIdentity,
};

/// Where WeCom lives.
pub const DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com";

/// One second over WeCom's minute, to absorb clock and network skew between us and it.
const LIMIT_WINDOW: Duration = Duration::from_secs(61);

/// Tuning of a [`WecomClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme and host, without `/cgi-bin`; default [`DEFAULT_API_BASE`].
    pub api_base: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// App messages per app and member per minute; `None` disables the limiter.
    pub member_limit_per_minute: Option<usize>,
    /// Messages per group robot per minute; `None` disables the limiter.
    pub robot_limit_per_minute: Option<usize>,
    /// Where the limits above are counted: `None` in this process's memory, or windows
    /// every instance shares, so N instances together stay within WeCom's limits.
    pub limit_windows: Option<Arc<dyn RateWindows>>,
    /// The longest a send waits for those limits; past it the send fails with
    /// [`Error::Throttled`] (retryable, nothing sent). `None`: it waits as long as needed.
    pub limit_wait: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            member_limit_per_minute: Some(30),
            robot_limit_per_minute: Some(20),
            limit_windows: None,
            limit_wait: None,
        }
    }
}

/// Identity of one self-built app: corp id, agent id and the app's secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AppCredentials {
    /// CorpID (`ww…`).
    pub corp_id: String,
    /// AgentId of the app.
    pub agent_id: i64,
    secret: String,
}

impl AppCredentials {
    /// Credentials for one app.
    pub fn new(corp_id: impl Into<String>, agent_id: i64, secret: impl Into<String>) -> Self {
        Self {
            corp_id: corp_id.into(),
            agent_id,
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A WeCom API client. Cheap to clone; clones share the HTTP pool, token caches and
/// rate limiters.
#[derive(Clone, Debug)]
pub struct WecomClient {
    inner: Arc<ClientInner>,
}

/// `corp:agent:user`, the user lower-cased.
type MemberKey = String;

#[derive(Debug)]
struct ClientInner {
    http: reqwest::Client,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    tokens: Mutex<HashMap<AppCredentials, Arc<TokenSlot>>>,
    member_limiter: Option<SlidingWindowLimiter<MemberKey>>,
    robot_limiter: Option<SlidingWindowLimiter<String>>,
}

/// One app's cached token.
#[derive(Debug)]
struct TokenSlot {
    credentials: AppCredentials,
    cached: TokenCache,
}

impl Reply {
    fn into_result(self, api: &'static str) -> Result<Map<String, Value>> {
        if self.errcode == 0 {
            Ok(self.body)
        } else {
            Err(api_error(api, self.errcode, self.errmsg))
        }
    }
}

impl WecomClient {
    /// A client on the system clock.
    pub fn new(config: ClientConfig) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A client reading time from `clock` (token expiry, rate limits).
    pub fn with_clock(config: ClientConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let http = http::client(config.timeout, config.connect_timeout)?;
        let limiter = |limit: usize, scope: &str| match &config.limit_windows {
            Some(shared) => SlidingWindowLimiter::with_windows(
                limit,
                LIMIT_WINDOW,
                clock.clone(),
                shared.clone(),
                scope,
            ),
            None => SlidingWindowLimiter::new(limit, LIMIT_WINDOW, clock.clone()),
        };
        let member_limiter = config
            .member_limit_per_minute
            .map(|limit| limiter(limit, "wecom:member"));
        let robot_limiter = config
            .robot_limit_per_minute
            .map(|limit| limiter(limit, "wecom:robot"));
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                config,
                clock,
                tokens: Mutex::new(HashMap::new()),
                member_limiter,
                robot_limiter,
            }),
        })
    }

    /// The API of one app. Calling this again with the same credentials shares the token.
    pub fn app(&self, credentials: AppCredentials) -> AppClient {
        let slot = {
            let mut tokens = self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens
                .entry(credentials.clone())
                .or_insert_with(|| {
                    Arc::new(TokenSlot {
                        credentials,
                        cached: TokenCache::default(),
                    })
                })
                .clone()
        };
        AppClient {
            client: self.clone(),
            slot,
        }
    }

    /// Post to a group robot (`webhook/send?key=`). Waits for the per-robot limit; after a
    /// 45009 the robot is held back a full minute before the next message.
    pub async fn webhook_send(&self, key: &str, message: &RobotMessage) -> Result<()> {
        const API: &str = "webhook/send";
        if key.is_empty() {
            return Err(Error::InvalidArgument("robot key is empty".into()));
        }
        message.validate()?;
        if let Some(limiter) = &self.inner.robot_limiter {
            self.wait_for(API, limiter, &[robot_limit_key(key)]).await?;
        }
        let request = self
            .request(Method::POST, API)
            .query(&[("key", key)])
            .json(&message.to_json());
        let reply = self.execute(API, request).await?;
        if reply.errcode == 45009 {
            if let Some(limiter) = &self.inner.robot_limiter {
                limiter
                    .penalize(robot_limit_key(key), RATE_LIMIT_BACKOFF)
                    .await;
            }
        }
        reply.into_result(API).map(drop)
    }

    /// Waits until `keys` are within `limiter`, or fails with [`Error::Throttled`] when
    /// that would take longer than `limit_wait`.
    async fn wait_for(
        &self,
        api: &'static str,
        limiter: &SlidingWindowLimiter<String>,
        keys: &[String],
    ) -> Result<()> {
        limiter
            .acquire_all_within(keys, self.inner.config.limit_wait)
            .await
            .map_err(|wait| Error::Throttled { api, wait })
    }

    fn request(&self, method: Method, api: &str) -> reqwest::RequestBuilder {
        let base = self.inner.config.api_base.trim_end_matches('/');
        self.inner
            .http
            .request(method, format!("{base}/cgi-bin/{api}"))
    }

    /// One HTTP exchange with WeCom, counted for `/metrics`: calls, and errors by
    /// errcode (or `transport`, `http_<status>`, `invalid_response`).
    async fn execute(&self, api: &'static str, request: reqwest::RequestBuilder) -> Result<Reply> {
        let started = std::time::Instant::now();
        let result = http::execute(WECOM, self.inner.config.timeout, api, request, false).await;
        metrics::counter!("opsbot_wecom_api_calls_total", "api" => api).increment(1);
        metrics::histogram!("opsbot_wecom_api_duration_seconds", "api" => api)
            .record(started.elapsed().as_secs_f64());
        let error = match &result {
            Ok(reply) if reply.errcode == 0 => None,
            Ok(reply) => Some(reply.errcode.to_string()),
            Err(Error::HttpStatus { status, .. }) => Some(format!("http_{status}")),
            Err(Error::InvalidResponse { .. }) => Some("invalid_response".to_string()),
            Err(_) => Some("transport".to_string()),
        };
        if let Some(code) = error {
            metrics::counter!("opsbot_wecom_api_errors_total", "api" => api, "errcode" => code)
                .increment(1);
        }
        result
    }

    /// Reply once through a smart robot's `response_url` (the robot's active reply:
    /// plain JSON, single use, valid for one hour). The URL must lie under this client's
    /// `api_base`: it arrives inside a callback, and opsbot posts nowhere else.
    pub async fn aibot_respond(&self, response_url: &str, message: &Value) -> Result<()> {
        const API: &str = "aibot/response";
        let base = self.inner.config.api_base.trim_end_matches('/');
        let inside = response_url
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'));
        if !inside {
            return Err(Error::InvalidArgument(format!(
                "response_url is not under the configured api_base {base}"
            )));
        }
        let request = self.inner.http.post(response_url).json(message);
        let reply = self.execute(API, request).await?;
        match reply.errcode {
            0 => Ok(()),
            -1 => Err(Error::SystemBusy { api: API }),
            errcode => Err(Error::ResponseUrlRefused {
                errcode,
                errmsg: reply.errmsg,
            }),
        }
    }
}

/// A robot's key in the limits: its webhook key is a secret, and shared windows keep
/// their keys in plain sight, so a digest stands for it.
fn robot_limit_key(key: &str) -> String {
    let digest = Sha1::digest(key.as_bytes());
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// The API of one app, with its own token cache. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppClient {
    client: WecomClient,
    slot: Arc<TokenSlot>,
}

impl AppClient {
    /// The app's AgentId.
    pub fn agent_id(&self) -> i64 {
        self.slot.credentials.agent_id
    }

    /// Forget the cached token, e.g. after rotating the secret.
    pub async fn invalidate_token(&self) {
        self.slot.cached.clear().await;
    }

    /// `message/send`. Waits until every named user is under the per-member limit.
    pub async fn send(&self, to: &Recipients, message: &AppMessage) -> Result<SendReceipt> {
        const API: &str = "message/send";
        to.validate()?;
        message.validate()?;
        if let Some(limiter) = &self.client.inner.member_limiter {
            let credentials = &self.slot.credentials;
            // WeCom treats userids case-insensitively (it lower-cases them in replies).
            let keys: Vec<MemberKey> = to
                .named_users()
                .map(|user| {
                    format!(
                        "{}:{}:{}",
                        credentials.corp_id,
                        credentials.agent_id,
                        user.to_lowercase()
                    )
                })
                .collect();
            self.client.wait_for(API, limiter, &keys).await?;
        }
        let mut body = Map::new();
        to.write_json(&mut body);
        body.insert("agentid".into(), Value::from(self.agent_id()));
        message.write_json(&mut body);
        let reply = self
            .call(Method::POST, API, &[], Some(Value::Object(body)))
            .await?;
        let receipt = SendReceipt::from_reply(&reply);
        if receipt.is_partial() {
            tracing::warn!(
                agent_id = self.agent_id(),
                invalid_users = ?receipt.invalid_users,
                invalid_parties = ?receipt.invalid_parties,
                invalid_tags = ?receipt.invalid_tags,
                unlicensed_users = ?receipt.unlicensed_users,
                "message/send skipped some recipients"
            );
        }
        Ok(receipt)
    }

    /// `message/send` with text content (≤ 2048 bytes).
    pub async fn send_text(&self, to: &Recipients, content: &str) -> Result<SendReceipt> {
        self.send(to, &AppMessage::Text(content.to_owned())).await
    }

    /// `message/send` with markdown content (≤ 2048 bytes).
    pub async fn send_markdown(&self, to: &Recipients, content: &str) -> Result<SendReceipt> {
        self.send(to, &AppMessage::Markdown(content.to_owned()))
            .await
    }

    /// `message/send` with a text card.
    pub async fn send_textcard(&self, to: &Recipients, card: &TextCard) -> Result<SendReceipt> {
        self.send(to, &AppMessage::TextCard(card.clone())).await
    }

    /// `message/update_template_card`: change the copies of a sent card with a one-time
    /// `response_code` (CARDS.md §4.2). Any refusal but a rejected token (refreshed
    /// once), the frequency limits (45009, 45033) and "system busy" (-1) is
    /// [`Error::CardUpdateRefused`], never retryable: WeCom may have spent the code, and
    /// the answer to a second try would only say so.
    pub async fn update_template_card(&self, update: &CardUpdate) -> Result<()> {
        const API: &str = "message/update_template_card";
        update.validate()?;
        let body = update.to_json(self.agent_id());
        match self.call(Method::POST, API, &[], Some(body)).await {
            Ok(_) => Ok(()),
            Err(
                Error::Api {
                    errcode, errmsg, ..
                }
                | Error::AllRecipientsInvalid {
                    errcode, errmsg, ..
                },
            ) => Err(Error::CardUpdateRefused { errcode, errmsg }),
            Err(other) => Err(other),
        }
    }

    /// `appchat/create`; returns the chat id (WeCom's if none was requested).
    pub async fn appchat_create(&self, chat: &NewAppChat) -> Result<String> {
        const API: &str = "appchat/create";
        let body = chat.to_json()?;
        let reply = self.call(Method::POST, API, &[], Some(body)).await?;
        reply
            .get("chatid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| chat.chat_id.clone())
            .ok_or_else(|| Error::InvalidResponse {
                api: API,
                service: WECOM,
                reason: "no chatid in the answer".into(),
            })
    }

    /// `appchat/send` to a chat created by this app.
    pub async fn appchat_send(&self, chat_id: &str, message: &AppMessage) -> Result<()> {
        const API: &str = "appchat/send";
        if chat_id.is_empty() {
            return Err(Error::InvalidArgument("chat id is empty".into()));
        }
        message.validate()?;
        let mut body = Map::new();
        body.insert("chatid".into(), Value::String(chat_id.to_owned()));
        message.write_json(&mut body);
        self.call(Method::POST, API, &[], Some(Value::Object(body)))
            .await
            .map(drop)
    }

    /// `auth/getuserinfo`: who owns the OAuth `code` (single use, valid 5 minutes).
    pub async fn getuserinfo(&self, code: &str) -> Result<UserIdentity> {
        const API: &str = "auth/getuserinfo";
        if code.is_empty() {
            return Err(Error::InvalidArgument("OAuth code is empty".into()));
        }
        let reply = self.call(Method::GET, API, &[("code", code)], None).await?;
        UserIdentity::from_reply(&reply).ok_or_else(|| Error::InvalidResponse {
            api: API,
            service: WECOM,
            reason: "neither userid nor openid in the answer".into(),
        })
    }

    /// Call an API that takes `access_token`, refreshing the token and retrying exactly
    /// once if WeCom rejects it.
    async fn call(
        &self,
        method: Method,
        api: &'static str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Map<String, Value>> {
        let body = body.as_ref();
        let call = |token: String| {
            let method = method.clone();
            async move { self.call_once(method, api, &token, query, body).await }
        };
        self.slot
            .cached
            .call_with(WECOM, api, || self.token(), call)
            .await?
            .into_result(api)
    }

    async fn call_once(
        &self,
        method: Method,
        api: &'static str,
        token: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply> {
        let mut request = self
            .client
            .request(method, api)
            .query(&[("access_token", token)])
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.client.execute(api, request).await
    }

    /// A usable token, fetching one if the cache is empty or near expiry.
    async fn token(&self) -> Result<String> {
        let now = self.client.inner.clock.now();
        self.slot.cached.get(now, || self.fetch_token(now)).await
    }

    async fn fetch_token(&self, now: Duration) -> Result<CachedToken> {
        const API: &str = "gettoken";
        let credentials = &self.slot.credentials;
        tracing::info!(
            corp_id = %credentials.corp_id,
            agent_id = credentials.agent_id,
            "fetching a WeCom access token"
        );
        let request = self.client.request(Method::GET, API).query(&[
            ("corpid", credentials.corp_id.as_str()),
            ("corpsecret", credentials.secret.as_str()),
        ]);
        let reply = self.client.execute(API, request).await?;
        if matches!(reply.errcode, 40001 | 40013 | 40091 | 41002 | 41004) {
            return Err(Error::InvalidCredential {
                corp_id: credentials.corp_id.clone(),
                errcode: reply.errcode,
                errmsg: reply.errmsg,
            });
        }
        let body = reply.into_result(API)?;
        CachedToken::from_answer(API, WECOM, &body, now)
    }
}

/// Map a non-zero errcode to the typed error (PROTOCOLS.md §2.7).
fn api_error(api: &'static str, errcode: i64, errmsg: String) -> Error {
    match errcode {
        40001 | 40014 | 42001 => Error::AccessTokenRejected {
            api,
            errcode,
            errmsg,
        },
        45009 => Error::RateLimited { api, errmsg },
        45033 => Error::TooManyConcurrent { api },
        -1 => Error::SystemBusy { api },
        60020 => Error::UntrustedIp {
            api,
            from_ip: parse_from_ip(&errmsg),
            errmsg,
        },
        81013 | 82001 => Error::AllRecipientsInvalid {
            api,
            errcode,
            errmsg,
        },
        93000 => Error::InvalidRobotKey,
        40029 => Error::InvalidOauthCode,
        48002 => Error::ApiForbidden { api, errmsg },
        _ => Error::Api {
            api,
            errcode,
            errmsg,
        },
    }
}

/// The address in a 60020 errmsg: `"..., from ip: 1.2.3.4, more info at ..."`.
pub fn parse_from_ip(errmsg: &str) -> Option<String> {
    let start = errmsg.find("from ip:")? + "from ip:".len();
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
    fn from_ip_is_parsed() {
        let msg = "not allow to access from your ip, hint: [1700000000_1_abc], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e=60020";
        assert_eq!(parse_from_ip(msg).as_deref(), Some("203.0.113.7"));
        assert_eq!(
            parse_from_ip("from ip: 2001:db8::1, x").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(parse_from_ip("no address here"), None);
        let err = api_error("message/send", 60020, msg.into());
        assert!(err.to_string().contains("203.0.113.7"));
        assert!(err.to_string().contains("企业可信IP"));
        assert!(!err.is_retryable() && err.is_config_error());
    }

    #[test]
    fn classification() {
        let limited = api_error("webhook/send", 45009, "api freq out of limit".into());
        assert!(limited.is_retryable());
        assert!(limited.retry_after().unwrap() >= Duration::from_secs(60));
        let busy = api_error("message/send", 45033, String::new());
        assert!(busy.is_retryable() && busy.retry_after().unwrap() < Duration::from_secs(10));
        for permanent in [81013, 82001, 93000] {
            let err = api_error("message/send", permanent, String::new());
            assert!(!err.is_retryable(), "{permanent}");
            assert_eq!(err.code(), Some(permanent));
        }
        let refused = Error::CardUpdateRefused {
            errcode: 40058,
            errmsg: "response_code used".into(),
        };
        assert!(!refused.is_retryable() && !refused.outcome_unknown());
        assert_eq!(refused.code(), Some(40058));
    }
}
