//! The REST API over real HTTP: every endpoint, every refusal (no token, forged,
//! expired, revoked, wrong address, missing role, out-of-scope VM), bad input, jobs
//! through the engine, audit, rate limits and metrics.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::{Options, World};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error says what is wrong: {body}"
    );
}

#[tokio::test]
async fn refusals_are_json_with_the_right_status() {
    let w = World::start().await;
    // No token.
    let r = w.http.get(w.url("/api/v1/vms")).send().await.unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 401, "unauthorized");
    // Not a bearer header, a malformed token, a forged signature.
    let r = w
        .http
        .get(w.url("/api/v1/vms"))
        .header("authorization", "Basic YWRtaW46eA==")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 401, "unauthorized");
    let (s, b) = w.get("not-a-token", "/api/v1/vms").await;
    assert_error(s, &b, 401, "unauthorized");
    let good = w.token("admin").await;
    let forged = format!("{}x", &good[..good.len() - 1]);
    let (s, b) = w.get(&forged, "/api/v1/vms").await;
    assert_error(s, &b, 401, "unauthorized");
    assert!(b["message"].as_str().unwrap().contains("signature"), "{b}");
    // Revoked.
    let id = good.split('.').nth(2).unwrap().to_string();
    let (s, _) = w.get(&good, "/api/v1/vms").await;
    assert_eq!(s, 200);
    assert!(w.ctx.tokens.revoke(&id).await.unwrap());
    let (s, b) = w.get(&good, "/api/v1/vms").await;
    assert_error(s, &b, 401, "unauthorized");
    assert!(b["message"].as_str().unwrap().contains("revoked"), "{b}");
    // Wrong address: the token may only be used from 10.9.9.9.
    let pinned = w
        .token_with("admin", Duration::from_secs(600), &["10.9.9.9"])
        .await;
    let (s, b) = w.get(&pinned, "/api/v1/vms").await;
    assert_error(s, &b, 403, "forbidden");
    assert!(b["message"].as_str().unwrap().contains("127.0.0.1"), "{b}");
    // A user without any role, and one without this command.
    let nobody = w.token("wangwu").await;
    let (s, b) = w.get(&nobody, "/api/v1/vms").await;
    assert_error(s, &b, 403, "forbidden");
    let viewer = w.token("lisi").await;
    let (s, _) = w.get(&viewer, "/api/v1/vms").await;
    assert_eq!(s, 200);
    for path in [
        "/api/v1/hosts",
        "/api/v1/datastores",
        "/api/v1/networks",
        "/api/v1/clusters",
        "/api/v1/changes",
    ] {
        let (s, b) = w.get(&viewer, path).await;
        assert_error(s, &b, 403, "forbidden");
    }
    // An unknown endpoint.
    let (s, b) = w.get(&viewer, "/api/v1/nope").await;
    assert_error(s, &b, 404, "not_found");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let w = World::start().await;
    let token = w.token_with("admin", Duration::from_secs(1), &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = w.get(&token, "/api/v1/datacenters").await;
        if s == 401 {
            assert_eq!(b["error"], "unauthorized");
            assert!(b["message"].as_str().unwrap().contains("expired"), "{b}");
            break;
        }
        assert_eq!(s, 200, "valid until it expires: {b}");
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let w = World::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..Options::default()
    })
    .await;
    let token = w
        .token_with("admin", Duration::from_secs(600), &["203.0.113.0/24"])
        .await;
    let get = |xff: Option<&'static str>| {
        let mut r = w.http.get(w.url("/api/v1/datacenters")).bearer_auth(&token);
        if let Some(x) = xff {
            r = r.header("x-forwarded-for", x);
        }
        r.send()
    };
    assert_eq!(get(Some("203.0.113.9")).await.unwrap().status(), 200);
    assert_eq!(
        get(Some("203.0.113.9, 198.51.100.1"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(get(None).await.unwrap().status(), 403);
}

#[tokio::test]
async fn every_read_endpoint_answers() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    for (path, min) in [
        ("/api/v1/datacenters", 2),
        ("/api/v1/clusters", 3),
        ("/api/v1/hosts", 8),
        ("/api/v1/vms", 40),
        ("/api/v1/datastores", 5),
        ("/api/v1/networks", 7),
        ("/api/v1/templates", 4),
        ("/api/v1/changes", 1),
    ] {
        let (s, page) = w.get(&admin, path).await;
        assert_eq!(s, 200, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() >= min, "{path}: {} items", items.len());
        // And each object by its id.
        let first = &items[0];
        let one = match path {
            "/api/v1/templates" => format!("{path}/{}", first["number"]),
            "/api/v1/changes" => continue,
            _ => format!(
                "{path}/{}/{}",
                first["provider"].as_str().unwrap(),
                first["id"].as_str().unwrap()
            ),
        };
        let (s, obj) = w.get(&admin, &one).await;
        assert_eq!(s, 200, "{one}: {obj}");
        assert_eq!(obj["name"], first["name"], "{one}");
        let (s, b) = w.get(&admin, &format!("{path}/sim/no-such-id")).await;
        if path != "/api/v1/templates" {
            assert_error(s, &b, 404, "not_found");
        }
    }
    let (s, b) = w.get(&admin, "/api/v1/templates/9999").await;
    assert_error(s, &b, 404, "not_found");
    let (s, page) = w.get(&admin, "/api/v1/vms").await;
    assert_eq!(s, 200);
    assert_eq!(
        page["total"], 48,
        "48 VMs, templates apart: {}",
        page["total"]
    );
    let (s, page) = w.get(&admin, "/api/v1/vms?template=true").await;
    assert_eq!(s, 200);
    assert_eq!(page["total"], 4);
    let (s, page) = w.get(&admin, "/api/v1/audit").await;
    assert_eq!(s, 200, "{page}");
    let (s, page) = w.get(&admin, "/api/v1/jobs").await;
    assert_eq!(s, 200, "{page}");
    // The document and its page need no token.
    let doc: Value = w
        .http
        .get(w.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for p in [
        "/api/v1/vms",
        "/api/v1/vms/{provider}/{id}/actions",
        "/api/v1/jobs/{id}",
        "/api/v1/sync",
        "/api/v1/audit",
        "/api/v1/changes",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} is documented");
    }
    let page = w
        .http
        .get(w.url("/api/v1/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // minijinja escapes `/` as `&#x2f;` in HTML.
    let page = page.replace("&#x2f;", "/");
    assert!(
        page.contains("/api/v1/vms/{provider}/{id}/actions"),
        "browsable page lists the paths"
    );
}

#[tokio::test]
async fn vm_filters_sort_and_pages() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let all = w.get(&admin, "/api/v1/vms?per_page=500").await.1;
    let total = all["total"].as_u64().unwrap();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name by default");
    // Pages cover everything exactly once.
    let mut seen = Vec::new();
    for page in 1.. {
        let p = w
            .get(&admin, &format!("/api/v1/vms?per_page=7&page={page}"))
            .await
            .1;
        seen.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        if p["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen, names);
    // Each filter narrows to what it says.
    let check = |q: &'static str, ok: fn(&Value) -> bool| {
        let (w, admin) = (&w, &admin);
        async move {
            let (s, p) = w.get(admin, &format!("/api/v1/vms?per_page=500&{q}")).await;
            assert_eq!(s, 200, "{q}: {p}");
            let items = p["items"].as_array().unwrap();
            assert!(!items.is_empty(), "{q} finds something");
            assert!(
                (items.len() as u64) < total || q.contains("power=on"),
                "{q} narrows"
            );
            for v in items {
                assert!(ok(v), "{q}: {v}");
            }
        }
    };
    check("q=web", |v| {
        v["name"].as_str().unwrap().contains("web")
            || v["guest_hostname"].as_str().unwrap().contains("web")
    })
    .await;
    check("name=db", |v| v["name"].as_str().unwrap().contains("db")).await;
    check("ip=10.10.", |v| {
        v["ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("10.10."))
    })
    .await;
    check("power=off", |v| v["power"] == "poweredOff").await;
    check("power=on", |v| v["power"] == "poweredOn").await;
    check("cluster=Cluster-DR", |v| v["cluster"] == "Cluster-DR").await;
    check("datacenter=DC1", |v| v["datacenter"] == "DC1").await;
    let has = |v: &Value, t: &str| v["tags"].as_array().unwrap().iter().any(|x| x == t);
    check("tag=env:prod", |v| {
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "env:prod")
    })
    .await;
    check("tag=env:prod,app:shop", |v| {
        let tags = v["tags"].as_array().unwrap();
        tags.iter().any(|x| x == "env:prod") && tags.iter().any(|x| x == "app:shop")
    })
    .await;
    let (s, p) = w.get(&admin, "/api/v1/vms?tag=env:nowhere").await;
    assert_eq!(s, 200);
    assert_eq!(p["items"].as_array().unwrap().len(), 0, "{p}");
    let all_prod = w
        .get(&admin, "/api/v1/vms?per_page=500&tag=env:prod")
        .await
        .1["items"]
        .as_array()
        .unwrap()
        .len();
    let in_prod_cluster = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| has(v, "env:prod"))
        .count();
    assert_eq!(all_prod, in_prod_cluster, "exactly the tagged ones");
    // Sorting by CPU, descending.
    let p = w.get(&admin, "/api/v1/vms?per_page=500&sort=-cpu").await.1;
    let cpus: Vec<u64> = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cpu"].as_u64().unwrap())
        .collect();
    assert!(cpus.windows(2).all(|x| x[0] >= x[1]), "{cpus:?}");
    // Bad input: clear errors.
    for (q, code) in [
        ("per_page=0", "bad_request"),
        ("per_page=501", "bad_request"),
        ("page=0", "bad_request"),
        ("page=abc", "bad_request"),
        ("power=maybe", "bad_request"),
        ("sort=colour", "bad_request"),
        ("colour=red", "bad_request"),
    ] {
        let (s, b) = w.get(&admin, &format!("/api/v1/vms?{q}")).await;
        assert_error(s, &b, 400, code);
    }
    // SQL-ish and script-ish search strings are only strings.
    for q in [
        "%27%20OR%201%3D1%20--",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "%25",
        "vm%00",
    ] {
        let (s, b) = w.get(&admin, &format!("/api/v1/vms?q={q}")).await;
        assert_eq!(s, 200, "{q}: {b}");
        assert_eq!(b["total"], 0, "{q} matches nothing: {b}");
    }
}

/// The names of a VM page.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn vm_filters_are_the_chats() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let get = |q: &'static str| {
        let (w, admin) = (&w, &admin);
        async move {
            let (s, p) = w.get(admin, &format!("/api/v1/vms?per_page=500&{q}")).await;
            assert_eq!(s, 200, "{q}: {p}");
            names(&p)
        }
    };
    // The failed host by its short name, as the overview's warning names it.
    assert_eq!(get("host=esxi-dr-02").await, ["dr-backup"]);
    assert_eq!(get("host=esxi-dr-02.dc1.local").await, ["dr-backup"]);
    assert_eq!(get("host=nowhere").await, Vec::<String>::new());
    assert_eq!(
        get("datastore=ds-dr-01").await,
        ["dr-backup", "dr-db-mysql-01", "dr-web-01", "dr-web-02"]
    );
    let db = get("network=VLAN200-%E6%95%B0%E6%8D%AE%E5%BA%93").await;
    assert!(
        db.contains(&"db-mysql-01".to_string()) && !db.contains(&"web-01".to_string()),
        "{db:?}"
    );
    assert_eq!(
        get("power=off&cluster=Cluster-Prod").await,
        ["k8s-node-06", "web-04", "门禁系统"]
    );
    assert_eq!(
        get("tag=app:finance").await,
        ["db-pg-01", "财务系统"],
        "a service's VMs"
    );
    // A tag's category alone, any ASCII case.
    assert_eq!(get("tag=ENV").await.len(), 48);
    // The same answer as chat's `虚拟机:关机,标签=app:shop,数据中心=DC1`.
    assert_eq!(
        get("power=off&tag=app:shop&datacenter=DC1").await,
        ["dr-web-01", "dr-web-02"]
    );
}

