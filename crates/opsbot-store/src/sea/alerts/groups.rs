//! Group schedules: when each open group is due, and which instance holds it.
//!
//! Ingest writes a group's due time in the transaction that writes its notice, as the
//! EARLIEST of what the writers ask (the first notice wins; a group sent recently is not
//! due before `group_interval` after that message). Instances claim due groups with a
//! lease and a token (`FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL, so claimers
//! never wait for each other; SQLite's write transaction serialises them). The flush
//! that closes a group's notices and queues its messages first locks the schedule row
//! under the claim's owner and token: an instance whose claim ran out and was taken over
//! stops there (fencing), and the one holding it sets the next due time in the same
//! transaction.
//!
//! Why flush and ingest cannot lose a notice: both lock the schedule row. A flush that
//! locks it first counts the notices left after its delete without the ones of an
//! ingest still open, closes the group, and that ingest's update (after the flush
//! committed) opens it again; an ingest that locks it first has committed before the
//! flush counts, so its notices are counted and keep the group due.

use super::entity::{alert_group, alert_notice};
use crate::alerts::{GroupClaim, GroupFlush, GroupSchedule, PendingGroup};
use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::outbox::{self, claim_token};
use crate::sea::pool::now;
use crate::{NewOutbox, Result};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Rows per multi-row statement, as the rest of the alert tables.
const CHUNK: usize = 200;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// What one ingest (or adoption) asks of a group: due at `due_ms` at the earliest, and
/// not within `interval_ms` of its last message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    pub due_ms: i64,
    pub interval_ms: i64,
}

/// The asks of a batch, one per group (the earliest), in key order: writers lock the
/// rows in the same order, so two ingests cannot deadlock on them.
#[derive(Debug, Default)]
pub(crate) struct Asks(BTreeMap<(String, String), Ask>);

impl Asks {
    pub(crate) fn add(
        &mut self,
        route: &str,
        group_key: &str,
        first: DateTime<Utc>,
        wait: Duration,
        interval: Duration,
    ) {
        let ask = Ask {
            due_ms: first.timestamp_millis().saturating_add(ms(wait)),
            interval_ms: ms(interval),
        };
        self.0
            .entry((route.to_string(), group_key.to_string()))
            .and_modify(|a| {
                a.due_ms = a.due_ms.min(ask.due_ms);
                a.interval_ms = a.interval_ms.min(ask.interval_ms);
            })
            .or_insert(ask);
    }

    pub(crate) fn from_pending(groups: &[PendingGroup]) -> Asks {
        let mut asks = Asks::default();
        for g in groups {
            asks.add(
                &g.group.route,
                &g.group.group_key,
                g.oldest,
                g.group.group_wait,
                g.group.group_interval,
            );
        }
        asks
    }

    /// Writes every ask in `conn` (the ingest's transaction).
    pub(crate) async fn write<C: ConnectionTrait>(&self, conn: &C, db: &Db) -> Result<()> {
        for ((route, group_key), ask) in &self.0 {
            schedule(conn, db, route, group_key, *ask).await?;
        }
        Ok(())
    }
}

/// The row of one group.
fn group(route: &str, group_key: &str) -> Condition {
    Condition::all()
        .add(alert_group::Column::Route.eq(route))
        .add(alert_group::Column::GroupKey.eq(group_key))
}

/// The due time `ask` gives the row as it is when the statement runs:
/// `max(ask.due, last_flush + interval)` if the group is closed, the earlier of that
/// and its due time if it is open. Computed by the database from the row's current
/// values, so a writer that waited for another's lock builds on what that one wrote.
fn due_expr(ask: Ask) -> SimpleExpr {
    let after_flush = Expr::col(alert_group::Column::LastFlushMs).add(ask.interval_ms);
    // NULL (never sent) compares as unknown: the ELSE branch.
    let wanted: SimpleExpr =
        Expr::case(Expr::expr(after_flush.clone()).gt(ask.due_ms), after_flush)
            .finally(Expr::val(ask.due_ms))
            .into();
    Expr::case(
        Expr::col(alert_group::Column::DueAtMs).is_null(),
        wanted.clone(),
    )
    .case(
        Expr::col(alert_group::Column::DueAtMs).gt(wanted.clone()),
        wanted,
    )
    .finally(Expr::col(alert_group::Column::DueAtMs))
    .into()
}

