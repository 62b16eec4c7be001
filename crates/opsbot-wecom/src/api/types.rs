//! Requests and answers of the WeCom APIs the client calls (PROTOCOLS.md §2), and the
//! client-side checks that spare a round trip WeCom would refuse anyway.

use serde_json::{json, Map, Value};

use crate::card::TemplateCard;
use crate::error::{Error, Result};
use crate::split::{
    APP_MARKDOWN_MAX_BYTES, APP_TEXT_MAX_BYTES, ROBOT_MARKDOWN_MAX_BYTES, ROBOT_TEXT_MAX_BYTES,
};

const MAX_USERS: usize = 1000;
const MAX_PARTIES: usize = 100;
const MAX_TAGS: usize = 100;
const TEXTCARD_TITLE_MAX_BYTES: usize = 128;
const TEXTCARD_DESCRIPTION_MAX_BYTES: usize = 512;

/// Who receives an app message (`touser` / `toparty` / `totag`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    /// userids, or the single entry `@all`.
    pub users: Vec<String>,
    /// Department ids.
    pub parties: Vec<String>,
    /// Tag ids.
    pub tags: Vec<String>,
}

impl Recipients {
    /// The given users.
    pub fn users<I, S>(users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            users: users.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Everyone in the app's visible range (`touser: "@all"`).
    pub fn all() -> Self {
        Self::users(["@all"])
    }

    /// Whether nobody is addressed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.parties.is_empty() && self.tags.is_empty()
    }

    /// The individually named users (not `@all`), which is what per-member limits apply to.
    pub(crate) fn named_users(&self) -> impl Iterator<Item = &str> {
        self.users
            .iter()
            .map(String::as_str)
            .filter(|user| *user != "@all")
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::InvalidArgument(
                "a message needs at least one user, party or tag".into(),
            ));
        }
        for (what, list, max) in [
            ("users", &self.users, MAX_USERS),
            ("parties", &self.parties, MAX_PARTIES),
            ("tags", &self.tags, MAX_TAGS),
        ] {
            if list.len() > max {
                return Err(Error::InvalidArgument(format!(
                    "{} {what} in one message; WeCom accepts at most {max}",
                    list.len()
                )));
            }
            if list.iter().any(|id| id.is_empty() || id.contains('|')) {
                return Err(Error::InvalidArgument(format!(
                    "{what} ids must be non-empty and must not contain '|'"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn write_json(&self, body: &mut Map<String, Value>) {
        for (field, list) in [
            ("touser", &self.users),
            ("toparty", &self.parties),
            ("totag", &self.tags),
        ] {
            if !list.is_empty() {
                body.insert(field.into(), Value::String(list.join("|")));
            }
        }
    }
}

/// A text card: title, description (may hold `<div class="gray|normal|highlight">`), link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCard {
    /// At most 128 bytes.
    pub title: String,
    /// At most 512 bytes.
    pub description: String,
    /// Opened on click.
    pub url: String,
    /// Button text; WeCom shows "详情" when absent.
    pub btntxt: Option<String>,
}

/// Content of an app message (`message/send`) or app-chat message (`appchat/send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMessage {
    /// Plain text, at most 2048 bytes.
    Text(String),
    /// WeCom markdown, at most 2048 bytes.
    Markdown(String),
    /// A text card.
    TextCard(TextCard),
    /// A template card (`msgtype: template_card`); the interactive types bring back a
    /// `response_code` in [`SendReceipt::response_code`].
    TemplateCard(TemplateCard),
}

impl AppMessage {
    fn msgtype(&self) -> &'static str {
        match self {
            AppMessage::Text(_) => "text",
            AppMessage::Markdown(_) => "markdown",
            AppMessage::TextCard(_) => "textcard",
            AppMessage::TemplateCard(_) => "template_card",
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            AppMessage::Text(content) => check_content("text content", content, APP_TEXT_MAX_BYTES),
            AppMessage::Markdown(content) => {
                check_content("markdown content", content, APP_MARKDOWN_MAX_BYTES)
            }
            AppMessage::TextCard(card) => {
                check_content("textcard title", &card.title, TEXTCARD_TITLE_MAX_BYTES)?;
                check_content(
                    "textcard description",
                    &card.description,
                    TEXTCARD_DESCRIPTION_MAX_BYTES,
                )?;
                if card.url.is_empty() {
                    return Err(Error::InvalidArgument("textcard url is empty".into()));
                }
                Ok(())
            }
            AppMessage::TemplateCard(card) => card.validate(),
        }
    }

    pub(crate) fn write_json(&self, body: &mut Map<String, Value>) {
        body.insert("msgtype".into(), Value::String(self.msgtype().into()));
        let payload = match self {
            AppMessage::Text(content) | AppMessage::Markdown(content) => {
                json!({ "content": content })
            }
            AppMessage::TextCard(card) => {
                let mut object = json!({
                    "title": card.title,
                    "description": card.description,
                    "url": card.url,
                });
                if let Some(btntxt) = &card.btntxt {
                    object["btntxt"] = Value::String(btntxt.clone());
                }
                object
            }
            AppMessage::TemplateCard(card) => card.to_json(),
        };
        body.insert(self.msgtype().into(), payload);
    }
}

fn check_content(what: &'static str, content: &str, limit: usize) -> Result<()> {
    if content.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} is empty")));
    }
    if content.len() > limit {
        return Err(Error::ContentTooLong {
            what,
            len: content.len(),
            limit,
        });
    }
    Ok(())
}

