//! Group commit of the small appends every chat message makes: its processed message id
//! and its audit row. One writer task per store takes whatever has queued up (the
//! writes of every callback in flight, both kinds mixed) and commits it in ONE
//! transaction; each caller is answered only after that commit, with its own result.
//! A commit costs the same for one row as for hundreds (SQLite's WAL append and the
//! writer gate, PostgreSQL's and MySQL's round trips and log flush), so under load a
//! callback pays a fraction of one instead of two.
//!
//! Semantics stay those of the single writes: `mark_processed` is decided by the
//! unique key (also against other processes), the audit id is the row's own. A batch
//! whose transaction fails is written again op by op, each in its own transaction, so
//! one row the database refuses fails alone. The writer is started on first use in
//! the caller's runtime; when it cannot be reached (that runtime ended) the write is
//! made directly.

mod sqlite;

use crate::sea::conn::{Conn, WriteTx};
use crate::sea::errors::{Db, During};
use crate::sea::{audit, processed};
use crate::Result;
use opsbot_core::AuditEntry;
use sea_orm::sea_query::{InsertStatement, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, Iden};
use std::collections::HashSet;
use std::sync::OnceLock;
use tokio::sync::{mpsc, oneshot};

/// Ops in one transaction at most; a longer queue is taken in several.
const MAX_BATCH: usize = 512;

/// One queued write and where its result goes.
enum Op {
    Mark {
        channel: String,
        msg_id: String,
        reply: oneshot::Sender<Result<bool>>,
    },
    Audit {
        entry: Box<AuditEntry>,
        reply: oneshot::Sender<Result<i64>>,
    },
}

/// The handle of a store's writer (started on first use).
#[derive(Default)]
pub(crate) struct GroupCommit {
    writer: OnceLock<mpsc::UnboundedSender<Op>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("started", &self.writer.get().is_some())
            .finish()
    }
}

impl GroupCommit {
    fn sender(&self, conn: &Conn, db: &Db) -> &mpsc::UnboundedSender<Op> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(conn.clone(), db.clone(), rx));
            tx
        })
    }

    /// [`processed::mark_processed`], committed with whatever else is queued.
    pub(crate) async fn mark_processed(
        &self,
        conn: &Conn,
        db: &Db,
        channel: &str,
        msg_id: &str,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Mark {
            channel: channel.to_string(),
            msg_id: msg_id.to_string(),
            reply,
        };
        if self.sender(conn, db).send(op).is_err() {
            return processed::mark_processed(conn, db, channel, msg_id).await;
        }
        answer.await.unwrap_or_else(|_| Err(lost(db)))
    }

    /// [`audit::append`], committed with whatever else is queued.
    pub(crate) async fn append_audit(
        &self,
        conn: &Conn,
        db: &Db,
        entry: &AuditEntry,
    ) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Audit {
            entry: Box::new(entry.clone()),
            reply,
        };
        if self.sender(conn, db).send(op).is_err() {
            return audit::append(conn, db, entry).await;
        }
        answer.await.unwrap_or_else(|_| Err(lost(db)))
    }
}

/// The writer went away with the op (its runtime shut down): whether it committed is
/// unknown, so the caller must not take it as done.
fn lost(db: &Db) -> crate::StoreError {
    db.map(
        sea_orm::DbErr::Custom("the store's writer stopped before answering".into()),
        "group commit",
    )
}

async fn writer(conn: Conn, db: Db, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&conn, &db, std::mem::take(&mut batch)).await;
        batch.reserve(MAX_BATCH);
    }
}

