//! The deploy pages in a real browser: headless Debian Chromium at a phone's viewport,
//! driven over WebDriver (chromedriver). The administrator logs in with the password
//! form, opens a release order waiting for approval (created in the store), sees its
//! hosts and its log, watches a line written meanwhile arrive over the SSE route, and
//! approves it; the order's state changes. Screenshots of 项目, 发布单 and the order go
//! to `$OPSBOT_SCREENSHOTS` (relative to the repository root) or a temporary directory.
//!
//! Needs `chromium` and `chromium-driver` (Debian); skipped with one line on stderr
//! when they are missing, unless `OPSBOT_TEST_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "deploys/world.rs"]
mod world;

use fantoccini::{Client, ClientBuilder, Locator};
use opsbot_store::deploy::LogOf;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use world::World;

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const PHONE_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";

struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
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
        profile: tempfile::tempdir().unwrap(),
    };
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
                format!("--user-data-dir={}", driver.profile.path().display()),
            ],
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true, "touch": true },
                "userAgent": PHONE_UA,
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

/// The text of the first element `css` finds ("" while there is none, or it went stale
/// as the page changed).
async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `check` holds for the text of `css` (deadline 20 s).
async fn wait_for(c: &Client, css: &str, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = text_of(c, css).await;
        if check(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {what}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_sees_the_hosts_and_the_live_log_and_approves() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let w = World::start().await;
    let id = w.order("shop", "待审批").await;
    for (host, text) in [("", "发布单已创建,等待审批"), ("web-01", "待发布")] {
        w.store
            .log_append(LogOf::Order(id, Some(host)), text)
            .await
            .unwrap();
    }
    let c = browser(&driver).await;
    let result = async {
        // Sent to log in, then on to the order.
        c.goto(&w.url(&format!("/ui/releases/{id}"))).await.unwrap();
        wait_for(&c, "body", "the login form", |t| t.contains("密码")).await;
        c.find(Locator::Css("input[name=user]"))
            .await
            .unwrap()
            .send_keys("admin")
            .await
            .unwrap();
        c.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys(world::ADMIN_PASSWORD)
            .await
            .unwrap();
        click(&c, "form button[type=submit]").await;
        wait_for(&c, "table.hosts-table", "both hosts", |t| {
            t.contains("web-01") && t.contains("web-02")
        })
        .await;
        wait_for(&c, "#order-state", "待审批", |t| t == "待审批").await;
        wait_for(&c, "#log", "the log so far", |t| t.contains("等待审批")).await;
        // A line written now arrives over the live log.
        w.store
            .log_append(LogOf::Order(id, Some("web-02")), "来自后台的新日志")
            .await
            .unwrap();
        wait_for(&c, "#log", "the new line", |t| {
            t.contains("[web-02] 来自后台的新日志")
        })
        .await;
        // Thumb-sized controls.
        let approve = c.find(Locator::Css("#act-approve")).await.unwrap();
        let (_, _, _, height) = approve.rectangle().await.unwrap();
        assert!(height >= 44.0, "批准 is {height} px high");
        shot(&c, "release").await;

        approve.click().await.unwrap();
        wait_for(&c, "#order-state", "a state after approval", |t| {
            !t.is_empty() && t != "待审批"
        })
        .await;
        shot(&c, "release-approved").await;
        let o = opsbot_store::deploy::DeployStore::order_get(w.store.as_ref(), id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.approver.as_deref(), Some("admin"));

        c.goto(&w.url("/ui/releases")).await.unwrap();
        wait_for(&c, "ul.releases", "the order", |t| {
            t.contains(&format!("#{id}"))
        })
        .await;
        shot(&c, "releases").await;
        c.goto(&w.url("/ui/projects")).await.unwrap();
        wait_for(&c, "main", "both projects", |t| {
            t.contains("shop") && t.contains("other")
        })
        .await;
        shot(&c, "projects").await;
    }
    .await;
    c.close().await.unwrap();
    result
}
