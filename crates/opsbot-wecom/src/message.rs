//! Decrypted callback messages (PROTOCOLS.md §1.10) as typed values, and the plaintext
//! XML of passive text replies. WeChat Official Accounts send and take the same XML
//! (CHANNELS.md §2.2–2.3), so [`Message`] serves both.
//!
//! Parsing is strict about what the bot acts on (sender, time, type, text, event key)
//! and lenient about the rest: an unknown message type or event is kept by name rather
//! than refused, because WeCom adds new ones without notice.

use sha1::{Digest, Sha1};

use crate::card::SelectedItem;
use crate::error::{Error, Result};
use crate::xml::{push_cdata, FlatXml};

/// One message or event a user sent to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `ToUserName`: the CorpID.
    pub to: String,
    /// `FromUserName`: the sender's userid.
    pub from: String,
    /// `CreateTime`: Unix seconds.
    pub create_time: i64,
    /// `AgentID`: the app; absent on some corp-level events.
    pub agent_id: Option<i64>,
    /// What was sent.
    pub body: MessageBody,
}

/// The type-specific part of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// `MsgType=text`.
    Text {
        /// `Content`.
        content: String,
        /// `MsgId`, the key for de-duplicating WeCom's retries.
        msg_id: String,
        /// `ChatId`, when the message came from a group chat.
        chat_id: Option<String>,
    },
    /// `MsgType=event`.
    Event(Event),
    /// Image, voice, video, location, link, file, ...: recognised but not interpreted.
    Other {
        /// `MsgType` as sent.
        msg_type: String,
        /// `MsgId`, if present.
        msg_id: Option<String>,
    },
}

/// The events the bot distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user opened the app.
    EnterAgent,
    /// A custom menu item was clicked.
    Click {
        /// `EventKey`: the menu key.
        key: String,
    },
    /// A menu link was followed.
    View {
        /// `EventKey`: the URL.
        url: String,
    },
    /// A button on a template card was pressed.
    TemplateCard {
        /// `EventKey`: the button key.
        event_key: String,
        /// `TaskId` given when the card was sent.
        task_id: String,
        /// `CardType`, e.g. `button_interaction`.
        card_type: Option<String>,
        /// `ResponseCode`, needed to update the card afterwards.
        response_code: Option<String>,
        /// `SelectedItems`: the answers of a card with choices, one per question.
        selected_items: Vec<SelectedItem>,
    },
    /// The user followed the app.
    Subscribe,
    /// The user unfollowed the app.
    Unsubscribe,
    /// Any other event, by its `Event` name as sent.
    Other(String),
}

impl Message {
    /// Parse the plaintext XML returned by `WecomCrypto::decrypt_message`.
    pub fn parse(xml: &str) -> Result<Self> {
        let doc = FlatXml::parse(xml).map_err(Error::ParseXml)?;
        let create_time = required(&doc, "CreateTime")?;
        let create_time = create_time
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid("CreateTime", "not an integer"))?;
        let agent_id = match doc.get("AgentID").map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .map_err(|_| invalid("AgentID", "not an integer"))?,
            ),
        };
        let msg_type = required(&doc, "MsgType")?;
        let body = match msg_type {
            "text" => MessageBody::Text {
                content: required(&doc, "Content")?.to_owned(),
                msg_id: required(&doc, "MsgId")?.to_owned(),
                chat_id: optional(&doc, "ChatId"),
            },
            "event" => MessageBody::Event(parse_event(&doc)?),
            other => MessageBody::Other {
                msg_type: other.to_owned(),
                msg_id: optional(&doc, "MsgId"),
            },
        };
        Ok(Self {
            to: required(&doc, "ToUserName")?.to_owned(),
            from: required(&doc, "FromUserName")?.to_owned(),
            create_time,
            agent_id,
            body,
        })
    }

    /// A stable key for de-duplicating WeCom's retries: the MsgId when there is one,
    /// otherwise sender + CreateTime (+ event name), as WeCom suggests for events. A card
    /// click adds what was clicked (TaskId, EventKey, ResponseCode), so two buttons
    /// tapped by one user within a second stay two clicks while a redelivery of one
    /// click is recognised (CARDS.md §3).
    pub fn dedup_key(&self) -> String {
        match &self.body {
            MessageBody::Event(Event::TemplateCard {
                event_key,
                task_id,
                response_code,
                ..
            }) => {
                // Keys reach 1024 bytes and task ids 128, and the store keeps 191
                // characters per key: hash the click, keep its time readable.
                let mut hash = Sha1::new();
                for part in [
                    self.from.as_str(),
                    task_id,
                    event_key,
                    response_code.as_deref().unwrap_or(""),
                ] {
                    // No field can hold a NUL (XML forbids it): the parts stay apart.
                    hash.update(part.as_bytes());
                    hash.update([0]);
                }
                let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
                format!("card:{}:{digest}", self.create_time)
            }
            MessageBody::Text { msg_id, .. }
            | MessageBody::Other {
                msg_id: Some(msg_id),
                ..
            } => format!("msg:{msg_id}"),
            MessageBody::Event(event) => {
                format!("event:{}:{}:{}", self.from, self.create_time, event.name())
            }
            MessageBody::Other { msg_type, .. } => {
                format!("{msg_type}:{}:{}", self.from, self.create_time)
            }
        }
    }
}

