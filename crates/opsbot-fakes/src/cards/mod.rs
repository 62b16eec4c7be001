//! Template cards in the stand-in WeCom (CARDS.md §8): cards sent by `message/send` and
//! `appchat/send` are checked ([`validate`]) and remembered per app and task, with each
//! recipient's copy as that member now sees it; `message/update_template_card`
//! ([`update`]) spends one-time response codes; clicks are produced as WeCom would post
//! them to the app's callback URL, and opsbot's passive replies are read back and
//! applied ([`click`]); [`html`] draws a card for documentation screenshots.
//!
//! What the fake decides where WeCom's behaviour is unknown (CARDS.md §9):
//! - A response code that is unknown, already used or older than 72 h is refused with
//!   errcode 40058 (changeable with [`FakeWecom::set_card_code_errcode`], so a client
//!   cannot come to depend on it) and the distinct errmsgs `response_code invalid`,
//!   `response_code used` and `response_code expired`. WeCom's real code is not
//!   documented anywhere.
//! - A code is spent only by an update the fake accepts; a refused update leaves it.
//! - `appchat/send` takes cards too and answers a `response_code` for the interactive
//!   types, as `message/send` does; the recipients are the chat's members.
//! - A button update (`button.replace_name`, API or passive `update_button`) is kept in
//!   the member's copy as the card's `replace_text`: the buttons become one grey,
//!   unclickable bar with that text, which is how WeCom shows both.
//! - The passive XML `update_template_card` reply is not modelled (its element layout
//!   for interactive cards is unverified, §9.5); reading one is an error.

pub(crate) mod click;
pub(crate) mod html;
pub(crate) mod update;
pub(crate) mod validate;
mod xml;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::{reject, FakeState, FakeWecom, Reject};
use opsbot_wecom::clock::Clock;
use opsbot_wecom::crypto::WecomCrypto;
use validate::{CardFacts, TASK_ID_ERRMSG};

pub use click::{AppClickEvent, CardClick, PassiveReply};

/// How long a response code can be used.
const CODE_LIFETIME: Duration = Duration::from_secs(72 * 3600);

/// A card the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SentCard {
    /// `message/send` or `appchat/send`.
    pub endpoint: String,
    /// The app that sent it.
    pub agent_id: i64,
    /// Its `task_id`, if it has one.
    pub task_id: Option<String>,
    /// The `template_card` object as sent.
    pub card: Value,
    /// The members who received it (lower-case userids).
    pub recipients: Vec<String>,
    /// The `response_code` answered, for the interactive types.
    pub response_code: Option<String>,
    /// Fake-clock time of the send.
    pub at: Duration,
}

/// An accepted change of a card: an `update_template_card` call or a passive reply.
#[derive(Debug, Clone, PartialEq)]
pub struct CardUpdateRecord {
    /// The app whose card changed.
    pub agent_id: i64,
    /// The card's task.
    pub task_id: String,
    /// The code the API call spent; `None` for a passive reply to a click.
    pub response_code: Option<String>,
    /// `atall: 1`.
    pub atall: bool,
    /// Whose copies changed (lower-case userids).
    pub users: Vec<String>,
    /// The request body, or for a passive reply `{"button":{"replace_name":…}}`.
    pub body: Value,
    /// Fake-clock time.
    pub at: Duration,
}

/// One task (card) of one app.
#[derive(Debug, Clone)]
struct Task {
    recipients: Vec<String>,
    /// Each recipient's copy as they see it now.
    views: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
struct IssuedCardCode {
    agent_id: i64,
    task_id: String,
    issued_at: Duration,
    used: bool,
}

/// The card part of the fake's state.
#[derive(Debug)]
pub(crate) struct CardState {
    sent: Vec<SentCard>,
    /// (agentid, task_id) → the task. Never removed: task ids are unique per app forever.
    tasks: HashMap<(i64, String), Task>,
    codes: HashMap<String, IssuedCardCode>,
    updates: Vec<CardUpdateRecord>,
    clicks: Vec<CardClick>,
    /// agentid → the crypto of the app's callback URL.
    callbacks: HashMap<i64, WecomCrypto>,
    code_errcode: i64,
    /// Unix time at fake-clock zero, for CreateTime.
    unix_at_zero: i64,
}

impl CardState {
    pub(crate) fn new() -> Self {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self {
            sent: Vec::new(),
            tasks: HashMap::new(),
            codes: HashMap::new(),
            updates: Vec::new(),
            clicks: Vec::new(),
            callbacks: HashMap::new(),
            code_errcode: 40058,
            unix_at_zero: unix_now,
        }
    }

