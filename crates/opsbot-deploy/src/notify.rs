//! Who hears of an order: the project's notification targets (a WeCom app's members or
//! app chat, group robots) and the order's asker, when they asked through a channel the
//! outbox reaches. Everything goes through the outbox, so a message survives a crash and
//! the channel's courier splits and rate-limits it.
//!
//! A message that offers actions ([`crate::cards`]) goes to people in a WeCom app
//! (members, the asker privately) as a card with buttons, each recipient its own card;
//! group chats and robots, where a tap could not say who tapped, get its text, which
//! names the commands.

use crate::cards::{self, Offer};
use crate::config::Project;
use opsbot_core::card::CardKeys;
use opsbot_core::notice::{app_channel, robot_channel, Body, Target};
use opsbot_core::Notice;
use opsbot_store::deploy::OrderRecord;
use opsbot_store::{NewOutbox, OutboxStore};

/// The buttons a message offers and the keys that sign them.
#[derive(Clone, Copy)]
pub struct Buttons<'a> {
    pub keys: &'a CardKeys,
    pub offer: &'a Offer,
}

/// The messages carrying `text` for `order` of `project`, as cards where `buttons` are
/// given and the recipient is a person in a WeCom app.
pub fn notices(
    project: &Project,
    order: &OrderRecord,
    text: &str,
    buttons: Option<Buttons<'_>>,
) -> Vec<Notice> {
    let mut out = Vec::new();
    let n = &project.notify;
    let plain = match buttons {
        Some(b) => cards::with_commands(text, b.offer),
        None => text.to_string(),
    };
    let body = || Body::Text {
        content: plain.clone(),
    };
    let card = |b: Buttons<'_>| Body::Card {
        card: cards::card(b.keys, b.offer, order, project, text),
    };
    let to_person = || buttons.map_or_else(body, card);
    let mut told_asker = false;
    if let Some(app) = &n.app {
        let channel = app_channel(app);
        if !n.users.is_empty() || !n.parties.is_empty() || !n.tags.is_empty() {
            told_asker = channel == order.channel && n.users.iter().any(|u| u == &order.user);
            out.push(Notice {
                channel: channel.clone(),
                target: Target::Members {
                    users: n.users.clone(),
                    parties: n.parties.clone(),
                    tags: n.tags.clone(),
                },
                body: to_person(),
            });
        }
        if let Some(chat) = &n.appchat {
            out.push(Notice {
                channel,
                target: Target::AppChat { chat: chat.clone() },
                body: body(),
            });
        }
    }
    for r in &n.robots {
        out.push(Notice {
            channel: robot_channel(r),
            target: Target::Robot,
            body: Body::Markdown {
                content: plain.clone(),
            },
        });
    }
    // The asker, privately or in the group they asked in, when a WeCom app reaches them.
    if !told_asker
        && order.channel.starts_with("wecom:")
        && !order.channel.starts_with("wecom:robot/")
    {
        // Approval buttons for an asker who may not approve their own order would
        // only be refused.
        let asker_buttons = buttons.filter(|b| !b.offer.approval || project.approval.self_approve);
        let (target, body) = match &order.chat {
            Some(chat) => (
                Target::Chat {
                    chat: chat.clone(),
                    mention: order.user.clone(),
                },
                body(),
            ),
            None => (
                Target::User {
                    user: order.user.clone(),
                },
                asker_buttons.map_or_else(body, card),
            ),
        };
        out.push(Notice {
            channel: order.channel.clone(),
            target,
            body,
        });
    }
    out
}

/// The approval request, privately to each approver (the members of the project's
/// approver roles) through the project's WeCom app, besides its usual targets.
pub fn approvers(
    project: &Project,
    order: &OrderRecord,
    approvers: Vec<String>,
    text: &str,
    buttons: Option<Buttons<'_>>,
) -> Option<Notice> {
    let app = project.notify.app.as_ref()?;
    if approvers.is_empty() {
        return None;
    }
    let body = match buttons {
        Some(b) => Body::Card {
            card: cards::card(b.keys, b.offer, order, project, text),
        },
        None => Body::Text {
            content: text.to_string(),
        },
    };
    Some(Notice {
        channel: app_channel(app),
        target: Target::Members {
            users: approvers,
            parties: Vec::new(),
            tags: Vec::new(),
        },
        body,
    })
}

