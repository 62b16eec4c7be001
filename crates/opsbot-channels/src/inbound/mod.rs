//! The conversation pipeline every channel shares. A channel is a [`ChannelCodec`]: the
//! protocol parts of one chat platform (verify a callback, decode a message, encode a
//! passive reply, the courier for later replies). [`pipeline`] runs them in the same
//! order for every channel: verify → decode → de-duplicate → hand off to the engine →
//! passive reply or a late one through the courier. Every codec is an [`Inbound`]
//! channel, which the HTTP layer finds in a [`ChannelRegistry`] by its [`ChannelKind`].
//!
//! Where a platform truly differs it says so through a capability, not a pipeline of
//! its own: [`Deadline`] (answer within the platform's wait, the rest later) for WeCom
//! apps and Official Accounts, [`ChannelCodec::converse`] and [`ChannelCodec::resume`]
//! for the smart robot's stream, [`ChannelCodec::url_check_once`] and
//! [`Opened::single_use`] for the Official Account's plain mode. A tap on a card's
//! button is a turn of its own ([`Turn::Click`]), de-duplicated like a message and
//! handed to the engine's click path by [`ChannelCodec::click`].

mod codec;
mod pipeline;
mod registry;

pub use codec::{Answer, ChannelKind};
pub(crate) use codec::{Ask, Asker, ChannelCodec, Deadline, Opened, Turn};
pub(crate) use pipeline::within_deadline;
pub use registry::{ChannelRegistry, Inbound};
