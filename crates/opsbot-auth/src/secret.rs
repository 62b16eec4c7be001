//! The one secret opsbot signs with, kept outside the store: a 32-byte key from
//! `$OPSBOT_SECRET_KEY` or a key file (mode 0600, made on first use). API and agent
//! tokens and the web UI each sign with their own sub-key derived from it (HKDF-SHA256
//! with a label per use), so a copy of the database holds nothing that makes or checks
//! a token or a web login.
//!
//! The store keeps only a *check value* of the key (HKDF output under its own label,
//! which tells keys apart and reveals nothing of them), so an instance started with
//! another key, or with none while the store's tokens were signed with one, refuses to
//! start instead of silently refusing every token. Replacing the key on purpose is
//! [`rotate`]: a new key, the new check value, every issued token revoked.
//!
//! Earlier versions kept the token key (`auth.signing_key`) and the web key
//! (`web.signing_key`) in `provider_state`. [`load`] moves the token key to the key file
//! when there is none yet (tokens issued under it keep working: they read `ob1.…` and
//! are checked with that key itself), and erases both from the store.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hkdf::Hkdf;
use opsbot_store::{StateStore, StoreError, TokenStore};
use sha2::Sha256;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The environment variable that may hold the key instead of a file.
pub const ENV_VAR: &str = "OPSBOT_SECRET_KEY";
/// Where earlier versions kept the token key and the web key.
const LEGACY_TOKEN_KEY: &str = "auth.signing_key";
const LEGACY_WEB_KEY: &str = "web.signing_key";
/// The key's check value in the store.
const CHECK_STATE: &str = "auth.key_check";
/// HKDF salt: fixed, so every instance derives the same sub-keys from one key.
const SALT: &[u8] = b"opsbot secret key v1";

/// What a sub-key is for; each gets its own, so one use cannot stand in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// API and agent tokens (`ob2.…`).
    Tokens,
    /// The web UI: session ids in the session store, login-form and OAuth-state cookies.
    Web,
    /// The keys of card buttons (`opsbot_core::card::CardKeys`).
    Cards,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Tokens => b"opsbot/tokens",
            Purpose::Web => b"opsbot/web",
            Purpose::Cards => b"opsbot/cards",
        }
    }
}

/// The secret key. Its bytes are wiped from memory when the last clone goes; `Debug`
/// shows only the check value.
#[derive(Clone)]
pub struct SecretKey(Arc<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(check {})", self.check())
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SecretKey {}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        SecretKey::from_bytes(rand::random())
    }

    fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(Arc::new(Zeroizing::new(bytes)))
    }

    /// The key as written: 32 bytes in base64 (standard or URL-safe alphabet, padded or
    /// not, as `openssl rand -base64 32` prints) or 64 hex digits.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let lenient = |a: &alphabet::Alphabet| {
            GeneralPurpose::new(
                a,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent),
            )
        };
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        } else {
            lenient(&alphabet::URL_SAFE)
                .decode(text)
                .or_else(|_| lenient(&alphabet::STANDARD).decode(text))
                .ok()
        };
        let bytes = Zeroizing::new(bytes.unwrap_or_default());
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(SecretKey::from_bytes)
            .map_err(|_| {
                format!(
                    "not a key: expected 32 random bytes in base64 (43 or 44 characters) or \
                     64 hex digits, got {} characters; make one with `openssl rand -base64 32`",
                    text.chars().count()
                )
            })
    }

    /// The text written to a key file.
    fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_slice()))
    }

    /// The sub-key for `purpose`.
    pub fn derive(&self, purpose: Purpose) -> [u8; 32] {
        self.expand(purpose.label())
    }

    /// A value that tells keys apart without telling anything about them, safe to
    /// store, log and compare between instances.
    pub fn check(&self) -> String {
        hex(&self.expand(b"opsbot/key-check")[..8])
    }

    /// The key itself, for tokens of the earlier format (`ob1.…`), which were signed
    /// with the key an earlier version kept in the store.
    pub(crate) fn legacy_token_key(&self) -> &[u8; 32] {
        &self.0
    }

    fn expand(&self, label: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), self.0.as_slice())
            .expand(label, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

/// Where the key comes from: `env` (the value of [`ENV_VAR`]) wins over `file`.
#[derive(Clone)]
pub struct KeySource {
    pub env: Option<String>,
    pub file: PathBuf,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("env", &self.env.as_ref().map(|_| "(set)"))
            .field("file", &self.file)
            .finish()
    }
}

