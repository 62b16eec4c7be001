//! Cards: a message whose buttons act (WeCom's template card, `button_interaction`),
//! in a platform-neutral form every producer speaks (the alert gateway, deploys, the
//! engine's confirmations) and the channel renders for its platform. A surface without
//! cards (the Official Account, a group robot's webhook, an app chat) shows the card's
//! `text` instead, which must therefore say everything the card says and name the
//! commands its buttons run.
//!
//! A button carries what it does ([`Action`]) and a `key`, the string the platform sends
//! back when it is tapped. The key is unguessable and bound to the card's task id, the
//! action and an expiry by an HMAC ([`CardKeys`]); a click is honoured only for a key
//! that is a button of the card as it was stored when sent, whose MAC checks out and
//! which has not expired. Nothing in the key says who clicked: that comes only from the
//! signed callback.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::borrow::Cow;
use subtle::ConstantTimeEq;

/// WeCom's limit on a card's buttons.
pub const MAX_BUTTONS: usize = 6;
/// WeCom's limit on a card's key/value rows.
pub const MAX_FIELDS: usize = 6;
/// WeCom's limit on a task id, in bytes.
pub const MAX_TASK_ID: usize = 128;
/// WeCom's limit on the options of a card's drop-down (`button_selection`).
pub const MAX_CHOICES: usize = 10;

/// A message with buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Unique per card, never reused (WeCom refuses a task id it saw before, also after
    /// the card is gone): see [`task_id`].
    pub task_id: String,
    /// The small line above the title: who speaks (`opsbot 告警`).
    #[serde(default)]
    pub source: String,
    pub title: String,
    /// The grey line beside the title.
    #[serde(default)]
    pub desc: String,
    /// A paragraph under the title.
    #[serde(default)]
    pub sub_title: String,
    /// Key/value rows, at most [`MAX_FIELDS`].
    #[serde(default)]
    pub fields: Vec<Field>,
    /// A drop-down above the buttons whose answer an [`Action::Choose`] button takes
    /// (which release to roll back to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// At most [`MAX_BUTTONS`].
    #[serde(default)]
    pub buttons: Vec<Button>,
    /// The whole message as text, for surfaces without cards; it names the commands the
    /// buttons run, so it can be acted on by typing.
    pub text: String,
    /// `text` is markdown (group robots) rather than plain text.
    #[serde(default)]
    pub markdown: bool,
    /// Unix seconds after which the buttons do nothing (their keys expire).
    pub expires_at: i64,
}

/// One key/value row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub key: String,
    pub value: String,
}

impl Field {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Field {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A drop-down on a card: one question, at most [`MAX_CHOICES`] options, one chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The question's key, which the click's answers name.
    pub question: String,
    /// The label beside the drop-down.
    pub title: String,
    pub options: Vec<Choice>,
    /// The option chosen at first, and taken when a click brings no answer.
    pub selected: String,
}

/// One option of a [`Selection`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What the click sends back and the command is filled with: letters, digits, `_`
    /// and `-` only ([`is_choice_id`]), so it can never change the command's shape.
    pub id: String,
    pub text: String,
}

impl Choice {
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Choice {
            id: id.into(),
            text: text.into(),
        }
    }
}

/// Whether `id` may be an option's id: 1–64 of `[A-Za-z0-9_-]`.
pub fn is_choice_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// How a button looks; WeCom numbers them 1–4 and the colours differ between its apps
/// and robots, so only the emphasis is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// The action the card is about (确认, 批准).
    Primary,
    Secondary,
    /// Already done, or nothing to do.
    Neutral,
    /// Destructive or refusing (回滚, 驳回).
    Danger,
}

impl Style {
    /// WeCom's `style` number.
    pub fn wecom(self) -> u8 {
        match self {
            Style::Primary => 1,
            Style::Secondary => 2,
            Style::Neutral => 3,
            Style::Danger => 4,
        }
    }
}

/// A button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub text: String,
    pub style: Style,
    /// What the platform sends back when it is tapped ([`CardKeys::sign`]).
    pub key: String,
    pub action: Action,
    /// Buttons of one card that share a slot exclude each other (批准 / 驳回): the first
    /// click that acts takes the slot; a later click on any of them is told who did.
    pub slot: String,
    /// Set once the slot was taken: what was done and by whom (`已由 lisi 执行 #42`); the
    /// button then shows this, greyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
}

