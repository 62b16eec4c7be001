//! The crate's single error type: callback-crypto failures carry the codes of
//! Tencent's reference `WXBizMsgCrypt` library, API failures carry the WeCom or WeChat
//! `errcode`, and every variant says what an operator should do about it.
//!
//! Messages never contain a secret: no Token, EncodingAESKey, app secret,
//! access token or robot key is ever formatted into an error.

use std::time::Duration;

use crate::crypto::Peer;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `opsbot-wecom`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- callback crypto (codes from WXBizMsgCrypt ierror.py) -------------------------------
    /// -40001: the signature over (token, timestamp, nonce, Encrypt) does not match.
    /// Says where the Token is set for the peer that sent it.
    #[error(
        "callback signature mismatch: msg_signature is not sha1(sort(token, timestamp, nonce, \
         Encrypt)); check that the Token matches {}",
        .0.token_setting()
    )]
    ValidateSignature(Peer),

    /// -40001: an Official Account's `signature` over (token, timestamp, nonce) does not
    /// match (every mode signs the query so; safe mode adds `msg_signature`).
    #[error(
        "callback signature mismatch: signature is not sha1(sort(token, timestamp, nonce)); \
         check that the Token matches {}",
        Peer::OfficialAccount.token_setting()
    )]
    MpSignature,

    /// -40001 as well: the request timestamp is outside the accepted window (a replay or a
    /// badly skewed clock). The reference library has no such check; it shares the
    /// signature code because both mean "this request is not authentic now".
    #[error("callback timestamp {timestamp:?} rejected: {reason}")]
    StaleTimestamp {
        /// The timestamp exactly as received (not secret).
        timestamp: String,
        /// Why it was refused.
        reason: String,
    },

    /// -40002: the callback body is not the XML envelope we expect.
    #[error("callback XML is malformed: {0}")]
    ParseXml(String),

    /// -40004: the EncodingAESKey does not decode to 32 bytes.
    #[error(
        "EncodingAESKey is invalid ({0}); it must be the 43-character key shown in the WeCom \
         admin console"
    )]
    IllegalAesKey(&'static str),

    /// -40005: the decrypted receive id (CorpID, AppID, or `""` for robots) is not ours.
    #[error("{}", receive_id_mismatch(*.peer, .expected, .actual))]
    ValidateCorpid {
        /// Who the callbacks are configured to come from.
        peer: Peer,
        /// The configured receive id.
        expected: String,
        /// What the message carried (lossy UTF-8, truncated).
        actual: String,
    },

    /// -40007: AES-CBC decryption or the strict PKCS#7 (32-byte block) check failed.
    #[error("decrypting Encrypt failed: {0}")]
    DecryptAes(&'static str),

    /// -40008: the decrypted buffer's length fields are inconsistent.
    #[error("decrypted callback buffer is malformed: {0}")]
    IllegalBuffer(&'static str),

    /// -40010: Encrypt / echostr is not base64.
    #[error("the encrypted value (Encrypt, encrypt or echostr) is not valid base64")]
    DecodeBase64,

    /// -40002 as well: a JSON callback (the smart robot's) is not the JSON we expect.
    #[error("callback JSON is malformed: {0}")]
    ParseJson(String),

    // ---- plaintext message XML (reported as -40002) ------------------------------------------
    /// A required element is absent from the decrypted message XML.
    #[error("message XML lacks required field <{0}>")]
    MissingField(&'static str),

    /// An element is present but its value is unusable.
    #[error("message XML field <{field}> is invalid: {reason}")]
    InvalidField {
        /// Element name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    // ---- plaintext message JSON (the smart robot's; reported as -40002) ---------------------
    /// A required member is absent from the decrypted message JSON.
    #[error("message JSON lacks required member \"{0}\"")]
    MissingJsonField(&'static str),

    /// A member is present but its value is unusable.
    #[error("message JSON member \"{field}\" is invalid: {reason}")]
    InvalidJsonField {
        /// Member name (dotted for nested members).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    // ---- WeCom API -----------------------------------------------------------------------------
    /// gettoken refused the corp id / app secret (40001, 40091, 41002, 41004, ...).
    #[error(
        "gettoken for corp {corp_id} refused the app credentials (errcode {errcode}: {errmsg}); \
         check corp_id and the app Secret"
    )]
    InvalidCredential {
        /// The corp id that was used.
        corp_id: String,
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// 40001/40014/42001 came back even after one token refresh and retry.
    #[error("{api}: access token rejected again after a refresh (errcode {errcode}: {errmsg})")]
    AccessTokenRejected {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// 45009: a frequency limit was hit; WeCom blocks the caller for a minute.
    #[error("{api}: WeCom frequency limit hit (errcode 45009: {errmsg}); back off at least 60 s")]
    RateLimited {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// Our own rate limit (shared by every instance when configured) would have made
    /// this send wait longer than the client's `limit_wait`; nothing was sent.
    #[error("{api}: held back by opsbot's own WeCom rate limit; the next slot is in {wait:?}")]
    Throttled {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// How long until the limit lets it through.
        wait: Duration,
    },

    /// 45033: too many concurrent calls.
    #[error("{api}: too many concurrent calls to WeCom (errcode 45033); retry shortly")]
    TooManyConcurrent {
        /// API path below /cgi-bin/.
        api: &'static str,
    },

    /// -1: WeCom says it is busy.
    #[error("{api}: WeCom system busy (errcode -1); retry shortly")]
    SystemBusy {
        /// API path below /cgi-bin/.
        api: &'static str,
    },

    /// 60020: our egress IP is not in the app's trusted IP list.
    #[error(
        "{api}: WeCom refuses calls from IP {ip}: add it to the app's 企业可信IP (trusted IP) list \
         in the WeCom admin console (errcode 60020)",
        ip = from_ip.as_deref().unwrap_or("<not reported>")
    )]
    UntrustedIp {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// The `from ip` WeCom reported in errmsg.
        from_ip: Option<String>,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// 81013 / 82001: no recipient of the message is valid.
    #[error(
        "{api}: every recipient is invalid, unlicensed or outside the app's visible range \
         (errcode {errcode}: {errmsg})"
    )]
    AllRecipientsInvalid {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// 93000: the group-robot key is unknown or was revoked.
    #[error(
        "webhook/send: the group robot key is unknown or revoked (errcode 93000); re-create the \
         robot and update its key"
    )]
    InvalidRobotKey,

    /// 40029: the OAuth code is invalid, already used or expired.
    #[error("auth/getuserinfo: the OAuth code is invalid, used or expired (errcode 40029); restart the login")]
    InvalidOauthCode,

    /// 48002: the app / secret may not call this API.
    #[error("{api}: this app or secret is not allowed to call the API (errcode 48002: {errmsg})")]
    ApiForbidden {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// Any other non-zero errcode.
    #[error("{api}: WeCom returned errcode {errcode}: {errmsg}")]
    Api {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// WeCom or WeChat (or a proxy) answered with a non-2xx HTTP status.
    #[error("{api}: {service} answered HTTP {status}")]
    HttpStatus {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// `WeCom` or `WeChat`.
        service: &'static str,
        /// HTTP status code.
        status: u16,
    },

    /// No complete answer within the configured timeout.
    #[error("{api}: no answer from {service} within {timeout:?}")]
    Timeout {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// `WeCom` or `WeChat`.
        service: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// Connecting, sending or reading failed.
    #[error("{api}: request to {service} failed: {message}")]
    Transport {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// `WeCom` or `WeChat`.
        service: &'static str,
        /// The cause chain, with secrets redacted.
        message: String,
        /// Failed after the connection was made: the request may have reached the
        /// service (and been acted on) even though no answer came back.
        maybe_sent: bool,
    },

    /// The answer was not the JSON we expect.
    #[error("{api}: unexpected answer from {service}: {reason}")]
    InvalidResponse {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// `WeCom` or `WeChat`.
        service: &'static str,
        /// What was wrong.
        reason: String,
    },

    // ---- WeCom smart robot (智能机器人) -----------------------------------------------------
    /// The robot's `response_url` refused the reply. It takes one reply and lives one hour;
    /// WeCom documents no specific codes, so the errcode is passed on as given.
    #[error(
        "aibot response_url refused the reply (errcode {errcode}: {errmsg}); a response_url \
         takes one reply within 1 hour of the message"
    )]
    ResponseUrlRefused {
        /// errcode as answered.
        errcode: i64,
        /// errmsg as answered.
        errmsg: String,
    },

    // ---- WeChat Official Account (公众号) ---------------------------------------------------
    /// `cgi-bin/token` refused the AppID / AppSecret (40001, 40013, 40125, 41002, 41004).
    #[error(
        "cgi-bin/token for appid {app_id} refused the credentials (errcode {errcode}: \
         {errmsg}); check app_id and app_secret (公众号 → 设置与开发 → 基本配置)"
    )]
    WechatCredential {
        /// The AppID that was used.
        app_id: String,
        /// WeChat errcode.
        errcode: i64,
        /// WeChat errmsg.
        errmsg: String,
    },

    /// 40164: our egress IP is not on the Official Account's IP whitelist.
    #[error(
        "{api}: WeChat refuses calls from IP {ip}: add it to the IP whitelist (IP白名单) under \
         公众号 → 设置与开发 → 基本配置 (errcode 40164)",
        ip = from_ip.as_deref().unwrap_or("<not reported>")
    )]
    WechatUntrustedIp {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// The address WeChat reported in errmsg.
        from_ip: Option<String>,
        /// WeChat errmsg.
        errmsg: String,
    },

    /// 45015: the customer-service window is closed: the user has not written in the last
    /// 48 hours, or unfollowed the account.
    #[error(
        "message/custom/send: the customer-service window is closed (errcode 45015: {errmsg}); \
         the user must send the account a message first (it opens 48 hours)"
    )]
    ServiceWindowClosed {
        /// WeChat errmsg.
        errmsg: String,
    },

    /// 45047: the window's message quota is used up (5 messages per user message).
    #[error(
        "message/custom/send: the customer-service quota is used up (errcode 45047: {errmsg}); \
         the next message from the user opens a new window"
    )]
    ServiceQuotaExhausted {
        /// WeChat errmsg.
        errmsg: String,
    },

    /// Any other non-zero WeChat errcode.
    #[error("{api}: WeChat returned errcode {errcode}: {errmsg}")]
    WechatApi {
        /// API path below /cgi-bin/.
        api: &'static str,
        /// WeChat errcode.
        errcode: i64,
        /// WeChat errmsg.
        errmsg: String,
    },

    /// Content exceeds a WeCom byte limit; split it first (see `split::split_message`).
    #[error("{what} is {len} bytes but WeCom allows at most {limit}; split it with split_message")]
    ContentTooLong {
        /// Which content.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// A caller-supplied value WeCom would refuse anyway.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A template card breaks one of WeCom's hard limits (CARDS.md §2.1–2.2).
    #[error("template card field {field} is invalid: {reason}")]
    InvalidCard {
        /// The JSON path of the field, e.g. `button_list[2].key`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `message/update_template_card` refused the update. The response_code may be spent
    /// even so (WeCom documents no code for a used or expired one), so the same call is
    /// never retried.
    #[error(
        "message/update_template_card refused the update (errcode {errcode}: {errmsg}); the \
         response_code may be spent: do not retry with it, use a newer click's code or a \
         passive reply"
    )]
    CardUpdateRefused {
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },

    /// Building the HTTP client failed.
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

