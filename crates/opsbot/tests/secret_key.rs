//! The secret key that signs tokens and web logins lives outside the store: a copy of
//! the database verifies no token, a key kept in the store by an earlier version is
//! moved out without breaking live tokens, and `opsbot token rotate-key` makes every
//! old token and web login worthless while new ones work. Real binary, real HTTP.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

fn opsbot(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OPSBOT_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 exchange: (status, head, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn api_status(port: u16, token: &str) -> u16 {
    http(
        port,
        "GET",
        "/api/v1/vms?per_page=1",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .0
}

fn report_status(port: u16, token: &str) -> u16 {
    http(
        port,
        "POST",
        "/api/v1/agent/report",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        "{}",
    )
    .0
}

/// A running `opsbot serve`, its stderr kept in a file.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, args: &[&str], port: u16, log_name: &str) -> Serve {
        let log = dir.join(log_name);
        let child = opsbot(dir)
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serve { child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("serve exited ({status}): {}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve never listened: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_for("serve to stop", Duration::from_secs(30), || {
            self.child.try_wait().unwrap().is_some()
        });
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("opsbot.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "admin"
roles = ["admin"]
{extra}
"#,
            db = dir.join("opsbot.db").display()
        ),
    )
    .unwrap();
    path
}

fn token(dir: &Path, cfg: &Path, args: &[&str]) -> String {
    let o = opsbot(dir)
        .args(["token", "create", "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Every byte of the SQLite database (main file and write-ahead log).
fn database_bytes(dir: &Path, name: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        if let Ok(b) = std::fs::read(dir.join(format!("{name}{suffix}"))) {
            all.extend(b);
        }
    }
    assert!(!all.is_empty(), "no database {name} in {}", dir.display());
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The key line of a key file (comments skipped).
fn key_text(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap()
        .to_string()
}

fn mode(file: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_copy_of_the_database_without_the_key_file_verifies_no_token() {
    let a = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(a.path(), port, "");
    let api = token(a.path(), &cfg, &["--user", "admin"]);
    let agent = token(a.path(), &cfg, &["--agent"]);
    let serve = Serve::start(
        a.path(),
        &["--config", cfg.to_str().unwrap()],
        port,
        "a.log",
    );
    assert_eq!(api_status(port, &api), 200);
    let log = serve.stop();

    // Someone with a copy of the database (not of the key file) and the opsbot binary.
    let b = tempfile::tempdir().unwrap();
    for suffix in ["", "-wal"] {
        let from = a.path().join(format!("opsbot.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, b.path().join(format!("opsbot.db{suffix}"))).unwrap();
        }
    }
    let port_b = free_port();
    let cfg_b = config(b.path(), port_b, "");
    // The server refuses to start without the key the tokens were signed with.
    let mut copy = opsbot(b.path())
        .args(["serve", "--config"])
        .arg(&cfg_b)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(b.path().join("copy.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = copy.try_wait().unwrap() {
            break status;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port_b)).is_ok() {
            let verified = api_status(port_b, &api);
            let _ = copy.kill();
            let _ = copy.wait();
            panic!("serve ran on a copy of the database without the key file; the copied API token got {verified}");
        }
        assert!(
            Instant::now() < deadline,
            "serve neither started nor stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let said = std::fs::read_to_string(b.path().join("copy.log")).unwrap();
    assert!(
        said.contains("data/opsbot.key") && said.contains("rotate-key"),
        "{said}"
    );
    // Making it a new key (all it can do) verifies none of the copied tokens.
    let o = opsbot(b.path())
        .args(["token", "rotate-key", "--yes", "--config"])
        .arg(&cfg_b)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let serve = Serve::start(
        b.path(),
        &["--config", cfg_b.to_str().unwrap()],
        port_b,
        "b.log",
    );
    assert_eq!(api_status(port_b, &api), 401);
    assert_eq!(report_status(port_b, &agent), 401);
    drop(serve);

    // What the original holds: a private key file, and a database without it.
    let key_file = a.path().join("data/opsbot.key");
    assert_eq!(mode(&key_file), 0o600, "made on first use, private");
    let key = key_text(&key_file);
    assert!(!log.contains(&key), "the key is never logged");
    let db = database_bytes(a.path(), "opsbot.db");
    assert!(
        !contains(&db, key.as_bytes()),
        "the key is not in the store"
    );
    assert!(
        !contains(&db, b"auth.signing_key") && !contains(&db, b"web.signing_key"),
        "no signing key is kept in the store"
    );
}

/// What an earlier opsbot did: a 32-byte key in `provider_state`, tokens `ob1.…`
/// signed with it directly, rows holding SHA-256 of the signature.
fn legacy_token(key: &[u8; 32], id: &str, expiry: i64) -> (String, String) {
    let signed = format!("ob1.api.{id}.{expiry}");
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(signed.as_bytes());
    let mac = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    let hash: String = Sha256::digest(mac.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (format!("{signed}.{mac}"), hash)
}

#[test]
fn a_key_kept_in_the_store_by_an_earlier_version_moves_to_the_key_file_and_live_tokens_keep_working(
) {
    let dir = tempfile::tempdir().unwrap();
    let legacy: [u8; 32] = rand_bytes();
    let web: [u8; 32] = rand_bytes();
    let expiry = chrono::Utc::now().timestamp() + 3600;
    let (old_token, hash) = legacy_token(&legacy, "00112233aabbccdd", expiry);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db_url = format!("sqlite://{}/data/opsbot.db", dir.path().display());
    rt.block_on(async {
        let store = opsbot_store::connect(&db_url).await.unwrap();
        store
            .put_state("auth.signing_key", &URL_SAFE_NO_PAD.encode(legacy))
            .await
            .unwrap();
        store
            .put_state("web.signing_key", &URL_SAFE_NO_PAD.encode(web))
            .await
            .unwrap();
        store
            .token_insert(&opsbot_store::NewToken {
                token_id: "00112233aabbccdd".into(),
                kind: "api".into(),
                subject: "local".into(),
                secret_hash: hash,
                allow_ips: vec![],
                label: "issued by the earlier version".into(),
                expires_at: chrono::DateTime::from_timestamp(expiry, 0).unwrap(),
            })
            .await
            .unwrap();
    });
    // The embedded defaults: store under ./data, the user `local`.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(dir.path(), &["--listen", &listen], port, "serve.log");
    assert_eq!(
        api_status(port, &old_token),
        200,
        "a live token keeps working"
    );
    let key_file = dir.path().join("data/opsbot.key");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(key_text(&key_file)).unwrap(),
        legacy,
        "the stored key moved to the key file"
    );
    let o = opsbot(dir.path())
        .args(["token", "create", "--user", "local"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let new_token = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(new_token.starts_with("ob2.api."), "{new_token}");
    assert_eq!(api_status(port, &new_token), 200);
    let log = serve.stop();
    rt.block_on(async {
        let store = opsbot_store::connect(&db_url).await.unwrap();
        assert_eq!(store.get_state("auth.signing_key").await.unwrap(), None);
        assert_eq!(store.get_state("web.signing_key").await.unwrap(), None);
    });
    let db = database_bytes(&dir.path().join("data"), "opsbot.db");
    for (what, k) in [("token", legacy), ("web", web)] {
        let text = URL_SAFE_NO_PAD.encode(k);
        assert!(
            !contains(&db, text.as_bytes()) && !contains(&db, &k),
            "the old {what} key is still in the database file"
        );
        assert!(!log.contains(&text), "the {what} key was logged");
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b
}

fn hash_password(dir: &Path, password: &str) -> String {
    let mut child = opsbot(dir)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Logs in as the local administrator; returns the session cookie (`ob_session=…`).
fn web_login(port: u16, password: &str) -> String {
    let (status, head, body) = http(port, "GET", "/ui/login", &[], "");
    assert_eq!(status, 200, "{head}");
    let cookie = head
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .find(|c| c.starts_with("ob_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let form = format!("csrf={csrf}&user=admin&password={password}&next=%2Fui%2F");
    let (status, head, _) = http(
        port,
        "POST",
        "/ui/login",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert!((300..400).contains(&status), "{head}");
    head.lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .find(|c| c.starts_with("ob_session=") && !c.starts_with("ob_session=;"))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn web_status(port: u16, cookie: &str) -> u16 {
    http(port, "GET", "/ui/", &[("Cookie", cookie)], "").0
}

/// The test Redis (`OPSBOT_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`), if a
/// server answers there.
fn reachable_redis() -> Option<String> {
    let url = std::env::var("OPSBOT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
    let host = url
        .split("://")
        .nth(1)?
        .rsplit('@')
        .next()?
        .split('/')
        .next()?
        .to_string();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .ok()?
        .next()?;
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    Some(url)
}

#[test]
fn rotating_the_key_refuses_old_tokens_and_web_logins_and_new_ones_work() {
    let redis = reachable_redis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let password = "rotate-me";
    let hash = hash_password(dir.path(), password);
    // Web logins live in Redis, so they outlive a restart: only the key can end them.
    let sessions = match &redis {
        Some(url) => format!("[sessions]\nbackend = \"redis\"\nurl = \"{url}\"\n"),
        None => {
            // The token half of the test still runs; the web-login half needs Redis.
            let _: Option<()> = opsbot_testkit::skip(
                "web logins across a rotation need Redis, and none answers at OPSBOT_TEST_REDIS_URL",
                opsbot_testkit::fix::REDIS,
            );
            String::new()
        }
    };
    let cfg = config(
        dir.path(),
        port,
        &format!("{sessions}[web]\nadmin_user = \"admin\"\nadmin_password_hash = \"{hash}\"\n"),
    );
    let args = ["--config", cfg.to_str().unwrap()];
    let old_api = token(dir.path(), &cfg, &["--user", "admin"]);
    let old_agent = token(dir.path(), &cfg, &["--agent"]);
    let old_key = key_text(&dir.path().join("data/opsbot.key"));
    let serve = Serve::start(dir.path(), &args, port, "1.log");
    assert_eq!(api_status(port, &old_api), 200);
    let cookie = redis.as_ref().map(|_| web_login(port, password));
    if let Some(c) = &cookie {
        assert_eq!(web_status(port, c), 200);
    }
    let mut logs = serve.stop();
    // Same key, restarted: tokens and the login still hold.
    let serve = Serve::start(dir.path(), &args, port, "2.log");
    assert_eq!(api_status(port, &old_api), 200);
    if let Some(c) = &cookie {
        assert_eq!(web_status(port, c), 200, "a login outlives a restart");
    }
    logs += &serve.stop();

    let o = opsbot(dir.path())
        .args(["token", "rotate-key", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success(), "rotation asks for --yes: {}", text(&o));
    assert_eq!(key_text(&dir.path().join("data/opsbot.key")), old_key);
    let o = opsbot(dir.path())
        .args(["token", "rotate-key", "--yes", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("data/opsbot.key") && said.contains("token create"),
        "{said}"
    );
    let new_key = key_text(&dir.path().join("data/opsbot.key"));
    assert_ne!(new_key, old_key);
    assert!(
        !said.contains(&new_key) && !said.contains(&old_key),
        "{said}"
    );
    assert_eq!(mode(&dir.path().join("data/opsbot.key")), 0o600);

    let serve = Serve::start(dir.path(), &args, port, "3.log");
    assert_eq!(
        api_status(port, &old_api),
        401,
        "an old API token is refused"
    );
    assert_eq!(
        report_status(port, &old_agent),
        401,
        "an old agent token is refused"
    );
    if let Some(c) = &cookie {
        let status = web_status(port, c);
        assert!(
            (300..400).contains(&status),
            "an old web login is sent to log in again: {status}"
        );
    }
    let new_api = token(dir.path(), &cfg, &["--user", "admin"]);
    assert_eq!(api_status(port, &new_api), 200, "a new token works");
    if redis.is_some() {
        let c = web_login(port, password);
        assert_eq!(web_status(port, &c), 200, "a new login works");
    }
    logs += &serve.stop();
    for k in [&old_key, &new_key] {
        assert!(!logs.contains(k.as_str()), "a key was logged");
    }
}

#[test]
fn a_key_file_others_may_read_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port(), "");
    token(dir.path(), &cfg, &["--user", "admin"]);
    let key_file = dir.path().join("data/opsbot.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = opsbot(dir.path())
        .args(["token", "create", "--user", "admin", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(o.stdout.is_empty(), "no token printed");
    let said = text(&o);
    assert!(
        said.contains("chmod 600") && said.contains("data/opsbot.key"),
        "{said}"
    );
    let o = opsbot(dir.path())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("chmod 600"),
        "{}",
        text(&o)
    );
    // The key can come from the environment instead (a secret manager, several hosts).
    std::fs::remove_file(&key_file).unwrap();
    let o = opsbot(dir.path())
        .args(["token", "create", "--user", "admin", "--config"])
        .arg(&cfg)
        .env("OPSBOT_SECRET_KEY", "too short")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("OPSBOT_SECRET_KEY"), "{}", text(&o));
}

/// Over HTTP, an API and an agent token are accepted in exactly the text they were
/// issued in; every other spelling of the same parts is refused (401).
#[test]
fn a_token_is_accepted_in_exactly_the_text_it_was_issued_in() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let api = token(dir.path(), &cfg, &["--user", "admin"]);
    let agent = token(dir.path(), &cfg, &["--agent"]);
    let serve = Serve::start(
        dir.path(),
        &["--config", cfg.to_str().unwrap()],
        port,
        "s.log",
    );
    assert_eq!(api_status(port, &api), 200);
    let variants = |t: &str| -> Vec<String> {
        let p: Vec<&str> = t.split('.').collect();
        let join = |i: usize, v: &str| {
            let mut q: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            q[i] = v.to_string();
            q.join(".")
        };
        let mac = p[4];
        const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = B64.find(mac.chars().last().unwrap()).unwrap();
        let twin = B64.as_bytes()[(last & !3) | ((last + 1) & 3)] as char;
        vec![
            join(3, &format!("+{}", p[3])),
            join(3, &format!("0{}", p[3])),
            join(2, &p[2].to_uppercase()),
            join(1, &p[1].to_uppercase()),
            join(0, &p[0].to_uppercase()),
            join(4, &format!("{mac}=")),
            join(4, &format!("{}{twin}", &mac[..mac.len() - 1])),
            join(4, &mac.replace('-', "+").replace('_', "/")),
            format!("{t}."),
        ]
        .into_iter()
        .filter(|v| v != t)
        .collect()
    };
    for v in variants(&api) {
        assert_eq!(api_status(port, &v), 401, "{v}");
    }
    for v in variants(&agent) {
        assert_eq!(report_status(port, &v), 401, "{v}");
    }
    // The real ones still work: 200 for the API, and the agent's token gets past
    // authentication (its empty report is then refused as a bad report, 400).
    assert_eq!(api_status(port, &api), 200);
    assert_eq!(report_status(port, &agent), 400);
    drop(serve);
}
