//! Background jobs: create, progress updates with a heartbeat, queries, and marking
//! jobs interrupted when their process stopped (gracefully or not).
//!
//! Fencing: a job's `fence` is the token of its current claim. It is 1 when the job is
//! created and moves whenever the job leaves its holder (interrupted), so a holder's
//! fenced writes (`update_fenced`, and provider state written under [`lock_fence`])
//! are refused once another instance has called it dead. Those writes and
//! [`interrupt`] each hold the job's row lock (PostgreSQL/MySQL: `FOR UPDATE` / an
//! `UPDATE`; SQLite: the write transaction), so they serialise.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::{Conn, WriteTx};
use crate::sea::errors::{Db, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::{InterruptFilter, InterruptMessage, JobQuery, NewJob, Result};
use async_trait::async_trait;
use entity::job;
use opsbot_core::{JobFence, JobId, JobRecord, JobState};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// The token of a job's first claim.
const FIRST_FENCE: i64 = 1;

pub(crate) async fn create(conn: &Conn, db: &Db, j: &NewJob) -> Result<JobFence> {
    let at = now();
    let row = job::ActiveModel {
        id: NotSet,
        owner: Set(j.owner.clone()),
        user: Set(j.user.clone()),
        channel: Set(j.channel.clone()),
        chat: Set(j.chat.clone()),
        command: Set(j.command.clone()),
        text: Set(j.text.clone()),
        state: Set(JobState::Running.as_str().into()),
        progress: Set(0),
        message: Set(j.message.clone()),
        created_at: Set(at),
        updated_at: Set(at),
        heartbeat_ms: Set(at.timestamp_millis()),
        fence: Set(FIRST_FENCE),
        target: Set(j.target.clone()),
    };
    let id = job::Entity::insert(row)
        .exec(conn)
        .await
        .during(db, "creating a job")?
        .last_insert_id;
    Ok(JobFence {
        job: JobId(id),
        owner: j.owner.clone(),
        token: FIRST_FENCE,
    })
}

/// The job is running under `fence`.
fn held(fence: &JobFence) -> Condition {
    Condition::all()
        .add(job::Column::Id.eq(fence.job.0))
        .add(job::Column::Owner.eq(fence.owner.as_str()))
        .add(job::Column::Fence.eq(fence.token))
        .add(job::Column::State.eq(JobState::Running.as_str()))
}

/// Locks the job's row until `tx` ends when the job is still running under `fence`
/// (`SELECT … FOR UPDATE`; SQLite's write transaction holds the file already), and
/// says whether it is.
pub(crate) async fn lock_fence(tx: &WriteTx, fence: &JobFence) -> std::result::Result<bool, DbErr> {
    Ok(job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(held(fence))
        .lock_exclusive()
        .into_tuple::<i64>()
        .one(tx)
        .await?
        .is_some())
}

pub(crate) async fn update(
    conn: &Conn,
    db: &Db,
    id: JobId,
    state: JobState,
    progress: u8,
    message: &str,
) -> Result<()> {
    set(
        conn,
        db,
        Condition::all().add(job::Column::Id.eq(id.0)),
        state,
        progress,
        message,
    )
    .await
    .map(|_| ())
}

pub(crate) async fn update_fenced(
    conn: &Conn,
    db: &Db,
    fence: &JobFence,
    state: JobState,
    progress: u8,
    message: &str,
) -> Result<bool> {
    set(conn, db, held(fence), state, progress, message).await
}

pub(crate) async fn fence_holds(conn: &Conn, db: &Db, fence: &JobFence) -> Result<bool> {
    Ok(job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(held(fence))
        .into_tuple::<i64>()
        .one(conn)
        .await
        .during(db, "checking a job's claim")?
        .is_some())
}

/// Sets a running job's state, progress and message; whether a row matched `which`.
async fn set(
    conn: &Conn,
    db: &Db,
    which: Condition,
    state: JobState,
    progress: u8,
    message: &str,
) -> Result<bool> {
    let at = now();
    let changed = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(state.as_str()))
        .col_expr(
            job::Column::Progress,
            Expr::value(i16::from(progress.min(100))),
        )
        .col_expr(job::Column::Message, Expr::value(message))
        .col_expr(job::Column::UpdatedAt, Expr::value(at))
        .col_expr(job::Column::HeartbeatMs, Expr::value(at.timestamp_millis()))
        .filter(which)
        // A final state is final: a progress note or result arriving after the job was
        // interrupted (or finished) must not bring it back to life.
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .exec(conn)
        .await
        .during(db, "updating a job")?
        .rows_affected;
    Ok(changed > 0)
}

pub(crate) async fn heartbeat(conn: &Conn, db: &Db, owner: &str) -> Result<()> {
    job::Entity::update_many()
        .col_expr(
            job::Column::HeartbeatMs,
            Expr::value(now().timestamp_millis()),
        )
        .filter(job::Column::Owner.eq(owner))
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .exec(conn)
        .await
        .during(db, "refreshing job heartbeats")?;
    Ok(())
}

