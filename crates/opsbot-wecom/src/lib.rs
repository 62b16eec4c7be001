//! WeCom (企业微信) for opsbot: callback crypto, message XML, and the API client.
//!
//! - [`crypto`]: verify and decrypt callbacks, encrypt passive replies (PROTOCOLS.md §1).
//! - [`message`]: typed decrypted messages and passive text-reply XML.
//! - [`card`]: template cards with buttons: the wire model and its limits, card updates,
//!   and the passive replies that change a card after a click.
//! - [`api`]: access tokens, app messages, app chats, group robots, OAuth (§2), and the
//!   smart robot's `response_url`.
//! - [`aibot`]: the smart robot (智能机器人) in API mode: JSON callbacks and stream replies.
//! - [`mp`]: WeChat Official Accounts (公众号): signatures, access token, customer-service
//!   messages.
//! - [`robot`]: a group robot's configuration (name, webhook key, API base).
//! - [`split`]: cut long text to WeCom's byte limits.
//! - [`ratelimit`] and [`clock`]: the client-side limits and the time they run on.
//!
//! The fakes of the WeCom and WeChat APIs that tests run against are `opsbot-fakes`.
//!
//! API boundary: this crate speaks HTTP as a client only; serving the callback URL is the
//! http crate's job (it calls [`crypto::WecomCrypto`] and [`message::Message::parse`]).

pub mod aibot;
pub mod api;
pub mod card;
pub mod clock;
pub mod crypto;
mod error;
mod http;
pub mod message;
pub mod mp;
pub mod ratelimit;
pub mod robot;
pub mod split;
mod token_cache;
mod xml;

pub use api::{AppClient, AppCredentials, ClientConfig, WecomClient};
pub use crypto::{check_timestamp, Peer, WecomCrypto};
pub use error::{Error, Result, BUSY_BACKOFF, CONCURRENCY_BACKOFF, RATE_LIMIT_BACKOFF};
pub use message::{Event, Message, MessageBody};
pub use robot::RobotConfig;
