//! The web UI in a real browser: headless Debian Chromium at a phone's viewport, driven
//! over WebDriver (chromedriver). As a WeCom member opening the app, it is logged in
//! by the OAuth flow (fake WeCom), searches a VM, powers it off through the confirm
//! dialog, watches the job finish, and takes a screenshot of each page. As an
//! administrator it searches an exact name, clones from a template, follows the jobs
//! page, and is refused an out-of-range CPU count on the VM's own page; the controls a
//! thumb hits are at least 44 px high.
//!
//! Needs `chromium` and `chromium-driver` (Debian); skipped with one line on stderr
//! when they are missing, unless `OPSBOT_TEST_REQUIRE_SERVICES=1`. Screenshots go to `$OPSBOT_SCREENSHOTS`
//! (relative to the repository root; `docs/screenshots` refreshes the README's) or a
//! temporary directory.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::World;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const WECOM_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh_CN";

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or skips (`None`) when it or Chromium is not installed.
async fn start_driver() -> Option<Driver> {
    use opsbot_testkit::{fix, program};
    program(CHROMIUM, fix::CHROMIUM)?;
    program(DRIVER, fix::CHROMIUM)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    };
    // Ready when /status says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
        {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(driver)
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=zh-CN",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true, "touch": true },
                "userAgent": WECOM_UA,
            },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn shots_dir() -> PathBuf {
    match std::env::var("OPSBOT_SCREENSHOTS") {
        Ok(d) if PathBuf::from(&d).is_absolute() => PathBuf::from(d),
        Ok(d) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(d),
        Err(_) => std::env::temp_dir().join("opsbot-screenshots"),
    }
}

async fn shot(c: &Client, name: &str) {
    let dir = shots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits until the page's text contains `text`. While a page loads there may be no
/// body yet, or the one found goes stale: both mean "not yet".
async fn wait_text(c: &Client, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = match c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "page never showed {text:?}; it shows:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_logs_in_finds_a_vm_and_powers_it_off() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let w = World::start().await;
    let vm = w.vm("datacenter=DC0&power=on&q=web").await;
    let (vm_id, vm_name) = (
        vm["id"].as_str().unwrap().to_string(),
        vm["name"].as_str().unwrap().to_string(),
    );
    w.fake.set_oauth_member(Some("zhangsan"));
    let c = browser(&driver).await;
    let result = async {
        // Opening the app inside WeCom: straight through OAuth to 纵览, no password.
        c.goto(&w.url("/ui/")).await.unwrap();
        wait_text(&c, "最近变更").await;
        assert!(c.current_url().await.unwrap().path() == "/ui/");
        wait_text(&c, "zhangsan").await;
        shot(&c, "overview").await;

        // Search.
        c.goto(&w.url("/ui/vms")).await.unwrap();
        let q = c.find(Locator::Css("input[name=q]")).await.unwrap();
        q.send_keys(&vm_name).await.unwrap();
        c.find(Locator::Css("form.search button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&c, "共 1 台").await;
        shot(&c, "vms").await;

        // The VM, its actions, the confirm dialog.
        c.find(Locator::Css("ul.list li a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&c, "操作").await;
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&format!("/ui/vms/sim/{vm_id}")));
        shot(&c, "vm").await;
        c.find(Locator::Css("button[data-dialog=dlg-power_off]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let dialog = c
            .wait()
            .for_element(Locator::Css("dialog#dlg-power_off[open]"))
            .await
            .unwrap();
        let text = dialog.text().await.unwrap();
        assert!(
            text.contains("强制关机") && text.contains(&vm_name),
            "{text}"
        );
        shot(&c, "confirm").await;
        dialog
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The job page follows the job to its end.
        wait_text(&c, "任务 #").await;
        wait_text(&c, "成功").await;
        wait_text(&c, "100%").await;
        shot(&c, "job").await;

        // Other pages, for the README.
        for (path, marker, name) in [
            ("/ui/hosts", "主机", "hosts"),
            ("/ui/datastores", "存储", "datastores"),
            ("/ui/audit", "审计日志", "audit"),
        ] {
            c.goto(&w.url(path)).await.unwrap();
            wait_text(&c, marker).await;
            shot(&c, name).await;
        }
    }
    .await;
    c.close().await.unwrap();
    let () = result;
    // Really off, through the engine, and audited as zhangsan on the web.
    let admin = w.token("admin").await;
    let (_, after) = w.get(&admin, &format!("/api/v1/vms/sim/{vm_id}")).await;
    assert_eq!(after["power"], "poweredOff", "{after}");
    let (_, audit) = w.get(&admin, "/api/v1/audit?user=zhangsan").await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["channel"] == "web" && e["command"] == "关机" && e["result"] == "accepted"),
        "{audit}"
    );
}

/// The heights (CSS px) of what `selector` finds on the page and shows (a closed
/// dialog's buttons are not there for a thumb).
async fn heights(c: &Client, selector: &str) -> Vec<f64> {
    let v = c
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).filter(function (e) { return e.getClientRects().length > 0; }).map(function (e) { return e.getBoundingClientRect().height; });",
            vec![json!(selector)],
        )
        .await
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_f64().unwrap())
        .collect()
}

