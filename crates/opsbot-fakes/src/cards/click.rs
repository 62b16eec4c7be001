//! Clicks on a card as WeCom delivers them to the app's callback URL (CARDS.md §3), and
//! opsbot's passive answer read back and applied to the clicker's copy (§4.1).
//!
//! A click is refused, as the WeCom client would not let it happen, when the member did
//! not receive the card, when the key is not a callback button (or submit button) of the
//! card as the member sees it now (greyed and replaced buttons cannot be pressed), or
//! when the answers to the card's questions do not fit them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::xml::{self, cdata};
use super::{mint_code, CardUpdateRecord};
use crate::{build_callback_post, push_callback, CallbackOutcome, CallbackPost, FakeWecom};
use opsbot_wecom::clock::Clock;

/// The decrypted `template_card_event` of an app (the XML of CARDS.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppClickEvent {
    /// `ToUserName`: the CorpID.
    pub corp_id: String,
    /// `FromUserName`: who clicked.
    pub user: String,
    /// `CreateTime`.
    pub create_time: i64,
    /// `EventKey`: the key of the button pressed.
    pub event_key: String,
    /// `TaskId`.
    pub task_id: String,
    /// `CardType`.
    pub card_type: String,
    /// `ResponseCode`: a fresh one-time code for `update_template_card`.
    pub response_code: String,
    /// `AgentID`.
    pub agent_id: i64,
    /// `SelectedItems`: (question key, option ids) per question of the card.
    pub selected_items: Vec<(String, Vec<String>)>,
}

impl AppClickEvent {
    /// The plaintext XML, laid out as WeCom's sample and the wechatpy vectors.
    pub fn to_xml(&self) -> String {
        let mut x = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey>{}</EventKey><TaskId>{}</TaskId><CardType>{}</CardType><ResponseCode>{}</ResponseCode><AgentID>{}</AgentID>",
            cdata(&self.corp_id),
            cdata(&self.user),
            self.create_time,
            cdata(&self.event_key),
            cdata(&self.task_id),
            cdata(&self.card_type),
            cdata(&self.response_code),
            self.agent_id,
        );
        if !self.selected_items.is_empty() {
            x.push_str("<SelectedItems>");
            for (question, options) in &self.selected_items {
                x.push_str("<SelectedItem><QuestionKey>");
                x.push_str(&cdata(question));
                x.push_str("</QuestionKey><OptionIds>");
                for option in options {
                    x.push_str("<OptionId>");
                    x.push_str(&cdata(option));
                    x.push_str("</OptionId>");
                }
                x.push_str("</OptionIds></SelectedItem>");
            }
            x.push_str("</SelectedItems>");
        }
        x.push_str("</xml>");
        x
    }
}

/// A click ready to be posted to the app's callback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardClick {
    /// What the event says.
    pub event: AppClickEvent,
    /// The encrypted request: query (signature, timestamp, nonce) and body.
    pub post: CallbackPost,
}

impl CardClick {
    /// POST it to opsbot's callback URL.
    pub async fn push(&self, callback_url: &str) -> Result<CallbackOutcome, reqwest::Error> {
        push_callback(callback_url, &self.post).await
    }
}

/// What opsbot answered to a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassiveReply {
    /// An empty body: nothing changes now.
    Nothing,
    /// A text message to the clicker.
    Text(String),
    /// `update_button`: the clicker's buttons now read this, greyed (already applied).
    UpdateButton(String),
}

impl FakeWecom {
    /// Member `user` presses the callback button `event_key` of card `task_id` sent by
    /// app `agent_id`. Questions on the card are answered with their defaults (the
    /// preselected option, the ticked boxes). The event's `CreateTime` follows the
    /// fake's clock; the request is signed with the real time, which the receiver checks
    /// against its own clock. The fresh `ResponseCode` is registered as a one-time code
    /// for the task.
    pub fn click(
        &self,
        agent_id: i64,
        user: &str,
        task_id: &str,
        event_key: &str,
    ) -> Result<CardClick, String> {
        self.click_with(agent_id, user, task_id, event_key, &[])
    }