/// What a button does, run as the person who tapped it, through the same permission
/// checks, jobs and audit as the typed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// Runs `command` (`确认:42`, `扩容:payments/api,+2`, `批准:7`); the click is its
    /// confirmation. With `roles`, only a clicker holding one of them may (a
    /// remediation rule's roles), on top of the permission the command needs anyway.
    Run {
        command: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
    /// Silences `matcher` until the end of the day, in the zone chat shows times in (the
    /// length is known only when it is tapped).
    SilenceToday { matcher: String },
    /// Confirms the clicker's pending command, if it is still `command`.
    Confirm { command: String },
    /// Drops the clicker's pending command, if it is still `command`.
    Cancel { command: String },
    /// Runs `command` with its one `{}` replaced by the clicker's answer to the card's
    /// question `question`, which must be one of `options` (the default first). The
    /// allowed ids are part of the signed action, so a click cannot add one.
    Choose {
        command: String,
        question: String,
        options: Vec<String>,
    },
}

impl Action {
    /// Runs `command`, for whoever may.
    pub fn run(command: impl Into<String>) -> Action {
        Action::Run {
            command: command.into(),
            roles: Vec::new(),
        }
    }

    /// The short word the key starts with: readable in logs, never trusted.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Run { .. } => "run",
            Action::SilenceToday { .. } => "sil",
            Action::Confirm { .. } => "ok",
            Action::Cancel { .. } => "no",
            Action::Choose { .. } => "pick",
        }
    }

    /// The command it stands for, as a surface without buttons would type it (a
    /// `Choose` with its default option).
    pub fn command(&self) -> Cow<'_, str> {
        match self {
            Action::Run { command, .. }
            | Action::Confirm { command }
            | Action::Cancel { command } => Cow::Borrowed(command),
            Action::SilenceToday { matcher } => Cow::Borrowed(matcher),
            Action::Choose {
                command, options, ..
            } => Cow::Owned(fill(command, options.first().map_or("", String::as_str))),
        }
    }

    /// The command a `Choose` runs for option `id`; `None` when `id` is not one of its
    /// options (or the action is no `Choose`).
    pub fn chosen(&self, id: &str) -> Option<String> {
        match self {
            Action::Choose {
                command, options, ..
            } if is_choice_id(id) && options.iter().any(|o| o == id) => Some(fill(command, id)),
            _ => None,
        }
    }
}

/// `command` with its first `{}` replaced by `id`.
fn fill(command: &str, id: &str) -> String {
    command.replacen("{}", id, 1)
}

impl Card {
    /// The button whose key is exactly `key`.
    pub fn button(&self, key: &str) -> Option<&Button> {
        self.buttons.iter().find(|b| b.key == key)
    }

    /// Marks every button of `slot` done with `text` (they grey out and say it).
    pub fn settle(&mut self, slot: &str, text: &str) {
        for b in self.buttons.iter_mut().filter(|b| b.slot == slot) {
            b.done = Some(text.to_string());
            b.style = Style::Neutral;
        }
    }

    /// The card as JSON (the store keeps it so).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A fresh task id: `prefix` (letters, digits, `_`, `-`, `@`; others become `-`) and 12
/// random hex digits, within WeCom's 128 bytes.
pub fn task_id(prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_TASK_ID - 13)
        .collect();
    let random: [u8; 6] = rand::random();
    format!("{clean}-{}", hex(&random))
}

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("按钮无效(不是这张卡片的按钮,或已被篡改)")]
    Forged,
    #[error("按钮已过期")]
    Expired,
}

/// Signs and checks button keys with a 32-byte secret (a sub-key of the server's secret
/// key; every instance derives the same one, so any instance checks any card's keys).
#[derive(Clone)]
pub struct CardKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for CardKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardKeys(..)")
    }
}

/// The MAC in a key: 128 bits of HMAC-SHA256, hex.
const MAC_BYTES: usize = 16;

impl CardKeys {
    pub fn new(key: [u8; 32]) -> Self {
        CardKeys { key }
    }

