//! The platform-neutral card (`opsbot_core::card`) as WeCom's `button_interaction`
//! template card, for apps (`message/send`, `update_template_card`) and smart robots
//! (passive replies, `response_url`) alike. A button already done shows what was done
//! (`已由 lisi 执行 #42`) in the neutral style; it keeps its key, so a late tap on it is
//! answered with who acted rather than refused by WeCom.

use opsbot_core::card::{MAX_BUTTONS, MAX_FIELDS};
use opsbot_core::Card;
use opsbot_wecom::card::{Button, CardType, HorizontalContent, Source, TemplateCard, Title};

/// `card` as WeCom's template card.
pub(crate) fn template_card(card: &Card) -> TemplateCard {
    let present = |s: &str| (!s.trim().is_empty()).then(|| s.to_string());
    TemplateCard {
        source: present(&card.source).map(|desc| Source {
            desc: Some(desc),
            ..Source::default()
        }),
        main_title: present(&card.title).map(|title| Title::new(title, present(&card.desc))),
        sub_title_text: present(&card.sub_title),
        horizontal_content_list: card
            .fields
            .iter()
            .take(MAX_FIELDS)
            .map(|f| HorizontalContent::text(&f.key, &f.value))
            .collect(),
        task_id: Some(card.task_id.clone()),
        button_list: card
            .buttons
            .iter()
            // A settled slot (批准 / 驳回, 静默 1 小时 / 今天) reads once, not once per
            // button.
            .enumerate()
            .filter(|(i, b)| {
                b.done.is_none()
                    || !card.buttons[..*i]
                        .iter()
                        .any(|e| e.slot == b.slot && e.done.is_some())
            })
            .map(|(_, b)| b)
            .take(MAX_BUTTONS)
            .map(|b| match &b.done {
                Some(done) => Button::callback(done, opsbot_core::Style::Neutral.wecom(), &b.key),
                None => Button::callback(&b.text, b.style.wecom(), &b.key),
            })
            .collect(),
        ..TemplateCard::new(CardType::ButtonInteraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsbot_core::{Action, CardKeys, Field, Style};

    fn card() -> Card {
        let keys = CardKeys::new([1; 32]);
        let b = keys.for_card("al42-abc", 2_000_000_000);
        Card {
            task_id: "al42-abc".into(),
            source: "opsbot 告警".into(),
            title: "[P1] HighCPU web-01".into(),
            desc: "firing since 10:02".into(),
            sub_title: "CPU 97% > 90% for 5m".into(),
            fields: vec![Field::new("实例", "web-01:9100")],
            buttons: vec![
                b.button(
                    "确认",
                    Style::Primary,
                    "ack",
                    "al42",
                    Action::run("确认:42"),
                ),
                b.button(
                    "扩容 +2",
                    Style::Danger,
                    "scale",
                    "al42",
                    Action::run("扩容:payments/api,+2"),
                ),
            ],
            text: "[P1] HighCPU web-01".into(),
            markdown: false,
            expires_at: 2_000_000_000,
        }
    }

    #[test]
    fn a_settled_slot_reads_once() {
        let mut c = card();
        let second = c.buttons[0].clone();
        c.buttons.insert(
            1,
            opsbot_core::Button {
                text: "驳回".into(),
                key: format!("{}x", second.key),
                ..second
            },
        );
        c.settle("ack", "已由 lisi 确认");
        let v = template_card(&c).to_json();
        let texts: Vec<&str> = v["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["已由 lisi 确认", "扩容 +2"]);
    }

    #[test]
    fn renders_a_valid_button_card() {
        let c = card();
        let wire = template_card(&c);
        wire.validate().unwrap();
        let v = wire.to_json();
        assert_eq!(v["card_type"], "button_interaction");
        assert_eq!(v["source"]["desc"], "opsbot 告警");
        assert_eq!(v["main_title"]["title"], "[P1] HighCPU web-01");
        assert_eq!(v["main_title"]["desc"], "firing since 10:02");
        assert_eq!(v["horizontal_content_list"][0]["keyname"], "实例");
        assert_eq!(v["task_id"], "al42-abc");
        assert_eq!(v["button_list"][0]["text"], "确认");
        assert_eq!(v["button_list"][0]["style"], 1);
        assert_eq!(v["button_list"][0]["key"], c.buttons[0].key.as_str());
        assert_eq!(v["button_list"][1]["style"], 4);
    }

    #[test]
    fn done_buttons_say_what_was_done() {
        let mut c = card();
        c.settle("ack", "已由 lisi 执行");
        let v = template_card(&c).to_json();
        assert_eq!(v["button_list"][0]["text"], "已由 lisi 执行");
        assert_eq!(v["button_list"][0]["style"], 3);
        assert_eq!(v["button_list"][1]["text"], "扩容 +2");
        // Empty parts are left out, not sent empty.
        c.desc.clear();
        c.sub_title.clear();
        c.source.clear();
        let v = template_card(&c).to_json();
        assert!(v.get("source").is_none() && v.get("sub_title_text").is_none());
        assert!(v["main_title"].get("desc").is_none());
    }
}
