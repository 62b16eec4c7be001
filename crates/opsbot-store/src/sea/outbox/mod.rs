//! The outbox: messages for outside services queued durably, claimed by one sender at
//! a time under a lease, then marked sent, retried later or declared dead.
//!
//! Claiming is safe across tasks and processes on every backend because each item is
//! taken by a conditional `UPDATE` that only matches while the item is unclaimed (or
//! its lease ran out): of several claimers racing on one row, the database lets exactly
//! one update it; the others see zero rows affected and skip it. Every claim gets a
//! token of its own, and marking an item is conditional on that claim: a sender whose
//! lease ran out (it froze, or its store write was slow) and whose item was claimed by
//! another since cannot mark it.
//!
//! Items can also be *held* for a job: they wait, unclaimable, until the job is
//! interrupted (then the next claim releases them) or ends otherwise (then they are
//! dropped). The job's state decides, so whoever interrupts it, whenever, releases them.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::jobs::entity::job;
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::{NewOutbox, OutboxClaim, OutboxItem, OutboxQuery, OutboxState, Result};
use async_trait::async_trait;
use entity::outbox;
use opsbot_core::{JobId, JobState};
use sea_orm::sea_query::{Alias, Expr, Func, Query, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Queues one item; `conn` may be a transaction (the alert gateway queues a group's
/// messages in the same transaction that closes the group).
pub(crate) async fn push<C: ConnectionTrait>(conn: &C, db: &Db, item: &NewOutbox) -> Result<i64> {
    Ok(
        outbox::Entity::insert(row(item, OutboxState::Pending, None))
            .exec(conn)
            .await
            .during(db, "queueing an outbox message")?
            .last_insert_id,
    )
}

fn row(item: &NewOutbox, state: OutboxState, hold_job: Option<i64>) -> outbox::ActiveModel {
    let at = now();
    outbox::ActiveModel {
        id: NotSet,
        channel: Set(item.channel.clone()),
        target: Set(item.target.clone()),
        body: Set(item.body.clone()),
        state: Set(state.as_str().into()),
        attempts: Set(0),
        next_attempt_ms: Set(at.timestamp_millis()),
        claimed_by: Set(None),
        claim_until_ms: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        claim_token: Set(None),
        hold_job: Set(hold_job),
    }
}

/// Queues `items` held for `job`, in one transaction (all or none).
pub(crate) async fn hold(conn: &Conn, db: &Db, job: JobId, items: &[NewOutbox]) -> Result<()> {
    const ACTION: &str = "queueing the messages held for a job";
    if items.is_empty() {
        return Ok(());
    }
    let tx = conn.begin().await.during(db, ACTION)?;
    for item in items {
        outbox::Entity::insert(row(item, OutboxState::Held, Some(job.0)))
            .exec_without_returning(&tx)
            .await
            .during(db, ACTION)?;
    }
    tx.commit().await.during(db, ACTION)
}

/// Drops what is held for `job`, and what is still held for any job that ended without
/// being interrupted (left behind when an earlier drop failed).
pub(crate) async fn drop_held(conn: &Conn, db: &Db, job: JobId) -> Result<u64> {
    let done = [JobState::Succeeded.as_str(), JobState::Failed.as_str()];
    let finished = Query::select()
        .expr(Expr::val(1))
        .from(job::Entity)
        .and_where(
            Expr::col((job::Entity, job::Column::Id))
                .equals((outbox::Entity, outbox::Column::HoldJob)),
        )
        .and_where(Expr::col((job::Entity, job::Column::State)).is_in(done))
        .to_owned();
    let gone = outbox::Entity::delete_many()
        .filter(outbox::Column::State.eq(OutboxState::Held.as_str()))
        .filter(
            Condition::any()
                .add(outbox::Column::HoldJob.eq(job.0))
                .add(Expr::exists(finished)),
        )
        .exec(conn)
        .await
        .during(db, "dropping the messages held for a job")?;
    Ok(gone.rows_affected)
}

/// Makes the items held for interrupted jobs pending, due now.
async fn release_held<C: ConnectionTrait>(conn: &C, db: &Db, now_ms: i64) -> Result<()> {
    let interrupted = Query::select()
        .expr(Expr::val(1))
        .from(job::Entity)
        .and_where(
            Expr::col((job::Entity, job::Column::Id))
                .equals((outbox::Entity, outbox::Column::HoldJob)),
        )
        .and_where(Expr::col((job::Entity, job::Column::State)).eq(JobState::Interrupted.as_str()))
        .to_owned();
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::State,
            Expr::value(OutboxState::Pending.as_str()),
        )
        .col_expr(outbox::Column::NextAttemptMs, Expr::value(now_ms))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now()))
        .filter(outbox::Column::State.eq(OutboxState::Held.as_str()))
        .filter(Expr::exists(interrupted))
        .exec(conn)
        .await
        .during(db, "releasing the messages held for interrupted jobs")?;
    Ok(())
}

