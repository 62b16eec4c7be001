//! The one callback pipeline: verify → decode → de-duplicate → hand off → passive or
//! late reply, in this order for every channel.

use super::codec::{Answer, Ask, Asker, ChannelCodec, Deadline, Turn};
use crate::error::{bad, unavailable, CallbackError};
use crate::handoff::{hand_off, Handoff, Late};
use crate::query::{fresh, signed};
use opsbot_engine::{Incoming, ReplySink};
use std::sync::Arc;

/// GET: the URL check.
pub(crate) async fn verify<C: ChannelCodec>(
    codec: &C,
    name: &str,
    raw_query: &str,
) -> Result<String, CallbackError> {
    let endpoint = codec.endpoint(name)?;
    let s = signed(raw_query, C::SIGNATURE)?;
    let echostr = s
        .rest
        .get("echostr")
        .ok_or_else(|| bad("missing query parameter echostr"))?;
    codec.check_echostr(echostr)?;
    fresh(&s.timestamp, codec.timestamp_window())?;
    let echo = codec.verify_url(&endpoint, &s, echostr)?;
    if let Some(key) = codec.url_check_once(&s) {
        if !first_time(codec, &endpoint, &key).await? {
            return Err(bad(
                "this signed query (signature, timestamp, nonce) was already used; \
                 WeChat signs every URL check afresh",
            ));
        }
    }
    Ok(echo)
}

/// POST: one message or event.
pub(crate) async fn receive<C: ChannelCodec>(
    codec: &C,
    name: &str,
    raw_query: &str,
    body: &str,
) -> Result<Answer, CallbackError> {
    codec.arrived();
    let endpoint = codec.endpoint(name)?;
    let s = signed(raw_query, C::SIGNATURE)?;
    fresh(&s.timestamp, codec.timestamp_window())?;
    let opened = codec.open(&endpoint, &s, body)?;
    if let Some(key) = &opened.single_use {
        if !first_time(codec, &endpoint, key).await? {
            return Ok(Answer::Nothing);
        }
    }
    let msg = codec.decode(&endpoint, &opened.plaintext)?;
    let turn = codec.turn(&endpoint, &msg);
    let dedup = match &turn {
        Turn::Resume(_) => false,
        Turn::Ask(_) => !C::RECORDS_ASKS,
        Turn::Reply(_) | Turn::Nothing | Turn::Click(_) => true,
    };
    // Marked before it runs: the platform's retries (and replays within the timestamp
    // window) find it and get "nothing", so nothing runs twice.
    if dedup && !first_time(codec, &endpoint, &C::dedup_key(&msg)).await? {
        return Ok(Answer::Nothing);
    }
    let reply = match turn {
        Turn::Reply(reply) => Some(reply),
        Turn::Nothing => None,
        Turn::Resume(id) => codec.resume(&endpoint, &id).await?,
        Turn::Ask(ask) => codec.converse(&endpoint, &msg, ask).await?,
        Turn::Click(click) => codec.click(&endpoint, &msg, click).await?,
    };
    Ok(match reply {
        Some(reply) => Answer::Reply(codec.encode(&endpoint, &s, &msg, reply)),
        None => Answer::Nothing,
    })
}

/// Records `key` for this endpoint; `false` when it was already seen.
async fn first_time<C: ChannelCodec>(
    codec: &C,
    endpoint: &C::Endpoint,
    key: &str,
) -> Result<bool, CallbackError> {
    let channel = C::channel(endpoint);
    let fresh = codec
        .message_ids()
        .mark_processed(channel, key)
        .await
        .map_err(unavailable)?;
    if !fresh {
        tracing::debug!(%channel, %key, "duplicate callback ignored");
    }
    Ok(fresh)
}

/// [`ChannelCodec::converse`] for a [`Deadline`] channel: the engine runs in a task of
/// its own; what it answers within the ack budget is the passive reply, anything later
/// goes by the courier. If the engine is slow the callback still answers in time.
pub(crate) async fn within_deadline<C: Deadline>(
    codec: &C,
    endpoint: &C::Endpoint,
    msg: &C::Message,
    ask: Ask,
) -> Result<Option<C::Reply>, CallbackError> {
    let (user, courier) = match codec.asker(endpoint, msg, &ask).await? {
        Asker::User(user, courier) => (user, courier),
        Asker::Refused(reply) => return Ok(Some(reply)),
    };
    let channel = C::channel(endpoint);
    let incoming = Incoming {
        channel: channel.to_string(),
        user,
        chat: ask.chat,
        text: ask.text,
        assume_yes: false,
    };
    let jobs: Arc<dyn ReplySink> = courier.clone();
    let late: Arc<dyn Late> = courier.clone();
    match hand_off(codec.engine(), incoming, jobs, late, codec.ack_budget()).await {
        Handoff::InTime(response) => Ok(codec.in_time(&courier, response)),
        Handoff::Lost => {
            tracing::error!(%channel, "the engine task ended without a response");
            Ok(codec.lost(&courier))
        }
        Handoff::Late => {
            tracing::warn!(%channel, "engine slower than the ack budget; the reply follows by the courier");
            Ok(None)
        }
    }
}
