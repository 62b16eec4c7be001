//! The WeCom smart-robot channel (智能机器人, API mode): `/wecom/bot/{name}/callback`.
//! Members @ the robot in a group chat (or talk to it one to one); it answers each asker
//! by name, and many commands run at once.
//!
//! A message's stream is recorded first (the message id is its unique key, so nothing
//! runs twice; the streams of messages arriving together are one write), then the
//! message is acknowledged with it, empty (`finish=false`), and only then does the
//! engine run; its answer, job progress and result fill the stream, which WeCom shows as
//! it refreshes. A stream still running at its deadline (WeCom refreshes for six
//! minutes) is ended with a note, and the job's result follows once through the
//! message's `response_url` (single use, one hour), by the durable outbox.
//!
//! Streams live in the store, so a refresh answered by another opsbot instance sees
//! what the instance running the job wrote. A stream's id is derived from the message
//! id, so a retried callback is acknowledged with the stream it may already be
//! refreshing, wherever it lands.
//!
//! A confirmation comes with a card (确认 / 取消): the stream says the prompt, and the
//! card follows once through the message's `response_url`. A click on a card
//! ([`click`]) is answered by the engine within WeCom's 5 s: the card is replaced for
//! the clicker by the passive reply, and a job it started reports its result once
//! through the click's own `response_url`.

mod callback;
mod click;
mod courier;
mod opener;
mod quiet;
mod stream;

pub use callback::KIND;

use crate::config_check as check;
use crate::delivery::{Delivery, RetryPolicy};
use crate::error::ChannelError;
use crate::Callback;
use opsbot_engine::Engine;
use opsbot_store::{NewOutbox, Store};
use opsbot_wecom::{aibot, ClientConfig, WecomClient, WecomCrypto};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// One configured robot: a `[[wecom.bots]]` table of the configuration file.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// `name`, part of the callback URL (`/wecom/bot/{name}/callback`), and `token`, the
    /// robot's callback Token (接收消息 → Token).
    #[serde(flatten)]
    pub callback: Callback,
    /// The robot's EncodingAESKey (43 characters).
    pub encoding_aes_key: String,
    /// The robot's id (`aibotid`); when set, callbacks for another robot are refused.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// Where WeCom lives; `response_url`s outside it are never called.
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    opsbot_wecom::api::DEFAULT_API_BASE.to_string()
}

/// Never prints the token or the key.
impl std::fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotConfig")
            .field("name", &self.callback.name)
            .field("bot_id", &self.bot_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Checks `[[wecom.bots]]`; the error names the key (`wecom.bots[0].token`) and the problem.
pub fn validate(bots: &[BotConfig]) -> Result<(), (String, String)> {
    let mut names = HashSet::new();
    for (i, bot) in bots.iter().enumerate() {
        let key = |f: &str| format!("wecom.bots[{i}].{f}");
        bot.callback.check_name(key, &mut names, "robot")?;
        check::not_empty(&bot.callback.token).map_err(|p| (key("token"), p))?;
        check::aes_key(&bot.encoding_aes_key).map_err(|p| (key("encoding_aes_key"), p))?;
        if let Some(id) = &bot.bot_id {
            check::not_empty(id).map_err(|p| (key("bot_id"), p))?;
        }
        check::http_url(&bot.api_base).map_err(|p| (key("api_base"), p))?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// How far a callback's timestamp may be from now (replayed old requests fail).
    pub timestamp_window: Duration,
    /// How long a stream stays open for a running job. WeCom refreshes for six minutes
    /// after the message; ending a little earlier leaves room for the last refresh.
    pub stream_window: Duration,
    /// How long a `response_url` is good for (WeCom: one hour).
    pub response_url_ttl: Duration,
    /// Streams older than this are deleted (long after WeCom stopped refreshing them).
    pub keep_streams: Duration,
    /// How long a card click waits for the engine before it is acknowledged empty:
    /// WeCom tries a card event once and drops it after 5 s.
    pub click_budget: Duration,
    pub retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timestamp_window: Duration::from_secs(300),
            stream_window: Duration::from_secs(330),
            response_url_ttl: Duration::from_secs(3600),
            keep_streams: Duration::from_secs(2 * 3600),
            click_budget: Duration::from_secs(3),
            retry: RetryPolicy::default(),
        }
    }
}

/// A ready robot.
pub(crate) struct Bot {
    pub(crate) name: String,
    /// `wecom-bot:<name>`: the engine channel and the outbox channel.
    pub(crate) channel: String,
    pub(crate) crypto: WecomCrypto,
    pub(crate) bot_id: Option<String>,
    pub(crate) client: WecomClient,
}

