//! WeCom's checks of a `template_card` object (CARDS.md §2.1–2.2), on the raw JSON as it
//! arrives. This is a reading of CARDS.md of its own, not a call of
//! `opsbot_wecom::card::TemplateCard::validate`: the stand-in must catch a card that
//! the client's model or checks get wrong, and JSON the model cannot even express.
//!
//! Codes: 42014 for a bad task_id (the caller adds "already used"), 42045 for a missing
//! or wrong `card_action` on text/news cards, 40058 naming the field for the rest.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::{reject, Reject};

pub(crate) const TASK_ID_ERRMSG: &str = "taskid has existed or empty or exceed max len";
const KEY_MAX_BYTES: usize = 1024;
const TASK_ID_MAX_BYTES: usize = 128;
const OPTION_ID_MAX_BYTES: usize = 128;

/// What the rest of the fake needs from a card that passed.
#[derive(Debug, Clone)]
pub(crate) struct CardFacts {
    pub(crate) card_type: String,
    pub(crate) task_id: Option<String>,
}

impl CardFacts {
    pub(crate) fn interactive(&self) -> bool {
        is_interactive(&self.card_type)
    }
}

pub(crate) fn is_interactive(card_type: &str) -> bool {
    matches!(
        card_type,
        "button_interaction" | "vote_interaction" | "multiple_interaction"
    )
}

fn structure(field: &str, reason: &str) -> Reject {
    reject(40058, &format!("invalid template_card: {field} {reason}"))
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int(object: &Map<String, Value>, name: &str, field: &str) -> Result<Option<i64>, Reject> {
    match object.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| structure(field, "must be an integer")),
    }
}

fn objects<'a>(
    card: &'a Map<String, Value>,
    name: &str,
) -> Result<Vec<&'a Map<String, Value>>, Reject> {
    match card.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_object()
                    .ok_or_else(|| structure(&format!("{name}[{i}]"), "must be an object"))
            })
            .collect(),
        Some(_) => Err(structure(name, "must be an array")),
    }
}

fn object<'a>(
    card: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, Reject> {
    match card.get(name) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(structure(name, "must be an object")),
    }
}

/// The task_id rule alone: 1–128 bytes of `[0-9A-Za-z_@-]`.
pub(crate) fn task_id_ok(task_id: &str) -> bool {
    !task_id.is_empty()
        && task_id.len() <= TASK_ID_MAX_BYTES
        && task_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
}

/// Check a card as `message/send` (or an update) receives it.
pub(crate) fn check_card(card: &Map<String, Value>) -> Result<CardFacts, Reject> {
    let card_type = match card.get("card_type").and_then(Value::as_str) {
        Some(
            t @ ("text_notice"
            | "news_notice"
            | "button_interaction"
            | "vote_interaction"
            | "multiple_interaction"),
        ) => t.to_owned(),
        _ => return Err(structure("card_type", "missing or unknown")),
    };
    let task_id = match card.get("task_id") {
        None => None,
        Some(Value::String(id)) if task_id_ok(id) => Some(id.clone()),
        Some(_) => return Err(reject(42014, TASK_ID_ERRMSG)),
    };
    if is_interactive(&card_type) && task_id.is_none() {
        return Err(reject(42014, TASK_ID_ERRMSG));
    }
    let main_title = object(card, "main_title")?;
    let has_title = main_title.and_then(|t| text(t, "title")).is_some();
    let has_sub = text(card, "sub_title_text").is_some();
    let notice = matches!(card_type.as_str(), "text_notice" | "news_notice");
    match card_type.as_str() {
        "text_notice" | "button_interaction" if !(has_title || has_sub) => {
            return Err(structure("main_title.title", "missing (or sub_title_text)"))
        }
        "news_notice" | "vote_interaction" | "multiple_interaction" if !has_title => {
            return Err(structure("main_title.title", "missing"))
        }
        _ => {}
    }
    if card_type == "news_notice" {
        let image = object(card, "card_image")?.and_then(|i| text(i, "url"));
        if image.is_none() && object(card, "image_text_area")?.is_none() {
            return Err(structure("card_image", "missing (or image_text_area)"));
        }
    }
    check_card_action(card, notice)?;
    if let Some(source) = object(card, "source")? {
        if int(source, "desc_color", "source.desc_color")?.is_some_and(|c| !(0..=3).contains(&c)) {
            return Err(structure("source.desc_color", "must be 0 to 3"));
        }
    }
    check_rows(card)?;
    let mut keys = HashSet::new();
    check_buttons(card, &card_type, &mut keys)?;
    check_questions(card, &card_type)?;
    if matches!(
        card_type.as_str(),
        "vote_interaction" | "multiple_interaction"
    ) {
        let submit =
            object(card, "submit_button")?.ok_or_else(|| structure("submit_button", "missing"))?;
        if text(submit, "text").is_none() {
            return Err(structure("submit_button.text", "missing"));
        }
        check_key(submit, "submit_button.key", &mut keys)?;
    }
    Ok(CardFacts { card_type, task_id })
}

