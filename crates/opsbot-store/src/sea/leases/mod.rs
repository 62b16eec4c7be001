//! Lease rows: taken by a conditional update (ours, or expired), else by an insert that
//! the primary key lets only one racer win.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::leases::LeaseStore;
use crate::sea::errors::{is_duplicate, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::Result;
use async_trait::async_trait;
use entity::lease;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use std::time::Duration;

#[async_trait]
impl LeaseStore for SeaStore {
    async fn lease_take(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        const ACTION: &str = "taking a lease";
        let at = now();
        let until = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let updated = lease::Entity::update_many()
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
            return Ok(true);
        }
        let row = lease::ActiveModel {
            name: Set(name.to_string()),
            owner: Set(owner.to_string()),
            expires_at: Set(until),
        };
        match lease::Entity::insert(row)
            .exec_without_returning(&self.conn)
            .await
        {
            Ok(_) => Ok(true),
            // Someone holds it (or won the race for a free one).
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(self.db.map(e, ACTION)),
        }
    }

    async fn lease_release(&self, name: &str, owner: &str) -> Result<()> {
        lease::Entity::delete_many()
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::Owner.eq(owner))
            .exec(&self.conn)
            .await
            .during(&self.db, "releasing a lease")?;
        Ok(())
    }
}