#[tokio::test]
async fn services_count_their_vms_up() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let (s, p) = w.get(&admin, "/api/v1/services").await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["total"], 11, "{p}");
    let shop = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "shop")
        .unwrap();
    assert_eq!(shop["tag"], "app:shop");
    assert_eq!(shop["vms"], 17);
    assert_eq!(shop["up"], 12);
    assert_eq!(
        shop["down"],
        json!([
            "dr-web-01",
            "dr-web-02",
            "test-jmeter",
            "test-web-02",
            "web-04"
        ])
    );
    // Only those with a VM down; the tag lists a service's VMs.
    let (_, p) = w.get(&admin, "/api/v1/services?degraded=true").await;
    let degraded: Vec<&str> = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(degraded, ["access", "devops", "k8s", "shop"]);
    let (_, vms) = w.get(&admin, "/api/v1/vms?per_page=500&tag=app:shop").await;
    assert_eq!(vms["total"], 17);
    let (s, b) = w.get(&admin, "/api/v1/services?colour=red").await;
    assert_error(s, &b, 400, "bad_request");
    // A scoped user's services count only the VMs they see (DC0: no DR copies).
    let zhang = w.token("zhangsan").await;
    let (s, p) = w.get(&zhang, "/api/v1/services").await;
    assert_eq!(s, 200, "{p}");
    let shop = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "shop")
        .unwrap();
    assert_eq!(
        (shop["vms"].as_u64(), shop["up"].as_u64()),
        (Some(14), Some(11))
    );
    assert!(!p.to_string().contains("backup"), "{p}");
}

