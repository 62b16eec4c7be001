//! The WeChat Official Account channel (公众号: 服务号, 订阅号, 测试号):
//! `/wechat/{name}/callback`, for engineers who only have personal WeChat.
//!
//! Plain (明文) and safe (安全, AES) mode; both signatures checked; WeChat's three tries
//! de-duplicated by MsgId; the answer in the passive reply when the engine has it within
//! the budget (WeChat waits 5 s), everything later (job results, slow answers) as
//! customer-service messages (客服消息) through the durable outbox. Those are allowed
//! only within 48 hours of the user's last message and 5 per message: opsbot counts them
//! in the store, sends job results but not their progress, and when a result cannot go
//! it says so at the user's next message.
//!
//! An account's users are bound to opsbot users by openid; anyone else is refused and
//! audited.

mod callback;
mod courier;
mod sink;

pub use callback::{Answer, KIND};

use crate::config_check as check;
use crate::delivery::{Delivery, RetryPolicy};
use crate::error::ChannelError;
use crate::Callback;
use opsbot_engine::Engine;
use opsbot_store::{NewOutbox, Store};
use opsbot_wecom::mp::{MpClient, MpClientConfig, MpCredentials};
use opsbot_wecom::WecomCrypto;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// The `[wechat]` section.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WechatConfig {
    /// `[[wechat.mp]]`: Official Accounts.
    pub mp: Vec<MpConfig>,
}

/// One Official Account.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpConfig {
    /// `name`, part of the callback URL (`/wechat/{name}/callback`), and `token`, the
    /// server configuration's Token (令牌).
    #[serde(flatten)]
    pub callback: Callback,
    /// AppID (`wx…`; 设置与开发 → 基本配置).
    pub app_id: String,
    /// AppSecret.
    pub app_secret: String,
    /// EncodingAESKey: set for safe mode (安全模式), which opsbot then requires; absent
    /// for plain mode (明文模式, the only one the 测试号 has).
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// The account's original id (原始ID, `gh_…`); when set, messages to another
    /// account are refused.
    #[serde(default)]
    pub original_id: Option<String>,
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Who may use the account: WeChat openid → opsbot user.
    #[serde(default)]
    pub users: Vec<MpUser>,
}

/// One binding: this WeChat user (openid, as the account sees them) acts as this opsbot
/// user, with exactly that user's roles.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpUser {
    pub openid: String,
    pub user: String,
}

fn default_api_base() -> String {
    opsbot_wecom::mp::DEFAULT_API_BASE.to_string()
}

/// Never prints the secret, the token or the key.
impl std::fmt::Debug for MpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpConfig")
            .field("name", &self.callback.name)
            .field("app_id", &self.app_id)
            .field("safe_mode", &self.encoding_aes_key.is_some())
            .field("original_id", &self.original_id)
            .field("api_base", &self.api_base)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

