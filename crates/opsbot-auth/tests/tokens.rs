//! Tokens against a real (SQLite) store: issue, verify, and every refusal.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_auth::{parse_cidr, AuthError, SecretKey, TokenKind, TokenRequest, Tokens};
use opsbot_store::Store;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// The secret key of "this deployment" (every instance has the same one).
static KEY: LazyLock<SecretKey> = LazyLock::new(SecretKey::generate);

async fn store(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    opsbot_store::connect(&url).await.unwrap()
}

fn request(kind: TokenKind, allow: &[&str]) -> TokenRequest {
    TokenRequest {
        kind,
        subject: "zhangsan".into(),
        ttl: Duration::from_secs(3600),
        allow_ips: allow.iter().map(|c| parse_cidr(c).unwrap()).collect(),
        label: "test".into(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn issued_token_verifies_as_its_subject() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
    let issued = tokens.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let who = tokens
        .verify(&issued.token, TokenKind::Api, ip("203.0.113.9"))
        .await
        .unwrap();
    assert_eq!(who.subject, "zhangsan");
    assert_eq!(who.token_id, issued.token_id);
    assert_eq!(who.kind, TokenKind::Api);
    let row = &tokens.list().await.unwrap()[0];
    assert!(row.last_used_at.is_some(), "a use is recorded");
    assert!(!row.secret_hash.is_empty() && !issued.token.contains(&row.secret_hash));
}

#[tokio::test]
async fn key_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let issued = {
        let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
        tokens.issue(&request(TokenKind::Agent, &[])).await.unwrap()
    };
    let again = Tokens::new(store(&dir, "a.db").await, &KEY);
    again
        .verify(&issued.token, TokenKind::Agent, ip("127.0.0.1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
    let issued = tokens.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let peer = ip("127.0.0.1");

    let err = tokens
        .verify("nonsense", TokenKind::Api, peer)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Malformed), "{err}");

    // Any change to the signed part or the MAC breaks the signature.
    let longer = issued.token.replace(
        &format!(".{}.", issued.expires_at.timestamp()),
        &format!(".{}.", issued.expires_at.timestamp() + 86_400),
    );
    let err = tokens
        .verify(&longer, TokenKind::Api, peer)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");
    let mut flipped = issued.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let err = tokens
        .verify(&flipped, TokenKind::Api, peer)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");

    let err = tokens
        .verify(&issued.token, TokenKind::Agent, peer)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::WrongKind { .. }), "{err}");

    assert!(tokens.revoke(&issued.token_id).await.unwrap());
    let err = tokens
        .verify(&issued.token, TokenKind::Api, peer)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Revoked), "{err}");
    assert!(err.is_client_error());
}

#[tokio::test]
async fn a_token_signed_by_another_server_is_forged_and_a_missing_row_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let a = store(&dir, "a.db").await;
    let b = store(&dir, "b.db").await;
    let ta = Tokens::new(a.clone(), &SecretKey::generate());
    // Even on the very same store: another key verifies nothing.
    let tb = Tokens::new(a.clone(), &SecretKey::generate());
    let issued = ta.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let err = tb
        .verify(&issued.token, TokenKind::Api, ip("127.0.0.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");

    // Same key, but the row lives only in store a.
    let shared = SecretKey::generate();
    let ta = Tokens::new(a, &shared);
    let tb = Tokens::new(b, &shared);
    let issued = ta.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let err = tb
        .verify(&issued.token, TokenKind::Api, ip("127.0.0.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unknown), "{err}");
}

#[tokio::test]
async fn allow_list_admits_only_listed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
    let issued = tokens
        .issue(&request(TokenKind::Api, &["10.0.0.0/8", "192.168.1.7"]))
        .await
        .unwrap();
    for ok in ["10.1.2.3", "192.168.1.7", "::ffff:10.9.9.9"] {
        tokens
            .verify(&issued.token, TokenKind::Api, ip(ok))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for no in ["192.168.1.8", "127.0.0.1", "::1"] {
        let err = tokens
            .verify(&issued.token, TokenKind::Api, ip(no))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::AddressNotAllowed(_)),
            "{no}: {err}"
        );
    }
    assert!(parse_cidr("10.0.0.0/33").is_err());
    assert!(parse_cidr("example.com").is_err());
}

