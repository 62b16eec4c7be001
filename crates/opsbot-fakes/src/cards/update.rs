//! `POST /cgi-bin/message/update_template_card` (CARDS.md §4.2): a one-time response
//! code of the app's card changes the copies of some or all recipients.
//!
//! Checks in this order: token (as every API), `agentid` present and the token's app,
//! exactly one of `button` / `template_card`, the code (unknown → `response_code
//! invalid`, issued for another app's card → 42015, spent → `response_code used`, older
//! than 72 h → `response_code expired`), whom to update, then the change itself (a new
//! card is checked like a sent one; its task_id must be the code's task: 42016 when no
//! such task exists in the app).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::validate::check_card;
use super::{CardUpdateRecord, CODE_LIFETIME};
use crate::{
    authorize, check_agent, intake, loose_int, ok, parse_body, reject, wecom, Params, Reject,
    Shared,
};
use opsbot_wecom::clock::Clock;

const MAX_USERS: usize = 1000;
const MAX_PARTIES: usize = 100;
const MAX_TAGS: usize = 100;

pub(crate) async fn update_template_card(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "message/update_template_card";
    if let Some(response) = intake(&shared, ENDPOINT).await {
        return response;
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    let issued = match authorize(&shared, &mut state, ENDPOINT, &params, peer.ip()) {
        Ok(issued) => issued,
        Err(reject) => return reject.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    if let Err(reject) = check_agent(&body, issued.agent_id) {
        return reject.into_response();
    }
    let agent_id = issued.agent_id;
    let change = match (body.get("button"), body.get("template_card")) {
        (Some(button), None) => Change::Button(button),
        (None, Some(card)) => Change::Card(card),
        _ => return wecom(40058, "exactly one of button and template_card is required"),
    };

    let code = body
        .get("response_code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(issued_code) = state.cards.codes.get(&code).cloned() else {
        return state
            .cards
            .code_refusal("response_code invalid")
            .into_response();
    };
    if issued_code.agent_id != agent_id {
        return wecom(
            42015,
            "the app that updates the card is not the app that sent it",
        );
    }
    if issued_code.used {
        return state
            .cards
            .code_refusal("response_code used")
            .into_response();
    }
    if now.saturating_sub(issued_code.issued_at) >= CODE_LIFETIME {
        return state
            .cards
            .code_refusal("response_code expired")
            .into_response();
    }
    let task_key = (agent_id, issued_code.task_id.clone());
    let Some(task) = state.cards.tasks.get(&task_key) else {
        return wecom(42016, "task_id not exist");
    };
    let users = match addressed(&body, &task.recipients) {
        Ok(users) => users,
        Err(reject) => return reject.into_response(),
    };
    let apply = match change.check(agent_id, &issued_code.task_id, &state) {
        Ok(apply) => apply,
        Err(reject) => return reject.into_response(),
    };

    if let Some(code) = state.cards.codes.get_mut(&code) {
        code.used = true;
    }
    if let Some(task) = state.cards.tasks.get_mut(&task_key) {
        for user in &users {
            if let Some(view) = task.views.get_mut(user) {
                apply.to(view);
            }
        }
    }
    state.cards.updates.push(CardUpdateRecord {
        agent_id,
        task_id: issued_code.task_id,
        response_code: Some(code),
        atall: atall(&body),
        users,
        body: Value::Object(body),
        at: now,
    });
    ok(Map::new())
}

enum Change<'a> {
    Button(&'a Value),
    Card(&'a Value),
}

/// A checked change, ready to apply to a member's copy.
enum Apply {
    ReplaceName(String),
    Card(Value),
}

impl Apply {
    fn to(&self, view: &mut Value) {
        match self {
            Apply::ReplaceName(name) => view["replace_text"] = Value::String(name.clone()),
            Apply::Card(card) => *view = card.clone(),
        }
    }
}

impl Change<'_> {
    fn check(
        &self,
        agent_id: i64,
        task_id: &str,
        state: &crate::FakeState,
    ) -> Result<Apply, Reject> {
        match self {
            Change::Button(button) => button
                .get("replace_name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|n| Apply::ReplaceName(n.to_owned()))
                .ok_or_else(|| reject(40058, "invalid button: replace_name missing")),
            Change::Card(card) => {
                let object = card
                    .as_object()
                    .ok_or_else(|| reject(40058, "invalid template_card: must be an object"))?;
                let facts = check_card(object)?;
                if let Some(new_task) = &facts.task_id {
                    if new_task != task_id {
                        let known = state
                            .cards
                            .tasks
                            .contains_key(&(agent_id, new_task.clone()));
                        return Err(if known {
                            reject(
                                40058,
                                "invalid template_card: task_id is not the task of the response_code",
                            )
                        } else {
                            reject(42016, "task_id not exist")
                        });
                    }
                }
                Ok(Apply::Card((*card).clone()))
            }
        }
    }
}

fn atall(body: &Map<String, Value>) -> bool {
    loose_int(body.get("atall")) == Some(1)
}

/// Whose copies the update reaches: every recipient for `atall`, else the listed
/// members who received the card (parties and tags have no members in the fake).
fn addressed(body: &Map<String, Value>, recipients: &[String]) -> Result<Vec<String>, Reject> {
    let list = |name: &str, max: usize| -> Result<Vec<Value>, Reject> {
        match body.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= max => Ok(items.clone()),
            Some(Value::Array(_)) => Err(reject(40058, &format!("{name} exceeds {max}"))),
            Some(_) => Err(reject(40058, &format!("{name} must be an array"))),
        }
    };
    let userids = list("userids", MAX_USERS)?;
    let parties = list("partyids", MAX_PARTIES)?;
    let tags = list("tagids", MAX_TAGS)?;
    if atall(body) {
        return Ok(recipients.to_vec());
    }
    if userids.is_empty() && parties.is_empty() && tags.is_empty() {
        return Err(reject(
            40058,
            "no one to update: set atall or userids/partyids/tagids",
        ));
    }
    let mut users = Vec::new();
    for id in &userids {
        let user = id
            .as_str()
            .ok_or_else(|| reject(40058, "userids must be strings"))?
            .to_lowercase();
        if recipients.contains(&user) && !users.contains(&user) {
            users.push(user);
        }
    }
    Ok(users)
}
