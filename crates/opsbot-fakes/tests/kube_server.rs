//! The stand-in Kubernetes API server's own behaviour over HTTP, for what the real clients
//! in `kube_faithful.rs` do not reach: Status bodies word for word, watch resumption,
//! bookmarks, 410s, cut streams, an unreachable server, pagination expiry, patches,
//! injected conflicts, paused rollouts, the bulk estate and the request log.

mod kube_common;

use std::time::Duration;

use kube_common::{deployment_ready, names, wait_for};
use opsbot_fakes::kube::FakeKube;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(fake: &FakeKube, token: &str) -> Api {
        Api {
            url: fake.url(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        req.send().await.expect("request sent")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let resp = self.send(method, path, content_type, body).await;
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, "", None).await
    }

    async fn patch(&self, path: &str, content_type: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, content_type, Some(body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, "application/json", Some(body))
            .await
    }
}

const WEB: &str = "/apis/apps/v1/namespaces/payments/deployments/web";
const MERGE: &str = "application/merge-patch+json";

async fn estate() -> FakeKube {
    let fake = FakeKube::start().await;
    fake.add_node("node-a", true, "4", "8Gi");
    fake.add_deployment("payments", "web", 3, "nginx:1.25");
    wait_for(&fake, "web ready", |f| {
        deployment_ready(f, "payments", "web", 3)
    })
    .await;
    fake
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// Reads newline-delimited watch events until `done` holds for one; returns them all.
async fn events_until(resp: &mut Response, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let event: Value = serde_json::from_slice(&line).expect("a JSON event per line");
            let stop = done(&event);
            events.push(event);
            if stop {
                return events;
            }
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => panic!("no such event in time; got {events:?}"),
            Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk),
            Ok(Ok(None)) => panic!("stream ended; got {events:?}"),
            Ok(Err(e)) => panic!("stream failed: {e}; got {events:?}"),
        }
    }
}

