//! API and agent tokens: signed, expiring, revocable, stored hashed, optionally bound to
//! source addresses.
//!
//! A token reads `ob2.<kind>.<id>.<expiry>.<mac>`: `id` is random and public (it finds
//! the row), `expiry` is a Unix time, and `mac` is HMAC-SHA256 over the rest with the
//! token sub-key of the [`SecretKey`], which lives outside the store (see [`secret`]).
//! The MAC is checked before the store is asked, so a forged or expired token costs no
//! query; the store keeps only SHA-256 of the MAC, so a copy of the database neither
//! holds a token nor lets one be made; revocation and address allow-lists live in the
//! row. Tokens of the earlier format (`ob1.…`) were signed with the key itself, which
//! an earlier version kept in the store and [`secret::load`] moved out; they keep
//! working until they expire.
//!
//! A token has exactly one accepted text: `verify` rebuilds the canonical text from
//! the parts it parsed and refuses anything else (whitespace, a signed or zero-padded
//! expiry, another case, base64 padding or other trailing bits).
//!
//! A row that passed is kept in memory for [`REREAD_AFTER`], so a busy API client costs
//! one read every few seconds, not one per request. Revoking through this server takes
//! effect at once; revoking elsewhere (`opsbot token revoke`, another instance) within
//! [`REREAD_AFTER`].

mod error;
pub mod secret;

pub use error::AuthError;
pub use secret::{KeySource, Purpose, SecretKey};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use opsbot_store::{NewToken, TokenRecord, TokenStore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

const VERSION: &str = "ob2";
/// Tokens signed with the key itself, before sub-keys (verified, never issued).
const LEGACY_VERSION: &str = "ob1";
/// A token id: 8 random bytes in lower-case hex.
const ID_LEN: usize = 16;
/// HMAC-SHA256 in unpadded base64url.
const MAC_LEN: usize = 43;

/// How long a token row that passed is trusted before the store is asked again.
pub const REREAD_AFTER: Duration = Duration::from_secs(5);

/// More remembered rows than this and the memory starts over (only rows whose MAC and
/// hash matched get in, so it holds real tokens only).
const REMEMBERED: usize = 10_000;

/// What a token is for; a token of one kind is refused where the other is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The REST API, acting as a user with that user's roles.
    Api,
    /// A CMDB host agent reporting facts.
    Agent,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Agent => "agent",
        }
    }

    fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "api" => Some(TokenKind::Api),
            "agent" => Some(TokenKind::Agent),
            _ => None,
        }
    }
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub kind: TokenKind,
    /// API: the user id the token acts as. Agent: the host identity it may report as
    /// (empty: any host, which the CMDB then pins on first report).
    pub subject: String,
    pub ttl: Duration,
    /// Where the token may be used from; empty = anywhere.
    pub allow_ips: Vec<IpNet>,
    pub label: String,
}

/// A newly issued token: the secret text is shown once and never stored.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub kind: TokenKind,
    pub subject: String,
}

