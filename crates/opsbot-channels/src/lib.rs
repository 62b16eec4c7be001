//! Chat channels: transport only. A channel turns what arrives from a chat service into
//! engine messages and delivers the engine's replies back; it knows nothing of clusters.
//!
//! - [`wecom`]: WeCom self-built apps (企业微信自建应用), several apps and corps at once.
//! - [`wecom_bot`]: WeCom smart robots (智能机器人) in API mode, for group chats.
//! - [`mp`]: WeChat Official Accounts (公众号), for engineers with personal WeChat only.
//!
//! What they share: one conversation pipeline ([`inbound`]: every channel is a codec
//! registered under its [`ChannelKind`] in a [`ChannelRegistry`]), signed-query parsing
//! ([`query`]), the engine hand-off under a deadline, the ordered outbox writer and the
//! leased, retrying [`delivery`] worker.

mod config_check;
pub mod delivery;
mod endpoint;
mod error;
mod handoff;
pub mod inbound;
pub mod mp;
pub mod query;
pub mod wecom;
pub mod wecom_bot;
mod writer;

pub use endpoint::Callback;
pub use error::{CallbackError, ChannelError};
pub use inbound::{Answer, ChannelKind, ChannelRegistry, Inbound};

/// Every kind of channel this crate has: the HTTP layer serves a callback route for
/// each, answering 404 for a kind with nothing configured.
pub const KINDS: &[&ChannelKind] = &[&wecom::KIND, &wecom_bot::KIND, &mp::KIND];

/// The answer to a user's first contact.
pub(crate) const WELCOME: &str = "欢迎使用 opsbot。发送 帮助 查看可用命令,发送 菜单 使用数字菜单";
/// The answer to pictures, voice, files: what the channels cannot take.
pub(crate) const TEXT_ONLY: &str = "暂时只支持文字命令。发送 帮助 查看可用命令";

/// `text` addressed to `asker` in a group chat.
pub(crate) fn mention(asker: &str, text: &str) -> String {
    format!("@{asker} {text}")
}