impl KeySource {
    /// `$OPSBOT_SECRET_KEY` if set (and not empty), else `file`.
    pub fn from_env_or(file: impl Into<PathBuf>) -> KeySource {
        KeySource {
            env: std::env::var(ENV_VAR).ok().filter(|v| !v.trim().is_empty()),
            file: file.into(),
        }
    }

    fn origin(&self) -> String {
        match &self.env {
            Some(_) => format!("${ENV_VAR}"),
            None => self.file.display().to_string(),
        }
    }
}

/// Why the key could not be had. Every message says what to do, and none holds a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secret key from {origin}: {problem}")]
    Bad { origin: String, problem: String },
    #[error(
        "secret key file {path} may be read by other users (mode {mode:04o}); \
         run `chmod 600 {path}` (and make sure it belongs to the user opsbot runs as)"
    )]
    Exposed { path: String, mode: u32 },
    #[error("secret key file {path}: {message}")]
    Io { path: String, message: String },
    #[error(
        "no secret key at {path} (nor in ${ENV_VAR}), but the tokens in this store were \
         signed with one (check {stored}). Copy the key file from another opsbot \
         instance of this store, or set ${ENV_VAR} to its key. If the key is lost, run \
         `opsbot token rotate-key --yes`: a new key, every token revoked, web logins \
         ended; then issue new tokens with `opsbot token create`."
    )]
    Missing { path: String, stored: String },
    #[error(
        "the secret key from {origin} (check {ours}) is not the key the tokens in this \
         store were signed with (check {stored}). Every opsbot instance on one store \
         needs the same key: copy the key file from the first instance, or set \
         ${ENV_VAR} to its key. To replace the key on purpose, run `opsbot token \
         rotate-key --yes`."
    )]
    Mismatch {
        origin: String,
        ours: String,
        stored: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The secret key for this store: from `$OPSBOT_SECRET_KEY` or the key file, the file
/// made on first use (or from the key an earlier version kept in the store), checked
/// against the store's check value (written on first use). Old keys in the store are
/// erased once the key is safely in its file.
pub async fn load(source: &KeySource, store: &dyn StateStore) -> Result<SecretKey, KeyError> {
    let legacy = legacy_key(store).await?;
    let stored_check = store.get_state(CHECK_STATE).await?;
    let key = match &source.env {
        Some(text) => SecretKey::parse(text).map_err(|problem| KeyError::Bad {
            origin: format!("${ENV_VAR}"),
            problem,
        })?,
        None => match read_key_file(&source.file)? {
            Some(key) => key,
            None => {
                let (key, moved) = match (&legacy, &stored_check) {
                    (Some(old), _) => (old.clone(), true),
                    (None, Some(stored)) => {
                        return Err(KeyError::Missing {
                            path: source.file.display().to_string(),
                            stored: stored.clone(),
                        })
                    }
                    (None, None) => (SecretKey::generate(), false),
                };
                create_key_file(&source.file, &key, moved)?
            }
        },
    };
    if let Some(old) = &legacy {
        if old != &key {
            tracing::warn!(
                key = %source.origin(),
                "this store held the token key of an earlier opsbot version, and the \
                 configured secret key is another one: tokens issued before (ob1.…) are \
                 no longer accepted; issue new ones with `opsbot token create`"
            );
        }
    }
    match stored_check {
        Some(stored) if stored != key.check() => {
            return Err(KeyError::Mismatch {
                origin: source.origin(),
                ours: key.check(),
                stored,
            })
        }
        Some(_) => {}
        None => {
            store.put_state(CHECK_STATE, &key.check()).await?;
            // Two instances starting at once with different keys: one write stays.
            let stored = store.get_state(CHECK_STATE).await?.unwrap_or_default();
            if stored != key.check() {
                return Err(KeyError::Mismatch {
                    origin: source.origin(),
                    ours: key.check(),
                    stored,
                });
            }
        }
    }
    erase_legacy(store).await?;
    tracing::info!(key = %source.origin(), check = %key.check(), "secret key loaded");
    Ok(key)
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotated {
    pub key: SecretKey,
    /// Where the new key is: the key file, or `$OPSBOT_SECRET_KEY`.
    pub origin: String,
    pub revoked: usize,
}

/// Replaces the key: a new one in the key file (or the new value of
/// `$OPSBOT_SECRET_KEY`, which must differ from the store's), its check value in the
/// store, and every issued token revoked, since none can verify any more.
pub async fn rotate<S>(source: &KeySource, store: &S) -> Result<Rotated, KeyError>
where
    S: StateStore + TokenStore + ?Sized,
{
    let stored_check = store.get_state(CHECK_STATE).await?;
    let key = match &source.env {
        Some(text) => {
            let key = SecretKey::parse(text).map_err(|problem| KeyError::Bad {
                origin: format!("${ENV_VAR}"),
                problem,
            })?;
            if stored_check.as_deref() == Some(key.check().as_str()) {
                return Err(KeyError::Refused(format!(
                    "${ENV_VAR} holds the current key (check {}): put the new key there \
                     (`openssl rand -base64 32`) and run this again",
                    key.check()
                )));
            }
            key
        }
        None => {
            let key = SecretKey::generate();
            replace_key_file(&source.file, &key)?;
            key
        }
    };
    store.put_state(CHECK_STATE, &key.check()).await?;
    erase_legacy(store).await?;
    let mut revoked = 0;
    for t in store.token_list().await? {
        if t.revoked_at.is_none() && store.token_revoke(&t.token_id).await? {
            revoked += 1;
        }
    }
    tracing::info!(check = %key.check(), revoked, "secret key replaced");
    Ok(Rotated {
        key,
        origin: source.origin(),
        revoked,
    })
}

async fn legacy_key(store: &dyn StateStore) -> Result<Option<SecretKey>, KeyError> {
    let Some(text) = store.get_state(LEGACY_TOKEN_KEY).await? else {
        return Ok(None);
    };
    let key = URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .map(SecretKey::from_bytes);
    if key.is_none() {
        tracing::warn!(
            "the store's old token key ({LEGACY_TOKEN_KEY}) is damaged; it is discarded"
        );
    }
    Ok(key)
}

async fn erase_legacy<S: StateStore + ?Sized>(store: &S) -> Result<(), KeyError> {
    for k in [LEGACY_TOKEN_KEY, LEGACY_WEB_KEY] {
        if store.get_state(k).await?.is_some() {
            store.erase_state(k).await?;
            tracing::info!(state = k, "old signing key erased from the store");
        }
    }
    Ok(())
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
    }
}

/// The key in `path`; `None` when there is no such file. A file others may read, or
/// that holds no key, is an error.
fn read_key_file(path: &Path) -> Result<Option<SecretKey>, KeyError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot read", e)),
    };
    if !meta.is_file() {
        return Err(KeyError::Io {
            path: path.display().to_string(),
            message: "not a regular file".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| io_error(path, "cannot read", e))?,
    );
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let [line] = lines[..] else {
        return Err(KeyError::Bad {
            origin: path.display().to_string(),
            problem: format!(
                "expected one line holding the key (lines starting with # are comments), \
                 found {}",
                lines.len()
            ),
        });
    };
    SecretKey::parse(line)
        .map(Some)
        .map_err(|problem| KeyError::Bad {
            origin: path.display().to_string(),
            problem,
        })
}

