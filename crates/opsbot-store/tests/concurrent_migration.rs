//! Several processes opening one new database at once (`opsbot serve` beside a CLI
//! command, instances behind a load balancer) all end with the full schema: the one
//! that loses a migration race waits for the winner instead of failing on a table or
//! index that "already exists".
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_of_one_sqlite_file_all_succeed() {
    // Each round is a new file: the race is only on a database nobody migrated yet.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/opsbot.db", dir.path().display());
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { opsbot_store::connect(&url).await.map(drop) })
            })
            .collect();
        for (i, open) in opens.into_iter().enumerate() {
            if let Err(e) = open.await.unwrap() {
                panic!("round {round}, opener {i}: {e}");
            }
        }
        let store = opsbot_store::connect(&url).await.unwrap();
        assert_eq!(store.pool_version().await.unwrap(), 0);
    }
}
