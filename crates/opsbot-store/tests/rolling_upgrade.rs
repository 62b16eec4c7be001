//! A rolling upgrade: once a newer opsbot migrated the store, an instance still on the
//! previous binary can (re)start on it (migrations only add), instead of refusing
//! migrations it does not know.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use sea_orm::{ConnectionTrait, Database, Statement};

#[tokio::test]
async fn the_previous_binary_opens_a_store_a_newer_one_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let store = opsbot_store::connect(&url).await.unwrap();
    store.put_state("kept", "yes").await.unwrap();
    drop(store);

    // What a newer binary leaves behind: one more applied migration (and whatever it
    // added, which the previous binary does not read).
    let raw = Database::connect(format!("{url}?mode=rw")).await.unwrap();
    for sql in [
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000000_from_a_newer_opsbot', 0)",
        "CREATE TABLE from_a_newer_opsbot (id INTEGER PRIMARY KEY)",
    ] {
        raw.execute(Statement::from_string(raw.get_database_backend(), sql))
            .await
            .unwrap();
    }
    raw.close().await.unwrap();

    let store = opsbot_store::connect(&url)
        .await
        .expect("the previous binary starts on the newer schema");
    assert_eq!(
        store.get_state("kept").await.unwrap().as_deref(),
        Some("yes")
    );
}