#[tokio::test]
async fn scopes_limit_what_a_user_sees_and_touches() {
    let w = World::start().await;
    let zhang = w.token("zhangsan").await;
    let (s, page) = w.get(&zhang, "/api/v1/vms?per_page=500").await;
    assert_eq!(s, 200);
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|v| v["datacenter"] == "DC0"),
        "only DC0 is in scope"
    );
    // A DC1 VM is not there for zhangsan: not listed, not found, not touchable.
    let dr = w.vm("datacenter=DC1&power=on").await;
    let path = format!("/api/v1/vms/sim/{}", dr["id"].as_str().unwrap());
    let (s, b) = w.get(&zhang, &path).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = w
        .post(
            &zhang,
            &format!("{path}/actions"),
            json!({"action": "power_off"}),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    // In scope but not granted: 重启 is not in the operator role.
    let prod = w.vm("datacenter=DC0&power=on").await;
    let path = format!("/api/v1/vms/sim/{}/actions", prod["id"].as_str().unwrap());
    let (s, b) = w.post(&zhang, &path, json!({"action": "reboot"})).await;
    assert_error(s, &b, 403, "forbidden");
    assert!(b["message"].as_str().unwrap().contains("重启"), "{b}");
    // Sync is not granted either.
    let (s, b) = w.post(&zhang, "/api/v1/sync", json!({})).await;
    assert_error(s, &b, 403, "forbidden");
    // Other users' audit entries and jobs are for administrators.
    let (s, b) = w.get(&zhang, "/api/v1/audit?user=admin").await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = w.get(&zhang, "/api/v1/jobs?user=admin").await;
    assert_error(s, &b, 403, "forbidden");
}

