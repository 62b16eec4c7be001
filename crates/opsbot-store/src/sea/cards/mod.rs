//! Cards, action slots and remediation admission (see `crate::cards`).
//!
//! Every race is decided by the database, never by a read followed by a write: a card
//! is put by an insert that leaves an existing row alone; a code is taken by an update
//! conditional on the very code read (of two takers one clears it, the other matches
//! no row); a card is replaced by compare-and-set on its version; a slot is claimed by
//! an insert that the primary key lets only one claimer win. Remediation admission
//! must read (count the last hour) before it writes, so admissions of one rule are
//! serialised: on PostgreSQL and MySQL by the rule's lock row, taken `FOR UPDATE`
//! first in the transaction (MySQL's snapshot starts at the first plain read, after
//! the lock, so the count sees every run admitted before); on SQLite by the write
//! transaction, which holds the file's write lock from its start (see `Conn`).

pub(crate) mod entity;
pub(crate) mod migration;

use crate::cards::{
    ActionClaim, Admission, CardRecord, CardStore, ClaimResult, NewCard, RemediationRecord,
    RemediationRun, SLOT_MAX, TASK_ID_MAX,
};
use crate::sea::conn::Conn;
use crate::sea::errors::{is_duplicate, Db, During};
use crate::sea::migration::KEY;
use crate::sea::pool::now;
use crate::sea::prune::{delete_in_chunks, PRUNE_CHUNK};
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{card, card_claim, remediation_lock, remediation_run};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

const HOUR_MS: i64 = 3_600_000;

fn check_task_id(db: &Db, task_id: &str, action: &str) -> Result<()> {
    if task_id.is_empty() {
        return Err(db.refuse(action, "the card's task_id is empty"));
    }
    if task_id.len() > TASK_ID_MAX {
        return Err(db.refuse(
            action,
            format!(
                "the card's task_id is {} bytes long, over the {TASK_ID_MAX} WeCom allows",
                task_id.len()
            ),
        ));
    }
    Ok(())
}

fn check_slot(db: &Db, task_id: &str, slot: &str, action: &str) -> Result<()> {
    check_task_id(db, task_id, action)?;
    if slot.is_empty() {
        return Err(db.refuse(action, "the action slot is empty"));
    }
    if slot.len() > SLOT_MAX {
        return Err(db.refuse(
            action,
            format!(
                "the action slot is {} bytes long, over the {SLOT_MAX} allowed",
                slot.len()
            ),
        ));
    }
    Ok(())
}

fn check_rule(db: &Db, rule: &str, action: &str) -> Result<()> {
    if rule.is_empty() {
        return Err(db.refuse(action, "the remediation rule's name is empty"));
    }
    // The column's length counts characters on PostgreSQL and MySQL.
    let chars = rule.chars().count();
    if chars > KEY as usize {
        return Err(db.refuse(
            action,
            format!(
                "the remediation rule's name is {chars} characters long, over the {KEY} allowed"
            ),
        ));
    }
    Ok(())
}

/// A time as stored: milliseconds since the epoch.
fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(db: &Db, what: &str, ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| db.corrupt(what, format!("{ms} ms is out of range")))
}

fn card_record(db: &Db, m: card::Model) -> Result<CardRecord> {
    let what = format!("card {}", m.task_id);
    Ok(CardRecord {
        version: m.version,
        code_at: m.code_ms.map(|ms| time(db, &what, ms)).transpose()?,
        expires_at: time(db, &what, m.expires_ms)?,
        response_code: m.response_code,
        created_at: m.created_at,
        task_id: m.task_id,
        channel: m.channel,
        target: m.target,
        card: m.card,
    })
}

fn claim_record(m: card_claim::Model) -> ActionClaim {
    ActionClaim {
        task_id: m.task_id,
        slot: m.slot,
        user: m.user_id,
        at: m.at,
        outcome: m.outcome,
        job: m.job,
    }
}

fn run_record(db: &Db, m: remediation_run::Model) -> Result<RemediationRecord> {
    Ok(RemediationRecord {
        at: time(db, &format!("remediation run {}", m.id), m.at_ms)?,
        id: m.id,
        rule: m.rule,
        target: m.target,
        alert: m.alert,
        outcome: m.outcome,
        job: m.job,
    })
}

