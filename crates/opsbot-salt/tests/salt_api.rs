//! The client against a real salt-master, salt-api and minions (opsbot_testkit's SaltLab):
//! one lab per test binary run, walked through in one test, since starting it costs
//! seconds and hundreds of MiB.

use opsbot_salt::{MinionReturn, SaltApi, SaltApiConfig, SaltError, Target};
use opsbot_testkit::salt::SaltLab;
use serde_json::json;
use std::time::Duration;

fn config(url: &str, user: &str, password: &str) -> SaltApiConfig {
    serde_json::from_value(json!({
        "url": url, "eauth": "file", "username": user, "password": password, "timeout": "20s"
    }))
    .expect("a salt-api config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_salt_api_answers_every_client_the_contract_names() {
    let Some(lab) = SaltLab::start("salt_api", &["m1", "m2", "m3"]) else {
        return;
    };
    let api = SaltApi::new(&config(&lab.api_url(), lab.user(), lab.password())).unwrap();
    api.login().await.unwrap();
    let t = Duration::from_secs(10);

    // local: every minion with its grains.
    let grains = api
        .local(&Target::Glob("*".into()), "grains.items", &[], None, t)
        .await
        .unwrap();
    assert_eq!(grains.keys().collect::<Vec<_>>(), ["m1", "m2", "m3"]);
    for (id, r) in &grains {
        let MinionReturn::Ok(g) = r else {
            panic!("{id}: {r:?}")
        };
        assert_eq!(g["id"], json!(id));
        assert!(g["num_cpus"].as_u64().unwrap() >= 1, "{g}");
    }
    // A function returning false is an answer, not a dead minion.
    let f = api
        .local(
            &Target::List(vec!["m2".into()]),
            "file.file_exists",
            &[json!("/nonexistent/opsbot")],
            None,
            t,
        )
        .await
        .unwrap();
    assert_eq!(f["m2"], MinionReturn::Ok(json!(false)));
    // Grain targeting and a target matching nothing.
    let by_grain = api
        .local(&Target::Grain("id:m3".into()), "test.ping", &[], None, t)
        .await
        .unwrap();
    assert_eq!(by_grain.keys().collect::<Vec<_>>(), ["m3"]);
    let none = api
        .local(&Target::Glob("nothing*".into()), "test.ping", &[], None, t)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // local_batch: one return per minion, in waves of 2.
    let batch = api
        .local_batch(&Target::Glob("*".into()), "test.ping", &[], None, "2")
        .await
        .unwrap();
    assert_eq!(batch.len(), 3, "{batch:?}");
    assert!(batch.values().all(|r| *r == MinionReturn::Ok(json!(true))));

    // run_all through a shell: exit codes, stdout and stderr per minion.
    let ran = api
        .run_all(
            &Target::Glob("m*".into()),
            "echo out-$(printf x | wc -c); echo err >&2; exit 3",
            t,
        )
        .await
        .unwrap();
    assert_eq!(ran.len(), 3);
    for r in ran.values() {
        let r = r.as_ref().unwrap();
        assert_eq!(
            (r.retcode, r.stdout.as_str(), r.stderr.as_str()),
            (3, "out-1", "err")
        );
    }

    // Wrong password: refused with Auth, not parsed as JSON.
    let wrong = SaltApi::new(&config(&lab.api_url(), lab.user(), "wrong")).unwrap();
    let err = wrong
        .local(&Target::Glob("*".into()), "test.ping", &[], None, t)
        .await
        .unwrap_err();
    assert!(matches!(err, SaltError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("refused user opsbot"), "{err}");

    // A token issued beforehand (a long-lived one from POST /login) stands in for the
    // password; one salt-api does not know is an authentication error naming it.
    let issued: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/login", lab.api_url()))
        .header("Accept", "application/json")
        .json(&json!({"username": lab.user(), "password": lab.password(), "eauth": "file"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["return"][0]["token"].as_str().unwrap();
    let by_token = |token: &str| -> SaltApiConfig {
        serde_json::from_value(json!({
            "url": lab.api_url(), "username": lab.user(), "token": token, "timeout": "20s"
        }))
        .unwrap()
    };
    assert!(by_token(token).validate().is_ok());
    let pinged = SaltApi::new(&by_token(token))
        .unwrap()
        .local(&Target::Glob("m1".into()), "test.ping", &[], None, t)
        .await
        .unwrap();
    assert_eq!(pinged["m1"], MinionReturn::Ok(json!(true)));
    let err = SaltApi::new(&by_token("0123456789abcdef0123456789abcdef01234567"))
        .unwrap()
        .local(&Target::Glob("m1".into()), "test.ping", &[], None, t)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SaltError::Auth(_)) && err.to_string().contains("configured token"),
        "{err:?}"
    );

    // A stopped minion is listed with no answer; the others still answer.
    lab.stop_minion("m3");
    let after = api
        .local(
            &Target::Glob("*".into()),
            "test.ping",
            &[],
            None,
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(after["m1"], MinionReturn::Ok(json!(true)));
    assert_eq!(after["m3"], MinionReturn::NoAnswer, "{after:?}");
    let ran = api
        .run_all(
            &Target::List(vec!["m2".into(), "m3".into()]),
            "true",
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert!(ran["m2"].is_ok());
    assert!(ran["m3"].as_ref().unwrap_err().contains("did not answer"));
}

#[tokio::test]
async fn an_unreachable_salt_api_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = SaltApi::new(&config(&format!("http://127.0.0.1:{port}"), "u", "p")).unwrap();
    let err = api
        .local(
            &Target::Glob("*".into()),
            "test.ping",
            &[],
            None,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SaltError::Unreachable(_)), "{err:?}");
}
