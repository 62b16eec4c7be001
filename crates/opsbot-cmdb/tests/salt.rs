//! Collection through a real salt-master, salt-api and three minions on this machine
//! (opsbot_testkit's SaltLab): the facts equal a local collection of the same machine,
//! a grain set through the API lands in the change history, a minion with malformed
//! grains is refused alone, a stopped minion is listed as not answering and left
//! unchanged, a target matching nothing collects nothing, a wrong password fails the
//! pass. One lab, walked through in one test: it costs seconds and hundreds of MiB.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_cmdb::collect;
use opsbot_cmdb::config::SaltConfig;
use opsbot_cmdb::ingest::Ingestor;
use opsbot_cmdb::salt::{self, MinionOutcome, SaltSettings};
use opsbot_cmdb::source::FsSource;
use opsbot_salt::{SaltApiConfig, SaltError, Target};
use opsbot_testkit::salt::SaltLab;
use serde_json::json;
use std::time::Duration;

fn settings(lab: &SaltLab, password: &str) -> SaltSettings {
    let api: SaltApiConfig = serde_json::from_value(json!({
        "url": lab.api_url(), "username": lab.user(), "password": password,
    }))
    .unwrap();
    let cfg = SaltConfig {
        api: Some(api),
        timeout: "10s".into(),
        ..SaltConfig::default()
    };
    SaltSettings::from_config(&cfg).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minions_collected_through_salt_api_read_like_the_agent_and_fail_alone() {
    let Some(lab) = SaltLab::start("cmdb_salt", &["web-1", "web-2", "db-1"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let ingestor = Ingestor::start(store.clone(), store.clone(), 64);
    let s = settings(&lab, lab.password());

    // Every minion runs on this machine: each reads exactly as the agent reads it.
    let reports = salt::collect(&s).await.unwrap();
    let local = collect::collect(&FsSource::live(), &[], None);
    let ids: Vec<&str> = reports.iter().map(|r| r.minion.as_str()).collect();
    assert_eq!(ids, ["db-1", "web-1", "web-2"]);
    for r in &reports {
        let MinionOutcome::Collected(report) = &r.outcome else {
            panic!("{}: {:?}", r.minion, r.outcome)
        };
        assert_eq!(report.identity, r.minion, "identity = the minion id");
        assert_eq!(report.hostname, local.hostname);
        let (salt_facts, agent_facts) = (report.facts(), local.facts());
        for (k, v) in &agent_facts {
            assert_eq!(salt_facts.get(k), Some(v), "{}: fact {k}", r.minion);
        }
        assert_eq!(salt_facts["plugin.salt.saltversion"], "3007.8");
        let extra: Vec<&String> = salt_facts
            .keys()
            .filter(|k| !agent_facts.contains_key(*k) && !k.starts_with("plugin.salt."))
            .collect();
        assert!(extra.is_empty(), "{extra:?}");
    }

    // Stored under source salt; a second pass of unchanged minions changes nothing.
    let first = salt::collect_and_store(&s, &ingestor, "salt:test")
        .await
        .unwrap();
    assert!(first
        .iter()
        .all(|r| matches!(&r.outcome, MinionOutcome::Collected(c) if c.created)));
    assert_eq!(
        store.asset_find("web-1").await.unwrap().unwrap().source,
        "salt"
    );

    // A grain set through salt-api is a change of that minion only, field by field.
    let set = s
        .api
        .local(
            &Target::List(vec!["web-1".into()]),
            "grains.setval",
            &[json!("roles"), json!(["web", "frontend"])],
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(set.len(), 1, "{set:?}");
    // Malformed data on db-1: its CPU count is no longer a number.
    s.api
        .local(
            &Target::List(vec!["db-1".into()]),
            "grains.setval",
            &[json!("num_cpus"), json!("lots")],
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let second = salt::collect_and_store(&s, &ingestor, "salt:test")
        .await
        .unwrap();
    let by = |id: &str| &second.iter().find(|r| r.minion == id).unwrap().outcome;
    let MinionOutcome::Collected(web1) = by("web-1") else {
        panic!("{:?}", by("web-1"))
    };
    let fields: Vec<(&str, Option<&str>, &str)> = web1
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.new_value.as_deref(), c.source.as_str()))
        .collect();
    assert_eq!(
        fields,
        [("plugin.salt.roles", Some("web,frontend"), "salt:test")]
    );
    let MinionOutcome::Collected(web2) = by("web-2") else {
        panic!("{:?}", by("web-2"))
    };
    assert!(web2.changes.is_empty(), "{:?}", web2.changes);
    let MinionOutcome::Refused(why) = by("db-1") else {
        panic!("{:?}", by("db-1"))
    };
    assert!(why.contains("num_cpus") && why.contains("lots"), "{why}");

    // A stopped minion: listed as not answering, its asset left as it was.
    let before = store.asset_find("web-2").await.unwrap().unwrap();
    lab.stop_minion("web-2");
    let quick = SaltSettings {
        timeout: Duration::from_secs(3),
        ..s.clone()
    };
    let third = salt::collect_and_store(&quick, &ingestor, "salt:test")
        .await
        .unwrap();
    let web2 = third.iter().find(|r| r.minion == "web-2").unwrap();
    assert_eq!(web2.outcome, MinionOutcome::NoAnswer);
    assert!(matches!(
        third.iter().find(|r| r.minion == "web-1").unwrap().outcome,
        MinionOutcome::Collected(_)
    ));
    let after = store.asset_find("web-2").await.unwrap().unwrap();
    assert_eq!(after.last_seen, before.last_seen);
    // … and flagged stale at once, the one change recorded for it.
    assert_eq!(after.status, opsbot_core::AssetStatus::Stale);
    let history = store
        .changes(&opsbot_store::ChangeQuery {
            object_id: Some("web-2".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let newest = &history[0];
    assert_eq!(
        (
            newest.field.as_str(),
            newest.new_value.as_deref(),
            newest.source.as_str()
        ),
        ("status", Some("stale"), "salt:test"),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .all(|c| c.field == "status" || c.at < newest.at),
        "{history:#?}"
    );

    // A target matching nothing: an empty pass, not an error.
    let nothing = SaltSettings {
        target: Target::Glob("nomatch-*".into()),
        ..s.clone()
    };
    assert!(salt::collect(&nothing).await.unwrap().is_empty());

    // A wrong password fails the pass as a whole, clearly.
    let wrong = settings(&lab, "not-the-password");
    let e = salt::collect(&wrong).await.unwrap_err();
    assert!(matches!(e, SaltError::Auth(_)), "{e:?}");
}
