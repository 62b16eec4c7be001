//! Test-only (a dev-dependency, never in the binary): a faithful in-process fake of the
//! WeCom API (FAKE_WECOM_SERVER.md), an axum server for the tests of `opsbot-wecom`,
//! `opsbot-http`, `opsbot` and their benchmarks. It lives here so that no crate below
//! `opsbot-http` depends on axum.
//!
//! It listens on 127.0.0.1:0 and answers like WeCom: HTTP 200 with `{errcode, errmsg}`
//! (only injected faults produce other statuses). Time comes from a [`ManualClock`] that
//! tests advance, or share with the client so the client's rate-limit waits are seen by
//! the server. It also builds encrypted callback requests for testing *our* callback
//! endpoint.
//!
//! Template cards (CARDS.md §8) live in `cards/`: `message/send` and `appchat/send` check
//! them, `message/update_template_card` spends one-time codes, [`FakeWecom::click`] posts
//! a member's click as WeCom would, [`FakeWecom::card_as_seen`] shows each member's copy
//! and [`card_html`] draws one.
//!
//! Beside it: [`aibot`] (the smart robot's `response_url`, served by this same fake, its
//! JSON callbacks and card clicks), [`mp`] (a fake WeChat Official Account API, a server of its
//! own because WeChat is another host), and [`kube`] (a stand-in Kubernetes API server).

mod aibot;
mod cards;
pub mod kube;
mod mp;

pub use aibot::{
    aibot_refresh_json, aibot_text_json, build_aibot_post, decrypt_aibot_card_reply,
    decrypt_aibot_reply, push_aibot_callback, BotCardClick, BotCardReply, BotClickEvent,
    RESPONSE_URL_EXPIRED, RESPONSE_URL_INVALID, RESPONSE_URL_USED,
};
pub use cards::html::card_html;
pub use cards::{AppClickEvent, CardClick, CardUpdateRecord, PassiveReply, SentCard};
pub use mp::{
    build_mp_post, build_mp_verify_query, decrypt_mp_reply, mp_text_xml, push_mp_callback,
    FakeWechat, MpCallback, MpKeys, MpSent,
};

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
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use opsbot_wecom::clock::{Clock, ManualClock};
use opsbot_wecom::crypto::WecomCrypto;

const MEMBER_LIMIT: usize = 30;
const ROBOT_LIMIT: usize = 20;
const MINUTE: Duration = Duration::from_secs(60);
const CODE_LIFETIME: Duration = Duration::from_secs(300);
const TEXT_LIMIT: usize = 2048;
const ROBOT_MARKDOWN_LIMIT: usize = 4096;

/// A forced answer for the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer HTTP 200 with this JSON instead of the normal behaviour.
    Json(Value),
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// Wait this long (real time), then behave normally; for client timeouts.
    Delay(Duration),
}

/// A request the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedMessage {
    /// Path below `/cgi-bin/`, e.g. `message/send`.
    pub endpoint: String,
    /// The parsed JSON body.
    pub body: Value,
    /// Fake-clock time of receipt.
    pub at: Duration,
}

/// One member's copy of an app message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// App that sent it.
    pub agent_id: i64,
    /// Recipient userid (lower-case).
    pub user: String,
    /// The `msgid` returned for the send.
    pub msg_id: String,
    /// True when WeCom's per-member limit silently swallowed it.
    pub dropped: bool,
}

#[derive(Debug)]
struct Shared {
    clock: Arc<ManualClock>,
    state: Mutex<FakeState>,
}