impl Event {
    /// The WeCom `Event` name.
    pub fn name(&self) -> &str {
        match self {
            Event::EnterAgent => "enter_agent",
            Event::Click { .. } => "click",
            Event::View { .. } => "view",
            Event::TemplateCard { .. } => "template_card_event",
            Event::Subscribe => "subscribe",
            Event::Unsubscribe => "unsubscribe",
            Event::Other(name) => name,
        }
    }
}

fn parse_event(doc: &FlatXml) -> Result<Event> {
    let name = required(doc, "Event")?;
    // WeChat Official Accounts send the same events in capitals (`CLICK`, `VIEW`).
    Ok(match name.to_ascii_lowercase().as_str() {
        "enter_agent" => Event::EnterAgent,
        "click" => Event::Click {
            key: required(doc, "EventKey")?.to_owned(),
        },
        "view" => Event::View {
            url: required(doc, "EventKey")?.to_owned(),
        },
        "template_card_event" => Event::TemplateCard {
            event_key: required(doc, "EventKey")?.to_owned(),
            task_id: required(doc, "TaskId")?.to_owned(),
            card_type: optional(doc, "CardType"),
            response_code: optional(doc, "ResponseCode"),
            selected_items: selected_items(doc)?,
        },
        "subscribe" => Event::Subscribe,
        "unsubscribe" => Event::Unsubscribe,
        _ => Event::Other(name.to_owned()),
    })
}

/// `SelectedItems/SelectedItem*/{QuestionKey, OptionIds/OptionId*}`; none when absent.
fn selected_items(doc: &FlatXml) -> Result<Vec<SelectedItem>> {
    let Some(items) = doc.tree("SelectedItems") else {
        return Ok(Vec::new());
    };
    items
        .children_named("SelectedItem")
        .map(|item| {
            let question_key = item
                .child("QuestionKey")
                .map(|q| q.text.clone())
                .filter(|q| !q.is_empty())
                .ok_or(Error::MissingField("SelectedItem/QuestionKey"))?;
            let option_ids = item
                .child("OptionIds")
                .map(|ids| {
                    ids.children_named("OptionId")
                        .map(|id| id.text.clone())
                        .collect()
                })
                .unwrap_or_default();
            Ok(SelectedItem {
                question_key,
                option_ids,
            })
        })
        .collect()
}

fn required<'a>(doc: &'a FlatXml, field: &'static str) -> Result<&'a str> {
    doc.get(field).ok_or(Error::MissingField(field))
}

