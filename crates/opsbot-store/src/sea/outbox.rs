//! The outbox: messages for outside services queued durably, claimed by one sender at
//! a time under a lease, then marked sent, retried later or declared dead.
//!
//! Claiming is safe across tasks and processes on every backend because each item is
//! taken by a conditional `UPDATE` that only matches while the item is unclaimed (or
//! its lease ran out): of several claimers racing on one row, the database lets exactly
//! one update it; the others see zero rows affected and skip it.

use super::conn::Conn;
use super::entity::outbox;
use super::errors::{Db, During};
use super::pool::now;
use crate::{NewOutbox, OutboxItem, OutboxQuery, OutboxState, Result};
use sea_orm::sea_query::{Alias, Expr, Func, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use std::time::Duration;

/// Queues one item; `conn` may be a transaction (the alert gateway queues a group's
/// messages in the same transaction that closes the group).
pub(crate) async fn push<C: ConnectionTrait>(conn: &C, db: &Db, item: &NewOutbox) -> Result<i64> {
    let at = now();
    let row = outbox::ActiveModel {
        id: NotSet,
        channel: Set(item.channel.clone()),
        target: Set(item.target.clone()),
        body: Set(item.body.clone()),
        state: Set(OutboxState::Pending.as_str().into()),
        attempts: Set(0),
        next_attempt_ms: Set(at.timestamp_millis()),
        claimed_by: Set(None),
        claim_until_ms: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    Ok(outbox::Entity::insert(row)
        .exec(conn)
        .await
        .during(db, "queueing an outbox message")?
        .last_insert_id)
}

pub(crate) async fn claim(
    conn: &Conn,
    db: &Db,
    channel_prefix: &str,
    owner: &str,
    lease: Duration,
    limit: u64,
) -> Result<Vec<OutboxItem>> {
    const ACTION: &str = "claiming outbox messages";
    if limit == 0 {
        return Ok(Vec::new());
    }
    let now_ms = now().timestamp_millis();
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let until_ms = now_ms.saturating_add(lease_ms);
    // Free to claim: pending and not under a live claim. Repeated in every UPDATE so
    // the database re-checks it against the row as it is when the update runs.
    let unclaimed = || {
        Condition::all()
            .add(outbox::Column::State.eq(OutboxState::Pending.as_str()))
            .add(
                Condition::any()
                    .add(outbox::Column::ClaimUntilMs.is_null())
                    .add(outbox::Column::ClaimUntilMs.lt(now_ms)),
            )
    };

    // On SQLite the transaction holds the write lock from its start (see `Conn`), so a
    // concurrent process waits its turn instead of failing when our read is followed
    // by a write. PostgreSQL and MySQL need no such lock: their row locks serialise
    // the UPDATEs below.
    let tx = conn.begin().await.during(db, ACTION)?;
    let candidates: Vec<i64> = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Id)
        .filter(unclaimed())
        .filter(outbox::Column::NextAttemptMs.lte(now_ms))
        .apply_if(channel_starts_with(channel_prefix), QueryFilter::filter)
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(&tx)
        .await
        .during(db, ACTION)?;
    // One row at a time, in id order (so racing claimers lock rows in the same order
    // and cannot deadlock); a row another claimer took since we read it affects none.
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let updated = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimedBy, Expr::value(owner))
            .col_expr(outbox::Column::ClaimUntilMs, Expr::value(until_ms))
            .filter(outbox::Column::Id.eq(id))
            .filter(unclaimed())
            .exec(&tx)
            .await
            .during(db, ACTION)?;
        if updated.rows_affected == 1 {
            claimed.push(id);
        }
    }
    let rows = if claimed.is_empty() {
        Vec::new()
    } else {
        outbox::Entity::find()
            .filter(outbox::Column::Id.is_in(claimed))
            .order_by_asc(outbox::Column::Id)
            .all(&tx)
            .await
            .during(db, ACTION)?
    };
    tx.commit().await.during(db, ACTION)?;
    rows.into_iter().map(|m| item(db, m)).collect()
}

/// Marks an item delivered and releases its claim, whatever its state: a delivery
/// reported late (after the lease ran out) still happened.
pub(crate) async fn sent(conn: &Conn, db: &Db, id: i64) -> Result<()> {
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::State,
            Expr::value(OutboxState::Sent.as_str()),
        )
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now()))
        .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(outbox::Column::ClaimUntilMs, Expr::value(None::<i64>))
        .filter(outbox::Column::Id.eq(id))
        .exec(conn)
        .await
        .during(db, "marking an outbox message sent")?;
    Ok(())
}

