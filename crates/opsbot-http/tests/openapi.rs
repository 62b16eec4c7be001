//! The OpenAPI document (`/api/v1/openapi.json`) is something a client can be built
//! from: it passes an independent validator (openapi-spec-validator), every path
//! parameter is in its path template and every template variable is declared, and a
//! client that knows only the document (its paths, parameters and examples) calls every
//! GET endpoint of a running server and gets no 4xx.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::World;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

async fn document(w: &World) -> Value {
    let r = w
        .http
        .get(w.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_document_passes_an_openapi_validator() {
    const VALIDATOR: &str = "openapi-spec-validator";
    let installed = Command::new(VALIDATOR)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return opsbot_testkit::skip::<()>(
            format!("{VALIDATOR} is not installed"),
            "install: pip install openapi-spec-validator",
        )
        .unwrap_or_default();
    }
    let w = World::start().await;
    let doc = document(&w).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = Command::new(VALIDATOR).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{VALIDATOR} refuses the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every operation of the document: (method, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

/// The `{name}` variables of a path template.
fn template_vars(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(v, _)| v.to_string()))
        .collect()
}

fn params(op: &Value) -> Vec<Value> {
    op["parameters"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn path_parameters_are_exactly_the_template_variables() {
    let w = World::start().await;
    let doc = document(&w).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "{} operations", ops.len());
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (method, path, op) in &ops {
        let vars = template_vars(path);
        let mut declared = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for p in params(op) {
            let name = p["name"].as_str().unwrap().to_string();
            let place = p["in"].as_str().unwrap().to_string();
            if !seen.insert((name.clone(), place.clone())) {
                problems.push(format!("{method} {path}: {name} ({place}) twice"));
            }
            match place.as_str() {
                "path" => {
                    if !vars.contains(&name) {
                        problems.push(format!(
                            "{method} {path}: path parameter {name} is not in the template"
                        ));
                    }
                    if p["required"] != true {
                        problems.push(format!(
                            "{method} {path}: path parameter {name} is optional"
                        ));
                    }
                    declared.insert(name);
                }
                "query" => {
                    if p["required"] == true {
                        problems.push(format!(
                            "{method} {path}: query parameter {name} is required"
                        ));
                    }
                }
                other => problems.push(format!("{method} {path}: {name} in {other}")),
            }
        }
        for v in vars.difference(&declared) {
            problems.push(format!(
                "{method} {path}: template variable {v} is not declared"
            ));
        }
        match op["operationId"].as_str() {
            Some(id) if ids.insert(id.to_string()) => {}
            other => problems.push(format!(
                "{method} {path}: operationId {other:?} missing or repeated"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A parameter's value as a client takes it from the document: its example.
fn example(p: &Value) -> Option<String> {
    let v = p.get("example").or_else(|| p["schema"].get("example"))?;
    Some(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The objects the document's examples name and a fresh server lacks: job 1, alert 1,
/// build 1 and release order 1 (both over, so their log streams end).
async fn seed(w: &World, admin: &str) {
    use opsbot_store::deploy::{BuildEnd, NewBuild, NewHostRun, NewOrder};
    let build = w
        .store
        .build_create(
            &NewBuild {
                project: "shop".into(),
                reference: String::new(),
                user: "admin".into(),
            },
            "test-instance",
        )
        .await
        .unwrap();
    w.store
        .build_finish(
            build,
            &BuildEnd {
                state: "succeeded".into(),
                revision: "abc123".into(),
                artefact: None,
                artefact_size: None,
                changelog: String::new(),
                error: None,
            },
        )
        .await
        .unwrap();
    w.store
        .order_create(&NewOrder {
            project: "shop".into(),
            kind: "release".into(),
            build: Some(build),
            version: None,
            state: "成功".into(),
            user: "admin".into(),
            channel: "api".into(),
            chat: None,
            batches: 1,
            plan: String::new(),
            expires_at: None,
            hosts: vec![NewHostRun {
                host: "web-01".into(),
                address: "127.0.0.1".into(),
                batch: 0,
            }],
        })
        .await
        .unwrap();
    let (s, acc) = w.post(admin, "/api/v1/sync", serde_json::json!({})).await;
    assert_eq!(s, 202, "{acc}");
    w.wait_job(admin, acc["job"].as_i64().unwrap()).await;
    let now = chrono::Utc::now();
    w.store
        .alerts_ingest(&[opsbot_store::alerts::IngestPayload {
            payload: opsbot_store::alerts::NewAlertPayload {
                source: "alertmanager".into(),
                peer: "127.0.0.1".into(),
                content_type: "application/json".into(),
                body: "{}".into(),
            },
            alerts: vec![opsbot_store::alerts::AlertUpsert {
                fingerprint: "f1".into(),
                source: "alertmanager".into(),
                status: "firing".into(),
                severity: "critical".into(),
                name: "DiskFull".into(),
                summary: "disk full".into(),
                endpoint: "web-01".into(),
                metric: "disk".into(),
                labels: Default::default(),
                annotations: Default::default(),
                recipients: Vec::new(),
                parse_error: None,
                starts_at: now,
                ends_at: None,
                notices: Vec::new(),
            }],
        }])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_built_from_the_document_alone_calls_every_get_endpoint() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    seed(&w, &admin).await;
    let doc = document(&w).await;
    let mut calls = 0;
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        if method != "get" {
            continue;
        }
        let params = params(&op);
        let mut url = path.clone();
        for p in params.iter().filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().unwrap();
            let value = example(p)
                .unwrap_or_else(|| panic!("GET {path}: path parameter {name} has no example"));
            url = url.replace(&format!("{{{name}}}"), &encode(&value));
        }
        let query: Vec<(String, String)> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                let name = p["name"].as_str().unwrap().to_string();
                let value = example(p)
                    .unwrap_or_else(|| panic!("GET {path}: query parameter {name} has no example"));
                (name, value)
            })
            .collect();
        // Only what is required, each optional parameter alone, and all of them.
        let mut variants: Vec<Vec<(String, String)>> = vec![Vec::new()];
        variants.extend(query.iter().map(|q| vec![q.clone()]));
        if query.len() > 1 {
            variants.push(query.clone());
        }
        let secured = op.get("security").is_some();
        for q in variants {
            let qs: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            let full = if qs.is_empty() {
                url.clone()
            } else {
                format!("{url}?{}", qs.join("&"))
            };
            let mut req = w.http.get(w.url(&full)).timeout(Duration::from_secs(30));
            if secured {
                req = req.bearer_auth(&admin);
            }
            let r = req.send().await.unwrap();
            calls += 1;
            let status = r.status();
            if !status.is_success() {
                problems.push(format!("GET {full}: {status} {}", r.text().await.unwrap()));
            }
        }
    }
    assert!(calls > 60, "{calls} calls");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
