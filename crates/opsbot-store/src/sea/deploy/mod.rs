//! Deploys: projects created through the API, builds, release orders with their hosts,
//! logs, hosts added by scaling out and what each host runs. Every move of an order
//! or a build is one conditional `UPDATE` whose affected-row count says who won, so two
//! instances (or a click and a restart) never both move it.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::deploy::{
    BuildEnd, BuildRecord, DeployStore, Deployed, HostPatch, HostRunRecord, LogChunk, LogOf,
    NewBuild, NewOrder, OrderPatch, OrderQuery, OrderRecord, ProjectHost, ProjectRecord,
};
use crate::sea::conn::WriteTx;
use crate::sea::errors::During;
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use entity::{
    deploy_build, deploy_deployed, deploy_host_run, deploy_log, deploy_order, deploy_project,
    deploy_project_host,
};
use sea_orm::sea_query::{Condition, Expr, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, UpdateMany,
};

/// The longest text of one log chunk, in bytes: a reader pages through a huge output
/// instead of getting it in one row (and one SSE event).
pub(crate) const LOG_CHUNK_BYTES: usize = 64 * 1024;

/// Rows per multi-row insert: well under every backend's parameter limit.
const BATCH: usize = 500;

const RUNNING: &str = "running";
const SUCCEEDED: &str = "succeeded";
const INTERRUPTED: &str = "interrupted";
const PENDING: &str = "pending";

