//! WeCom template cards (模板卡片, CARDS.md §2): the typed wire model a product fills in,
//! its hard limits ([`TemplateCard::validate`]), the `update_template_card` request
//! ([`CardUpdate`]), the passive replies that change a card after a click
//! ([`update_button_reply_xml`], [`bot_update_card_reply_json`]),
//! and the answers a click brings back ([`SelectedItem`]).
//!
//! The model serialises to exactly the JSON WeCom documents: absent fields are left
//! out, never sent as `null`, and fields keep the documented order. It covers the
//! fields a product uses (no `action_menu`, `quote_area`, `vertical_content_list`,
//! `image_text_area`); the advisory character counts of the docs are not enforced, the
//! byte and count limits are.

mod reply;
mod update;
mod validate;

use serde::{Deserialize, Serialize};

pub use reply::{
    bot_card_reply_json, bot_update_card_reply_json, response_url_card, update_button_reply_xml,
};
pub use update::{CardChange, CardUpdate};
pub use validate::{MAX_BUTTONS, MAX_KEY_BYTES, MAX_TASK_ID_BYTES};

/// `card_type`: the five kinds of template card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardType {
    /// 文本通知: text with a link (`card_action` required).
    TextNotice,
    /// 图文展示: an image card (`card_action` required).
    NewsNotice,
    /// 按钮交互: up to six buttons that call back.
    ButtonInteraction,
    /// 投票选择: a checkbox question and a submit button.
    VoteInteraction,
    /// 多项选择: up to three drop-down selectors and a submit button.
    MultipleInteraction,
}

impl CardType {
    /// The wire name, e.g. `button_interaction`.
    pub fn as_str(self) -> &'static str {
        match self {
            CardType::TextNotice => "text_notice",
            CardType::NewsNotice => "news_notice",
            CardType::ButtonInteraction => "button_interaction",
            CardType::VoteInteraction => "vote_interaction",
            CardType::MultipleInteraction => "multiple_interaction",
        }
    }

    /// Whether clicks call back and the card needs a `task_id`; only these get a
    /// `response_code` from `message/send`.
    pub fn is_interactive(self) -> bool {
        matches!(
            self,
            CardType::ButtonInteraction | CardType::VoteInteraction | CardType::MultipleInteraction
        )
    }
}

/// A template card as sent in `message/send` (`msgtype: template_card`), in an
/// `update_template_card` call, or in a smart robot's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCard {
    /// The kind of card; decides which fields are required.
    pub card_type: CardType,
    /// The source line above the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The bold title and its grey description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_title: Option<Title>,
    /// A key figure shown large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emphasis_content: Option<Title>,
    /// Secondary text under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_title_text: Option<String>,
    /// Key/value rows, at most 6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub horizontal_content_list: Vec<HorizontalContent>,
    /// Links under the rows, at most 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jump_list: Vec<Jump>,
    /// What tapping the card body does; required for text and news cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_action: Option<CardAction>,
    /// The picture of a news card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_image: Option<CardImage>,
    /// The card's id in clicks and updates: `[0-9A-Za-z_@-]`, 1–128 bytes, never
    /// reused within an app. Required for the interactive types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// A drop-down above the buttons of a button card; its answer comes back with the
    /// click.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_selection: Option<ButtonSelection>,
    /// The buttons of a button card, 1–6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub button_list: Vec<Button>,
    /// The question of a vote card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkbox: Option<Checkbox>,
    /// The selectors of a multiple-choice card, 1–3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select_list: Vec<Selector>,
    /// The submit button of a vote or multiple-choice card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_button: Option<SubmitButton>,
    /// In an update: the buttons show as one grey, unclickable bar with this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_text: Option<String>,
}

impl TemplateCard {
    /// An empty card of `card_type`; fill in the fields it needs.
    pub fn new(card_type: CardType) -> Self {
        Self {
            card_type,
            source: None,
            main_title: None,
            emphasis_content: None,
            sub_title_text: None,
            horizontal_content_list: Vec::new(),
            jump_list: Vec::new(),
            card_action: None,
            card_image: None,
            task_id: None,
            button_selection: None,
            button_list: Vec::new(),
            checkbox: None,
            select_list: Vec::new(),
            submit_button: None,
            replace_text: None,
        }
    }

    /// The card as WeCom's JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, integers and booleans only: serialising cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// `source`: the line naming who sent the card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// An icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// 0 grey (default), 1 black, 2 red, 3 green.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc_color: Option<u8>,
}

/// `main_title` or `emphasis_content`: a title and a description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Title {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The description under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
}

impl Title {
    /// A title with an optional description.
    pub fn new(title: impl Into<String>, desc: Option<String>) -> Self {
        Self {
            title: Some(title.into()),
            desc,
        }
    }
}

/// One `horizontal_content_list` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizontalContent {
    /// The key, shown grey on the left.
    pub keyname: String,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// 0 text (default), 1 link (`url`), 2 attachment, 3 member (`userid`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    /// The link of a type-1 row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The member of a type-3 row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userid: Option<String>,
}

impl HorizontalContent {
    /// A plain text row.
    pub fn text(keyname: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            keyname: keyname.into(),
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// A row whose value opens `url`.
    pub fn link(
        keyname: impl Into<String>,
        value: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self {
            keyname: keyname.into(),
            value: Some(value.into()),
            kind: Some(1),
            url: Some(url.into()),
            userid: None,
        }
    }
}

/// One `jump_list` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jump {
    /// 0 none, 1 URL, 2 mini-program.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    /// The link text.
    pub title: String,
    /// The URL of a type-1 jump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The mini-program of a type-2 jump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The mini-program page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
}

