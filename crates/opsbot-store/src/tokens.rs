//! Issued API and agent tokens, as records. The store never sees a token itself, only
//! its public id and a keyed hash of it (`opsbot-auth` makes and checks tokens).

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A token as issued, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    /// Public, random, unique: the part of the token that finds its row.
    pub token_id: String,
    /// `api` or `agent`.
    pub kind: String,
    /// Who the token acts as: a user id (API) or a host identity (agent; empty = any).
    pub subject: String,
    pub secret_hash: String,
    /// CIDRs the token may be used from; empty = anywhere.
    pub allow_ips: Vec<String>,
    pub label: String,
    pub expires_at: DateTime<Utc>,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub token_id: String,
    pub kind: String,
    pub subject: String,
    pub secret_hash: String,
    pub allow_ips: Vec<String>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn token_insert(&self, token: &NewToken) -> Result<()>;

    async fn token_get(&self, token_id: &str) -> Result<Option<TokenRecord>>;

    /// Every token, newest first (revoked and expired ones included).
    async fn token_list(&self) -> Result<Vec<TokenRecord>>;

    /// Revokes a token for good. `false` when there is no such token or it was already
    /// revoked.
    async fn token_revoke(&self, token_id: &str) -> Result<bool>;

    /// Records a use (shown by `opsbot token list`).
    async fn token_touch(&self, token_id: &str) -> Result<()>;
}