/// Counts a failed attempt and makes the item due again at `next_attempt_at`. Only a
/// pending item changes, so a late failure report cannot revive a delivered one.
pub(crate) async fn retry(
    conn: &Conn,
    db: &Db,
    id: i64,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    error: &str,
) -> Result<()> {
    failed(
        conn,
        db,
        id,
        error,
        Some(next_attempt_at.timestamp_millis()),
        "scheduling an outbox message for retry",
    )
    .await
}

/// Counts the last attempt and moves the item to the dead-letter list. Only a pending
/// item changes, for the same reason as [`retry`].
pub(crate) async fn dead(conn: &Conn, db: &Db, id: i64, error: &str) -> Result<()> {
    failed(
        conn,
        db,
        id,
        error,
        None,
        "moving an outbox message to the dead letters",
    )
    .await
}

/// A failed attempt: retried at `retry_at_ms`, or dead when there is none.
async fn failed(
    conn: &Conn,
    db: &Db,
    id: i64,
    error: &str,
    retry_at_ms: Option<i64>,
    action: &str,
) -> Result<()> {
    let mut update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now()))
        .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(outbox::Column::ClaimUntilMs, Expr::value(None::<i64>));
    update = match retry_at_ms {
        Some(at) => update.col_expr(outbox::Column::NextAttemptMs, Expr::value(at)),
        None => update.col_expr(
            outbox::Column::State,
            Expr::value(OutboxState::Dead.as_str()),
        ),
    };
    update
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
        .exec(conn)
        .await
        .during(db, action)?;
    Ok(())
}

pub(crate) async fn list(conn: &Conn, db: &Db, query: &OutboxQuery) -> Result<Vec<OutboxItem>> {
    let mut q = outbox::Entity::find().order_by_desc(outbox::Column::Id);
    if let Some(state) = query.state {
        q = q.filter(outbox::Column::State.eq(state.as_str()));
    }
    if let Some(prefix) = query
        .channel_prefix
        .as_deref()
        .and_then(channel_starts_with)
    {
        q = q.filter(prefix);
    }
    if query.limit > 0 {
        q = q.limit(query.limit);
    }
    q.all(conn)
        .await
        .during(db, "listing outbox messages")?
        .into_iter()
        .map(|m| item(db, m))
        .collect()
}

pub(crate) async fn depth(conn: &Conn, db: &Db) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    outbox::Entity::find()
        .filter(outbox::Column::State.eq(OutboxState::Pending.as_str()))
        .count(conn)
        .await
        .during(db, "counting pending outbox messages")
}

/// `channel` starts with `prefix`, compared exactly: the leading characters must equal
/// the prefix; `None` for the empty prefix, which every channel has. Neither `LIKE`
/// (wildcards to escape; ASCII-case-insensitive on SQLite) nor a range (ordered by
/// PostgreSQL's collation, which need not be code point order) is exact on all three
/// backends; `SUBSTR` counts characters on each.
fn channel_starts_with(prefix: &str) -> Option<SimpleExpr> {
    if prefix.is_empty() {
        return None;
    }
    // i32, not i64: PostgreSQL has no substr(text, int, bigint).
    let chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    let head = Func::cust(Alias::new("SUBSTR"))
        .arg(Expr::col(outbox::Column::Channel))
        .arg(1i32)
        .arg(chars);
    Some(Expr::expr(head).eq(prefix))
}

fn item(db: &Db, m: outbox::Model) -> Result<OutboxItem> {
    let next_attempt_at =
        chrono::DateTime::from_timestamp_millis(m.next_attempt_ms).ok_or_else(|| {
            db.corrupt(
                "outbox message",
                format!(
                    "message {}: next attempt {} ms is out of range",
                    m.id, m.next_attempt_ms
                ),
            )
        })?;
    Ok(OutboxItem {
        id: m.id,
        state: OutboxState::parse(&m.state).ok_or_else(|| {
            db.corrupt(
                "outbox message",
                format!("message {}: unknown state {:?}", m.id, m.state),
            )
        })?,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        channel: m.channel,
        target: m.target,
        body: m.body,
        next_attempt_at,
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