/// The -40005 text: which id the callback carried, which one the peer should carry, and
/// where to look.
fn receive_id_mismatch(peer: Peer, expected: &str, actual: &str) -> String {
    match peer {
        Peer::App => format!(
            "callback was encrypted for receive id {actual:?} but this app is configured for \
             CorpID {expected:?}; check corp_id against 我的企业 → 企业信息 in the WeCom admin \
             console"
        ),
        Peer::Robot => format!(
            "callback was encrypted for receive id {actual:?}, but smart-robot callbacks are \
             encrypted for an empty receive id: this is not a smart robot's callback (a WeCom \
             app's?); point only the robot (智能机器人 → API 模式) at this URL, and check that \
             its Token and EncodingAESKey are this robot's"
        ),
        Peer::OfficialAccount => format!(
            "callback was encrypted for receive id {actual:?} but this account's AppID \
             (app_id) is {expected:?}; check app_id against 公众号 → 设置与开发 → 基本配置 \
             (开发者ID AppID)"
        ),
    }
}

/// How long WeCom blocks a caller after a per-minute frequency breach (45009).
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(60);
/// Back-off for 45033 (too many concurrent calls): the condition clears quickly.
pub const CONCURRENCY_BACKOFF: Duration = Duration::from_secs(2);
/// Back-off for errcode -1 (system busy).
pub const BUSY_BACKOFF: Duration = Duration::from_secs(1);

