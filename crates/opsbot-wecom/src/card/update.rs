//! The body of `POST /cgi-bin/message/update_template_card` (CARDS.md §4.2): whose copy
//! of a card changes, with which one-time `response_code`, and how.

use serde_json::{json, Map, Value};

use super::TemplateCard;
use crate::error::{Error, Result};

const MAX_USERS: usize = 1000;
const MAX_PARTIES: usize = 100;
const MAX_TAGS: usize = 100;

/// What an update does to the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardChange {
    /// `button.replace_name`: the buttons become one unclickable button with this text
    /// (button, vote and multiple-choice cards only).
    ReplaceName(String),
    /// `template_card`: a whole new card, checked like a sent one; its `task_id` must be
    /// the card's.
    Card(TemplateCard),
}

/// One `update_template_card` call. The code is spent by the call whatever its outcome
/// may be, so a refused update is never retried with it (see
/// [`crate::Error::CardUpdateRefused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUpdate {
    /// From the `message/send` answer or from a click; one call each, within 72 h.
    pub response_code: String,
    /// `atall: 1`: every recipient of the card.
    pub all: bool,
    /// `userids`: these members' copies (≤ 1000).
    pub userids: Vec<String>,
    /// `partyids` (≤ 100).
    pub partyids: Vec<i64>,
    /// `tagids` (≤ 100).
    pub tagids: Vec<i64>,
    /// The change.
    pub change: CardChange,
}

impl CardUpdate {
    /// Change every recipient's copy.
    pub fn for_all(response_code: impl Into<String>, change: CardChange) -> Self {
        Self {
            response_code: response_code.into(),
            all: true,
            userids: Vec::new(),
            partyids: Vec::new(),
            tagids: Vec::new(),
            change,
        }
    }

    /// Change these members' copies only.
    pub fn for_users<I, S>(response_code: impl Into<String>, users: I, change: CardChange) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            userids: users.into_iter().map(Into::into).collect(),
            all: false,
            ..Self::for_all(response_code, change)
        }
    }

    /// The limits WeCom enforces, and the card's own when the change is a card.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidArgument(reason));
        if self.response_code.is_empty() {
            return bad("update_template_card needs a response_code".into());
        }
        if !self.all
            && self.userids.is_empty()
            && self.partyids.is_empty()
            && self.tagids.is_empty()
        {
            return bad(
                "update_template_card updates nobody: set all, or userids, partyids or tagids"
                    .into(),
            );
        }
        for (what, len, max) in [
            ("userids", self.userids.len(), MAX_USERS),
            ("partyids", self.partyids.len(), MAX_PARTIES),
            ("tagids", self.tagids.len(), MAX_TAGS),
        ] {
            if len > max {
                return bad(format!(
                    "update_template_card has {len} {what}; WeCom accepts at most {max}"
                ));
            }
        }
        if self.userids.iter().any(String::is_empty) {
            return bad("update_template_card userids must not be empty strings".into());
        }
        match &self.change {
            CardChange::ReplaceName(name) if name.is_empty() => Err(Error::InvalidCard {
                field: "button.replace_name".into(),
                reason: "is empty".into(),
            }),
            CardChange::ReplaceName(_) => Ok(()),
            CardChange::Card(card) => card.validate(),
        }
    }

    /// The request body for the app `agent_id`.
    pub(crate) fn to_json(&self, agent_id: i64) -> Value {
        let mut body = Map::new();
        if !self.userids.is_empty() {
            body.insert("userids".into(), json!(self.userids));
        }
        if !self.partyids.is_empty() {
            body.insert("partyids".into(), json!(self.partyids));
        }
        if !self.tagids.is_empty() {
            body.insert("tagids".into(), json!(self.tagids));
        }
        body.insert("atall".into(), json!(u8::from(self.all)));
        body.insert("agentid".into(), json!(agent_id));
        body.insert("response_code".into(), json!(self.response_code));
        match &self.change {
            CardChange::ReplaceName(name) => {
                body.insert("button".into(), json!({ "replace_name": name }));
            }
            CardChange::Card(card) => {
                body.insert("template_card".into(), card.to_json());
            }
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_follows_the_documented_fields() {
        let update = CardUpdate::for_all("RC1", CardChange::ReplaceName("已由 lisi 执行".into()));
        update.validate().unwrap();
        assert_eq!(
            update.to_json(1_000_002),
            json!({"atall": 1, "agentid": 1_000_002, "response_code": "RC1",
                   "button": {"replace_name": "已由 lisi 执行"}})
        );
        let mut some = CardUpdate::for_users("RC2", ["lisi"], CardChange::ReplaceName("x".into()));
        some.partyids = vec![2];
        assert_eq!(
            some.to_json(7),
            json!({"userids": ["lisi"], "partyids": [2], "atall": 0, "agentid": 7,
                   "response_code": "RC2", "button": {"replace_name": "x"}})
        );
    }

    #[test]
    fn refusals() {
        let nobody = CardUpdate::for_users(
            "RC",
            Vec::<String>::new(),
            CardChange::ReplaceName("x".into()),
        );
        assert!(nobody
            .validate()
            .unwrap_err()
            .to_string()
            .contains("nobody"));
        let no_code = CardUpdate::for_all("", CardChange::ReplaceName("x".into()));
        assert!(no_code.validate().is_err());
        let empty = CardUpdate::for_all("RC", CardChange::ReplaceName(String::new()));
        assert!(empty
            .validate()
            .unwrap_err()
            .to_string()
            .contains("replace_name"));
        let card = CardUpdate::for_all(
            "RC",
            CardChange::Card(TemplateCard::new(super::super::CardType::ButtonInteraction)),
        );
        assert!(matches!(card.validate(), Err(Error::InvalidCard { .. })));
        let many =
            CardUpdate::for_users("RC", vec!["u"; 1001], CardChange::ReplaceName("x".into()));
        assert!(many.validate().unwrap_err().to_string().contains("1000"));
    }
}
