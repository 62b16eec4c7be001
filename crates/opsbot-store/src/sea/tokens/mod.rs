//! Token rows.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::errors::{Db, During};
use crate::sea::pool::now;
use crate::sea::SeaStore;
use crate::tokens::{NewToken, TokenRecord, TokenStore};
use crate::Result;
use async_trait::async_trait;
use entity::auth_token;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

fn record(db: &Db, m: auth_token::Model) -> Result<TokenRecord> {
    let allow_ips = serde_json::from_str(&m.allow_ips)
        .map_err(|e| db.corrupt(&format!("allow_ips of token {}", m.token_id), e))?;
    Ok(TokenRecord {
        token_id: m.token_id,
        kind: m.kind,
        subject: m.subject,
        secret_hash: m.secret_hash,
        allow_ips,
        label: m.label,
        created_at: m.created_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        last_used_at: m.last_used_at,
    })
}

#[async_trait]
impl TokenStore for SeaStore {
    async fn token_insert(&self, t: &NewToken) -> Result<()> {
        let row = auth_token::ActiveModel {
            id: NotSet,
            token_id: Set(t.token_id.clone()),
            kind: Set(t.kind.clone()),
            subject: Set(t.subject.clone()),
            secret_hash: Set(t.secret_hash.clone()),
            allow_ips: Set(serde_json::to_string(&t.allow_ips).unwrap_or_else(|_| "[]".into())),
            label: Set(t.label.clone()),
            created_at: Set(now()),
            expires_at: Set(t.expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
        };
        auth_token::Entity::insert(row)
            .exec_without_returning(&self.conn)
            .await
            .during(&self.db, "storing a token")?;
        Ok(())
    }

    async fn token_get(&self, token_id: &str) -> Result<Option<TokenRecord>> {
        auth_token::Entity::find()
            .filter(auth_token::Column::TokenId.eq(token_id))
            .one(&self.conn)
            .await
            .during(&self.db, "reading a token")?
            .map(|m| record(&self.db, m))
            .transpose()
    }

    async fn token_list(&self) -> Result<Vec<TokenRecord>> {
        auth_token::Entity::find()
            .order_by_desc(auth_token::Column::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "listing tokens")?
            .into_iter()
            .map(|m| record(&self.db, m))
            .collect()
    }

    async fn token_revoke(&self, token_id: &str) -> Result<bool> {
        let res = auth_token::Entity::update_many()
            .col_expr(auth_token::Column::RevokedAt, Expr::value(now()))
            .filter(auth_token::Column::TokenId.eq(token_id))
            .filter(auth_token::Column::RevokedAt.is_null())
            .exec(&self.conn)
            .await
            .during(&self.db, "revoking a token")?;
        Ok(res.rows_affected > 0)
    }

    async fn token_touch(&self, token_id: &str) -> Result<()> {
        auth_token::Entity::update_many()
            .col_expr(auth_token::Column::LastUsedAt, Expr::value(now()))
            .filter(auth_token::Column::TokenId.eq(token_id))
            .exec(&self.conn)
            .await
            .during(&self.db, "recording a token's use")?;
        Ok(())
    }
}