/// `card_action`: what tapping the card does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAction {
    /// 0 nothing (button cards only), 1 open `url`, 2 open a mini-program.
    #[serde(rename = "type")]
    pub kind: u8,
    /// The URL of type 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The mini-program of type 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The mini-program page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
}

impl CardAction {
    /// Open `url` when the card is tapped.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            kind: 1,
            url: Some(url.into()),
            ..Self::default()
        }
    }
}

/// `card_image`: the picture of a news card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardImage {
    /// The picture URL.
    pub url: String,
}

/// One `button_list` button.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// 0 callback (default), 1 open `url`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    /// The label.
    pub text: String,
    /// 1–4 (default 1); see CARDS.md §2.2 for the colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<u8>,
    /// The `EventKey` a click of a callback button sends back: ≤ 1024 bytes, unique in
    /// the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The link of a type-1 button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Button {
    /// A callback button.
    pub fn callback(text: impl Into<String>, style: u8, key: impl Into<String>) -> Self {
        Self {
            kind: None,
            text: text.into(),
            style: Some(style),
            key: Some(key.into()),
            url: None,
        }
    }

    /// A button that opens `url` and sends no event.
    pub fn link(text: impl Into<String>, style: u8, url: impl Into<String>) -> Self {
        Self {
            kind: Some(1),
            text: text.into(),
            style: Some(style),
            key: None,
            url: Some(url.into()),
        }
    }

    /// Whether a click sends an event (type 0, the default).
    pub fn is_callback(&self) -> bool {
        self.kind.unwrap_or(0) == 0
    }
}

/// One option of a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// The id sent back in `SelectedItems`: ≤ 128 bytes, unique in the question.
    pub id: String,
    /// The label.
    pub text: String,
}

impl SelectOption {
    /// An option.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
        }
    }
}

/// `button_selection`: a drop-down on a button card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonSelection {
    /// The question's key in `SelectedItems`.
    pub question_key: String,
    /// The label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// 1–10 options.
    pub option_list: Vec<SelectOption>,
    /// The option selected at first (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_id: Option<String>,
}

/// One checkbox option of a vote card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckboxOption {
    /// The id sent back in `SelectedItems`: ≤ 128 bytes, unique in the question.
    pub id: String,
    /// The label.
    pub text: String,
    /// Ticked at first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_checked: Option<bool>,
}

/// `checkbox`: the question of a vote card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkbox {
    /// The question's key in `SelectedItems`.
    pub question_key: String,
    /// 1–20 options.
    pub option_list: Vec<CheckboxOption>,
    /// 0 single choice (default), 1 multiple.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u8>,
    /// Read-only; only in an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
}

/// One `select_list` selector of a multiple-choice card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// The question's key in `SelectedItems`.
    pub question_key: String,
    /// The label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The option selected at first (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_id: Option<String>,
    /// Read-only; only in an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    /// 1–10 options.
    pub option_list: Vec<SelectOption>,
}

/// `submit_button` of a vote or multiple-choice card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitButton {
    /// The label.
    pub text: String,
    /// The `EventKey` of the submit event: ≤ 1024 bytes.
    pub key: String,
}

/// One answer in a click's `SelectedItems`: the question and the chosen option ids
/// (several for a multiple-choice checkbox).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectedItem {
    /// `QuestionKey` / `question_key`.
    pub question_key: String,
    /// `OptionIds/OptionId` / `option_ids.option_id`, in the order sent.
    pub option_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_left_out_in_the_documented_order() {
        let card = TemplateCard {
            main_title: Some(Title::new(
                "[P1] HighCPU web-01",
                Some("已静默 1 小时".into()),
            )),
            sub_title_text: Some("由 lisi 于 1796000120 静默".into()),
            task_id: Some("bot-alert-42-5f3a9c".into()),
            button_list: vec![Button::callback("已静默", 4, "noop.al42")],
            ..TemplateCard::new(CardType::ButtonInteraction)
        };
        assert_eq!(
            serde_json::to_string(&card).unwrap(),
            r#"{"card_type":"button_interaction","main_title":{"title":"[P1] HighCPU web-01","desc":"已静默 1 小时"},"sub_title_text":"由 lisi 于 1796000120 静默","task_id":"bot-alert-42-5f3a9c","button_list":[{"text":"已静默","style":4,"key":"noop.al42"}]}"#
        );
        let back: TemplateCard = serde_json::from_value(card.to_json()).unwrap();
        assert_eq!(back, card);
    }

    #[test]
    fn types_and_links_use_the_wire_names() {
        let card = TemplateCard {
            horizontal_content_list: vec![HorizontalContent::link(
                "runbook",
                "打开",
                "https://r/1",
            )],
            card_action: Some(CardAction::url("https://x/")),
            button_list: vec![Button::link("详情", 2, "https://x/d")],
            ..TemplateCard::new(CardType::TextNotice)
        };
        let v = card.to_json();
        assert_eq!(v["card_type"], "text_notice");
        assert_eq!(v["horizontal_content_list"][0]["type"], 1);
        assert_eq!(
            v["card_action"],
            serde_json::json!({"type": 1, "url": "https://x/"})
        );
        assert_eq!(v["button_list"][0]["type"], 1);
        assert!(v.get("task_id").is_none() && v.get("source").is_none());
        assert!(
            CardType::VoteInteraction.is_interactive() && !CardType::NewsNotice.is_interactive()
        );
    }
}