    /// The key of a button of card `task_id` that does `action` in `slot` until
    /// `expires_at` (Unix seconds): `<verb>.<object>.<expiry>.<mac>`, where `object` is
    /// a short readable label the producer gives (`al42`; letters, digits, `_`, `-`).
    pub fn sign(
        &self,
        task_id: &str,
        slot: &str,
        object: &str,
        action: &Action,
        expires_at: i64,
    ) -> String {
        let object: String = object
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        let verb = action.verb();
        let mac = self.mac(task_id, slot, verb, &object, action, expires_at);
        format!("{verb}.{object}.{expires_at}.{mac}")
    }

    /// Makes the buttons of card `task_id`, whose keys expire at `expires_at` (Unix
    /// seconds).
    pub fn for_card<'a>(&'a self, task_id: &'a str, expires_at: i64) -> Buttons<'a> {
        Buttons {
            keys: self,
            task_id,
            expires_at,
        }
    }

    /// Checks `button` of card `task_id` at `now` (Unix seconds): its key must be the
    /// one this secret makes for exactly its action, slot and expiry, and unexpired.
    pub fn verify(&self, task_id: &str, button: &Button, now: i64) -> Result<(), KeyError> {
        let mut parts = button.key.split('.');
        let (Some(verb), Some(object), Some(expiry), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(KeyError::Forged);
        };
        let Ok(expires_at) = expiry.parse::<i64>() else {
            return Err(KeyError::Forged);
        };
        // The canonical text only: no sign, no leading zeros.
        if expires_at.to_string() != expiry || verb != button.action.verb() {
            return Err(KeyError::Forged);
        }
        let expected = self.mac(
            task_id,
            &button.slot,
            verb,
            object,
            &button.action,
            expires_at,
        );
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(KeyError::Forged);
        }
        if now > expires_at {
            return Err(KeyError::Expired);
        }
        Ok(())
    }

    fn mac(
        &self,
        task_id: &str,
        slot: &str,
        verb: &str,
        object: &str,
        action: &Action,
        expires_at: i64,
    ) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        // Length-prefixed fields, so no two different inputs read the same.
        let action = serde_json::to_string(action).unwrap_or_default();
        let expiry = expires_at.to_string();
        for part in [
            "opsbot-card-v1",
            task_id,
            slot,
            verb,
            object,
            &expiry,
            &action,
        ] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        hex(&m.finalize().into_bytes()[..MAC_BYTES])
    }
}

/// The buttons of one card, signed as they are made.
pub struct Buttons<'a> {
    keys: &'a CardKeys,
    task_id: &'a str,
    expires_at: i64,
}

