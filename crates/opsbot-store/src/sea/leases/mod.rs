//! Lease rows: taken by a conditional update (ours, or expired), else by an insert that
//! the primary key lets only one racer win. The token moves in the same update when
//! the lease changes hands; a release leaves the row (with no owner) so the token keeps
//! counting from where it was.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::leases::{Lease, LeaseStore};
use crate::sea::errors::{is_duplicate, Db, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use entity::lease;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use std::time::Duration;

/// The owner of a released lease: no instance has it, so whoever takes it next is a new
/// holder (and gets a new token), the previous holder included.
const NOBODY: &str = "";

#[async_trait]
impl LeaseStore for SeaStore {
    async fn lease_take(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        const ACTION: &str = "taking a lease";
        if owner == NOBODY {
            return Ok(None);
        }
        let at = now();
        let until = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        // The token is set first: MySQL evaluates an UPDATE's assignments in order, so
        // a CASE after the owner's assignment would compare against the new owner.
        let next_token = Expr::case(
            lease::Column::Owner.eq(owner),
            Expr::col(lease::Column::Token),
        )
        .finally(Expr::col(lease::Column::Token).add(1));
        let updated = lease::Entity::update_many()
            .col_expr(lease::Column::Token, next_token.into())
            .col_expr(lease::Column::Owner, Expr::value(owner))
            .col_expr(lease::Column::ExpiresAt, Expr::value(until))
            .filter(lease::Column::Name.eq(name))
            .filter(
                Condition::any()
                    .add(lease::Column::Owner.eq(owner))
                    .add(lease::Column::ExpiresAt.lt(at)),
            )
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        if updated.rows_affected > 0 {
            // Read back as ours: if it ran out and went to someone else in between
            // (a zero ttl), it is not held.
            let token = lease::Entity::find_by_id(name)
                .filter(lease::Column::Owner.eq(owner))
                .select_only()
                .column(lease::Column::Token)
                .into_tuple::<i64>()
                .one(&self.conn)
                .await
                .during(&self.db, ACTION)?;
            return Ok(token.map(|token| held(name, owner, token)));
        }
        // A row deleted by an earlier binary's release would restart a counter at 0;
        // the time in microseconds starts a new row past any token it can have had.
        let token = at.timestamp_micros();
        let row = lease::ActiveModel {
            name: Set(name.to_string()),
            owner: Set(owner.to_string()),
            expires_at: Set(until),
            token: Set(token),
        };
        match lease::Entity::insert(row)
            .exec_without_returning(&self.conn)
            .await
        {
            Ok(_) => Ok(Some(held(name, owner, token))),
            // Someone holds it (or won the race for a free one).
            Err(e) if is_duplicate(&e) => Ok(None),
            Err(e) => Err(self.db.map(e, ACTION)),
        }
    }

    async fn lease_check(&self, l: &Lease) -> Result<bool> {
        let found = lease::Entity::find_by_id(l.name.as_str())
            .filter(lease::Column::Owner.eq(l.owner.as_str()))
            .filter(lease::Column::Token.eq(l.token))
            .filter(lease::Column::ExpiresAt.gte(now()))
            .select_only()
            .column(lease::Column::Token)
            .into_tuple::<i64>()
            .one(&self.conn)
            .await
            .during(&self.db, "checking a lease")?;
        Ok(found.is_some())
    }

    async fn lease_release(&self, name: &str, owner: &str) -> Result<()> {
        let long_ago = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        lease::Entity::update_many()
            .col_expr(lease::Column::Owner, Expr::value(NOBODY))
            .col_expr(lease::Column::ExpiresAt, Expr::value(long_ago))
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::Owner.eq(owner))
            .exec(&self.conn)
            .await
            .during(&self.db, "releasing a lease")?;
        Ok(())
    }
}

fn held(name: &str, owner: &str, token: i64) -> Lease {
    Lease {
        name: name.to_string(),
        owner: owner.to_string(),
        token,
    }
}

/// Whether `l` still holds its lease, checked inside a write transaction `tx` and
/// locking the lease row until `tx` ends (`FOR UPDATE` on PostgreSQL and MySQL; SQLite's
/// write transaction holds the file already), so the lease cannot change hands before
/// the fenced write commits. Expiry alone does not refuse: nobody else can have worked
/// under the lease without taking it, which moves the token.
pub(crate) async fn held_in<C: ConnectionTrait>(tx: &C, db: &Db, l: &Lease) -> Result<bool> {
    let found = lease::Entity::find_by_id(l.name.as_str())
        .select_only()
        .column(lease::Column::Owner)
        .column(lease::Column::Token)
        .lock_exclusive()
        .into_tuple::<(String, i64)>()
        .one(tx)
        .await
        .during(db, "checking the lease of a fenced write")?;
    Ok(found.is_some_and(|(owner, token)| owner == l.owner && token == l.token))
}