/// Writes `notices` for order `order` to the outbox, each whole; a store that refuses
/// is logged, never fatal to the release.
pub async fn queue(
    outbox: &dyn OutboxStore,
    order: i64,
    notices: impl IntoIterator<Item = Notice>,
) {
    for n in notices {
        if let Err(e) = outbox.outbox_push(&NewOutbox::from(&n)).await {
            tracing::warn!(order, error = %e, "could not queue a deploy notice");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OrderState;
    use std::time::Duration;

    fn project(extra: &str) -> Project {
        let c: crate::DeployConfig = toml::from_str(&format!(
            "[[projects]]\nname = \"shop\"\ndeploy_root = \"/srv/shop\"\nrepo = {{ kind = \"git\", url = \"file:///r\" }}\n[projects.notify]\napp = \"ops\"\nusers = [\"carol\"]\nappchat = \"room\"\nrobots = [\"dba\"]\n{extra}"
        ))
        .unwrap();
        c.projects[0].clone()
    }

    fn order(state: OrderState, chat: Option<&str>) -> OrderRecord {
        let now = chrono::Utc::now();
        OrderRecord {
            id: 7,
            project: "shop".into(),
            kind: "release".into(),
            build: Some(1),
            version: None,
            state: state.as_str().into(),
            user: "alice".into(),
            channel: "wecom:ops".into(),
            chat: chat.map(Into::into),
            approver: None,
            reason: None,
            batch: 0,
            batches: 2,
            plan: "{}".into(),
            owner: None,
            heartbeat_at: None,
            created_at: now,
            updated_at: now,
            expires_at: Some(now + chrono::Duration::hours(1)),
            finished_at: None,
        }
    }

    fn kinds(ns: &[Notice]) -> Vec<(&'static str, &'static str)> {
        ns.iter()
            .map(|n| {
                let to = match n.target {
                    Target::Members { .. } => "members",
                    Target::User { .. } => "user",
                    Target::Chat { .. } => "chat",
                    Target::AppChat { .. } => "app_chat",
                    Target::Robot => "robot",
                };
                let body = match n.body {
                    Body::Card { .. } => "card",
                    Body::Text { .. } => "text",
                    Body::Markdown { .. } => "markdown",
                    Body::CardUpdate { .. } => "update",
                };
                (to, body)
            })
            .collect()
    }

    #[test]
    fn people_in_the_app_get_cards_groups_and_robots_the_text() {
        let keys = CardKeys::new([1; 32]);
        let p = project("");
        let o = order(OrderState::Running, None);
        let offer =
            cards::offer(&o, &[], &[], chrono::Utc::now(), Duration::from_secs(60)).unwrap();
        let b = Buttons {
            keys: &keys,
            offer: &offer,
        };
        let ns = notices(&p, &o, "🚀 发布单 #7 开始发布", Some(b));
        assert_eq!(
            kinds(&ns),
            [
                ("members", "card"),
                ("app_chat", "text"),
                ("robot", "markdown"),
                ("user", "card")
            ]
        );
        // Each card is its own (WeCom refuses a task id twice); every text names 暂停.
        let ids: Vec<&str> = ns
            .iter()
            .filter_map(|n| match &n.body {
                Body::Card { card } => Some(card.task_id.as_str()),
                _ => None,
            })
            .collect();
        assert_ne!(ids[0], ids[1]);
        for n in &ns {
            assert!(n.body.content().contains("「暂停:7」"), "{:?}", n.body);
        }
        // Without keys (or nothing to offer) everything is as it always was.
        assert_eq!(
            kinds(&notices(&p, &o, "x", None)),
            [
                ("members", "text"),
                ("app_chat", "text"),
                ("robot", "markdown"),
                ("user", "text")
            ]
        );
        // The asker in a group chat reads the text there.
        let in_group = order(OrderState::Running, Some("grp"));
        assert_eq!(
            kinds(&notices(&p, &in_group, "x", Some(b)))[3],
            ("chat", "text")
        );
    }

    #[test]
    fn the_asker_gets_approval_buttons_only_when_self_approval_is_allowed() {
        let keys = CardKeys::new([1; 32]);
        let o = order(OrderState::Pending, None);
        let offer =
            cards::offer(&o, &[], &[], chrono::Utc::now(), Duration::from_secs(60)).unwrap();
        let b = Some(Buttons {
            keys: &keys,
            offer: &offer,
        });
        let ns = notices(&project(""), &o, "⏳ 等待审批", b);
        assert_eq!(kinds(&ns)[3], ("user", "text"));
        assert!(ns[3].body.content().contains("「批准:7」批准"));
        let own = project("[projects.approval]\nrequired = true\nself_approve = true\n");
        assert_eq!(kinds(&notices(&own, &o, "⏳", b))[3], ("user", "card"));
        // Approvers are asked with the buttons.
        let ask = approvers(&project(""), &o, vec!["bob".into()], "⏳", b).unwrap();
        let Body::Card { card } = &ask.body else {
            panic!("{:?}", ask.body)
        };
        assert!(card.buttons.iter().all(|b| b.slot == cards::DECIDE));
    }
}