fn check_card_action(card: &Map<String, Value>, notice: bool) -> Result<(), Reject> {
    let invalid = || reject(42045, "Template_Card.card_action 缺失或不合法");
    let Some(action) = object(card, "card_action")? else {
        return if notice { Err(invalid()) } else { Ok(()) };
    };
    match int(action, "type", "card_action.type")? {
        Some(1) if text(action, "url").is_some() => Ok(()),
        Some(2) if text(action, "appid").is_some() => Ok(()),
        Some(0) | None if !notice => Ok(()),
        _ if notice => Err(invalid()),
        _ => Err(structure("card_action", "type 1 needs url, type 2 appid")),
    }
}

fn check_rows(card: &Map<String, Value>) -> Result<(), Reject> {
    let rows = objects(card, "horizontal_content_list")?;
    if rows.len() > 6 {
        return Err(structure(
            "horizontal_content_list",
            "has more than 6 items",
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        let at = |f: &str| format!("horizontal_content_list[{i}].{f}");
        if text(row, "keyname").is_none() {
            return Err(structure(&at("keyname"), "missing"));
        }
        match int(row, "type", &at("type"))?.unwrap_or(0) {
            0 | 2 => {}
            1 if text(row, "url").is_some() => {}
            3 if text(row, "userid").is_some() => {}
            1 => return Err(structure(&at("url"), "missing")),
            3 => return Err(structure(&at("userid"), "missing")),
            _ => return Err(structure(&at("type"), "must be 0 to 3")),
        }
    }
    let jumps = objects(card, "jump_list")?;
    if jumps.len() > 3 {
        return Err(structure("jump_list", "has more than 3 items"));
    }
    for (i, jump) in jumps.iter().enumerate() {
        if text(jump, "title").is_none() {
            return Err(structure(&format!("jump_list[{i}].title"), "missing"));
        }
    }
    Ok(())
}

fn check_key<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    keys: &mut HashSet<&'a str>,
) -> Result<(), Reject> {
    let key = text(object, "key").ok_or_else(|| structure(field, "missing"))?;
    if key.len() > KEY_MAX_BYTES {
        return Err(structure(field, "exceeds 1024 bytes"));
    }
    if !keys.insert(key) {
        return Err(structure(field, "duplicated in the card"));
    }
    Ok(())
}

fn check_buttons<'a>(
    card: &'a Map<String, Value>,
    card_type: &str,
    keys: &mut HashSet<&'a str>,
) -> Result<(), Reject> {
    let buttons = objects(card, "button_list")?;
    if card_type == "button_interaction" && buttons.is_empty() {
        return Err(structure("button_list", "missing"));
    }
    if buttons.len() > 6 {
        return Err(structure("button_list", "has more than 6 buttons"));
    }
    for (i, button) in buttons.iter().enumerate() {
        let at = |f: &str| format!("button_list[{i}].{f}");
        if text(button, "text").is_none() {
            return Err(structure(&at("text"), "missing"));
        }
        if int(button, "style", &at("style"))?.is_some_and(|s| !(1..=4).contains(&s)) {
            return Err(structure(&at("style"), "must be 1 to 4"));
        }
        match int(button, "type", &at("type"))?.unwrap_or(0) {
            0 => check_key(button, &at("key"), keys)?,
            1 if text(button, "url").is_some() => {}
            1 => return Err(structure(&at("url"), "missing")),
            _ => return Err(structure(&at("type"), "must be 0 or 1")),
        }
    }
    Ok(())
}