#[tokio::test]
async fn a_delete_action_removes_a_powered_off_vm_and_refuses_a_running_one() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let vm = w.vm("datacenter=DC0&power=off&sort=name").await;
    let (id, name) = (vm["id"].as_str().unwrap(), vm["name"].as_str().unwrap());
    let path = format!("/api/v1/vms/sim/{id}/actions");
    // 删除 is granted by its name: the operator (开机/关机) may not.
    let (s, b) = w
        .post(
            &w.token("zhangsan").await,
            &path,
            json!({"action": "delete"}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, plan) = w
        .post(
            &admin,
            &format!("{path}?dry_run=true"),
            json!({"action": "delete"}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["command"], "删除");
    assert_eq!(plan["destructive"], true);
    let summary = plan["summary"].as_str().unwrap();
    assert!(
        summary.contains(name) && summary.contains("不可恢复"),
        "{plan}"
    );
    let (s, acc) = w.post(&admin, &path, json!({"action": "delete"})).await;
    assert_eq!(s, 202, "{acc}");
    let job = w.wait_job(&admin, acc["job"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (s, b) = w.get(&admin, &format!("/api/v1/vms/sim/{id}")).await;
    assert_error(s, &b, 404, "not_found");
    let (_, changes) = w
        .get(&admin, &format!("/api/v1/changes?kind=vm&object_id={id}"))
        .await;
    assert!(
        changes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "removed"),
        "{changes}"
    );
    // A running VM: refused before any job, and still there.
    let on = w.vm("datacenter=DC0&power=on&sort=name").await;
    let on_id = on["id"].as_str().unwrap();
    let (s, b) = w
        .post(
            &admin,
            &format!("/api/v1/vms/sim/{on_id}/actions"),
            json!({"action": "delete"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid");
    assert!(b["message"].as_str().unwrap().contains("请先关机"), "{b}");
    let (s, _) = w.get(&admin, &format!("/api/v1/vms/sim/{on_id}")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_power_off_is_a_job_through_the_engine_and_audited() {
    let w = World::start().await;
    let zhang = w.token("zhangsan").await;
    let vm = w.vm("datacenter=DC0&power=on&sort=name").await;
    let id = vm["id"].as_str().unwrap();
    let running = w.get(&zhang, "/api/v1/vms?power=on").await.1["total"]
        .as_u64()
        .unwrap();
    let path = format!("/api/v1/vms/sim/{id}/actions");
    // A dry run says what would happen and starts nothing.
    let (s, plan) = w
        .post(
            &zhang,
            &format!("{path}?dry_run=true"),
            json!({"action": "power_off"}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["command"], "关机");
    assert_eq!(plan["destructive"], true);
    assert!(
        plan["summary"]
            .as_str()
            .unwrap()
            .contains(vm["name"].as_str().unwrap()),
        "{plan}"
    );
    let (_, jobs) = w.get(&zhang, "/api/v1/jobs").await;
    assert_eq!(
        jobs["items"].as_array().unwrap().len(),
        0,
        "a plan is no job"
    );
    // The real thing: 202 with a job to poll.
    let (s, acc) = w.post(&zhang, &path, json!({"action": "power_off"})).await;
    assert_eq!(s, 202, "{acc}");
    let job_id = acc["job"].as_i64().unwrap();
    assert_eq!(acc["status_url"], format!("/api/v1/jobs/{job_id}"));
    let job = w.wait_job(&zhang, job_id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["channel"], "api");
    let (_, after) = w.get(&zhang, &format!("/api/v1/vms/sim/{id}")).await;
    assert_eq!(after["power"], "poweredOff", "{after}");
    // The scoped list follows the pool (its visibility is cached per pool version).
    let now = w.get(&zhang, "/api/v1/vms?power=on").await.1["total"]
        .as_u64()
        .unwrap();
    assert_eq!(now, running - 1);
    // Again: the engine refuses, as chat would.
    let (s, b) = w.post(&zhang, &path, json!({"action": "power_off"})).await;
    assert_error(s, &b, 409, "conflict");
    assert!(
        b["message"].as_str().unwrap().contains("已经是关机状态"),
        "{b}"
    );
    // The audit log has the call (accepted), the job's end (ok) and the refusal.
    let (_, audit) = w.get(&zhang, "/api/v1/audit").await;
    let results: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap(),
                e["channel"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(results.contains(&("accepted", "api")), "{results:?}");
    assert!(results.contains(&("ok", "api")), "{results:?}");
    assert!(results.contains(&("failed", "api")), "{results:?}");
    // The change history shows the power change, with the API as its source.
    let (_, changes) = w
        .get(
            &w.token("admin").await,
            &format!("/api/v1/changes?kind=vm&object_id={id}"),
        )
        .await;
    let c = changes["items"].as_array().unwrap();
    assert!(
        c.iter()
            .any(|c| c["field"] == "power" && c["source"].as_str().unwrap().contains("zhangsan")),
        "{changes}"
    );
    // Someone else's job is not found.
    let (s, b) = w
        .get(&w.token("lisi").await, &format!("/api/v1/jobs/{job_id}"))
        .await;
    assert_error(s, &b, 404, "not_found");
}

#[tokio::test]
async fn operations_with_arguments_clone_and_sync() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let vm = w.vm("datacenter=DC0&power=off").await;
    let path = format!("/api/v1/vms/sim/{}/actions", vm["id"].as_str().unwrap());
    let (s, acc) = w
        .post(&admin, &path, json!({"action": "set_cpu", "count": 6}))
        .await;
    assert_eq!(s, 202, "{acc}");
    assert_eq!(
        w.wait_job(&admin, acc["job"].as_i64().unwrap()).await["state"],
        "succeeded"
    );
    let (_, after) = w
        .get(
            &admin,
            &format!("/api/v1/vms/sim/{}", vm["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after["cpu"], 6);
    // Arguments are checked like typed ones.
    let (s, b) = w
        .post(&admin, &path, json!({"action": "set_cpu", "count": 999}))
        .await;
    assert_error(s, &b, 422, "invalid");
    assert!(b["message"].as_str().unwrap().contains("超出范围"), "{b}");
    let (s, b) = w
        .post(
            &admin,
            &path,
            json!({"action": "rename", "new_name": "<b>x</b>"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid");
    // Clone from template 2, then the IP is taken.
    let body = json!({"template": 2, "name": "api-clone-01", "ip": "192.168.2.182"});
    let (s, acc) = w.post(&admin, "/api/v1/vms", body.clone()).await;
    assert_eq!(s, 202, "{acc}");
    assert_eq!(acc["command"], "克隆");
    let job = w.wait_job(&admin, acc["job"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, found) = w.get(&admin, "/api/v1/vms?name=api-clone-01").await;
    assert_eq!(found["total"], 1, "{found}");
    let (s, b) = w
        .post(
            &admin,
            "/api/v1/vms",
            json!({"template": 2, "name": "api-clone-02", "ip": "192.168.2.182"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid");
    let (s, b) = w
        .post(
            &admin,
            "/api/v1/vms",
            json!({"template": 77, "name": "x", "ip": "192.168.2.183"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid");
    // Sync.
    let (s, acc) = w.post(&admin, "/api/v1/sync", json!({})).await;
    assert_eq!(s, 202, "{acc}");
    assert_eq!(
        w.wait_job(&admin, acc["job"].as_i64().unwrap()).await["state"],
        "succeeded"
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_clearly() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let vm = w.vm("power=on").await;
    let url = w.url(&format!(
        "/api/v1/vms/sim/{}/actions",
        vm["id"].as_str().unwrap()
    ));
    let send = |body: &'static str, ctype: &'static str| {
        w.http
            .post(&url)
            .bearer_auth(&admin)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    for (body, ctype, status, code) in [
        ("{\"action\":", "application/json", 400, "bad_request"),
        (
            "{\"action\":\"power_off\"}",
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            "{\"action\":\"explode\"}",
            "application/json",
            422,
            "invalid",
        ),
        (
            "{\"action\":\"set_cpu\",\"count\":\"four\"}",
            "application/json",
            422,
            "invalid",
        ),
        (
            "{\"action\":\"power_off\",\"force\":true}",
            "application/json",
            422,
            "invalid",
        ),
        ("[1,2,3]", "application/json", 422, "invalid"),
    ] {
        let r = send(body, ctype).await.unwrap();
        let s = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_error(s, &b, status, code);
        assert!(
            !b["message"].as_str().unwrap().contains("opsbot_"),
            "no internals: {b}"
        );
    }
    let huge = format!(
        "{{\"action\":\"rename\",\"new_name\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let r = w
        .http
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Nothing ran.
    let (_, jobs) = w.get(&admin, "/api/v1/jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 0, "{jobs}");
}

#[tokio::test]
async fn refused_mutating_calls_are_audited() {
    let w = World::start().await;
    let r = w.http.post(w.url("/api/v1/sync")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (_, audit) = w
        .get(&w.token("admin").await, "/api/v1/audit?result=denied")
        .await;
    let e = &audit["items"][0];
    assert_eq!(e["text"], "POST /api/v1/sync", "{audit}");
    assert!(
        e["user"].as_str().unwrap().contains("unauthenticated"),
        "{e}"
    );
}

#[tokio::test]
async fn each_token_has_its_own_rate_limit() {
    let w = World::with(Options {
        rate_limit_per_minute: 1,
        rate_limit_burst: 3,
        ..Options::default()
    })
    .await;
    let a = w.token("admin").await;
    let b = w.token("admin").await;
    for _ in 0..3 {
        assert_eq!(w.get(&a, "/api/v1/datacenters").await.0, 200);
    }
    let r = w
        .http
        .get(w.url("/api/v1/datacenters"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Another token is not held back.
    assert_eq!(w.get(&b, "/api/v1/datacenters").await.0, 200);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let (s, acc) = w.post(&admin, "/api/v1/sync", json!({})).await;
    assert_eq!(s, 202);
    w.wait_job(&admin, acc["job"].as_i64().unwrap()).await;
    // One WeCom call (an OAuth code lookup) so its counters exist.
    let code = w.fake.mint_code("zhangsan");
    let client = w.ctx.oauth.as_ref().unwrap().client.clone();
    client.getuserinfo(&code).await.unwrap();
    assert!(
        client.getuserinfo(&code).await.is_err(),
        "a code is single-use"
    );
    let r = w.http.get(w.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for name in [
        "opsbot_http_requests_total{",
        "opsbot_http_request_duration_seconds_bucket{",
        "opsbot_jobs_started_total{",
        "opsbot_jobs_finished_total{",
        "opsbot_sync_duration_seconds_bucket{",
        "opsbot_wecom_api_calls_total{",
        "opsbot_wecom_api_errors_total{api=\"auth/getuserinfo\",errcode=\"40029\"}",
        "opsbot_outbox_depth",
        "opsbot_pool_vms",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        text.contains("route=\"/api/v1/sync\""),
        "routes by template"
    );
}

/// What the pool already knows to be impossible is refused before anything runs (422
/// with the reason and the choices), for a dry run (the web UI's dialog) as for the
/// real call; a dry run names what a VLAN resolves to.
#[tokio::test]
async fn impossible_plans_are_422_with_the_choices() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    let (_, page) = w.get(&admin, "/api/v1/vms?name=web-02&per_page=50").await;
    let vm = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "web-02")
        .unwrap_or_else(|| panic!("{page}"))
        .clone();
    let path = format!("/api/v1/vms/sim/{}/actions", vm["id"].as_str().unwrap());
    for (body, want) in [
        (
            json!({"action": "set_network", "network": "999"}),
            "数据中心 DC0 没有端口组或 VLAN \"999\";可选: ",
        ),
        (
            json!({"action": "set_network", "network": "100"}),
            "web-02 已经在 VLAN100-业务网",
        ),
        (json!({"action": "set_cpu", "count": 4}), "已经是 4 个 CPU"),
        (
            json!({"action": "set_memory", "gb": 4}),
            "减少内存需要先关机",
        ),
        (
            json!({"action": "add_disk", "gb": 10, "datastore": "ds-dr-01"}),
            "存储 ds-dr-01 在数据中心 DC1",
        ),
    ] {
        for url in [format!("{path}?dry_run=true"), path.clone()] {
            let (s, b) = w.post(&admin, &url, body.clone()).await;
            assert_error(s, &b, 422, "invalid");
            assert!(
                b["message"].as_str().unwrap().contains(want),
                "{body} {url}: {want} in {b}"
            );
        }
    }
    let (s, plan) = w
        .post(
            &admin,
            &format!("{path}?dry_run=true"),
            json!({"action": "set_network", "network": "200"}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert!(
        plan["summary"]
            .as_str()
            .unwrap()
            .contains("VLAN100-业务网 → VLAN200-数据库"),
        "{plan}"
    );
    let (s, plan) = w
        .post(
            &admin,
            &format!("{path}?dry_run=true"),
            json!({"action": "set_cpu", "count": 8}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(
        plan["destructive"], true,
        "CPU changes are confirmed: {plan}"
    );
    assert!(
        plan["summary"]
            .as_str()
            .unwrap()
            .contains("修改 web-02 CPU: 4 → 8(开机中,热添加)"),
        "{plan}"
    );
}

/// `POST /api/v1/jobs/{id}/cancel`: the owner or an administrator stops a running job
/// (202, the job ends `cancelled`); someone else is refused (403); a finished job is a
/// conflict (409); a missing one 404.
#[tokio::test]
async fn a_running_job_is_cancelled_over_rest() {
    let w = World::with(Options {
        // A clone takes minutes: surely running when cancelled, ended at once by it.
        sim_time_scale: 100.0,
        ..Options::default()
    })
    .await;
    let admin = w.token("admin").await;
    let body = json!({"template": 1, "name": "api-cancel-me", "ip": "192.168.2.190"});
    let (s, acc) = w.post(&admin, "/api/v1/vms", body).await;
    assert_eq!(s, 202, "{acc}");
    let id = acc["job"].as_i64().unwrap();
    // Wait until it reports progress: running, at a cancellable step.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = w.get(&admin, &format!("/api/v1/jobs/{id}")).await;
        assert_eq!(job["state"], "running", "{job}");
        if job["progress"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel = format!("/api/v1/jobs/{id}/cancel");
    // Someone else's job is not found, as when reading it.
    let (s, b) = w.post(&w.token("zhangsan").await, &cancel, json!({})).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = w.post(&admin, &cancel, json!({})).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["job"], id);
    assert_eq!(b["status_url"], format!("/api/v1/jobs/{id}"));
    assert!(b["message"].as_str().unwrap().contains("已请求取消"), "{b}");
    let job = w.wait_job(&admin, id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let (_, found) = w.get(&admin, "/api/v1/vms?name=api-cancel-me").await;
    assert_eq!(found["total"], 0, "nothing cloned: {found}");
    let (_, listed) = w.get(&admin, "/api/v1/jobs?state=cancelled").await;
    assert_eq!(listed["items"][0]["id"], id, "{listed}");

    let (s, b) = w.post(&admin, &cancel, json!({})).await;
    assert_error(s, &b, 409, "conflict");
    assert!(b["message"].as_str().unwrap().contains("无需取消"), "{b}");
    let (s, b) = w.post(&admin, "/api/v1/jobs/9999/cancel", json!({})).await;
    assert_error(s, &b, 404, "not_found");
    // Audited like every mutating call.
    let (_, audit) = w.get(&admin, "/api/v1/audit").await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == format!("取消:#{id}") && e["channel"] == "api"),
        "{audit}"
    );
}

#[tokio::test]
async fn cancel_refuses_hostile_requests_and_changes_nothing() {
    let w = World::start().await;
    let admin = w.token("admin").await;
    // No token, a forged one: refused before anything is looked up.
    for token in ["", "opsbot_forged.token"] {
        let (s, b) = w.post(token, "/api/v1/jobs/1/cancel", json!({})).await;
        assert_error(s, &b, 401, "unauthorized");
    }
    // Ids that are not job numbers: a clear 400 (or 404 for a path the router does not
    // match), never a 500.
    for id in [
        "abc",
        "-1",
        "99999999999999999999999",
        "1%00",
        "%F0%9F%92%A3",
    ] {
        let (s, b) = w
            .post(&admin, &format!("/api/v1/jobs/{id}/cancel"), json!({}))
            .await;
        assert!(
            (s == 400 && b["error"] == "bad_request") || (s == 404 && b["error"] == "not_found"),
            "{id}: {s} {b}"
        );
    }
    // Nothing ran: no job exists.
    let (_, jobs) = w.get(&admin, "/api/v1/jobs").await;
    assert_eq!(jobs["items"], json!([]), "{jobs}");
}