async fn take_code(
    conn: &Conn,
    db: &Db,
    task_id: &str,
    issued_after: DateTime<Utc>,
) -> Result<Option<String>> {
    const ACTION: &str = "taking a card's response code";
    check_task_id(db, task_id, ACTION)?;
    // Each lost round means another instance took or replaced the code meanwhile: the
    // next read sees none, or the new one.
    loop {
        let found: Option<(Option<String>, Option<i64>)> = card::Entity::find_by_id(task_id)
            .select_only()
            .column(card::Column::ResponseCode)
            .column(card::Column::CodeMs)
            .into_tuple()
            .one(conn)
            .await
            .during(db, ACTION)?;
        let Some((Some(code), Some(code_ms))) = found else {
            return Ok(None);
        };
        if time(db, &format!("card {task_id}"), code_ms)? < issued_after {
            return Ok(None);
        }
        let taken = card::Entity::update_many()
            .col_expr(card::Column::ResponseCode, Expr::value(None::<String>))
            .col_expr(card::Column::CodeMs, Expr::value(None::<i64>))
            .col_expr(card::Column::UpdatedAt, Expr::value(now()))
            .filter(card::Column::TaskId.eq(task_id))
            .filter(card::Column::ResponseCode.eq(code.as_str()))
            .filter(card::Column::CodeMs.eq(code_ms))
            .exec(conn)
            .await
            .during(db, ACTION)?;
        if taken.rows_affected == 1 {
            return Ok(Some(code));
        }
    }
}

async fn claim(
    conn: &Conn,
    db: &Db,
    task_id: &str,
    slot: &str,
    user: &str,
    at: DateTime<Utc>,
) -> Result<ClaimResult> {
    const ACTION: &str = "claiming a card action";
    check_slot(db, task_id, slot, ACTION)?;
    // A lost insert whose winner is gone when read (released meanwhile) tries again:
    // the slot is free.
    loop {
        let row = card_claim::ActiveModel {
            task_id: Set(task_id.to_string()),
            slot: Set(slot.to_string()),
            user_id: Set(user.to_string()),
            at: Set(at),
            outcome: Set(None),
            job: Set(None),
        };
        match card_claim::Entity::insert(row)
            .exec_without_returning(conn)
            .await
        {
            Ok(_) => return Ok(ClaimResult::Won),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(db.map(e, ACTION)),
        }
        // The winner's insert has committed: a duplicate is reported only after it.
        let winner = card_claim::Entity::find_by_id((task_id.to_string(), slot.to_string()))
            .one(conn)
            .await
            .during(db, ACTION)?;
        if let Some(winner) = winner {
            return Ok(ClaimResult::Taken(claim_record(winner)));
        }
    }
}

/// Forgets expired cards with their claims, a chunk per transaction (a card never
/// loses its claims without going itself), then claims whose card is gone.
async fn prune_cards(conn: &Conn, db: &Db, expired_before: DateTime<Utc>) -> Result<u64> {
    const ACTION: &str = "pruning expired cards";
    let before_ms = millis(expired_before);
    let mut removed = 0;
    loop {
        let ids: Vec<String> = card::Entity::find()
            .select_only()
            .column(card::Column::TaskId)
            .filter(card::Column::ExpiresMs.lt(before_ms))
            .order_by_asc(card::Column::ExpiresMs)
            .limit(PRUNE_CHUNK)
            .into_tuple()
            .all(conn)
            .await
            .during(db, ACTION)?;
        if ids.is_empty() {
            break;
        }
        let full = ids.len() as u64 == PRUNE_CHUNK;
        let tx = conn.begin().await.during(db, ACTION)?;
        card_claim::Entity::delete_many()
            .filter(card_claim::Column::TaskId.is_in(ids.iter().map(String::as_str)))
            .exec(&tx)
            .await
            .during(db, ACTION)?;
        removed += card::Entity::delete_many()
            .filter(card::Column::TaskId.is_in(ids.iter().map(String::as_str)))
            .filter(card::Column::ExpiresMs.lt(before_ms))
            .exec(&tx)
            .await
            .during(db, ACTION)?
            .rows_affected;
        tx.commit().await.during(db, ACTION)?;
        if !full {
            break;
        }
    }
    // A click on a card the store never had (or a claim racing the card's pruning)
    // leaves a claim no card prunes.
    let card_exists = Query::select()
        .expr(Expr::val(1))
        .from(card::Entity)
        .and_where(
            Expr::col((card::Entity, card::Column::TaskId))
                .equals((card_claim::Entity, card_claim::Column::TaskId)),
        )
        .to_owned();
    card_claim::Entity::delete_many()
        .filter(Expr::exists(card_exists).not())
        .exec(conn)
        .await
        .during(db, ACTION)?;
    Ok(removed)
}