pub(crate) async fn get(conn: &Conn, db: &Db, id: JobId) -> Result<Option<JobRecord>> {
    job::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .during(db, "reading a job")?
        .map(|m| record(db, m))
        .transpose()
}

pub(crate) async fn list(conn: &Conn, db: &Db, query: &JobQuery) -> Result<Vec<JobRecord>> {
    let mut q = job::Entity::find().order_by_desc(job::Column::Id);
    if let Some(user) = &query.user {
        q = q.filter(job::Column::User.eq(user.as_str()));
    }
    if let Some(state) = query.state {
        q = q.filter(job::Column::State.eq(state.as_str()));
    }
    if query.limit > 0 {
        q = q.limit(query.limit);
    }
    q.all(conn)
        .await
        .during(db, "listing jobs")?
        .into_iter()
        .map(|m| record(db, m))
        .collect()
}

pub(crate) async fn interrupt(
    conn: &Conn,
    db: &Db,
    which: &InterruptFilter,
    say: InterruptMessage<'_>,
) -> Result<Vec<JobId>> {
    const ACTION: &str = "interrupting jobs";
    let running = job::Column::State.eq(JobState::Running.as_str());
    let selected = match which {
        InterruptFilter::Owner(owner) => running.and(job::Column::Owner.eq(owner.as_str())),
        InterruptFilter::StaleBefore(deadline) => {
            running.and(job::Column::HeartbeatMs.lt(deadline.timestamp_millis()))
        }
    };
    let tx = conn.begin().await.during(db, ACTION)?;
    // A no-op write first: on PostgreSQL/MySQL it locks the candidate rows against a
    // racing update_job (on SQLite the transaction holds the write lock already).
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::col(job::Column::State).into())
        .filter(selected.clone())
        .exec(&tx)
        .await
        .during(db, ACTION)?;
    let rows = job::Entity::find()
        .filter(selected)
        .order_by_asc(job::Column::Id)
        .all(&tx)
        .await
        .during(db, ACTION)?;
    let mut ids = Vec::with_capacity(rows.len());
    let at = now();
    for row in rows {
        let id = row.id;
        let message = say(&record(db, row)?);
        job::Entity::update_many()
            .col_expr(
                job::Column::State,
                Expr::value(JobState::Interrupted.as_str()),
            )
            .col_expr(job::Column::Message, Expr::value(message))
            .col_expr(job::Column::UpdatedAt, Expr::value(at))
            // The claim ends here: whoever held it is fenced out.
            .col_expr(job::Column::Fence, next_fence())
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.eq(JobState::Running.as_str()))
            .exec(&tx)
            .await
            .during(db, ACTION)?;
        ids.push(id);
    }
    tx.commit().await.during(db, ACTION)?;
    Ok(ids.into_iter().map(JobId).collect())
}

fn next_fence() -> SimpleExpr {
    Expr::col(job::Column::Fence).add(1)
}

fn record(db: &Db, m: job::Model) -> Result<JobRecord> {
    Ok(JobRecord {
        id: JobId(m.id),
        user: m.user,
        channel: m.channel,
        chat: m.chat,
        command: m.command,
        text: m.text,
        state: JobState::parse(&m.state)
            .ok_or_else(|| db.corrupt("job", format!("unknown state {:?}", m.state)))?,
        progress: u8::try_from(m.progress).unwrap_or(100),
        message: m.message,
        created_at: m.created_at,
        updated_at: m.updated_at,
        target: m.target,
    })
}

#[async_trait]
impl crate::JobStore for SeaStore {
    async fn start_job(&self, job: &NewJob) -> Result<JobFence> {
        create(&self.conn, &self.db, job).await
    }

    async fn update_job(
        &self,
        id: JobId,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<()> {
        update(&self.conn, &self.db, id, state, progress, message).await
    }

    async fn update_fenced_job(
        &self,
        fence: &JobFence,
        state: JobState,
        progress: u8,
        message: &str,
    ) -> Result<bool> {
        update_fenced(&self.conn, &self.db, fence, state, progress, message).await
    }

    async fn fence_holds(&self, fence: &JobFence) -> Result<bool> {
        fence_holds(&self.conn, &self.db, fence).await
    }

    async fn heartbeat_jobs(&self, owner: &str) -> Result<()> {
        heartbeat(&self.conn, &self.db, owner).await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        get(&self.conn, &self.db, id).await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>> {
        list(&self.conn, &self.db, query).await
    }

    async fn interrupt_jobs_saying(
        &self,
        which: &InterruptFilter,
        say: InterruptMessage<'_>,
    ) -> Result<Vec<JobId>> {
        interrupt(&self.conn, &self.db, which, say).await
    }
}
