//! The WeCom app channel: `/wecom/{app}/callback`. Its codec ([`callback`]) verifies
//! and decrypts what WeCom sends for the shared pipeline, which de-duplicates it, hands
//! text to the engine and answers within WeCom's 5 s (the reply itself when it is quick
//! and short, otherwise an empty acknowledgement); everything else (long replies, job
//! progress and results) goes through the store's outbox with `message/send` or
//! `appchat/send`. A confirmation to one person goes as a template card with 确认 / 取消
//! buttons; clicks on cards ([`callback`]) are answered by the engine within the same
//! budget, the clicked button updated in the passive reply and the card for everyone
//! through the outbox.

mod callback;
pub(crate) mod card;
mod delivery;
mod outbox;
mod sink;

pub use crate::delivery::{Delivery, RetryPolicy};
pub use crate::error::{CallbackError, ChannelError};
pub use crate::Callback;
pub use callback::KIND;
pub use opsbot_wecom::RobotConfig;
pub use outbox::{address, robot_channel, Body, Target};

use crate::config_check as check;
use opsbot_engine::Engine;
use opsbot_store::Store;
use opsbot_wecom::{AppClient, AppCredentials, ClientConfig, WecomClient, WecomCrypto};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// One configured app: the `[[wecom.apps]]` table of the configuration file, read
/// straight into this type.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `name` and `token`.
    #[serde(flatten)]
    pub callback: Callback,
    pub corp_id: String,
    pub agent_id: i64,
    pub secret: String,
    pub encoding_aes_key: String,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    opsbot_wecom::api::DEFAULT_API_BASE.to_string()
}

/// Never prints the secret, the token or the key.
impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("name", &self.callback.name)
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Checks `[[wecom.apps]]`; the error names the key (`wecom.apps[0].token`) and the
/// problem.
pub fn validate(apps: &[AppConfig]) -> Result<(), (String, String)> {
    let mut names = HashSet::new();
    for (i, app) in apps.iter().enumerate() {
        let key = |f: &str| format!("wecom.apps[{i}].{f}");
        app.callback.check_name(key, &mut names, "app")?;
        for (field, value) in [
            ("corp_id", &app.corp_id),
            ("secret", &app.secret),
            ("token", &app.callback.token),
        ] {
            check::not_empty(value).map_err(|p| (key(field), p))?;
        }
        if app.agent_id <= 0 {
            return Err((key("agent_id"), "must be a positive number".into()));
        }
        check::aes_key(&app.encoding_aes_key).map_err(|p| (key("encoding_aes_key"), p))?;
        check::http_url(&app.api_base).map_err(|p| (key("api_base"), p))?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// How far a callback's timestamp may be from now (replayed old requests fail).
    pub timestamp_window: Duration,
    /// How long a callback waits for the engine before acknowledging empty.
    pub ack_budget: Duration,
    /// Minimum gap between two progress messages of one job (WeCom drops more than
    /// 30 messages a minute per member without a word).
    pub progress_interval: Duration,
    pub retry: RetryPolicy,
    /// Client-side limits; `None` in tests that check the fake's own limits.
    pub member_limit_per_minute: Option<usize>,
    /// How long a WeCom API call may take before it counts as unanswered (its outcome
    /// unknown: it is retried only after [`RetryPolicy::unsure_pause`]).
    pub api_timeout: Duration,
    /// Where the sending limits (per member, per robot) are counted: `None` in this
    /// process, or windows every instance shares.
    pub limit_windows: Option<Arc<dyn opsbot_core::RateWindows>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timestamp_window: Duration::from_secs(300),
            ack_budget: Duration::from_secs(3),
            progress_interval: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            member_limit_per_minute: Some(30),
            api_timeout: ClientConfig::default().timeout,
            limit_windows: None,
        }
    }
}

/// A ready app: its crypto, API client and the channel name its messages carry.
pub(crate) struct App {
    pub(crate) name: String,
    /// `wecom:<name>`: the engine channel and the outbox channel.
    pub(crate) channel: String,
    pub(crate) corp_id: String,
    pub(crate) agent_id: i64,
    pub(crate) crypto: WecomCrypto,
    pub(crate) client: AppClient,
}

/// Every configured WeCom app, with the engine and store they share.
pub struct WecomChannel {
    apps: HashMap<String, Arc<App>>,
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    /// Wakes the delivery worker when something is queued.
    wake: Arc<Notify>,
    /// Replies on their way into the outbox, in order.
    queue: tokio::sync::mpsc::UnboundedSender<Vec<opsbot_store::NewOutbox>>,
    settings: Settings,
}

impl WecomChannel {
    /// Builds the apps; must run inside the tokio runtime (it starts the outbox writer).
    pub fn new(
        configs: &[AppConfig],
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Self, ChannelError> {
        let mut apps = HashMap::new();
        // One HTTP client per API base, so apps of one corp share connections.
        let mut clients: HashMap<String, WecomClient> = HashMap::new();
        for c in configs {
            let Callback { name, token } = &c.callback;
            let bad = |problem: String| ChannelError::BadApp {
                app: name.clone(),
                problem,
            };
            let crypto = WecomCrypto::new(token, &c.encoding_aes_key, &c.corp_id)
                .map_err(|e| bad(e.to_string()))?;
            let client = match clients.get(&c.api_base) {
                Some(client) => client.clone(),
                None => {
                    let config = ClientConfig {
                        api_base: c.api_base.clone(),
                        member_limit_per_minute: settings.member_limit_per_minute,
                        timeout: settings.api_timeout,
                        limit_windows: settings.limit_windows.clone(),
                        ..ClientConfig::default()
                    };
                    let client = WecomClient::new(config).map_err(|e| bad(e.to_string()))?;
                    clients.insert(c.api_base.clone(), client.clone());
                    client
                }
            };
            let app = App {
                name: name.clone(),
                channel: format!("wecom:{name}"),
                corp_id: c.corp_id.clone(),
                agent_id: c.agent_id,
                crypto,
                client: client.app(AppCredentials::new(&c.corp_id, c.agent_id, &c.secret)),
            };
            apps.insert(name.clone(), Arc::new(app));
        }
        let wake = Arc::new(Notify::new());
        let queue = crate::writer::spawn_writer(store.clone(), wake.clone());
        Ok(WecomChannel {
            apps,
            engine,
            store,
            wake,
            queue,
            settings,
        })
    }

    pub fn app_names(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }

    /// The API client of app `name` (shares its access-token cache), e.g. for the web
    /// UI's OAuth login.
    pub fn app_client(&self, name: &str) -> Option<AppClient> {
        self.apps.get(name).map(|a| a.client.clone())
    }

    /// The corp id and agent id of app `name`.
    pub fn app_ids(&self, name: &str) -> Option<(String, i64)> {
        self.apps.get(name).map(|a| (a.corp_id.clone(), a.agent_id))
    }

    /// The worker that empties the outbox, also for these group robots (the alert
    /// gateway's targets); run it with [`Delivery::run`].
    pub fn delivery(
        &self,
        owner: impl Into<String>,
        robots: &[RobotConfig],
    ) -> Result<Delivery, ChannelError> {
        let apps = self
            .apps
            .values()
            .map(|a| (a.channel.clone(), a.clone()))
            .collect();
        let robots = delivery::robots(robots, &self.settings)?;
        Ok(Delivery::new(
            self.store.clone(),
            "wecom:",
            Arc::new(delivery::AppCourier {
                apps,
                robots,
                cards: self.store.clone(),
            }),
            owner.into(),
            self.wake.clone(),
            self.settings.retry.clone(),
            self.settings.api_timeout,
        ))
    }
}