/// What `message/send` reports back. Recipients listed as invalid did not get the message,
/// but the send as a whole succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReceipt {
    /// `msgid`, for recalling the message.
    pub msg_id: Option<String>,
    /// `invaliduser` (WeCom lower-cases these).
    pub invalid_users: Vec<String>,
    /// `invalidparty`.
    pub invalid_parties: Vec<String>,
    /// `invalidtag`.
    pub invalid_tags: Vec<String>,
    /// `unlicenseduser`.
    pub unlicensed_users: Vec<String>,
    /// `response_code`, for updating an interactive template card.
    pub response_code: Option<String>,
}

impl SendReceipt {
    pub(crate) fn from_reply(body: &Map<String, Value>) -> Self {
        let list = |field: &str| -> Vec<String> {
            body.get(field)
                .and_then(Value::as_str)
                .map(|joined| {
                    joined
                        .split('|')
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            msg_id: text("msgid"),
            invalid_users: list("invaliduser"),
            invalid_parties: list("invalidparty"),
            invalid_tags: list("invalidtag"),
            unlicensed_users: list("unlicenseduser"),
            response_code: text("response_code"),
        }
    }

    /// Whether some recipients were skipped.
    pub fn is_partial(&self) -> bool {
        !(self.invalid_users.is_empty()
            && self.invalid_parties.is_empty()
            && self.invalid_tags.is_empty()
            && self.unlicensed_users.is_empty())
    }
}

/// A group-robot message (`webhook/send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotMessage {
    /// Plain text, at most 2048 bytes, with optional mentions (`@all` for everyone).
    Text {
        /// The text.
        content: String,
        /// userids to mention.
        mentioned_list: Vec<String>,
        /// Mobile numbers to mention.
        mentioned_mobile_list: Vec<String>,
    },
    /// Markdown, at most 4096 bytes; mention inline with `<@userid>`.
    Markdown(String),
}

impl RobotMessage {
    /// Text without mentions.
    pub fn text(content: impl Into<String>) -> Self {
        RobotMessage::Text {
            content: content.into(),
            mentioned_list: Vec::new(),
            mentioned_mobile_list: Vec::new(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            RobotMessage::Text { content, .. } => {
                check_content("robot text content", content, ROBOT_TEXT_MAX_BYTES)
            }
            RobotMessage::Markdown(content) => {
                check_content("robot markdown content", content, ROBOT_MARKDOWN_MAX_BYTES)
            }
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            RobotMessage::Text {
                content,
                mentioned_list,
                mentioned_mobile_list,
            } => {
                let mut text = json!({ "content": content });
                if !mentioned_list.is_empty() {
                    text["mentioned_list"] = json!(mentioned_list);
                }
                if !mentioned_mobile_list.is_empty() {
                    text["mentioned_mobile_list"] = json!(mentioned_mobile_list);
                }
                json!({ "msgtype": "text", "text": text })
            }
            RobotMessage::Markdown(content) => {
                json!({ "msgtype": "markdown", "markdown": { "content": content } })
            }
        }
    }
}

/// Parameters of `appchat/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAppChat {
    /// Chat name, at most 50 characters.
    pub name: Option<String>,
    /// Owner userid; WeCom picks one of the members when absent.
    pub owner: Option<String>,
    /// 2 to 500 member userids.
    pub users: Vec<String>,
    /// Wanted chat id, `[0-9a-zA-Z]{1,32}`; WeCom generates one when absent.
    pub chat_id: Option<String>,
}

impl NewAppChat {
    pub(crate) fn to_json(&self) -> Result<Value> {
        if !(2..=500).contains(&self.users.len()) {
            return Err(Error::InvalidArgument(format!(
                "an app chat needs 2 to 500 members, got {}",
                self.users.len()
            )));
        }
        if let Some(chat_id) = &self.chat_id {
            if chat_id.is_empty()
                || chat_id.len() > 32
                || !chat_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(Error::InvalidArgument(
                    "chat id must be 1 to 32 ASCII letters or digits".into(),
                ));
            }
        }
        if self.name.as_ref().is_some_and(|n| n.chars().count() > 50) {
            return Err(Error::InvalidArgument(
                "chat name must be at most 50 characters".into(),
            ));
        }
        let mut body = json!({ "userlist": self.users });
        if let Some(name) = &self.name {
            body["name"] = json!(name);
        }
        if let Some(owner) = &self.owner {
            body["owner"] = json!(owner);
        }
        if let Some(chat_id) = &self.chat_id {
            body["chatid"] = json!(chat_id);
        }
        Ok(body)
    }
}