impl Buttons<'_> {
    /// A button doing `action` in `slot`; `object` labels its key (`al42`).
    pub fn button(
        &self,
        text: impl Into<String>,
        style: Style,
        slot: impl Into<String>,
        object: &str,
        action: Action,
    ) -> Button {
        let slot = slot.into();
        Button {
            text: text.into(),
            style,
            key: self
                .keys
                .sign(self.task_id, &slot, object, &action, self.expires_at),
            action,
            slot,
            done: None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> CardKeys {
        CardKeys::new([7; 32])
    }

    fn ack() -> Action {
        Action::Run {
            command: "确认:42".into(),
            roles: vec![],
        }
    }

    #[test]
    fn a_signed_button_verifies_until_it_expires() {
        let b =
            keys()
                .for_card("al42-abc", 1000)
                .button("确认", Style::Primary, "ack", "al42", ack());
        assert!(b.key.starts_with("run.al42.1000."));
        assert!(b.key.len() < 1024);
        assert_eq!(keys().verify("al42-abc", &b, 999), Ok(()));
        assert_eq!(keys().verify("al42-abc", &b, 1000), Ok(()));
        assert_eq!(keys().verify("al42-abc", &b, 1001), Err(KeyError::Expired));
    }

    #[test]
    fn anything_changed_is_forged() {
        let b =
            keys()
                .for_card("al42-abc", 1000)
                .button("确认", Style::Primary, "ack", "al42", ack());
        let forged = |b: &Button, task: &str| keys().verify(task, b, 0) == Err(KeyError::Forged);
        // Another card, another secret.
        assert!(forged(&b, "al43-abc"));
        assert_eq!(
            CardKeys::new([8; 32]).verify("al42-abc", &b, 0),
            Err(KeyError::Forged)
        );
        // Another action, slot or expiry behind the same key.
        let mut other = b.clone();
        other.action = Action::Run {
            command: "确认:43".into(),
            roles: vec![],
        };
        assert!(forged(&other, "al42-abc"));
        let mut other = b.clone();
        other.slot = "silence".into();
        assert!(forged(&other, "al42-abc"));
        let mut other = b.clone();
        other.key = other.key.replace(".1000.", ".9999.");
        assert!(forged(&other, "al42-abc"));
        let mut other = b.clone();
        other.key = other.key.replace(".1000.", ".01000.");
        assert!(forged(&other, "al42-abc"));
        // Garbage.
        for key in [
            "",
            "run",
            "run.al42.1000",
            "run.al42.1000.xx.yy",
            "run.al42.x.00",
        ] {
            let mut other = b.clone();
            other.key = key.into();
            assert!(forged(&other, "al42-abc"), "{key}");
        }
    }

    fn pick() -> Action {
        Action::Choose {
            command: "回滚:shop,{}".into(),
            question: "to".into(),
            options: vec!["5".into(), "4".into()],
        }
    }

    #[test]
    fn a_choice_fills_the_command_with_an_allowed_option_only() {
        let a = pick();
        assert_eq!(a.verb(), "pick");
        // Typed without buttons: the default, the first option.
        assert_eq!(a.command(), "回滚:shop,5");
        assert_eq!(a.chosen("4").as_deref(), Some("回滚:shop,4"));
        for bad in ["3", "", "4,5", "4 ", "{}"] {
            assert_eq!(a.chosen(bad), None, "{bad:?}");
        }
        assert_eq!(ack().chosen("4"), None);
        assert!(is_choice_id("rel-12_a") && !is_choice_id("a.b") && !is_choice_id(""));
    }

    #[test]
    fn the_options_of_a_choice_are_signed() {
        let b = keys()
            .for_card("dp7-x", 1000)
            .button("回滚", Style::Danger, "next", "o7", pick());
        assert!(b.key.starts_with("pick.o7.1000."));
        assert_eq!(keys().verify("dp7-x", &b, 0), Ok(()));
        let mut other = b.clone();
        if let Action::Choose { options, .. } = &mut other.action {
            options.push("1".into());
        }
        assert_eq!(keys().verify("dp7-x", &other, 0), Err(KeyError::Forged));
    }

    #[test]
    fn a_card_without_a_selection_reads_as_before() {
        let card = Card {
            task_id: "t-1".into(),
            source: String::new(),
            title: "t".into(),
            desc: String::new(),
            sub_title: String::new(),
            fields: vec![],
            selection: None,
            buttons: vec![],
            text: "t".into(),
            markdown: false,
            expires_at: 1,
        };
        let json = card.to_json();
        assert!(!json.contains("selection"));
        let with = Card {
            selection: Some(Selection {
                question: "to".into(),
                title: "回滚到".into(),
                options: vec![Choice::new("5", "#5")],
                selected: "5".into(),
            }),
            ..card.clone()
        };
        let back: Card = serde_json::from_str(&with.to_json()).unwrap();
        assert_eq!(back, with);
        assert_eq!(serde_json::from_str::<Card>(&json).unwrap(), card);
    }

    #[test]
    fn task_ids_are_fresh_and_in_wecom_charset() {
        let a = task_id("al42 web/01");
        let b = task_id("al42 web/01");
        assert_ne!(a, b);
        assert!(a.starts_with("al42-web-01-"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@')));
        assert!(task_id(&"x".repeat(500)).len() <= MAX_TASK_ID);
    }

    #[test]
    fn settling_a_slot_greys_its_buttons() {
        let k = keys();
        let mut card = Card {
            task_id: "dp7-x".into(),
            source: "opsbot 发布".into(),
            title: "发布单 #7 待审批".into(),
            desc: String::new(),
            sub_title: String::new(),
            fields: vec![],
            selection: None,
            buttons: vec![
                k.for_card("dp7-x", 9)
                    .button("批准", Style::Primary, "decide", "o7", ack()),
                k.for_card("dp7-x", 9)
                    .button("驳回", Style::Danger, "decide", "o7", ack()),
            ],
            text: "发布单 #7 待审批".into(),
            markdown: false,
            expires_at: 9,
        };
        card.settle("decide", "已由 lisi 批准");
        assert!(card
            .buttons
            .iter()
            .all(|b| b.done.as_deref() == Some("已由 lisi 批准") && b.style == Style::Neutral));
        let back: Card = serde_json::from_str(&card.to_json()).unwrap();
        assert_eq!(back, card);
    }
}