fn optional(doc: &FlatXml, field: &str) -> Option<String> {
    doc.get(field).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn invalid(field: &'static str, reason: &str) -> Error {
    Error::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

/// Plaintext XML of a passive text reply (§1.10), ready for
/// `WecomCrypto::encrypt_reply`. `to_user` is the sender of the message being answered
/// and `from_corp` the CorpID. Any `]]>` in `content` is split across CDATA sections.
pub fn text_reply_xml(to_user: &str, from_corp: &str, create_time: i64, content: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(content.len() + to_user.len() + from_corp.len() + 160);
    out.push_str("<xml><ToUserName>");
    push_cdata(&mut out, to_user);
    out.push_str("</ToUserName><FromUserName>");
    push_cdata(&mut out, from_corp);
    let _ = write!(out, "</FromUserName><CreateTime>{create_time}</CreateTime>");
    out.push_str("<MsgType><![CDATA[text]]></MsgType><Content>");
    push_cdata(&mut out, content);
    out.push_str("</Content></xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sample_without_cdata() {
        let msg = Message::parse("<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>").unwrap();
        assert_eq!(msg.from, "ChenJiaShun");
        assert_eq!(msg.agent_id, Some(1_000_002));
        assert_eq!(
            msg.body,
            MessageBody::Text {
                content: "你好".into(),
                msg_id: "1456453720".into(),
                chat_id: None
            }
        );
        assert_eq!(msg.dedup_key(), "msg:1456453720");
    }

    #[test]
    fn template_card_event() {
        let msg = Message::parse("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1700000500</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[approve]]></EventKey><TaskId><![CDATA[job-7]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc1]]></ResponseCode><AgentID>1000002</AgentID></xml>").unwrap();
        assert_eq!(
            msg.body,
            MessageBody::Event(Event::TemplateCard {
                event_key: "approve".into(),
                task_id: "job-7".into(),
                card_type: Some("button_interaction".into()),
                response_code: Some("rc1".into()),
                selected_items: Vec::new(),
            })
        );
        assert!(msg.dedup_key().starts_with("card:1700000500:"));
    }

    fn click(key: &str, code: &str, selected: &str) -> Message {
        Message::parse(&format!("<xml><ToUserName>ww1</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1700000500</CreateTime><MsgType>event</MsgType><Event>template_card_event</Event><EventKey>{key}</EventKey><TaskId>t1</TaskId><CardType>vote_interaction</CardType><ResponseCode>{code}</ResponseCode>{selected}</xml>")).unwrap()
    }

    #[test]
    fn card_clicks_dedup_on_what_was_clicked() {
        let ack = click("ack", "rc1", "");
        assert_eq!(ack.dedup_key(), click("ack", "rc1", "").dedup_key());
        assert_ne!(ack.dedup_key(), click("silence", "rc2", "").dedup_key());
        assert_ne!(ack.dedup_key(), click("ack", "rc2", "").dedup_key());
        let long = click(&"k".repeat(1024), "rc1", "");
        assert!(long.dedup_key().len() < 64, "{}", long.dedup_key());
    }

    #[test]
    fn selected_items_several_options() {
        let msg = click("submit", "rc1", "<SelectedItems><SelectedItem><QuestionKey><![CDATA[hosts]]></QuestionKey><OptionIds><OptionId>web-01</OptionId><OptionId><![CDATA[web-02]]></OptionId></OptionIds></SelectedItem><SelectedItem><QuestionKey>when</QuestionKey><OptionIds><OptionId>now</OptionId></OptionIds></SelectedItem></SelectedItems>");
        let MessageBody::Event(Event::TemplateCard { selected_items, .. }) = msg.body else {
            panic!("not a card event: {:?}", msg.body)
        };
        assert_eq!(
            selected_items,
            vec![
                SelectedItem {
                    question_key: "hosts".into(),
                    option_ids: vec!["web-01".into(), "web-02".into()]
                },
                SelectedItem {
                    question_key: "when".into(),
                    option_ids: vec!["now".into()]
                },
            ]
        );
        let bad = Message::parse("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>template_card_event</Event><EventKey>k</EventKey><TaskId>t</TaskId><SelectedItems><SelectedItem><OptionIds/></SelectedItem></SelectedItems></xml>").unwrap_err();
        assert!(bad.to_string().contains("QuestionKey"), "{bad}");
    }

    #[test]
    fn other_types_and_events() {
        let base = |inner: &str| {
            format!("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>{inner}</xml>")
        };
        let image = Message::parse(&base("<MsgType>image</MsgType><MsgId>9</MsgId>")).unwrap();
        assert_eq!(
            image.body,
            MessageBody::Other {
                msg_type: "image".into(),
                msg_id: Some("9".into())
            }
        );
        let loc = Message::parse(&base("<MsgType>event</MsgType><Event>LOCATION</Event>")).unwrap();
        assert_eq!(
            loc.body,
            MessageBody::Event(Event::Other("LOCATION".into()))
        );
        let view = Message::parse(&base(
            "<MsgType>event</MsgType><Event>view</Event><EventKey>https://x/</EventKey>",
        ))
        .unwrap();
        assert_eq!(
            view.body,
            MessageBody::Event(Event::View {
                url: "https://x/".into()
            })
        );
        let sub =
            Message::parse(&base("<MsgType>event</MsgType><Event>subscribe</Event>")).unwrap();
        assert_eq!(sub.body, MessageBody::Event(Event::Subscribe));
        let chat = Message::parse(&base(
            "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId><ChatId>grp</ChatId>",
        ))
        .unwrap();
        assert!(matches!(chat.body, MessageBody::Text { chat_id: Some(ref c), .. } if c == "grp"));
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            ("<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event></xml>", "ToUserName"),
            ("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>", "CreateTime"),
            ("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>", "Content"),
            ("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>click</Event></xml>", "EventKey"),
            ("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime></xml>", "MsgType"),
        ];
        for (xml, field) in cases {
            let err = Message::parse(xml).unwrap_err();
            assert!(matches!(err, Error::MissingField(f) if f == field), "{err}");
            assert!(err.to_string().contains(field));
            assert_eq!(err.code(), Some(-40002));
        }
        let err = Message::parse("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>").unwrap_err();
        assert!(err.to_string().contains("CreateTime"));
        assert!(matches!(Message::parse("not xml"), Err(Error::ParseXml(_))));
    }

    #[test]
    fn reply_escapes_cdata_terminator() {
        let xml = text_reply_xml("zhangsan", "wxcorp", 1_700_000_400, "a]]>b");
        assert!(xml.contains("<Content><![CDATA[a]]]]><![CDATA[>b]]></Content>"));
        let doc = FlatXml::parse(&xml).unwrap();
        assert_eq!(doc.get("Content"), Some("a]]>b"));
        assert_eq!(doc.get("ToUserName"), Some("zhangsan"));
    }
}
