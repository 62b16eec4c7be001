//! Who hears of an order: the project's notification targets (a WeCom app's members or
//! app chat, group robots) and the order's asker, when they asked through a channel the
//! outbox reaches. Everything goes through the outbox, so a message survives a crash and
//! the channel's courier splits and rate-limits it.

use crate::config::Project;
use opsbot_core::notice::{app_channel, robot_channel, Body, Target};
use opsbot_core::Notice;
use opsbot_store::deploy::OrderRecord;
use opsbot_store::{NewOutbox, OutboxStore};

/// The messages carrying `text` for `order` of `project`.
pub fn notices(project: &Project, order: &OrderRecord, text: &str) -> Vec<Notice> {
    let mut out = Vec::new();
    let n = &project.notify;
    let body = || Body::Text {
        content: text.to_string(),
    };
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
                body: body(),
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
                content: text.to_string(),
            },
        });
    }
    // The asker, privately or in the group they asked in, when a WeCom app reaches them.
    if !told_asker
        && order.channel.starts_with("wecom:")
        && !order.channel.starts_with("wecom:robot/")
    {
        out.push(Notice {
            channel: order.channel.clone(),
            target: match &order.chat {
                Some(chat) => Target::Chat {
                    chat: chat.clone(),
                    mention: order.user.clone(),
                },
                None => Target::User {
                    user: order.user.clone(),
                },
            },
            body: body(),
        });
    }
    out
}

/// The approval request, privately to each approver (the members of the project's
/// approver roles) through the project's WeCom app, besides its usual targets.
pub fn approvers(project: &Project, approvers: Vec<String>, text: &str) -> Option<Notice> {
    let app = project.notify.app.as_ref()?;
    if approvers.is_empty() {
        return None;
    }
    Some(Notice {
        channel: app_channel(app),
        target: Target::Members {
            users: approvers,
            parties: Vec::new(),
            tags: Vec::new(),
        },
        body: Body::Text {
            content: text.to_string(),
        },
    })
}

/// Queues the notices; a store that refuses is logged, never fatal to the release.
pub async fn send(outbox: &dyn OutboxStore, project: &Project, order: &OrderRecord, text: &str) {
    queue(outbox, order.id, notices(project, order, text)).await;
}

/// Writes `notices` for order `order` to the outbox, each whole.
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