impl Error {
    /// The numeric code of the failure: the `WXBizMsgCrypt` code (-400xx) for callback
    /// crypto and message XML, the WeCom `errcode` for API errors, `None` for local
    /// failures (transport, timeouts, HTTP status, argument checks).
    pub fn code(&self) -> Option<i64> {
        Some(match self {
            Error::ValidateSignature(_) | Error::MpSignature | Error::StaleTimestamp { .. } => {
                -40001
            }
            Error::ParseXml(_)
            | Error::ParseJson(_)
            | Error::MissingField(_)
            | Error::InvalidField { .. }
            | Error::MissingJsonField(_)
            | Error::InvalidJsonField { .. } => -40002,
            Error::IllegalAesKey(_) => -40004,
            Error::ValidateCorpid { .. } => -40005,
            Error::DecryptAes(_) => -40007,
            Error::IllegalBuffer(_) => -40008,
            Error::DecodeBase64 => -40010,
            Error::InvalidCredential { errcode, .. }
            | Error::AccessTokenRejected { errcode, .. }
            | Error::AllRecipientsInvalid { errcode, .. }
            | Error::Api { errcode, .. }
            | Error::CardUpdateRefused { errcode, .. }
            | Error::ResponseUrlRefused { errcode, .. }
            | Error::WechatCredential { errcode, .. }
            | Error::WechatApi { errcode, .. } => *errcode,
            Error::WechatUntrustedIp { .. } => 40164,
            Error::ServiceWindowClosed { .. } => 45015,
            Error::ServiceQuotaExhausted { .. } => 45047,
            Error::RateLimited { .. } => 45009,
            Error::TooManyConcurrent { .. } => 45033,
            Error::SystemBusy { .. } => -1,
            Error::UntrustedIp { .. } => 60020,
            Error::InvalidRobotKey => 93000,
            Error::InvalidOauthCode => 40029,
            Error::ApiForbidden { .. } => 48002,
            Error::HttpStatus { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::InvalidResponse { .. }
            | Error::ContentTooLong { .. }
            | Error::InvalidArgument(_)
            | Error::InvalidCard { .. }
            | Error::HttpClient(_)
            | Error::Throttled { .. } => return None,
        })
    }

    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. }
            | Error::Throttled { .. }
            | Error::TooManyConcurrent { .. }
            | Error::SystemBusy { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            // The single in-call refresh is done; a later attempt gets a fresh token.
            | Error::AccessTokenRejected { .. } => true,
            Error::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            // WeChat's system busy and frequency limit.
            Error::WechatApi { errcode, .. } => matches!(errcode, -1 | 45009),
            _ => false,
        }
    }

    /// Whether the request may have been acted on although no answer says so: it timed
    /// out, or the connection broke after the request went out. Sending it again may
    /// deliver it twice.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Transport {
                    maybe_sent: true,
                    ..
                }
        )
    }

    /// The minimum wait before retrying, where WeCom's behaviour dictates one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { .. } => Some(RATE_LIMIT_BACKOFF),
            Error::Throttled { wait, .. } => Some(*wait),
            Error::TooManyConcurrent { .. } => Some(CONCURRENCY_BACKOFF),
            Error::SystemBusy { .. } => Some(BUSY_BACKOFF),
            Error::WechatApi { errcode: 45009, .. } => Some(RATE_LIMIT_BACKOFF),
            Error::WechatApi { errcode: -1, .. } => Some(BUSY_BACKOFF),
            _ => None,
        }
    }

    /// Whether an operator must change configuration (keys, secrets, trusted IPs,
    /// permissions) before this can ever succeed.
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            Error::IllegalAesKey(_)
                | Error::InvalidCredential { .. }
                | Error::UntrustedIp { .. }
                | Error::ApiForbidden { .. }
                | Error::InvalidRobotKey
                | Error::WechatCredential { .. }
                | Error::WechatUntrustedIp { .. }
        )
    }
}