/// Who logged in through OAuth (`auth/getuserinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserIdentity {
    /// A member of the corp.
    Member {
        /// The userid.
        user_id: String,
        /// Only with `snsapi_privateinfo`; used to fetch details.
        user_ticket: Option<String>,
    },
    /// Someone outside the corp.
    NonMember {
        /// `openid`.
        open_id: String,
        /// `external_userid`, when the person is an external contact.
        external_userid: Option<String>,
    },
}

impl UserIdentity {
    pub(crate) fn from_reply(body: &Map<String, Value>) -> Option<Self> {
        let text = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        // The older user/getuserinfo spelled it UserId.
        if let Some(user_id) = text("userid").or_else(|| text("UserId")) {
            return Some(UserIdentity::Member {
                user_id,
                user_ticket: text("user_ticket"),
            });
        }
        text("openid")
            .or_else(|| text("OpenId"))
            .map(|open_id| UserIdentity::NonMember {
                open_id,
                external_userid: text("external_userid"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_json_and_checks() {
        let mut body = Map::new();
        Recipients {
            users: vec!["a".into(), "b".into()],
            parties: vec![],
            tags: vec!["7".into()],
        }
        .write_json(&mut body);
        assert_eq!(Value::Object(body), json!({"touser": "a|b", "totag": "7"}));
        assert!(Recipients::default().validate().is_err());
        assert!(Recipients::users(["a|b"]).validate().is_err());
        assert!(Recipients::users(vec!["u"; 1001]).validate().is_err());
        assert!(Recipients::all().validate().is_ok());
        assert_eq!(Recipients::all().named_users().count(), 0);
    }

    #[test]
    fn content_limits_are_bytes() {
        assert!(AppMessage::Text("é".repeat(1024)).validate().is_ok());
        let err = AppMessage::Text("é".repeat(1025)).validate().unwrap_err();
        assert!(matches!(
            err,
            Error::ContentTooLong {
                len: 2050,
                limit: 2048,
                ..
            }
        ));
        assert!(RobotMessage::Markdown("x".repeat(4096)).validate().is_ok());
        assert!(RobotMessage::Markdown("x".repeat(4097)).validate().is_err());
        assert!(AppMessage::Markdown(String::new()).validate().is_err());
    }

    #[test]
    fn template_cards_are_checked_and_written() {
        use crate::card::{Button, CardType, Title};
        let mut card = TemplateCard {
            main_title: Some(Title::new("t", None)),
            task_id: Some("t-1".into()),
            button_list: vec![Button::callback("ok", 1, "k")],
            ..TemplateCard::new(CardType::ButtonInteraction)
        };
        let message = AppMessage::TemplateCard(card.clone());
        message.validate().unwrap();
        let mut body = Map::new();
        message.write_json(&mut body);
        assert_eq!(body["msgtype"], "template_card");
        assert_eq!(body["template_card"]["task_id"], "t-1");
        card.task_id = Some("t 1".into());
        let err = AppMessage::TemplateCard(card).validate().unwrap_err();
        assert!(matches!(err, Error::InvalidCard { ref field, .. } if field == "task_id"));
    }

    #[test]
    fn receipt_parsing() {
        let body = json!({"errcode":0,"errmsg":"ok","invaliduser":"ghost|x","invalidparty":"","msgid":"m1"});
        let receipt = SendReceipt::from_reply(body.as_object().unwrap());
        assert_eq!(receipt.invalid_users, vec!["ghost", "x"]);
        assert!(receipt.invalid_parties.is_empty());
        assert_eq!(receipt.msg_id.as_deref(), Some("m1"));
        assert!(receipt.is_partial());
        let card = json!({"errcode":0,"errmsg":"ok","msgid":"m2","response_code":"RC9"});
        let receipt = SendReceipt::from_reply(card.as_object().unwrap());
        assert_eq!(receipt.response_code.as_deref(), Some("RC9"));
        assert!(!receipt.is_partial());
    }
}