/// A store row's millisecond heartbeat as a time.
fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `limit` for a query, where 0 means no limit (as in the other stores' queries).
fn limited<Q: QuerySelect>(q: Q, limit: u64) -> Q {
    if limit > 0 {
        q.limit(limit)
    } else {
        q
    }
}

fn project_record(m: deploy_project::Model) -> ProjectRecord {
    ProjectRecord {
        name: m.name,
        definition: m.definition,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn build_record(m: deploy_build::Model) -> BuildRecord {
    BuildRecord {
        id: m.id,
        project: m.project,
        reference: m.reference,
        revision: m.revision,
        state: m.state,
        artefact: m.artefact,
        artefact_size: m.artefact_size,
        changelog: m.changelog,
        error: m.error,
        user: m.user,
        owner: m.owner,
        created_at: m.created_at,
        finished_at: m.finished_at,
    }
}

fn order_record(m: deploy_order::Model) -> OrderRecord {
    OrderRecord {
        id: m.id,
        project: m.project,
        kind: m.kind,
        build: m.build,
        version: m.version,
        state: m.state,
        user: m.user,
        channel: m.channel,
        chat: m.chat,
        approver: m.approver,
        reason: m.reason,
        batch: m.batch,
        batches: m.batches,
        plan: m.plan,
        owner: m.owner,
        heartbeat_at: m.heartbeat_ms.and_then(from_ms),
        created_at: m.created_at,
        updated_at: m.updated_at,
        expires_at: m.expires_at,
        finished_at: m.finished_at,
    }
}

fn host_record(m: deploy_host_run::Model) -> HostRunRecord {
    HostRunRecord {
        order: m.order_id,
        host: m.host,
        address: m.address,
        batch: m.batch,
        state: m.state,
        step: m.step,
        exit_code: m.exit_code,
        previous_version: m.previous_version,
        error: m.error,
        started_at: m.started_at,
        finished_at: m.finished_at,
    }
}

fn log_chunk(m: deploy_log::Model) -> LogChunk {
    LogChunk {
        seq: m.id,
        order: m.order_id,
        build: m.build_id,
        host: m.host,
        text: m.text,
        at: m.at,
    }
}

/// The rows of a log: `(order_id, build_id, host)` filters.
fn log_filter(of: LogOf<'_>) -> Condition {
    match of {
        LogOf::Build(build) => Condition::all()
            .add(deploy_log::Column::OrderId.eq(0))
            .add(deploy_log::Column::BuildId.eq(build)),
        LogOf::Order(order, None) => Condition::all().add(deploy_log::Column::OrderId.eq(order)),
        LogOf::Order(order, Some(host)) => Condition::all()
            .add(deploy_log::Column::OrderId.eq(order))
            .add(deploy_log::Column::Host.eq(host)),
    }
}

/// Locks the row of the order or build a log belongs to until `tx` ends (`SELECT …
/// FOR UPDATE`, which writes no row version); a log of neither locks nothing.
async fn lock_log_owner(tx: &WriteTx, of: LogOf<'_>) -> std::result::Result<(), DbErr> {
    match of {
        LogOf::Order(order, _) => {
            deploy_order::Entity::find_by_id(order)
                .select_only()
                .column(deploy_order::Column::Id)
                .lock_exclusive()
                .into_tuple::<i64>()
                .one(tx)
                .await?;
        }
        LogOf::Build(build) => {
            deploy_build::Entity::find_by_id(build)
                .select_only()
                .column(deploy_build::Column::Id)
                .lock_exclusive()
                .into_tuple::<i64>()
                .one(tx)
                .await?;
        }
    }
    Ok(())
}

/// `text` cut into pieces of at most `max` bytes, at a line end when one is in reach
/// (so a reader rarely sees a line split across chunks), else at a character
/// boundary. Empty text is one empty piece.
pub(crate) fn split_chunks(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(newline) = rest[..cut].rfind('\n') {
            cut = newline + 1;
        }
        if cut == 0 {
            // A limit below one character: that character alone.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

/// Applies an order patch's changes (and `updated_at`) to an update.
fn patch_order(
    mut q: UpdateMany<deploy_order::Entity>,
    patch: &OrderPatch,
    at: DateTime<Utc>,
) -> UpdateMany<deploy_order::Entity> {
    use deploy_order::Column as C;
    q = q.col_expr(C::UpdatedAt, Expr::value(at));
    if let Some(approver) = &patch.approver {
        q = q.col_expr(C::Approver, Expr::value(approver.as_str()));
    }
    if let Some(reason) = &patch.reason {
        q = q.col_expr(C::Reason, Expr::value(reason.as_str()));
    }
    if let Some(batch) = patch.batch {
        q = q.col_expr(C::Batch, Expr::value(batch));
    }
    if let Some(version) = patch.version {
        q = q.col_expr(C::Version, Expr::value(version));
    }
    if let Some(plan) = &patch.plan {
        q = q.col_expr(C::Plan, Expr::value(plan.as_str()));
    }
    match &patch.owner {
        Some(Some(owner)) => {
            q = q
                .col_expr(C::Owner, Expr::value(owner.as_str()))
                .col_expr(C::HeartbeatMs, Expr::value(at.timestamp_millis()));
        }
        // An order nobody holds has no heartbeat either, so it never looks like the
        // orphan of a stale owner.
        Some(None) => {
            q = q
                .col_expr(C::Owner, Expr::value(Option::<String>::None))
                .col_expr(C::HeartbeatMs, Expr::value(Option::<i64>::None));
        }
        None => {}
    }
    if patch.finished {
        q = q.col_expr(C::FinishedAt, Expr::value(at));
    }
    q
}

/// A host patch's changes, empty when it changes nothing.
fn host_changes(
    patch: &HostPatch,
    at: DateTime<Utc>,
) -> Vec<(deploy_host_run::Column, SimpleExpr)> {
    use deploy_host_run::Column as C;
    let mut set = Vec::new();
    if let Some(state) = &patch.state {
        set.push((C::State, Expr::value(state.as_str())));
    }
    if let Some(step) = &patch.step {
        set.push((C::Step, Expr::value(step.as_str())));
    }
    if let Some(code) = patch.exit_code {
        set.push((C::ExitCode, Expr::value(code)));
    }
    if let Some(version) = patch.previous_version {
        set.push((C::PreviousVersion, Expr::value(version)));
    }
    if let Some(error) = &patch.error {
        set.push((C::Error, Expr::value(error.clone())));
    }
    if patch.started {
        set.push((C::StartedAt, Expr::value(at)));
        if !patch.finished {
            set.push((C::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None)));
        }
    }
    if patch.finished {
        set.push((C::FinishedAt, Expr::value(at)));
    }
    set
}

#[async_trait]
impl DeployStore for SeaStore {
    async fn project_put(&self, name: &str, definition: &str, user: &str) -> Result<()> {
        let at = now();
        let row = deploy_project::ActiveModel {
            name: Set(name.to_string()),
            definition: Set(definition.to_string()),
            created_by: Set(user.to_string()),
            created_at: Set(at),
            updated_at: Set(at),
        };
        // A replaced definition keeps who created the project and when.
        deploy_project::Entity::insert(row)
            .on_conflict(
                OnConflict::column(deploy_project::Column::Name)
                    .update_columns([
                        deploy_project::Column::Definition,
                        deploy_project::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.conn)
            .await
            .during(&self.db, "saving a deploy project")?;
        Ok(())
    }

    async fn project_get(&self, name: &str) -> Result<Option<ProjectRecord>> {
        Ok(deploy_project::Entity::find_by_id(name.to_string())
            .one(&self.conn)
            .await
            .during(&self.db, "reading a deploy project")?
            .map(project_record))
    }

    async fn project_list(&self) -> Result<Vec<ProjectRecord>> {
        Ok(deploy_project::Entity::find()
            .order_by_asc(deploy_project::Column::Name)
            .all(&self.conn)
            .await
            .during(&self.db, "listing deploy projects")?
            .into_iter()
            .map(project_record)
            .collect())
    }

    async fn project_delete(&self, name: &str) -> Result<bool> {
        let done = deploy_project::Entity::delete_by_id(name.to_string())
            .exec(&self.conn)
            .await
            .during(&self.db, "deleting a deploy project")?;
        Ok(done.rows_affected > 0)
    }

    async fn build_create(&self, build: &NewBuild, owner: &str) -> Result<i64> {
        let at = now();
        let row = deploy_build::ActiveModel {
            id: NotSet,
            project: Set(build.project.clone()),
            reference: Set(build.reference.clone()),
            revision: Set(String::new()),
            state: Set(RUNNING.into()),
            artefact: Set(None),
            artefact_size: Set(None),
            changelog: Set(String::new()),
            error: Set(None),
            user: Set(build.user.clone()),
            owner: Set(Some(owner.to_string())),
            created_at: Set(at),
            created_ms: Set(at.timestamp_millis()),
            finished_at: Set(None),
        };
        Ok(deploy_build::Entity::insert(row)
            .exec(&self.conn)
            .await
            .during(&self.db, "recording a build")?
            .last_insert_id)
    }

    async fn build_finish(&self, id: i64, end: &BuildEnd) -> Result<bool> {
        use deploy_build::Column as C;
        let done = deploy_build::Entity::update_many()
            .col_expr(C::State, Expr::value(end.state.as_str()))
            .col_expr(C::Revision, Expr::value(end.revision.as_str()))
            .col_expr(C::Artefact, Expr::value(end.artefact.clone()))
            .col_expr(C::ArtefactSize, Expr::value(end.artefact_size))
            .col_expr(C::Changelog, Expr::value(end.changelog.as_str()))
            .col_expr(C::Error, Expr::value(end.error.clone()))
            .col_expr(C::Owner, Expr::value(Option::<String>::None))
            .col_expr(C::FinishedAt, Expr::value(now()))
            .filter(C::Id.eq(id))
            // An interrupted build stays interrupted: a late end must not revive it.
            .filter(C::State.eq(RUNNING))
            .exec(&self.conn)
            .await
            .during(&self.db, "ending a build")?;
        Ok(done.rows_affected > 0)
    }

    async fn build_get(&self, id: i64) -> Result<Option<BuildRecord>> {
        Ok(deploy_build::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading a build")?
            .map(build_record))
    }

    async fn build_list(&self, project: Option<&str>, limit: u64) -> Result<Vec<BuildRecord>> {
        let mut q = deploy_build::Entity::find().order_by_desc(deploy_build::Column::Id);
        if let Some(project) = project {
            q = q.filter(deploy_build::Column::Project.eq(project));
        }
        Ok(limited(q, limit)
            .all(&self.conn)
            .await
            .during(&self.db, "listing builds")?
            .into_iter()
            .map(build_record)
            .collect())
    }

    async fn build_latest(&self, project: &str) -> Result<Option<BuildRecord>> {
        Ok(deploy_build::Entity::find()
            .filter(deploy_build::Column::State.eq(SUCCEEDED))
            .filter(deploy_build::Column::Project.eq(project))
            .order_by_desc(deploy_build::Column::Id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading the latest build")?
            .map(build_record))
    }

    async fn builds_interrupt(&self, started_before: DateTime<Utc>) -> Result<Vec<BuildRecord>> {
        use deploy_build::Column as C;
        const ACTION: &str = "interrupting builds";
        let stale = Condition::all()
            .add(C::State.eq(RUNNING))
            .add(C::CreatedMs.lt(started_before.timestamp_millis()));
        let tx = self.conn.begin().await.during(&self.db, ACTION)?;
        // A no-op write first: on PostgreSQL/MySQL it locks the candidate rows against a
        // racing build_finish (on SQLite the transaction holds the write lock already),
        // so what is returned is exactly what was interrupted.
        deploy_build::Entity::update_many()
            .col_expr(C::State, Expr::col(C::State).into())
            .filter(stale.clone())
            .exec(&tx)
            .await
            .during(&self.db, ACTION)?;
        let ids: Vec<i64> = deploy_build::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(stale)
            .into_tuple()
            .all(&tx)
            .await
            .during(&self.db, ACTION)?;
        if ids.is_empty() {
            tx.commit().await.during(&self.db, ACTION)?;
            return Ok(Vec::new());
        }
        deploy_build::Entity::update_many()
            .col_expr(C::State, Expr::value(INTERRUPTED))
            .col_expr(C::Owner, Expr::value(Option::<String>::None))
            .col_expr(C::FinishedAt, Expr::value(now()))
            .filter(C::Id.is_in(ids.iter().copied()))
            .filter(C::State.eq(RUNNING))
            .exec(&tx)
            .await
            .during(&self.db, ACTION)?;
        let rows = deploy_build::Entity::find()
            .filter(C::Id.is_in(ids))
            .order_by_asc(C::Id)
            .all(&tx)
            .await
            .during(&self.db, ACTION)?;
        tx.commit().await.during(&self.db, ACTION)?;
        Ok(rows.into_iter().map(build_record).collect())
    }

    async fn order_create(&self, order: &NewOrder) -> Result<i64> {
        const ACTION: &str = "creating a release order";
        let at = now();
        let row = deploy_order::ActiveModel {
            id: NotSet,
            project: Set(order.project.clone()),
            kind: Set(order.kind.clone()),
            build: Set(order.build),
            version: Set(order.version),
            state: Set(order.state.clone()),
            user: Set(order.user.clone()),
            channel: Set(order.channel.clone()),
            chat: Set(order.chat.clone()),
            approver: Set(None),
            reason: Set(None),
            batch: Set(0),
            batches: Set(order.batches),
            plan: Set(order.plan.clone()),
            owner: Set(None),
            heartbeat_ms: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            expires_at: Set(order.expires_at.map(|t| t.trunc_subsecs(6))),
            finished_at: Set(None),
        };
        let tx = self.conn.begin().await.during(&self.db, ACTION)?;
        let id = deploy_order::Entity::insert(row)
            .exec(&tx)
            .await
            .during(&self.db, ACTION)?
            .last_insert_id;
        for hosts in order.hosts.chunks(BATCH) {
            let rows = hosts.iter().map(|h| deploy_host_run::ActiveModel {
                id: NotSet,
                order_id: Set(id),
                host: Set(h.host.clone()),
                address: Set(h.address.clone()),
                batch: Set(h.batch),
                state: Set(PENDING.into()),
                step: Set(String::new()),
                exit_code: Set(None),
                previous_version: Set(None),
                error: Set(None),
                started_at: Set(None),
                finished_at: Set(None),
            });
            deploy_host_run::Entity::insert_many(rows)
                .exec_without_returning(&tx)
                .await
                .during(&self.db, ACTION)?;
        }
        tx.commit().await.during(&self.db, ACTION)?;
        Ok(id)
    }

    async fn order_get(&self, id: i64) -> Result<Option<OrderRecord>> {
        Ok(deploy_order::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading a release order")?
            .map(order_record))
    }

    async fn order_list(&self, query: &OrderQuery) -> Result<Vec<OrderRecord>> {
        use deploy_order::Column as C;
        let mut q = deploy_order::Entity::find().order_by_desc(C::Id);
        if let Some(project) = &query.project {
            q = q.filter(C::Project.eq(project.as_str()));
        }
        if !query.states.is_empty() {
            q = q.filter(C::State.is_in(query.states.iter().map(String::as_str)));
        }
        if let Some(before) = query.before {
            q = q.filter(C::Id.lt(before));
        }
        Ok(limited(q, query.limit)
            .all(&self.conn)
            .await
            .during(&self.db, "listing release orders")?
            .into_iter()
            .map(order_record)
            .collect())
    }

    async fn order_transition(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        patch: &OrderPatch,
    ) -> Result<bool> {
        use deploy_order::Column as C;
        if from.is_empty() {
            return Ok(false);
        }
        // One statement: the state it is in is checked by the write itself, so of two
        // racing transitions from the same state exactly one affects the row.
        let q = deploy_order::Entity::update_many()
            .col_expr(C::State, Expr::value(to))
            .filter(C::Id.eq(id))
            .filter(C::State.is_in(from.iter().copied()));
        let done = patch_order(q, patch, now())
            .exec(&self.conn)
            .await
            .during(&self.db, "moving a release order")?;
        Ok(done.rows_affected > 0)
    }

    async fn order_transition_held(
        &self,
        id: i64,
        owner: &str,
        from: &[&str],
        to: &str,
        patch: &OrderPatch,
    ) -> Result<bool> {
        use deploy_order::Column as C;
        if from.is_empty() {
            return Ok(false);
        }
        let q = deploy_order::Entity::update_many()
            .col_expr(C::State, Expr::value(to))
            .filter(C::Id.eq(id))
            .filter(C::Owner.eq(owner))
            .filter(C::State.is_in(from.iter().copied()));
        let done = patch_order(q, patch, now())
            .exec(&self.conn)
            .await
            .during(&self.db, "moving a release order")?;
        Ok(done.rows_affected > 0)
    }

    async fn order_update(&self, id: i64, owner: &str, patch: &OrderPatch) -> Result<bool> {
        use deploy_order::Column as C;
        let q = deploy_order::Entity::update_many()
            .filter(C::Id.eq(id))
            .filter(C::Owner.eq(owner));
        let done = patch_order(q, patch, now())
            .exec(&self.conn)
            .await
            .during(&self.db, "updating a release order")?;
        Ok(done.rows_affected > 0)
    }

    async fn order_heartbeat(&self, owner: &str) -> Result<()> {
        use deploy_order::Column as C;
        deploy_order::Entity::update_many()
            .col_expr(C::HeartbeatMs, Expr::value(now().timestamp_millis()))
            .filter(C::Owner.eq(owner))
            .exec(&self.conn)
            .await
            .during(&self.db, "refreshing release order heartbeats")?;
        Ok(())
    }

    async fn orders_orphaned(
        &self,
        states: &[&str],
        owner: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<OrderRecord>> {
        use deploy_order::Column as C;
        if states.is_empty() {
            return Ok(Vec::new());
        }
        Ok(deploy_order::Entity::find()
            .filter(C::State.is_in(states.iter().copied()))
            .filter(
                Condition::any()
                    .add(C::Owner.eq(owner))
                    .add(C::HeartbeatMs.lt(stale_before.timestamp_millis())),
            )
            .order_by_asc(C::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "looking for orphaned release orders")?
            .into_iter()
            .map(order_record)
            .collect())
    }

    async fn order_active(&self, project: &str, states: &[&str]) -> Result<Option<OrderRecord>> {
        use deploy_order::Column as C;
        if states.is_empty() {
            return Ok(None);
        }
        Ok(deploy_order::Entity::find()
            .filter(C::Project.eq(project))
            .filter(C::State.is_in(states.iter().copied()))
            .order_by_desc(C::Id)
            .one(&self.conn)
            .await
            .during(&self.db, "looking for a project's active order")?
            .map(order_record))
    }

    async fn host_runs(&self, order: i64) -> Result<Vec<HostRunRecord>> {
        use deploy_host_run::Column as C;
        Ok(deploy_host_run::Entity::find()
            .filter(C::OrderId.eq(order))
            .order_by_asc(C::Batch)
            .order_by_asc(C::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "reading an order's hosts")?
            .into_iter()
            .map(host_record)
            .collect())
    }

    async fn host_update(&self, order: i64, host: &str, patch: &HostPatch) -> Result<()> {
        use deploy_host_run::Column as C;
        let changes = host_changes(patch, now());
        if changes.is_empty() {
            return Ok(());
        }
        let mut q = deploy_host_run::Entity::update_many()
            .filter(C::OrderId.eq(order))
            .filter(C::Host.eq(host));
        for (column, value) in changes {
            q = q.col_expr(column, value);
        }
        q.exec(&self.conn)
            .await
            .during(&self.db, "updating an order's host")?;
        Ok(())
    }

    async fn host_update_held(
        &self,
        order: i64,
        owner: &str,
        host: &str,
        patch: &HostPatch,
    ) -> Result<bool> {
        use deploy_host_run::Column as C;
        const ACTION: &str = "updating an order's host";
        let changes = host_changes(patch, now());
        // The order's row is read locked (`FOR UPDATE`; SQLite's write transaction
        // holds the file), so the owner checked is the owner when the host is written.
        let tx = self.conn.begin().await.during(&self.db, ACTION)?;
        let held = deploy_order::Entity::find_by_id(order)
            .filter(deploy_order::Column::Owner.eq(owner))
            .select_only()
            .column(deploy_order::Column::Id)
            .lock_exclusive()
            .into_tuple::<i64>()
            .one(&tx)
            .await
            .during(&self.db, ACTION)?
            .is_some();
        if !held {
            tx.rollback().await.during(&self.db, ACTION)?;
            return Ok(false);
        }
        if !changes.is_empty() {
            let mut q = deploy_host_run::Entity::update_many()
                .filter(C::OrderId.eq(order))
                .filter(C::Host.eq(host));
            for (column, value) in changes {
                q = q.col_expr(column, value);
            }
            q.exec(&tx).await.during(&self.db, ACTION)?;
        }
        tx.commit().await.during(&self.db, ACTION)?;
        Ok(true)
    }

    async fn log_append(&self, of: LogOf<'_>, text: &str) -> Result<i64> {
        const ACTION: &str = "appending to a log";
        let (order, build, host) = match of {
            LogOf::Build(build) => (0, build, ""),
            // An order's log without a host is the order's own lines.
            LogOf::Order(order, host) => (order, 0, host.unwrap_or("")),
        };
        // Cleaned before splitting (conn.rs would do it after), so a stored chunk
        // stays within the limit even when NULs become three-byte replacements.
        let cleaned = text.replace('\0', "\u{FFFD}");
        let at = now();
        let row = |piece: &str| deploy_log::ActiveModel {
            id: NotSet,
            order_id: Set(order),
            build_id: Set(build),
            host: Set(host.to_string()),
            text: Set(piece.to_string()),
            at: Set(at),
        };
        let pieces = split_chunks(&cleaned, LOG_CHUNK_BYTES);
        // A reader follows a log by seq, so within one log no chunk may become
        // visible after a higher seq did. SQLite's writer gate runs one write at a
        // time, so ids are allocated and committed in the same order. PostgreSQL and
        // MySQL allocate ids at insert but commit in any order: there the appends of
        // one order (or build) are serialised by its row lock, taken before the ids.
        let sqlite = self.conn.get_database_backend() == DbBackend::Sqlite;
        if let ([one], true) = (pieces.as_slice(), sqlite) {
            return Ok(deploy_log::Entity::insert(row(one))
                .exec(&self.conn)
                .await
                .during(&self.db, ACTION)?
                .last_insert_id);
        }
        // Several chunks go in one transaction, so a reader sees all of them or none,
        // and one by one, since the last insert id of a multi-row insert is not the
        // same row on every backend.
        let tx = self.conn.begin().await.during(&self.db, ACTION)?;
        if !sqlite {
            lock_log_owner(&tx, of).await.during(&self.db, ACTION)?;
        }
        let mut seq = 0;
        for piece in pieces {
            seq = deploy_log::Entity::insert(row(piece))
                .exec(&tx)
                .await
                .during(&self.db, ACTION)?
                .last_insert_id;
        }
        tx.commit().await.during(&self.db, ACTION)?;
        Ok(seq)
    }

    async fn log_read(&self, of: LogOf<'_>, after: i64, limit: u64) -> Result<Vec<LogChunk>> {
        let q = deploy_log::Entity::find()
            .filter(log_filter(of))
            .filter(deploy_log::Column::Id.gt(after))
            .order_by_asc(deploy_log::Column::Id);
        Ok(limited(q, limit)
            .all(&self.conn)
            .await
            .during(&self.db, "reading a log")?
            .into_iter()
            .map(log_chunk)
            .collect())
    }

    async fn project_hosts(&self, project: &str) -> Result<Vec<ProjectHost>> {
        use deploy_project_host::Column as C;
        Ok(deploy_project_host::Entity::find()
            .filter(C::Project.eq(project))
            .order_by_asc(C::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "reading a project's added hosts")?
            .into_iter()
            .map(|m| ProjectHost {
                project: m.project,
                host: m.host,
                address: m.address,
                order: m.order_id,
                added_at: m.added_at,
            })
            .collect())
    }

    async fn project_host_add(&self, host: &ProjectHost) -> Result<()> {
        use deploy_project_host::Column as C;
        let row = deploy_project_host::ActiveModel {
            id: NotSet,
            project: Set(host.project.clone()),
            host: Set(host.host.clone()),
            address: Set(host.address.clone()),
            order_id: Set(host.order),
            // As the backends keep it (microseconds), so it reads back equal.
            added_at: Set(host.added_at.trunc_subsecs(6)),
        };
        // A host added again (a later scale-out reusing its name) takes the new address
        // and order.
        deploy_project_host::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([C::Project, C::Host])
                    .update_columns([C::Address, C::OrderId, C::AddedAt])
                    .to_owned(),
            )
            .exec_without_returning(&self.conn)
            .await
            .during(&self.db, "adding a host to a project")?;
        Ok(())
    }

    async fn project_host_remove(&self, project: &str, host: &str) -> Result<bool> {
        use deploy_project_host::Column as C;
        let done = deploy_project_host::Entity::delete_many()
            .filter(C::Project.eq(project))
            .filter(C::Host.eq(host))
            .exec(&self.conn)
            .await
            .during(&self.db, "removing a host from a project")?;
        Ok(done.rows_affected > 0)
    }

    async fn deployed_set(
        &self,
        project: &str,
        host: &str,
        version: i64,
        build: i64,
    ) -> Result<()> {
        use deploy_deployed::Column as C;
        let row = deploy_deployed::ActiveModel {
            id: NotSet,
            project: Set(project.to_string()),
            host: Set(host.to_string()),
            version: Set(version),
            build: Set(build),
            at: Set(now()),
        };
        deploy_deployed::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([C::Project, C::Host])
                    .update_columns([C::Version, C::Build, C::At])
                    .to_owned(),
            )
            .exec_without_returning(&self.conn)
            .await
            .during(&self.db, "recording what a host runs")?;
        Ok(())
    }

    async fn deployed(&self, project: &str) -> Result<Vec<Deployed>> {
        use deploy_deployed::Column as C;
        Ok(deploy_deployed::Entity::find()
            .filter(C::Project.eq(project))
            .order_by_asc(C::Host)
            .all(&self.conn)
            .await
            .during(&self.db, "reading what a project's hosts run")?
            .into_iter()
            .map(|m| Deployed {
                project: m.project,
                host: m.host,
                version: m.version,
                build: m.build,
                at: m.at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::split_chunks;

    #[test]
    fn chunks_stay_within_the_limit_and_rejoin_to_the_text() {
        let text = "第一行\nsecond line\n".repeat(50) + &"é".repeat(40);
        let pieces = split_chunks(&text, 37);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= 37 && !p.is_empty()));
        assert_eq!(pieces.concat(), text);
        // A cut at a line end when one is in reach.
        assert!(pieces[0].ends_with('\n'));
        assert_eq!(split_chunks("", 8), [""]);
        assert_eq!(split_chunks("12345678", 8), ["12345678"]);
    }
}
