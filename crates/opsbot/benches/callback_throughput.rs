//! The WeCom callback path measured from outside, as a user's load would meet it: the
//! real `opsbot serve` as its own process (SQLite in a temporary directory, or a fresh
//! PostgreSQL database), N pre-built encrypted `概况` callbacks with distinct MsgIds sent
//! over 64 keep-alive connections, and for each run: callbacks/s, the server's CPU per
//! callback (utime + stime of its process, from /proc), the load generator's own CPU
//! (it shares the machine's cores), on PostgreSQL the CPU of every `postgres` process,
//! and the latency percentiles.
//!
//! cargo bench -p opsbot --bench callback_throughput
//! cargo bench -p opsbot --bench callback_throughput -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//!
//! Options (also as environment variables): `--callbacks N` (`OPSBOT_BENCH_CALLBACKS`,
//! default 40000), `--connections N` (64), `--postgres URL` (`OPSBOT_BENCH_POSTGRES`: an
//! admin URL; a database `opsbot_bench_<pid>` is created with `psql` and dropped after),
//! `--bin PATH` (`OPSBOT_BENCH_BIN`: another opsbot binary, to compare builds).
//! Every answer is checked: status 200 and a non-empty encrypted passive reply.
#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed run, with its line

use opsbot_fakes::build_callback_post;
use opsbot_wecom::WecomCrypto;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
/// Callbacks sent before the measured run (connections, caches, the first sync).
const WARMUP: usize = 2000;

struct Options {
    callbacks: usize,
    connections: usize,
    postgres: Option<String>,
    bin: PathBuf,
}

fn options() -> Options {
    let mut o = Options {
        callbacks: env_or("OPSBOT_BENCH_CALLBACKS", 40_000),
        connections: 64,
        postgres: std::env::var("OPSBOT_BENCH_POSTGRES").ok(),
        bin: std::env::var("OPSBOT_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_opsbot"))),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--callbacks" => o.callbacks = args.next().unwrap().parse().unwrap(),
            "--connections" => o.connections = args.next().unwrap().parse().unwrap(),
            "--postgres" => o.postgres = args.next(),
            "--bin" => o.bin = PathBuf::from(args.next().unwrap()),
            _ => {} // `cargo bench` passes --bench
        }
    }
    o
}

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server, killed when the bench ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh PostgreSQL database, dropped at the end.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin: &str) -> PgDatabase {
        let name = format!("opsbot_bench_{}", std::process::id());
        psql(admin, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin.rsplit_once('/').unwrap();
        PgDatabase {
            admin: admin.into(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-q", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(dir: &Path, port: u16, store: &str) -> PathBuf {
    let path = dir.join("opsbot.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "{store}"
[[providers]]
name = "sim"
kind = "sim"
sync_interval = "1h"
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = {AGENT}
secret = "secret-ops"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
# Nothing is sent: 概况 answers in the passive reply.
api_base = "http://127.0.0.1:9"
[[roles]]
name = "admin"
commands = ["*"]
[[users]]
id = "zhangsan"
roles = ["admin"]
[[users]]
id = "lisi"
roles = ["admin"]
"#
        ),
    )
    .unwrap();
    path
}

/// One request as bytes, ready to write.
fn request(crypto: &WecomCrypto, msg_id: u64, user: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp().to_string();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[概况]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID></xml>"
    );
    let nonce = format!("{msg_id}");
    let p = build_callback_post(crypto, AGENT, &xml, b"0123456789abcdef", &now, &nonce);
    let mut r = format!(
        "POST /wecom/ops/callback?{} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n",
        p.query,
        p.body.len()
    )
    .into_bytes();
    r.extend_from_slice(p.body.as_bytes());
    r
}

/// utime + stime of `pid` (`self` for this process), from /proc.
fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are the 14th and 15th fields; USER_HZ is 100 on Linux.
    Duration::from_millis((f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) * 10)
}