/// A token no earlier claim of this process had; owners are unique per process, so
/// owner and token name one claim.
pub(crate) fn claim_token() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    // Seeded from the clock so a restarted process (under the same owner name, should
    // that ever happen) does not repeat its predecessor's tokens.
    let _ = NEXT.compare_exchange(
        0,
        now().timestamp_micros().max(1),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    NEXT.fetch_add(1, Ordering::Relaxed)
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
    // by a write, and held notices are released under that lock (no second write
    // transaction per claim). PostgreSQL and MySQL need no such lock: their row locks
    // serialise the UPDATEs below; there the release is a statement of its own, so the
    // row locks it takes last no longer than it.
    let sqlite = conn.get_database_backend() == DbBackend::Sqlite;
    if !sqlite {
        release_held(conn, db, now_ms).await?;
    }
    let tx = conn.begin().await.during(db, ACTION)?;
    if sqlite {
        release_held(&tx, db, now_ms).await?;
    }
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
            .col_expr(outbox::Column::ClaimToken, Expr::value(claim_token()))
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

/// The rows `claim` still holds: the item, pending, claimed by that owner with that
/// token. Whether the lease has run out does not matter: until someone else claims the
/// item, the outcome of its holder's attempt is the one to record.
fn held_by(id: i64, claim: &OutboxClaim) -> Condition {
    Condition::all()
        .add(outbox::Column::Id.eq(id))
        .add(outbox::Column::State.eq(OutboxState::Pending.as_str()))
        .add(outbox::Column::ClaimedBy.eq(claim.owner.as_str()))
        .add(outbox::Column::ClaimToken.eq(claim.token))
}

/// Marks an item delivered and releases its claim, if `claim` still holds it.
pub(crate) async fn sent(conn: &Conn, db: &Db, id: i64, claim: &OutboxClaim) -> Result<bool> {
    let updated = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::State,
            Expr::value(OutboxState::Sent.as_str()),
        )
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now()))
        .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(outbox::Column::ClaimUntilMs, Expr::value(None::<i64>))
        .col_expr(outbox::Column::ClaimToken, Expr::value(None::<i64>))
        .filter(held_by(id, claim))
        .exec(conn)
        .await
        .during(db, "marking an outbox message sent")?;
    Ok(updated.rows_affected == 1)
}

/// Counts a failed attempt and makes the item due again at `next_attempt_at`, if
/// `claim` still holds it (so a late failure report cannot revive a delivered item, nor
/// reschedule one another worker is sending).
pub(crate) async fn retry(
    conn: &Conn,
    db: &Db,
    id: i64,
    claim: &OutboxClaim,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    error: &str,
) -> Result<bool> {
    failed(
        conn,
        db,
        id,
        claim,
        error,
        Some(next_attempt_at.timestamp_millis()),
        "scheduling an outbox message for retry",
    )
    .await
}

/// Counts the last attempt and moves the item to the dead-letter list, if `claim` still
/// holds it.
pub(crate) async fn dead(
    conn: &Conn,
    db: &Db,
    id: i64,
    claim: &OutboxClaim,
    error: &str,
) -> Result<bool> {
    failed(
        conn,
        db,
        id,
        claim,
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
    claim: &OutboxClaim,
    error: &str,
    retry_at_ms: Option<i64>,
    action: &str,
) -> Result<bool> {
    let mut update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now()))
        .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(outbox::Column::ClaimUntilMs, Expr::value(None::<i64>))
        .col_expr(outbox::Column::ClaimToken, Expr::value(None::<i64>));
    update = match retry_at_ms {
        Some(at) => update.col_expr(outbox::Column::NextAttemptMs, Expr::value(at)),
        None => update.col_expr(
            outbox::Column::State,
            Expr::value(OutboxState::Dead.as_str()),
        ),
    };
    let updated = update
        .filter(held_by(id, claim))
        .exec(conn)
        .await
        .during(db, action)?;
    Ok(updated.rows_affected == 1)
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
        claim: claim_of(&m.claimed_by, m.claim_token, m.claim_until_ms),
        hold_job: m.hold_job,
    })
}

fn claim_of(
    owner: &Option<String>,
    token: Option<i64>,
    until_ms: Option<i64>,
) -> Option<OutboxClaim> {
    Some(OutboxClaim {
        owner: owner.clone()?,
        token: token?,
        until: chrono::DateTime::from_timestamp_millis(until_ms?)?,
    })
}

#[async_trait]
impl crate::OutboxStore for SeaStore {
    async fn outbox_push(&self, item: &NewOutbox) -> Result<i64> {
        push(&self.conn, &self.db, item).await
    }

    async fn outbox_hold(&self, job: JobId, items: &[NewOutbox]) -> Result<()> {
        hold(&self.conn, &self.db, job, items).await
    }

    async fn outbox_drop_held(&self, job: JobId) -> Result<u64> {
        drop_held(&self.conn, &self.db, job).await
    }

    async fn outbox_claim(
        &self,
        channel_prefix: &str,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<OutboxItem>> {
        claim(&self.conn, &self.db, channel_prefix, owner, lease, limit).await
    }

    async fn outbox_sent(&self, id: i64, claim: &OutboxClaim) -> Result<bool> {
        sent(&self.conn, &self.db, id, claim).await
    }

    async fn outbox_retry(
        &self,
        id: i64,
        claim: &OutboxClaim,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
        error: &str,
    ) -> Result<bool> {
        retry(&self.conn, &self.db, id, claim, next_attempt_at, error).await
    }

    async fn outbox_dead(&self, id: i64, claim: &OutboxClaim, error: &str) -> Result<bool> {
        dead(&self.conn, &self.db, id, claim, error).await
    }

    async fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>> {
        list(&self.conn, &self.db, query).await
    }

    async fn outbox_depth(&self) -> Result<u64> {
        depth(&self.conn, &self.db).await
    }
}