#[derive(Debug)]
struct FakeState {
    /// (corpid, secret) → agentid.
    apps: HashMap<(String, String), i64>,
    users: HashSet<String>,
    parties: HashSet<String>,
    tags: HashSet<String>,
    robot_keys: HashSet<String>,
    tokens: HashMap<String, IssuedToken>,
    token_ttl: Duration,
    trusted_ips: Option<HashSet<IpAddr>>,
    api_limit_per_minute: Option<usize>,
    api_hits: HashMap<String, VecDeque<Duration>>,
    member_hits: HashMap<(i64, String), VecDeque<Duration>>,
    robot_hits: HashMap<String, VecDeque<Duration>>,
    faults: VecDeque<(String, Fault)>,
    sent: Vec<RecordedMessage>,
    deliveries: Vec<Delivery>,
    requests: HashMap<String, u32>,
    gettoken_calls: u32,
    codes: HashMap<String, IssuedCode>,
    chats: HashMap<String, Value>,
    counter: u64,
    response_urls: HashMap<String, aibot::IssuedResponseUrl>,
    /// agentid → the app's trusted domain (可信域名), `host` or `host:port`.
    trusted_domains: HashMap<i64, String>,
    /// The member signed in to the WeCom client that opens OAuth links; `None` is a
    /// browser outside WeCom.
    oauth_member: Option<String>,
    /// Template cards: tasks, response codes, members' copies, clicks, updates.
    cards: cards::CardState,
}

#[derive(Debug, Clone)]
struct IssuedToken {
    corp_id: String,
    agent_id: i64,
    issued_at: Duration,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct IssuedCode {
    identity: Value,
    issued_at: Duration,
}

impl FakeState {
    fn new() -> Self {
        Self {
            apps: HashMap::new(),
            users: HashSet::new(),
            parties: HashSet::new(),
            tags: HashSet::new(),
            robot_keys: HashSet::new(),
            tokens: HashMap::new(),
            token_ttl: Duration::from_secs(7200),
            trusted_ips: None,
            api_limit_per_minute: None,
            api_hits: HashMap::new(),
            member_hits: HashMap::new(),
            robot_hits: HashMap::new(),
            faults: VecDeque::new(),
            sent: Vec::new(),
            deliveries: Vec::new(),
            requests: HashMap::new(),
            gettoken_calls: 0,
            codes: HashMap::new(),
            chats: HashMap::new(),
            counter: 0,
            response_urls: HashMap::new(),
            trusted_domains: HashMap::new(),
            oauth_member: None,
            cards: cards::CardState::new(),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// The running fake. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeWecom {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeWecom {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeWecom {
    /// Start on 127.0.0.1 with a fresh clock at zero.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_clock(Arc::new(ManualClock::new())).await
    }

    /// Start with a given clock, e.g. one shared with the client under test.
    pub async fn start_with_clock(clock: Arc<ManualClock>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            clock,
            state: Mutex::new(FakeState::new()),
        });
        let router = Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/message/send", post(message_send))
            .route(
                "/cgi-bin/message/update_template_card",
                post(cards::update::update_template_card),
            )
            .route("/cgi-bin/appchat/create", post(appchat_create))
            .route("/cgi-bin/appchat/send", post(appchat_send))
            .route("/cgi-bin/appchat/get", get(appchat_get))
            .route("/cgi-bin/webhook/send", post(webhook_send))
            .route("/cgi-bin/auth/getuserinfo", get(getuserinfo))
            .route("/cgi-bin/getcallbackip", get(getcallbackip))
            .route("/cgi-bin/aibot/response", post(aibot::response))
            .route("/connect/oauth2/authorize", get(oauth_authorize))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "fake WeCom server stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, to use as `ClientConfig::api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fake's clock.
    pub fn clock(&self) -> Arc<ManualClock> {
        self.shared.clock.clone()
    }

    /// Move the fake's clock forward (token expiry, rate windows, OAuth codes).
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Register an app: gettoken with this corp id and secret yields tokens for `agent_id`.
    pub fn add_app(&self, corp_id: &str, secret: &str, agent_id: i64) {
        self.state()
            .apps
            .insert((corp_id.to_owned(), secret.to_owned()), agent_id);
    }

    /// Register member userids (case-insensitive, as in WeCom).
    pub fn add_users(&self, users: &[&str]) {
        let mut state = self.state();
        state
            .users
            .extend(users.iter().map(|user| user.to_lowercase()));
    }

    /// Register department ids.
    pub fn add_parties(&self, parties: &[&str]) {
        let mut state = self.state();
        state
            .parties
            .extend(parties.iter().map(|p| (*p).to_owned()));
    }

    /// Register tag ids.
    pub fn add_tags(&self, tags: &[&str]) {
        let mut state = self.state();
        state.tags.extend(tags.iter().map(|t| (*t).to_owned()));
    }