fn file_text(key: &SecretKey) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# opsbot secret key: signs API and agent tokens and web logins.\n\
         # Keep it private (mode 0600) and out of database backups. Every opsbot instance\n\
         # on one store needs this same file (or ${ENV_VAR} set to this key).\n\
         # To replace it: `opsbot token rotate-key --yes` (old tokens and logins end).\n\
         {}\n",
        key.encode().as_str()
    ))
}

/// Writes `key` to a new private file beside `path`, made durable.
fn write_temp(path: &Path, key: &SecretKey) -> Result<PathBuf, KeyError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error(path, "cannot create its directory", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into());
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error(path, "cannot create", e))?;
    let written = f
        .write_all(file_text(key).as_bytes())
        .and_then(|_| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "cannot write", e));
    }
    Ok(tmp)
}

fn sync_dir(path: &Path) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Puts `key` at `path` unless a key file appeared there meanwhile (another process
/// starting at the same moment), whose key is then used. Returns the key in the file.
fn create_key_file(path: &Path, key: &SecretKey, moved: bool) -> Result<SecretKey, KeyError> {
    let tmp = write_temp(path, key)?;
    // A hard link never replaces: of two processes racing, one file wins, whole.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return read_key_file(path)?.ok_or_else(|| KeyError::Io {
                path: path.display().to_string(),
                message: "appeared and vanished while it was being created".into(),
            });
        }
        Err(e) => return Err(io_error(path, "cannot create", e)),
    }
    sync_dir(path);
    if moved {
        tracing::warn!(
            file = %path.display(),
            check = %key.check(),
            "moved the token key out of the store (where earlier versions kept it) into \
             this file: tokens issued before keep working. Back the file up apart from the \
             database, and copy it to every other opsbot instance of this store (or set \
             ${ENV_VAR}); database backups made before hold the key, so if one may have \
             leaked, run `opsbot token rotate-key --yes`",
        );
    } else {
        tracing::warn!(
            file = %path.display(),
            check = %key.check(),
            "made a new secret key in this file (mode 0600): it signs API and agent tokens \
             and web logins. Back it up apart from the database, and give every other \
             opsbot instance of this store the same file (or set ${ENV_VAR}); an instance \
             with another key refuses to start",
        );
    }
    Ok(key.clone())
}

