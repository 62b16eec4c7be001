//! How a WeCom app reply is written into the outbox: where it goes and what it says, in
//! the platform-neutral form of `opsbot_core::notice`, split to WeCom's size limits
//! before it is queued so a retry never re-sends a part that already arrived.

use opsbot_core::Notice;
use opsbot_store::NewOutbox;
use opsbot_wecom::split::{split_message, APP_TEXT_MAX_BYTES};

pub use opsbot_core::notice::{robot_channel, Body, Target};

/// The text as it should read at `target`: in a group, addressed to the asker.
pub fn address(target: &Target, text: &str) -> String {
    match target {
        Target::User { .. } | Target::Members { .. } | Target::AppChat { .. } | Target::Robot => {
            text.to_string()
        }
        Target::Chat { mention, .. } => crate::mention(mention, text),
    }
}

/// The outbox items that carry `text` to `target`, in as many parts as WeCom's limit needs.
pub(crate) fn items(channel: &str, target: &Target, text: &str) -> Vec<NewOutbox> {
    let text = address(target, text);
    split_message(&text, APP_TEXT_MAX_BYTES)
        .into_iter()
        .map(|part| {
            outbox_item(&Notice {
                channel: channel.to_string(),
                target: target.clone(),
                body: Body::Text { content: part },
            })
        })
        .collect()
}

/// The stored form of `notice`.
pub(crate) fn outbox_item(notice: &Notice) -> NewOutbox {
    NewOutbox::from(notice)
}
