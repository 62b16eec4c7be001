//! Smart-robot streams and reply windows. Each state change is a conditional `UPDATE`
//! (or an insert that the unique key decides), so of two instances racing on one row
//! exactly one wins on every backend.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::channels::{ChannelStore, NewStream, StreamOpened, StreamRecord, StreamState};
use crate::sea::errors::{is_duplicate, Db, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{bot_stream, reply_window};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, Set};
use std::collections::{BTreeSet, HashMap};

fn record(db: &Db, m: bot_stream::Model) -> Result<StreamRecord> {
    let state = StreamState::parse(&m.state)
        .ok_or_else(|| db.corrupt(&format!("state of stream {}", m.stream_id), &m.state))?;
    Ok(StreamRecord {
        channel: m.channel,
        stream_id: m.stream_id,
        msg_id: m.msg_id,
        asker: m.asker,
        chat: m.chat,
        response_url: m.response_url,
        content: m.content,
        state,
        job_id: m.job_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

impl SeaStore {
    async fn stream_by(
        &self,
        channel: &str,
        column: bot_stream::Column,
        value: &str,
        action: &str,
    ) -> Result<Option<StreamRecord>> {
        bot_stream::Entity::find()
            .filter(bot_stream::Column::Channel.eq(channel))
            .filter(column.eq(value))
            .one(&self.conn)
            .await
            .during(&self.db, action)?
            .map(|m| record(&self.db, m))
            .transpose()
    }
}

#[async_trait]
impl ChannelStore for SeaStore {
    async fn stream_open(&self, s: &NewStream) -> Result<StreamOpened> {
        const ACTION: &str = "opening a robot stream";
        let at = now();
        let row = bot_stream::ActiveModel {
            id: NotSet,
            channel: Set(s.channel.clone()),
            stream_id: Set(s.stream_id.clone()),
            msg_id: Set(s.msg_id.clone()),
            asker: Set(s.asker.clone()),
            chat: Set(s.chat.clone()),
            response_url: Set(s.response_url.clone()),
            content: Set(String::new()),
            state: Set(StreamState::Open.as_str().into()),
            job_id: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        };
        match bot_stream::Entity::insert(row)
            .exec_without_returning(&self.conn)
            .await
        {
            Ok(_) => Ok(StreamOpened::New(StreamRecord {
                channel: s.channel.clone(),
                stream_id: s.stream_id.clone(),
                msg_id: s.msg_id.clone(),
                asker: s.asker.clone(),
                chat: s.chat.clone(),
                response_url: s.response_url.clone(),
                content: String::new(),
                state: StreamState::Open,
                job_id: None,
                created_at: at,
                updated_at: at,
            })),
            Err(e) if is_duplicate(&e) => {
                let existing = self
                    .stream_by(&s.channel, bot_stream::Column::MsgId, &s.msg_id, ACTION)
                    .await?
                    .ok_or_else(|| {
                        // The other unique key: an id collision, not a retry.
                        self.db.corrupt(
                            &format!("stream id {}", s.stream_id),
                            "already used by another message",
                        )
                    })?;
                Ok(StreamOpened::Existing(existing))
            }
            Err(e) => Err(self.db.map(e, ACTION)),
        }
    }

    async fn stream_open_many(&self, streams: &[NewStream]) -> Result<Vec<StreamOpened>> {
        const ACTION: &str = "opening robot streams";
        if streams.len() == 1 {
            return Ok(vec![self.stream_open(&streams[0]).await?]);
        }
        let at = now();
        let tx = self.conn.begin().await.during(&self.db, ACTION)?;
        // On SQLite the transaction holds the write lock from its start (see `Conn`).
        let mut known: HashMap<(String, String), StreamRecord> = HashMap::new();
        let channels: BTreeSet<&str> = streams.iter().map(|s| s.channel.as_str()).collect();
        for channel in channels {
            let ids = streams
                .iter()
                .filter(|s| s.channel == channel)
                .map(|s| s.msg_id.clone());
            let rows = bot_stream::Entity::find()
                .filter(bot_stream::Column::Channel.eq(channel))
                .filter(bot_stream::Column::MsgId.is_in(ids))
                .all(&tx)
                .await
                .during(&self.db, ACTION)?;
            for m in rows {
                let r = record(&self.db, m)?;
                known.insert((r.channel.clone(), r.msg_id.clone()), r);
            }
        }
        let mut opened = Vec::with_capacity(streams.len());
        let mut rows = Vec::new();
        for s in streams {
            let key = (s.channel.clone(), s.msg_id.clone());
            if let Some(r) = known.get(&key) {
                opened.push(StreamOpened::Existing(r.clone()));
                continue;
            }
            let r = StreamRecord {
                channel: s.channel.clone(),
                stream_id: s.stream_id.clone(),
                msg_id: s.msg_id.clone(),
                asker: s.asker.clone(),
                chat: s.chat.clone(),
                response_url: s.response_url.clone(),
                content: String::new(),
                state: StreamState::Open,
                job_id: None,
                created_at: at,
                updated_at: at,
            };
            rows.push(bot_stream::ActiveModel {
                id: NotSet,
                channel: Set(r.channel.clone()),
                stream_id: Set(r.stream_id.clone()),
                msg_id: Set(r.msg_id.clone()),
                asker: Set(r.asker.clone()),
                chat: Set(r.chat.clone()),
                response_url: Set(r.response_url.clone()),
                content: Set(String::new()),
                state: Set(StreamState::Open.as_str().into()),
                job_id: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            });
            known.insert(key, r.clone());
            opened.push(StreamOpened::New(r));
        }
        if !rows.is_empty() {
            // A unique-key clash here (another instance opened one of them a moment
            // ago) fails the batch; the caller then opens them one by one.
            bot_stream::Entity::insert_many(rows)
                .exec_without_returning(&tx)
                .await
                .during(&self.db, ACTION)?;
        }
        tx.commit().await.during(&self.db, ACTION)?;
        Ok(opened)
    }

    async fn stream_get(&self, channel: &str, stream_id: &str) -> Result<Option<StreamRecord>> {
        self.stream_by(
            channel,
            bot_stream::Column::StreamId,
            stream_id,
            "reading a robot stream",
        )
        .await
    }

    async fn stream_fill(
        &self,
        channel: &str,
        stream_id: &str,
        content: &str,
        job_id: Option<i64>,
        done: bool,
    ) -> Result<bool> {
        let state = if done {
            StreamState::Done
        } else {
            StreamState::Open
        };
        let mut update = bot_stream::Entity::update_many()
            .col_expr(bot_stream::Column::Content, Expr::value(content))
            .col_expr(bot_stream::Column::State, Expr::value(state.as_str()))
            .col_expr(bot_stream::Column::UpdatedAt, Expr::value(now()));
        if let Some(job) = job_id {
            update = update.col_expr(bot_stream::Column::JobId, Expr::value(job));
        }
        let res = update
            .filter(bot_stream::Column::Channel.eq(channel))
            .filter(bot_stream::Column::StreamId.eq(stream_id))
            .filter(bot_stream::Column::State.eq(StreamState::Open.as_str()))
            .exec(&self.conn)
            .await
            .during(&self.db, "writing a robot stream")?;
        Ok(res.rows_affected == 1)
    }

    async fn stream_hand_over(
        &self,
        channel: &str,
        stream_id: &str,
        content: &str,
    ) -> Result<bool> {
        let res = bot_stream::Entity::update_many()
            .col_expr(bot_stream::Column::Content, Expr::value(content))
            .col_expr(
                bot_stream::Column::State,
                Expr::value(StreamState::HandedOver.as_str()),
            )
            .col_expr(bot_stream::Column::UpdatedAt, Expr::value(now()))
            .filter(bot_stream::Column::Channel.eq(channel))
            .filter(bot_stream::Column::StreamId.eq(stream_id))
            .filter(bot_stream::Column::State.eq(StreamState::Open.as_str()))
            .exec(&self.conn)
            .await
            .during(&self.db, "handing over a robot stream")?;
        Ok(res.rows_affected == 1)
    }

    async fn stream_purge(&self, before: DateTime<Utc>) -> Result<u64> {
        let res = bot_stream::Entity::delete_many()
            .filter(bot_stream::Column::CreatedAt.lt(before))
            .exec(&self.conn)
            .await
            .during(&self.db, "purging old robot streams")?;
        Ok(res.rows_affected)
    }

    async fn window_open(&self, channel: &str, target: &str) -> Result<u32> {
        const ACTION: &str = "opening a reply window";
        let at = now();
        // No transaction: the reset subtracts what was read, so a miss counted meanwhile
        // survives; a concurrent first insert makes ours a duplicate, and the second
        // round updates the row it made.
        for _ in 0..2 {
            let existing = reply_window::Entity::find()
                .filter(reply_window::Column::Channel.eq(channel))
                .filter(reply_window::Column::Target.eq(target))
                .one(&self.conn)
                .await
                .during(&self.db, ACTION)?;
            if let Some(row) = existing {
                reply_window::Entity::update_many()
                    .col_expr(reply_window::Column::OpenedAt, Expr::value(at))
                    .col_expr(reply_window::Column::Used, Expr::value(0))
                    .col_expr(
                        reply_window::Column::Missed,
                        Expr::col(reply_window::Column::Missed).sub(row.missed),
                    )
                    .filter(reply_window::Column::Id.eq(row.id))
                    .exec(&self.conn)
                    .await
                    .during(&self.db, ACTION)?;
                return Ok(u32::try_from(row.missed).unwrap_or(0));
            }
            let row = reply_window::ActiveModel {
                id: NotSet,
                channel: Set(channel.to_string()),
                target: Set(target.to_string()),
                opened_at: Set(at),
                used: Set(0),
                missed: Set(0),
            };
            match reply_window::Entity::insert(row)
                .exec_without_returning(&self.conn)
                .await
            {
                Ok(_) => return Ok(0),
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(self.db.map(e, ACTION)),
            }
        }
        Err(self.db.corrupt(
            &format!("reply window {channel} {target}"),
            "could not be opened",
        ))
    }

    async fn window_take(
        &self,
        channel: &str,
        target: &str,
        opened_after: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let res = reply_window::Entity::update_many()
            .col_expr(
                reply_window::Column::Used,
                Expr::col(reply_window::Column::Used).add(1),
            )
            .filter(reply_window::Column::Channel.eq(channel))
            .filter(reply_window::Column::Target.eq(target))
            .filter(reply_window::Column::OpenedAt.gte(opened_after))
            .filter(reply_window::Column::Used.lt(limit))
            .exec(&self.conn)
            .await
            .during(&self.db, "taking a reply from a window")?;
        Ok(res.rows_affected == 1)
    }

    async fn window_missed(&self, channel: &str, target: &str) -> Result<()> {
        reply_window::Entity::update_many()
            .col_expr(
                reply_window::Column::Missed,
                Expr::col(reply_window::Column::Missed).add(1),
            )
            .filter(reply_window::Column::Channel.eq(channel))
            .filter(reply_window::Column::Target.eq(target))
            .exec(&self.conn)
            .await
            .during(&self.db, "counting a missed reply")?;
        Ok(())
    }
}
