//! The configured channels by kind, as the HTTP layer finds them.

use super::codec::{Answer, ChannelCodec, ChannelKind};
use super::pipeline;
use crate::error::CallbackError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// A channel as HTTP sees it: every [`ChannelCodec`] is one, run by the pipeline.
#[async_trait]
pub trait Inbound: Send + Sync {
    fn kind(&self) -> &'static ChannelKind;
    /// GET: the URL check; the body to answer with.
    async fn verify(&self, name: &str, raw_query: &str) -> Result<String, CallbackError>;
    /// POST: one callback. The raw query is passed undecoded (`echostr` is base64: a
    /// `+` must stay a `+`).
    async fn receive(
        &self,
        name: &str,
        raw_query: &str,
        body: &str,
    ) -> Result<Answer, CallbackError>;
}

#[async_trait]
impl<C: ChannelCodec> Inbound for C {
    fn kind(&self) -> &'static ChannelKind {
        C::KIND
    }

    async fn verify(&self, name: &str, raw_query: &str) -> Result<String, CallbackError> {
        pipeline::verify(self, name, raw_query).await
    }

    async fn receive(
        &self,
        name: &str,
        raw_query: &str,
        body: &str,
    ) -> Result<Answer, CallbackError> {
        pipeline::receive(self, name, raw_query, body).await
    }
}

/// The configured channels, by [`ChannelKind::name`]; cheap to clone.
#[derive(Clone, Default)]
pub struct ChannelRegistry {
    channels: Arc<HashMap<&'static str, Arc<dyn Inbound>>>,
}

impl ChannelRegistry {
    /// Adds `channel` under its kind (replacing one of the same kind).
    pub fn register(&mut self, channel: Arc<dyn Inbound>) -> &mut Self {
        Arc::make_mut(&mut self.channels).insert(channel.kind().name, channel);
        self
    }

    /// [`Self::register`], by value.
    pub fn with(mut self, channel: Arc<dyn Inbound>) -> Self {
        self.register(channel);
        self
    }

    /// The channel of kind `kind`, if one is configured.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Inbound>> {
        self.channels.get(kind)
    }
}

impl std::fmt::Debug for ChannelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.channels.keys()).finish()
    }
}