    fn code_refusal(&self, errmsg: &str) -> Reject {
        reject(self.code_errcode, errmsg)
    }
}

/// The `template_card` of a `message/send` or `appchat/send` body, checked. `Ok(None)`
/// for any other message type.
pub(crate) fn check_send(
    state: &FakeState,
    agent_id: i64,
    body: &Map<String, Value>,
) -> Result<Option<CardFacts>, Reject> {
    if body.get("msgtype").and_then(Value::as_str) != Some("template_card") {
        return Ok(None);
    }
    let Some(card) = body.get("template_card").and_then(Value::as_object) else {
        return Err(reject(47001, "data format error"));
    };
    let facts = validate::check_card(card)?;
    if let Some(task_id) = &facts.task_id {
        if state.cards.tasks.contains_key(&(agent_id, task_id.clone())) {
            return Err(reject(42014, TASK_ID_ERRMSG));
        }
    }
    Ok(Some(facts))
}

/// Remember a card that was accepted and delivered to `recipients`; the response code
/// to answer, for the interactive types.
pub(crate) fn record_send(
    state: &mut FakeState,
    endpoint: &str,
    agent_id: i64,
    facts: CardFacts,
    card: Value,
    recipients: Vec<String>,
    now: Duration,
) -> Option<String> {
    let response_code = if facts.interactive() {
        facts
            .task_id
            .as_ref()
            .map(|task_id| mint_code(state, agent_id, task_id, now))
    } else {
        None
    };
    if let Some(task_id) = &facts.task_id {
        let views = recipients
            .iter()
            .map(|user| (user.clone(), card.clone()))
            .collect();
        state.cards.tasks.insert(
            (agent_id, task_id.clone()),
            Task {
                recipients: recipients.clone(),
                views,
            },
        );
    }
    state.cards.sent.push(SentCard {
        endpoint: endpoint.to_owned(),
        agent_id,
        task_id: facts.task_id,
        card,
        recipients,
        response_code: response_code.clone(),
        at: now,
    });
    response_code
}

/// A fresh one-time code for `task_id` of `agent_id`.
fn mint_code(state: &mut FakeState, agent_id: i64, task_id: &str, now: Duration) -> String {
    let code = format!("rc-{}", state.next_id());
    state.cards.codes.insert(
        code.clone(),
        IssuedCardCode {
            agent_id,
            task_id: task_id.to_owned(),
            issued_at: now,
            used: false,
        },
    );
    code
}

impl FakeWecom {
    /// The callback crypto (Token, EncodingAESKey, CorpID) of app `agent_id`, which
    /// [`FakeWecom::click`] encrypts with and passive replies are read with.
    pub fn set_callback(&self, agent_id: i64, crypto: WecomCrypto) {
        self.state().cards.callbacks.insert(agent_id, crypto);
    }

    /// The errcode for an unknown, used or expired response code (default 40058; WeCom's
    /// is undocumented).
    pub fn set_card_code_errcode(&self, errcode: i64) {
        self.state().cards.code_errcode = errcode;
    }

    /// Every card accepted by `message/send` and `appchat/send`, in order.
    pub fn cards_sent(&self) -> Vec<SentCard> {
        self.state().cards.sent.clone()
    }

    /// Every accepted card change (API updates and passive replies), in order.
    pub fn card_updates(&self) -> Vec<CardUpdateRecord> {
        self.state().cards.updates.clone()
    }

    /// Every click produced by [`FakeWecom::click`], in order.
    pub fn card_clicks(&self) -> Vec<CardClick> {
        self.state().cards.clicks.clone()
    }

    /// The card of `task_id` as member `user` sees it now: the card sent, then every
    /// update that reached this member's copy (a button update shows as `replace_text`).
    /// `None` if no app sent that task to the member. Task ids are unique per app; if
    /// two apps used the same one, use [`FakeWecom::card_as_seen_in`].
    pub fn card_as_seen(&self, task_id: &str, user: &str) -> Option<Value> {
        let state = self.state();
        let user = user.to_lowercase();
        state
            .cards
            .tasks
            .iter()
            .filter(|((_, task), _)| task == task_id)
            .find_map(|(_, task)| task.views.get(&user).cloned())
    }

    /// [`FakeWecom::card_as_seen`] for the task of one app.
    pub fn card_as_seen_in(&self, agent_id: i64, task_id: &str, user: &str) -> Option<Value> {
        let state = self.state();
        state
            .cards
            .tasks
            .get(&(agent_id, task_id.to_owned()))
            .and_then(|task| task.views.get(&user.to_lowercase()).cloned())
    }

    fn unix_now(&self) -> i64 {
        let since_zero = i64::try_from(self.shared.clock.now().as_secs()).unwrap_or(i64::MAX);
        self.state().cards.unix_at_zero.saturating_add(since_zero)
    }
}
