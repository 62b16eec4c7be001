//! Passive replies that change a card right after a click (CARDS.md §4.1 and §5.3),
//! and the card messages of the smart robot. The app's reply is XML, the robot's JSON;
//! both are encrypted by the caller ([`crate::WecomCrypto::encrypt_reply`],
//! [`crate::WecomCrypto::encrypt_json_reply`]). Either changes only the clicker's copy
//! (the robot's: the listed users' in a group); everyone's goes through
//! `update_template_card`.

use serde::Serialize;
use serde_json::Value;

use super::TemplateCard;
use crate::error::Result;
use crate::xml::cdata;

/// Plaintext XML of the app's passive `update_button` reply: the clicked card's buttons
/// turn into one grey button reading `replace_name`, for the clicker. `to_user` is the
/// clicker (`FromUserName` of the event), `from_corp` the CorpID.
pub fn update_button_reply_xml(
    to_user: &str,
    from_corp: &str,
    create_time: i64,
    replace_name: &str,
) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[update_button]]></MsgType><Button><ReplaceName>{}</ReplaceName></Button></xml>",
        cdata(to_user),
        cdata(from_corp),
        cdata(replace_name),
    )
}

/// Plaintext JSON of the robot's passive reply to a card click that replaces the card:
/// for `userids` in a group chat, for everyone in the message when empty. The card's
/// `task_id` should be the event's.
pub fn bot_update_card_reply_json(userids: &[String], card: &TemplateCard) -> Result<String> {
    #[derive(Serialize)]
    struct Reply<'a> {
        response_type: &'static str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        userids: &'a [String],
        template_card: &'a TemplateCard,
    }
    card.validate()?;
    Ok(to_string(&Reply {
        response_type: "update_template_card",
        userids,
        template_card: card,
    }))
}

/// Plaintext JSON of the robot's passive reply that sends a card (a welcome or an
/// answer): `{"msgtype":"template_card","template_card":{…}}`.
pub fn bot_card_reply_json(card: &TemplateCard) -> Result<String> {
    card.validate()?;
    Ok(to_string(&CardMessage::new(card)))
}

/// The robot's `response_url` message with a card (plain JSON, a new message).
pub fn response_url_card(card: &TemplateCard) -> Result<Value> {
    card.validate()?;
    Ok(serde_json::to_value(CardMessage::new(card)).unwrap_or_default())
}

#[derive(Serialize)]
struct CardMessage<'a> {
    msgtype: &'static str,
    template_card: &'a TemplateCard,
}

impl<'a> CardMessage<'a> {
    fn new(card: &'a TemplateCard) -> Self {
        Self {
            msgtype: "template_card",
            template_card: card,
        }
    }
}

fn to_string(value: &impl Serialize) -> String {
    // Strings, integers, booleans and arrays only: serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{Button, CardType, Title};
    use crate::xml::FlatXml;

    #[test]
    fn update_button_xml_round_trips_hostile_text() {
        let xml = update_button_reply_xml("lisi", "wwcorp", 1, "a]]>b");
        let doc = FlatXml::parse(&xml).unwrap();
        assert_eq!(doc.get("MsgType"), Some("update_button"));
        let name = &doc
            .tree("Button")
            .unwrap()
            .child("ReplaceName")
            .unwrap()
            .text;
        assert_eq!(name, "a]]>b");
    }

    #[test]
    fn robot_replies() {
        let card = TemplateCard {
            main_title: Some(Title::new("t", None)),
            task_id: Some("t1".into()),
            button_list: vec![Button::callback("ok", 1, "k")],
            ..TemplateCard::new(CardType::ButtonInteraction)
        };
        let everyone = bot_update_card_reply_json(&[], &card).unwrap();
        assert!(
            everyone.starts_with(r#"{"response_type":"update_template_card","template_card":{"#)
        );
        let sent = bot_card_reply_json(&card).unwrap();
        assert!(sent.starts_with(r#"{"msgtype":"template_card","template_card":{"card_type""#));
        assert_eq!(
            response_url_card(&card).unwrap()["template_card"]["task_id"],
            "t1"
        );
        let mut broken = card;
        broken.task_id = None;
        assert!(bot_card_reply_json(&broken).is_err());
    }
}
