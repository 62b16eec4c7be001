//! What a channel implements: its protocol, nothing of the pipeline around it.

use crate::error::CallbackError;
use crate::handoff::Late;
use crate::query::Signed;
use async_trait::async_trait;
use opsbot_engine::{Click, Engine, ReplySink, Response};
use opsbot_store::MessageIdStore;
use std::sync::Arc;
use std::time::Duration;

/// A kind of channel as HTTP serves it: one callback route, and how its answers look.
#[derive(Debug)]
pub struct ChannelKind {
    /// The registry key: `wecom`, `wecom-bot`, `wechat`.
    pub name: &'static str,
    /// The callback route, with one path parameter: the app, robot or account.
    pub route: &'static str,
    /// The 404 body when nothing of this kind is configured.
    pub not_configured: &'static str,
    /// The Content-Type of a passive reply.
    pub reply_type: &'static str,
    /// The body that says "nothing to say": empty (a bare 200), or WeChat's `success`.
    pub nothing: &'static str,
}

/// What a callback POST answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A passive reply: the platform's body (encrypted where it is).
    Reply(String),
    /// Nothing to say now (the platform does not try again).
    Nothing,
}

/// A callback whose signature checked out, in plain text.
pub(crate) struct Opened {
    pub plaintext: String,
    /// A key this request may be seen under once only, before anything is decoded: set
    /// where the signature covers the query but not the body (plain mode).
    pub single_use: Option<String>,
}

/// A message for the engine.
pub(crate) struct Ask {
    pub text: String,
    /// The group chat it was said in.
    pub chat: Option<String>,
    /// Typed by the user (a message), not a menu click: it may open a reply window.
    pub typed: bool,
}

/// What a decoded callback is.
pub(crate) enum Turn<R> {
    /// A message for the engine: [`ChannelCodec::converse`].
    Ask(Ask),
    /// Answered by the channel itself (a welcome, "text only").
    Reply(R),
    /// An event nothing answers.
    Nothing,
    /// A callback about a conversation under way, by its id (the robot's stream
    /// refresh): [`ChannelCodec::resume`]; not de-duplicated.
    Resume(String),
    /// A tap on a card's button: [`ChannelCodec::click`]; de-duplicated like a message.
    Click(Click),
}

/// One chat platform's protocol. The pipeline ([`super::pipeline`]) calls these in
/// order; a channel implements only these.
#[async_trait]
pub(crate) trait ChannelCodec: Send + Sync + Sized + 'static {
    /// One configured app, robot or account.
    type Endpoint: Send + Sync + 'static;
    type Message: Send + Sync + 'static;
    /// A passive reply before it is encoded.
    type Reply: Send + 'static;

    const KIND: &'static ChannelKind;
    /// The query parameter the signature comes in.
    const SIGNATURE: &'static str;
    /// `true`: [`Self::converse`] records every message itself, unique by its id (the
    /// robot's stream), and that is its de-duplication; otherwise the pipeline marks
    /// each message processed before it runs.
    const RECORDS_ASKS: bool = false;

    /// The endpoint named in the URL, or the kind's "unknown" refusal.
    fn endpoint(&self, name: &str) -> Result<Arc<Self::Endpoint>, CallbackError>;
    /// `<kind>:<name>`: the engine channel, the outbox channel, the de-duplication scope.
    fn channel(endpoint: &Self::Endpoint) -> &str;
    /// Where callbacks are de-duplicated.
    fn message_ids(&self) -> &dyn MessageIdStore;
    /// How far a callback's timestamp may be from now.
    fn timestamp_window(&self) -> Duration;
    /// A callback arrived (before anything is checked).
    fn arrived(&self) {}

    /// GET: a check of `echostr` before anything else (it may be sent back as it is).
    fn check_echostr(&self, _echostr: &str) -> Result<(), CallbackError> {
        Ok(())
    }
    /// GET: proves we hold the secrets; the answer's body.
    fn verify_url(
        &self,
        endpoint: &Self::Endpoint,
        s: &Signed,
        echostr: &str,
    ) -> Result<String, CallbackError>;
    /// GET: a key a signed URL check may be used under once only (the signature covers
    /// neither `echostr` nor a body).
    fn url_check_once(&self, _s: &Signed) -> Option<String> {
        None
    }

    /// POST: checks the signature and decrypts the body.
    fn open(
        &self,
        endpoint: &Self::Endpoint,
        s: &Signed,
        body: &str,
    ) -> Result<Opened, CallbackError>;
    /// POST: parses the plain text, refusing what is addressed to someone else.
    fn decode(
        &self,
        endpoint: &Self::Endpoint,
        plaintext: &str,
    ) -> Result<Self::Message, CallbackError>;
    /// The id the platform retries a message under.
    fn dedup_key(msg: &Self::Message) -> String;
    fn turn(&self, endpoint: &Self::Endpoint, msg: &Self::Message) -> Turn<Self::Reply>;
    /// A callback about a conversation under way ([`Turn::Resume`]).
    async fn resume(
        &self,
        _endpoint: &Arc<Self::Endpoint>,
        _id: &str,
    ) -> Result<Option<Self::Reply>, CallbackError> {
        Ok(None)
    }
    /// Hands a message to the engine; the passive reply, if any. Channels that answer
    /// within the platform's wait use [`super::within_deadline`].
    async fn converse(
        &self,
        endpoint: &Arc<Self::Endpoint>,
        msg: &Self::Message,
        ask: Ask,
    ) -> Result<Option<Self::Reply>, CallbackError>;
    /// Hands a card click to the engine ([`Engine::click`]); the passive reply, if any.
    async fn click(
        &self,
        _endpoint: &Arc<Self::Endpoint>,
        _msg: &Self::Message,
        _click: Click,
    ) -> Result<Option<Self::Reply>, CallbackError> {
        Ok(None)
    }
    /// The body of a passive reply.
    fn encode(
        &self,
        endpoint: &Self::Endpoint,
        s: &Signed,
        msg: &Self::Message,
        reply: Self::Reply,
    ) -> String;
}

/// Who asks, as the engine knows them, and where their later replies go.
pub(crate) enum Asker<C, R> {
    User(String, Arc<C>),
    /// Not someone the channel lets in: this is the answer.
    Refused(R),
}

/// The capability of answering within the platform's wait: the engine gets the ack
/// budget; what it answers in time is the passive reply, anything later goes by the
/// courier.
#[async_trait]
pub(crate) trait Deadline: ChannelCodec {
    /// Where later replies (slow answers, job progress and results) go.
    type Courier: ReplySink + Late;

    fn engine(&self) -> &Arc<Engine>;
    fn ack_budget(&self) -> Duration;
    async fn asker(
        &self,
        endpoint: &Self::Endpoint,
        msg: &Self::Message,
        ask: &Ask,
    ) -> Result<Asker<Self::Courier, Self::Reply>, CallbackError>;
    /// The engine answered in time: the passive reply, or `None` when it all goes by
    /// the courier.
    fn in_time(&self, courier: &Self::Courier, response: Response) -> Option<Self::Reply>;
    /// The engine task ended without answering.
    fn lost(&self, courier: &Self::Courier) -> Option<Self::Reply>;
}
