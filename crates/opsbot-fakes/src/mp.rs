//! A faithful fake of the WeChat Official Account API (CHANNELS.md §2.4–2.5) on
//! 127.0.0.1:0, and builders for the callbacks WeChat posts to an account's URL.
//!
//! What it enforces, on its own [`ManualClock`]:
//! - `cgi-bin/token`: AppID and AppSecret (40013 / 40125), the IP whitelist (40164);
//!   within a token's lifetime the same token again; success answers carry no errcode.
//! - `message/custom/send`: the token (41001 missing, 40001 unknown or revoked, 42001
//!   expired), the whitelist, the body (47001, 44004, 45002 over 2048 bytes, 40003 for an
//!   openid that never wrote), and the customer-service window: the user's last message
//!   opens 48 hours with 5 messages (45015 outside it or after an unfollow, 45047 over
//!   the count). WeChat learns of the user's message before it calls us back, so tests
//!   record it with [`FakeWechat::user_wrote`] (the builders leave that to the test).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::{exchange, percent_encode, with_query, CallbackOutcome, Fault};
use opsbot_wecom::clock::{Clock, ManualClock};
use opsbot_wecom::crypto::WecomCrypto;

const WINDOW: Duration = Duration::from_secs(48 * 3600);
const WINDOW_MESSAGES: u32 = 5;
const TEXT_LIMIT: usize = 2048;

/// A customer-service message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct MpSent {
    /// The account it was sent from.
    pub app_id: String,
    /// `touser`.
    pub open_id: String,
    /// `text.content`.
    pub content: String,
    /// Fake-clock time of receipt.
    pub at: Duration,
}

#[derive(Debug, Default)]
struct MpState {
    /// appid → secret.
    accounts: HashMap<String, String>,
    tokens: HashMap<String, MpToken>,
    token_ttl: Option<Duration>,
    token_calls: u32,
    whitelist: Option<HashSet<IpAddr>>,
    /// (appid, openid) → the user's last message and what was sent since.
    windows: HashMap<(String, String), Window>,
    unfollowed: HashSet<(String, String)>,
    faults: VecDeque<(String, Fault)>,
    requests: HashMap<String, u32>,
    sent: Vec<MpSent>,
    counter: u64,
}

#[derive(Debug, Clone)]
struct MpToken {
    app_id: String,
    issued_at: Duration,
    revoked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened_at: Duration,
    sent: u32,
}

#[derive(Debug)]
struct MpShared {
    clock: Arc<ManualClock>,
    state: Mutex<MpState>,
}

impl MpShared {
    fn lock(&self) -> MutexGuard<'_, MpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake WeChat API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeWechat {
    addr: SocketAddr,
    shared: Arc<MpShared>,
    task: JoinHandle<()>,
}

