//! CMDB asset cases: a report creates an asset, later ones are diffed field by field
//! into the shared change history, batches may hold one host twice, token bindings
//! refuse a foreign token, and quiet assets turn stale until they report again.

use super::harness::Ctx;
use chrono::{SubsecRound, Utc};
use opsbot_core::{AssetStatus, Facts, VmLink};
use opsbot_store::{AssetIngest, AssetQuery, ChangeQuery, IngestOutcome};

fn report(identity: &str, hostname: &str, token: &str, facts: &[(&str, &str)]) -> AssetIngest {
    AssetIngest {
        identity: identity.into(),
        hostname: hostname.into(),
        source: "agent".into(),
        change_source: format!("agent:{token}"),
        token_id: token.into(),
        token_pinned: false,
        vm: None,
        facts: facts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Facts>(),
        report: format!("{{\"identity\":\"{identity}\"}}"),
        seen_at: Utc::now().trunc_subsecs(6),
    }
}

fn changes_of(o: &IngestOutcome) -> Vec<String> {
    match o {
        IngestOutcome::Stored { changes, .. } => changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} -> {}",
                    c.field,
                    c.old_value.as_deref().unwrap_or("∅"),
                    c.new_value.as_deref().unwrap_or("∅")
                )
            })
            .collect(),
        IngestOutcome::Refused { reason } => vec![format!("refused: {reason}")],
    }
}