/// Checks `[[wechat.mp]]`; `is_user` says whether an opsbot user id is configured. The
/// error names the key (`wechat.mp[0].users[1].user`) and the problem.
pub fn validate(
    accounts: &[MpConfig],
    is_user: impl Fn(&str) -> bool,
) -> Result<(), (String, String)> {
    let mut names = HashSet::new();
    for (i, a) in accounts.iter().enumerate() {
        let key = |f: &str| format!("wechat.mp[{i}].{f}");
        a.callback.check_name(key, &mut names, "account")?;
        for (field, value) in [
            ("app_id", &a.app_id),
            ("app_secret", &a.app_secret),
            ("token", &a.callback.token),
        ] {
            check::not_empty(value).map_err(|p| (key(field), p))?;
        }
        if let Some(k) = &a.encoding_aes_key {
            check::aes_key(k).map_err(|p| (key("encoding_aes_key"), p))?;
        }
        if let Some(id) = &a.original_id {
            check::not_empty(id).map_err(|p| (key("original_id"), p))?;
        }
        check::http_url(&a.api_base).map_err(|p| (key("api_base"), p))?;
        let mut openids = HashSet::new();
        for (j, u) in a.users.iter().enumerate() {
            let ukey = |f: &str| key(&format!("users[{j}].{f}"));
            check::not_empty(&u.openid).map_err(|p| (ukey("openid"), p))?;
            if !openids.insert(u.openid.as_str()) {
                return Err((
                    ukey("openid"),
                    format!("openid {:?} is bound twice", u.openid),
                ));
            }
            if !is_user(&u.user) {
                return Err((
                    ukey("user"),
                    format!("{:?} is not a configured [[users]] id", u.user),
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// How far a callback's timestamp may be from now (replayed old requests fail).
    pub timestamp_window: Duration,
    /// How long a callback waits for the engine before answering `success` (WeChat
    /// gives up after 5 s and tries again).
    pub ack_budget: Duration,
    /// How long after a user's message customer-service messages may reach them.
    pub window: Duration,
    /// How many per user message; `None` leaves the count to WeChat (45047).
    pub window_messages: Option<u32>,
    pub retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timestamp_window: Duration::from_secs(300),
            ack_budget: Duration::from_secs(3),
            window: Duration::from_secs(48 * 3600),
            window_messages: Some(5),
            retry: RetryPolicy::default(),
        }
    }
}

/// A ready account.
pub(crate) struct Account {
    pub(crate) name: String,
    /// `wechat:<name>`: the engine channel and the outbox channel.
    pub(crate) channel: String,
    pub(crate) token: String,
    /// Safe mode: the AES key with the AppID as receive id.
    pub(crate) crypto: Option<WecomCrypto>,
    pub(crate) original_id: Option<String>,
    /// openid → opsbot user.
    pub(crate) users: HashMap<String, String>,
    pub(crate) client: MpClient,
}

/// Every configured Official Account, with the engine and store they share.
pub struct MpChannel {
    accounts: HashMap<String, Arc<Account>>,
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    outbox: mpsc::UnboundedSender<Vec<NewOutbox>>,
    settings: Settings,
}

impl MpChannel {
    /// Builds the accounts; must run inside the tokio runtime (it starts the outbox
    /// writer).
    pub fn new(
        configs: &[MpConfig],
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Self, ChannelError> {
        let mut accounts = HashMap::new();
        for c in configs {
            let Callback { name, token } = &c.callback;
            let bad = |problem: String| ChannelError::BadAccount {
                account: name.clone(),
                problem,
            };
            let crypto = c
                .encoding_aes_key
                .as_deref()
                .map(|key| {
                    WecomCrypto::new(token, key, &c.app_id)
                        .map(|crypto| crypto.with_peer(opsbot_wecom::Peer::OfficialAccount))
                })
                .transpose()
                .map_err(|e| bad(e.to_string()))?;
            let client = MpClient::new(
                MpClientConfig {
                    api_base: c.api_base.clone(),
                    ..MpClientConfig::default()
                },
                MpCredentials::new(&c.app_id, &c.app_secret),
            )
            .map_err(|e| bad(e.to_string()))?;
            let account = Account {
                name: name.clone(),
                channel: format!("wechat:{name}"),
                token: token.clone(),
                crypto,
                original_id: c.original_id.clone(),
                users: c
                    .users
                    .iter()
                    .map(|u| (u.openid.clone(), u.user.clone()))
                    .collect(),
                client,
            };
            accounts.insert(name.clone(), Arc::new(account));
        }
        let wake = Arc::new(Notify::new());
        let outbox = crate::writer::spawn_writer(store.clone(), wake.clone());
        Ok(MpChannel {
            accounts,
            engine,
            store,
            wake,
            outbox,
            settings,
        })
    }

    pub fn account_names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// The worker that sends customer-service messages; run it with [`Delivery::run`].
    pub fn delivery(&self, owner: impl Into<String>) -> Delivery {
        let accounts = self
            .accounts
            .values()
            .map(|a| (a.channel.clone(), a.clone()))
            .collect();
        Delivery::new(
            self.store.clone(),
            "wechat:",
            Arc::new(courier::ServiceCourier {
                accounts,
                store: self.store.clone(),
                window: self.settings.window,
                window_messages: self.settings.window_messages,
            }),
            owner.into(),
            self.wake.clone(),
            self.settings.retry.clone(),
            MpClientConfig::default().timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> MpConfig {
        MpConfig {
            callback: Callback::new("ops", "spamtest"),
            app_id: "wx49f0ab532d5d035a".into(),
            app_secret: "s3cret".into(),
            encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
            original_id: Some("gh_1234567890ab".into()),
            api_base: default_api_base(),
            users: vec![MpUser {
                openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
                user: "zhangsan".into(),
            }],
        }
    }

    #[test]
    fn validation_names_the_key() {
        let known = |u: &str| u == "zhangsan";
        assert!(validate(&[account()], known).is_ok());
        let mut a = account();
        a.users[0].user = "ghost".into();
        let (k, p) = validate(&[a], known).unwrap_err();
        assert_eq!(k, "wechat.mp[0].users[0].user");
        assert!(p.contains("ghost"), "{p}");
        let mut a = account();
        a.users.push(a.users[0].clone());
        assert_eq!(
            validate(&[a], known).unwrap_err().0,
            "wechat.mp[0].users[1].openid"
        );
        let mut a = account();
        a.encoding_aes_key = Some("short".into());
        assert_eq!(
            validate(&[a], known).unwrap_err().0,
            "wechat.mp[0].encoding_aes_key"
        );
        let mut a = account();
        a.app_secret = String::new();
        assert_eq!(
            validate(&[a], known).unwrap_err().0,
            "wechat.mp[0].app_secret"
        );
        assert_eq!(
            validate(&[account(), account()], known).unwrap_err().0,
            "wechat.mp[1].name"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", account());
        assert!(
            !shown.contains("s3cret")
                && !shown.contains("spamtest")
                && !shown.contains("abcdefghij"),
            "{shown}"
        );
    }
}
