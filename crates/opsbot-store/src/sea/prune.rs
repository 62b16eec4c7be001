//! Deleting old rows in short chunks, oldest first: a long history never holds a lock
//! for long, and an interrupted prune leaves only whole chunks gone.

use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::Result;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Ids deleted per statement.
pub(crate) const PRUNE_CHUNK: u64 = 1000;

/// Deletes the rows of `E` that `older` selects, oldest first by `order`, a chunk of
/// [`PRUNE_CHUNK`] ids (column `id`, an integer) per statement. Returns how many went.
pub(crate) async fn delete_in_chunks<E: EntityTrait>(
    conn: &Conn,
    db: &Db,
    action: &str,
    older: Condition,
    order: E::Column,
    id: E::Column,
) -> Result<u64> {
    let mut removed = 0;
    loop {
        let ids: Vec<i64> = E::find()
            .select_only()
            .column(id)
            .filter(older.clone())
            .order_by_asc(order)
            .limit(PRUNE_CHUNK)
            .into_tuple()
            .all(conn)
            .await
            .during(db, action)?;
        if ids.is_empty() {
            return Ok(removed);
        }
        let full = ids.len() as u64 == PRUNE_CHUNK;
        removed += E::delete_many()
            .filter(id.is_in(ids))
            .exec(conn)
            .await
            .during(db, action)?
            .rows_affected;
        if !full {
            return Ok(removed);
        }
    }
}
