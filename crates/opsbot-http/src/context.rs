//! What the REST API and the web UI share: the engine, tokens, web sessions, the OAuth
//! client, rate limiters and the page templates. Built once by `opsbot serve`.

use crate::budget::Budget;
use crate::config::WebConfig;
use crate::web::render::Templates;
use ipnet::IpNet;
use opsbot_auth::{Purpose, SecretKey, Tokens};
use opsbot_channels::wecom::WecomChannel;
use opsbot_engine::Engine;
use opsbot_store::{AuditStore, ChangeLog, JobStore, MessageIdStore, SessionStore, Store};
use opsbot_wecom::AppClient;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The WeCom app that signs people in.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub name: String,
    pub corp_id: String,
    pub agent_id: i64,
    pub client: AppClient,
    /// WeCom's authorize page.
    pub authorize_url: String,
}

pub struct ApiContext {
    pub engine: Arc<Engine>,
    pub store: Arc<dyn Store>,
    pub tokens: Tokens,
    pub sessions: Arc<dyn SessionStore>,
    pub config: WebConfig,
    /// `server.public_url` without a trailing slash.
    pub public_url: Option<String>,
    pub oauth: Option<OAuthApp>,
    /// Per token (or web user) request budget.
    pub limiter: Budget<String>,
    /// Per client address budget of local password attempts.
    pub login_limiter: Budget<std::net::IpAddr>,
    /// The web sub-key of the secret key (never the store's): keys web sessions in the
    /// session store and signs login-form and OAuth-state cookies. Instances on one
    /// store share it because they share the secret key.
    pub key: [u8; 32],
    pub templates: Templates,
    pub trusted_proxies: Vec<IpNet>,
    pub metrics_allow: Vec<IpNet>,
    /// The audit of anonymous refusals, bounded per address and minute.
    pub refusals: Arc<crate::refusals::Refusals>,
    /// Projects, builds and release orders (`/api/v1/projects`, `/builds`, `/releases`,
    /// `/ui/releases`); `None`: those answer 404. Set by `opsbot serve` after [`Self::new`].
    pub deploys: Option<Arc<opsbot_deploy::Deploys>>,
    /// The Kubernetes clusters, when a `kind = "kubernetes"` provider is configured.
    pub kube: Option<Arc<opsbot_kube::Kube>>,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext")
            .field("config", &self.config)
            .field("public_url", &self.public_url)
            .field("oauth", &self.oauth.as_ref().map(|o| &o.name))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("web.wecom_app {0:?}: no such WeCom app is being served")]
    NoApp(String),
}

impl ApiContext {
    /// The audit log: what the API and web UI record and list.
    pub fn audit(&self) -> &dyn AuditStore {
        self.store.as_ref()
    }

    /// The change history `/api/changes` reads.
    pub fn change_log(&self) -> &dyn ChangeLog {
        self.store.as_ref()
    }

    /// The jobs `/api/jobs` lists.
    pub fn jobs(&self) -> &dyn JobStore {
        self.store.as_ref()
    }

    /// One-use markers (OAuth states).
    pub fn message_ids(&self) -> &dyn MessageIdStore {
        self.store.as_ref()
    }

    pub async fn new(
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        sessions: Arc<dyn SessionStore>,
        config: WebConfig,
        public_url: Option<String>,
        wecom: Option<&WecomChannel>,
        secret: &SecretKey,
    ) -> Result<ApiContext, ContextError> {
        let tokens = Tokens::new(store.clone(), secret);
        let key = secret.derive(Purpose::Web);
        let oauth = match &config.wecom_app {
            None => None,
            Some(name) => {
                let ch = wecom.ok_or_else(|| ContextError::NoApp(name.clone()))?;
                let client = ch
                    .app_client(name)
                    .ok_or_else(|| ContextError::NoApp(name.clone()))?;
                let (corp_id, agent_id) = ch
                    .app_ids(name)
                    .ok_or_else(|| ContextError::NoApp(name.clone()))?;
                Some(OAuthApp {
                    name: name.clone(),
                    corp_id,
                    agent_id,
                    client,
                    authorize_url: config.oauth_authorize_url.clone(),
                })
            }
        };
        let per_minute = NonZeroU32::new(config.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = Budget::new(per_minute, burst);
        // Ten password attempts a minute per address: plenty for a person, slow for a
        // guesser (argon2 makes each guess cost too).
        let ten = NonZeroU32::new(10).expect("10 > 0");
        let login_limiter = Budget::new(ten, ten);
        let templates = Templates::with_zone(engine.zone());
        Ok(ApiContext {
            trusted_proxies: WebConfig::nets(&config.trusted_proxies),
            metrics_allow: WebConfig::nets(&config.metrics_allow),
            engine,
            store: store.clone(),
            tokens,
            sessions,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            oauth,
            limiter,
            login_limiter,
            key,
            templates,
            refusals: crate::refusals::Refusals::start(store.clone()),
            deploys: None,
            kube: None,
            config,
        })
    }

    /// Counts the request budgets in `windows`, which every instance shares, instead of
    /// in this process alone (`opsbot serve` does when Redis is configured).
    pub fn share_limits(&mut self, windows: Arc<dyn opsbot_core::RateWindows>) {
        self.limiter.share(windows.clone(), "api");
        self.login_limiter.share(windows, "login");
    }

    /// Cookies are `Secure` when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}
