//! Wiring: configuration → store, sessions, providers, policy → engine.

use crate::config::Config;
use crate::out::outln;
use anyhow::{Context, Result};
use opsbot_core::{ChatCommand, Provider};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_store::{PolicyData, SessionStore, Store};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The chat commands of the subsystems this binary registers in [`build`], so roles
/// and `[chat] confirm` can name them before the engine exists.
const SUBSYSTEM_COMMANDS: &[&[ChatCommand]] = &[
    &opsbot_cmdb::chat::COMMANDS,
    &opsbot_deploy::COMMANDS,
    &opsbot_kube::COMMANDS,
];

/// Maps a configured command name or alias to its canonical name (`*` stays `*`):
/// the engine's table, then the subsystems' commands.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    opsbot_engine::canonical_name(name).or_else(|| {
        SUBSYSTEM_COMMANDS
            .iter()
            .flat_map(|set| set.iter())
            .find(|d| d.is_named(name.trim()))
            .map(|d| d.name)
    })
}

/// The commands that ask for confirmation unless `[chat] confirm` says otherwise.
pub fn default_confirm() -> HashSet<String> {
    let mut names = opsbot_engine::EngineSettings::default_confirm();
    names.extend(
        SUBSYSTEM_COMMANDS
            .iter()
            .flat_map(|set| set.iter())
            .filter(|d| d.destructive)
            .map(|d| d.name.to_string()),
    );
    names
}

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    /// Conversation state; the web UI keeps its logins here too.
    pub sessions: Arc<dyn SessionStore>,
    /// Rate limits every instance shares (Redis with the sessions); `None`: per process.
    pub rate_windows: Option<Arc<dyn opsbot_core::RateWindows>>,
    /// Identifies this process (jobs, outbox claims).
    pub owner: String,
    /// Whether a configuration file was given (otherwise: embedded defaults).
    pub configured: bool,
    /// The alert gateway's settings and silences, when `[alerts]` is configured.
    pub alerts: Option<AlertParts>,
    /// Deploy projects, builds and release orders.
    pub deploys: Arc<opsbot_deploy::Deploys>,
    /// The Kubernetes clusters of the `kind = "kubernetes"` providers, if any; `opsbot
    /// serve` and `opsbot chat` start their watches (`Kube::start`).
    pub kube: Option<Arc<opsbot_kube::Kube>>,
    /// The secret key that signs tokens, web logins and card buttons; loaded (and
    /// checked against the store) by [`build_server`] before the engine starts.
    pub secret: Option<opsbot_auth::SecretKey>,
    /// Signs and checks card buttons (`[chat] buttons`, a sub-key of the secret key):
    /// the engine's confirmations use it, and so do the alert gateway's and deploys'
    /// cards, whose clicks the engine checks with the same keys.
    pub cards: Option<opsbot_core::CardKeys>,
}

/// What the chat desk and the gateway share.
pub struct AlertParts {
    pub settings: Arc<opsbot_alerts::config::Settings>,
    pub silences: Arc<opsbot_alerts::silence::Silences>,
}

/// An id unique to this process, so its jobs can be told from other instances'.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The app for commands that need no secret key (`opsbot chat`, `opsbot sync`, …). With
/// WeCom apps configured it loads the key anyway when it can, so cards it queues (a
/// release's approval request) carry buttons `serve` honours; without, they go as text.
pub async fn build(config_file: Option<&Path>) -> Result<App> {
    build_with(config_file, false).await
}

/// The app for `opsbot serve`: the secret key is loaded first (without the right key no
/// token, login or card button would work), and card buttons are on as `[chat]
/// buttons` says.
pub async fn build_server(config_file: Option<&Path>) -> Result<App> {
    build_with(config_file, true).await
}