/// Issues and checks tokens. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    store: Arc<dyn TokenStore>,
    /// Signs and checks `ob2` tokens.
    key: Arc<[u8; 32]>,
    /// Checks `ob1` tokens of the earlier format.
    legacy_key: Arc<[u8; 32]>,
    /// token id → its row and when it was read.
    recent: Arc<Mutex<HashMap<String, (TokenRecord, Instant)>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens signed with `key`'s token sub-key. Every opsbot instance on one store
    /// must have the same key (see [`secret::load`]), so any of them accepts any token.
    pub fn new(store: Arc<dyn TokenStore>, key: &SecretKey) -> Tokens {
        Tokens {
            store,
            key: Arc::new(key.derive(Purpose::Tokens)),
            legacy_key: Arc::new(*key.legacy_token_key()),
            recent: Arc::default(),
        }
    }

    pub async fn issue(&self, req: &TokenRequest) -> Result<Issued, AuthError> {
        if req.ttl.is_zero() {
            return Err(AuthError::BadRequest(
                "the lifetime must be more than 0".into(),
            ));
        }
        let ttl = chrono::Duration::from_std(req.ttl)
            .map_err(|_| AuthError::BadRequest("the lifetime is too long".into()))?;
        let expires_at = Utc::now()
            .checked_add_signed(ttl)
            .ok_or_else(|| AuthError::BadRequest("the lifetime is too long".into()))?;
        let expires_at = Utc
            .timestamp_opt(expires_at.timestamp(), 0)
            .single()
            .ok_or_else(|| AuthError::BadRequest("the lifetime is too long".into()))?;
        let token_id = hex(&rand::random::<[u8; 8]>());
        let signed = format!(
            "{VERSION}.{}.{token_id}.{}",
            req.kind.as_str(),
            expires_at.timestamp()
        );
        let mac = mac(self.key.as_slice(), &signed);
        self.store
            .token_insert(&NewToken {
                token_id: token_id.clone(),
                kind: req.kind.as_str().into(),
                subject: req.subject.clone(),
                secret_hash: hash(&mac),
                allow_ips: req.allow_ips.iter().map(|n| n.to_string()).collect(),
                label: req.label.clone(),
                expires_at,
            })
            .await?;
        Ok(Issued {
            token: format!("{signed}.{mac}"),
            token_id,
            expires_at,
        })
    }

    /// Checks `token` for use as `kind` from `peer`. The error says what is wrong, for
    /// the log and the audit; callers show clients only its [`AuthError::public`] text.
    pub async fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        peer: IpAddr,
    ) -> Result<Principal, AuthError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [version, token_kind, token_id, expiry, mac_text] = parts[..] else {
            return Err(AuthError::Malformed);
        };
        let key = match version {
            VERSION => self.key.as_slice(),
            LEGACY_VERSION => self.legacy_key.as_slice(),
            _ => return Err(AuthError::Malformed),
        };
        let token_kind = TokenKind::parse(token_kind).ok_or(AuthError::Malformed)?;
        let expiry: i64 = expiry.parse().map_err(|_| AuthError::Malformed)?;
        let signed = format!("{version}.{}.{token_id}.{expiry}", token_kind.as_str());
        // One text per token: what was sent must be exactly what would be issued.
        let canonical = token_id.len() == ID_LEN
            && token_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && mac_text.len() == MAC_LEN
            && token.len() == signed.len() + 1 + MAC_LEN
            && token.starts_with(&signed);
        if !canonical {
            return Err(AuthError::Malformed);
        }
        let expected = mac(key, &signed);
        if !bool::from(expected.as_bytes().ct_eq(mac_text.as_bytes())) {
            return Err(AuthError::Forged);
        }
        let mac = mac_text;
        if token_kind != kind {
            return Err(AuthError::WrongKind {
                expected: kind.as_str(),
            });
        }
        if expiry <= Utc::now().timestamp() {
            return Err(AuthError::Expired);
        }
        let mut record = match self.remembered(token_id) {
            Some(record) => record,
            None => self
                .store
                .token_get(token_id)
                .await?
                .ok_or(AuthError::Unknown)?,
        };
        if !bool::from(record.secret_hash.as_bytes().ct_eq(hash(mac).as_bytes())) {
            // A valid MAC for a row that holds another hash: the key changed since
            // the token was issued, or the row was tampered with.
            return Err(AuthError::Forged);
        }
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if !address_allowed(&record, peer) {
            return Err(AuthError::AddressNotAllowed(peer));
        }
        // A use per minute is enough for `token list`; a write per request is not.
        if record
            .last_used_at
            .is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60))
        {
            match self.store.token_touch(token_id).await {
                Ok(_) => record.last_used_at = Some(Utc::now()),
                Err(e) => tracing::debug!(error = %e, "could not record a token's use"),
            }
        }
        self.remember(&record);
        Ok(Principal {
            token_id: record.token_id,
            kind,
            subject: record.subject,
        })
    }

    pub async fn revoke(&self, token_id: &str) -> Result<bool, AuthError> {
        let revoked = self.store.token_revoke(token_id).await?;
        self.lock_recent().remove(token_id);
        Ok(revoked)
    }

    /// The row of `token_id` if it passed less than [`REREAD_AFTER`] ago.
    fn remembered(&self, token_id: &str) -> Option<TokenRecord> {
        let recent = self.lock_recent();
        let (record, read_at) = recent.get(token_id)?;
        (read_at.elapsed() < REREAD_AFTER).then(|| record.clone())
    }

    fn remember(&self, record: &TokenRecord) {
        let mut recent = self.lock_recent();
        let read_at = match recent.get(&record.token_id) {
            // Still the read it was; only the use time moved.
            Some((_, at)) if at.elapsed() < REREAD_AFTER => *at,
            _ => Instant::now(),
        };
        if recent.len() >= REMEMBERED {
            recent.clear();
        }
        recent.insert(record.token_id.clone(), (record.clone(), read_at));
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, HashMap<String, (TokenRecord, Instant)>> {
        // A panic while holding this lock leaves whole entries only.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn list(&self) -> Result<Vec<TokenRecord>, AuthError> {
        Ok(self.store.token_list().await?)
    }
}

/// HMAC-SHA256 of `signed` under `key`, base64url without padding (the one encoding
/// `verify` accepts).
fn mac(key: &[u8], signed: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(signed.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// `10.0.0.0/8`, `192.168.1.7` (one address), `::1` → a network.
pub fn parse_cidr(s: &str) -> Result<IpNet, AuthError> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| {
            AuthError::BadRequest(format!("`{s}` is not an address or CIDR (e.g. 10.0.0.0/8)"))
        })
}

fn address_allowed(record: &TokenRecord, peer: IpAddr) -> bool {
    if record.allow_ips.is_empty() {
        return true;
    }
    // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    record
        .allow_ips
        .iter()
        .filter_map(|c| IpNet::from_str(c).ok())
        .any(|net| net.contains(&peer))
}

fn hash(mac: &str) -> String {
    hex(&Sha256::digest(mac.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