/// Sends `requests` one after the other on one keep-alive connection; the latency of
/// each. Panics on anything but a 200 with a non-empty body.
async fn drive(addr: std::net::SocketAddr, requests: Vec<Vec<u8>>) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let t = Instant::now();
        s.write_all(&r).await.unwrap();
        read_answer(&mut s, &mut buf).await;
        out.push(t.elapsed());
    }
    out
}

async fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.1 200"),
            "{}",
            String::from_utf8_lossy(buf)
        );
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a Content-Length answer");
        assert!(length > 0, "an empty passive reply");
        if buf.len() >= end + 4 + length {
            return;
        }
    }
}

struct Run {
    wall: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
    /// Every `postgres` process's CPU over the run (the server and its backends): what
    /// the store itself spent, when it is a local PostgreSQL.
    postgres_cpu: Duration,
    latencies: Vec<Duration>,
}

/// utime + stime of every process named `postgres`. Backends that end during the run
/// take their time with them, so this is a floor; the server's connections stay open.
fn postgres_cpu() -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_of(&pid))
        .sum()
}

async fn run(addr: std::net::SocketAddr, pid: &str, batches: Vec<Vec<Vec<u8>>>) -> Run {
    let n: usize = batches.iter().map(Vec::len).sum();
    let (server0, client0, pg0) = (cpu_of(pid), cpu_of("self"), postgres_cpu());
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|b| tokio::spawn(drive(addr, b)))
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    Run {
        wall,
        server_cpu: cpu_of(pid) - server0,
        client_cpu: cpu_of("self") - client0,
        postgres_cpu: postgres_cpu().saturating_sub(pg0),
        latencies,
    }
}

/// `n` requests with msg ids from `first`, dealt to `connections` connections.
fn build(crypto: &WecomCrypto, first: u64, n: usize, connections: usize) -> Vec<Vec<Vec<u8>>> {
    let mut batches: Vec<Vec<Vec<u8>>> = (0..connections).map(|_| Vec::new()).collect();
    for i in 0..n {
        // Two users, each with a session.
        let user = if i % 2 == 0 { "zhangsan" } else { "lisi" };
        batches[i % connections].push(request(crypto, first + i as u64, user));
    }
    batches
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg = o.postgres.as_deref().map(PgDatabase::create);
    let store = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("opsbot.db").display()),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(dir.path(), port, &store);
    let log = dir.path().join("serve.log");
    let mut cmd = Command::new(&o.bin);
    cmd.current_dir(dir.path())
        .env("HOME", dir.path())
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OPSBOT_") {
            cmd.env_remove(k);
        }
    }
    let server = Server(
        cmd.args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id().to_string();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    let warmup = build(&crypto, 1, WARMUP, o.connections);
    let measured = build(&crypto, 1_000_000, o.callbacks, o.connections);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "serve never listened: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        run(addr, &pid, warmup).await;
        let r = run(addr, &pid, measured).await;
        let n = r.latencies.len() as f64;
        let pct = |p: f64| r.latencies[((n * p) as usize).min(r.latencies.len() - 1)];
        println!(
            "callback_throughput {} ({} callbacks, {} connections, {})",
            if pg.is_some() { "PostgreSQL" } else { "SQLite" },
            r.latencies.len(),
            o.connections,
            o.bin.display()
        );
        println!(
            "  {:.0} callbacks/s; server CPU {:.1} µs/callback; load generator CPU {:.1} µs/callback",
            n / r.wall.as_secs_f64(),
            r.server_cpu.as_secs_f64() * 1e6 / n,
            r.client_cpu.as_secs_f64() * 1e6 / n,
        );
        if pg.is_some() {
            println!(
                "  PostgreSQL CPU {:.1} µs/callback (every postgres process on this machine)",
                r.postgres_cpu.as_secs_f64() * 1e6 / n
            );
        }
        println!(
            "  latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; wall {:.2} s",
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            r.latencies.last().unwrap().as_secs_f64() * 1e3,
            r.wall.as_secs_f64()
        );
    });
    drop(server);
    if std::env::var_os("OPSBOT_BENCH_SHOW_LOG").is_some() {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
}
