//! The platform-neutral card (`opsbot_core::card`) as WeCom's `button_interaction`
//! template card, for apps (`message/send`, `update_template_card`) and smart robots
//! (passive replies, `response_url`) alike. A button already done shows what was done
//! (`已由 lisi 执行 #42`) in the neutral style; it keeps its key, so a late tap on it is
//! answered with who acted rather than refused by WeCom.

use opsbot_core::card::{MAX_BUTTONS, MAX_CHOICES, MAX_FIELDS};
use opsbot_core::{Card, Selection};
use opsbot_wecom::card::{
    Button, ButtonSelection, CardType, HorizontalContent, SelectOption, Source, TemplateCard, Title,
};

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
        button_selection: card.selection.as_ref().and_then(button_selection),
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

/// The card's question as WeCom's drop-down (kept on a settled card: WeCom shows it
/// read-only once the button is done); `None` for a question without options, which
/// WeCom would refuse.
fn button_selection(s: &Selection) -> Option<ButtonSelection> {
    let option_list: Vec<SelectOption> = s
        .options
        .iter()
        .take(MAX_CHOICES)
        .map(|o| SelectOption::new(&o.id, &o.text))
        .collect();
    if option_list.is_empty() {
        return None;
    }
    // A preselection that is not shown would make WeCom refuse the card: the first
    // option is then preselected, as WeCom does without one.
    let selected_id = option_list
        .iter()
        .any(|o| o.id == s.selected)
        .then(|| s.selected.clone());
    Some(ButtonSelection {
        question_key: s.question.clone(),
        title: (!s.title.trim().is_empty()).then(|| s.title.clone()),
        option_list,
        selected_id,
    })
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
            selection: None,
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
    fn a_selection_is_a_button_selection_kept_once_settled() {
        use opsbot_core::{Choice, Selection};
        let mut c = card();
        c.selection = Some(Selection {
            question: "to".into(),
            title: "回滚到".into(),
            options: vec![
                Choice::new("6", "#6 · 3f2a1bc · 03-02 10:00"),
                Choice::new("5", "#5 · 9e8d7c6 · 03-01 18:30"),
            ],
            selected: "5".into(),
        });
        let wire = template_card(&c);
        wire.validate().unwrap();
        let v = wire.to_json();
        assert_eq!(
            v["button_selection"],
            serde_json::json!({
                "question_key": "to",
                "title": "回滚到",
                "option_list": [
                    {"id": "6", "text": "#6 · 3f2a1bc · 03-02 10:00"},
                    {"id": "5", "text": "#5 · 9e8d7c6 · 03-01 18:30"},
                ],
                "selected_id": "5",
            })
        );
        c.settle("ack", "已由 lisi 确认");
        assert_eq!(
            template_card(&c).to_json()["button_selection"],
            v["button_selection"]
        );
        // More than WeCom takes: the first ten; a preselection not among them is left
        // to WeCom's default (the first).
        if let Some(s) = c.selection.as_mut() {
            s.options = (0..12).map(|i| Choice::new(i.to_string(), "x")).collect();
            s.selected = "11".into();
        }
        let wire = template_card(&c);
        wire.validate().unwrap();
        let v = wire.to_json();
        assert_eq!(
            v["button_selection"]["option_list"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert!(v["button_selection"].get("selected_id").is_none());
        // No options, no drop-down; no selection, none either.
        if let Some(s) = c.selection.as_mut() {
            s.options.clear();
        }
        assert!(template_card(&c)
            .to_json()
            .get("button_selection")
            .is_none());
        c.selection = None;
        assert!(template_card(&c)
            .to_json()
            .get("button_selection")
            .is_none());
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
