//! The hard limits of a template card (CARDS.md §2.1 and §2.2), checked before any
//! send so that a card WeCom would refuse never costs a round trip or an outbox retry.
//! Each refusal names the field as a JSON path (`button_list[2].key`).

use std::collections::HashSet;

use super::{Button, CardType, SelectOption, TemplateCard};
use crate::error::{Error, Result};

/// At most this many buttons in `button_list`.
pub const MAX_BUTTONS: usize = 6;
/// A button or submit key is at most this many bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// A `task_id` is at most this many bytes.
pub const MAX_TASK_ID_BYTES: usize = 128;
const MAX_OPTION_ID_BYTES: usize = 128;
const MAX_ROWS: usize = 6;
const MAX_JUMPS: usize = 3;
const MAX_SELECTION_OPTIONS: usize = 10;
const MAX_CHECKBOX_OPTIONS: usize = 20;
const MAX_SELECTORS: usize = 3;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidCard {
        field: field.into(),
        reason: reason.into(),
    }
}

fn present(value: Option<&String>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether `task_id` is 1–128 bytes of `[0-9A-Za-z_@-]`.
pub(crate) fn check_task_id(task_id: &str) -> Result<()> {
    if task_id.is_empty() || task_id.len() > MAX_TASK_ID_BYTES {
        return Err(invalid(
            "task_id",
            format!(
                "must be 1 to {MAX_TASK_ID_BYTES} bytes, is {}",
                task_id.len()
            ),
        ));
    }
    if let Some(bad) = task_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@')))
    {
        return Err(invalid(
            "task_id",
            format!("{bad:?} is not one of 0-9 A-Z a-z _ - @"),
        ));
    }
    Ok(())
}

impl TemplateCard {
    /// Check the fields this card's type requires and every hard limit; the error names
    /// the offending field.
    pub fn validate(&self) -> Result<()> {
        self.check_required()?;
        if let Some(task_id) = &self.task_id {
            check_task_id(task_id)?;
        }
        if let Some(color) = self.source.as_ref().and_then(|s| s.desc_color) {
            if color > 3 {
                return Err(invalid("source.desc_color", "must be 0 to 3"));
            }
        }
        self.check_rows()?;
        self.check_jumps()?;
        self.check_card_action()?;
        self.check_buttons()?;
        self.check_questions()
    }

    fn has_title(&self) -> bool {
        present(self.main_title.as_ref().and_then(|t| t.title.as_ref()))
    }

    fn check_required(&self) -> Result<()> {
        let title_or_sub = || {
            if self.has_title() || present(self.sub_title_text.as_ref()) {
                Ok(())
            } else {
                Err(invalid(
                    "main_title.title",
                    "a card of this type needs main_title.title or sub_title_text",
                ))
            }
        };
        let title = || {
            if self.has_title() {
                Ok(())
            } else {
                Err(invalid("main_title.title", "required for this card type"))
            }
        };
        let task = || match &self.task_id {
            Some(_) => Ok(()),
            None => Err(invalid("task_id", "required for interactive cards")),
        };
        let action = || match &self.card_action {
            Some(_) => Ok(()),
            None => Err(invalid("card_action", "required for text and news cards")),
        };
        let submit = || match &self.submit_button {
            Some(_) => Ok(()),
            None => Err(invalid("submit_button", "required for this card type")),
        };
        match self.card_type {
            CardType::TextNotice => {
                title_or_sub()?;
                action()
            }
            CardType::NewsNotice => {
                title()?;
                if self.card_image.as_ref().is_none_or(|i| i.url.is_empty()) {
                    return Err(invalid("card_image", "required for news cards"));
                }
                action()
            }
            CardType::ButtonInteraction => {
                title_or_sub()?;
                task()?;
                if self.button_list.is_empty() {
                    return Err(invalid("button_list", "needs 1 to 6 buttons"));
                }
                Ok(())
            }
            CardType::VoteInteraction => {
                title()?;
                task()?;
                if self.checkbox.is_none() {
                    return Err(invalid("checkbox", "required for vote cards"));
                }
                submit()
            }
            CardType::MultipleInteraction => {
                title()?;
                task()?;
                if self.select_list.is_empty() {
                    return Err(invalid("select_list", "needs 1 to 3 selectors"));
                }
                submit()
            }
        }
    }

    fn check_rows(&self) -> Result<()> {
        if self.horizontal_content_list.len() > MAX_ROWS {
            return Err(invalid(
                "horizontal_content_list",
                format!(
                    "has {} rows, at most {MAX_ROWS} are allowed",
                    self.horizontal_content_list.len()
                ),
            ));
        }
        for (i, row) in self.horizontal_content_list.iter().enumerate() {
            let at = |f: &str| format!("horizontal_content_list[{i}].{f}");
            if row.keyname.is_empty() {
                return Err(invalid(at("keyname"), "is empty"));
            }
            match row.kind.unwrap_or(0) {
                0 | 2 => {}
                1 if present(row.url.as_ref()) => {}
                1 => return Err(invalid(at("url"), "required for a link row (type 1)")),
                3 if present(row.userid.as_ref()) => {}
                3 => return Err(invalid(at("userid"), "required for a member row (type 3)")),
                _ => return Err(invalid(at("type"), "must be 0 to 3")),
            }
        }
        Ok(())
    }

    fn check_jumps(&self) -> Result<()> {
        if self.jump_list.len() > MAX_JUMPS {
            return Err(invalid(
                "jump_list",
                format!(
                    "has {} entries, at most {MAX_JUMPS} are allowed",
                    self.jump_list.len()
                ),
            ));
        }
        for (i, jump) in self.jump_list.iter().enumerate() {
            let at = |f: &str| format!("jump_list[{i}].{f}");
            if jump.title.is_empty() {
                return Err(invalid(at("title"), "is empty"));
            }
            match jump.kind.unwrap_or(0) {
                0 => {}
                1 if present(jump.url.as_ref()) => {}
                1 => return Err(invalid(at("url"), "required for a link (type 1)")),
                2 if present(jump.appid.as_ref()) => {}
                2 => return Err(invalid(at("appid"), "required for a mini-program (type 2)")),
                _ => return Err(invalid(at("type"), "must be 0 to 2")),
            }
        }
        Ok(())
    }

    fn check_card_action(&self) -> Result<()> {
        let Some(action) = &self.card_action else {
            return Ok(());
        };
        let notice = matches!(self.card_type, CardType::TextNotice | CardType::NewsNotice);
        match action.kind {
            0 if !notice => Ok(()),
            0 => Err(invalid(
                "card_action.type",
                "text and news cards need 1 (url) or 2 (mini-program)",
            )),
            1 if present(action.url.as_ref()) => Ok(()),
            1 => Err(invalid("card_action.url", "required for type 1")),
            2 if present(action.appid.as_ref()) => Ok(()),
            2 => Err(invalid("card_action.appid", "required for type 2")),
            _ => Err(invalid("card_action.type", "must be 0 to 2")),
        }
    }

    fn check_buttons(&self) -> Result<()> {
        if self.button_list.len() > MAX_BUTTONS {
            return Err(invalid(
                "button_list",
                format!(
                    "has {} buttons, at most {MAX_BUTTONS} are allowed",
                    self.button_list.len()
                ),
            ));
        }
        let mut keys = HashSet::new();
        for (i, button) in self.button_list.iter().enumerate() {
            check_button(i, button, &mut keys)?;
        }
        if let Some(submit) = &self.submit_button {
            if submit.text.is_empty() {
                return Err(invalid("submit_button.text", "is empty"));
            }
            check_key("submit_button.key", &submit.key, &mut keys)?;
        }
        Ok(())
    }

    fn check_questions(&self) -> Result<()> {
        let mut questions = HashSet::new();
        if let Some(selection) = &self.button_selection {
            check_question("button_selection", &selection.question_key, &mut questions)?;
            check_options(
                "button_selection",
                &selection.option_list,
                MAX_SELECTION_OPTIONS,
                selection.selected_id.as_deref(),
            )?;
        }
        if let Some(checkbox) = &self.checkbox {
            check_question("checkbox", &checkbox.question_key, &mut questions)?;
            let n = checkbox.option_list.len();
            if !(1..=MAX_CHECKBOX_OPTIONS).contains(&n) {
                return Err(invalid(
                    "checkbox.option_list",
                    format!("has {n} options, 1 to {MAX_CHECKBOX_OPTIONS} are allowed"),
                ));
            }
            let ids: Vec<&str> = checkbox.option_list.iter().map(|o| o.id.as_str()).collect();
            check_option_ids("checkbox", &ids)?;
            if checkbox.mode.unwrap_or(0) > 1 {
                return Err(invalid(
                    "checkbox.mode",
                    "must be 0 (single) or 1 (multiple)",
                ));
            }
        }
        if self.select_list.len() > MAX_SELECTORS {
            return Err(invalid(
                "select_list",
                format!(
                    "has {} selectors, at most {MAX_SELECTORS} are allowed",
                    self.select_list.len()
                ),
            ));
        }
        for (i, selector) in self.select_list.iter().enumerate() {
            let at = format!("select_list[{i}]");
            check_question(&at, &selector.question_key, &mut questions)?;
            check_options(
                &at,
                &selector.option_list,
                MAX_SELECTION_OPTIONS,
                selector.selected_id.as_deref(),
            )?;
        }
        Ok(())
    }
}

fn check_button<'a>(i: usize, button: &'a Button, keys: &mut HashSet<&'a str>) -> Result<()> {
    let at = |f: &str| format!("button_list[{i}].{f}");
    if button.text.is_empty() {
        return Err(invalid(at("text"), "is empty"));
    }
    if let Some(style) = button.style {
        if !(1..=4).contains(&style) {
            return Err(invalid(at("style"), "must be 1 to 4"));
        }
    }
    match button.kind.unwrap_or(0) {
        0 => match &button.key {
            Some(key) => check_key(&at("key"), key, keys),
            None => Err(invalid(
                at("key"),
                "required for a callback button (type 0)",
            )),
        },
        1 if present(button.url.as_ref()) => Ok(()),
        1 => Err(invalid(at("url"), "required for a link button (type 1)")),
        _ => Err(invalid(at("type"), "must be 0 (callback) or 1 (url)")),
    }
}