#[tokio::test]
async fn errors_are_status_bodies_worded_as_a_real_server() {
    let fake = estate().await;
    fake.add_deployment("billing", "api", 1, "api:1.0");
    fake.add_token("opsbot-token", &["payments"], false);
    let admin = Api::new(&fake, &fake.admin_token());
    let scoped = Api::new(&fake, "opsbot-token");

    let (code, body) = Api::new(&fake, "").get(WEB).await;
    assert_eq!(
        (code.as_u16(), body),
        (401, status(401, "Unauthorized", "Unauthorized"))
    );
    let (code, _) = Api::new(&fake, "wrong").get("/version").await;
    assert_eq!(code, 401);

    let (code, body) = scoped
        .patch(
            "/apis/apps/v1/namespaces/billing/deployments/api/scale",
            MERGE,
            json!({"spec": {"replicas": 2}}),
        )
        .await;
    let mut expected = status(403, "Forbidden", "deployments.apps \"api\" is forbidden: User \"system:serviceaccount:opsbot:opsbot\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"billing\"");
    expected["details"] = json!({"name": "api", "group": "apps", "kind": "deployments"});
    assert_eq!((code.as_u16(), body), (403, expected));
    let (code, _) = scoped.get("/api/v1/pods").await;
    assert_eq!(code, 403, "all namespaces need a cluster role");
    let (code, _) = scoped.get("/api/v1/namespaces/payments/pods").await;
    assert_eq!(code, 200);

    let (code, body) = admin
        .get("/apis/apps/v1/namespaces/payments/deployments/nope")
        .await;
    let mut expected = status(404, "NotFound", "deployments.apps \"nope\" not found");
    expected["details"] = json!({"name": "nope", "group": "apps", "kind": "deployments"});
    assert_eq!((code.as_u16(), body), (404, expected));
    let (code, body) = admin.get("/api/v1/namespaces/payments/pods/nope").await;
    assert_eq!(code, 404);
    assert_eq!(body["details"], json!({"name": "nope", "kind": "pods"}));

    let (_, mut web) = admin.get(WEB).await;
    let old_rv = web["metadata"]["resourceVersion"].clone();
    let (code, _) = admin
        .patch(WEB, MERGE, json!({"metadata": {"labels": {"team": "pay"}}}))
        .await;
    assert_eq!(code, 200);
    web["spec"]["replicas"] = json!(5);
    web["metadata"]["resourceVersion"] = old_rv;
    let (code, body) = admin.put(WEB, web.clone()).await;
    let mut expected = status(409, "Conflict", "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again");
    expected["details"] = json!({"name": "web", "group": "apps", "kind": "deployments"});
    assert_eq!((code.as_u16(), body), (409, expected));

    let (_, mut web) = admin.get(WEB).await;
    web["spec"]["replicas"] = json!(-1);
    let (code, body) = admin.put(WEB, web).await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(body["message"], "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    assert_eq!(body["details"]["causes"][0]["field"], "spec.replicas");

    fake.revoke_token("opsbot-token");
    let (code, body) = scoped.get("/api/v1/namespaces/payments/pods").await;
    assert_eq!(
        (code.as_u16(), body),
        (401, status(401, "Unauthorized", "Unauthorized"))
    );
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let fake = estate().await;
    fake.add_statefulset("payments", "db", 1, "postgres:16");
    let api = Api::new(&fake, &fake.admin_token());
    let (code, scale) = api.get(&format!("{WEB}/scale")).await;
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"],
        json!({"replicas": 3, "selector": "app=web"})
    );
    let mut put = scale.clone();
    put["spec"]["replicas"] = json!(5);
    let (code, after) = api.put(&format!("{WEB}/scale"), put.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(after["spec"]["replicas"], 5);
    let (code, body) = api.put(&format!("{WEB}/scale"), put).await;
    assert_eq!(
        code, 409,
        "the Scale's resourceVersion is the deployment's: {body}"
    );
    wait_for(&fake, "web at 5", |f| {
        deployment_ready(f, "payments", "web", 5)
    })
    .await;

    let (code, _) = api
        .patch(
            "/apis/apps/v1/namespaces/payments/statefulsets/db/scale",
            MERGE,
            json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(code, 200);
    let (_, pods) = api
        .get("/api/v1/namespaces/payments/pods?labelSelector=app%3Ddb")
        .await;
    assert_eq!(names(&pods), ["db-0", "db-1", "db-2"]);
}

#[tokio::test]
async fn watches_resume_from_a_resource_version_with_bookmarks_and_410_when_too_old() {
    let fake = estate().await;
    fake.set_bookmark_interval(Duration::from_millis(50));
    let api = Api::new(&fake, &fake.admin_token());
    let (_, list) = api
        .get("/apis/apps/v1/namespaces/payments/deployments")
        .await;
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, _) = api
        .patch(
            &format!("{WEB}/scale"),
            MERGE,
            json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(code, 200);
    // Opened after the change: it arrives from the history.
    let mut watch = api
        .send(Method::GET, &format!("/apis/apps/v1/namespaces/payments/deployments?watch=1&resourceVersion={list_rv}&allowWatchBookmarks=true"), "", None)
        .await;
    assert_eq!(watch.status(), 200);
    let events = events_until(&mut watch, |e| e["type"] == "BOOKMARK").await;
    let modified = &events[0];
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["kind"], "Deployment");
    assert_eq!(modified["object"]["spec"]["replicas"], 4);
    let rv = |e: &Value| {
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let bookmark = events.last().unwrap();
    assert_eq!(bookmark["object"]["kind"], "Deployment");
    assert!(rv(bookmark) >= events[..events.len() - 1].iter().map(rv).max().unwrap());

    // Without a resourceVersion: what exists now, as ADDED, then changes.
    let mut fresh = api
        .send(
            Method::GET,
            "/apis/apps/v1/namespaces/payments/deployments?watch=true&timeoutSeconds=1",
            "",
            None,
        )
        .await;
    let first = events_until(&mut fresh, |_| true).await;
    assert_eq!(first[0]["type"], "ADDED");
    assert_eq!(first[0]["object"]["metadata"]["name"], "web");
    // timeoutSeconds ends the stream cleanly.
    while let Some(_chunk) = fresh.chunk().await.expect("a clean end") {}

    fake.compact();
    let mut gone = api
        .send(Method::GET, &format!("/apis/apps/v1/namespaces/payments/deployments?watch=true&resourceVersion={list_rv}"), "", None)
        .await;
    assert_eq!(gone.status(), 200, "a watch's 410 is an ERROR event");
    let events = events_until(&mut gone, |_| true).await;
    assert_eq!(events[0]["type"], "ERROR");
    let object = &events[0]["object"];
    assert_eq!(
        (object["code"].clone(), object["reason"].clone()),
        (json!(410), json!("Expired"))
    );
    assert!(object["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("too old resource version: {list_rv} (")));
    assert!(gone.chunk().await.expect("a clean end").is_none());
}

#[tokio::test]
async fn dropped_watches_are_cut_and_an_unreachable_server_recovers_on_the_same_port() {
    let fake = estate().await;
    let api = Api::new(&fake, &fake.admin_token());
    let mut watch = api
        .send(
            Method::GET,
            "/api/v1/namespaces/payments/pods?watch=true",
            "",
            None,
        )
        .await;
    events_until(&mut watch, |_| true).await;
    fake.drop_watches();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), watch.chunk())
            .await
            .expect("cut in time")
        {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        ended.is_err(),
        "the connection is cut mid-stream, not ended cleanly: {ended:?}"
    );

    let url = fake.url();
    let mut open = api
        .send(
            Method::GET,
            "/api/v1/namespaces/payments/pods?watch=true",
            "",
            None,
        )
        .await;
    events_until(&mut open, |_| true).await;
    fake.set_unreachable(true).await;
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(30), open.chunk())
            .await
            .expect("cut in time")
        {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(cut.is_err(), "open connections are cut too: {cut:?}");
    let refused = reqwest::Client::new()
        .get(format!("{url}/version"))
        .send()
        .await;
    assert!(refused.is_err_and(|e| e.is_connect()), "connection refused");
    fake.set_unreachable(false).await;
    assert_eq!(fake.url(), url);
    let (code, version) = api.get("/version").await;
    assert_eq!(code, 200);
    assert_eq!(version["gitVersion"], "v1.32.4");
}

#[tokio::test]
async fn lists_page_with_continue_tokens_that_expire() {
    let fake = FakeKube::start().await;
    fake.set_pod_ready_delay(Duration::ZERO);
    fake.add_deployment("payments", "web", 5, "nginx:1.25");
    let api = Api::new(&fake, &fake.admin_token());
    let (_, page1) = api.get("/api/v1/namespaces/payments/pods?limit=2").await;
    assert_eq!(names(&page1).len(), 2);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page2) = api
        .get(&format!(
            "/api/v1/namespaces/payments/pods?limit=2&continue={token}"
        ))
        .await;
    assert_eq!(names(&page2).len(), 2);
    assert_eq!(
        page2["metadata"]["resourceVersion"],
        page1["metadata"]["resourceVersion"]
    );
    let token2 = page2["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page3) = api
        .get(&format!(
            "/api/v1/namespaces/payments/pods?limit=2&continue={token2}"
        ))
        .await;
    assert_eq!(names(&page3).len(), 1);
    assert!(page3["metadata"].get("continue").is_none());
    let mut all = [names(&page1), names(&page2), names(&page3)].concat();
    all.dedup();
    assert_eq!(all.len(), 5);

    fake.compact();
    let (code, body) = api
        .get(&format!(
            "/api/v1/namespaces/payments/pods?limit=2&continue={token}"
        ))
        .await;
    assert_eq!(code, 410);
    assert_eq!(body["reason"], "Expired");
    assert!(body["message"].as_str().unwrap().starts_with(
        "The provided continue parameter is too old to display a consistent list result."
    ));
}

#[tokio::test]
async fn patches_merge_strategic_and_json_and_injected_conflicts_move_the_version() {
    let fake = estate().await;
    let api = Api::new(&fake, &fake.admin_token());
    let (code, d) = api.patch(WEB, "application/strategic-merge-patch+json", json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})).await;
    assert_eq!(code, 200);
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "now"
    );
    assert_eq!(d["metadata"]["generation"], 2);
    let (code, d) = api
        .patch(
            WEB,
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]),
        )
        .await;
    assert_eq!(
        (code.as_u16(), d["spec"]["replicas"].clone()),
        (200, json!(2))
    );
    let (code, body) = api
        .patch(
            WEB,
            "application/json-patch+json",
            json!([{"op": "test", "path": "/spec/replicas", "value": 7}]),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    let (code, _) = api.patch(WEB, "text/plain", json!({})).await;
    assert_eq!(code, 415);

    let before = fake.deployment("payments", "web").unwrap()["metadata"]["resourceVersion"].clone();
    fake.inject_conflicts(1);
    let (code, body) = api
        .patch(
            &format!("{WEB}/scale"),
            MERGE,
            json!({"spec": {"replicas": 6}}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    let after = fake.deployment("payments", "web").unwrap();
    assert_ne!(
        after["metadata"]["resourceVersion"], before,
        "another writer moved it"
    );
    assert_eq!(after["spec"]["replicas"], 2);
    let (code, _) = api
        .patch(
            &format!("{WEB}/scale"),
            MERGE,
            json!({"spec": {"replicas": 6}}),
        )
        .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_paused_deployment_scales_but_does_not_roll_out_until_resumed() {
    let fake = estate().await;
    let api = Api::new(&fake, &fake.admin_token());
    fake.set_paused("payments", "web", true);
    fake.set_image("payments", "web", "nginx:1.26");
    let rs_path = "/apis/apps/v1/namespaces/payments/replicasets?labelSelector=app%3Dweb";
    assert_eq!(names(&api.get(rs_path).await.1).len(), 1);
    let d = fake.deployment("payments", "web").unwrap();
    assert_eq!(d["status"]["conditions"][1]["reason"], "DeploymentPaused");
    let (code, _) = api
        .patch(
            &format!("{WEB}/scale"),
            MERGE,
            json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(code, 200);
    wait_for(&fake, "4 old pods", |f| {
        deployment_ready(f, "payments", "web", 4)
    })
    .await;

    fake.set_paused("payments", "web", false);
    assert_eq!(names(&api.get(rs_path).await.1).len(), 2);
    wait_for(&fake, "the rollout", |f| {
        deployment_ready(f, "payments", "web", 4)
            && f.deployment("payments", "web").unwrap()["status"]["conditions"][1]["reason"]
                == "NewReplicaSetAvailable"
    })
    .await;
    let (_, pods) = api.get("/api/v1/namespaces/payments/pods").await;
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx:1.26");
    }
}

#[tokio::test]
async fn selectors_filter_lists() {
    let fake = estate().await;
    fake.add_node("node-b", true, "4", "8Gi");
    fake.add_deployment("payments", "api", 2, "api:1.0");
    let api = Api::new(&fake, &fake.admin_token());
    let (_, pods) = api.get("/api/v1/pods?labelSelector=app%20in%20(api)").await;
    assert_eq!(names(&pods).len(), 2);
    let (_, on_b) = api
        .get("/api/v1/namespaces/payments/pods?fieldSelector=spec.nodeName%3Dnode-b")
        .await;
    assert!(on_b["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["spec"]["nodeName"] == "node-b"));
    let (_, one) = api
        .get("/api/v1/namespaces/payments/pods?fieldSelector=metadata.name%3Dnope")
        .await;
    assert_eq!(names(&one).len(), 0);
    let (_, events) = api
        .get("/api/v1/namespaces/payments/events?fieldSelector=involvedObject.kind%3DDeployment,involvedObject.name%3Dapi")
        .await;
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("Scaled up replica set api-"));
    let (code, _) = api
        .get("/api/v1/namespaces/payments/pods?fieldSelector=spec.bogus%3Dx")
        .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn bulk_builds_a_ready_estate_that_watches_start_after() {
    let fake = FakeKube::start().await;
    fake.add_node("node-a", true, "64", "256Gi");
    fake.bulk(3, 4, 5);
    let api = Api::new(&fake, &fake.admin_token());
    let (_, deploys) = api.get("/apis/apps/v1/deployments").await;
    assert_eq!(names(&deploys).len(), 12);
    assert!(deploys["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"]["readyReplicas"] == 5));
    let (_, pods) = api.get("/api/v1/pods?limit=500").await;
    assert_eq!(names(&pods).len(), 60);
    let (_, events) = api.get("/api/v1/events").await;
    assert_eq!(names(&events).len(), 0, "no per-object events");
    let rv = pods["metadata"]["resourceVersion"].as_str().unwrap();
    let mut watch = api
        .send(
            Method::GET,
            &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
            "",
            None,
        )
        .await;
    fake.set_image("bulk-0", "app-0", "registry.local/app-0:2.0");
    let events = events_until(&mut watch, |_| true).await;
    assert_eq!(events[0]["type"], "ADDED");
}

#[tokio::test]
async fn requests_are_recorded_with_the_token_prefix_only() {
    let fake = estate().await;
    let api = Api::new(&fake, &fake.admin_token());
    api.get("/api/v1/namespaces/payments/pods?limit=1").await;
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, "/api/v1/namespaces/payments/pods");
    assert_eq!(last.query, "limit=1");
    assert_eq!(last.token_prefix, fake.admin_token()[..4]);
}

#[tokio::test]
async fn tls_is_served_with_a_certificate_from_the_generated_ca() {
    let fake = FakeKube::start_tls().await;
    assert!(fake.url().starts_with("https://127.0.0.1:"));
    let ca = reqwest::Certificate::from_pem(fake.ca_pem().unwrap().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let resp = trusting
        .get(format!("{}/api", fake.url()))
        .bearer_auth(fake.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let api: Value = resp.json().await.unwrap();
    assert_eq!(api["versions"], json!(["v1"]));
    let untrusting = reqwest::Client::new()
        .get(format!("{}/version", fake.url()))
        .send()
        .await;
    assert!(untrusting.is_err(), "an unknown CA is refused");
}

#[tokio::test]
async fn workloads_are_created_and_deleted_with_their_pods_and_pods_are_read_only() {
    let fake = FakeKube::start().await;
    fake.add_namespace("payments");
    let api = Api::new(&fake, &fake.admin_token());
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}},
        },
    });
    let (code, created) = api
        .call(
            Method::POST,
            "/apis/apps/v1/namespaces/payments/deployments",
            "application/json",
            Some(body.clone()),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let (code, again) = api
        .call(
            Method::POST,
            "/apis/apps/v1/namespaces/payments/deployments",
            "application/json",
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (code.as_u16(), again["reason"].clone()),
        (409, json!("AlreadyExists"))
    );
    let (code, _) = api
        .call(
            Method::POST,
            "/apis/apps/v1/namespaces/nowhere/deployments",
            "application/json",
            Some(body),
        )
        .await;
    assert_eq!(code, 404);
    wait_for(&fake, "web ready", |f| {
        deployment_ready(f, "payments", "web", 2)
    })
    .await;

    let (_, pods) = api.get("/api/v1/namespaces/payments/pods").await;
    let pod = names(&pods)[0].clone();
    let (code, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/namespaces/payments/pods/{pod}"),
            "",
            None,
        )
        .await;
    assert_eq!(code, 405);

    let (code, _) = api.call(Method::DELETE, WEB, "", None).await;
    assert_eq!(code, 200);
    let (_, pods) = api.get("/api/v1/namespaces/payments/pods").await;
    assert!(names(&pods).is_empty());
    let (_, rs) = api
        .get("/apis/apps/v1/namespaces/payments/replicasets")
        .await;
    assert!(names(&rs).is_empty());
    assert!(fake.deployment("payments", "web").is_none());
}
