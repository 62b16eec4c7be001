//! The listener: plain HTTP or TLS, HTTP/1.1, connections that can all be cut at once
//! (`set_unreachable`) and a listener that can stop and come back on the same port.

use std::net::SocketAddr;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Accepts until `stop` changes; every connection it accepted ends then too.
pub(crate) fn spawn_accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<()>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::debug!(error = %e, "fake kube: accept failed");
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            let tls = tls.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => serve(stream, router, stop, peer).await,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "fake kube: TLS handshake failed")
                        }
                    },
                    None => serve(tcp, router, stop, peer).await,
                }
            });
        }
    })
}

async fn serve<I>(io: I, router: Router, mut stop: watch::Receiver<()>, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        router.clone().oneshot(req)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "fake kube: connection ended with an error");
            }
        }
        // Dropping the connection closes the socket mid-whatever: unreachable.
        _ = stop.changed() => {}
    }
}