/// Commits `ops` in one transaction and answers each; on failure, op by op.
async fn commit(conn: &Conn, db: &Db, ops: Vec<Op>) {
    if ops.len() == 1 {
        return alone(conn, db, ops.into_iter().next().expect("one op")).await;
    }
    match in_one(conn, db, &ops).await {
        Ok(results) => {
            for (op, result) in ops.into_iter().zip(results) {
                match (op, result) {
                    (Op::Mark { reply, .. }, Done::Marked(fresh)) => {
                        let _ = reply.send(Ok(fresh));
                    }
                    (Op::Audit { reply, .. }, Done::Appended(id)) => {
                        let _ = reply.send(Ok(id));
                    }
                    // `in_one` answers each op with its own kind.
                    _ => unreachable!("results follow the ops"),
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, ops = ops.len(), "a group commit failed; writing its ops one by one");
            for op in ops {
                alone(conn, db, op).await;
            }
        }
    }
}

/// One op in its own transaction, as without group commit.
async fn alone(conn: &Conn, db: &Db, op: Op) {
    match op {
        Op::Mark {
            channel,
            msg_id,
            reply,
        } => {
            let _ = reply.send(processed::mark_processed(conn, db, &channel, &msg_id).await);
        }
        Op::Audit { entry, reply } => {
            let _ = reply.send(audit::append(conn, db, &entry).await);
        }
    }
}

enum Done {
    Marked(bool),
    Appended(i64),
}

/// Every op of the batch in one transaction; the results in the order of `ops`.
async fn in_one(conn: &Conn, db: &Db, ops: &[Op]) -> Result<Vec<Done>> {
    // Of several ops for one id in a batch (a retry queued beside its original) only
    // the first is written, and only the first can be new.
    let mut first = HashSet::new();
    let marks: Vec<(&str, &str)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Mark {
                channel, msg_id, ..
            } => Some((channel.as_str(), msg_id.as_str())),
            Op::Audit { .. } => None,
        })
        .filter(|key| first.insert(*key))
        .collect();
    let entries: Vec<&AuditEntry> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Audit { entry, .. } => Some(&**entry),
            Op::Mark { .. } => None,
        })
        .collect();
    let (mut fresh, ids) = if conn.get_database_backend() == DbBackend::Sqlite {
        sqlite::write(conn, db, &marks, &entries).await?
    } else {
        let tx = conn.begin().await.during(db, "starting a group commit")?;
        let fresh = mark_all(&tx, db, &marks).await?;
        let ids = audit::append_many(&tx, db, &entries).await?;
        tx.commit().await.during(db, "committing a group commit")?;
        (fresh, ids)
    };
    let mut ids = ids.into_iter();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            // Taken out once answered: a later op for the same id is a duplicate.
            Op::Mark {
                channel, msg_id, ..
            } => Done::Marked(fresh.remove(&(channel.as_str(), msg_id.as_str()))),
            Op::Audit { .. } => Done::Appended(
                ids.next()
                    .ok_or_else(|| db.corrupt("audit log", "fewer ids than rows appended"))?,
            ),
        });
    }
    Ok(out)
}

/// Records the message ids `marks` (no two alike); those that are new.
async fn mark_all<'a>(
    tx: &WriteTx,
    db: &Db,
    marks: &[(&'a str, &'a str)],
) -> Result<HashSet<(&'a str, &'a str)>> {
    let mut fresh = HashSet::with_capacity(marks.len());
    if marks.is_empty() {
        return Ok(fresh);
    }
    if tx.get_database_backend() == DbBackend::MySql {
        // No RETURNING: each insert under a savepoint, so a duplicate undoes itself alone.
        for &(channel, msg_id) in marks {
            let sp = tx
                .savepoint()
                .await
                .during(db, "recording a processed message")?;
            if processed::mark_processed(&sp, db, &stored(channel), &stored(msg_id)).await? {
                fresh.insert((channel, msg_id));
            }
            sp.commit()
                .await
                .during(db, "recording a processed message")?;
        }
        return Ok(fresh);
    }
    let stmt = tx.get_database_backend().build(&mark_insert(marks));
    let rows = tx
        .query_all(stmt)
        .await
        .during(db, "recording processed messages")?;
    let mut taken = Vec::with_capacity(rows.len());
    for row in rows {
        let channel: String = row
            .try_get("", "channel")
            .during(db, "recording processed messages")?;
        let msg_id: String = row
            .try_get("", "msg_id")
            .during(db, "recording processed messages")?;
        taken.push((channel, msg_id));
    }
    Ok(fresh_of(marks, taken))
}

/// One statement for every id of the batch: the unique key decides, and RETURNING
/// names the rows it took.
fn mark_insert(marks: &[(&str, &str)]) -> InsertStatement {
    let at = crate::sea::pool::now();
    let mut insert = Query::insert();
    insert
        .into_table(Table)
        .columns([Col::Channel, Col::MsgId, Col::At])
        .on_conflict(
            OnConflict::columns([Col::Channel, Col::MsgId])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns([Col::Channel, Col::MsgId]));
    for (channel, msg_id) in marks {
        insert.values_panic([(*channel).into(), (*msg_id).into(), at.into()]);
    }
    insert
}

/// The marks among `taken` (the rows the insert returned, as stored: with NUL
/// cleaned, see `conn.rs`).
fn fresh_of<'a>(
    marks: &[(&'a str, &'a str)],
    taken: Vec<(String, String)>,
) -> HashSet<(&'a str, &'a str)> {
    let lookup: std::collections::HashMap<(String, String), (&str, &str)> = marks
        .iter()
        .map(|&(c, m)| ((stored(c), stored(m)), (c, m)))
        .collect();
    taken
        .into_iter()
        .filter_map(|key| lookup.get(&key).copied())
        .collect()
}

/// `text` as the store keeps it (the savepoint's statements bypass `conn.rs`).
fn stored(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The table and columns of `processed_message` (see `processed/entity.rs`).
struct Table;

impl Iden for Table {
    fn unquoted(&self, s: &mut dyn std::fmt::Write) {
        let _ = s.write_str("processed_message");
    }
}

enum Col {
    Channel,
    MsgId,
    At,
}

impl Iden for Col {
    fn unquoted(&self, s: &mut dyn std::fmt::Write) {
        let _ = s.write_str(match self {
            Col::Channel => "channel",
            Col::MsgId => "msg_id",
            Col::At => "at",
        });
    }
}