    /// Register a group-robot key.
    pub fn add_robot_key(&self, key: &str) {
        self.state().robot_keys.insert(key.to_owned());
    }

    /// Token lifetime (default 7200 s).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.state().token_ttl = ttl;
    }

    /// Invalidate every issued token early, as WeCom may do (then 40014).
    pub fn revoke_all(&self) {
        for token in self.state().tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Only these peer IPs may call business APIs (others get 60020); `None` allows all.
    pub fn set_trusted_ips(&self, ips: Option<Vec<IpAddr>>) {
        self.state().trusted_ips = ips.map(|ips| ips.into_iter().collect());
    }

    /// Per-API calls per rolling minute before 45009; `None` (default) for no limit.
    pub fn set_api_limit_per_minute(&self, limit: Option<usize>) {
        self.state().api_limit_per_minute = limit;
    }

    /// Queue a fault for the next request to `endpoint` (`"message/send"`, `"gettoken"`,
    /// ..., or `"*"` for any). Faults fire in the order queued.
    pub fn push_fault(&self, endpoint: &str, fault: Fault) {
        self.state().faults.push_back((endpoint.to_owned(), fault));
    }

    /// Every accepted message (`message/send`, `appchat/send`, `webhook/send`).
    pub fn sent(&self) -> Vec<RecordedMessage> {
        self.state().sent.clone()
    }

    /// Accepted messages to one endpoint.
    pub fn sent_to(&self, endpoint: &str) -> Vec<RecordedMessage> {
        self.state()
            .sent
            .iter()
            .filter(|m| m.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// Per-member copies of app messages, delivered or silently dropped.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }

    /// Copies the per-member limit swallowed without telling the sender.
    pub fn dropped(&self) -> Vec<Delivery> {
        self.state()
            .deliveries
            .iter()
            .filter(|d| d.dropped)
            .cloned()
            .collect()
    }

    /// How many times gettoken was called.
    pub fn gettoken_calls(&self) -> u32 {
        self.state().gettoken_calls
    }

    /// How many requests reached `endpoint`, whatever the answer.
    pub fn request_count(&self, endpoint: &str) -> u32 {
        self.state().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// An OAuth code for member `user_id`: single use, valid 300 s of fake time.
    pub fn mint_code(&self, user_id: &str) -> String {
        self.mint(json!({ "userid": user_id }))
    }

    /// `{base_url}/connect/oauth2/authorize`: the fake's stand-in for
    /// `https://open.weixin.qq.com/connect/oauth2/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/connect/oauth2/authorize", self.base_url())
    }

    /// Set an app's trusted domain (可信域名): OAuth redirects must go to exactly this
    /// host (and port, if it has one).
    pub fn set_trusted_domain(&self, agent_id: i64, domain: &str) {
        self.state()
            .trusted_domains
            .insert(agent_id, domain.to_owned());
    }

    /// Who is signed in to the WeCom client that opens OAuth links (`None`: the link
    /// is opened in a browser outside WeCom).
    pub fn set_oauth_member(&self, user_id: Option<&str>) {
        self.state().oauth_member = user_id.map(str::to_owned);
    }

    /// An OAuth code for a non-member.
    pub fn mint_external_code(&self, open_id: &str, external_userid: &str) -> String {
        self.mint(json!({ "openid": open_id, "external_userid": external_userid }))
    }

    fn mint(&self, identity: Value) -> String {
        self.shared.mint(identity)
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.shared.lock()
    }
}

impl Shared {
    /// A single-use OAuth code for `identity`, valid 300 s of fake time.
    fn mint(&self, identity: Value) -> String {
        let issued_at = self.clock.now();
        let mut state = self.lock();
        let code = format!("code-{}", state.next_id());
        state.codes.insert(
            code.clone(),
            IssuedCode {
                identity,
                issued_at,
            },
        );
        code
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // Test double: a panicking handler must not wedge every later assertion.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Params = Query<HashMap<String, String>>;

/// A WeCom error answer: HTTP 200 with a non-zero errcode. Kept small (unlike
/// `Response`) so the validation helpers can return it in a `Result`.
#[derive(Debug)]
struct Reject {
    errcode: i64,
    errmsg: String,
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        Json(json!({ "errcode": self.errcode, "errmsg": self.errmsg })).into_response()
    }
}

fn reject(errcode: i64, errmsg: &str) -> Reject {
    Reject {
        errcode,
        errmsg: errmsg.to_owned(),
    }
}

fn wecom(errcode: i64, errmsg: &str) -> Response {
    reject(errcode, errmsg).into_response()
}

fn ok(mut extra: Map<String, Value>) -> Response {
    extra.insert("errcode".into(), json!(0));
    extra.insert("errmsg".into(), json!("ok"));
    Json(Value::Object(extra)).into_response()
}

/// Count the request and apply a queued fault. `Some` is the final answer.
async fn intake(shared: &Shared, endpoint: &str) -> Option<Response> {
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

/// Token, trusted-IP and per-API checks shared by every business API, in WeCom's order.
fn authorize(
    shared: &Shared,
    state: &mut FakeState,
    endpoint: &str,
    params: &HashMap<String, String>,
    peer: IpAddr,
) -> Result<IssuedToken, Reject> {
    let Some(token) = params.get("access_token").filter(|t| !t.is_empty()) else {
        return Err(reject(41001, "access_token missing"));
    };
    let Some(issued) = state.tokens.get(token).cloned() else {
        return Err(reject(40014, "invalid access_token"));
    };
    if issued.revoked {
        return Err(reject(40014, "invalid access_token"));
    }
    let now = shared.clock.now();
    if now.saturating_sub(issued.issued_at) >= state.token_ttl {
        return Err(reject(
            42001,
            "access_token expired, hint: [fake], more info at https://open.work.weixin.qq.com/devtool/query?e=42001",
        ));
    }
    if let Some(trusted) = &state.trusted_ips {
        if !trusted.contains(&peer) {
            return Err(reject(
                60020,
                &format!("not allow to access from your ip, hint: [fake], from ip: {peer}, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"),
            ));
        }
    }
    if let Some(limit) = state.api_limit_per_minute {
        let hits = state.api_hits.entry(endpoint.to_owned()).or_default();
        if !window_admit(hits, now, MINUTE, limit) {
            return Err(reject(45009, "api freq out of limit"));
        }
    }
    Ok(issued)
}

/// Sliding-window admission: true (and counted) when fewer than `limit` hits are younger
/// than `window`.
fn window_admit(
    hits: &mut VecDeque<Duration>,
    now: Duration,
    window: Duration,
    limit: usize,
) -> bool {
    while hits
        .front()
        .is_some_and(|&hit| now.saturating_sub(hit) >= window)
    {
        hits.pop_front();
    }
    if hits.len() >= limit {
        return false;
    }
    hits.push_back(now);
    true
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Reject> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(reject(47001, "data format error")),
    }
}

/// The body's `agentid` must be the app the access token was issued to.
fn check_agent(body: &Map<String, Value>, token_agent: i64) -> Result<(), Reject> {
    match loose_int(body.get("agentid")) {
        None => Err(reject(41011, "missing agentid")),
        Some(agent_id) if agent_id != token_agent => Err(reject(
            301002,
            "not allow operate another agent with this accesstoken",
        )),
        Some(_) => Ok(()),
    }
}

/// An int or, as Alertmanager 0.25 sends, a decimal string.
fn loose_int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Validate `msgtype` and its object; only the object for the stated type matters, so
/// Alertmanager's empty `text` beside `markdown` is fine.
fn check_content(body: &Map<String, Value>) -> Result<(), Reject> {
    let Some(msgtype) = body.get("msgtype").and_then(Value::as_str) else {
        return Err(reject(41008, "missing msgtype"));
    };
    if !matches!(
        msgtype,
        "text" | "markdown" | "textcard" | "template_card" | "news" | "image" | "file"
    ) {
        return Err(reject(40008, "invalid message type"));
    }
    let Some(payload) = body.get(msgtype).and_then(Value::as_object) else {
        return Err(reject(47001, "data format error"));
    };
    match msgtype {
        "text" | "markdown" => check_text(payload, TEXT_LIMIT),
        "textcard" => {
            for field in ["title", "description", "url"] {
                if payload
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    return Err(reject(40058, &format!("textcard.{field} missing")));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_text(payload: &Map<String, Value>, limit: usize) -> Result<(), Reject> {
    match payload.get("content").and_then(Value::as_str) {
        None | Some("") => Err(reject(44004, "empty content")),
        Some(content) if content.len() > limit => Err(reject(45002, "content size out of limit")),
        Some(_) => Ok(()),
    }
}

fn id_list(body: &Map<String, Value>, field: &str) -> Vec<String> {
    body.get(field)
        .and_then(Value::as_str)
        .map(|joined| {
            joined
                .split('|')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

async fn gettoken(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    if let Some(response) = intake(&shared, "gettoken").await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    state.gettoken_calls += 1;
    let Some(corp_id) = params.get("corpid").filter(|v| !v.is_empty()) else {
        return wecom(41002, "corpid missing");
    };
    let Some(secret) = params.get("corpsecret").filter(|v| !v.is_empty()) else {
        return wecom(41004, "corpsecret missing");
    };
    let Some(&agent_id) = state.apps.get(&(corp_id.clone(), secret.clone())) else {
        return wecom(40001, "invalid credential");
    };
    let ttl = state.token_ttl;
    // Within its lifetime WeCom hands out the same token again.
    let live = state.tokens.iter().find(|(_, t)| {
        t.agent_id == agent_id
            && t.corp_id == *corp_id
            && !t.revoked
            && now.saturating_sub(t.issued_at) < ttl
    });
    let (token, remaining) = match live {
        Some((token, issued)) => (token.clone(), ttl - now.saturating_sub(issued.issued_at)),
        None => {
            let token = format!("tok-{}", state.next_id());
            state.tokens.insert(
                token.clone(),
                IssuedToken {
                    corp_id: corp_id.clone(),
                    agent_id,
                    issued_at: now,
                    revoked: false,
                },
            );
            (token, ttl)
        }
    };
    let mut extra = Map::new();
    extra.insert("access_token".into(), json!(token));
    extra.insert("expires_in".into(), json!(remaining.as_secs()));
    ok(extra)
}

async fn message_send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "message/send";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let issued = match authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        Ok(issued) => issued,
        Err(reject) => return reject.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    if let Err(reject) = check_agent(&body, issued.agent_id) {
        return reject.into_response();
    }
    if let Err(reject) = check_content(&body) {
        return reject.into_response();
    }
    let card = match cards::check_send(&state, issued.agent_id, &body) {
        Ok(card) => card,
        Err(reject) => return reject.into_response(),
    };
    let users = id_list(&body, "touser");
    let parties = id_list(&body, "toparty");
    let tags = id_list(&body, "totag");
    if users.is_empty() && parties.is_empty() && tags.is_empty() {
        return wecom(40058, "touser & toparty & totag all empty");
    }
    let everyone = users.iter().any(|u| u == "@all");
    let (valid_users, invalid_users): (Vec<String>, Vec<String>) = if everyone {
        (state.users.iter().cloned().collect(), Vec::new())
    } else {
        users
            .iter()
            .map(|u| u.to_lowercase())
            .partition(|u| state.users.contains(u))
    };
    let (valid_parties, invalid_parties): (Vec<String>, Vec<String>) =
        parties.into_iter().partition(|p| state.parties.contains(p));
    let (valid_tags, invalid_tags): (Vec<String>, Vec<String>) =
        tags.into_iter().partition(|t| state.tags.contains(t));
    if valid_users.is_empty() && valid_parties.is_empty() && valid_tags.is_empty() && !everyone {
        return wecom(81013, "user & party & tag all invalid");
    }

    let msg_id = format!("msg-{}", state.next_id());
    let mut received = Vec::new();
    for user in valid_users {
        let hits = state
            .member_hits
            .entry((issued.agent_id, user.clone()))
            .or_default();
        // WeCom's per-member limit: the excess vanishes and the sender is not told.
        let dropped = !window_admit(hits, now, MINUTE, MEMBER_LIMIT);
        if !dropped {
            received.push(user.clone());
        }
        state.deliveries.push(Delivery {
            agent_id: issued.agent_id,
            user,
            msg_id: msg_id.clone(),
            dropped,
        });
    }
    let response_code = card.and_then(|facts| {
        let card = body.get("template_card").cloned().unwrap_or_default();
        cards::record_send(
            &mut state,
            ENDPOINT,
            issued.agent_id,
            facts,
            card,
            received,
            now,
        )
    });
    state.sent.push(RecordedMessage {
        endpoint: ENDPOINT.into(),
        body: Value::Object(body),
        at: now,
    });
    let mut extra = Map::new();
    extra.insert("invaliduser".into(), json!(invalid_users.join("|")));
    extra.insert("invalidparty".into(), json!(invalid_parties.join("|")));
    extra.insert("invalidtag".into(), json!(invalid_tags.join("|")));
    extra.insert("unlicenseduser".into(), json!(""));
    extra.insert("msgid".into(), json!(msg_id));
    if let Some(code) = response_code {
        extra.insert("response_code".into(), json!(code));
    }
    ok(extra)
}

async fn appchat_create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "appchat/create";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let mut state = shared.lock();
    if let Err(reject) = authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        return reject.into_response();
    }
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    let members: Vec<String> = body
        .get("userlist")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !(2..=500).contains(&members.len()) {
        return wecom(40050, "chat member count must be 2..500");
    }
    let chat_id = match body.get("chatid").and_then(Value::as_str) {
        Some(id) => {
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return wecom(40050, "invalid chatid");
            }
            id.to_owned()
        }
        None => format!("chat{}", state.next_id()),
    };
    if state.chats.contains_key(&chat_id) {
        return wecom(86215, "chat exists");
    }
    let owner = body
        .get("owner")
        .and_then(Value::as_str)
        .map_or_else(|| members[0].clone(), str::to_owned);
    let info = json!({
        "chatid": chat_id,
        "name": body.get("name").and_then(Value::as_str).unwrap_or(""),
        "owner": owner,
        "userlist": members,
    });
    state.chats.insert(chat_id.clone(), info);
    let mut extra = Map::new();
    extra.insert("chatid".into(), json!(chat_id));
    ok(extra)
}

async fn appchat_send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "appchat/send";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let issued = match authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        Ok(issued) => issued,
        Err(reject) => return reject.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    let Some(members) = body
        .get("chatid")
        .and_then(Value::as_str)
        .and_then(|id| state.chats.get(id))
        .map(|chat| {
            chat["userlist"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
    else {
        return wecom(86003, "chat not exist");
    };
    if let Err(reject) = check_content(&body) {
        return reject.into_response();
    }
    let card = match cards::check_send(&state, issued.agent_id, &body) {
        Ok(card) => card,
        Err(reject) => return reject.into_response(),
    };
    // Whether WeCom answers a response_code here is unknown (CARDS.md §2.3); the fake
    // does, as message/send does.
    let response_code = card.and_then(|facts| {
        let card = body.get("template_card").cloned().unwrap_or_default();
        cards::record_send(
            &mut state,
            ENDPOINT,
            issued.agent_id,
            facts,
            card,
            members,
            now,
        )
    });
    state.sent.push(RecordedMessage {
        endpoint: ENDPOINT.into(),
        body: Value::Object(body),
        at: now,
    });
    let mut extra = Map::new();
    if let Some(code) = response_code {
        extra.insert("response_code".into(), json!(code));
    }
    ok(extra)
}

async fn appchat_get(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
) -> Response {
    const ENDPOINT: &str = "appchat/get";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let mut state = shared.lock();
    if let Err(reject) = authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        return reject.into_response();
    }
    match params.get("chatid").and_then(|id| state.chats.get(id)) {
        Some(info) => {
            let mut extra = Map::new();
            extra.insert("chat_info".into(), info.clone());
            ok(extra)
        }
        None => wecom(86003, "chat not exist"),
    }
}

async fn webhook_send(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "webhook/send";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let Some(key) = params
        .get("key")
        .filter(|k| state.robot_keys.contains(*k))
        .cloned()
    else {
        return wecom(
            93000,
            "invalid webhook url, hint: [fake], more info at https://open.work.weixin.qq.com/devtool/query?e=93000",
        );
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    let msgtype = body.get("msgtype").and_then(Value::as_str).unwrap_or("");
    let payload = body.get(msgtype).and_then(Value::as_object);
    let checked = match (msgtype, payload) {
        ("text", Some(text)) => check_text(text, TEXT_LIMIT).and_then(|()| {
            for field in ["mentioned_list", "mentioned_mobile_list"] {
                let valid = match text.get(field) {
                    None => true,
                    Some(Value::Array(items)) => items.iter().all(Value::is_string),
                    Some(_) => false,
                };
                if !valid {
                    return Err(reject(
                        40058,
                        &format!("text.{field} must be an array of strings"),
                    ));
                }
            }
            Ok(())
        }),
        ("markdown", Some(markdown)) => check_text(markdown, ROBOT_MARKDOWN_LIMIT),
        ("image" | "news" | "file" | "template_card", Some(_)) => Ok(()),
        ("", _) => Err(reject(41008, "missing msgtype")),
        (_, Some(_)) => Err(reject(40008, "invalid message type")),
        (_, None) => Err(reject(47001, "data format error")),
    };
    if let Err(reject) = checked {
        return reject.into_response();
    }
    let hits = state.robot_hits.entry(key).or_default();
    if !window_admit(hits, now, MINUTE, ROBOT_LIMIT) {
        return wecom(45009, "api freq out of limit");
    }
    state.sent.push(RecordedMessage {
        endpoint: ENDPOINT.into(),
        body: Value::Object(body),
        at: now,
    });
    ok(Map::new())
}

async fn getuserinfo(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
) -> Response {
    const ENDPOINT: &str = "auth/getuserinfo";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    if let Err(reject) = authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        return reject.into_response();
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return wecom(41008, "missing code");
    };
    // Single use: taken out whether or not it is still valid.
    match state.codes.remove(code) {
        Some(issued) if now.saturating_sub(issued.issued_at) < CODE_LIFETIME => {
            ok(issued.identity.as_object().cloned().unwrap_or_default())
        }
        _ => wecom(40029, "invalid code"),
    }
}

/// The error pages WeCom shows in place of a redirect (HTTP 200, HTML).
fn oauth_page(text: &str) -> Response {
    (
        [("content-type", "text/html; charset=utf-8")],
        format!("<!DOCTYPE html><html><body><p class=\"weui-msg__title\">{text}</p></body></html>"),
    )
        .into_response()
}

/// The OAuth2 authorize link (PROTOCOLS.md §2.5) as the WeCom client opens it: checks
/// the corp, the app, scope, state and that `redirect_uri` is on the app's trusted
/// domain, then redirects there with a fresh single-use code for the signed-in member.
async fn oauth_authorize(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    const ENDPOINT: &str = "oauth2/authorize";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let (member, domain) = {
        let state = shared.lock();
        let corp_known = state.apps.keys().any(|(corp, _)| corp == param("appid"));
        if !corp_known {
            return oauth_page("appid参数错误");
        }
        let agent: Option<i64> = param("agentid").parse().ok();
        let agent_known = agent.is_some_and(|a| {
            state
                .apps
                .iter()
                .any(|((corp, _), id)| corp == param("appid") && *id == a)
        });
        if param("response_type") != "code" {
            return oauth_page("response_type参数错误");
        }
        match param("scope") {
            "snsapi_base" => {}
            "snsapi_privateinfo" if agent_known => {}
            "snsapi_privateinfo" => return oauth_page("agentid参数错误"),
            _ => return oauth_page("scope参数错误"),
        }
        if !param("agentid").is_empty() && !agent_known {
            return oauth_page("agentid参数错误");
        }
        let state_ok = param("state").len() <= 128
            && param("state").bytes().all(|b| b.is_ascii_alphanumeric());
        if !state_ok {
            return oauth_page("state参数错误");
        }
        let domain = agent.and_then(|a| state.trusted_domains.get(&a).cloned());
        (state.oauth_member.clone(), domain)
    };
    let redirect = param("redirect_uri");
    let authority = redirect
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if domain.as_deref() != Some(authority) || authority.is_empty() {
        return oauth_page("redirect_uri参数错误");
    }
    let Some(member) = member else {
        return oauth_page("请在企业微信客户端打开链接");
    };
    let code = shared.mint(json!({ "userid": member }));
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect}{separator}code={}&state={}",
        percent_encode(&code),
        percent_encode(param("state"))
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn getcallbackip(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
) -> Response {
    const ENDPOINT: &str = "getcallbackip";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let mut state = shared.lock();
    if let Err(reject) = authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        return reject.into_response();
    }
    let mut extra = Map::new();
    extra.insert("ip_list".into(), json!(["127.0.0.1"]));
    ok(extra)
}

/// An encrypted callback POST as WeCom would send it (PROTOCOLS.md §1.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPost {
    /// `msg_signature=..&timestamp=..&nonce=..`, percent-encoded.
    pub query: String,
    /// `<xml><ToUserName/><Encrypt/><AgentID/></xml>`.
    pub body: String,
    /// The signature, for tampering tests.
    pub msg_signature: String,
    /// The base64 ciphertext.
    pub encrypt: String,
}

/// Encrypt `plaintext_xml` into a callback POST for the app behind `crypto`.
pub fn build_callback_post(
    crypto: &WecomCrypto,
    agent_id: i64,
    plaintext_xml: &str,
    random16: &[u8; 16],
    timestamp: &str,
    nonce: &str,
) -> CallbackPost {
    let encrypt = crypto.encrypt_with_random(plaintext_xml, random16);
    let msg_signature = crypto.signature(timestamp, nonce, &encrypt);
    let body = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{agent_id}]]></AgentID></xml>",
        crypto.receive_id()
    );
    CallbackPost {
        query: format!(
            "msg_signature={msg_signature}&timestamp={}&nonce={}",
            percent_encode(timestamp),
            percent_encode(nonce)
        ),
        body,
        msg_signature,
        encrypt,
    }
}

/// The query of a URL-verification GET (§1.7) whose answer must be `echo_plaintext`.
pub fn build_verify_url_query(
    crypto: &WecomCrypto,
    echo_plaintext: &str,
    random16: &[u8; 16],
    timestamp: &str,
    nonce: &str,
) -> String {
    let echostr = crypto.encrypt_with_random(echo_plaintext, random16);
    let msg_signature = crypto.signature(timestamp, nonce, &echostr);
    format!(
        "msg_signature={msg_signature}&timestamp={}&nonce={}&echostr={}",
        percent_encode(timestamp),
        percent_encode(nonce),
        percent_encode(&echostr)
    )
}

/// Percent-encode everything but unreserved characters; `+`, `/`, `=` in echostr must
/// survive the trip.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What the callback endpoint under test answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackOutcome {
    /// HTTP status.
    pub status: u16,
    /// The raw body (for URL verification it must equal the echostr plaintext).
    pub body: String,
    /// Time to the full answer; WeCom gives up after about 5 s.
    pub elapsed: Duration,
}

/// POST `post` to `callback_url` as WeCom does (`Content-Type: text/xml`).
pub async fn push_callback(
    callback_url: &str,
    post: &CallbackPost,
) -> Result<CallbackOutcome, reqwest::Error> {
    let request = reqwest::Client::new()
        .post(with_query(callback_url, &post.query))
        .header("content-type", "text/xml")
        .body(post.body.clone());
    exchange(request).await
}

/// GET `callback_url` with a URL-verification query from [`build_verify_url_query`].
pub async fn get_verify_url(
    callback_url: &str,
    query: &str,
) -> Result<CallbackOutcome, reqwest::Error> {
    exchange(reqwest::Client::new().get(with_query(callback_url, query))).await
}

fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<CallbackOutcome, reqwest::Error> {
    let started = std::time::Instant::now();
    let response = request.timeout(Duration::from_secs(10)).send().await?;
    let status = response.status().as_u16();
    let body = response.text().await?;
    Ok(CallbackOutcome {
        status,
        body,
        elapsed: started.elapsed(),
    })
}