async fn admit(
    conn: &Conn,
    db: &Db,
    run: &RemediationRun,
    max_per_hour: u32,
    cooldown: std::time::Duration,
) -> Result<Admission> {
    const ACTION: &str = "admitting a remediation run";
    check_rule(db, &run.rule, ACTION)?;
    let at_ms = millis(run.at);
    let locks_rows = conn.get_database_backend() != DbBackend::Sqlite;
    if locks_rows {
        // Outside the transaction: a rule's first admission creates its lock row (a
        // duplicate would abort a PostgreSQL transaction; this writes nothing then).
        remediation_lock::Entity::insert(remediation_lock::ActiveModel {
            rule: Set(run.rule.clone()),
        })
        .on_conflict(
            OnConflict::column(remediation_lock::Column::Rule)
                .do_nothing_on([remediation_lock::Column::Rule])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .during(db, ACTION)?;
    }
    let tx = conn.begin().await.during(db, ACTION)?;
    if locks_rows {
        let locked: Option<String> = remediation_lock::Entity::find_by_id(run.rule.as_str())
            .select_only()
            .column(remediation_lock::Column::Rule)
            .lock_exclusive()
            .into_tuple()
            .one(&tx)
            .await
            .during(db, ACTION)?;
        if locked.is_none() {
            return Err(db.corrupt(
                "remediation lock",
                format!("the lock row of rule {} vanished", run.rule),
            ));
        }
    }
    // Runs stamped after `run.at` (another instance's clock ahead) count too.
    let runs_last_hour = remediation_run::Entity::find()
        .filter(remediation_run::Column::Rule.eq(run.rule.as_str()))
        .filter(remediation_run::Column::AtMs.gt(at_ms.saturating_sub(HOUR_MS)))
        .count(&tx)
        .await
        .during(db, ACTION)?;
    if runs_last_hour >= u64::from(max_per_hour) {
        tx.rollback().await.during(db, ACTION)?;
        return Ok(Admission::OverLimit { runs_last_hour });
    }
    if !cooldown.is_zero() {
        let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
        let last: Option<i64> = remediation_run::Entity::find()
            .select_only()
            .column(remediation_run::Column::AtMs)
            .filter(remediation_run::Column::Rule.eq(run.rule.as_str()))
            .filter(remediation_run::Column::Target.eq(run.target.as_str()))
            .filter(remediation_run::Column::AtMs.gt(at_ms.saturating_sub(cooldown_ms)))
            .order_by_desc(remediation_run::Column::AtMs)
            .limit(1)
            .into_tuple()
            .one(&tx)
            .await
            .during(db, ACTION)?;
        if let Some(last) = last {
            tx.rollback().await.during(db, ACTION)?;
            let last = time(db, &format!("a run of rule {}", run.rule), last)?;
            return Ok(Admission::CoolingDown { last });
        }
    }
    let id = remediation_run::Entity::insert(remediation_run::ActiveModel {
        id: NotSet,
        rule: Set(run.rule.clone()),
        target: Set(run.target.clone()),
        alert: Set(run.alert),
        at_ms: Set(at_ms),
        outcome: Set(None),
        job: Set(None),
    })
    .exec(&tx)
    .await
    .during(db, ACTION)?
    .last_insert_id;
    tx.commit().await.during(db, ACTION)?;
    Ok(Admission::Admitted(id))
}

/// Deletes the runs from before `before`, oldest first, in short chunks.
async fn prune_runs(conn: &Conn, db: &Db, before: DateTime<Utc>) -> Result<u64> {
    delete_in_chunks::<remediation_run::Entity>(
        conn,
        db,
        "pruning remediation runs",
        sea_orm::Condition::all().add(remediation_run::Column::AtMs.lt(millis(before))),
        remediation_run::Column::AtMs,
        remediation_run::Column::Id,
    )
    .await
}

#[async_trait]
impl CardStore for SeaStore {
    async fn card_put(&self, c: &NewCard) -> Result<()> {
        const ACTION: &str = "keeping a card";
        check_task_id(&self.db, &c.task_id, ACTION)?;
        let at = now();
        let row = card::ActiveModel {
            task_id: Set(c.task_id.clone()),
            channel: Set(c.channel.clone()),
            target: Set(c.target.clone()),
            card: Set(c.card.clone()),
            version: Set(1),
            response_code: Set(None),
            code_ms: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            expires_ms: Set(millis(c.expires_at)),
        };
        // A retried send puts the card again: the first row stays as it is.
        card::Entity::insert(row)
            .on_conflict(
                OnConflict::column(card::Column::TaskId)
                    .do_nothing_on([card::Column::TaskId])
                    .to_owned(),
            )
            .exec_without_returning(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(())
    }

    async fn card_get(&self, task_id: &str) -> Result<Option<CardRecord>> {
        const ACTION: &str = "reading a card";
        check_task_id(&self.db, task_id, ACTION)?;
        card::Entity::find_by_id(task_id)
            .one(&self.conn)
            .await
            .during(&self.db, ACTION)?
            .map(|m| card_record(&self.db, m))
            .transpose()
    }

    async fn card_set_code(&self, task_id: &str, code: &str, at: DateTime<Utc>) -> Result<()> {
        const ACTION: &str = "keeping a card's response code";
        check_task_id(&self.db, task_id, ACTION)?;
        card::Entity::update_many()
            .col_expr(card::Column::ResponseCode, Expr::value(code))
            .col_expr(card::Column::CodeMs, Expr::value(millis(at)))
            .col_expr(card::Column::UpdatedAt, Expr::value(now()))
            .filter(card::Column::TaskId.eq(task_id))
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(())
    }

    async fn card_take_code(
        &self,
        task_id: &str,
        issued_after: DateTime<Utc>,
    ) -> Result<Option<String>> {
        take_code(&self.conn, &self.db, task_id, issued_after).await
    }

    async fn card_replace(&self, task_id: &str, version: i64, c: &str) -> Result<bool> {
        const ACTION: &str = "replacing a card";
        check_task_id(&self.db, task_id, ACTION)?;
        let replaced = card::Entity::update_many()
            .col_expr(card::Column::Card, Expr::value(c))
            .col_expr(
                card::Column::Version,
                Expr::col(card::Column::Version).add(1),
            )
            .col_expr(card::Column::UpdatedAt, Expr::value(now()))
            .filter(card::Column::TaskId.eq(task_id))
            .filter(card::Column::Version.eq(version))
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(replaced.rows_affected == 1)
    }

    async fn action_claim(
        &self,
        task_id: &str,
        slot: &str,
        user: &str,
        at: DateTime<Utc>,
    ) -> Result<ClaimResult> {
        claim(&self.conn, &self.db, task_id, slot, user, at).await
    }

    async fn action_done(
        &self,
        task_id: &str,
        slot: &str,
        outcome: &str,
        job: Option<i64>,
    ) -> Result<()> {
        const ACTION: &str = "recording what a card action did";
        check_slot(&self.db, task_id, slot, ACTION)?;
        card_claim::Entity::update_many()
            .col_expr(card_claim::Column::Outcome, Expr::value(outcome))
            .col_expr(card_claim::Column::Job, Expr::value(job))
            .filter(card_claim::Column::TaskId.eq(task_id))
            .filter(card_claim::Column::Slot.eq(slot))
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(())
    }

    async fn action_release(&self, task_id: &str, slot: &str, user: &str) -> Result<bool> {
        const ACTION: &str = "releasing a card action";
        check_slot(&self.db, task_id, slot, ACTION)?;
        let released = card_claim::Entity::delete_many()
            .filter(card_claim::Column::TaskId.eq(task_id))
            .filter(card_claim::Column::Slot.eq(slot))
            .filter(card_claim::Column::UserId.eq(user))
            .filter(card_claim::Column::Outcome.is_null())
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(released.rows_affected == 1)
    }

    async fn action_claims(&self, task_id: &str) -> Result<Vec<ActionClaim>> {
        const ACTION: &str = "reading a card's action claims";
        check_task_id(&self.db, task_id, ACTION)?;
        Ok(card_claim::Entity::find()
            .filter(card_claim::Column::TaskId.eq(task_id))
            .order_by_asc(card_claim::Column::At)
            .order_by_asc(card_claim::Column::Slot)
            .all(&self.conn)
            .await
            .during(&self.db, ACTION)?
            .into_iter()
            .map(claim_record)
            .collect())
    }

    async fn cards_prune(&self, expired_before: DateTime<Utc>) -> Result<u64> {
        prune_cards(&self.conn, &self.db, expired_before).await
    }

    async fn remediation_admit(
        &self,
        run: &RemediationRun,
        max_per_hour: u32,
        cooldown: std::time::Duration,
    ) -> Result<Admission> {
        admit(&self.conn, &self.db, run, max_per_hour, cooldown).await
    }

    async fn remediation_done(&self, id: i64, outcome: &str, job: Option<i64>) -> Result<()> {
        remediation_run::Entity::update_many()
            .col_expr(remediation_run::Column::Outcome, Expr::value(outcome))
            .col_expr(remediation_run::Column::Job, Expr::value(job))
            .filter(remediation_run::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .during(&self.db, "recording what a remediation run did")?;
        Ok(())
    }

    async fn remediation_runs(
        &self,
        rule: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RemediationRecord>> {
        remediation_run::Entity::find()
            .filter(remediation_run::Column::Rule.eq(rule))
            .filter(remediation_run::Column::AtMs.gte(millis(since)))
            .order_by_desc(remediation_run::Column::AtMs)
            .order_by_desc(remediation_run::Column::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "listing remediation runs")?
            .into_iter()
            .map(|m| run_record(&self.db, m))
            .collect()
    }

    async fn remediation_prune(&self, before: DateTime<Utc>) -> Result<u64> {
        prune_runs(&self.conn, &self.db, before).await
    }
}