impl Drop for FakeWechat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeWechat {
    /// Start on 127.0.0.1 with a fresh clock at zero.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(MpShared {
            clock: Arc::new(ManualClock::new()),
            state: Mutex::new(MpState::default()),
        });
        let router = Router::new()
            .route("/cgi-bin/token", get(token))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "fake WeChat server stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, to use as the account's `api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fake's clock.
    pub fn clock(&self) -> Arc<ManualClock> {
        self.shared.clock.clone()
    }

    /// Move the fake's clock forward (token expiry, the 48-hour window).
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Register an account.
    pub fn add_account(&self, app_id: &str, secret: &str) {
        self.shared
            .lock()
            .accounts
            .insert(app_id.to_owned(), secret.to_owned());
    }

    /// The user `open_id` sent the account a message now: a new window of 48 hours and
    /// 5 customer-service messages (a follow, if they had unfollowed).
    pub fn user_wrote(&self, app_id: &str, open_id: &str) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let key = (app_id.to_owned(), open_id.to_owned());
        state.unfollowed.remove(&key);
        state.windows.insert(
            key,
            Window {
                opened_at: now,
                sent: 0,
            },
        );
    }

    /// The user unfollowed the account: nothing more reaches them (45015).
    pub fn unfollow(&self, app_id: &str, open_id: &str) {
        self.shared
            .lock()
            .unfollowed
            .insert((app_id.to_owned(), open_id.to_owned()));
    }

    /// Token lifetime (default 7200 s).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared.lock().token_ttl = Some(ttl);
    }

    /// Invalidate every issued token early (WeChat does, e.g. when another caller fetches
    /// one with `/token`): then 40001.
    pub fn revoke_all(&self) {
        for token in self.shared.lock().tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Only these peer IPs may call (others get 40164); `None` allows all.
    pub fn set_whitelist(&self, ips: Option<Vec<IpAddr>>) {
        self.shared.lock().whitelist = ips.map(|ips| ips.into_iter().collect());
    }

    /// Queue a fault for the next request to `endpoint` (`"token"`,
    /// `"message/custom/send"`, or `"*"`).
    pub fn push_fault(&self, endpoint: &str, fault: Fault) {
        self.shared
            .lock()
            .faults
            .push_back((endpoint.to_owned(), fault));
    }

    /// Every accepted customer-service message.
    pub fn sent(&self) -> Vec<MpSent> {
        self.shared.lock().sent.clone()
    }

    /// How many times `cgi-bin/token` was called.
    pub fn token_calls(&self) -> u32 {
        self.shared.lock().token_calls
    }

    /// How many requests reached `endpoint`, whatever the answer.
    pub fn request_count(&self, endpoint: &str) -> u32 {
        self.shared
            .lock()
            .requests
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

fn wechat(errcode: i64, errmsg: &str) -> Response {
    Json(json!({ "errcode": errcode, "errmsg": format!("{errmsg} rid: fake") })).into_response()
}

async fn intake(shared: &MpShared, endpoint: &str) -> Option<Response> {
    let fault = {
        let mut state = shared.lock();
        *state.requests.entry(endpoint.to_owned()).or_default() += 1;
        let position = state
            .faults
            .iter()
            .position(|(target, _)| target == endpoint || target == "*");
        position
            .and_then(|i| state.faults.remove(i))
            .map(|(_, f)| f)
    };
    match fault {
        None => None,
        Some(Fault::Json(value)) => Some(Json(value).into_response()),
        Some(Fault::Status(code)) => Some(
            StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        ),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

/// The 40164 refusal for a peer outside the whitelist, if there is one.
fn not_whitelisted(state: &MpState, peer: IpAddr) -> Option<Response> {
    match &state.whitelist {
        Some(list) if !list.contains(&peer) => Some(wechat(
            40164,
            &format!("invalid ip {peer} ipv6 ::ffff:{peer}, not in whitelist"),
        )),
        _ => None,
    }
}

const DEFAULT_TTL: Duration = Duration::from_secs(7200);

async fn token(
    State(shared): State<Arc<MpShared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = intake(&shared, "token").await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    state.token_calls += 1;
    if params.get("grant_type").map(String::as_str) != Some("client_credential") {
        return wechat(40002, "invalid grant_type");
    }
    let Some(app_id) = params.get("appid").filter(|a| !a.is_empty()).cloned() else {
        return wechat(41002, "appid missing");
    };
    let Some(secret) = params.get("secret").filter(|s| !s.is_empty()) else {
        return wechat(41004, "appsecret missing");
    };
    match state.accounts.get(&app_id) {
        None => return wechat(40013, "invalid appid"),
        Some(expected) if expected != secret => return wechat(40125, "invalid appsecret"),
        Some(_) => {}
    }
    if let Some(response) = not_whitelisted(&state, peer.ip()) {
        return response;
    }
    let ttl = state.token_ttl.unwrap_or(DEFAULT_TTL);
    let live = state
        .tokens
        .iter()
        .find(|(_, t)| t.app_id == app_id && !t.revoked && now.saturating_sub(t.issued_at) < ttl);
    let (token, remaining) = match live {
        Some((token, t)) => (token.clone(), ttl - now.saturating_sub(t.issued_at)),
        None => {
            state.counter += 1;
            let token = format!("mptok-{}", state.counter);
            state.tokens.insert(
                token.clone(),
                MpToken {
                    app_id,
                    issued_at: now,
                    revoked: false,
                },
            );
            (token, ttl)
        }
    };
    // No errcode on success, as WeChat answers.
    Json(json!({ "access_token": token, "expires_in": remaining.as_secs() })).into_response()
}

async fn custom_send(
    State(shared): State<Arc<MpShared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "message/custom/send";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let Some(token) = params.get("access_token").filter(|t| !t.is_empty()) else {
        return wechat(41001, "access_token missing");
    };
    let issued = match state.tokens.get(token) {
        Some(t) if !t.revoked => t.clone(),
        _ => {
            return wechat(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        }
    };
    let ttl = state.token_ttl.unwrap_or(DEFAULT_TTL);
    if now.saturating_sub(issued.issued_at) >= ttl {
        return wechat(42001, "access_token expired");
    }
    if let Some(response) = not_whitelisted(&state, peer.ip()) {
        return response;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return wechat(47001, "data format error");
    };
    let open_id = body
        .get("touser")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if body.get("msgtype").and_then(Value::as_str) != Some("text") {
        return wechat(40008, "invalid message type");
    }
    let content = match body.get("text").and_then(|t| t.get("content")) {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        Some(Value::String(_)) => return wechat(44004, "empty content"),
        _ => return wechat(47001, "data format error"),
    };
    if content.len() > TEXT_LIMIT {
        return wechat(45002, "content size out of limit");
    }
    let key = (issued.app_id.clone(), open_id.clone());
    let Some(window) = state.windows.get(&key).copied() else {
        return wechat(40003, "invalid openid");
    };
    if state.unfollowed.contains(&key) || now.saturating_sub(window.opened_at) >= WINDOW {
        return wechat(
            45015,
            "response out of time limit or subscription is canceled",
        );
    }
    if window.sent >= WINDOW_MESSAGES {
        return wechat(45047, "out of response count limit");
    }
    if let Some(w) = state.windows.get_mut(&key) {
        w.sent += 1;
    }
    state.sent.push(MpSent {
        app_id: issued.app_id,
        open_id,
        content,
        at: now,
    });
    Json(json!({ "errcode": 0, "errmsg": "ok" })).into_response()
}

/// A callback POST as WeChat sends it to an account's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpCallback {
    /// `signature=..&timestamp=..&nonce=..&openid=..` (+ `encrypt_type=aes&msg_signature=..`).
    pub query: String,
    /// The message XML (plain mode) or the `<xml><ToUserName/><Encrypt/></xml>` envelope.
    pub body: String,
}

/// The query of WeChat's URL verification GET: `signature, timestamp, nonce, echostr`.
pub fn build_mp_verify_query(token: &str, echostr: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "signature={}&timestamp={}&nonce={}&echostr={}",
        opsbot_wecom::mp::signature(token, timestamp, nonce),
        percent_encode(timestamp),
        percent_encode(nonce),
        percent_encode(echostr)
    )
}

/// The plaintext XML of a text message from `open_id` to the account `gh_id`.
pub fn mp_text_xml(
    gh_id: &str,
    open_id: &str,
    content: &str,
    msg_id: u64,
    create_time: i64,
) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{gh_id}]]></ToUserName><FromUserName><![CDATA[{open_id}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
}

/// What signs (and in safe mode encrypts) an account's callbacks.
#[derive(Debug, Clone, Copy)]
pub struct MpKeys<'a> {
    /// The server configuration's Token.
    pub token: &'a str,
    /// Safe mode: the EncodingAESKey with the AppID as receive id; `None` for plain mode.
    pub crypto: Option<&'a WecomCrypto>,
    /// The account's original id (`gh_…`), the envelope's `ToUserName`.
    pub gh_id: &'a str,
}

/// A callback POST carrying `plaintext_xml` from `open_id`: in plain mode as is, in safe
/// mode encrypted, with both signatures.
pub fn build_mp_post(
    keys: MpKeys<'_>,
    open_id: &str,
    plaintext_xml: &str,
    random16: &[u8; 16],
    timestamp: &str,
    nonce: &str,
) -> MpCallback {
    let mut query = format!(
        "signature={}&timestamp={}&nonce={}&openid={}",
        opsbot_wecom::mp::signature(keys.token, timestamp, nonce),
        percent_encode(timestamp),
        percent_encode(nonce),
        percent_encode(open_id)
    );
    let body = match keys.crypto {
        None => plaintext_xml.to_owned(),
        Some(crypto) => {
            let encrypt = crypto.encrypt_with_random(plaintext_xml, random16);
            let msg_signature = crypto.signature(timestamp, nonce, &encrypt);
            query.push_str(&format!("&encrypt_type=aes&msg_signature={msg_signature}"));
            format!(
                "<xml>\n<ToUserName><![CDATA[{}]]></ToUserName>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n</xml>",
                keys.gh_id
            )
        }
    };
    MpCallback { query, body }
}

/// POST a callback as WeChat does (`Content-Type: text/xml`).
pub async fn push_mp_callback(
    callback_url: &str,
    post: &MpCallback,
) -> Result<CallbackOutcome, reqwest::Error> {
    let request = reqwest::Client::new()
        .post(with_query(callback_url, &post.query))
        .header("content-type", "text/xml")
        .body(post.body.clone());
    exchange(request).await
}

/// Verify and decrypt a safe-mode passive reply as WeChat would, returning the reply XML.
pub fn decrypt_mp_reply(crypto: &WecomCrypto, body: &str) -> Result<String, String> {
    let between = |open: &str, close: &str| -> Result<String, String> {
        let start = body
            .find(open)
            .map(|i| i + open.len())
            .ok_or_else(|| format!("no {open} in {body:?}"))?;
        let end = body[start..]
            .find(close)
            .ok_or_else(|| format!("no {close} in {body:?}"))?;
        Ok(body[start..start + end].to_owned())
    };
    let signature = between("<MsgSignature><![CDATA[", "]]>")?;
    let timestamp = between("<TimeStamp>", "</TimeStamp>")?;
    let nonce = between("<Nonce><![CDATA[", "]]>")?;
    crypto
        .decrypt_message(&signature, &timestamp, &nonce, body)
        .map_err(|e| e.to_string())
}