fn check_key<'a>(field: &str, key: &'a str, keys: &mut HashSet<&'a str>) -> Result<()> {
    if key.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(
            field,
            format!(
                "is {} bytes, at most {MAX_KEY_BYTES} are allowed",
                key.len()
            ),
        ));
    }
    if !keys.insert(key) {
        return Err(invalid(field, "repeats another key of the card"));
    }
    Ok(())
}

fn check_question<'a>(at: &str, key: &'a str, seen: &mut HashSet<&'a str>) -> Result<()> {
    let field = format!("{at}.question_key");
    if key.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if !seen.insert(key) {
        return Err(invalid(field, "repeats another question of the card"));
    }
    Ok(())
}

fn check_options(
    at: &str,
    options: &[SelectOption],
    max: usize,
    selected: Option<&str>,
) -> Result<()> {
    if !(1..=max).contains(&options.len()) {
        return Err(invalid(
            format!("{at}.option_list"),
            format!("has {} options, 1 to {max} are allowed", options.len()),
        ));
    }
    let ids: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
    check_option_ids(at, &ids)?;
    if let Some(selected) = selected {
        if !ids.contains(&selected) {
            return Err(invalid(
                format!("{at}.selected_id"),
                "is not the id of one of its options",
            ));
        }
    }
    Ok(())
}