    /// [`FakeWecom::click`] with answers: `(question_key, option ids)` per question of a
    /// vote, multiple-choice or `button_selection` card; unanswered questions keep their
    /// defaults.
    pub fn click_with(
        &self,
        agent_id: i64,
        user: &str,
        task_id: &str,
        event_key: &str,
        answers: &[(&str, &[&str])],
    ) -> Result<CardClick, String> {
        let now = self.shared.clock.now();
        let create_time = self.unix_now();
        let mut state = self.state();
        let crypto = state
            .cards
            .callbacks
            .get(&agent_id)
            .cloned()
            .ok_or_else(|| format!("app {agent_id} has no callback; call set_callback first"))?;
        let user = user.to_lowercase();
        let view = state
            .cards
            .tasks
            .get(&(agent_id, task_id.to_owned()))
            .ok_or_else(|| format!("app {agent_id} never sent task {task_id:?}"))?
            .views
            .get(&user)
            .cloned()
            .ok_or_else(|| format!("{user} did not receive task {task_id:?}"))?;
        if let Some(text) = view.get("replace_text").and_then(Value::as_str) {
            return Err(format!(
                "{user}'s copy of {task_id:?} shows {text:?} in place of its buttons; nothing can be pressed"
            ));
        }
        let keys = callback_keys(&view);
        if !keys.contains(&event_key) {
            return Err(format!(
                "{event_key:?} is not a callback button of {task_id:?} as {user} sees it (keys: {keys:?})"
            ));
        }
        let selected_items = answer(&view, answers)?;
        let response_code = mint_code(&mut state, agent_id, task_id, now);
        let event = AppClickEvent {
            corp_id: crypto.receive_id().to_owned(),
            user,
            create_time,
            event_key: event_key.to_owned(),
            task_id: task_id.to_owned(),
            card_type: view["card_type"].as_str().unwrap_or_default().to_owned(),
            response_code,
            agent_id,
            selected_items,
        };
        let id = state.next_id();
        let random16: [u8; 16] = *format!("cardclick{id:07}")
            .as_bytes()
            .first_chunk()
            .ok_or("a 16-byte random prefix")?;
        // The request is signed now, in real time: the receiver checks the timestamp
        // against its own clock, which the fake's clock may have been advanced past.
        let post = build_callback_post(
            &crypto,
            agent_id,
            &event.to_xml(),
            &random16,
            &real_unix_now().to_string(),
            &format!("{}", 1_000_000 + id),
        );
        let click = CardClick { event, post };
        state.cards.clicks.push(click.clone());
        Ok(click)
    }

    /// Read opsbot's answer to `click` as WeCom would: verify and decrypt it with the
    /// app's callback crypto; an `update_button` is applied to the clicker's copy only.
    /// `Err` says what WeCom would have refused.
    pub fn apply_passive_reply(
        &self,
        click: &CardClick,
        body: &str,
    ) -> Result<PassiveReply, String> {
        if body.trim().is_empty() {
            return Ok(PassiveReply::Nothing);
        }
        let event = &click.event;
        let crypto = self
            .state()
            .cards
            .callbacks
            .get(&event.agent_id)
            .cloned()
            .ok_or("the app has no callback")?;
        let plain = crate::decrypt_mp_reply(&crypto, body)?;
        let reply = xml::parse(&plain)?;
        if !reply
            .text_of("ToUserName")
            .is_some_and(|to| to.eq_ignore_ascii_case(&event.user))
        {
            return Err(format!(
                "the reply is not addressed to the clicker: {plain}"
            ));
        }
        if reply.text_of("FromUserName") != Some(event.corp_id.as_str()) {
            return Err(format!(
                "the reply's FromUserName is not the CorpID: {plain}"
            ));
        }
        match reply.text_of("MsgType") {
            Some("text") => Ok(PassiveReply::Text(
                reply.text_of("Content").unwrap_or_default().to_owned(),
            )),
            Some("update_button") => {
                let name = reply
                    .child("Button")
                    .and_then(|b| b.text_of("ReplaceName"))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| format!("update_button without Button/ReplaceName: {plain}"))?
                    .to_owned();
                self.replace_buttons(event, &name)?;
                Ok(PassiveReply::UpdateButton(name))
            }
            Some("update_template_card") => Err(
                "the fake does not model the XML update_template_card reply (CARDS.md §9.5); \
                 use update_button or the API"
                    .into(),
            ),
            other => Err(format!("unexpected passive reply type {other:?}: {plain}")),
        }
    }

    fn replace_buttons(&self, event: &AppClickEvent, name: &str) -> Result<(), String> {
        let at: Duration = self.shared.clock.now();
        let mut state = self.state();
        let view = state
            .cards
            .tasks
            .get_mut(&(event.agent_id, event.task_id.clone()))
            .and_then(|task| task.views.get_mut(&event.user))
            .ok_or("the clicked card is gone")?;
        view["replace_text"] = json!(name);
        state.cards.updates.push(CardUpdateRecord {
            agent_id: event.agent_id,
            task_id: event.task_id.clone(),
            response_code: None,
            atall: false,
            users: vec![event.user.clone()],
            body: json!({ "button": { "replace_name": name } }),
            at,
        });
        Ok(())
    }
}