async fn build_with(config_file: Option<&Path>, with_key: bool) -> Result<App> {
    let config = Config::load(config_file)?;
    let store = opsbot_store::connect(&config.store.url)
        .await
        .context("opening the store")?;
    let secret = if with_key {
        Some(secret_key(&config, store.as_ref()).await?)
    } else if !config.wecom.apps.is_empty() {
        // A release asked for from `opsbot chat` queues the approvers' card: its buttons
        // need the keys `serve` checks clicks with. Without the key it goes as text.
        match secret_key(&config, store.as_ref()).await {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(error = %e, "messages queued here go without buttons: no secret key");
                None
            }
        }
    } else {
        None
    };
    let cards = secret
        .as_ref()
        .filter(|_| config.chat.buttons)
        .map(|key| opsbot_core::CardKeys::new(key.derive(opsbot_auth::Purpose::Cards)));
    let sessions: Arc<dyn SessionStore> =
        opsbot_store::connect_sessions(&config.sessions.backend, config.sessions.url.as_deref())
            .await
            .context("opening the session store")?;
    let rate_windows = crate::limits::shared(&config)?;
    let policy = config
        .policy()
        .map_err(|(k, p)| anyhow::anyhow!("config: key {k}: {p}"))?;
    sync_policy(store.as_ref(), &policy).await?;
    // Validation admitted only the kinds this build has.
    let providers: Vec<Arc<dyn Provider>> = config
        .providers
        .iter()
        .filter_map(|p| p.build(&store))
        .collect();
    let owner = instance_id();
    let settings = EngineSettings {
        session_ttl: Duration::from_secs(config.sessions.ttl_secs),
        confirm: config.confirm_commands(),
        owner: owner.clone(),
        stale_after: config.jobs.stale_after(),
        ping_allow: config.ping_allow(),
        zone: config.zone(),
        service_tag: config.pool.service_tag.trim().to_string(),
        menu: config
            .menu_tree()
            .map_err(|e| anyhow::anyhow!("config: key {e}"))?,
        cards: cards.clone(),
    };
    let mut engine = Engine::new(store.clone(), sessions.clone(), providers, policy, settings)
        .await
        .context("starting the engine")?
        .register(Arc::new(opsbot_cmdb::desk::StoreDesk::new(
            store.clone(),
            store.clone(),
            config.cmdb.stale_after(),
        )));
    let mut alert_settings = config
        .alert_settings()
        .map_err(|(k, p)| anyhow::anyhow!("config: key {k}: {p}"))?;
    if let Some(settings) = &mut alert_settings {
        // The engine's keys: any instance checks a click on any instance's card. Only
        // `serve` sends alerts, and only it loads the key.
        settings.cards = cards.clone();
        settings.rate_windows = rate_windows.clone();
    }
    let alerts = alert_settings.map(|settings| AlertParts {
        settings: Arc::new(settings),
        silences: Arc::new(opsbot_alerts::silence::Silences::new(store.clone())),
    });
    let deploys = opsbot_deploy::Deploys::new(
        config.deploy.clone(),
        store.clone(),
        owner.clone(),
        config.zone(),
    );
    // Order messages to people in a WeCom app carry buttons (批准, 暂停, 回滚, …), signed
    // with the engine's keys, which every instance derives alike from the secret key.
    if let Some(keys) = &cards {
        deploys.set_card_keys(keys.clone());
    }
    engine = engine.register(Arc::new(opsbot_deploy::DeployCommands(deploys.clone())));
    let kube_sections = crate::providers::kubernetes(&config.providers);
    let kube = if kube_sections.is_empty() {
        None
    } else {
        let kube = opsbot_kube::Kube::connect(&kube_sections, store.clone(), store.clone())
            .await
            .context("setting up the Kubernetes clusters")?;
        Some(Arc::new(kube))
    };
    if let Some(kube) = &kube {
        engine = engine.register(Arc::new(opsbot_kube::KubeSubsystem(kube.clone())));
    }
    if let Some(parts) = &alerts {
        let desk = opsbot_alerts::Desk::new(
            store.clone(),
            store.clone(),
            parts.settings.clone(),
            parts.silences.clone(),
            None,
        );
        engine = engine.register(Arc::new(desk));
    }
    engine
        .check_menu()
        .map_err(|e| anyhow::anyhow!("config: key {e}"))?;
    let engine = Arc::new(engine);
    // 扩容 clones and 缩容 powers off through the engine, as the asker.
    deploys.set_operator(Arc::new(opsbot_engine::EngineOperator::new(&engine)));
    Ok(App {
        config,
        store,
        engine,
        sessions,
        rate_windows,
        owner,
        configured: config_file.is_some(),
        alerts,
        deploys,
        kube,
        secret,
        cards,
    })
}

/// The secret key that signs tokens and web logins, from `$OPSBOT_SECRET_KEY` or
/// `[security] key_file` (made on first use), checked against the store.
pub async fn secret_key(config: &Config, store: &dyn Store) -> Result<opsbot_auth::SecretKey> {
    Ok(opsbot_auth::secret::load(&config.security.key_source(), store).await?)
}

/// Keeps the store's copy of roles and bindings equal to the configuration.
async fn sync_policy(store: &dyn Store, policy: &opsbot_core::Policy) -> Result<()> {
    let data = PolicyData {
        roles: policy.roles().cloned().collect(),
        users: policy.user_bindings().clone(),
        chats: policy.chat_bindings().clone(),
    };
    if store
        .load_policy()
        .await
        .context("reading roles from the store")?
        != data
    {
        store
            .replace_policy(&data)
            .await
            .context("writing roles to the store")?;
    }
    Ok(())
}

/// `opsbot sync`: one sync of every (or one) provider, with counts and elapsed time.
pub async fn sync_once(config_file: Option<&Path>, only: Option<&str>) -> Result<()> {
    let app = build(config_file).await?;
    let names: Vec<String> = app
        .engine
        .providers()
        .iter()
        .map(|p| p.name().to_string())
        .filter(|n| only.is_none_or(|o| n == o))
        .collect();
    if let Some(o) = only {
        if names.is_empty() {
            anyhow::bail!("配置中没有名为 {o:?} 的 provider(providers 中的 name)");
        }
    }
    for name in names {
        let started = Instant::now();
        let report = app
            .engine
            .sync_provider(&name, "sync:cli")
            .await
            .map_err(anyhow::Error::msg)?;
        // The chat's own words for a sync (同步), so the CLI and chat read alike.
        outln!(
            "{},耗时 {:.0} ms",
            opsbot_engine::sync_summary(std::slice::from_ref(&report)),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