/// Replaces the key file with one holding `key` (atomically).
fn replace_key_file(path: &Path, key: &SecretKey) -> Result<(), KeyError> {
    let tmp = write_temp(path, key)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "cannot replace", e));
    }
    sync_dir(path);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_the_usual_spellings_and_sub_keys_differ() {
        let key = SecretKey::generate();
        let bytes: [u8; 32] = **key.0;
        let std = base64::engine::general_purpose::STANDARD.encode(bytes);
        for text in [
            URL_SAFE_NO_PAD.encode(bytes),
            std.clone(),
            std.trim_end_matches('=').to_string(),
            hex(&bytes),
            format!("  {std}\n"),
        ] {
            assert_eq!(SecretKey::parse(&text).unwrap(), key, "{text}");
        }
        for bad in [
            "",
            "short",
            &hex(&bytes[..31]),
            &URL_SAFE_NO_PAD.encode([0u8; 33]),
        ] {
            assert!(SecretKey::parse(bad).is_err(), "{bad}");
        }
        assert_ne!(key.derive(Purpose::Tokens), key.derive(Purpose::Web));
        assert_ne!(&key.derive(Purpose::Tokens), key.legacy_token_key());
        assert_eq!(key.check().len(), 16);
        assert_ne!(key.check(), SecretKey::generate().check());
        let shown = format!("{key:?}");
        assert!(!shown.contains(&URL_SAFE_NO_PAD.encode(bytes)), "{shown}");
    }
}
