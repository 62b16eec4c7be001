//! The secret key against a real (SQLite) store and real files: made on first use in a
//! private file, never in the store, checked against the store's check value, moved
//! out of the store where an earlier version kept it, and rotated.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use opsbot_auth::secret::{self, KeyError, KeySource};
use opsbot_auth::{AuthError, SecretKey, TokenKind, TokenRequest, Tokens};
use opsbot_store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

async fn store(path: &Path) -> Arc<dyn Store> {
    opsbot_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

fn file(path: &Path) -> KeySource {
    KeySource {
        env: None,
        file: path.to_path_buf(),
    }
}

fn request() -> TokenRequest {
    TokenRequest {
        kind: TokenKind::Agent,
        subject: String::new(),
        ttl: Duration::from_secs(3600),
        allow_ips: vec![],
        label: String::new(),
    }
}

fn peer() -> std::net::IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn key_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .to_string()
}

fn bytes_of(dir: &Path, name: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(dir.join(format!("{name}{suffix}"))) {
            all.extend(b);
        }
    }
    all
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn made_once_private_reused_and_never_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir.path().join("a.db")).await;
    let path = dir.path().join("keys/opsbot.key");
    let key = secret::load(&file(&path), db.as_ref()).await.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = secret::load(&file(&path), db.as_ref()).await.unwrap();
    assert_eq!(key, again, "the file's key, not a new one");
    let tokens = Tokens::new(db.clone(), &key);
    let issued = tokens.issue(&request()).await.unwrap();
    assert!(issued.token.starts_with("ob2.agent."), "{}", issued.token);
    let text = key_line(&path);
    assert!(!holds(&bytes_of(dir.path(), "a.db"), text.as_bytes()));
    for state in ["auth.signing_key", "web.signing_key"] {
        assert_eq!(db.get_state(state).await.unwrap(), None, "{state}");
    }

    // A copy of the database with any other key verifies nothing.
    std::fs::copy(dir.path().join("a.db"), dir.path().join("copy.db")).unwrap();
    let copy = store(&dir.path().join("copy.db")).await;
    let err = Tokens::new(copy, &SecretKey::generate())
        .verify(&issued.token, TokenKind::Agent, peer())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");
}

#[tokio::test]
async fn a_readable_file_a_missing_file_and_another_key_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir.path().join("a.db")).await;
    let path = dir.path().join("opsbot.key");
    let key = secret::load(&file(&path), db.as_ref()).await.unwrap();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = secret::load(&file(&path), db.as_ref()).await.unwrap_err();
    assert!(matches!(e, KeyError::Exposed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod 600 {}", path.display())),
        "{e}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The store's tokens were signed with a key; with none, nothing is made up.
    let elsewhere = dir.path().join("other.key");
    let e = secret::load(&file(&elsewhere), db.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(e, KeyError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("rotate-key"), "{e}");
    assert!(!elsewhere.exists(), "no key file made");

    // Another instance configured with another key.
    let env = KeySource {
        env: Some(URL_SAFE_NO_PAD.encode([7u8; 32])),
        file: path.clone(),
    };
    let e = secret::load(&env, db.as_ref()).await.unwrap_err();
    assert!(matches!(e, KeyError::Mismatch { .. }), "{e}");
    assert!(!e.to_string().contains(&key_line(&path)), "{e}");

    // The same key through the environment is fine (several hosts, a secret manager).
    let env = KeySource {
        env: Some(key_line(&path)),
        file: dir.path().join("unused.key"),
    };
    assert_eq!(secret::load(&env, db.as_ref()).await.unwrap(), key);
    assert!(!dir.path().join("unused.key").exists());
    std::fs::write(&path, "# just a comment\n").unwrap();
    let e = secret::load(&file(&path), db.as_ref()).await.unwrap_err();
    assert!(e.to_string().contains("one line"), "{e}");
}

#[tokio::test]
async fn an_earlier_versions_store_key_moves_to_the_file_and_its_tokens_keep_working() {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir.path().join("a.db")).await;
    let legacy = [42u8; 32];
    let legacy_text = URL_SAFE_NO_PAD.encode(legacy);
    db.put_state("auth.signing_key", &legacy_text)
        .await
        .unwrap();
    db.put_state("web.signing_key", &URL_SAFE_NO_PAD.encode([43u8; 32]))
        .await
        .unwrap();
    let expiry = chrono::Utc::now().timestamp() + 3600;
    let signed = format!("ob1.agent.0123456789abcdef.{expiry}");
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&legacy).unwrap();
    m.update(signed.as_bytes());
    let mac = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    db.token_insert(&opsbot_store::NewToken {
        token_id: "0123456789abcdef".into(),
        kind: "agent".into(),
        subject: String::new(),
        secret_hash: Sha256::digest(mac.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        allow_ips: vec![],
        label: String::new(),
        expires_at: chrono::DateTime::from_timestamp(expiry, 0).unwrap(),
    })
    .await
    .unwrap();
    let old_token = format!("{signed}.{mac}");

    let path = dir.path().join("opsbot.key");
    let key = secret::load(&file(&path), db.as_ref()).await.unwrap();
    assert_eq!(key_line(&path), legacy_text, "moved, not made up");
    let tokens = Tokens::new(db.clone(), &key);
    tokens
        .verify(&old_token, TokenKind::Agent, peer())
        .await
        .unwrap();
    assert_eq!(db.get_state("auth.signing_key").await.unwrap(), None);
    assert_eq!(db.get_state("web.signing_key").await.unwrap(), None);
    let bytes = bytes_of(dir.path(), "a.db");
    assert!(
        !holds(&bytes, legacy_text.as_bytes()),
        "the erased key is still in the database file"
    );
    // Re-spelled as a new-format token it is nothing.
    let respelled = old_token.replacen("ob1.", "ob2.", 1);
    assert!(tokens
        .verify(&respelled, TokenKind::Agent, peer())
        .await
        .is_err());
}

#[tokio::test]
async fn rotation_revokes_every_token_and_only_new_ones_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir.path().join("a.db")).await;
    let path = dir.path().join("opsbot.key");
    let old = secret::load(&file(&path), db.as_ref()).await.unwrap();
    let old_token = Tokens::new(db.clone(), &old)
        .issue(&request())
        .await
        .unwrap();
    let old_text = key_line(&path);
    let done = secret::rotate(&file(&path), db.as_ref()).await.unwrap();
    assert_eq!(done.revoked, 1);
    assert_ne!(done.key, old);
    let key = secret::load(&file(&path), db.as_ref()).await.unwrap();
    assert_eq!(key, done.key);
    let tokens = Tokens::new(db.clone(), &key);
    let err = tokens
        .verify(&old_token.token, TokenKind::Agent, peer())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");
    let new = tokens.issue(&request()).await.unwrap();
    tokens
        .verify(&new.token, TokenKind::Agent, peer())
        .await
        .unwrap();
    // An instance still holding the old key refuses to start.
    let stale = KeySource {
        env: Some(old_text),
        file: path.clone(),
    };
    let e = secret::load(&stale, db.as_ref()).await.unwrap_err();
    assert!(matches!(e, KeyError::Mismatch { .. }), "{e}");
}