/// Every configured robot, with the engine and store they share.
pub struct BotChannel {
    bots: HashMap<String, Arc<Bot>>,
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    /// Wakes the delivery worker when something is queued.
    wake: Arc<Notify>,
    /// `response_url` replies on their way into the outbox.
    outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
    /// Records the streams of incoming messages, batched.
    opener: opener::Opener,
    /// When callbacks last arrived: the work messages start waits for a lull.
    quiet: Arc<quiet::Quiet>,
    settings: Settings,
}

impl BotChannel {
    /// Builds the robots; must run inside the tokio runtime (it starts the outbox writer
    /// and the stream clean-up).
    pub fn new(
        configs: &[BotConfig],
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Self, ChannelError> {
        let mut bots = HashMap::new();
        let mut clients: HashMap<String, WecomClient> = HashMap::new();
        for c in configs {
            let Callback { name, token } = &c.callback;
            let bad = |problem: String| ChannelError::BadBot {
                bot: name.clone(),
                problem,
            };
            let crypto = WecomCrypto::new(token, &c.encoding_aes_key, aibot::RECEIVE_ID)
                .map_err(|e| bad(e.to_string()))?;
            let client = match clients.get(&c.api_base) {
                Some(client) => client.clone(),
                None => {
                    let config = ClientConfig {
                        api_base: c.api_base.clone(),
                        ..ClientConfig::default()
                    };
                    let client = WecomClient::new(config).map_err(|e| bad(e.to_string()))?;
                    clients.insert(c.api_base.clone(), client.clone());
                    client
                }
            };
            let bot = Bot {
                name: name.clone(),
                channel: format!("wecom-bot:{name}"),
                crypto,
                bot_id: c.bot_id.clone(),
                client,
            };
            bots.insert(name.clone(), Arc::new(bot));
        }
        let wake = Arc::new(Notify::new());
        let outbox = crate::writer::spawn_writer(store.clone(), wake.clone());
        let quiet = Arc::new(quiet::Quiet::new(
            Duration::from_millis(2),
            Duration::from_millis(25),
        ));
        let opener = opener::Opener::start(store.clone(), quiet.clone());
        if !bots.is_empty() {
            tokio::spawn(purge_old_streams(store.clone(), settings.keep_streams));
        }
        Ok(BotChannel {
            bots,
            engine,
            store,
            wake,
            outbox,
            opener,
            quiet,
            settings,
        })
    }

    pub fn bot_names(&self) -> impl Iterator<Item = &str> {
        self.bots.keys().map(String::as_str)
    }

    /// The worker that posts `response_url` replies; run it with [`Delivery::run`].
    pub fn delivery(&self, owner: impl Into<String>) -> Delivery {
        let bots = self
            .bots
            .values()
            .map(|b| (b.channel.clone(), b.clone()))
            .collect();
        Delivery::new(
            self.store.clone(),
            "wecom-bot:",
            Arc::new(courier::ResponseUrlCourier {
                bots,
                store: self.store.clone(),
                cards: self.store.clone(),
                stream_window: self.settings.stream_window,
            }),
            owner.into(),
            self.wake.clone(),
            self.settings.retry.clone(),
            ClientConfig::default().timeout,
        )
    }
}

/// Deletes streams WeCom stopped refreshing long ago, every few minutes.
async fn purge_old_streams(store: Arc<dyn opsbot_store::ChannelStore>, keep: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let before = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
        match store.stream_purge(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "old robot streams deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete old robot streams"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(name: &str) -> BotConfig {
        BotConfig {
            callback: Callback::new(name, "QDG6eK"),
            encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
            bot_id: None,
            api_base: default_api_base(),
        }
    }

    #[test]
    fn validation_names_the_key() {
        assert!(validate(&[bot("ops"), bot("dr")]).is_ok());
        let (k, p) = validate(&[bot("ops"), bot("ops")]).unwrap_err();
        assert_eq!(k, "wecom.bots[1].name");
        assert!(p.contains("duplicate"), "{p}");
        let mut b = bot("a b");
        assert_eq!(validate(&[b.clone()]).unwrap_err().0, "wecom.bots[0].name");
        b.callback.name = "ok".into();
        b.encoding_aes_key = "short".into();
        assert_eq!(
            validate(&[b.clone()]).unwrap_err().0,
            "wecom.bots[0].encoding_aes_key"
        );
        b.encoding_aes_key = bot("x").encoding_aes_key;
        b.callback.token = " ".into();
        assert_eq!(validate(&[b.clone()]).unwrap_err().0, "wecom.bots[0].token");
        b.callback.token = "t".into();
        b.api_base = "ftp://x".into();
        assert_eq!(validate(&[b]).unwrap_err().0, "wecom.bots[0].api_base");
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", bot("ops"));
        assert!(
            !shown.contains("QDG6eK") && !shown.contains("jWmYm7"),
            "{shown}"
        );
    }
}