async fn schedule<C: ConnectionTrait>(
    conn: &C,
    db: &Db,
    route: &str,
    group_key: &str,
    ask: Ask,
) -> Result<()> {
    const ACTION: &str = "scheduling an alert group";
    let update = || {
        alert_group::Entity::update_many()
            .col_expr(alert_group::Column::DueAtMs, due_expr(ask))
            .filter(group(route, group_key))
    };
    // Usually the row exists. When it does not, insert it; if another writer inserted
    // it meanwhile, the insert does nothing and the update applies this ask to theirs.
    // (The update runs again either way: MySQL may count an unchanged row as no row.)
    if update().exec(conn).await.during(db, ACTION)?.rows_affected > 0 {
        return Ok(());
    }
    alert_group::Entity::insert(alert_group::ActiveModel {
        id: NotSet,
        route: Set(route.to_string()),
        group_key: Set(group_key.to_string()),
        due_at_ms: Set(Some(ask.due_ms)),
        last_flush_ms: Set(None),
        claimed_by: Set(None),
        claim_until_ms: Set(None),
        claim_token: Set(None),
    })
    .on_conflict(
        OnConflict::columns([alert_group::Column::Route, alert_group::Column::GroupKey])
            // MySQL has no DO NOTHING: `id = id` there.
            .do_nothing_on([alert_group::Column::Id])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .during(db, ACTION)?;
    update().exec(conn).await.during(db, ACTION)?;
    Ok(())
}

/// Due and under no live claim at `now_ms`.
fn claimable(now_ms: i64) -> Condition {
    Condition::all()
        .add(alert_group::Column::DueAtMs.lte(now_ms))
        .add(
            Condition::any()
                .add(alert_group::Column::ClaimUntilMs.is_null())
                .add(alert_group::Column::ClaimUntilMs.lt(now_ms)),
        )
}

/// The row `claim` holds: whether its lease ran out does not matter, as long as nobody
/// claimed the group since.
fn held(claim: &GroupClaim) -> Condition {
    group(&claim.route, &claim.group_key)
        .add(alert_group::Column::ClaimedBy.eq(claim.owner.as_str()))
        .add(alert_group::Column::ClaimToken.eq(claim.token))
}

pub(crate) async fn claim(
    conn: &Conn,
    db: &Db,
    owner: &str,
    lease: Duration,
    limit: u64,
) -> Result<Vec<GroupClaim>> {
    const ACTION: &str = "claiming due alert groups";
    if limit == 0 {
        return Ok(Vec::new());
    }
    let now_ms = now().timestamp_millis();
    let until_ms = now_ms.saturating_add(ms(lease));
    // Every instance polls: a plain read first, so an idle poll takes no lock (on
    // SQLite, not the file's write lock).
    let any: Option<i64> = alert_group::Entity::find()
        .select_only()
        .column(alert_group::Column::Id)
        .filter(claimable(now_ms))
        .limit(1)
        .into_tuple()
        .one(conn)
        .await
        .during(db, ACTION)?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let tx = conn.begin().await.during(db, ACTION)?;
    // SQLite has no row locks (the clause is left out there); its write transaction
    // already excludes every other claimer.
    let rows: Vec<(i64, String, String)> = alert_group::Entity::find()
        .select_only()
        .column(alert_group::Column::Id)
        .column(alert_group::Column::Route)
        .column(alert_group::Column::GroupKey)
        .filter(claimable(now_ms))
        .order_by_asc(alert_group::Column::DueAtMs)
        .order_by_asc(alert_group::Column::Id)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple()
        .all(&tx)
        .await
        .during(db, ACTION)?;
    let mut claims = Vec::with_capacity(rows.len());
    for (id, route, group_key) in rows {
        let token = claim_token();
        let updated = alert_group::Entity::update_many()
            .col_expr(alert_group::Column::ClaimedBy, Expr::value(owner))
            .col_expr(alert_group::Column::ClaimUntilMs, Expr::value(until_ms))
            .col_expr(alert_group::Column::ClaimToken, Expr::value(token))
            .filter(alert_group::Column::Id.eq(id))
            .filter(claimable(now_ms))
            .exec(&tx)
            .await
            .during(db, ACTION)?;
        if updated.rows_affected == 1 {
            claims.push(GroupClaim {
                route,
                group_key,
                owner: owner.to_string(),
                token,
                until: time(until_ms),
            });
        }
    }
    tx.commit().await.during(db, ACTION)?;
    Ok(claims)
}

pub(crate) async fn defer(
    conn: &Conn,
    db: &Db,
    claim: &GroupClaim,
    due: DateTime<Utc>,
) -> Result<bool> {
    let updated = alert_group::Entity::update_many()
        .col_expr(
            alert_group::Column::DueAtMs,
            Expr::value(due.timestamp_millis()),
        )
        .col_expr(alert_group::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(alert_group::Column::ClaimUntilMs, Expr::value(None::<i64>))
        .col_expr(alert_group::Column::ClaimToken, Expr::value(None::<i64>))
        .filter(held(claim))
        .exec(conn)
        .await
        .during(db, "deferring an alert group")?;
    Ok(updated.rows_affected == 1)
}

pub(crate) async fn flush(
    conn: &Conn,
    db: &Db,
    claim: &GroupClaim,
    done: &[i64],
    items: &[NewOutbox],
    interval: Duration,
) -> Result<GroupFlush> {
    const ACTION: &str = "queueing an alert group";
    let tx = conn.begin().await.during(db, ACTION)?;
    // Locks the row for the rest of the transaction, and only if the claim still holds
    // it: an ingest of this group waits for us from here (see the module's comment).
    let row: Option<i64> = alert_group::Entity::find()
        .select_only()
        .column(alert_group::Column::Id)
        .filter(held(claim))
        .lock(LockType::Update)
        .into_tuple()
        .one(&tx)
        .await
        .during(db, ACTION)?;
    let Some(row) = row else {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(GroupFlush::Fenced);
    };
    // Deleting claims the notices: an instance of the previous version flushing the
    // same group (without schedules) can delete each row only once.
    let mut removed = 0;
    for chunk in done.chunks(CHUNK) {
        removed += alert_notice::Entity::delete_many()
            .filter(alert_notice::Column::Id.is_in(chunk.iter().copied()))
            .exec(&tx)
            .await
            .during(db, ACTION)?
            .rows_affected;
    }
    if removed != done.len() as u64 {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(GroupFlush::Raced);
    }
    let left = alert_notice::Entity::find()
        .filter(alert_notice::Column::Route.eq(claim.route.as_str()))
        .filter(alert_notice::Column::GroupKey.eq(claim.group_key.as_str()))
        .count(&tx)
        .await
        .during(db, ACTION)?;
    let now_ms = now().timestamp_millis();
    let sent = !items.is_empty();
    // Notices that came while this group was read wait for the next message; with none
    // sent now, nothing holds them back.
    let next_due = (left > 0).then(|| {
        if sent {
            now_ms.saturating_add(ms(interval))
        } else {
            now_ms
        }
    });
    let mut update = alert_group::Entity::update_many()
        .col_expr(alert_group::Column::DueAtMs, Expr::value(next_due))
        .col_expr(alert_group::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(alert_group::Column::ClaimUntilMs, Expr::value(None::<i64>))
        .col_expr(alert_group::Column::ClaimToken, Expr::value(None::<i64>));
    if sent {
        update = update.col_expr(alert_group::Column::LastFlushMs, Expr::value(now_ms));
    }
    update
        .filter(alert_group::Column::Id.eq(row))
        .exec(&tx)
        .await
        .during(db, ACTION)?;
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        ids.push(outbox::push(&tx, db, item).await?);
    }
    tx.commit().await.during(db, ACTION)?;
    Ok(GroupFlush::Queued {
        outbox: ids,
        next_due: next_due.map(time),
    })
}

pub(crate) async fn read(
    conn: &Conn,
    db: &Db,
    route: &str,
    group_key: &str,
) -> Result<Option<GroupSchedule>> {
    Ok(alert_group::Entity::find()
        .filter(group(route, group_key))
        .one(conn)
        .await
        .during(db, "reading an alert group's schedule")?
        .map(|m| GroupSchedule {
            route: m.route,
            group_key: m.group_key,
            due: m.due_at_ms.map(time),
            last_flush: m.last_flush_ms.map(time),
            claimed_by: m.claimed_by,
            claim_until: m.claim_until_ms.map(time),
        }))
}

pub(crate) async fn prune(conn: &Conn, db: &Db, before: DateTime<Utc>) -> Result<u64> {
    // A closed row sent long ago asks nothing an absent row would not: an ingest
    // racing this delete either reopened it first (then it is not closed) or inserts
    // it again.
    let gone = alert_group::Entity::delete_many()
        .filter(alert_group::Column::DueAtMs.is_null())
        .filter(
            Condition::any()
                .add(alert_group::Column::LastFlushMs.is_null())
                .add(alert_group::Column::LastFlushMs.lt(before.timestamp_millis())),
        )
        .exec(conn)
        .await
        .during(db, "pruning closed alert group schedules")?;
    Ok(gone.rows_affected)
}
