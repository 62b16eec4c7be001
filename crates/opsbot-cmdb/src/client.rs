//! Sending reports to the server: `POST /api/v1/agent/report` with the agent token,
//! and draining the spool oldest first. The answer decides what happens to a report:
//! stored → removed; refused for good (400, 403, 413) → set aside; anything else
//! (server away, 5xx, 401 until the token is fixed) → kept for the next attempt.

use crate::spool::Spool;
use crate::{CmdbError, Result};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Reporter {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// What the server said about one report.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Stored; the server's answer (JSON).
    Stored(serde_json::Value),
    /// Refused for good: retrying the same report cannot help.
    Refused { status: u16, message: String },
    /// Not stored now; try again later.
    Later { message: String },
}

/// The outcome of draining the spool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drained {
    pub stored: usize,
    pub refused: usize,
    /// Why the drain stopped early (reports are still waiting), if it did.
    pub stopped: Option<String>,
    /// The server's answers to the stored reports.
    pub answers: Vec<serde_json::Value>,
}

impl Reporter {
    /// `server` is the opsbot base URL (`https://ops.example.com`).
    pub fn new(server: &str, token: &str) -> Result<Reporter> {
        let server = server.trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(CmdbError::Config(format!(
                "--server {server:?} must start with https:// or http://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("opsbot-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CmdbError::Config(format!("HTTP client: {e}")))?;
        Ok(Reporter {
            http,
            url: format!("{server}/api/v1/agent/report"),
            token: token.trim().to_string(),
        })
    }

    pub async fn send(&self, body: Vec<u8>) -> Sent {
        let res = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            // The URL is ours; the error never holds the token.
            Err(e) => {
                return Sent::Later {
                    message: format!("cannot reach {}: {}", self.url, error_chain(&e)),
                }
            }
        };
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        match status {
            200..=299 => Sent::Stored(serde_json::from_str(&text).unwrap_or_default()),
            400 | 403 | 404 | 413 | 422 => Sent::Refused { status, message },
            _ => Sent::Later {
                message: format!("HTTP {status}: {message}"),
            },
        }
    }

    /// Sends waiting reports oldest first until the spool is empty or the server
    /// cannot take one now.
    pub async fn drain(&self, spool: &Spool) -> Result<Drained> {
        let mut d = Drained::default();
        for file in spool.pending()? {
            let body = spool.read(&file)?;
            match self.send(body).await {
                Sent::Stored(answer) => {
                    spool.done(&file)?;
                    d.stored += 1;
                    d.answers.push(answer);
                }
                Sent::Refused { status, message } => {
                    let kept = spool.reject(&file, &format!("HTTP {status}: {message}"))?;
                    tracing::error!(status, %message, file = %kept.display(), "the server refused a report; kept aside");
                    d.refused += 1;
                }
                Sent::Later { message } => {
                    d.stopped = Some(message);
                    break;
                }
            }
        }
        Ok(d)
    }
}

/// An error with its causes (reqwest's own message is terse: "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