fn check_option_ids(at: &str, ids: &[&str]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("{at}.option_list[{i}].id");
        if id.is_empty() || id.len() > MAX_OPTION_ID_BYTES {
            return Err(invalid(
                field,
                format!("must be 1 to {MAX_OPTION_ID_BYTES} bytes"),
            ));
        }
        if !seen.insert(*id) {
            return Err(invalid(field, "repeats another option id"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{
        CardAction, Checkbox, CheckboxOption, HorizontalContent, Jump, Selector, SubmitButton,
        Title,
    };

    fn alert_card() -> TemplateCard {
        TemplateCard {
            main_title: Some(Title::new("[P1] HighCPU web-01", None)),
            task_id: Some("al42-5f3a9c0d".into()),
            button_list: vec![
                Button::callback("确认", 1, "ack.al42"),
                Button::callback("静默", 2, "sil.al42"),
            ],
            ..TemplateCard::new(CardType::ButtonInteraction)
        }
    }

    fn field_of(card: &TemplateCard) -> String {
        match card.validate() {
            Err(Error::InvalidCard { field, .. }) => field,
            other => panic!("expected an invalid card, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_card_passes() {
        alert_card().validate().unwrap();
        let vote = TemplateCard {
            main_title: Some(Title::new("发布 web 1.4?", None)),
            task_id: Some("dp7@approve_1".into()),
            checkbox: Some(Checkbox {
                question_key: "decision".into(),
                option_list: vec![
                    CheckboxOption {
                        id: "approve".into(),
                        text: "批准".into(),
                        is_checked: None,
                    },
                    CheckboxOption {
                        id: "reject".into(),
                        text: "拒绝".into(),
                        is_checked: None,
                    },
                ],
                mode: Some(0),
                disable: None,
            }),
            submit_button: Some(SubmitButton {
                text: "提交".into(),
                key: "submit.dp7".into(),
            }),
            ..TemplateCard::new(CardType::VoteInteraction)
        };
        vote.validate().unwrap();
    }

    #[test]
    fn required_fields_per_type_are_named() {
        let mut card = alert_card();
        card.task_id = None;
        assert_eq!(field_of(&card), "task_id");
        let mut card = alert_card();
        card.main_title = None;
        assert_eq!(field_of(&card), "main_title.title");
        card.sub_title_text = Some("CPU 97%".into());
        card.validate().unwrap();
        let mut card = alert_card();
        card.button_list.clear();
        assert_eq!(field_of(&card), "button_list");
        let text = TemplateCard {
            main_title: Some(Title::new("t", None)),
            ..TemplateCard::new(CardType::TextNotice)
        };
        assert_eq!(field_of(&text), "card_action");
        let vote = TemplateCard {
            main_title: Some(Title::new("t", None)),
            task_id: Some("v1".into()),
            ..TemplateCard::new(CardType::VoteInteraction)
        };
        assert_eq!(field_of(&vote), "checkbox");
        let multiple = TemplateCard {
            main_title: Some(Title::new("t", None)),
            task_id: Some("m1".into()),
            select_list: vec![Selector {
                question_key: "q".into(),
                option_list: vec![SelectOption::new("a", "A")],
                ..Selector::default()
            }],
            ..TemplateCard::new(CardType::MultipleInteraction)
        };
        assert_eq!(field_of(&multiple), "submit_button");
        let news = TemplateCard {
            main_title: Some(Title::new("t", None)),
            card_action: Some(CardAction::url("https://x/")),
            ..TemplateCard::new(CardType::NewsNotice)
        };
        assert_eq!(field_of(&news), "card_image");
    }

    #[test]
    fn task_id_charset_and_length() {
        for good in ["a", "A-z_0@9", &"x".repeat(128)] {
            check_task_id(good).unwrap();
        }
        for bad in ["", "a b", "任务", "a.b", "a/b", &"x".repeat(129)] {
            let err = check_task_id(bad).unwrap_err();
            assert!(err.to_string().contains("task_id"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn button_limits() {
        let mut card = alert_card();
        card.button_list = (0..7)
            .map(|i| Button::callback(format!("b{i}"), 1, format!("k{i}")))
            .collect();
        assert_eq!(field_of(&card), "button_list");
        card.button_list.truncate(6);
        card.validate().unwrap();
        card.button_list[5].key = Some("k0".into());
        assert_eq!(field_of(&card), "button_list[5].key");
        card.button_list[5].key = Some("k".repeat(1025));
        assert_eq!(field_of(&card), "button_list[5].key");
        card.button_list[5].key = Some("k".repeat(1024));
        card.validate().unwrap();
        card.button_list[5].key = None;
        assert_eq!(field_of(&card), "button_list[5].key");
        card.button_list[5] = Button::link("runbook", 2, "https://r/");
        card.validate().unwrap();
        card.button_list[5].url = None;
        assert_eq!(field_of(&card), "button_list[5].url");
        card.button_list[5] = Button::callback("x", 5, "k5");
        assert_eq!(field_of(&card), "button_list[5].style");
    }

    #[test]
    fn rows_jumps_and_options() {
        let mut card = alert_card();
        card.horizontal_content_list = vec![HorizontalContent::text("k", "v"); 7];
        assert_eq!(field_of(&card), "horizontal_content_list");
        card.horizontal_content_list = vec![HorizontalContent {
            kind: Some(3),
            ..HorizontalContent::text("负责人", "lisi")
        }];
        assert_eq!(field_of(&card), "horizontal_content_list[0].userid");
        card.horizontal_content_list.clear();
        card.jump_list = vec![
            Jump {
                title: "j".into(),
                ..Jump::default()
            };
            4
        ];
        assert_eq!(field_of(&card), "jump_list");
        card.jump_list.clear();
        card.button_selection = Some(crate::card::ButtonSelection {
            question_key: "host".into(),
            title: None,
            option_list: (0..11)
                .map(|i| SelectOption::new(format!("h{i}"), "h"))
                .collect(),
            selected_id: None,
        });
        assert_eq!(field_of(&card), "button_selection.option_list");
        if let Some(selection) = card.button_selection.as_mut() {
            selection.option_list.truncate(2);
            selection.selected_id = Some("nope".into());
        }
        assert_eq!(field_of(&card), "button_selection.selected_id");
        if let Some(selection) = card.button_selection.as_mut() {
            selection.selected_id = Some("h1".into());
            selection.option_list[1].id = "h0".into();
        }
        assert_eq!(field_of(&card), "button_selection.option_list[1].id");
    }
}
