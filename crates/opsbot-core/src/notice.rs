//! Platform-neutral outbound messages: what a subsystem (the alert gateway, a chat reply)
//! wants said, to whom within a channel, in which form. Whoever queues a message speaks
//! these types; the channel that delivers it renders them for its platform (message
//! kinds, length limits, rate limits) when it sends. Serialised, they are the `target`
//! and `body` of an outbox item, so the stored form is the same for every producer.

use crate::card::Card;
use serde::{Deserialize, Serialize};

/// Where a message goes within its channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Target {
    /// One person, privately (the asker of a chat command).
    User { user: String },
    /// A group chat, addressed to the asker (`mention`).
    Chat { chat: String, mention: String },
    /// People, departments (WeCom's parties) and tags, at once (alerts).
    Members {
        #[serde(default)]
        users: Vec<String>,
        #[serde(default)]
        parties: Vec<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    /// A group chat, addressed to nobody in particular.
    AppChat { chat: String },
    /// The webhook the channel itself names ([`robot_channel`]); its secret stays in
    /// the configuration, never in the outbox.
    Robot,
}

impl Target {
    /// The outbox item's `target` column.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// What a message says. The channel picks the platform's message kind for each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Text {
        content: String,
    },
    Markdown {
        content: String,
    },
    /// A card with buttons ([`crate::card`]); surfaces without cards get its text.
    Card {
        card: Card,
    },
    /// A card already sent, replaced for everyone it went to: WeCom's
    /// `update_template_card` with a one-time `code` (from the send or from a click).
    CardUpdate {
        code: String,
        card: Card,
    },
}

impl Body {
    /// The words, whatever the form (a card's text form).
    pub fn content(&self) -> &str {
        match self {
            Body::Text { content } | Body::Markdown { content } => content,
            Body::Card { card } | Body::CardUpdate { card, .. } => &card.text,
        }
    }

    /// The outbox item's `body` column.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The same form with other words (a part of a split message).
    pub fn with_content(&self, content: String) -> Body {
        match self {
            Body::Text { .. } => Body::Text { content },
            Body::Markdown { .. } => Body::Markdown { content },
            Body::Card { card } | Body::CardUpdate { card, .. } if card.markdown => {
                Body::Markdown { content }
            }
            Body::Card { .. } | Body::CardUpdate { .. } => Body::Text { content },
        }
    }
}

/// One message for the outbox: the channel that delivers it (`wecom:<app>`,
/// `wecom:robot/<name>`, …), where it goes and what it says, whole: the channel splits
/// it to its platform's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub channel: String,
    pub target: Target,
    pub body: Body,
}

impl Notice {
    /// The outbox item's `target` column.
    pub fn target_json(&self) -> String {
        self.target.to_json()
    }

    /// The outbox item's `body` column.
    pub fn body_json(&self) -> String {
        self.body.to_json()
    }
}

/// JSON of a type whose serialisation cannot fail (plain enums of strings).
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The outbox channel of a WeCom app: `wecom:<app>`.
pub fn app_channel(app: &str) -> String {
    format!("wecom:{app}")
}

/// The outbox channel of group robot `name`: `wecom:robot/<name>` (app names cannot
/// contain `/`, so it never collides with an app's `wecom:<app>`).
pub fn robot_channel(name: &str) -> String {
    format!("wecom:robot/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form: outbox items queued before these types moved stay readable.
    #[test]
    fn stored_form() {
        let n = Notice {
            channel: robot_channel("dba"),
            target: Target::Robot,
            body: Body::Markdown {
                content: "x".into(),
            },
        };
        assert_eq!(n.channel, "wecom:robot/dba");
        assert_eq!(n.target_json(), r#"{"to":"robot"}"#);
        assert_eq!(n.body_json(), r#"{"type":"markdown","content":"x"}"#);
        let members = Target::Members {
            users: vec!["a".into()],
            parties: vec![],
            tags: vec!["t".into()],
        };
        assert_eq!(
            to_json(&members),
            r#"{"to":"members","users":["a"],"parties":[],"tags":["t"]}"#
        );
        assert_eq!(
            serde_json::from_str::<Target>(r#"{"to":"members","users":["a"]}"#).unwrap(),
            Target::Members {
                users: vec!["a".into()],
                parties: vec![],
                tags: vec![]
            }
        );
        assert_eq!(
            to_json(&Target::AppChat { chat: "c".into() }),
            r#"{"to":"app_chat","chat":"c"}"#
        );
        assert_eq!(
            to_json(&Target::Chat {
                chat: "c".into(),
                mention: "m".into()
            }),
            r#"{"to":"chat","chat":"c","mention":"m"}"#
        );
        assert_eq!(app_channel("ops"), "wecom:ops");
    }
}