/// One question's options: 1..=`max`, ids present, ≤ 128 bytes and unique.
fn check_options(question: &Map<String, Value>, at: &str, max: usize) -> Result<(), Reject> {
    if text(question, "question_key").is_none() {
        return Err(structure(&format!("{at}.question_key"), "missing"));
    }
    let options = objects(question, "option_list")?;
    if options.is_empty() || options.len() > max {
        return Err(structure(
            &format!("{at}.option_list"),
            &format!("must have 1 to {max} options"),
        ));
    }
    let mut ids = HashSet::new();
    for (i, option) in options.iter().enumerate() {
        let field = format!("{at}.option_list[{i}].id");
        let id = text(option, "id").ok_or_else(|| structure(&field, "missing"))?;
        if id.len() > OPTION_ID_MAX_BYTES || !ids.insert(id) {
            return Err(structure(&field, "too long or duplicated"));
        }
    }
    Ok(())
}

fn check_questions(card: &Map<String, Value>, card_type: &str) -> Result<(), Reject> {
    if let Some(selection) = object(card, "button_selection")? {
        check_options(selection, "button_selection", 10)?;
    }
    match (object(card, "checkbox")?, card_type) {
        (Some(checkbox), _) => {
            check_options(checkbox, "checkbox", 20)?;
            if int(checkbox, "mode", "checkbox.mode")?.is_some_and(|m| !(0..=1).contains(&m)) {
                return Err(structure("checkbox.mode", "must be 0 or 1"));
            }
        }
        (None, "vote_interaction") => return Err(structure("checkbox", "missing")),
        (None, _) => {}
    }
    let selectors = objects(card, "select_list")?;
    if card_type == "multiple_interaction" && selectors.is_empty() {
        return Err(structure("select_list", "missing"));
    }
    if selectors.len() > 3 {
        return Err(structure("select_list", "has more than 3 selectors"));
    }
    for (i, selector) in selectors.iter().enumerate() {
        check_options(selector, &format!("select_list[{i}]"), 10)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(card: Value) -> Result<CardFacts, Reject> {
        check_card(card.as_object().expect("an object"))
    }

    fn refusal(card: Value) -> (i64, String) {
        let r = check(card).expect_err("refused");
        (r.errcode, r.errmsg)
    }

    #[test]
    fn rules_and_codes() {
        let good = json!({"card_type": "button_interaction", "main_title": {"title": "t"},
            "task_id": "t-1", "button_list": [{"text": "ok", "key": "k"}]});
        assert_eq!(
            check(good.clone()).expect("valid").card_type,
            "button_interaction"
        );
        let mut no_task = good.clone();
        no_task["task_id"] = json!("bad id");
        assert_eq!(refusal(no_task), (42014, TASK_ID_ERRMSG.into()));
        let mut dup = good.clone();
        dup["button_list"] = json!([{"text": "a", "key": "k"}, {"text": "b", "key": "k"}]);
        let (code, msg) = refusal(dup);
        assert_eq!(code, 40058);
        assert!(msg.contains("button_list[1].key"), "{msg}");
        let text = json!({"card_type": "text_notice", "main_title": {"title": "t"}});
        assert_eq!(refusal(text).0, 42045);
        let vote = json!({"card_type": "vote_interaction", "main_title": {"title": "t"},
            "task_id": "v", "checkbox": {"question_key": "q", "option_list": [{"id": "a", "text": "A"}]}});
        assert!(refusal(vote).1.contains("submit_button"));
        let multiple = json!({"card_type": "multiple_interaction", "main_title": {"title": "t"},
            "task_id": "m", "submit_button": {"text": "go", "key": "s"},
            "select_list": [{"question_key": "q", "option_list": []}]});
        assert!(refusal(multiple).1.contains("select_list[0].option_list"));
    }
}