#[tokio::test]
async fn a_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
    let mut req = request(TokenKind::Api, &[]);
    req.ttl = Duration::from_secs(1);
    let issued = tokens.issue(&req).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokens
            .verify(&issued.token, TokenKind::Api, ip("127.0.0.1"))
            .await
        {
            Err(AuthError::Expired) => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("expected expiry, got {other:?}"),
        }
    }
    req.ttl = Duration::ZERO;
    assert!(matches!(
        tokens.issue(&req).await.unwrap_err(),
        AuthError::BadRequest(_)
    ));
}

#[tokio::test]
async fn a_revocation_elsewhere_takes_effect_within_the_reread_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir, "a.db").await;
    let server = Tokens::new(db.clone(), &KEY);
    // `opsbot token revoke` or another instance: the same store, its own memory.
    let elsewhere = Tokens::new(db, &KEY);
    let issued = server.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let peer = ip("192.0.2.1");
    server
        .verify(&issued.token, TokenKind::Api, peer)
        .await
        .unwrap();
    let revoked_at = Instant::now();
    assert!(elsewhere.revoke(&issued.token_id).await.unwrap());
    // Until the server reads the row again it may still accept the token; after that,
    // never.
    let deadline = revoked_at + opsbot_auth::REREAD_AFTER + Duration::from_secs(5);
    loop {
        match server.verify(&issued.token, TokenKind::Api, peer).await {
            Err(AuthError::Revoked) => break,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "still accepted after the re-read time"
            ),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revoked_at.elapsed() < opsbot_auth::REREAD_AFTER + Duration::from_secs(5));
}

/// A token has exactly one accepted text: any other spelling of the same parts (sign or
/// leading zeros on the expiry, case, whitespace, base64 padding or other trailing bits)
/// is refused, even where it would decode to the same values.
#[tokio::test]
async fn a_token_has_exactly_one_accepted_text() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new(store(&dir, "a.db").await, &KEY);
    let issued = tokens.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let peer = ip("127.0.0.1");
    let t = issued.token.clone();
    tokens.verify(&t, TokenKind::Api, peer).await.unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let (version, kind, id, exp, mac) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
    let join = |v: &str, k: &str, i: &str, e: &str, m: &str| format!("{v}.{k}.{i}.{e}.{m}");
    // The last base64 character carries 4 bits of the MAC and 2 unused ones: the
    // other characters with the same 4 bits decode to the same bytes.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = ALPHABET.find(mac.chars().last().unwrap()).unwrap();
    let same_bits: Vec<String> = (1..4)
        .map(|low| {
            let c = ALPHABET.as_bytes()[(last & !3) | ((last + low) & 3)] as char;
            format!("{}{c}", &mac[..mac.len() - 1])
        })
        .collect();
    let mut variants = vec![
        join(version, kind, id, &format!("+{exp}"), mac),
        join(version, kind, id, &format!("0{exp}"), mac),
        join(version, kind, id, &format!("{exp}.0"), mac),
        join(version, kind, &id.to_uppercase(), exp, mac),
        join(version, &kind.to_uppercase(), id, exp, mac),
        join(&version.to_uppercase(), kind, id, exp, mac),
        join(version, kind, id, exp, &format!("{mac}=")),
        format!(" {t}"),
        format!("{t} "),
        format!("{t}\n"),
        format!("\t{t}"),
        format!("{t}."),
        t.replace('.', ". "),
    ];
    variants.extend(same_bits.iter().map(|m| join(version, kind, id, exp, m)));
    for v in &variants {
        assert_ne!(v, &t);
        let got = tokens.verify(v, TokenKind::Api, peer).await;
        assert!(got.is_err(), "{v:?} was accepted as {t:?}");
    }
    // The real one still works after all that.
    tokens.verify(&t, TokenKind::Api, peer).await.unwrap();
}
