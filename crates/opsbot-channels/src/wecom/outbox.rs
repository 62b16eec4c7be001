//! How a WeCom app reply is written into the outbox: where it goes and what it says, as
//! JSON, split to WeCom's size limits before it is queued so a retry never re-sends a
//! part that already arrived.

use opsbot_store::NewOutbox;
use opsbot_wecom::split::{split_message, APP_TEXT_MAX_BYTES};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Target {
    /// A member, through `message/send`.
    User { user: String },
    /// An app group chat, through `appchat/send`, naming the asker.
    Chat { chat: String, mention: String },
    /// Members, departments and tags of the app, through `message/send` (alerts).
    Members {
        #[serde(default)]
        users: Vec<String>,
        #[serde(default)]
        parties: Vec<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    /// An app group chat, through `appchat/send`, addressed to nobody in particular.
    AppChat { chat: String },
    /// The group robot the channel names ([`robot_channel`]); its key stays in the
    /// configuration, never in the store.
    Robot,
}

/// The outbox channel of group robot `name`: `wecom:robot/<name>` (app names cannot
/// contain `/`, so it never collides with an app's `wecom:<app>`).
pub fn robot_channel(name: &str) -> String {
    format!("wecom:robot/{name}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Text { content: String },
    Markdown { content: String },
}

impl Target {
    /// The text as it should read at this target: in a group, addressed to the asker.
    pub fn address(&self, text: &str) -> String {
        match self {
            Target::User { .. }
            | Target::Members { .. }
            | Target::AppChat { .. }
            | Target::Robot => text.to_string(),
            Target::Chat { mention, .. } => crate::mention(mention, text),
        }
    }
}

/// The outbox items that carry `text` to `target`, in as many parts as WeCom's limit needs.
pub(crate) fn items(channel: &str, target: &Target, text: &str) -> Vec<NewOutbox> {
    let text = target.address(text);
    let target_json = serde_json::to_string(target).expect("target serialises");
    split_message(&text, APP_TEXT_MAX_BYTES)
        .into_iter()
        .map(|part| NewOutbox {
            channel: channel.to_string(),
            target: target_json.clone(),
            body: serde_json::to_string(&Body::Text { content: part }).expect("body serialises"),
        })
        .collect()
}
