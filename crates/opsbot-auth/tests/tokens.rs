//! Tokens against a real (SQLite) store: issue, verify, and every refusal.

use opsbot_auth::{parse_cidr, AuthError, TokenKind, TokenRequest, Tokens};
use opsbot_store::Store;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let tokens = Tokens::open(store(&dir, "a.db").await).await.unwrap();
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
        let tokens = Tokens::open(store(&dir, "a.db").await).await.unwrap();
        tokens.issue(&request(TokenKind::Agent, &[])).await.unwrap()
    };
    let again = Tokens::open(store(&dir, "a.db").await).await.unwrap();
    again
        .verify(&issued.token, TokenKind::Agent, ip("127.0.0.1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::open(store(&dir, "a.db").await).await.unwrap();
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
    let ta = Tokens::open(a.clone()).await.unwrap();
    let tb = Tokens::open(b.clone()).await.unwrap();
    let issued = ta.issue(&request(TokenKind::Api, &[])).await.unwrap();
    let err = tb
        .verify(&issued.token, TokenKind::Api, ip("127.0.0.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forged), "{err}");

    // Same key, but the row lives only in store a.
    let key = a.get_state("auth.signing_key").await.unwrap().unwrap();
    b.put_state("auth.signing_key", &key).await.unwrap();
    let tb = Tokens::open(b).await.unwrap();
    let err = tb
        .verify(&issued.token, TokenKind::Api, ip("127.0.0.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unknown), "{err}");
}

#[tokio::test]
async fn allow_list_admits_only_listed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::open(store(&dir, "a.db").await).await.unwrap();
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
    let tokens = Tokens::open(store(&dir, "a.db").await).await.unwrap();
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
    let server = Tokens::open(db.clone()).await.unwrap();
    // `opsbot token revoke` or another instance: the same store, its own memory.
    let elsewhere = Tokens::open(db).await.unwrap();
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