fn real_unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The keys that send an event: callback buttons and the submit button.
fn callback_keys(card: &Value) -> Vec<&str> {
    let buttons = card["button_list"].as_array().map(Vec::as_slice);
    let mut keys: Vec<&str> = buttons
        .unwrap_or_default()
        .iter()
        .filter(|b| b["type"].as_i64().unwrap_or(0) == 0)
        .filter_map(|b| b["key"].as_str())
        .collect();
    keys.extend(card["submit_button"]["key"].as_str());
    keys
}

/// A card's questions: (key, option ids, preselected ids, several allowed).
fn questions(card: &Value) -> Vec<(String, Vec<String>, Vec<String>, bool)> {
    let ids = |q: &Value| -> Vec<String> {
        q["option_list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect()
    };
    let single = |q: &Value| {
        let options = ids(q);
        let chosen = q["selected_id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| options.first().cloned());
        (
            q["question_key"].as_str().unwrap_or_default().to_owned(),
            options,
            chosen.into_iter().collect(),
            false,
        )
    };
    let mut out = Vec::new();
    if card["button_selection"].is_object() {
        out.push(single(&card["button_selection"]));
    }
    let checkbox = &card["checkbox"];
    if checkbox.is_object() {
        let ticked = checkbox["option_list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|o| o["is_checked"].as_bool() == Some(true))
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        out.push((
            checkbox["question_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ids(checkbox),
            ticked,
            checkbox["mode"].as_i64() == Some(1),
        ));
    }
    for selector in card["select_list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push(single(selector));
    }
    out
}

/// The `SelectedItems` of a click: the given answers, defaults for the rest.
fn answer(card: &Value, answers: &[(&str, &[&str])]) -> Result<Vec<(String, Vec<String>)>, String> {
    let questions = questions(card);
    if let Some((unknown, _)) = answers
        .iter()
        .find(|(key, _)| !questions.iter().any(|q| q.0 == *key))
    {
        return Err(format!("the card has no question {unknown:?}"));
    }
    questions
        .into_iter()
        .map(|(key, options, default, multiple)| {
            let chosen: Vec<String> = match answers.iter().find(|(k, _)| *k == key) {
                Some((_, ids)) => ids.iter().map(|id| (*id).to_owned()).collect(),
                None => default,
            };
            if let Some(bad) = chosen.iter().find(|id| !options.contains(id)) {
                return Err(format!("{bad:?} is not an option of question {key:?}"));
            }
            match (chosen.len(), multiple) {
                (0, _) => Err(format!("question {key:?} needs an answer")),
                (1, _) | (_, true) => Ok((key, chosen)),
                (_, false) => Err(format!("question {key:?} takes one answer")),
            }
        })
        .collect()
}