/// Everything `selector` finds is at least a thumb high (44 px, Apple's and WCAG's
/// minimum target), and there is something.
async fn thumb_sized(c: &Client, selector: &str) {
    let hs = heights(c, selector).await;
    assert!(!hs.is_empty(), "nothing matches {selector}");
    assert!(hs.iter().all(|h| *h >= 44.0), "{selector}: {hs:?}");
}

async fn click(c: &Client, selector: &str) {
    c.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_searches_clones_follows_jobs_and_is_refused_a_bad_value() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let w = World::start().await;
    let vm = w.vm("datacenter=DC0&power=off").await;
    let (vm_id, vm_name) = (
        vm["id"].as_str().unwrap().to_string(),
        vm["name"].as_str().unwrap().to_string(),
    );
    w.fake.set_oauth_member(Some("admin"));
    let c = browser(&driver).await;
    let result = async {
        c.goto(&w.url("/ui/")).await.unwrap();
        wait_text(&c, "最近变更").await;
        for target in ["button.link", "a.more", ".tabs a", "a.gauge", "a.stat"] {
            thumb_sized(&c, target).await;
        }

        // An exact name: its VM first, marked, before the names that contain it.
        c.goto(&w.url("/ui/vms")).await.unwrap();
        wait_text(&c, "共 48 台").await;
        for target in [
            ".pager a",
            "form.search select",
            "form.search input",
            "form.search button",
        ] {
            thumb_sized(&c, target).await;
        }
        let q = c.find(Locator::Css("input[name=q]")).await.unwrap();
        q.send_keys("web-01").await.unwrap();
        click(&c, "form.search button[type=submit]").await;
        wait_text(&c, "精确匹配").await;
        let first = c
            .find(Locator::Css("ul.list li b"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(first, "web-01");
        shot(&c, "search").await;
        // A filter applies as soon as it is chosen.
        c.find(Locator::Css("select[name=power]"))
            .await
            .unwrap()
            .select_by_value("off")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("power=off")
        {
            assert!(Instant::now() < deadline, "the power filter did not apply");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A clone from template 2 through the form, then its job.
        c.goto(&w.url("/ui/clone")).await.unwrap();
        wait_text(&c, "开始克隆").await;
        c.find(Locator::Css("select[name=template]"))
            .await
            .unwrap()
            .select_by_value("2")
            .await
            .unwrap();
        for (field, value) in [("name", "web-ui-01"), ("ip", "192.168.2.186"), ("cpu", "2")] {
            c.find(Locator::Css(&format!("input[name={field}]")))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        shot(&c, "clone").await;
        click(&c, "form.form button[type=submit]").await;
        wait_text(&c, "任务 #").await;
        wait_text(&c, "成功").await;
        wait_text(&c, "100%").await;

        // The jobs page lists it, linked to its page, and follows a running job live:
        // one the store says is running changes on the page when the store says so.
        let running = w
            .store
            .create_job(&opsbot_store::NewJob {
                owner: "browser-test".into(),
                user: "admin".into(),
                channel: "api".into(),
                chat: None,
                command: "同步".into(),
                text: "同步".into(),
                message: "读取清单".into(),
                target: None,
            })
            .await
            .unwrap();
        w.store
            .update_job(running, opsbot_core::JobState::Running, 40, "读取清单: DC0")
            .await
            .unwrap();
        c.goto(&w.url("/ui/jobs")).await.unwrap();
        wait_text(&c, "web-ui-01").await;
        wait_text(&c, "进行中").await;
        thumb_sized(&c, "ul.jobs li a").await;
        shot(&c, "jobs").await;
        w.store
            .update_job(
                running,
                opsbot_core::JobState::Succeeded,
                100,
                "同步完成: 48 台虚拟机",
            )
            .await
            .unwrap();
        wait_text(&c, "同步完成: 48 台虚拟机").await;
        click(&c, "ul.jobs li a").await;
        wait_text(&c, "全部任务").await;
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/jobs/"));

        // An out-of-range CPU count: the dialog repeats it, the server refuses it with
        // the reason, on the VM's own page.
        c.goto(&w.url(&format!("/ui/vms/sim/{vm_id}")))
            .await
            .unwrap();
        wait_text(&c, "操作").await;
        thumb_sized(&c, ".actions button").await;
        click(&c, "button[data-dialog=dlg-set_cpu]").await;
        let dialog = c
            .wait()
            .for_element(Locator::Css("dialog#dlg-set_cpu[open]"))
            .await
            .unwrap();
        let field = dialog
            .find(Locator::Css("input[name=count]"))
            .await
            .unwrap();
        assert_eq!(field.prop("value").await.unwrap().as_deref(), Some(""));
        field.send_keys("999").await.unwrap();
        dialog
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let ask = dialog.find(Locator::Css(".ask")).await.unwrap();
        assert_eq!(
            ask.text().await.unwrap(),
            format!("将 {vm_name} 的 CPU 改为 999?")
        );
        shot(&c, "dialog").await;
        dialog
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&c, "超出范围").await;
        wait_text(&c, &vm_name).await;
        shot(&c, "refused").await;
    }
    .await;
    c.close().await.unwrap();
    let () = result;
    let admin = w.token("admin").await;
    let (_, found) = w.get(&admin, "/api/v1/vms?name=web-ui-01").await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, after) = w.get(&admin, &format!("/api/v1/vms/sim/{vm_id}")).await;
    assert_eq!(after["cpu"], vm["cpu"], "the refused value changed nothing");
}