pub async fn assets_ingest_diffs_field_by_field(ctx: Ctx) {
    let s = ctx.store;
    let first = report(
        "db-01",
        "db-01",
        "t1",
        &[
            ("cpu.cores", "8"),
            ("memory.total_bytes", "1024"),
            ("os.name", "Debian 数据库"),
        ],
    );
    let out = s.assets_ingest(std::slice::from_ref(&first)).await.unwrap();
    assert!(matches!(
        out[0],
        IngestOutcome::Stored { created: true, .. }
    ));
    assert_eq!(changes_of(&out[0]), ["created ∅ -> db-01"]);

    let same = s.assets_ingest(std::slice::from_ref(&first)).await.unwrap();
    assert!(
        changes_of(&same[0]).is_empty(),
        "{:?}",
        changes_of(&same[0])
    );

    // One batch, the same host twice: the second diffs against the first.
    let mut b = report(
        "db-01",
        "db-02",
        "t1",
        &[
            ("cpu.cores", "16"),
            ("os.name", "Debian 数据库"),
            ("disk.sdb.size_bytes", "99"),
        ],
    );
    b.vm = Some(VmLink {
        provider: "vc1".into(),
        vm_id: "vm-7".into(),
        name: "db-02".into(),
        scope_path: "vc1/DC0/C1/db-02".into(),
    });
    let c = report(
        "db-01",
        "db-02",
        "t1",
        &[
            ("cpu.cores", "32"),
            ("os.name", "Debian 数据库"),
            ("disk.sdb.size_bytes", "99"),
        ],
    );
    let other = report("web-01", "web-01", "t2", &[("cpu.cores", "2")]);
    let out = s.assets_ingest(&[b, other, c]).await.unwrap();
    let mut got = changes_of(&out[0]);
    got.sort();
    assert_eq!(
        got,
        [
            "cpu.cores 8 -> 16",
            "disk.sdb.size_bytes ∅ -> 99",
            "hostname db-01 -> db-02",
            "memory.total_bytes 1024 -> ∅",
            "vm ∅ -> vc1/db-02",
        ]
    );
    assert_eq!(
        changes_of(&out[2]),
        ["vm vc1/db-02 -> ∅", "cpu.cores 16 -> 32"]
    );

    let a = s.asset_find("DB-02").await.unwrap().expect("by hostname");
    assert_eq!(a.identity, "db-01");
    assert_eq!(
        s.asset_find("db-01").await.unwrap().unwrap().id,
        a.id,
        "by identity"
    );
    let facts = s.asset_facts(a.id).await.unwrap();
    assert_eq!(facts.get("cpu.cores").map(String::as_str), Some("32"));
    assert_eq!(
        facts.get("os.name").map(String::as_str),
        Some("Debian 数据库")
    );
    assert!(!facts.contains_key("memory.total_bytes"));
    assert_eq!(
        s.asset_report(a.id).await.unwrap().unwrap(),
        "{\"identity\":\"db-01\"}"
    );

    let history = s
        .changes(&ChangeQuery {
            provider: Some("cmdb".into()),
            object_kind: Some("asset".into()),
            object_id: Some("db-01".into()),
            limit: 0,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 1 + 5 + 2);
    assert_eq!(history.last().unwrap().field, "created", "newest first");
    assert!(history.iter().all(|c| c.source == "agent:t1"));

    let listed: Vec<String> = s
        .asset_list(&AssetQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.identity)
        .collect();
    assert_eq!(listed, ["db-01", "web-01"]);
    let found = s
        .asset_list(&AssetQuery {
            search: Some("WEB".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

pub async fn assets_token_binding_and_staleness(ctx: Ctx) {
    let s = ctx.store;
    s.assets_ingest(&[report("app-01", "app-01", "t1", &[])])
        .await
        .unwrap();
    let out = s
        .assets_ingest(&[report("app-01", "app-01", "t2", &[])])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], IngestOutcome::Refused { reason } if reason.contains("--host app-01"))
    );
    // Agentless collection of the same host does not touch the binding.
    let mut ssh = report("app-01", "app-01", "", &[]);
    ssh.source = "ssh".into();
    ssh.change_source = "ssh:test".into();
    assert!(matches!(
        s.assets_ingest(&[ssh]).await.unwrap()[0],
        IngestOutcome::Stored { .. }
    ));
    assert_eq!(
        s.asset_find("app-01").await.unwrap().unwrap().token_id,
        "t1"
    );
    let mut pinned = report("app-01", "app-01", "t3", &[]);
    pinned.token_pinned = true;
    let out = s.assets_ingest(&[pinned]).await.unwrap();
    assert_eq!(changes_of(&out[0]), ["token t1 -> t3"]);

    s.assets_ingest(&[report("old-01", "old-01", "t9", &[])])
        .await
        .unwrap();
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    let mut stale = s.assets_mark_stale(cutoff, "cmdb:stale").await.unwrap();
    stale.sort();
    assert_eq!(stale, ["app-01", "old-01"]);
    assert!(
        s.assets_mark_stale(cutoff, "cmdb:stale")
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    let q = AssetQuery {
        status: Some(AssetStatus::Stale),
        ..Default::default()
    };
    assert_eq!(s.asset_list(&q).await.unwrap().len(), 2);
    let out = s
        .assets_ingest(&[report("old-01", "old-01", "t9", &[])])
        .await
        .unwrap();
    assert_eq!(changes_of(&out[0]), ["status stale -> active"]);
    assert_eq!(
        s.asset_find("old-01").await.unwrap().unwrap().status,
        AssetStatus::Active
    );
    // A collection pass names the hosts that were silent: only active ones are flagged,
    // once, and nothing else of them changes.
    let flagged = s
        .assets_mark_stale_named(
            &["old-01".into(), "app-01".into(), "nosuch".into()],
            "salt:test",
        )
        .await
        .unwrap();
    assert_eq!(flagged, ["old-01"]);
    assert!(s
        .assets_mark_stale_named(&["old-01".into()], "salt:test")
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .assets_mark_stale_named(&[], "salt:test")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.asset_find("old-01").await.unwrap().unwrap().status,
        AssetStatus::Stale
    );
}

/// An unpinned token speaks for the first host that reported with it: another host
/// through it is refused and nothing of it is written; the first goes on; a token
/// pinned to a host is not bound this way. Racing first reports through two
/// connections (two instances) bind the token once.
pub async fn assets_unpinned_token_binds_its_first_host(ctx: Ctx) {
    let s = ctx.store.clone();
    let out = s
        .assets_ingest(&[
            report("db-01", "db-01", "u1", &[("cpu.cores", "8")]),
            // The same batch: already bound to db-01.
            report("web-01", "web-01", "u1", &[]),
        ])
        .await
        .unwrap();
    assert!(matches!(
        out[0],
        IngestOutcome::Stored { created: true, .. }
    ));
    assert!(
        matches!(&out[1], IngestOutcome::Refused { reason } if reason.contains("bound to host db-01")),
        "{out:?}"
    );
    let out = s
        .assets_ingest(&[
            report("web-02", "web-02", "u1", &[]),
            report("db-01", "db-01", "u1", &[("cpu.cores", "16")]),
        ])
        .await
        .unwrap();
    assert!(matches!(&out[0], IngestOutcome::Refused { .. }), "{out:?}");
    assert_eq!(changes_of(&out[1]), ["cpu.cores 8 -> 16"]);
    for other in ["web-01", "web-02"] {
        assert!(s.asset_find(other).await.unwrap().is_none(), "{other}");
    }
    // Pinned tokens are checked against their host, not bound to the first one.
    let mut pinned = report("app-07", "app-07", "p1", &[]);
    pinned.token_pinned = true;
    assert!(matches!(
        s.assets_ingest(&[pinned]).await.unwrap()[0],
        IngestOutcome::Stored { .. }
    ));

    // Two instances, one token, two hosts, at once: one binding, one host stored.
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    for round in 0..5 {
        let token = format!("race-{round}");
        let ra = [report(&format!("ra-{round}"), "a", &token, &[])];
        let rb = [report(&format!("rb-{round}"), "b", &token, &[])];
        let (a, b) = tokio::join!(s.assets_ingest(&ra), other.assets_ingest(&rb));
        let stored = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|o| matches!(o[0], IngestOutcome::Stored { .. }))
            .count();
        assert_eq!(stored, 1, "round {round}");
    }
}

/// Erased state is gone, and on SQLite its bytes are gone from the database files.
pub async fn provider_state_erase(ctx: Ctx) {
    let s = ctx.store.clone();
    let secret = "erase-me-0123456789abcdefghijklmnopqrstuvwxyz";
    s.put_state("test.secret", secret).await.unwrap();
    s.put_state("test.keep", "kept").await.unwrap();
    s.erase_state("test.secret").await.unwrap();
    s.erase_state("test.absent").await.unwrap();
    assert_eq!(s.get_state("test.secret").await.unwrap(), None);
    assert_eq!(
        s.get_state("test.keep").await.unwrap().as_deref(),
        Some("kept")
    );
    if let Some(path) = ctx.url.strip_prefix("sqlite://") {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty());
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the erased value is still in the SQLite files"
        );
    }
}
