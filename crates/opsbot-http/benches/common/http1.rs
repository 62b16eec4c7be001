//! A lean keep-alive HTTP/1.1 client for the load benchmarks. The load generator shares
//! the two cores with the server, so its own cost is kept small (reqwest's would be
//! measured with the server's): requests are written straight to TCP and answers read
//! by their Content-Length.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: std::net::SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Sends `method target` with `headers` (each `name: value\r\n`) and `body`; the
    /// time to the whole answer, and the answer.
    pub async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &str,
        body: &[u8],
    ) -> (Duration, Answer) {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}content-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let t = Instant::now();
        self.stream.write_all(&request).await.unwrap();
        let answer = self.read_answer().await;
        (t.elapsed(), answer)
    }

    async fn read_answer(&mut self) -> Answer {
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let mut head: Option<(usize, u16, usize)> = None;
        loop {
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if head.is_none() {
                let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                    continue;
                };
                let text = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                assert!(
                    !text.contains("transfer-encoding: chunked"),
                    "the lean client reads Content-Length answers only"
                );
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                head = Some((end + 4, status, length));
            }
            let (start, status, length) = head.unwrap();
            if self.buf.len() >= start + length {
                let body = self.buf[start..start + length].to_vec();
                return Answer { status, body };
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// User + system CPU time of this process so far, from /proc/self/stat: unlike wall
/// time it does not depend on what else the machine runs.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    // The kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}
