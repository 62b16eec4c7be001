//! The HTTP/1.1 server under the router, with limits against clients that hold
//! connections without using them: a request's head must arrive within
//! `header_timeout` (this also closes kept-alive connections idle that long), its body
//! within `body_timeout` of the head, and at most `max_connections` are served at once.
//! Connections beyond the limit wait in the kernel's listen backlog, holding no file
//! descriptor of ours, until an open one closes; as every open one is bounded in time
//! by the timeouts, a new one (a `/healthz` probe) gets its turn within about a header
//! timeout even when a crowd of idle connections arrives first.

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How the server guards itself against idle, slow and too many connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's head, and how long a kept-alive
    /// connection may sit idle before its next one.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body, counted from its head.
    pub body_timeout: Duration,
}

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time to send a request head: WeCom, WeChat, Alertmanager and browsers send
/// theirs in milliseconds.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time to send a body: an agent's report (1 MiB at most) needs about 17 KiB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then
/// stops accepting, lets requests in flight finish and returns when every connection
/// has closed. Sets TCP_NODELAY on every connection: replies are small and written in
/// pieces, and Nagle's algorithm with the peer's delayed ACK would hold them ~40 ms.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Bounded so the final wait can ask for every permit at once.
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        // The peer address reaches handlers: alert sources' and tokens' IP allow-lists,
        // login limits and /metrics.
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let deadline = Instant::now() + body_timeout;
            let mut req = req.map(|body| DeadlineBody::new(body, deadline, body_timeout));
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut conn = pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection: finish what is in flight, then close.
    let _ = stop_tx.send(());
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// An accept that failed: a connection reset before we took it is the client's
/// business; anything else (out of file descriptors) is logged and waited out, as a
/// tight loop would only spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A request body that fails once its deadline passes: a client trickling a body (or
/// announcing one it never sends) cannot hold a handler and a connection for long.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    allowed: Duration,
    /// Made the first time the body is not ready, so bodiless requests cost nothing.
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Instant, allowed: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline,
            allowed,
            timer: None,
        }
    }
}

/// The error a late body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.allowed).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
